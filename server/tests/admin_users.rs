//! The users routes of the admin API (docs/design/operations.md §2, docs/protocol.md "Admin
//! API"), on SQLite and PostgreSQL: search and paging, activity times, one user's detail,
//! deleting a user (their spaces pass on or go, their token then refused, their rows gone), the
//! recent rejections, and the validation of every parameter.

use std::time::Duration;

use tandem_testkit::fixtures::three_users_two_spaces;
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::{
    create, delete, op, statuses, BlobStoreKind, Client, TestBlobStore, TestDb, TestServer, SECRET,
};
use serde_json::{json, Value};
use tandem_testkit::blobs::sha256_hex;

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

on_both_backends!(
    users_are_searched_and_paged,
    activity_times_move_with_pushes_and_pulls,
    detail_counts_records_per_collection,
    deleting_a_user_passes_on_shared_spaces_and_deletes_solo_ones,
    rejections_are_listed_with_their_reasons,
    rejections_are_trimmed_to_the_newest,
    parameters_are_validated,
    deleting_a_user_is_audited_without_the_email,
);

fn with_admin(db: &TestDb) -> TestServer {
    TestServer::builder()
        .db(db)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .in_process()
        .start()
}

async fn admin_get(c: &Client, path: &str) -> Value {
    c.get(path, Some(ADMIN)).await.assert_ok().clone()
}

fn emails(page: &Value) -> Vec<String> {
    page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect()
}

