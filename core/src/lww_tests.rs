//! Edit times and last-write-wins on a real store, the server's side written by hand: writes stamp
//! per-field edit times (coalesced edits keep each field's own), the outbox sends them, the edit
//! clock persists and catches up with the server's time, and `LastWriteWins` settles push and pull
//! conflicts per field by edit time with devices whose clocks are skewed.

use std::sync::Arc;

use serde_json::{json, Value};
use tandem_protocol::{
    Change, FieldTimes, Hlc, ManualClock, MutationResult, PushResponse, MAX_CLOCK_SKEW_MS,
};
use tempfile::TempDir;

use crate::edit_time::parse_times;
use crate::engine::{now_ms, Engine, WriteOp};
use crate::outbox::{self, OutboxEntry};
use crate::records::RecordRow;
use crate::sync::conflict::{self, ConflictPolicy};
use crate::sync::{pull, push};

const SCHEMA: &str = include_str!("../../schemas/test.json");
const NOW: i64 = 1_733_535_600_000;

struct Device {
    dir: TempDir,
    engine: Engine,
    clock: ManualClock,
    node: &'static str,
}

fn device(node: &'static str, skew_ms: i64) -> Device {
    let dir = TempDir::new().unwrap();
    let clock = ManualClock::at_ms(NOW + skew_ms);
    let engine = Engine::open(dir.path(), SCHEMA)
        .unwrap()
        .with_edit_clock(Arc::new(clock.clone()), node);
    Device {
        dir,
        engine,
        clock,
        node,
    }
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn t(ms: i64, counter: u32, node: &str) -> Hlc {
    Hlc::new(ms, counter, node)
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

    fn delete(&self, id: &str) {
        self.engine
            .write(vec![WriteOp::Delete {
                collection: "plans".into(),
                id: id.into(),
            }])
            .unwrap();
    }

    fn take(&self) -> Vec<OutboxEntry> {
        self.engine
            .store()
            .write(|tx| outbox::take_batch(tx, 100, |_| Ok(false)))
            .unwrap()
    }

    /// Pushes what is pending, answered by `answer(entry)`, the server's clock at `server_ms`.
    fn push(
        &self,
        server_ms: i64,
        answer: impl Fn(&OutboxEntry) -> MutationResult,
    ) -> push::PushTally {
        let batch = self.take();
        let response = PushResponse {
            results: batch.iter().map(&answer).collect(),
            server_time: Some(t(server_ms, 0, "server")),
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
                    ConflictPolicy::LastWriteWins,
                    now_ms(),
                )?;
                push::note_edit_times(tx, self.engine.edit_clock(), &batch, &response)?;
                Ok(tally)
            })
            .unwrap()
    }

    fn pull(&self, server_ms: i64, changes: Vec<Change>) -> pull::PullTally {
        let schema = self.engine.schema().clone();
        self.engine
            .store()
            .write(|tx| {
                let seen = changes.iter().filter_map(|c| c.edited_at.as_ref());
                self.engine
                    .edit_clock()
                    .observe(tx, Some(&t(server_ms, 0, "server")), seen)?;
                pull::apply_page(
                    tx,
                    &schema,
                    &changes,
                    "c1",
                    ConflictPolicy::LastWriteWins,
                    now_ms(),
                    None,
                )
            })
            .unwrap()
    }

    fn row(&self, id: &str) -> RecordRow {
        self.engine
            .store()
            .read(|c| crate::records::load(c, "plans", id))
            .unwrap()
            .unwrap()
    }

    fn doc(&self, id: &str) -> Option<Value> {
        let row = self.row(id);
        (!row.deleted).then(|| serde_json::from_str(row.doc.as_deref().unwrap()).unwrap())
    }

    /// The record's field times as the merge reads them (stored sparse: a field of the document
    /// without a time of its own reads as the record's `edited_at`).
    fn times(&self, id: &str) -> FieldTimes {
        let row = self.row(id);
        let doc: Option<serde_json::Map<String, Value>> = row
            .doc
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok());
        let at: Option<Hlc> = row.edited_at.as_deref().and_then(|t| t.parse().ok());
        crate::edit_time::effective(
            doc.as_ref(),
            at.as_ref(),
            parse_times(row.field_times.as_deref()),
        )
    }

    fn unsent(&self) -> Vec<OutboxEntry> {
        self.engine.outbox().unwrap()
    }

    fn no_conflicts(&self) {
        assert!(self.engine.store().read(conflict::list).unwrap().is_empty());
    }
}

