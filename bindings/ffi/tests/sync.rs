//! Engines syncing through the real `tandem-server` binary (in process, on a manual clock the
//! devices share, for token expiry): convergence, merges and conflicts under each policy, deletes
//! and cascades, lost answers, restarts, token expiry and revocation, accounts, cursor expiry,
//! dead letters, the kill switches, malformed answers and realtime.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tandem::{
    AuthFailure, AuthState, ConflictPolicy, ConflictReason, ConflictResolver, Query, QueryObserver,
    Record, RecordState, Resolution, SecureStore, SyncFailure, SyncPhase, SyncReport, Tandem,
    TandemConfig, TandemError, ValidationReason,
};
use tandem_testkit::fixtures::strict_notes_schema;
use tandem_testkit::proxy::{Fault, Proxy};
use tandem_testkit::server::{email, TestServer};
use tandem_testkit::ManualClock;
use tempfile::TempDir;

mod common;

use common::{
    block, device, device_opened_by, device_with, open, pair, pair_with, Device, Secrets, PASSWORD,
};
use tandem_testkit::fixtures::TEST_SCHEMA as SCHEMA;

/// A device judging token expiry by `clock`, the one its in-process server runs on: the test
/// moves the clock instead of sleeping.
fn device_on_clock(url: &str, clock: &ManualClock) -> Device {
    device_opened_by(
        url,
        |_| {},
        |config| Tandem::open_with_clock(config, Arc::new(clock.clone())).unwrap(),
    )
}

/// An in-process server issuing access tokens that live 2 s, on a manual clock.
fn short_token_server() -> TestServer {
    TestServer::builder()
        .args(&["--access-token-ttl", "2"])
        .in_process()
        .start()
}

fn clock_of(server: &TestServer) -> &ManualClock {
    server.clock().expect("an in-process server")
}

impl Device {
    /// Every live record as (collection, id, document).
    fn snapshot(&self) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for collection in ["exercises", "plans", "plan_days"] {
            for r in self.t.query(collection.into(), Query::default()).unwrap() {
                all.push((
                    r.collection,
                    r.id,
                    serde_json::from_str(&r.document).unwrap(),
                ));
            }
        }
        all
    }
}

fn sync_failure(result: Result<SyncReport, TandemError>) -> SyncFailure {
    match result {
        Err(TandemError::Sync { kind, .. }) => kind,
        other => panic!("expected a sync error, got {other:?}"),
    }
}

#[test]
fn offline_edits_on_three_devices_converge() {
    let server = TestServer::start();
    let (a, b) = pair(&server);
    let c = device(server.url());
    c.sign_in(&block(async { a.t.current_user().unwrap().unwrap().email }));
    a.put("plans", "p1", json!({"name": "Push", "notes": "from a"}));
    a.put("plan_days", "d1", json!({"planId": "p1", "dayIndex": 0}));
    b.put("plans", "p2", json!({"name": "Pull"}));
    c.put(
        "exercises",
        "e1",
        json!({"name": "Squat", "category": "legs"}),
    );
    for d in [&a, &b, &c, &a, &b] {
        d.sync();
    }
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.snapshot(), c.snapshot());
    assert_eq!(a.snapshot().len(), 4);
    assert!(a
        .snapshot()
        .iter()
        .all(|(c, id, _)| a.record(c, id).state == RecordState::Synced));
    assert_eq!(a.record("plans", "p1").version, 1);
    assert_eq!(a.pending() + b.pending() + c.pending(), 0);
}

#[test]
fn different_fields_merge_and_echoes_are_skipped() {
    let server = TestServer::start();
    let (a, b) = pair(&server);
    a.put("plans", "p", json!({"name": "Plan", "notes": "n"}));
    a.sync();
    b.sync();
    a.patch("plans", "p", json!({"name": "Renamed"}));
    b.patch("plans", "p", json!({"notes": "Heavier"}));
    a.sync();
    let report = b.sync();
    assert_eq!(report.conflicts, 1, "b's push met a's change and merged it");
    a.sync();
    let merged = json!({"name": "Renamed", "notes": "Heavier"});
    assert_eq!(a.doc("plans", "p"), Some(merged.clone()));
    assert_eq!(b.doc("plans", "p"), Some(merged));
    assert!(b.t.conflicts().unwrap().is_empty());
    let again = a.sync();
    assert_eq!((again.pushed, again.pulled), (0, 0), "nothing echoes back");
}

fn same_field_edit(policy: ConflictPolicy) -> (TestServer, Device, Device) {
    let server = TestServer::start();
    let (a, b) = pair_with(&server, |c| c.sync.conflict_policy = Some(policy));
    a.put("plans", "p", json!({"name": "Plan"}));
    a.sync();
    b.sync();
    a.patch("plans", "p", json!({"name": "A's name"}));
    b.patch("plans", "p", json!({"name": "B's name"}));
    a.sync();
    b.sync();
    (server, a, b)
}

