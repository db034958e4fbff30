//! `tandem … --encrypt` and `tandem encryption [on|off|rekey]` against a real server: the setting
//! converts the data directory's files as the device opens and is remembered; `status` shows
//! it; the records survive every conversion and a rotation; a removed key fails `key_missing`
//! and leaves the database as it was.

use std::path::Path;

use serde_json::Value;

mod common;
use common::*;

const VALUE: &str = "quetzalcoatl-cli-distinctive-4711";

/// Whether any file under `dir` holds `text` (the databases, their WAL, the cache).
fn any_file_contains(dir: &Path, text: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            any_file_contains(&path, text)
        } else {
            std::fs::read(&path)
                .map(|bytes| bytes.windows(text.len()).any(|w| w == text.as_bytes()))
                .unwrap_or(false)
        }
    })
}

fn put_plan(device: &Device) {
    let doc = serde_json::json!({ "name": VALUE }).to_string();
    device.json(&["put", "plans", &doc, "--id", "p1"]);
}

fn encryption_of(device: &Device) -> Value {
    device.json(&["status"])["encryption"].clone()
}

#[test]
fn encryption_is_turned_on_at_login_rotated_and_turned_off() {
    let server = Server::start();
    let phone = Device::new(&server);
    let email = email();
    phone.signup(&email);
    put_plan(&phone);
    assert_eq!(encryption_of(&phone), "off");
    assert!(
        any_file_contains(phone.data_dir(), VALUE),
        "plaintext before"
    );

    // `login --encrypt` converts on the spot (the same account: its database is encrypted).
    let mut command = phone.command(&["--json", "login", &email, "--encrypt"]);
    command.env("TANDEM_PASSWORD", PASSWORD);
    assert!(run(command).status.success());
    assert_eq!(encryption_of(&phone), "on", "remembered for later commands");
    assert!(
        !any_file_contains(phone.data_dir(), VALUE),
        "no plaintext left"
    );
    assert_eq!(phone.json(&["get", "plans", "p1"])["doc"]["name"], VALUE);

    let rotated = phone.json(&["encryption", "rekey"]);
    assert_eq!(rotated["rekeyed"], true);
    assert_eq!(rotated["encryption"], "on");
    assert_eq!(phone.json(&["get", "plans", "p1"])["doc"]["name"], VALUE);
    phone.json(&["sync"]);

    let off = phone.json(&["encryption", "off"]);
    assert_eq!(off["encryption"], "off");
    assert_eq!(encryption_of(&phone), "off");
    assert!(
        any_file_contains(phone.data_dir(), VALUE),
        "plaintext again"
    );
    assert_eq!(phone.json(&["encryption"])["encryption"], "off");
}

#[test]
fn a_lost_key_fails_typed_and_changes_nothing() {
    let server = Server::start();
    let phone = Device::new(&server);
    phone.signup(&email());
    phone.json(&["encryption", "on"]);
    put_plan(&phone);
    let credentials = phone.data_dir().join("credentials.json");
    let saved = std::fs::read(&credentials).unwrap();
    let mut secrets: serde_json::Map<String, Value> = serde_json::from_slice(&saved).unwrap();
    secrets.retain(|name, _| !name.contains("/db-key"));
    std::fs::write(&credentials, serde_json::to_vec(&secrets).unwrap()).unwrap();

    let database = std::fs::read_dir(phone.data_dir().join("users"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .expect("the account's database");
    let before = std::fs::read(&database).unwrap();
    assert_eq!(phone.error(&["status"], 1), "key_missing");
    assert_eq!(
        std::fs::read(&database).unwrap(),
        before,
        "the file is untouched"
    );

    std::fs::write(&credentials, saved).unwrap();
    assert_eq!(phone.json(&["get", "plans", "p1"])["doc"]["name"], VALUE);
}
