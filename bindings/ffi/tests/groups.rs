//! Atomic groups end to end: devices syncing through the real `tandem-server` binary. A `write`
//! batch is seen whole or not at all on another device (observed page by page), survives a lost
//! push answer without a double apply, and a member that conflicts or is rejected holds the rest
//! of its batch back until it is settled.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tandem::{
    OutcomeKind, Query, QueryObserver, Record, RecordState, Resolution, SyncFailure, TandemError,
    WriteOp,
};
use tandem_testkit::fixtures::strict_notes_schema;
use tandem_testkit::proxy::{Fault, Proxy};
use tandem_testkit::server::{email, TestServer};

mod common;

use common::{device, device_with, devices_with, put_op};

/// Records how many records each observer call saw.
struct Counts(Mutex<Sender<usize>>);

impl QueryObserver for Counts {
    fn on_results(&self, records: Vec<Record>) {
        let _ = self.0.lock().unwrap().send(records.len());
    }
}

fn counts(rx: &Receiver<usize>) -> Vec<usize> {
    let mut seen = Vec::new();
    while let Ok(n) = rx.recv_timeout(Duration::from_millis(300)) {
        seen.push(n);
    }
    seen
}

#[test]
fn a_batch_is_seen_all_or_nothing_on_another_device() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.url());
    let account = email();
    let a = device(server.url());
    a.sign_up(&account);
    // The reader pulls pages of 3: each batch of 20 is many pages' worth of changes.
    let b = device_with(proxy.url(), |c| c.sync.pull_page_size = 3);
    b.sign_in(&account);
    a.put("plans", "solo", json!({"name": "alone"}));
    for batch in 0..2 {
        let ops = (0..20)
            .map(|i| put_op("plans", &format!("b{batch}-{i}"), json!({"name": "x"})))
            .collect();
        a.write(ops);
    }
    a.sync();
    let (tx, rx) = channel();
    let _sub =
        b.t.observe(
            "plans".into(),
            Query::default(),
            Arc::new(Counts(Mutex::new(tx))),
        )
        .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 0);
    // The first page arrives; the answer to the second is lost, so the run stops after one page.
    proxy.fail_next("/sync/v1/pull", Fault::Pass);
    proxy.fail_next("/sync/v1/pull", Fault::DropResponse);
    assert!(b.try_sync().is_err());
    assert_eq!(
        b.count("plans"),
        21,
        "the first page ran on to the end of the first batch"
    );
    let report = b.sync();
    assert_eq!(report.pulled, 20);
    assert_eq!(b.count("plans"), 41);
    let seen = counts(&rx);
    assert!(!seen.is_empty());
    for n in &seen {
        assert!(
            [0, 1, 21, 41].contains(n),
            "an observer saw part of a batch: {seen:?}"
        );
    }
    assert_eq!(seen.last(), Some(&41));
}

#[test]
fn a_lost_push_answer_in_the_middle_of_a_group_applies_it_once() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.url());
    let account = email();
    let a = device_with(proxy.url(), |c| c.sync.push_batch_size = 2);
    a.sign_up(&account);
    let b = device(server.url());
    b.sign_in(&account);
    a.put("plans", "before", json!({"name": "first"}));
    a.write(vec![
        put_op("plans", "p", json!({"name": "P"})),
        put_op("plan_days", "d1", json!({"planId": "p", "dayIndex": 1})),
        put_op("plan_days", "d2", json!({"planId": "p", "dayIndex": 2})),
    ]);
    a.put("plans", "after", json!({"name": "last"}));
    // The first push (the lone change) passes; the answer to the group's push is lost.
    proxy.fail_next("/sync/v1/push", Fault::Pass);
    proxy.fail_next("/sync/v1/push", Fault::DropResponse);
    match a.try_sync() {
        Err(TandemError::Sync { kind, .. }) => assert_eq!(kind, SyncFailure::Offline),
        other => panic!("expected the lost answer to fail the run, got {other:?}"),
    }
    assert_eq!(
        a.t.pending_count().unwrap(),
        4,
        "the group and what follows wait"
    );
    let report = a.sync();
    assert_eq!(report.duplicates, 3, "the whole group was recognised");
    assert_eq!(report.applied, 1);
    for id in ["p", "d1", "d2"] {
        let collection = if id == "p" { "plans" } else { "plan_days" };
        assert_eq!(a.record(collection, id).version, 1, "{id} applied once");
    }
    b.sync();
    assert_eq!(b.count("plan_days"), 2);
    assert_eq!(b.record("plans", "p").version, 1);
    assert_eq!(b.doc("plans", "after"), Some(json!({"name": "last"})));
}

