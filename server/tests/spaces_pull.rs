//! The stream form of a pull (docs/design/spaces.md §2, §6) on both backends: three streams in
//! one pull, `gone` after removal (and the removed member's push `forbidden`), space deletion,
//! per-stream `expired`, joining a large space after incremental changes, the account section,
//! and the cursor form answering as before. Membership goes through the storage primitives
//! directly (their HTTP routes have suites of their own).

use std::time::Duration;

use serde_json::{json, Value};
use tandem_server::spaces::SpaceLimits;
use tandem_server::storage::{Role, SpaceOutcome, Storage};
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite::{delete, op, upsert, Client, TestDb, TestServer};

on_both_backends!(
    three_streams_in_one_pull,
    removal_while_offline_is_gone_and_forbidden,
    space_deletion_is_gone_for_all_and_purged_later,
    expiry_is_per_stream,
    joining_a_large_space_pulls_only_it_after_incremental_changes,
    account_section_only_when_its_seq_differs,
    cursor_form_answers_as_before,
    remaining_is_exact_over_many_streams,
);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct User {
    id: String,
    email: String,
    token: String,
}

async fn user(c: &Client, storage: &Storage) -> User {
    let email = format!("u-{}@example.com", uuid::Uuid::now_v7().simple());
    let session = c.signup(&email, "password123").await.assert_ok().clone();
    let id = storage.user_by_email(&email).await.unwrap().unwrap().id;
    User {
        id,
        email,
        token: session["access_token"].as_str().unwrap().to_string(),
    }
}

fn done<T: std::fmt::Debug>(outcome: SpaceOutcome<T>) -> T {
    match outcome {
        SpaceOutcome::Done(value) => value,
        other => panic!("expected Done, got {other:?}"),
    }
}

async fn create_space(storage: &Storage, owner: &User, name: &str) -> String {
    let (space, _) = done(
        storage
            .create_space(&owner.id, name, &op(), now_ms(), SpaceLimits::default())
            .await
            .unwrap(),
    );
    space.id
}

/// `owner` invites `member`, who accepts with `role`.
async fn join(storage: &Storage, owner: &User, space: &str, member: &User, role: Role) {
    let limits = SpaceLimits::default();
    let (invitation, _) = done(
        storage
            .invite(&owner.id, space, &member.email, role, now_ms(), limits)
            .await
            .unwrap(),
    );
    done(
        storage
            .accept_invitation(&member.id, &invitation.id, now_ms(), limits)
            .await
            .unwrap(),
    );
}

fn in_space(mut mutation: Value, space: &str) -> Value {
    mutation["space"] = json!(space);
    mutation
}

fn project(id: &str, space: &str, name: &str) -> Value {
    in_space(
        upsert(&op(), "team_projects", id, None, json!({"name": name})),
        space,
    )
}

fn stream(space: &str) -> String {
    format!("space:{space}")
}

/// One stream-form page.
async fn pull(
    c: &Client,
    token: &str,
    streams: &Value,
    account_seq: Option<i64>,
    limit: i64,
) -> Value {
    let mut body = json!({"streams": streams, "limit": limit});
    if let Some(seq) = account_seq {
        body["accountSeq"] = json!(seq);
    }
    c.post("/sync/v1/pull", Some(token), &body)
        .await
        .assert_ok()
        .clone()
}

/// Pulls pages until `hasMore` is false, keeping cursors as a client does; returns every change
/// and the final cursor map (a `gone` stream is dropped, an `expired` one restarts from null).
async fn pull_all(c: &Client, token: &str, streams: &mut Value, limit: i64) -> Vec<Value> {
    let mut changes = Vec::new();
    for _ in 0..1000 {
        let page = pull(c, token, streams, None, limit).await;
        changes.extend(page["changes"].as_array().unwrap().iter().cloned());
        for (key, entry) in page["streams"].as_object().unwrap() {
            match entry["status"].as_str().unwrap() {
                "ok" => streams[key] = entry["cursor"].clone(),
                "gone" => {
                    streams.as_object_mut().unwrap().remove(key);
                }
                "expired" => streams[key] = Value::Null,
                other => panic!("unknown status {other}"),
            }
        }
        if !page["hasMore"].as_bool().unwrap() {
            return changes;
        }
    }
    panic!("pull never finished");
}

