//! Tandem: an offline-first sync engine for mobile apps, as a plain Rust library.
//!
//! [`Client`] is the one façade: it opens a data directory and offers every read, write,
//! observer, conflict, dead-letter, auth and sync call. The UniFFI-exported API (crate
//! `tandem-ffi`, `bindings/ffi`) is a thin layer over it; Rust programs can use it directly.
//!
//! [`defaults`] holds every sync and HTTP default.
//!
//! Layers, from the bottom (all private but the types re-exported here):
//! - `store`: the SQLite file (one writer, pooled readers, migrations);
//! - `schema`: the app schema installed into the store (evolution checks, expression indexes);
//! - `records` and `outbox`: the rows of records and of pending changes, and how changes coalesce;
//! - `query`: filters and ordering compiled to index-friendly SQL;
//! - `observe`: the one registry and notification thread that deliver every observer (queries,
//!   records, change listeners, and the watched sync status and auth state);
//! - `engine`: the local operations, each one transaction;
//! - [`auth`] and [`http`]: the session against the auth server and the HTTP client;
//! - `attachments`: the files of attachment fields (their directory, table, upload phase);
//! - `sync`: push, pull, conflicts and the orchestrator that decides when runs happen;
//! - `client`: the data directory: the current account's engine, the session, the syncer.

mod attachments;
pub mod auth;
mod client;
#[cfg(test)]
mod conflict_times_tests;
mod crash;
pub mod defaults;
mod edit_time;
mod engine;
#[cfg(test)]
mod engine_tests;
mod error;
/// Entry points for the fuzz targets (`fuzz/`); see `docs/fuzzing.md`.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
#[cfg(test)]
mod group_tests;
pub mod http;
#[cfg(test)]
mod lww_tests;
#[cfg(test)]
mod noop_revert_tests;
mod observe;
mod outbox;
mod query;
mod records;
mod refs;
#[cfg(test)]
mod refs_tests;
pub mod runtime;
mod schema;
#[cfg(test)]
mod spaces_tests;
mod store;
mod sync;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod test_device;

pub use attachments::progress::Transfer;
pub use attachments::sealed::{convert_cache, CacheKey, Converted, SealError};
pub use attachments::{AttachmentFailure, AttachmentState};
pub use client::{Client, ClientConfig};
pub use engine::WriteOp;
pub use error::{AttachmentErrorKind, Error, Result, SpaceErrorKind};
pub use observe::SubscriptionHandle;
pub use outbox::{EntryState, OpKind, OutboxEntry};
pub use query::{Filter, FilterOp, Order, Query};
pub use records::{RecordRow, RecordState};
pub use refs::{RuleViolation, ViolationKind};
pub use store::cipher::{key_connection, DatabaseKey, KeyProblem};
pub use store::keys::Encryption;
pub use store::CONNECTION_PRAGMAS;
pub use sync::conflict::{ConflictPolicy, ConflictReason, ConflictRow};
pub use sync::error::SyncError;
pub use sync::orchestrator::{Resolver, SyncOptions};
pub use sync::push::Outcome;
pub use sync::resolve::Resolution;
pub use sync::revert::Reverted;
pub use sync::run::SyncReport;
pub use sync::spaces::{Invitation, Member, SentInvitation, Space, SpaceRole};
pub use sync::status::{FailureKind, Metrics, Phase, Status, Trigger};
pub use tandem_protocol::{AttachmentRef, User, ValidationError, ValidationReason};