async fn users_are_searched_and_paged(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let mut all = Vec::new();
    for name in ["erin", "alice", "dave", "bob", "carol"] {
        all.push(
            c.user_with_email(&format!("{name}-{tag}@example.com"))
                .await,
        );
    }
    c.user().await; // not matched by the tag
    let mut sorted: Vec<String> = all.iter().map(|u| u.email.clone()).collect();
    sorted.sort();

    // An email substring, case-insensitive.
    let page = admin_get(&c, &format!("/admin/v1/users?query=BOB-{}", &tag[..8])).await;
    assert_eq!(emails(&page), vec![format!("bob-{tag}@example.com")]);
    assert!(page.get("next").is_none());
    let bob = &page["users"][0];
    let bob_user = all.iter().find(|u| u.email.starts_with("bob-")).unwrap();
    assert_eq!(bob["id"], bob_user.id.as_str());
    assert!(bob["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(bob["records"], 0);
    assert_eq!(bob["paused"], false);
    assert_eq!(bob["liveStreams"], 0);
    assert!(bob.get("lastPushAt").is_none() && bob.get("lastPullAt").is_none());

    // An exact id.
    let page = admin_get(&c, &format!("/admin/v1/users?query={}", bob_user.id)).await;
    assert_eq!(emails(&page), vec![bob_user.email.clone()]);
    // A part of an id matches nothing (ids match exactly).
    let page = admin_get(&c, &format!("/admin/v1/users?query={}", &bob_user.id[..12])).await;
    assert!(emails(&page).is_empty());

    // Paging by email, two at a time.
    let mut seen = Vec::new();
    let mut path = format!("/admin/v1/users?query={tag}&limit=2");
    let mut pages = 0;
    loop {
        let page = admin_get(&c, &path).await;
        pages += 1;
        let got = emails(&page);
        assert!(got.len() <= 2);
        seen.extend(got);
        match page.get("next").and_then(Value::as_str) {
            Some(next) => {
                path = format!("/admin/v1/users?query={tag}&limit=2&after={next}");
            }
            None => break,
        }
    }
    assert_eq!(seen, sorted);
    assert_eq!(pages, 3);
    // Without a query: everyone (six users), by email.
    let page = admin_get(&c, "/admin/v1/users").await;
    assert_eq!(emails(&page).len(), 6);
}

async fn activity_times_move_with_pushes_and_pulls(db: TestDb) {
    let server = with_admin(&db);
    let clock = server.clock().unwrap().clone();
    let c = server.client();
    let user = c.user().await;
    let summary = |page: Value| page["user"].clone();
    let path = format!("/admin/v1/users/{}", user.id);
    let fresh = summary(admin_get(&c, &path).await);
    assert!(fresh.get("lastPushAt").is_none() && fresh.get("lastPullAt").is_none());

    c.push_ok(
        &user.token,
        vec![create(&op(), "exercises", "e1", json!({"name": "Squat"}))],
    )
    .await;
    let pushed = summary(admin_get(&c, &path).await);
    let first_push = pushed["lastPushAt"].as_str().unwrap().to_string();
    assert!(pushed.get("lastPullAt").is_none());

    c.pull(&user.token, None, None).await.assert_ok();
    let pulled = summary(admin_get(&c, &path).await);
    let first_pull = pulled["lastPullAt"].as_str().unwrap().to_string();

    // Within the minute, a pull writes nothing; after it, the time moves.
    clock.advance(Duration::from_secs(30));
    c.pull(&user.token, None, None).await.assert_ok();
    assert_eq!(
        summary(admin_get(&c, &path).await)["lastPullAt"],
        first_pull.as_str()
    );
    clock.advance(Duration::from_secs(31));
    c.pull_streams(&user.token, json!({"user": null}), None, None)
        .await
        .assert_ok();
    let later = summary(admin_get(&c, &path).await);
    assert!(later["lastPullAt"].as_str().unwrap() > first_pull.as_str());

    // Every push counts, even one that changes nothing (a retry).
    c.push_ok(
        &user.token,
        vec![create(&op(), "exercises", "e2", json!({"name": "Lunge"}))],
    )
    .await;
    let again = summary(admin_get(&c, &path).await);
    assert!(again["lastPushAt"].as_str().unwrap() > first_push.as_str());
}

async fn detail_counts_records_per_collection(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let f = three_users_two_spaces(&c).await;
    let a = &f.a;
    let results = c
        .push_ok(
            &a.token,
            vec![
                create(&op(), "exercises", "e1", json!({"name": "Squat"})),
                create(&op(), "exercises", "e2", json!({"name": "Lunge"})),
                create(&op(), "exercises", "e3", json!({"name": "Plank"})),
                create(&op(), "plans", "p1", json!({"name": "Week 1"})),
            ],
        )
        .await;
    assert!(statuses(&results).iter().all(|(s, _)| s == "applied"));
    c.push_ok(&a.token, vec![delete(&op(), "exercises", "e3", Some(1))])
        .await;
    // A second sign-in, and an open event stream.
    c.sign_in(&a.email, "password123").await.assert_ok();
    let _events = c.events(&a.token).await;

    let detail = admin_get(&c, &format!("/admin/v1/users/{}", a.id)).await;
    assert_eq!(detail["collections"], json!({"exercises": 2, "plans": 1}));
    assert_eq!(detail["user"]["records"], 3);
    assert_eq!(detail["user"]["email"], a.email.as_str());
    assert_eq!(detail["user"]["liveStreams"], 1);
    assert_eq!(detail["liveStreams"], 1);
    let mut spaces: Vec<(String, String)> = detail["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s["name"].is_string());
            (
                s["id"].as_str().unwrap().to_string(),
                s["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    spaces.sort();
    let mut expected = vec![
        (f.s1.clone(), "owner".to_string()),
        (f.s2.clone(), "viewer".to_string()),
    ];
    expected.sort();
    assert_eq!(spaces, expected);
    let sessions = detail["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{detail}");
    for s in sessions {
        assert!(s["id"].is_string() && s["createdAt"].is_string() && s["lastUsedAt"].is_string());
    }
    // A user may be named by email too.
    let by_email = admin_get(&c, &format!("/admin/v1/users/{}", a.email)).await;
    assert_eq!(by_email["user"], detail["user"]);
    // The list shows the same summary.
    let page = admin_get(&c, &format!("/admin/v1/users?query={}", a.id)).await;
    assert_eq!(page["users"][0], detail["user"]);

    c.get("/admin/v1/users/no-such-user", Some(ADMIN))
        .await
        .assert_error(404, "not_found");
}

async fn deleting_a_user_passes_on_shared_spaces_and_deletes_solo_ones(db: TestDb) {
    let store = TestBlobStore::new(BlobStoreKind::Filesystem).unwrap();
    let server = TestServer::builder()
        .db(&db)
        .blob_store(&store)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .in_process()
        .start();
    let c = server.client();
    // A owns S1 (B editor, then C viewer) and is a viewer of B's S2; A also owns S3 alone.
    let f = three_users_two_spaces(&c).await;
    let (a, b, viewer) = (&f.a, &f.b, &f.c);
    let s3 = c.create_space(&a.token, "Solo").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = c.sign_in(&a.email, "password123").await.assert_ok().clone();
    c.push_ok(
        &a.token,
        vec![
            create(&op(), "exercises", "e1", json!({"name": "Squat"})),
            create(&op(), "exercises", "e2", json!({"name": "Lunge"})),
            common::in_space(
                &s3,
                create(&op(), "team_projects", "t1", json!({"name": "Mine"})),
            ),
            common::in_space(
                &f.s1,
                create(&op(), "team_projects", "t2", json!({"name": "Ours"})),
            ),
        ],
    )
    .await;
    // A file A uploaded (held), and one A is still uploading.
    let held = c.upload(&a.token, b"a photo", "image/jpeg").await;
    assert_eq!(held.assert_ok()["complete"], true);
    let partial = sha256_hex(b"a long video, not sent yet");
    let open = c.open_upload(&a.token, &partial, 27, "video/mp4").await;
    assert_eq!(open.assert_ok()["complete"], false);
    assert_eq!(rows(&db, "blob_uploads", "user_id", &a.id).await, 1);
    // A's own event stream, opened before A is paused.
    let mut a_events = c.events(&a.token).await;
    // A pause of A shows in the summary, and goes with A.
    c.post("/admin/v1/pause", Some(ADMIN), &json!({"user": a.id}))
        .await
        .assert_ok();
    let detail = admin_get(&c, &format!("/admin/v1/users/{}", a.id)).await;
    assert_eq!(detail["user"]["paused"], true);
    let mut b_events = c.events(&b.token).await;
    let mut viewer_events = c.events(&viewer.token).await;

    let reply = c
        .request(
            reqwest::Method::DELETE,
            &format!("/admin/v1/users/{}", a.id),
            Some(ADMIN),
            None,
        )
        .await;
    let answer = reply.assert_ok().clone();
    assert_eq!(answer["records"], 2, "{answer}");
    assert_eq!(
        answer["spacesTransferred"],
        json!([{"id": f.s1, "newOwner": b.id}])
    );
    assert_eq!(answer["spacesDeleted"], json!([s3]));

    // The members' accounts see it: poked, B now owns S1, S1 has two members. A's own stream
    // is poked too (its pull then learns the account is gone).
    for events in [&mut a_events, &mut b_events, &mut viewer_events] {
        assert_eq!(events.next_poke_data().await["account"], true);
    }
    let account = c.account(&b.token).await;
    let s1 = account["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == f.s1.as_str())
        .unwrap()
        .clone();
    assert_eq!(s1["role"], "owner");
    assert_eq!(s1["memberCount"], 2);
    // S2 lost its viewer; the space's data stays with its members.
    let members = c.members(&b.token, &f.s2).await.assert_ok().clone();
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    let change = c.pull_streams(&viewer.token, json!({}), None, None).await;
    let ids = common::entity_ids(change.assert_ok()["changes"].as_array().unwrap());
    assert!(ids.contains(&"t2".to_string()), "{ids:?}");

    // A's token and refresh token are refused, the sign-in too; the admin API knows no A.
    c.push(
        &a.token,
        vec![create(&op(), "exercises", "e9", json!({"name": "X"}))],
    )
    .await
    .assert_error(401, "unauthorized");
    c.pull(&a.token, None, None)
        .await
        .assert_error(401, "unauthorized");
    c.create_space_reply(&a.token, "Ghost")
        .await
        .assert_error(401, "unauthorized");
    let pauses = admin_get(&c, "/admin/v1/pauses").await;
    assert_eq!(pauses["pauses"], json!([]), "{pauses}");
    let refreshed = c.refresh(session["refresh_token"].as_str().unwrap()).await;
    assert!(refreshed.status.as_u16() >= 400, "{:?}", refreshed.body);
    assert!(c.sign_in(&a.email, "password123").await.status.as_u16() >= 400);
    c.get(&format!("/admin/v1/users/{}", a.id), Some(ADMIN))
        .await
        .assert_error(404, "not_found");
    let page = admin_get(&c, &format!("/admin/v1/users?query={}", a.email)).await;
    assert!(emails(&page).is_empty());
    // Deleting again: unknown.
    c.request(
        reqwest::Method::DELETE,
        &format!("/admin/v1/users/{}", a.id),
        Some(ADMIN),
        None,
    )
    .await
    .assert_error(404, "not_found");

    // Their rows are gone from the database, and so are the solo space's.
    let space3 = format!("space:{s3}");
    for (table, column, key) in [
        ("users", "id", a.id.as_str()),
        ("records", "user_id", a.id.as_str()),
        ("records", "user_id", space3.as_str()),
        ("ops", "user_id", a.id.as_str()),
        ("sessions", "user_id", a.id.as_str()),
        ("refresh_tokens", "user_id", a.id.as_str()),
        ("members", "user_id", a.id.as_str()),
        ("streams", "id", a.id.as_str()),
        ("streams", "id", space3.as_str()),
        ("spaces", "id", s3.as_str()),
        ("user_epochs", "user_id", a.id.as_str()),
        ("pauses", "scope", a.id.as_str()),
        ("blob_holders", "user_id", a.id.as_str()),
        ("blob_uploads", "user_id", a.id.as_str()),
    ] {
        assert_eq!(rows(&db, table, column, key).await, 0, "{table}.{column}");
    }
    // B's and the viewer's rows are untouched.
    assert_eq!(rows(&db, "users", "id", &b.id).await, 1);
    assert_eq!(
        rows(&db, "records", "user_id", &format!("space:{}", f.s1)).await,
        1
    );
}

/// Rows of `table` whose `column` is `key`, read straight from the test's database.
async fn rows(db: &TestDb, table: &str, column: &str, key: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table} WHERE {column} = $1");
    match db.url.strip_prefix("sqlite://") {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.query_row(&sql.replace("$1", "?1"), [key], |r| r.get(0))
                .unwrap()
        }
        None => {
            let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client.query_one(&sql, &[&key]).await.unwrap().get(0)
        }
    }
}

async fn rejections_are_listed_with_their_reasons(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let (user, other) = (c.user().await, c.user().await);
    let bad = op();
    let results = c
        .push_ok(
            &user.token,
            vec![
                create(&op(), "exercises", "e1", json!({"name": "Squat"})),
                create(&bad, "exercises", "e2", json!({"notes": "no name"})),
            ],
        )
        .await;
    assert_eq!(statuses(&results)[1].0, "rejected");
    // A push whose only change is refused is recorded too (it writes nothing else).
    let forbidden = op();
    let results = c
        .push_ok(
            &other.token,
            vec![create(&forbidden, "catalog", "c1", json!({"name": "X"}))],
        )
        .await;
    assert_eq!(statuses(&results)[0].0, "rejected");

    let all = admin_get(&c, "/admin/v1/rejections").await;
    let list = all["rejections"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{all}");
    // Newest first.
    let (newest, oldest) = (&list[0], &list[1]);
    assert_eq!(newest["userId"], other.id.as_str());
    assert_eq!(newest["email"], other.email.as_str());
    assert_eq!(newest["stream"], "public");
    assert_eq!(newest["collection"], "catalog");
    assert_eq!(newest["id"], "c1");
    assert_eq!(newest["opId"], forbidden.as_str());
    assert_eq!(newest["reason"], "forbidden");
    assert_eq!(oldest["userId"], user.id.as_str());
    assert_eq!(oldest["stream"], "user");
    assert_eq!(oldest["collection"], "exercises");
    assert_eq!(oldest["id"], "e2");
    assert_eq!(oldest["opId"], bad.as_str());
    assert_eq!(oldest["reason"], "invalid_payload");
    assert!(oldest["at"].as_str().unwrap().ends_with('Z'));

    // By user (id or email), and limited.
    for who in [user.id.as_str(), user.email.as_str()] {
        let mine = admin_get(&c, &format!("/admin/v1/rejections?user={who}")).await;
        assert_eq!(mine["rejections"].as_array().unwrap().len(), 1);
        assert_eq!(mine["rejections"][0]["opId"], bad.as_str());
    }
    let one = admin_get(&c, "/admin/v1/rejections?limit=1").await;
    assert_eq!(one["rejections"][0]["opId"], forbidden.as_str());
    assert_eq!(one["rejections"].as_array().unwrap().len(), 1);
    c.get("/admin/v1/rejections?user=nobody@example.com", Some(ADMIN))
        .await
        .assert_error(404, "not_found");
}

async fn rejections_are_trimmed_to_the_newest(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    let ops: Vec<String> = (0..5).map(|_| op()).collect();
    let mutations = ops
        .iter()
        .enumerate()
        .map(|(i, o)| create(o, "exercises", &format!("e{i}"), json!({})))
        .collect();
    let results = c.push_ok(&user.token, mutations).await;
    assert!(statuses(&results).iter().all(|(s, _)| s == "rejected"));
    // The purge keeps the newest (10,000 in the server; 2 here).
    let storage = tandem_server::storage::Storage::open(&db.url)
        .await
        .unwrap();
    assert_eq!(storage.trim_rejections(2).await.unwrap(), 3);
    assert_eq!(storage.trim_rejections(2).await.unwrap(), 0);
    let kept = admin_get(&c, "/admin/v1/rejections").await;
    let kept: Vec<&str> = kept["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["opId"].as_str().unwrap())
        .collect();
    assert_eq!(kept, vec![ops[4].as_str(), ops[3].as_str()]);
}

async fn parameters_are_validated(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    for path in [
        "/admin/v1/users?limit=0",
        "/admin/v1/users?limit=201",
        "/admin/v1/users?limit=-1",
        "/admin/v1/users?limit=ten",
        "/admin/v1/rejections?limit=0",
        "/admin/v1/rejections?limit=501",
        "/admin/v1/rejections?limit=1.5",
        "/admin/v1/users?limit=1&limit=2",
    ] {
        let reply = c.get(path, Some(ADMIN)).await;
        reply.assert_error(400, "invalid_request");
        let text = reply.body["error_description"].as_str().unwrap();
        assert!(text.contains("limit"), "{path}: {}", reply.body);
    }
    let long = "x".repeat(321);
    c.get(&format!("/admin/v1/users?query={long}"), Some(ADMIN))
        .await
        .assert_error(400, "invalid_request");
    admin_get(&c, "/admin/v1/users?limit=200").await;
    admin_get(&c, "/admin/v1/rejections?limit=500").await;
    // A user's token is not the admin token.
    for path in ["/admin/v1/users", "/admin/v1/rejections"] {
        c.get(path, Some(&user.token))
            .await
            .assert_error(401, "unauthorized");
    }
    c.get(&format!("/admin/v1/users/{}", user.id), Some(&user.token))
        .await
        .assert_error(401, "unauthorized");
}

async fn deleting_a_user_is_audited_without_the_email(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--log-format", "json"])
        .log_filter("info")
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .capture_logs()
        .start();
    let c = server.client();
    let user = c.user().await;
    c.push_ok(
        &user.token,
        vec![create(&op(), "exercises", "e1", json!({"name": "Squat"}))],
    )
    .await;
    let mut expected = Vec::new();
    // Named by email (the audit line names the id), then an id nobody has, then an unknown email.
    let upper = user.email.to_uppercase();
    for (named, subject, status, outcome) in [
        (upper.as_str(), user.id.as_str(), 200, "done"),
        (
            "00000000-0000-7000-8000-000000000000",
            "00000000-0000-7000-8000-000000000000",
            404,
            "refused",
        ),
        ("nobody@example.com", "-", 404, "refused"),
    ] {
        let reply = c
            .request(
                reqwest::Method::DELETE,
                &format!("/admin/v1/users/{named}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
        let request_id = reply.headers["x-request-id"].to_str().unwrap().to_string();
        expected.push((request_id, subject, outcome));
    }
    let last = expected.last().unwrap().0.clone();
    let mut logs = server.logs();
    for _ in 0..100 {
        if logs.contains(last.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        logs = server.logs();
    }
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "tandem_server::admin")
        .collect();
    for (request_id, subject, outcome) in expected {
        let line = lines
            .iter()
            .find(|l| l["request_id"] == request_id.as_str())
            .unwrap_or_else(|| panic!("no audit line for {request_id}:\n{logs}"));
        assert_eq!(line["action"], "delete_user", "{line}");
        assert_eq!(line["subject"], subject, "{line}");
        assert_eq!(line["outcome"], outcome, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
    }
    assert!(!logs.contains(&user.email), "an email in the logs");
    assert!(!logs.contains(&upper), "an email in the logs");
    assert!(!logs.contains("nobody@example.com"), "an email in the logs");
    assert!(!logs.contains(ADMIN), "the admin token in the logs");
}
