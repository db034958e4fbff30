//! Spaces end to end through `tandem_core::Client` against the real `tandem-server` binary:
//! space calls applied locally at once, records flowing through a space's stream both ways, the
//! local write rules, a viewer's stale push dead-lettered, and a removal while offline keeping
//! the removed member's unsent edits as `forbidden` dead letters.
//!
//! Run: `cargo test -p tandem-core --test spaces`.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tandem_core::auth::MemorySecretStore;
use tandem_core::http::HttpConfig;
use tandem_core::{
    runtime, Client, ClientConfig, EntryState, Error, Query, RecordState, SpaceErrorKind,
    SpaceRole, SyncOptions, ValidationReason, WriteOp,
};
use tandem_testkit::server::{email, TestServer};
use tandem_testkit::TEST_SCHEMA;
use tempfile::TempDir;

const PASSWORD: &str = "correct horse battery";

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime::runtime().block_on(future)
}

/// Observers are called on the notification thread: waits (up to 5 s) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

struct Device {
    client: Client,
    email: String,
    user_id: String,
    _dir: TempDir,
}

fn device(server: &TestServer) -> Device {
    let dir = TempDir::new().unwrap();
    let client = Client::open(ClientConfig {
        data_dir: dir.path().to_path_buf(),
        schema_json: TEST_SCHEMA.to_string(),
        server: Some(HttpConfig::new(server.url())),
        sync: SyncOptions::default(),
        secret_store: Some(Arc::new(MemorySecretStore::new())),
        resolver: None,
        attachment_cache_bytes: tandem_core::defaults::ATTACHMENT_CACHE_BYTES,
        encryption: tandem_core::Encryption::Off,
    })
    .unwrap();
    let address = email();
    let user = block_on(client.sign_up(&address, PASSWORD)).unwrap();
    Device {
        client,
        email: address,
        user_id: user.id,
        _dir: dir,
    }
}

fn put(collection: &str, id: &str, doc: Value, space: Option<&str>) -> WriteOp {
    WriteOp::Put {
        collection: collection.into(),
        id: Some(id.into()),
        doc,
        space_id: space.map(str::to_string),
    }
}

