//! Shared test data: the one test schema and fresh account emails.

/// `schemas/test.json`: the plans, plan_days and exercises collections every Rust fixture and
/// test server uses.
pub const TEST_SCHEMA: &str = include_str!("../../schemas/test.json");

/// A fresh email address.
pub fn email() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "user-{nanos}-{}@example.com",
        N.fetch_add(1, Ordering::Relaxed)
    )
}
