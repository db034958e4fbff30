//! No-op saves (a put or patch that leaves the document as it is writes nothing) and `revert`
//! (a record's unsent changes dropped, the server's state restored), against a real store with
//! the server's side played by hand.

use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use tandem_protocol::MutationResult;

use crate::engine::now_ms;
use crate::error::Error;
use crate::outbox::{EntryState, OpKind};
use crate::records::RecordState;
use crate::sync::conflict::{self, ConflictPolicy};
use crate::sync::push;
use crate::sync::revert::revert;
use crate::test_device::{change, delete_op, device, patch_op, put_op};

#[test]
fn an_identical_put_of_a_synced_record_writes_nothing() {
    let d = device(ConflictPolicy::Merge);
    assert!(d.write_changed(vec![put_op(
        "plans",
        "p",
        json!({"name": "A", "notes": "n"})
    )]));
    d.push_applied(1);
    let before = d.row("plans", "p").unwrap();
    std::thread::sleep(Duration::from_millis(5)); // a write would get a later updatedAt
    assert!(!d.write_changed(vec![put_op(
        "plans",
        "p",
        json!({"notes": "n", "name": "A"})
    )]));
    assert!(!d.write_changed(vec![put_op(
        "plans",
        "p",
        json!({"name": "A", "notes": "n", "rating": null})
    )]));
    assert!(!d.write_changed(vec![patch_op("plans", "p", json!({"name": "A"}))]));
    assert!(!d.write_changed(vec![patch_op("plans", "p", json!({}))]));
    assert!(!d.write_changed(vec![patch_op("plans", "p", json!({"archived": null}))]));
    assert_eq!(d.row("plans", "p").unwrap(), before, "nothing changed");
    assert!(d.outbox().is_empty(), "no outbox entry");
    assert_eq!(d.engine.pending_count().unwrap(), 0);
    // A change is still a change.
    assert!(d.write_changed(vec![patch_op("plans", "p", json!({"notes": "m"}))]));
    assert_eq!(d.outbox().len(), 1);
}

#[test]
fn an_identical_put_returns_the_record_as_it_stands() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    d.push_applied(4);
    let (rows, changed) = d
        .engine
        .write_reporting(vec![put_op("plans", "p", json!({"name": "A"}))])
        .unwrap();
    assert!(!changed);
    assert_eq!(rows, vec![d.row("plans", "p").unwrap()]);
    assert_eq!(rows[0].server_version, 4);
    assert_eq!(rows[0].state, RecordState::Synced);
}

#[test]
fn an_identical_save_of_a_pending_record_leaves_its_entry_untouched() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    let entry = d.outbox();
    let row = d.row("plans", "p").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert!(!d.write_changed(vec![put_op("plans", "p", json!({"name": "A"}))]));
    assert_eq!(d.outbox(), entry);
    assert_eq!(d.row("plans", "p").unwrap(), row);
    // Also while the entry is in flight: no second entry behind it.
    d.take();
    assert!(!d.write_changed(vec![patch_op("plans", "p", json!({"name": "A"}))]));
    assert_eq!(d.outbox().len(), 1);
}

#[test]
fn a_pulled_document_compares_by_value_not_by_spelling() {
    let d = device(ConflictPolicy::Merge);
    d.pull(vec![change(
        "plans",
        "p",
        3,
        Some(json!({"notes": "n", "name": "A", "meta": {"b": 1, "a": [1, 2]}})),
    )]);
    assert!(!d.write_changed(vec![put_op(
        "plans",
        "p",
        json!({"name": "A", "meta": {"a": [1, 2], "b": 1}, "notes": "n"})
    )]));
    assert!(d.outbox().is_empty());
    // A change inside a nested object is a change.
    assert!(d.write_changed(vec![patch_op("plans", "p", json!({"meta": {"b": 1.5}}))]));
}

#[test]
fn a_batch_of_only_identical_saves_tells_no_observer() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    d.write(vec![put_op("exercises", "e", json!({"name": "Squat"}))]);
    let (tx, rx) = mpsc::channel();
    let _listening = d.engine.listen(Box::new(move |collections| {
        tx.send(collections).unwrap();
    }));
    assert!(!d.write_changed(vec![
        put_op("plans", "p", json!({"name": "A"})),
        patch_op("exercises", "e", json!({"name": "Squat"})),
    ]));
    // A real write afterwards: the first notification the listener gets is that one.
    assert!(d.write_changed(vec![patch_op("exercises", "e", json!({"name": "Lunge"}))]));
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first, vec!["exercises".to_string()]);
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
}

