//! The server suites' harness lives in `tandem-testkit` (one harness for every Rust suite):
//! test servers (the real binary, or in process on a manual clock), fresh databases on both
//! backends, the protocol client and its fixtures.

#![allow(unused_imports)]

pub use tandem_testkit::db::{Backend, TestDb};
pub use tandem_testkit::protocol::*;
pub use tandem_testkit::server::{TestServer, SECRET};