fn ids(changes: &[Value]) -> Vec<&str> {
    changes
        .iter()
        .map(|c| c["entityId"].as_str().unwrap())
        .collect()
}

fn status<'a>(page: &'a Value, stream: &str) -> Option<&'a str> {
    page["streams"][stream]["status"].as_str()
}

async fn three_streams_in_one_pull(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let (a, b, v, x) = (
        user(&c, &storage).await,
        user(&c, &storage).await,
        user(&c, &storage).await,
        user(&c, &storage).await,
    );
    let s = create_space(&storage, &a, "Family").await;
    join(&storage, &a, &s, &b, Role::Editor).await;
    join(&storage, &a, &s, &v, Role::Viewer).await;

    // A writes its own record and one in the space, in one push.
    let results = c
        .push_ok(
            &a.token,
            vec![
                upsert(&op(), "plans", "mine", None, json!({"name": "Mine"})),
                project("p1", &s, "Shared"),
            ],
        )
        .await;
    assert!(
        results.iter().all(|r| r["status"] == "applied"),
        "{results:?}"
    );

    // B pulls every stream it may read: its own (empty), public (empty), the space.
    let page = pull(&c, &b.token, &json!({}), None, 100).await;
    let changes = page["changes"].as_array().unwrap();
    assert_eq!(ids(changes), vec!["p1"]);
    assert_eq!(changes[0]["space"], json!(s));
    for key in ["user", "public", stream(&s).as_str()] {
        assert_eq!(status(&page, key), Some("ok"), "{key}: {page}");
        assert!(page["streams"][key]["cursor"]
            .as_str()
            .unwrap()
            .starts_with("c3."));
    }
    assert_eq!(page["hasMore"], json!(false));
    assert_eq!(page["remaining"], json!(0));

    // The editor writes the space; the viewer, a non-member and anyone writing `public` are
    // refused per mutation, the same whether the record exists or not.
    let edit = c
        .push_ok(
            &b.token,
            vec![in_space(
                upsert(
                    &op(),
                    "team_projects",
                    "p1",
                    Some(1),
                    json!({"name": "Edited"}),
                ),
                &s,
            )],
        )
        .await;
    assert_eq!(edit[0]["status"], "applied");
    for (who, id) in [(&v, "p1"), (&v, "nope"), (&x, "p1"), (&x, "nope")] {
        let r = c
            .push_ok(
                &who.token,
                vec![in_space(
                    upsert(&op(), "team_projects", id, Some(2), json!({"name": "No"})),
                    &s,
                )],
            )
            .await;
        assert_eq!(
            (r[0]["status"].as_str(), r[0]["reason"].as_str()),
            (Some("rejected"), Some("forbidden")),
            "{r:?}"
        );
        assert!(r[0].get("version").is_none_or(Value::is_null));
    }
    let public = c
        .push_ok(
            &a.token,
            vec![upsert(
                &op(),
                "catalog",
                "c1",
                None,
                json!({"name": "Squat"}),
            )],
        )
        .await;
    assert_eq!(public[0]["reason"], "forbidden");
    // Shape errors: a space collection without a space, a space on a user collection, a group
    // spanning two streams.
    for body in [
        vec![upsert(
            &op(),
            "team_projects",
            "p9",
            None,
            json!({"name": "P"}),
        )],
        vec![in_space(
            upsert(&op(), "plans", "x", None, json!({"name": "P"})),
            &s,
        )],
        vec![
            {
                let mut m = upsert(&op(), "plans", "g1", None, json!({"name": "P"}));
                m["groupId"] = json!("g");
                m
            },
            {
                let mut m = project("g2", &s, "P");
                m["groupId"] = json!("g");
                m
            },
        ],
    ] {
        c.push(&a.token, body)
            .await
            .assert_error(400, "invalid_request");
    }
    // A child lives in its parent's space; its parent is looked up there.
    let child = c
        .push_ok(
            &a.token,
            vec![in_space(
                upsert(
                    &op(),
                    "team_tasks",
                    "t1",
                    None,
                    json!({"projectId": "p1", "title": "T"}),
                ),
                &s,
            )],
        )
        .await;
    assert_eq!(child[0]["status"], "applied");
    let orphan = c
        .push_ok(
            &a.token,
            vec![upsert(
                &op(),
                "plan_days",
                "d1",
                None,
                json!({"planId": "p1", "dayIndex": 0}),
            )],
        )
        .await;
    assert_eq!(
        orphan[0]["reason"], "invalid_parent",
        "the space's plan is not the user's"
    );
}

