//! Sync: pushing the outbox and pulling the server's changes, conflicts and their resolution.
//! `merge`, `conflict`, `reconcile`, `push` and `pull` are pure store logic (no network), so they
//! are tested without a server; `api` speaks HTTP, `run` is one push-then-pull run, and the
//! orchestrator decides when runs happen.

pub mod api;
pub mod conflict;
pub mod error;
pub mod lock;
pub mod lww;
pub mod merge;
pub mod orchestrator;
pub mod pull;
pub mod push;
pub mod reconcile;
pub mod resolve;
pub mod revert;
pub mod run;
pub mod spaces;
pub mod status;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 UTC for unix milliseconds (the protocol's `clientTime`).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}