fn conflict(
    e: &OutboxEntry,
    version: i64,
    doc: Option<Value>,
    edited_at: Hlc,
    fields: FieldTimes,
) -> MutationResult {
    MutationResult {
        server_edited_at: Some(edited_at),
        server_field_edited_at: Some(fields),
        ..MutationResult::conflict(&e.op_id, "version_mismatch", Some(version), doc.map(obj))
    }
}

fn change(id: &str, version: i64, doc: Option<Value>, at: Hlc, fields: FieldTimes) -> Change {
    Change {
        entity: "plans".into(),
        entity_id: id.into(),
        version,
        deleted: doc.is_none(),
        doc: doc.map(obj),
        updated_at: "2026-01-01T00:00:00Z".into(),
        group_id: None,
        edited_at: Some(at),
        field_edited_at: Some(fields),
        space: None,
    }
}

fn times(pairs: &[(&str, &Hlc)]) -> FieldTimes {
    pairs
        .iter()
        .map(|(k, t)| (k.to_string(), (*t).clone()))
        .collect()
}

#[test]
fn writes_stamp_each_field_and_coalesced_edits_keep_their_own_times() {
    let d = device("dev-a", 0);
    d.put("p", json!({"name": "A", "notes": "n"}));
    let first = d.row("p");
    let t1: Hlc = first.edited_at.as_deref().unwrap().parse().unwrap();
    assert_eq!((t1.ms, t1.node.as_str()), (NOW, "dev-a"));
    assert_eq!(first.edited_at_ms(), Some(NOW));
    d.clock.advance(std::time::Duration::from_millis(50));
    d.patch("p", json!({"notes": "n2"}));
    let times = d.times("p");
    assert_eq!(times["name"], t1);
    assert_eq!(times["notes"].ms, NOW + 50);
    // One coalesced entry carries the latest edit and each field's own time.
    let entries = d.unsent();
    assert_eq!(entries.len(), 1);
    let m = push::to_mutation(&entries[0]).unwrap();
    assert_eq!(m.edited_at.as_ref().unwrap().ms, NOW + 50);
    assert_eq!(m.field_edited_at.as_ref().unwrap()["name"], t1);
    // The same millisecond again: the counter moves on.
    d.patch("p", json!({"name": "B"}));
    let again: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    assert_eq!((again.ms, again.counter), (NOW + 50, 1));
    // A delete has a time of its own.
    d.push(NOW + 50, |e| MutationResult::applied(&e.op_id, 1));
    d.clock.advance(std::time::Duration::from_millis(50));
    d.delete("p");
    let gone = d.row("p");
    assert!(gone.deleted);
    assert_eq!(gone.edited_at_ms(), Some(NOW + 100));
    let m = push::to_mutation(&d.unsent()[0]).unwrap();
    assert_eq!(m.edited_at.unwrap().ms, NOW + 100);
    assert!(m.field_edited_at.is_none());
}

#[test]
fn the_edit_clock_persists_and_catches_up_with_the_server() {
    let d = device("slow", -600_000); // ten minutes behind
    d.put("p", json!({"name": "A"}));
    // The push answer shows the server's time: later edits come after it.
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    d.patch("p", json!({"name": "B"}));
    let at: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    assert!(at > t(NOW, 0, "server"), "{at}");
    // Reopened, the clock goes on from where it was.
    let path = d.dir.path().to_path_buf();
    let clock = d.clock.clone();
    let Device { dir, engine, .. } = d;
    drop(engine);
    let reopened = Engine::open(&path, SCHEMA)
        .unwrap()
        .with_edit_clock(Arc::new(clock.clone()), "slow");
    let d = Device {
        dir,
        engine: reopened,
        clock,
        node: "slow",
    };
    d.patch("p", json!({"name": "C"}));
    let later: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    assert!(later > at, "{later} after {at}");
    assert_eq!(d.node, "slow");
}

