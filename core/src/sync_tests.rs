//! Push answers and pulled pages applied to a real store, with the server's side written by hand:
//! every rule of reconciliation without a network.

use serde_json::{json, Value};
use tandem_protocol::MutationResult;

use crate::outbox::{self, EntryState, OpKind, OutboxEntry};
use crate::records::RecordState;
use crate::sync::conflict::{self, ConflictPolicy, ConflictReason};
use crate::sync::{pull, push};
use crate::test_device::{change, device, entity_ids, obj};

#[test]
fn take_batch_marks_in_flight_and_stops_at_a_second_entry_of_a_record() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    let first = d.take();
    assert_eq!(first.len(), 1);
    d.put("plans", "a", json!({"name": "a2"})); // in flight: a new entry
    d.put("plans", "b", json!({"name": "b"}));
    let batch = d.take();
    let ids = entity_ids(&batch);
    assert_eq!(
        ids,
        ["a"],
        "the interrupted entry is sent again, alone for its record"
    );
    assert_eq!(
        batch[0].op_id, first[0].op_id,
        "same op id: the server's idempotency makes it safe"
    );
    assert_eq!(batch[0].attempts, 2);
}

#[test]
fn take_batch_leaves_a_waiting_record_pending_and_takes_what_follows() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    d.put("plans", "held", json!({"name": "h"}));
    d.put("plans", "held", json!({"name": "h2"}));
    d.put("plans", "b", json!({"name": "b"}));
    let batch = d
        .engine
        .store()
        .write(|tx| outbox::take_batch(tx, 100, |e| Ok(e.entity_id == "held")))
        .unwrap();
    let ids = entity_ids(&batch);
    assert_eq!(ids, ["a", "b"]);
    let states: Vec<(String, EntryState)> = d.entry_states();
    assert!(states.contains(&("held".into(), EntryState::Pending)));
    assert!(!states.contains(&("held".into(), EntryState::Inflight)));
}

#[test]
fn send_after_the_rest_moves_a_records_entries_behind_the_others_in_order() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    let first = d.take(); // in flight, so the next write gets an entry of its own
    d.put("plans", "a", json!({"name": "a2"}));
    d.put("plans", "b", json!({"name": "b"}));
    d.engine
        .store()
        .write(|tx| outbox::send_after_the_rest(tx, "plans", "a"))
        .unwrap();
    let order: Vec<(String, EntryState)> = d.entry_states();
    assert_eq!(
        order,
        [
            ("b".into(), EntryState::Pending),
            ("a".into(), EntryState::Pending),
            ("a".into(), EntryState::Pending),
        ]
    );
    let again = d.take();
    assert_eq!(again[0].entity_id, "b");
    assert_eq!(again[1].op_id, first[0].op_id, "the same op, sent again");
}

#[test]
fn applied_marks_synced_and_chains_the_next_entry() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    let sent = d.take();
    d.put("plans", "a", json!({"name": "a2"}));
    let schema = d.engine.schema().clone();
    d.engine
        .store()
        .write(|tx| {
            push::apply_results(
                tx,
                &schema,
                &sent,
                &[MutationResult::applied(&sent[0].op_id, 1)],
                d.policy,
                0,
            )
        })
        .unwrap();
    assert_eq!(d.state("plans", "a"), RecordState::Pending);
    let next = d.unsent();
    assert_eq!(next.len(), 1);
    assert_eq!(
        next[0].base_version,
        Some(1),
        "the next change builds on the applied version"
    );
    d.push_applied(2);
    assert_eq!(d.state("plans", "a"), RecordState::Synced);
    assert_eq!(d.version("plans", "a"), 2);
    assert!(d.unsent().is_empty());
}

#[test]
fn duplicates_count_as_applied() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    let tally = d.push(|e| MutationResult::duplicate(&e.op_id, 1));
    assert_eq!(tally.duplicates, 1);
    assert_eq!(outcomes(&tally), [("a", push::Outcome::Duplicate)]);
    assert_eq!(d.state("plans", "a"), RecordState::Synced);
}

#[test]
fn a_confirmed_delete_forgets_the_record() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    d.push_applied(1);
    d.delete("plans", "a");
    d.push_applied(2);
    assert_eq!(d.row("plans", "a"), None);
}

#[test]
fn a_rejected_change_goes_to_dead_letters_and_the_queue_goes_on() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "bad", json!({"name": "x"}));
    d.put("plans", "good", json!({"name": "y"}));
    let tally = d.push(|e| {
        if e.entity_id == "bad" {
            MutationResult::rejected(&e.op_id, "invalid_payload")
        } else {
            MutationResult::applied(&e.op_id, 1)
        }
    });
    assert_eq!((tally.rejected, tally.applied), (1, 1));
    assert_eq!(
        outcomes(&tally),
        [
            ("bad", push::Outcome::Rejected("invalid_payload".into())),
            ("good", push::Outcome::Applied)
        ]
    );
    assert_eq!(d.state("plans", "bad"), RecordState::Rejected);
    assert_eq!(d.state("plans", "good"), RecordState::Synced);
    let dead = d.engine.store().read(outbox::rejected).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("invalid_payload"));
    assert!(d.take().is_empty(), "dead letters are not sent again");
}