#[test]
fn a_mixed_batch_writes_only_what_changes() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    d.push_applied(1);
    let (rows, changed) = d
        .engine
        .write_reporting(vec![
            put_op("plans", "p", json!({"name": "A"})),
            put_op("plans", "q", json!({"name": "B"})),
        ])
        .unwrap();
    assert!(changed);
    assert_eq!(rows.len(), 2);
    let entries: Vec<String> = d.outbox().into_iter().map(|e| e.entity_id).collect();
    assert_eq!(entries, ["q"]);
}

#[test]
fn an_identical_save_still_writes_a_deleted_or_rejected_record() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    d.push_applied(1);
    d.write(vec![delete_op("plans", "p")]);
    assert!(
        d.write_changed(vec![put_op("plans", "p", json!({"name": "A"}))]),
        "bringing a deleted record back is a change"
    );
    // A rejected change: saving the document again queues a new attempt.
    let r = device(ConflictPolicy::Merge);
    r.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    r.push(|e| MutationResult::rejected(&e.op_id, tandem_protocol::RejectionCode::InvalidPayload));
    assert_eq!(r.row("plans", "p").unwrap().state, RecordState::Rejected);
    assert!(r.write_changed(vec![put_op("plans", "p", json!({"name": "A"}))]));
}

// ---- Revert ----

#[test]
fn revert_restores_the_server_document_and_drops_the_unsent_change() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    d.push_applied(2);
    d.write(vec![patch_op(
        "plans",
        "p",
        json!({"name": "B", "notes": "x"}),
    )]);
    d.take(); // in flight, then edited again: two entries
    d.write(vec![patch_op("plans", "p", json!({"notes": "y"}))]);
    assert_eq!(d.outbox().len(), 2);
    let reverted = revert(&d.engine, "plans", "p").unwrap();
    assert!(reverted.changed);
    assert_eq!(d.doc("plans", "p"), Some(json!({"name": "A"})));
    let row = d.row("plans", "p").unwrap();
    assert_eq!(reverted.record, Some(row.clone()));
    assert_eq!((row.state, row.server_version), (RecordState::Synced, 2));
    assert!(d.outbox().is_empty());
    // Nothing left to revert: nothing changes.
    let again = revert(&d.engine, "plans", "p").unwrap();
    assert!(!again.changed);
    assert_eq!(again.record, Some(row));
}

#[test]
fn revert_of_a_record_never_synced_removes_it_and_what_was_created_below_it() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "p", json!({"name": "A"})),
        put_op("plan_days", "d", json!({"planId": "p", "dayIndex": 0})),
        put_op("plans", "other", json!({"name": "kept"})),
    ]);
    let reverted = revert(&d.engine, "plans", "p").unwrap();
    assert!(reverted.changed);
    assert_eq!(reverted.record, None);
    assert_eq!(d.row("plans", "p"), None, "forgotten, not tombstoned");
    assert_eq!(d.row("plan_days", "d"), None);
    let left: Vec<String> = d.outbox().into_iter().map(|e| e.entity_id).collect();
    assert_eq!(left, ["other"], "other records' changes stay");
}

#[test]
fn revert_of_a_local_delete_brings_the_record_and_its_children_back() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "p", json!({"name": "A"})),
        put_op("plan_days", "d", json!({"planId": "p", "dayIndex": 0})),
    ]);
    d.push_applied(1);
    d.write(vec![delete_op("plans", "p")]);
    assert_eq!(d.doc("plan_days", "d"), None);
    let reverted = revert(&d.engine, "plans", "p").unwrap();
    assert!(reverted.changed);
    assert_eq!(d.doc("plans", "p"), Some(json!({"name": "A"})));
    assert_eq!(
        d.doc("plan_days", "d"),
        Some(json!({"planId": "p", "dayIndex": 0}))
    );
    assert_eq!(d.row("plan_days", "d").unwrap().state, RecordState::Synced);
    assert!(d.outbox().is_empty());
}

#[test]
fn revert_of_a_child_under_a_parent_deleted_here_keeps_it_hidden() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "p", json!({"name": "A"})),
        put_op("plan_days", "d", json!({"planId": "p", "dayIndex": 0})),
    ]);
    d.push_applied(1);
    d.write(vec![patch_op("plan_days", "d", json!({"title": "t"}))]);
    d.write(vec![delete_op("plans", "p")]);
    // The cascade hid the child and dropped its edit: nothing to revert of it.
    assert!(!revert(&d.engine, "plan_days", "d").unwrap().changed);
    assert_eq!(d.doc("plan_days", "d"), None);
    let left: Vec<(String, OpKind)> = d
        .outbox()
        .into_iter()
        .map(|e| (e.entity_id, e.op))
        .collect();
    assert_eq!(left, [("p".to_string(), OpKind::Delete)]);
}

