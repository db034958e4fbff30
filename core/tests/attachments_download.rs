//! Attachment downloads end to end through `tandem_core::Client` against the real
//! `tandem-server` binary (docs/design/attachments.md §5): a file uploaded by one device opens on
//! another (downloaded, verified, observed Remote → Downloading → Uploaded), a download resumes
//! from its `.part` (only the rest crosses the wire), a corrupted prefix is refused and the next
//! call starts clean, a cancelled download keeps its `.part`, the cache honours its limit and its
//! pins, a synced delete removes the file, and eager collections prefetch after a pull.
//!
//! Uploads go over raw HTTP to the server's routes (`tandem_testkit`'s protocol client), so these
//! tests exercise the download side alone. Every device talks through a small local proxy that
//! can slow the server's answers down and counts the bytes it forwards.
//!
//! Run: `cargo test -p tandem-core --test attachments_download`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tandem_core::auth::MemorySecretStore;
use tandem_core::http::HttpConfig;
use tandem_core::{
    runtime, AttachmentErrorKind, AttachmentRef, AttachmentState, Client, ClientConfig, Error,
    SyncOptions, WriteOp,
};
use tandem_testkit::server::TestServer;
use tandem_testkit::TEST_SCHEMA;
use tempfile::TempDir;

const PASSWORD: &str = "password123";

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime::runtime().block_on(future)
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A TCP proxy in front of the server: copies both ways in 16 KiB pieces with `delay_ms` before
/// each, counting the bytes it sends to the client.
struct SlowProxy {
    url: String,
    down: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
}

