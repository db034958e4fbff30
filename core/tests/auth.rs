//! The auth session against the real `tandem-server` binary (no mock of the server).
//!
//! Uses the public `tandem_core::auth` and `tandem_core::http` API. Each test starts its own
//! server on a fresh SQLite database.
//!
//! Run: `cargo test -p tandem-core --test auth`.

use std::sync::Arc;
use std::time::Duration;

use tandem_core::auth::{
    secret_namespace, AccessToken, AuthError, AuthSession, AuthState, KeyringStore,
    MemorySecretStore, SecretStore,
};

use serde_json::Value;
use tandem_core::http::{HttpClient, HttpConfig, HttpError};
use tandem_core::runtime;
use tandem_protocol::clock::{Clock, SystemClock};
use tandem_testkit::server::{email, TestServer};

const PASSWORD: &str = "correct horse battery";

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime::runtime().block_on(future)
}

fn client(server: &TestServer) -> HttpClient {
    HttpClient::new(&HttpConfig::new(server.url())).expect("a loopback http:// URL is allowed")
}

/// A session on `store` under a fresh namespace (a new temporary data directory).
struct Fixture {
    session: AuthSession,
    store: Arc<MemorySecretStore>,
    namespace: String,
    _dir: tempfile::TempDir,
}

/// A fresh data directory's installation id (what `client-id` holds).
fn installation_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn fixture(server: &TestServer) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let namespace = secret_namespace(&installation_id());
    let store = Arc::new(MemorySecretStore::new());
    let session = open_session(server, store.clone(), &namespace);
    Fixture {
        session,
        store,
        namespace,
        _dir: dir,
    }
}

