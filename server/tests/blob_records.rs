//! The record side of attachments, on SQLite and PostgreSQL (docs/protocol.md "Attachments"): a
//! push may name only blobs the pusher may read (`rejected` `attachment_missing` otherwise, and
//! references the record already holds are not checked again); who may download a blob follows
//! the records that reference it (owner, space members of any role, every signed-in user for a
//! public record; everyone else `404`); the admin uploads public blobs (`PUT /admin/v1/blobs/…`)
//! and admin writes and `tandem-server import` refuse a blob the server does not hold; the purge
//! deletes a blob orphaned longer than the tombstone retention (object and row), keeps one
//! referenced again, and drops abandoned uploads.

use std::time::Duration;

use serde_json::{json, Value};
use tandem_testkit::blobs::{sha256_hex, TestBlobStore};
use tandem_testkit::on_backends_and_blob_stores;
use tandem_testkit::server::test_schema_path;
use tandem_testkit::server_suite as common;

use common::{create, delete, in_space, statuses, upsert, Client, TestDb, TestServer, SECRET};

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";
const DAY: Duration = Duration::from_secs(24 * 3600);

on_backends_and_blob_stores!(
    a_push_names_blobs_the_pusher_may_read,
    space_members_read_blobs_their_space_references,
    an_edit_of_another_field_never_checks_the_blob_again,
    public_blobs_come_from_the_admin,
    import_refuses_a_blob_the_server_does_not_hold,
    unreferenced_blobs_go_after_the_retention,
    a_blob_referenced_again_survives,
    a_deleted_spaces_blobs_go_too,
    abandoned_uploads_go_after_the_retention,
);

/// An in-process server (manual clock) with the admin token, its blobs in `store`.
fn server_on(db: &TestDb, store: &TestBlobStore) -> TestServer {
    TestServer::builder()
        .db(db)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .blob_store(store)
        .in_process()
        .start()
}

/// Uploads `bytes` as `token`'s (open, then one chunk unless the open answers `complete`).
async fn upload(c: &Client, token: &str, bytes: &[u8]) -> String {
    let hash = sha256_hex(bytes);
    let open = c
        .post(
            "/sync/v1/blobs/uploads",
            Some(token),
            &json!({"hash": hash, "size": bytes.len(), "contentType": "image/jpeg"}),
        )
        .await;
    if open.assert_ok()["complete"] == true {
        return hash;
    }
    let offset = open.body["offset"].as_u64().unwrap() as usize;
    let sent = patch(c, token, &hash, offset, &bytes[offset..]).await;
    assert_eq!(sent.assert_ok()["complete"], true, "{}", sent.body);
    hash
}