#[test]
fn a_push_conflict_settles_per_field_by_edit_time() {
    let d = device("dev-a", 0);
    d.put("p", json!({"name": "A", "notes": "n"}));
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    d.clock.advance(std::time::Duration::from_millis(30));
    d.patch("p", json!({"name": "mine", "notes": "mine"}));
    let mine: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    // Meanwhile another device changed both: `notes` after this edit, `name` before it.
    let before = t(NOW + 10, 0, "dev-b");
    let after = t(NOW + 40, 0, "dev-b");
    let tally = d.push(NOW + 50, |e| {
        conflict(
            e,
            2,
            Some(json!({"name": "theirs", "notes": "theirs"})),
            after.clone(),
            times(&[("name", &before), ("notes", &after)]),
        )
    });
    assert_eq!(tally.conflicts, 1);
    assert!(tally.parked.is_empty());
    d.no_conflicts();
    assert_eq!(
        d.doc("p").unwrap(),
        json!({"name": "mine", "notes": "theirs"})
    );
    let entries = d.unsent();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].base_version, Some(2));
    let m = push::to_mutation(&entries[0]).unwrap();
    let fields = m.field_edited_at.unwrap();
    assert_eq!(fields["name"], mine);
    assert_eq!(fields["notes"], after);
    // The same conflict, the server's edits both later: the server's state stands.
    let d = device("dev-c", 0);
    d.put("q", json!({"name": "A"}));
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    d.patch("q", json!({"name": "mine"}));
    let later = t(NOW + 5_000, 0, "dev-b");
    d.push(NOW + 5_000, |e| {
        conflict(
            e,
            2,
            Some(json!({"name": "theirs"})),
            later.clone(),
            times(&[("name", &later)]),
        )
    });
    assert_eq!(d.doc("q").unwrap(), json!({"name": "theirs"}));
    assert!(d.unsent().is_empty());
    assert_eq!(d.times("q")["name"], later);
    d.no_conflicts();
}

#[test]
fn pulled_changes_settle_pending_edits_per_field() {
    let d = device("dev-a", 0);
    d.put("p", json!({"name": "A", "notes": "n"}));
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    d.clock.advance(std::time::Duration::from_millis(20));
    d.patch("p", json!({"name": "mine"}));
    // A pulled edit of `notes` (later) and of `name` (earlier than the pending edit).
    let early = t(NOW + 10, 0, "dev-b");
    let late = t(NOW + 40, 0, "dev-b");
    let tally = d.pull(
        NOW + 50,
        vec![change(
            "p",
            2,
            Some(json!({"name": "theirs", "notes": "theirs"})),
            late.clone(),
            times(&[("name", &early), ("notes", &late)]),
        )],
    );
    assert_eq!(tally.conflicts, 0);
    d.no_conflicts();
    assert_eq!(
        d.doc("p").unwrap(),
        json!({"name": "mine", "notes": "theirs"})
    );
    assert_eq!(d.unsent().len(), 1);
    assert_eq!(d.unsent()[0].base_version, Some(2));
    // A record new here takes the pulled times.
    d.pull(
        NOW + 60,
        vec![change(
            "q",
            1,
            Some(json!({"name": "Q"})),
            late.clone(),
            times(&[("name", &late)]),
        )],
    );
    assert_eq!(d.row("q").edited_at.unwrap(), late.encode());
}

#[test]
fn edit_against_delete_goes_by_the_delete_time() {
    // The local edit is later than the server's delete: the record comes back.
    let d = device("dev-a", 0);
    d.put("p", json!({"name": "A"}));
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    d.clock.advance(std::time::Duration::from_millis(50));
    d.patch("p", json!({"name": "kept"}));
    d.pull(
        NOW + 60,
        vec![change(
            "p",
            2,
            None,
            t(NOW + 10, 0, "dev-b"),
            FieldTimes::new(),
        )],
    );
    assert_eq!(d.doc("p").unwrap(), json!({"name": "kept"}));
    let entries = d.unsent();
    assert_eq!(entries[0].base_version, Some(2));
    assert_eq!(entries[0].doc.as_deref(), Some(r#"{"name":"kept"}"#));
    // The server's delete is later than the local edit: the record goes.
    let d = device("dev-c", 0);
    d.put("p", json!({"name": "A"}));
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    d.patch("p", json!({"name": "lost"}));
    d.pull(
        NOW + 60,
        vec![change(
            "p",
            2,
            None,
            t(NOW + 40, 0, "dev-b"),
            FieldTimes::new(),
        )],
    );
    assert!(d.engine.get("plans", "p").unwrap().is_none());
    assert!(d.unsent().is_empty());
    // A local delete later than the server's edit is sent; an earlier one gives way.
    let d = device("dev-d", 0);
    d.put("p", json!({"name": "A"}));
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    d.clock.advance(std::time::Duration::from_millis(50));
    d.delete("p");
    let edit = t(NOW + 10, 0, "dev-b");
    d.pull(
        NOW + 60,
        vec![change(
            "p",
            2,
            Some(json!({"name": "B"})),
            edit.clone(),
            times(&[("name", &edit)]),
        )],
    );
    assert!(d.engine.get("plans", "p").unwrap().is_none());
    let entries = d.unsent();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].op, outbox::OpKind::Delete);
    assert_eq!(entries[0].base_version, Some(2));
    let d = device("dev-e", 0);
    d.put("p", json!({"name": "A"}));
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    d.delete("p");
    let edit = t(NOW + 40, 0, "dev-b");
    d.pull(
        NOW + 60,
        vec![change(
            "p",
            2,
            Some(json!({"name": "B"})),
            edit.clone(),
            times(&[("name", &edit)]),
        )],
    );
    assert_eq!(d.doc("p").unwrap(), json!({"name": "B"}));
    assert!(d.unsent().is_empty());
}