impl Fixture {
    fn stored(&self) -> Option<Value> {
        let text = self
            .store
            .get(&format!("{}/session", self.namespace))
            .unwrap()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    fn stored_refresh_token(&self) -> String {
        self.stored().unwrap()["tokens"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn reopen(&self, server: &TestServer) -> AuthSession {
        open_session(server, self.store.clone(), &self.namespace)
    }
}

/// A session judging token expiry by the server's clock: an in-process server's manual clock,
/// which the test moves instead of sleeping, or the system's.
fn open_session(server: &TestServer, store: Arc<dyn SecretStore>, namespace: &str) -> AuthSession {
    let clock: Arc<dyn Clock> = match server.clock() {
        Some(clock) => Arc::new(clock.clone()),
        None => Arc::new(SystemClock),
    };
    AuthSession::open_with_clock(client(server), store, namespace, clock).unwrap()
}

/// `GET /auth/v1/user` with `token`: the user's id, or the HTTP error.
fn whoami(server: &TestServer, token: &AccessToken) -> Result<String, HttpError> {
    let http = client(server);
    let user: Value = block_on(http.get_json(&http.auth_url("/user"), Some(token.as_str())))?;
    Ok(user["id"].as_str().unwrap().to_string())
}

/// A raw refresh-token exchange, bypassing the session.
fn raw_refresh(server: &TestServer, refresh_token: &str) -> Result<Value, HttpError> {
    let http = client(server);
    let url = http.auth_url("/token?grant_type=refresh_token");
    block_on(http.post_json(
        &url,
        None,
        &serde_json::json!({ "refresh_token": refresh_token }),
    ))
}

/// Records the auth state's changes from now on: each call returns the states seen so far. Every
/// step of these tests makes at most one change, so polling the watched value after each step
/// sees every state.
fn record_states(session: &AuthSession) -> impl FnMut() -> Vec<AuthState> {
    let mut states = session.watch_state();
    let mut seen = Vec::new();
    move || {
        if states.has_changed().unwrap_or(false) {
            seen.push(states.borrow_and_update().clone());
        }
        seen.clone()
    }
}

#[test]
fn sign_up_signs_in_and_reports_the_user() {
    let server = TestServer::start();
    let f = fixture(&server);
    assert_eq!(f.session.state(), AuthState::SignedOut);
    assert!(matches!(
        block_on(f.session.access_token()),
        Err(AuthError::NotSignedIn)
    ));
    let mut seen = record_states(&f.session);

    let address = email();
    let user = block_on(f.session.sign_up(&address, PASSWORD)).unwrap();
    assert_eq!(user.email, address);
    assert_eq!(f.session.state(), AuthState::SignedIn(user.clone()));
    assert_eq!(f.session.current_user(), Some(user.clone()));
    assert_eq!(seen(), vec![AuthState::SignedIn(user.clone())]);

    let token = block_on(f.session.access_token()).unwrap();
    assert_eq!(whoami(&server, &token).unwrap(), user.id);
    assert!(
        !format!("{token:?} {:?}", f.session).contains(token.as_str()),
        "Debug must not show the token"
    );
}

#[test]
fn wrong_password_duplicate_account_weak_password_and_bad_email_are_typed() {
    let server = TestServer::start();
    let f = fixture(&server);
    let address = email();
    block_on(f.session.sign_up(&address, PASSWORD)).unwrap();

    let other = fixture(&server);
    assert_eq!(
        block_on(other.session.sign_in(&address, "wrong password")),
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        block_on(other.session.sign_in(&email(), PASSWORD)),
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        block_on(other.session.sign_up(&address, PASSWORD)),
        Err(AuthError::UserExists)
    );
    assert!(matches!(
        block_on(other.session.sign_up(&email(), "short")),
        Err(AuthError::WeakPassword(_))
    ));
    assert!(matches!(
        block_on(other.session.sign_up("not-an-email", PASSWORD)),
        Err(AuthError::InvalidEmail(_))
    ));
    assert_eq!(other.session.state(), AuthState::SignedOut);
    assert!(other.stored().is_none(), "failed attempts store nothing");

    let user = block_on(other.session.sign_in(&address, PASSWORD)).unwrap();
    assert_eq!(other.session.state(), AuthState::SignedIn(user));
}

#[test]
fn repeated_failures_are_rate_limited_with_retry_after() {
    let server = TestServer::start();
    let f = fixture(&server);
    let address = email();
    block_on(f.session.sign_up(&address, PASSWORD)).unwrap();
    for attempt in 1..=5 {
        let result = block_on(f.session.sign_in(&address, "wrong password"));
        assert_eq!(
            result,
            Err(AuthError::InvalidCredentials),
            "attempt {attempt}"
        );
    }
    match block_on(f.session.sign_in(&address, PASSWORD)) {
        Err(AuthError::RateLimited {
            retry_after_secs: Some(secs),
        }) => assert!((1..=60).contains(&secs), "{secs}"),
        other => panic!("expected rate limiting with Retry-After, got {other:?}"),
    }
    // The session signed in by sign-up is untouched by the failed attempts.
    assert!(matches!(f.session.state(), AuthState::SignedIn(_)));
}

#[test]
fn the_session_survives_a_restart_and_stays_in_its_namespace() {
    let server = TestServer::start();
    let f = fixture(&server);
    let user = block_on(f.session.sign_up(&email(), PASSWORD)).unwrap();
    let token = block_on(f.session.access_token()).unwrap();

    let restored = f.reopen(&server);
    assert_eq!(restored.state(), AuthState::SignedIn(user.clone()));
    assert_eq!(block_on(restored.access_token()).unwrap(), token);
    assert_eq!(whoami(&server, &token).unwrap(), user.id);

    // Another data directory on the same store sees nothing.
    let other = AuthSession::open(
        client(&server),
        f.store.clone(),
        &secret_namespace(&installation_id()),
    )
    .unwrap();
    assert_eq!(other.state(), AuthState::SignedOut);
}

#[test]
fn the_token_is_refreshed_before_it_expires() {
    let server = TestServer::builder()
        .args(&["--access-token-ttl", "2"])
        .in_process()
        .start();
    let f = fixture(&server);
    let user = block_on(f.session.sign_up(&email(), PASSWORD)).unwrap();
    let first = block_on(f.session.access_token()).unwrap();
    let first_refresh_token = f.stored_refresh_token();
    assert_eq!(f.session.refresh_count(), 0);

    server.advance(Duration::from_millis(1100));
    let second = block_on(f.session.access_token()).unwrap();
    assert_ne!(second, first);
    assert_eq!(f.session.refresh_count(), 1);
    assert_ne!(
        f.stored_refresh_token(),
        first_refresh_token,
        "the rotated refresh token is stored"
    );
    assert_eq!(whoami(&server, &second).unwrap(), user.id);

    // A restart picks up the rotated tokens, not the spent ones.
    let restored = f.reopen(&server);
    server.advance(Duration::from_millis(1100));
    let third = block_on(restored.access_token()).unwrap();
    assert_eq!(restored.refresh_count(), 1);
    assert_eq!(whoami(&server, &third).unwrap(), user.id);
}

#[test]
fn concurrent_callers_share_one_refresh() {
    let server = TestServer::builder()
        .args(&["--access-token-ttl", "2"])
        .in_process()
        .start();
    let f = fixture(&server);
    block_on(f.session.sign_up(&email(), PASSWORD)).unwrap();
    let before = f.stored_refresh_token();
    server.advance(Duration::from_millis(1100));

    let session = Arc::new(f.session);
    let tokens: Vec<AccessToken> = block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let session = session.clone();
                tokio::spawn(async move { session.access_token().await })
            })
            .collect();
        let mut tokens = Vec::new();
        for task in tasks {
            tokens.push(task.await.unwrap().unwrap());
        }
        tokens
    });
    assert_eq!(
        session.refresh_count(),
        1,
        "exactly one refresh for eight concurrent callers"
    );
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "every caller got the same new token"
    );
    // Had two refreshes raced, the second would have reused a spent token and ended the session.
    assert!(matches!(session.state(), AuthState::SignedIn(_)));
    let text = f
        .store
        .get(&format!("{}/session", f.namespace))
        .unwrap()
        .unwrap();
    let after: Value = serde_json::from_str(&text).unwrap();
    assert_ne!(after["tokens"]["refresh_token"].as_str().unwrap(), before);
}

