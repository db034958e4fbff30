//! Shared test data: the one test schema and fresh account emails.

/// `schemas/test.json`: the plans, plan_days and exercises collections every Rust fixture and
/// test server uses.
pub const TEST_SCHEMA: &str = include_str!("../../schemas/test.json");

/// A local-only engine configuration in `dir` with `schema`.
pub fn config(dir: &tempfile::TempDir, schema: &str) -> tandem::TandemConfig {
    tandem::TandemConfig::local(dir.path().to_string_lossy(), schema)
}

/// A local-only engine on the test schema in a fresh temp directory (kept alive by the first).
pub fn open() -> (tempfile::TempDir, std::sync::Arc<tandem::Tandem>) {
    let dir = tempfile::TempDir::new().expect("a temp dir");
    let tandem = tandem::Tandem::open(config(&dir, TEST_SCHEMA)).expect("opening the engine");
    (dir, tandem)
}

/// A record's document as JSON.
pub fn doc(record: &tandem::Record) -> serde_json::Value {
    serde_json::from_str(&record.document).expect("a stored document is JSON")
}

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
