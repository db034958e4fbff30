//! The engine: one store, its app schema and its observers. Every write validates, updates the
//! record and its outbox entry in one transaction, then tells observers. Nothing here knows about
//! UniFFI; `ffi` wraps it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Transaction;
use serde_json::Value;
use tandem_protocol::{
    check_size, is_valid_id, Collection, Schema, ValidationError, ValidationReason, MAX_GROUP_SIZE,
};
use uuid::Uuid;

use crate::edit_time::{self, EditClock};
use crate::error::{Error, Result};
use crate::observe::{ChangeCallback, Notifier, QueryCallback, SubscriptionHandle};
use crate::outbox::{self, OutboxEntry};
use crate::query::{CompiledQuery, Query};
use crate::records::{self, RecordRow, RecordState};
use crate::refs;
use crate::schema;
use crate::store::convert::StoreEncryption;
use crate::store::Store;
use crate::sync::conflict::{self, ConflictRow};
use crate::sync::reconcile;
use crate::sync::spaces;
use tandem_protocol::Scope;

/// The database file inside the data directory for data written while signed out.
pub const GUEST_DB: &str = "guest.db";

/// One write of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Creates or replaces a whole document; a missing id is generated (UUID v7). `space_id`
    /// names the space of a new record of a `space`-scoped collection (an existing record, or a
    /// child, is in its own or its parent's space, which a given `space_id` must match); it must
    /// be `None` for other collections.
    Put {
        collection: String,
        id: Option<String>,
        doc: Value,
        space_id: Option<String>,
    },
    /// Applies an RFC 7386 JSON merge patch to an existing record.
    Patch {
        collection: String,
        id: String,
        patch: Value,
    },
    /// Deletes a record and, through the schema's parents, everything below it.
    Delete { collection: String, id: String },
}

pub struct Engine {
    store: Arc<Store>,
    schema: Schema,
    has_refs: bool,
    /// Whether any collection is `space`- or `public`-scoped: then sync pulls per stream.
    uses_streams: bool,
    notifier: Arc<Notifier>,
    edit_clock: EditClock,
    /// Attachment transfers under way (in memory only).
    attachment_progress: crate::attachments::progress::Progress,
    /// Seals the attachment cache (the store is encrypted; docs/design/encryption.md §3).
    /// Set at open, or changed by a conversion or rekey of the store.
    cache_key: std::sync::Mutex<Option<crate::attachments::sealed::CacheKey>>,
}

impl Engine {
    /// Opens (creating when missing) the guest store in `data_dir` for `schema_json`, with
    /// observers of its own (the engine's unit tests).
    #[cfg(test)]
    pub fn open(data_dir: &Path, schema_json: &str) -> Result<Self> {
        let schema = Schema::from_json(schema_json)?;
        crate::store::files::create_private_dir(data_dir)?;
        let current = Arc::new(crate::store::CurrentStore::default());
        let notifier = Arc::new(Notifier::start(Arc::clone(&current))?);
        let engine = Self::open_file(&data_dir.join(GUEST_DB), schema, notifier)?;
        current.set(Some(engine.store()));
        Ok(engine)
    }

    /// Opens (creating when missing) the store file `path`, telling `notifier` about commits.
    #[cfg(test)]
    pub fn open_file(path: &Path, schema: Schema, notifier: Arc<Notifier>) -> Result<Self> {
        Self::open_file_with(path, schema, notifier, &StoreEncryption::default())
    }

    /// [`Engine::open_file`] with the store encrypted, or not, as `encryption` says (converting
    /// the file on the way when it disagrees).
    pub fn open_file_with(
        path: &Path,
        schema: Schema,
        notifier: Arc<Notifier>,
        encryption: &StoreEncryption,
    ) -> Result<Self> {
        let store = Arc::new(Store::open_with(path, encryption)?);
        store.write(|tx| schema::install(tx, &schema))?;
        let has_refs = schema
            .collections
            .values()
            .any(|c| c.refs().next().is_some());
        let edit_clock = store.read(EditClock::load)?;
        let uses_streams = schema.collections.values().any(|c| c.scope != Scope::User);
        let attachment_progress = crate::attachments::progress::Progress::new(&notifier);
        // The attachment cache is sealed with a key derived from the database key.
        let cache_key = store
            .key()
            .map(crate::attachments::sealed::CacheKey::derive);
        Ok(Self {
            attachment_progress,
            cache_key: std::sync::Mutex::new(cache_key),
            store,
            has_refs,
            uses_streams,
            schema,
            notifier,
            edit_clock,
        })
    }

