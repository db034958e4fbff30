//! The admin API (docs/protocol.md "Admin API"), on SQLite and PostgreSQL: every admin route
//! refuses a user's access token, no token and a wrong one (`401`), and does not exist without a
//! configured admin token (`404`); the kill switch (pause and resume, globally and per user, at
//! runtime; `--sync-paused` as a stored pause); revoking a user's sessions; the overview.

use tandem_testkit::blobs::sha256_hex;
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::{create, op, Client, Reply, TestDb, TestServer, SECRET};
use reqwest::Method;
use serde_json::{json, Value};
use tandem_testkit::ManualClock;

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

on_both_backends!(
    admin_routes_refuse_everything_but_the_admin_token,
    a_global_pause_answers_503_until_resumed,
    a_user_pause_stops_that_user_only,
    pauses_are_validated_and_users_resolved,
    the_sync_paused_flag_is_a_stored_pause_lifted_at_runtime,
    revoking_refuses_old_tokens_and_refresh_but_not_a_new_sign_in,
    the_overview_counts_users_streams_and_traffic,
    admin_actions_are_audited_without_secrets,
    revocations_within_one_second_of_a_stopped_clock,
);

/// Every admin route: method, path (with a placeholder user id where it takes one), JSON body.
/// Slice U adds its rows (`/users`, `/users/{id}`, `DELETE /users/{id}`, `/rejections`).
fn admin_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let hash = sha256_hex(b"x");
    let blob: &'static str = Box::leak(format!("/admin/v1/blobs/{hash}").into_boxed_str());
    vec![
        (
            Method::POST,
            "/admin/v1/public/write",
            Some(json!({"writes": []})),
        ),
        (Method::PUT, blob, None),
        (Method::GET, "/admin/v1/overview", None),
        (Method::GET, "/admin/v1/pauses", None),
        (Method::POST, "/admin/v1/pause", Some(json!({}))),
        (Method::POST, "/admin/v1/resume", Some(json!({}))),
        (
            Method::POST,
            "/admin/v1/users/00000000-0000-7000-8000-000000000000/revoke",
            None,
        ),
        // users and their data (U)
        (Method::GET, "/admin/v1/users", None),
        (
            Method::GET,
            "/admin/v1/users/00000000-0000-7000-8000-000000000000",
            None,
        ),
        (
            Method::DELETE,
            "/admin/v1/users/00000000-0000-7000-8000-000000000000",
            None,
        ),
        (Method::GET, "/admin/v1/rejections", None),
    ]
}

fn with_admin(db: &TestDb) -> TestServer {
    with_admin_args(db, &[])
}

fn with_admin_args(db: &TestDb, args: &[&str]) -> TestServer {
    TestServer::builder()
        .db(db)
        .args(args)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .start()
}

async fn admin(c: &Client, method: Method, path: &str, body: Option<Value>) -> Reply {
    c.request(method, path, Some(ADMIN), body.as_ref()).await
}

async fn pause(c: &Client, body: Value) -> Value {
    admin(c, Method::POST, "/admin/v1/pause", Some(body))
        .await
        .assert_ok()
        .clone()
}

async fn resume(c: &Client, body: Value) -> bool {
    admin(c, Method::POST, "/admin/v1/resume", Some(body))
        .await
        .assert_ok()["resumed"]
        .as_bool()
        .unwrap()
}

