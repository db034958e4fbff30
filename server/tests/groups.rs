//! Atomic groups (`groupId`): a group's mutations apply in one transaction or not at all, every
//! member is answered, a retried group is all duplicates, and a pull page never ends inside a
//! group. Against the real server binary, on SQLite and (with `TANDEM_TEST_POSTGRES_URL`) on
//! PostgreSQL.

use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::group_status as s;
use common::{create, delete, entity_ids, group_statuses, grouped, upsert, TestDb, TestServer};
use serde_json::json;

on_both_backends!(
    a_rejected_member_applies_nothing_and_every_member_is_answered,
    a_conflicting_member_applies_nothing,
    a_group_is_pulled_in_one_page,
    a_retried_group_is_all_duplicates,
    a_cascade_travels_with_its_group,
    malformed_groups_are_refused,
    a_member_breaking_a_reference_or_unique_key_fails_its_group,
);

async fn a_rejected_member_applies_nothing_and_every_member_is_answered(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let results = c
        .push_ok(
            &t,
            vec![
                create("solo", "plans", "solo", json!({"name": "Alone"})),
                grouped("g1", create("a", "plans", "p", json!({"name": "P"}))),
                grouped(
                    "g1",
                    create("b", "plan_days", "d", json!({"planId": "p", "dayIndex": 0})),
                ),
                // No name: refused by the schema.
                grouped("g1", create("c", "plans", "bad", json!({"notes": "x"}))),
                grouped("g1", create("d", "plans", "q", json!({"name": "Q"}))),
            ],
        )
        .await;
    assert_eq!(
        group_statuses(&results),
        vec![
            s("applied", None, None),
            s("aborted", Some("group_failed"), Some("c")),
            s("aborted", Some("group_failed"), Some("c")),
            s("rejected", Some("invalid_payload"), None),
            s("aborted", Some("group_failed"), Some("c")),
        ]
    );
    assert!(results[1].get("version").is_none());
    let (changes, cursor) = c.pull_all(&t, None).await;
    assert_eq!(
        entity_ids(&changes),
        vec!["solo"],
        "only the lone change applied"
    );
    // The same group, its bad member fixed, applies whole (aborted op ids were never applied).
    let results = c
        .push_ok(
            &t,
            vec![
                grouped("g1", create("a", "plans", "p", json!({"name": "P"}))),
                grouped(
                    "g1",
                    create("b", "plan_days", "d", json!({"planId": "p", "dayIndex": 0})),
                ),
                grouped("g1", create("c2", "plans", "bad", json!({"name": "ok"}))),
                grouped("g1", create("d", "plans", "q", json!({"name": "Q"}))),
            ],
        )
        .await;
    assert!(
        results.iter().all(|r| r["status"] == "applied"),
        "{results:?}"
    );
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    assert_eq!(entity_ids(&changes), vec!["p", "d", "bad", "q"]);
    assert!(changes.iter().all(|c| c["groupId"] == "g1"));
}

async fn a_conflicting_member_applies_nothing(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    c.push_ok(&t, vec![create("o1", "plans", "p", json!({"name": "v1"}))])
        .await;
    let (_, cursor) = c.pull_all(&t, None).await;
    let results = c
        .push_ok(
            &t,
            vec![
                grouped("g", create("a", "plans", "new", json!({"name": "N"}))),
                // Version 5 is not the record's: a conflict, with the server's state.
                grouped(
                    "g",
                    upsert("b", "plans", "p", Some(5), json!({"name": "v2"})),
                ),
            ],
        )
        .await;
    assert_eq!(
        group_statuses(&results),
        vec![
            s("aborted", Some("group_failed"), Some("b")),
            s("conflict", Some("version_mismatch"), None),
        ]
    );
    assert_eq!(results[1]["serverVersion"], 1);
    assert_eq!(results[1]["serverDoc"], json!({"name": "v1"}));
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    assert!(
        changes.is_empty(),
        "nothing of the group applied: {changes:?}"
    );
}

