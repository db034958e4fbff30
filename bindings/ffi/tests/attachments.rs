//! Attachments end to end (docs/design/attachments.md §7): devices on the exported API against the
//! real `tandem-server` binary (in process on a manual clock where a story needs time to pass),
//! each story on the filesystem blob store and, when `TANDEM_TEST_S3_URL` is set, on S3 (moto).
//!
//! - a file attached on A opens, byte for byte, on B;
//! - dedup: a file the account already holds is not sent again (B's upload sends 0 body bytes);
//! - an upload cut mid-chunk by the proxy resumes where the server stopped (total ≈ one file);
//! - a chunk with the wrong bytes is refused by hash (raw HTTP: 422 `hash_mismatch`);
//! - another account and a non-member of a space get `NotFound`, a member the file;
//! - the cache honours its limit and never evicts a file not yet uploaded;
//! - deleting a record removes its local file and, after the retention, the server's blob.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tandem::{AttachmentErrorKind, AttachmentRef, AttachmentState, SpaceRole, Tandem, TandemError};
use tandem_testkit::blobs::TestBlobStore;
use tandem_testkit::proxy::{Fault, Proxy};
use tandem_testkit::server::{email, TestServer, TestServerBuilder};
use tandem_testkit::ManualClock;

mod common;

use common::{block, device_opened_by, device_with, Device};

/// The server's chunk size (the design's 8 MiB).
const CHUNK: u64 = 8 * 1024 * 1024;
/// `photos` prefetches files up to this size after a pull (schemas/test.json); the stories use
/// larger files where a download must be on demand.
const PHOTOS_EAGER_MAX: usize = 1_000_000;
/// Every chunk route (the `PATCH`es), not the `POST` that opens an upload.
const CHUNKS: &str = "/sync/v1/blobs/uploads/";

/// Runs `story` on a fresh filesystem blob store, and on a fresh prefix of the S3 bucket when
/// `TANDEM_TEST_S3_URL` is set (moto; `scripts/test.sh` starts it).
macro_rules! on_both_stores {
    ($($story:ident),* $(,)?) => {$(
        mod $story {
            use tandem_testkit::blobs::{BlobStoreKind, TestBlobStore};

            #[test]
            fn filesystem() {
                super::$story(TestBlobStore::new(BlobStoreKind::Filesystem).unwrap());
            }

            #[test]
            fn s3() {
                match TestBlobStore::new(BlobStoreKind::S3) {
                    Some(store) => super::$story(store),
                    None => eprintln!("TANDEM_TEST_S3_URL is not set: skipping the S3 run"),
                }
            }
        }
    )*};
}

on_both_stores!(
    attached_on_a_opens_on_b,
    a_file_the_account_holds_is_not_sent_again,
    an_upload_cut_mid_chunk_resumes_where_the_server_stopped,
    a_chunk_with_the_wrong_bytes_is_refused_by_hash,
    another_account_and_a_non_member_get_not_found,
    the_cache_honours_its_limit_and_its_pins,
    a_deleted_record_takes_its_file_and_after_retention_the_blob,
);

/// A server builder keeping attachments in `store`.
fn on(store: &TestBlobStore) -> TestServerBuilder {
    TestServer::builder().blob_store(store)
}

/// `size` bytes that differ per `seed` and do not compress.
fn bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    tandem_testkit::blobs::sha256_hex(data)
}

impl Device {
    /// Creates `photos/id` and attaches `data` to its `image` field; returns the reference.
    fn attach_photo(&self, id: &str, data: &[u8]) -> AttachmentRef {
        self.put("photos", id, json!({"caption": id}));
        let record = block(self.t.attach_bytes(
            "photos".into(),
            id.into(),
            "image".into(),
            data.to_vec(),
            "image/jpeg".into(),
            Some(format!("{id}.jpg")),
        ))
        .unwrap();
        let reference = self.photo(id).expect("the reference was written");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&record.document).unwrap()["image"]["hash"],
            json!(reference.hash)
        );
        reference
    }

    /// The reference in `photos/id`'s `image` field.
    fn photo(&self, id: &str) -> Option<AttachmentRef> {
        self.t
            .attachment_ref("photos".into(), id.into(), "image".into())
            .unwrap()
    }

    fn state(&self, reference: &AttachmentRef) -> AttachmentState {
        self.t.attachment_state(reference.hash.clone()).unwrap()
    }

    /// The file of `reference` (downloaded when needed), read whole.
    fn open(&self, reference: &AttachmentRef) -> Result<Vec<u8>, TandemError> {
        let path = block(self.t.attachment(reference.clone()))?;
        Ok(std::fs::read(path).unwrap())
    }
}

