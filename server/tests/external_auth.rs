//! External auth mode (docs/protocol.md, "External auth mode"): tandem-server trusts the access
//! tokens of an external issuer (Supabase Auth / GoTrue), HS256 with the shared secret or
//! asymmetric from a JWK set, provisions its users on first use, and can turn its own `/auth/v1`
//! off. Also `scope` on the server's own `/auth/v1/logout`, and its password minimum (GoTrue's 6
//! by default, `--min-password-length`). Tokens are minted here, as the issuer would.

use tandem_testkit::server_suite as common;

use tandem_testkit::on_both_backends;

use common::{create, op, Client, TestDb, TestServer, SECRET};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

on_both_backends!(
    an_issuers_user_is_provisioned_on_first_use,
    every_sync_route_checks_the_same,
    the_audience_is_checked_and_configurable,
    tokens_that_name_no_user_are_refused,
    asymmetric_tokens_are_checked_against_the_jwk_set,
    a_jwk_set_url_is_fetched_again_for_a_new_key_at_most_every_30_s,
    a_user_deleted_by_the_operator_comes_back_empty,
    own_auth_keeps_the_account_gone_answer,
    logout_scopes,
    the_password_minimum_is_gotrues_and_configurable,
);

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

/// P-256 keys for the tests (ES256): PKCS#8 DER in base64, made with `openssl ecparam -genkey
/// -name prime256v1 -noout | openssl pkcs8 -topk8 -nocrypt -outform DER | base64 -w0`. The
/// public half of the first goes into the JWK set file; the second is a stranger's.
const ES256_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpM8LkuOQ94qZeuUiOJ5p8N52foPqU3w6H6I5C+tuRm2hRANCAAQtV1c8P7NRzdis9ls9eVU6In0GRq+XFICtuEisQBAsqYth+F/ljTghSaZbOiA21t/w/hsXdILtN8h6AI2Vadxo";
const OTHER_ES256_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrXoK6CTkdG3OGreN9XtxRp4e5cnqaMqUiM/mbG3rt9ehRANCAATsY57Sib5657gC8Ba4NtleyLmiLWpg1+OBzFglA+DrXWwz5/loUTzBuWLXPXV8LY4FsrkK9+tnN0rmLOKh+DgQ";
const KID: &str = "test-key-1";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// GoTrue's claims for `sub` (as in an access token of GoTrue v2.196).
fn gotrue_claims(sub: &str, email: &str) -> Value {
    let now = now_secs();
    json!({
        "sub": sub, "aud": "authenticated", "exp": now + 3600, "iat": now,
        "email": email, "phone": "", "role": "authenticated", "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email": email, "email_verified": true},
        "session_id": uuid::Uuid::new_v4().to_string(), "is_anonymous": false,
    })
}

fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn ec_key(base64_der: &str) -> EncodingKey {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64_der)
        .unwrap();
    EncodingKey::from_ec_der(&der)
}

fn es256_with(key: &str, claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &ec_key(key)).unwrap()
}

fn es256(claims: &Value, kid: Option<&str>) -> String {
    es256_with(ES256_KEY, claims, kid)
}

/// The JWK set (public key only) of [`ES256_KEY`], as a Supabase project publishes it.
fn jwks_json() -> String {
    jwks_of(&[(ES256_KEY, KID)])
}