fn retry_after(reply: &Reply) -> Option<u64> {
    reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Asserts `503 sync_paused` with `Retry-After: secs`.
fn assert_paused(reply: &Reply, secs: u64) {
    reply.assert_error(503, "sync_paused");
    assert_eq!(retry_after(reply), Some(secs));
}

/// Every kind of sync route a device uses, for `token`: push (with a body that is not even
/// JSON: a pause answers before reading it), pull, events, account, a blob upload and download.
async fn sync_routes(c: &Client, token: &str) -> Vec<Reply> {
    let hash = sha256_hex(b"paused");
    vec![
        c.post_raw(
            "/sync/v1/push",
            Some(token),
            Some("application/json"),
            b"not json".to_vec(),
        )
        .await,
        c.pull(token, None, None).await,
        c.get("/sync/v1/events", Some(token)).await,
        c.get("/sync/v1/account", Some(token)).await,
        c.open_upload(token, &hash, 6, "text/plain").await,
        c.get(&format!("/sync/v1/blobs/{hash}"), Some(token)).await,
    ]
}

async fn admin_routes_refuse_everything_but_the_admin_token(db: TestDb) {
    {
        // Without an admin token configured, the routes do not exist.
        let server = TestServer::builder().db(&db).start();
        let c = server.client();
        for (method, path, body) in admin_routes() {
            c.request(method.clone(), path, Some(ADMIN), body.as_ref())
                .await
                .assert_error(404, "not_found");
        }
    }
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    for (method, path, body) in admin_routes() {
        for token in [
            Some(user.token.as_str()),
            None,
            Some("admin-token-for-tests-0123456789abcdeX"),
        ] {
            let reply = c.request(method.clone(), path, token, body.as_ref()).await;
            assert_eq!(
                reply.status.as_u16(),
                401,
                "{method} {path}: {}",
                reply.body
            );
            reply.assert_error(401, "unauthorized");
        }
        let reply = admin(&c, method.clone(), path, body).await;
        assert!(
            ![401, 404, 405].contains(&reply.status.as_u16())
                || path.contains("/users/00000000-") && reply.status == 404,
            "{method} {path} with the admin token: {} {}",
            reply.status,
            reply.body
        );
    }
    // The admin token is not a user's token.
    c.get("/sync/v1/account", Some(ADMIN))
        .await
        .assert_error(401, "unauthorized");
}

async fn a_global_pause_answers_503_until_resumed(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    c.push_ok(
        &user.token,
        vec![create(&op(), "plans", "p1", json!({"name": "A"}))],
    )
    .await;
    let answer = pause(&c, json!({"retryAfterSecs": 30, "reason": "bad release"})).await;
    assert_eq!(answer["pause"]["scope"], "*");
    assert_eq!(answer["pause"]["retryAfterSecs"], 30);
    assert_eq!(answer["pause"]["reason"], "bad release");
    assert!(answer["pause"]["pausedAt"].as_str().unwrap().ends_with('Z'));
    assert!(answer["pause"].get("email").is_none());
    for reply in sync_routes(&c, &user.token).await {
        assert_paused(&reply, 30);
    }
    // Even without a token: the global pause answers first.
    assert_paused(&c.pull("not-a-token", None, None).await, 30);
    // Auth keeps working.
    let session = c
        .sign_in(&user.email, "password123")
        .await
        .assert_ok()
        .clone();
    c.refresh(session["refresh_token"].as_str().unwrap())
        .await
        .assert_ok();
    c.get("/auth/v1/user", Some(&user.token)).await.assert_ok();
    let listed = admin(&c, Method::GET, "/admin/v1/pauses", None).await;
    assert_eq!(listed.assert_ok()["pauses"].as_array().unwrap().len(), 1);
    let overview = admin(&c, Method::GET, "/admin/v1/overview", None).await;
    assert_eq!(overview.assert_ok()["paused"], true);
    assert_eq!(overview.body["pauses"], 1);
    // Pausing again updates the pause.
    let again = pause(&c, json!({})).await;
    assert_eq!(again["pause"]["retryAfterSecs"], 60);
    assert_eq!(again["pause"]["reason"], "");
    assert_paused(&c.pull(&user.token, None, None).await, 60);
    // A POST without any body pauses everyone too (curl -X POST).
    let bare = c
        .send(c.http.post(c.url("/admin/v1/pause")).bearer_auth(ADMIN))
        .await;
    assert_eq!(bare.assert_ok()["pause"]["scope"], "*");

    assert!(resume(&c, json!({})).await);
    assert!(!resume(&c, json!({})).await);
    let (changes, _) = c.pull_all(&user.token, None).await;
    assert_eq!(changes.len(), 1);
    c.push_ok(
        &user.token,
        vec![create(&op(), "plans", "p2", json!({"name": "B"}))],
    )
    .await;
    let overview = admin(&c, Method::GET, "/admin/v1/overview", None).await;
    assert_eq!(overview.assert_ok()["paused"], false);
    assert_eq!(overview.body["pauses"], 0);
}

async fn a_user_pause_stops_that_user_only(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let paused = c.user().await;
    let other = c.user().await;
    c.push_ok(
        &paused.token,
        vec![create(&op(), "plans", "p1", json!({"name": "A"}))],
    )
    .await;
    let (before, cursor) = c.pull_all(&paused.token, None).await;
    assert_eq!(before.len(), 1);

    // By email (any case), with its own Retry-After.
    let answer = pause(
        &c,
        json!({"user": paused.email.to_uppercase(), "retryAfterSecs": 7, "reason": "abuse"}),
    )
    .await;
    assert_eq!(answer["pause"]["scope"], paused.id.as_str());
    assert_eq!(answer["pause"]["email"], paused.email.as_str());
    for reply in sync_routes(&c, &paused.token).await {
        assert_paused(&reply, 7);
    }
    // A push with changes is refused whole: nothing stored changes.
    assert_paused(
        &c.push(
            &paused.token,
            vec![create(&op(), "plans", "p2", json!({"name": "B"}))],
        )
        .await,
        7,
    );
    // Another user is served; a bad token still gets its 401, not the pause.
    c.push_ok(
        &other.token,
        vec![create(&op(), "plans", "o1", json!({"name": "O"}))],
    )
    .await;
    c.pull(&other.token, None, None).await.assert_ok();
    c.get("/sync/v1/account", Some(&other.token))
        .await
        .assert_ok();
    c.pull("not-a-token", None, None)
        .await
        .assert_error(401, "unauthorized");
    // The paused user can still sign in and refresh.
    let session = c
        .sign_in(&paused.email, "password123")
        .await
        .assert_ok()
        .clone();
    c.refresh(session["refresh_token"].as_str().unwrap())
        .await
        .assert_ok();
    let overview = admin(&c, Method::GET, "/admin/v1/overview", None).await;
    assert_eq!(overview.assert_ok()["paused"], false);
    assert_eq!(overview.body["pauses"], 1);
    let listed = admin(&c, Method::GET, "/admin/v1/pauses", None).await;
    assert_eq!(
        listed.assert_ok()["pauses"][0]["email"],
        paused.email.as_str()
    );

    // By id.
    assert!(resume(&c, json!({"user": paused.id})).await);
    assert!(!resume(&c, json!({"user": paused.id})).await);
    let after = c.pull(&paused.token, Some(&cursor), None).await;
    assert_eq!(after.assert_ok()["changes"], json!([]));
    c.push_ok(
        &paused.token,
        vec![create(&op(), "plans", "p2", json!({"name": "B"}))],
    )
    .await;
}

async fn pauses_are_validated_and_users_resolved(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    for body in [
        json!({"retryAfterSecs": 0}),
        json!({"retryAfterSecs": 86_401}),
        json!({"reason": "x".repeat(201)}),
        json!({"surprise": true}),
        json!({"user": 5}),
    ] {
        admin(&c, Method::POST, "/admin/v1/pause", Some(body))
            .await
            .assert_error(400, "invalid_request");
    }
    pause(
        &c,
        json!({"retryAfterSecs": 86_400, "reason": "é".repeat(200)}),
    )
    .await;
    assert!(resume(&c, json!({})).await);
    for (path, body) in [
        ("/admin/v1/pause", json!({"user": "nobody@example.com"})),
        ("/admin/v1/resume", json!({"user": "nobody@example.com"})),
    ] {
        admin(&c, Method::POST, path, Some(body))
            .await
            .assert_error(404, "not_found");
    }
    admin(
        &c,
        Method::POST,
        "/admin/v1/users/nobody@example.com/revoke",
        None,
    )
    .await
    .assert_error(404, "not_found");
    // Nothing was paused by the refused calls.
    c.pull(&user.token, None, None).await.assert_ok();
    let listed = admin(&c, Method::GET, "/admin/v1/pauses", None).await;
    assert_eq!(listed.assert_ok()["pauses"], json!([]));
}

async fn the_sync_paused_flag_is_a_stored_pause_lifted_at_runtime(db: TestDb) {
    let mut server = with_admin_args(&db, &["--sync-paused"]);
    let c = server.client();
    let user = c.user().await;
    assert_paused(&c.pull(&user.token, None, None).await, 60);
    let listed = admin(&c, Method::GET, "/admin/v1/pauses", None).await;
    let pauses = listed.assert_ok()["pauses"].as_array().unwrap().clone();
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0]["scope"], "*");
    assert_eq!(pauses[0]["reason"], "--sync-paused flag");
    assert!(resume(&c, json!({})).await);
    c.pull(&user.token, None, None).await.assert_ok();
    // A pause is stored: it outlives a restart (here without the flag).
    pause(&c, json!({"reason": "kept"})).await;
    server.stop();
    let server = with_admin(&db);
    let c = server.client();
    assert_paused(&c.pull(&user.token, None, None).await, 60);
    // The flag keeps an operator's pause as it is.
    drop(server);
    let server = with_admin_args(&db, &["--sync-paused"]);
    let c = server.client();
    let listed = admin(&c, Method::GET, "/admin/v1/pauses", None).await;
    assert_eq!(listed.assert_ok()["pauses"][0]["reason"], "kept");
}

