//! What the app shows about sync: the status (phase, counts, last sync, progress) and metrics.

use std::collections::BTreeMap;

/// What sync is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Pushing,
    Pulling,
    /// The server could not be reached; the next connectivity trigger retries at once.
    Offline,
    /// Paused by the server (503 `sync_paused`) or disabled in the configuration.
    Paused,
    /// Nobody is signed in, or the session expired.
    SignedOut,
    /// The last run failed for another reason (see `last_error`); it is retried with backoff.
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub phase: Phase,
    pub pending: u64,
    pub conflicts: u64,
    pub rejected: u64,
    /// Unix milliseconds of the last successful run.
    pub last_synced_at: Option<i64>,
    pub last_error: Option<String>,
    /// During a pull: changes received so far in this run, and still to come.
    pub pulled: u64,
    pub remaining: u64,
    /// Connected to the server's event stream: other devices' changes arrive within moments.
    pub realtime: bool,
    /// Unix milliseconds of the end of the last run, successful or not (a busy lock is no run).
    /// Kept in the store with the last success, so a new session starts with it.
    pub last_run_at: Option<i64>,
    /// Why the last run failed, typed (`last_error` says it in words); `None` after a success.
    pub last_failure: Option<FailureKind>,
    /// Attachments named by unsent changes and not uploaded yet (failed ones not counted), and
    /// their bytes; kept up to date like `pending`.
    pub attachments_pending: u64,
    pub attachment_bytes_pending: u64,
    /// During a run: attachment bytes sent and received so far (0 between runs).
    pub attachment_bytes_transferred: u64,
}

/// Why a sync run failed, as a stable kind an app (or `tandem status`) can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Offline,
    Paused,
    RateLimited,
    SessionExpired,
    NotSignedIn,
    Disabled,
    Busy,
    DeadlineExceeded,
    /// The server failed or answered something unusable (an expired cursor included).
    Server,
    /// The local store failed.
    Local,
}

impl FailureKind {
    pub fn of(error: &crate::sync::error::SyncError) -> Self {
        use crate::sync::error::SyncError;
        match error {
            SyncError::Offline(_) => Self::Offline,
            SyncError::Paused { .. } => Self::Paused,
            SyncError::RateLimited { .. } => Self::RateLimited,
            SyncError::SessionExpired => Self::SessionExpired,
            SyncError::NotSignedIn => Self::NotSignedIn,
            SyncError::Disabled => Self::Disabled,
            SyncError::Busy => Self::Busy,
            SyncError::DeadlineExceeded => Self::DeadlineExceeded,
            SyncError::CursorExpired | SyncError::Server { .. } => Self::Server,
            SyncError::Local(_) => Self::Local,
        }
    }

    /// The stable name it is stored (and shown) by.
    pub fn code(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Paused => "paused",
            Self::RateLimited => "rate_limited",
            Self::SessionExpired => "session_expired",
            Self::NotSignedIn => "not_signed_in",
            Self::Disabled => "disabled",
            Self::Busy => "busy",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Server => "server",
            Self::Local => "local",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::Offline,
            Self::Paused,
            Self::RateLimited,
            Self::SessionExpired,
            Self::NotSignedIn,
            Self::Disabled,
            Self::Busy,
            Self::DeadlineExceeded,
            Self::Server,
            Self::Local,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

impl Default for Status {
    fn default() -> Self {
        Self {
            phase: Phase::Idle,
            pending: 0,
            conflicts: 0,
            rejected: 0,
            last_synced_at: None,
            last_error: None,
            pulled: 0,
            remaining: 0,
            realtime: false,
            last_run_at: None,
            last_failure: None,
            attachments_pending: 0,
            attachment_bytes_pending: 0,
            attachment_bytes_transferred: 0,
        }
    }
}

/// Why a run was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    LocalWrite,
    Foreground,
    Connectivity,
    Periodic,
    Realtime,
    Manual,
    Retry,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Self::LocalWrite => "local_write",
            Self::Foreground => "foreground",
            Self::Connectivity => "connectivity",
            Self::Periodic => "periodic",
            Self::Realtime => "realtime",
            Self::Manual => "manual",
            Self::Retry => "retry",
        }
    }
}

/// Counters since the engine was opened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub triggers: BTreeMap<Trigger, u64>,
    pub runs: u64,
    pub failures: u64,
    pub ops_pushed: u64,
    pub changes_pulled: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub last_run_duration_ms: u64,
    /// Pulled records skipped because this device holds their id in another space (a member
    /// chose an id another space uses; see docs/design/spaces.md §9).
    pub space_collisions: u64,
    /// Attachment bytes downloaded (on demand and by eager prefetch).
    pub attachment_bytes_received: u64,
    /// Attachment bytes sent by the upload phases of successful runs.
    pub attachment_bytes_sent: u64,
}
