//! Attachments on the server (docs/design/attachments.md §3–4): the blob tables' access rule
//! (`Storage::may_read_blob`) on both backends, and the upload and download routes on both
//! backends × both blob stores (a directory, and moto's S3 server when `TANDEM_TEST_S3_URL` is
//! set, as `scripts/test.sh` does).

use std::time::Duration;
use tandem_server::spaces::SpaceLimits;
use tandem_server::storage::{BlobRow, Role, SpaceOutcome, Storage, UploadRow, UserRow};

use tandem_testkit::blobs::{sha256_hex, CHUNK_BYTES};
use tandem_testkit::server_suite::{Backend, Client, TestBlobStore, TestDb, TestServer};
use tandem_testkit::{on_backends_and_blob_stores, on_both_backends, ManualClock};
use tokio::io::AsyncWriteExt;

on_both_backends!(access_rule, upload_rows);

on_backends_and_blob_stores!(
    chunks_offsets_and_downloads,
    refusals_and_limits,
    hash_mismatch_discards_the_upload,
    dedup_only_for_readers,
    cut_mid_chunk_keeps_the_offset,
    restart_mid_upload_resumes,
    holders_read_within_the_grace_period,
    racing_chunks_one_lands,
    two_instances_share_an_upload,
);

async fn user(storage: &Storage, email: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    assert!(storage
        .create_user(UserRow {
            id: id.clone(),
            email: email.to_string(),
            password_hash: "x".into(),
            created_at_ms: 1,
        })
        .await
        .unwrap());
    id
}

fn done<T: std::fmt::Debug>(outcome: SpaceOutcome<T>) -> T {
    match outcome {
        SpaceOutcome::Done(value) => value,
        other => panic!("expected Done, got {other:?}"),
    }
}

/// Runs `sql` on the test database (rows the push path would write).
async fn exec(db: &TestDb, sql: &str) {
    match db.backend {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://").to_string();
            let sql = sql.to_string();
            tokio::task::spawn_blocking(move || {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute_batch(&sql)
                    .unwrap()
            })
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client.batch_execute(sql).await.unwrap();
        }
    }
}

fn blob_row(hash: &str) -> BlobRow {
    BlobRow {
        hash: hash.to_string(),
        size: 10,
        content_type: "image/jpeg".into(),
        created_at_ms: 0,
    }
}