async fn a_group_is_pulled_in_one_page(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let mut push = vec![create("solo", "plans", "solo", json!({"name": "S"}))];
    for i in 0..6 {
        push.push(grouped(
            "g",
            upsert(
                &format!("o{i}"),
                "plans",
                &format!("m{i}"),
                None,
                json!({"name": "M"}),
            ),
        ));
    }
    push.push(create("after", "plans", "after", json!({"name": "A"})));
    c.push_ok(&t, push).await;

    // Pages of 2: the second row starts the group, so the page runs on to its end.
    let (pages, _) = c.pull_pages(&t, None, 2).await;
    let page_ids: Vec<Vec<String>> = pages
        .iter()
        .map(|p| entity_ids(p["changes"].as_array().unwrap()))
        .collect();
    assert_eq!(
        page_ids,
        vec![
            vec!["solo", "m0", "m1", "m2", "m3", "m4", "m5"],
            vec!["after"],
        ]
    );
    assert_eq!(pages[0]["hasMore"], true);
    assert_eq!(pages[0]["remaining"], 1);
    let first = pages[0]["changes"].as_array().unwrap();
    assert!(first[0].get("groupId").is_none());
    assert!(first[1..].iter().all(|c| c["groupId"] == "g"));

    // Pages of 1: the lone change, then the whole group, then the last change.
    let (pages, _) = c.pull_pages(&t, None, 1).await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["changes"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![1, 6, 1]);

    // A member edited since has moved on (its latest state is later); the page still holds the
    // rest of the group whole and ends where the group did.
    c.push_ok(
        &t,
        vec![upsert(
            "e",
            "plans",
            "m3",
            Some(1),
            json!({"name": "edited"}),
        )],
    )
    .await;
    let (pages, _) = c.pull_pages(&t, None, 2).await;
    let page_ids: Vec<Vec<String>> = pages
        .iter()
        .map(|p| entity_ids(p["changes"].as_array().unwrap()))
        .collect();
    assert_eq!(
        page_ids,
        vec![
            vec!["solo", "m0", "m1", "m2", "m4", "m5"],
            vec!["after", "m3"],
        ]
    );
}

async fn a_retried_group_is_all_duplicates(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let group = vec![
        grouped("g", create("a", "plans", "p", json!({"name": "P"}))),
        grouped(
            "g",
            create("b", "plan_days", "d", json!({"planId": "p", "dayIndex": 1})),
        ),
        grouped("g", create("c", "plans", "q", json!({"name": "Q"}))),
    ];
    let first = c.push_ok(&t, group.clone()).await;
    assert!(first.iter().all(|r| r["status"] == "applied"));
    let (_, cursor) = c.pull_all(&t, None).await;
    // The answer was lost: the client sends the same group again.
    let again = c.push_ok(&t, group).await;
    assert_eq!(
        again,
        vec![
            json!({"opId": "a", "status": "duplicate", "version": 1}),
            json!({"opId": "b", "status": "duplicate", "version": 1}),
            json!({"opId": "c", "status": "duplicate", "version": 1}),
        ]
    );
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    assert!(changes.is_empty(), "a retry applied twice: {changes:?}");
}

async fn a_cascade_travels_with_its_group(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let mut setup = vec![create("p", "plans", "p", json!({"name": "P"}))];
    for i in 0..4 {
        setup.push(upsert(
            &format!("d{i}"),
            "plan_days",
            &format!("d{i}"),
            None,
            json!({"planId": "p", "dayIndex": i}),
        ));
    }
    c.push_ok(&t, setup).await;
    let (_, cursor) = c.pull_all(&t, None).await;
    let results = c
        .push_ok(
            &t,
            vec![
                grouped("g", delete("x", "plans", "p", Some(1))),
                grouped("g", create("y", "plans", "q", json!({"name": "Q"}))),
            ],
        )
        .await;
    assert!(results.iter().all(|r| r["status"] == "applied"));
    // The plan's tombstone, its four days' (the server's cascade) and the new plan: one page.
    let (pages, _) = c.pull_pages(&t, Some(&cursor), 1).await;
    assert_eq!(pages.len(), 1);
    let changes = pages[0]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 6);
    assert!(changes.iter().all(|c| c["groupId"] == "g"));
    assert_eq!(pages[0]["hasMore"], false);
}

async fn malformed_groups_are_refused(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let split = vec![
        grouped("g", create("a", "plans", "a", json!({"name": "A"}))),
        create("b", "plans", "b", json!({"name": "B"})),
        grouped("g", create("c", "plans", "c", json!({"name": "C"}))),
    ];
    c.push(&t, split).await.assert_error(400, "invalid_request");
    let bad_id = vec![grouped(
        "not a valid id",
        create("a", "plans", "a", json!({"name": "A"})),
    )];
    c.push(&t, bad_id)
        .await
        .assert_error(400, "invalid_request");
    let (changes, _) = c.pull_all(&t, None).await;
    assert!(changes.is_empty());
}

