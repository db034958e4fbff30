//! The conversion of a database between plaintext and encrypted (docs/design/encryption.md §4),
//! killed at any point: a child process (this test binary run again, its body an ignored test)
//! opens a 100,000-record database with the other encryption setting, which converts it (or
//! opens it encrypted and rotates its key: `rekey`); the parent kills it with SIGKILL at moments
//! spread over the operation's measured duration, and at each named crash point
//! (`TANDEM_CRASH_POINT=convert_*`). After every kill an open succeeds and finds every record,
//! every pending outbox entry and every attachment's bytes (count and checksum), the attachment
//! cache being converted with the database.
//!
//! Plaintext to encrypted and a rotation run by default; encrypted to plaintext too with
//! `TANDEM_KILL_BOTH_WAYS` set (the same code path as the first, in the other direction).

#![cfg(unix)]

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tandem_core::auth::{SecretStore, SecretStoreError};
use tandem_core::runtime::runtime;
use tandem_core::{Client, ClientConfig, Encryption, Query, SyncOptions, WriteOp};
use tandem_protocol::AttachmentRef;
use tandem_testkit::TEST_SCHEMA as SCHEMA;

const CHILD_DIR: &str = "TANDEM_KILL_CHILD_DIR";
const CHILD_MODE: &str = "TANDEM_KILL_CHILD_MODE";
const RECORDS: usize = 100_000;
/// Timed kills of the conversion the issue names (plaintext to encrypted), and of the others.
const TIMED_KILLS: u32 = 25;
const TIMED_KILLS_OTHERS: u32 = 10;
/// Attachments in the database (not uploaded: local files that must survive with the records).
const ATTACHMENTS: usize = 4;
const ATTACHMENT_BYTES: usize = 300_000;
const CRASH_POINTS: [&str; 6] = [
    "convert_next_key_written",
    "convert_copying",
    "convert_copied",
    "convert_renamed",
    "convert_cache_converted",
    "convert_promoted",
];

/// A secret store in one JSON file, replaced atomically (write, fsync, rename, fsync the
/// directory): a kill never leaves it half-written. The platform keyring would do as well but
/// is not reachable in every test sandbox.
struct FileSecrets {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileSecrets {
    fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            lock: Mutex::new(()),
        })
    }

    fn read(&self) -> BTreeMap<String, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).expect("the secrets file is whole"),
            Err(_) => BTreeMap::new(),
        }
    }

    fn write(&self, values: &BTreeMap<String, String>) -> Result<(), SecretStoreError> {
        let fail = |e: std::io::Error| SecretStoreError::Failed(e.to_string());
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(fail)?;
        file.write_all(&serde_json::to_vec(values).unwrap())
            .map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)?;
        std::fs::File::open(self.path.parent().unwrap())
            .and_then(|d| d.sync_all())
            .map_err(fail)
    }
}

impl SecretStore for FileSecrets {
    fn get(&self, key: &str) -> Result<Option<String>, SecretStoreError> {
        let _held = self.lock.lock().unwrap();
        Ok(self.read().get(key).cloned())
    }

    fn set(&self, key: &str, value: &str) -> Result<(), SecretStoreError> {
        let _held = self.lock.lock().unwrap();
        let mut values = self.read();
        values.insert(key.to_string(), value.to_string());
        self.write(&values)
    }

    fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        let _held = self.lock.lock().unwrap();
        let mut values = self.read();
        values.remove(key);
        self.write(&values)
    }
}

/// A round's directory holds `data/` (the data directory) and `secrets.json`.
fn open(root: &Path, encryption: Encryption) -> tandem_core::Result<Client> {
    Client::open(ClientConfig {
        data_dir: root.join("data"),
        schema_json: SCHEMA.to_string(),
        server: None,
        sync: SyncOptions::default(),
        secret_store: Some(FileSecrets::new(root.join("secrets.json"))),
        resolver: None,
        attachment_cache_bytes: tandem_core::defaults::ATTACHMENT_CACHE_BYTES,
        encryption,
    })
}

/// The setting a round's child opens with: `on`, `off`, or `rekey` (on, then a rotation).
fn mode(name: &str) -> Encryption {
    match name {
        "on" | "rekey" => Encryption::On,
        _ => Encryption::Off,
    }
}

/// The child's body: one open, which converts. Run only by the kill test.
#[test]
#[ignore = "run as the child process of conversions_killed_at_any_point_lose_nothing"]
fn convert_child() {
    let root = PathBuf::from(std::env::var(CHILD_DIR).expect("started by the kill test"));
    let encryption = mode(&std::env::var(CHILD_MODE).unwrap());
    let client = open(&root, encryption).expect("the child opens");
    if std::env::var(CHILD_MODE).unwrap() == "rekey" {
        runtime()
            .block_on(client.rekey())
            .expect("the child rotates the key");
    }
    drop(client);
    println!("converted");
}

/// Count and checksum of the records and of the pending outbox.
#[derive(Debug, PartialEq, Eq)]
struct Contents {
    records: usize,
    record_sum: u64,
    pending: usize,
    pending_sum: u64,
    attachments: usize,
    attachment_sum: u64,
}

