//! Spaces through the exported API against the real `tandem-server` binary (docs/design/spaces.md
//! §12): three users and two spaces — A owns S1 with B editing and C viewing; B owns S2 with A
//! editing. Edits flow both ways; a viewer's local write is refused and a demoted member's stale
//! push becomes a `Forbidden` dead letter; A, removed from S2 while offline with unsent edits,
//! loses S2's records except its edits, kept as refused changes; the spaces and invitations
//! observers follow every step; the public catalog is readable by all and written by none.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tandem::{
    Invitation, InvitationsObserver, Query, RecordState, Space, SpaceErrorKind, SpaceRole,
    SpacesObserver, SyncFailure, TandemError, ValidationReason, WriteOp,
};
use tandem_testkit::server::{email, TestServer, SECRET};

mod common;

use common::{block, device_with, Device};

const ADMIN: &str = "admin-token-for-ffi-spaces-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(10);

/// The real binary with an admin token (for the public catalog).
fn server() -> TestServer {
    TestServer::builder()
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .start()
}

/// A device signed up to a new account of its own; returns it with its email.
fn user(server: &TestServer) -> (Device, String) {
    let d = device_with(server.url(), |_| {});
    let account = email();
    d.sign_up(&account);
    (d, account)
}

/// Sends every list an observer gets down a channel.
struct Collect<T>(Mutex<Sender<Vec<T>>>);

impl<T> Collect<T> {
    fn new() -> (Arc<Self>, Receiver<Vec<T>>) {
        let (tx, rx) = channel();
        (Arc::new(Self(Mutex::new(tx))), rx)
    }
}

impl SpacesObserver for Collect<Space> {
    fn on_spaces(&self, spaces: Vec<Space>) {
        let _ = self.0.lock().unwrap().send(spaces);
    }
}

impl InvitationsObserver for Collect<Invitation> {
    fn on_invitations(&self, invitations: Vec<Invitation>) {
        let _ = self.0.lock().unwrap().send(invitations);
    }
}

/// Waits for a delivery that satisfies `ok`, skipping others.
fn until<T>(rx: &Receiver<Vec<T>>, what: &str, ok: impl Fn(&[T]) -> bool) -> Vec<T> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(items) if ok(&items) => return items,
            Ok(_) => continue,
            Err(_) => panic!("no delivery {what} within {WAIT:?}"),
        }
    }
}