/// Who may read a blob: a holder within the grace period, a reader of a stream whose live record
/// names it (own, public, a live space's member), nobody else; and only a complete blob.
async fn access_rule(db: TestDb) {
    let storage = Storage::open(&db.url).await.unwrap();
    let limits = SpaceLimits::default();
    let a = user(&storage, "a@example.com").await;
    let b = user(&storage, "b@example.com").await;
    let c = user(&storage, "c@example.com").await;
    let (h1, h2, h3, h4) = (
        "1".repeat(64),
        "2".repeat(64),
        "3".repeat(64),
        "4".repeat(64),
    );
    let hour = 3600 * 1000;
    storage.set_blob_grace_ms(hour);
    let t0 = 1_000_000_000;

    // A's upload: A reads it within the grace period, nobody else does.
    storage
        .complete_blob(Some(&a), blob_row(&h1), t0)
        .await
        .unwrap();
    assert!(storage.may_read_blob(&a, &h1, t0 + hour).await.unwrap());
    assert!(!storage.may_read_blob(&a, &h1, t0 + hour + 1).await.unwrap());
    assert!(!storage.may_read_blob(&b, &h1, t0).await.unwrap());
    assert_eq!(storage.held_bytes(&a, "").await.unwrap(), 10);
    assert_eq!(storage.held_bytes(&a, &h1).await.unwrap(), 0);
    assert_eq!(storage.held_bytes(&b, "").await.unwrap(), 0);
    // Claiming it again refreshes the grace period.
    storage.hold_blob(&a, &h1, t0 + 2 * hour).await.unwrap();
    assert!(storage.may_read_blob(&a, &h1, t0 + 3 * hour).await.unwrap());

    // A record of A's own stream names it: A reads it for good, B still not.
    exec(
        &db,
        &format!(
            "INSERT INTO record_blobs (user_id, entity, entity_id, field, hash)
             VALUES ('{a}', 'files', 'f1', 'file', '{h1}')"
        ),
    )
    .await;
    assert!(storage
        .may_read_blob(&a, &h1, t0 + 100 * hour)
        .await
        .unwrap());
    assert!(!storage.may_read_blob(&b, &h1, t0).await.unwrap());

    // Public records: everyone reads.
    storage
        .complete_blob(None, blob_row(&h2), t0)
        .await
        .unwrap();
    assert!(!storage.may_read_blob(&a, &h2, t0).await.unwrap());
    exec(
        &db,
        &format!(
            "INSERT INTO record_blobs (user_id, entity, entity_id, field, hash)
             VALUES ('public', 'catalog', 'c1', 'photo', '{h2}')"
        ),
    )
    .await;
    assert!(storage.may_read_blob(&b, &h2, t0).await.unwrap());

    // A space's records: its members read, others do not, nobody once it is deleted.
    let (space, _) = done(
        storage
            .create_space(&a, "Family", "r1", t0, limits)
            .await
            .unwrap(),
    );
    let (invitation, _) = done(
        storage
            .invite(&a, &space.id, "b@example.com", Role::Viewer, t0, limits)
            .await
            .unwrap(),
    );
    done(
        storage
            .accept_invitation(&b, &invitation.id, t0, limits)
            .await
            .unwrap(),
    );
    storage
        .complete_blob(None, blob_row(&h3), t0)
        .await
        .unwrap();
    exec(
        &db,
        &format!(
            "INSERT INTO record_blobs (user_id, entity, entity_id, field, hash)
             VALUES ('space:{}', 'files', 'f2', 'file', '{h3}')",
            space.id
        ),
    )
    .await;
    assert!(storage.may_read_blob(&a, &h3, t0).await.unwrap());
    assert!(storage.may_read_blob(&b, &h3, t0).await.unwrap());
    assert!(!storage.may_read_blob(&c, &h3, t0).await.unwrap());
    done(storage.delete_space(&a, &space.id, t0).await.unwrap());
    assert!(!storage.may_read_blob(&a, &h3, t0).await.unwrap());

    // A reference to a blob the server does not hold (complete) reads as nothing.
    exec(
        &db,
        &format!(
            "INSERT INTO record_blobs (user_id, entity, entity_id, field, hash)
             VALUES ('{a}', 'files', 'f3', 'file', '{h4}')"
        ),
    )
    .await;
    assert!(!storage.may_read_blob(&a, &h4, t0).await.unwrap());
    assert_eq!(storage.blob(&h4).await.unwrap(), None);
    assert_eq!(storage.blob(&h1).await.unwrap().unwrap().size, 10);
}

