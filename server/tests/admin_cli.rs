//! `tandem-server admin …` against the real binary: each command's happy path and its refusals
//! (a wrong token: exit 1 `unauthorized`; an unknown email: exit 1 `not_found`; a bad command
//! line: exit 2). The token reaches the command from the environment or a file, never argv.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use tandem_testkit::db::TestDb;
use tandem_testkit::on_both_backends;
use tandem_testkit::protocol::{create, Client};
use tandem_testkit::server::{TestServer, SECRET};

const ADMIN: &str = "admin-token-for-the-cli-0123456789abcdef";

fn server(db: &TestDb) -> TestServer {
    TestServer::builder()
        .db(db)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .start()
}

/// How the command gets its token.
enum Token<'a> {
    Env(&'a str),
    File(&'a Path),
    None,
}

/// Runs `tandem-server admin --url URL ARGS…` with only the token's variable in its environment
/// and stdin not a terminal.
fn admin(url: &str, token: Token<'_>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tandem-server"));
    command
        .env_clear()
        .arg("admin")
        .arg("--url")
        .arg(url)
        .args(args)
        .stdin(Stdio::null());
    match token {
        Token::Env(token) => {
            command.env("TANDEM_ADMIN_TOKEN", token);
        }
        Token::File(path) => {
            command.arg("--admin-token-file").arg(path);
        }
        Token::None => {}
    }
    let output = command.output().expect("running tandem-server admin");
    // The token is never a flag: nothing in the command line carries it.
    let argv: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(!argv.iter().any(|a| a.contains(ADMIN)), "{argv:?}");
    output
}

/// `admin` with the right token from the environment; must exit 0; returns stdout.
fn ok(url: &str, args: &[&str]) -> String {
    let output = admin(url, Token::Env(ADMIN), args);
    assert!(
        output.status.success(),
        "admin {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Asserts the exit status `code` and, when given, `needle` on stderr.
fn refused(output: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "{needle:?} not in stderr: {stderr}"
    );
    assert!(!stderr.contains(ADMIN), "the token leaked: {stderr}");
}

async fn push_status(c: &Client, token: &str, id: &str) -> (u16, Option<String>) {
    let reply = c
        .push(
            token,
            vec![create(
                &format!("op-{id}"),
                "plans",
                id,
                json!({"name": id}),
            )],
        )
        .await;
    let retry_after = reply
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (reply.status.as_u16(), retry_after)
}

async fn pause_and_resume_globally_and_for_one_user(db: TestDb) {
    let server = server(&db);
    let c = server.client();
    let (alice, bob) = (c.user().await, c.user().await);

    let out = ok(
        server.url(),
        &["pause", "--reason", "bad release", "--retry-after", "120"],
    );
    assert!(out.contains("paused sync for everyone"), "{out}");
    assert_eq!(
        push_status(&c, &alice.token, "a1").await,
        (503, Some("120".into()))
    );
    assert_eq!(push_status(&c, &bob.token, "b1").await.0, 503);
    c.sign_in(&alice.email, "password123").await.assert_ok();
    let out = ok(server.url(), &["resume"]);
    assert!(out.contains("resumed sync for everyone"), "{out}");
    assert_eq!(push_status(&c, &alice.token, "a1").await.0, 200);
    let out = ok(server.url(), &["resume"]);
    assert!(out.contains("was not paused"), "{out}");

    ok(server.url(), &["pause", "--user", &alice.email]);
    assert_eq!(push_status(&c, &alice.token, "a2").await.0, 503);
    assert_eq!(push_status(&c, &bob.token, "b2").await.0, 200);
    let out = ok(server.url(), &["resume", "--user", &alice.email]);
    assert!(
        out.contains(&format!("resumed sync for {}", alice.email)),
        "{out}"
    );
    assert_eq!(push_status(&c, &alice.token, "a2").await.0, 200);

    refused(
        &admin(
            server.url(),
            Token::Env(ADMIN),
            &["pause", "--user", "nobody@example.com"],
        ),
        1,
        "not_found",
    );
}

async fn users_are_listed_as_a_table_or_json(db: TestDb) {
    let server = server(&db);
    let c = server.client();
    let (alice, bob) = (c.user().await, c.user().await);
    c.push_ok(
        &alice.token,
        vec![create("op-p", "plans", "p", json!({"name": "p"}))],
    )
    .await;

    let table = ok(server.url(), &["users"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in ["EMAIL", "ID", "CREATED", "LAST PUSH", "RECORDS", "PAUSED"] {
        assert!(header.contains(column), "{table}");
    }
    for user in [&alice, &bob] {
        let row = table
            .lines()
            .find(|l| l.starts_with(&user.email))
            .unwrap_or_else(|| panic!("{} not in {table}", user.email));
        assert!(row.contains(&user.id), "{row}");
    }

    let json: Value = serde_json::from_str(&ok(
        server.url(),
        &["users", "--query", &alice.email, "--json"],
    ))
    .unwrap();
    let users = json["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{json}");
    assert_eq!(users[0]["id"], alice.id.as_str());
    assert_eq!(users[0]["records"], 1);

    let none: Value = serde_json::from_str(&ok(
        server.url(),
        &["users", "--query", "nobody-at-all", "--json"],
    ))
    .unwrap();
    assert_eq!(none, json!({"users": []}));
}

async fn revoke_ends_every_session(db: TestDb) {
    let server = server(&db);
    let c = server.client();
    let session = c
        .signup("revoked@example.com", "password123")
        .await
        .assert_ok()
        .clone();
    let access = session["access_token"].as_str().unwrap();
    let refresh = session["refresh_token"].as_str().unwrap();
    c.pull(access, None, None).await.assert_ok();

    let out = ok(server.url(), &["revoke", "REVOKED@example.com"]);
    assert!(out.contains("revoked 1 session(s)"), "{out}");
    c.pull(access, None, None)
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(c.refresh(refresh).await.status.as_u16(), 400);

    refused(
        &admin(
            server.url(),
            Token::Env(ADMIN),
            &["revoke", "nobody@example.com"],
        ),
        1,
        "not_found",
    );
}

async fn delete_user_asks_or_needs_yes(db: TestDb) {
    let server = server(&db);
    let c = server.client();
    let (gone, kept) = (c.user().await, c.user().await);
    c.push_ok(
        &gone.token,
        vec![create("op-p", "plans", "p", json!({"name": "p"}))],
    )
    .await;

    // stdin is not a terminal: no prompt, a refusal, nothing deleted.
    refused(
        &admin(
            server.url(),
            Token::Env(ADMIN),
            &["delete-user", &gone.email],
        ),
        2,
        "--yes",
    );
    c.sign_in(&gone.email, "password123").await.assert_ok();

    let solo = c.create_space(&gone.token, "solo").await;
    let solo = solo["id"].as_str().unwrap();

    let out = ok(server.url(), &["delete-user", &gone.email, "--yes"]);
    assert!(out.contains("1 record(s)"), "{out}");
    assert!(out.contains(&format!("space {solo} deleted")), "{out}");
    assert_eq!(
        c.sign_in(&gone.email, "password123").await.status.as_u16(),
        400
    );
    c.sign_in(&kept.email, "password123").await.assert_ok();
    refused(
        &admin(
            server.url(),
            Token::Env(ADMIN),
            &["delete-user", &gone.email, "--yes"],
        ),
        1,
        "not_found",
    );
}

async fn the_token_comes_from_the_environment_or_a_file_and_a_wrong_one_is_refused(db: TestDb) {
    let server = server(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    std::fs::write(&file, format!("{ADMIN}\n")).unwrap();
    let from_file = admin(server.url(), Token::File(&file), &["users", "--json"]);
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );

    let wrong = "not-the-admin-token-0123456789abcdefgh";
    refused(
        &admin(server.url(), Token::Env(wrong), &["users"]),
        1,
        "unauthorized",
    );
    refused(
        &admin(server.url(), Token::Env(wrong), &["pause"]),
        1,
        "unauthorized",
    );
    std::fs::write(&file, format!("{wrong}\n")).unwrap();
    refused(
        &admin(server.url(), Token::File(&file), &["resume"]),
        1,
        "unauthorized",
    );
    // Nothing was paused by the refused calls.
    let c = server.client();
    let user = c.user().await;
    assert_eq!(push_status(&c, &user.token, "x").await.0, 200);

    // No token at all, or one too short to be the server's: a bad command line.
    refused(
        &admin(server.url(), Token::None, &["users"]),
        2,
        "TANDEM_ADMIN_TOKEN",
    );
    refused(
        &admin(server.url(), Token::Env("short"), &["users"]),
        2,
        "at least 32 bytes",
    );
}

/// `tandem-server admin delete-user EMAIL` on a terminal (util-linux's `script` gives it one),
/// with `typed` typed at the prompt; `None` when `script` is not installed.
fn delete_on_a_terminal(url: &str, email: &str, typed: &str) -> Option<Output> {
    let line = format!(
        "{} admin --url {url} delete-user {email}",
        env!("CARGO_BIN_EXE_tandem-server")
    );
    let mut child = match Command::new("script")
        .env_clear()
        .env("TANDEM_ADMIN_TOKEN", ADMIN)
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("skipped the terminal prompt: no `script` ({e})");
            return None;
        }
    };
    // Typed after the prompt is up, as a person would.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{typed}").unwrap();
    // stdin stays open until the command ends: on its end `script` would hang up the terminal.
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    Some(output)
}

async fn delete_user_on_a_terminal_asks_for_the_email(db: TestDb) {
    let server = server(&db);
    let c = server.client();
    let user = c.user().await;
    let Some(wrong) = delete_on_a_terminal(server.url(), &user.email, "someone@else.com") else {
        return;
    };
    // `script` passes the terminal's output, the prompt included, to its stdout.
    let said = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(1), "{said}");
    assert!(said.contains("Type the email to confirm"), "{said}");
    assert!(said.contains("nothing deleted"), "{said}");
    c.sign_in(&user.email, "password123").await.assert_ok();

    let right = delete_on_a_terminal(server.url(), &user.email, &user.email).unwrap();
    let said = String::from_utf8_lossy(&right.stdout);
    assert!(right.status.success(), "{said}");
    assert!(said.contains(&format!("deleted {}", user.email)), "{said}");
    assert_eq!(
        c.sign_in(&user.email, "password123").await.status.as_u16(),
        400
    );
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["pause", "--retry-after", "0"],
        &["pause", "--retry-after", "86401"],
        &["pause", "--admin-token", "a-token-on-the-command-line"],
        &["revoke"],
        &["users", "--bogus"],
    ] {
        let output = admin("http://127.0.0.1:9", Token::Env(ADMIN), args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Plain http off loopback would send the token in clear.
    refused(
        &admin("http://admin.example.com", Token::Env(ADMIN), &["users"]),
        2,
        "https://",
    );
    // Nobody listening: a failure, not a usage error.
    refused(
        &admin("http://127.0.0.1:9", Token::Env(ADMIN), &["users"]),
        1,
        "cannot reach",
    );
}

on_both_backends!(
    pause_and_resume_globally_and_for_one_user,
    users_are_listed_as_a_table_or_json,
    revoke_ends_every_session,
    delete_user_asks_or_needs_yes,
    delete_user_on_a_terminal_asks_for_the_email,
    the_token_comes_from_the_environment_or_a_file_and_a_wrong_one_is_refused,
);
