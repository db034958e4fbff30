//! Attachment uploads end to end through `tandem_core::Client` against the real `tandem-server`
//! binary: attach then sync puts the blob on the server (readable by its owner); a second device
//! of the same account with the same file sends no bytes; an upload cut mid-chunk by the network
//! resumes from the server's offset; a file over the server's limit becomes a dead letter while
//! the other changes still go; bytes that do not hash to the reference are refused twice and
//! dead-lettered; guest attachments move to the first account and a wiping sign-out deletes them.
//!
//! Run: `cargo test -p tandem-core --test attachments_upload`.

use std::sync::Arc;

use serde_json::{json, Value};
use tandem_core::auth::MemorySecretStore;
use tandem_core::http::HttpConfig;
use tandem_core::{
    runtime, Client, ClientConfig, Error, Query, RecordState, SyncOptions, SyncReport, WriteOp,
};
use tandem_testkit::blobs::sha256_hex;
use tandem_testkit::proxy::{Fault, Proxy};
use tandem_testkit::server::{email, TestServer};
use tempfile::TempDir;

const PASSWORD: &str = "correct horse battery";
const SCHEMA: &str = r#"{"version": 1, "collections": {
  "albums": {"fields": {"title": {"type": "string"}, "cover": {"type": "attachment"}}},
  "notes": {"fields": {"text": {"type": "string"}}}
}}"#;
/// The reference server's `chunkBytes`.
const CHUNK: usize = 8 * 1024 * 1024;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime::runtime().block_on(future)
}

struct Device {
    client: Client,
    email: String,
    dir: TempDir,
}

fn open(url: &str) -> (Client, TempDir) {
    let dir = TempDir::new().unwrap();
    let client = Client::open(ClientConfig {
        data_dir: dir.path().to_path_buf(),
        schema_json: SCHEMA.to_string(),
        server: Some(HttpConfig::new(url)),
        sync: SyncOptions::default(),
        secret_store: Some(Arc::new(MemorySecretStore::new())),
        resolver: None,
        attachment_cache_bytes: tandem_core::defaults::ATTACHMENT_CACHE_BYTES,
        encryption: tandem_core::Encryption::Off,
    })
    .unwrap();
    (client, dir)
}

fn device(url: &str) -> Device {
    let (client, dir) = open(url);
    let address = email();
    block_on(client.sign_up(&address, PASSWORD)).unwrap();
    Device {
        client,
        email: address,
        dir,
    }
}

/// Another device of `of`'s account.
fn same_account(url: &str, of: &Device) -> Device {
    let (client, dir) = open(url);
    block_on(client.sign_in(&of.email, PASSWORD)).unwrap();
    Device {
        client,
        email: of.email.clone(),
        dir,
    }
}

/// Waits (up to 5 s) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 * 31 + seed as u64) as u8)
        .collect()
}

impl Device {
    fn sync(&self) -> SyncReport {
        block_on(self.client.sync_now()).unwrap()
    }

    fn put(&self, collection: &str, id: &str, doc: Value) {
        self.client
            .write(vec![WriteOp::Put {
                collection: collection.into(),
                id: Some(id.into()),
                doc,
                space_id: None,
            }])
            .unwrap();
    }

    /// Writes `bytes` to a file of the test's and attaches it to `albums/id.cover`.
    fn attach(&self, id: &str, bytes: &[u8]) -> Value {
        let path = self.dir.path().join(format!("{id}.jpg"));
        std::fs::write(&path, bytes).unwrap();
        let row = block_on(
            self.client
                .attach_file("albums", id, "cover", &path, None, None),
        )
        .unwrap();
        // The app's file is the app's: it may go at once.
        std::fs::remove_file(&path).unwrap();
        let doc: Value = serde_json::from_str(row.doc.as_deref().unwrap()).unwrap();
        doc["cover"].clone()
    }
}