#[test]
fn a_conflicting_member_holds_its_batch_back_until_resolved() {
    let server = TestServer::start();
    let ds = devices_with(server.url(), 3, |_| {});
    let (a, b, c) = (&ds[0], &ds[1], &ds[2]);
    a.put("plans", "p", json!({"name": "v1"}));
    a.sync();
    b.sync();
    c.sync();
    // b renames p; a, not knowing, renames it too and adds a day in the same batch.
    b.put("plans", "p", json!({"name": "b's name"}));
    b.sync();
    a.write(vec![
        put_op("plans", "p", json!({"name": "a's name"})),
        put_op(
            "plan_days",
            "d",
            json!({"planId": "p", "dayIndex": 0, "title": "new"}),
        ),
    ]);
    let report = a.sync();
    assert_eq!(report.parked.len(), 1, "both renamed p: left to the app");
    let waiting: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::WaitsForGroup)
        .collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].id, "d");
    assert!(waiting[0].reason.is_some(), "names the member that failed");
    assert_eq!(a.record("plan_days", "d").state, RecordState::Pending);
    assert!(a.t.rejected().unwrap().is_empty(), "nothing dead-lettered");
    // Another sync sends nothing of the batch while the conflict is open.
    assert_eq!(a.sync().pushed, 0);
    c.sync();
    assert_eq!(c.doc("plan_days", "d"), None, "nothing of the batch landed");
    assert_eq!(c.doc("plans", "p"), Some(json!({"name": "b's name"})));
    // Resolved: the batch goes whole.
    a.t.resolve("plans".into(), "p".into(), Resolution::KeepMine)
        .unwrap();
    let report = a.sync();
    assert_eq!(report.applied, 2);
    c.sync();
    assert_eq!(c.doc("plans", "p"), Some(json!({"name": "a's name"})));
    assert_eq!(
        c.doc("plan_days", "d"),
        Some(json!({"planId": "p", "dayIndex": 0, "title": "new"}))
    );
}

#[test]
fn a_rejected_member_keeps_its_batch_off_other_devices() {
    let server = TestServer::with_schema(&strict_notes_schema());
    let ds = devices_with(server.url(), 2, |_| {});
    let (a, b) = (&ds[0], &ds[1]);
    a.write(vec![
        put_op("exercises", "good", json!({"name": "Row"})),
        put_op(
            "exercises",
            "bad",
            json!({"name": "Squat", "notes": "far too long for the server"}),
        ),
    ]);
    let report = a.sync();
    assert_eq!((report.rejected, report.applied), (1, 0));
    assert_eq!(a.record("exercises", "bad").state, RecordState::Rejected);
    assert_eq!(a.record("exercises", "good").state, RecordState::Pending);
    b.sync();
    assert_eq!(b.count("exercises"), 0, "all or nothing: nothing");
    // Discarding the dead letter lets the rest of the batch go.
    let dead = a.t.rejected().unwrap();
    assert_eq!(dead.len(), 1);
    a.t.discard_rejected(dead[0].op_id.clone()).unwrap();
    assert_eq!(a.sync().applied, 1);
    b.sync();
    assert_eq!(b.doc("exercises", "good"), Some(json!({"name": "Row"})));
    assert_eq!(b.doc("exercises", "bad"), None);
}

#[test]
fn a_batch_larger_than_a_group_is_a_bulk_write_that_still_syncs() {
    let server = TestServer::start();
    let ds = devices_with(server.url(), 2, |_| {});
    let (a, b) = (&ds[0], &ds[1]);
    let ops: Vec<WriteOp> = (0..=tandem::max_write_batch())
        .map(|i| put_op("plans", &format!("p{i}"), json!({"name": "x"})))
        .collect();
    a.t.write(ops).unwrap();
    let all = tandem::max_write_batch() as u64 + 1;
    assert_eq!(a.count("plans"), all);
    a.sync();
    assert_eq!(a.t.pending_count().unwrap(), 0);
    b.sync();
    assert_eq!(b.count("plans"), all);
}

#[test]
fn a_batch_member_meeting_a_unique_key_goes_after_the_holder_it_replaces() {
    let server = TestServer::start();
    let ds = devices_with(server.url(), 2, |_| {});
    let (a, b) = (&ds[0], &ds[1]);
    a.put("projects", "p", json!({"name": "P"}));
    a.sync();
    b.sync();
    // a takes the key /k; b, not knowing, takes it too in a batch with another file.
    a.put("files", "a1", json!({"projectId": "p", "path": "/k"}));
    a.sync();
    b.write(vec![
        put_op("files", "b1", json!({"projectId": "p", "path": "/k"})),
        put_op("files", "b2", json!({"projectId": "p", "path": "/other"})),
    ]);
    let report = b.sync();
    assert_eq!(report.parked.len(), 1, "{report:?}");
    assert!(report
        .outcomes
        .iter()
        .any(|o| o.kind == OutcomeKind::WaitsForGroup && o.id == "b2"));
    a.sync();
    assert_eq!(a.doc("files", "b2"), None, "nothing of the batch landed");
    // Keep mine: the holder's delete is queued, and the batch goes after it (before it, the
    // server would still find the key held and fail the batch again).
    b.t.resolve("files".into(), "b1".into(), Resolution::KeepMine)
        .unwrap();
    b.sync();
    assert!(b.t.conflicts().unwrap().is_empty(), "settled for good");
    assert_eq!(b.record("files", "b1").state, RecordState::Synced);
    assert_eq!(b.record("files", "b2").state, RecordState::Synced);
    a.sync();
    assert_eq!(a.doc("files", "a1"), None);
    assert_eq!(
        a.doc("files", "b1"),
        Some(json!({"projectId": "p", "path": "/k"}))
    );
    assert_eq!(
        a.doc("files", "b2"),
        Some(json!({"projectId": "p", "path": "/other"}))
    );
}
