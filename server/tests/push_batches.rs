//! A push batch as the server applies it (one read of the batch's records, the batch judged in
//! memory, its writes in a few statements, one commit) answers each mutation as if it had been
//! pushed alone, in order; and the pokes of a push name its client to the pusher alone. Against
//! the real server binary, on SQLite and (with `TANDEM_TEST_POSTGRES_URL`) on PostgreSQL.

use std::time::Duration;

use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::group_status as s;
use common::{create, delete, entity_ids, group_statuses, grouped, upsert, TestDb, TestServer};
use serde_json::{json, Value};

on_both_backends!(
    one_batch_mixes_every_outcome,
    a_record_twice_in_one_batch_builds_on_its_own_answer,
    a_retried_mixed_batch_is_answered_the_same_and_writes_nothing,
    pokes_name_the_pushing_client_to_its_own_user_alone,
);

/// Records `held` (version 1) and `gone` (deleted at version 2) exist; the batch then holds, in
/// this order: a create, a duplicate of an op applied before, a stale update (conflict), a child
/// of a missing parent (rejected), a group whose second member conflicts (both not applied),
/// an update on the right base, and a delete.
fn mixed_batch() -> Vec<Value> {
    vec![
        create("m1", "plans", "new", json!({"name": "New"})),
        create("seed-held", "plans", "held", json!({"name": "Held"})),
        upsert("m2", "plans", "gone", Some(1), json!({"name": "Stale"})),
        create(
            "m3",
            "plan_days",
            "orphan",
            json!({"planId": "missing", "dayIndex": 0}),
        ),
        grouped(
            "g",
            create("m4", "plans", "g1", json!({"name": "In group"})),
        ),
        grouped(
            "g",
            upsert("m5", "plans", "held", Some(7), json!({"name": "Bad base"})),
        ),
        upsert("m6", "plans", "held", Some(1), json!({"name": "Held 2"})),
        delete("m7", "plans", "new", Some(1)),
    ]
}

async fn seeded(db: &TestDb) -> (TestServer, common::Client, String, String) {
    let (server, c, t) = TestServer::with_user(db).await;
    let seed = c
        .push_ok(
            &t,
            vec![
                create("seed-held", "plans", "held", json!({"name": "Held"})),
                create("seed-gone", "plans", "gone", json!({"name": "Gone"})),
                delete("seed-del", "plans", "gone", Some(1)),
            ],
        )
        .await;
    assert!(seed.iter().all(|r| r["status"] == "applied"), "{seed:?}");
    let (_, cursor) = c.pull_all(&t, None).await;
    (server, c, t, cursor)
}

async fn one_batch_mixes_every_outcome(db: TestDb) {
    let (_server, c, t, cursor) = seeded(&db).await;
    let results = c.push_ok(&t, mixed_batch()).await;
    assert_eq!(
        group_statuses(&results),
        [
            s("applied", None, None),
            s("duplicate", None, None),
            s("conflict", Some("version_mismatch"), None),
            s("rejected", Some("invalid_parent"), None),
            s("aborted", Some("group_failed"), Some("m5")),
            s("conflict", Some("version_mismatch"), None),
            s("applied", None, None),
            s("applied", None, None),
        ]
    );
    assert_eq!(results[0]["version"], 1);
    assert_eq!(results[1]["version"], 1);
    assert_eq!(results[2]["serverVersion"], 2, "{}", results[2]);
    assert_eq!(results[6]["version"], 2);
    assert_eq!(results[7]["version"], 2);
    // What landed, in the order it was applied: nothing of the group, the rejected or the
    // conflicting ones.
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    assert_eq!(entity_ids(&changes), ["held", "new"], "{changes:?}");
    assert_eq!(changes[0]["doc"], json!({"name": "Held 2"}));
    assert_eq!(changes[1]["deleted"], true);
    assert!(c.change_of(&t, "plans", "g1").await.is_none());
    assert!(c.change_of(&t, "plan_days", "orphan").await.is_none());
}

