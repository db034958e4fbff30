//! Why a sync run failed, in the terms the orchestrator acts on (offline → wait for the network,
//! paused → honour Retry-After, session expired → stop).

use crate::auth::AuthError;
use crate::error::Error;
use crate::http::HttpError;
use tandem_protocol::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("offline: {0}")]
    Offline(String),

    #[error("the server paused sync{}", retry_suffix(.retry_after_secs))]
    Paused { retry_after_secs: Option<u64> },

    #[error("rate limited by the server{}", retry_suffix(.retry_after_secs))]
    RateLimited { retry_after_secs: Option<u64> },

    #[error("the session expired; sign in again")]
    SessionExpired,

    #[error("not signed in")]
    NotSignedIn,

    #[error("sync is disabled in the configuration")]
    Disabled,

    #[error("another process is syncing this account")]
    Busy,

    #[error("the pull cursor expired")]
    CursorExpired,

    #[error("the run did not finish before its deadline")]
    DeadlineExceeded,

    #[error("server error (HTTP {status}): {detail}")]
    Server { status: u16, detail: String },

    /// The local store failed (the text of the engine's error).
    #[error("{0}")]
    Local(String),
}

fn retry_suffix(secs: &Option<u64>) -> String {
    secs.map(|s| format!("; retry in {s} s"))
        .unwrap_or_default()
}

impl SyncError {
    /// Seconds the server asked us to wait, if it did.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Paused { retry_after_secs } | Self::RateLimited { retry_after_secs } => {
                *retry_after_secs
            }
            _ => None,
        }
    }
}

impl From<HttpError> for SyncError {
    fn from(e: HttpError) -> Self {
        if e.is_offline() {
            return Self::Offline(e.to_string());
        }
        match (e.status(), e.error_code()) {
            (Some(503), Some(ErrorCode::SyncPaused)) => Self::Paused {
                retry_after_secs: e.retry_after_secs(),
            },
            (Some(429), _) => Self::RateLimited {
                retry_after_secs: e.retry_after_secs(),
            },
            (Some(410), _) => Self::CursorExpired,
            (status, _) => Self::Server {
                status: status.unwrap_or(0),
                detail: e.to_string(),
            },
        }
    }
}

impl From<AuthError> for SyncError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::SessionExpired => Self::SessionExpired,
            AuthError::NotSignedIn => Self::NotSignedIn,
            AuthError::Network { message } => Self::Offline(message),
            AuthError::RateLimited { retry_after_secs } => Self::RateLimited { retry_after_secs },
            other => Self::Server {
                status: 0,
                detail: other.to_string(),
            },
        }
    }
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        match e {
            Error::Protocol(detail) => Self::Server {
                status: 200,
                detail: format!("malformed answer: {detail}"),
            },
            other => Self::Local(other.to_string()),
        }
    }
}
