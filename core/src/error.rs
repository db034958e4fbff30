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

    /// The database is encrypted and could not be opened with the key at hand
    /// (docs/design/encryption.md §2); the file was left untouched. The design's
    /// `StoreError::Key`.
    #[error("{0}; the database file was left untouched")]
    Key(crate::store::cipher::KeyProblem),

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

    /// A space call the server refused (docs/design/spaces.md §6). Network failures of space
    /// calls are `Sync` (`Offline`, ...), a missing session `Auth`.
    #[error("space: {message}")]
    Space {
        kind: SpaceErrorKind,
        message: String,
    },

    /// An attachment could not be had (docs/design/attachments.md §5). Network failures of a
    /// download are `Sync` (`Offline`, ...), a missing session `Auth`.
    #[error("attachment: {detail}")]
    Attachment {
        kind: AttachmentErrorKind,
        detail: String,
    },
}

/// Why an attachment could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentErrorKind {
    /// The server has no such blob, or the user may not read it (the two look the same).
    NotFound,
    /// The downloaded bytes do not hash to the reference's hash (the partial file was deleted;
    /// the next call downloads it again from the start).
    Corrupt,
    /// The local file could not be written or read.
    Io,
}

/// Why the server refused a space call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceErrorKind {
    /// No such space or invitation, or the user is not a member (the two look the same).
    NotFound,
    /// The user's role does not allow the call (owner only).
    Forbidden,
    /// The call would leave the space without an owner.
    LastOwner,
    /// The invited email is a member already.
    AlreadyMember,
    /// A server limit (spaces per user, members per space, pending invitations).
    LimitReached,
    /// The space name is empty or longer than 200 characters.
    InvalidName,
}

impl SpaceErrorKind {
    /// The kind of a refused space call's error code, if it is one.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "not_found" => Self::NotFound,
            "forbidden" => Self::Forbidden,
            "last_owner" => Self::LastOwner,
            "already_member" => Self::AlreadyMember,
            "limit_reached" => Self::LimitReached,
            "validation_failed" | "invalid_name" => Self::InvalidName,
            _ => return None,
        })
    }
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