/// Two devices of one new account, A against `url_a`, B against `url_b` (a server or a proxy).
fn pair_on(
    url_a: &str,
    url_b: &str,
    adjust_b: impl FnOnce(&mut tandem::TandemConfig),
) -> (Device, Device) {
    let a = device_with(url_a, |_| {});
    let b = device_with(url_b, adjust_b);
    let account = email();
    a.sign_up(&account);
    b.sign_in(&account);
    (a, b)
}

fn attached_on_a_opens_on_b(store: TestBlobStore) {
    let server = on(&store).start();
    let (a, b) = pair_on(server.url(), server.url(), |_| {});
    // One chunk and a bit: two PATCHes, and over the eager limit, so B downloads on demand.
    let data = bytes(CHUNK as usize + 300_000, 1);
    let source = a.dir.path().join("climb.jpg");
    std::fs::write(&source, &data).unwrap();
    a.put("photos", "p1", json!({"caption": "Climb"}));
    let record = block(a.t.attach_file(
        "photos".into(),
        "p1".into(),
        "image".into(),
        source.to_string_lossy().into_owned(),
        None,
        None,
    ))
    .unwrap();
    std::fs::remove_file(&source).unwrap(); // the engine keeps its own copy
    let reference = a.photo("p1").unwrap();
    assert_eq!(
        reference,
        AttachmentRef {
            hash: sha256(&data),
            size: data.len() as u64,
            content_type: "image/jpeg".into(),
            name: Some("climb.jpg".into()),
        }
    );
    assert!(record.document.contains(&reference.hash));
    assert_eq!(a.state(&reference), AttachmentState::Local);
    let status = a.t.sync_status().unwrap();
    assert_eq!(
        (status.attachments_pending, status.attachment_bytes_pending),
        (1, data.len() as u64)
    );

    let report = a.sync();
    assert_eq!(report.applied, 1);
    assert_eq!(a.state(&reference), AttachmentState::Uploaded);
    assert_eq!(a.t.sync_status().unwrap().attachments_pending, 0);

    b.sync();
    assert_eq!(b.photo("p1").as_ref(), Some(&reference));
    assert_eq!(b.state(&reference), AttachmentState::Remote);
    assert_eq!(b.open(&reference).unwrap(), data);
    assert_eq!(b.state(&reference), AttachmentState::Uploaded);
    // A second call finds it on disk.
    assert_eq!(b.open(&reference).unwrap(), data);
}

fn a_file_the_account_holds_is_not_sent_again(store: TestBlobStore) {
    let server = on(&store).start();
    let proxy = Proxy::start(server.url());
    let (a, b) = pair_on(server.url(), proxy.url(), |_| {});
    let data = bytes(2_000_000, 2);
    let on_a = a.attach_photo("p1", &data);
    a.sync();
    // B attaches the same bytes to a record of its own: the server answers the open `complete`
    // (the account holds the blob), so not one byte of it goes up again.
    let on_b = b.attach_photo("p2", &data);
    assert_eq!(on_a.hash, on_b.hash);
    assert_eq!(b.state(&on_b), AttachmentState::Local);
    let report = b.sync();
    assert_eq!(report.applied, 1);
    assert_eq!(proxy.body_bytes(CHUNKS), 0, "B sent the file again");
    assert_eq!(b.state(&on_b), AttachmentState::Uploaded);
    a.sync();
    assert_eq!(a.open(&a.photo("p2").unwrap()).unwrap(), data);
}