    /// This engine with its edit times read from `clock` and made by device `node` (its client
    /// id). Without it, the system clock and the node `local`.
    pub fn with_edit_clock(self, clock: Arc<dyn tandem_protocol::Clock>, node: &str) -> Self {
        Self {
            edit_clock: self.edit_clock.with(clock, node),
            ..self
        }
    }

    /// Seals (or, with `None`, stops sealing) the attachment files written from now on, with the
    /// key derived from the database key (docs/design/encryption.md §3); the encrypted store's
    /// open sets it. The
    /// files already in the cache are the caller's to convert ([`crate::convert_cache`]).
    pub fn set_cache_key(&self, key: Option<crate::attachments::sealed::CacheKey>) {
        *crate::store::lock(&self.cache_key) = key;
    }

    /// The edit clock, for sync to show it the server's times.
    pub(crate) fn edit_clock(&self) -> &EditClock {
        &self.edit_clock
    }

    /// Whether sync pulls per stream (the schema has `space` or `public` collections). A schema
    /// of user collections only keeps the single-stream pull, answered by every server version.
    pub(crate) fn uses_streams(&self) -> bool {
        self.uses_streams
    }

    /// The attachment transfers under way, for their progress.
    pub(crate) fn attachment_progress(&self) -> &crate::attachments::progress::Progress {
        &self.attachment_progress
    }

    /// The account's attachments directory (next to its database).
    pub(crate) fn files(&self) -> crate::attachments::Files {
        let key = crate::store::lock(&self.cache_key).clone();
        crate::attachments::Files::of_store(self.store.path()).with_key(key)
    }