/// The blob as the server gives it to `email`'s account (status, bytes).
fn download(server_url: &str, email: &str, hash: &str) -> (u16, Vec<u8>) {
    block_on(async {
        let client = tandem_testkit::protocol::Client::new(server_url);
        let session = client.sign_in(email, PASSWORD).await;
        let token = session.assert_ok()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let response = client
            .http
            .get(client.url(&format!("/sync/v1/blobs/{hash}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn attach_then_sync_uploads_the_blob_and_a_second_device_sends_nothing() {
    let server = TestServer::builder().schema(SCHEMA).start();
    let a = device(server.url());
    a.put("albums", "summit", json!({"title": "Summit"}));
    let photo = bytes_of(300_000, 1);
    let reference = a.attach("summit", &photo);
    let hash = sha256_hex(&photo);
    assert_eq!(
        reference,
        json!({"hash": hash, "size": 300_000, "contentType": "image/jpeg", "name": "summit.jpg"})
    );
    // The counts follow local writes (refreshed moments after, like `pending`).
    eventually("one attachment pending", || {
        let status = a.client.sync_status().unwrap();
        (status.attachments_pending, status.attachment_bytes_pending) == (1, 300_000)
    });
    let report = a.sync();
    assert_eq!(report.attachments_uploaded, 1);
    assert_eq!(report.attachment_bytes_sent, 300_000);
    assert_eq!(report.applied, 1, "{report:?}");
    assert_eq!(
        download(server.url(), &a.email, &hash),
        (200, photo.clone())
    );
    let status = a.client.sync_status().unwrap();
    assert_eq!(
        (status.attachments_pending, status.attachment_bytes_pending),
        (0, 0)
    );
    assert_eq!(status.attachment_bytes_transferred, 0, "only during a run");
    assert_eq!(
        a.client.sync_metrics().unwrap().attachment_bytes_sent,
        300_000
    );

    // A second device of the same account attaches the same file to another record: the server
    // holds it for this user already, so no byte is sent.
    let b = same_account(server.url(), &a);
    b.sync();
    b.put("albums", "copy", json!({"title": "Copy"}));
    b.attach("copy", &photo);
    let report = b.sync();
    assert_eq!(report.attachments_uploaded, 1);
    assert_eq!(report.attachment_bytes_sent, 0);
    assert_eq!(report.applied, 1);
    a.sync();
    let copy = a.client.get("albums", "copy").unwrap().unwrap();
    assert_eq!(copy.state, RecordState::Synced);
}

#[test]
fn attach_refuses_a_missing_record_and_a_field_of_another_type() {
    let (client, dir) = open("http://127.0.0.1:9");
    let path = dir.path().join("x.bin");
    std::fs::write(&path, b"x").unwrap();
    let missing = block_on(client.attach_file("albums", "nope", "cover", &path, None, None));
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
    client
        .write(vec![WriteOp::Put {
            collection: "albums".into(),
            id: Some("a".into()),
            doc: json!({"title": "x"}),
            space_id: None,
        }])
        .unwrap();
    let wrong = block_on(client.attach_file("albums", "a", "title", &path, None, None));
    assert!(matches!(wrong, Err(Error::Validation(_))), "{wrong:?}");
    let row = block_on(client.attach_bytes(
        "albums",
        "a",
        "cover",
        b"hello".to_vec(),
        "text/plain",
        None,
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(row.doc.as_deref().unwrap()).unwrap();
    assert_eq!(doc["cover"]["size"], 5);
    assert_eq!(doc["cover"]["contentType"], "text/plain");
    assert!(doc["cover"].get("name").is_none());
    let outbox = client.outbox().unwrap();
    assert_eq!(outbox.len(), 1, "the put and the attach coalesce");
}

#[test]
fn an_upload_cut_mid_chunk_resumes_from_the_servers_offset() {
    let server = TestServer::builder().schema(SCHEMA).start();
    let proxy = Proxy::start(server.url());
    let a = device(proxy.url());
    a.put("albums", "video", json!({"title": "Video"}));
    // Two chunks: 8 MiB and 4 MiB.
    let size = CHUNK + CHUNK / 2;
    let video = bytes_of(size, 7);
    let hash = sha256_hex(&video);
    a.attach("video", &video);
    let route = format!("/sync/v1/blobs/uploads/{hash}");
    // The first chunk goes through; the second is cut after 1 MiB of its body.
    proxy.fail_next(&route, Fault::Pass);
    proxy.fail_next(&route, Fault::CutRequestBody(1024 * 1024));
    let failed = block_on(a.client.sync_now());
    assert!(failed.is_err(), "the cut fails the run: {failed:?}");
    assert_eq!(proxy.fault_counts().get("cut_request_body"), Some(&1));
    assert_eq!(
        a.client.get("albums", "video").unwrap().unwrap().state,
        RecordState::Pending,
        "not pushed before its upload completes"
    );
    // The next run reopens the upload and sends only what the server does not hold.
    let report = a.sync();
    assert_eq!(report.attachments_uploaded, 1);
    assert_eq!(report.attachment_bytes_sent, (size - CHUNK) as u64);
    assert_eq!(report.applied, 1);
    assert_eq!(download(server.url(), &a.email, &hash), (200, video));
}

#[test]
fn a_file_over_the_servers_limit_becomes_a_dead_letter_and_the_rest_goes() {
    let server = TestServer::builder()
        .schema(SCHEMA)
        .args(&["--attachment-max-bytes", "1000"])
        .start();
    let a = device(server.url());
    a.put("albums", "big", json!({"title": "Big"}));
    a.sync();
    a.attach("big", &bytes_of(5000, 3));
    a.put("notes", "n1", json!({"text": "goes anyway"}));
    let report = a.sync();
    assert_eq!(report.attachments_uploaded, 0);
    assert_eq!(report.rejected, 1);
    let rejected = a.client.rejected().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].entity_id, "big");
    assert_eq!(
        rejected[0].last_error.as_deref(),
        Some("attachment_too_large")
    );
    assert_eq!(
        a.client.get("albums", "big").unwrap().unwrap().state,
        RecordState::Rejected
    );
    assert_eq!(
        a.client.get("notes", "n1").unwrap().unwrap().state,
        RecordState::Synced
    );
    let status = a.client.sync_status().unwrap();
    assert_eq!(status.attachments_pending, 0);
    assert_eq!(status.rejected, 1);
    // Another device of the account sees the note, and the album without the reference.
    let b = same_account(server.url(), &a);
    b.sync();
    assert_eq!(b.client.count("notes", &Query::default()).unwrap(), 1);
    let album = b.client.get("albums", "big").unwrap().unwrap();
    let doc: Value = serde_json::from_str(album.doc.as_deref().unwrap()).unwrap();
    assert!(doc.get("cover").is_none());
}

#[test]
fn guest_attachments_move_to_the_first_account_and_a_wiping_sign_out_deletes_them() {
    let server = TestServer::builder().schema(SCHEMA).start();
    let (client, dir) = open(server.url());
    client
        .write(vec![WriteOp::Put {
            collection: "albums".into(),
            id: Some("offline".into()),
            doc: json!({"title": "Taken offline"}),
            space_id: None,
        }])
        .unwrap();
    let photo = bytes_of(70_000, 9);
    let hash = sha256_hex(&photo);
    block_on(client.attach_bytes(
        "albums",
        "offline",
        "cover",
        photo.clone(),
        "image/png",
        Some("offline.png"),
    ))
    .unwrap();
    let guest_file = dir.path().join("guest.attachments").join(&hash);
    assert_eq!(std::fs::read(&guest_file).unwrap(), photo);
    // The first sign-in adopts the guest data: the row and the file move with it.
    let address = email();
    let user = block_on(client.sign_up(&address, PASSWORD)).unwrap();
    let user_dir = dir
        .path()
        .join("users")
        .join(format!("{}.attachments", user.id));
    assert!(!guest_file.exists());
    assert_eq!(std::fs::read(user_dir.join(&hash)).unwrap(), photo);
    let report = block_on(client.sync_now()).unwrap();
    assert_eq!(
        (report.attachments_uploaded, report.attachment_bytes_sent),
        (1, 70_000)
    );
    assert_eq!(report.applied, 1);
    assert_eq!(download(server.url(), &address, &hash), (200, photo));
    // Signing out with wipe deletes the account's files with its database.
    block_on(client.sign_out(true)).unwrap();
    assert!(!user_dir.exists());
}

#[test]
fn bytes_that_do_not_hash_to_the_reference_are_refused_twice_then_dead_lettered() {
    let server = TestServer::builder().schema(SCHEMA).start();
    let a = device(server.url());
    a.put("albums", "rot", json!({"title": "Bit rot"}));
    let photo = bytes_of(20_000, 5);
    let hash = sha256_hex(&photo);
    a.attach("rot", &photo);
    // The stored copy changes under the engine (same length, other bytes).
    let users = a.dir.path().join("users");
    let stored = std::fs::read_dir(&users)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "attachments"))
        .unwrap()
        .join(&hash);
    std::fs::write(&stored, bytes_of(20_000, 6)).unwrap();
    let report = a.sync();
    assert_eq!(report.attachments_uploaded, 0);
    assert_eq!(
        report.attachment_bytes_sent, 40_000,
        "sent twice, refused twice"
    );
    let rejected = a.client.rejected().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].last_error.as_deref(), Some("hash_mismatch"));
    assert_eq!(download(server.url(), &a.email, &hash).0, 404);
}

#[test]
fn an_upload_over_the_users_quota_becomes_a_dead_letter() {
    let server = TestServer::builder()
        .schema(SCHEMA)
        .args(&["--attachment-quota-bytes", "10000"])
        .start();
    let a = device(server.url());
    a.put("albums", "first", json!({"title": "Fits"}));
    a.put("albums", "second", json!({"title": "Does not"}));
    a.attach("first", &bytes_of(8000, 1));
    let report = a.sync();
    assert_eq!(report.attachments_uploaded, 1);
    a.attach("second", &bytes_of(8000, 2));
    let report = a.sync();
    assert_eq!((report.attachments_uploaded, report.rejected), (0, 1));
    let rejected = a.client.rejected().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].entity_id, "second");
    assert_eq!(rejected[0].last_error.as_deref(), Some("quota_exceeded"));
}

#[test]
fn an_empty_file_uploads_in_one_empty_chunk() {
    let server = TestServer::builder().schema(SCHEMA).start();
    let a = device(server.url());
    a.put("albums", "empty", json!({"title": "Nothing"}));
    a.attach("empty", b"");
    let report = a.sync();
    assert_eq!(
        (report.attachments_uploaded, report.attachment_bytes_sent),
        (1, 0)
    );
    assert_eq!(report.applied, 1);
    let hash = sha256_hex(b"");
    assert_eq!(download(server.url(), &a.email, &hash), (200, Vec::new()));
}
