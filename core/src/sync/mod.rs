//! Sync: pushing the outbox and pulling the server's changes, conflicts and their resolution.
//! `merge`, `conflict`, `reconcile`, `push` and `pull` are pure store logic (no network), so they
//! are tested without a server; the network loop builds on them.

pub mod conflict;
pub mod merge;
pub mod pull;
pub mod push;
pub mod reconcile;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 UTC for unix milliseconds (the protocol's `clientTime`).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}