#[test]
fn same_field_under_merge_becomes_a_conflict_resolved_without_restart() {
    let (_server, a, b) = same_field_edit(ConflictPolicy::Merge);
    let conflicts = b.t.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(
        (c.reason, c.fields.clone()),
        (ConflictReason::BothChanged, vec!["name".to_string()])
    );
    assert_eq!(c.local_document.as_deref(), Some(r#"{"name":"B's name"}"#));
    assert_eq!(c.server_document.as_deref(), Some(r#"{"name":"A's name"}"#));
    assert_eq!(c.base_document.as_deref(), Some(r#"{"name":"Plan"}"#));
    assert_eq!(b.record("plans", "p").state, RecordState::Conflicted);
    assert_eq!(b.t.sync_status().unwrap().conflicts, 1);

    b.t.resolve("plans".into(), "p".into(), Resolution::KeepMine)
        .unwrap();
    b.sync();
    a.sync();
    assert_eq!(a.doc("plans", "p"), Some(json!({"name": "B's name"})));
    assert_eq!(b.record("plans", "p").state, RecordState::Synced);
    assert!(b.t.conflicts().unwrap().is_empty());
}

#[test]
fn same_field_under_server_wins_and_client_wins() {
    let (_server, a, b) = same_field_edit(ConflictPolicy::ServerWins);
    assert_eq!(b.doc("plans", "p"), Some(json!({"name": "A's name"})));
    assert!(b.t.conflicts().unwrap().is_empty());

    let (_server, a2, b2) = same_field_edit(ConflictPolicy::ClientWins);
    a2.sync();
    assert_eq!(
        a2.doc("plans", "p"),
        Some(json!({"name": "B's name"})),
        "the last writer's change won"
    );
    assert_eq!(b2.doc("plans", "p"), Some(json!({"name": "B's name"})));
    drop(a);
}

#[test]
fn same_field_under_manual_and_keep_server_or_merged() {
    let (_server, a, b) = same_field_edit(ConflictPolicy::Manual);
    assert_eq!(b.t.conflicts().unwrap()[0].reason, ConflictReason::Manual);
    b.t.resolve(
        "plans".into(),
        "p".into(),
        Resolution::Merged {
            json: r#"{"name": "Both"}"#.into(),
        },
    )
    .unwrap();
    b.sync();
    a.sync();
    assert_eq!(a.doc("plans", "p"), Some(json!({"name": "Both"})));

    let (_server, _a, b) = same_field_edit(ConflictPolicy::Manual);
    let kept =
        b.t.resolve("plans".into(), "p".into(), Resolution::KeepServer)
            .unwrap()
            .unwrap();
    assert_eq!(kept.state, RecordState::Synced);
    assert_eq!(b.doc("plans", "p"), Some(json!({"name": "A's name"})));
    let missing =
        b.t.resolve("plans".into(), "p".into(), Resolution::KeepMine);
    assert!(
        matches!(missing, Err(TandemError::InvalidArgument { .. })),
        "no open conflict any more"
    );
}

/// Merges by concatenating names: the app's own rule.
struct Concatenate;

impl ConflictResolver for Concatenate {
    fn resolve(&self, conflict: tandem::Conflict) -> Option<Resolution> {
        let name = |doc: &Option<String>| -> String {
            doc.as_deref()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .map_or(String::new(), |v| {
                    v["name"].as_str().unwrap_or("").to_string()
                })
        };
        let merged = format!(
            "{} + {}",
            name(&conflict.server_document),
            name(&conflict.local_document)
        );
        Some(Resolution::Merged {
            json: json!({"name": merged}).to_string(),
        })
    }
}

#[test]
fn a_conflict_resolver_implemented_by_the_app_decides() {
    let server = TestServer::start();
    let (a, b) = pair_with(&server, |c| {
        c.conflict_resolver = Some(Arc::new(Concatenate))
    });
    a.put("plans", "p", json!({"name": "Plan"}));
    a.sync();
    b.sync();
    a.patch("plans", "p", json!({"name": "A"}));
    b.patch("plans", "p", json!({"name": "B"}));
    a.sync();
    b.sync(); // conflict, resolved by the app, pushed by the follow-up run
    b.sync();
    a.sync();
    assert_eq!(a.doc("plans", "p"), Some(json!({"name": "A + B"})));
    assert!(b.t.conflicts().unwrap().is_empty());
}

#[test]
fn an_edit_against_a_delete_is_a_conflict_for_the_app() {
    let server = TestServer::start();
    let (a, b) = pair(&server);
    a.put("plans", "p", json!({"name": "Plan"}));
    a.sync();
    b.sync();
    a.delete("plans", "p");
    b.patch("plans", "p", json!({"notes": "still using it"}));
    a.sync();
    b.sync();
    let conflicts = b.t.conflicts().unwrap();
    assert_eq!(conflicts[0].reason, ConflictReason::LocalEditServerDelete);
    assert_eq!(conflicts[0].server_document, None);
    b.t.resolve("plans".into(), "p".into(), Resolution::KeepMine)
        .unwrap();
    b.sync();
    a.sync();
    assert_eq!(
        a.doc("plans", "p"),
        Some(json!({"name": "Plan", "notes": "still using it"})),
        "brought back"
    );
}

#[test]
fn a_cascaded_delete_meeting_a_concurrent_child_insert_orphans_nothing() {
    let server = TestServer::start();
    let (a, b) = pair(&server);
    a.put("plans", "p", json!({"name": "Plan"}));
    a.put("plan_days", "d0", json!({"planId": "p", "dayIndex": 0}));
    a.sync();
    b.sync();
    a.delete("plans", "p"); // cascades to d0
    b.put("plan_days", "d1", json!({"planId": "p", "dayIndex": 1})); // offline insert under it
    a.sync();
    let report = b.sync();
    assert_eq!(
        report.rejected, 1,
        "the child is rejected invalid_parent on the server"
    );
    let dead = b.t.rejected().unwrap();
    assert_eq!(
        (dead[0].id.as_str(), dead[0].reason_code.as_str()),
        ("d1", "invalid_parent")
    );
    assert_eq!(dead[0].reason, ValidationReason::InvalidParent);
    for d in [&a, &b] {
        assert_eq!(d.doc("plans", "p"), None);
        assert_eq!(d.doc("plan_days", "d0"), None);
        assert_eq!(
            d.doc("plan_days", "d1"),
            None,
            "deleted on the other side by the cascade"
        );
    }
    b.t.discard_rejected(dead[0].op_id.clone()).unwrap();
    assert!(b.t.rejected().unwrap().is_empty());
    assert_eq!(a.snapshot(), b.snapshot());
}

/// Seed 121 of the convergence kit: a parent deleted and created again before a sync. Folded
/// into one upsert, the delete never reached the server, which kept the children the deleting
/// device had hidden: the devices disagreed for ever.
#[test]
fn a_parent_deleted_and_created_again_offline_takes_its_children_with_the_delete() {
    let server = TestServer::start();
    let (a, b) = pair(&server);
    a.put("plans", "p", json!({"name": "Plan"}));
    a.put("plan_days", "d0", json!({"planId": "p", "dayIndex": 0}));
    a.sync();
    b.sync();
    a.delete("plans", "p");
    a.put("plans", "p", json!({"name": "Again"}));
    assert_eq!(a.doc("plan_days", "d0"), None, "hidden with the delete");
    a.sync();
    b.sync();
    for d in [&a, &b] {
        assert_eq!(d.doc("plans", "p"), Some(json!({"name": "Again"})));
        assert_eq!(d.doc("plan_days", "d0"), None, "deleted with the plan");
    }
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.pending() + b.pending(), 0);
}

#[test]
fn a_lost_push_response_causes_no_duplicate() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.url());
    let (a, b) = pair(&server);
    let lossy = device(proxy.url());
    lossy.sign_in(&a.t.current_user().unwrap().unwrap().email);
    lossy.put("plans", "p", json!({"name": "once"}));
    proxy.fail_next("/sync/v1/push", Fault::DropResponse);
    assert_eq!(sync_failure(lossy.try_sync()), SyncFailure::Offline);
    assert_eq!(lossy.pending(), 1, "nothing lost");
    let report = lossy.sync();
    assert_eq!(report.duplicates, 1, "the server recognised the op id");
    assert_eq!(
        lossy.record("plans", "p").version,
        1,
        "applied exactly once"
    );
    b.sync();
    assert_eq!(b.record("plans", "p").version, 1);
}

/// Nine changes, then a group of three: with batches of 2, one pipelined window of six batches
/// (the group goes alone, whole).
fn nine_and_a_group(d: &Device, name: &str) {
    for i in 0..9 {
        d.put("plans", &format!("p{i}"), json!({"name": name}));
    }
    let put = |id: &str| tandem::WriteOp::Put {
        collection: "plans".into(),
        id: Some(id.into()),
        json: json!({"name": name}).to_string(),
        space_id: None,
    };
    d.write(vec![put("g0"), put("g1"), put("g2")]);
}

#[test]
fn a_push_window_cut_off_mid_way_loses_nothing_and_applies_nothing_twice() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.url());
    let (a, b) = pair(&server);
    let lossy = device_with(proxy.url(), |c| c.sync.push_batch_size = 2);
    lossy.sign_in(&a.t.current_user().unwrap().unwrap().email);
    nine_and_a_group(&lossy, "once");
    // The third batch's answer is lost while the second one's is written.
    proxy.fail_next("/sync/v1/push", Fault::Pass);
    proxy.fail_next("/sync/v1/push", Fault::Pass);
    proxy.fail_next("/sync/v1/push", Fault::DropResponse);
    assert_eq!(sync_failure(lossy.try_sync()), SyncFailure::Offline);
    assert_eq!(
        lossy.pending(),
        8,
        "the first two batches landed; nothing lost"
    );
    let report = lossy.sync();
    assert_eq!(
        (report.duplicates, report.applied),
        (2, 6),
        "the lost batch was recognised, the rest applied once"
    );
    assert_eq!(lossy.pending(), 0);
    b.sync();
    for id in ["p0", "p4", "p5", "p8", "g0", "g2"] {
        assert_eq!(
            b.record("plans", id).version,
            1,
            "{id} applied exactly once"
        );
    }
    assert_eq!(b.t.count("plans".into(), Query::default()).unwrap(), 12);
}

#[test]
fn a_conflict_inside_a_push_window_gives_the_rest_back_and_the_run_goes_on() {
    let server = TestServer::start();
    let (a, b) = pair(&server);
    let c = device_with(server.url(), |c| c.sync.push_batch_size = 2);
    c.sign_in(&a.t.current_user().unwrap().unwrap().email);
    nine_and_a_group(&c, "first");
    c.sync();
    b.sync();
    // Another device changes p5's notes; this one renames everything offline.
    b.patch("plans", "p5", json!({"notes": "from b"}));
    b.sync();
    nine_and_a_group(&c, "second");
    let report = c.sync();
    // p5's conflict (the third batch) is merged by the policy and sent again in the same run;
    // the batches after it went back to the outbox unsent and left afterwards.
    assert_eq!(report.conflicts, 1, "{report:?}");
    assert_eq!(report.applied, 12, "{report:?}");
    assert_eq!(c.pending(), 0);
    assert_eq!(
        c.doc("plans", "p5"),
        Some(json!({"name": "second", "notes": "from b"}))
    );
    b.sync();
    assert_eq!(b.snapshot(), c.snapshot());
    for id in ["p0", "p8", "g1"] {
        assert_eq!(b.record("plans", id).version, 2, "{id}");
    }
    assert_eq!(b.record("plans", "p5").version, 3);
}

#[test]
fn malformed_answers_give_errors_and_lose_nothing() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.url());
    let d = device(proxy.url());
    d.sign_up(&email());
    d.put("plans", "p", json!({"name": "safe"}));
    let garbage = [
        Fault::Replace("this is not json".into()),
        Fault::Replace(r#"{"results": "wrong type"}"#.into()),
        Fault::Replace(
            r#"{"results": [{"opId": "someone-else", "status": "applied", "version": 1}]}"#.into(),
        ),
        Fault::Truncate,
    ];
    for fault in garbage {
        proxy.fail_next("/sync/v1/push", fault.clone());
        let failure = sync_failure(d.try_sync());
        assert!(
            matches!(failure, SyncFailure::Server | SyncFailure::Offline),
            "{fault:?} gave {failure:?}"
        );
        assert_eq!(d.pending(), 1, "{fault:?} lost the change");
        assert_eq!(d.doc("plans", "p"), Some(json!({"name": "safe"})));
    }
    proxy.fail_next(
        "/sync/v1/pull",
        Fault::Replace(r#"{"changes": [{"entity": 5}], "cursor": 1}"#.into()),
    );
    assert_eq!(sync_failure(d.try_sync()), SyncFailure::Server);
    d.sync();
    assert_eq!(d.record("plans", "p").state, RecordState::Synced);
}

#[test]
fn a_server_restart_mid_session_loses_nothing() {
    let mut server = TestServer::start();
    let d = device(server.url());
    d.sign_up(&email());
    d.put("plans", "p", json!({"name": "before"}));
    d.sync();
    server.stop();
    d.put("plans", "q", json!({"name": "while down"}));
    assert_eq!(sync_failure(d.try_sync()), SyncFailure::Offline);
    assert_eq!(d.t.sync_status().unwrap().phase, SyncPhase::Offline);
    server.restart();
    d.sync();
    assert_eq!(d.pending(), 0);
    assert_eq!(d.t.sync_status().unwrap().phase, SyncPhase::Idle);
    let other = device(server.url());
    other.sign_in(&d.t.current_user().unwrap().unwrap().email);
    other.sync();
    assert_eq!(other.snapshot().len(), 2, "data survived the restart");
}

#[test]
fn an_access_token_expiring_mid_session_is_refreshed() {
    let server = short_token_server();
    let d = device_on_clock(server.url(), clock_of(&server));
    d.sign_up(&email());
    d.put("plans", "p", json!({"name": "x"}));
    d.sync();
    server.advance(Duration::from_millis(2500));
    d.put("plans", "q", json!({"name": "y"}));
    let report = d.sync();
    assert_eq!(report.applied, 1);
}

/// Bug 10 of issue 11: the server rotated the refresh token but its answer was lost. The device
/// must not be signed out: the failure is a network one, and the old token, presented again
/// within the server's reuse grace, gets a working session.
#[test]
fn a_lost_refresh_answer_does_not_sign_the_device_out() {
    let server = short_token_server();
    let proxy = Proxy::start(server.url());
    let d = device_on_clock(proxy.url(), clock_of(&server));
    d.sign_up(&email());
    d.put("plans", "p", json!({"name": "x"}));
    d.sync();
    server.advance(Duration::from_millis(2100)); // the access token expires
    proxy.fail_next("grant_type=refresh_token", Fault::DropResponse);
    d.put("plans", "q", json!({"name": "y"}));
    if let Err(e) = d.try_sync() {
        assert_eq!(sync_failure(Err(e)), SyncFailure::Offline);
    }
    assert!(
        matches!(d.t.auth_state().unwrap(), AuthState::SignedIn { .. }),
        "still signed in"
    );
    d.sync();
    assert_eq!(d.pending(), 0);
    assert_eq!(d.doc("plans", "q"), Some(json!({"name": "y"})));
}

#[test]
fn a_revoked_session_expires_and_keeps_pending_changes() {
    let server = short_token_server();
    let d = device_on_clock(server.url(), clock_of(&server));
    let account = email();
    d.sign_up(&account);
    d.put("plans", "p", json!({"name": "pending"}));
    // Revoke this sign-in's refresh tokens on the server, as a logout elsewhere would.
    let session: Value = serde_json::from_str(&d.secrets.values()[0]).unwrap();
    let access =
        find_string(&session, "access_token").expect("the stored session holds the access token");
    let logout = reqwest_blocking_logout(server.url(), &access);
    assert_eq!(logout, 204);
    server.advance(Duration::from_millis(2500)); // the access token expires too
    let failure = sync_failure(d.try_sync());
    assert_eq!(failure, SyncFailure::SessionExpired);
    assert!(matches!(
        d.t.auth_state().unwrap(),
        AuthState::SessionExpired { .. }
    ));
    assert_eq!(d.t.sync_status().unwrap().phase, SyncPhase::SignedOut);
    assert_eq!(d.pending(), 1, "pending changes stay");
    d.sign_in(&account);
    d.sync();
    assert_eq!(d.pending(), 0, "and go up after signing in again");
}

fn find_string(value: &Value, key: &str) -> Option<String> {
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| map.values().find_map(|v| find_string(v, key))),
        _ => None,
    }
}