/// Upload rows: opened, advanced only from the offset they hold, restarted, deleted.
async fn upload_rows(db: TestDb) {
    let storage = Storage::open(&db.url).await.unwrap();
    let c = user(&storage, "c@example.com").await;
    let hash = "5".repeat(64);
    let row = UploadRow {
        user_id: c.clone(),
        hash: hash.clone(),
        size: 20,
        content_type: "video/mp4".into(),
        multipart_id: "m1".into(),
        offset: 0,
        parts: Vec::new(),
        created_at_ms: 1,
        updated_at_ms: 1,
    };
    storage.put_upload(row.clone()).await.unwrap();
    assert_eq!(storage.upload(&c, &hash).await.unwrap(), Some(row.clone()));
    let parts = vec!["p0".to_string()];
    assert!(storage.advance_upload(&row, 5, &parts, 2).await.unwrap());
    // A second chunk from the same offset (a race, or a retry) does not land.
    assert!(!storage.advance_upload(&row, 5, &parts, 3).await.unwrap());
    let now = storage.upload(&c, &hash).await.unwrap().unwrap();
    assert_eq!(
        (now.offset, now.parts.clone(), now.updated_at_ms),
        (5, parts, 2)
    );
    // A restart replaces it; the old multipart id no longer advances or deletes it.
    let restarted = UploadRow {
        multipart_id: "m2".into(),
        size: 30,
        ..row.clone()
    };
    storage.put_upload(restarted.clone()).await.unwrap();
    assert_eq!(storage.upload(&c, &hash).await.unwrap(), Some(restarted));
    assert!(!storage.advance_upload(&row, 5, &[], 4).await.unwrap());
    assert!(!storage.delete_upload(&c, &hash, "m1").await.unwrap());
    assert!(storage.delete_upload(&c, &hash, "m2").await.unwrap());
    assert_eq!(storage.upload(&c, &hash).await.unwrap(), None);
    // Completing removes the user's upload of the hash.
    storage.put_upload(row).await.unwrap();
    storage
        .complete_blob(
            Some(&c),
            BlobRow {
                hash: hash.clone(),
                size: 20,
                content_type: "video/mp4".into(),
                created_at_ms: 0,
            },
            9,
        )
        .await
        .unwrap();
    assert_eq!(storage.upload(&c, &hash).await.unwrap(), None);
    assert!(storage.may_read_blob(&c, &hash, 9).await.unwrap());
}

/// Bytes that differ at every position of a chunk (so a misplaced chunk changes the hash).
fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed)
        .collect()
}

fn server(db: &TestDb, store: &TestBlobStore, args: &[&str]) -> TestServer {
    TestServer::builder()
        .db(db)
        .blob_store(store)
        .args(args)
        .start()
}