fn contents(client: &Client) -> Contents {
    let rows = client.query("plans", &Query::default()).unwrap();
    let mut hasher = DefaultHasher::new();
    for row in &rows {
        (&row.id, &row.doc).hash(&mut hasher);
    }
    let record_sum = hasher.finish();
    let outbox = client.outbox().unwrap();
    let mut hasher = DefaultHasher::new();
    for entry in &outbox {
        (&entry.op_id, &entry.entity_id, &entry.doc).hash(&mut hasher);
    }
    let pending_sum = hasher.finish();
    let mut hasher = DefaultHasher::new();
    let mut attachments = 0;
    for row in client.query("photos", &Query::default()).unwrap() {
        let doc: serde_json::Value = serde_json::from_str(row.doc.as_deref().unwrap()).unwrap();
        let reference: AttachmentRef = serde_json::from_value(doc["image"].clone()).unwrap();
        let bytes = runtime()
            .block_on(client.read_attachment(&reference, 0, reference.size))
            .unwrap_or_else(|e| panic!("attachment {} unreadable: {e}", row.id));
        bytes.hash(&mut hasher);
        attachments += 1;
    }
    Contents {
        records: rows.len(),
        record_sum,
        pending: outbox.len(),
        pending_sum,
        attachments,
        attachment_sum: hasher.finish(),
    }
}

/// Writes the 100,000 records (never synced: each has its pending outbox entry).
fn build_template(root: &Path, encryption: Encryption) -> Contents {
    let client = open(root, encryption).unwrap();
    for batch in 0..RECORDS / 2_000 {
        let ops = (0..2_000)
            .map(|i| {
                let n = batch * 2_000 + i;
                WriteOp::Put {
                    collection: "plans".into(),
                    id: Some(format!("plan-{n:06}")),
                    doc: serde_json::json!({"name": format!("plan {n}"), "rating": n, "notes": "n".repeat(n % 97)}),
                    space_id: None,
                }
            })
            .collect();
        client.write(ops).unwrap();
    }
    for i in 0..ATTACHMENTS {
        let id = format!("photo-{i}");
        client
            .write(vec![WriteOp::Put {
                collection: "photos".into(),
                id: Some(id.clone()),
                doc: serde_json::json!({"caption": format!("photo {i}")}),
                space_id: None,
            }])
            .unwrap();
        let bytes: Vec<u8> = (0..ATTACHMENT_BYTES)
            .map(|b| (b * (i + 7) % 251) as u8)
            .collect();
        runtime()
            .block_on(client.attach_bytes("photos", &id, "image", bytes, "image/png", None))
            .unwrap();
    }
    let expected = contents(&client);
    assert_eq!(expected.records, RECORDS);
    assert_eq!(expected.pending, RECORDS + ATTACHMENTS); // an attach folds into its put
    assert_eq!(expected.attachments, ATTACHMENTS);
    expected
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn child(root: &Path, to: &str, crash_point: Option<&str>) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "convert_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, root)
        .env(CHILD_MODE, to)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match crash_point {
        Some(point) => command.env("TANDEM_CRASH_POINT", point),
        None => command.env_remove("TANDEM_CRASH_POINT"),
    };
    command.spawn().unwrap()
}

/// Kills conversions from `from` to `to` (`rekey`: a rotation) everywhere, `timed_kills` times
/// spread over its duration and at every crash point, and checks every round.
fn kill_everywhere(work: &Path, from: &str, to: &str, timed_kills: u32) {
    let template = work.join(format!("template-{from}-{to}"));
    std::fs::create_dir_all(&template).unwrap();
    let expected = build_template(&template, mode(from));
    let round = work.join("round");

    // The conversion's duration, measured whole (process start included).
    copy_dir(&template, &round);
    let started = Instant::now();
    let status = child(&round, to, None).wait().unwrap();
    let whole = started.elapsed();
    assert!(
        status.success(),
        "{from}->{to}: the unkilled child converts"
    );
    check(&round, to, &expected, &format!("{from}->{to} unkilled"));
    eprintln!("{from}->{to}: an open that converts takes {whole:?}");

    for k in 0..timed_kills {
        copy_dir(&template, &round);
        let mut process = child(&round, to, None);
        std::thread::sleep(whole * k / timed_kills);
        let _ = process.kill(); // SIGKILL (it may have finished already)
        process.wait().unwrap();
        check(
            &round,
            to,
            &expected,
            &format!("{from}->{to} kill {k}/{timed_kills}"),
        );
    }
    for point in CRASH_POINTS {
        copy_dir(&template, &round);
        let status = child(&round, to, Some(point)).wait().unwrap();
        assert!(
            !status.success(),
            "{from}->{to}: the crash point {point} is reached"
        );
        check(&round, to, &expected, &format!("{from}->{to} at {point}"));
    }
}

/// After a kill: opening with either setting succeeds and finds everything (the first open
/// with the setting the killed process had finishes or redoes the conversion).
fn check(root: &Path, to: &str, expected: &Contents, what: &str) {
    let client = open(root, mode(to)).unwrap_or_else(|e| panic!("{what}: the open fails: {e}"));
    assert_eq!(&contents(&client), expected, "{what}");
    drop(client);
    let db = root.join("data").join("guest.db");
    let header = std::fs::read(&db).unwrap()[..16].to_vec();
    let plain = header == b"SQLite format 3\0";
    if to == "off" {
        assert!(
            plain,
            "{what}: the database is plaintext after turning encryption off"
        );
    }
    assert!(
        !root.join("data").join("guest.db.converting").exists(),
        "{what}: no copy left behind"
    );
    // Reopening finds the same.
    let client = open(root, mode(to)).unwrap();
    assert_eq!(&contents(&client), expected, "{what}: reopened");
    drop(client);
}

#[test]
fn conversions_killed_at_any_point_lose_nothing() {
    let work = tempfile::tempdir().unwrap();
    kill_everywhere(work.path(), "off", "on", TIMED_KILLS);
    kill_everywhere(work.path(), "on", "rekey", TIMED_KILLS_OTHERS);
    if std::env::var("TANDEM_KILL_BOTH_WAYS").is_ok() {
        kill_everywhere(work.path(), "on", "off", TIMED_KILLS_OTHERS);
    }
}