/// POST /auth/v1/logout with a raw socket: the test needs no HTTP client of its own.
fn reqwest_blocking_logout(url: &str, access_token: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /auth/v1/logout HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {access_token}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn guest_data_is_adopted_by_the_first_sign_in_and_accounts_never_mix() {
    let server = TestServer::start();
    let d = device(server.url());
    d.put("plans", "guest", json!({"name": "written signed out"}));
    assert_eq!(sync_failure(d.try_sync()), SyncFailure::NotSignedIn);
    let first = email();
    d.sign_up(&first);
    assert!(d.doc("plans", "guest").is_some(), "adopted");
    d.sync();
    assert_eq!(d.pending(), 0, "its pending change went to the account");

    block(d.t.sign_out(false)).unwrap();
    assert!(
        d.snapshot().is_empty(),
        "signed out: the (empty) guest data"
    );
    d.put("plans", "guest2", json!({"name": "second guest"}));
    let second = email();
    d.sign_up(&second);
    assert!(
        d.doc("plans", "guest").is_none(),
        "another account never sees the first one's data"
    );
    assert!(
        d.doc("plans", "guest2").is_none(),
        "only the first sign-in adopts guest data"
    );
    d.put("plans", "mine", json!({"name": "second's"}));
    d.sync();

    block(d.t.sign_out(false)).unwrap();
    assert!(
        d.doc("plans", "guest2").is_some(),
        "guest data stays out of other accounts"
    );
    d.sign_in(&first);
    assert!(d.doc("plans", "guest").is_some());
    assert!(d.doc("plans", "mine").is_none());

    let data_dir = d.dir.path().join("users");
    let files_before = std::fs::read_dir(&data_dir).unwrap().count();
    block(d.t.sign_out(true)).unwrap();
    let files_after = std::fs::read_dir(&data_dir).unwrap().count();
    assert!(
        files_after < files_before,
        "wiping deletes the user's database"
    );
    assert!(d.secrets.values().is_empty(), "and its secrets");
    d.sign_in(&first);
    assert!(d.doc("plans", "guest").is_none(), "wiped locally…");
    d.sync();
    assert!(
        d.doc("plans", "guest").is_some(),
        "…and back from the server"
    );
}

#[test]
fn an_expired_cursor_re_pulls_everything_and_keeps_pending_changes() {
    let server = TestServer::builder().purging().in_process().start();
    let (a, b) = pair(&server);
    a.put("plans", "kept", json!({"name": "k"}));
    a.put("plans", "gone", json!({"name": "g"}));
    a.sync();
    b.sync();
    a.delete("plans", "gone");
    a.sync();
    server.advance(Duration::from_millis(2500)); // the tombstone is purged
    b.put("plans", "local", json!({"name": "pending"}));
    b.sync();
    assert!(
        b.doc("plans", "gone").is_none(),
        "removed although its tombstone was purged"
    );
    assert!(b.doc("plans", "kept").is_some());
    a.sync();
    assert_eq!(a.snapshot(), b.snapshot(), "the pending change went up too");
}

#[test]
fn a_re_pull_replaces_a_record_created_again_after_its_tombstone_was_purged() {
    let server = TestServer::builder().purging().in_process().start();
    let (a, b) = pair(&server);
    a.put("plans", "p", json!({"name": "first"}));
    a.sync();
    b.sync();
    a.delete("plans", "p");
    a.sync();
    server.advance(Duration::from_millis(2500)); // the tombstone is purged
    a.put("plans", "p", json!({"name": "second"}));
    a.sync();
    assert!(
        a.record("plans", "p").version > 2,
        "never a version the first one had"
    );
    assert!(b.sync().full_repull);
    assert_eq!(b.doc("plans", "p"), Some(json!({"name": "second"})));
    assert_eq!(a.snapshot(), b.snapshot());
}

#[test]
fn a_change_the_server_rejects_goes_to_dead_letters_and_the_queue_goes_on() {
    let server = TestServer::with_schema(&strict_notes_schema());
    let d = device(server.url());
    d.sign_up(&email());
    d.put(
        "exercises",
        "bad",
        json!({"name": "Squat", "notes": "far too long for the server"}),
    );
    d.put("exercises", "good", json!({"name": "Row"}));
    let report = d.sync();
    assert_eq!((report.rejected, report.applied), (1, 1));
    assert_eq!(d.record("exercises", "bad").state, RecordState::Rejected);
    assert_eq!(d.record("exercises", "good").state, RecordState::Synced);
    let status = d.t.sync_status().unwrap();
    assert_eq!((status.rejected, status.pending), (1, 0));
    d.patch("exercises", "bad", json!({"notes": "ok"}));
    let report = d.sync();
    assert_eq!(report.applied, 1, "editing it again makes a fresh op");
    let dead = d.t.rejected().unwrap();
    d.t.discard_rejected(dead[0].op_id.clone()).unwrap();
    assert_eq!(
        d.doc("exercises", "bad"),
        Some(json!({"name": "Squat", "notes": "ok"})),
        "the newer edit stands"
    );
}

#[test]
fn the_servers_kill_switch_and_the_configs_pause_sync_without_touching_data() {
    let server = TestServer::start_with(&["--sync-paused"]);
    let d = device(server.url());
    d.sign_up(&email()); // auth keeps working
    d.put("plans", "p", json!({"name": "x"}));
    match d.try_sync() {
        Err(TandemError::Sync {
            kind: SyncFailure::Paused,
            retry_after_secs,
            ..
        }) => assert!(retry_after_secs.is_some()),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.t.sync_status().unwrap().phase, SyncPhase::Paused);
    assert_eq!(d.pending(), 1);

    let server = TestServer::start();
    let off = device_with(server.url(), |c| c.sync.enabled = false);
    off.sign_up(&email());
    off.put("plans", "p", json!({"name": "x"}));
    assert_eq!(sync_failure(off.try_sync()), SyncFailure::Disabled);
    assert_eq!(off.pending(), 1);
    assert_eq!(off.doc("plans", "p"), Some(json!({"name": "x"})));
}

#[test]
fn only_one_process_syncs_an_account_at_a_time() {
    let server = TestServer::start();
    let d = device(server.url());
    d.sign_up(&email());
    let user = d.t.current_user().unwrap().unwrap();
    let lock_path = d
        .dir
        .path()
        .join("users")
        .join(format!("{}.db.sync-lock", user.id));
    let other_process = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    other_process.try_lock().unwrap();
    d.put("plans", "p", json!({"name": "x"}));
    assert_eq!(sync_failure(d.try_sync()), SyncFailure::Busy);
    drop(other_process);
    d.sync();
    assert_eq!(d.pending(), 0);
}

#[test]
fn bad_credentials_and_insecure_urls_are_typed_errors() {
    let server = TestServer::start();
    let d = device(server.url());
    match block(d.t.sign_in(email(), PASSWORD.into())) {
        Err(TandemError::Auth { kind, .. }) => assert_eq!(kind, AuthFailure::InvalidCredentials),
        other => panic!("{other:?}"),
    }
    let dir = TempDir::new().unwrap();
    let insecure = TandemConfig::with_server(
        dir.path().to_string_lossy(),
        SCHEMA,
        "http://sync.example.com",
    );
    assert!(matches!(
        Tandem::open(insecure),
        Err(TandemError::InvalidArgument { .. })
    ));
}

struct Seen(Mutex<Sender<Vec<String>>>);

impl QueryObserver for Seen {
    fn on_results(&self, records: Vec<Record>) {
        let _ = self
            .0
            .lock()
            .unwrap()
            .send(records.into_iter().map(|r| r.id).collect());
    }
}

#[test]
fn realtime_pokes_carry_a_put_to_the_other_devices_observer() {
    let server = TestServer::start();
    let (a, b) = pair_with(&server, |c| {
        c.sync.realtime = true;
        c.sync.debounce_ms = 20;
    });
    a.t.start_sync().unwrap();
    b.t.start_sync().unwrap();
    let (tx, seen) = channel();
    let _subscription =
        b.t.observe(
            "plans".into(),
            Query::default(),
            Arc::new(Seen(Mutex::new(tx))),
        )
        .unwrap();
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(5)).unwrap(),
        Vec::<String>::new()
    );
    wait_until_realtime(&b.t);
    a.put("plans", "live", json!({"name": "realtime"}));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ids = seen
            .recv_timeout(deadline - std::time::Instant::now())
            .expect("b saw a's put");
        if ids == ["live"] {
            break;
        }
    }
    let metrics = b.t.sync_metrics().unwrap();
    assert!(
        metrics
            .triggers
            .iter()
            .any(|t| t.reason == "realtime" && t.count > 0),
        "{metrics:?}"
    );
    let a_metrics = a.t.sync_metrics().unwrap();
    assert!(
        a_metrics.triggers.iter().any(|t| t.reason == "local_write"),
        "{a_metrics:?}"
    );
    a.t.stop_sync().unwrap();
    b.t.stop_sync().unwrap();
    assert!(
        !b.t.sync_status().unwrap().realtime,
        "stopping closes the stream"
    );
}