/// The JWK set of `keys` (key, key id).
fn jwks_of(keys: &[(&str, &str)]) -> String {
    let keys = keys
        .iter()
        .map(|(key, kid)| {
            let mut jwk = Jwk::from_encoding_key(&ec_key(key), Algorithm::ES256).unwrap();
            jwk.common.key_id = Some((*kid).into());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

/// Serves `body` at `http://127.0.0.1:PORT/jwks.json`, counting the requests in `hits`.
async fn serve_jwks(
    body: std::sync::Arc<std::sync::Mutex<String>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (body, hits) = (body.clone(), hits.clone());
            async move {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let text = body.lock().unwrap().clone();
                ([("content-type", "application/json")], text)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/jwks.json")
}

fn external(db: &TestDb, extra: &[&str]) -> TestServer {
    let mut args = vec!["--external-auth", "--disable-own-auth"];
    args.extend_from_slice(extra);
    TestServer::builder()
        .db(db)
        .args(&args)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .start()
}

fn new_sub() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn push_one(c: &Client, token: &str, id: &str) -> Value {
    let results = c
        .push_ok(
            token,
            vec![create(&op(), "exercises", id, json!({"name": id}))],
        )
        .await;
    results[0].clone()
}

async fn an_issuers_user_is_provisioned_on_first_use(db: TestDb) {
    let server = external(&db, &[]);
    let c = server.client();
    let sub = new_sub();
    let token = hs256(&gotrue_claims(&sub, "Ann@Example.com"));
    // No row yet: the first push makes it, and its record syncs.
    assert_eq!(push_one(&c, &token, "squat").await["status"], "applied");
    let (changes, _) = c.pull_all(&token, None).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["entityId"], "squat");
    // The operator sees the user with the token's email (normalized) and no password.
    let user = c
        .get(&format!("/admin/v1/users/{sub}"), Some(ADMIN))
        .await
        .assert_ok()
        .clone();
    assert_eq!(user["user"]["email"], "ann@example.com", "{user}");
    // A later token with another email (changed at the issuer) updates it.
    let token = hs256(&gotrue_claims(&sub, "ann@new.example.com"));
    c.pull(&token, None, None).await.assert_ok();
    let user = c
        .get(&format!("/admin/v1/users/{sub}"), Some(ADMIN))
        .await
        .assert_ok()
        .clone();
    assert_eq!(user["user"]["email"], "ann@new.example.com", "{user}");
    // A token without an email (a phone or anonymous user) gets a placeholder address; one
    // whose email another user has, too.
    let phone = new_sub();
    let token = hs256(&gotrue_claims(&phone, ""));
    assert_eq!(push_one(&c, &token, "row").await["status"], "applied");
    let user = c
        .get(&format!("/admin/v1/users/{phone}"), Some(ADMIN))
        .await
        .assert_ok()
        .clone();
    assert_eq!(
        user["user"]["email"],
        format!("{phone}@external.invalid"),
        "{user}"
    );
    let twin = new_sub();
    let token = hs256(&gotrue_claims(&twin, "ann@new.example.com"));
    assert_eq!(push_one(&c, &token, "row").await["status"], "applied");
    // The server's own /auth/v1 is off.
    c.signup("someone@example.com", "password123")
        .await
        .assert_error(404, "not_found");
    c.get("/auth/v1/user", Some(&token))
        .await
        .assert_error(404, "not_found");
}

async fn every_sync_route_checks_the_same(db: TestDb) {
    let server = external(&db, &[]);
    let c = server.client();
    // A brand-new user's first request may be any sync route: the event stream, the account.
    let token = hs256(&gotrue_claims(&new_sub(), "events@example.com"));
    let _events = c.events(&token).await;
    let token = hs256(&gotrue_claims(&new_sub(), "account@example.com"));
    let account = c.account(&token).await;
    assert!(account.is_object(), "{account}");
    // A forged token is refused alike by push, pull and events.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &gotrue_claims(&new_sub(), "x@example.com"),
        &EncodingKey::from_secret(b"not-the-issuers-secret-0123456789"),
    )
    .unwrap();
    c.push(&forged, vec![])
        .await
        .assert_error(401, "unauthorized");
    c.pull(&forged, None, None)
        .await
        .assert_error(401, "unauthorized");
    c.get("/sync/v1/events", Some(&forged))
        .await
        .assert_error(401, "unauthorized");
    // An expired one too, as token_expired.
    let mut claims = gotrue_claims(&new_sub(), "late@example.com");
    claims["exp"] = json!(now_secs() - 60);
    let expired = hs256(&claims);
    c.push(&expired, vec![])
        .await
        .assert_error(401, "token_expired");
    c.get("/sync/v1/events", Some(&expired))
        .await
        .assert_error(401, "token_expired");
}

async fn the_audience_is_checked_and_configurable(db: TestDb) {
    let server = external(&db, &[]);
    let c = server.client();
    let mut claims = gotrue_claims(&new_sub(), "aud@example.com");
    claims["aud"] = json!("another-app");
    let other = hs256(&claims);
    c.pull(&other, None, None)
        .await
        .assert_error(401, "unauthorized");
    // An array audience naming `authenticated` is accepted.
    claims["aud"] = json!(["another-app", "authenticated"]);
    c.pull(&hs256(&claims), None, None).await.assert_ok();
    drop(server);
    let server = external(&db, &["--jwt-audience", "another-app,third"]);
    let c = server.client();
    c.pull(&other, None, None).await.assert_ok();
    let default = hs256(&gotrue_claims(&new_sub(), "aud2@example.com"));
    c.pull(&default, None, None)
        .await
        .assert_error(401, "unauthorized");
}

async fn tokens_that_name_no_user_are_refused(db: TestDb) {
    let server = external(&db, &[]);
    let c = server.client();
    let now = now_secs();
    // Supabase's API keys: no sub (anon), or a role that is no user's.
    let anon = hs256(
        &json!({"iss": "supabase", "role": "anon", "aud": "authenticated", "iat": now, "exp": now + 3600}),
    );
    c.pull(&anon, None, None)
        .await
        .assert_error(401, "unauthorized");
    let mut claims = gotrue_claims(&new_sub(), "svc@example.com");
    claims["role"] = json!("service_role");
    c.pull(&hs256(&claims), None, None)
        .await
        .assert_error(401, "unauthorized");
    // A sub that is no valid id.
    let mut claims = gotrue_claims("a/b", "slash@example.com");
    claims["sub"] = json!("../etc");
    c.pull(&hs256(&claims), None, None)
        .await
        .assert_error(401, "unauthorized");
    // Without a JWK set, an asymmetric token is refused; HS512 with the secret too.
    let claims = gotrue_claims(&new_sub(), "es@example.com");
    c.pull(&es256(&claims, Some(KID)), None, None)
        .await
        .assert_error(401, "unauthorized");
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    c.pull(&hs512, None, None)
        .await
        .assert_error(401, "unauthorized");
}

async fn asymmetric_tokens_are_checked_against_the_jwk_set(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks_json()).unwrap();
    let server = external(&db, &["--jwks-file", path.to_str().unwrap()]);
    let c = server.client();
    let sub = new_sub();
    let claims = gotrue_claims(&sub, "es256@example.com");
    let token = es256(&claims, Some(KID));
    assert_eq!(push_one(&c, &token, "bench").await["status"], "applied");
    // A token naming no key id is checked against every key of the set.
    let (changes, _) = c.pull_all(&es256(&claims, None), None).await;
    assert_eq!(changes.len(), 1);
    // HS256 with the secret still works, for the same user.
    let (changes, _) = c.pull_all(&hs256(&claims), None).await;
    assert_eq!(changes.len(), 1);
    // An unknown key id, a token signed by another key, and algorithm confusion (HS256 signed
    // with the public key's bytes) are refused.
    c.pull(&es256(&claims, Some("rotated-away")), None, None)
        .await
        .assert_error(401, "unauthorized");
    c.pull(&es256_with(OTHER_ES256_KEY, &claims, Some(KID)), None, None)
        .await
        .assert_error(401, "unauthorized");
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(jwks_json().as_bytes()),
    )
    .unwrap();
    c.pull(&confused, None, None)
        .await
        .assert_error(401, "unauthorized");
    // A JWK set file that is not one stops the server from starting.
    std::fs::write(&path, "{\"not\": \"a set\"}").unwrap();
    let out = std::process::Command::new(tandem_testkit::server::server_binary())
        .args(["--external-auth", "--jwks-file", path.to_str().unwrap()])
        .args([
            "--db",
            &format!("sqlite://{}", dir.path().join("x.db").display()),
        ])
        .args(["--addr", "127.0.0.1:0"])
        .env("TANDEM_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--jwks-file"), "{stderr}");
}

