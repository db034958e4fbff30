//! Database keys (docs/design/encryption.md §2, §4): a missing, wrong or unreachable key is a
//! typed error that leaves the file's bytes as they were, and the data opens again once the right
//! key is back; `rekey` rotates the key and keeps everything.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use tandem_core::auth::{MemorySecretStore, SecretStore, SecretStoreError};
use tandem_core::{
    Client, ClientConfig, Encryption, Error, KeyProblem, Query, SyncOptions, WriteOp,
};
use tandem_testkit::TEST_SCHEMA as SCHEMA;

fn open(
    dir: &Path,
    store: Arc<dyn SecretStore>,
    encryption: Encryption,
) -> tandem_core::Result<Client> {
    Client::open(ClientConfig {
        data_dir: dir.to_path_buf(),
        schema_json: SCHEMA.to_string(),
        server: None,
        sync: SyncOptions::default(),
        secret_store: Some(store),
        resolver: None,
        attachment_cache_bytes: tandem_core::defaults::ATTACHMENT_CACHE_BYTES,
        encryption,
    })
}

fn write_some(client: &Client) {
    let ops = (0..50)
        .map(|n| WriteOp::Put {
            collection: "plans".into(),
            id: Some(format!("p{n}")),
            doc: serde_json::json!({"name": format!("secret plan {n}")}),
            space_id: None,
        })
        .collect();
    client.write(ops).unwrap();
}

fn key_name(dir: &Path, slot: &str) -> String {
    let id = std::fs::read_to_string(dir.join("client-id")).unwrap();
    format!("tandem.{}/{slot}/guest.db", id.trim())
}

fn hash(path: &Path) -> u64 {
    let mut hasher = DefaultHasher::new();
    std::fs::read(path).unwrap().hash(&mut hasher);
    hasher.finish()
}

/// The database, its WAL and shared memory: everything a failed open must leave alone.
fn files_hash(dir: &Path) -> Vec<(String, Option<u64>)> {
    ["guest.db", "guest.db-wal", "guest.db-shm"]
        .into_iter()
        .map(|name| {
            let path = dir.join(name);
            (name.to_string(), path.exists().then(|| hash(&path)))
        })
        .collect()
}

fn encrypted_with_pending(dir: &Path) -> Arc<MemorySecretStore> {
    let store = Arc::new(MemorySecretStore::new());
    let client = open(dir, store.clone(), Encryption::On).unwrap();
    write_some(&client);
    drop(client);
    let header = std::fs::read(dir.join("guest.db")).unwrap()[..16].to_vec();
    assert_ne!(header, b"SQLite format 3\0", "the database is encrypted");
    store
}

struct Locked;
impl SecretStore for Locked {
    fn get(&self, _: &str) -> Result<Option<String>, SecretStoreError> {
        Err(SecretStoreError::Unavailable("before first unlock".into()))
    }
    fn set(&self, _: &str, _: &str) -> Result<(), SecretStoreError> {
        Err(SecretStoreError::Unavailable("before first unlock".into()))
    }
    fn delete(&self, _: &str) -> Result<(), SecretStoreError> {
        Err(SecretStoreError::Unavailable("before first unlock".into()))
    }
}

#[test]
fn missing_wrong_and_unreachable_keys_are_typed_errors_that_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = encrypted_with_pending(dir.path());
    let key = store.get(&key_name(dir.path(), "db-key")).unwrap().unwrap();
    let before = files_hash(dir.path());

    let missing = open(
        dir.path(),
        Arc::new(MemorySecretStore::new()),
        Encryption::On,
    )
    .err()
    .expect("no key, no open");
    assert!(
        matches!(missing, Error::Key(KeyProblem::Missing)),
        "{missing:?}"
    );
    assert_eq!(files_hash(dir.path()), before);
    // Turning encryption off without the key must not touch the file either.
    let off = open(
        dir.path(),
        Arc::new(MemorySecretStore::new()),
        Encryption::Off,
    );
    assert!(off.is_err());
    assert_eq!(files_hash(dir.path()), before);

    let wrong = Arc::new(MemorySecretStore::new());
    wrong
        .set(
            &key_name(dir.path(), "db-key"),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .unwrap();
    let e = open(dir.path(), wrong, Encryption::On)
        .err()
        .expect("a wrong key does not open");
    assert!(matches!(e, Error::Key(KeyProblem::Wrong)), "{e:?}");
    assert!(!e.to_string().contains(&key), "no key byte in a message");
    assert_eq!(files_hash(dir.path()), before);

    let e = open(dir.path(), Arc::new(Locked), Encryption::On)
        .err()
        .expect("a locked store does not open");
    assert!(matches!(e, Error::Key(KeyProblem::Unavailable)), "{e:?}");
    assert_eq!(files_hash(dir.path()), before);

    // The right key is back: everything is there, pending changes included.
    let client = open(dir.path(), store, Encryption::On).unwrap();
    assert_eq!(client.query("plans", &Query::default()).unwrap().len(), 50);
    assert_eq!(client.pending_count().unwrap(), 50);
}

#[test]
fn rekey_rotates_the_key_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = encrypted_with_pending(dir.path());
    let client = open(dir.path(), store.clone(), Encryption::On).unwrap();
    let old = store.get(&key_name(dir.path(), "db-key")).unwrap().unwrap();
    let rows = client.query("plans", &Query::default()).unwrap();
    tandem_core::runtime::runtime()
        .block_on(client.rekey())
        .unwrap();
    let new = store.get(&key_name(dir.path(), "db-key")).unwrap().unwrap();
    assert_ne!(old, new);
    assert_eq!(
        store.get(&key_name(dir.path(), "db-key-next")).unwrap(),
        None
    );
    assert_eq!(client.query("plans", &Query::default()).unwrap(), rows);
    assert_eq!(client.pending_count().unwrap(), 50);
    assert_eq!(client.encryption_status().unwrap(), Encryption::On);
    write_some(&client);
    drop(client);
    // Opens with the new key only.
    let stale = Arc::new(MemorySecretStore::new());
    stale.set(&key_name(dir.path(), "db-key"), &old).unwrap();
    assert!(open(dir.path(), stale, Encryption::On).is_err());
    let client = open(dir.path(), store, Encryption::On).unwrap();
    assert_eq!(client.query("plans", &Query::default()).unwrap().len(), 50);
}

#[test]
fn turning_encryption_off_decrypts_and_drops_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = encrypted_with_pending(dir.path());
    let client = open(dir.path(), store.clone(), Encryption::Off).unwrap();
    assert_eq!(client.encryption_status().unwrap(), Encryption::Off);
    assert_eq!(client.pending_count().unwrap(), 50);
    drop(client);
    let header = std::fs::read(dir.path().join("guest.db")).unwrap()[..16].to_vec();
    assert_eq!(header, b"SQLite format 3\0");
    assert_eq!(store.get(&key_name(dir.path(), "db-key")).unwrap(), None);
}
