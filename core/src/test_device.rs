//! The simulated device of the client's unit tests (`sync_tests`, `noop_revert_tests`,
//! `group_tests`): a real engine on a real store in a temporary folder, with the server's side
//! played by hand (push answers and pulled pages written in the test).
//!
//! Naming: `*_op` builds a [`WriteOp`] without writing it; a `Device` method writes, takes,
//! answers or reads. `take` / `push` work on a batch of up to [`BATCH`] entries, `take_up_to` /
//! `push_up_to` on a batch of a given size.
//!
//! `engine_tests` and `refs_tests` keep a `Fixture` of their own (a schema of their own, SQL
//! pokes into the store), and `lww_tests` a `Device` with a node name and a clock skew; they
//! could move onto this module (`lww_tests`' `take`/`push`/`pull` are these with a clock).

use serde_json::{Map, Value};
use tandem_protocol::{Change, MutationResult};
use tempfile::TempDir;

use crate::engine::{now_ms, Engine, WriteOp};
use crate::outbox::{self, EntryState, OutboxEntry};
use crate::records::{RecordRow, RecordState};
use crate::sync::conflict::{self, ConflictPolicy};
use crate::sync::{pull, push};

/// The one test schema (`schemas/test.json`).
pub(crate) const SCHEMA: &str = include_str!("../../schemas/test.json");

/// How many entries `take` and `push` take at most.
pub(crate) const BATCH: usize = 100;

/// A device: an engine on its own temporary store, settling conflicts by `policy`.
pub(crate) struct Device {
    _dir: TempDir,
    pub(crate) engine: Engine,
    pub(crate) policy: ConflictPolicy,
}

/// A fresh device on the test schema.
pub(crate) fn device(policy: ConflictPolicy) -> Device {
    let dir = TempDir::new().unwrap();
    let engine = Engine::open(dir.path(), SCHEMA).unwrap();
    Device {
        _dir: dir,
        engine,
        policy,
    }
}

/// A put of `doc` as record `id` (not written).
pub(crate) fn put_op(collection: &str, id: &str, doc: Value) -> WriteOp {
    WriteOp::Put {
        collection: collection.into(),
        id: Some(id.into()),
        doc,
    }
}

/// A patch of record `id` (not written).
pub(crate) fn patch_op(collection: &str, id: &str, patch: Value) -> WriteOp {
    WriteOp::Patch {
        collection: collection.into(),
        id: id.into(),
        patch,
    }
}

/// A delete of record `id` (not written).
pub(crate) fn delete_op(collection: &str, id: &str) -> WriteOp {
    WriteOp::Delete {
        collection: collection.into(),
        id: id.into(),
    }
}

/// The object inside `v` (which must be one).
pub(crate) fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A pulled change as the server sends it: `doc` `None` is a delete.
pub(crate) fn change(entity: &str, id: &str, version: i64, doc: Option<Value>) -> Change {
    Change {
        entity: entity.into(),
        entity_id: id.into(),
        version,
        deleted: doc.is_none(),
        doc: doc.map(obj),
        updated_at: "2026-01-01T00:00:00Z".into(),
        group_id: None,
        edited_at: None,
        field_edited_at: None,
        space: None,
    }
}

/// The record ids of `batch`, in order.
pub(crate) fn entity_ids(batch: &[OutboxEntry]) -> Vec<&str> {
    batch.iter().map(|e| e.entity_id.as_str()).collect()
}

impl Device {
    /// Writes one put, alone.
    pub(crate) fn put(&self, collection: &str, id: &str, doc: Value) {
        self.write(vec![put_op(collection, id, doc)]);
    }

    /// Writes one delete, alone.
    pub(crate) fn delete(&self, collection: &str, id: &str) {
        self.write(vec![delete_op(collection, id)]);
    }

    /// Writes `ops` as one batch (one atomic group when there are two or more).
    pub(crate) fn write(&self, ops: Vec<WriteOp>) {
        self.engine.write(ops).unwrap();
    }

