//! The sealed attachment cache end to end (docs/design/encryption.md §3) through
//! `tandem_core::Client` against the real `tandem-server` binary: with a cache key, a downloaded
//! file (on demand and eager) and an attached one are sealed on disk (no run of their bytes in
//! any cache file), `read_attachment` reads ranges across chunk edges without a copy,
//! `attachment` hands out a decrypted copy in `open/`, an attachment uploads from its sealed
//! file, and a tampered cache file is `Attachment { Corrupt }`. Without a key the same bytes
//! are found on disk, so the check can fail.
//!
//! Run: `cargo test -p tandem-core --test attachments_sealed`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use tandem_core::auth::MemorySecretStore;
use tandem_core::http::HttpConfig;
use tandem_core::{
    runtime, AttachmentErrorKind, AttachmentRef, CacheKey, Client, ClientConfig, DatabaseKey,
    Error, SyncOptions, WriteOp,
};
use tandem_testkit::server::TestServer;
use tandem_testkit::TEST_SCHEMA;
use tempfile::TempDir;

const PASSWORD: &str = "password123";
const CHUNK: u64 = 64 * 1024;
const MARKER: &[u8] = b"SEALED-CACHE-DISTINCTIVE-RUN-4242";

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime::runtime().block_on(future)
}

struct Device {
    client: Client,
    dir: TempDir,
}

fn device(server: &TestServer, email: &str, key: Option<CacheKey>) -> Device {
    let dir = TempDir::new().unwrap();
    let client = Client::open(ClientConfig {
        data_dir: dir.path().to_path_buf(),
        schema_json: TEST_SCHEMA.to_string(),
        server: Some(HttpConfig::new(server.url())),
        sync: SyncOptions::default(),
        secret_store: Some(Arc::new(MemorySecretStore::new())),
        resolver: None,
        attachment_cache_bytes: 500_000_000,
        encryption: tandem_core::Encryption::Off,
    })
    .unwrap();
    block_on(client.sign_in(email, PASSWORD)).unwrap();
    client.set_attachment_cache_key(key);
    Device { client, dir }
}

impl Device {
    fn files(&self) -> PathBuf {
        let user = self.client.current_user().unwrap();
        self.dir
            .path()
            .canonicalize()
            .unwrap()
            .join("users")
            .join(format!("{}.attachments", user.id))
    }

    fn sync(&self) {
        block_on(self.client.sync_now()).unwrap();
    }

    fn read(&self, reference: &AttachmentRef, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        block_on(self.client.read_attachment(reference, offset, len))
    }
}

/// `len` bytes with the marker at the start, across the first chunk edge and at the end.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut data: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect();
    for at in [0, CHUNK as usize - 10, len - MARKER.len()] {
        data[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    data
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir` (not `open/`, the decrypted copies handed to the app).
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "open" {
                found.extend(cache_files(&path));
            }
        } else {
            found.push(path);
        }
    }
    found
}

fn reference_of(data: &[u8]) -> AttachmentRef {
    AttachmentRef {
        hash: tandem_testkit::blobs::sha256_hex(data),
        size: data.len() as u64,
        content_type: "application/octet-stream".into(),
        name: Some("f.bin".into()),
    }
}

#[test]
fn a_sealed_cache_holds_no_plaintext_and_reads_through_the_seal() {
    let server = TestServer::start();
    let user = block_on(server.client().user());
    let data = content(3 * CHUNK as usize + 1234, 1);
    let reply = block_on(
        server
            .client()
            .upload(&user.token, &data, "application/octet-stream"),
    );
    assert_eq!(reply.body["complete"], true, "upload: {:?}", reply.body);
    let reference = reference_of(&data);

    let plain = device(&server, &user.email, None);
    plain
        .client
        .write(vec![WriteOp::Put {
            collection: "attached_files".into(),
            id: Some("f1".into()),
            doc: json!({"blob": reference.to_value(), "title": "t"}),
            space_id: None,
        }])
        .unwrap();
    plain.sync();

    let sealed = device(
        &server,
        &user.email,
        Some(CacheKey::derive(&DatabaseKey::from_bytes([7; 32]))),
    );
    sealed.sync();
    // Ranges across chunk edges, downloading first.
    for (offset, len) in [
        (0, 10),
        (CHUNK - 1, 2),
        (CHUNK - 10, MARKER.len() as u64),
        (2 * CHUNK, CHUNK + 1234),
        (data.len() as u64 - 5, 100),
    ] {
        let end = (offset + len).min(data.len() as u64) as usize;
        assert_eq!(
            sealed.read(&reference, offset, len).unwrap(),
            &data[offset as usize..end],
            "{offset}+{len}"
        );
    }
    assert!(sealed
        .read(&reference, data.len() as u64, 10)
        .unwrap()
        .is_empty());
    let cached = sealed.files().join(&reference.hash);
    let on_disk = std::fs::read(&cached).unwrap();
    assert!(on_disk.starts_with(b"TNDMENC1"));
    assert!(!contains(&on_disk, MARKER));

    // The path API: a decrypted, owner-only copy in `open/`.
    let path = block_on(sealed.client.attachment(&reference)).unwrap();
    assert_eq!(path, sealed.files().join("open").join(&reference.hash));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sealed.files().join("open")), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    // An attachment attached on the sealed device is sealed too, and uploads from its sealed
    // file: the plain device gets the very bytes.
    let mine = content(CHUNK as usize + 77, 2);
    sealed
        .client
        .write(vec![WriteOp::Put {
            collection: "photos".into(),
            id: Some("p1".into()),
            doc: json!({"caption": "c"}),
            space_id: None,
        }])
        .unwrap();
    let record = block_on(sealed.client.attach_bytes(
        "photos",
        "p1",
        "image",
        mine.clone(),
        "application/octet-stream",
        None,
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(record.doc.as_deref().unwrap()).unwrap();
    let my_ref = AttachmentRef::from_value(&doc["image"]).unwrap();
    sealed.sync();
    plain.sync();
    assert_eq!(
        std::fs::read(block_on(plain.client.attachment(&my_ref)).unwrap()).unwrap(),
        mine
    );

    // No cache file of the sealed device holds a run of either file; the plain device's do.
    for file in cache_files(&sealed.files()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!contains(&bytes, MARKER), "{}", file.display());
    }
    assert!(cache_files(&plain.files())
        .iter()
        .any(|f| contains(&std::fs::read(f).unwrap(), MARKER)));

    // A tampered cache file: a typed error, never wrong bytes.
    let mut tampered = on_disk.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 0x40;
    std::fs::write(&cached, &tampered).unwrap();
    match sealed.read(&reference, 0, 10) {
        Err(Error::Attachment {
            kind: AttachmentErrorKind::Corrupt,
            ..
        }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