fn realtime_triggers(device: &Tandem) -> u64 {
    device
        .sync_metrics()
        .unwrap()
        .triggers
        .iter()
        .find(|t| t.reason == "realtime")
        .map_or(0, |t| t.count)
}

/// Waits until `device` holds `count` live plans.
fn wait_for_plans(device: &Device, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held = device.t.count("plans".into(), Query::default()).unwrap() as usize;
        if held == count && device.t.pending_count().unwrap() == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{held} of {count} plans arrived without a manual sync"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_devices_own_push_does_not_wake_it_and_simultaneous_pushes_still_converge() {
    let server = TestServer::start();
    let (a, b) = pair_with(&server, |c| {
        c.sync.realtime = true;
        c.sync.debounce_ms = 0;
    });
    a.t.start_sync().unwrap();
    b.t.start_sync().unwrap();
    wait_until_realtime(&a.t);
    wait_until_realtime(&b.t);
    a.put("plans", "first", json!({"name": "first"}));
    wait_for_plans(&b, 1);
    wait_for_plans(&a, 1);
    // The poke of a's own push names a's client: a skips it (a pull after its own push brings
    // nothing), b runs on it. b only pulled, so nothing pokes a.
    let before = realtime_triggers(&a.t);
    a.put("plans", "second", json!({"name": "second"}));
    wait_for_plans(&b, 2);
    wait_for_plans(&a, 2);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        realtime_triggers(&a.t),
        before,
        "a was woken by its own push"
    );
    // Both write at once, many times: each push's poke names its own client, so every change of
    // the other device still wakes a device, and both end with everything.
    let writes = 30;
    std::thread::scope(|scope| {
        for (device, tag) in [(&a, "a"), (&b, "b")] {
            scope.spawn(move || {
                for i in 0..writes {
                    device.put("plans", &format!("{tag}{i}"), json!({"name": tag}));
                    if i % 3 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            });
        }
    });
    wait_for_plans(&a, 2 + 2 * writes);
    wait_for_plans(&b, 2 + 2 * writes);
    assert_eq!(a.snapshot(), b.snapshot());
    a.t.stop_sync().unwrap();
    b.t.stop_sync().unwrap();
}

