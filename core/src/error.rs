//! The engine's internal error. Every layer below the FFI returns this; `ffi::error` maps it onto
//! the small public `TandemError`. Messages never carry document contents.

use std::path::PathBuf;

use tandem_protocol::{SchemaError, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),

    #[error(transparent)]
    Validation(#[from] ValidationError),

    #[error("{collection}/{id} does not exist")]
    NotFound { collection: String, id: String },

    #[error("schema: {0}")]
    Schema(#[from] SchemaError),

    #[error("schema change refused: {0}")]
    SchemaChange(SchemaError),

    #[error(
        "the store was written by a newer version of Tandem (store version {found}, this engine \
         reads up to {supported}); it was left untouched"
    )]
    StoreTooNew { found: i64, supported: i64 },

    #[error("the data directory {} is already open in this process; shut the other instance down first", .0.display())]
    AlreadyOpen(PathBuf),

    #[error("this Tandem instance was shut down")]
    Closed,

    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),

    #[error("stored data is corrupt: {0}")]
    Corrupt(String),

    #[error("the server's answer is malformed: {0}")]
    Protocol(String),

    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),

    #[error(transparent)]
    Sync(#[from] crate::sync::error::SyncError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }

    pub(crate) fn not_found(collection: &str, id: &str) -> Self {
        Self::NotFound {
            collection: collection.to_string(),
            id: id.to_string(),
        }
    }
}
