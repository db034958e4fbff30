//! The conformance suite: every rule of sync protocol v1, against the real server binary over
//! HTTP, on SQLite and (with `TANDEM_TEST_POSTGRES_URL`) on PostgreSQL.

use tandem_testkit::server_suite as common;

use tandem_testkit::on_both_backends;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{delete, op, upsert, TestDb, TestServer, SECRET};
use serde_json::{json, Value};

on_both_backends!(
    health_and_routing,
    sign_up_and_sign_in,
    token_tampering,
    access_token_expiry,
    refresh_rotation_and_reuse,
    refresh_reuse_after_grace_revokes_the_family,
    refresh_retry_after_a_lost_answer_gets_a_session,
    logout_revokes_refresh_tokens,
    failed_sign_ins_are_rate_limited,
    versions_and_conflicts,
    idempotent_replay,
    schema_validation,
    deletes_cascade,
    cross_tenant_isolation,
    pagination_and_cursors,
    malformed_input_answers_4xx,
    body_and_batch_limits,
    sse_pokes,
    kill_switch,
    data_survives_restart,
    purged_tombstones_expire_cursors,
    full_pulls_complete_after_a_purge,
    a_record_created_again_after_a_purge_never_reuses_a_version,
);

fn jwt_payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &str, alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn health_and_routing(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    assert_eq!(
        c.get("/healthz", None).await.assert_ok(),
        &json!({"status": "ok"})
    );
    c.get("/nope", None).await.assert_error(404, "not_found");
    c.get("/sync/v1/push", None)
        .await
        .assert_error(405, "method_not_allowed");
    c.get("/auth/v1/signup", None)
        .await
        .assert_error(405, "method_not_allowed");
    let reply = c.get("/healthz", None).await;
    assert!(reply.headers.contains_key("x-request-id"));
}

async fn sign_up_and_sign_in(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let session = c
        .signup("Alice@Example.com", "password123")
        .await
        .assert_ok()
        .clone();
    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["expires_in"], 3600);
    assert_eq!(session["user"]["email"], "alice@example.com");
    assert!(uuid::Uuid::parse_str(session["user"]["id"].as_str().unwrap()).is_ok());
    assert!(session["user"]["created_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(session["refresh_token"].as_str().unwrap().len() >= 32);
    let token = session["access_token"].as_str().unwrap();
    let claims = jwt_payload(token);
    assert_eq!(claims["sub"], session["user"]["id"]);
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["aud"], "authenticated");
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims["session_id"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(session["expires_at"], claims["exp"]);

    let user = c
        .get("/auth/v1/user", Some(token))
        .await
        .assert_ok()
        .clone();
    assert_eq!(user, session["user"]);

    c.signup("alice@example.com", "password456")
        .await
        .assert_error(422, "user_already_exists");
    c.signup("bob@example.com", "short")
        .await
        .assert_error(422, "weak_password");
    c.signup("not-an-email", "password123")
        .await
        .assert_error(400, "validation_failed");
    c.signup("a@", "password123")
        .await
        .assert_error(400, "validation_failed");

    let again = c
        .sign_in("ALICE@example.com", "password123")
        .await
        .assert_ok()
        .clone();
    assert_eq!(again["user"], session["user"]);
    assert_ne!(
        jwt_payload(again["access_token"].as_str().unwrap())["session_id"],
        claims["session_id"]
    );
    c.sign_in("alice@example.com", "wrong-password")
        .await
        .assert_error(400, "invalid_grant");
    c.sign_in("nobody@example.com", "password123")
        .await
        .assert_error(400, "invalid_grant");

    let body = json!({"email": "alice@example.com", "password": "password123"});
    c.post("/auth/v1/token", None, &body)
        .await
        .assert_error(400, "unsupported_grant_type");
    c.post("/auth/v1/token?grant_type=client_credentials", None, &body)
        .await
        .assert_error(400, "unsupported_grant_type");
    c.post(
        "/auth/v1/token?grant_type=password",
        None,
        &json!({"email": "a@b"}),
    )
    .await
    .assert_error(400, "invalid_request");
    c.post(
        "/auth/v1/signup",
        None,
        &json!({"email": 5, "password": "password123"}),
    )
    .await
    .assert_error(400, "invalid_request");
}

async fn token_tampering(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (token, _) = c.new_user().await;
    let (other_token, _) = c.new_user().await;
    let claims = jwt_payload(&token);
    let check = |t: String, code: &'static str| {
        let c = c.clone();
        async move {
            c.get("/auth/v1/user", Some(&t))
                .await
                .assert_error(403, code)
        }
    };
    // Missing or malformed headers: 401 (GoTrue's `no_authorization`); a token that is refused,
    // on `/auth/v1`: 403 (GoTrue's `bad_jwt`).
    c.get("/auth/v1/user", None)
        .await
        .assert_error(401, "unauthorized");
    let basic = c
        .http
        .get(c.url("/auth/v1/user"))
        .header("authorization", "Basic abc");
    c.send(basic).await.assert_error(401, "unauthorized");
    check("garbage".into(), "unauthorized").await;
    // An empty token is no bearer token at all (GoTrue's `no_authorization`): 401.
    c.get("/auth/v1/user", Some(""))
        .await
        .assert_error(401, "unauthorized");
    // Wrong secret.
    check(
        sign(
            &claims,
            "some-other-secret-0123456789",
            jsonwebtoken::Algorithm::HS256,
        ),
        "unauthorized",
    )
    .await;
    // Another HMAC algorithm with the right secret.
    check(
        sign(&claims, SECRET, jsonwebtoken::Algorithm::HS512),
        "unauthorized",
    )
    .await;
    // alg: none.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = token.split('.').nth(1).unwrap();
    check(format!("{none_header}.{payload}."), "unauthorized").await;
    // Swapped payload: the other user's claims under this token's signature.
    let parts: Vec<&str> = token.split('.').collect();
    let other_payload = other_token.split('.').nth(1).unwrap();
    check(
        format!("{}.{}.{}", parts[0], other_payload, parts[2]),
        "unauthorized",
    )
    .await;
    // Edited claim.
    let mut edited = claims.clone();
    edited["sub"] = json!("someone-else");
    let edited_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&edited).unwrap());
    check(
        format!("{}.{}.{}", parts[0], edited_payload, parts[2]),
        "unauthorized",
    )
    .await;
    // Wrong audience, well signed.
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("anon");
    check(
        sign(&wrong_aud, SECRET, jsonwebtoken::Algorithm::HS256),
        "unauthorized",
    )
    .await;
    // Expired, well signed → token_expired; expired and badly signed → unauthorized.
    let mut expired = claims.clone();
    expired["exp"] = json!(now_secs() - 30);
    check(
        sign(&expired, SECRET, jsonwebtoken::Algorithm::HS256),
        "token_expired",
    )
    .await;
    check(
        sign(
            &expired,
            "some-other-secret-0123456789",
            jsonwebtoken::Algorithm::HS256,
        ),
        "unauthorized",
    )
    .await;
    // The same answers on sync routes.
    let expired_token = sign(&expired, SECRET, jsonwebtoken::Algorithm::HS256);
    c.pull(&expired_token, None, None)
        .await
        .assert_error(401, "token_expired");
    c.push("garbage", vec![])
        .await
        .assert_error(401, "unauthorized");
}

