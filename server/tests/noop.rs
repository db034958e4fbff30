//! No-op pushes: an upsert whose document is already the record's current document (on the
//! version the change was based on) is answered `applied` at the current version, with no new
//! version, no change-log entry and no poke. On SQLite and (with `TANDEM_TEST_POSTGRES_URL`)
//! PostgreSQL.

use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::{create, op, upsert, TestDb, TestServer};
use serde_json::json;

on_both_backends!(
    an_identical_upsert_keeps_the_version_and_logs_nothing,
    an_identical_upsert_within_one_batch_is_a_no_op,
    a_stale_identical_upsert_still_conflicts,
    an_identical_upsert_pokes_no_one,
);

async fn an_identical_upsert_keeps_the_version_and_logs_nothing(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let doc = json!({"name": "A", "notes": "n", "meta": {"x": 1, "y": [1, 2]}});
    let r = c
        .push_ok(&t, vec![create("o1", "plans", "p", doc.clone())])
        .await;
    assert_eq!(r[0]["version"], 1);
    let (_, cursor) = c.pull_all(&t, None).await;

    // The same document, its keys in another order: applied, at the current version.
    let same = json!({"meta": {"y": [1, 2], "x": 1}, "notes": "n", "name": "A"});
    let r = c
        .push_ok(&t, vec![upsert("o2", "plans", "p", Some(1), same.clone())])
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "o2", "status": "applied", "version": 1})
    );
    let (changes, after) = c.pull_all(&t, Some(&cursor)).await;
    assert!(changes.is_empty(), "a no-op logged a change: {changes:?}");
    assert_eq!(after, cursor, "the change sequence did not move");

    // Its op id is remembered like any applied op's: a replay is a duplicate.
    let r = c
        .push_ok(&t, vec![upsert("o2", "plans", "p", Some(1), same)])
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "o2", "status": "duplicate", "version": 1})
    );

    // A real change still makes a version, based on the unchanged one.
    let r = c
        .push_ok(
            &t,
            vec![upsert("o3", "plans", "p", Some(1), json!({"name": "B"}))],
        )
        .await;
    assert_eq!(r[0]["version"], 2);
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["version"], 2);
    assert_eq!(changes[0]["doc"], json!({"name": "B"}));
}

async fn an_identical_upsert_within_one_batch_is_a_no_op(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let r = c
        .push_ok(
            &t,
            vec![
                create("b1", "plans", "p", json!({"name": "A"})),
                upsert("b2", "plans", "p", Some(1), json!({"name": "A"})),
                upsert("b3", "plans", "p", Some(1), json!({"name": "C"})),
                upsert("b4", "plans", "p", Some(2), json!({"name": "C"})),
            ],
        )
        .await;
    let versions: Vec<_> = r
        .iter()
        .map(|r| (r["status"].clone(), r["version"].clone()))
        .collect();
    assert_eq!(
        versions,
        vec![
            (json!("applied"), json!(1)),
            (json!("applied"), json!(1)),
            (json!("applied"), json!(2)),
            (json!("applied"), json!(2)),
        ]
    );
    let (changes, _) = c.pull_all(&t, None).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["version"], 2);
}

async fn a_stale_identical_upsert_still_conflicts(db: TestDb) {
    // The rule needs the base to be the current version: a change based on an older one is a
    // version mismatch as before (the client's merge finds nothing to send). A create of a record
    // that exists, a deleted record and a record the server never had are judged as before too.
    let (_server, c, t) = TestServer::with_user(&db).await;
    c.push_ok(
        &t,
        vec![
            create("s1", "plans", "p", json!({"name": "A"})),
            upsert("s2", "plans", "p", Some(1), json!({"name": "B"})),
        ],
    )
    .await;
    let r = c
        .push_ok(
            &t,
            vec![
                upsert("s3", "plans", "p", Some(1), json!({"name": "B"})),
                create("s4", "plans", "p", json!({"name": "B"})),
            ],
        )
        .await;
    assert_eq!(r[0]["reason"], "version_mismatch");
    assert_eq!(r[0]["serverVersion"], 2);
    assert_eq!(r[1]["reason"], "already_exists");
}

async fn an_identical_upsert_pokes_no_one(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let mut events = c.events(&t).await;
    c.push_ok(&t, vec![create(&op(), "plans", "p", json!({"name": "A"}))])
        .await;
    // The creation's own poke is taken first: on PostgreSQL it travels through LISTEN/NOTIFY and
    // may reach the stream after the pushes below have been answered.
    let (_, created) = c.pull_all(&t, None).await;
    assert_eq!(events.next_poke().await, created);
    let r = c
        .push_ok(
            &t,
            vec![upsert(&op(), "plans", "p", Some(1), json!({"name": "A"}))],
        )
        .await;
    assert_eq!(r[0]["version"], 1);
    // Then a real change: the first poke the stream sees is that one's.
    c.push_ok(&t, vec![create(&op(), "plans", "q", json!({"name": "Q"}))])
        .await;
    let (_, latest) = c.pull_all(&t, None).await;
    let first = events.next_poke().await;
    assert_eq!(first, latest, "the no-op poked");
}
