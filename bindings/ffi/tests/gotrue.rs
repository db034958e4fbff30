//! End to end against a real Supabase Auth (GoTrue v2.196, built from vendor/gotrue by
//! scripts/gotrue.sh): devices sign up and in at GoTrue (`auth_url`) and sync through
//! tandem-server in external auth mode with GoTrue's secret (`sync_url`), tokens refresh through
//! GoTrue, and one device's sign-out leaves the others signed in.
//!
//! scripts/test.sh starts GoTrue (short-lived tokens: `GOTRUE_JWT_EXP`) and sets
//! `TANDEM_TEST_GOTRUE_URL`, `TANDEM_TEST_GOTRUE_SECRET_FILE` and `TANDEM_TEST_GOTRUE_JWT_EXP`;
//! without them the test is skipped. By hand:
//!
//! ```sh
//! export TANDEM_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
//! export TANDEM_TEST_GOTRUE_JWT_EXP=5
//! export TANDEM_TEST_GOTRUE_URL="$(GOTRUE_JWT_EXP=5 scripts/gotrue.sh start "$TANDEM_TEST_POSTGRES_URL")"
//! export TANDEM_TEST_GOTRUE_SECRET_FILE="$(scripts/gotrue.sh secret-file "$TANDEM_TEST_GOTRUE_URL")"
//! cargo test -p tandem --test gotrue
//! ```

use std::time::Duration;

use serde_json::{json, Value};
use tandem::{AuthState, SyncFailure, TandemError};
use tandem_testkit::server::{email, TestServer};

mod common;

use common::{block, device_with, Device};

/// GoTrue's URL, its JWT secret and its tokens' lifetime (seconds), when scripts/test.sh
/// started one.
fn gotrue() -> Option<(String, String, u64)> {
    let url = std::env::var("TANDEM_TEST_GOTRUE_URL").ok()?;
    let secret_file = std::env::var("TANDEM_TEST_GOTRUE_SECRET_FILE").ok()?;
    let secret = std::fs::read_to_string(secret_file)
        .expect("reading GoTrue's secret")
        .trim()
        .to_string();
    let exp = std::env::var("TANDEM_TEST_GOTRUE_JWT_EXP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600);
    Some((url, secret, exp))
}

/// A device whose auth is GoTrue and whose sync is `server`: the app's two lines of
/// configuration, no `server_url`.
fn device(gotrue_url: &str, server: &TestServer) -> Device {
    let sync_url = format!("{}/sync/v1", server.url());
    let auth_url = gotrue_url.to_string();
    device_with(server.url(), move |config| {
        config.server_url = None;
        config.auth_url = Some(auth_url);
        config.sync_url = Some(sync_url);
    })
}

/// The access token the device keeps in its secure store.
fn access_token(d: &Device) -> String {
    let session: Value = serde_json::from_str(&d.secrets.values()[0]).unwrap();
    find_string(&session, "access_token").expect("the stored session holds the access token")
}

fn find_string(value: &Value, key: &str) -> Option<String> {
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| map.values().find_map(|v| find_string(v, key))),
        _ => None,
    }
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn signed_in(d: &Device) -> bool {
    matches!(d.t.auth_state().unwrap(), AuthState::SignedIn { .. })
}