    /// The store, for sync and account management.
    pub(crate) fn store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    /// Tells observers about changes committed outside `write` (sync). A synced change to a parent
    /// can show, hide or remove its children, so the collections below it are told too.
    pub(crate) fn committed(&self, collections: BTreeSet<String>) {
        self.notifier
            .committed(with_descendants(&self.schema, collections));
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Applies `ops` in one transaction: all of them or, on the first error, none. Returns the
    /// written record of every put and patch, in order.
    #[cfg(test)]
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<RecordRow>> {
        Ok(self.write_reporting(ops)?.0)
    }

    /// [`write`](Self::write), also saying whether anything changed: a put or patch that leaves
    /// its record's document as it was (a no-op save) writes nothing, and a batch of only such
    /// writes changes nothing, tells no observer and gives the syncer nothing to send.
    ///
    /// A batch of two ops or more is one atomic group on the wire too: its outbox entries carry
    /// one group id, travel in one push, and the server applies all of them or none (see the
    /// outbox's group rules). A group holds at most [`MAX_GROUP_SIZE`] changes (the ops' own and
    /// those their deletes record below them); a group that grows past it through its deletes is
    /// refused with [`Error::InvalidArgument`], nothing written. A write of one op has no group,
    /// and neither has a bulk write of more than [`MAX_GROUP_SIZE`] ops (an import, a first
    /// load): it is atomic here, and its changes go to the server as separate changes.
    pub fn write_reporting(&self, ops: Vec<WriteOp>) -> Result<(Vec<RecordRow>, bool)> {
        self.write_reporting_with(ops, |_| Ok(()))
    }

    /// [`write_reporting`](Self::write_reporting), with `extra` run in the same transaction
    /// after the ops succeeded (an attach's `attachments` row): it commits with them or, on an
    /// error of either, nothing does.
    pub fn write_reporting_with(
        &self,
        ops: Vec<WriteOp>,
        extra: impl FnOnce(&Transaction<'_>) -> Result<()>,
    ) -> Result<(Vec<RecordRow>, bool)> {
        let now = now_ms();
        let group = (2..=MAX_GROUP_SIZE)
            .contains(&ops.len())
            .then(|| Uuid::now_v7().to_string());
        let _scope = group
            .clone()
            .map(|g| outbox::GroupScope::enter(g, ops.len()));
        let result = self.store.write(|tx| {
            let mut batch = Batch {
                tx,
                schema: &self.schema,
                has_refs: self.has_refs,
                clock: &self.edit_clock,
                now,
                changed: BTreeSet::new(),
            };
            let mut written = Vec::with_capacity(ops.len());
            for op in ops {
                if let Some(row) = batch.apply(op)? {
                    written.push(row);
                }
            }
            if group.is_some() {
                // One group per stream the batch wrote (see the outbox's stream rule).
                for group in outbox::current_groups() {
                    let size = outbox::group_size(tx, &group)?;
                    if size > MAX_GROUP_SIZE as u64 {
                        return Err(group_too_large(size as usize));
                    }
                }
            }
            extra(tx)?;
            // Once for the whole transaction: the clock's state after its last tick.
            self.edit_clock.save(tx)?;
            Ok((written, batch.changed))
        });
        // A failed transaction may have rolled back the clock's saved copy.
        let (written, changed) = result.inspect_err(|_| self.edit_clock.unsaved())?;
        let any = !changed.is_empty();
        self.notifier.committed(changed);
        Ok((written, any))
    }

    pub fn get(&self, collection: &str, id: &str) -> Result<Option<RecordRow>> {
        schema::declared(&self.schema, collection)?;
        self.store
            .read(|conn| records::load_live(conn, collection, id))
    }

    /// [`get`](Self::get) of each id, in one read of the store (one connection, one snapshot).
    pub fn get_many(&self, collection: &str, ids: &[String]) -> Result<Vec<Option<RecordRow>>> {
        schema::declared(&self.schema, collection)?;
        self.store.read(|conn| {
            ids.iter()
                .map(|id| records::load_live(conn, collection, id))
                .collect()
        })
    }

    pub fn compile(&self, collection: &str, query: &Query) -> Result<CompiledQuery> {
        CompiledQuery::compile(&self.schema, collection, query)
    }

    pub fn query(&self, collection: &str, query: &Query) -> Result<Vec<RecordRow>> {
        let compiled = self.compile(collection, query)?;
        self.store.read(|conn| compiled.rows(conn))
    }

    pub fn count(&self, collection: &str, query: &Query) -> Result<u64> {
        let compiled = self.compile(collection, query)?;
        self.store.read(|conn| compiled.count(conn))
    }

    /// SQLite's query plan, to check that a query uses an index.
    pub fn explain(&self, collection: &str, query: &Query) -> Result<String> {
        let compiled = self.compile(collection, query)?;
        self.store.read(|conn| compiled.explain(conn))
    }

    pub fn observe(
        &self,
        collection: &str,
        query: &Query,
        callback: QueryCallback,
    ) -> Result<SubscriptionHandle> {
        let compiled = self.compile(collection, query)?;
        Ok(self.notifier.observe(collection, compiled, callback))
    }

    /// Observes one record: `callback` gets it (an empty list when it does not exist) now and
    /// after every commit to its collection.
    pub fn observe_record(
        &self,
        collection: &str,
        id: &str,
        callback: QueryCallback,
    ) -> Result<SubscriptionHandle> {
        check_id(id)?;
        let compiled = CompiledQuery::record(&self.schema, collection, id)?;
        Ok(self.notifier.observe(collection, compiled, callback))
    }

    pub fn listen(&self, callback: ChangeCallback) -> SubscriptionHandle {
        self.notifier.listen(callback)
    }

    /// Outbox entries the server has yet to confirm.
    pub fn pending_count(&self) -> Result<u64> {
        self.store.read(outbox::unsent_count)
    }

    pub fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        self.store.read(outbox::list)
    }
}

/// The writes of one transaction and the collections they touched.
struct Batch<'a, 'tx> {
    tx: &'a Transaction<'tx>,
    schema: &'a Schema,
    /// Whether any collection declares a `ref` (then deletes look for referrers below them).
    has_refs: bool,
    clock: &'a EditClock,
    now: i64,
    changed: BTreeSet<String>,
}

impl Batch<'_, '_> {
    fn apply(&mut self, op: WriteOp) -> Result<Option<RecordRow>> {
        match op {
            WriteOp::Put {
                collection,
                id,
                doc,
                space_id,
            } => {
                let id = match id {
                    Some(id) => id,
                    None => Uuid::now_v7().to_string(),
                };
                self.put(&collection, &id, doc, space_id.as_deref())
                    .map(Some)
            }
            WriteOp::Patch {
                collection,
                id,
                patch,
            } => self.patch(&collection, &id, &patch).map(Some),
            WriteOp::Delete { collection, id } => self.delete(&collection, &id).map(|()| None),
        }
    }