/// Waits until `device`'s event stream is connected (the status says so).
fn wait_until_realtime(device: &Tandem) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !device.sync_status().unwrap().realtime {
        assert!(
            std::time::Instant::now() < deadline,
            "the event stream never connected"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_session_survives_moving_the_data_directory() {
    // An iOS app's container path changes across app updates; the tokens must still be found.
    let server = TestServer::start();
    let parent = TempDir::new().unwrap();
    let secrets = Arc::new(Secrets::default());
    let open_at = |dir: &std::path::Path| {
        let mut config = TandemConfig::with_server(dir.to_string_lossy(), SCHEMA, server.url());
        config.sync.realtime = false;
        config.secure_store = Some(Arc::clone(&secrets) as Arc<dyn SecureStore>);
        Tandem::open(config).unwrap()
    };
    let before = parent.path().join("before-update");
    let t = open_at(&before);
    let user = block(t.sign_up(email(), PASSWORD.into())).unwrap();
    t.put(
        "plans".into(),
        Some("p".into()),
        json!({"name": "moved"}).to_string(),
    )
    .unwrap();
    t.shutdown();

    let after = parent.path().join("after-update");
    std::fs::rename(&before, &after).unwrap();
    let t = open_at(&after);
    assert_eq!(t.auth_state().unwrap(), AuthState::SignedIn { user });
    assert_eq!(block(t.sync_now()).unwrap().pushed, 1);
    t.shutdown();
}

#[test]
fn a_shut_down_directory_opens_again_at_once_even_while_syncing() {
    let server = TestServer::start();
    let d = device_with(server.url(), |c| {
        c.sync.realtime = true;
        c.sync.debounce_ms = 0;
    });
    d.sign_up(&email());
    d.t.shutdown();
    for round in 0..10 {
        let t = open(&d.dir, server.url(), &d.secrets, |c| {
            c.sync.realtime = true;
            c.sync.debounce_ms = 0;
        });
        t.start_sync().unwrap();
        t.put(
            "plans".into(),
            Some(format!("p{round}")),
            json!({"name": "again"}).to_string(),
        )
        .unwrap();
        t.shutdown();
    }
    let t = open(&d.dir, server.url(), &d.secrets, |_| {});
    block(t.sync_now()).unwrap();
    assert_eq!(t.pending_count().unwrap(), 0);
    assert_eq!(t.count("plans".into(), Query::default()).unwrap(), 10);
}

#[test]
fn a_reopened_device_shows_its_counts_and_last_sync_at_once() {
    let server = TestServer::start();
    let d = device(server.url());
    d.sign_up(&email());
    assert_eq!(d.t.sync_status().unwrap().last_synced_at, None);
    d.put("plans", "synced", json!({"name": "up"}));
    d.sync();
    let synced_at =
        d.t.sync_status()
            .unwrap()
            .last_synced_at
            .expect("a last sync");
    d.put("plans", "waiting", json!({"name": "not yet"}));
    d.t.shutdown();

    let t = open(&d.dir, server.url(), &d.secrets, |_| {});
    let status = t.sync_status().unwrap();
    assert_eq!(status.last_synced_at, Some(synced_at), "kept in the store");
    assert_eq!(status.pending, 1, "counted at open, not after a refresh");
}

// ---- Conflicts and pulls that never diverge: each reproduces a bug found by porting apps'
// ---- stories and by randomized multi-device runs (see docs/architecture.md, "Conflicts").

/// `a` and `c` hold plan p `{"name": "Base", "notes": "n0"}`; then `a` renames it and syncs
/// and `c` renames it too and syncs: a conflict on `name` only, parked on `c`.
fn conflict_on_name(server: &TestServer, a_patch: Value, c_patch: Value) -> (Device, Device) {
    let (a, c) = pair(server);
    a.put("plans", "p", json!({"name": "Base", "notes": "n0"}));
    a.sync();
    c.sync();
    a.patch("plans", "p", a_patch);
    a.sync();
    c.patch("plans", "p", c_patch);
    c.sync();
    let conflicts = c.t.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].fields, ["name"]);
    (a, c)
}