#[test]
fn malformed_answers_change_nothing() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    let batch = d.take();
    let schema = d.engine.schema().clone();
    let wrong_id = d.engine.store().write(|tx| {
        push::apply_results(
            tx,
            &schema,
            &batch,
            &[MutationResult::applied("other", 1)],
            d.policy,
            0,
        )
    });
    assert!(matches!(wrong_id, Err(crate::Error::Protocol(_))));
    let too_few = d
        .engine
        .store()
        .write(|tx| push::apply_results(tx, &schema, &batch, &[], d.policy, 0));
    assert!(too_few.is_err());
    assert_eq!(d.unsent().len(), 1);
    assert_eq!(d.state("plans", "a"), RecordState::Pending);
}

/// Each pushed mutation's outcome, by record id, in the batch's order.
fn outcomes(tally: &push::PushTally) -> Vec<(&str, push::Outcome)> {
    tally
        .outcomes
        .iter()
        .map(|o| (o.id.as_str(), o.outcome.clone()))
        .collect()
}

fn conflict_answer(e: &OutboxEntry, version: i64, doc: Option<Value>) -> MutationResult {
    MutationResult::conflict(&e.op_id, "version_mismatch", Some(version), doc.map(obj))
}

#[test]
fn merge_policy_merges_different_fields_and_resends() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a", "notes": "n"}));
    d.push_applied(1);
    d.put("plans", "a", json!({"name": "local", "notes": "n"}));
    let tally = d.push(|e| conflict_answer(e, 2, Some(json!({"name": "a", "notes": "server"}))));
    assert_eq!(tally.conflicts, 1);
    assert!(tally.parked.is_empty());
    assert_eq!(outcomes(&tally), [("a", push::Outcome::ConflictSettled)]);
    assert_eq!(
        d.doc("plans", "a"),
        Some(json!({"name": "local", "notes": "server"}))
    );
    let resend = d.unsent();
    assert_eq!(resend.len(), 1);
    assert_eq!(resend[0].base_version, Some(2));
    assert_eq!(d.state("plans", "a"), RecordState::Pending);
}

