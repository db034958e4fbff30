//! Hostile clients: what a probe of the server found it could be pushed over or around with
//! (issue 11's server items), each tried against the real server binary.

use tandem_testkit::server_suite as common;

use tandem_testkit::on_both_backends;

use common::{op, upsert, TestDb, TestServer, SECRET};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both_backends!(
    parallel_guesses_cannot_outrun_the_sign_in_limit,
    oversized_emails_are_refused_before_they_are_remembered,
    the_event_stream_refuses_a_token_of_a_missing_account,
    event_streams_are_capped_per_user,
    a_half_sent_request_head_is_cut_off,
    connections_over_the_cap_get_json_503_and_healthz_recovers,
    a_slow_body_gets_json_408,
    errors_hyper_answers_itself_are_json,
    nul_and_control_characters_are_bad_input_on_every_backend,
    sign_ups_are_limited_per_client_address,
    password_hashing_is_capped_and_sheds_load_with_503,
);

async fn parallel_guesses_cannot_outrun_the_sign_in_limit(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    c.signup("target@example.com", "password123")
        .await
        .assert_ok();
    // 39 wrong guesses and the right password last, all sent at once.
    let attempts: Vec<_> = (0..40)
        .map(|i| {
            let c = c.clone();
            let password = if i == 39 {
                "password123"
            } else {
                "wrong-guess"
            };
            tokio::spawn(async move { c.sign_in("target@example.com", password).await })
        })
        .collect();
    let mut verified = 0;
    let mut limited = 0;
    for (i, attempt) in attempts.into_iter().enumerate() {
        let reply = attempt.await.unwrap();
        match reply.status.as_u16() {
            429 => {
                reply.assert_error(429, "rate_limited");
                limited += 1;
            }
            400 => {
                reply.assert_error(400, "invalid_grant");
                verified += 1;
            }
            200 => {
                assert_eq!(i, 39, "only the right password signs in");
                verified += 1;
            }
            other => panic!("unexpected status {other}: {}", reply.body),
        }
    }
    assert!(verified <= 5, "{verified} attempts were verified");
    assert_eq!(verified + limited, 40);
}

async fn oversized_emails_are_refused_before_they_are_remembered(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    // `/auth/v1` answers GoTrue's status for an email it refuses: 400.
    let long = format!("{}@example.com", "a".repeat(300));
    c.signup(&long, "password123")
        .await
        .assert_error(400, "validation_failed");
    c.sign_in(&long, "password123")
        .await
        .assert_error(400, "validation_failed");
    let huge = format!("{}@example.com", "a".repeat(1 << 20));
    c.sign_in(&huge, "password123")
        .await
        .assert_error(400, "validation_failed");
    // At the limit it is an ordinary email.
    let longest = format!("{}@example.com", "a".repeat(254 - "@example.com".len()));
    c.signup(&longest, "password123").await.assert_ok();
}

/// A valid token whose account is gone (signed with the server's secret for a user id it never
/// had, which is what a deleted account's token looks like).
fn token_of_a_missing_account() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "sub": uuid::Uuid::now_v7().to_string(), "exp": now + 600, "iat": now,
        "role": "authenticated", "aud": "authenticated", "email": "gone@example.com",
        "session_id": uuid::Uuid::now_v7().to_string(),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn the_event_stream_refuses_a_token_of_a_missing_account(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let token = token_of_a_missing_account();
    c.get("/sync/v1/events", Some(&token))
        .await
        .assert_error(401, "unauthorized");
    // The same token is refused by the other sync routes too.
    c.post("/sync/v1/pull", Some(&token), &json!({}))
        .await
        .assert_error(401, "unauthorized");
}

