//! Judging a push batch: the protocol's rules 1–7 applied in memory, in order, to the records the
//! batch touches. Storage backends load those records in a few batched queries
//! ([`keys_to_load`], then descendants when the batch deletes), call [`plan_push`], and write the
//! resulting [`PushPlan`] in one transaction with multi-row statements. Keeping the rules here, free
//! of I/O, makes both backends judge a batch exactly alike.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use tandem_protocol::{
    check_size, is_valid_id, Collection, ConflictCode, Mutation, MutationResult, MutationType,
    RejectionCode, Schema,
};

/// A record's identity within one user: (entity, entityId).
pub type RecordKey = (String, String);

/// A record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub key: RecordKey,
    pub version: i64,
    pub deleted: bool,
    /// Compact JSON of the document; `None` when deleted.
    pub doc: Option<String>,
    /// The parent record the document names, for cascading deletes.
    pub parent: Option<RecordKey>,
}

/// A record's new state to write, stamped with the change sequence number it got.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordWrite {
    pub record: StoredRecord,
    pub seq: i64,
    /// The group that wrote it and the sequence number of that group's last change: a pull page
    /// that ends at this record extends to that number, so it never ends inside the group.
    pub group: Option<(String, i64)>,
}

/// The outcome of judging a batch: the answers, and what to write.
#[derive(Debug, Default)]
pub struct PushPlan {
    pub results: Vec<MutationResult>,
    /// Final state of every record the batch changed, one per record, in sequence order.
    pub writes: Vec<RecordWrite>,
    /// `(opId, version)` of every op applied by this batch, to remember for idempotency.
    pub applied_ops: Vec<(String, i64)>,
    /// The user's change sequence after the batch.
    pub last_seq: i64,
}

/// The records a batch needs loaded: each mutation's target and each parent a payload names.
pub fn keys_to_load(schema: &Schema, mutations: &[Mutation]) -> Vec<RecordKey> {
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    for m in mutations {
        let Some(collection) = schema.collection(&m.entity) else {
            continue;
        };
        let key = (m.entity.clone(), m.entity_id.clone());
        if seen.insert(key.clone()) {
            keys.push(key);
        }
        let (Some(parent), Some(payload)) = (&collection.parent, &m.payload) else {
            continue;
        };
        if let Some(parent_id) = collection.parent_id(payload).filter(|id| is_valid_id(id)) {
            let key = (parent.collection.clone(), parent_id.to_string());
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
    }
    keys
}

/// Whether the batch can cascade, so that live descendants of its records must be loaded too.
pub fn has_deletes(mutations: &[Mutation]) -> bool {
    mutations.iter().any(|m| m.kind == MutationType::Delete)
}

/// Of `keys`, those whose collection has child collections (the next level to load descendants of).
pub fn keys_with_children<'a>(
    schema: &Schema,
    keys: impl Iterator<Item = &'a RecordKey>,
) -> Vec<RecordKey> {
    keys.filter(|(entity, _)| schema.children_of(entity).next().is_some())
        .cloned()
        .collect()
}

/// Applies `mutations` in order to `records` (everything [`keys_to_load`] named, plus live
/// descendants when the batch deletes). `known_ops` maps opIds applied earlier to their version.
pub fn plan_push(
    schema: &Schema,
    mutations: Vec<Mutation>,
    known_ops: HashMap<String, i64>,
    records: HashMap<RecordKey, StoredRecord>,
    current_seq: i64,
    purged_seq: i64,
) -> PushPlan {
    let spans = tandem_protocol::group_spans(&mutations).unwrap_or_default();
    let mut batch = Batch {
        schema,
        known_ops,
        records: records
            .into_iter()
            .map(|(k, r)| {
                (
                    k,
                    Slot {
                        record: r,
                        changed_at: None,
                        group: None,
                    },
                )
            })
            .collect(),
        seq: current_seq,
        first_version: first_version(purged_seq),
        applied_ops: Vec::new(),
        undo: None,
        group_ends: HashMap::new(),
    };
    let mut results = Vec::with_capacity(mutations.len());
    let mut spans = spans.into_iter().peekable();
    let mut mutations = mutations.into_iter().enumerate().peekable();
    while let Some((i, m)) = mutations.next() {
        match spans.next_if(|span| span.start == i) {
            None => results.push(batch.judge(m)),
            Some(span) => {
                let mut members = vec![m];
                while let Some((_, m)) = mutations.next_if(|(j, _)| span.contains(j)) {
                    members.push(m);
                }
                results.extend(batch.judge_group(members));
            }
        }
    }
    batch.into_plan(results)
}

