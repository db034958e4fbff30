//! Test support lives in `tandem-testkit` (one server harness, one fault proxy).
#![allow(unused_imports)]

pub use tandem_testkit::proxy;
pub use tandem_testkit::server::*;
