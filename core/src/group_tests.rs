//! Atomic groups on the client: what a `write` batch records, how coalescing keeps groups whole,
//! how push batches take them, and what a failed group does, with the server's answers written
//! by hand.

use serde_json::{json, Value};
use tandem_protocol::{ConflictCode, MutationResult, RejectionCode, MAX_GROUP_SIZE};

use crate::engine::{now_ms, WriteOp};
use crate::outbox::{EntryState, OutboxEntry};
use crate::sync::conflict::ConflictPolicy;
use crate::sync::push::{self, Outcome};
use crate::sync::resolve::{self, Resolution};
use crate::test_device::{device, entity_ids, obj, put_op};

/// Answers `failing` with a rejection and every other entry `aborted`, as the server does.
fn reject_one<'a>(
    failing: &'a str,
    batch_op: &'a str,
) -> impl Fn(&OutboxEntry) -> MutationResult + 'a {
    move |e| {
        if e.entity_id == failing {
            MutationResult::rejected(&e.op_id, RejectionCode::InvalidPayload)
        } else {
            MutationResult::aborted(&e.op_id, batch_op)
        }
    }
}

/// Answers `failing` with a version mismatch (the server at version 2 with `server_doc`) and
/// every other entry `aborted`, as the server does.
fn conflict_one<'a>(
    failing: &'a str,
    server_doc: Value,
    batch_op: &'a str,
) -> impl Fn(&OutboxEntry) -> MutationResult + 'a {
    let server_doc = obj(server_doc);
    move |e| {
        if e.entity_id == failing {
            MutationResult::conflict(
                &e.op_id,
                ConflictCode::VersionMismatch,
                Some(2),
                Some(server_doc.clone()),
            )
        } else {
            MutationResult::aborted(&e.op_id, batch_op)
        }
    }
}

#[test]
fn a_batch_is_one_group_and_a_single_write_has_none() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "a", json!({"name": "a"})),
        put_op("plans", "b", json!({"name": "b"})),
        put_op("plan_days", "d", json!({"planId": "a", "dayIndex": 0})),
    ]);
    d.write(vec![put_op("plans", "solo", json!({"name": "s"}))]);
    let entries = d.outbox();
    let group = entries[0].group_id.clone().expect("a batch has a group");
    assert!(entries[..3]
        .iter()
        .all(|e| e.group_id.as_deref() == Some(&group)));
    assert_eq!(entries[3].group_id, None);
    // On the wire too.
    let m = push::to_mutation(&entries[1]).unwrap();
    assert_eq!(m.group_id.as_deref(), Some(group.as_str()));
    assert_eq!(push::to_mutation(&entries[3]).unwrap().group_id, None);
}

#[test]
fn a_batch_larger_than_a_group_is_a_bulk_write_without_a_group() {
    let d = device(ConflictPolicy::Merge);
    // The largest group.
    let ops: Vec<WriteOp> = (0..MAX_GROUP_SIZE)
        .map(|i| put_op("plans", &format!("p{i}"), json!({"name": "x"})))
        .collect();
    d.write(ops);
    let entries = d.outbox();
    assert_eq!(entries.len(), MAX_GROUP_SIZE);
    assert!(entries[0].group_id.is_some());
    assert!(entries.iter().all(|e| e.group_id == entries[0].group_id));
    // One more op: written whole, its changes sent as separate changes.
    let ops: Vec<WriteOp> = (0..=MAX_GROUP_SIZE)
        .map(|i| put_op("exercises", &format!("e{i}"), json!({"name": "x"})))
        .collect();
    d.write(ops);
    let bulk: Vec<_> = d
        .outbox()
        .into_iter()
        .filter(|e| e.collection == "exercises")
        .collect();
    assert_eq!(bulk.len(), MAX_GROUP_SIZE + 1);
    assert!(bulk.iter().all(|e| e.group_id.is_none()));
}

