//! Public collections, on SQLite and PostgreSQL: every signed-in user pulls `public`; a user's
//! push there is `forbidden`; the admin endpoint takes only the admin token (`401` for a user's
//! JWT, `404` when no token is configured); `tandem-server import` validates the whole file
//! first (naming the bad line, writing nothing), changes nothing when run again, and `--prune`
//! deletes what the file no longer names.

use std::process::Command;

use tandem_testkit::on_both_backends;
use tandem_testkit::server::{server_binary, test_schema_path};
use tandem_testkit::server_suite as common;

use common::{create, statuses, TestDb, TestServer, SECRET};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

on_both_backends!(
    admin_routes_need_the_admin_token,
    admin_writes_are_authoritative_and_validated,
    every_user_pulls_public_and_none_writes_it,
    admin_writes_poke_every_user,
    import_validates_then_writes_idempotently,
);

fn with_admin(db: &TestDb) -> TestServer {
    TestServer::builder()
        .db(db)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .start()
}

async fn admin_routes_need_the_admin_token(db: TestDb) {
    let writes = json!([{"collection": "catalog", "id": "c1", "doc": {"name": "Squat"}}]);
    {
        let server = TestServer::builder().db(&db).start();
        let c = server.client();
        // No token configured: the routes do not exist.
        c.admin_write(Some(ADMIN), writes.clone())
            .await
            .assert_error(404, "not_found");
    }
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    c.admin_write(Some(&user.token), writes.clone())
        .await
        .assert_error(401, "unauthorized");
    c.admin_write(None, writes.clone())
        .await
        .assert_error(401, "unauthorized");
    c.admin_write(
        Some("admin-token-for-tests-0123456789abcdeX"),
        writes.clone(),
    )
    .await
    .assert_error(401, "unauthorized");
    c.admin_write(Some(ADMIN), writes).await.assert_ok();
    // The admin token is not a user's token.
    c.get("/sync/v1/account", Some(ADMIN))
        .await
        .assert_error(401, "unauthorized");
}

async fn admin_writes_are_authoritative_and_validated(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let first = c
        .admin_write(
            Some(ADMIN),
            json!([{"collection": "catalog", "id": "c1", "doc": {"name": "Squat"}},
                   {"collection": "catalog", "id": "c2", "doc": {"name": "Lunge"}}]),
        )
        .await;
    let results = first.assert_ok()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r["changed"] == true));
    let v1 = results[0]["version"].as_i64().unwrap();
    // The same document: nothing changes; another: a new version.
    let again = c
        .admin_write(
            Some(ADMIN),
            json!([{"collection": "catalog", "id": "c1", "doc": {"name": "Squat"}},
                   {"collection": "catalog", "id": "c2", "doc": {"name": "Lunges"}}]),
        )
        .await;
    let again = again.assert_ok()["results"].as_array().unwrap().clone();
    assert_eq!(
        again[0],
        json!({"id": "c1", "version": v1, "changed": false})
    );
    assert_eq!(again[1]["changed"], true);
    assert!(again[1]["version"].as_i64().unwrap() > results[1]["version"].as_i64().unwrap());
    // Deletes; deleting what is gone changes nothing.
    let deleted = c
        .admin_write(
            Some(ADMIN),
            json!([{"collection": "catalog", "id": "c2", "doc": null}]),
        )
        .await;
    assert_eq!(deleted.assert_ok()["results"][0]["changed"], true);
    let deleted = c
        .admin_write(
            Some(ADMIN),
            json!([{"collection": "catalog", "id": "c2", "doc": null}]),
        )
        .await;
    assert_eq!(deleted.assert_ok()["results"][0]["changed"], false);
    // Writes apply in order: a later write of the same record sees the earlier one.
    let twice = c
        .admin_write(
            Some(ADMIN),
            json!([{"collection": "catalog", "id": "c5", "doc": {"name": "One"}},
                   {"collection": "catalog", "id": "c5", "doc": {"name": "Two"}},
                   {"collection": "catalog", "id": "c5", "doc": null}]),
        )
        .await;
    let twice = twice.assert_ok()["results"].as_array().unwrap().clone();
    assert!(twice.iter().all(|r| r["changed"] == true), "{twice:?}");
    let versions: Vec<i64> = twice
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert!(
        versions[0] < versions[1] && versions[1] < versions[2],
        "{versions:?}"
    );
    // A child needs its public parent; deleting the parent takes its children.
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog_items", "id": "i1", "doc": {"catalogId": "nope", "label": "x"}}]),
    )
    .await
    .assert_error(422, "validation_failed");
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog", "id": "c6", "doc": {"name": "Parent"}},
               {"collection": "catalog_items", "id": "i1", "doc": {"catalogId": "c6", "label": "x"}}]),
    )
    .await
    .assert_ok();
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog", "id": "c6", "doc": null}]),
    )
    .await
    .assert_ok();
    // One bad write refuses the whole request, naming it.
    let bad = c
        .admin_write(
            Some(ADMIN),
            json!([{"collection": "catalog", "id": "c3", "doc": {"name": "Row"}},
                   {"collection": "catalog", "id": "c4", "doc": {"name": 5}}]),
        )
        .await;
    bad.assert_error(422, "validation_failed");
    assert!(
        bad.body["error_description"]
            .as_str()
            .unwrap()
            .contains("writes[1]"),
        "{}",
        bad.body
    );
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "plans", "id": "p1", "doc": {"name": "x"}}]),
    )
    .await
    .assert_error(422, "validation_failed");
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog", "id": "bad id", "doc": {"name": "x"}}]),
    )
    .await
    .assert_error(422, "validation_failed");
    let user = c.user().await;
    let (changes, _) = public_changes(&c, &user.token).await;
    let ids: Vec<&str> = changes
        .iter()
        .filter(|ch| ch["deleted"] == false)
        .map(|ch| ch["entityId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["c1"]);
}

/// Every change of the `public` stream for `token`, and the stream's final cursor.
async fn public_changes(c: &common::Client, token: &str) -> (Vec<Value>, Option<String>) {
    let mut changes = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = c
            .pull_streams(token, json!({ "public": cursor }), None, None)
            .await
            .assert_ok()
            .clone();
        changes.extend(
            page["changes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|ch| ch["entity"] == "catalog" || ch["entity"] == "catalog_items")
                .cloned(),
        );
        if let Some(next) = page["streams"]["public"]["cursor"].as_str() {
            cursor = Some(next.to_string());
        }
        if page["hasMore"] == false {
            return (changes, cursor);
        }
    }
    panic!("pull did not end");
}

async fn every_user_pulls_public_and_none_writes_it(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog", "id": "c1", "doc": {"name": "Squat"}}]),
    )
    .await
    .assert_ok();
    for _ in 0..2 {
        let user = c.user().await;
        let (changes, _) = public_changes(&c, &user.token).await;
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0]["doc"], json!({"name": "Squat"}));
        assert!(changes[0].get("space").is_none());
        let refused = c
            .push_ok(
                &user.token,
                vec![create("op-1", "catalog", "c1", json!({"name": "Mine"}))],
            )
            .await;
        assert_eq!(
            statuses(&refused),
            vec![("rejected".to_string(), Some("forbidden".to_string()))]
        );
    }
}