#[test]
fn revert_drops_a_dead_letter_and_an_open_conflict() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    d.push_applied(1);
    d.write(vec![patch_op("plans", "p", json!({"notes": "bad"}))]);
    d.push(|e| MutationResult::rejected(&e.op_id, tandem_protocol::RejectionCode::InvalidPayload));
    assert_eq!(d.outbox()[0].state, EntryState::Rejected);
    assert!(revert(&d.engine, "plans", "p").unwrap().changed);
    assert!(d.outbox().is_empty(), "the dead letter is gone");
    assert_eq!(d.doc("plans", "p"), Some(json!({"name": "A"})));
    assert_eq!(d.row("plans", "p").unwrap().state, RecordState::Synced);

    let m = device(ConflictPolicy::Manual);
    m.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    m.push_applied(1);
    m.write(vec![patch_op("plans", "p", json!({"name": "mine"}))]);
    m.pull(vec![change(
        "plans",
        "p",
        2,
        Some(json!({"name": "theirs"})),
    )]);
    assert_eq!(m.row("plans", "p").unwrap().state, RecordState::Conflicted);
    assert!(revert(&m.engine, "plans", "p").unwrap().changed);
    assert!(m.engine.store().read(conflict::list).unwrap().is_empty());
    assert_eq!(m.doc("plans", "p"), Some(json!({"name": "theirs"})));
    let row = m.row("plans", "p").unwrap();
    assert_eq!((row.state, row.server_version), (RecordState::Synced, 2));
}

#[test]
fn revert_of_a_record_the_server_deleted_removes_it() {
    let d = device(ConflictPolicy::Manual);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    d.push_applied(1);
    d.write(vec![patch_op("plans", "p", json!({"name": "mine"}))]);
    d.pull(vec![change("plans", "p", 2, None)]);
    assert!(revert(&d.engine, "plans", "p").unwrap().changed);
    assert_eq!(d.doc("plans", "p"), None);
    assert!(d.outbox().is_empty());
    assert!(d.engine.store().read(conflict::list).unwrap().is_empty());
}

#[test]
fn revert_tells_observers_and_refuses_unknown_records() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
    let (tx, rx) = mpsc::channel();
    let _listening = d.engine.listen(Box::new(move |collections| {
        tx.send(collections).unwrap();
    }));
    revert(&d.engine, "plans", "p").unwrap();
    let told = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(told.contains(&"plans".to_string()));
    assert!(told.contains(&"plan_days".to_string()), "children too");
    assert!(matches!(
        revert(&d.engine, "plans", "nope"),
        Err(Error::NotFound { .. })
    ));
    assert!(revert(&d.engine, "nope", "p").is_err());
    assert!(matches!(
        revert(&d.engine, "plans", "bad id!"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn the_answer_to_a_change_reverted_in_flight_changes_nothing_and_the_pull_brings_it() {
    for answer in ["applied", "conflict", "rejected"] {
        let d = device(ConflictPolicy::ClientWins);
        d.write(vec![put_op("plans", "p", json!({"name": "A"}))]);
        d.push_applied(1);
        d.write(vec![patch_op("plans", "p", json!({"name": "B"}))]);
        let batch = d.take(); // in flight
        assert!(revert(&d.engine, "plans", "p").unwrap().changed);
        let results: Vec<MutationResult> = batch
            .iter()
            .map(|e| match answer {
                "applied" => MutationResult::applied(&e.op_id, 2),
                "conflict" => MutationResult::conflict(
                    &e.op_id,
                    "version_mismatch",
                    Some(2),
                    json!({"name": "C"}).as_object().cloned(),
                ),
                _ => MutationResult::rejected(
                    &e.op_id,
                    tandem_protocol::RejectionCode::InvalidPayload,
                ),
            })
            .collect();
        let schema = d.engine.schema().clone();
        d.engine
            .store()
            .write(|tx| push::apply_results(tx, &schema, &batch, &results, d.policy, now_ms()))
            .unwrap();
        let row = d.row("plans", "p").unwrap();
        assert_eq!(
            (row.doc.as_deref(), row.server_version, row.state),
            (Some(r#"{"name":"A"}"#), 1, RecordState::Synced),
            "{answer}"
        );
        assert!(d.outbox().is_empty(), "{answer}");
        // Had it landed, the server's new version arrives with the pull.
        d.pull(vec![change("plans", "p", 2, Some(json!({"name": "B"})))]);
        assert_eq!(d.doc("plans", "p"), Some(json!({"name": "B"})), "{answer}");
    }
}