async fn removal_while_offline_is_gone_and_forbidden(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let (a, b) = (user(&c, &storage).await, user(&c, &storage).await);
    let s = create_space(&storage, &a, "Team").await;
    join(&storage, &a, &s, &b, Role::Editor).await;
    c.push_ok(&a.token, vec![project("p1", &s, "One")]).await;
    let mut cursors = json!({});
    assert_eq!(
        ids(&pull_all(&c, &b.token, &mut cursors, 100).await),
        vec!["p1"]
    );
    let held = cursors.clone();

    // A removes B; B, offline meanwhile, comes back with its old cursors.
    done(storage.remove_member(&a.id, &s, &b.id).await.unwrap());
    c.push_ok(&a.token, vec![project("p2", &s, "Two")]).await;
    let page = pull(&c, &b.token, &held, None, 100).await;
    assert_eq!(status(&page, &stream(&s)), Some("gone"), "{page}");
    assert!(page["streams"][stream(&s)].get("cursor").is_none());
    assert!(page["changes"].as_array().unwrap().is_empty());
    // Its push there is a dead letter, not a wedge.
    let r = c
        .push_ok(
            &b.token,
            vec![in_space(
                upsert(
                    &op(),
                    "team_projects",
                    "p1",
                    Some(1),
                    json!({"name": "Mine now"}),
                ),
                &s,
            )],
        )
        .await;
    assert_eq!(r[0]["reason"], "forbidden");
    // The answer for a space that never existed is the same.
    let mut made_up = held.clone();
    made_up.as_object_mut().unwrap().remove(&stream(&s));
    made_up[stream("0195c3d2-7a1e-7000-8000-00000000dead")] = Value::Null;
    let page = pull(&c, &b.token, &made_up, None, 100).await;
    assert_eq!(
        status(&page, &stream("0195c3d2-7a1e-7000-8000-00000000dead")),
        Some("gone")
    );

    // Added back: the old cursor continues where it was (membership is not in the sequence).
    join(&storage, &a, &s, &b, Role::Viewer).await;
    let page = pull(&c, &b.token, &held, None, 100).await;
    assert_eq!(ids(page["changes"].as_array().unwrap()), vec!["p2"]);
}

async fn space_deletion_is_gone_for_all_and_purged_later(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let (a, b) = (user(&c, &storage).await, user(&c, &storage).await);
    let s = create_space(&storage, &a, "Doomed").await;
    join(&storage, &a, &s, &b, Role::Editor).await;
    let batch: Vec<Value> = (0..30)
        .map(|i| project(&format!("p{i}"), &s, "P"))
        .collect();
    c.push_ok(&a.token, batch).await;
    let (mut ca, mut cb) = (json!({}), json!({}));
    assert_eq!(pull_all(&c, &a.token, &mut ca, 100).await.len(), 30);
    assert_eq!(pull_all(&c, &b.token, &mut cb, 100).await.len(), 30);
    assert_eq!(rows_of(&db, &stream(&s)).await, 30);

    done(storage.delete_space(&a.id, &s, now_ms()).await.unwrap());
    for (who, cursors) in [(&a, &ca), (&b, &cb)] {
        let page = pull(&c, &who.token, cursors, None, 100).await;
        assert_eq!(status(&page, &stream(&s)), Some("gone"), "{page}");
        assert!(page["account"]["spaces"].as_array().unwrap().is_empty());
    }
    let r = c
        .push_ok(
            &a.token,
            vec![in_space(
                upsert(
                    &op(),
                    "team_projects",
                    "p0",
                    Some(1),
                    json!({"name": "Late"}),
                ),
                &s,
            )],
        )
        .await;
    assert_eq!(r[0]["reason"], "forbidden");
    // The records go in the background.
    server.purge_now();
    assert_eq!(rows_of(&db, &stream(&s)).await, 0);
}

