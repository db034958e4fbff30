//! Test kit for Tandem: the real-server harness ([`server`]), the fault proxy ([`proxy`]) and
//! randomized multi-device convergence runs with an oracle and a shrinker ([`converge`]).

pub mod converge;
pub mod proxy;
pub mod server;