    fn put(
        &mut self,
        collection: &str,
        id: &str,
        doc: Value,
        space: Option<&str>,
    ) -> Result<RecordRow> {
        let declared = self.collection(collection)?;
        check_id(id)?;
        let (doc, json) = stored_form(declared, collection, doc)?;
        // User-scoped collections (today's every collection) decide this without a query.
        let space_id = match declared.scope {
            Scope::User if space.is_none() => None,
            Scope::User => {
                return Err(space_mismatch(collection, "a user collection has no space"))
            }
            Scope::Public => return Err(read_only(collection)),
            Scope::Space => Some(self.space_of_put(declared, collection, id, &doc, space)?),
        };
        let space_id = space_id.as_deref();
        let mut depends_on: Vec<(String, String)> = self
            .check_parent(declared, collection, &doc, space_id)?
            .into_iter()
            .collect();
        if let Value::Object(map) = &doc {
            if declared.refs().next().is_some() {
                depends_on.extend(refs::check_refs(
                    self.tx, declared, collection, id, map, space_id,
                )?);
            }
            if !declared.unique.is_empty() {
                refs::check_unique(self.tx, declared, collection, id, map, space_id)?;
            }
        }
        let at = self.clock.tick();
        let empty = serde_json::Map::new();
        let new_map = doc.as_object().unwrap_or(&empty);
        let at_text = at.encode();
        let mut row = RecordRow {
            collection: collection.to_string(),
            id: id.to_string(),
            doc: Some(json),
            server_doc: None,
            server_version: 0,
            deleted: false,
            state: RecordState::Pending,
            created_at: self.now,
            updated_at: self.now,
            edited_at: Some(at_text.clone()),
            // A fresh document stores no field times: each field reads as `edited_at`.
            field_times: None,
            space_id: space_id.map(str::to_string),
        };
        let before = if records::insert_new(self.tx, &row)? {
            None
        } else {
            let before = records::load(self.tx, collection, id)?
                .ok_or_else(|| Error::Corrupt(format!("{collection}/{id} vanished mid-write")))?;
            if is_unchanged(&before, &doc, row.doc.as_deref().unwrap_or_default())? {
                // A no-op save: no outbox entry, no new `updatedAt`, nothing for observers.
                return Ok(before);
            }
            if !before.deleted {
                let old = parse_stored(before.doc.as_deref())?;
                row.field_times = edit_time::times_text(&edit_time::after_edit(
                    old.as_object(),
                    before.edited_at.as_deref(),
                    edit_time::parse_times(before.field_times.as_deref()),
                    new_map,
                    &at,
                ));
            }
            if let Some(open) = self.open_conflict(&before)? {
                self.touch(collection);
                let written = reconcile::write_in_conflict(
                    self.tx,
                    self.schema,
                    &before,
                    &open,
                    row.doc.as_deref(),
                    self.now,
                )?;
                self.stamp(collection, id, &at_text, row.field_times.as_deref())?;
                return Ok(RecordRow {
                    edited_at: row.edited_at,
                    field_times: row.field_times,
                    ..written
                });
            }
            row.server_doc.clone_from(&before.server_doc);
            row.server_version = before.server_version;
            row.created_at = before.created_at;
            records::save(self.tx, &row)?;
            Some(before)
        };
        let depends_on: Vec<(&str, &str)> = depends_on
            .iter()
            .map(|(c, i)| (c.as_str(), i.as_str()))
            .collect();
        let doc_json = row.doc.as_deref().unwrap_or_default();
        outbox::record_upsert_timed(
            self.tx,
            collection,
            id,
            before.as_ref(),
            doc_json,
            &depends_on,
            self.now,
            Some(outbox::EntryTimes {
                edited_at: &at_text,
                field_times: row.field_times.as_deref(),
            }),
            space_id,
        )?;
        self.touch(collection);
        Ok(row)
    }

    /// Gives the record and its newest pending outbox entry the times of the edit just made.
    fn stamp(&self, collection: &str, id: &str, at: &str, field_times: Option<&str>) -> Result<()> {
        records::set_times(self.tx, collection, id, Some(at), field_times)?;
        outbox::stamp_times(self.tx, collection, id, at, field_times)
    }

    fn patch(&mut self, collection: &str, id: &str, patch: &Value) -> Result<RecordRow> {
        self.collection(collection)?;
        if !patch.is_object() {
            return Err(Error::invalid("a merge patch must be a JSON object"));
        }
        let before = records::load_live(self.tx, collection, id)?
            .ok_or_else(|| Error::not_found(collection, id))?;
        let mut doc = parse_stored(before.doc.as_deref())?;
        json_patch::merge(&mut doc, patch);
        let space = before.space_id.clone();
        self.put(collection, id, doc, space.as_deref())
    }