impl Device {
    fn sync(&self) {
        block_on(self.client.sync_now()).unwrap();
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<(), Error> {
        self.client.write(ops).map(drop)
    }

    fn doc(&self, collection: &str, id: &str) -> Option<Value> {
        let row = self.client.get(collection, id).unwrap()?;
        Some(serde_json::from_str(row.doc.as_deref()?).unwrap())
    }

    fn refused(&self, ops: Vec<WriteOp>) -> ValidationReason {
        match self.write(ops) {
            Err(Error::Validation(v)) => v.reason,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    /// Accepts the one invitation to `space` this device's last sync brought.
    fn accept_invitation_to(&self, space: &str) {
        let invitation = self
            .client
            .invitations()
            .unwrap()
            .into_iter()
            .find(|i| i.space_id == space)
            .expect("the invitation arrived with the sync");
        let joined = block_on(self.client.accept(&invitation.id)).unwrap();
        assert_eq!(joined.id, space);
        assert!(self.client.invitations().unwrap().is_empty());
        assert!(self.client.spaces().unwrap().iter().any(|s| s.id == space));
    }
}

#[test]
fn a_space_shared_by_an_owner_an_editor_and_a_viewer() {
    let server = TestServer::start();
    let (a, b, c) = (device(&server), device(&server), device(&server));

    // A's spaces observer sees the created space at once, without a sync.
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let _observer = a.client.observe_spaces(Box::new(move |spaces| {
        sink.lock()
            .unwrap()
            .push(spaces.into_iter().map(|s| s.name).collect());
    }));
    // The first call (no spaces yet) comes from the notifier's thread: the space is created once
    // it came, or on a loaded machine the first call could already see it.
    eventually("the spaces observer's first call", || {
        !seen.lock().unwrap().is_empty()
    });
    let team = block_on(a.client.create_space("Team")).unwrap();
    assert_eq!(team.role, SpaceRole::Owner);
    assert_eq!(a.client.spaces().unwrap(), vec![team.clone()]);
    let s = team.id.as_str();

    block_on(a.client.invite(s, &b.email, SpaceRole::Editor)).unwrap();
    block_on(a.client.invite(s, &c.email, SpaceRole::Viewer)).unwrap();
    b.sync();
    c.sync();
    b.accept_invitation_to(s);
    c.accept_invitation_to(s);
    let members = block_on(a.client.members(s)).unwrap();
    assert_eq!(members.len(), 3);

    // A writes a project and a task in the space; the task inherits the project's space.
    a.write(vec![
        put("team_projects", "p1", json!({"name": "Launch"}), Some(s)),
        put(
            "team_tasks",
            "t1",
            json!({"projectId": "p1", "title": "Plan"}),
            None,
        ),
    ])
    .unwrap();
    assert_eq!(
        a.client
            .get("team_tasks", "t1")
            .unwrap()
            .unwrap()
            .space_id
            .as_deref(),
        Some(s)
    );
    // Writes outside the rules never reach the outbox.
    assert_eq!(
        a.refused(vec![put("team_projects", "p2", json!({"name": "x"}), None)]),
        ValidationReason::SpaceMismatch
    );
    assert_eq!(
        a.refused(vec![put(
            "team_projects",
            "p2",
            json!({"name": "x"}),
            Some("nope")
        )]),
        ValidationReason::UnknownSpace
    );
    assert_eq!(
        a.refused(vec![put("catalog", "c1", json!({"name": "x"}), None)]),
        ValidationReason::ReadOnly
    );
    a.sync();

    b.sync();
    c.sync();
    assert_eq!(
        b.doc("team_tasks", "t1"),
        Some(json!({"projectId": "p1", "title": "Plan"}))
    );
    let only_team = Query {
        space_id: Some(s.to_string()),
        ..Query::default()
    };
    assert_eq!(
        c.client.query("team_projects", &only_team).unwrap().len(),
        1
    );

    // The editor's change flows back; the viewer's is refused locally.
    b.write(vec![WriteOp::Patch {
        collection: "team_tasks".into(),
        id: "t1".into(),
        patch: json!({"title": "Plan it"}),
    }])
    .unwrap();
    b.sync();
    a.sync();
    assert_eq!(a.doc("team_tasks", "t1").unwrap()["title"], "Plan it");
    assert_eq!(
        c.refused(vec![WriteOp::Patch {
            collection: "team_tasks".into(),
            id: "t1".into(),
            patch: json!({"title": "mine"}),
        }]),
        ValidationReason::Forbidden
    );

    // A management call the role does not allow is a typed error.
    match block_on(b.client.invite(s, &email(), SpaceRole::Viewer)) {
        Err(Error::Space { kind, .. }) => assert_eq!(kind, SpaceErrorKind::Forbidden),
        other => panic!("an editor invited: {other:?}"),
    }
    // The last owner cannot leave.
    match block_on(a.client.leave(s)) {
        Err(Error::Space { kind, .. }) => assert_eq!(kind, SpaceErrorKind::LastOwner),
        other => panic!("the last owner left: {other:?}"),
    }

    // B edits while A removes B: B's push is refused `forbidden`, the pull says `gone`, and B
    // keeps only the edit, as a dead letter.
    b.write(vec![WriteOp::Patch {
        collection: "team_projects".into(),
        id: "p1".into(),
        patch: json!({"name": "Mine"}),
    }])
    .unwrap();
    block_on(a.client.remove_member(s, &b.user_id)).unwrap();
    b.sync();
    assert!(b.client.spaces().unwrap().is_empty());
    assert!(b.client.get("team_tasks", "t1").unwrap().is_none());
    let kept = b.client.get("team_projects", "p1").unwrap().unwrap();
    assert_eq!(kept.state, RecordState::Rejected);
    let letters = b.client.rejected().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].state, EntryState::Rejected);
    assert_eq!(letters[0].last_error.as_deref(), Some("forbidden"));
    b.client.discard_rejected(&letters[0].op_id).unwrap();
    assert!(b.client.get("team_projects", "p1").unwrap().is_none());

    // The viewer leaves: its copy of the space goes at once.
    block_on(c.client.leave(s)).unwrap();
    assert!(c.client.spaces().unwrap().is_empty());
    assert!(c
        .client
        .query("team_projects", &Query::default())
        .unwrap()
        .is_empty());

    // The owner deletes the space; A's records of it go.
    block_on(a.client.delete_space(s)).unwrap();
    assert!(a
        .client
        .query("team_tasks", &Query::default())
        .unwrap()
        .is_empty());
    a.sync();
    eventually("the spaces observer saw the space go", || {
        seen.lock().unwrap().last() == Some(&Vec::new())
    });
    let names = seen.lock().unwrap().clone();
    assert_eq!(names.first(), Some(&Vec::<String>::new()), "{names:?}");
    assert!(names.contains(&vec!["Team".to_string()]), "{names:?}");
    assert_eq!(names.last(), Some(&Vec::<String>::new()), "{names:?}");
}

#[test]
fn create_space_retried_after_a_lost_answer_returns_the_same_space() {
    let server = TestServer::start();
    let proxy = tandem_testkit::proxy::Proxy::start(server.url());
    let dir = TempDir::new().unwrap();
    let client = Client::open(ClientConfig {
        data_dir: dir.path().to_path_buf(),
        schema_json: TEST_SCHEMA.to_string(),
        server: Some(HttpConfig::new(proxy.url())),
        sync: SyncOptions::default(),
        secret_store: Some(Arc::new(MemorySecretStore::new())),
        resolver: None,
        attachment_cache_bytes: tandem_core::defaults::ATTACHMENT_CACHE_BYTES,
        encryption: tandem_core::Encryption::Off,
    })
    .unwrap();
    block_on(client.sign_up(&email(), PASSWORD)).unwrap();
    // The server creates the space, the answer is lost; the retry with the same request id
    // gets that space back.
    proxy.fail_next(
        "/sync/v1/spaces",
        tandem_testkit::proxy::Fault::DropResponse,
    );
    let space = block_on(client.create_space("Once")).unwrap();
    let listed = block_on(client.refresh_spaces()).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, space.id);
}