async fn a_record_twice_in_one_batch_builds_on_its_own_answer(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let results = c
        .push_ok(
            &t,
            vec![
                create("t1", "plans", "p", json!({"name": "One"})),
                upsert("t2", "plans", "p", Some(1), json!({"name": "Two"})),
                // Built on the version before the one just written: a conflict showing the
                // batch's own write.
                upsert("t3", "plans", "p", Some(1), json!({"name": "Three"})),
                delete("t4", "plans", "p", Some(2)),
                create("t5", "plans", "p", json!({"name": "Again"})),
            ],
        )
        .await;
    assert_eq!(
        group_statuses(&results),
        [
            s("applied", None, None),
            s("applied", None, None),
            s("conflict", Some("version_mismatch"), None),
            s("applied", None, None),
            // A create without a base over the tombstone the batch just wrote.
            s("conflict", Some("deleted"), None),
        ]
    );
    assert_eq!(results[1]["version"], 2);
    assert_eq!(results[2]["serverVersion"], 2);
    assert_eq!(results[2]["serverDoc"], json!({"name": "Two"}));
    assert_eq!(results[3]["version"], 3);
    assert_eq!(results[4]["serverVersion"], 3);
    // One change for the record, its last state.
    let (changes, _) = c.pull_all(&t, None).await;
    assert_eq!(entity_ids(&changes), ["p"]);
    assert_eq!(
        (changes[0]["version"].clone(), changes[0]["deleted"].clone()),
        (json!(3), json!(true))
    );
}

async fn a_retried_mixed_batch_is_answered_the_same_and_writes_nothing(db: TestDb) {
    let (_server, c, t, _) = seeded(&db).await;
    let first = c.push_ok(&t, mixed_batch()).await;
    let (_, cursor) = c.pull_all(&t, None).await;
    // A lost answer: the same request again. What was applied is a duplicate with its version,
    // what was not is judged afresh (and fails the same way).
    let again = c.push_ok(&t, mixed_batch()).await;
    let statuses: Vec<_> = group_statuses(&again);
    assert_eq!(
        statuses,
        [
            s("duplicate", None, None),
            s("duplicate", None, None),
            s("conflict", Some("version_mismatch"), None),
            s("rejected", Some("invalid_parent"), None),
            s("aborted", Some("group_failed"), Some("m5")),
            s("conflict", Some("version_mismatch"), None),
            s("duplicate", None, None),
            s("duplicate", None, None),
        ]
    );
    for i in [0, 6, 7] {
        assert_eq!(again[i]["version"], first[i]["version"], "{i}");
    }
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    assert!(changes.is_empty(), "a retry wrote {changes:?}");
}

async fn push_from(c: &common::Client, token: &str, client: &str, mutations: Vec<Value>) {
    let reply = c
        .post(
            "/sync/v1/push",
            Some(token),
            &json!({"clientId": client, "mutations": mutations}),
        )
        .await;
    let results = reply.assert_ok()["results"].clone();
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "applied"),
        "{results}"
    );
}

async fn pokes_name_the_pushing_client_to_its_own_user_alone(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let f = tandem_testkit::fixtures::three_users_two_spaces(&c).await;
    let mut a_events = c.events(&f.a.token).await;
    let mut b_events = c.events(&f.b.token).await;
    // A's own stream: A's connection hears which of its clients pushed.
    push_from(
        &c,
        &f.a.token,
        "phone",
        vec![create("o1", "plans", "p1", json!({"name": "P"}))],
    )
    .await;
    let poke = a_events.next_poke_data().await;
    assert_eq!(poke["origin"], "phone", "{poke}");
    assert!(poke.get("stream").is_none(), "{poke}");
    // A space both are members of: A hears its client, B only the change.
    push_from(
        &c,
        &f.a.token,
        "laptop",
        vec![common::in_space(
            &f.s1,
            create("o2", "team_projects", "t1", json!({"name": "T"})),
        )],
    )
    .await;
    let stream = format!("space:{}", f.s1);
    let poke = a_events.next_poke_data().await;
    assert_eq!(
        (poke["stream"].as_str(), poke["origin"].as_str()),
        (Some(stream.as_str()), Some("laptop")),
        "{poke}"
    );
    let poke = b_events.next_poke_data().await;
    assert_eq!(poke["stream"], stream.as_str(), "{poke}");
    assert!(
        poke.get("origin").is_none(),
        "another user never sees a client id: {poke}"
    );
    // Two clients pushing one after the other: one poke each, each naming its own.
    push_from(
        &c,
        &f.a.token,
        "phone",
        vec![create("o3", "plans", "p2", json!({"name": "P2"}))],
    )
    .await;
    push_from(
        &c,
        &f.a.token,
        "laptop",
        vec![create("o4", "plans", "p3", json!({"name": "P3"}))],
    )
    .await;
    let first = a_events.next_poke_data().await;
    let second = a_events.next_poke_data().await;
    assert_eq!(
        (first["origin"].as_str(), second["origin"].as_str()),
        (Some("phone"), Some("laptop"))
    );
    assert!(a_events
        .poke_within(Duration::from_millis(300))
        .await
        .is_none());
}
