//! Judging a push batch: the protocol's rules 1–7 applied in memory, in order, to the records the
//! batch touches. Storage backends load those records in a few batched queries
//! ([`keys_to_load`], then descendants when the batch deletes), call [`plan_push`], and write the
//! resulting [`PushPlan`] in one transaction with multi-row statements. Keeping the rules here, free
//! of I/O, makes both backends judge a batch exactly alike.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use tandem_protocol::{
    check_size, is_valid_id, Collection, ConflictCode, FieldTimes, Hlc, Mutation, MutationResult,
    MutationType, OnDelete, RejectionCode, Schema, Scope, MAX_CLOCK_SKEW_MS,
};

use crate::storage::Role;

/// A record's identity: its stream (the database key: the user's id, `space:<id>` or `public`),
/// entity and entityId. Parents and reference targets are looked up in the child's own stream, so
/// a record never points into another stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    pub stream: String,
    pub entity: String,
    pub id: String,
}

impl RecordKey {
    pub fn new(stream: &str, entity: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            stream: stream.to_string(),
            entity: entity.into(),
            id: id.into(),
        }
    }

    /// The record `entity`/`id` in this key's stream.
    pub fn sibling(&self, entity: impl Into<String>, id: impl Into<String>) -> Self {
        Self::new(&self.stream, entity, id)
    }
}

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
    /// The edit time of the record's last change (of its delete, when deleted); `None` for
    /// records written before edit times were kept.
    pub edited_at: Option<Hlc>,
    /// The edit time of each field of the document (and of fields removed since); empty when
    /// deleted.
    pub field_times: FieldTimes,
}

impl StoredRecord {
    /// The stored form of `field_times`: a JSON object, `None` when there are none.
    pub fn field_times_json(&self) -> Option<String> {
        (!self.field_times.is_empty())
            .then(|| serde_json::to_string(&self.field_times).expect("times always serialize"))
    }
}

/// Edit times as stored (`edited_at`, `field_edited_at` columns); unreadable ones count as
/// unknown rather than failing the push.
pub fn stored_times(edited_at: Option<&str>, fields: Option<&str>) -> (Option<Hlc>, FieldTimes) {
    (
        edited_at.and_then(|t| t.parse().ok()),
        fields
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default(),
    )
}

/// What a batch stamps edit times with: the server's clock, and the pushing client (the node of
/// the times it stamps for changes that carry none).
#[derive(Debug, Clone)]
pub struct EditStamp {
    pub now_ms: i64,
    pub client_id: String,
}

impl EditStamp {
    /// The latest edit time the server accepts now: its clock + [`MAX_CLOCK_SKEW_MS`].
    pub fn limit_ms(&self) -> i64 {
        self.now_ms.saturating_add(MAX_CLOCK_SKEW_MS)
    }

    /// The edit time of a change: its own, clamped to the bound, or the server's clock when it
    /// carries none.
    pub fn edit_time(&self, given: Option<&Hlc>) -> Hlc {
        match given {
            Some(t) => t.clamped(self.limit_ms()),
            None => Hlc::new(self.now_ms, 0, self.client_id.clone()),
        }
    }
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
    /// The change sequence after the batch of every other stream it wrote, by stream key, in
    /// stream order.
    pub stream_seqs: Vec<(String, i64)>,
}

impl PushPlan {
    /// The writes of each stream, in stream order (`writes` is sorted by stream, then sequence).
    pub fn writes_by_stream(&self) -> Vec<(&str, &[RecordWrite])> {
        let mut out: Vec<(&str, &[RecordWrite])> = Vec::new();
        let mut start = 0;
        for i in 1..=self.writes.len() {
            if i == self.writes.len()
                || self.writes[i].record.key.stream != self.writes[start].record.key.stream
            {
                out.push((
                    &self.writes[start].record.key.stream,
                    &self.writes[start..i],
                ));
                start = i;
            }
        }
        out
    }
}

/// The streams a batch may write, as the storage read them under their locks: the pusher's own,
/// the sequence and purge state of each stream locked, and the pusher's role in each space the
/// batch names (only live spaces the pusher is a member of have a role).
#[derive(Debug, Clone, Default)]
pub struct PushStreams {
    /// The pusher's own stream key: their user id.
    pub user: String,
    /// `(change_seq, purged_seq)` of each stream locked, by stream key (the user's included).
    pub seqs: HashMap<String, (i64, i64)>,
    /// The pusher's role, by stream key (`space:<id>`).
    pub roles: HashMap<String, Role>,
    /// The blobs the batch's new attachment references may name: of [`new_attachment_hashes`],
    /// those the pusher may read (complete on the server, and referenced by a record of a stream
    /// they can read or held by them within the grace period), as the storage read them inside
    /// the push transaction. Empty when the batch names no new attachment.
    pub readable_blobs: HashSet<String>,
}

impl PushStreams {
    /// Only the pusher's own stream (a batch naming no space).
    pub fn user_only(user: &str, change_seq: i64, purged_seq: i64) -> Self {
        Self {
            user: user.to_string(),
            seqs: HashMap::from([(user.to_string(), (change_seq, purged_seq))]),
            roles: HashMap::new(),
            readable_blobs: HashSet::new(),
        }
    }

    /// Whether the pusher may write `stream`: their own, or a space where their role writes.
    /// Never `public` (admin writes only).
    pub fn may_write(&self, stream: &str) -> bool {
        stream == self.user || self.roles.get(stream).is_some_and(|r| r.can_write())
    }
}

pub use tandem_protocol::{space_of_stream, space_stream, PUBLIC_STREAM};