#[test]
fn a_later_edit_folds_into_its_group_and_a_later_batch_merges_with_it() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "a", json!({"name": "a"})),
        put_op("plans", "b", json!({"name": "b"})),
    ]);
    d.write(vec![put_op("plans", "solo", json!({"name": "s"}))]);
    let first = d.outbox();
    // A lone edit of a grouped record: same entry, same group, the newer document.
    d.write(vec![put_op("plans", "a", json!({"name": "a2"}))]);
    let after = d.outbox();
    assert_eq!(after.len(), 3);
    assert_eq!(after[0].op_id, first[0].op_id);
    assert_eq!(after[0].group_id, first[0].group_id);
    assert_eq!(after[0].doc.as_deref(), Some(r#"{"name":"a2"}"#));
    // Another batch touching `b` and `c`: `b`'s entry now carries both batches' change, so the
    // two batches become one group (each stays whole); the lone change stays alone.
    d.write(vec![
        put_op("plans", "b", json!({"name": "b2"})),
        put_op("plans", "c", json!({"name": "c"})),
    ]);
    let entries = d.outbox();
    let ids: Vec<&str> = entries.iter().map(|e| e.entity_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "solo", "c"], "one entry per record");
    let merged = entries[0].group_id.clone();
    assert!(merged.is_some());
    assert_ne!(
        merged, first[0].group_id,
        "the earlier group joined the later batch's"
    );
    assert_eq!(entries[1].group_id, merged);
    assert_eq!(entries[3].group_id, merged);
    assert_eq!(entries[2].group_id, None);
    // The merged group goes whole, in its order, the lone change where it stood.
    let batch = d.take_up_to(2);
    assert_eq!(entity_ids(&batch), ["a", "b", "c"]);
}

#[test]
fn a_delete_in_another_batch_folds_into_a_grouped_change_and_merges_the_groups() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "a", json!({"name": "a"})),
        put_op("plans", "b", json!({"name": "b"})),
    ]);
    d.push(|e| MutationResult::applied(&e.op_id, 1));
    d.write(vec![
        put_op("plans", "a", json!({"name": "a2"})),
        put_op("plans", "b", json!({"name": "b2"})),
    ]);
    d.write(vec![
        WriteOp::Delete {
            collection: "plans".into(),
            id: "a".into(),
        },
        put_op("plans", "c", json!({"name": "c"})),
    ]);
    let entries = d.outbox();
    let kinds: Vec<(&str, bool)> = entries
        .iter()
        .map(|e| (e.entity_id.as_str(), e.doc.is_none()))
        .collect();
    assert_eq!(kinds, vec![("a", true), ("b", false), ("c", false)]);
    assert!(entries.iter().all(|e| e.group_id == entries[0].group_id));
}

#[test]
fn a_merge_beyond_the_largest_group_adds_an_entry_instead() {
    let d = device(ConflictPolicy::Merge);
    let ops: Vec<WriteOp> = (0..MAX_GROUP_SIZE - 1)
        .map(|i| put_op("plans", &format!("p{i}"), json!({"name": "x"})))
        .collect();
    d.write(ops);
    d.write(vec![
        put_op("plans", "p0", json!({"name": "again"})),
        put_op("plans", "new", json!({"name": "n"})),
    ]);
    let entries = d.outbox();
    assert_eq!(entries.len(), MAX_GROUP_SIZE + 1, "p0 has a second entry");
    let big = entries[0].group_id.clone();
    let small = entries[MAX_GROUP_SIZE].group_id.clone();
    assert_ne!(big, small);
    assert_eq!(entries[MAX_GROUP_SIZE - 1].entity_id, "p0");
    assert_eq!(entries[MAX_GROUP_SIZE - 1].group_id, small);
    // The large group goes first, alone; the batch after it once p0's first change is answered.
    let (batch, _) = d.push_up_to(1000, |e| MutationResult::applied(&e.op_id, 1));
    assert_eq!(batch.len(), MAX_GROUP_SIZE - 1);
    let batch = d.take_up_to(1000);
    assert_eq!(entity_ids(&batch), ["p0", "new"]);
}

