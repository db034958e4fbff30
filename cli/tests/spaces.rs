//! `tandem space …` end to end: three data directories (an owner, an editor, a viewer) against a
//! real server (`tandem_server::run` in this process, the sample schema's `shared_plans`), the
//! `--json` shapes of spaces, members and invitations, and the error codes of refused calls.

use std::process::{Output, Stdio};

use serde_json::{json, Value};

mod common;
use common::*;

/// A space id no one has.
const NO_SPACE: &str = "0195c3aa-0000-7000-8000-000000000000";

/// A device signed up to an account of its own.
struct Member {
    device: Device,
    email: String,
}

impl Member {
    fn signed_up(server: &Server) -> Self {
        let device = Device::new(server);
        let email = email();
        device.signup(&email);
        Self { device, email }
    }
}

impl std::ops::Deref for Member {
    type Target = Device;

    fn deref(&self) -> &Device {
        &self.device
    }
}

impl Device {
    /// The text output of ARGS, which must succeed.
    fn text(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// `--json write -` with `lines` on standard input.
    fn write(&self, lines: &str) -> Output {
        run_with_stdin(
            self.command(&["--json", "write", "-"])
                .stdin(Stdio::piped()),
            lines,
        )
    }
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
    let owner = Member::signed_up(&server);
    let editor = Member::signed_up(&server);
    let viewer = Member::signed_up(&server);

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

    // A second space, the editor's, with the former owner as its viewer: roles are per space
    // (and a space may be named by its name).
    let coach = editor.json(&["space", "create", "Coach"]);
    let coach_id = coach["id"].as_str().unwrap().to_string();
    editor.json(&["space", "invite", "Coach", &owner.email, "--role", "viewer"]);
    owner.json(&["sync"]);
    let invitation = owner.json(&["space", "invitations"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        owner.json(&["space", "accept", &invitation])["role"],
        "viewer"
    );
    editor.json(&[
        "put",
        "shared_plans",
        r#"{"name":"Intervals"}"#,
        "--id",
        "c1",
        "--space",
        "Coach",
    ]);
    editor.json(&["sync"]);
    owner.json(&["sync"]);
    assert_eq!(
        ids(&owner.json(&["list", "shared_plans", "--space", &coach_id])),
        ["c1"]
    );
    assert_eq!(
        owner.error(
            &[
                "put",
                "shared_plans",
                r#"{"name":"No"}"#,
                "--space",
                "Coach"
            ],
            1
        ),
        "validation",
        "the owner of the first space is a viewer of the second"
    );
}

#[test]
fn space_calls_offline_and_signed_out() {
    let server = Server::start();
    let device = Member::signed_up(&server);
    let url = server.url.clone();
    drop(server);
    assert_eq!(device.error(&["space", "create", "Solo"], 1), "offline");
    // The local lists answer offline.
    assert_eq!(device.json(&["space", "list"]), json!([]));
    assert_eq!(device.json(&["space", "invitations"]), json!([]));

    let guest = Device {
        dir: tempfile::tempdir().unwrap(),
        server: url,
    };
    assert_eq!(
        guest.error(&["space", "create", "Solo"], 1),
        "not_signed_in"
    );
}
