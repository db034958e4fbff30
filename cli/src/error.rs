//! What a command can fail with: a stable `code` for scripts, a message for people, and the exit
//! status (2 for a command line that cannot work, 1 for everything else).

use tandem::{AuthFailure, SyncFailure, TandemError};

/// A failed command.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// A stable, snake_case name (`not_found`, `offline`, `invalid_credentials`, `usage` …).
    pub code: &'static str,
    pub message: String,
    /// The command line itself is at fault (exit status 2).
    pub usage: bool,
    /// The line of a `write` batch at fault.
    pub line: Option<usize>,
}

impl CliError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            usage: false,
            line: None,
        }
    }

    /// The error as the fault of line `number` of a batch.
    pub fn at_line(self, number: usize) -> Self {
        Self {
            message: format!("line {number}: {}", self.message),
            line: Some(number),
            ..self
        }
    }

    /// The command line cannot work as given.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            usage: true,
            ..Self::new("usage", message)
        }
    }

    pub fn exit_code(&self) -> u8 {
        if self.usage {
            2
        } else {
            1
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(line) = self.line {
            error["line"] = line.into();
        }
        serde_json::json!({ "error": error })
    }
}

impl From<TandemError> for CliError {
    fn from(error: TandemError) -> Self {
        let code = match &error {
            TandemError::InvalidArgument { .. } => "invalid_argument",
            TandemError::Validation { .. } => "validation",
            TandemError::NotFound { .. } => "not_found",
            TandemError::Schema { .. } => "schema",
            TandemError::Storage { .. } => "storage",
            TandemError::Key { kind, .. } => match kind {
                tandem::KeyFailure::Missing => "key_missing",
                tandem::KeyFailure::Wrong => "key_wrong",
                tandem::KeyFailure::Unavailable => "key_unavailable",
            },
            TandemError::AlreadyOpen { .. } => "already_open",
            TandemError::Closed => "closed",
            TandemError::Auth { kind, .. } => auth_code(*kind),
            TandemError::Sync { kind, .. } => sync_code(*kind),
            TandemError::Space { kind, .. } => kind.code(),
            TandemError::Attachment { kind, .. } => match kind {
                tandem::AttachmentErrorKind::NotFound => "attachment_not_found",
                tandem::AttachmentErrorKind::Corrupt => "attachment_corrupt",
                tandem::AttachmentErrorKind::Io => "attachment_io",
            },
            TandemError::Internal { .. } => "internal",
        };
        Self::new(code, error.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        Self::new("io", error.to_string())
    }
}

fn auth_code(kind: AuthFailure) -> &'static str {
    match kind {
        AuthFailure::InvalidCredentials => "invalid_credentials",
        AuthFailure::UserExists => "user_exists",
        AuthFailure::WeakPassword => "weak_password",
        AuthFailure::InvalidEmail => "invalid_email",
        AuthFailure::RateLimited => "rate_limited",
        AuthFailure::Network => "offline",
        AuthFailure::Server => "server_error",
        AuthFailure::SessionExpired => "session_expired",
        AuthFailure::NotSignedIn => "not_signed_in",
        AuthFailure::SecureStore => "secure_store",
    }
}

pub(crate) fn sync_code(kind: SyncFailure) -> &'static str {
    match kind {
        SyncFailure::Offline => "offline",
        SyncFailure::Paused => "sync_paused",
        SyncFailure::RateLimited => "rate_limited",
        SyncFailure::SessionExpired => "session_expired",
        SyncFailure::NotSignedIn => "not_signed_in",
        SyncFailure::Disabled => "sync_disabled",
        SyncFailure::Busy => "busy",
        SyncFailure::DeadlineExceeded => "deadline_exceeded",
        SyncFailure::Server => "server_error",
        SyncFailure::Local => "local_error",
    }
}