async fn revoking_refuses_old_tokens_and_refresh_but_not_a_new_sign_in(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    let other = c.user().await;
    let second = c
        .sign_in(&user.email, "password123")
        .await
        .assert_ok()
        .clone();
    let second_token = second["access_token"].as_str().unwrap();
    c.pull(second_token, None, None).await.assert_ok();
    let mut open_stream = c.events(second_token).await;

    let revoked = admin(
        &c,
        Method::POST,
        &format!("/admin/v1/users/{}/revoke", user.email),
        None,
    )
    .await;
    // The sign-up's session and the sign-in's.
    assert_eq!(revoked.assert_ok()["sessionsRevoked"], 2);
    for token in [user.token.as_str(), second_token] {
        c.pull(token, None, None)
            .await
            .assert_error(401, "unauthorized");
        c.get("/sync/v1/events", Some(token))
            .await
            .assert_error(401, "unauthorized");
    }
    c.refresh(second["refresh_token"].as_str().unwrap())
        .await
        .assert_error(400, "invalid_grant");
    // A stream opened before the revocation ends at its next notice instead of poking.
    let after_revocation = c
        .sign_in(&user.email, "password123")
        .await
        .assert_ok()
        .clone();
    c.push_ok(
        after_revocation["access_token"].as_str().unwrap(),
        vec![create(&op(), "plans", "r1", json!({"name": "R"}))],
    )
    .await;
    assert!(
        open_stream
            .ends_within(std::time::Duration::from_secs(5))
            .await,
        "the revoked token's event stream ended"
    );
    // Another user is untouched.
    c.pull(&other.token, None, None).await.assert_ok();
    // A sign-in right after (within the same second) works at once, and its refresh too.
    let fresh = c
        .sign_in(&user.email, "password123")
        .await
        .assert_ok()
        .clone();
    let fresh_token = fresh["access_token"].as_str().unwrap();
    c.pull(fresh_token, None, None).await.assert_ok();
    let refreshed = c
        .refresh(fresh["refresh_token"].as_str().unwrap())
        .await
        .assert_ok()
        .clone();
    c.pull(refreshed["access_token"].as_str().unwrap(), None, None)
        .await
        .assert_ok();
    // Revoking by id, again: the two sign-ins since (the refresh is the fresh one's session).
    let again = admin(
        &c,
        Method::POST,
        &format!("/admin/v1/users/{}/revoke", user.id),
        None,
    )
    .await;
    assert_eq!(again.assert_ok()["sessionsRevoked"], 2);
    c.pull(fresh_token, None, None)
        .await
        .assert_error(401, "unauthorized");
}