async fn expiry_is_per_stream(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().purging().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let (a, b) = (user(&c, &storage).await, user(&c, &storage).await);
    let s = create_space(&storage, &a, "Team").await;
    join(&storage, &a, &s, &b, Role::Editor).await;
    c.push_ok(
        &a.token,
        vec![project("p1", &s, "One"), project("p2", &s, "Two")],
    )
    .await;
    c.push_ok(
        &b.token,
        vec![upsert(&op(), "plans", "own", None, json!({"name": "Own"}))],
    )
    .await;
    let mut held = json!({});
    pull_all(&c, &b.token, &mut held, 100).await;

    // A deletes in the space and more is written; the tombstone is purged past B's cursor.
    c.push_ok(
        &a.token,
        vec![in_space(delete(&op(), "team_projects", "p1", Some(1)), &s)],
    )
    .await;
    c.push_ok(&a.token, vec![project("p3", &s, "Three")]).await;
    c.push_ok(
        &b.token,
        vec![upsert(
            &op(),
            "plans",
            "own2",
            None,
            json!({"name": "Own 2"}),
        )],
    )
    .await;
    server.advance(Duration::from_secs(2));

    let page = pull(&c, &b.token, &held, None, 100).await;
    assert_eq!(status(&page, &stream(&s)), Some("expired"), "{page}");
    // The user's stream is unaffected: it reads on from its cursor.
    assert_eq!(status(&page, "user"), Some("ok"));
    assert_eq!(ids(page["changes"].as_array().unwrap()), vec!["own2"]);
    assert_eq!(page["hasMore"], json!(true));
    // The client re-pulls that stream alone from the beginning.
    let mut next = held.clone();
    next["user"] = page["streams"]["user"]["cursor"].clone();
    next[stream(&s)] = Value::Null;
    let page = pull(&c, &b.token, &next, None, 100).await;
    let mut got = ids(page["changes"].as_array().unwrap());
    got.sort();
    assert_eq!(got, vec!["p2", "p3"]);
    assert_eq!(page["hasMore"], json!(false));
}

