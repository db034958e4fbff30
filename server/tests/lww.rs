//! Edit times on the server (docs/protocol.md, "Edit time"): per-field edit times stored with the
//! record and returned in pulls and conflict answers, the clamping of an edit time too far ahead
//! of the server's clock, the server's time in answers, and old clients' answers unchanged. On
//! SQLite and (with `TANDEM_TEST_POSTGRES_URL`) on PostgreSQL.

use tandem_testkit::server_suite as common;

use tandem_testkit::{on_both_backends, ManualClock};

use common::{create, delete, upsert, TestDb, TestServer};
use serde_json::{json, Value};
use tandem_protocol::{Hlc, MAX_CLOCK_SKEW_MS};

on_both_backends!(
    field_times_are_stored_per_field_and_pulled,
    conflicts_carry_the_server_times,
    a_far_future_edit_time_is_clamped,
    changes_without_edit_times_are_stamped_by_the_server,
    malformed_edit_times_refuse_the_request,
);

const NOW: i64 = 1_733_535_600_000;

fn t(ms: i64, counter: u32, node: &str) -> String {
    Hlc::new(ms, counter, node).encode()
}

/// An upsert carrying edit times.
fn timed(op: &str, id: &str, base: Option<i64>, payload: Value, at: &str, fields: Value) -> Value {
    let mut m = upsert(op, "plans", id, base, payload);
    m["editedAt"] = json!(at);
    if !fields.is_null() {
        m["fieldEditedAt"] = fields;
    }
    m
}

fn server_on(db: &TestDb) -> (TestServer, ManualClock) {
    let clock = ManualClock::at_ms(NOW);
    let server = TestServer::builder().db(db).clock(clock.clone()).start();
    (server, clock)
}

async fn change_of(c: &common::Client, token: &str, id: &str) -> Value {
    c.change_of(token, "plans", id).await.expect("pulled")
}

async fn field_times_are_stored_per_field_and_pulled(db: TestDb) {
    let (server, _clock) = server_on(&db);
    let c = server.client();
    let (tok, _) = c.new_user().await;
    let t1 = t(NOW - 5_000, 0, "dev-a");
    let r = c
        .push_ok(
            &tok,
            vec![timed(
                "o1",
                "p1",
                None,
                json!({"name": "A", "notes": "n"}),
                &t1,
                Value::Null,
            )],
        )
        .await;
    assert_eq!(r[0]["status"], "applied");
    let ch = change_of(&c, &tok, "p1").await;
    assert_eq!(ch["editedAt"], json!(t1));
    assert_eq!(ch["fieldEditedAt"], json!({"name": t1, "notes": t1}));

    // A coalesced change: `notes` edited earlier than `name`, `archived` added; the fields it
    // leaves as they were keep their times.
    let t2 = t(NOW - 3_000, 0, "dev-b");
    let t3 = t(NOW - 2_000, 4, "dev-b");
    let r = c
        .push_ok(
            &tok,
            vec![timed(
                "o2",
                "p1",
                Some(1),
                json!({"name": "B", "notes": "n2", "archived": true}),
                &t3,
                json!({"notes": t2}),
            )],
        )
        .await;
    assert_eq!(r[0]["status"], "applied");
    let ch = change_of(&c, &tok, "p1").await;
    assert_eq!(ch["editedAt"], json!(t3));
    assert_eq!(
        ch["fieldEditedAt"],
        json!({"name": t3, "notes": t2, "archived": t3})
    );

    // Only `name` changes: the others keep their times; a removed field keeps its removal's time.
    let t4 = t(NOW - 1_000, 0, "dev-a");
    c.push_ok(
        &tok,
        vec![timed(
            "o3",
            "p1",
            Some(2),
            json!({"name": "C", "notes": "n2"}),
            &t4,
            Value::Null,
        )],
    )
    .await;
    let ch = change_of(&c, &tok, "p1").await;
    assert_eq!(
        ch["fieldEditedAt"],
        json!({"name": t4, "notes": t2, "archived": t4})
    );

    // A delete records its own time and no field times.
    let t5 = t(NOW, 0, "dev-b");
    let mut d = delete("o4", "plans", "p1", Some(3));
    d["editedAt"] = json!(t5);
    assert_eq!(c.push_ok(&tok, vec![d]).await[0]["status"], "applied");
    let ch = change_of(&c, &tok, "p1").await;
    assert_eq!(ch["deleted"], true);
    assert_eq!(ch["editedAt"], json!(t5));
    assert!(ch.get("fieldEditedAt").is_none_or(Value::is_null));
}