#[test]
fn public_collections_arrive_by_pull_and_stay_read_only() {
    const ADMIN: &str = "admin-token-for-core-tests-0123456789";
    let server = TestServer::builder()
        .env(&[
            ("TANDEM_JWT_SECRET", tandem_testkit::server::SECRET),
            ("TANDEM_ADMIN_TOKEN", ADMIN),
        ])
        .start();
    let admin = server.client();
    let write = |writes: Value| {
        block_on(admin.admin_write(Some(ADMIN), writes)).assert_ok();
    };
    write(json!([
        {"collection": "catalog", "id": "c1", "doc": {"name": "Squat"}},
        {"collection": "catalog_items", "id": "i1", "doc": {"catalogId": "c1", "label": "Bar"}},
    ]));
    let d = device(&server);
    d.sync();
    assert_eq!(d.doc("catalog", "c1"), Some(json!({"name": "Squat"})));
    assert_eq!(d.doc("catalog_items", "i1").unwrap()["label"], "Bar");
    assert_eq!(
        d.client.get("catalog", "c1").unwrap().unwrap().space_id,
        None
    );
    assert_eq!(
        d.refused(vec![WriteOp::Patch {
            collection: "catalog".into(),
            id: "c1".into(),
            patch: json!({"name": "mine"}),
        }]),
        ValidationReason::ReadOnly
    );
    assert_eq!(
        d.refused(vec![put(
            "catalog_items",
            "i2",
            json!({"catalogId": "c1", "label": "x"}),
            None
        )]),
        ValidationReason::ReadOnly
    );
    // The admin's later changes reach the device with its next pull; a delete cascades.
    write(json!([{"collection": "catalog", "id": "c1", "doc": {"name": "Front squat"}}]));
    d.sync();
    assert_eq!(d.doc("catalog", "c1"), Some(json!({"name": "Front squat"})));
    write(json!([{"collection": "catalog", "id": "c1", "doc": null}]));
    d.sync();
    assert_eq!(d.doc("catalog", "c1"), None);
    assert_eq!(d.doc("catalog_items", "i1"), None);
    assert_eq!(d.client.pending_count().unwrap(), 0);
}

#[test]
fn a_role_lowered_while_offline_turns_the_edit_into_a_dead_letter() {
    let server = TestServer::start();
    let (a, b) = (device(&server), device(&server));
    let seen: Arc<Mutex<Vec<usize>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let _invitations = b
        .client
        .observe_invitations(Box::new(move |list| sink.lock().unwrap().push(list.len())));
    let space = block_on(a.client.create_space("Plans")).unwrap();
    let s = space.id.as_str();
    block_on(a.client.invite(s, &b.email, SpaceRole::Editor)).unwrap();
    b.sync();
    b.accept_invitation_to(s);
    a.write(vec![put(
        "team_projects",
        "p",
        json!({"name": "P"}),
        Some(s),
    )])
    .unwrap();
    a.sync();
    b.sync();

    // B edits as an editor while offline; A makes B a viewer meanwhile.
    b.write(vec![WriteOp::Patch {
        collection: "team_projects".into(),
        id: "p".into(),
        patch: json!({"name": "B's"}),
    }])
    .unwrap();
    let member = block_on(a.client.set_role(s, &b.user_id, SpaceRole::Viewer)).unwrap();
    assert_eq!(member.role, SpaceRole::Viewer);
    b.sync();
    // The server refused the edit; B's pull brought the new role; the space stays.
    let letters = b.client.rejected().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].last_error.as_deref(), Some("forbidden"));
    assert_eq!(b.client.spaces().unwrap()[0].role, SpaceRole::Viewer);
    assert_eq!(a.doc("team_projects", "p"), Some(json!({"name": "P"})));
    // Discarding it goes back to the server's state (B still reads the space).
    b.client.discard_rejected(&letters[0].op_id).unwrap();
    assert_eq!(b.doc("team_projects", "p"), Some(json!({"name": "P"})));
    // The invitations observer saw the invitation come and go.
    eventually("the invitations observer saw the invitation go", || {
        seen.lock().unwrap().len() >= 3 && seen.lock().unwrap().last() == Some(&0)
    });
    let counts = seen.lock().unwrap().clone();
    assert_eq!(counts.first(), Some(&0), "{counts:?}");
    assert!(counts.contains(&1), "{counts:?}");
    assert_eq!(counts.last(), Some(&0), "{counts:?}");
}