fn an_upload_cut_mid_chunk_resumes_where_the_server_stopped(store: TestBlobStore) {
    let server = on(&store).start();
    let proxy = Proxy::start(server.url());
    let (a, b) = pair_on(proxy.url(), server.url(), |_| {});
    let data = bytes(2 * CHUNK as usize + 1_000_000, 3);
    let reference = a.attach_photo("p1", &data);
    // The first chunk lands; the second is cut after 1 MiB of its body.
    proxy.fail_next(CHUNKS, Fault::Pass);
    proxy.fail_next(CHUNKS, Fault::CutRequestBody(1024 * 1024));
    let failed = a.try_sync();
    assert!(
        matches!(failed, Err(TandemError::Sync { .. })),
        "the run fails like a lost push: {failed:?}"
    );
    assert_eq!(proxy.fault_counts().get("cut_request_body"), Some(&1));
    assert_eq!(
        a.t.pending_count().unwrap(),
        1,
        "the change waits for its file"
    );
    assert_ne!(a.state(&reference), AttachmentState::Uploaded);

    let report = a.sync();
    assert_eq!(report.applied, 1);
    assert_eq!(a.state(&reference), AttachmentState::Uploaded);
    let sent = proxy.body_bytes(CHUNKS);
    let size = data.len() as u64;
    assert!(
        (size..=size + CHUNK).contains(&sent),
        "sent {sent} body bytes for a file of {size}: more than one chunk again"
    );
    b.sync();
    assert_eq!(b.open(&reference).unwrap(), data);
}

fn a_chunk_with_the_wrong_bytes_is_refused_by_hash(store: TestBlobStore) {
    let server = on(&store).start();
    let client = server.client();
    let data = bytes(100_000, 4);
    let hash = sha256(&data);
    block(async {
        let (token, _) = client.new_user().await;
        let opened = client
            .open_upload(&token, &hash, data.len() as u64, "image/jpeg")
            .await;
        assert_eq!(opened.assert_ok()["offset"], 0);
        let mut wrong = data.clone();
        wrong[500] ^= 0xff;
        client
            .send_chunk(&token, &hash, 0, wrong)
            .await
            .assert_error(422, "hash_mismatch");
        // The upload starts over: the server kept nothing of the bad bytes.
        let again = client
            .open_upload(&token, &hash, data.len() as u64, "image/jpeg")
            .await;
        assert_eq!(again.assert_ok()["offset"], 0);
        assert_eq!(again.assert_ok()["complete"], false);
        let done = client.send_chunk(&token, &hash, 0, data.clone()).await;
        assert_eq!(done.assert_ok()["complete"], true);
        assert_eq!(client.download(&token, &hash, &[]).await.bytes, data);
    });
}

fn another_account_and_a_non_member_get_not_found(store: TestBlobStore) {
    let server = on(&store).start();
    let owner = device_with(server.url(), |_| {});
    let member = device_with(server.url(), |_| {});
    let stranger = device_with(server.url(), |_| {});
    let member_email = email();
    owner.sign_up(&email());
    member.sign_up(&member_email);
    stranger.sign_up(&email());

    // The owner's own photo: another account gets NotFound, knowing the hash is not enough.
    let own = owner.attach_photo("p1", &bytes(5_000, 5));
    owner.sync();
    let denied = stranger.open(&own);
    assert!(
        matches!(
            denied,
            Err(TandemError::Attachment {
                kind: AttachmentErrorKind::NotFound,
                ..
            })
        ),
        "{denied:?}"
    );

    // A file of a space: its member reads it, a non-member gets NotFound.
    let space = block(owner.t.create_space("Family".into())).unwrap();
    block(
        owner
            .t
            .invite(space.id.clone(), member_email, SpaceRole::Viewer),
    )
    .unwrap();
    owner
        .t
        .put_in_space(
            space.id.clone(),
            "shared_files".into(),
            Some("f1".into()),
            json!({"title": "Plan"}).to_string(),
        )
        .unwrap();
    let data = bytes(50_000, 6);
    block(owner.t.attach_bytes(
        "shared_files".into(),
        "f1".into(),
        "blob".into(),
        data.clone(),
        "application/pdf".into(),
        Some("plan.pdf".into()),
    ))
    .unwrap();
    owner.sync();
    let shared = owner
        .t
        .attachment_ref("shared_files".into(), "f1".into(), "blob".into())
        .unwrap()
        .unwrap();
    member.sync();
    let invitation = member.t.invitations().unwrap().remove(0);
    block(member.t.accept(invitation.id)).unwrap();
    member.sync();
    let seen = member
        .t
        .attachment_ref("shared_files".into(), "f1".into(), "blob".into())
        .unwrap();
    assert_eq!(seen.as_ref(), Some(&shared));
    assert_eq!(member.open(&shared).unwrap(), data);
    let denied = stranger.open(&shared);
    assert!(
        matches!(
            denied,
            Err(TandemError::Attachment {
                kind: AttachmentErrorKind::NotFound,
                ..
            })
        ),
        "{denied:?}"
    );
}