async fn the_overview_counts_users_streams_and_traffic(db: TestDb) {
    let server = with_admin(&db);
    let c = server.client();
    let user = c.user().await;
    c.user().await;
    let _events = c.events(&user.token).await;
    c.push_ok(
        &user.token,
        vec![create(&op(), "plans", "p1", json!({"name": "A"}))],
    )
    .await;
    c.pull(&user.token, None, None).await.assert_ok();
    c.pull(&user.token, None, None).await.assert_ok();
    let overview = admin(&c, Method::GET, "/admin/v1/overview", None)
        .await
        .assert_ok()
        .clone();
    let keys: Vec<&str> = overview
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "instance",
        "liveStreams",
        "paused",
        "pauses",
        "pullsPerMinute",
        "pushesPerMinute",
        "users",
        "version",
    ];
    expected.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, expected);
    assert_eq!(overview["users"], 2);
    assert_eq!(overview["liveStreams"], 1);
    assert_eq!(overview["paused"], false);
    let pushes = overview["pushesPerMinute"].as_array().unwrap();
    let pulls = overview["pullsPerMinute"].as_array().unwrap();
    assert_eq!((pushes.len(), pulls.len()), (60, 60));
    let sum = |v: &Vec<Value>| v.iter().map(|n| n.as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum(pushes), sum(pulls)), (1, 2));
    // The newest minute is last (a minute boundary may fall between the calls).
    assert!(pushes[58].as_u64().unwrap() + pushes[59].as_u64().unwrap() == 1);
    assert!(!overview["instance"].as_str().unwrap().is_empty());
    assert!(overview["version"].is_string());
}

