//! The `tandem` binary against a real server (`tandem_server::run` on a temporary SQLite
//! database and a free port, in this test process): every command, the `--json` shapes, exit
//! statuses, where passwords may and may not appear, `watch` and the demo.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::*;

/// A phone that signed up and a tablet signed in to the same new account.
fn two_devices(server: &Server) -> (Device, Device, String) {
    let (phone, tablet) = (Device::new(server), Device::new(server));
    let email = email();
    phone.signup(&email);
    tablet.login(&email);
    (phone, tablet, email)
}

/// [`two_devices`], both holding plan `p1` ("Legs"), synced.
fn two_devices_holding_a_plan(server: &Server) -> (Device, Device) {
    let (phone, tablet, _) = two_devices(server);
    phone.put_plan("p1", "Legs");
    phone.json(&["sync"]);
    tablet.json(&["sync"]);
    (phone, tablet)
}

/// The phone renames plan `p1` "Phone legs", then the tablet "Tablet legs"; neither syncs.
fn rename_the_plan_on_both(phone: &Device, tablet: &Device) {
    phone.json(&["patch", "plans", "p1", r#"{"name":"Phone legs"}"#]);
    tablet.json(&["patch", "plans", "p1", r#"{"name":"Tablet legs"}"#]);
}

const RECORD_KEYS: [&str; 6] = ["collection", "doc", "id", "state", "updatedAt", "version"];

#[test]
fn accounts_sign_up_log_in_and_out() {
    let server = Server::start();
    let phone = Device::new(&server);
    let email = email();

    let signed_up = phone.signup(&email);
    assert_eq!(signed_up["user"]["email"], email.as_str());
    assert_eq!(signed_up["server"], server.url.as_str());
    let whoami = phone.json(&["whoami"]);
    assert_eq!(whoami["user"]["email"], email.as_str());
    assert_eq!(whoami["user"]["id"], signed_up["user"]["id"]);
    assert_eq!(whoami["sessionExpired"], false);

    // The server is remembered for the data directory: no --server needed any more.
    let mut command = tandem();
    command
        .arg("--data-dir")
        .arg(phone.data_dir())
        .args(["--json", "whoami"]);
    let remembered = stdout_json(&run(command));
    assert_eq!(remembered["server"], server.url.as_str());

    assert_eq!(
        phone.error(&["signup", &email], 2),
        "usage",
        "no password source"
    );
    let mut again = phone.command(&["--json", "signup", &email]);
    again.env("TANDEM_PASSWORD", PASSWORD);
    let output = run(again);
    assert_eq!(output.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(error["error"]["code"], "user_exists");

    phone.put_plan("kept", "Kept across logout");
    assert_eq!(
        phone.json(&["logout"]),
        json!({ "signedOut": true, "wiped": false })
    );
    assert_eq!(phone.json(&["whoami"])["user"], Value::Null);
    let tablet = Device::new(&server);
    let mut wrong = tablet.command(&["--json", "login", &email]);
    wrong.env("TANDEM_PASSWORD", "not the password");
    let output = run(wrong);
    assert_eq!(output.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(error["error"]["code"], "invalid_credentials");

    phone.login(&email);
    assert_eq!(
        phone.json(&["get", "plans", "kept"])["doc"]["name"],
        "Kept across logout"
    );
    phone.json(&["logout", "--wipe"]);
    phone.login(&email);
    assert_eq!(
        phone.error(&["get", "plans", "kept"], 1),
        "not_found",
        "--wipe deleted the unsynced record"
    );
}

impl Device {
    fn put_plan(&self, id: &str, name: &str) -> Value {
        self.json(&[
            "put",
            "plans",
            &json!({ "name": name }).to_string(),
            "--id",
            id,
        ])
    }
}

#[test]
fn the_password_never_shows_in_arguments_output_or_files() {
    let server = Server::start();
    let phone = Device::new(&server);
    let email = email();
    let mut outputs = Vec::new();

    let mut signup = phone.command(&["signup", &email]);
    signup.env("TANDEM_PASSWORD", PASSWORD);
    outputs.push(run(signup));

    // While `login --password-stdin` waits for its input, its arguments hold no password.
    let mut login = phone.command(&["login", &email, "--password-stdin"]);
    let mut child = login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let arguments = process_arguments(&child, &login);
    assert!(arguments.contains(&email), "{arguments}");
    assert!(!arguments.contains(PASSWORD));
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{PASSWORD}").unwrap();
    drop(stdin);
    outputs.push(child.wait_with_output().unwrap());

    for args in [
        &["whoami"][..],
        &["status"],
        &["sync"],
        &["outbox"],
        &["--json", "whoami"],
        &["--json", "status"],
    ] {
        outputs.push(phone.run(args));
    }
    let mut wrong = phone.command(&["--json", "login", &email]);
    wrong.env("TANDEM_PASSWORD", format!("{PASSWORD}!"));
    outputs.push(run(wrong));
    for output in &outputs {
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!text.contains(PASSWORD), "the password was printed: {text}");
        }
    }
    assert!(outputs[..outputs.len() - 1]
        .iter()
        .all(|o| o.status.success()));

    // There is no flag to pass it as an argument.
    let output = phone.run(&["login", &email, "--password", PASSWORD]);
    assert_eq!(output.status.code(), Some(2));

    for file in files_under(phone.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            file.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(phone.data_dir().join("credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "tokens are readable by their owner only");
    }
}

/// The command line of a running `tandem` process, as every user of the machine can read it
/// (Linux; elsewhere the arguments the test gave it).
fn process_arguments(child: &Child, given: &Command) -> String {
    let path = format!("/proc/{}/cmdline", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match std::fs::read(&path) {
            // Until the child has exec'd, its command line is still this test's.
            Ok(bytes) if String::from_utf8_lossy(&bytes).contains("login") => {
                return String::from_utf8_lossy(&bytes).replace('\0', " ");
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break,
        }
    }
    given
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn records_are_written_read_listed_and_deleted_with_their_children() {
    let server = Server::start();
    let phone = Device::new(&server);

    let plan = phone.put_plan("p1", "Legs");
    assert_eq!(keys(&plan), RECORD_KEYS);
    assert_eq!(plan["collection"], "plans");
    assert_eq!(plan["id"], "p1");
    assert_eq!(plan["doc"], json!({ "name": "Legs" }));
    assert_eq!(plan["version"], 0);
    assert_eq!(plan["state"], "pending");
    let updated_at = plan["updatedAt"].as_str().unwrap();
    assert!(
        updated_at.ends_with('Z') && updated_at.len() == 24,
        "{updated_at}"
    );

    let generated = phone.json(&["put", "exercises", r#"{"name":"Squat"}"#]);
    assert_eq!(generated["id"].as_str().unwrap().len(), 36, "a UUID");
    for (id, index) in [("d2", 2), ("d1", 1), ("d3", 3)] {
        let day = json!({ "planId": "p1", "dayIndex": index, "title": format!("Day {index}") });
        phone.json(&["put", "plan_days", &day.to_string(), "--id", id]);
    }
    let patched = phone.json(&["patch", "plans", "p1", r#"{"notes":"Slow"}"#]);
    assert_eq!(patched["doc"], json!({ "name": "Legs", "notes": "Slow" }));
    assert_eq!(phone.json(&["get", "plans", "p1"]), patched);

    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = phone.json(&[
        "list",
        "plan_days",
        "--where",
        r#"planId="p1""#,
        "--order",
        "dayIndex",
    ]);
    assert_eq!(ids(&all), ["d1", "d2", "d3"]);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|r| keys(r) == RECORD_KEYS));
    let top = phone.json(&[
        "list",
        "plan_days",
        "--order",
        "dayIndex:desc",
        "--limit",
        "2",
    ]);
    assert_eq!(ids(&top), ["d3", "d2"]);
    let one = phone.json(&["list", "plan_days", "--where", "dayIndex=2"]);
    assert_eq!(ids(&one), ["d2"]);
    assert_eq!(
        phone.json(&["list", "plans", "--where", "archived=true"]),
        json!([])
    );

    let text = phone.run(&["list", "plan_days", "--order", "dayIndex"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.starts_with("plan_days/d1  v0 pending  {"), "{text}");

    assert_eq!(
        phone.json(&["delete", "plans", "p1"]),
        json!({ "deleted": { "collection": "plans", "id": "p1" } })
    );
    assert_eq!(
        phone.json(&["list", "plan_days"]),
        json!([]),
        "the days went with the plan"
    );
    assert_eq!(phone.error(&["get", "plans", "p1"], 1), "not_found");
}

#[test]
fn bad_input_is_refused_with_a_typed_error_and_nothing_stored_changes() {
    let server = Server::start();
    let phone = Device::new(&server);
    phone.put_plan("p1", "Legs");
    let before = phone.json(&["list", "plans"]);

    assert_eq!(
        phone.error(&["put", "plans", "{not json"], 1),
        "invalid_argument"
    );
    assert_eq!(
        phone.error(&["put", "plans", r#"{"name":5}"#], 1),
        "validation"
    );
    assert_eq!(
        phone.error(&["put", "plans", r#"{"notes":"no name"}"#], 1),
        "validation"
    );
    assert_eq!(
        phone.error(
            &["put", "plan_days", r#"{"planId":"missing","dayIndex":1}"#],
            1
        ),
        "validation",
        "a child of a plan that does not exist"
    );
    assert_eq!(
        phone.error(&["patch", "plans", "p1", r#"{"name":null}"#], 1),
        "validation"
    );
    assert_eq!(
        phone.error(&["patch", "plans", "nope", "{}"], 1),
        "not_found"
    );
    assert_eq!(phone.error(&["put", "nothing", "{}"], 1), "validation");
    assert_eq!(
        phone.error(&["list", "plans", "--where", "name=Legs"], 2),
        "usage"
    );
    assert_eq!(
        phone.error(&["list", "plans", "--order", "name:up"], 2),
        "usage"
    );
    assert_eq!(
        phone.error(&["list", "plans", "--limit", "many"], 2),
        "usage"
    );
    assert_eq!(phone.error(&["frobnicate"], 2), "usage");
    assert_eq!(
        phone.error(&["resolve", "plans", "p1", "keep-both"], 2),
        "usage"
    );
    assert_eq!(
        phone.error(&["discard", "no-such-op"], 1),
        "invalid_argument"
    );

    let output = phone.run(&["put", "plans", "{not json"]);
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8(output.stderr).unwrap();
    assert!(
        message.starts_with("tandem: invalid argument: the document is not valid JSON"),
        "{message}"
    );
    let output = phone.run(&["list"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a missing argument is a usage error"
    );

    assert_eq!(phone.json(&["list", "plans"]), before);
    assert_eq!(phone.json(&["outbox"]).as_array().unwrap().len(), 1);
}

#[test]
fn two_devices_sync_through_the_server() {
    let server = Server::start();
    let (phone, tablet, email) = two_devices(&server);

    phone.put_plan("p1", "Legs");
    let outbox = phone.json(&["outbox"]);
    let entry = &outbox[0];
    assert_eq!(
        keys(entry),
        [
            "attempts",
            "baseVersion",
            "collection",
            "createdAt",
            "doc",
            "id",
            "kind",
            "lastError",
            "opId",
            "state"
        ]
    );
    assert_eq!(entry["kind"], "upsert");
    assert_eq!(entry["doc"], json!({ "name": "Legs" }));
    assert_eq!(entry["baseVersion"], Value::Null);
    let status = phone.json(&["status"]);
    assert_eq!(status["pending"], 1);
    assert_eq!(status["user"]["email"], email.as_str());

    let report = phone.json(&["sync"]);
    assert_eq!(
        keys(&report),
        [
            "applied",
            "conflicts",
            "duplicates",
            "durationMs",
            "fullRepull",
            "outcomes",
            "parked",
            "pulled",
            "pushed",
            "rejected"
        ]
    );
    assert_eq!(
        (report["pushed"].as_u64(), report["applied"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["fullRepull"], false);
    assert_eq!(report["parked"], json!([]));
    assert_eq!(report["outcomes"][0]["outcome"], "applied");
    assert_eq!(report["outcomes"][0]["id"], "p1");
    assert_eq!(phone.json(&["outbox"]), json!([]));
    let status = phone.json(&["status"]);
    assert_eq!(
        keys(&status),
        [
            "attachments",
            "conflictPolicy",
            "conflicts",
            "encryption",
            "invitations",
            "lastError",
            "lastRun",
            "lastSyncedAt",
            "pending",
            "phase",
            "pulled",
            "realtime",
            "rejected",
            "remaining",
            "server",
            "spaces",
            "user"
        ]
    );
    assert_eq!(
        (status["pending"].as_u64(), status["phase"].as_str()),
        (Some(0), Some("idle"))
    );

    let pulled = tablet.json(&["sync"]);
    assert_eq!(pulled["pulled"], 1);
    let plan = tablet.json(&["get", "plans", "p1"]);
    assert_eq!(
        (plan["version"].as_u64(), plan["state"].as_str()),
        (Some(1), Some("synced"))
    );

    let text = String::from_utf8(tablet.run(&["sync"]).stdout).unwrap();
    assert!(text.starts_with("pushed 0 (applied 0"), "{text}");
}

#[test]
fn a_device_killed_between_the_servers_commit_and_its_apply_finishes_on_the_next_sync() {
    let server = Server::start();
    let phone = Device::new(&server);
    let email = email();
    phone.signup(&email);
    phone.put_plan("p1", "Legs");
    phone.put_plan("p2", "Arms");

    let mut command = phone.command(&["--json", "sync", "--push-batch", "1"]);
    command.env("TANDEM_CRASH_POINT", "push_answered");
    let crashed = run(command);
    assert!(!crashed.status.success(), "{crashed:?}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(crashed.status.signal(), Some(6), "aborted: {crashed:?}");
    }
    // The server has p1; the device never applied the answer, so both changes still wait.
    assert_eq!(phone.json(&["outbox"]).as_array().unwrap().len(), 2);

    let report = phone.json(&["sync", "--push-batch", "1", "--pull-page", "1"]);
    let outcomes: Vec<(&str, &str)> = report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("p1", "duplicate"), ("p2", "applied")]);
    assert_eq!(
        (report["duplicates"].as_u64(), report["applied"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(phone.json(&["outbox"]), json!([]));

    let tablet = Device::new(&server);
    tablet.login(&email);
    let pulled = tablet.json(&["sync", "--pull-page", "1"]);
    assert_eq!(pulled["pulled"], 2);
    assert_eq!(tablet.json(&["list", "plans"]).as_array().unwrap().len(), 2);
}

#[test]
fn a_device_killed_between_pull_pages_resumes_from_the_last_applied_page() {
    let server = Server::start();
    let (phone, tablet, _) = two_devices(&server);
    for (id, name) in [("p1", "Legs"), ("p2", "Arms"), ("p3", "Core")] {
        phone.put_plan(id, name);
    }
    assert_eq!(phone.json(&["sync"])["applied"], 3);

    let mut command = tablet.command(&["--json", "sync", "--pull-page", "1"]);
    command.env("TANDEM_CRASH_POINT", "pull_between_pages");
    let crashed = run(command);
    assert!(!crashed.status.success(), "{crashed:?}");
    // The first page and its cursor were committed before the process died.
    assert_eq!(tablet.json(&["list", "plans"]).as_array().unwrap().len(), 1);

    let report = tablet.json(&["sync", "--pull-page", "1"]);
    assert_eq!(report["pulled"], 2, "{report}");
    assert_eq!(report["fullRepull"], false);
    assert_eq!(tablet.json(&["list", "plans"]).as_array().unwrap().len(), 3);

    for bad in ["0", "-1", "many"] {
        assert_eq!(tablet.error(&["sync", "--push-batch", bad], 2), "usage");
        assert_eq!(tablet.error(&["sync", "--pull-page", bad], 2), "usage");
    }
}

#[test]
fn sync_fails_offline_and_keeps_the_changes() {
    let mut server = Server::start();
    let phone = Device::new(&server);
    phone.signup(&email());
    phone.put_plan("p1", "Legs");
    server.stop();
    assert_eq!(phone.error(&["sync"], 1), "offline");
    assert_eq!(phone.json(&["outbox"]).as_array().unwrap().len(), 1);
    assert_eq!(phone.json(&["get", "plans", "p1"])["state"], "pending");

    let guest = Device::new(&server);
    assert_eq!(guest.error(&["sync"], 1), "not_signed_in");
}

#[test]
fn conflicts_are_listed_and_resolved() {
    let server = Server::start();
    let (phone, tablet) = two_devices_holding_a_plan(&server);

    rename_the_plan_on_both(&phone, &tablet);
    phone.json(&["sync"]);
    assert_eq!(tablet.json(&["sync"])["conflicts"], 1);

    let conflicts = tablet.json(&["conflicts"]);
    let conflict = &conflicts[0];
    assert_eq!(
        keys(conflict),
        [
            "base",
            "collection",
            "fields",
            "id",
            "local",
            "reason",
            "server",
            "serverVersion"
        ]
    );
    assert_eq!(conflict["reason"], "both_changed");
    assert_eq!(conflict["fields"], json!(["name"]));
    assert_eq!(conflict["local"]["name"], "Tablet legs");
    assert_eq!(conflict["server"]["name"], "Phone legs");
    assert_eq!(conflict["base"]["name"], "Legs");
    let text = String::from_utf8(tablet.run(&["conflicts"]).stdout).unwrap();
    assert!(
        text.contains(r#"name: mine "Tablet legs"  |  server "Phone legs""#),
        "{text}"
    );
    assert_eq!(tablet.json(&["get", "plans", "p1"])["state"], "conflicted");

    let resolved = tablet.json(&["resolve", "plans", "p1", "keep-server"]);
    assert_eq!(resolved["record"]["doc"]["name"], "Phone legs");
    assert_eq!(tablet.json(&["conflicts"]), json!([]));
    assert_eq!(
        tablet.error(&["resolve", "plans", "p1", "keep-mine"], 1),
        "invalid_argument",
        "no open conflict any more"
    );
    tablet.json(&["sync"]);
    assert_eq!(tablet.json(&["get", "plans", "p1"])["state"], "synced");
}

#[test]
fn refused_changes_are_listed_and_discarded() {
    // The device's schema lets a plan's name be longer than the server's allows, so the server
    // refuses what the device accepted.
    let dir = tempfile::tempdir().unwrap();
    let mut lenient: Value = serde_json::from_str(tandem_server::config::SAMPLE_SCHEMA).unwrap();
    lenient["collections"]["plans"]["fields"]["name"]["maxLength"] = json!(10_000);
    let schema = dir.path().join("lenient.json");
    std::fs::write(&schema, lenient.to_string()).unwrap();

    let server = Server::start();
    let phone = Device::new(&server);
    phone.signup(&email());
    let long_name = "x".repeat(300);
    phone.json(&[
        "--schema",
        schema.to_str().unwrap(),
        "put",
        "plans",
        &json!({ "name": long_name }).to_string(),
        "--id",
        "long",
    ]);
    let report = phone.json(&["--schema", schema.to_str().unwrap(), "sync"]);
    assert_eq!(report["rejected"], 1);

    let rejected = phone.json(&["--schema", schema.to_str().unwrap(), "rejected"]);
    let change = &rejected[0];
    assert_eq!(
        keys(change),
        [
            "collection",
            "createdAt",
            "doc",
            "id",
            "kind",
            "opId",
            "reason"
        ]
    );
    assert_eq!(
        (change["collection"].as_str(), change["id"].as_str()),
        (Some("plans"), Some("long"))
    );
    assert!(!change["reason"].as_str().unwrap().is_empty());
    let op_id = change["opId"].as_str().unwrap();
    assert_eq!(
        phone.json(&["--schema", schema.to_str().unwrap(), "discard", op_id]),
        json!({ "discarded": op_id })
    );
    assert_eq!(
        phone.json(&["--schema", schema.to_str().unwrap(), "rejected"]),
        json!([])
    );
    assert_eq!(
        phone.error(
            &["--schema", schema.to_str().unwrap(), "get", "plans", "long"],
            1
        ),
        "not_found",
        "the server never had it, so discarding removes it"
    );
}

#[test]
fn watch_prints_status_and_records_as_they_change_until_interrupted() {
    let server = Server::start();
    let (phone, tablet, _) = two_devices(&server);

    let mut watch = tablet
        .command(&["--json", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, events) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next_event = |what: &str, matches: &dyn Fn(&Value) -> bool| -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("watch never printed {what}"));
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if matches(&event) {
                return event;
            }
        }
    };
    next_event("a connected status", &|e| {
        e["event"] == "status" && e["status"]["realtime"] == true
    });

    phone.put_plan("live", "Realtime");
    phone.json(&["sync"]);
    let added = next_event("the phone's plan", &|e| e["event"] == "record");
    assert_eq!(added["change"], "added");
    assert_eq!(added["record"]["id"], "live");
    assert_eq!(added["record"]["doc"]["name"], "Realtime");
    assert_eq!(keys(&added["record"]), RECORD_KEYS);

    phone.json(&["delete", "plans", "live"]);
    phone.json(&["sync"]);
    let removed = next_event("the delete", &|e| e["event"] == "record");
    assert_eq!(
        (removed["change"].as_str(), removed["id"].as_str()),
        (Some("removed"), Some("live"))
    );

    let interrupt = Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "watch did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_demo_tells_its_story_and_exits_0_in_well_under_a_minute() {
    let started = Instant::now();
    let output = run({
        let mut command = tandem();
        command.args(["--json", "demo"]);
        command
    });
    assert!(output.status.success(), "{output:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let summary = stdout_json(&output);
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8, "{summary}");
    for step in steps {
        assert_eq!(keys(step), ["details", "ms", "title"]);
    }
    let titles: Vec<&str> = steps.iter().map(|s| s["title"].as_str().unwrap()).collect();
    for part in [
        "offline",
        "merge",
        "conflict",
        "days go with it",
        "Realtime",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(part)),
            "{part}: {titles:?}"
        );
    }
    assert_eq!(summary["kept"], false);

    let output = run({
        let mut command = tandem();
        command.arg("demo");
        command
    });
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("8. Realtime"), "{text}");
    assert!(text.contains("Done in "), "{text}");
}

#[test]
fn revert_drops_a_records_unsent_change_after_confirmation() {
    let server = Server::start();
    let phone = Device::new(&server);
    phone.signup(&email());
    phone.put_plan("p1", "Legs");
    phone.json(&["sync"]);
    phone.json(&["patch", "plans", "p1", r#"{"name": "Arms"}"#]);

    // Not a terminal and no --yes: a usage error, and nothing changes.
    assert_eq!(phone.error(&["revert", "plans", "p1"], 2), "usage");
    assert_eq!(phone.json(&["get", "plans", "p1"])["doc"]["name"], "Arms");

    // On a terminal it asks: anything but yes keeps the change; yes reverts.
    if has_script() {
        assert!(!phone
            .revert_on_terminal("plans", "p1", "n\n")
            .status
            .success());
        assert_eq!(phone.json(&["get", "plans", "p1"])["doc"]["name"], "Arms");
        let asked = phone.revert_on_terminal("plans", "p1", "y\n");
        assert!(asked.status.success(), "{asked:?}");
        assert!(String::from_utf8_lossy(&asked.stdout).contains("[y/N]"));
    } else {
        eprintln!("skipped the terminal part: no `script` (util-linux) here");
        phone.json(&["revert", "plans", "p1", "--yes"]);
    }
    let record = phone.json(&["get", "plans", "p1"]);
    assert_eq!(
        (record["doc"].clone(), record["state"].as_str()),
        (json!({ "name": "Legs" }), Some("synced"))
    );

    // --yes: no question. A record the server never had disappears.
    phone.put_plan("p2", "New");
    let reverted = phone.json(&["revert", "plans", "p2", "--yes"]);
    assert_eq!(reverted, json!({ "reverted": true, "record": null }));
    assert_eq!(phone.error(&["get", "plans", "p2"], 1), "not_found");
    assert_eq!(phone.json(&["outbox"]), json!([]));
    // Nothing left to revert: nothing to confirm either, and nothing changes.
    let again = phone.json(&["revert", "plans", "p1"]);
    assert_eq!(again["reverted"], false);
    assert_eq!(again["record"]["doc"], json!({ "name": "Legs" }));
    assert_eq!(
        phone.error(&["revert", "plans", "nope", "--yes"], 1),
        "not_found"
    );
    let report = phone.json(&["sync"]);
    assert_eq!(
        report["pushed"], 0,
        "the server never heard of the dropped changes"
    );
}

/// Whether util-linux's `script` (a pseudo-terminal for a command) is here.
fn has_script() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Device {
    /// `tandem revert COLLECTION ID` with a terminal as standard input (through `script`), typing
    /// `answer` at the question. Its output is the terminal's (the question and the reply).
    fn revert_on_terminal(&self, collection: &str, id: &str, answer: &str) -> Output {
        let line = format!(
            "{} --data-dir {} --server {} revert {collection} {id}",
            env!("CARGO_BIN_EXE_tandem"),
            self.data_dir().display(),
            self.server
        );
        let mut command = Command::new("script");
        command
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped());
        run_with_stdin(&mut command, answer)
    }
}

#[test]
fn documents_come_inline_from_stdin_or_from_a_file_up_to_the_document_limit() {
    let server = Server::start();
    let phone = Device::new(&server);
    // 200 KiB: over the 128 KiB Linux allows one argument, under the 256 KiB a document may be.
    let notes = "n".repeat(200 * 1024);
    let big = json!({ "name": "Big", "notes": notes }).to_string();
    let mut command = phone.command(&["--json", "put", "plans", "-", "--id", "big"]);
    let output = run_with_stdin(command.stdin(Stdio::piped()), &big);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout_json(&output)["doc"]["notes"].as_str().unwrap().len(),
        200 * 1024
    );

    let file = phone.data_dir().join("patch.json");
    std::fs::write(&file, json!({ "notes": "short" }).to_string()).unwrap();
    let at_file = format!("@{}", file.display());
    let patched = phone.json(&["patch", "plans", "big", &at_file]);
    assert_eq!(patched["doc"], json!({ "name": "Big", "notes": "short" }));
    let mut command = phone.command(&["--json", "patch", "plans", "big", "-"]);
    let output = run_with_stdin(command.stdin(Stdio::piped()), r#"{"archived": true}"#);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout_json(&output)["doc"]["archived"], true);
    // A put's whole document from a file; a document the schema refuses is refused as inline.
    let doc_file = phone.data_dir().join("plan.json");
    std::fs::write(&doc_file, r#"{"name": "From a file"}"#).unwrap();
    let put = phone.json(&[
        "put",
        "plans",
        &format!("@{}", doc_file.display()),
        "--id",
        "from-file",
    ]);
    assert_eq!(put["doc"], json!({ "name": "From a file" }));
    assert_eq!(phone.error(&["put", "plans", &at_file], 1), "validation");

    assert_eq!(phone.error(&["put", "plans", "@/no/such/file"], 1), "io");
    assert_eq!(
        phone.error(&["put", "plans", "@"], 2),
        "usage",
        "`@` without a file name"
    );
}

#[test]
fn write_applies_a_batch_of_json_lines_all_or_nothing() {
    let server = Server::start();
    let phone = Device::new(&server);
    phone.put_plan("old", "Old");
    let batch = [
        r#"{"op": "put", "collection": "plans", "id": "legs", "doc": {"name": "Legs"}}"#,
        "",
        r#"{"op": "put", "collection": "plan_days", "id": "d1", "doc": {"planId": "legs", "dayIndex": 1}}"#,
        r#"{"op": "patch", "collection": "plans", "id": "legs", "doc": {"notes": "Slow"}}"#,
        r#"{"op": "delete", "collection": "plans", "id": "old"}"#,
    ]
    .join("\n");
    let file = phone.data_dir().join("batch.jsonl");
    std::fs::write(&file, &batch).unwrap();
    let done = phone.json(&["write", file.to_str().unwrap()]);
    let written: Vec<&str> = done["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(written, ["legs", "d1", "legs"]);
    assert_eq!(
        done["deleted"],
        json!([{ "collection": "plans", "id": "old" }])
    );
    assert_eq!(
        phone.json(&["get", "plans", "legs"])["doc"],
        json!({ "name": "Legs", "notes": "Slow" })
    );
    assert_eq!(phone.error(&["get", "plans", "old"], 1), "not_found");

    // From standard input too.
    let mut command = phone.command(&["--json", "write", "-"]);
    let line = r#"{"op": "put", "collection": "exercises", "id": "e1", "doc": {"name": "Squat"}}"#;
    let output = run_with_stdin(command.stdin(Stdio::piped()), line);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        phone.json(&["get", "exercises", "e1"])["doc"]["name"],
        "Squat"
    );

    // A bad line anywhere: its line number and a typed code, and nothing of the batch written.
    let before = phone.json(&["outbox"]);
    let bad_batches = [
        ("not json", 2, "invalid_line"),
        (
            r#"{"op": "upsert", "collection": "plans", "id": "x", "doc": {}}"#,
            2,
            "invalid_line",
        ),
        (
            r#"{"op": "patch", "collection": "plans", "doc": {"name": "n"}}"#,
            2,
            "invalid_line",
        ),
        (
            r#"{"op": "delete", "collection": "plans", "id": "legs", "doc": {}}"#,
            2,
            "invalid_line",
        ),
        (
            r#"{"op": "put", "collection": "plans", "id": "x", "doc": {}, "extra": 1}"#,
            2,
            "invalid_line",
        ),
        (
            r#"{"op": "put", "collection": "plans", "id": "x", "doc": {"colour": "red"}}"#,
            2,
            "validation",
        ),
        (
            r#"{"op": "put", "collection": "nope", "id": "x", "doc": {}}"#,
            2,
            "validation",
        ),
        (
            r#"{"op": "patch", "collection": "plans", "id": "missing", "doc": {"name": "n"}}"#,
            2,
            "not_found",
        ),
        (
            r#"{"op": "put", "collection": "plan_days", "id": "x", "doc": {"planId": "nope", "dayIndex": 0}}"#,
            2,
            "validation",
        ),
    ];
    for (bad, line, code) in bad_batches {
        let text = format!(
            "{}\n{bad}\n{}",
            r#"{"op": "put", "collection": "plans", "id": "fresh", "doc": {"name": "F"}}"#,
            r#"{"op": "delete", "collection": "plans", "id": "legs"}"#
        );
        let mut command = phone.command(&["--json", "write", "-"]);
        let output = run_with_stdin(command.stdin(Stdio::piped()), &text);
        assert_eq!(output.status.code(), Some(1), "{bad}: {output:?}");
        let error: Value = serde_json::from_slice(&output.stderr).unwrap();
        assert_eq!(error["error"]["code"], code, "{bad}: {error}");
        assert_eq!(error["error"]["line"], line, "{bad}: {error}");
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("line {line}: ")));
    }
    // The line that fails after earlier lines of the batch: a day under a plan the batch
    // deleted, a patch of a record it deleted.
    for (bad, code) in [
        (
            r#"{"op": "put", "collection": "plan_days", "id": "x", "doc": {"planId": "fresh", "dayIndex": 0}}"#,
            "validation",
        ),
        (
            r#"{"op": "patch", "collection": "plans", "id": "fresh", "doc": {"notes": "n"}}"#,
            "not_found",
        ),
    ] {
        let text = [
            r#"{"op": "put", "collection": "plans", "id": "fresh", "doc": {"name": "F"}}"#,
            r#"{"op": "put", "collection": "plan_days", "id": "fd", "doc": {"planId": "fresh", "dayIndex": 0}}"#,
            r#"{"op": "delete", "collection": "plans", "id": "fresh"}"#,
            bad,
        ]
        .join("\n");
        let mut command = phone.command(&["--json", "write", "-"]);
        let output = run_with_stdin(command.stdin(Stdio::piped()), &text);
        assert_eq!(output.status.code(), Some(1), "{bad}: {output:?}");
        let error: Value = serde_json::from_slice(&output.stderr).unwrap();
        assert_eq!(error["error"]["code"], code, "{bad}: {error}");
        assert_eq!(error["error"]["line"], 4, "{bad}: {error}");
    }
    assert_eq!(
        phone.json(&["outbox"]),
        before,
        "nothing of a bad batch was written"
    );
    assert_eq!(phone.error(&["get", "plans", "fresh"], 1), "not_found");
    assert_eq!(phone.json(&["get", "plans", "legs"])["doc"]["name"], "Legs");
    assert_eq!(phone.error(&["write", "/no/such/file"], 1), "io");
}

#[test]
fn the_conflict_policy_is_kept_in_the_data_directory_and_shown_by_status() {
    let server = Server::start();
    let (phone, tablet, _) = two_devices(&server);
    assert_eq!(tablet.json(&["status"])["conflictPolicy"], "merge");

    // Chosen once, kept by every later command on the directory (the login's server too).
    let status = tablet.json(&["--conflict-policy", "server-wins", "status"]);
    assert_eq!(status["conflictPolicy"], "server-wins");
    assert_eq!(tablet.json(&["status"])["conflictPolicy"], "server-wins");
    let settings: Value =
        serde_json::from_slice(&std::fs::read(tablet.data_dir().join("cli.json")).unwrap())
            .unwrap();
    assert_eq!(settings["conflictPolicy"], "server-wins");
    assert_eq!(settings["server"], tablet.server.as_str());
    let text = String::from_utf8(tablet.run(&["status"]).stdout).unwrap();
    assert!(text.contains("conflict policy: server-wins"), "{text}");

    // And sync follows it: the same field changed on both sides goes the server's way, no
    // conflict left to settle.
    phone.put_plan("p1", "Legs");
    phone.json(&["sync"]);
    tablet.json(&["sync"]);
    rename_the_plan_on_both(&phone, &tablet);
    phone.json(&["sync"]);
    let report = tablet.json(&["sync"]);
    assert_eq!(report["parked"], json!([]));
    assert_eq!(tablet.json(&["conflicts"]), json!([]));
    assert_eq!(
        tablet.json(&["get", "plans", "p1"])["doc"]["name"],
        "Phone legs"
    );

    // manual leaves every conflict to the user; client-wins sends the local change again.
    tablet.json(&[
        "--conflict-policy",
        "manual",
        "patch",
        "plans",
        "p1",
        r#"{"notes":"t"}"#,
    ]);
    phone.json(&["patch", "plans", "p1", r#"{"archived":true}"#]);
    phone.json(&["sync"]);
    assert_eq!(
        tablet.json(&["sync"])["parked"].as_array().unwrap().len(),
        1
    );
    tablet.json(&["resolve", "plans", "p1", "keep-mine"]);
    tablet.json(&["--conflict-policy", "client-wins", "sync"]);
    assert_eq!(tablet.json(&["status"])["conflictPolicy"], "client-wins");

    assert_eq!(
        tablet.error(&["--conflict-policy", "newest", "status"], 2),
        "usage"
    );
    std::fs::write(
        tablet.data_dir().join("cli.json"),
        r#"{"conflictPolicy": "bogus"}"#,
    )
    .unwrap();
    assert_eq!(tablet.error(&["status"], 1), "invalid_config");
}

#[test]
fn last_write_wins_settles_a_conflict_by_the_later_edit_with_no_one_asked() {
    let server = Server::start();
    let (phone, tablet) = two_devices_holding_a_plan(&server);
    let status = tablet.json(&["--conflict-policy", "last-write-wins", "status"]);
    assert_eq!(status["conflictPolicy"], "last-write-wins");

    // The phone's edit is made first, the tablet's later: the later one wins on both devices,
    // whichever reaches the server first.
    rename_the_plan_on_both(&phone, &tablet);
    phone.json(&["sync"]);
    let report = tablet.json(&["sync"]);
    assert_eq!(report["parked"], json!([]));
    assert_eq!(tablet.json(&["conflicts"]), json!([]));
    phone.json(&["sync"]);
    for device in [&phone, &tablet] {
        assert_eq!(
            device.json(&["get", "plans", "p1"])["doc"]["name"],
            "Tablet legs"
        );
    }
}

#[test]
fn status_in_a_new_process_shows_how_the_last_sync_went() {
    let mut server = Server::start();
    let phone = Device::new(&server);
    phone.signup(&email());
    phone.put_plan("p1", "Legs");
    assert_eq!(
        phone.json(&["status"])["lastRun"],
        Value::Null,
        "no run yet"
    );
    phone.json(&["sync"]);
    let ok = phone.json(&["status"]);
    assert_eq!(ok["lastRun"]["outcome"], "ok");
    assert_eq!(ok["lastRun"]["error"], Value::Null);
    assert_eq!(ok["lastRun"]["at"], ok["lastSyncedAt"]);

    // A failed sync in one process; `status` in the next shows it, typed, and no secret.
    phone.put_plan("p2", "Arms");
    server.stop();
    assert_eq!(phone.error(&["sync"], 1), "offline");
    let failed = phone.json(&["status"]);
    assert_eq!(failed["phase"], "offline");
    assert_eq!(failed["lastRun"]["outcome"], "failed");
    assert_eq!(failed["lastRun"]["error"]["code"], "offline");
    let message = failed["lastRun"]["error"]["message"].as_str().unwrap();
    assert_eq!(Some(message), failed["lastError"].as_str());
    assert!(failed["lastRun"]["at"].as_str().unwrap() >= ok["lastRun"]["at"].as_str().unwrap());
    assert_eq!(
        failed["lastSyncedAt"], ok["lastSyncedAt"],
        "the last success stays"
    );
    let text = String::from_utf8(phone.run(&["status"]).stdout).unwrap();
    assert!(text.contains("error (offline): "), "{text}");
    assert!(text.contains("last run failed"), "{text}");
    let credentials = std::fs::read_to_string(phone.data_dir().join("credentials.json")).unwrap();
    let tokens: Value = serde_json::from_str(&credentials).unwrap();
    let secrets: Vec<String> = tokens
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .filter(|v| v.len() > 40)
        .collect();
    assert!(!secrets.is_empty(), "the session's tokens are in the file");
    for secret in secrets.iter().chain([&PASSWORD.to_string()]) {
        assert!(
            !failed.to_string().contains(secret.as_str()),
            "a secret in status"
        );
        assert!(!text.contains(secret.as_str()), "a secret in status");
    }
}
