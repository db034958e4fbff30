//! Nothing is lost across a runtime pause (issue 16): engines syncing through the real
//! `tandem-server` binary while an operator pauses and resumes sync with the admin API
//! (`POST /admin/v1/pause`, `/resume`), globally and for one user. The paused device's runs
//! fail typed (`SyncFailure::Paused`, the phase `Paused`, the server's `Retry-After`), its outbox
//! keeps every change, and the first run after the resume lands them all; another user's
//! devices keep syncing through a per-user pause. On PostgreSQL (`TANDEM_TEST_POSTGRES_URL`),
//! the pause and the resume go through a second instance of the server the devices do not talk
//! to.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tandem::{SyncFailure, SyncPhase, TandemError};

use tandem_testkit::db::{Backend, TestDb};
use tandem_testkit::server::{email, TestServer, JWT_SECRET};

mod common;

use common::{block, device, pair, put_op, Device};

const ADMIN: &str = "admin-token-for-the-pause-tests-0123456789";

/// A server with the admin API on.
fn admin_server() -> TestServer {
    admin_server_on(None)
}

/// [`admin_server`] on the database `db` (a fresh SQLite file when `None`).
fn admin_server_on(db: Option<&TestDb>) -> TestServer {
    let builder = match db {
        Some(db) => TestServer::builder().db(db),
        None => TestServer::builder(),
    };
    builder
        .env(&[
            ("TANDEM_JWT_SECRET", JWT_SECRET),
            ("TANDEM_ADMIN_TOKEN", ADMIN),
        ])
        .start()
}

/// `POST /admin/v1/{action}` with the admin token; must answer 200.
fn admin_post(server: &TestServer, action: &str, body: Value) -> Value {
    let c = server.client();
    let reply = block(c.post(&format!("/admin/v1/{action}"), Some(ADMIN), &body));
    reply.assert_ok().clone()
}

impl Device {
    /// Every live record of the collections the tests write, as (collection, id, document).
    fn all(&self) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for collection in ["exercises", "plans", "plan_days"] {
            for r in self
                .t
                .query(collection.into(), tandem::Query::default())
                .unwrap()
            {
                all.push((
                    r.collection,
                    r.id,
                    serde_json::from_str(&r.document).unwrap(),
                ));
            }
        }
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    /// Syncs once; the run must fail as paused by the server; returns its `Retry-After`.
    fn sync_paused(&self) -> Option<u64> {
        match self.try_sync() {
            Err(TandemError::Sync {
                kind: SyncFailure::Paused,
                retry_after_secs,
                ..
            }) => {
                let status = self.t.sync_status().unwrap();
                assert_eq!(status.phase, SyncPhase::Paused);
                assert_eq!(status.last_failure, Some(SyncFailure::Paused));
                let said = status.last_error.unwrap_or_default();
                assert!(said.contains("the server paused sync"), "{said}");
                retry_after_secs
            }
            other => panic!("expected a paused run, got {other:?}"),
        }
    }

    /// Syncs until a run is paused (a pause written through another instance reaches this
    /// device's within a second or so); nothing is pending meanwhile, so the runs change nothing.
    fn sync_until_paused(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.try_sync() {
                Err(TandemError::Sync {
                    kind: SyncFailure::Paused,
                    ..
                }) => return,
                Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("the pause did not arrive: {other:?}"),
            }
        }
    }

    /// Syncs until a run succeeds (the resume reaching this device's instance); returns it.
    fn sync_until_resumed(&self) -> tandem::SyncReport {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.try_sync() {
                Ok(report) => return report,
                Err(TandemError::Sync {
                    kind: SyncFailure::Paused,
                    ..
                }) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("the resume did not arrive: {other:?}"),
            }
        }
    }
}

/// Several kinds of change: puts, a patch, a delete, a batch.
fn write_while_paused(d: &Device) {
    d.put("plans", "p2", json!({"name": "written while paused"}));
    d.patch("plans", "p1", json!({"name": "renamed while paused"}));
    d.delete("exercises", "e1");
    d.write(vec![
        put_op("exercises", "e2", json!({"name": "Deadlift"})),
        put_op("exercises", "e3", json!({"name": "Row"})),
    ]);
    for i in 0..5 {
        d.put(
            "exercises",
            &format!("x{i}"),
            json!({"name": format!("Set {i}")}),
        );
    }
}

