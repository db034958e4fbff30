//! A conflict keeps the server side's edit times (store v7), so a record settled on the server's
//! side (policies other than last-write-wins: a resolution, or the server's side moving on to
//! what the user has) shows the server's `edited_at` at once instead of none until its next
//! change; a document settled between the sides keeps the server's time for each field it takes
//! from the server.

use std::sync::Arc;

use serde_json::{json, Value};
use tandem_protocol::{Change, FieldTimes, Hlc, ManualClock, MutationResult, PushResponse};
use tempfile::TempDir;

use crate::edit_time::parse_times;
use crate::engine::{now_ms, Engine, WriteOp};
use crate::outbox::{self, OutboxEntry};
use crate::records::RecordRow;
use crate::sync::conflict::{self, ConflictPolicy, ConflictRow};
use crate::sync::resolve::{resolve, Resolution};
use crate::sync::{pull, push};

const SCHEMA: &str = include_str!("../../schemas/test.json");
const NOW: i64 = 1_733_535_600_000;

struct Device {
    _dir: TempDir,
    engine: Engine,
    policy: ConflictPolicy,
}

fn device(policy: ConflictPolicy) -> Device {
    let dir = TempDir::new().unwrap();
    let engine = Engine::open(dir.path(), SCHEMA)
        .unwrap()
        .with_edit_clock(Arc::new(ManualClock::at_ms(NOW)), "device-1");
    Device {
        _dir: dir,
        engine,
        policy,
    }
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn t(ms: i64, node: &str) -> Hlc {
    Hlc::new(ms, 0, node)
}

/// A record's field times as the merge reads them (stored sparse: a field of the document without
/// a time of its own reads as the record's `edited_at`).
fn effective_times(row: &RecordRow) -> FieldTimes {
    let doc: Option<serde_json::Map<String, Value>> = row
        .doc
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    crate::sync::lww::Side::of(
        doc.as_ref(),
        row.edited_at.as_deref(),
        row.field_times.as_deref(),
    )
    .fields
}

fn times(pairs: &[(&str, &Hlc)]) -> FieldTimes {
    pairs
        .iter()
        .map(|(k, t)| (k.to_string(), (*t).clone()))
        .collect()
}

impl Device {
    fn put(&self, id: &str, doc: Value) {
        self.engine
            .write(vec![WriteOp::Put {
                collection: "plans".into(),
                id: Some(id.into()),
                doc,
            }])
            .unwrap();
    }

    fn patch(&self, id: &str, patch: Value) {
        self.engine
            .write(vec![WriteOp::Patch {
                collection: "plans".into(),
                id: id.into(),
                patch,
            }])
            .unwrap();
    }

    fn push(&self, answer: impl Fn(&OutboxEntry) -> MutationResult) -> push::PushTally {
        let batch = self
            .engine
            .store()
            .write(|tx| outbox::take_batch(tx, 100, |_| Ok(false)))
            .unwrap();
        let response = PushResponse {
            results: batch.iter().map(&answer).collect(),
            server_time: Some(t(NOW, "server")),
        };
        let schema = self.engine.schema().clone();
        self.engine
            .store()
            .write(|tx| {
                let tally = push::apply_results(
                    tx,
                    &schema,
                    &batch,
                    &response.results,
                    self.policy,
                    now_ms(),
                )?;
                push::note_edit_times(tx, self.engine.edit_clock(), &batch, &response)?;
                Ok(tally)
            })
            .unwrap()
    }

    fn pull(&self, changes: Vec<Change>) -> pull::PullTally {
        let schema = self.engine.schema().clone();
        self.engine
            .store()
            .write(|tx| pull::apply_page(tx, &schema, &changes, "c1", self.policy, now_ms(), None))
            .unwrap()
    }

    /// Creates `id` as `doc` and has the server take it at version 1.
    fn synced(&self, id: &str, doc: Value) {
        self.put(id, doc);
        self.push(|e| MutationResult::applied(&e.op_id, 1));
    }

    fn row(&self, id: &str) -> RecordRow {
        self.engine
            .store()
            .read(|c| crate::records::load(c, "plans", id))
            .unwrap()
            .unwrap()
    }

    fn doc(&self, id: &str) -> Value {
        serde_json::from_str(self.row(id).doc.as_deref().unwrap()).unwrap()
    }

    fn open(&self, id: &str) -> ConflictRow {
        self.engine
            .store()
            .read(|c| conflict::get(c, "plans", id))
            .unwrap()
            .expect("an open conflict")
    }

    fn resolve(&self, id: &str, resolution: Resolution) {
        resolve(&self.engine, "plans", id, resolution).unwrap();
    }
}

fn conflict_answer(
    e: &OutboxEntry,
    version: i64,
    doc: Value,
    edited_at: &Hlc,
    fields: FieldTimes,
) -> MutationResult {
    MutationResult {
        server_edited_at: Some(edited_at.clone()),
        server_field_edited_at: Some(fields),
        ..MutationResult::conflict(&e.op_id, "version_mismatch", Some(version), Some(obj(doc)))
    }
}

fn change(id: &str, version: i64, doc: Value, at: &Hlc, fields: FieldTimes) -> Change {
    Change {
        entity: "plans".into(),
        entity_id: id.into(),
        version,
        deleted: false,
        doc: Some(obj(doc)),
        updated_at: "2026-01-01T00:00:00Z".into(),
        group_id: None,
        edited_at: Some(at.clone()),
        field_edited_at: Some(fields),
        space: None,
    }
}

#[test]
fn keeping_the_servers_side_of_a_push_conflict_takes_its_edit_times() {
    let d = device(ConflictPolicy::Merge);
    d.synced("p", json!({"name": "a"}));
    d.patch("p", json!({"name": "mine"}));
    let theirs = t(NOW - 5_000, "device-2");
    let tally = d.push(|e| {
        let fields = times(&[("name", &theirs)]);
        conflict_answer(e, 2, json!({"name": "theirs"}), &theirs, fields)
    });
    assert_eq!(
        tally.parked.len(),
        1,
        "both changed the name: the app decides"
    );
    let open = d.open("p");
    assert_eq!(open.server_edited_at, Some(theirs.encode()));
    assert_eq!(
        parse_times(open.server_field_times.as_deref()),
        times(&[("name", &theirs)])
    );

    d.resolve("p", Resolution::KeepServer);
    let row = d.row("p");
    assert_eq!(d.doc("p"), json!({"name": "theirs"}));
    assert_eq!(
        row.edited_at,
        Some(theirs.encode()),
        "the server's edit time"
    );
    assert_eq!(row.edited_at_ms(), Some(NOW - 5_000));
    assert_eq!(
        parse_times(row.field_times.as_deref()),
        times(&[("name", &theirs)])
    );
}

#[test]
fn a_conflict_follows_the_servers_times_as_its_side_moves_on() {
    let d = device(ConflictPolicy::Manual);
    d.synced("p", json!({"name": "a"}));
    d.patch("p", json!({"name": "mine"}));
    let first = t(NOW - 9_000, "device-2");
    let tally = d.pull(vec![change(
        "p",
        2,
        json!({"name": "b"}),
        &first,
        times(&[("name", &first)]),
    )]);
    assert_eq!(tally.parked.len(), 1);
    assert_eq!(d.open("p").server_edited_at, Some(first.encode()));

    // The server's side moves on (pulled again while the conflict is open): so do its times.
    let later = t(NOW - 2_000, "device-3");
    d.pull(vec![change(
        "p",
        3,
        json!({"name": "c"}),
        &later,
        times(&[("name", &later)]),
    )]);
    let open = d.open("p");
    assert_eq!(open.server_version, 3);
    assert_eq!(open.server_edited_at, Some(later.encode()));

    d.resolve("p", Resolution::KeepServer);
    assert_eq!(d.doc("p"), json!({"name": "c"}));
    assert_eq!(d.row("p").edited_at, Some(later.encode()));
    assert!(d.engine.outbox().unwrap().is_empty(), "nothing to send");
}

#[test]
fn a_settled_document_keeps_the_servers_time_for_each_field_it_takes_from_it() {
    let d = device(ConflictPolicy::Merge);
    d.synced("p", json!({"name": "a", "notes": "n"}));
    d.patch("p", json!({"name": "mine", "notes": "my notes"}));
    let mine = effective_times(&d.row("p"))["notes"].clone();
    let theirs = t(NOW + 20_000, "device-2");
    d.push(|e| {
        let fields = times(&[("name", &theirs), ("notes", &t(NOW - 60_000, "device-2"))]);
        conflict_answer(
            e,
            2,
            json!({"name": "theirs", "notes": "n"}),
            &theirs,
            fields,
        )
    });
    d.open("p");

    // Keep the server's name; the notes only this device changed stay, with its own time.
    d.resolve("p", Resolution::KeepServer);
    assert_eq!(d.doc("p"), json!({"name": "theirs", "notes": "my notes"}));
    let row = d.row("p");
    assert_eq!(
        effective_times(&row),
        times(&[("name", &theirs), ("notes", &mine)])
    );
    assert_eq!(row.edited_at, Some(theirs.encode()), "the latest of both");
    let sent = d.engine.outbox().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].edited_at, Some(theirs.encode()));
}

#[test]
fn conflicts_parked_before_v7_settle_without_times() {
    let d = device(ConflictPolicy::Merge);
    d.synced("p", json!({"name": "a"}));
    d.patch("p", json!({"name": "mine"}));
    let theirs = t(NOW - 5_000, "device-2");
    d.push(|e| {
        let fields = times(&[("name", &theirs)]);
        conflict_answer(e, 2, json!({"name": "theirs"}), &theirs, fields)
    });
    // As a store migrated from v6 holds it: no times.
    d.engine
        .store()
        .write(|tx| {
            tx.execute(
                "UPDATE conflicts SET server_edited_at = NULL, server_field_times = NULL",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    d.resolve("p", Resolution::KeepServer);
    assert_eq!(d.doc("p"), json!({"name": "theirs"}));
    assert_eq!(d.row("p").edited_at, None, "unknown until the next change");
}