/// Every admin action that changes something logs one `tandem_server::admin` line with the
/// action, the subject (a user id, never the email), the outcome, the request id and the
/// client's address; never the admin token or an email.
async fn admin_actions_are_audited_without_secrets(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--log-format", "json"])
        .log_filter("info")
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .capture_logs()
        .start();
    let c = server.client();
    let user = c.user().await;
    let mut expected = Vec::new();
    for (path, body, action, subject, outcome) in [
        (
            "/admin/v1/pause".to_string(),
            json!({"user": user.email}),
            "pause",
            user.id.as_str(),
            "done",
        ),
        (
            "/admin/v1/resume".to_string(),
            json!({"user": user.email}),
            "resume",
            user.id.as_str(),
            "done",
        ),
        (
            "/admin/v1/resume".to_string(),
            json!({}),
            "resume",
            "*",
            "unchanged",
        ),
        (
            "/admin/v1/pause".to_string(),
            json!({"user": "nobody@example.com"}),
            "pause",
            "-",
            "refused",
        ),
        (
            format!("/admin/v1/users/{}/revoke", user.email),
            json!({}),
            "revoke",
            user.id.as_str(),
            "done",
        ),
        (
            "/admin/v1/public/write".to_string(),
            json!({"writes": [{"collection": "catalog", "id": "c1", "doc": {"name": "Squat"}}]}),
            "public_write",
            "public",
            "done",
        ),
    ] {
        let reply = admin(&c, Method::POST, &path, Some(body)).await;
        let request_id = reply.headers["x-request-id"].to_str().unwrap().to_string();
        expected.push((request_id, action, subject.to_string(), outcome));
    }
    let last = &expected.last().unwrap().0;
    let mut logs = server.logs();
    for _ in 0..100 {
        if logs.contains(last.as_str()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        logs = server.logs();
    }
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "tandem_server::admin")
        .collect();
    for (request_id, action, subject, outcome) in expected {
        let line = lines
            .iter()
            .find(|l| l["request_id"] == request_id.as_str())
            .unwrap_or_else(|| panic!("no audit line for {action} {request_id}:\n{logs}"));
        assert_eq!(line["action"], action, "{line}");
        assert_eq!(line["subject"], subject.as_str(), "{line}");
        assert_eq!(line["outcome"], outcome, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["remote"], "127.0.0.1", "{line}");
    }
    assert!(!logs.contains(ADMIN), "the admin token in the logs");
    assert!(!logs.contains(&user.email), "an email in the logs");
    assert!(!logs.contains("nobody@example.com"), "an email in the logs");
}

/// Access tokens carry their issue time in whole seconds: on a clock that does not move, a
/// token of the revocation's own second is refused, a sign-in right after it works, and a
/// second revocation in that same second refuses that sign-in's token too.
async fn revocations_within_one_second_of_a_stopped_clock(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .clock(ManualClock::at_ms(1_700_000_000_000))
        .start();
    let c = server.client();
    let user = c.user().await;
    let revoke = |c: Client, id: String| async move {
        admin(
            &c,
            Method::POST,
            &format!("/admin/v1/users/{id}/revoke"),
            None,
        )
        .await
        .assert_ok()
        .clone()
    };
    let mut old = user.token.clone();
    for round in 0..3 {
        c.pull(&old, None, None).await.assert_ok();
        revoke(c.clone(), user.id.clone()).await;
        c.pull(&old, None, None)
            .await
            .assert_error(401, "unauthorized");
        let fresh = c.sign_in(&user.email, "password123").await;
        let fresh = fresh.assert_ok()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        c.pull(&fresh, None, None).await.assert_ok();
        assert_ne!(fresh, old, "round {round}");
        old = fresh;
    }
}
