//! No-op saves and `revert` end to end: devices of one account syncing through the real
//! `tandem-server` binary. An identical save changes nothing anywhere (no version, no push, no
//! poke, no wake-up of another device); a revert drops the local change and the server never
//! hears of it.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tandem::{Query, QueryObserver, Record, RecordState, Tandem, TandemError};
use tandem_testkit::server::TestServer;

mod common;

use common::{devices_with, Device};

/// Two devices of one new account, syncing in realtime (debounced 20 ms) or by hand.
fn pair(server: &TestServer, realtime: bool) -> (Device, Device) {
    let mut all = devices_with(server.url(), 2, |config| {
        config.sync.realtime = realtime;
        config.sync.debounce_ms = 20;
    });
    let b = all.pop().unwrap();
    let a = all.pop().unwrap();
    (a, b)
}

impl Device {
    fn trigger_count(&self, reason: &str) -> u64 {
        self.t
            .sync_metrics()
            .unwrap()
            .triggers
            .iter()
            .find(|t| t.reason == reason)
            .map_or(0, |t| t.count)
    }
}

struct Seen(Mutex<Sender<Vec<(String, u64)>>>);

impl QueryObserver for Seen {
    fn on_results(&self, records: Vec<Record>) {
        let _ = self
            .0
            .lock()
            .unwrap()
            .send(records.into_iter().map(|r| (r.id, r.version)).collect());
    }
}

/// Waits for a delivery matching `want`, skipping others.
fn wait_for(seen: &Receiver<Vec<(String, u64)>>, want: &[(&str, u64)]) {
    let want: Vec<(String, u64)> = want.iter().map(|(i, v)| (i.to_string(), *v)).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = seen
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("never saw {want:?}"));
        if got == want {
            return;
        }
    }
}

/// Waits until `device` has been quiet (no new run, no new trigger) for a while: the runs the
/// first put caused are over.
fn settle(device: &Device) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = device.t.sync_metrics().unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = device.t.sync_metrics().unwrap();
        if now.runs == last.runs && now.triggers == last.triggers {
            return;
        }
        assert!(Instant::now() < deadline, "the device never settled");
        last = now;
    }
}