/// A file of one chunk and a bit: opened, sent chunk by chunk (resumed by reopening, a wrong
/// offset answered with the right one), then downloaded whole, by range, and conditionally.
async fn chunks_offsets_and_downloads(db: TestDb, store: TestBlobStore) {
    let server = server(&db, &store, &[]);
    let c = server.client();
    let (token, _) = c.new_user().await;
    let data = bytes_of(CHUNK_BYTES + 1024 * 1024, 1);
    let hash = sha256_hex(&data);
    let size = data.len() as u64;

    let opened = c.open_upload(&token, &hash, size, "video/mp4").await;
    let body = opened.assert_ok();
    assert_eq!(body["hash"], hash.as_str());
    assert_eq!(body["offset"], 0);
    assert_eq!(body["complete"], false);
    assert_eq!(body["chunkBytes"], CHUNK_BYTES as u64);

    // Over chunkBytes, or a short chunk that does not end the upload: refused, nothing stored.
    c.send_chunk(&token, &hash, 0, data[..CHUNK_BYTES + 1].to_vec())
        .await
        .assert_error(413, "payload_too_large");
    c.send_chunk(&token, &hash, 0, data[..1024].to_vec())
        .await
        .assert_error(400, "invalid_request");

    let first = c
        .send_chunk(&token, &hash, 0, data[..CHUNK_BYTES].to_vec())
        .await;
    assert_eq!(first.assert_ok()["offset"], CHUNK_BYTES as u64);
    assert_eq!(first.body["complete"], false);
    // Reopening tells where the server is.
    let reopened = c.open_upload(&token, &hash, size, "video/mp4").await;
    assert_eq!(reopened.assert_ok()["offset"], CHUNK_BYTES as u64);
    // The first chunk again (a lost answer): 409 with the offset to go on from.
    let again = c
        .send_chunk(&token, &hash, 0, data[..CHUNK_BYTES].to_vec())
        .await;
    again.assert_error(409, "offset_mismatch");
    assert_eq!(again.body["offset"], CHUNK_BYTES as u64);
    // Past the end.
    c.send_chunk(
        &token,
        &hash,
        CHUNK_BYTES as u64,
        data[CHUNK_BYTES - 1..].to_vec(),
    )
    .await
    .assert_error(413, "payload_too_large");
    let last = c
        .send_chunk(
            &token,
            &hash,
            CHUNK_BYTES as u64,
            data[CHUNK_BYTES..].to_vec(),
        )
        .await;
    let body = last.assert_ok();
    assert_eq!(
        (body["offset"].as_u64(), body["complete"].as_bool()),
        (Some(size), Some(true))
    );
    // Done: no upload left to send chunks to; opening again answers complete.
    c.send_chunk(&token, &hash, size, Vec::new())
        .await
        .assert_error(404, "not_found");
    let done = c.open_upload(&token, &hash, size, "video/mp4").await;
    assert_eq!(done.assert_ok()["complete"], true);
    assert_eq!(done.body["offset"], size);

    let whole = c.download(&token, &hash, &[]).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.bytes.len(), data.len());
    assert!(whole.bytes == data, "the downloaded bytes differ");
    let header = |d: &tandem_testkit::blobs::Download, name: &str| {
        d.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(header(&whole, "content-length"), size.to_string());
    assert_eq!(header(&whole, "content-type"), "video/mp4");
    assert_eq!(header(&whole, "etag"), format!("\"{hash}\""));
    assert_eq!(
        header(&whole, "cache-control"),
        "private, max-age=31536000, immutable"
    );
    assert_eq!(header(&whole, "accept-ranges"), "bytes");

    let from = CHUNK_BYTES as u64 - 10;
    let tail = c
        .download(&token, &hash, &[("range", &format!("bytes={from}-"))])
        .await;
    assert_eq!(tail.status, 206);
    assert!(tail.bytes == data[from as usize..]);
    assert_eq!(
        header(&tail, "content-range"),
        format!("bytes {from}-{}/{size}", size - 1)
    );
    let slice = c.download(&token, &hash, &[("range", "bytes=10-19")]).await;
    assert_eq!(slice.status, 206);
    assert!(slice.bytes == data[10..20]);
    assert_eq!(header(&slice, "content-length"), "10");
    let past = c
        .download(&token, &hash, &[("range", &format!("bytes={size}-"))])
        .await;
    assert_eq!(past.status, 416);
    assert_eq!(header(&past, "content-range"), format!("bytes */{size}"));
    let error: serde_json::Value = serde_json::from_slice(&past.bytes).unwrap();
    assert_eq!(error["error"], "range_not_satisfiable");
    let cached = c
        .download(&token, &hash, &[("if-none-match", &format!("\"{hash}\""))])
        .await;
    assert_eq!(cached.status, 304);
    assert!(cached.bytes.is_empty());
}

