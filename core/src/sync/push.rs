//! The push half of a sync run: outbox entries become protocol mutations, and the server's
//! answers are applied to records and the outbox in one transaction.

use std::collections::BTreeSet;

use rusqlite::Transaction;
use serde_json::Value;
use tandem_protocol::{Mutation, MutationResult, MutationType, PushResponse, ResultStatus, Schema};

use super::conflict::{self, ConflictPolicy};
use super::merge::parse_object;
use super::reconcile::{self, ServerState};
use crate::error::{Error, Result};
use crate::outbox::{self, OpKind, OutboxEntry};
use crate::records::{self, RecordRow, RecordState};

/// What one batch's answers did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PushTally {
    pub applied: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    pub rejected: u64,
    /// Conflicts left to the app by this batch (collection, id).
    pub parked: Vec<(String, String)>,
    pub changed: BTreeSet<String>,
    /// What became of each mutation, in the batch's order.
    pub outcomes: Vec<PushOutcome>,
}

/// What became of one pushed mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    pub op_id: String,
    pub collection: String,
    pub id: String,
    pub outcome: Outcome,
}

/// The server's answer to one mutation, and what the client made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The server had applied this op id before (a retried request).
    Duplicate,
    /// A conflict the policy settled.
    ConflictSettled,
    /// A conflict left to the app.
    ConflictParked,
    /// Refused by the server, with its reason.
    Rejected(String),
    /// Refused for a parent whose own change has not landed yet (its put met a conflict, or is
    /// still to be sent): the change waits, unsent, behind it instead of becoming a dead letter.
    WaitsForParent,
    /// Not applied because another member of its group (the op id here) met a conflict or a
    /// rejection: the change waits, pending, and goes again with its group once that member is
    /// settled.
    WaitsForGroup(String),
}