async fn access_token_expiry(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--access-token-ttl", "1"])
        .in_process()
        .start();
    let c = server.client();
    let (token, session) = c.new_user().await;
    assert_eq!(session["expires_in"], 1);
    c.get("/auth/v1/user", Some(&token)).await.assert_ok();
    server.advance(Duration::from_millis(3200)); // past exp plus the 1 s leeway
    c.get("/auth/v1/user", Some(&token))
        .await
        .assert_error(403, "token_expired");
    c.pull(&token, None, None)
        .await
        .assert_error(401, "token_expired");
    // A refresh still works and gives a fresh token.
    let fresh = c
        .refresh(session["refresh_token"].as_str().unwrap())
        .await
        .assert_ok()
        .clone();
    c.get("/auth/v1/user", fresh["access_token"].as_str())
        .await
        .assert_ok();
}

async fn refresh_rotation_and_reuse(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (_, session) = c.new_user().await;
    let first = session["refresh_token"].as_str().unwrap();
    let next = c.refresh(first).await.assert_ok().clone();
    let second = next["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(next["user"], session["user"]);
    assert_eq!(
        jwt_payload(next["access_token"].as_str().unwrap())["session_id"],
        jwt_payload(session["access_token"].as_str().unwrap())["session_id"]
    );
    c.get("/auth/v1/user", next["access_token"].as_str())
        .await
        .assert_ok();
    // `second` has been used, so presenting `first` again is no lost answer: refused, and the
    // family stays alive within the grace.
    let third = c.refresh(second).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    c.refresh(first).await.assert_error(400, "invalid_grant");
    c.refresh("never-issued")
        .await
        .assert_error(400, "invalid_grant");
    c.post("/auth/v1/token?grant_type=refresh_token", None, &json!({}))
        .await
        .assert_error(400, "invalid_request");
    c.refresh(&third).await.assert_ok();
}

async fn refresh_reuse_after_grace_revokes_the_family(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--refresh-reuse-grace-secs", "1"])
        .in_process()
        .start();
    let c = server.client();
    let (_, session) = c.new_user().await;
    let first = session["refresh_token"].as_str().unwrap();
    let second = c.refresh(first).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Another sign-in of the same user is a different family and must survive.
    let email = session["user"]["email"].as_str().unwrap();
    let other = c.sign_in(email, "password123").await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    server.advance(Duration::from_millis(1_100));
    c.refresh(first).await.assert_error(400, "invalid_grant");
    c.refresh(&second).await.assert_error(400, "invalid_grant");
    c.refresh(&other).await.assert_ok();
}

/// Bug 10 of issue 11: the server exchanged a refresh token but its answer never arrived. The
/// client presents the old token again within the grace and must get a working session; the
/// token of the lost answer stops working, and the family lives on.
async fn refresh_retry_after_a_lost_answer_gets_a_session(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (_, session) = c.new_user().await;
    let first = session["refresh_token"].as_str().unwrap();
    let lost = c.refresh(first).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let retried = c.refresh(first).await.assert_ok().clone();
    let retried_token = retried["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(retried_token, lost);
    assert_eq!(retried["user"], session["user"]);
    c.get("/auth/v1/user", retried["access_token"].as_str())
        .await
        .assert_ok();
    // A second retry (the second answer lost too) works the same way.
    let again = c.refresh(first).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    c.refresh(&lost).await.assert_error(400, "invalid_grant");
    c.refresh(&retried_token)
        .await
        .assert_error(400, "invalid_grant");
    let next = c.refresh(&again).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Once the newest token has been used, the old one is a replay, not a retry.
    c.refresh(first).await.assert_error(400, "invalid_grant");
    c.refresh(&next).await.assert_ok();
}

async fn logout_revokes_refresh_tokens(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (token, session) = c.new_user().await;
    let reply = c
        .send(c.http.post(c.url("/auth/v1/logout")).bearer_auth(&token))
        .await;
    assert_eq!(reply.status.as_u16(), 204);
    c.refresh(session["refresh_token"].as_str().unwrap())
        .await
        .assert_error(400, "invalid_grant");
    // `/auth/v1` refuses the access token of the signed-out session (GoTrue's 403
    // `session_not_found`); `/sync/v1` checks JWTs statelessly: there it works until it expires.
    c.get("/auth/v1/user", Some(&token))
        .await
        .assert_error(403, "unauthorized");
    c.send(c.http.post(c.url("/auth/v1/logout")).bearer_auth(&token))
        .await
        .assert_error(403, "unauthorized");
    c.pull(&token, None, None).await.assert_ok();
    let reply = c.send(c.http.post(c.url("/auth/v1/logout"))).await;
    reply.assert_error(401, "unauthorized");
}

async fn failed_sign_ins_are_rate_limited(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    c.signup("victim@example.com", "password123")
        .await
        .assert_ok();
    for _ in 0..5 {
        c.sign_in("victim@example.com", "wrong-password")
            .await
            .assert_error(400, "invalid_grant");
    }
    let limited = c.sign_in("victim@example.com", "password123").await;
    limited.assert_error(429, "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Other emails are not affected, and sign-up is not limited.
    c.signup("bystander@example.com", "password123")
        .await
        .assert_ok();
    c.sign_in("bystander@example.com", "password123")
        .await
        .assert_ok();
}

async fn versions_and_conflicts(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let r = c
        .push_ok(
            &t,
            vec![upsert("o1", "plans", "p1", None, json!({"name": "A"}))],
        )
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "o1", "status": "applied", "version": 1})
    );
    let r = c
        .push_ok(
            &t,
            vec![upsert("o2", "plans", "p1", Some(1), json!({"name": "B"}))],
        )
        .await;
    assert_eq!(r[0]["version"], 2);
    let r = c
        .push_ok(
            &t,
            vec![
                upsert("o3", "plans", "p1", Some(1), json!({"name": "C"})),
                upsert("o4", "plans", "p1", None, json!({"name": "D"})),
                upsert("o5", "plans", "zz", Some(1), json!({"name": "E"})),
                delete("o6", "plans", "p1", Some(1)),
                delete("o7", "plans", "zz", Some(1)),
            ],
        )
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "o3", "status": "conflict", "reason": "version_mismatch",
                            "serverVersion": 2, "serverDoc": {"name": "B"}})
    );
    assert_eq!(
        r[1],
        json!({"opId": "o4", "status": "conflict", "reason": "already_exists",
                            "serverVersion": 2, "serverDoc": {"name": "B"}})
    );
    assert_eq!(
        r[2],
        json!({"opId": "o5", "status": "conflict", "reason": "not_found",
                            "serverVersion": null, "serverDoc": null})
    );
    assert_eq!(r[3]["reason"], "version_mismatch");
    assert_eq!(
        r[4],
        json!({"opId": "o7", "status": "conflict", "reason": "not_found",
                            "serverVersion": null, "serverDoc": null})
    );
    // Replace is whole-document: fields not sent are gone.
    let r = c
        .push_ok(
            &t,
            vec![upsert(
                "o8",
                "plans",
                "p1",
                Some(2),
                json!({"name": "F", "notes": "n"}),
            )],
        )
        .await;
    assert_eq!(r[0]["version"], 3);
    let r = c
        .push_ok(
            &t,
            vec![upsert("o9", "plans", "p1", Some(3), json!({"name": "G"}))],
        )
        .await;
    assert_eq!(r[0]["version"], 4);
    let (changes, _) = c.pull_all(&t, None).await;
    assert_eq!(changes[0]["doc"], json!({"name": "G"}));
    // Delete, then deletes are idempotent whatever baseVersion says.
    let r = c
        .push_ok(
            &t,
            vec![
                delete("d1", "plans", "p1", Some(4)),
                delete("d2", "plans", "p1", Some(1)),
                delete("d3", "plans", "p1", None),
            ],
        )
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "d1", "status": "applied", "version": 5})
    );
    assert_eq!(
        r[1],
        json!({"opId": "d2", "status": "applied", "version": 5})
    );
    assert_eq!(
        r[2],
        json!({"opId": "d3", "status": "applied", "version": 5})
    );
    // Creating over a tombstone conflicts; baseVersion = the tombstone's version brings it back.
    let r = c
        .push_ok(
            &t,
            vec![
                upsert("u1", "plans", "p1", None, json!({"name": "H"})),
                upsert("u2", "plans", "p1", Some(4), json!({"name": "H"})),
                upsert("u3", "plans", "p1", Some(5), json!({"name": "H"})),
            ],
        )
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "u1", "status": "conflict", "reason": "deleted",
                            "serverVersion": 5, "serverDoc": null})
    );
    assert_eq!(
        r[1],
        json!({"opId": "u2", "status": "conflict", "reason": "version_mismatch",
                            "serverVersion": 5, "serverDoc": null})
    );
    assert_eq!(
        r[2],
        json!({"opId": "u3", "status": "applied", "version": 6})
    );
    let (changes, _) = c.pull_all(&t, None).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["version"], 6);
    assert_eq!(changes[0]["deleted"], false);
    assert_eq!(changes[0]["doc"], json!({"name": "H"}));
}