fn settled_everywhere(a: &Device, c: &Device) {
    c.sync();
    a.sync();
    c.sync();
    assert_eq!(a.snapshot(), c.snapshot());
    for d in [a, c] {
        assert!(d.t.conflicts().unwrap().is_empty());
        assert_eq!(d.pending(), 0);
        assert_eq!(d.t.sync_status().unwrap().conflicts, 0);
    }
}

#[test]
fn keep_mine_and_keep_server_settle_only_the_contested_fields() {
    let server = TestServer::start();
    let (a, c) = conflict_on_name(
        &server,
        json!({"name": "A", "notes": "A notes"}),
        json!({"name": "C", "archived": true}),
    );
    c.t.resolve("plans".into(), "p".into(), Resolution::KeepMine)
        .unwrap();
    settled_everywhere(&a, &c);
    assert_eq!(
        a.doc("plans", "p"),
        Some(json!({"name": "C", "notes": "A notes", "archived": true})),
        "a's notes and c's archived both survive keep-mine"
    );

    a.patch("plans", "p", json!({"name": "A2"}));
    a.sync();
    c.patch("plans", "p", json!({"name": "C2", "notes": "C notes"}));
    c.sync();
    c.t.resolve("plans".into(), "p".into(), Resolution::KeepServer)
        .unwrap();
    assert_eq!(
        c.doc("plans", "p"),
        Some(json!({"name": "A2", "notes": "C notes", "archived": true})),
        "keep-server keeps c's own uncontested notes"
    );
    settled_everywhere(&a, &c);
}