/// Bad opens, the size limit, the quota, and chunks of an upload that is not open.
async fn refusals_and_limits(db: TestDb, store: TestBlobStore) {
    let server = server(
        &db,
        &store,
        &[
            "--attachment-max-bytes",
            "1000",
            "--attachment-quota-bytes",
            "1500",
        ],
    );
    let c = server.client();
    let (token, _) = c.new_user().await;
    let small = bytes_of(800, 2);
    let hash = sha256_hex(&small);

    for (hash, size, content_type) in [
        ("ABC", 10, "text/plain"),
        (&"A".repeat(64)[..], 10, "text/plain"),
        (hash.as_str(), 10, "text plain"),
        (hash.as_str(), 10, "textplain"),
        (hash.as_str(), 10, ""),
    ] {
        c.open_upload(&token, hash, size, content_type)
            .await
            .assert_error(400, "invalid_request");
    }
    let too_large = c.open_upload(&token, &hash, 1001, "image/png").await;
    too_large.assert_error(413, "attachment_too_large");
    assert!(too_large.body["error_description"]
        .as_str()
        .unwrap()
        .contains("1000"));
    // No upload open: chunks answer 404.
    c.send_chunk(&token, &hash, 0, small.clone())
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        c.upload(&token, &small, "image/png").await.assert_ok()["complete"],
        true
    );
    // 800 held + 800 more is over 1500.
    let other = bytes_of(800, 3);
    c.open_upload(&token, &sha256_hex(&other), 800, "image/png")
        .await
        .assert_error(403, "quota_exceeded");
    let fits = bytes_of(700, 4);
    assert_eq!(
        c.upload(&token, &fits, "image/png").await.assert_ok()["complete"],
        true
    );
    // What the user holds already is not counted twice.
    let again = c.open_upload(&token, &hash, 800, "image/png").await;
    assert_eq!(again.assert_ok()["complete"], true);
    // A chunk of another content type than the JSON routes': 415.
    let reply = c
        .send(
            c.http
                .patch(c.url(&format!("/sync/v1/blobs/uploads/{hash}")))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .header("upload-offset", "0")
                .body("{}"),
        )
        .await;
    reply.assert_error(415, "unsupported_media_type");
    // No Upload-Offset, or not a number: 400.
    for offset in [None, Some("-1"), Some("x")] {
        let mut request = c
            .http
            .patch(c.url(&format!("/sync/v1/blobs/uploads/{hash}")))
            .bearer_auth(&token)
            .header("content-type", "application/offset+octet-stream")
            .body("x");
        if let Some(offset) = offset {
            request = request.header("upload-offset", offset);
        }
        c.send(request).await.assert_error(400, "invalid_request");
    }
    // No token: 401.
    c.post(
        "/sync/v1/blobs/uploads",
        None,
        &serde_json::json!({"hash": hash, "size": 1, "contentType": "a/b"}),
    )
    .await
    .assert_error(401, "unauthorized");
    // The empty file: complete at once, when its hash is the empty one.
    let empty = c.upload(&token, &[], "text/plain").await;
    assert_eq!(empty.assert_ok()["complete"], true);
    let download = c.download(&token, &sha256_hex(&[]), &[]).await;
    assert_eq!((download.status.as_u16(), download.bytes.len()), (200, 0));
    c.open_upload(&token, &sha256_hex(b"x"), 0, "text/plain")
        .await
        .assert_error(422, "hash_mismatch");
    // A blob the user reads, declared with another size: refused, not claimed.
    c.open_upload(&token, &hash, 801, "image/png")
        .await
        .assert_error(400, "invalid_request");
}

/// Bytes that do not hash to the upload's hash are refused at the last chunk and the upload
/// starts over.
async fn hash_mismatch_discards_the_upload(db: TestDb, store: TestBlobStore) {
    let server = server(&db, &store, &[]);
    let c = server.client();
    let (token, _) = c.new_user().await;
    let claimed = bytes_of(4096, 5);
    let sent = bytes_of(4096, 6);
    let hash = sha256_hex(&claimed);
    c.open_upload(&token, &hash, 4096, "application/pdf")
        .await
        .assert_ok();
    c.send_chunk(&token, &hash, 0, sent)
        .await
        .assert_error(422, "hash_mismatch");
    let reopened = c.open_upload(&token, &hash, 4096, "application/pdf").await;
    assert_eq!(reopened.assert_ok()["offset"], 0);
    assert_eq!(reopened.body["complete"], false);
    assert_eq!(c.download(&token, &hash, &[]).await.status, 404);
    // The right bytes go through.
    let done = c.send_chunk(&token, &hash, 0, claimed.clone()).await;
    assert_eq!(done.assert_ok()["complete"], true);
    assert!(c.download(&token, &hash, &[]).await.bytes == claimed);
}