/// The version a record new to the server starts at: 1, or above every version a purged
/// tombstone of the user had. Versions only grow with the user's sequence, so `purged_seq + 1`
/// is beyond them all, and a client still holding a version of a purged incarnation of the same
/// id never matches the new record's: its change meets a conflict instead of landing on content
/// it never saw.
fn first_version(purged_seq: i64) -> i64 {
    purged_seq.max(0) + 1
}

#[derive(Clone)]
struct Slot {
    record: StoredRecord,
    /// The sequence number of the batch's last change to this record, if it changed.
    changed_at: Option<i64>,
    /// The group of that change, if any.
    group: Option<String>,
}

/// What a group being judged changed, to take back if one of its members fails.
struct Undo {
    group: String,
    /// Each slot the group replaced, as it was before (`None`: there was none), oldest first.
    slots: Vec<(RecordKey, Option<Slot>)>,
    seq: i64,
    applied_ops: usize,
}

struct Batch<'a> {
    schema: &'a Schema,
    known_ops: HashMap<String, i64>,
    records: HashMap<RecordKey, Slot>,
    seq: i64,
    /// The version a record new to the server starts at.
    first_version: i64,
    applied_ops: Vec<(String, i64)>,
    /// Set while a group is judged.
    undo: Option<Undo>,
    /// The last sequence number of each group applied by this batch.
    group_ends: HashMap<String, i64>,
}

