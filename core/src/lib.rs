//! Tandem: an offline-first sync engine for mobile apps.
//!
//! Layers, from the bottom:
//! - [`store`]: the SQLite file (one writer, pooled readers, migrations);
//! - `schema`: the app schema installed into the store (evolution checks, expression indexes);
//! - `records` and `outbox`: the rows of records and of pending changes, and how changes coalesce;
//! - `query`: filters and ordering compiled to index-friendly SQL;
//! - `observe`: query observers and change listeners on a notification thread;
//! - [`engine`]: the operations, each one transaction;
//! - `ffi`: the UniFFI-exported API (`Tandem`, `Record`, `TandemError` …), a thin wrapper.

#[cfg(any(target_os = "android", test))]
mod android;
mod auth;
mod client;
pub mod crash;
pub mod engine;
#[cfg(test)]
mod engine_tests;
mod error;
mod ffi;
/// Entry points for the fuzz targets (`fuzz/`); see `docs/fuzzing.md`.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod http;
mod observe;
mod outbox;
pub mod query;
mod records;
pub mod runtime;
mod schema;
pub mod store;
mod sync;
#[cfg(test)]
mod sync_tests;

pub use error::Error;
pub use ffi::*;

uniffi::setup_scaffolding!("tandem");