/// Splits a window taken from the outbox (`outbox::take_batch`, in its order) into push batches
/// of at most `limit` entries, each group whole: a group's members are next to each other in the
/// window, and one that does not fit after what a batch already holds starts the next batch (a
/// group larger than `limit` goes alone, as `take_batch` would send it).
pub fn split_batches(window: Vec<OutboxEntry>, limit: usize) -> Vec<Vec<OutboxEntry>> {
    let limit = limit.max(1);
    let mut batches: Vec<Vec<OutboxEntry>> = Vec::new();
    let mut current: Vec<OutboxEntry> = Vec::with_capacity(limit.min(window.len()));
    let mut entries = window.into_iter().peekable();
    while let Some(first) = entries.next() {
        let mut unit = vec![first];
        if let Some(group) = unit[0].group_id.clone() {
            while let Some(next) = entries.next_if(|e| e.group_id.as_deref() == Some(&group)) {
                unit.push(next);
            }
        }
        if !current.is_empty() && current.len() + unit.len() > limit {
            batches.push(std::mem::take(&mut current));
        }
        current.extend(unit);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Whether every answer of a push is `applied` or `duplicate`: writing them only confirms the
/// records they name, so the next batch of the window may leave before they are written.
pub fn all_landed(answer: &PushResponse) -> bool {
    answer
        .results
        .iter()
        .all(|r| matches!(r.status, ResultStatus::Applied | ResultStatus::Duplicate))
}

/// The mutation that sends `entry`.
pub fn to_mutation(entry: &OutboxEntry) -> Result<Mutation> {
    let payload = match (&entry.op, &entry.doc) {
        (OpKind::Upsert, Some(doc)) => match serde_json::from_str(doc) {
            Ok(Value::Object(map)) => Some(map),
            _ => {
                return Err(Error::Corrupt(format!(
                    "outbox entry {} has no object document",
                    entry.op_id
                )))
            }
        },
        (OpKind::Upsert, None) => {
            return Err(Error::Corrupt(format!(
                "outbox entry {} is an upsert without a document",
                entry.op_id
            )))
        }
        (OpKind::Delete, _) => None,
    };
    Ok(Mutation {
        op_id: entry.op_id.clone(),
        entity: entry.collection.clone(),
        entity_id: entry.entity_id.clone(),
        kind: match entry.op {
            OpKind::Upsert => MutationType::Upsert,
            OpKind::Delete => MutationType::Delete,
        },
        base_version: entry.base_version,
        payload,
        client_time: super::rfc3339(entry.created_at),
        group_id: entry.group_id.clone(),
        edited_at: entry.edited_at.as_deref().and_then(|t| t.parse().ok()),
        field_edited_at: Some(crate::edit_time::parse_times(entry.field_times.as_deref()))
            .filter(|t| !t.is_empty()),
        space: entry.space_id.clone(),
    })
}

/// After a push answer: the edit clock sees the server's time and the edit times of conflicting
/// server states, and each record whose change landed has its edit times cut to what the server
/// kept of them (no later than the server's time + the skew bound, as it clamped them).
pub fn note_edit_times(
    tx: &Transaction<'_>,
    clock: &crate::edit_time::EditClock,
    batch: &[OutboxEntry],
    answer: &PushResponse,
) -> Result<()> {
    let seen = answer
        .results
        .iter()
        .flat_map(|r| r.server_edited_at.iter());
    clock.observe(tx, answer.server_time.as_ref(), seen)?;
    let Some(server_time) = &answer.server_time else {
        return Ok(());
    };
    let limit = server_time
        .ms
        .saturating_add(tandem_protocol::MAX_CLOCK_SKEW_MS);
    for (entry, result) in batch.iter().zip(&answer.results) {
        if matches!(
            result.status,
            ResultStatus::Applied | ResultStatus::Duplicate
        ) {
            cut_times(tx, entry, limit)?;
        }
    }
    Ok(())
}

/// Cuts the edit times of `entry`'s record to `limit` (what the server kept of them).
fn cut_times(tx: &Transaction<'_>, entry: &OutboxEntry, limit: i64) -> Result<()> {
    let Some(row) = records::load(tx, &entry.collection, &entry.entity_id)? else {
        return Ok(());
    };
    let (at, fields) =
        crate::edit_time::clamp_texts(row.edited_at.as_deref(), row.field_times.as_deref(), limit);
    if at != row.edited_at || fields != row.field_times {
        records::set_times(
            tx,
            &row.collection,
            &row.id,
            at.as_deref(),
            fields.as_deref(),
        )?;
    }
    Ok(())
}

/// Applies the server's `results` for `batch` (same order, one each). A malformed answer changes
/// nothing: the entries stay in flight and are sent again, which op-id idempotency makes safe. The
/// push loop runs [`apply_answer`], which does this and [`note_edit_times`] in one pass.
#[cfg(test)]
pub fn apply_results(
    tx: &Transaction<'_>,
    schema: &Schema,
    batch: &[OutboxEntry],
    results: &[MutationResult],
    policy: ConflictPolicy,
    now: i64,
) -> Result<PushTally> {
    Ok(apply_results_clamping(tx, schema, batch, results, policy, now, None)?.0)
}

/// [`apply_results`] then [`note_edit_times`], as the push loop runs them. When every answer
/// landed (`applied`/`duplicate`), each confirmed record has its edit times cut while it is
/// written, so it is read once, not twice; the records it could not cut that way (none in the
/// usual case) are cut after, as [`note_edit_times`] does.
pub fn apply_answer(
    tx: &Transaction<'_>,
    schema: &Schema,
    clock: &crate::edit_time::EditClock,
    batch: &[OutboxEntry],
    answer: &PushResponse,
    policy: ConflictPolicy,
    now: i64,
) -> Result<PushTally> {
    let limit = answer
        .server_time
        .as_ref()
        .map(|t| t.ms.saturating_add(tandem_protocol::MAX_CLOCK_SKEW_MS));
    let clamp = limit.filter(|_| all_landed(answer));
    let (tally, uncut) =
        apply_results_clamping(tx, schema, batch, &answer.results, policy, now, clamp)?;
    if clamp.is_none() {
        return note_edit_times(tx, clock, batch, answer).map(|()| tally);
    }
    let seen = answer
        .results
        .iter()
        .flat_map(|r| r.server_edited_at.iter());
    clock.observe(tx, answer.server_time.as_ref(), seen)?;
    if let Some(limit) = limit {
        for entry in uncut.into_iter().map(|i| &batch[i]) {
            cut_times(tx, entry, limit)?;
        }
    }
    Ok(tally)
}

/// [`apply_results`]; with `clamp`, each record confirmed has its edit times cut to it as it is
/// written. Also returns the indexes of the landed entries whose record was not cut that way.
fn apply_results_clamping(
    tx: &Transaction<'_>,
    schema: &Schema,
    batch: &[OutboxEntry],
    results: &[MutationResult],
    policy: ConflictPolicy,
    now: i64,
    clamp: Option<i64>,
) -> Result<(PushTally, Vec<usize>)> {
    check_answers_match(batch, results)?;
    let mut tally = PushTally::default();
    let mut uncut = Vec::new();
    for (index, (entry, result)) in batch.iter().zip(results).enumerate() {
        if !outbox::exists(tx, entry.seq)? {
            // Reverted while in flight: its answer changes nothing here. Had it landed, the pull
            // brings the server's new state like any other device's change.
            tracing::debug!(collection = %entry.collection, id = %entry.entity_id, "answer to a reverted change ignored");
            if matches!(
                result.status,
                ResultStatus::Applied | ResultStatus::Duplicate
            ) {
                uncut.push(index);
            }
            continue;
        }
        let outcome = match result.status {
            ResultStatus::Applied | ResultStatus::Duplicate => {
                let version = result.version.ok_or_else(|| {
                    Error::Protocol(format!("result {} has no version", result.op_id))
                })?;
                if !confirm(tx, schema, entry, version, now, clamp)? {
                    uncut.push(index);
                }
                if result.status == ResultStatus::Applied {
                    tally.applied += 1;
                    Outcome::Applied
                } else {
                    tally.duplicates += 1;
                    Outcome::Duplicate
                }
            }
            ResultStatus::Conflict
                if result.reason.as_deref() == Some("unique_violation")
                    && result.existing_id.is_some() =>
            {
                let server = server_state(result);
                tally.conflicts += 1;
                match records::load(tx, &entry.collection, &entry.entity_id)? {
                    Some(row) => {
                        let existing = result.existing_id.as_deref().unwrap_or_default();
                        reconcile::park_unique(
                            tx,
                            schema,
                            &row,
                            &server,
                            entry.base_doc.as_deref(),
                            existing,
                            now,
                        )?;
                        tracing::info!(collection = %entry.collection, id = %entry.entity_id, existing_id = existing, "unique key held by another record; left to the app");
                        tally
                            .parked
                            .push((entry.collection.clone(), entry.entity_id.clone()));
                    }
                    None => outbox::remove(tx, entry.seq)?,
                }
                Outcome::ConflictParked
            }
            ResultStatus::Conflict => {
                let server = server_state(result);
                tally.conflicts += 1;
                if settle_conflict(tx, schema, entry, &server, policy, now)? {
                    tracing::info!(collection = %entry.collection, id = %entry.entity_id, "push conflict left to the app");
                    tally
                        .parked
                        .push((entry.collection.clone(), entry.entity_id.clone()));
                    Outcome::ConflictParked
                } else {
                    Outcome::ConflictSettled
                }
            }
            ResultStatus::Rejected
                if (result.reason.as_deref() == Some("invalid_parent")
                    && parent_unsettled(tx, schema, entry)?)
                    || (result.reason.as_deref() == Some("invalid_reference")
                        && reference_unsettled(tx, schema, entry)?) =>
            {
                tracing::debug!(collection = %entry.collection, id = %entry.entity_id, "push waits for its parent");
                match &entry.group_id {
                    // The whole group waits behind the parent, in its order.
                    Some(group) => outbox::send_group_after_the_rest(tx, group)?,
                    None => outbox::send_after_the_rest(tx, &entry.collection, &entry.entity_id)?,
                }
                drop_if_hidden(tx, entry)?;
                Outcome::WaitsForParent
            }
            ResultStatus::Aborted => {
                let failed = result.failed_op_id.clone().unwrap_or_default();
                tracing::debug!(collection = %entry.collection, id = %entry.entity_id, failed_op = %failed, "group member not applied; waits for its group");
                outbox::requeue(tx, entry.seq)?;
                drop_if_hidden(tx, entry)?;
                Outcome::WaitsForGroup(failed)
            }
            ResultStatus::Rejected => {
                let reason = result.reason.as_deref().unwrap_or("rejected");
                tracing::warn!(collection = %entry.collection, id = %entry.entity_id, op_id = %entry.op_id, reason, "change rejected by the server");
                dead_letter(tx, entry, reason, now)?;
                tally.rejected += 1;
                Outcome::Rejected(reason.to_string())
            }
        };
        tally.outcomes.push(PushOutcome {
            op_id: entry.op_id.clone(),
            collection: entry.collection.clone(),
            id: entry.entity_id.clone(),
            outcome,
        });
        tally.changed.insert(entry.collection.clone());
    }
    Ok((tally, uncut))
}

/// A change that was in flight when the user deleted its record's parent here came back not
/// applied (its group aborted, or it waits for its parent): the record hid with the delete
/// (`reconcile::cascade_local_delete`), which dropped its pending changes and kept this one only
/// for its answer, so it goes now too. Sent again, it would follow the parent's delete into its
/// group and fail it for ever (seed 48). A record the server never had goes with it; one it has
/// stays hidden with the server's document.
/// Makes `entry` a dead letter with `reason` and its record `rejected`: what a server rejection
/// does, and what a permanent attachment upload failure does to the changes naming it.
pub fn dead_letter(
    tx: &Transaction<'_>,
    entry: &OutboxEntry,
    reason: &str,
    now: i64,
) -> Result<()> {
    outbox::reject(tx, entry.seq, reason, now)?;
    if let Some(mut row) = records::load(tx, &entry.collection, &entry.entity_id)? {
        row.state = RecordState::Rejected;
        records::save(tx, &row)?;
    }
    Ok(())
}

fn drop_if_hidden(tx: &Transaction<'_>, entry: &OutboxEntry) -> Result<()> {
    let (collection, id) = (entry.collection.as_str(), entry.entity_id.as_str());
    let Some(row) = records::load(tx, collection, id)? else {
        return Ok(());
    };
    if !(row.deleted && row.doc.is_some()) {
        return Ok(());
    }
    tracing::debug!(
        collection,
        id,
        "a change of a record hidden since it left dropped"
    );
    outbox::drop_pending(tx, collection, id)?;
    match row.server_doc.clone() {
        // It hid with the document of the change in flight, which never landed: it keeps the
        // server's, to show again with its parent if the parent's delete does not land either.
        Some(doc) if row.server_version > 0 => records::save(
            tx,
            &RecordRow {
                doc: Some(doc),
                ..row
            },
        ),
        _ if !outbox::has_entries(tx, collection, id)? => records::remove(tx, collection, id),
        _ => Ok(()),
    }
}

/// The parent (collection, id) an upsert's document names, if its collection has one.
fn parent_named(schema: &Schema, collection: &str, doc: Option<&str>) -> Option<(String, String)> {
    let declared = schema.collection(collection)?;
    let parent = declared.parent.as_ref()?;
    let doc = parse_object(doc?).ok()?;
    let id = declared.parent_id(&doc)?;
    Some((parent.collection.clone(), id.to_string()))
}

/// Whether the parent of `entry` has a change of its own that has not landed: unsent entries,
/// or an open conflict the user has not settled yet.
fn parent_unsettled(tx: &Transaction<'_>, schema: &Schema, entry: &OutboxEntry) -> Result<bool> {
    let Some((collection, id)) = parent_named(schema, &entry.collection, entry.doc.as_deref())
    else {
        return Ok(false);
    };
    Ok(conflict::get(tx, &collection, &id)?.is_some()
        || !outbox::unsent_for_record(tx, &collection, &id)?.is_empty())
}

/// Whether a record `entry`'s `ref` fields name has a change of its own that has not landed
/// (the server refused the reference for a record it does not have yet).
fn reference_unsettled(tx: &Transaction<'_>, schema: &Schema, entry: &OutboxEntry) -> Result<bool> {
    let (Some(declared), Some(doc)) = (schema.collection(&entry.collection), entry.doc.as_deref())
    else {
        return Ok(false);
    };
    let doc = parse_object(doc)?;
    for (_, collection, id) in declared.ref_targets(&doc) {
        if conflict::get(tx, collection, id)?.is_some()
            || !outbox::unsent_for_record(tx, collection, id)?.is_empty()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the pending `entry` waits for a conflict of one of its ancestors: until the user
/// settles it, the server may not have that ancestor (its put met the server's delete), and the
/// change would be refused. Keeping the ancestor sends it afterwards; taking the server's delete
/// takes it with the ancestor.
pub fn waits_for_ancestor(
    tx: &Transaction<'_>,
    schema: &Schema,
    entry: &OutboxEntry,
) -> Result<bool> {
    if refers_to_a_conflict(tx, schema, entry)? {
        return Ok(true);
    }
    let mut parent = parent_named(schema, &entry.collection, entry.doc.as_deref());
    // A schema's parent links form a tree, so the walk ends; the bound guards a corrupt store.
    for _ in 0..MAX_DEPTH {
        let Some((collection, id)) = parent else {
            return Ok(false);
        };
        if conflict::get(tx, &collection, &id)?.is_some() {
            return Ok(true);
        }
        let row = records::load(tx, &collection, &id)?;
        parent = parent_named(
            schema,
            &collection,
            row.as_ref().and_then(|r| r.doc.as_deref()),
        );
    }
    Ok(false)
}

/// Whether a record the pending `entry` refers to (`ref` fields) has an open conflict: until the
/// user settles it the server may not have that record, and the change would be refused.
fn refers_to_a_conflict(
    tx: &Transaction<'_>,
    schema: &Schema,
    entry: &OutboxEntry,
) -> Result<bool> {
    let (Some(declared), Some(doc)) = (schema.collection(&entry.collection), entry.doc.as_deref())
    else {
        return Ok(false);
    };
    if declared.refs().next().is_none() {
        return Ok(false);
    }
    let doc = parse_object(doc)?;
    for (_, collection, id) in declared.ref_targets(&doc) {
        if conflict::get(tx, collection, id)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many ancestors up [`waits_for_ancestor`] looks.
const MAX_DEPTH: usize = 64;

fn check_answers_match(batch: &[OutboxEntry], results: &[MutationResult]) -> Result<()> {
    if batch.len() != results.len() {
        return Err(Error::Protocol(format!(
            "{} results for {} mutations",
            results.len(),
            batch.len()
        )));
    }
    match batch.iter().zip(results).find(|(e, r)| e.op_id != r.op_id) {
        Some((e, r)) => Err(Error::Protocol(format!(
            "result {} answers mutation {}",
            r.op_id, e.op_id
        ))),
        None => Ok(()),
    }
}

/// The server applied `entry` at `version`: the record is synced unless newer local changes wait,
/// in which case the next of them now builds on this version. With `clamp`, the record's edit
/// times are cut to it as it is written; returns whether the record is settled as to its times
/// (cut, gone, or never there), `false` when it still needs [`cut_times`].
fn confirm(
    tx: &Transaction<'_>,
    schema: &Schema,
    entry: &OutboxEntry,
    version: i64,
    now: i64,
    clamp: Option<i64>,
) -> Result<bool> {
    outbox::remove(tx, entry.seq)?;
    let later = outbox::unsent_for_record(tx, &entry.collection, &entry.entity_id)?;
    if let Some(next) = later.first() {
        outbox::rebase(
            tx,
            next.seq,
            Some(version),
            entry.doc.as_deref(),
            next.doc.as_deref(),
            next.updated_at,
        )?;
    }
    let Some(mut row) = records::load(tx, &entry.collection, &entry.entity_id)? else {
        return Ok(true);
    };
    let settled = later.is_empty() && row.state != RecordState::Conflicted;
    if let (true, true, Some(doc)) = (settled, row.deleted, entry.doc.as_deref()) {
        // An upsert that landed for a record hidden since it left (a parent deleted here): it
        // stays hidden while that parent is gone, and shows if the server has it elsewhere.
        reconcile::show_server_doc(tx, schema, &row, doc, version, now)?;
        return Ok(false);
    }
    row.server_version = version;
    row.server_doc.clone_from(&entry.doc);
    if settled && row.deleted && !outbox::has_entries(tx, &row.collection, &row.id)? {
        records::remove(tx, &row.collection, &row.id)?;
        return Ok(true);
    }
    if settled {
        row.state = RecordState::Synced;
    }
    if let Some(limit) = clamp {
        (row.edited_at, row.field_times) = crate::edit_time::clamp_texts(
            row.edited_at.as_deref(),
            row.field_times.as_deref(),
            limit,
        );
    }
    records::save(tx, &row)?;
    Ok(clamp.is_some())
}

/// Settles a conflict answer by policy; returns whether it was left to the app.
fn settle_conflict(
    tx: &Transaction<'_>,
    schema: &Schema,
    entry: &OutboxEntry,
    server: &ServerState,
    policy: ConflictPolicy,
    now: i64,
) -> Result<bool> {
    let Some(row) = records::load(tx, &entry.collection, &entry.entity_id)? else {
        outbox::remove(tx, entry.seq)?;
        return Ok(false);
    };
    reconcile::settle(
        tx,
        schema,
        policy,
        &row,
        server,
        entry.base_doc.as_deref(),
        now,
    )
}

/// The server's state of a record as a conflict answer carries it.
fn server_state(result: &MutationResult) -> ServerState {
    ServerState {
        version: result.server_version.flatten().unwrap_or(0),
        doc: result
            .server_doc
            .clone()
            .flatten()
            .map(|d| Value::Object(d).to_string()),
        edited_at: result.server_edited_at.as_ref().map(|t| t.encode()),
        field_times: result
            .server_field_edited_at
            .as_ref()
            .and_then(crate::edit_time::times_text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::EntryState;

    fn entry(seq: i64, group: Option<&str>) -> OutboxEntry {
        OutboxEntry {
            seq,
            op_id: format!("op{seq}"),
            collection: "plans".into(),
            entity_id: format!("r{seq}"),
            op: OpKind::Delete,
            base_version: Some(1),
            base_doc: None,
            doc: None,
            attempts: 1,
            state: EntryState::Inflight,
            last_error: None,
            created_at: 0,
            updated_at: 0,
            group_id: group.map(str::to_string),
            edited_at: None,
            field_times: None,
            space_id: None,
        }
    }

    fn seqs(batches: &[Vec<OutboxEntry>]) -> Vec<Vec<i64>> {
        batches
            .iter()
            .map(|b| b.iter().map(|e| e.seq).collect())
            .collect()
    }

    #[test]
    fn a_window_splits_into_batches_in_order_with_groups_whole() {
        let window: Vec<_> = (1..=7).map(|s| entry(s, None)).collect();
        assert_eq!(
            seqs(&split_batches(window, 3)),
            [vec![1, 2, 3], vec![4, 5, 6], vec![7]]
        );
        // A group that does not fit after what a batch holds starts the next one; one larger
        // than the limit goes alone.
        let window = vec![
            entry(1, None),
            entry(2, Some("g")),
            entry(3, Some("g")),
            entry(4, Some("g")),
            entry(5, None),
            entry(6, Some("big")),
            entry(7, Some("big")),
            entry(8, Some("big")),
            entry(9, Some("big")),
            entry(10, None),
        ];
        assert_eq!(
            seqs(&split_batches(window, 3)),
            [vec![1], vec![2, 3, 4], vec![5], vec![6, 7, 8, 9], vec![10]]
        );
        assert!(split_batches(Vec::new(), 3).is_empty());
        assert_eq!(seqs(&split_batches(vec![entry(1, None)], 0)), [vec![1]]);
    }
}
