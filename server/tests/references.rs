//! References (`ref` fields with cascade, setNull, restrict) and unique constraints, against the
//! real server binary on SQLite and (with `TANDEM_TEST_POSTGRES_URL`) PostgreSQL, on the
//! collections `schemas/test.json` declares for them.

use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::{create, delete, statuses, upsert, TestDb, TestServer, SECRET};
use serde_json::{json, Value};

on_both_backends!(
    a_reference_to_a_missing_or_deleted_record_is_rejected,
    delete_rules_cascade_set_null_and_restrict,
    referrer_created_while_the_target_is_deleted_ends_visibly,
    unique_keys_meet_as_conflicts_within_one_account_only,
    rules_added_to_a_schema_cover_records_stored_before,
);

fn applied() -> (String, Option<String>) {
    ("applied".into(), None)
}

fn rejected(reason: &str) -> (String, Option<String>) {
    ("rejected".into(), Some(reason.into()))
}

/// The server's current state of `entity/id` (version, document), from a full pull.
async fn state_of(c: &common::Client, token: &str, entity: &str, id: &str) -> Option<(i64, Value)> {
    c.change_of(token, entity, id)
        .await
        .map(|x| (x["version"].as_i64().unwrap(), x["doc"].clone()))
}

async fn a_reference_to_a_missing_or_deleted_record_is_rejected(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let r = c
        .push_ok(
            &t,
            vec![
                create("o1", "schedule_days", "s1", json!({"dayTypeId": "nope"})),
                // created earlier in the same batch: fine
                create("o2", "day_types", "dt", json!({"name": "Push"})),
                create("o3", "schedule_days", "s2", json!({"dayTypeId": "dt"})),
                create("o4", "day_types", "gone", json!({"name": "Gone"})),
                delete("o5", "day_types", "gone", Some(1)),
                create("o6", "schedule_days", "s3", json!({"dayTypeId": "gone"})),
                // no reference at all is fine for an optional field
                create("o7", "schedule_days", "s4", json!({"title": "free"})),
                create(
                    "o8",
                    "project_day_types",
                    "j",
                    json!({"projectId": "x", "dayTypeId": "dt"}),
                ),
            ],
        )
        .await;
    assert_eq!(
        statuses(&r),
        vec![
            rejected("invalid_reference"),
            applied(),
            applied(),
            applied(),
            applied(),
            rejected("invalid_reference"),
            applied(),
            rejected("invalid_reference"),
        ]
    );
}