/// The stream (database key) a mutation writes: its space's, the public stream for a public
/// collection, or else the pusher's own (`user`). The request's shape check has already refused
/// a `space` on a collection that is not space-scoped and a space collection without one.
pub fn stream_of(schema: &Schema, user: &str, m: &Mutation) -> String {
    if let Some(space) = &m.space {
        return space_stream(space);
    }
    match schema.collection(&m.entity).map(|c| c.scope) {
        Some(Scope::Public) => PUBLIC_STREAM.to_string(),
        _ => user.to_string(),
    }
}

/// The space streams a batch names, sorted (the order their rows are locked in).
pub fn named_spaces(mutations: &[Mutation]) -> Vec<String> {
    let mut spaces: Vec<String> = mutations
        .iter()
        .filter_map(|m| m.space.as_deref().map(space_stream))
        .collect();
    spaces.sort();
    spaces.dedup();
    spaces
}

/// The records a batch needs loaded: each mutation's target and each parent and reference
/// target its payload names, in the mutation's own stream; only for streams `load` accepts (the
/// storage passes the streams the pusher may write, so nothing of any other stream is read).
pub fn keys_to_load(
    schema: &Schema,
    user: &str,
    mutations: &[Mutation],
    load: impl Fn(&str) -> bool,
) -> Vec<RecordKey> {
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    for m in mutations {
        let Some(collection) = schema.collection(&m.entity) else {
            continue;
        };
        let stream = stream_of(schema, user, m);
        if !load(&stream) {
            continue;
        }
        let key = RecordKey::new(&stream, &m.entity, &m.entity_id);
        if seen.insert(key.clone()) {
            keys.push(key);
        }
        let Some(payload) = &m.payload else {
            continue;
        };
        if let (Some(parent), Some(parent_id)) = (
            &collection.parent,
            collection.parent_id(payload).filter(|id| is_valid_id(id)),
        ) {
            let key = RecordKey::new(&stream, &parent.collection, parent_id);
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
        for (_, target, target_id) in collection.ref_targets(payload) {
            if !is_valid_id(target_id) || schema.collection(target).is_none() {
                continue;
            }
            let key = RecordKey::new(&stream, target, target_id);
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
    }
    keys
}

/// The name a unique constraint is stored under: its fields, comma-separated.
pub fn constraint_name(fields: &[String]) -> String {
    fields.join(",")
}

/// One unique key a batch asks for: (stream, entity, constraint name, key).
pub type UniqueProbe = (String, String, String, String);

/// The unique keys a batch's upserts ask for, in streams `load` accepts: the storage loads the
/// live records holding them (through its table of unique keys) with the batch.
pub fn unique_probes(
    schema: &Schema,
    user: &str,
    mutations: &[Mutation],
    load: impl Fn(&str) -> bool,
) -> Vec<UniqueProbe> {
    let mut probes = Vec::new();
    for m in mutations {
        let (Some(collection), Some(payload)) = (schema.collection(&m.entity), &m.payload) else {
            continue;
        };
        if collection.unique.is_empty() {
            continue;
        }
        let stream = stream_of(schema, user, m);
        if !load(&stream) {
            continue;
        }
        for fields in &collection.unique {
            if let Some(key) = Collection::unique_key(fields, payload) {
                let probe = (
                    stream.clone(),
                    m.entity.clone(),
                    constraint_name(fields),
                    key,
                );
                if !probes.contains(&probe) {
                    probes.push(probe);
                }
            }
        }
    }
    probes
}

/// Keys grouped by stream, in stream order (each storage statement reads one stream).
pub fn by_stream(keys: &[RecordKey]) -> std::collections::BTreeMap<&str, Vec<&RecordKey>> {
    let mut grouped: std::collections::BTreeMap<&str, Vec<&RecordKey>> = Default::default();
    for key in keys {
        grouped.entry(key.stream.as_str()).or_default().push(key);
    }
    grouped
}

/// Whether a loaded referrer (a record of `entity` found through its `field`) is deleted with
/// what it refers to, so that what lies below it and refers to it must be loaded too.
pub fn cascades(schema: &Schema, entity: &str, field: &str) -> bool {
    schema
        .collection(entity)
        .and_then(|c| c.fields.get(field))
        .and_then(|f| f.reference.as_ref())
        .is_some_and(|r| r.on_delete == OnDelete::Cascade)
}

/// Of `keys`, those whose collection other collections refer to (load their referrers too).
pub fn keys_with_referrers<'a>(
    schema: &Schema,
    keys: impl Iterator<Item = &'a RecordKey>,
) -> Vec<RecordKey> {
    keys.filter(|k| schema.referrers_of(&k.entity).next().is_some())
        .cloned()
        .collect()
}

/// Whether a collection has attachment fields (its records get `record_blobs` rows).
pub fn has_attachments(schema: &Schema, entity: &str) -> bool {
    schema.attachment_fields(entity).next().is_some()
}

/// Whether any collection of the schema has an attachment field: without one, pushes never
/// look at attachments.
pub fn schema_has_attachments(schema: &Schema) -> bool {
    schema.has_attachments()
}

/// The `(field, hash)` of each attachment a document names.
pub fn attachment_hashes_in(
    schema: &Schema,
    entity: &str,
    doc: &Map<String, Value>,
) -> Vec<(String, String)> {
    schema.collection(entity).map_or_else(Vec::new, |c| {
        c.attachment_refs(doc)
            .into_iter()
            .map(|(field, r)| (field.to_string(), r.hash))
            .collect()
    })
}

/// Whether a collection's records are indexed in the tables of references, unique keys or
/// blobs.
fn is_indexed(schema: &Schema, name: &str, c: &Collection) -> bool {
    !c.unique.is_empty() || c.refs().next().is_some() || has_attachments(schema, name)
}

/// What the tables of references, unique keys and blobs index under `schema`: every
/// collection's `ref` fields with their targets, its unique constraints and its attachment
/// fields. When it differs from what a database was indexed for, the tables are rebuilt from
/// the stored records (see `Storage::index_rules`). A collection without attachment fields
/// leaves its entry as it was before attachments existed, so upgrading rebuilds nothing.
pub fn rules_fingerprint(schema: &Schema) -> String {
    let rules: Vec<Value> = schema
        .collections
        .iter()
        .filter(|(name, c)| is_indexed(schema, name, c))
        .map(|(name, c)| {
            let refs: Vec<Value> = c
                .refs()
                .map(|(f, r)| Value::from(vec![f.to_string(), r.collection.clone()]))
                .collect();
            let mut rule =
                serde_json::json!({"collection": name, "refs": refs, "unique": c.unique});
            let blobs: Vec<&str> = schema.attachment_fields(name).collect();
            if !blobs.is_empty() {
                rule["attachments"] = Value::from(blobs);
            }
            rule
        })
        .collect();
    Value::from(rules).to_string()
}

/// The collections whose records the tables of references, unique keys and blobs index.
pub fn indexed_collections(schema: &Schema) -> Vec<String> {
    schema
        .collections
        .iter()
        .filter(|(name, c)| is_indexed(schema, name, c))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The blob hashes a batch's upserts (in streams `load` accepts) name that the records as
/// loaded do not: the ones whose access the storage must check inside the push transaction
/// (sorted, deduplicated). A hash a loaded live record names is readable by the pusher anyway
/// (a record of a stream they may write references it), so it is left out, and an edit of
/// another field of a record with an attachment costs no query. Empty, without looking at any
/// document, when the schema has no attachment field.
pub fn new_attachment_hashes(
    schema: &Schema,
    user: &str,
    mutations: &[Mutation],
    records: &HashMap<RecordKey, StoredRecord>,
    load: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut known: Option<HashSet<String>> = None;
    for m in mutations {
        let Some(payload) = m
            .payload
            .as_ref()
            .filter(|_| m.kind == MutationType::Upsert)
        else {
            continue;
        };
        if !has_attachments(schema, &m.entity) || !load(&stream_of(schema, user, m)) {
            continue;
        }
        let known = known.get_or_insert_with(|| loaded_hashes(schema, records));
        for (_, hash) in attachment_hashes_in(schema, &m.entity, payload) {
            if !known.contains(&hash) {
                hashes.push(hash);
            }
        }
    }
    hashes.sort();
    hashes.dedup();
    hashes
}

/// The hashes the loaded live records name (each readable by the pusher, see
/// [`new_attachment_hashes`]).
pub fn loaded_hashes(
    schema: &Schema,
    records: &HashMap<RecordKey, StoredRecord>,
) -> HashSet<String> {
    records
        .values()
        .filter(|r| has_attachments(schema, &r.key.entity))
        .filter_map(|r| live_doc(r).map(|doc| (r, doc)))
        .flat_map(|(r, doc)| attachment_hashes_in(schema, &r.key.entity, &doc))
        .map(|(_, hash)| hash)
        .collect()
}

/// One row of the table of references: (entity, entityId, field, target entity, target id).
pub type RefRow = (String, String, String, String, String);
/// One row of the table of unique keys: (entity, entityId, constraint name, key).
pub type UniqueRow = (String, String, String, String);
/// One row of the table of blobs records name (`record_blobs`): (entity, entityId, field, hash).
pub type BlobRow = (String, String, String, String);

/// What the tables of references, unique keys and blobs must hold after `writes`.
#[derive(Debug, Default)]
pub struct IndexRows {
    /// The records whose rows are replaced: every written record of a collection with refs,
    /// unique constraints or attachment fields.
    pub cleared: Vec<RecordKey>,
    pub refs: Vec<RefRow>,
    pub uniques: Vec<UniqueRow>,
    /// The attachments of the live written records (tombstones name none).
    pub blobs: Vec<BlobRow>,
}

/// The rows of the tables of references, unique keys and blobs after `writes`: the records whose
/// rows are replaced and the rows of those that are live.
pub fn index_rows(schema: &Schema, writes: &[RecordWrite]) -> IndexRows {
    let mut rows = IndexRows::default();
    for w in writes {
        let r = &w.record;
        let Some(collection) = schema.collection(&r.key.entity) else {
            continue;
        };
        if !is_indexed(schema, &r.key.entity, collection) {
            continue;
        }
        rows.cleared.push(r.key.clone());
        let Some(doc) = r.doc.as_deref().filter(|_| !r.deleted) else {
            continue;
        };
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(doc) else {
            continue;
        };
        for (field, target, target_id) in collection.ref_targets(&map) {
            rows.refs.push((
                r.key.entity.clone(),
                r.key.id.clone(),
                field.to_string(),
                target.to_string(),
                target_id.to_string(),
            ));
        }
        for fields in &collection.unique {
            if let Some(key) = Collection::unique_key(fields, &map) {
                rows.uniques.push((
                    r.key.entity.clone(),
                    r.key.id.clone(),
                    constraint_name(fields),
                    key,
                ));
            }
        }
        for (field, hash) in attachment_hashes_in(schema, &r.key.entity, &map) {
            rows.blobs
                .push((r.key.entity.clone(), r.key.id.clone(), field, hash));
        }
    }
    rows
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
    keys.filter(|k| schema.children_of(&k.entity).next().is_some())
        .cloned()
        .collect()
}

/// Applies `mutations` in order to `records` (everything [`keys_to_load`] named, plus live
/// descendants when the batch deletes). `known_ops` maps opIds applied earlier to their version;
/// `streams` says which streams the pusher may write and where their sequences stand.
pub fn plan_push(
    schema: &Schema,
    mutations: Vec<Mutation>,
    known_ops: HashMap<String, i64>,
    records: HashMap<RecordKey, StoredRecord>,
    streams: &PushStreams,
    stamp: &EditStamp,
) -> PushPlan {
    let spans = tandem_protocol::group_spans(&mutations).unwrap_or_default();
    let has_refs = schema
        .collections
        .values()
        .any(|c| c.refs().next().is_some());
    let mut uniques = HashMap::new();
    for r in records.values().filter(|r| !r.deleted) {
        for (i, key) in unique_keys_of(schema, r) {
            uniques.insert(unique_slot(&r.key, i, key), r.key.id.clone());
        }
    }
    let loaded_blobs = if schema_has_attachments(schema) {
        loaded_hashes(schema, &records)
    } else {
        HashSet::new()
    };
    let mut batch = Batch {
        schema,
        streams,
        loaded_blobs,
        has_refs,
        uniques,
        stamp,
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
        seqs: streams
            .seqs
            .iter()
            .map(|(stream, &(seq, _))| (stream.clone(), seq))
            .collect(),
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

/// Where the live holder of a unique key is kept while judging: (stream, entity, constraint, key).
type UniqueSlot = (String, String, usize, String);

fn unique_slot(record: &RecordKey, constraint: usize, key: String) -> UniqueSlot {
    (
        record.stream.clone(),
        record.entity.clone(),
        constraint,
        key,
    )
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
    seqs: HashMap<String, i64>,
    applied_ops: usize,
}

/// The unique keys a live record holds: (constraint index, key).
fn unique_keys_of(schema: &Schema, record: &StoredRecord) -> Vec<(usize, String)> {
    let Some(collection) = schema.collection(&record.key.entity) else {
        return Vec::new();
    };
    if collection.unique.is_empty() || record.deleted {
        return Vec::new();
    }
    let Some(Ok(Value::Object(map))) = record.doc.as_deref().map(serde_json::from_str::<Value>)
    else {
        return Vec::new();
    };
    collection
        .unique
        .iter()
        .enumerate()
        .filter_map(|(i, fields)| Collection::unique_key(fields, &map).map(|k| (i, k)))
        .collect()
}

struct Batch<'a> {
    schema: &'a Schema,
    streams: &'a PushStreams,
    /// The blobs the loaded live records name: readable by the pusher (a record of a stream
    /// they may write references each), so never looked up (see [`new_attachment_hashes`]).
    loaded_blobs: HashSet<String>,
    /// Whether any collection declares a `ref` (then deletes apply reference rules).
    has_refs: bool,
    /// The live holder of every unique key among the loaded records.
    uniques: HashMap<UniqueSlot, String>,
    stamp: &'a EditStamp,
    known_ops: HashMap<String, i64>,
    records: HashMap<RecordKey, Slot>,
    /// Each stream's change sequence as the batch advances it.
    seqs: HashMap<String, i64>,
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
            seqs: self.seqs.clone(),
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
            // A group stays in one stream (the shape check refuses one spanning two): its end is
            // that stream's sequence now, if the group wrote anything.
            if let Some(end) = self
                .seqs
                .iter()
                .find(|(stream, seq)| undo.seqs.get(*stream) != Some(*seq))
                .map(|(_, &seq)| seq)
            {
                self.group_ends.insert(group, end);
            }
            return results;
        };
        // Take the group's changes back, newest first: each slot (its record's document,
        // version and edit times, and what the reference rules changed, since cascades and
        // setNull go through `put` too) and the unique keys its change took or freed.
        for (key, before) in undo.slots.into_iter().rev() {
            let after = match before {
                Some(slot) => {
                    let old = slot.record.clone();
                    self.records
                        .insert(key, slot)
                        .map(|s| (s.record, Some(old)))
                }
                None => self.records.remove(&key).map(|s| (s.record, None)),
            };
            if let Some((undone, restored)) = after {
                self.undo_unique_keys(&undone, restored.as_ref());
            }
        }
        self.seqs = undo.seqs;
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
        let stream = stream_of(schema, &self.streams.user, &m);
        let may_write = self.streams.may_write(&stream);
        let edited_at = self.stamp.edit_time(m.edited_at.as_ref());
        let knows_times = m.edited_at.is_some();
        let key = RecordKey {
            stream,
            entity: m.entity,
            id: m.entity_id,
        };
        let mut result = match m.kind {
            // Judged in this order: the document's own validity (the same in every stream),
            // then the role, and only then anything read from the stream, so a forbidden
            // change never loads or compares a record of a stream the pusher may not write.
            MutationType::Upsert => match checked_document(collection, &key, m.payload) {
                Err(refused) => MutationResult::rejected(&m.op_id, refused),
                Ok(_) if !may_write => forbidden(&m.op_id, &self.streams.user, &key),
                Ok(checked) => self.upsert(
                    &m.op_id,
                    collection,
                    key,
                    m.base_version,
                    checked,
                    Edit {
                        at: edited_at,
                        fields: m.field_edited_at.unwrap_or_default(),
                    },
                ),
            },
            MutationType::Delete if !may_write => forbidden(&m.op_id, &self.streams.user, &key),
            MutationType::Delete => self.delete(&m.op_id, key, m.base_version, edited_at),
        };
        if !knows_times {
            // A client from before edit times gets the answers it always got.
            result.server_edited_at = None;
            result.server_field_edited_at = None;
        }
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
        (doc, text): (Value, String),
        edit: Edit,
    ) -> MutationResult {
        let Value::Object(map) = &doc else {
            unreachable!("built as an object")
        };
        let parent = match (&collection.parent, collection.parent_id(map)) {
            (Some(p), Some(id)) => {
                let parent_key = key.sibling(&p.collection, id);
                if !self.is_live(&parent_key) {
                    return MutationResult::rejected(op_id, RejectionCode::InvalidParent);
                }
                Some(parent_key)
            }
            _ => None,
        };
        for (_, target, target_id) in collection.ref_targets(map) {
            let target_key = key.sibling(target, target_id);
            if target_key != key && !self.is_live(&target_key) {
                return MutationResult::rejected(op_id, RejectionCode::InvalidReference);
            }
        }
        let existing = self.records.get(&key).map(|s| &s.record);
        // Validation (rule 3) ends with the attachments, before the version checks.
        if let Some(hash) = self.missing_attachment(&key, map, existing) {
            tracing::info!(
                user_id = %self.streams.user,
                stream = %key.stream,
                hash = crate::blobs::hash_prefix(&hash),
                code = "attachment_missing",
                "push refused: an attachment names a blob the pusher may not read"
            );
            return MutationResult::rejected(op_id, RejectionCode::AttachmentMissing);
        }
        let new_version = match (base_version, existing) {
            (None, None) => self.first_version(&key.stream),
            (None, Some(r)) if r.deleted => return conflict_with(op_id, ConflictCode::Deleted, r),
            (None, Some(r)) => return conflict_with(op_id, ConflictCode::AlreadyExists, r),
            (Some(_), None) => {
                return MutationResult::conflict(op_id, ConflictCode::NotFound, None, None)
            }
            (Some(n), Some(r)) if r.version == n && same_doc(r, &doc) => {
                // A no-op: the document is already what the change asks for. Applied at the
                // current version (the op id is remembered, so a replay is a `duplicate`), with
                // no new version, no change-log entry and no poke.
                return MutationResult::applied(op_id, n);
            }
            (Some(n), Some(r)) if r.version == n => n + 1,
            (Some(_), Some(r)) => return conflict_with(op_id, ConflictCode::VersionMismatch, r),
        };
        for (i, fields) in collection.unique.iter().enumerate() {
            let Some(unique_key) = Collection::unique_key(fields, map) else {
                continue;
            };
            match self.uniques.get(&unique_slot(&key, i, unique_key)) {
                Some(holder) if *holder != key.id => {
                    let (version, doc) = match existing {
                        Some(r) => (Some(r.version), live_doc(r)),
                        None => (None, None),
                    };
                    return MutationResult::unique_violation(op_id, version, doc, holder);
                }
                _ => {}
            }
        }
        let field_times = field_times_after(existing, map, &edit, self.stamp);
        let record = StoredRecord {
            key,
            version: new_version,
            deleted: false,
            doc: Some(text),
            parent,
            edited_at: Some(edit.at),
            field_times,
        };
        self.put(record);
        MutationResult::applied(op_id, new_version)
    }

    fn delete(
        &mut self,
        op_id: &str,
        key: RecordKey,
        base_version: Option<i64>,
        edited_at: Hlc,
    ) -> MutationResult {
        let Some(existing) = self.records.get(&key).map(|s| &s.record) else {
            return MutationResult::conflict(op_id, ConflictCode::NotFound, None, None);
        };
        if existing.deleted {
            return MutationResult::applied(op_id, existing.version); // deletes are idempotent
        }
        if base_version != Some(existing.version) {
            return conflict_with(op_id, ConflictCode::VersionMismatch, existing);
        }
        if self.has_refs {
            if let Err(refused) = self.apply_reference_rules(&key, &edited_at) {
                return MutationResult::rejected(op_id, refused);
            }
        }
        let version = self.tombstone(&key, &edited_at);
        self.cascade_from(key, &edited_at);
        MutationResult::applied(op_id, version)
    }

    /// The reference rules of a delete of `root`: everything going with it (descendants, and
    /// `cascade` referrers transitively) is found first; a live `restrict` referrer outside it
    /// refuses the delete (nothing changes); `setNull` referrers outside it lose the field (a new
    /// version each); then the cascaded referrers are deleted, each with what lies below it,
    /// before `root` itself (which the caller deletes), so a puller meets referrers' changes
    /// before the delete that caused them.
    fn apply_reference_rules(
        &mut self,
        root: &RecordKey,
        edited_at: &Hlc,
    ) -> Result<(), RejectionCode> {
        let mut roots = vec![root.clone()];
        let mut going: HashSet<RecordKey> = HashSet::new();
        let mut i = 0;
        while i < roots.len() {
            let mut family = vec![roots[i].clone()];
            let mut j = 0;
            while j < family.len() {
                let parent = family[j].clone();
                family.extend(self.live_children(&parent));
                j += 1;
            }
            for key in &family {
                going.insert(key.clone());
            }
            for key in &family {
                for (referrer, _, rule) in self.live_referrers(key) {
                    if rule == OnDelete::Cascade
                        && !going.contains(&referrer)
                        && !roots.contains(&referrer)
                    {
                        roots.push(referrer);
                    }
                }
            }
            i += 1;
        }
        let mut outside: Vec<(RecordKey, String, OnDelete)> = Vec::new();
        let mut going_sorted: Vec<&RecordKey> = going.iter().collect();
        going_sorted.sort();
        for key in going_sorted {
            for (referrer, field, rule) in self.live_referrers(key) {
                if rule != OnDelete::Cascade && !going.contains(&referrer) {
                    outside.push((referrer, field, rule));
                }
            }
        }
        if outside
            .iter()
            .any(|(_, _, rule)| *rule == OnDelete::Restrict)
        {
            return Err(RejectionCode::Restricted);
        }
        outside.sort();
        outside.dedup();
        for (referrer, field, _) in outside {
            self.set_null(&referrer, &field, edited_at);
        }
        for key in roots.iter().skip(1).rev() {
            if self.is_live(key) {
                self.tombstone(key, edited_at);
                self.cascade_from(key.clone(), edited_at);
            }
        }
        Ok(())
    }

    /// The live records whose parent is `parent`.
    fn live_children(&self, parent: &RecordKey) -> Vec<RecordKey> {
        if self.schema.children_of(&parent.entity).next().is_none() {
            return Vec::new();
        }
        let mut children: Vec<RecordKey> = self
            .records
            .values()
            .map(|s| &s.record)
            .filter(|r| !r.deleted && r.parent.as_ref() == Some(parent))
            .map(|r| r.key.clone())
            .collect();
        children.sort();
        children
    }

    /// The live loaded records referring to `target`, with the field and its rule.
    fn live_referrers(&self, target: &RecordKey) -> Vec<(RecordKey, String, OnDelete)> {
        let mut found = Vec::new();
        for referrer in self.schema.referrers_of(&target.entity) {
            for slot in self.records.values() {
                let r = &slot.record;
                if r.deleted || r.key.entity != referrer.collection || r.key == *target {
                    continue;
                }
                if doc_field(r, referrer.field).as_deref() == Some(target.id.as_str()) {
                    found.push((
                        r.key.clone(),
                        referrer.field.to_string(),
                        referrer.on_delete,
                    ));
                }
            }
        }
        found.sort();
        found
    }

    /// Removes `field` from the live record `key` (a new version), at the delete's edit time.
    fn set_null(&mut self, key: &RecordKey, field: &str, edited_at: &Hlc) {
        let Some(slot) = self.records.get(key) else {
            return;
        };
        let r = &slot.record;
        let Some(Ok(Value::Object(mut map))) = r.doc.as_deref().map(serde_json::from_str::<Value>)
        else {
            return;
        };
        if map.remove(field).is_none() {
            return;
        }
        let mut field_times = r.field_times.clone();
        field_times.insert(field.to_string(), edited_at.clone());
        let record = StoredRecord {
            key: key.clone(),
            version: r.version + 1,
            deleted: false,
            doc: Some(Value::Object(map).to_string()),
            parent: r.parent.clone(),
            edited_at: Some(edited_at.clone()),
            field_times,
        };
        self.put(record);
    }

    /// Deletes every live record whose parent chain leads to `root`, at the delete's edit time.
    fn cascade_from(&mut self, root: RecordKey, edited_at: &Hlc) {
        let mut pending = vec![root];
        while let Some(parent) = pending.pop() {
            let child_collections: Vec<&str> = self
                .schema
                .children_of(&parent.entity)
                .map(|(c, _)| c)
                .collect();
            if child_collections.is_empty() {
                continue;
            }
            let mut children: Vec<RecordKey> = self
                .records
                .values()
                .map(|s| &s.record)
                .filter(|r| !r.deleted && r.parent.as_ref() == Some(&parent))
                .filter(|r| child_collections.contains(&r.key.entity.as_str()))
                .map(|r| r.key.clone())
                .collect();
            children.sort(); // deterministic sequence numbers
            for child in children {
                self.tombstone(&child, edited_at);
                pending.push(child);
            }
        }
    }

    /// Marks a live record deleted with the next version; returns that version.
    fn tombstone(&mut self, key: &RecordKey, edited_at: &Hlc) -> i64 {
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
            edited_at: Some(edited_at.clone()),
            field_times: FieldTimes::new(),
        };
        let version = record.version;
        self.put(record);
        version
    }

    fn put(&mut self, record: StoredRecord) {
        if self
            .schema
            .collection(&record.key.entity)
            .is_some_and(|c| !c.unique.is_empty())
        {
            if let Some(old) = self.records.get(&record.key) {
                for (i, key) in unique_keys_of(self.schema, &old.record) {
                    self.uniques.remove(&unique_slot(&record.key, i, key));
                }
            }
            for (i, key) in unique_keys_of(self.schema, &record) {
                self.uniques
                    .insert(unique_slot(&record.key, i, key), record.key.id.clone());
            }
        }
        // Every stream the batch may write was locked and its sequence read (`PushStreams`).
        let seq = self.seqs.entry(record.key.stream.clone()).or_default();
        *seq += 1;
        let slot = Slot {
            changed_at: Some(*seq),
            group: self.undo.as_ref().map(|u| u.group.clone()),
            record,
        };
        let key = slot.record.key.clone();
        let before = self.records.insert(key.clone(), slot);
        if let Some(undo) = &mut self.undo {
            undo.slots.push((key, before));
        }
    }

    /// Reverses what [`put`](Self::put) did to the unique keys when it replaced `restored`
    /// (`None`: there was no record) with `undone`.
    fn undo_unique_keys(&mut self, undone: &StoredRecord, restored: Option<&StoredRecord>) {
        if self
            .schema
            .collection(&undone.key.entity)
            .is_none_or(|c| c.unique.is_empty())
        {
            return;
        }
        for (i, key) in unique_keys_of(self.schema, undone) {
            let entry = unique_slot(&undone.key, i, key);
            if self.uniques.get(&entry) == Some(&undone.key.id) {
                self.uniques.remove(&entry);
            }
        }
        if let Some(old) = restored {
            for (i, key) in unique_keys_of(self.schema, old) {
                self.uniques
                    .insert(unique_slot(&old.key, i, key), old.key.id.clone());
            }
        }
    }

    /// The first blob an upsert's document `doc` names that the record's current document does
    /// not and the pusher may not read (see [`PushStreams::readable_blobs`]). References the
    /// record already holds are not checked again: an editor's edit of another field never trips
    /// over a blob another member uploaded.
    fn missing_attachment(
        &self,
        key: &RecordKey,
        doc: &Map<String, Value>,
        existing: Option<&StoredRecord>,
    ) -> Option<String> {
        if !has_attachments(self.schema, &key.entity) {
            return None;
        }
        let named = attachment_hashes_in(self.schema, &key.entity, doc);
        if named.is_empty() {
            return None;
        }
        let held: HashSet<String> = existing
            .and_then(live_doc)
            .map(|old| {
                attachment_hashes_in(self.schema, &key.entity, &old)
                    .into_iter()
                    .map(|(_, hash)| hash)
                    .collect()
            })
            .unwrap_or_default();
        named.into_iter().map(|(_, hash)| hash).find(|hash| {
            !held.contains(hash)
                && !self.loaded_blobs.contains(hash)
                && !self.streams.readable_blobs.contains(hash)
        })
    }

    /// The version a record new to `stream` starts at (see [`first_version`]).
    fn first_version(&self, stream: &str) -> i64 {
        first_version(
            self.streams
                .seqs
                .get(stream)
                .map_or(0, |&(_, purged)| purged),
        )
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
        writes.sort_by(|a, b| (&a.record.key.stream, a.seq).cmp(&(&b.record.key.stream, b.seq)));
        let user = &self.streams.user;
        let last_seq = self.seqs.get(user).copied().unwrap_or_default();
        let mut stream_seqs: Vec<(String, i64)> = self
            .seqs
            .into_iter()
            .filter(|(stream, seq)| {
                stream != user && self.streams.seqs.get(stream).map(|s| s.0) != Some(*seq)
            })
            .collect();
        stream_seqs.sort();
        PushPlan {
            results,
            writes,
            applied_ops: self.applied_ops,
            last_seq,
            stream_seqs,
        }
    }
}