#[test]
fn nothing_is_lost_across_a_runtime_pause_and_resume() {
    let server = admin_server();
    nothing_lost(&server, &server);
}

#[test]
fn nothing_is_lost_when_another_instance_pauses_and_resumes() {
    let Some(db) = block(TestDb::new(Backend::Postgres)) else {
        eprintln!("skipped: TANDEM_TEST_POSTGRES_URL is not set");
        return;
    };
    let (devices, operator) = (admin_server_on(Some(&db)), admin_server_on(Some(&db)));
    nothing_lost(&devices, &operator);
}

/// Device 1 (on `devices`) writes while `operator` (the same server, or another instance on the
/// same database) has sync paused; after the resume every change lands, and device 2 pulls them.
fn nothing_lost(devices: &TestServer, operator: &TestServer) {
    let (d1, d2) = pair(devices);
    d1.put("plans", "p1", json!({"name": "before"}));
    d1.put("exercises", "e1", json!({"name": "Squat"}));
    d1.sync();
    d2.sync();
    assert_eq!(d2.all(), d1.all());

    let paused = admin_post(
        operator,
        "pause",
        json!({"retryAfterSecs": 30, "reason": "bad release"}),
    );
    assert_eq!(paused["pause"]["retryAfterSecs"], 30, "{paused}");
    d1.sync_until_paused();

    write_while_paused(&d1);
    let pending = d1.pending();
    assert!(pending >= 9, "{pending} changes queued");
    assert_eq!(d1.sync_paused(), Some(30));
    assert_eq!(d1.pending(), pending, "the outbox keeps every change");
    // Retrying during the pause changes nothing either; the other device is paused too.
    assert_eq!(d1.sync_paused(), Some(30));
    assert_eq!(d1.pending(), pending);
    d2.sync_paused();
    assert_eq!(
        d1.doc("plans", "p1"),
        Some(json!({"name": "renamed while paused"})),
        "local data is untouched"
    );

    let resumed = admin_post(operator, "resume", json!({}));
    assert_eq!(resumed["resumed"], true, "{resumed}");
    let report = d1.sync_until_resumed();
    assert_eq!(d1.pending(), 0, "{report:?}");
    assert_eq!(report.rejected, 0, "{report:?}");
    assert_eq!(report.conflicts, 0, "{report:?}");
    let status = d1.t.sync_status().unwrap();
    assert_eq!(status.phase, SyncPhase::Idle);
    assert_eq!(status.last_failure, None);

    d2.sync();
    assert_eq!(d2.all(), d1.all(), "the second device has every change");
    assert_eq!(d2.get("exercises", "e1"), None, "the delete arrived");
    assert_eq!(d2.count("exercises"), 7);
}

#[test]
fn a_users_pause_leaves_other_users_syncing() {
    let server = admin_server();
    let (alice, alice_2) = pair(&server);
    let alice_email = block(async { alice.t.current_user().unwrap().unwrap().email });
    let bob = device(server.url());
    bob.sign_up(&email());

    admin_post(&server, "pause", json!({"user": alice_email}));
    alice.put("plans", "a", json!({"name": "alice's"}));
    bob.put("plans", "b", json!({"name": "bob's"}));
    let retry_after = alice.sync_paused();
    assert!(retry_after.is_some_and(|s| s > 0), "{retry_after:?}");
    alice_2.sync_paused();
    assert_eq!(alice.pending(), 1);

    let report = bob.sync();
    assert_eq!(report.applied, 1, "bob syncs through alice's pause");
    assert_eq!(bob.pending(), 0);

    let resumed = admin_post(&server, "resume", json!({"user": alice_email}));
    assert_eq!(resumed["resumed"], true, "{resumed}");
    alice.sync();
    assert_eq!(alice.pending(), 0);
    alice_2.sync();
    assert_eq!(alice_2.doc("plans", "a"), Some(json!({"name": "alice's"})));
    assert_eq!(alice_2.get("plans", "b"), None, "bob's data stays his");
}