async fn idempotent_replay(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let batch = vec![
        upsert("a1", "plans", "p1", None, json!({"name": "A"})),
        upsert("a2", "plans", "p1", Some(1), json!({"name": "B"})),
        upsert(
            "a3",
            "plan_days",
            "d1",
            None,
            json!({"planId": "missing", "dayIndex": 0}),
        ),
    ];
    let first = c.push_ok(&t, batch.clone()).await;
    assert_eq!(first[0]["status"], "applied");
    assert_eq!(first[1]["version"], 2);
    assert_eq!(
        first[2],
        json!({"opId": "a3", "status": "rejected", "reason": "invalid_parent"})
    );
    let (_, cursor) = c.pull_all(&t, None).await;
    let replay = c.push_ok(&t, batch.clone()).await;
    assert_eq!(
        replay[0],
        json!({"opId": "a1", "status": "duplicate", "version": 1})
    );
    assert_eq!(
        replay[1],
        json!({"opId": "a2", "status": "duplicate", "version": 2})
    );
    // A rejected op changed nothing and is judged afresh.
    assert_eq!(replay[2]["status"], "rejected");
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    assert!(
        changes.is_empty(),
        "a replay changed something: {changes:?}"
    );
    // Once the parent exists, the same op applies; a conflicted op too, once it fits.
    let r = c
        .push_ok(
            &t,
            vec![
                upsert("a4", "plans", "missing", None, json!({"name": "M"})),
                upsert(
                    "a3",
                    "plan_days",
                    "d1",
                    None,
                    json!({"planId": "missing", "dayIndex": 0}),
                ),
                upsert("a5", "plans", "p1", Some(1), json!({"name": "C"})),
            ],
        )
        .await;
    assert_eq!(r[1]["status"], "applied");
    assert_eq!(r[2]["reason"], "version_mismatch");
    let r = c
        .push_ok(
            &t,
            vec![upsert("a5", "plans", "p1", Some(2), json!({"name": "C"}))],
        )
        .await;
    assert_eq!(
        r[0],
        json!({"opId": "a5", "status": "applied", "version": 3})
    );
    // The same opId twice in one batch: the second is a duplicate.
    let r = c
        .push_ok(
            &t,
            vec![
                upsert("a6", "exercises", "e1", None, json!({"name": "Squat"})),
                upsert("a6", "exercises", "e1", None, json!({"name": "Squat"})),
            ],
        )
        .await;
    assert_eq!(
        r[1],
        json!({"opId": "a6", "status": "duplicate", "version": 1})
    );
}