async fn delete_rules_cascade_set_null_and_restrict(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let r = c
        .push_ok(
            &t,
            vec![
                create("a1", "day_types", "dt", json!({"name": "Push"})),
                create("a2", "projects", "p", json!({"name": "P"})),
                create(
                    "a3",
                    "schedule_days",
                    "mon",
                    json!({"title": "Mon", "dayTypeId": "dt"}),
                ),
                create(
                    "a4",
                    "project_day_types",
                    "j",
                    json!({"projectId": "p", "dayTypeId": "dt"}),
                ),
                create("a5", "files", "f", json!({"projectId": "p", "path": "/a"})),
            ],
        )
        .await;
    assert!(r.iter().all(|x| x["status"] == "applied"), "{r:?}");
    let (_, cursor) = c.pull_all(&t, None).await;

    // restrict: the file holds the project; nothing of the delete happens
    let r = c
        .push_ok(&t, vec![delete("b1", "projects", "p", Some(1))])
        .await;
    assert_eq!(statuses(&r), vec![rejected("restricted")]);
    assert_eq!(
        state_of(&c, &t, "project_day_types", "j").await.unwrap().0,
        1
    );

    // cascade and setNull: deleting the day type deletes the join row and clears Monday's field,
    // each a new version in the change log, before the delete itself
    let r = c
        .push_ok(&t, vec![delete("b2", "day_types", "dt", Some(1))])
        .await;
    assert_eq!(statuses(&r), vec![applied()]);
    let (changes, cursor) = c.pull_all(&t, Some(&cursor)).await;
    let view: Vec<(&str, i64, bool)> = changes
        .iter()
        .map(|x| {
            (
                x["entityId"].as_str().unwrap(),
                x["version"].as_i64().unwrap(),
                x["deleted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![("mon", 2, false), ("j", 2, true), ("dt", 2, true)]
    );
    assert_eq!(changes[0]["doc"], json!({"title": "Mon"}));

    // once the file is gone the project can go (in one batch, in order)
    let r = c
        .push_ok(
            &t,
            vec![
                delete("b3", "files", "f", Some(1)),
                delete("b4", "projects", "p", Some(1)),
            ],
        )
        .await;
    assert_eq!(statuses(&r), vec![applied(), applied()]);
    // a restrict referrer that the same delete takes with it does not hold it back: a join row
    // (cascade from the project) is gone with it, and a second project with a file in it goes
    // once the file is deleted first in the same batch
    let r = c
        .push_ok(
            &t,
            vec![
                create("c1", "projects", "q", json!({"name": "Q"})),
                create("c2", "day_types", "dt2", json!({"name": "Pull"})),
                create(
                    "c3",
                    "project_day_types",
                    "j2",
                    json!({"projectId": "q", "dayTypeId": "dt2"}),
                ),
                delete("c4", "projects", "q", Some(1)),
            ],
        )
        .await;
    assert_eq!(
        statuses(&r),
        vec![applied(), applied(), applied(), applied()]
    );
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    let j2 = changes.iter().rfind(|x| x["entityId"] == "j2").unwrap();
    assert_eq!(j2["deleted"], true);
}

async fn referrer_created_while_the_target_is_deleted_ends_visibly(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let r = c
        .push_ok(
            &t,
            vec![
                create("a1", "day_types", "dt", json!({"name": "Push"})),
                create("a2", "projects", "p", json!({"name": "P"})),
            ],
        )
        .await;
    assert!(r.iter().all(|x| x["status"] == "applied"));
    // Device A deletes the day type first; device B's offline referrers arrive after: rejected.
    let r = c
        .push_ok(&t, vec![delete("b1", "day_types", "dt", Some(1))])
        .await;
    assert_eq!(statuses(&r), vec![applied()]);
    let r = c
        .push_ok(
            &t,
            vec![
                create("c1", "schedule_days", "s", json!({"dayTypeId": "dt"})),
                create(
                    "c2",
                    "project_day_types",
                    "j",
                    json!({"projectId": "p", "dayTypeId": "dt"}),
                ),
            ],
        )
        .await;
    assert_eq!(
        statuses(&r),
        vec![rejected("invalid_reference"), rejected("invalid_reference")]
    );

    // The other order: B's referrers land first, then A's delete applies the rules to them.
    let r = c
        .push_ok(
            &t,
            vec![
                create("d1", "day_types", "dt2", json!({"name": "Pull"})),
                create("d2", "schedule_days", "s2", json!({"dayTypeId": "dt2"})),
                create(
                    "d3",
                    "project_day_types",
                    "j2",
                    json!({"projectId": "p", "dayTypeId": "dt2"}),
                ),
                create("d4", "files", "f", json!({"projectId": "p", "path": "/x"})),
            ],
        )
        .await;
    assert!(r.iter().all(|x| x["status"] == "applied"), "{r:?}");
    let r = c
        .push_ok(
            &t,
            vec![
                delete("e1", "day_types", "dt2", Some(1)),
                delete("e2", "projects", "p", Some(1)),
            ],
        )
        .await;
    assert_eq!(statuses(&r), vec![applied(), rejected("restricted")]);
    assert_eq!(
        state_of(&c, &t, "schedule_days", "s2").await,
        Some((2, json!({})))
    );
    assert_eq!(
        state_of(&c, &t, "project_day_types", "j2").await.unwrap().1,
        Value::Null
    );
}

async fn unique_keys_meet_as_conflicts_within_one_account_only(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (alice, _) = c.new_user().await;
    let (bob, _) = c.new_user().await;
    for t in [&alice, &bob] {
        let r = c
            .push_ok(t, vec![create("p", "projects", "p", json!({"name": "P"}))])
            .await;
        assert_eq!(statuses(&r), vec![applied()]);
    }
    // Alice's phone creates /a offline, then her laptop does too, under another id.
    let r = c
        .push_ok(
            &alice,
            vec![create(
                "a1",
                "files",
                "phone",
                json!({"projectId": "p", "path": "/a"}),
            )],
        )
        .await;
    assert_eq!(statuses(&r), vec![applied()]);
    let r = c
        .push_ok(
            &alice,
            vec![
                create(
                    "a2",
                    "files",
                    "laptop",
                    json!({"projectId": "p", "path": "/a", "size": 2}),
                ),
                // another key, and the same key in another project, are fine
                create(
                    "a3",
                    "files",
                    "other",
                    json!({"projectId": "p", "path": "/b"}),
                ),
            ],
        )
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "a2", "status": "conflict", "reason": "unique_violation",
               "serverVersion": null, "serverDoc": null, "existingId": "phone"})
    );
    assert_eq!(r[1]["status"], "applied");
    // Bob's account shares nothing with Alice's: the same key is his to take.
    let r = c
        .push_ok(
            &bob,
            vec![create(
                "b1",
                "files",
                "laptop",
                json!({"projectId": "p", "path": "/a"}),
            )],
        )
        .await;
    assert_eq!(statuses(&r), vec![applied()]);

    // Within one batch, the second holder of a key meets the first.
    let r = c
        .push_ok(
            &alice,
            vec![
                create("a4", "files", "x1", json!({"projectId": "p", "path": "/c"})),
                create("a5", "files", "x2", json!({"projectId": "p", "path": "/c"})),
            ],
        )
        .await;
    assert_eq!(r[0]["status"], "applied");
    assert_eq!(
        (r[1]["reason"].as_str(), r[1]["existingId"].as_str()),
        (Some("unique_violation"), Some("x1"))
    );

    // An update moving onto a taken key meets it too, with the record's own state.
    let r = c
        .push_ok(
            &alice,
            vec![upsert(
                "a6",
                "files",
                "other",
                Some(1),
                json!({"projectId": "p", "path": "/a"}),
            )],
        )
        .await;
    assert_eq!(r[0]["reason"], "unique_violation");
    assert_eq!(r[0]["existingId"], "phone");
    assert_eq!(r[0]["serverVersion"], 1);
    assert_eq!(r[0]["serverDoc"], json!({"projectId": "p", "path": "/b"}));

    // "Keep mine": delete the existing one, then create mine, in one batch.
    let r = c
        .push_ok(
            &alice,
            vec![
                delete("a7", "files", "phone", Some(1)),
                create(
                    "a8",
                    "files",
                    "laptop",
                    json!({"projectId": "p", "path": "/a", "size": 2}),
                ),
            ],
        )
        .await;
    assert_eq!(statuses(&r), vec![applied(), applied()]);
    // A key freed by a change of its holder can be taken.
    let r = c
        .push_ok(
            &alice,
            vec![
                upsert(
                    "a9",
                    "files",
                    "laptop",
                    Some(1),
                    json!({"projectId": "p", "path": "/z"}),
                ),
                create("a10", "files", "y", json!({"projectId": "p", "path": "/a"})),
            ],
        )
        .await;
    assert_eq!(statuses(&r), vec![applied(), applied()]);
}