async fn event_streams_are_capped_per_user(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--max-event-streams-per-user", "2"])
        .start();
    let c = server.client();
    let (alice, _) = c.new_user().await;
    let (bob, _) = c.new_user().await;
    let open = |token: String| {
        let c = c.clone();
        async move {
            c.http
                .get(c.url("/sync/v1/events"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let first = open(alice.clone()).await;
    let second = open(alice.clone()).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    c.get("/sync/v1/events", Some(&alice))
        .await
        .assert_error(429, "rate_limited");
    // Another user is not affected, and closing a stream gives its place back.
    assert_eq!(open(bob).await.status().as_u16(), 200);
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        let response = open(alice.clone()).await;
        if response.status().as_u16() == 200 {
            reopened = Some(response);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a closed stream's place is given back");
    drop(second);
}

fn addr(server: &TestServer) -> String {
    server.url().trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (or `limit` passes): what it sent.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// The JSON body of a raw HTTP answer.
fn json_body(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

async fn a_half_sent_request_head_is_cut_off(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--header-read-timeout-secs", "1"])
        .start();
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream.write_all(b"GET /heal").await.unwrap();
    let started = Instant::now();
    assert!(
        read_to_close(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection stays open"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    // An idle keep-alive connection is closed by the same deadline.
    let mut idle = TcpStream::connect(addr(&server)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.unwrap().starts_with("HTTP/1.1 200"));
}

async fn connections_over_the_cap_get_json_503_and_healthz_recovers(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--max-connections", "3", "--header-read-timeout-secs", "1"])
        .start();
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = server.client();
    let busy = c.get("/healthz", None).await;
    busy.assert_error(503, "server_busy");
    assert!(busy.headers.contains_key("retry-after"));
    // The silent clients are cut off by the header deadline, and the server answers again.
    let mut healthy = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reply = c.send(c.http.get(c.url("/healthz"))).await;
        if reply.status.as_u16() == 200 {
            healthy = true;
            break;
        }
    }
    assert!(healthy, "/healthz answers once the slow sockets are gone");
    drop(silent);
}

async fn a_slow_body_gets_json_408(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--body-read-timeout-secs", "1"])
        .start();
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream
        .write_all(
            b"POST /auth/v1/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server answers and closes");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    assert_eq!(json_body(&answer)["error"], "request_timeout");
}

async fn errors_hyper_answers_itself_are_json(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    let big = "x".repeat(32 * 1024);
    c.send(c.http.get(c.url("/healthz")).header("x-big", big))
        .await
        .assert_error(431, "headers_too_large");
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["error"], "invalid_request");
    assert!(answer
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
}

async fn nul_and_control_characters_are_bad_input_on_every_backend(db: TestDb) {
    let server = TestServer::builder().db(&db).start();
    let c = server.client();
    c.sign_in("a\u{0}@b.c", "password123")
        .await
        .assert_error(400, "invalid_grant");
    c.signup("a\u{0}@b.c", "password123")
        .await
        .assert_error(400, "validation_failed");
    c.refresh("tok\u{0}en")
        .await
        .assert_error(400, "invalid_grant");
    let (token, _) = c.new_user().await;
    // In ids, op ids and collection names: refused (the whole push or the one mutation), never
    // a 500 (`send` asserts that); in a cursor, a malformed request.
    for mutation in [
        upsert(&op(), "plans", "p\u{0}", None, json!({"name": "x"})),
        upsert("op\u{0}", "plans", "p", None, json!({"name": "x"})),
        upsert(&op(), "pl\u{0}ans", "p", None, json!({"name": "x"})),
    ] {
        let reply = c.push(&token, vec![mutation]).await;
        let refused = match reply.status.as_u16() {
            200 => reply.body["results"][0]["status"] == "rejected",
            status => status / 100 == 4,
        };
        assert!(refused, "{} {}", reply.status, reply.body);
    }
    c.pull(&token, Some("cur\u{0}sor"), None)
        .await
        .assert_error(400, "invalid_request");
    // In a document, NUL is a character like any other and comes back as written.
    let stored = c
        .push_ok(
            &token,
            vec![upsert(
                &op(),
                "plans",
                "nul",
                None,
                json!({"name": "a\u{0}b"}),
            )],
        )
        .await;
    assert_eq!(stored[0]["status"], "applied", "{stored:?}");
    let (changes, _) = c.pull_all(&token, None).await;
    assert!(changes
        .iter()
        .any(|ch| ch["entityId"] == "nul" && ch["doc"]["name"] == "a\u{0}b"));
}

async fn sign_ups_are_limited_per_client_address(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--sign-ups-per-hour", "3"])
        .start();
    let c = server.client();
    for i in 0..3 {
        c.signup(&format!("u{i}@example.com"), "password123")
            .await
            .assert_ok();
    }
    let limited = c.signup("u3@example.com", "password123").await;
    limited.assert_error(429, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
    // Behind a proxy that names the client, each address has its own limit, and a client
    // cannot pick its address by sending the header itself: the proxy's value comes last.
    let behind = TestServer::builder()
        .db(&db)
        .args(&[
            "--sign-ups-per-hour",
            "1",
            "--client-ip-header",
            "x-forwarded-for",
        ])
        .start();
    let c = behind.client();
    let signup = |email: &str, forwarded: &str| {
        c.send(
            c.http
                .post(c.url("/auth/v1/signup"))
                .header("x-forwarded-for", forwarded)
                .json(&json!({"email": email, "password": "password123"})),
        )
    };
    signup("p1@example.com", "10.0.0.1").await.assert_ok();
    signup("p2@example.com", "10.0.0.2").await.assert_ok();
    signup("p3@example.com", "10.0.0.9, 10.0.0.1")
        .await
        .assert_error(429, "rate_limited");
    c.signup("p4@example.com", "password123")
        .await
        .assert_error(400, "invalid_request");
}

async fn password_hashing_is_capped_and_sheds_load_with_503(db: TestDb) {
    let server = TestServer::builder()
        .db(&db)
        .args(&["--hash-concurrency", "1"])
        .start();
    let c = server.client();
    // 60 sign-ins of unknown emails at once: one hash at a time, 17 in flight at most; the
    // rest are told the server is busy, none fails.
    let attempts: Vec<_> = (0..60)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.sign_in(&format!("nobody{i}@example.com"), "password123")
                    .await
            })
        })
        .collect();
    let (mut busy, mut refused) = (0, 0);
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        match reply.status.as_u16() {
            503 => {
                reply.assert_error(503, "server_busy");
                busy += 1;
            }
            _ => {
                reply.assert_error(400, "invalid_grant");
                refused += 1;
            }
        }
    }
    assert!(busy > 0, "some are shed");
    assert!(refused >= 17, "{refused} were verified");
}

/// Runs the server binary with `args` and exactly the `TANDEM_*` variables in `env`, expecting
/// it to refuse to start; returns what it said.
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-server"));
    command.args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("TANDEM_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    assert!(!output.status.success(), "the server started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sqlite_path(db: &TestDb) -> std::path::PathBuf {
    db.url.strip_prefix("sqlite://").unwrap().into()
}

/// How many JWT secrets the SQLite database at `db` keeps in its `meta` table.
fn secrets_in_database(db: &TestDb) -> i64 {
    rusqlite::Connection::open(sqlite_path(db))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM meta WHERE key = 'jwt_secret'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_secret_lives_owner_only_beside_the_database_not_in_it() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let server = TestServer::builder().db(&db).env(&[]).start();
    let (token, _) = server.client().new_user().await;
    server.shutdown();
    let file = std::path::PathBuf::from(format!("{}.jwt-secret", sqlite_path(&db).display()));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        secrets_in_database(&db),
        0,
        "the secret is not in the database"
    );
    let conn = rusqlite::Connection::open(sqlite_path(&db)).unwrap();
    // A secret an earlier version kept in the database moves into the file.
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('jwt_secret', ?1)",
        [SECRET],
    )
    .unwrap();
    drop(conn);
    std::fs::remove_file(&file).unwrap();
    let server = TestServer::builder().db(&db).env(&[]).start();
    server
        .client()
        .get("/auth/v1/user", Some(&token))
        .await
        .assert_error(403, "unauthorized");
    server.shutdown();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), SECRET);
    assert_eq!(secrets_in_database(&db), 0, "moved, not copied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_or_on_postgresql_the_secret_is_required() {
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let said = refused_start(&["--addr", "0.0.0.0:0", "--db", &db.url], &[]);
    assert!(said.contains("TANDEM_JWT_SECRET"), "{said}");
    let file = format!("{}.jwt-secret", sqlite_path(&db).display());
    assert!(!std::path::Path::new(&file).exists());
    if let Some(pg) = TestDb::new(common::Backend::Postgres).await {
        let said = refused_start(&["--addr", "127.0.0.1:0", "--db", &pg.url], &[]);
        assert!(said.contains("PostgreSQL needs the JWT secret"), "{said}");
    }
    let said = refused_start(
        &["--addr", "127.0.0.1:0", "--db", &db.url],
        &[("TANDEM_JWT_SECRET", "short")],
    );
    assert!(said.contains("at least 16 bytes"), "{said}");
    // From a file, off loopback, it starts.
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let server = TestServer::builder()
        .db(&db)
        .args(&["--jwt-secret-file", secret_file.to_str().unwrap()])
        .env(&[])
        .start();
    server.client().new_user().await;
}