impl Batch<'_> {
    /// Judges a group: every member applies, or (at the first that meets a conflict or a
    /// rejection) none does. Then the failing member keeps its answer, the members after it are
    /// not judged, and every other member is answered `aborted`, naming the failing one. Members
    /// applied before (retries) stay `duplicate`: a group is applied whole or not at all, so a
    /// retried group is all duplicates.
    fn judge_group(&mut self, members: Vec<Mutation>) -> Vec<MutationResult> {
        let group = members[0].group_id.clone().unwrap_or_default();
        self.undo = Some(Undo {
            group: group.clone(),
            slots: Vec::new(),
            seq: self.seq,
            applied_ops: self.applied_ops.len(),
        });
        let op_ids: Vec<String> = members.iter().map(|m| m.op_id.clone()).collect();
        let mut results = Vec::with_capacity(members.len());
        let mut failed = None;
        for m in members {
            let result = self.judge(m);
            let fails = result.fails_group();
            results.push(result);
            if fails {
                failed = Some(results.len() - 1);
                break;
            }
        }
        let undo = self.undo.take().expect("set above");
        let Some(failed) = failed else {
            if self.seq > undo.seq {
                self.group_ends.insert(group, self.seq);
            }
            return results;
        };
        // Take the group's changes back, newest first.
        for (key, before) in undo.slots.into_iter().rev() {
            match before {
                Some(slot) => self.records.insert(key, slot),
                None => self.records.remove(&key),
            };
        }
        self.seq = undo.seq;
        for (op_id, _) in self.applied_ops.drain(undo.applied_ops..) {
            self.known_ops.remove(&op_id);
        }
        let failed_op = op_ids[failed].clone();
        tracing::debug!(group = %group, failed_op = %failed_op, "group not applied");
        op_ids
            .iter()
            .enumerate()
            .map(|(i, op_id)| match results.get(i) {
                Some(r) if i == failed || r.status == tandem_protocol::ResultStatus::Duplicate => {
                    r.clone()
                }
                _ => MutationResult::aborted(op_id, &failed_op),
            })
            .collect()
    }

    fn judge(&mut self, m: Mutation) -> MutationResult {
        if let Some(&version) = self.known_ops.get(&m.op_id) {
            return MutationResult::duplicate(&m.op_id, version);
        }
        let schema = self.schema;
        let Some(collection) = schema.collection(&m.entity) else {
            return MutationResult::rejected(&m.op_id, RejectionCode::UnknownEntity);
        };
        let result = match m.kind {
            MutationType::Upsert => self.upsert(
                &m.op_id,
                collection,
                (m.entity, m.entity_id),
                m.base_version,
                m.payload,
            ),
            MutationType::Delete => self.delete(&m.op_id, (m.entity, m.entity_id), m.base_version),
        };
        if let Some(version) = result
            .version
            .filter(|_| result.status == tandem_protocol::ResultStatus::Applied)
        {
            self.known_ops.insert(result.op_id.clone(), version);
            self.applied_ops.push((result.op_id.clone(), version));
        }
        result
    }

    fn upsert(
        &mut self,
        op_id: &str,
        collection: &Collection,
        key: RecordKey,
        base_version: Option<i64>,
        payload: Option<Map<String, Value>>,
    ) -> MutationResult {
        // The request's shape check guarantees a payload on upserts.
        let doc = Value::Object(payload.unwrap_or_default());
        // The document is serialized once, to store it, and its length checked from that text
        // (`validate_document` would serialize it a second time just to count the bytes).
        if let Err(e) = collection.validate_fields(&key.0, &doc) {
            return MutationResult::rejected(op_id, e.reason.rejection_code());
        }
        let text = serde_json::to_string(&doc).expect("a JSON value always serializes");
        if let Err(e) = check_size(&key.0, text.len()) {
            return MutationResult::rejected(op_id, e.reason.rejection_code());
        }
        let Value::Object(map) = &doc else {
            unreachable!("built as an object")
        };
        let parent = match (&collection.parent, collection.parent_id(map)) {
            (Some(p), Some(id)) => {
                let parent_key = (p.collection.clone(), id.to_string());
                if !self.is_live(&parent_key) {
                    return MutationResult::rejected(op_id, RejectionCode::InvalidParent);
                }
                Some(parent_key)
            }
            _ => None,
        };
        let existing = self.records.get(&key).map(|s| &s.record);
        let new_version = match (base_version, existing) {
            (None, None) => self.first_version,
            (None, Some(r)) if r.deleted => return conflict_with(op_id, ConflictCode::Deleted, r),
            (None, Some(r)) => return conflict_with(op_id, ConflictCode::AlreadyExists, r),
            (Some(_), None) => {
                return MutationResult::conflict(op_id, ConflictCode::NotFound, None, None)
            }
            (Some(n), Some(r)) if r.version == n => n + 1,
            (Some(_), Some(r)) => return conflict_with(op_id, ConflictCode::VersionMismatch, r),
        };
        let record = StoredRecord {
            key,
            version: new_version,
            deleted: false,
            doc: Some(text),
            parent,
        };
        self.put(record);
        MutationResult::applied(op_id, new_version)
    }

    fn delete(&mut self, op_id: &str, key: RecordKey, base_version: Option<i64>) -> MutationResult {
        let Some(existing) = self.records.get(&key).map(|s| &s.record) else {
            return MutationResult::conflict(op_id, ConflictCode::NotFound, None, None);
        };
        if existing.deleted {
            return MutationResult::applied(op_id, existing.version); // deletes are idempotent
        }
        if base_version != Some(existing.version) {
            return conflict_with(op_id, ConflictCode::VersionMismatch, existing);
        }
        let version = self.tombstone(&key);
        self.cascade_from(key);
        MutationResult::applied(op_id, version)
    }

    /// Deletes every live record whose parent chain leads to `root`.
    fn cascade_from(&mut self, root: RecordKey) {
        let mut pending = vec![root];
        while let Some(parent) = pending.pop() {
            let child_collections: Vec<&str> =
                self.schema.children_of(&parent.0).map(|(c, _)| c).collect();
            if child_collections.is_empty() {
                continue;
            }
            let mut children: Vec<RecordKey> = self
                .records
                .values()
                .map(|s| &s.record)
                .filter(|r| !r.deleted && r.parent.as_ref() == Some(&parent))
                .filter(|r| child_collections.contains(&r.key.0.as_str()))
                .map(|r| r.key.clone())
                .collect();
            children.sort(); // deterministic sequence numbers
            for child in children {
                self.tombstone(&child);
                pending.push(child);
            }
        }
    }

    /// Marks a live record deleted with the next version; returns that version.
    fn tombstone(&mut self, key: &RecordKey) -> i64 {
        let slot = self
            .records
            .get(key)
            .expect("tombstoned records are loaded");
        let record = StoredRecord {
            key: key.clone(),
            version: slot.record.version + 1,
            deleted: true,
            doc: None,
            parent: slot.record.parent.clone(),
        };
        let version = record.version;
        self.put(record);
        version
    }

    fn put(&mut self, record: StoredRecord) {
        self.seq += 1;
        let slot = Slot {
            changed_at: Some(self.seq),
            group: self.undo.as_ref().map(|u| u.group.clone()),
            record,
        };
        let key = slot.record.key.clone();
        let before = self.records.insert(key.clone(), slot);
        if let Some(undo) = &mut self.undo {
            undo.slots.push((key, before));
        }
    }

    fn is_live(&self, key: &RecordKey) -> bool {
        self.records.get(key).is_some_and(|s| !s.record.deleted)
    }

    fn into_plan(self, results: Vec<MutationResult>) -> PushPlan {
        let group_ends = self.group_ends;
        let mut writes: Vec<RecordWrite> = self
            .records
            .into_values()
            .filter_map(|s| {
                let group = s
                    .group
                    .and_then(|g| group_ends.get(&g).map(|&end| (g, end)));
                s.changed_at.map(|seq| RecordWrite {
                    record: s.record,
                    seq,
                    group,
                })
            })
            .collect();
        writes.sort_by_key(|w| w.seq);
        PushPlan {
            results,
            writes,
            applied_ops: self.applied_ops,
            last_seq: self.seq,
        }
    }
}

