//! Test kit for Tandem, the one harness of the Rust test suites (a dev-dependency):
//! - [`server`]: [`TestServer::builder`](server::TestServer::builder) starts the real server binary
//!   or an in-process server on a [`ManualClock`] the test moves;
//! - [`db`]: fresh SQLite and PostgreSQL databases and [`on_both_backends!`];
//! - [`protocol`]: a thin client of the sync protocol for the server suites;
//! - [`blobs`]: blob stores for attachment tests (a directory, moto's S3) and
//!   [`on_backends_and_blob_stores!`];
//! - [`fixtures`]: the one test schema (`schemas/test.json`) and fresh emails;
//! - [`proxy`]: the fault-injecting proxy;
//! - [`server_suite`]: the server, database and protocol pieces the server's suites use;
//! - [`converge`]: randomized multi-device convergence runs with an oracle and a shrinker.

pub mod blobs;
pub mod converge;
pub mod db;
pub mod fixtures;
pub mod protocol;
pub mod proxy;
pub mod server;

/// Everything the server's suites use, under one path.
pub mod server_suite {
    pub use crate::blobs::{BlobStoreKind, TestBlobStore};
    pub use crate::db::{Backend, TestDb};
    pub use crate::protocol::*;
    pub use crate::server::{TestServer, SECRET};
}

pub use fixtures::TEST_SCHEMA;
pub use server::{TestServer, TestServerBuilder};
pub use tandem_server::ManualClock;