async fn a_user_deleted_by_the_operator_comes_back_empty(db: TestDb) {
    let server = external(&db, &[]);
    let c = server.client();
    let sub = new_sub();
    let token = hs256(&gotrue_claims(&sub, "gone@example.com"));
    push_one(&c, &token, "a").await;
    let reply = c
        .send(
            c.http
                .delete(c.url(&format!("/admin/v1/users/{sub}")))
                .bearer_auth(ADMIN),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    // The issuer still vouches for the user (its token is valid): the next request provisions
    // an empty account. The documented order is: delete at the issuer, then here.
    let (changes, _) = c.pull_all(&token, None).await;
    assert!(changes.is_empty(), "{changes:?}");
}

async fn own_auth_keeps_the_account_gone_answer(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .start();
    let c = server.client();
    let (token, session) = c.new_user().await;
    let id = session["user"]["id"].as_str().unwrap().to_string();
    let reply = c
        .send(
            c.http
                .delete(c.url(&format!("/admin/v1/users/{id}")))
                .bearer_auth(ADMIN),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    for reply in [
        c.push(&token, vec![]).await,
        c.pull(&token, None, None).await,
        c.get("/sync/v1/events", Some(&token)).await,
    ] {
        reply.assert_error(401, "unauthorized");
        assert_eq!(
            reply.body["error_description"], "the account no longer exists",
            "{}",
            reply.body
        );
    }
    // Without external auth, a token of the secret for an unknown user is not provisioned.
    let stranger = hs256(&gotrue_claims(&new_sub(), "stranger@example.com"));
    c.pull(&stranger, None, None)
        .await
        .assert_error(401, "unauthorized");
}

async fn logout_scopes(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let email = tandem_testkit::fixtures::email();
    c.signup(&email, "password123").await.assert_ok();
    let sign_in = || async {
        let session = c.sign_in(&email, "password123").await.assert_ok().clone();
        (
            session["access_token"].as_str().unwrap().to_string(),
            session["refresh_token"].as_str().unwrap().to_string(),
        )
    };
    let logout = |token: String, scope: &'static str| {
        let c = c.clone();
        async move {
            c.send(
                c.http
                    .post(c.url(&format!("/auth/v1/logout{scope}")))
                    .bearer_auth(token),
            )
            .await
        }
    };
    // local (also without a scope): this sign-in only.
    let (a_token, a_refresh) = sign_in().await;
    let (b_token, b_refresh) = sign_in().await;
    assert_eq!(
        logout(a_token.clone(), "?scope=local")
            .await
            .status
            .as_u16(),
        204
    );
    c.refresh(&a_refresh)
        .await
        .assert_error(400, "invalid_grant");
    let b = c.refresh(&b_refresh).await.assert_ok().clone();
    let b_refresh = b["refresh_token"].as_str().unwrap().to_string();
    let (c_token, c_refresh) = sign_in().await;
    assert_eq!(logout(c_token, "").await.status.as_u16(), 204);
    c.refresh(&c_refresh)
        .await
        .assert_error(400, "invalid_grant");
    // others: every other sign-in; this one stays.
    let (d_token, d_refresh) = sign_in().await;
    assert_eq!(
        logout(d_token.clone(), "?scope=others")
            .await
            .status
            .as_u16(),
        204
    );
    c.refresh(&b_refresh)
        .await
        .assert_error(400, "invalid_grant");
    let d = c.refresh(&d_refresh).await.assert_ok().clone();
    let d_refresh = d["refresh_token"].as_str().unwrap().to_string();
    // An unknown scope is refused.
    logout(d_token.clone(), "?scope=everything")
        .await
        .assert_error(400, "validation_failed");
    // A signed-out session's access token is refused by `/auth/v1` (GoTrue's 403
    // `session_not_found`), on `GET /user` and `POST /logout`; `/sync/v1` takes it until it
    // expires. The session that stays is accepted.
    for token in [a_token.as_str(), b["access_token"].as_str().unwrap()] {
        c.get("/auth/v1/user", Some(token))
            .await
            .assert_error(403, "unauthorized");
        logout(token.to_string(), "?scope=local")
            .await
            .assert_error(403, "unauthorized");
        c.pull(token, None, None).await.assert_ok();
    }
    c.get("/auth/v1/user", Some(&d_token)).await.assert_ok();
    // global: every sign-in, and every access token issued so far.
    let (e_token, e_refresh) = sign_in().await;
    assert_eq!(
        logout(e_token.clone(), "?scope=global")
            .await
            .status
            .as_u16(),
        204
    );
    c.refresh(&d_refresh)
        .await
        .assert_error(400, "invalid_grant");
    c.refresh(&e_refresh)
        .await
        .assert_error(400, "invalid_grant");
    c.pull(&d_token, None, None)
        .await
        .assert_error(401, "unauthorized");
    c.pull(&b_token, None, None)
        .await
        .assert_error(401, "unauthorized");
    for token in [&d_token, &e_token] {
        c.get("/auth/v1/user", Some(token))
            .await
            .assert_error(403, "unauthorized");
    }
    // A new sign-in works.
    let (f_token, _) = sign_in().await;
    c.pull(&f_token, None, None).await.assert_ok();
    c.get("/auth/v1/user", Some(&f_token)).await.assert_ok();
}

async fn the_password_minimum_is_gotrues_and_configurable(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let refused = c.signup(&tandem_testkit::fixtures::email(), "12345").await;
    refused.assert_error(422, "weak_password");
    assert_eq!(
        refused.body["error_description"],
        "the password must have at least 6 characters"
    );
    c.signup(&tandem_testkit::fixtures::email(), "123456")
        .await
        .assert_ok();
    drop(server);
    let server = TestServer::builder()
        .db(&db)
        .args(&["--min-password-length", "12"])
        .start();
    let c = server.client();
    let refused = c
        .signup(&tandem_testkit::fixtures::email(), "eleven-char")
        .await;
    refused.assert_error(422, "weak_password");
    assert_eq!(
        refused.body["error_description"],
        "the password must have at least 12 characters"
    );
    c.signup(&tandem_testkit::fixtures::email(), "twelve-chars")
        .await
        .assert_ok();
}

async fn a_jwk_set_url_is_fetched_again_for_a_new_key_at_most_every_30_s(db: TestDb) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let body = Arc::new(Mutex::new(jwks_of(&[(ES256_KEY, KID)])));
    let hits = Arc::new(AtomicUsize::new(0));
    let url = serve_jwks(body.clone(), hits.clone()).await;
    let server = external(&db, &["--jwks-url", &url]);
    let c = server.client();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "fetched at start");
    let claims = gotrue_claims(&new_sub(), "rotation@example.com");
    c.pull(&es256(&claims, Some(KID)), None, None)
        .await
        .assert_ok();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a known key needs no fetch");
    // The issuer adds a key and signs with it: the first token naming it fetches the set again.
    *body.lock().unwrap() = jwks_of(&[(ES256_KEY, KID), (OTHER_ES256_KEY, "test-key-2")]);
    let rotated = es256_with(OTHER_ES256_KEY, &claims, Some("test-key-2"));
    c.pull(&rotated, None, None).await.assert_ok();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Unknown key ids do not make it fetch again within 30 s.
    for kid in ["unknown-1", "unknown-2", "unknown-3"] {
        c.pull(&es256(&claims, Some(kid)), None, None)
            .await
            .assert_error(401, "unauthorized");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // A URL that is plain http:// off loopback is refused at start.
    let out = std::process::Command::new(tandem_testkit::server::server_binary())
        .args(["--jwks-url", "http://issuer.example.com/jwks.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https://"));
}