#[test]
fn an_edit_of_a_conflicted_record_waits_in_the_conflict_until_it_is_resolved() {
    let server = TestServer::start();
    let (a, c) = conflict_on_name(&server, json!({"name": "A"}), json!({"name": "C"}));
    c.patch("plans", "p", json!({"notes": "n"}));
    assert_eq!(c.record("plans", "p").state, RecordState::Conflicted);
    let report = c.sync();
    assert_eq!(
        report.pushed, 0,
        "nothing is sent while the conflict is open"
    );
    let open = &c.t.conflicts().unwrap()[0];
    assert_eq!(
        open.local_document.as_deref(),
        Some(r#"{"name":"C","notes":"n"}"#)
    );
    a.sync();
    assert_eq!(
        a.doc("plans", "p"),
        Some(json!({"name": "A", "notes": "n0"}))
    );

    c.t.resolve("plans".into(), "p".into(), Resolution::KeepServer)
        .unwrap();
    settled_everywhere(&a, &c);
    assert_eq!(
        a.doc("plans", "p"),
        Some(json!({"name": "A", "notes": "n"}))
    );
    assert_eq!(c.record("plans", "p").state, RecordState::Synced);
}

#[test]
fn deleting_a_conflicted_record_is_the_users_resolution() {
    let server = TestServer::start();
    let (a, c) = conflict_on_name(&server, json!({"name": "A"}), json!({"name": "C"}));
    c.delete("plans", "p");
    assert!(c.t.conflicts().unwrap().is_empty());
    assert_eq!(c.doc("plans", "p"), None);
    settled_everywhere(&a, &c);
    assert_eq!(a.doc("plans", "p"), None, "the delete went up");
}

#[test]
fn a_cascade_follows_the_servers_current_parent() {
    let server = TestServer::start();
    let (a, c) = pair(&server);
    a.put("plans", "x", json!({"name": "X"}));
    a.put("plans", "y", json!({"name": "Y"}));
    a.put("plan_days", "d", json!({"planId": "x", "dayIndex": 0}));
    a.put("plan_days", "e", json!({"planId": "x", "dayIndex": 1}));
    a.sync();
    c.sync();
    a.patch("plan_days", "d", json!({"planId": "y"}));
    a.sync();
    c.delete("plans", "x"); // c has not seen d move to y
    assert_eq!(c.doc("plan_days", "d"), None, "hidden with x at once");
    let report = c.sync();
    assert_eq!(
        report.conflicts, 0,
        "a delete of x sends no stale child deletes"
    );
    assert!(c.t.conflicts().unwrap().is_empty());
    assert_eq!(
        c.doc("plan_days", "d"),
        Some(json!({"planId": "y", "dayIndex": 0})),
        "d lives on under y"
    );
    assert_eq!(c.doc("plan_days", "e"), None, "e went with x");
    settled_everywhere(&a, &c);
    assert_eq!(a.doc("plans", "x"), None);
}

#[test]
fn a_child_moved_under_a_record_here_goes_when_it_is_deleted() {
    let server = TestServer::start();
    let (a, c) = pair(&server);
    a.put("plans", "x", json!({"name": "X"}));
    a.put("plans", "y", json!({"name": "Y"}));
    a.put("plan_days", "d", json!({"planId": "y", "dayIndex": 0}));
    a.sync();
    c.sync();
    c.patch("plan_days", "d", json!({"planId": "x"}));
    c.delete("plans", "x");
    settled_everywhere(&a, &c);
    assert_eq!(a.doc("plan_days", "d"), None, "the user saw d go with x");
    assert!(a.doc("plans", "y").is_some());
}

#[test]
fn a_new_process_shows_that_the_last_sync_failed() {
    let mut server = TestServer::start();
    let d = device(server.url());
    d.sign_up(&email());
    d.sync();
    server.stop();
    d.put("plans", "p", json!({"name": "offline"}));
    assert_eq!(sync_failure(d.try_sync()), SyncFailure::Offline);
    d.t.shutdown();

    let t = open(&d.dir, server.url(), &d.secrets, |_| {});
    let status = t.sync_status().unwrap();
    assert_eq!(status.phase, SyncPhase::Offline);
    assert!(status.last_error.is_some());
    assert_eq!(status.pending, 1);

    server.restart();
    block(t.sync_now()).unwrap();
    t.shutdown();
    let t = open(&d.dir, server.url(), &d.secrets, |_| {});
    let status = t.sync_status().unwrap();
    assert_eq!((status.phase, status.last_error), (SyncPhase::Idle, None));
}

#[test]
fn a_child_never_shows_without_its_parent() {
    let server = TestServer::start();
    let (a, c) = pair(&server);
    a.put("plans", "n", json!({"name": "N"}));
    a.sync();
    c.sync();
    c.patch("plans", "n", json!({"notes": "edited"}));
    c.sync();
    a.delete("plans", "n");
    a.sync(); // a's delete meets c's edit: parked
    assert_eq!(
        a.t.conflicts().unwrap()[0].reason,
        ConflictReason::LocalDeleteServerEdit
    );
    c.put("plan_days", "d", json!({"planId": "n", "dayIndex": 0}));
    c.sync();
    a.sync();
    assert_eq!(a.doc("plans", "n"), None);
    assert_eq!(a.doc("plan_days", "d"), None, "hidden with its parent");
    assert!(a
        .t
        .query("plan_days".into(), Query::default())
        .unwrap()
        .is_empty());

    a.t.resolve("plans".into(), "n".into(), Resolution::KeepServer)
        .unwrap();
    assert_eq!(
        a.doc("plan_days", "d"),
        Some(json!({"planId": "n", "dayIndex": 0})),
        "back with its parent"
    );
    settled_everywhere(&a, &c);

    a.delete("plans", "n");
    settled_everywhere(&a, &c);
    assert_eq!(c.doc("plan_days", "d"), None, "gone with n everywhere");
}

#[test]
fn an_edit_after_an_edit_delete_conflict_waits_in_the_conflict() {
    let server = TestServer::start();
    let (a, c) = pair(&server);
    a.put("plans", "r", json!({"name": "R"}));
    a.sync();
    c.sync();
    a.delete("plans", "r");
    a.sync();
    c.patch("plans", "r", json!({"notes": "x"}));
    c.sync();
    assert_eq!(
        c.t.conflicts().unwrap()[0].reason,
        ConflictReason::LocalEditServerDelete
    );
    c.patch("plans", "r", json!({"notes": "y"}));
    assert_eq!(c.sync().pushed, 0);
    a.sync();
    assert_eq!(a.doc("plans", "r"), None, "the edit did not bring r back");
    c.t.resolve("plans".into(), "r".into(), Resolution::KeepServer)
        .unwrap();
    settled_everywhere(&a, &c);
    assert_eq!(c.doc("plans", "r"), None);
}

#[test]
fn a_conflict_below_a_deleted_parent_goes_with_it() {
    let server = TestServer::start();
    let (a, c) = pair(&server);
    a.put("plans", "n", json!({"name": "N"}));
    a.put("plan_days", "n1", json!({"planId": "n", "dayIndex": 0}));
    a.sync();
    c.sync();
    c.delete("plan_days", "n1");
    c.sync();
    a.patch("plan_days", "n1", json!({"title": "edited"}));
    a.sync();
    assert_eq!(a.t.conflicts().unwrap().len(), 1);
    a.delete("plans", "n");
    assert!(a.t.conflicts().unwrap().is_empty());
    settled_everywhere(&a, &c);
    assert!(a.snapshot().is_empty());
}

#[test]
fn a_full_re_pull_cut_off_is_finished_with_its_sweep_by_a_later_sync() {
    let server = TestServer::builder().purging().in_process().start();
    let proxy = Proxy::start(server.url());
    let (a, _b) = pair(&server);
    let c = device(proxy.url());
    c.sign_in(&a.t.current_user().unwrap().unwrap().email);
    a.put("plans", "kept", json!({"name": "k"}));
    a.put("plans", "gone", json!({"name": "g"}));
    a.sync();
    c.sync();
    a.delete("plans", "gone");
    a.sync();
    server.advance(Duration::from_millis(2500)); // the tombstone is purged
    proxy.fail_next("/sync/v1/pull", Fault::Pass); // answers 410 cursor_expired
    proxy.fail_next("/sync/v1/pull", Fault::DropResponse); // the re-pull is cut off
    assert_eq!(sync_failure(c.try_sync()), SyncFailure::Offline);
    let report = c.sync();
    assert!(
        report.full_repull,
        "the re-pull owed is done again from the start"
    );
    assert_eq!(c.doc("plans", "gone"), None, "and its sweep ran");
    assert!(c.doc("plans", "kept").is_some());
    assert!(!c.sync().full_repull, "once");
}

#[test]
fn a_first_pull_removes_what_the_device_pushed_and_the_server_deleted_since() {
    let server = TestServer::builder().purging().in_process().start();
    let proxy = Proxy::start(server.url());
    let a = device(proxy.url());
    let b = device(server.url());
    let account = email();
    a.sign_up(&account);
    b.sign_in(&account);
    a.put("plans", "gone", json!({"name": "g"}));
    proxy.fail_next("/sync/v1/pull", Fault::DropRequest); // pushed, never pulled
    assert_eq!(sync_failure(a.try_sync()), SyncFailure::Offline);
    assert_eq!(a.record("plans", "gone").state, RecordState::Synced);
    b.sync();
    b.delete("plans", "gone");
    b.sync();
    server.advance(Duration::from_millis(2500)); // the tombstone is purged
    a.sync();
    assert_eq!(a.doc("plans", "gone"), None, "the first pull swept it");
    assert_eq!(a.snapshot(), b.snapshot());
}

#[test]
fn a_connection_cut_mid_body_is_offline_and_retried() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.url());
    let d = device(proxy.url());
    d.sign_up(&email());
    d.put("plans", "p", json!({"name": "safe"}));
    for route in ["/sync/v1/push", "/sync/v1/pull"] {
        proxy.fail_next(route, Fault::Truncate);
        assert_eq!(sync_failure(d.try_sync()), SyncFailure::Offline, "{route}");
    }
    d.sync();
    assert_eq!(d.pending(), 0);
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_its_databases_are_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: umask only changes the mode of files created later; 022 is the usual default.
    unsafe { libc::umask(0o022) };
    let server = TestServer::start();
    let d = device(server.url());
    d.put("plans", "guest", json!({"name": "before sign-up"}));
    d.sign_up(&email());
    d.put("plans", "p", json!({"name": "x"}));
    d.sync();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let mut checked = 0;
    let mut dirs = vec![d.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 4,
        "guest.db, a user's db with its -wal and -shm, client-id: {checked}"
    );
}