fn wait_until_realtime(device: &Tandem) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !device.sync_status().unwrap().realtime {
        assert!(
            Instant::now() < deadline,
            "the event stream never connected"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_identical_save_bumps_no_version_and_wakes_no_other_device() {
    let server = TestServer::start();
    let (a, b) = pair(&server, true);
    a.t.start_sync().unwrap();
    b.t.start_sync().unwrap();
    let (tx, seen) = channel();
    let _watching =
        b.t.observe(
            "plans".into(),
            Query::default(),
            Arc::new(Seen(Mutex::new(tx))),
        )
        .unwrap();
    wait_until_realtime(&b.t);
    a.put("plans", "p", json!({"name": "Legs", "notes": "slow"}));
    wait_for(&seen, &[("p", 1)]);
    // a's own run has confirmed it by now too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.record("plans", "p").state != RecordState::Synced {
        assert!(Instant::now() < deadline, "a's put was never confirmed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = a.record("plans", "p");
    settle(&b);
    while seen.try_recv().is_ok() {} // deliveries of the runs just settled
    let (a_writes, b_pokes, b_runs) = (
        a.trigger_count("local_write"),
        b.trigger_count("realtime"),
        b.t.sync_metrics().unwrap().runs,
    );

    // The same document, put whole (keys in another order) and patched.
    let same = a.put("plans", "p", json!({"notes": "slow", "name": "Legs"}));
    assert_eq!(same, before, "the record as it stands, nothing rewritten");
    assert_eq!(a.patch("plans", "p", json!({"name": "Legs"})), before);
    assert_eq!(a.t.pending_count().unwrap(), 0, "no outbox entry");
    std::thread::sleep(Duration::from_millis(500)); // debounce, push, poke, pull: all would be done
    assert_eq!(a.trigger_count("local_write"), a_writes, "no sync trigger");
    assert_eq!(b.trigger_count("realtime"), b_pokes, "b was not woken");
    assert_eq!(b.t.sync_metrics().unwrap().runs, b_runs, "b did not run");
    assert!(seen.try_recv().is_err(), "b's observer heard nothing");
    assert_eq!(a.record("plans", "p"), before);
    assert_eq!(b.record("plans", "p").version, 1);

    // A real change still travels, as version 2.
    a.patch("plans", "p", json!({"notes": "fast"}));
    wait_for(&seen, &[("p", 2)]);
    a.t.stop_sync().unwrap();
    b.t.stop_sync().unwrap();
}

#[test]
fn a_change_undone_offline_is_pushed_as_a_no_op_the_server_does_not_version() {
    let server = TestServer::start();
    let (a, b) = pair(&server, false);
    a.put("plans", "p", json!({"name": "Legs"}));
    a.sync();
    b.sync();
    // Changed and changed back before a sync: the outbox holds the unchanged document.
    a.patch("plans", "p", json!({"name": "Arms"}));
    a.patch("plans", "p", json!({"name": "Legs"}));
    assert_eq!(a.t.pending_count().unwrap(), 1);
    let report = a.sync();
    assert_eq!((report.pushed, report.applied), (1, 1));
    let record = a.record("plans", "p");
    assert_eq!((record.version, record.state), (1, RecordState::Synced));
    let pulled = b.sync();
    assert_eq!(pulled.pulled, 0, "the server logged no change");
    assert_eq!(b.record("plans", "p").version, 1);
}

#[test]
fn revert_drops_local_changes_and_the_server_never_hears_of_them() {
    let server = TestServer::start();
    let (a, b) = pair(&server, false);
    a.put("plans", "p", json!({"name": "Legs"}));
    a.put("plan_days", "d", json!({"planId": "p", "dayIndex": 0}));
    a.sync();
    b.sync();

    // An edit, reverted while another device's edit is on the server: a takes it, no conflict.
    a.patch("plans", "p", json!({"name": "mine"}));
    b.patch("plans", "p", json!({"notes": "theirs"}));
    b.sync();
    let reverted = a.t.revert("plans".into(), "p".into()).unwrap();
    assert!(reverted.changed);
    assert_eq!(a.doc("plans", "p"), Some(json!({"name": "Legs"})));
    assert_eq!(reverted.record.unwrap().state, RecordState::Synced);
    assert_eq!(a.t.pending_count().unwrap(), 0);
    let report = a.sync();
    assert_eq!((report.pushed, report.conflicts), (0, 0));
    assert_eq!(
        a.doc("plans", "p"),
        Some(json!({"name": "Legs", "notes": "theirs"}))
    );

    // A delete with its cascade, reverted: the plan and its day are back; nothing was sent.
    a.t.delete("plans".into(), "p".into()).unwrap();
    assert_eq!(a.doc("plan_days", "d"), None);
    assert!(a.t.revert("plans".into(), "p".into()).unwrap().changed);
    assert_eq!(
        a.doc("plan_days", "d"),
        Some(json!({"planId": "p", "dayIndex": 0}))
    );
    assert_eq!(a.sync().pushed, 0);

    // A record never synced disappears, with the day created under it.
    a.put("plans", "new", json!({"name": "New"}));
    a.put("plan_days", "nd", json!({"planId": "new", "dayIndex": 0}));
    let gone = a.t.revert("plans".into(), "new".into()).unwrap();
    assert_eq!((gone.record, gone.changed), (None, true));
    assert_eq!(a.doc("plan_days", "nd"), None);
    assert_eq!(a.sync().pushed, 0);
    b.sync();
    assert_eq!(b.doc("plans", "new"), None);
    assert_eq!(
        b.doc("plans", "p"),
        Some(json!({"name": "Legs", "notes": "theirs"}))
    );

    // Nothing to revert, and typed errors.
    assert!(!a.t.revert("plans".into(), "p".into()).unwrap().changed);
    assert!(matches!(
        a.t.revert("plans".into(), "missing".into()),
        Err(TandemError::NotFound { .. })
    ));
    assert!(matches!(
        a.t.revert("plans".into(), "bad id".into()),
        Err(TandemError::InvalidArgument { .. })
    ));
    assert!(matches!(
        a.t.revert("nope".into(), "p".into()),
        Err(TandemError::Validation { .. })
    ));
}

#[test]
fn revert_drops_a_dead_letter_the_server_refused() {
    // A schema on the server stricter than the device's: the server refuses the change.
    let server = TestServer::with_schema(&tandem_testkit::fixtures::strict_notes_schema());
    let (a, _b) = pair(&server, false);
    a.put("exercises", "e", json!({"name": "Squat"}));
    a.sync();
    a.patch(
        "exercises",
        "e",
        json!({"notes": "far too long for the server"}),
    );
    let report = a.sync();
    assert_eq!(report.rejected, 1);
    assert_eq!(a.t.rejected().unwrap().len(), 1);
    assert!(a.t.revert("exercises".into(), "e".into()).unwrap().changed);
    assert!(a.t.rejected().unwrap().is_empty());
    assert_eq!(a.doc("exercises", "e"), Some(json!({"name": "Squat"})));
    assert_eq!(a.record("exercises", "e").state, RecordState::Synced);
}