#[test]
fn an_expired_token_is_refreshed_once_after_a_401() {
    let server = TestServer::builder()
        .args(&["--access-token-ttl", "1"])
        .in_process()
        .start();
    let f = fixture(&server);
    let user = block_on(f.session.sign_up(&email(), PASSWORD)).unwrap();
    let stale = block_on(f.session.access_token()).unwrap();
    // JWT times are whole seconds and the server allows 1 s of leeway: a 1 s token issued just
    // after a second boundary is still accepted up to 3 s later.
    server.advance(Duration::from_millis(3200));
    // `/auth/v1/user` answers an expired token as GoTrue does: 403 (`bad_jwt`), with the
    // protocol's `token_expired`; sync routes answer it 401, where the engine refreshes.
    let err = whoami(&server, &stale).unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(err.code(), Some("token_expired"), "{err}");

    let fresh = block_on(f.session.refresh_after_expired(&stale)).unwrap();
    assert_eq!(whoami(&server, &fresh).unwrap(), user.id);
    // A second caller holding the same stale token gets the new one without another exchange.
    assert_eq!(
        block_on(f.session.refresh_after_expired(&stale)).unwrap(),
        fresh
    );
    assert_eq!(f.session.refresh_count(), 1);
}

#[test]
fn a_revoked_refresh_token_expires_the_session_and_keeps_the_user() {
    let server = TestServer::builder()
        .args(&["--access-token-ttl", "2"])
        .in_process()
        .start();
    let f = fixture(&server);
    let address = email();
    let user = block_on(f.session.sign_up(&address, PASSWORD)).unwrap();
    let mut seen = record_states(&f.session);

    // A second process sharing this sign-in (same stored tokens) signs out: the server revokes
    // the sign-in's refresh tokens.
    let second_store = Arc::new(MemorySecretStore::new());
    let key = format!("{}/session", f.namespace);
    second_store
        .set(&key, &f.store.get(&key).unwrap().unwrap())
        .unwrap();
    let second = open_session(&server, second_store.clone(), &f.namespace);
    block_on(second.sign_out()).unwrap();

    server.advance(Duration::from_millis(1100));
    assert_eq!(
        block_on(f.session.access_token()),
        Err(AuthError::SessionExpired)
    );
    assert_eq!(f.session.state(), AuthState::SessionExpired(user.clone()));
    assert_eq!(
        f.session.current_user(),
        Some(user.clone()),
        "the user is kept for their pending data"
    );
    assert_eq!(seen(), vec![AuthState::SessionExpired(user.clone())]);
    assert_eq!(
        block_on(f.session.access_token()),
        Err(AuthError::SessionExpired)
    );

    // The expiry survives a restart, with no tokens left in the store.
    let stored = f.stored().unwrap();
    assert!(stored["tokens"].is_null(), "{stored}");
    assert_eq!(
        f.reopen(&server).state(),
        AuthState::SessionExpired(user.clone())
    );

    // Signing in again as the same user starts a new session.
    let again = block_on(f.session.sign_in(&address, PASSWORD)).unwrap();
    assert_eq!(again.id, user.id);
    assert_eq!(f.session.state(), AuthState::SignedIn(user.clone()));
    assert_eq!(seen().last(), Some(&AuthState::SignedIn(user)));
}