#[test]
fn a_push_batch_never_splits_a_group() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "solo", json!({"name": "s"}))]);
    d.write(vec![
        put_op("plans", "a", json!({"name": "a"})),
        put_op("plans", "b", json!({"name": "b"})),
        put_op("plans", "c", json!({"name": "c"})),
    ]);
    d.write(vec![put_op("plans", "last", json!({"name": "l"}))]);
    // Two fit: the lone change, then the group does not fit behind it.
    let (batch, _) = d.push_up_to(2, |e| MutationResult::applied(&e.op_id, 1));
    assert_eq!(entity_ids(&batch), ["solo"]);
    // A group larger than the limit goes whole, alone.
    let (batch, _) = d.push_up_to(2, |e| MutationResult::applied(&e.op_id, 1));
    assert_eq!(entity_ids(&batch), ["a", "b", "c"]);
    let (batch, _) = d.push_up_to(2, |e| MutationResult::applied(&e.op_id, 1));
    assert_eq!(entity_ids(&batch), ["last"]);
    assert!(d.outbox().is_empty());
}

#[test]
fn a_lost_answer_sends_the_same_group_again() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "a", json!({"name": "a"})),
        put_op("plans", "b", json!({"name": "b"})),
    ]);
    let first = d.take();
    // No answer: the next batch is the same group, same op ids, and a later edit waits.
    d.write(vec![put_op("plans", "a", json!({"name": "a2"}))]);
    let again = d.take_up_to(1);
    assert_eq!(
        again.iter().map(|e| &e.op_id).collect::<Vec<_>>(),
        first.iter().map(|e| &e.op_id).collect::<Vec<_>>()
    );
    assert!(again.iter().all(|e| e.group_id == first[0].group_id));
}

#[test]
fn a_rejected_member_holds_its_group_until_discarded() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "a", json!({"name": "a"})),
        put_op("plans", "bad", json!({"name": "b"})),
        put_op("plans", "c", json!({"name": "c"})),
    ]);
    d.write(vec![put_op("plans", "other", json!({"name": "o"}))]);
    let ops = d.outbox();
    let bad_op = ops[1].op_id.clone();
    let tally = d.push(|e| match e.entity_id.as_str() {
        "other" => MutationResult::applied(&e.op_id, 1),
        _ => reject_one("bad", &bad_op)(e),
    });
    let outcomes: Vec<(&str, Outcome)> = tally
        .outcomes
        .iter()
        .map(|o| (o.id.as_str(), o.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("a", Outcome::WaitsForGroup(bad_op.clone())),
            ("bad", Outcome::Rejected("invalid_payload".into())),
            ("c", Outcome::WaitsForGroup(bad_op.clone())),
            ("other", Outcome::Applied),
        ]
    );
    assert_eq!(tally.rejected, 1);
    // The rest of the group is neither lost nor a dead letter: pending, held back.
    let states: Vec<(String, EntryState)> = d
        .outbox()
        .into_iter()
        .map(|e| (e.entity_id, e.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("a".into(), EntryState::Pending),
            ("bad".into(), EntryState::Rejected),
            ("c".into(), EntryState::Pending),
        ]
    );
    assert!(d.take().is_empty(), "held while the dead letter stays");
    // The user corrects the record, then discards the dead letter: the correction takes its
    // place and the group goes whole.
    d.write(vec![put_op("plans", "bad", json!({"name": "fixed"}))]);
    assert!(d.take().is_empty());
    resolve::discard_rejected(&d.engine, &bad_op).unwrap();
    let batch = d.take();
    assert_eq!(
        entity_ids(&batch),
        ["a", "bad", "c"],
        "in the dead letter's place"
    );
    assert!(batch.iter().all(|e| e.group_id == batch[0].group_id));
}