async fn rules_added_to_a_schema_cover_records_stored_before(db: TestDb) {
    let before = r#"{"version": 1, "collections": {
      "projects": {"fields": {"name": {"type": "string"}}},
      "files": {"fields": {"projectId": {"type": "string"}, "path": {"type": "string"}}}}}"#;
    let after = r#"{"version": 2, "collections": {
      "projects": {"fields": {"name": {"type": "string"}}},
      "files": {"fields": {"projectId": {"type": "string", "ref": {"collection": "projects", "onDelete": "cascade"}},
                           "path": {"type": "string"}},
                "unique": [["projectId", "path"]]}}}"#;
    let env: &[(&str, &str)] = &[("TANDEM_JWT_SECRET", SECRET)];
    let server = TestServer::builder()
        .db(&db)
        .env(env)
        .schema(before)
        .start();
    let c = server.client();
    let (t, _) = c.new_user().await;
    let r = c
        .push_ok(
            &t,
            vec![
                create("a1", "projects", "p", json!({"name": "P"})),
                create("a2", "files", "f", json!({"projectId": "p", "path": "/a"})),
            ],
        )
        .await;
    assert!(r.iter().all(|x| x["status"] == "applied"), "{r:?}");
    server.shutdown();

    // The new rules reach the records stored before them: the old file holds its key, and the
    // project's delete takes it along.
    let server = TestServer::builder().db(&db).env(env).schema(after).start();
    let c = server.client();
    let r = c
        .push_ok(
            &t,
            vec![create(
                "b1",
                "files",
                "g",
                json!({"projectId": "p", "path": "/a"}),
            )],
        )
        .await;
    assert_eq!(r[0]["reason"], "unique_violation");
    assert_eq!(r[0]["existingId"], "f");
    let r = c
        .push_ok(&t, vec![delete("b2", "projects", "p", Some(1))])
        .await;
    assert_eq!(statuses(&r), vec![applied()]);
    assert_eq!(state_of(&c, &t, "files", "f").await.unwrap().1, Value::Null);
}