    /// [`write`](Self::write), returning whether anything changed (false for no-op saves only).
    pub(crate) fn write_changed(&self, ops: Vec<WriteOp>) -> bool {
        self.engine.write_reporting(ops).unwrap().1
    }

    /// Takes a push batch of up to [`BATCH`] entries (marking them in flight), as the syncer does.
    pub(crate) fn take(&self) -> Vec<OutboxEntry> {
        self.take_up_to(BATCH)
    }

    /// Takes a push batch of up to `limit` entries.
    pub(crate) fn take_up_to(&self, limit: usize) -> Vec<OutboxEntry> {
        self.engine
            .store()
            .write(|tx| outbox::take_batch(tx, limit, |_| Ok(false)))
            .unwrap()
    }

    /// Takes a batch of up to [`BATCH`] entries and applies the server's answer `answer(entry)`
    /// to each.
    pub(crate) fn push(&self, answer: impl Fn(&OutboxEntry) -> MutationResult) -> push::PushTally {
        self.push_up_to(BATCH, answer).1
    }

    /// [`push`](Self::push) of a batch of up to `limit` entries; returns the batch too.
    pub(crate) fn push_up_to(
        &self,
        limit: usize,
        answer: impl Fn(&OutboxEntry) -> MutationResult,
    ) -> (Vec<OutboxEntry>, push::PushTally) {
        let batch = self.take_up_to(limit);
        let results: Vec<MutationResult> = batch.iter().map(&answer).collect();
        let schema = self.engine.schema().clone();
        let tally = self
            .engine
            .store()
            .write(|tx| push::apply_results(tx, &schema, &batch, &results, self.policy, now_ms()))
            .unwrap();
        (batch, tally)
    }

    /// Pushes everything pending (up to [`BATCH`]), answered `applied` at `version`.
    pub(crate) fn push_applied(&self, version: i64) {
        self.push(|e| MutationResult::applied(&e.op_id, version));
    }

    /// Applies one pulled page of `changes` (cursor `c1`).
    pub(crate) fn pull(&self, changes: Vec<Change>) -> pull::PullTally {
        let schema = self.engine.schema().clone();
        self.engine
            .store()
            .write(|tx| pull::apply_page(tx, &schema, &changes, "c1", self.policy, now_ms(), None))
            .unwrap()
    }

    /// The visible document of a record (`None` when absent, deleted or hidden).
    pub(crate) fn doc(&self, collection: &str, id: &str) -> Option<Value> {
        self.engine
            .get(collection, id)
            .unwrap()
            .map(|r| serde_json::from_str(r.doc.as_deref().unwrap()).unwrap())
    }

    /// The stored row, deleted or not.
    pub(crate) fn row(&self, collection: &str, id: &str) -> Option<RecordRow> {
        self.engine
            .store()
            .read(|c| crate::records::load(c, collection, id))
            .unwrap()
    }

    /// The state of a stored record (which must exist).
    pub(crate) fn state(&self, collection: &str, id: &str) -> RecordState {
        self.row(collection, id).unwrap().state
    }

    /// The server version of a stored record (which must exist).
    pub(crate) fn version(&self, collection: &str, id: &str) -> i64 {
        self.row(collection, id).unwrap().server_version
    }

    /// Every outbox entry, in order, dead letters included.
    pub(crate) fn outbox(&self) -> Vec<OutboxEntry> {
        self.engine.outbox().unwrap()
    }

    /// Every outbox entry's record id and state, in the outbox's order.
    pub(crate) fn entry_states(&self) -> Vec<(String, EntryState)> {
        self.engine
            .store()
            .read(outbox::list)
            .unwrap()
            .into_iter()
            .map(|e| (e.entity_id, e.state))
            .collect()
    }

    /// The outbox entries still to send (dead letters left out).
    pub(crate) fn unsent(&self) -> Vec<OutboxEntry> {
        self.outbox()
            .into_iter()
            .filter(|e| e.state != EntryState::Rejected)
            .collect()
    }

    /// The open conflicts.
    pub(crate) fn conflicts(&self) -> Vec<conflict::ConflictRow> {
        self.engine.store().read(conflict::list).unwrap()
    }
}