#[test]
fn devices_signed_in_through_gotrue_sync_through_tandem_server() {
    let Some((gotrue_url, secret, exp)) = gotrue() else {
        eprintln!("skipped: TANDEM_TEST_GOTRUE_URL is not set (scripts/test.sh starts GoTrue)");
        return;
    };
    assert!(
        exp <= 10,
        "the test waits for tokens to expire: run GoTrue with GOTRUE_JWT_EXP <= 10"
    );
    let server = TestServer::builder()
        .args(&["--external-auth", "--disable-own-auth"])
        .env(&[("TANDEM_JWT_SECRET", secret.as_str())])
        .start();
    let account = email();
    let phone = device(&gotrue_url, &server);
    let tablet = device(&gotrue_url, &server);
    phone.sign_up(&account);
    tablet.sign_in(&account);
    // The session is GoTrue's (its claims), for the same user on both devices.
    let token = access_token(&phone);
    let issued = claims(&token);
    assert_eq!(issued["aud"], "authenticated", "{issued}");
    assert!(issued["session_id"].is_string(), "{issued}");
    let user = phone.t.current_user().unwrap().unwrap();
    assert_eq!(issued["sub"], user.id.as_str());
    assert_eq!(tablet.t.current_user().unwrap().unwrap().id, user.id);

    // Records sync both ways through tandem-server.
    phone.put("plans", "legs", json!({"name": "Legs"}));
    phone.sync();
    tablet.sync();
    assert_eq!(tablet.doc("plans", "legs"), Some(json!({"name": "Legs"})));
    tablet.put("exercises", "squat", json!({"name": "Squat"}));
    tablet.sync();
    phone.sync();
    assert_eq!(
        phone.doc("exercises", "squat"),
        Some(json!({"name": "Squat"}))
    );

    // Past the tokens' lifetime, a sync refreshes through GoTrue (tandem-server has no
    // /auth/v1 here) and goes on.
    std::thread::sleep(Duration::from_secs(exp + 1));
    phone.put("plans", "arms", json!({"name": "Arms"}));
    phone.sync();
    let refreshed = access_token(&phone);
    assert_ne!(refreshed, token, "the token was refreshed");
    assert_eq!(claims(&refreshed)["session_id"], issued["session_id"]);
    tablet.sync();
    assert_eq!(tablet.doc("plans", "arms"), Some(json!({"name": "Arms"})));

    // The tablet signs out: this device only (scope=local). The phone stays signed in and
    // syncing, across another refresh.
    block(tablet.t.sign_out(false)).unwrap();
    assert!(!signed_in(&tablet));
    std::thread::sleep(Duration::from_secs(exp + 1));
    phone.put("plans", "core", json!({"name": "Core"}));
    phone.sync();
    assert!(signed_in(&phone));
    assert_eq!(phone.pending(), 0);

    // Signing out everywhere (scope=global) from a third device ends the phone's session at
    // GoTrue: once its access token expires, its refresh is refused.
    let laptop = device(&gotrue_url, &server);
    laptop.sign_in(&account);
    laptop.sync();
    assert_eq!(laptop.doc("plans", "core"), Some(json!({"name": "Core"})));
    block(laptop.t.sign_out_everywhere(false)).unwrap();
    assert!(!signed_in(&laptop));
    std::thread::sleep(Duration::from_secs(exp + 1));
    phone.put("plans", "late", json!({"name": "Late"}));
    match phone.try_sync() {
        Err(TandemError::Sync { kind, .. }) => assert_eq!(kind, SyncFailure::SessionExpired),
        other => panic!("expected the session to have expired, got {other:?}"),
    }
    assert!(matches!(
        phone.t.auth_state().unwrap(),
        AuthState::SessionExpired { .. }
    ));
    assert_eq!(
        phone.pending(),
        1,
        "pending changes stay for the next sign-in"
    );
    phone.sign_in(&account);
    phone.sync();
    assert_eq!(phone.pending(), 0);
}

#[test]
fn auth_and_sync_urls_without_a_server_url_make_a_server_and_half_of_them_is_refused() {
    // Against tandem-server's own auth: what matters here is the configuration.
    let server = TestServer::start();
    let account = email();
    let auth_url = format!("{}/auth/v1", server.url());
    let sync_url = format!("{}/sync/v1", server.url());
    let (a, b) = (auth_url.clone(), sync_url.clone());
    let d = device_with(server.url(), move |config| {
        config.server_url = None;
        config.auth_url = Some(a);
        config.sync_url = Some(b);
    });
    d.sign_up(&account);
    d.put("plans", "p", json!({"name": "P"}));
    d.sync();
    assert_eq!(d.pending(), 0);

    for (auth, sync) in [(Some(auth_url), None), (None, Some(sync_url))] {
        let dir = tempfile::TempDir::new().unwrap();
        let secrets = std::sync::Arc::new(common::Secrets::default());
        let config = common::config(&dir, server.url(), &secrets, |config| {
            config.server_url = None;
            config.auth_url = auth;
            config.sync_url = sync;
        });
        match tandem::Tandem::open(config) {
            Err(TandemError::InvalidArgument { detail }) => {
                assert!(detail.contains("auth_url and sync_url"), "{detail}")
            }
            Err(other) => panic!("expected InvalidArgument, got {other:?}"),
            Ok(_) => panic!("half a server configuration was accepted"),
        }
    }
}