/// `PATCH /sync/v1/blobs/uploads/{hash}` with `chunk` at `offset`.
async fn patch(c: &Client, token: &str, hash: &str, offset: usize, chunk: &[u8]) -> common::Reply {
    c.send(
        c.http
            .patch(c.url(&format!("/sync/v1/blobs/uploads/{hash}")))
            .bearer_auth(token)
            .header("Upload-Offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(chunk.to_vec()),
    )
    .await
}

/// `GET /sync/v1/blobs/{hash}` as `token`: the status and the bytes.
async fn download(c: &Client, token: &str, hash: &str) -> (u16, Vec<u8>) {
    let response = c
        .http
        .get(c.url(&format!("/sync/v1/blobs/{hash}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// `PUT /admin/v1/blobs/{hash}` with the whole file.
async fn admin_put(c: &Client, token: &str, hash: &str, bytes: &[u8]) -> common::Reply {
    c.send(
        c.http
            .put(c.url(&format!("/admin/v1/blobs/{hash}")))
            .bearer_auth(token)
            .header("content-type", "image/png")
            .body(bytes.to_vec()),
    )
    .await
}

fn attachment(hash: &str, size: usize) -> Value {
    json!({"hash": hash, "size": size, "contentType": "image/jpeg", "name": "climb.jpg"})
}

fn status_of(results: &[Value]) -> Vec<(String, Option<String>)> {
    statuses(results)
}

async fn a_push_names_blobs_the_pusher_may_read(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let (a, b) = (c.user().await, c.user().await);
    let bytes = b"a photo of a climb".to_vec();
    let hash = upload(&c, &a.token, &bytes).await;
    // A's own upload: applied.
    let results = c
        .push_ok(
            &a.token,
            vec![create(
                "o1",
                "photos",
                "p1",
                json!({"image": attachment(&hash, bytes.len()), "caption": "top"}),
            )],
        )
        .await;
    assert_eq!(status_of(&results), vec![("applied".into(), None)]);
    // A hash the server does not hold, and A's private blob named by B: attachment_missing.
    let unknown = sha256_hex(b"never uploaded");
    let missing = vec![(
        "rejected".to_string(),
        Some("attachment_missing".to_string()),
    )];
    let results = c
        .push_ok(
            &a.token,
            vec![create(
                "o2",
                "photos",
                "p2",
                json!({"image": attachment(&unknown, 14)}),
            )],
        )
        .await;
    assert_eq!(status_of(&results), missing);
    let results = c
        .push_ok(
            &b.token,
            vec![create(
                "o3",
                "photos",
                "p3",
                json!({"image": attachment(&hash, bytes.len())}),
            )],
        )
        .await;
    assert_eq!(status_of(&results), missing);
    // A failing member fails its atomic group.
    let results = c
        .push_ok(
            &a.token,
            vec![
                common::grouped(
                    "g",
                    create("o4", "photos", "p4", json!({"caption": "fine"})),
                ),
                common::grouped(
                    "g",
                    create(
                        "o5",
                        "photos",
                        "p5",
                        json!({"image": attachment(&unknown, 14)}),
                    ),
                ),
            ],
        )
        .await;
    assert_eq!(results[0]["status"], "aborted");
    assert_eq!(results[1]["reason"], "attachment_missing");
    // B cannot download it either; A can, and still can once the grace period is over: the
    // record references it (its record_blobs row).
    assert_eq!(download(&c, &b.token, &hash).await.0, 404);
    server.advance(2 * DAY);
    let a = relogin(&c, &a).await;
    assert_eq!(download(&c, &a, &hash).await, (200, bytes.clone()));
    // Once the record is deleted, past the grace period, A no longer may: nothing references it.
    let results = c
        .push_ok(&a, vec![delete("o6", "photos", "p1", Some(1))])
        .await;
    assert_eq!(status_of(&results), vec![("applied".into(), None)]);
    assert_eq!(download(&c, &a, &hash).await.0, 404);
}

/// A fresh token for `user` (tokens expire when the manual clock moves past their lifetime).
async fn relogin(c: &Client, user: &common::User) -> String {
    c.sign_in(&user.email, "password123").await.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn space_members_read_blobs_their_space_references(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let (owner, editor, viewer, outsider) = (
        c.user().await,
        c.user().await,
        c.user().await,
        c.user().await,
    );
    let space = c.create_space(&owner.token, "climbs").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.join(&owner, &space, &editor, "editor").await;
    c.join(&owner, &space, &viewer, "viewer").await;
    let bytes = b"the route map".to_vec();
    let hash = upload(&c, &owner.token, &bytes).await;
    let results = c
        .push_ok(
            &owner.token,
            vec![in_space(
                &space,
                create(
                    "o1",
                    "shared_files",
                    "f1",
                    json!({"blob": attachment(&hash, bytes.len()), "title": "map"}),
                ),
            )],
        )
        .await;
    assert_eq!(status_of(&results), vec![("applied".into(), None)]);
    assert_eq!(
        download(&c, &editor.token, &hash).await,
        (200, bytes.clone())
    );
    assert_eq!(
        download(&c, &viewer.token, &hash).await,
        (200, bytes.clone())
    );
    assert_eq!(download(&c, &outsider.token, &hash).await.0, 404);
    // The outsider cannot name it; the editor may, in their own stream too (they may read it).
    let missing = vec![(
        "rejected".to_string(),
        Some("attachment_missing".to_string()),
    )];
    let results = c
        .push_ok(
            &outsider.token,
            vec![create(
                "o2",
                "photos",
                "x",
                json!({"image": attachment(&hash, bytes.len())}),
            )],
        )
        .await;
    assert_eq!(status_of(&results), missing);
    let results = c
        .push_ok(
            &editor.token,
            vec![create(
                "o3",
                "photos",
                "mine",
                json!({"image": attachment(&hash, bytes.len())}),
            )],
        )
        .await;
    assert_eq!(status_of(&results), vec![("applied".into(), None)]);
}

async fn an_edit_of_another_field_never_checks_the_blob_again(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let (owner, editor) = (c.user().await, c.user().await);
    let space = c.create_space(&owner.token, "climbs").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.join(&owner, &space, &editor, "editor").await;
    let bytes = b"owner's photo".to_vec();
    let hash = upload(&c, &owner.token, &bytes).await;
    let doc = |title: &str| json!({"blob": attachment(&hash, bytes.len()), "title": title});
    c.push_ok(
        &owner.token,
        vec![in_space(
            &space,
            create("o1", "shared_files", "f1", doc("before")),
        )],
    )
    .await;
    // The editor never uploaded it and edits the title: applied.
    let results = c
        .push_ok(
            &editor.token,
            vec![in_space(
                &space,
                upsert("o2", "shared_files", "f1", Some(1), doc("after")),
            )],
        )
        .await;
    assert_eq!(status_of(&results), vec![("applied".into(), None)]);
}

async fn public_blobs_come_from_the_admin(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let (a, b) = (c.user().await, c.user().await);
    let bytes = b"squat form, side view".to_vec();
    let hash = sha256_hex(&bytes);
    // Only the admin token; the bytes must hash to the name.
    admin_put(&c, &a.token, &hash, &bytes)
        .await
        .assert_error(401, "unauthorized");
    admin_put(&c, ADMIN, &hash, b"other bytes")
        .await
        .assert_error(422, "hash_mismatch");
    // Not stored: no admin write may name it yet.
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog_media", "id": "m1",
                "doc": {"image": attachment(&hash, bytes.len()), "label": "squat"}}]),
    )
    .await
    .assert_error(422, "validation_failed");
    let put = admin_put(&c, ADMIN, &hash, &bytes).await;
    assert_eq!(put.assert_ok()["complete"], true);
    // Held by nobody: unreadable until a record references it.
    assert_eq!(download(&c, &a.token, &hash).await.0, 404);
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog_media", "id": "m1",
                "doc": {"image": attachment(&hash, bytes.len()), "label": "squat"}}]),
    )
    .await
    .assert_ok();
    assert_eq!(download(&c, &a.token, &hash).await, (200, bytes.clone()));
    assert_eq!(download(&c, &b.token, &hash).await, (200, bytes.clone()));
    // Every user may name it in their own records too.
    let results = c
        .push_ok(
            &b.token,
            vec![create(
                "o1",
                "photos",
                "p",
                json!({"image": attachment(&hash, bytes.len())}),
            )],
        )
        .await;
    assert_eq!(status_of(&results), vec![("applied".into(), None)]);
}