fn validation_reason(error: TandemError) -> ValidationReason {
    match error {
        TandemError::Validation { reason, .. } => reason,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn space_kind(error: TandemError) -> SpaceErrorKind {
    match error {
        TandemError::Space { kind, .. } => kind,
        other => panic!("expected a space error, got {other:?}"),
    }
}

fn doc(d: &Device, collection: &str, id: &str) -> Option<Value> {
    d.doc(collection, id)
}

impl Device {
    fn put_in(&self, space: &str, collection: &str, id: &str, doc: Value) -> tandem::Record {
        self.t
            .put_in_space(
                space.into(),
                collection.into(),
                Some(id.into()),
                doc.to_string(),
            )
            .unwrap()
    }

    fn user_id(&self) -> String {
        self.t.current_user().unwrap().unwrap().id
    }

    /// Accepts the one pending invitation to `space` (after a sync brought it).
    fn accept_to(&self, space: &str) -> Space {
        let invitation = self
            .t
            .invitations()
            .unwrap()
            .into_iter()
            .find(|i| i.space_id == space)
            .unwrap_or_else(|| panic!("no invitation to {space}"));
        block(self.t.accept(invitation.id)).unwrap()
    }

    fn in_space(&self, collection: &str, space: &str) -> Vec<String> {
        let query = Query {
            space_id: Some(space.into()),
            ..Query::default()
        };
        let mut ids: Vec<String> = self
            .t
            .query(collection.into(), query)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    }
}

#[test]
fn three_users_two_spaces_end_to_end() {
    let server = server();
    let (a, _a_email) = user(&server);
    let (b, b_email) = user(&server);
    let (c, c_email) = user(&server);

    // Observers from the start: the current (empty) lists first.
    let (a_spaces_seen, a_spaces) = Collect::<Space>::new();
    let _a_spaces = a.t.observe_spaces(a_spaces_seen).unwrap();
    until(&a_spaces, "of A's first spaces", |s| s.is_empty());
    let (b_invites_seen, b_invites) = Collect::<Invitation>::new();
    let _b_invites = b.t.observe_invitations(b_invites_seen).unwrap();
    until(&b_invites, "of B's first invitations", |i| i.is_empty());

    // A creates S1 and invites B (editor) and C (viewer); B creates S2 and invites A (editor).
    let s1 = block(a.t.create_space("Family".into())).unwrap();
    assert_eq!((s1.role, s1.member_count), (SpaceRole::Owner, 1));
    until(&a_spaces, "of S1", |s| s.iter().any(|x| x.id == s1.id));
    let sent = block(a.t.invite(s1.id.clone(), b_email.clone(), SpaceRole::Editor)).unwrap();
    assert_eq!(sent.role, SpaceRole::Editor);
    block(a.t.invite(s1.id.clone(), c_email.clone(), SpaceRole::Viewer)).unwrap();
    let s2 = block(b.t.create_space("Coach".into())).unwrap();
    block(b.t.invite(s2.id.clone(), _a_email.clone(), SpaceRole::Editor)).unwrap();

    // Only the owner manages: an editor cannot invite; the last owner cannot leave.
    let refused = block(b.t.invite(s1.id.clone(), "x@example.com".into(), SpaceRole::Viewer));
    assert_eq!(
        refused.map(drop).map_err(space_kind),
        Err(SpaceErrorKind::NotFound),
        "B is no member of S1 yet: the space looks like one that does not exist"
    );
    assert_eq!(
        block(a.t.leave(s1.id.clone())).map_err(space_kind),
        Err(SpaceErrorKind::LastOwner)
    );

    // The invitations arrive with a sync; the observer sees them; accepting joins.
    b.sync();
    let invited = until(&b_invites, "of B's invitation", |i| !i.is_empty());
    assert_eq!(invited[0].space_id, s1.id);
    assert_eq!(invited[0].role, SpaceRole::Editor);
    assert_eq!(invited[0].space_name, "Family");
    assert_eq!(b.accept_to(&s1.id).role, SpaceRole::Editor);
    until(&b_invites, "of B's answered invitation", |i| i.is_empty());
    c.sync();
    assert_eq!(c.accept_to(&s1.id).role, SpaceRole::Viewer);
    a.sync();
    assert_eq!(a.accept_to(&s2.id).role, SpaceRole::Editor);
    assert_eq!(
        block(b.t.invite(s1.id.clone(), _a_email.clone(), SpaceRole::Viewer))
            .map(drop)
            .map_err(space_kind),
        Err(SpaceErrorKind::Forbidden),
        "an editor may not invite"
    );
    let members = block(a.t.members(s1.id.clone())).unwrap();
    assert_eq!(members.len(), 3);
    assert!(members
        .iter()
        .any(|m| m.email == c_email && m.role == SpaceRole::Viewer));

    // Edits flow both ways in S1; a child goes to its parent's space without naming it.
    let project = a.put_in(&s1.id, "team_projects", "p1", json!({"name": "Garden"}));
    assert_eq!(project.space_id.as_deref(), Some(s1.id.as_str()));
    a.sync();
    b.sync();
    assert_eq!(doc(&b, "team_projects", "p1").unwrap()["name"], "Garden");
    assert_eq!(
        b.record("team_projects", "p1").space_id,
        Some(s1.id.clone())
    );
    b.write(vec![WriteOp::Put {
        collection: "team_tasks".into(),
        id: Some("t1".into()),
        json: json!({"projectId": "p1", "title": "Dig"}).to_string(),
        space_id: None,
    }]);
    assert_eq!(b.record("team_tasks", "t1").space_id, Some(s1.id.clone()));
    b.patch("team_projects", "p1", json!({"archived": false}));
    b.sync();
    a.sync();
    assert_eq!(doc(&a, "team_tasks", "t1").unwrap()["title"], "Dig");
    assert_eq!(doc(&a, "team_projects", "p1").unwrap()["archived"], false);
    c.sync();
    assert_eq!(c.in_space("team_tasks", &s1.id), ["t1"]);

    // The write rules, before anything is written: a viewer, a space collection without a
    // space, a space for a user collection, a space this device does not know.
    let viewer = c.t.put_in_space(
        s1.id.clone(),
        "team_projects".into(),
        None,
        json!({"name": "No"}).to_string(),
    );
    assert_eq!(
        viewer.map(drop).map_err(validation_reason),
        Err(ValidationReason::Forbidden)
    );
    let no_space = a.t.put(
        "team_projects".into(),
        None,
        json!({"name": "No"}).to_string(),
    );
    assert_eq!(
        no_space.map(drop).map_err(validation_reason),
        Err(ValidationReason::SpaceMismatch)
    );
    let user_collection = a.t.put_in_space(
        s1.id.clone(),
        "plans".into(),
        None,
        json!({"name": "No"}).to_string(),
    );
    assert_eq!(
        user_collection.map(drop).map_err(validation_reason),
        Err(ValidationReason::SpaceMismatch)
    );
    let unknown = c.t.put_in_space(
        s2.id.clone(),
        "team_projects".into(),
        None,
        json!({"name": "No"}).to_string(),
    );
    assert_eq!(
        unknown.map(drop).map_err(validation_reason),
        Err(ValidationReason::UnknownSpace)
    );
    assert_eq!(c.pending(), 0);

    // A stale role: C made editor writes; demoted again while C is offline, C's next write is
    // allowed here (its role is the last it saw) and refused by the server: a dead letter.
    let c_id = c.user_id();
    let member = block(a.t.set_role(s1.id.clone(), c_id.clone(), SpaceRole::Editor)).unwrap();
    assert_eq!(member.role, SpaceRole::Editor);
    c.sync();
    assert_eq!(c.t.spaces().unwrap()[0].role, SpaceRole::Editor);
    c.put_in(&s1.id, "team_projects", "p2", json!({"name": "Shed"}));
    c.sync();
    block(a.t.set_role(s1.id.clone(), c_id.clone(), SpaceRole::Viewer)).unwrap();
    c.patch("team_projects", "p2", json!({"name": "Shed 2"}));
    c.sync();
    let rejected = c.t.rejected().unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].reason, ValidationReason::Forbidden);
    assert_eq!(rejected[0].reason_code, "forbidden");
    assert_eq!(rejected[0].space_id, Some(s1.id.clone()));
    assert_eq!(c.t.spaces().unwrap()[0].role, SpaceRole::Viewer);
    a.sync();
    assert_eq!(doc(&a, "team_projects", "p2").unwrap()["name"], "Shed");

    // S2: B's records reach A; then A, offline, edits one and creates another while B removes
    // A. A's next sync: the unsent changes are refused and kept, everything else of S2 goes.
    b.put_in(&s2.id, "team_projects", "q1", json!({"name": "Legs"}));
    b.put_in(&s2.id, "team_projects", "q2", json!({"name": "Arms"}));
    b.sync();
    a.sync();
    assert_eq!(a.in_space("team_projects", &s2.id), ["q1", "q2"]);
    a.patch("team_projects", "q1", json!({"name": "Legs (A)"}));
    a.put_in(&s2.id, "team_projects", "q3", json!({"name": "Core"}));
    let a_id = a.user_id();
    block(b.t.remove_member(s2.id.clone(), a_id)).unwrap();
    a.sync();
    until(&a_spaces, "of S2 gone from A", |s| {
        s.len() == 1 && s[0].id == s1.id
    });
    assert!(
        a.get("team_projects", "q2").is_none(),
        "an untouched record of S2 leaves"
    );
    for id in ["q1", "q3"] {
        let kept = a.record("team_projects", id);
        assert_eq!(kept.state, RecordState::Rejected, "{id}");
        assert_eq!(kept.space_id, Some(s2.id.clone()));
    }
    assert_eq!(doc(&a, "team_projects", "q1").unwrap()["name"], "Legs (A)");
    let mut kept: Vec<_> =
        a.t.rejected()
            .unwrap()
            .into_iter()
            .filter(|r| r.space_id.as_deref() == Some(s2.id.as_str()))
            .map(|r| (r.id, r.reason))
            .collect();
    kept.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        kept,
        [
            ("q1".to_string(), ValidationReason::Forbidden),
            ("q3".to_string(), ValidationReason::Forbidden)
        ]
    );
    // Discarding such a change drops the record: there is no server state to go back to.
    let q3 =
        a.t.rejected()
            .unwrap()
            .into_iter()
            .find(|r| r.id == "q3")
            .unwrap();
    a.t.discard_rejected(q3.op_id).unwrap();
    assert!(a.get("team_projects", "q3").is_none());
    // S1 is untouched on A.
    assert_eq!(a.in_space("team_projects", &s1.id), ["p1", "p2"]);
    b.sync();
    assert_eq!(doc(&b, "team_projects", "q1").unwrap()["name"], "Legs");

    // The public catalog: every user reads it, nobody writes it here.
    let admin = server.client();
    block(admin.admin_write(
        Some(ADMIN),
        json!([{"collection": "catalog", "id": "squat", "doc": {"name": "Squat"}}]),
    ))
    .assert_ok();
    for d in [&a, &b, &c] {
        d.sync();
        assert_eq!(doc(d, "catalog", "squat").unwrap()["name"], "Squat");
        assert_eq!(d.record("catalog", "squat").space_id, None);
    }
    let read_only = c.t.put(
        "catalog".into(),
        Some("squat".into()),
        json!({"name": "Mine"}).to_string(),
    );
    assert_eq!(
        read_only.map(drop).map_err(validation_reason),
        Err(ValidationReason::ReadOnly)
    );
    let read_only = c.t.delete("catalog".into(), "squat".into());
    assert_eq!(
        read_only.map_err(validation_reason),
        Err(ValidationReason::ReadOnly)
    );

    // Deleting S1 (owner): every member's copy goes at their next sync.
    block(a.t.delete_space(s1.id.clone())).unwrap();
    assert!(a.in_space("team_projects", &s1.id).is_empty());
    b.sync();
    assert!(b.t.spaces().unwrap().iter().all(|s| s.id != s1.id));
    assert!(b.get("team_projects", "p1").is_none());
}