async fn schema_validation(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let big = "x".repeat(300 * 1024);
    let r = c
        .push_ok(
            &t,
            vec![
                upsert("v1", "nope", "x", None, json!({"name": "A"})),
                upsert("v2", "Bad-Name", "x", None, json!({"name": "A"})),
                upsert(
                    "v3",
                    "plans",
                    "p",
                    None,
                    json!({"name": "A", "colour": "red"}),
                ),
                upsert("v4", "plans", "p", None, json!({"name": 5})),
                upsert("v5", "plans", "p", None, json!({"notes": "no name"})),
                upsert("v6", "plans", "p", None, json!({"name": null})),
                upsert("v7", "plans", "p", None, json!({"name": "é".repeat(201)})),
                upsert(
                    "v8",
                    "plan_days",
                    "d",
                    None,
                    json!({"planId": "p", "dayIndex": 1.5}),
                ),
                upsert("v9", "plans", "p", None, json!({"name": "A", "notes": big})),
                upsert(
                    "v10",
                    "plans",
                    "p",
                    None,
                    json!({"name": "é".repeat(200), "notes": null, "archived": false}),
                ),
                upsert(
                    "v11",
                    "plan_days",
                    "d",
                    None,
                    json!({"planId": "p", "dayIndex": 1, "exerciseIds": ["e"], "title": null}),
                ),
                upsert(
                    "v12",
                    "plan_days",
                    "d2",
                    None,
                    json!({"planId": "p", "dayIndex": 2, "exerciseIds": "e"}),
                ),
                upsert(
                    "v13",
                    "plan_days",
                    "d3",
                    None,
                    json!({"planId": "nope", "dayIndex": 3}),
                ),
                upsert(
                    "v14",
                    "plan_days",
                    "d4",
                    None,
                    json!({"planId": 7, "dayIndex": 3}),
                ),
                upsert(
                    "v15",
                    "plan_days",
                    "d5",
                    None,
                    json!({"planId": "bad id!", "dayIndex": 3}),
                ),
                upsert(
                    "v16",
                    "plans",
                    "q",
                    None,
                    json!({"name": "Q", "archived": "yes"}),
                ),
            ],
        )
        .await;
    let got: Vec<(&str, Option<&str>)> = r
        .iter()
        .map(|x| (x["status"].as_str().unwrap(), x["reason"].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("rejected", Some("unknown_entity")),
            ("rejected", Some("unknown_entity")),
            ("rejected", Some("invalid_payload")),
            ("rejected", Some("invalid_payload")),
            ("rejected", Some("invalid_payload")),
            ("rejected", Some("invalid_payload")),
            ("rejected", Some("invalid_payload")),
            ("rejected", Some("invalid_payload")),
            ("rejected", Some("too_large")),
            ("applied", None),
            ("applied", None),
            ("rejected", Some("invalid_payload")),
            ("rejected", Some("invalid_parent")),
            ("rejected", Some("invalid_payload")),
            ("rejected", Some("invalid_parent")),
            ("rejected", Some("invalid_payload")),
        ]
    );
    // Validation comes before version checks: an invalid payload on a missing record is rejected.
    let r = c
        .push_ok(
            &t,
            vec![upsert("w1", "plans", "ghost", Some(3), json!({"bad": 1}))],
        )
        .await;
    assert_eq!(r[0]["status"], "rejected");
    // A child of a deleted parent is refused.
    let r = c
        .push_ok(
            &t,
            vec![
                delete("w2", "plans", "p", Some(1)),
                upsert(
                    "w3",
                    "plan_days",
                    "d9",
                    None,
                    json!({"planId": "p", "dayIndex": 9}),
                ),
            ],
        )
        .await;
    assert_eq!(r[0]["status"], "applied");
    assert_eq!(r[1]["reason"], "invalid_parent");
}