fn conflict_with(op_id: &str, reason: ConflictCode, record: &StoredRecord) -> MutationResult {
    let doc = record
        .doc
        .as_deref()
        .filter(|_| !record.deleted)
        .and_then(|d| serde_json::from_str(d).ok());
    MutationResult::conflict(op_id, reason, Some(record.version), doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tandem_protocol::ResultStatus;

    fn schema() -> Schema {
        Schema::from_json(crate::config::SAMPLE_SCHEMA).unwrap()
    }

    fn m(op: &str, entity: &str, id: &str, base: Option<i64>, payload: Option<Value>) -> Mutation {
        Mutation {
            op_id: op.into(),
            entity: entity.into(),
            entity_id: id.into(),
            kind: if payload.is_some() {
                MutationType::Upsert
            } else {
                MutationType::Delete
            },
            base_version: base,
            payload: payload.map(|p| p.as_object().unwrap().clone()),
            client_time: "2025-01-01T00:00:00Z".into(),
            group_id: None,
        }
    }

    fn g(group: &str, mut m: Mutation) -> Mutation {
        m.group_id = Some(group.into());
        m
    }

    #[test]
    fn a_group_applies_whole_or_not_at_all() {
        let s = schema();
        let batch = vec![
            m("o0", "plans", "solo", None, Some(json!({"name": "S"}))),
            g(
                "g1",
                m("o1", "plans", "p", None, Some(json!({"name": "P"}))),
            ),
            g(
                "g1",
                m(
                    "o2",
                    "plan_days",
                    "d",
                    None,
                    Some(json!({"planId": "p", "dayIndex": 0})),
                ),
            ),
            g(
                "g1",
                m(
                    "o3",
                    "plan_days",
                    "x",
                    None,
                    Some(json!({"planId": "nope", "dayIndex": 0})),
                ),
            ),
            g(
                "g1",
                m("o4", "plans", "q", None, Some(json!({"name": "Q"}))),
            ),
            g(
                "g2",
                m("o5", "plans", "r", None, Some(json!({"name": "R"}))),
            ),
            g(
                "g2",
                m("o6", "plans", "t", None, Some(json!({"name": "T"}))),
            ),
        ];
        let plan = plan_push(&s, batch, HashMap::new(), HashMap::new(), 10, 0);
        let statuses: Vec<_> = plan
            .results
            .iter()
            .map(|r| (r.status, r.reason.clone(), r.failed_op_id.clone()))
            .collect();
        let aborted = |_: ()| {
            (
                ResultStatus::Aborted,
                Some("group_failed".to_string()),
                Some("o3".to_string()),
            )
        };
        assert_eq!(
            statuses,
            vec![
                (ResultStatus::Applied, None, None),
                aborted(()),
                aborted(()),
                (ResultStatus::Rejected, Some("invalid_parent".into()), None),
                aborted(()),
                (ResultStatus::Applied, None, None),
                (ResultStatus::Applied, None, None),
            ]
        );
        // Only the lone change and the second group were written, at consecutive numbers.
        let written: Vec<_> = plan
            .writes
            .iter()
            .map(|w| (w.record.key.1.as_str(), w.seq, w.group.clone()))
            .collect();
        assert_eq!(
            written,
            vec![
                ("solo", 11, None),
                ("r", 12, Some(("g2".to_string(), 13))),
                ("t", 13, Some(("g2".to_string(), 13))),
            ]
        );
        assert_eq!(plan.last_seq, 13);
        let ops: Vec<_> = plan.applied_ops.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(ops, vec!["o0", "o5", "o6"]);
    }

    #[test]
    fn a_retried_group_is_all_duplicates() {
        let s = schema();
        let group = || {
            vec![
                g("g", m("o1", "plans", "p", None, Some(json!({"name": "P"})))),
                g("g", m("o2", "plans", "q", None, Some(json!({"name": "Q"})))),
            ]
        };
        let first = plan_push(&s, group(), HashMap::new(), HashMap::new(), 0, 0);
        let known: HashMap<_, _> = first.applied_ops.into_iter().collect();
        let again = plan_push(&s, group(), known, HashMap::new(), 2, 0);
        assert!(again
            .results
            .iter()
            .all(|r| r.status == ResultStatus::Duplicate));
        assert!(again.writes.is_empty());
    }

    #[test]
    fn creates_children_and_cascades_within_one_batch() {
        let s = schema();
        let batch = vec![
            m("o1", "plans", "p", None, Some(json!({"name": "P"}))),
            m(
                "o2",
                "plan_days",
                "d",
                None,
                Some(json!({"planId": "p", "dayIndex": 0})),
            ),
            m(
                "o3",
                "plan_days",
                "x",
                None,
                Some(json!({"planId": "nope", "dayIndex": 0})),
            ),
            m("o4", "plans", "p", Some(1), None),
            m("o1", "plans", "p", None, Some(json!({"name": "P"}))),
        ];
        let plan = plan_push(&s, batch, HashMap::new(), HashMap::new(), 10, 0);
        let statuses: Vec<_> = plan
            .results
            .iter()
            .map(|r| (r.status, r.version, r.reason.clone()))
            .collect();
        assert_eq!(
            statuses,
            vec![
                (ResultStatus::Applied, Some(1), None),
                (ResultStatus::Applied, Some(1), None),
                (ResultStatus::Rejected, None, Some("invalid_parent".into())),
                (ResultStatus::Applied, Some(2), None),
                (ResultStatus::Duplicate, Some(1), None),
            ]
        );
        assert_eq!(plan.last_seq, 14);
        let day = plan.writes.iter().find(|w| w.record.key.1 == "d").unwrap();
        assert!(day.record.deleted);
        assert_eq!(day.record.version, 2);
        assert_eq!(plan.applied_ops.len(), 3);
    }
}