#[test]
fn sign_out_revokes_on_the_server_and_deletes_the_secrets() {
    let server = TestServer::start();
    let f = fixture(&server);
    let user = block_on(f.session.sign_up(&email(), PASSWORD)).unwrap();
    let refresh_token = f.stored_refresh_token();
    let mut seen = record_states(&f.session);

    block_on(f.session.sign_out()).unwrap();
    assert_eq!(f.session.state(), AuthState::SignedOut);
    assert_eq!(f.session.current_user(), None);
    assert!(f.stored().is_none(), "the secrets are deleted");
    assert_eq!(seen(), vec![AuthState::SignedOut]);
    let refused = raw_refresh(&server, &refresh_token).unwrap_err();
    assert_eq!(
        refused.code(),
        Some("invalid_grant"),
        "logout revoked the refresh token: {refused}"
    );
    assert_eq!(f.reopen(&server).state(), AuthState::SignedOut);

    // A dropped watch hears nothing more; signing out twice is fine.
    let heard = seen();
    drop(seen);
    block_on(f.session.sign_in(&user.email, PASSWORD)).unwrap();
    assert_eq!(heard.len(), 1);
    block_on(f.session.sign_out()).unwrap();
    block_on(f.session.sign_out()).unwrap();
}

#[test]
fn an_unreachable_server_is_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = HttpClient::new(&HttpConfig::new(format!("http://127.0.0.1:{port}"))).unwrap();
    let session =
        AuthSession::open(http, Arc::new(MemorySecretStore::new()), "tandem.test").unwrap();
    assert!(matches!(
        block_on(session.sign_in(&email(), PASSWORD)),
        Err(AuthError::Network { .. })
    ));
    assert_eq!(session.state(), AuthState::SignedOut);
}

#[test]
fn insecure_http_to_a_remote_host_is_refused() {
    for url in [
        "http://example.com",
        "http://10.1.2.3:8787",
        "http://192.168.0.10",
    ] {
        let err = HttpClient::new(&HttpConfig::new(url)).unwrap_err();
        assert!(matches!(err, HttpError::Config(_)), "{url}: {err}");
    }
    let mut overridden = HttpConfig::new("https://api.example.com");
    overridden.auth_url = Some("http://auth.example.com/auth/v1".into());
    assert!(HttpClient::new(&overridden).is_err());
    overridden.allow_insecure_http = true;
    assert!(HttpClient::new(&overridden).is_ok());
    assert!(HttpClient::new(&HttpConfig::new("http://localhost:8787")).is_ok());
}

/// The platform keyring for real: on Linux the kernel keyutils store. When the kernel refuses
/// keyctl (some container sandboxes filter it), the test says so loudly and checks nothing else.
#[test]
fn the_keyring_store_keeps_the_session_across_a_restart() {
    let store = match usable_keyring() {
        Ok(store) => Arc::new(store),
        Err(e) => {
            println!("KEYRING UNAVAILABLE — the KeyringStore test did not run: {e}");
            eprintln!("KEYRING UNAVAILABLE — the KeyringStore test did not run: {e}");
            return;
        }
    };
    let server = TestServer::start();
    let namespace = secret_namespace(&installation_id());
    let key = format!("{namespace}/session");
    let session = AuthSession::open(client(&server), store.clone(), &namespace).unwrap();
    let user = block_on(session.sign_up(&email(), PASSWORD)).unwrap();
    let token = block_on(session.access_token()).unwrap();
    drop(session);

    let restored = AuthSession::open(client(&server), store.clone(), &namespace).unwrap();
    assert_eq!(restored.state(), AuthState::SignedIn(user.clone()));
    assert_eq!(block_on(restored.access_token()).unwrap(), token);
    block_on(restored.sign_out()).unwrap();
    assert!(
        gone(store.as_ref(), &key),
        "sign-out deleted the keyring entry"
    );
    println!("keyring: kernel keyutils store used for real ({:?})", store);
}