/// Groups with the other rules of issue 13: a member meeting `unique_violation`, `invalid_reference`
/// or `restricted` fails its group like any conflict or rejection, and what the group's earlier
/// members changed in the batch (a setNull of a referrer, a delete, a unique key taken, edit
/// times) is taken back, so the lone changes after it see the state before it. A no-op upsert in
/// a group is `applied` at the current version.
async fn a_member_breaking_a_reference_or_unique_key_fails_its_group(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let setup = c
        .push_ok(
            &t,
            vec![
                create("s1", "projects", "pr", json!({"name": "P"})),
                create(
                    "s2",
                    "files",
                    "f1",
                    json!({"projectId": "pr", "path": "a.txt"}),
                ),
                create("s3", "day_types", "dt", json!({"name": "D"})),
                create(
                    "s4",
                    "schedule_days",
                    "sd",
                    json!({"title": "Mon", "dayTypeId": "dt"}),
                ),
            ],
        )
        .await;
    assert!(setup.iter().all(|r| r["status"] == "applied"), "{setup:?}");
    let (before, cursor) = c.pull_all(&t, None).await;

    let mut edited = upsert(
        "g1b",
        "schedule_days",
        "sd",
        Some(1),
        json!({"title": "Tue", "dayTypeId": "dt"}),
    );
    edited["editedAt"] = json!("001733535600000-00000-dev");
    let results = c
        .push_ok(
            &t,
            vec![
                // Deleting dt removes sd's dayTypeId (setNull: a new version of sd), f2 takes
                // the key b.txt, then f3 asks for a.txt, which f1 holds: the group fails.
                grouped("g1", delete("g1a", "day_types", "dt", Some(1))),
                grouped(
                    "g1",
                    create(
                        "g1c",
                        "files",
                        "f2",
                        json!({"projectId": "pr", "path": "b.txt"}),
                    ),
                ),
                grouped(
                    "g1",
                    create(
                        "g1d",
                        "files",
                        "f3",
                        json!({"projectId": "pr", "path": "a.txt"}),
                    ),
                ),
                // Lone changes after the failed group see the state before it: dt still live,
                // b.txt still free, sd still at version 1.
                create(
                    "l1",
                    "files",
                    "f4",
                    json!({"projectId": "pr", "path": "b.txt"}),
                ),
                create("l2", "schedule_days", "sd2", json!({"dayTypeId": "dt"})),
                edited,
            ],
        )
        .await;
    assert_eq!(
        group_statuses(&results),
        vec![
            s("aborted", Some("group_failed"), Some("g1d")),
            s("aborted", Some("group_failed"), Some("g1d")),
            s("conflict", Some("unique_violation"), None),
            s("applied", None, None),
            s("applied", None, None),
            s("applied", None, None),
        ]
    );
    assert_eq!(results[2]["existingId"], "f1");
    assert_eq!(
        results[5]["version"], 2,
        "sd was not changed by the failed group"
    );
    let (changes, cursor) = c.pull_all(&t, Some(&cursor)).await;
    assert_eq!(entity_ids(&changes), vec!["f4", "sd2", "sd"]);
    assert_eq!(
        changes[2]["doc"],
        json!({"title": "Tue", "dayTypeId": "dt"})
    );
    assert_eq!(changes[2]["editedAt"], "001733535600000-00000-dev");
    assert!(changes.iter().all(|c| c.get("groupId").is_none()));
    assert_eq!(before.len(), 4);

    // invalid_reference and restricted fail their groups too; a no-op member is applied.
    let results = c
        .push_ok(
            &t,
            vec![
                grouped(
                    "g2",
                    create("g2a", "day_types", "dt2", json!({"name": "E"})),
                ),
                grouped(
                    "g2",
                    create(
                        "g2b",
                        "schedule_days",
                        "sd3",
                        json!({"dayTypeId": "missing"}),
                    ),
                ),
                grouped(
                    "g3",
                    upsert("g3a", "projects", "pr", Some(1), json!({"name": "P"})),
                ),
                grouped("g3", delete("g3b", "projects", "pr", Some(1))),
                grouped(
                    "g4",
                    upsert("g4a", "projects", "pr", Some(1), json!({"name": "P"})),
                ),
                grouped(
                    "g4",
                    create(
                        "g4b",
                        "files",
                        "f5",
                        json!({"projectId": "pr", "path": "c.txt"}),
                    ),
                ),
            ],
        )
        .await;
    assert_eq!(
        group_statuses(&results),
        vec![
            s("aborted", Some("group_failed"), Some("g2b")),
            s("rejected", Some("invalid_reference"), None),
            s("aborted", Some("group_failed"), Some("g3b")),
            s("rejected", Some("restricted"), None),
            s("applied", None, None),
            s("applied", None, None),
        ]
    );
    assert_eq!(
        results[4]["version"], 1,
        "a no-op upsert gets no new version"
    );
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    assert_eq!(
        entity_ids(&changes),
        vec!["f5"],
        "only g4's new file is a change"
    );
    assert_eq!(changes[0]["groupId"], "g4");
}