async fn conflicts_carry_the_server_times(db: TestDb) {
    let (server, _clock) = server_on(&db);
    let c = server.client();
    let (tok, _) = c.new_user().await;
    let t1 = t(NOW - 5_000, 0, "dev-a");
    c.push_ok(
        &tok,
        vec![timed(
            "o1",
            "p1",
            None,
            json!({"name": "A"}),
            &t1,
            Value::Null,
        )],
    )
    .await;
    let reply = c
        .push(
            &tok,
            vec![timed(
                "o2",
                "p1",
                Some(7),
                json!({"name": "B"}),
                &t(NOW, 0, "dev-b"),
                Value::Null,
            )],
        )
        .await;
    let body = reply.assert_ok();
    let r = &body["results"][0];
    assert_eq!(r["status"], "conflict");
    assert_eq!(r["serverEditedAt"], json!(t1));
    assert_eq!(r["serverFieldEditedAt"], json!({"name": t1}));
    // The answer carries the server's time for the client's clock.
    let server_time: Hlc = serde_json::from_value(body["serverTime"].clone()).unwrap();
    assert_eq!(server_time.ms, NOW);
    // A client from before edit times gets the answer it always got.
    let r = c
        .push_ok(
            &tok,
            vec![upsert("o3", "plans", "p1", Some(7), json!({"name": "C"}))],
        )
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "o3", "status": "conflict", "reason": "version_mismatch",
               "serverVersion": 1, "serverDoc": {"name": "A"}})
    );
    let plain = c
        .push(
            &tok,
            vec![create("o4", "plans", "p2", json!({"name": "D"}))],
        )
        .await;
    assert!(plain.assert_ok().get("serverTime").is_none());
    // Every pull answer carries it.
    let page = c.pull(&tok, None, None).await.assert_ok().clone();
    let server_time: Hlc = serde_json::from_value(page["serverTime"].clone()).unwrap();
    assert_eq!(server_time.ms, NOW);
}

async fn a_far_future_edit_time_is_clamped(db: TestDb) {
    let (server, clock) = server_on(&db);
    let c = server.client();
    let (tok, _) = c.new_user().await;
    let day = 86_400_000;
    let ahead = t(NOW + 3 * day, 2, "fast");
    let field = t(NOW + 2 * day, 0, "fast");
    c.push_ok(
        &tok,
        vec![timed(
            "o1",
            "p1",
            None,
            json!({"name": "A", "notes": "n"}),
            &ahead,
            json!({"notes": field}),
        )],
    )
    .await;
    let limit = NOW + MAX_CLOCK_SKEW_MS;
    let ch = change_of(&c, &tok, "p1").await;
    assert_eq!(ch["editedAt"], json!(t(limit, 2, "fast")));
    assert_eq!(
        ch["fieldEditedAt"],
        json!({"name": t(limit, 2, "fast"), "notes": t(limit, 0, "fast")})
    );
    // Within the bound, a time stays as given.
    let near = t(NOW + MAX_CLOCK_SKEW_MS - 1, 0, "near");
    c.push_ok(
        &tok,
        vec![timed(
            "o2",
            "p2",
            None,
            json!({"name": "B"}),
            &near,
            Value::Null,
        )],
    )
    .await;
    assert_eq!(change_of(&c, &tok, "p2").await["editedAt"], json!(near));
    // An honest edit made two minutes later is later than the fast device's.
    clock.advance(std::time::Duration::from_secs(120));
    let honest = t(NOW + 120_000, 0, "honest");
    c.push_ok(
        &tok,
        vec![timed(
            "o3",
            "p1",
            Some(1),
            json!({"name": "H", "notes": "n"}),
            &honest,
            Value::Null,
        )],
    )
    .await;
    let ch = change_of(&c, &tok, "p1").await;
    let name: Hlc = serde_json::from_value(ch["fieldEditedAt"]["name"].clone()).unwrap();
    assert_eq!(name.encode(), honest);
    assert!(name > t(limit, 2, "fast").parse().unwrap());
}

async fn changes_without_edit_times_are_stamped_by_the_server(db: TestDb) {
    let (server, _clock) = server_on(&db);
    let c = server.client();
    let (tok, _) = c.new_user().await;
    c.push_ok(
        &tok,
        vec![create("o1", "plans", "p1", json!({"name": "A"}))],
    )
    .await;
    let ch = change_of(&c, &tok, "p1").await;
    // The server's clock, and the pushing client as the node.
    assert_eq!(ch["editedAt"], json!(t(NOW, 0, "client-1")));
    assert_eq!(ch["fieldEditedAt"], json!({"name": t(NOW, 0, "client-1")}));
}

async fn malformed_edit_times_refuse_the_request(db: TestDb) {
    let (server, _clock) = server_on(&db);
    let c = server.client();
    let (tok, _) = c.new_user().await;
    for bad in [
        json!("yesterday"),
        json!(5),
        json!("001733535600000-00000-"),
    ] {
        let mut m = create("o1", "plans", "p1", json!({"name": "A"}));
        m["editedAt"] = bad;
        c.push(&tok, vec![m])
            .await
            .assert_error(400, "invalid_request");
    }
    let mut m = create("o1", "plans", "p1", json!({"name": "A"}));
    m["editedAt"] = json!(t(NOW, 0, "a"));
    m["fieldEditedAt"] = json!({"name": "nope"});
    c.push(&tok, vec![m])
        .await
        .assert_error(400, "invalid_request");
}
