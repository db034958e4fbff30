//! The public error: a small, stable set of cases that Swift, Kotlin and Python code can match on,
//! mapped from the engine's internal error.

use tandem_core::auth::AuthError;
use tandem_core::{Error, KeyProblem, SpaceErrorKind as EngineSpaceErrorKind, SyncError};
use tandem_protocol::RejectionCode;

/// Every failure the Tandem API reports. Messages name collections, fields and ids, never
/// document contents, tokens or passwords.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TandemError {
    /// An argument is malformed: bad JSON, a bad id, a query on an undeclared field, a bad URL.
    #[error("invalid argument: {detail}")]
    InvalidArgument { detail: String },

    /// A document breaks the schema. `reason` says why (`reason_code` is the protocol's code
    /// for it: `invalid_payload`, `invalid_parent`, `invalid_reference`, `restricted`,
    /// `unique_violation`, `too_large`, `unknown_entity`, and for spaces `read_only`,
    /// `forbidden`, `space_mismatch`, `unknown_space`); `field` is empty when the whole
    /// document is at fault.
    #[error("{detail}")]
    Validation {
        collection: String,
        field: Option<String>,
        reason: ValidationReason,
        reason_code: String,
        detail: String,
    },

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

    /// The local database is encrypted and its key is missing, does not open it, or cannot be
    /// read now; `kind` says which. Nothing is deleted or changed on this path: pending changes
    /// wait in the file for the key's return (the app retries `Unavailable` once the device is
    /// unlocked; a key that cannot return, on a device restored from another's backup, is the
    /// case for `set_aside_unreadable_data`).
    #[error("database key: {detail}")]
    Key { kind: KeyFailure, detail: String },

    /// The data directory is already open in this process.
    #[error("{detail}")]
    AlreadyOpen { detail: String },

    /// The instance was shut down.
    #[error("this Tandem instance was shut down")]
    Closed,

    /// Signing up, in or out failed; `kind` says why. `retry_after_secs` is set when rate limited.
    #[error("auth: {detail}")]
    Auth {
        kind: AuthFailure,
        detail: String,
        retry_after_secs: Option<u64>,
    },

    /// A sync run failed; `kind` says why. Local data is untouched and nothing is lost.
    #[error("sync: {detail}")]
    Sync {
        kind: SyncFailure,
        detail: String,
        retry_after_secs: Option<u64>,
    },

    /// The server refused a space call (`create_space`, `invite`, `accept`, `set_role`, …);
    /// `kind` says why. A space call that cannot reach the server fails with `Sync` (`Offline`),
    /// one without a session with `Auth` (`NotSignedIn`). (The text is `detail`, as in every
    /// other case: a field named `message` would clash with Kotlin's `Throwable.message`.)
    #[error("space: {detail}")]
    Space {
        kind: SpaceErrorKind,
        detail: String,
    },

    /// An attachment's file could not be given (`attachment()`): `kind` says why. An upload
    /// that fails for good is not an error of a call: it shows as `AttachmentState.Failed` and
    /// as `rejected()` entries of the changes naming it.
    #[error("attachment: {detail}")]
    Attachment {
        kind: super::attachments::AttachmentErrorKind,
        detail: String,
    },

    /// A bug in Tandem; please report it.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

/// Why an encrypted database could not be opened (`TandemError.Key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum KeyFailure {
    /// The database is encrypted and no key for it is in the secure store (a restored backup,
    /// a cleared keychain, or encryption turned off after its key was lost).
    Missing,
    /// The stored key does not open the database.
    Wrong,
    /// The secure store cannot be read now (e.g. before the device's first unlock); retrying
    /// later may succeed.
    Unavailable,
}

impl From<KeyProblem> for KeyFailure {
    fn from(problem: KeyProblem) -> Self {
        match problem {
            KeyProblem::Missing => Self::Missing,
            KeyProblem::Wrong => Self::Wrong,
            KeyProblem::Unavailable => Self::Unavailable,
        }
    }
}