#[test]
fn merge_policy_parks_a_field_changed_on_both_sides() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    d.push_applied(1);
    d.put("plans", "a", json!({"name": "local"}));
    let tally = d.push(|e| conflict_answer(e, 2, Some(json!({"name": "server"}))));
    assert_eq!(tally.parked, vec![("plans".to_string(), "a".to_string())]);
    assert_eq!(outcomes(&tally), [("a", push::Outcome::ConflictParked)]);
    assert_eq!(d.state("plans", "a"), RecordState::Conflicted);
    assert_eq!(
        d.doc("plans", "a"),
        Some(json!({"name": "local"})),
        "the user's change stays visible"
    );
    assert!(d.unsent().is_empty());
    let c = &d.conflicts()[0];
    assert_eq!(c.reason, ConflictReason::BothChanged);
    assert_eq!(c.fields, ["name"]);
    assert_eq!(c.server_version, 2);
    assert_eq!(c.local_doc.as_deref(), Some(r#"{"name":"local"}"#));
    assert_eq!(c.base_doc.as_deref(), Some(r#"{"name":"a"}"#));
}

#[test]
fn server_wins_and_client_wins() {
    let d = device(ConflictPolicy::ServerWins);
    d.put("plans", "a", json!({"name": "a"}));
    d.push_applied(1);
    d.put("plans", "a", json!({"name": "local"}));
    d.push(|e| conflict_answer(e, 2, Some(json!({"name": "server"}))));
    assert_eq!(d.doc("plans", "a"), Some(json!({"name": "server"})));
    assert_eq!(d.state("plans", "a"), RecordState::Synced);
    assert!(d.unsent().is_empty());

    let d = device(ConflictPolicy::ClientWins);
    d.put("plans", "a", json!({"name": "a"}));
    d.push_applied(1);
    d.put("plans", "a", json!({"name": "local"}));
    d.push(|e| conflict_answer(e, 2, Some(json!({"name": "server"}))));
    assert_eq!(d.doc("plans", "a"), Some(json!({"name": "local"})));
    assert_eq!(
        d.unsent()[0].base_version,
        Some(2),
        "rebased on the server version, sent again"
    );
}

#[test]
fn an_edit_against_a_server_delete_is_a_conflict() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    d.push_applied(1);
    d.put("plans", "a", json!({"name": "edited"}));
    d.push(|e| conflict_answer(e, 2, None));
    assert_eq!(
        d.conflicts()[0].reason,
        ConflictReason::LocalEditServerDelete
    );
    assert_eq!(d.state("plans", "a"), RecordState::Conflicted);
}

#[test]
fn pull_inserts_updates_skips_echoes_and_deletes() {
    let d = device(ConflictPolicy::Merge);
    let tally = d.pull(vec![
        change("plans", "a", 1, Some(json!({"name": "a"}))),
        change("nope", "x", 1, Some(json!({}))),
    ]);
    assert_eq!(
        (tally.applied, tally.skipped),
        (1, 1),
        "unknown collections are skipped"
    );
    assert_eq!(d.state("plans", "a"), RecordState::Synced);
    d.pull(vec![change("plans", "a", 3, Some(json!({"name": "a3"})))]);
    assert_eq!(d.doc("plans", "a"), Some(json!({"name": "a3"})));
    let tally = d.pull(vec![change("plans", "a", 3, Some(json!({"name": "echo"})))]);
    assert_eq!(tally.skipped, 1);
    assert_eq!(d.doc("plans", "a"), Some(json!({"name": "a3"})));
    d.pull(vec![change("plans", "a", 4, None)]);
    assert_eq!(d.doc("plans", "a"), None);
    assert_eq!(
        d.engine.store().read(pull::cursor).unwrap().as_deref(),
        Some("c1")
    );
}

#[test]
fn a_pulled_change_rebases_pending_local_changes() {
    let d = device(ConflictPolicy::Merge);
    d.pull(vec![change(
        "plans",
        "a",
        1,
        Some(json!({"name": "a", "notes": "n"})),
    )]);
    d.put("plans", "a", json!({"name": "local", "notes": "n"}));
    let tally = d.pull(vec![change(
        "plans",
        "a",
        2,
        Some(json!({"name": "a", "notes": "server"})),
    )]);
    assert!(tally.parked.is_empty());
    assert_eq!(
        d.doc("plans", "a"),
        Some(json!({"name": "local", "notes": "server"}))
    );
    let entry = &d.unsent()[0];
    assert_eq!(entry.base_version, Some(2));
    assert_eq!(
        entry.doc.as_deref(),
        Some(r#"{"name":"local","notes":"server"}"#)
    );
    assert_eq!(d.version("plans", "a"), 2);
}

#[test]
fn a_pulled_change_of_the_same_field_parks_a_conflict() {
    let d = device(ConflictPolicy::Merge);
    d.pull(vec![change("plans", "a", 1, Some(json!({"name": "a"})))]);
    d.put("plans", "a", json!({"name": "local"}));
    let tally = d.pull(vec![change(
        "plans",
        "a",
        2,
        Some(json!({"name": "server"})),
    )]);
    assert_eq!(tally.parked.len(), 1);
    assert_eq!(d.state("plans", "a"), RecordState::Conflicted);
    // A later server change keeps the open conflict current.
    d.pull(vec![change(
        "plans",
        "a",
        3,
        Some(json!({"name": "server3"})),
    )]);
    let c = &d.conflicts()[0];
    assert_eq!(
        (c.server_version, c.server_doc.as_deref()),
        (3, Some(r#"{"name":"server3"}"#))
    );
}

#[test]
fn a_pulled_delete_cascades_to_local_descendants() {
    let d = device(ConflictPolicy::Merge);
    d.pull(vec![change("plans", "p", 1, Some(json!({"name": "p"})))]);
    d.pull(vec![change(
        "plan_days",
        "synced_day",
        1,
        Some(json!({"planId": "p", "dayIndex": 0})),
    )]);
    d.put(
        "plan_days",
        "new_day",
        json!({"planId": "p", "dayIndex": 1}),
    ); // offline insert
    d.pull(vec![change("plans", "p", 2, None)]);
    assert_eq!(d.doc("plan_days", "synced_day"), None);
    assert_eq!(d.doc("plan_days", "new_day"), None, "nothing orphaned");
    assert!(
        d.unsent().is_empty(),
        "the orphan's create is dropped, not sent"
    );
}

#[test]
fn full_re_pull_sweeps_records_the_server_no_longer_has() {
    let d = device(ConflictPolicy::Merge);
    d.pull(vec![
        change("plans", "kept", 1, Some(json!({"name": "k"}))),
        change("plans", "gone", 1, Some(json!({"name": "g"}))),
    ]);
    d.put("plans", "local", json!({"name": "pending"}));
    let candidates = d.engine.store().read(pull::synced_records).unwrap();
    let mut seen = std::collections::HashSet::new();
    let schema = d.engine.schema().clone();
    d.engine
        .store()
        .write(|tx| {
            pull::apply_page(
                tx,
                &schema,
                &[change("plans", "kept", 1, Some(json!({"name": "k"})))],
                "c2",
                d.policy,
                0,
                Some(&mut seen),
            )
        })
        .unwrap();
    d.engine
        .store()
        .write(|tx| pull::sweep_missing(tx, &schema, &candidates, &seen, 0))
        .unwrap();
    assert!(d.doc("plans", "kept").is_some());
    assert!(d.doc("plans", "gone").is_none());
    assert!(
        d.doc("plans", "local").is_some(),
        "pending changes are kept"
    );
}

#[test]
fn a_full_re_pull_replaces_a_record_held_at_the_same_version_with_other_content() {
    // A server from before versions outlived purges could hand a record created again the
    // version its old incarnation had here; an incremental pull takes that for an echo, a full
    // re-pull compares the content.
    let d = device(ConflictPolicy::Merge);
    d.pull(vec![change("plans", "p", 1, Some(json!({"name": "old"})))]);
    let same = change("plans", "p", 1, Some(json!({"name": "new"})));
    assert_eq!(d.pull(vec![same.clone()]).skipped, 1);
    let mut seen = std::collections::HashSet::new();
    let schema = d.engine.schema().clone();
    let tally = d
        .engine
        .store()
        .write(|tx| pull::apply_page(tx, &schema, &[same], "c2", d.policy, 0, Some(&mut seen)))
        .unwrap();
    assert_eq!((tally.applied, tally.skipped), (1, 0));
    assert_eq!(d.doc("plans", "p"), Some(json!({"name": "new"})));
}

#[test]
fn mutations_carry_the_protocol_fields() {
    let d = device(ConflictPolicy::Merge);
    d.put("plans", "a", json!({"name": "a"}));
    d.push_applied(1);
    d.delete("plans", "a");
    let entry = &d.take()[0];
    assert_eq!(entry.op, OpKind::Delete);
    let m = push::to_mutation(entry).unwrap();
    let wire = serde_json::to_value(&m).unwrap();
    assert_eq!(wire["type"], "delete");
    assert_eq!(wire["baseVersion"], 1);
    assert!(wire.get("payload").is_none());
    assert!(wire["clientTime"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_full_pull_holds_a_child_hidden_until_its_parent_arrives() {
    let d = device(ConflictPolicy::Merge);
    // The parent changed after the child was created, so the server sends it later.
    d.pull(vec![change(
        "plan_days",
        "d",
        1,
        Some(json!({"planId": "p", "dayIndex": 0})),
    )]);
    assert_eq!(
        d.doc("plan_days", "d"),
        None,
        "never a child without its parent"
    );
    d.pull(vec![change("plans", "p", 2, Some(json!({"name": "P"})))]);
    assert_eq!(
        d.doc("plan_days", "d"),
        Some(json!({"planId": "p", "dayIndex": 0}))
    );
    assert_eq!(d.state("plan_days", "d"), RecordState::Synced);
}

#[test]
fn a_day_the_server_moves_under_a_plan_deleted_here_hides_with_it() {
    let d = device(ConflictPolicy::Merge);
    d.pull(vec![
        change("plans", "x", 1, Some(json!({"name": "X"}))),
        change("plans", "y", 1, Some(json!({"name": "Y"}))),
        change(
            "plan_days",
            "d",
            1,
            Some(json!({"planId": "y", "dayIndex": 0})),
        ),
    ]);
    d.delete("plans", "x");
    d.pull(vec![change(
        "plan_days",
        "d",
        2,
        Some(json!({"planId": "x", "dayIndex": 0})),
    )]);
    assert_eq!(
        d.doc("plan_days", "d"),
        None,
        "hidden: its new parent is gone here"
    );
    assert!(
        d.row("plan_days", "d").is_some(),
        "kept for the parent's fate"
    );
    // The delete of x met an edit: the server's x comes back, and d with it.
    d.push(|e| {
        MutationResult::conflict(
            &e.op_id,
            "version_mismatch",
            Some(2),
            Some(obj(json!({"name": "X2"}))),
        )
    });
    let open = d.engine.store().read(conflict::list).unwrap();
    assert_eq!(open[0].reason, ConflictReason::LocalDeleteServerEdit);
    crate::sync::resolve::resolve(
        &d.engine,
        "plans",
        "x",
        crate::sync::resolve::Resolution::KeepServer,
    )
    .unwrap();
    assert_eq!(d.doc("plans", "x"), Some(json!({"name": "X2"})));
    assert_eq!(
        d.doc("plan_days", "d"),
        Some(json!({"planId": "x", "dayIndex": 0}))
    );
    assert!(
        d.take().is_empty(),
        "nothing to send: all of it is the server's"
    );
}
