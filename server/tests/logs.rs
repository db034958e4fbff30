//! The server's logs, as an operator sees them: one line per request with its id (also sent back
//! as `x-request-id`), and never a token, password, email or document field, even at `trace`
//! with every library's events on (PostgreSQL's driver included).

use tandem_testkit::server_suite as common;

use std::time::Duration;

use common::{op, upsert, TestDb, TestServer, SECRET};
use serde_json::{json, Value};
use tandem_testkit::on_both_backends;

on_both_backends!(
    logs_at_trace_hold_no_secrets,
    json_request_lines_carry_the_request_id,
    space_refusals_log_ids_and_codes_only,
);

/// Waits until the captured logs contain `needle` (the stderr reader runs on its own thread).
fn logs_with(server: &TestServer, needle: &str) -> String {
    for _ in 0..100 {
        let logs = server.logs();
        if logs.contains(needle) {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no {needle:?} in the logs:\n{}", server.logs());
}

async fn logs_at_trace_hold_no_secrets(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .log_filter("trace")
        .capture_logs()
        .start();
    let c = server.client();
    let marker = uuid::Uuid::now_v7().simple().to_string();
    let email = format!("private-{marker}@example.com");
    let password = format!("pw-{marker}-secret");
    let field_value = format!("field-value-{marker}");
    let session = c.signup(&email, &password).await.assert_ok().clone();
    let signed_in = c.sign_in(&email, &password).await.assert_ok().clone();
    c.sign_in(&email, "not-the-password-at-all")
        .await
        .assert_error(400, "invalid_grant");
    let refreshed = c
        .refresh(session["refresh_token"].as_str().unwrap())
        .await
        .assert_ok()
        .clone();
    let token = refreshed["access_token"].as_str().unwrap();
    c.get("/auth/v1/user", Some(token)).await.assert_ok();
    c.push_ok(
        token,
        vec![upsert(
            &op(),
            "plans",
            "p1",
            None,
            json!({"name": field_value, "notes": field_value}),
        )],
    )
    .await;
    let (changes, _) = c.pull_all(token, None).await;
    assert_eq!(changes[0]["doc"]["name"], json!(field_value));
    c.signup(&email, &password)
        .await
        .assert_error(422, "user_already_exists");
    c.post("/auth/v1/logout", Some(token), &json!({})).await;

    let logs = logs_with(&server, "/auth/v1/logout");
    assert!(logs.contains("/sync/v1/push"), "request lines are logged");
    let mut secrets = vec![
        email.clone(),
        format!("private-{marker}"),
        password.clone(),
        field_value.clone(),
        SECRET.to_string(),
    ];
    for answer in [&session, &signed_in, &refreshed] {
        for key in ["access_token", "refresh_token"] {
            secrets.push(answer[key].as_str().unwrap().to_string());
        }
    }
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "the logs hold {secret:?}:\n{logs}"
        );
    }
}

async fn json_request_lines_carry_the_request_id(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--log-format", "json"])
        .log_filter("info")
        .capture_logs()
        .start();
    let c = server.client();
    let (token, session) = c.new_user().await;
    let reply = c.pull(&token, Some("not-a-cursor"), None).await;
    reply.assert_error(400, "invalid_request");
    let request_id = reply.headers["x-request-id"].to_str().unwrap().to_string();
    let logs = logs_with(&server, &request_id);
    let line: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["span"]["id"] == json!(request_id) && l["message"] == "request")
        .unwrap_or_else(|| panic!("no JSON request line for {request_id}:\n{logs}"));
    assert_eq!(line["route"], "/sync/v1/pull");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["status"], 400);
    assert_eq!(line["code"], "invalid_request");
    assert_eq!(line["user_id"], session["user"]["id"]);
    assert!(line["ms"].is_number(), "{line}");
    // Every line of the run is JSON.
    for l in logs.lines() {
        assert!(serde_json::from_str::<Value>(l).is_ok(), "not JSON: {l}");
    }
}

/// Space calls log the user id, the space id and the code of a refusal; never the invitee's
/// email, the space's name or a document, even at `trace`.
async fn space_refusals_log_ids_and_codes_only(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .log_filter("trace")
        .capture_logs()
        .start();
    let c = server.client();
    let marker = uuid::Uuid::now_v7().simple().to_string();
    let name = format!("space-name-{marker}");
    let invitee = format!("invitee-{marker}@example.com");
    let (owner, outsider) = (c.user().await, c.user().await);
    let space = c.create_space(&owner.token, &name).await;
    let space_id = space["id"].as_str().unwrap();
    c.invite_ok(&owner.token, space_id, &invitee, "viewer")
        .await;
    c.rename_space(&owner.token, space_id, &format!("{name}-2"))
        .await
        .assert_ok();
    c.invite(&outsider.token, space_id, &invitee, "owner")
        .await
        .assert_error(404, "not_found");
    let logs = logs_with(&server, "space call refused");
    let refusal = logs
        .lines()
        .find(|l| l.contains("space call refused"))
        .unwrap();
    assert!(refusal.contains(&outsider.id), "{refusal}");
    assert!(refusal.contains(space_id), "{refusal}");
    assert!(refusal.contains("not_found"), "{refusal}");
    assert!(
        !logs.contains(&marker),
        "a name or email leaked into the logs:\n{logs}"
    );
}
