//! Shared test data: the one test schema and fresh account emails.

/// `schemas/test.json`: the plans, plan_days and exercises collections every Rust fixture and
/// test server uses.
pub const TEST_SCHEMA: &str = include_str!("../../schemas/test.json");

/// The test schema with exercise notes limited to 5 characters: a server started with it
/// ([`TestServer::with_schema`](crate::server::TestServer::with_schema)) rejects what the
/// devices accept.
pub fn strict_notes_schema() -> String {
    TEST_SCHEMA.replacen(
        r#""notes": {"type": "string"}"#,
        r#""notes": {"type": "string", "maxLength": 5}"#,
        1,
    )
}

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

/// An in-memory secure store (not secure: for tests) whose contents the test can read.
#[derive(Default)]
pub struct MemorySecrets(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl MemorySecrets {
    /// Every value stored now.
    pub fn values(&self) -> Vec<String> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl tandem::SecureStore for MemorySecrets {
    fn get(&self, key: String) -> Result<Option<String>, tandem::SecureStoreError> {
        Ok(self.lock().get(&key).cloned())
    }
    fn set(&self, key: String, value: String) -> Result<(), tandem::SecureStoreError> {
        self.lock().insert(key, value);
        Ok(())
    }
    fn delete(&self, key: String) -> Result<(), tandem::SecureStoreError> {
        self.lock().remove(&key);
        Ok(())
    }
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

/// Three users and two spaces on a server, for the space suites: in `s1` (created by A) A is
/// owner, B editor and C viewer; in `s2` (created by B) B is owner and A viewer.
pub struct ThreeUsersTwoSpaces {
    pub a: crate::protocol::User,
    pub b: crate::protocol::User,
    pub c: crate::protocol::User,
    pub s1: String,
    pub s2: String,
}

/// Sets up [`ThreeUsersTwoSpaces`] through `client`'s HTTP API.
pub async fn three_users_two_spaces(client: &crate::protocol::Client) -> ThreeUsersTwoSpaces {
    let (a, b, c) = (
        client.user().await,
        client.user().await,
        client.user().await,
    );
    let s1 = client.create_space(&a.token, "S1").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    client.join(&a, &s1, &b, "editor").await;
    client.join(&a, &s1, &c, "viewer").await;
    let s2 = client.create_space(&b.token, "S2").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    client.join(&b, &s2, &a, "viewer").await;
    ThreeUsersTwoSpaces { a, b, c, s1, s2 }
}