async fn joining_a_large_space_pulls_only_it_after_incremental_changes(db: TestDb) {
    const RECORDS: usize = 5000;
    let server = TestServer::builder().db(&db).in_process().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let (a, b) = (user(&c, &storage).await, user(&c, &storage).await);
    let s = create_space(&storage, &a, "Big").await;
    for chunk in 0..RECORDS / 500 {
        let batch = (0..500)
            .map(|i| project(&format!("p{}", chunk * 500 + i), &s, "P"))
            .collect();
        c.push_ok(&a.token, batch).await;
    }
    c.push_ok(
        &b.token,
        vec![upsert(&op(), "plans", "old", None, json!({"name": "Old"}))],
    )
    .await;
    let mut cursors = json!({});
    assert_eq!(
        ids(&pull_all(&c, &b.token, &mut cursors, 100).await),
        vec!["old"]
    );
    c.push_ok(
        &b.token,
        vec![upsert(&op(), "plans", "new", None, json!({"name": "New"}))],
    )
    .await;
    join(&storage, &a, &s, &b, Role::Viewer).await;

    // First page: the incremental change of B's own stream first, then the joined space.
    let first = pull(&c, &b.token, &cursors, None, 1000).await;
    let changes = first["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1000);
    assert_eq!(changes[0]["entityId"], "new");
    assert!(changes[1..].iter().all(|ch| ch["space"] == json!(s)));
    assert_eq!(first["remaining"], json!(RECORDS - 999));
    assert_eq!(first["hasMore"], json!(true));
    // Then only the space, until it is caught up; no other stream moves back.
    let mut all: Vec<Value> = changes.to_vec();
    let mut cursors = cursors;
    for (key, entry) in first["streams"].as_object().unwrap() {
        cursors[key] = entry["cursor"].clone();
    }
    let user_cursor = cursors["user"].clone();
    all.extend(pull_all(&c, &b.token, &mut cursors, 1000).await);
    assert_eq!(cursors["user"], user_cursor);
    let space_rows = all.iter().filter(|ch| ch["space"] == json!(s)).count();
    assert_eq!(space_rows, RECORDS);
    assert_eq!(all.len(), RECORDS + 1);
}

async fn account_section_only_when_its_seq_differs(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let (a, b) = (user(&c, &storage).await, user(&c, &storage).await);
    let page = pull(&c, &b.token, &json!({}), None, 10).await;
    let seq = page["account"]["accountSeq"].as_i64().unwrap();
    assert!(page["account"]["spaces"].as_array().unwrap().is_empty());
    assert!(pull(&c, &b.token, &json!({}), Some(seq), 10)
        .await
        .get("account")
        .is_none());

    let s = create_space(&storage, &a, "Coach").await;
    done(
        storage
            .invite(
                &a.id,
                &s,
                &b.email,
                Role::Viewer,
                now_ms(),
                SpaceLimits::default(),
            )
            .await
            .unwrap(),
    );
    let page = pull(&c, &b.token, &json!({}), Some(seq), 10).await;
    let account = &page["account"];
    assert!(account["accountSeq"].as_i64().unwrap() != seq);
    let invitation = &account["invitations"][0];
    assert_eq!(
        (
            &invitation["spaceId"],
            &invitation["spaceName"],
            &invitation["role"],
            &invitation["invitedBy"]
        ),
        (
            &json!(s),
            &json!("Coach"),
            &json!("viewer"),
            &json!(a.email)
        )
    );
    // Not yet a member: the space's stream is not among B's.
    assert!(page["streams"].get(stream(&s)).is_none());
    done(
        storage
            .accept_invitation(
                &b.id,
                invitation["id"].as_str().unwrap(),
                now_ms(),
                SpaceLimits::default(),
            )
            .await
            .unwrap(),
    );
    let page = pull(&c, &b.token, &json!({}), account["accountSeq"].as_i64(), 10).await;
    let spaces = page["account"]["spaces"].as_array().unwrap();
    assert_eq!(spaces.len(), 1);
    assert_eq!(
        (
            &spaces[0]["id"],
            &spaces[0]["role"],
            &spaces[0]["memberCount"]
        ),
        (&json!(s), &json!("viewer"), &json!(2))
    );
    assert!(page["account"]["invitations"]
        .as_array()
        .unwrap()
        .is_empty());
    // Listed in the account section and readable in the same answer.
    assert_eq!(status(&page, &stream(&s)), Some("ok"));
}

async fn cursor_form_answers_as_before(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let a = user(&c, &storage).await;
    let s = create_space(&storage, &a, "Team").await;
    c.push_ok(
        &a.token,
        vec![
            upsert(&op(), "plans", "mine", None, json!({"name": "Mine"})),
            project("p1", &s, "Shared"),
        ],
    )
    .await;
    let page = c.pull(&a.token, None, Some(10)).await.assert_ok().clone();
    assert_eq!(ids(page["changes"].as_array().unwrap()), vec!["mine"]);
    assert!(page["changes"][0].get("space").is_none());
    assert!(page["cursor"].as_str().unwrap().starts_with("c2."));
    assert!(page.get("streams").is_none() && page.get("account").is_none());
    // A cursor form cursor is a valid `user` cursor of the stream form, and not of another key.
    let cursor = page["cursor"].clone();
    let next = pull(&c, &a.token, &json!({"user": cursor}), None, 10).await;
    assert!(next["streams"].get("user").is_none(), "nothing new: {next}");
    c.post(
        "/sync/v1/pull",
        Some(&a.token),
        &json!({"streams": {"public": cursor}}),
    )
    .await
    .assert_error(400, "invalid_request");
    // Both forms at once are refused.
    c.post(
        "/sync/v1/pull",
        Some(&a.token),
        &json!({"streams": {}, "cursor": null}),
    )
    .await
    .assert_error(400, "invalid_request");
}

/// Rows of `stream` left in `records`, read from the database directly.
async fn rows_of(db: &TestDb, stream: &str) -> i64 {
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        return conn
            .query_row(
                "SELECT count(*) FROM records WHERE user_id = ?1",
                [stream],
                |r| r.get(0),
            )
            .unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT count(*) FROM records WHERE user_id = $1",
            &[&stream],
        )
        .await
        .unwrap()
        .get(0)
}