    /// Deletes the record with an outbox entry of its own; what lies below it goes with it (see
    /// `reconcile::cascade_local_delete` for which of them get entries of their own).
    fn delete(&mut self, collection: &str, id: &str) -> Result<()> {
        let declared = self.collection(collection)?;
        if declared.scope == Scope::Public {
            return Err(read_only(collection));
        }
        let target = records::load_live(self.tx, collection, id)?
            .ok_or_else(|| Error::not_found(collection, id))?;
        if let Some(space) = target.space_id.as_deref() {
            // What lies below it is in its space: one check covers the cascade.
            self.check_role(collection, space)?;
        }
        let at = self.clock.tick().encode();
        if self.schema.referrers_of(collection).next().is_some() || self.has_refs {
            // References into it (or into what lies below it): their rules first, one unit.
            let mut deletion =
                refs::Deletion::new(self.tx, self.schema, self.now, refs::Mode::Local);
            deletion.delete(&target)?;
            self.changed.extend(deletion.changed);
        } else {
            reconcile::delete_own(self.tx, self.schema, &target, self.now)?;
            reconcile::cascade_local_delete(self.tx, self.schema, collection, id, self.now)?;
        }
        self.stamp(collection, id, &at, None)?;
        // Settling a conflict by the delete may remove what lay below without the cascade seeing
        // it: observers of every collection below are told.
        let family = with_descendants(self.schema, [collection.to_string()].into());
        self.changed.extend(family);
        Ok(())
    }

    /// The open conflict of a record that is conflicted: writes to it go through the conflict.
    fn open_conflict(&self, row: &RecordRow) -> Result<Option<ConflictRow>> {
        if row.state != RecordState::Conflicted {
            return Ok(None);
        }
        conflict::get(self.tx, &row.collection, &row.id)
    }

    /// Checks that the parent a document names exists. Returns it when the server has not seen it
    /// yet, because then the child's outbox entry must stay behind the parent's.
    fn check_parent(
        &self,
        declared: &Collection,
        collection: &str,
        doc: &Value,
        space: Option<&str>,
    ) -> Result<Option<(String, String)>> {
        let (Some(parent), Value::Object(map)) = (&declared.parent, doc) else {
            return Ok(None);
        };
        let Some(parent_id) = declared.parent_id(map) else {
            return Ok(None);
        };
        match records::load_live(self.tx, &parent.collection, parent_id)? {
            None => Err(ValidationError::new(
                collection,
                Some(&parent.field),
                ValidationReason::ParentMissing {
                    parent_collection: parent.collection.clone(),
                    parent_id: parent_id.to_string(),
                },
            )
            .into()),
            // A parent in another space (only a pull of a colliding id can place one there) is
            // not this record's parent: the server looks it up in the record's own stream.
            Some(row) if row.space_id.as_deref() != space => Err(space_mismatch(
                collection,
                "the parent is in another space; a child is in its parent's space",
            )),
            Some(row) if row.server_version == 0 => Ok(Some((row.collection, row.id))),
            Some(_) => Ok(None),
        }
    }

    /// The space a put of a `space`-scoped record goes to: an existing record's own; else a
    /// child's parent's; else the given one. A given `space` that differs, or none where one is
    /// needed, is a `SpaceMismatch`; the space must be known here with a role that may write.
    fn space_of_put(
        &self,
        declared: &Collection,
        collection: &str,
        id: &str,
        doc: &Value,
        given: Option<&str>,
    ) -> Result<String> {
        let held = match records::load(self.tx, collection, id)? {
            Some(row) => row.space_id,
            None => match (&declared.parent, doc) {
                (Some(parent), Value::Object(map)) => match declared.parent_id(map) {
                    Some(parent_id) => records::load_live(self.tx, &parent.collection, parent_id)?
                        .and_then(|p| p.space_id),
                    None => None,
                },
                _ => None,
            },
        };
        let space = match (held, given) {
            (Some(held), Some(given)) if held != given => {
                return Err(space_mismatch(
                    collection,
                    "the record (or its parent) is in another space; a record never moves between spaces",
                ))
            }
            (Some(held), _) => held,
            (None, Some(given)) => given.to_string(),
            (None, None) => {
                return Err(space_mismatch(
                    collection,
                    "a record of a space collection needs the id of its space",
                ))
            }
        };
        self.check_role(collection, &space)?;
        Ok(space)
    }