/// An upsert's document checked against its collection (fields, then size), with its stored text:
/// the same in every stream, so judged before the role.
fn checked_document(
    collection: &Collection,
    key: &RecordKey,
    payload: Option<Map<String, Value>>,
) -> Result<(Value, String), RejectionCode> {
    // The request's shape check guarantees a payload on upserts.
    let doc = Value::Object(payload.unwrap_or_default());
    // The document is serialized once, to store it, and its length checked from that text
    // (`validate_document` would serialize it a second time just to count the bytes).
    if let Err(e) = collection.validate_fields(&key.entity, &doc) {
        return Err(e.reason.rejection_code());
    }
    let text = serde_json::to_string(&doc).expect("a JSON value always serializes");
    if let Err(e) = check_size(&key.entity, text.len()) {
        return Err(e.reason.rejection_code());
    }
    Ok((doc, text))
}

/// The answer to a change of a stream the pusher may not write: the same whether the record
/// exists or not, and whatever the space (a non-member learns nothing).
fn forbidden(op_id: &str, user: &str, key: &RecordKey) -> MutationResult {
    tracing::info!(
        user_id = %user,
        stream = %key.stream,
        code = "forbidden",
        "push refused: the pusher may not write this stream"
    );
    MutationResult::rejected(op_id, RejectionCode::Forbidden)
}