async fn import_refuses_a_blob_the_server_does_not_hold(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let user = c.user().await;
    let bytes = b"deadlift, front".to_vec();
    let hash = sha256_hex(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("media.jsonl");
    let line = |id: &str, hash: &str| {
        json!({"id": id, "doc": {"image": attachment(hash, bytes.len()), "label": id}}).to_string()
    };
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            json!({"id": "plain", "doc": {"label": "x"}}),
            line("m1", &hash)
        ),
    )
    .unwrap();
    let config = tandem_server::Config {
        db: db.url.clone(),
        schema: Some(test_schema_path()),
        ..Default::default()
    };
    let refused = tandem_server::import::run(&config, "catalog_media", &file, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.starts_with("line 2: attachment_missing"),
        "{refused}"
    );
    // Nothing was written.
    let (changes, _) = c.pull_all(&user.token, None).await;
    assert!(changes.is_empty(), "{changes:?}");
    admin_put(&c, ADMIN, &hash, &bytes).await.assert_ok();
    let summary = tandem_server::import::run(&config, "catalog_media", &file, false)
        .await
        .unwrap();
    assert_eq!(summary.created, 2);
    assert_eq!(download(&c, &user.token, &hash).await, (200, bytes.clone()));
}

/// Whether the store holds the complete blob `hash` (`blobs/<hash>`), asked of the store itself.
async fn stored(store: &TestBlobStore, hash: &str) -> bool {
    let config = tandem_server::Config {
        blob_store: Some(store.url.clone()),
        blob_store_options: store.env.clone(),
        ..Default::default()
    };
    let blobs = tandem_server::blobs::BlobStore::from_config(&config).unwrap();
    blobs.size(&blobs.blob_key(hash)).await.unwrap().is_some()
}