    /// Refuses a write to `space` unless it is known here with a role that may write (owner or
    /// editor): the engine refuses what the server would, before anything is written.
    fn check_role(&self, collection: &str, space: &str) -> Result<()> {
        match spaces::role(self.tx, space)? {
            None => {
                Err(ValidationError::new(collection, None, ValidationReason::UnknownSpace).into())
            }
            Some(role) if !role.can_write() => {
                Err(ValidationError::new(collection, None, ValidationReason::Forbidden).into())
            }
            Some(_) => Ok(()),
        }
    }

    /// Notes that the transaction changed `collection` (allocating only the first time).
    fn touch(&mut self, collection: &str) {
        if !self.changed.contains(collection) {
            self.changed.insert(collection.to_string());
        }
    }

    fn collection(&self, name: &str) -> Result<&Collection> {
        schema::declared(self.schema, name)
    }
}

/// `collections` and every collection below them: a change to a parent can show, hide or remove
/// its children, so their observers must look again.
fn with_descendants(schema: &Schema, mut collections: BTreeSet<String>) -> BTreeSet<String> {
    let mut stack: Vec<String> = collections.iter().cloned().collect();
    while let Some(parent) = stack.pop() {
        for (child, _) in schema.children_of(&parent) {
            if collections.insert(child.to_string()) {
                stack.push(child.to_string());
            }
        }
        // A delete there may cascade to, or clear a field of, the records referring to it.
        for referrer in schema.referrers_of(&parent) {
            if referrer.on_delete != tandem_protocol::OnDelete::Restrict
                && collections.insert(referrer.collection.to_string())
            {
                stack.push(referrer.collection.to_string());
            }
        }
    }
    collections
}

fn space_mismatch(collection: &str, why: &str) -> Error {
    tracing::debug!(collection, why, "space write refused");
    ValidationError::new(collection, None, ValidationReason::SpaceMismatch).into()
}

fn read_only(collection: &str) -> Error {
    ValidationError::new(collection, None, ValidationReason::ReadOnly).into()
}

fn group_too_large(changes: usize) -> Error {
    Error::InvalidArgument(format!(
        "a write batch is one atomic group of at most {MAX_GROUP_SIZE} changes; with what its \
         deletes remove below them this one has {changes} (split it into several writes)"
    ))
}

fn check_id(id: &str) -> Result<()> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(Error::invalid(
            "ids are 1 to 128 characters from [A-Za-z0-9_.:-]",
        ))
    }
}

/// Null in a field means absent; dropping such keys keeps stored documents canonical, so a put
/// and a merge patch that say the same thing store the same thing.
/// A document as a put stores it: top-level nulls dropped (they mean "absent"), the fields
/// validated against `declared`, then serialised and size-checked. Returns the document and its
/// stored text.
pub(crate) fn stored_form(
    declared: &Collection,
    collection: &str,
    mut doc: Value,
) -> Result<(Value, String)> {
    if let Value::Object(map) = &mut doc {
        map.retain(|_, v| !v.is_null());
    }
    declared.validate_fields(collection, &doc)?;
    // Straight into a buffer (`Value`'s `Display` goes through the formatting machinery).
    let json = serde_json::to_string(&doc)
        .map_err(|e| Error::invalid(format!("the document cannot be serialised: {e}")))?;
    check_size(collection, json.len())?;
    Ok((doc, json))
}

/// Whether a put of `doc` (stored text `json`) would leave the live record `before` as it is.
/// Only for records that are synced or merely pending: a write to a conflicted record settles or
/// moves its conflict, and one to a rejected record queues a new attempt, so those always write.
fn is_unchanged(before: &RecordRow, doc: &Value, json: &str) -> Result<bool> {
    if before.deleted || !matches!(before.state, RecordState::Synced | RecordState::Pending) {
        return Ok(false);
    }
    let Some(stored) = before.doc.as_deref() else {
        return Ok(false);
    };
    // The stored text is usually the same canonical serialisation; a pulled document may be
    // spelled differently, so unequal texts are compared as values.
    Ok(stored == json || parse_stored(Some(stored))? == *doc)
}

fn parse_stored(doc: Option<&str>) -> Result<Value> {
    let text = doc.ok_or_else(|| Error::Corrupt("live record without a document".into()))?;
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("stored document: {e}")))
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