/// Whether the live record `r` holds exactly `doc` (compared as JSON values, so key order and
/// spelling do not matter).
fn same_doc(r: &StoredRecord, doc: &Value) -> bool {
    live_doc(r).is_some_and(|stored| matches!(doc, Value::Object(d) if *d == stored))
}

/// The live document of a stored record, as a map.
fn live_doc(record: &StoredRecord) -> Option<Map<String, Value>> {
    record
        .doc
        .as_deref()
        .filter(|_| !record.deleted)
        .and_then(|d| serde_json::from_str(d).ok())
}

/// The string a stored document holds in `field`.
fn doc_field(record: &StoredRecord, field: &str) -> Option<String> {
    let doc: Map<String, Value> = serde_json::from_str(record.doc.as_deref()?).ok()?;
    doc.get(field).and_then(Value::as_str).map(str::to_string)
}

fn conflict_with(op_id: &str, reason: ConflictCode, record: &StoredRecord) -> MutationResult {
    let doc = record
        .doc
        .as_deref()
        .filter(|_| !record.deleted)
        .and_then(|d| serde_json::from_str(d).ok());
    MutationResult {
        server_edited_at: record.edited_at.clone(),
        server_field_edited_at: Some(record.field_times.clone()),
        ..MutationResult::conflict(op_id, reason, Some(record.version), doc)
    }
}