/// Why a document or a change was refused: the protocol's rejection codes. `Other` is a code
/// this version does not know (a newer server's); `reason_code` next to it keeps the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ValidationReason {
    /// The document does not match its collection's schema (unknown or missing field, wrong
    /// type, too long, not an object).
    InvalidPayload,
    /// A child whose parent does not exist (or was deleted).
    InvalidParent,
    /// The document is over the size limit.
    TooLarge,
    /// The collection is not in the schema.
    UnknownEntity,
    /// A `ref` field names a record that does not exist (or was deleted); `field` names it.
    InvalidReference,
    /// A delete refused because a record refers to this one through a `restrict` reference;
    /// `field` is the referring field, `detail` names the referrer.
    Restricted,
    /// A write whose unique key another record holds; `detail` names the constraint's fields and
    /// that record.
    UniqueViolation,
    /// A local write to a `public` collection: only the server's administrator writes those.
    ReadOnly,
    /// A write to a space where the user's role does not allow it (a viewer); also the server's
    /// refusal of a change to a space the user was removed from (a dead letter).
    Forbidden,
    /// A write naming the wrong space: a space for a user or public collection, none for a new
    /// record of a space collection, or one other than the record's own or its parent's.
    SpaceMismatch,
    /// A write to a space this device does not know (not a member, or not synced yet).
    UnknownSpace,
    /// The server refused a change naming an attachment the user may not read or that was never
    /// uploaded (`attachment_missing`): a reference copied from elsewhere.
    AttachmentMissing,
    /// A change whose attachment is over the server's per-file limit (`attachment_too_large`):
    /// its upload was refused, so the change became a dead letter.
    AttachmentTooLarge,
    /// A change whose attachment would take the user over their storage quota on the server
    /// (`quota_exceeded`): a dead letter like `AttachmentTooLarge`.
    QuotaExceeded,
    /// A code this version does not know.
    Other,
}

impl ValidationReason {
    /// The reason for a protocol code (`invalid_parent`, …), `Other` for an unknown one.
    pub fn from_code(code: &str) -> Self {
        use tandem_core::ValidationReason as R;
        match code {
            c if c == tandem_protocol::ConflictCode::UniqueViolation.as_str() => {
                Self::UniqueViolation
            }
            // The local-only codes (no server rejects a mutation with them).
            c if c == R::ReadOnly.code() => Self::ReadOnly,
            c if c == R::SpaceMismatch.code() => Self::SpaceMismatch,
            c if c == R::UnknownSpace.code() => Self::UnknownSpace,
            // Upload refusals that make a change a dead letter (the server's error codes).
            c if c == tandem_protocol::ErrorCode::AttachmentTooLarge.as_str() => {
                Self::AttachmentTooLarge
            }
            c if c == tandem_protocol::ErrorCode::QuotaExceeded.as_str() => Self::QuotaExceeded,
            _ => RejectionCode::from(code).into(),
        }
    }
}

impl From<RejectionCode> for ValidationReason {
    fn from(code: RejectionCode) -> Self {
        match code {
            RejectionCode::InvalidPayload => Self::InvalidPayload,
            RejectionCode::InvalidParent => Self::InvalidParent,
            RejectionCode::TooLarge => Self::TooLarge,
            RejectionCode::UnknownEntity => Self::UnknownEntity,
            RejectionCode::InvalidReference => Self::InvalidReference,
            RejectionCode::Restricted => Self::Restricted,
            RejectionCode::Forbidden => Self::Forbidden,
            RejectionCode::AttachmentMissing => Self::AttachmentMissing,
            RejectionCode::Other(_) => Self::Other,
        }
    }
}

/// Why the server refused a space call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum SpaceErrorKind {
    /// No such space or invitation, or the user is not a member: the two look the same.
    NotFound,
    /// The user's role does not allow the call (owners manage a space).
    Forbidden,
    /// The call would leave the space without an owner.
    LastOwner,
    /// The invited email belongs to a member already.
    AlreadyMember,
    /// A server limit: spaces per user, members per space, pending invitations.
    LimitReached,
    /// The space name is empty or longer than 200 characters.
    InvalidName,
}

impl SpaceErrorKind {
    /// The error code the server and the CLI use for it (`not_found`, `forbidden`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::LastOwner => "last_owner",
            Self::AlreadyMember => "already_member",
            Self::LimitReached => "limit_reached",
            Self::InvalidName => "invalid_name",
        }
    }
}

impl From<EngineSpaceErrorKind> for SpaceErrorKind {
    fn from(kind: EngineSpaceErrorKind) -> Self {
        match kind {
            EngineSpaceErrorKind::NotFound => Self::NotFound,
            EngineSpaceErrorKind::Forbidden => Self::Forbidden,
            EngineSpaceErrorKind::LastOwner => Self::LastOwner,
            EngineSpaceErrorKind::AlreadyMember => Self::AlreadyMember,
            EngineSpaceErrorKind::LimitReached => Self::LimitReached,
            EngineSpaceErrorKind::InvalidName => Self::InvalidName,
        }
    }
}

/// Why an auth operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AuthFailure {
    InvalidCredentials,
    UserExists,
    WeakPassword,
    InvalidEmail,
    RateLimited,
    Network,
    Server,
    SessionExpired,
    NotSignedIn,
    SecureStore,
}