/// C edits plan `p` while A deletes it, and C puts day `d` under it in the same offline spell:
/// C's sync (push batches of `batch`) meets the delete, and what becomes of `d`?
fn a_day_under_a_plan_deleted_elsewhere(server: &TestServer, batch: u32) -> (Device, Device) {
    let account = email();
    let a = device(server.url());
    let c = device_with(server.url(), |config| config.sync.push_batch_size = batch);
    a.sign_up(&account);
    c.sign_in(&account);
    a.put("plans", "p", json!({"name": "P"}));
    a.sync();
    c.sync();
    a.delete("plans", "p");
    a.sync();
    c.patch("plans", "p", json!({"notes": "still planning"}));
    c.put("plan_days", "d", json!({"planId": "p", "dayIndex": 0}));
    let report = c.sync();
    assert_eq!(
        report.rejected, 0,
        "batch {batch}: the day is no dead letter"
    );
    assert_eq!(report.parked.len(), 1, "batch {batch}");
    assert!(c.t.rejected().unwrap().is_empty(), "batch {batch}");
    assert_eq!(c.record("plan_days", "d").state, RecordState::Pending);
    (a, c)
}

#[test]
fn a_child_under_a_conflicted_parent_waits_for_the_resolution() {
    let server = TestServer::start();
    for batch in [1, 100] {
        let (a, c) = a_day_under_a_plan_deleted_elsewhere(&server, batch);
        assert_eq!(
            c.sync().pushed,
            0,
            "batch {batch}: the day waits for its plan"
        );
        c.t.resolve("plans".into(), "p".into(), Resolution::KeepMine)
            .unwrap();
        settled_everywhere(&a, &c);
        assert_eq!(
            a.doc("plan_days", "d"),
            Some(json!({"planId": "p", "dayIndex": 0})),
            "batch {batch}: kept plan, its day follows"
        );
        assert!(c.t.rejected().unwrap().is_empty());
    }
}

#[test]
fn a_child_waiting_for_a_parent_whose_delete_is_accepted_goes_with_it() {
    let server = TestServer::start();
    let (a, c) = a_day_under_a_plan_deleted_elsewhere(&server, 100);
    c.t.resolve("plans".into(), "p".into(), Resolution::KeepServer)
        .unwrap();
    settled_everywhere(&a, &c);
    assert_eq!(c.doc("plans", "p"), None);
    assert_eq!(c.doc("plan_days", "d"), None, "the day went with its plan");
    assert!(c.t.rejected().unwrap().is_empty());
}

#[test]
fn a_grandchild_waits_with_its_parent_and_the_push_ends() {
    let schema = SCHEMA.replacen(
        r#""plan_days": {"#,
        r#""sets": {
      "parent": {"collection": "plan_days", "field": "dayId"},
      "fields": {"dayId": {"type": "string", "required": true}, "reps": {"type": "integer"}}
    },
    "plan_days": {"#,
        1,
    );
    let server = TestServer::with_schema(&schema);
    let account = email();
    let with_sets = |config: &mut TandemConfig| config.schema_json = schema.clone();
    let a = device_with(server.url(), with_sets);
    let c = device_with(server.url(), with_sets);
    a.sign_up(&account);
    c.sign_in(&account);
    a.put("plans", "p", json!({"name": "P"}));
    a.sync();
    c.sync();
    a.delete("plans", "p");
    a.sync();
    c.patch("plans", "p", json!({"notes": "still planning"}));
    c.put("plan_days", "d", json!({"planId": "p", "dayIndex": 0}));
    c.put("sets", "s", json!({"dayId": "d", "reps": 5}));
    let report = c.sync();
    assert_eq!((report.rejected, report.parked.len()), (0, 1));
    assert_eq!(c.sync().pushed, 0, "day and set wait for the plan");
    c.t.resolve("plans".into(), "p".into(), Resolution::KeepMine)
        .unwrap();
    c.sync();
    a.sync();
    assert_eq!(a.doc("sets", "s"), Some(json!({"dayId": "d", "reps": 5})));
    assert_eq!(c.pending() + a.pending(), 0);
}