/// The edit time of one upsert, and of each field it sets or removes where that differs.
struct Edit {
    at: Hlc,
    fields: FieldTimes,
}

/// The field times of a document after an upsert of `new` over `existing`: a field whose value
/// changes (set, changed or removed) takes the change's time for it (its own, or the change's
/// `editedAt`), clamped; a field that keeps its value keeps its time. A record created, or
/// brought back from a delete, starts from no times.
fn field_times_after(
    existing: Option<&StoredRecord>,
    new: &Map<String, Value>,
    edit: &Edit,
    stamp: &EditStamp,
) -> FieldTimes {
    let live = existing.filter(|r| !r.deleted);
    let old: Map<String, Value> = live
        .and_then(|r| r.doc.as_deref())
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let mut times = live.map(|r| r.field_times.clone()).unwrap_or_default();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        if old.get(key) != new.get(key) {
            let at = edit
                .fields
                .get(key)
                .map_or_else(|| edit.at.clone(), |t| t.clamped(stamp.limit_ms()));
            times.insert(key.clone(), at);
        } else if !times.contains_key(key) {
            if let Some(t) = edit.fields.get(key) {
                times.insert(key.clone(), t.clamped(stamp.limit_ms()));
            }
        }
    }
    times
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
            edited_at: None,
            field_edited_at: None,
            space: None,
        }
    }

    fn stamp() -> EditStamp {
        EditStamp {
            now_ms: 1_000,
            client_id: "c".into(),
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
        let plan = plan_push(
            &s,
            batch,
            HashMap::new(),
            HashMap::new(),
            &PushStreams::user_only("u", 10, 0),
            &stamp(),
        );
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
            .map(|w| (w.record.key.id.as_str(), w.seq, w.group.clone()))
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
        let first = plan_push(
            &s,
            group(),
            HashMap::new(),
            HashMap::new(),
            &PushStreams::user_only("u", 0, 0),
            &stamp(),
        );
        let known: HashMap<_, _> = first.applied_ops.into_iter().collect();
        let again = plan_push(
            &s,
            group(),
            known,
            HashMap::new(),
            &PushStreams::user_only("u", 2, 0),
            &stamp(),
        );
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
        let stamp = EditStamp {
            now_ms: 1_000,
            client_id: "c".into(),
        };
        let plan = plan_push(
            &s,
            batch,
            HashMap::new(),
            HashMap::new(),
            &PushStreams::user_only("u", 10, 0),
            &stamp,
        );
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
        let day = plan.writes.iter().find(|w| w.record.key.id == "d").unwrap();
        assert!(day.record.deleted);
        assert_eq!(day.record.version, 2);
        assert_eq!(plan.applied_ops.len(), 3);
    }

    fn stored(key: RecordKey, version: i64, doc: Value) -> StoredRecord {
        StoredRecord {
            key,
            version,
            deleted: false,
            doc: Some(doc.to_string()),
            parent: None,
            edited_at: None,
            field_times: FieldTimes::new(),
        }
    }

    #[test]
    fn new_attachments_must_be_readable_and_held_ones_are_not_checked_again() {
        let s = schema();
        let hash = |c: char| c.to_string().repeat(64);
        let photo = |c: char| json!({"hash": hash(c), "size": 3, "contentType": "image/jpeg"});
        let day = |p: Value| json!({"planId": "p", "dayIndex": 0, "photo": p});
        let plan = RecordKey::new("u", "plans", "p");
        let kept = RecordKey::new("u", "plan_days", "kept");
        let records = HashMap::from([
            (plan.clone(), stored(plan.clone(), 1, json!({"name": "P"}))),
            (kept.clone(), stored(kept.clone(), 1, day(photo('a')))),
        ]);
        let batch = vec![
            // b: readable; c: not; a: the loaded record holds it (and may be named anew).
            m("o1", "plan_days", "d1", None, Some(day(photo('b')))),
            m("o2", "plan_days", "d2", None, Some(day(photo('c')))),
            m("o3", "plan_days", "d3", None, Some(day(photo('a')))),
            // The record that holds `a` drops it, then takes it back: still applied.
            m("o4", "plan_days", "kept", Some(1), Some(day(Value::Null))),
            m("o5", "plan_days", "kept", Some(2), Some(day(photo('a')))),
            // A group with a missing blob fails whole.
            g("g", m("o6", "plans", "q", None, Some(json!({"name": "Q"})))),
            g("g", m("o7", "plan_days", "d4", None, Some(day(photo('c'))))),
        ];
        let mut streams = PushStreams::user_only("u", 10, 0);
        let mutations: Vec<Mutation> = batch.clone();
        assert_eq!(
            new_attachment_hashes(&s, "u", &mutations, &records, |st| st == "u"),
            vec![hash('b'), hash('c')]
        );
        streams.readable_blobs = HashSet::from([hash('b')]);
        let plan = plan_push(&s, batch, HashMap::new(), records, &streams, &stamp());
        let statuses: Vec<_> = plan
            .results
            .iter()
            .map(|r| (r.status, r.reason.clone()))
            .collect();
        let missing = (
            ResultStatus::Rejected,
            Some("attachment_missing".to_string()),
        );
        assert_eq!(
            statuses,
            vec![
                (ResultStatus::Applied, None),
                missing.clone(),
                (ResultStatus::Applied, None),
                (ResultStatus::Applied, None),
                (ResultStatus::Applied, None),
                (ResultStatus::Aborted, Some("group_failed".to_string())),
                missing,
            ]
        );
        // The live written records' attachments are what record_blobs holds.
        let rows = index_rows(&s, &plan.writes);
        let mut blobs: Vec<_> = rows
            .blobs
            .iter()
            .map(|b| (b.1.as_str(), b.3.clone()))
            .collect();
        blobs.sort();
        assert_eq!(
            blobs,
            vec![("d1", hash('b')), ("d3", hash('a')), ("kept", hash('a'))]
        );
    }
}