async fn admin_writes_poke_every_user(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    let mut events = c.events(&user.token).await;
    c.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog", "id": "c1", "doc": {"name": "Squat"}}]),
    )
    .await
    .assert_ok();
    let poke = events.next_poke_data().await;
    assert_eq!(poke["stream"], "public", "{poke}");
}

fn import(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(server_binary())
        .args(["--db", &db.url, "--schema"])
        .arg(test_schema_path())
        .arg("import")
        .args(args)
        .env_remove("TANDEM_ADMIN_TOKEN")
        .output()
        .expect("running tandem-server import");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

async fn import_validates_then_writes_idempotently(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.jsonl");
    let path = file.to_str().unwrap();
    // A bad third line: nothing is written.
    std::fs::write(
        &file,
        "{\"id\": \"c1\", \"doc\": {\"name\": \"Squat\"}}\n{\"id\": \"c2\", \"doc\": {\"name\": \"Lunge\"}}\n{\"id\": \"c3\", \"doc\": {\"name\": 7}}\n",
    )
    .unwrap();
    let (ok, _, stderr) = import(&db, &["catalog", path]);
    assert!(!ok);
    assert!(stderr.contains("line 3"), "{stderr}");
    for (text, line) in [
        ("{\"id\": \"c1\", \"doc\": {\"name\": \"A\"}}\n{\"id\": \"c1\", \"doc\": {\"name\": \"B\"}}\n", "line 2"),
        ("{\"id\": \"bad id\", \"doc\": {\"name\": \"A\"}}\n", "line 1"),
        ("not json\n", "line 1"),
    ] {
        std::fs::write(&file, text).unwrap();
        let (ok, _, stderr) = import(&db, &["catalog", path]);
        assert!(!ok && stderr.contains(line), "{stderr}");
    }
    std::fs::write(&file, "{\"id\": \"c1\", \"doc\": {\"name\": \"A\"}}\n").unwrap();
    let (ok, _, stderr) = import(&db, &["plans", path]);
    assert!(
        !ok && stderr.contains("not a public collection"),
        "{stderr}"
    );

    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let user = c.user().await;
    assert_eq!(public_changes(&c, &user.token).await.0, Vec::<Value>::new());

    std::fs::write(
        &file,
        "{\"id\": \"c1\", \"doc\": {\"name\": \"Squat\"}}\n\n{\"id\": \"c2\", \"doc\": {\"name\": \"Lunge\"}}\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = import(&db, &["catalog", path]);
    assert!(ok, "{stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        summary,
        json!({"collection": "catalog", "created": 2, "updated": 0, "deleted": 0, "unchanged": 0})
    );
    let (changes, cursor) = public_changes(&c, &user.token).await;
    assert_eq!(changes.len(), 2);
    // Again: nothing changes, nothing new to pull.
    let (ok, stdout, _) = import(&db, &["catalog", path]);
    assert!(ok);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["unchanged"], 2);
    assert_eq!(summary["created"], 0);
    let page = c
        .pull_streams(&user.token, json!({ "public": cursor }), None, None)
        .await
        .assert_ok()
        .clone();
    assert_eq!(page["changes"], json!([]));
    // --prune deletes what the file no longer names.
    std::fs::write(&file, "{\"id\": \"c2\", \"doc\": {\"name\": \"Lunges\"}}\n").unwrap();
    let (ok, stdout, stderr) = import(&db, &["catalog", path, "--prune"]);
    assert!(ok, "{stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        summary,
        json!({"collection": "catalog", "created": 0, "updated": 1, "deleted": 1, "unchanged": 0})
    );
    let (changes, _) = public_changes(&c, &user.token).await;
    let live: Vec<&str> = changes
        .iter()
        .filter(|ch| ch["deleted"] == false)
        .map(|ch| ch["entityId"].as_str().unwrap())
        .collect();
    assert_eq!(live, vec!["c2"]);
}
