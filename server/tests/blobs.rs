//! Attachments on the server (docs/design/attachments.md §3–4): the blob tables' access rule
//! (`Storage::may_read_blob`) on both backends, and the upload and download routes on both
//! backends × both blob stores (a directory, and moto's S3 server when `TANDEM_TEST_S3_URL` is
//! set, as `scripts/test.sh` does).

use tandem_server::spaces::SpaceLimits;
use tandem_server::storage::{BlobRow, Role, SpaceOutcome, Storage, UploadRow, UserRow};
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite::{Backend, TestDb};

on_both_backends!(access_rule, upload_rows);

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
    assert!(storage
        .advance_upload(&c, &hash, "m1", 0, 5, &parts, 2)
        .await
        .unwrap());
    // A second chunk from the same offset (a race, or a retry) does not land.
    assert!(!storage
        .advance_upload(&c, &hash, "m1", 0, 5, &parts, 3)
        .await
        .unwrap());
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
    assert!(!storage
        .advance_upload(&c, &hash, "m1", 0, 5, &[], 4)
        .await
        .unwrap());
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