/// A blob the server holds answers `complete` only to a user who may read it; anyone else sends
/// the bytes (and may then read it). Downloads of an unreadable and of a missing blob answer
/// the same.
async fn dedup_only_for_readers(db: TestDb, store: TestBlobStore) {
    let server = server(&db, &store, &[]);
    let c = server.client();
    let (a, _) = c.new_user().await;
    let (b, _) = c.new_user().await;
    let data = bytes_of(10_000, 7);
    let hash = sha256_hex(&data);
    assert_eq!(
        c.upload(&a, &data, "image/jpeg").await.assert_ok()["complete"],
        true
    );
    // A's second device: nothing to send.
    let dedup = c.open_upload(&a, &hash, 10_000, "image/jpeg").await;
    assert_eq!(dedup.assert_ok()["complete"], true);

    // B knows the hash but may not read the blob: 404 like a blob that does not exist.
    let denied = c.download(&b, &hash, &[]).await;
    let missing = c.download(&b, &"0".repeat(64), &[]).await;
    let malformed = c.download(&b, "not-a-hash", &[]).await;
    assert_eq!(denied.status, 404);
    assert_eq!(missing.status, 404);
    assert_eq!(malformed.status, 404);
    assert_eq!(denied.bytes, missing.bytes);
    assert_eq!(denied.bytes, malformed.bytes);
    // B's open is not complete: B must send the bytes.
    let opened = c.open_upload(&b, &hash, 10_000, "image/jpeg").await;
    assert_eq!(opened.assert_ok()["complete"], false);
    assert_eq!(opened.body["offset"], 0);
    // Wrong bytes do not get B the blob, nor harm A's copy.
    c.send_chunk(&b, &hash, 0, bytes_of(10_000, 8))
        .await
        .assert_error(422, "hash_mismatch");
    assert_eq!(c.download(&b, &hash, &[]).await.status, 404);
    assert!(c.download(&a, &hash, &[]).await.bytes == data);
    let sent = c.upload(&b, &data, "image/jpeg").await;
    assert_eq!(sent.assert_ok()["complete"], true);
    assert!(c.download(&b, &hash, &[]).await.bytes == data);
    assert!(c.download(&a, &hash, &[]).await.bytes == data);
}

/// Sends a chunk's head and part of its body on a raw connection, then hangs up.
async fn cut_chunk(url: &str, token: &str, hash: &str, offset: u64, declared: usize, sent: &[u8]) {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH /sync/v1/blobs/uploads/{hash} HTTP/1.1\r\nhost: {addr}\r\n\
         authorization: Bearer {token}\r\ncontent-type: application/offset+octet-stream\r\n\
         upload-offset: {offset}\r\ncontent-length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
}

/// A connection cut mid-chunk stores nothing of it: the offset stays, the chunk is sent again.
async fn cut_mid_chunk_keeps_the_offset(db: TestDb, store: TestBlobStore) {
    let server = server(&db, &store, &[]);
    let c = server.client();
    let (token, _) = c.new_user().await;
    let data = bytes_of(CHUNK_BYTES + 4096, 9);
    let hash = sha256_hex(&data);
    let size = data.len() as u64;
    c.open_upload(&token, &hash, size, "video/mp4")
        .await
        .assert_ok();
    cut_chunk(
        server.url(),
        &token,
        &hash,
        0,
        CHUNK_BYTES,
        &data[..1024 * 1024],
    )
    .await;
    let reopened = c.open_upload(&token, &hash, size, "video/mp4").await;
    assert_eq!(reopened.assert_ok()["offset"], 0);
    c.send_chunk(&token, &hash, 0, data[..CHUNK_BYTES].to_vec())
        .await
        .assert_ok();
    // The last chunk cut short too.
    cut_chunk(
        server.url(),
        &token,
        &hash,
        CHUNK_BYTES as u64,
        4096,
        &data[CHUNK_BYTES..CHUNK_BYTES + 100],
    )
    .await;
    let reopened = c.open_upload(&token, &hash, size, "video/mp4").await;
    assert_eq!(reopened.assert_ok()["offset"], CHUNK_BYTES as u64);
    let done = c
        .send_chunk(
            &token,
            &hash,
            CHUNK_BYTES as u64,
            data[CHUNK_BYTES..].to_vec(),
        )
        .await;
    assert_eq!(done.assert_ok()["complete"], true);
    assert!(c.download(&token, &hash, &[]).await.bytes == data);
}