fn the_cache_honours_its_limit_and_its_pins(store: TestBlobStore) {
    let server = on(&store).start();
    const LIMIT: u64 = 2_500_000;
    let (a, b) = pair_on(server.url(), server.url(), |c| {
        c.attachment_cache_bytes = LIMIT
    });
    // Three files over the eager limit: B downloads each on demand.
    let size = PHOTOS_EAGER_MAX + 100_000;
    let refs: Vec<AttachmentRef> = (0..3)
        .map(|i| a.attach_photo(&format!("p{i}"), &bytes(size, 10 + i as u64)))
        .collect();
    a.sync();
    b.sync();
    for reference in &refs {
        b.open(reference).unwrap();
    }
    // Two fit; the least recently used (the first) went back to the server only.
    let states: Vec<AttachmentState> = refs.iter().map(|r| b.state(r)).collect();
    assert_eq!(
        states,
        [
            AttachmentState::Remote,
            AttachmentState::Uploaded,
            AttachmentState::Uploaded
        ]
    );

    // A file B attached and has not uploaded is pinned: however far over the limit, it stays.
    let local = bytes(LIMIT as usize + 1, 20);
    let pinned = b.attach_photo("local", &local);
    b.open(&refs[0]).unwrap();
    assert_eq!(b.state(&pinned), AttachmentState::Local);
    assert_eq!(b.open(&pinned).unwrap(), local);
    let on_disk = refs
        .iter()
        .filter(|r| b.state(r) == AttachmentState::Uploaded)
        .count();
    assert!(
        on_disk <= 1,
        "{on_disk} downloaded files kept beside a pinned one over the limit"
    );
    // Uploaded, it may go like any other.
    b.sync();
    assert_eq!(b.state(&pinned), AttachmentState::Uploaded);
}

/// A device judging token expiry by `clock` (its in-process server's), so moving the clock a
/// month refreshes its session instead of failing it.
fn device_on_clock(url: &str, clock: &ManualClock) -> Device {
    device_opened_by(
        url,
        |_| {},
        |config| Tandem::open_with_clock(config, Arc::new(clock.clone())).unwrap(),
    )
}

fn a_deleted_record_takes_its_file_and_after_retention_the_blob(store: TestBlobStore) {
    let server = on(&store).in_process().start();
    let clock = server.clock().unwrap().clone();
    let proxy = Proxy::start(server.url());
    let a = device_on_clock(proxy.url(), &clock);
    a.sign_up(&email());
    let data = bytes(300_000, 30);
    let reference = a.attach_photo("p1", &data);
    a.sync();
    let path = block(a.t.attachment(reference.clone())).unwrap();
    assert!(Path::new(&path).exists());

    a.t.delete("photos".into(), "p1".into()).unwrap();
    assert!(
        Path::new(&path).exists(),
        "kept until the delete is synced (a revert may want it)"
    );
    a.sync();
    assert!(
        !Path::new(&path).exists(),
        "the file left the device with its last reference"
    );

    // Within the retention the server still holds it for the uploader: attaching the same bytes
    // again sends nothing.
    proxy.reset_body_bytes();
    a.attach_photo("p2", &data);
    a.sync();
    assert_eq!(proxy.body_bytes(CHUNKS), 0);
    a.t.delete("photos".into(), "p2".into()).unwrap();
    a.sync();

    // Past the grace and the tombstone retention, two purges (mark, then delete) remove the
    // blob from the store itself.
    assert!(stored(&store, &reference.hash), "the blob is on the server");
    for _ in 0..2 {
        server.advance(Duration::from_secs(31 * 86_400));
        server.purge_now();
    }
    assert!(
        !stored(&store, &reference.hash),
        "the blob outlived its retention"
    );
    // The same bytes attached again go up whole.
    proxy.reset_body_bytes();
    a.attach_photo("p3", &data);
    a.sync();
    assert_eq!(proxy.body_bytes(CHUNKS), data.len() as u64);
}

/// Whether the blob store holds the complete blob `hash`, asked of the store itself.
fn stored(store: &TestBlobStore, hash: &str) -> bool {
    let config = tandem_server::Config {
        blob_store: Some(store.url.clone()),
        blob_store_options: store.env.clone(),
        ..Default::default()
    };
    let blobs = tandem_server::blobs::BlobStore::from_config(&config).unwrap();
    block(async { blobs.size(&blobs.blob_key(hash)).await.unwrap().is_some() })
}