impl SlowProxy {
    fn start(upstream: &str) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let (down, delay_ms) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (d, l) = (Arc::clone(&down), Arc::clone(&delay_ms));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = Arc::clone(&l);
                std::thread::spawn(move || {
                    let mut buffer = vec![0; 16 * 1024];
                    loop {
                        let n = match c_read.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let delay = up.load(Ordering::Relaxed);
                        if delay > 0 {
                            std::thread::sleep(Duration::from_millis(delay));
                        }
                        if s_write.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let (d, l) = (Arc::clone(&d), Arc::clone(&l));
                std::thread::spawn(move || {
                    let mut buffer = vec![0; 16 * 1024];
                    loop {
                        let n = match s_read.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let delay = l.load(Ordering::Relaxed);
                        if delay > 0 {
                            std::thread::sleep(Duration::from_millis(delay));
                        }
                        if c_write.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                        d.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowProxy {
            url,
            down,
            delay_ms,
        }
    }

    fn slow(&self, delay_ms: u64) {
        self.delay_ms.store(delay_ms, Ordering::Relaxed);
    }
}

struct Account {
    email: String,
    token: String,
}

fn account(server: &TestServer) -> Account {
    let user = block_on(server.client().user());
    Account {
        email: user.email,
        token: user.token,
    }
}

struct Device {
    client: Client,
    dir: TempDir,
}

fn device(url: &str, who: &Account, cache_bytes: u64) -> Device {
    let dir = TempDir::new().unwrap();
    let client = Client::open(ClientConfig {
        data_dir: dir.path().to_path_buf(),
        schema_json: TEST_SCHEMA.to_string(),
        server: Some(HttpConfig::new(url)),
        sync: SyncOptions::default(),
        secret_store: Some(Arc::new(MemorySecretStore::new())),
        resolver: None,
        attachment_cache_bytes: cache_bytes,
        encryption: tandem_core::Encryption::Off,
    })
    .unwrap();
    block_on(client.sign_in(&who.email, PASSWORD)).unwrap();
    Device { client, dir }
}

impl Device {
    fn sync(&self) -> tandem_core::SyncReport {
        block_on(self.client.sync_now()).unwrap()
    }

    /// The account's attachment directory.
    fn files(&self) -> PathBuf {
        let user = self.client.current_user().unwrap();
        self.dir
            .path()
            .canonicalize()
            .unwrap()
            .join("users")
            .join(format!("{}.attachments", user.id))
    }

    fn part(&self, hash: &str) -> PathBuf {
        self.files().join(format!("{hash}.part"))
    }

    fn state(&self, hash: &str) -> AttachmentState {
        self.client.attachment_state(hash).unwrap()
    }

    fn received(&self) -> u64 {
        self.client
            .sync_metrics()
            .unwrap()
            .attachment_bytes_received
    }

    fn fetch(&self, reference: &AttachmentRef) -> Result<PathBuf, Error> {
        block_on(self.client.attachment(reference))
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
}

/// `len` bytes that differ per `seed`.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Uploads `data` as `who` over raw HTTP; returns its reference.
fn upload(server: &TestServer, who: &Account, data: &[u8], name: &str) -> AttachmentRef {
    let reply = block_on(
        server
            .client()
            .upload(&who.token, data, "application/octet-stream"),
    );
    assert_eq!(reply.body["complete"], true, "upload: {:?}", reply.body);
    AttachmentRef {
        hash: tandem_testkit::blobs::sha256_hex(data),
        size: data.len() as u64,
        content_type: "application/octet-stream".into(),
        name: Some(name.into()),
    }
}

fn file_doc(reference: &AttachmentRef) -> Value {
    json!({"blob": reference.to_value(), "title": "t"})
}

#[test]
fn a_file_opens_on_another_device_resumes_and_refuses_corruption() {
    let server = TestServer::start();
    let proxy = SlowProxy::start(server.url());
    let who = account(&server);
    let a = device(&proxy.url, &who, 500_000_000);
    let data = bytes(1_000_000, 1);
    let reference = upload(&server, &who, &data, "one.bin");
    a.put("attached_files", "f1", file_doc(&reference));
    a.sync();

    let b = device(&proxy.url, &who, 500_000_000);
    b.sync();
    assert_eq!(b.state(&reference.hash), AttachmentState::Remote);
    let seen: Arc<Mutex<Vec<AttachmentState>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let _watch = b
        .client
        .observe_attachment(
            &reference.hash,
            Box::new(move |state| sink.lock().unwrap().push(state)),
        )
        .unwrap();
    eventually("the current state first", || {
        !seen.lock().unwrap().is_empty()
    });

    // Slowed down (16 KiB per 5 ms), the observer sees the progress.
    proxy.slow(5);
    let path = b.fetch(&reference).unwrap();
    proxy.slow(0);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        data,
        "the path holds the bytes"
    );
    assert_eq!(path, b.files().join(&reference.hash));
    assert!(!b.part(&reference.hash).exists());
    assert_eq!(b.state(&reference.hash), AttachmentState::Uploaded);
    assert_eq!(b.received(), data.len() as u64);
    eventually("the observer hears the end", || {
        seen.lock().unwrap().last() == Some(&AttachmentState::Uploaded)
    });
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0], AttachmentState::Remote, "{seen:?}");
        assert!(
            seen.iter().any(|s| matches!(
                s,
                AttachmentState::Downloading { received, total: 1_000_000 } if *received < 1_000_000
            )),
            "{seen:?}"
        );
        // Progress only grows.
        let progress: Vec<u64> = seen
            .iter()
            .filter_map(|s| match s {
                AttachmentState::Downloading { received, .. } => Some(*received),
                _ => None,
            })
            .collect();
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    }
    // On disk: the same path, nothing downloaded again.
    assert_eq!(b.fetch(&reference).unwrap(), path);
    assert_eq!(b.received(), data.len() as u64);

    // Resume: a device holding the first 300 000 bytes in its `.part` gets only the rest.
    let c = device(&proxy.url, &who, 500_000_000);
    c.sync();
    std::fs::create_dir_all(c.files()).unwrap();
    std::fs::write(c.part(&reference.hash), &data[..300_000]).unwrap();
    let before = proxy.down.load(Ordering::Relaxed);
    let path = c.fetch(&reference).unwrap();
    let over_wire = proxy.down.load(Ordering::Relaxed) - before;
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(c.received(), 700_000, "only the rest is requested");
    assert!(
        (700_000..700_000 + 4096).contains(&over_wire),
        "the wire carried the rest and headers: {over_wire}"
    );

    // A corrupted prefix: refused, the `.part` deleted, and the next call starts clean.
    let d = device(&proxy.url, &who, 500_000_000);
    d.sync();
    std::fs::create_dir_all(d.files()).unwrap();
    std::fs::write(d.part(&reference.hash), bytes(300_000, 99)).unwrap();
    match d.fetch(&reference) {
        Err(Error::Attachment {
            kind: AttachmentErrorKind::Corrupt,
            ..
        }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(!d.part(&reference.hash).exists());
    assert!(!d.files().join(&reference.hash).exists());
    assert_eq!(d.state(&reference.hash), AttachmentState::Remote);
    let path = d.fetch(&reference).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(d.received(), 700_000 + 1_000_000);

    // A blob nobody uploaded is NotFound.
    let missing = AttachmentRef {
        hash: tandem_testkit::blobs::sha256_hex(b"never uploaded"),
        size: 14,
        content_type: "text/plain".into(),
        name: None,
    };
    match d.fetch(&missing) {
        Err(Error::Attachment {
            kind: AttachmentErrorKind::NotFound,
            ..
        }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn a_cancelled_download_keeps_its_part_for_the_next_call() {
    let server = TestServer::start();
    let proxy = SlowProxy::start(server.url());
    let who = account(&server);
    let a = device(&proxy.url, &who, 500_000_000);
    let data = bytes(2_000_000, 2);
    let reference = upload(&server, &who, &data, "two.bin");
    a.put("attached_files", "f1", file_doc(&reference));
    a.sync();

    let b = device(&proxy.url, &who, 500_000_000);
    b.sync();
    proxy.slow(5);
    let part = b.part(&reference.hash);
    block_on(async {
        let fetch = b.client.attachment(&reference);
        tokio::pin!(fetch);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            tokio::select! {
                done = &mut fetch => panic!("the download finished before it was cancelled: {done:?}"),
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            let len = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            if len > 400_000 {
                break; // dropping `fetch` cancels it
            }
            assert!(Instant::now() < deadline, "the download never progressed");
        }
    });
    proxy.slow(0);
    std::thread::sleep(Duration::from_millis(200));
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!((400_000..2_000_000).contains(&kept), "{kept}");
    assert_eq!(b.state(&reference.hash), AttachmentState::Remote);
    // Two callers at once: one download (the second waits and finds the file), from the part.
    let before = b.received();
    let (first, second) = block_on(async {
        tokio::join!(
            b.client.attachment(&reference),
            b.client.attachment(&reference)
        )
    });
    let path = first.unwrap();
    assert_eq!(second.unwrap(), path);
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(b.received() - before, 2_000_000 - kept);
    assert!(!part.exists());
}

#[test]
fn the_cache_keeps_its_limit_and_its_pins_and_deletes_follow_records() {
    let server = TestServer::start();
    let who = account(&server);
    let a = device(server.url(), &who, 500_000_000);
    let files: Vec<(Vec<u8>, AttachmentRef)> = (0..4u8)
        .map(|i| {
            let data = bytes(400_000, 10 + i);
            let reference = upload(&server, &who, &data, &format!("{i}.bin"));
            (data, reference)
        })
        .collect();
    for (i, (_, reference)) in files.iter().enumerate() {
        a.put("attached_files", &format!("f{i}"), file_doc(reference));
    }
    a.sync();

    // Room for two files and a half.
    let b = device(server.url(), &who, 1_000_000);
    b.sync();
    let on_disk = |i: usize| b.files().join(&files[i].1.hash).exists();
    b.fetch(&files[0].1).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    b.fetch(&files[1].1).unwrap();
    // f0 gets an unsent change: its file is pinned while the change waits.
    b.client
        .write(vec![WriteOp::Patch {
            collection: "attached_files".into(),
            id: "f0".into(),
            patch: json!({"title": "edited"}),
        }])
        .unwrap();
    // A file attached here and not uploaded yet is pinned too.
    b.put("photos", "local", json!({"caption": "not sent"}));
    let local = block_on(b.client.attach_bytes(
        "photos",
        "local",
        "image",
        bytes(400_000, 40),
        "image/jpeg",
        None,
    ))
    .unwrap();
    let local_doc: Value = serde_json::from_str(local.doc.as_deref().unwrap()).unwrap();
    let local_hash = local_doc["image"]["hash"].as_str().unwrap().to_string();
    assert_eq!(b.state(&local_hash), AttachmentState::Local);
    std::thread::sleep(Duration::from_millis(5));
    b.fetch(&files[2].1).unwrap();
    // Over the limit: the least recently used file that is not pinned (f1) went; the pinned
    // ones keep the cache over its limit.
    assert!(on_disk(0), "pinned by an unsent change");
    assert!(!on_disk(1), "least recently used");
    assert!(on_disk(2), "just downloaded");
    assert!(b.files().join(&local_hash).exists(), "not uploaded");
    assert_eq!(b.state(&local_hash), AttachmentState::Local);
    assert_eq!(b.state(&files[1].1.hash), AttachmentState::Remote);
    assert_eq!(b.state(&files[0].1.hash), AttachmentState::Uploaded);

    // Once the change is sent, f0 is evictable again: the next download evicts it (the least
    // recently used), and a file used again moves to the back of the line.
    b.sync();
    std::thread::sleep(Duration::from_millis(5));
    b.fetch(&files[2].1).unwrap(); // touched
    std::thread::sleep(Duration::from_millis(5));
    b.fetch(&files[3].1).unwrap();
    assert!(!on_disk(0));
    assert!(on_disk(2) && on_disk(3));
    let total: u64 = std::fs::read_dir(b.files())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= 1_000_000, "{total}");

    // Deleting a record keeps its file until the delete is synced, then the file goes.
    b.client
        .write(vec![WriteOp::Delete {
            collection: "attached_files".into(),
            id: "f3".into(),
        }])
        .unwrap();
    assert!(on_disk(3));
    b.sync();
    assert!(!on_disk(3), "the synced delete removed the file");
    assert_eq!(b.state(&files[3].1.hash), AttachmentState::Remote);
    // The other device drops its copy when it learns of the delete.
    let c_path = {
        let c = device(server.url(), &who, 500_000_000);
        c.sync();
        c.fetch(&files[2].1).unwrap();
        a.client
            .write(vec![WriteOp::Delete {
                collection: "attached_files".into(),
                id: "f2".into(),
            }])
            .unwrap();
        a.sync();
        let path = c.files().join(&files[2].1.hash);
        assert!(path.exists());
        c.sync();
        assert!(!path.exists(), "a pulled delete removes the file");
        path
    };
    assert!(!c_path.exists());
}

#[test]
fn eager_collections_prefetch_after_a_pull() {
    let server = TestServer::start();
    let who = account(&server);
    let a = device(server.url(), &who, 500_000_000);
    let small = bytes(500_000, 20);
    let big = bytes(1_500_000, 21);
    let (small_ref, big_ref) = (
        upload(&server, &who, &small, "small.jpg"),
        upload(&server, &who, &big, "big.jpg"),
    );
    let on_demand = upload(&server, &who, &bytes(1000, 22), "doc.bin");
    a.put(
        "photos",
        "p1",
        json!({"image": small_ref.to_value(), "caption": "small"}),
    );
    a.put(
        "photos",
        "p2",
        json!({"image": big_ref.to_value(), "caption": "big"}),
    );
    a.put("attached_files", "f1", file_doc(&on_demand));
    a.sync();

    let b = device(server.url(), &who, 500_000_000);
    let report = b.sync();
    assert_eq!(report.attachment_bytes_received, 500_000, "{report:?}");
    assert_eq!(b.state(&small_ref.hash), AttachmentState::Uploaded);
    assert_eq!(
        std::fs::read(b.files().join(&small_ref.hash)).unwrap(),
        small
    );
    assert_eq!(
        b.state(&big_ref.hash),
        AttachmentState::Remote,
        "over eagerMaxBytes"
    );
    assert_eq!(
        b.state(&on_demand.hash),
        AttachmentState::Remote,
        "on demand"
    );
    // A later run with nothing new pulled fetches nothing.
    assert_eq!(b.sync().attachment_bytes_received, 0);
}

#[test]
fn an_attached_file_is_observed_from_local_to_uploaded_and_opens_elsewhere() {
    let server = TestServer::start();
    let proxy = SlowProxy::start(server.url());
    let who = account(&server);
    let a = device(&proxy.url, &who, 500_000_000);
    a.put("photos", "p1", json!({"caption": "climb"}));
    // Over the collection's eagerMaxBytes: the other device fetches it on demand.
    let data = bytes(2_000_000, 30);
    let row = block_on(a.client.attach_bytes(
        "photos",
        "p1",
        "image",
        data.clone(),
        "image/jpeg",
        Some("climb.jpg"),
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(row.doc.as_deref().unwrap()).unwrap();
    let reference = AttachmentRef::from_value(&doc["image"]).unwrap();
    assert_eq!(a.state(&reference.hash), AttachmentState::Local);

    let seen: Arc<Mutex<Vec<AttachmentState>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let _watch = a
        .client
        .observe_attachment(
            &reference.hash,
            Box::new(move |state| sink.lock().unwrap().push(state)),
        )
        .unwrap();
    eventually("the current state first", || {
        !seen.lock().unwrap().is_empty()
    });
    proxy.slow(5);
    a.sync();
    proxy.slow(0);
    assert_eq!(a.state(&reference.hash), AttachmentState::Uploaded);
    eventually("the observer hears the upload end", || {
        seen.lock().unwrap().last() == Some(&AttachmentState::Uploaded)
    });
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0], AttachmentState::Local, "{seen:?}");
        assert!(
            seen.iter().any(|s| matches!(
                s,
                AttachmentState::Uploading {
                    total: 2_000_000,
                    ..
                }
            )),
            "{seen:?}"
        );
    }
    // The uploading device has the file already: no download.
    let path = a.fetch(&reference).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(a.received(), 0);

    let b = device(&proxy.url, &who, 500_000_000);
    assert_eq!(b.sync().attachment_bytes_received, 0, "on demand");
    assert_eq!(b.state(&reference.hash), AttachmentState::Remote);
    let path = b.fetch(&reference).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(b.state(&reference.hash), AttachmentState::Uploaded);
}
