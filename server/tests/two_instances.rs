//! Two server instances sharing one PostgreSQL database: tokens, pokes and idempotency work
//! across them. Runs only when `TANDEM_TEST_POSTGRES_URL` is set.

use tandem_testkit::server_suite as common;

use common::{op, upsert, Backend, TestDb, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_pokes_idempotency_and_sessions() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        eprintln!("skipped: TANDEM_TEST_POSTGRES_URL is not set");
        return;
    };
    // Instances of one deployment share the secret (PostgreSQL requires one).
    let a = TestServer::builder().db(&db).start();
    let b = TestServer::builder().db(&db).start();
    let (ca, cb) = (a.client(), b.client());
    let (token, session) = ca.new_user().await;
    cb.get("/auth/v1/user", Some(&token)).await.assert_ok();

    // A push to A pokes an SSE client of B.
    let mut events = cb.events(&token).await;
    let applied = ca
        .push_ok(
            &token,
            vec![upsert("op-1", "plans", "p1", None, json!({"name": "A"}))],
        )
        .await;
    assert_eq!(
        applied[0],
        json!({"opId": "op-1", "status": "applied", "version": 1})
    );
    let poke_cursor = events.next_poke().await;
    // Cursors work on either instance.
    let (changes, cursor) = cb.pull_all(&token, None).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(poke_cursor, cursor);

    // A replay sent to the other instance is a duplicate.
    let replay = cb
        .push_ok(
            &token,
            vec![upsert("op-1", "plans", "p1", None, json!({"name": "A"}))],
        )
        .await;
    assert_eq!(
        replay[0],
        json!({"opId": "op-1", "status": "duplicate", "version": 1})
    );
    assert_eq!(
        ca.pull(&token, Some(&cursor), None).await.assert_ok()["changes"],
        json!([])
    );

    // Concurrent pushes through both instances keep versions consistent.
    let mut version = 1;
    for i in 0..10 {
        let client = if i % 2 == 0 { &ca } else { &cb };
        let r = client
            .push_ok(
                &token,
                vec![upsert(
                    &op(),
                    "plans",
                    "p1",
                    Some(version),
                    json!({"name": format!("v{i}")}),
                )],
            )
            .await;
        version = r[0]["version"].as_i64().unwrap();
    }
    assert_eq!(version, 11);

    // A refresh token from A is single-use across instances: presented again on A it is a
    // retry after a lost answer, which replaces the token B handed out.
    let refresh = session["refresh_token"].as_str().unwrap();
    let from_b = cb.refresh(refresh).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let from_a = ca.refresh(refresh).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    ca.refresh(&from_b).await.assert_error(400, "invalid_grant");
    cb.refresh(&from_a).await.assert_ok();
    ca.refresh(refresh).await.assert_error(400, "invalid_grant");
}

/// A push to a space on instance A pokes the members' event streams on B with the space's
/// stream, and a role change on A pokes the member on B with `{"account": true}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn space_pokes_cross_instances() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        eprintln!("skipped: TANDEM_TEST_POSTGRES_URL is not set");
        return;
    };
    let a = TestServer::builder().db(&db).start();
    let b = TestServer::builder().db(&db).start();
    let (ca, cb) = (a.client(), b.client());
    let f = tandem_testkit::fixtures::three_users_two_spaces(&ca).await;
    let mut b_events = cb.events(&f.b.token).await;
    let mut c_events = cb.events(&f.c.token).await;
    ca.push_ok(
        &f.a.token,
        vec![common::in_space(
            &f.s1,
            upsert("op-s1", "team_projects", "p1", None, json!({"name": "P"})),
        )],
    )
    .await;
    let stream = format!("space:{}", f.s1);
    assert_eq!(b_events.next_poke_data().await["stream"], stream.as_str());
    assert_eq!(c_events.next_poke_data().await["stream"], stream.as_str());
    ca.set_role(&f.a.token, &f.s1, &f.c.id, "editor")
        .await
        .assert_ok();
    let poke = c_events.next_poke_data().await;
    assert_eq!(poke["account"], true, "{poke}");
    // B's role did not change: its stream is not poked about accounts.
    assert!(b_events
        .poke_within(std::time::Duration::from_millis(500))
        .await
        .is_none());
}

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

/// Polls `check` every 50 ms until it holds; fails after one second.
async fn within_a_second<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{what}: not within a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The kill switch and revocation at runtime across instances: a pause written through A is
/// answered by B within a second (B hears the `control` notice), as are a resume, a user's
/// pause and a revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_and_revocations_reach_the_other_instance_within_a_second() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        eprintln!("skipped: TANDEM_TEST_POSTGRES_URL is not set");
        return;
    };
    let env = [
        ("TANDEM_JWT_SECRET", common::SECRET),
        ("TANDEM_ADMIN_TOKEN", ADMIN),
    ];
    let a = TestServer::builder().db(&db).env(&env).start();
    let b = TestServer::builder().db(&db).env(&env).start();
    let (ca, cb) = (a.client(), b.client());
    let user = ca.user().await;
    let other = ca.user().await;
    // B listens: a push through A pokes B's event stream.
    let mut events = cb.events(&other.token).await;
    ca.push_ok(
        &other.token,
        vec![upsert(&op(), "plans", "p1", None, json!({"name": "A"}))],
    )
    .await;
    events.next_poke().await;
    drop(events);
    let status = |c: &common::Client, token: &str| {
        let (c, token) = (c.clone(), token.to_string());
        async move { c.pull(&token, None, None).await.status.as_u16() }
    };

    // Global pause and resume.
    ca.post(
        "/admin/v1/pause",
        Some(ADMIN),
        &json!({"retryAfterSecs": 5}),
    )
    .await
    .assert_ok();
    within_a_second("the pause on B", || async {
        status(&cb, &user.token).await == 503
    })
    .await;
    let paused = cb.pull(&user.token, None, None).await;
    paused.assert_error(503, "sync_paused");
    assert_eq!(paused.headers["retry-after"], "5");
    ca.post("/admin/v1/resume", Some(ADMIN), &json!({}))
        .await
        .assert_ok();
    within_a_second("the resume on B", || async {
        status(&cb, &user.token).await == 200
    })
    .await;

    // One user's pause and resume.
    ca.post("/admin/v1/pause", Some(ADMIN), &json!({"user": user.email}))
        .await
        .assert_ok();
    within_a_second("the user's pause on B", || async {
        status(&cb, &user.token).await == 503
    })
    .await;
    cb.pull(&other.token, None, None).await.assert_ok();
    ca.post("/admin/v1/resume", Some(ADMIN), &json!({"user": user.id}))
        .await
        .assert_ok();
    within_a_second("the user's resume on B", || async {
        status(&cb, &user.token).await == 200
    })
    .await;

    // Revocation: B refuses the old token (no query per request: B's cache heard of it).
    ca.post(
        &format!("/admin/v1/users/{}/revoke", user.id),
        Some(ADMIN),
        &json!({}),
    )
    .await
    .assert_ok();
    within_a_second("the revocation on B", || async {
        status(&cb, &user.token).await == 401
    })
    .await;
    cb.pull(&other.token, None, None).await.assert_ok();
    // A fresh sign-in on B works (B knows the revocation, so the new token's `iat` is after it).
    let fresh = cb.sign_in(&user.email, "password123").await.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    cb.pull(&fresh, None, None).await.assert_ok();
    ca.pull(&fresh, None, None).await.assert_ok();
}