/// A server restarted mid-upload resumes it from the offset it acknowledged and checks the hash
/// by reading the staged bytes again (its incremental hash went with the process).
async fn restart_mid_upload_resumes(db: TestDb, store: TestBlobStore) {
    let mut server = server(&db, &store, &[]);
    let c = server.client();
    let (token, _) = c.new_user().await;
    let data = bytes_of(CHUNK_BYTES + 2048, 10);
    let hash = sha256_hex(&data);
    let size = data.len() as u64;
    c.open_upload(&token, &hash, size, "video/mp4")
        .await
        .assert_ok();
    c.send_chunk(&token, &hash, 0, data[..CHUNK_BYTES].to_vec())
        .await
        .assert_ok();
    server.restart();
    let c = server.client();
    let reopened = c.open_upload(&token, &hash, size, "video/mp4").await;
    assert_eq!(reopened.assert_ok()["offset"], CHUNK_BYTES as u64);
    let done = c
        .send_chunk(
            &token,
            &hash,
            CHUNK_BYTES as u64,
            data[CHUNK_BYTES..].to_vec(),
        )
        .await;
    assert_eq!(done.assert_ok()["complete"], true);
    assert!(c.download(&token, &hash, &[]).await.bytes == data);

    // The re-read hash is checked as well: a first chunk of other bytes is caught after a restart.
    let claimed = bytes_of(CHUNK_BYTES + 2048, 11);
    let hash = sha256_hex(&claimed);
    c.open_upload(&token, &hash, size, "video/mp4")
        .await
        .assert_ok();
    c.send_chunk(&token, &hash, 0, bytes_of(CHUNK_BYTES, 12))
        .await
        .assert_ok();
    server.restart();
    let c = server.client();
    c.send_chunk(
        &token,
        &hash,
        CHUNK_BYTES as u64,
        claimed[CHUNK_BYTES..].to_vec(),
    )
    .await
    .assert_error(422, "hash_mismatch");
    let reopened = c.open_upload(&token, &hash, size, "video/mp4").await;
    assert_eq!(reopened.assert_ok()["offset"], 0);
}

/// An uploader reads a blob no record names for the grace period, then no more (until a record
/// names it, or they send it again).
async fn holders_read_within_the_grace_period(db: TestDb, store: TestBlobStore) {
    let server = TestServer::builder()
        .db(&db)
        .blob_store(&store)
        .args(&["--attachment-grace-secs", "60"])
        .clock(ManualClock::new())
        .start();
    let c = server.client();
    let (token, _) = c.new_user().await;
    let data = bytes_of(3000, 13);
    let hash = sha256_hex(&data);
    c.upload(&token, &data, "image/png").await.assert_ok();
    server.advance(Duration::from_secs(59));
    assert_eq!(c.download(&token, &hash, &[]).await.status, 200);
    server.advance(Duration::from_secs(2));
    assert_eq!(c.download(&token, &hash, &[]).await.status, 404);
    // No longer readable: the open is not complete; sending the bytes again holds it anew.
    let opened = c.open_upload(&token, &hash, 3000, "image/png").await;
    assert_eq!(opened.assert_ok()["complete"], false);
    assert_eq!(
        c.upload(&token, &data, "image/png").await.assert_ok()["complete"],
        true
    );
    assert_eq!(c.download(&token, &hash, &[]).await.status, 200);
}

