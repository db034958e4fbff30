//! The public error: a small, stable set of cases that Swift, Kotlin and Python code can match on,
//! mapped from the engine's internal error.

use crate::error::Error;

/// Every failure the Tandem API reports. Messages name collections, fields and ids, never
/// document contents.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TandemError {
    /// An argument is malformed: bad JSON, a bad id, a query on an undeclared field.
    #[error("invalid argument: {detail}")]
    InvalidArgument { detail: String },

    /// A document breaks the schema. `reason` is the protocol's code (`invalid_payload`,
    /// `invalid_parent`, `too_large`, `unknown_entity`); `field` is empty when the whole
    /// document is at fault.
    #[error("{detail}")]
    Validation { collection: String, field: Option<String>, reason: String, detail: String },

    /// The record does not exist (or was deleted).
    #[error("{collection}/{id} does not exist")]
    NotFound { collection: String, id: String },

    /// The schema document is invalid, or changed in a way the stored data cannot follow, or the
    /// store was written by a newer engine.
    #[error("schema: {detail}")]
    Schema { detail: String },

    /// The database or the file system failed.
    #[error("storage: {detail}")]
    Storage { detail: String },

    /// The data directory is already open in this process.
    #[error("{detail}")]
    AlreadyOpen { detail: String },

    /// The instance was shut down.
    #[error("this Tandem instance was shut down")]
    Closed,

    /// A bug in Tandem; please report it.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl From<Error> for TandemError {
    fn from(error: Error) -> Self {
        let detail = error.to_string();
        match error {
            Error::InvalidArgument(detail) => Self::InvalidArgument { detail },
            Error::Validation(v) => Self::Validation {
                collection: v.collection.clone(),
                field: v.field.clone(),
                reason: v.reason.code().to_string(),
                detail,
            },
            Error::NotFound { collection, id } => Self::NotFound { collection, id },
            Error::Schema(_) | Error::SchemaChange(_) | Error::StoreTooNew { .. } => Self::Schema { detail },
            Error::AlreadyOpen(_) => Self::AlreadyOpen { detail },
            Error::Closed => Self::Closed,
            Error::Sqlite(_) | Error::Io(_) | Error::Corrupt(_) => Self::Storage { detail },
            Error::Protocol(_) => Self::Internal { detail },
        }
    }
}