async fn deletes_cascade(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let r = c
        .push_ok(
            &t,
            vec![
                upsert("c1", "plans", "p", None, json!({"name": "P"})),
                upsert(
                    "c2",
                    "plan_days",
                    "d1",
                    None,
                    json!({"planId": "p", "dayIndex": 1}),
                ),
                upsert("c3", "plans", "q", None, json!({"name": "Q"})),
                upsert(
                    "c4",
                    "plan_days",
                    "d2",
                    None,
                    json!({"planId": "q", "dayIndex": 2}),
                ),
            ],
        )
        .await;
    assert!(r.iter().all(|x| x["status"] == "applied"), "{r:?}");
    let (_, cursor) = c.pull_all(&t, None).await;
    // Move d2 under p and delete p in one batch: both days go.
    let r = c
        .push_ok(
            &t,
            vec![
                upsert(
                    "c5",
                    "plan_days",
                    "d2",
                    Some(1),
                    json!({"planId": "p", "dayIndex": 2}),
                ),
                upsert(
                    "c6",
                    "plan_days",
                    "d3",
                    None,
                    json!({"planId": "p", "dayIndex": 3}),
                ),
                delete("c7", "plans", "p", Some(1)),
            ],
        )
        .await;
    assert_eq!(
        r[2],
        json!({"opId": "c7", "status": "applied", "version": 2})
    );
    let (changes, _) = c.pull_all(&t, Some(&cursor)).await;
    let view: Vec<(String, i64, bool)> = changes
        .iter()
        .map(|x| {
            (
                x["entityId"].as_str().unwrap().to_string(),
                x["version"].as_i64().unwrap(),
                x["deleted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(view.len(), 4, "{view:?}");
    assert!(view.contains(&("p".into(), 2, true)));
    assert!(view.contains(&("d1".into(), 2, true)));
    assert!(view.contains(&("d2".into(), 3, true)));
    assert!(view.contains(&("d3".into(), 2, true)));
    assert!(changes
        .iter()
        .filter(|x| x["deleted"] == true)
        .all(|x| x["doc"].is_null()));
    // q is untouched.
    let (all, _) = c.pull_all(&t, None).await;
    let q = all.iter().find(|x| x["entityId"] == "q").unwrap();
    assert_eq!(q["version"], 1);
    assert_eq!(q["deleted"], false);
}

async fn cross_tenant_isolation(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (alice, _) = c.new_user().await;
    let (bob, _) = c.new_user().await;
    c.push_ok(
        &alice,
        vec![upsert(
            "shared-op",
            "plans",
            "p1",
            None,
            json!({"name": "Alice's"}),
        )],
    )
    .await;
    let (_, alice_cursor) = c.pull_all(&alice, None).await;
    let (bob_view, _) = c.pull_all(&bob, None).await;
    assert!(bob_view.is_empty());
    let r = c
        .push_ok(
            &bob,
            vec![
                upsert("b1", "plans", "p1", Some(1), json!({"name": "hijack"})),
                delete("b2", "plans", "p1", Some(1)),
                upsert(
                    "b3",
                    "plan_days",
                    "d1",
                    None,
                    json!({"planId": "p1", "dayIndex": 0}),
                ),
                upsert("shared-op", "plans", "p1", None, json!({"name": "Bob's"})),
            ],
        )
        .await;
    assert_eq!(r[0]["reason"], "not_found");
    assert_eq!(r[0]["serverDoc"], Value::Null);
    assert_eq!(r[1]["reason"], "not_found");
    assert_eq!(r[2]["reason"], "invalid_parent");
    assert_eq!(
        r[3],
        json!({"opId": "shared-op", "status": "applied", "version": 1})
    );
    c.pull(&bob, Some(&alice_cursor), None)
        .await
        .assert_error(400, "invalid_request");
    let (alice_view, _) = c.pull_all(&alice, None).await;
    assert_eq!(alice_view.len(), 1);
    assert_eq!(alice_view[0]["doc"], json!({"name": "Alice's"}));
    let (bob_view, _) = c.pull_all(&bob, None).await;
    assert_eq!(bob_view.len(), 1);
    assert_eq!(bob_view[0]["doc"], json!({"name": "Bob's"}));
}

async fn pagination_and_cursors(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (t, _) = c.new_user().await;
    let creates = (0..25)
        .map(|i| {
            upsert(
                &op(),
                "exercises",
                &format!("e{i:02}"),
                None,
                json!({"name": format!("E{i}")}),
            )
        })
        .collect();
    c.push_ok(&t, creates).await;
    // e00 changes again: it must come once, in its latest state, in its new position.
    c.push_ok(
        &t,
        vec![upsert(
            &op(),
            "exercises",
            "e00",
            Some(1),
            json!({"name": "E0 v2"}),
        )],
    )
    .await;
    let p1 = c.pull(&t, None, Some(10)).await.assert_ok().clone();
    assert_eq!(p1["changes"].as_array().unwrap().len(), 10);
    assert_eq!(
        (p1["hasMore"].clone(), p1["remaining"].clone()),
        (json!(true), json!(15))
    );
    assert_eq!(p1["changes"][0]["entityId"], "e01");
    assert!(p1["changes"][0]["updatedAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let p2 = c
        .pull(&t, p1["cursor"].as_str(), Some(10))
        .await
        .assert_ok()
        .clone();
    assert_eq!(
        (p2["hasMore"].clone(), p2["remaining"].clone()),
        (json!(true), json!(5))
    );
    let p3 = c
        .pull(&t, p2["cursor"].as_str(), Some(10))
        .await
        .assert_ok()
        .clone();
    assert_eq!(p3["changes"].as_array().unwrap().len(), 5);
    assert_eq!(
        (p3["hasMore"].clone(), p3["remaining"].clone()),
        (json!(false), json!(0))
    );
    let last = p3["changes"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (
            last["entityId"].clone(),
            last["version"].clone(),
            last["doc"].clone()
        ),
        (json!("e00"), json!(2), json!({"name": "E0 v2"}))
    );
    let p4 = c
        .pull(&t, p3["cursor"].as_str(), None)
        .await
        .assert_ok()
        .clone();
    assert_eq!(p4["changes"], json!([]));
    assert_eq!(
        (p4["hasMore"].clone(), p4["remaining"].clone()),
        (json!(false), json!(0))
    );
    // Exactly what changed after a cursor.
    c.push_ok(
        &t,
        vec![upsert(
            &op(),
            "exercises",
            "e05",
            Some(1),
            json!({"name": "E5 v2"}),
        )],
    )
    .await;
    let p5 = c
        .pull(&t, p4["cursor"].as_str(), None)
        .await
        .assert_ok()
        .clone();
    assert_eq!(p5["changes"].as_array().unwrap().len(), 1);
    assert_eq!(p5["changes"][0]["entityId"], "e05");
    // Limits.
    c.pull(&t, None, Some(0))
        .await
        .assert_error(400, "invalid_request");
    c.pull(&t, None, Some(-3))
        .await
        .assert_error(400, "invalid_request");
    let clamped = c.pull(&t, None, Some(5000)).await.assert_ok().clone();
    assert_eq!(clamped["changes"].as_array().unwrap().len(), 25);
    c.post("/sync/v1/pull", Some(&t), &json!({"limit": "ten"}))
        .await
        .assert_error(400, "invalid_request");
    c.post("/sync/v1/pull", Some(&t), &json!({"limit": 1.5}))
        .await
        .assert_error(400, "invalid_request");
    // Cursors the server never issued.
    c.post("/sync/v1/pull", Some(&t), &json!({"cursor": 42}))
        .await
        .assert_error(400, "invalid_request");
    c.pull(&t, Some("garbage"), None)
        .await
        .assert_error(400, "invalid_request");
    let real = p3["cursor"].as_str().unwrap();
    let forged = format!("{}9{}", &real[..3], &real[3..]);
    c.pull(&t, Some(&forged), None)
        .await
        .assert_error(400, "invalid_request");
    // An empty body object pulls from the start.
    let from_start = c
        .post("/sync/v1/pull", Some(&t), &json!({}))
        .await
        .assert_ok()
        .clone();
    assert_eq!(from_start["changes"].as_array().unwrap().len(), 25);
}

async fn malformed_input_answers_4xx(db: TestDb) {
    let (_server, c, t) = TestServer::with_user(&db).await;
    let good = upsert("m0", "plans", "p", None, json!({"name": "A"}));
    let with = |key: &str, value: Value| {
        let mut m = good.clone();
        m[key] = value;
        m
    };
    let without = |key: &str| {
        let mut m = good.clone();
        m.as_object_mut().unwrap().remove(key);
        m
    };
    let bad_bodies = vec![
        json!([]),
        json!("text"),
        json!({"mutations": []}),
        json!({"clientId": "c", "mutations": {}}),
        json!({"clientId": "c"}),
        json!({"clientId": "bad id", "mutations": []}),
        json!({"clientId": 5, "mutations": []}),
        json!({"clientId": "c", "mutations": [5]}),
        json!({"clientId": "c", "mutations": [good.clone(), "x"]}),
        json!({"clientId": "c", "mutations": [without("opId")]}),
        json!({"clientId": "c", "mutations": [with("opId", json!("has space"))]}),
        json!({"clientId": "c", "mutations": [with("opId", json!("x".repeat(129)))]}),
        json!({"clientId": "c", "mutations": [with("opId", json!(""))]}),
        json!({"clientId": "c", "mutations": [with("entityId", json!("a/b"))]}),
        json!({"clientId": "c", "mutations": [with("entityId", json!(12))]}),
        json!({"clientId": "c", "mutations": [with("entity", json!(12))]}),
        json!({"clientId": "c", "mutations": [with("type", json!("patch"))]}),
        json!({"clientId": "c", "mutations": [without("type")]}),
        json!({"clientId": "c", "mutations": [with("baseVersion", json!("1"))]}),
        json!({"clientId": "c", "mutations": [with("baseVersion", json!(1.5))]}),
        json!({"clientId": "c", "mutations": [with("payload", json!([1]))]}),
        json!({"clientId": "c", "mutations": [with("payload", json!("doc"))]}),
        json!({"clientId": "c", "mutations": [without("payload")]}),
        json!({"clientId": "c", "mutations": [with("clientTime", json!("yesterday"))]}),
        json!({"clientId": "c", "mutations": [with("clientTime", json!(12))]}),
    ];
    for (i, body) in bad_bodies.iter().enumerate() {
        let reply = c.post("/sync/v1/push", Some(&t), body).await;
        assert_eq!(reply.status.as_u16(), 400, "case {i}: {body}");
        reply.assert_error(400, "invalid_request");
    }
    // A malformed id anywhere refuses the whole request: nothing was applied.
    let (changes, _) = c.pull_all(&t, None).await;
    assert!(changes.is_empty());
    for raw in [
        &b"{"[..],
        b"not json",
        b"",
        b"{\"clientId\": \"c\", \"mutations\": [}",
        &[0xff, 0xfe],
    ] {
        c.post_raw(
            "/sync/v1/push",
            Some(&t),
            Some("application/json"),
            raw.to_vec(),
        )
        .await
        .assert_error(400, "invalid_request");
        c.post_raw(
            "/sync/v1/pull",
            Some(&t),
            Some("application/json"),
            raw.to_vec(),
        )
        .await
        .assert_error(400, "invalid_request");
        c.post_raw(
            "/auth/v1/signup",
            None,
            Some("application/json"),
            raw.to_vec(),
        )
        .await
        .assert_error(400, "invalid_request");
    }
    let body = serde_json::to_vec(&json!({"clientId": "c", "mutations": []})).unwrap();
    c.post_raw("/sync/v1/push", Some(&t), Some("text/plain"), body.clone())
        .await
        .assert_error(415, "unsupported_media_type");
    c.post_raw("/sync/v1/push", Some(&t), None, body.clone())
        .await
        .assert_error(415, "unsupported_media_type");
    c.post_raw(
        "/auth/v1/signup",
        None,
        Some("application/x-www-form-urlencoded"),
        b"email=a".to_vec(),
    )
    .await
    .assert_error(415, "unsupported_media_type");
    let ok = c
        .post_raw(
            "/sync/v1/push",
            Some(&t),
            Some("application/json; charset=utf-8"),
            body,
        )
        .await;
    assert_eq!(ok.assert_ok(), &json!({"results": []}));
    // A delete needs no payload and ignores a missing baseVersion key (null).
    let mut d = delete("m1", "plans", "p", None);
    d.as_object_mut().unwrap().remove("baseVersion");
    let r = c.push_ok(&t, vec![d]).await;
    assert_eq!(r[0]["reason"], "not_found");
}

async fn body_and_batch_limits(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--max-body-bytes", "20000", "--max-batch", "10"])
        .start();
    let c = server.client();
    let (t, _) = c.new_user().await;
    let many = (0..11)
        .map(|i| {
            upsert(
                &op(),
                "exercises",
                &format!("e{i}"),
                None,
                json!({"name": "x"}),
            )
        })
        .collect();
    c.push(&t, many).await.assert_error(400, "batch_too_large");
    let huge = vec![upsert(
        &op(),
        "exercises",
        "e",
        None,
        json!({"name": "x", "notes": "n".repeat(30_000)}),
    )];
    // Answered from the declared length, before the body is read; the client may still be
    // sending when the server closes, and then sees the connection drop instead of the answer
    // (seen about once in a few hundred runs). When it sees an answer, it is 413.
    let request = c
        .http
        .post(c.url("/sync/v1/push"))
        .bearer_auth(&t)
        .json(&json!({
            "clientId": "client-1", "mutations": huge
        }));
    if let Ok(response) = request.send().await {
        assert_eq!(response.status().as_u16(), 413);
        assert_closes(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "payload_too_large");
    }
    // Chunked, without Content-Length, is limited too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b' '; 15_000]), Ok(vec![b' '; 15_000])];
    let request = c
        .http
        .post(c.url("/sync/v1/pull"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )));
    // The server answers 413 without reading the rest and closes the connection, so the client may
    // see the connection drop before it has sent everything; if it sees an answer, it is 413.
    if let Ok(response) = request.send().await {
        assert_eq!(response.status().as_u16(), 413);
        assert_closes(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "payload_too_large");
    }
    let ten = (0..10)
        .map(|i| {
            upsert(
                &op(),
                "exercises",
                &format!("e{i}"),
                None,
                json!({"name": "x"}),
            )
        })
        .collect();
    assert_eq!(c.push_ok(&t, ten).await.len(), 10);
}

/// The answer says `Connection: close`: the body was left unread, so the connection must not
/// carry another request.
fn assert_closes(response: &reqwest::Response) {
    let connection = response
        .headers()
        .get("connection")
        .and_then(|v| v.to_str().ok());
    assert_eq!(connection, Some("close"), "{:?}", response.headers());
}

async fn sse_pokes(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let (alice, _) = c.new_user().await;
    let (bob, _) = c.new_user().await;
    c.get("/sync/v1/events", None)
        .await
        .assert_error(401, "unauthorized");
    let mut events = c.events(&alice).await;
    assert!(events.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // Bob's change does not poke Alice; Alice's does, with her latest cursor.
    c.push_ok(
        &bob,
        vec![upsert(&op(), "plans", "b", None, json!({"name": "B"}))],
    )
    .await;
    c.push_ok(
        &alice,
        vec![upsert(&op(), "plans", "a", None, json!({"name": "A"}))],
    )
    .await;
    let cursor = events.next_poke().await;
    let (_, latest) = c.pull_all(&alice, None).await;
    assert_eq!(cursor, latest);
    let after = c
        .pull(&alice, Some(&cursor), None)
        .await
        .assert_ok()
        .clone();
    assert_eq!(after["changes"], json!([]));
    c.push_ok(
        &alice,
        vec![upsert(&op(), "plans", "a", Some(1), json!({"name": "A2"}))],
    )
    .await;
    let cursor2 = events.next_poke().await;
    let page = c
        .pull(&alice, Some(&cursor), None)
        .await
        .assert_ok()
        .clone();
    assert_eq!(page["changes"][0]["doc"], json!({"name": "A2"}));
    assert_eq!(page["cursor"].as_str().unwrap(), cursor2);
}

async fn kill_switch(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--sync-paused"])
        .start();
    let c = server.client();
    let (t, _) = c.new_user().await;
    let paused = c.push(&t, vec![]).await;
    paused.assert_error(503, "sync_paused");
    assert!(paused.headers.contains_key("retry-after"));
    c.pull(&t, None, None)
        .await
        .assert_error(503, "sync_paused");
    c.get("/sync/v1/events", Some(&t))
        .await
        .assert_error(503, "sync_paused");
    c.get("/auth/v1/user", Some(&t)).await.assert_ok();
    c.get("/healthz", None).await.assert_ok();
    drop(server);
    // The environment variable works too.
    let server = TestServer::builder()
        .db(&db)
        .env(&[
            ("TANDEM_JWT_SECRET", SECRET),
            ("TANDEM_SYNC_PAUSED", "true"),
        ])
        .start();
    server
        .client()
        .pull(&t, None, None)
        .await
        .assert_error(503, "sync_paused");
}

async fn data_survives_restart(db: TestDb) {
    // On SQLite, no secret given: the server generates one into a file beside the database and
    // finds it again. PostgreSQL always needs one.
    let env: &[(&str, &str)] = match db.backend {
        common::Backend::Sqlite => &[],
        common::Backend::Postgres => &[("TANDEM_JWT_SECRET", SECRET)],
    };
    let server = TestServer::builder().db(&db).env(env).start();
    let c = server.client();
    let (t, session) = c.new_user().await;
    c.push_ok(
        &t,
        vec![upsert("r1", "plans", "p", None, json!({"name": "kept"}))],
    )
    .await;
    let (_, cursor) = c.pull_all(&t, None).await;
    server.shutdown();
    let server = TestServer::builder().db(&db).env(env).start();
    let c = server.client();
    c.get("/auth/v1/user", Some(&t)).await.assert_ok();
    c.sign_in(session["user"]["email"].as_str().unwrap(), "password123")
        .await
        .assert_ok();
    c.refresh(session["refresh_token"].as_str().unwrap())
        .await
        .assert_ok();
    let (changes, _) = c.pull_all(&t, None).await;
    assert_eq!(changes[0]["doc"], json!({"name": "kept"}));
    assert_eq!(
        c.pull(&t, Some(&cursor), None).await.assert_ok()["changes"],
        json!([])
    );
    let r = c
        .push_ok(
            &t,
            vec![upsert("r1", "plans", "p", None, json!({"name": "kept"}))],
        )
        .await;
    assert_eq!(r[0]["status"], "duplicate");
}

async fn purged_tombstones_expire_cursors(db: TestDb) {
    let server = TestServer::builder().db(&db).purging().in_process().start();
    let c = server.client();
    let (t, _) = c.new_user().await;
    c.push_ok(
        &t,
        vec![
            upsert(&op(), "plans", "gone", None, json!({"name": "G"})),
            upsert(&op(), "plans", "kept", None, json!({"name": "K"})),
        ],
    )
    .await;
    let (_, before) = c.pull_all(&t, None).await;
    c.push_ok(&t, vec![delete(&op(), "plans", "gone", Some(1))])
        .await;
    let mut expired = false;
    for _ in 0..50 {
        server.advance(Duration::from_millis(200));
        let reply = c.pull(&t, Some(&before), None).await;
        if reply.status.as_u16() == 410 {
            reply.assert_error(410, "cursor_expired");
            expired = true;
            break;
        }
    }
    assert!(expired, "the cursor from before the purge never expired");
    let (changes, after) = c.pull_all(&t, None).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["entityId"], "kept");
    assert_eq!(
        c.pull(&t, Some(&after), None).await.assert_ok()["changes"],
        json!([])
    );
}

/// The expiry rule: a cursor answers 410 when a purge that happened after it was issued took a
/// tombstone beyond its position (one its holder had not pulled). A purge from before it was
/// issued never expires it, so a full pull from `null` after a purge always completes, even
/// though its first pages end below the purged sequence.
async fn full_pulls_complete_after_a_purge(db: TestDb) {
    let server = TestServer::builder().db(&db).purging().in_process().start();
    let c = server.client();
    let (t, session) = c.new_user().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_string();
    // p00..p09 at seqs 1..10; then five of them deleted (tombstones at 11..15), two more created.
    let creates = (0..10)
        .map(|i| {
            upsert(
                &op(),
                "plans",
                &format!("p{i:02}"),
                None,
                json!({"name": "P"}),
            )
        })
        .collect();
    c.push_ok(&t, creates).await;
    let before_mid = c.pull(&t, None, Some(3)).await.assert_ok()["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, before) = c.pull_all(&t, None).await;
    let v1_before = v1_cursor(&user_id, 10);
    let deletes = [1, 3, 5, 7, 9].map(|i| delete(&op(), "plans", &format!("p{i:02}"), Some(1)));
    c.push_ok(&t, deletes.to_vec()).await;
    c.push_ok(
        &t,
        (10..12)
            .map(|i| {
                upsert(
                    &op(),
                    "plans",
                    &format!("p{i:02}"),
                    None,
                    json!({"name": "P"}),
                )
            })
            .collect(),
    )
    .await;
    wait_until_expired(&server, &c, &t, &before).await;
    // Cursors from before the purge, with purged deletions after them: 410, old format included.
    c.pull(&t, Some(&before_mid), Some(3))
        .await
        .assert_error(410, "cursor_expired");
    c.pull(&t, Some(&v1_before), None)
        .await
        .assert_error(410, "cursor_expired");
    // An old-format cursor past everything purged keeps working, as before.
    assert_eq!(
        c.pull(&t, Some(&v1_cursor(&user_id, 17)), None)
            .await
            .assert_ok()["changes"],
        json!([])
    );

    // Pages of 2 from null: the first ones end below the purged sequence (15) and still go on.
    let live = ["p00", "p02", "p04", "p06", "p08", "p10", "p11"];
    let (pages, after) = c.pull_pages(&t, None, 2).await;
    assert_eq!(ids_of(&pages), live);
    let mid = pages[0]["cursor"].as_str().unwrap().to_string();
    // Later purges that take nothing keep both working.
    server.advance(Duration::from_millis(2500));
    assert_eq!(ids_of(&c.pull_pages(&t, Some(&mid), 2).await.0), live[2..]);
    assert_eq!(
        c.pull(&t, Some(&after), None).await.assert_ok()["changes"],
        json!([])
    );

    // A later purge of a tombstone the cursor's holder already pulled keeps the cursor working.
    let caught_up = pull_a_tombstone_before_its_purge(&c, &t, &after, "p11").await;
    wait_until_expired(&server, &c, &t, &after).await;
    assert_eq!(
        c.pull(&t, Some(&caught_up), None).await.assert_ok()["changes"],
        json!([])
    );
    // The same purge took a tombstone beyond the mid-pull cursor: that one now answers 410.
    c.pull(&t, Some(&mid), Some(2))
        .await
        .assert_error(410, "cursor_expired");
    let (pages, _) = c.pull_pages(&t, None, 2).await;
    assert_eq!(ids_of(&pages), live[..6]);
}

/// A cursor in the format servers issued before cursors recorded the purge state.
fn v1_cursor(user_id: &str, seq: i64) -> String {
    use hmac::Mac;
    let key = format!("tandem-cursor-v1:{SECRET}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{user_id}:{seq}").as_bytes());
    format!(
        "c1.{seq}.{}",
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    )
}

/// Deletes `id` (v1) and pulls from `cursor` at once, before the purger (every second) takes the
/// tombstone; returns the cursor after the pulled tombstone. Should the purger win the race,
/// `cursor` answers 410 and the attempt is repeated with a fresh record.
async fn pull_a_tombstone_before_its_purge(
    c: &common::Client,
    t: &str,
    cursor: &str,
    id: &str,
) -> String {
    let mut cursor = cursor.to_string();
    let mut id = id.to_string();
    for attempt in 0..10 {
        c.push_ok(t, vec![delete(&op(), "plans", &id, Some(1))])
            .await;
        let reply = c.pull(t, Some(&cursor), None).await;
        if reply.status.as_u16() == 200 {
            let page = reply.assert_ok();
            assert_eq!(page["changes"][0]["entityId"], json!(id));
            assert_eq!(page["changes"][0]["deleted"], json!(true));
            return page["cursor"].as_str().unwrap().to_string();
        }
        reply.assert_error(410, "cursor_expired");
        id = format!("retry{attempt}");
        c.push_ok(
            t,
            vec![upsert(&op(), "plans", &id, None, json!({"name": "R"}))],
        )
        .await;
        cursor = c.pull_all(t, None).await.1;
    }
    panic!("the purger took the tombstone before every pull");
}

/// Moves the clock until `cursor` answers 410 (a purge past it has run).
async fn wait_until_expired(server: &TestServer, c: &common::Client, t: &str, cursor: &str) {
    for _ in 0..50 {
        let reply = c.pull(t, Some(cursor), None).await;
        if reply.status.as_u16() == 410 {
            return reply.assert_error(410, "cursor_expired");
        }
        reply.assert_ok();
        server.advance(Duration::from_millis(200));
    }
    panic!("the cursor never expired");
}

/// The entity ids of every change of `pages`, in order.
fn ids_of(pages: &[Value]) -> Vec<String> {
    let changes = pages
        .iter()
        .flat_map(|p| p["changes"].as_array().unwrap().iter());
    changes
        .map(|c| c["entityId"].as_str().unwrap().to_string())
        .collect()
}

/// Once a tombstone is purged, a record created again under its id must not start at a version
/// its old incarnation had: a client still holding that version would otherwise write over the
/// new record as if it had seen it.
async fn a_record_created_again_after_a_purge_never_reuses_a_version(db: TestDb) {
    let server = TestServer::builder().db(&db).purging().in_process().start();
    let c = server.client();
    let (t, _) = c.new_user().await;
    c.push_ok(
        &t,
        vec![upsert(&op(), "plans", "p", None, json!({"name": "old"}))],
    )
    .await;
    c.push_ok(&t, vec![delete(&op(), "plans", "p", Some(1))])
        .await;
    let mut purged = false;
    for _ in 0..50 {
        server.advance(Duration::from_millis(200));
        let (changes, _) = c.pull_all(&t, None).await;
        if changes.is_empty() {
            purged = true;
            break;
        }
    }
    assert!(purged, "the tombstone was never purged");
    let created = c
        .push_ok(
            &t,
            vec![upsert(&op(), "plans", "p", None, json!({"name": "new"}))],
        )
        .await;
    let version = created[0]["version"].as_i64().unwrap();
    assert!(
        version > 2,
        "version {version} may be one the old incarnation had"
    );
    let stale = c
        .push_ok(
            &t,
            vec![upsert(
                &op(),
                "plans",
                "p",
                Some(1),
                json!({"name": "stale"}),
            )],
        )
        .await;
    assert_eq!(
        stale[0]["status"], "conflict",
        "a base from the old incarnation"
    );
    let fresh = c
        .push_ok(
            &t,
            vec![upsert(&op(), "plans", "q", None, json!({"name": "q"}))],
        )
        .await;
    assert_eq!(fresh[0]["status"], "applied");
}