#[test]
fn a_device_days_ahead_is_clamped_and_corrected() {
    let day = 86_400_000;
    let d = device("fast", 3 * day);
    d.put("p", json!({"name": "A"}));
    let stamped: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    assert_eq!(stamped.ms, NOW + 3 * day);
    // The server took it at its clock + the bound; the local copy is cut the same way.
    d.push(NOW, |e| MutationResult::applied(&e.op_id, 1));
    let kept: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    assert_eq!(kept.ms, NOW + MAX_CLOCK_SKEW_MS);
    assert_eq!(d.times("p")["name"].ms, NOW + MAX_CLOCK_SKEW_MS);
    // And from now on, its edits are stamped near the server's time.
    d.clock.advance(std::time::Duration::from_millis(10));
    d.patch("p", json!({"name": "B"}));
    let next: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    assert!(next.ms <= NOW + MAX_CLOCK_SKEW_MS, "{next}");
    assert!(next > kept);
    // An honest device's edit two minutes later wins against it.
    let honest = t(NOW + 120_000, 0, "honest");
    d.pull(
        NOW + 120_000,
        vec![change(
            "p",
            2,
            Some(json!({"name": "H"})),
            honest.clone(),
            times(&[("name", &honest)]),
        )],
    );
    assert_eq!(d.doc("p").unwrap(), json!({"name": "H"}));
    assert!(d.unsent().is_empty());
}

#[test]
fn field_times_are_stored_and_sent_only_where_they_differ_from_the_edit_time() {
    let d = device("dev-a", 0);
    d.put("p", json!({"name": "A", "notes": "n"}));
    // A fresh put: no field times in the record or its outbox entry; each field reads as editedAt.
    assert_eq!(d.row("p").field_times, None);
    assert_eq!(d.unsent()[0].field_times, None);
    let t1: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    assert_eq!(d.times("p"), times(&[("name", &t1), ("notes", &t1)]));
    let m = push::to_mutation(&d.unsent()[0]).unwrap();
    assert_eq!(m.edited_at.as_ref(), Some(&t1));
    assert!(m.field_edited_at.is_none());
    // An edit of one field: only the field it left keeps a time of its own; a removed field's
    // time stays explicit (it is not in the document to read as editedAt).
    d.clock.advance(std::time::Duration::from_millis(50));
    d.put("p", json!({"name": "B"}));
    let t2: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    let stored = parse_times(d.row("p").field_times.as_deref());
    assert_eq!(stored, times(&[("notes", &t2)]));
    assert_eq!(d.times("p"), times(&[("name", &t2), ("notes", &t2)]));
    d.clock.advance(std::time::Duration::from_millis(50));
    d.patch("p", json!({"notes": "back"}));
    let t3: Hlc = d.row("p").edited_at.unwrap().parse().unwrap();
    assert_eq!(
        parse_times(d.row("p").field_times.as_deref()),
        times(&[("name", &t2)])
    );
    let entries = d.unsent();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].field_times, d.row("p").field_times);
    let m = push::to_mutation(&entries[0]).unwrap();
    assert_eq!(m.edited_at.as_ref(), Some(&t3));
    assert_eq!(m.field_edited_at.unwrap(), times(&[("name", &t2)]));
}