/// Two devices sending the same chunk at once: one lands, the other is told the new offset; the
/// blob is whole.
async fn racing_chunks_one_lands(db: TestDb, store: TestBlobStore) {
    let server = server(&db, &store, &[]);
    let c = server.client();
    let (token, _) = c.new_user().await;
    let data = bytes_of(CHUNK_BYTES + 512, 15);
    let hash = sha256_hex(&data);
    let size = data.len() as u64;
    c.open_upload(&token, &hash, size, "video/mp4")
        .await
        .assert_ok();
    let (one, two) = tokio::join!(
        c.send_chunk(&token, &hash, 0, data[..CHUNK_BYTES].to_vec()),
        c.send_chunk(&token, &hash, 0, data[..CHUNK_BYTES].to_vec()),
    );
    let mut statuses = [one.status.as_u16(), two.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", one.body, two.body);
    let loser = if one.status == 409 { &one } else { &two };
    assert_eq!(loser.body["offset"], CHUNK_BYTES as u64);
    let done = c
        .send_chunk(
            &token,
            &hash,
            CHUNK_BYTES as u64,
            data[CHUNK_BYTES..].to_vec(),
        )
        .await;
    assert_eq!(done.assert_ok()["complete"], true);
    assert!(c.download(&token, &hash, &[]).await.bytes == data);
}

/// Two instances on one PostgreSQL database and one blob store: an upload begun on one goes on
/// and ends on the other (which checks the hash by reading the staged bytes).
async fn two_instances_share_an_upload(db: TestDb, store: TestBlobStore) {
    if db.backend == Backend::Sqlite {
        return; // SQLite is one server's database.
    }
    let one = server(&db, &store, &[]);
    let two = server(&db, &store, &[]);
    let (c1, c2) = (one.client(), two.client());
    let (token, _) = c1.new_user().await;
    let data = bytes_of(CHUNK_BYTES + 700, 16);
    let hash = sha256_hex(&data);
    let size = data.len() as u64;
    c1.open_upload(&token, &hash, size, "video/mp4")
        .await
        .assert_ok();
    c1.send_chunk(&token, &hash, 0, data[..CHUNK_BYTES].to_vec())
        .await
        .assert_ok();
    let reopened = c2.open_upload(&token, &hash, size, "video/mp4").await;
    assert_eq!(reopened.assert_ok()["offset"], CHUNK_BYTES as u64);
    let done = c2
        .send_chunk(
            &token,
            &hash,
            CHUNK_BYTES as u64,
            data[CHUNK_BYTES..].to_vec(),
        )
        .await;
    assert_eq!(done.assert_ok()["complete"], true);
    assert!(c1.download(&token, &hash, &[]).await.bytes == data);
    assert!(c2.download(&token, &hash, &[]).await.bytes == data);
}

/// Without `--blob-store`, a SQLite server keeps blobs in `<database file>.blobs/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_live_next_to_a_sqlite_database_by_default() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = TestServer::builder().db(&db).start();
    let c: Client = server.client();
    let (token, _) = c.new_user().await;
    let data = bytes_of(100, 14);
    c.upload(&token, &data, "text/plain").await.assert_ok();
    let path = format!(
        "{}.blobs/blobs/{}",
        db.url.trim_start_matches("sqlite://"),
        sha256_hex(&data)
    );
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

/// Refusals and failures of uploads and downloads are logged with the user id and the hash's
/// first 12 hex digits, never the token or the whole hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_log_user_and_hash_prefix_only() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = TestServer::builder()
        .db(&db)
        .args(&["--attachment-max-bytes", "100"])
        .capture_logs()
        .start();
    let c = server.client();
    let (token, session) = c.new_user().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_string();
    let data = bytes_of(50, 17);
    let hash = sha256_hex(&data);
    c.open_upload(&token, &hash, 101, "image/png")
        .await
        .assert_error(413, "attachment_too_large");
    c.open_upload(&token, &hash, 50, "image/png")
        .await
        .assert_ok();
    c.send_chunk(&token, &hash, 0, bytes_of(50, 18))
        .await
        .assert_error(422, "hash_mismatch");
    let mut logs = String::new();
    for _ in 0..100 {
        logs = server.logs();
        if logs.contains("do not hash to its hash") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(logs.contains("attachment too large"), "{logs}");
    assert!(logs.contains("do not hash to its hash"), "{logs}");
    assert!(logs.contains(&hash[..12]), "{logs}");
    assert!(!logs.contains(&hash), "a whole hash in the logs:\n{logs}");
    assert!(!logs.contains(&token), "a token in the logs");
    assert!(logs.contains(&user_id), "{logs}");
}