/// `remaining` over several streams, counted in one statement (streams not reached from the
/// beginning by their block counts alone, others from their position), is exact on every page:
/// from no cursors, then incrementally, with streams spanning more than one `seq_blocks` block.
async fn remaining_is_exact_over_many_streams(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    let storage = Storage::open(&db.url).await.unwrap();
    let c = server.client();
    let a = user(&c, &storage).await;
    let mut spaces = Vec::new();
    for (k, size) in [1500usize, 300, 1100].into_iter().enumerate() {
        let s = create_space(&storage, &a, &format!("S{k}")).await;
        for chunk in (0..size).step_by(500) {
            let batch = (chunk..size.min(chunk + 500))
                .map(|i| project(&format!("s{k}p{i}"), &s, "P"))
                .collect();
            c.push_ok(&a.token, batch).await;
        }
        spaces.push(s);
    }
    // A tombstone is a change to deliver like any other.
    c.push_ok(
        &a.token,
        vec![in_space(
            delete(&op(), "team_projects", "s2p7", Some(1)),
            &spaces[2],
        )],
    )
    .await;
    let own = (0..10)
        .map(|i| {
            upsert(
                &op(),
                "plans",
                &format!("own{i}"),
                None,
                json!({"name": "O"}),
            )
        })
        .collect();
    c.push_ok(&a.token, own).await;

    async fn check_pages(c: &Client, token: &str, cursors: &mut Value, total: usize) {
        let mut delivered = 0;
        loop {
            let page = pull(c, token, cursors, None, 170).await;
            delivered += page["changes"].as_array().unwrap().len();
            for (key, entry) in page["streams"].as_object().unwrap() {
                assert_eq!(entry["status"], "ok");
                cursors[key] = entry["cursor"].clone();
            }
            assert_eq!(
                page["remaining"],
                json!(total - delivered),
                "after {delivered}"
            );
            if !page["hasMore"].as_bool().unwrap() {
                break;
            }
        }
        assert_eq!(delivered, total);
    }
    let mut cursors = json!({});
    // 1500 + 300 + 1100 records (one of them now a tombstone) and 10 of the user's own.
    check_pages(&c, &a.token, &mut cursors, 2910).await;

    // Incremental: new changes in the first and last space and the user's own stream.
    for (k, s) in [(0usize, &spaces[0]), (2, &spaces[2])] {
        let batch = (0..400)
            .map(|i| project(&format!("s{k}n{i}"), s, "N"))
            .collect();
        c.push_ok(&a.token, batch).await;
    }
    c.push_ok(
        &a.token,
        vec![upsert(
            &op(),
            "plans",
            "own0",
            Some(1),
            json!({"name": "O2"}),
        )],
    )
    .await;
    check_pages(&c, &a.token, &mut cursors, 801).await;
}