#[test]
fn a_parked_conflict_holds_its_group_until_resolved() {
    let d = device(ConflictPolicy::Manual);
    d.write(vec![put_op("plans", "p", json!({"name": "v1"}))]);
    d.push(|e| MutationResult::applied(&e.op_id, 1));
    d.write(vec![
        put_op("plans", "p", json!({"name": "mine"})),
        put_op("plans", "q", json!({"name": "q"})),
    ]);
    let p_op = d.outbox()[0].op_id.clone();
    let tally = d.push(conflict_one("p", json!({"name": "theirs"}), &p_op));
    assert_eq!(tally.parked, vec![("plans".into(), "p".into())]);
    assert_eq!(
        tally.outcomes[1].outcome,
        Outcome::WaitsForGroup(p_op.clone())
    );
    assert!(d.take().is_empty(), "q waits for p's conflict");
    // A lone edit of q meanwhile stays in the group.
    d.write(vec![put_op("plans", "q", json!({"name": "q2"}))]);
    assert!(d.take().is_empty());
    resolve::resolve(&d.engine, "plans", "p", Resolution::KeepMine).unwrap();
    let batch = d.take();
    assert_eq!(entity_ids(&batch), ["p", "q"], "p back in its place");
    assert_eq!(batch[0].group_id, batch[1].group_id);
    assert_eq!(batch[0].base_version, Some(2));
    assert_eq!(batch[1].doc.as_deref(), Some(r#"{"name":"q2"}"#));
}

#[test]
fn a_conflict_the_policy_settles_goes_again_with_its_group() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "v1"}))]);
    d.push(|e| MutationResult::applied(&e.op_id, 1));
    d.write(vec![
        put_op("plans", "p", json!({"name": "v1", "notes": "mine"})),
        put_op("plans", "q", json!({"name": "q"})),
    ]);
    let p_op = d.outbox()[0].op_id.clone();
    d.push(conflict_one("p", json!({"name": "renamed"}), &p_op));
    // Merged cleanly and rebased: the whole group goes again at once, p in its place.
    let batch = d.take();
    assert_eq!(entity_ids(&batch), ["p", "q"]);
    assert_eq!(batch[0].group_id, batch[1].group_id);
    assert_eq!(
        batch[0].doc.as_deref(),
        Some(r#"{"name":"renamed","notes":"mine"}"#)
    );
}

#[test]
fn a_member_refused_for_its_parent_takes_its_group_behind_the_parent() {
    let d = device(ConflictPolicy::Merge);
    d.write(vec![put_op("plans", "p", json!({"name": "p"}))]);
    let _inflight = d.take(); // p's creation is in flight, unanswered
    d.write(vec![
        put_op("plan_days", "d", json!({"planId": "p", "dayIndex": 0})),
        put_op("plans", "q", json!({"name": "q"})),
    ]);
    d.write(vec![put_op("plans", "z", json!({"name": "z"}))]);
    let d_op = d.outbox()[1].op_id.clone();
    let schema = d.engine.schema().clone();
    // The server has not seen p: d is refused for its parent, q aborted.
    let batch: Vec<OutboxEntry> = d
        .outbox()
        .into_iter()
        .filter(|e| e.entity_id == "d" || e.entity_id == "q")
        .collect();
    let results = vec![
        MutationResult::rejected(&batch[0].op_id, RejectionCode::InvalidParent),
        MutationResult::aborted(&batch[1].op_id, &d_op),
    ];
    let tally = d
        .engine
        .store()
        .write(|tx| push::apply_results(tx, &schema, &batch, &results, d.policy, now_ms()))
        .unwrap();
    assert_eq!(tally.outcomes[0].outcome, Outcome::WaitsForParent);
    let order: Vec<String> = d.outbox().into_iter().map(|e| e.entity_id).collect();
    assert_eq!(
        order,
        ["p", "z", "d", "q"],
        "the group moved whole, in order"
    );
}

#[test]
fn a_settled_parent_goes_again_before_its_children() {
    // A batch creates a plan and a day under it; the plan's id meets a deleted record on the
    // server. Kept, the plan must still reach the server before its day, in the same group.
    let d = device(ConflictPolicy::Merge);
    d.write(vec![
        put_op("plans", "p", json!({"name": "mine"})),
        put_op("plan_days", "d", json!({"planId": "p", "dayIndex": 0})),
    ]);
    d.write(vec![put_op("plans", "other", json!({"name": "o"}))]);
    let p_op = d.outbox()[0].op_id.clone();
    let tally = d.push(|e| match e.entity_id.as_str() {
        "p" => MutationResult::conflict(&e.op_id, ConflictCode::Deleted, Some(2), None),
        "d" => MutationResult::aborted(&e.op_id, &p_op),
        _ => MutationResult::applied(&e.op_id, 1),
    });
    assert_eq!(tally.parked, vec![("plans".into(), "p".into())]);
    assert!(d.take().is_empty(), "the day waits for its plan's conflict");
    resolve::resolve(&d.engine, "plans", "p", Resolution::KeepMine).unwrap();
    let batch = d.take();
    assert_eq!(entity_ids(&batch), ["p", "d"]);
    assert_eq!(batch[0].base_version, Some(2));
    assert_eq!(batch[0].group_id, batch[1].group_id);
}