async fn unreferenced_blobs_go_after_the_retention(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let user = c.user().await;
    let bytes = b"a photo deleted later".to_vec();
    let hash = upload(&c, &user.token, &bytes).await;
    c.push_ok(
        &user.token,
        vec![create(
            "o1",
            "photos",
            "p",
            json!({"image": attachment(&hash, bytes.len())}),
        )],
    )
    .await;
    assert!(stored(&store, &hash).await);
    c.push_ok(&user.token, vec![delete("o2", "photos", "p", Some(1))])
        .await;
    // Past the grace period the blob is unreferenced and unheld: marked, not yet deleted.
    server.advance(2 * DAY);
    server.purge_now();
    assert!(stored(&store, &hash).await);
    // Marked longer than the retention (30 days): object and row go.
    server.advance(31 * DAY);
    server.purge_now();
    assert!(!stored(&store, &hash).await, "the object is still there");
    let token = relogin(&c, &user).await;
    assert_eq!(download(&c, &token, &hash).await.0, 404);
    // The row went too: opening the upload again starts from nothing.
    let open = c
        .post(
            "/sync/v1/blobs/uploads",
            Some(&token),
            &json!({"hash": hash, "size": bytes.len(), "contentType": "image/jpeg"}),
        )
        .await;
    assert_eq!(open.assert_ok()["complete"], false);
    assert_eq!(open.body["offset"], 0);
}

async fn a_blob_referenced_again_survives(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let user = c.user().await;
    let bytes = b"a photo used twice".to_vec();
    let hash = upload(&c, &user.token, &bytes).await;
    let doc = json!({"image": attachment(&hash, bytes.len())});
    c.push_ok(&user.token, vec![create("o1", "photos", "p", doc.clone())])
        .await;
    c.push_ok(&user.token, vec![delete("o2", "photos", "p", Some(1))])
        .await;
    server.advance(2 * DAY);
    server.purge_now(); // marked
                        // Uploaded again and referenced before the deadline.
    let token = relogin(&c, &user).await;
    assert_eq!(upload(&c, &token, &bytes).await, hash);
    let results = c
        .push_ok(&token, vec![create("o3", "photos", "q", doc.clone())])
        .await;
    assert_eq!(status_of(&results), vec![("applied".into(), None)]);
    server.purge_now(); // unmarked
    server.advance(31 * DAY);
    server.purge_now();
    assert!(stored(&store, &hash).await);
    let token = relogin(&c, &user).await;
    assert_eq!(download(&c, &token, &hash).await, (200, bytes));
}

async fn a_deleted_spaces_blobs_go_too(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let (owner, member) = (c.user().await, c.user().await);
    let space = c.create_space(&owner.token, "trip").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.join(&owner, &space, &member, "viewer").await;
    let bytes = b"a photo of the trip".to_vec();
    let hash = upload(&c, &owner.token, &bytes).await;
    c.push_ok(
        &owner.token,
        vec![in_space(
            &space,
            create(
                "o1",
                "shared_files",
                "f",
                json!({"blob": attachment(&hash, bytes.len())}),
            ),
        )],
    )
    .await;
    assert_eq!(download(&c, &member.token, &hash).await.0, 200);
    assert_eq!(c.delete_space(&owner.token, &space).await.status, 204);
    // The space's records (and what they name) go with the purge; then the blob is an orphan.
    assert_eq!(download(&c, &member.token, &hash).await.0, 404);
    server.advance(2 * DAY);
    server.purge_now();
    assert!(stored(&store, &hash).await, "kept until the retention");
    server.advance(31 * DAY);
    server.purge_now();
    assert!(!stored(&store, &hash).await, "the object is still there");
}

async fn abandoned_uploads_go_after_the_retention(db: TestDb, store: TestBlobStore) {
    let server = server_on(&db, &store);
    let c = server.client();
    let user = c.user().await;
    // A first chunk (exactly chunkBytes) of a larger file, then nothing.
    let chunk = 8 * 1024 * 1024;
    let bytes = vec![7u8; chunk + 10];
    let hash = sha256_hex(&bytes);
    let open_body = json!({"hash": hash, "size": bytes.len(), "contentType": "video/mp4"});
    let open = c
        .post("/sync/v1/blobs/uploads", Some(&user.token), &open_body)
        .await;
    assert_eq!(open.assert_ok()["chunkBytes"], chunk as u64);
    let first = chunk;
    patch(&c, &user.token, &hash, 0, &bytes[..first])
        .await
        .assert_ok();
    server.advance(2 * DAY);
    server.purge_now();
    let token = relogin(&c, &user).await;
    let open = c
        .post("/sync/v1/blobs/uploads", Some(&token), &open_body)
        .await;
    assert_eq!(
        open.assert_ok()["offset"],
        first as u64,
        "kept within the retention"
    );
    server.advance(31 * DAY);
    server.purge_now();
    let token = relogin(&c, &user).await;
    let open = c
        .post("/sync/v1/blobs/uploads", Some(&token), &open_body)
        .await;
    assert_eq!(
        open.assert_ok()["offset"],
        0,
        "an abandoned upload starts again"
    );
}