/// The platform keyring, if it can store and read back a probe entry.
///
/// On Linux, a process outside a login session (no `pam_keyinit`: containers, CI, `ssh` without
/// PAM) has no session keyring of its own and falls back to the user-session keyring
/// `_uid_ses.<uid>`, which in some sandboxes (this project's included) lets keys be added but not
/// read, linked or removed. The test thread then first joins a fresh session keyring — what
/// `pam_keyinit` does at every login, or `keyctl session -` in a shell — and says so; the store
/// itself is used unchanged.
fn usable_keyring() -> Result<KeyringStore, tandem_core::auth::SecretStoreError> {
    #[cfg(target_os = "linux")]
    ensure_session_keyring();
    let store = KeyringStore::new()?;
    probe(&store).map(|()| store)
}

#[cfg(target_os = "linux")]
fn ensure_session_keyring() {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEYCTL_DESCRIBE: libc::c_long = 6;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    let mut buffer = [0u8; 256];
    // SAFETY: KEYCTL_DESCRIBE writes at most `buffer.len()` bytes into `buffer`.
    let len = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            KEY_SPEC_SESSION_KEYRING,
            buffer.as_mut_ptr(),
            buffer.len(),
        )
    };
    let end = usize::try_from(len).unwrap_or(0).min(buffer.len());
    let description = String::from_utf8_lossy(&buffer[..end]).to_string();
    // "keyring;uid;gid;perm;name": the fallback keyring's name starts with `_uid_ses.`.
    if len >= 0 && !description.contains(";_uid_ses.") {
        return;
    }
    // SAFETY: with a null name, KEYCTL_JOIN_SESSION_KEYRING creates an anonymous session keyring
    // and subscribes the calling thread to it; no memory is passed.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    println!(
        "keyring: this process had no session keyring of its own ({}); joined a fresh one (id {id}), as a login would",
        description.trim_end_matches('\0')
    );
}

/// Writes, reads back and deletes a probe entry.
fn probe(store: &KeyringStore) -> Result<(), tandem_core::auth::SecretStoreError> {
    let key = format!("tandem.probe.{}", std::process::id());
    store.set(&key, "probe")?;
    let read = store.get(&key)?;
    store.delete(&key)?;
    match read.as_deref() {
        Some("probe") => Ok(()),
        _ => Err(tandem_core::auth::SecretStoreError::Failed(
            "the probe did not read back".into(),
        )),
    }
}

/// Whether `key` reads as absent. keyutils invalidates keys lazily, so a deleted key may still be
/// found for a few milliseconds in the process that deleted it.
fn gone(store: &dyn SecretStore, key: &str) -> bool {
    (0..50).any(|_| {
        let absent = matches!(store.get(key), Ok(None));
        if !absent {
            std::thread::sleep(Duration::from_millis(20));
        }
        absent
    })
}

#[test]
fn sign_out_is_this_device_only_and_sign_out_everywhere_is_every_device() {
    let server = TestServer::start();
    let address = email();
    let phone = fixture(&server);
    let tablet = fixture(&server);
    let laptop = fixture(&server);
    block_on(phone.session.sign_up(&address, PASSWORD)).unwrap();
    block_on(tablet.session.sign_in(&address, PASSWORD)).unwrap();
    block_on(laptop.session.sign_in(&address, PASSWORD)).unwrap();
    let tablet_refresh = tablet.stored_refresh_token();

    // The phone signs out (scope=local): the tablet's sign-in still refreshes.
    block_on(phone.session.sign_out()).unwrap();
    let refreshed = raw_refresh(&server, &tablet_refresh).expect("the tablet stays signed in");
    drop(refreshed);

    // The laptop signs out everywhere (scope=global): the tablet's sign-in goes too.
    let laptop_refresh = laptop.stored_refresh_token();
    block_on(
        laptop
            .session
            .sign_out_scoped(tandem_core::auth::SignOutScope::Global),
    )
    .unwrap();
    assert_eq!(laptop.session.state(), AuthState::SignedOut);
    for token in [laptop_refresh, tablet.stored_refresh_token()] {
        let refused = raw_refresh(&server, &token).unwrap_err();
        assert_eq!(refused.code(), Some("invalid_grant"), "{refused}");
    }
}