#[test]
fn space_calls_need_the_server_and_a_session() {
    let server = server();
    // Signed out: no session.
    let guest = device_with(server.url(), |_| {});
    match block(guest.t.create_space("Solo".into())) {
        Err(TandemError::Auth { .. })
        | Err(TandemError::Sync {
            kind: SyncFailure::NotSignedIn,
            ..
        }) => {}
        other => panic!("expected a missing session, got {other:?}"),
    }
    assert!(guest.t.spaces().unwrap().is_empty());
    // A name out of bounds.
    let (d, _) = user(&server);
    assert_eq!(
        block(d.t.create_space(String::new()))
            .map(drop)
            .map_err(space_kind),
        Err(SpaceErrorKind::InvalidName)
    );
    // Offline: the server is gone; the local lists still answer.
    let space = block(d.t.create_space("Kept".into())).unwrap();
    drop(server);
    match block(d.t.rename_space(space.id.clone(), "Gone".into())) {
        Err(TandemError::Sync {
            kind: SyncFailure::Offline,
            ..
        }) => {}
        other => panic!("expected Offline, got {other:?}"),
    }
    assert_eq!(d.t.spaces().unwrap()[0].name, "Kept");
    // Records go into a known space offline.
    d.put_in(&space.id, "team_projects", "x", json!({"name": "Offline"}));
    assert_eq!(d.pending(), 1);
}
