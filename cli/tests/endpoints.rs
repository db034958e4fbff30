//! `--auth-url`, `--sync-url`, `--api-key-file` / `TANDEM_API_KEY` (remembered per data
//! directory, like `--server`) and `tandem logout --everywhere`, against a real server.

use std::process::Command;

use serde_json::{json, Value};

mod common;
use common::*;

/// `tandem` on `dir` with `args` (none of the endpoint variables inherited: `tandem()` drops
/// them).
fn bare(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = tandem();
    command.arg("--data-dir").arg(dir).args(args);
    command
}

fn ok_json(command: Command) -> Value {
    let output = run(command);
    assert!(output.status.success(), "{output:?}");
    stdout_json(&output)
}

#[test]
fn auth_and_sync_urls_and_the_api_key_are_remembered_per_data_directory() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let auth_url = format!("{}/auth/v1", server.url);
    let sync_url = format!("{}/sync/v1", server.url);
    let key_file = dir.path().join("anon-key");
    std::fs::write(&key_file, "  sb_publishable_test_key\n").unwrap();
    let data = dir.path().join("device");
    let email = email();
    // --server names nothing that listens: auth and sync go where their own options say.
    let mut signup = bare(
        &data,
        &[
            "--server",
            "http://127.0.0.1:9",
            "--auth-url",
            &auth_url,
            "--sync-url",
            &sync_url,
            "--api-key-file",
            key_file.to_str().unwrap(),
            "--json",
            "signup",
            &email,
        ],
    );
    signup.env("TANDEM_PASSWORD", PASSWORD);
    let signed_up = ok_json(signup);
    assert_eq!(signed_up["user"]["email"], email.as_str());
    let settings: Value =
        serde_json::from_slice(&std::fs::read(data.join("cli.json")).unwrap()).unwrap();
    assert_eq!(settings["authUrl"], auth_url.as_str());
    assert_eq!(settings["syncUrl"], sync_url.as_str());
    // The key is kept with the tokens (owner-only), never in cli.json.
    assert!(
        !settings.to_string().contains("sb_publishable"),
        "{settings}"
    );
    let credentials = std::fs::read_to_string(data.join("credentials.json")).unwrap();
    assert!(credentials.contains("sb_publishable_test_key"));

    // Later commands need none of the options.
    ok_json(bare(
        &data,
        &["--json", "put", "plans", r#"{"name":"Legs"}"#, "--id", "p1"],
    ));
    let synced = ok_json(bare(&data, &["--json", "sync"]));
    assert_eq!(synced["pushed"], 1, "{synced}");

    // The key never comes from a command-line value.
    let output = run(bare(&data, &["--api-key", "secret", "whoami"]));
    assert_eq!(output.status.code(), Some(2));
    // TANDEM_API_KEY works too; an empty key file is refused.
    let mut with_env = bare(&data, &["--json", "whoami"]);
    with_env.env("TANDEM_API_KEY", "from-the-environment");
    ok_json(with_env);
    let empty = dir.path().join("empty-key");
    std::fs::write(&empty, "\n").unwrap();
    let output = run(bare(
        &data,
        &["--api-key-file", empty.to_str().unwrap(), "whoami"],
    ));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn logout_signs_out_this_device_and_everywhere_every_device() {
    let server = Server::start();
    let (phone, tablet, laptop) = (
        Device::new(&server),
        Device::new(&server),
        Device::new(&server),
    );
    let email = email();
    phone.signup(&email);
    tablet.login(&email);
    laptop.login(&email);
    // The tablet signs out: the phone and the laptop go on syncing.
    assert_eq!(
        tablet.json(&["logout"]),
        json!({ "signedOut": true, "wiped": false })
    );
    phone.json(&["sync"]);
    laptop.json(&["sync"]);
    // The laptop signs out everywhere: the phone's next sync finds its session gone.
    assert_eq!(
        laptop.json(&["logout", "--everywhere"]),
        json!({ "signedOut": true, "wiped": false, "everywhere": true })
    );
    assert_eq!(phone.error(&["sync"], 1), "session_expired");
    assert_eq!(phone.json(&["whoami"])["sessionExpired"], true);
}
