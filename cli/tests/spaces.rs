//! `tandem space …` end to end: three data directories (an owner, an editor, a viewer) against a
//! real server (`tandem_server::run` in this process, the sample schema's `shared_plans`), the
//! `--json` shapes of spaces, members and invitations, and the error codes of refused calls.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";
/// A space id no one has.
const NO_SPACE: &str = "0195c3aa-0000-7000-8000-000000000000";

struct Server {
    url: String,
    handle: Option<tandem_server::ServerHandle>,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = tandem_server::Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            db: format!("sqlite://{}", dir.path().join("server.db").display()),
            ..tandem_server::Config::default()
        };
        let handle = rt.block_on(tandem_server::run(config)).unwrap();
        Self {
            url: handle.url(),
            handle: Some(handle),
            rt,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.rt.block_on(handle.shutdown()).unwrap();
        }
    }
}

fn email(who: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cli-spaces-{who}-{}-{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One data directory against the server, signed up to an account of its own.
struct Device {
    dir: tempfile::TempDir,
    server: String,
    email: String,
}

impl Device {
    fn signed_up(server: &Server, who: &str) -> Self {
        let device = Self {
            dir: tempfile::tempdir().unwrap(),
            server: server.url.clone(),
            email: email(who),
        };
        let mut command = device.command(&["--json", "signup", &device.email]);
        command.env("TANDEM_PASSWORD", PASSWORD);
        let output = command.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        device
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
        for var in [
            "TANDEM_DATA_DIR",
            "TANDEM_SERVER",
            "TANDEM_SCHEMA",
            "TANDEM_PASSWORD",
        ] {
            command.env_remove(var);
        }
        command
            .stdin(Stdio::null())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--server", &self.server])
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running tandem")
    }

    /// `--json ARGS`, which must succeed: its JSON value.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "tandem {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// `--json ARGS`, which must fail with exit status `status`: the error's code.
    fn error(&self, args: &[&str], status: i32) -> String {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert_eq!(
            output.status.code(),
            Some(status),
            "tandem {args:?}: {output:?}"
        );
        assert!(output.stdout.is_empty(), "errors print nothing on stdout");
        let error: Value = serde_json::from_slice(&output.stderr).unwrap();
        assert!(error["error"]["message"].as_str().is_some(), "{error}");
        error["error"]["code"].as_str().unwrap().to_string()
    }

    /// The text output of ARGS, which must succeed.
    fn text(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    fn write(&self, lines: &str) -> Output {
        let mut child = self
            .command(&["--json", "write", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn ids(records: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn space_commands_end_to_end() {
    let server = Server::start();
    let owner = Device::signed_up(&server, "owner");
    let editor = Device::signed_up(&server, "editor");
    let viewer = Device::signed_up(&server, "viewer");

    // Create: the space as the API has it.
    let space = owner.json(&["space", "create", "Legs"]);
    assert_eq!(
        keys(&space),
        ["createdAt", "id", "memberCount", "name", "role"]
    );
    assert_eq!(space["name"], "Legs");
    assert_eq!(space["role"], "owner");
    assert_eq!(space["memberCount"], 1);
    let id = space["id"].as_str().unwrap().to_string();
    assert_eq!(owner.json(&["space", "list"]), json!([space]));
    assert!(owner
        .text(&["space", "list"])
        .contains("\"Legs\"  owner  1 member"));

    // Invite (editor by default, viewer by flag); again for a member: already_member.
    let sent = owner.json(&["space", "invite", &id, &editor.email]);
    assert_eq!(
        keys(&sent),
        ["createdAt", "email", "expiresAt", "id", "role", "spaceId"]
    );
    assert_eq!(sent["role"], "editor");
    assert_eq!(sent["email"], editor.email.as_str());
    owner.json(&["space", "invite", &id, &viewer.email, "--role", "viewer"]);

    // The invitations come with a sync; accept joins.
    assert_eq!(editor.json(&["space", "invitations"]), json!([]));
    editor.json(&["sync"]);
    let invitations = editor.json(&["space", "invitations"]);
    let invitation = &invitations[0];
    assert_eq!(
        keys(invitation),
        [
            "createdAt",
            "expiresAt",
            "id",
            "invitedBy",
            "role",
            "spaceId",
            "spaceName"
        ]
    );
    assert_eq!(invitation["spaceName"], "Legs");
    assert_eq!(invitation["invitedBy"], owner.email.as_str());
    assert_eq!(editor.json(&["status"])["invitations"], 1);
    assert!(editor
        .text(&["status"])
        .contains("spaces: 0, invitations waiting: 1"));
    let joined = editor.json(&["space", "accept", invitation["id"].as_str().unwrap()]);
    assert_eq!(
        (joined["id"].as_str(), joined["role"].as_str()),
        (Some(id.as_str()), Some("editor"))
    );
    assert_eq!(editor.json(&["status"])["spaces"], 1);
    viewer.json(&["sync"]);
    let invitation = viewer.json(&["space", "invitations"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        viewer.json(&["space", "accept", &invitation])["role"],
        "viewer"
    );
    assert_eq!(
        viewer.error(&["space", "accept", &invitation], 1),
        "not_found"
    );

    // Members, by any member.
    let members = viewer.json(&["space", "members", &id]);
    assert_eq!(members.as_array().unwrap().len(), 3);
    assert_eq!(keys(&members[0]), ["email", "joinedAt", "role", "userId"]);

    // Records in the space: put --space, list --space, a write batch naming the space for a new
    // plan and none for a child (its parent's).
    let plan = owner.json(&[
        "put",
        "shared_plans",
        r#"{"name":"Legs day"}"#,
        "--id",
        "p1",
        "--space",
        &id,
    ]);
    assert_eq!(plan["space"], id.as_str());
    owner.json(&["sync"]);
    editor.json(&["sync"]);
    assert_eq!(
        ids(&editor.json(&["list", "shared_plans", "--space", &id])),
        ["p1"]
    );
    assert_eq!(
        ids(&editor.json(&["list", "shared_plans", "--space", NO_SPACE])),
        Vec::<&str>::new()
    );
    let batch = format!(
        "{}\n{}\n",
        json!({"op": "put", "collection": "shared_plans", "id": "p2", "space": id, "doc": {"name": "Arms"}}),
        json!({"op": "put", "collection": "shared_plan_days", "id": "d1", "doc": {"planId": "p1", "dayIndex": 0}}),
    );
    let output = editor.write(&batch);
    assert!(output.status.success(), "{output:?}");
    let written: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(written["written"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["space"] == id.as_str()));
    // "space" belongs on puts only.
    let output = editor.write(&format!(
        "{}\n",
        json!({"op": "delete", "collection": "shared_plans", "id": "p2", "space": id})
    ));
    assert_eq!(output.status.code(), Some(1));
    editor.json(&["sync"]);
    owner.json(&["sync"]);
    assert_eq!(ids(&owner.json(&["list", "shared_plans"])), ["p1", "p2"]);
    assert_eq!(
        owner.json(&["get", "shared_plan_days", "d1"])["space"],
        id.as_str()
    );

    // Refusals, each with its code.
    assert_eq!(
        viewer.error(
            &["put", "shared_plans", r#"{"name":"No"}"#, "--space", &id],
            1
        ),
        "validation",
        "a viewer's write is refused here"
    );
    assert_eq!(
        owner.error(&["put", "shared_plans", r#"{"name":"No"}"#], 1),
        "validation",
        "a space collection needs --space"
    );
    assert_eq!(
        owner.error(&["put", "catalog_exercises", r#"{"name":"Squat"}"#], 1),
        "validation",
        "public collections are read-only"
    );
    assert_eq!(
        editor.error(&["space", "invite", &id, "x@example.com"], 1),
        "forbidden"
    );
    assert_eq!(
        editor.error(&["space", "members", NO_SPACE], 1),
        "not_found"
    );
    assert_eq!(owner.error(&["space", "leave", &id], 1), "last_owner");
    assert_eq!(
        owner.error(&["space", "invite", &id, &editor.email], 1),
        "already_member"
    );
    assert_eq!(owner.error(&["space", "create", ""], 1), "invalid_name");
    assert_eq!(
        owner.error(&["space", "role", &id, "nobody@example.com", "editor"], 1),
        "not_found"
    );
    assert_eq!(
        owner.error(
            &["space", "invite", &id, "x@example.com", "--role", "admin"],
            2
        ),
        "usage"
    );

    // Roles by email; removal; leaving.
    let promoted = owner.json(&["space", "role", &id, &viewer.email, "editor"]);
    assert_eq!(promoted["role"], "editor");
    assert_eq!(promoted["email"], viewer.email.as_str());
    let editor_id = editor.json(&["whoami"])["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let removed = owner.json(&["space", "remove", &id, &editor.email]);
    assert_eq!(
        removed,
        json!({"removed": {"spaceId": id, "userId": editor_id}})
    );
    editor.json(&["sync"]);
    assert_eq!(editor.json(&["space", "list"]), json!([]));
    assert_eq!(editor.json(&["list", "shared_plans"]), json!([]));
    assert_eq!(viewer.json(&["space", "leave", &id]), json!({"left": id}));
    assert_eq!(viewer.json(&["list", "shared_plans"]), json!([]));

    // Delete asks first; without a terminal it needs --yes.
    assert_eq!(owner.error(&["space", "delete", &id], 2), "usage");
    assert_eq!(
        owner.json(&["space", "delete", &id, "--yes"]),
        json!({"deleted": id})
    );
    assert_eq!(owner.json(&["space", "list"]), json!([]));
    assert_eq!(owner.json(&["list", "shared_plans"]), json!([]));
    assert_eq!(owner.error(&["space", "members", &id], 1), "not_found");
}

#[test]
fn space_calls_offline_and_signed_out() {
    let server = Server::start();
    let device = Device::signed_up(&server, "solo");
    let url = server.url.clone();
    drop(server);
    assert_eq!(device.error(&["space", "create", "Solo"], 1), "offline");
    // The local lists answer offline.
    assert_eq!(device.json(&["space", "list"]), json!([]));
    assert_eq!(device.json(&["space", "invitations"]), json!([]));

    let guest = Device {
        dir: tempfile::tempdir().unwrap(),
        server: url,
        email: String::new(),
    };
    assert_eq!(
        guest.error(&["space", "create", "Solo"], 1),
        "not_signed_in"
    );
}