/// Why a sync run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncFailure {
    /// The server could not be reached.
    Offline,
    /// The server's operator paused sync.
    Paused,
    RateLimited,
    SessionExpired,
    NotSignedIn,
    /// Sync is disabled in the configuration (the kill switch).
    Disabled,
    /// Another process is syncing this account right now.
    Busy,
    /// `sync_once`'s deadline passed; what was sent is safe to send again.
    DeadlineExceeded,
    /// The server failed or answered something malformed.
    Server,
    /// The local store failed.
    Local,
}

impl From<Error> for TandemError {
    fn from(error: Error) -> Self {
        let detail = error.to_string();
        match error {
            Error::InvalidArgument(detail) => Self::InvalidArgument { detail },
            Error::Validation(v) => Self::Validation {
                collection: v.collection.clone(),
                field: v.field.clone(),
                reason: ValidationReason::from_code(v.reason.code()),
                reason_code: v.reason.code().to_string(),
                detail,
            },
            Error::NotFound { collection, id } => Self::NotFound { collection, id },
            Error::Schema(_) | Error::SchemaChange(_) | Error::StoreTooNew { .. } => {
                Self::Schema { detail }
            }
            Error::AlreadyOpen(_) => Self::AlreadyOpen { detail },
            Error::Closed => Self::Closed,
            Error::Key(problem) => Self::Key {
                kind: problem.into(),
                detail,
            },
            Error::Sqlite(_) | Error::Io(_) | Error::Corrupt(_) => Self::Storage { detail },
            Error::Protocol(_) => Self::Sync {
                kind: SyncFailure::Server,
                detail,
                retry_after_secs: None,
            },
            Error::Auth(e) => e.into(),
            Error::Sync(e) => e.into(),
            Error::Space { kind, message } => Self::Space {
                kind: kind.into(),
                detail: message,
            },
            Error::Attachment { kind, detail } => Self::Attachment {
                kind: kind.into(),
                detail,
            },
        }
    }
}

impl From<AuthError> for TandemError {
    fn from(error: AuthError) -> Self {
        let detail = error.to_string();
        let (kind, retry_after_secs) = match error {
            AuthError::InvalidCredentials => (AuthFailure::InvalidCredentials, None),
            AuthError::UserExists => (AuthFailure::UserExists, None),
            AuthError::WeakPassword(_) => (AuthFailure::WeakPassword, None),
            AuthError::InvalidEmail(_) => (AuthFailure::InvalidEmail, None),
            AuthError::RateLimited { retry_after_secs } => {
                (AuthFailure::RateLimited, retry_after_secs)
            }
            AuthError::Network { .. } => (AuthFailure::Network, None),
            AuthError::Server { .. } => (AuthFailure::Server, None),
            AuthError::SessionExpired => (AuthFailure::SessionExpired, None),
            AuthError::NotSignedIn => (AuthFailure::NotSignedIn, None),
            AuthError::SecureStore(_) => (AuthFailure::SecureStore, None),
        };
        Self::Auth {
            kind,
            detail,
            retry_after_secs,
        }
    }
}

impl From<SyncError> for TandemError {
    fn from(error: SyncError) -> Self {
        let detail = error.to_string();
        let retry_after_secs = error.retry_after_secs();
        let kind = match error {
            SyncError::Offline(_) => SyncFailure::Offline,
            SyncError::Paused { .. } => SyncFailure::Paused,
            SyncError::RateLimited { .. } => SyncFailure::RateLimited,
            SyncError::SessionExpired => SyncFailure::SessionExpired,
            SyncError::NotSignedIn => SyncFailure::NotSignedIn,
            SyncError::Disabled => SyncFailure::Disabled,
            SyncError::Busy => SyncFailure::Busy,
            SyncError::CursorExpired | SyncError::Server { .. } => SyncFailure::Server,
            SyncError::DeadlineExceeded => SyncFailure::DeadlineExceeded,
            SyncError::Local(_) => SyncFailure::Local,
        };
        Self::Sync {
            kind,
            detail,
            retry_after_secs,
        }
    }
}

impl From<tandem_core::FailureKind> for SyncFailure {
    fn from(kind: tandem_core::FailureKind) -> Self {
        use tandem_core::FailureKind as K;
        match kind {
            K::Offline => Self::Offline,
            K::Paused => Self::Paused,
            K::RateLimited => Self::RateLimited,
            K::SessionExpired => Self::SessionExpired,
            K::NotSignedIn => Self::NotSignedIn,
            K::Disabled => Self::Disabled,
            K::Busy => Self::Busy,
            K::DeadlineExceeded => Self::DeadlineExceeded,
            K::Server => Self::Server,
            K::Local => Self::Local,
        }
    }
}
