//! The store's files at rest (docs/design/encryption.md §6, at the store level): with a key,
//! neither a document's value nor its field name appears in the database, its WAL or its shared
//! memory file; without one, the same check finds them, so it can fail.

use std::path::{Path, PathBuf};

use super::cipher::{DatabaseKey, KeyProblem};
use super::Store;
use crate::error::Error;

const FIELD: &str = "zanzibarFieldName";
const VALUE: &str = "quetzalcoatl-distinctive-value-4711";

fn key(byte: u8) -> DatabaseKey {
    DatabaseKey::from_bytes([byte; DatabaseKey::LEN])
}

fn put(store: &Store, id: &str) {
    let doc = format!(r#"{{"{FIELD}":"{VALUE}"}}"#);
    store
        .write(|tx| {
            tx.execute(
                "INSERT INTO records (collection, id, doc, state, created_at, updated_at)
                 VALUES ('notes', ?1, ?2, 'pending', 0, 0)",
                rusqlite::params![id, doc],
            )?;
            Ok(())
        })
        .unwrap();
}

fn count(store: &Store) -> i64 {
    store
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM records WHERE doc LIKE ?1",
                [format!("%{VALUE}%")],
                |r| r.get(0),
            )?)
        })
        .unwrap()
}

fn files(db: &Path) -> Vec<PathBuf> {
    let name = db.file_name().unwrap().to_string_lossy().into_owned();
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| db.with_file_name(format!("{name}{suffix}")))
        .filter(|p| p.exists())
        .collect()
}

/// Which of the needles occur in which of the store's files.
fn found(db: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    for file in files(db) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [FIELD, VALUE] {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(format!(
                    "{needle} in {}",
                    file.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    hits
}

fn checkpoint(store: &Store) {
    let conn = super::lock(&store.writer);
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// Writes the document (into the WAL only), checks, checkpoints into the database, writes again
/// (so both the file and the WAL hold it) and checks again.
fn scenario(key: Option<&DatabaseKey>) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("at-rest.db");
    let store = Store::open(&db, key).unwrap();
    put(&store, "a");
    assert!(db.with_file_name("at-rest.db-wal").exists());
    let in_wal = found(&db);
    checkpoint(&store);
    put(&store, "b");
    let after_checkpoint = found(&db);
    assert_eq!(count(&store), 2);
    drop(store);
    let store = Store::open(&db, key).unwrap();
    assert_eq!(count(&store), 2, "the data reads back through the same key");
    (in_wal, after_checkpoint)
}

#[test]
fn a_keyed_store_keeps_no_document_bytes_in_its_files() {
    let (in_wal, after_checkpoint) = scenario(Some(&key(3)));
    assert!(in_wal.is_empty(), "{in_wal:?}");
    assert!(after_checkpoint.is_empty(), "{after_checkpoint:?}");
}

#[test]
fn an_unkeyed_store_shows_them_so_the_check_can_fail() {
    let (in_wal, after_checkpoint) = scenario(None);
    assert!(
        in_wal
            .iter()
            .any(|h| h == &format!("{VALUE} in at-rest.db-wal")),
        "{in_wal:?}"
    );
    assert!(
        in_wal
            .iter()
            .any(|h| h == &format!("{FIELD} in at-rest.db-wal")),
        "{in_wal:?}"
    );
    assert!(
        after_checkpoint
            .iter()
            .any(|h| h == &format!("{VALUE} in at-rest.db")),
        "{after_checkpoint:?}"
    );
}

#[test]
fn a_missing_or_wrong_key_is_typed_and_leaves_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyed.db");
    let store = Store::open(&db, Some(&key(3))).unwrap();
    put(&store, "a");
    checkpoint(&store);
    drop(store);
    let before: Vec<Vec<u8>> = files(&db)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();

    let missing = Store::open(&db, None).err().expect("no key");
    assert!(
        matches!(missing, Error::Key(KeyProblem::Missing)),
        "{missing:?}"
    );
    let wrong = Store::open(&db, Some(&key(4))).err().expect("wrong key");
    assert!(matches!(wrong, Error::Key(KeyProblem::Wrong)), "{wrong:?}");
    let message = wrong.to_string();
    assert!(message.contains("does not open"), "{message}");

    let after: Vec<Vec<u8>> = files(&db)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(before == after, "the files are unchanged");
    let store = Store::open(&db, Some(&key(3))).unwrap();
    assert_eq!(
        count(&store),
        1,
        "the pending change is still there for the right key"
    );
}

#[test]
fn write_attached_keys_the_attached_file() {
    let dir = tempfile::tempdir().unwrap();
    let guest_path = dir.path().join("guest.db");
    let guest = Store::open(&guest_path, Some(&key(5))).unwrap();
    put(&guest, "g");
    drop(guest);
    let main = Store::open(&dir.path().join("main.db"), Some(&key(6))).unwrap();
    let wrong = main
        .write_attached(&guest_path, Some(&key(7)), "guest", |_| Ok(()))
        .expect_err("wrong key");
    assert!(matches!(wrong, Error::Key(KeyProblem::Wrong)), "{wrong:?}");
    let moved = main
        .write_attached(&guest_path, Some(&key(5)), "guest", |tx| {
            Ok(tx.execute("INSERT INTO main.records SELECT * FROM guest.records", [])?)
        })
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(count(&main), 1);
}
