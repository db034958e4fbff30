//! Outbox and cascade rules, checked against the tables themselves. Sync (part 2) is simulated by
//! setting the server columns and entry states directly.

use serde_json::json;
use tempfile::TempDir;

use crate::engine::{Engine, WriteOp};
use crate::outbox::{EntryState, OpKind, OutboxEntry};

const SCHEMA: &str = r#"{"version": 1, "collections": {
  "plans": {"fields": {"name": {"type": "string", "required": true, "maxLength": 200},
                       "notes": {"type": "string"}, "archived": {"type": "boolean"}}},
  "plan_days": {"parent": {"collection": "plans", "field": "planId"},
                "fields": {"planId": {"type": "string", "required": true},
                           "dayIndex": {"type": "integer", "required": true},
                           "exerciseIds": {"type": "array"}},
                "indexes": [["planId", "dayIndex"]]},
  "sets": {"parent": {"collection": "plan_days", "field": "dayId"},
           "fields": {"dayId": {"type": "string", "required": true}, "reps": {"type": "integer"}}}}}"#;

struct Fixture {
    _dir: TempDir,
    engine: Engine,
}

fn fixture() -> Fixture {
    let dir = TempDir::new().unwrap();
    let engine = Engine::open(dir.path(), SCHEMA).unwrap();
    Fixture { _dir: dir, engine }
}

impl Fixture {
    fn put(&self, collection: &str, id: &str, doc: serde_json::Value) {
        self.engine
            .write(vec![WriteOp::Put {
                collection: collection.into(),
                id: Some(id.into()),
                doc,
                space_id: None,
            }])
            .unwrap();
    }

    fn delete(&self, collection: &str, id: &str) {
        self.engine
            .write(vec![WriteOp::Delete {
                collection: collection.into(),
                id: id.into(),
            }])
            .unwrap();
    }

    fn outbox(&self) -> Vec<OutboxEntry> {
        self.engine.outbox().unwrap()
    }

    fn sql(&self, sql: &str) {
        self.engine
            .store()
            .write(|tx| Ok(tx.execute_batch(sql)?))
            .unwrap();
    }

    /// What a successful sync leaves behind: the record confirmed at `version`, no outbox entry.
    fn mark_synced(&self, collection: &str, id: &str, version: i64) {
        self.sql(&format!(
            "UPDATE records SET server_version = {version}, server_doc = doc, state = 'synced'
               WHERE collection = '{collection}' AND id = '{id}';
             DELETE FROM outbox WHERE collection = '{collection}' AND entity_id = '{id}';"
        ));
    }

    fn set_entry_state(&self, seq: i64, state: &str) {
        self.sql(&format!(
            "UPDATE outbox SET state = '{state}' WHERE seq = {seq}"
        ));
    }

    fn record_count(&self) -> i64 {
        self.engine
            .store()
            .read(|c| Ok(c.query_row("SELECT count(*) FROM records", [], |r| r.get(0))?))
            .unwrap()
    }
}

fn summary(entries: &[OutboxEntry]) -> Vec<(String, OpKind, Option<i64>)> {
    entries
        .iter()
        .map(|e| (e.entity_id.clone(), e.op, e.base_version))
        .collect()
}

#[test]
fn upsert_then_upsert_keeps_one_entry_with_newest_doc_and_oldest_base() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "v1"}));
    f.mark_synced("plans", "p", 3);
    f.put("plans", "p", json!({"name": "v2"}));
    f.put("plans", "p", json!({"name": "v3", "notes": "n"}));
    let entries = f.outbox();
    assert_eq!(
        summary(&entries),
        vec![("p".into(), OpKind::Upsert, Some(3))]
    );
    assert_eq!(
        entries[0].doc.as_deref(),
        Some(r#"{"name":"v3","notes":"n"}"#)
    );
    assert_eq!(entries[0].base_doc.as_deref(), Some(r#"{"name":"v1"}"#));
}

#[test]
fn create_then_delete_of_a_never_synced_record_leaves_nothing() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "x"}));
    f.put("plans", "p", json!({"name": "y"}));
    f.delete("plans", "p");
    assert!(f.outbox().is_empty());
    assert_eq!(
        f.record_count(),
        0,
        "the record is forgotten, not tombstoned"
    );
    assert_eq!(f.engine.pending_count().unwrap(), 0);
}

#[test]
fn upsert_then_delete_becomes_a_delete_on_the_oldest_base() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "x"}));
    f.mark_synced("plans", "p", 5);
    f.put("plans", "p", json!({"name": "y"}));
    f.delete("plans", "p");
    let entries = f.outbox();
    assert_eq!(
        summary(&entries),
        vec![("p".into(), OpKind::Delete, Some(5))]
    );
    assert_eq!(entries[0].doc, None);
    assert!(f.engine.get("plans", "p").unwrap().is_none());
}

#[test]
fn delete_then_upsert_sends_the_delete_first() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "x"}));
    f.mark_synced("plans", "p", 2);
    f.delete("plans", "p");
    f.put("plans", "p", json!({"name": "b"}));
    f.put("plans", "p", json!({"name": "back"})); // folds into the new upsert
    let entries = f.outbox();
    // The upsert is rebased on the delete's version once the delete is answered.
    assert_eq!(
        summary(&entries),
        vec![
            ("p".into(), OpKind::Delete, Some(2)),
            ("p".into(), OpKind::Upsert, Some(2))
        ]
    );
    let record = f.engine.get("plans", "p").unwrap().unwrap();
    assert_eq!(record.doc.as_deref(), Some(r#"{"name":"back"}"#));
    assert_eq!(record.server_version, 2);
}

#[test]
fn an_entry_in_flight_is_never_changed() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "sent"}));
    let sent = f.outbox()[0].clone();
    f.set_entry_state(sent.seq, "inflight");
    f.put("plans", "p", json!({"name": "newer"}));
    let entries = f.outbox();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].doc, sent.doc);
    assert_eq!(entries[0].state, EntryState::Inflight);
    assert_eq!(entries[1].doc.as_deref(), Some(r#"{"name":"newer"}"#));
    // A delete after an in-flight create must be sent: the create may already have landed.
    f.delete("plans", "p");
    let entries = f.outbox();
    assert_eq!(summary(&entries)[1], ("p".into(), OpKind::Delete, None));
}

#[test]
fn a_rejected_entry_stays_and_a_new_edit_makes_a_fresh_op() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "bad"}));
    let rejected = f.outbox()[0].clone();
    f.set_entry_state(rejected.seq, "rejected");
    f.put("plans", "p", json!({"name": "good"}));
    let entries = f.outbox();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].state, EntryState::Rejected);
    assert_ne!(entries[1].op_id, rejected.op_id);
    assert_eq!(
        f.engine.pending_count().unwrap(),
        1,
        "dead letters are not pending"
    );
}

#[test]
fn entries_leave_in_commit_order() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "x"}));
    f.put("plan_days", "d", json!({"planId": "p", "dayIndex": 0}));
    f.put("plans", "p", json!({"name": "renamed"}));
    let ids: Vec<String> = f.outbox().into_iter().map(|e| e.entity_id).collect();
    assert_eq!(
        ids,
        ["p", "d"],
        "the parent's coalesced entry stays ahead of its child"
    );
    let seqs: Vec<i64> = f.outbox().into_iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_child_moved_to_a_parent_created_later_is_not_moved_ahead_of_it() {
    let f = fixture();
    f.put("plans", "p1", json!({"name": "one"}));
    f.put("plan_days", "d", json!({"planId": "p1", "dayIndex": 0}));
    f.mark_synced("plans", "p1", 1);
    f.mark_synced("plan_days", "d", 1);
    f.put("plan_days", "d", json!({"planId": "p1", "dayIndex": 1}));
    f.put("plans", "p2", json!({"name": "two"}));
    f.put("plan_days", "d", json!({"planId": "p2", "dayIndex": 1}));
    let ids: Vec<String> = f.outbox().into_iter().map(|e| e.entity_id).collect();
    assert_eq!(ids, ["d", "p2", "d"]);
    // Later edits coalesce into the newest entry again.
    f.put("plan_days", "d", json!({"planId": "p2", "dayIndex": 2}));
    assert_eq!(f.outbox().len(), 3);
}

#[test]
fn delete_sends_one_delete_and_hides_what_the_server_cascades() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "x"}));
    f.put("plan_days", "d1", json!({"planId": "p", "dayIndex": 0}));
    f.put("plan_days", "d2", json!({"planId": "p", "dayIndex": 1}));
    f.put("sets", "s1", json!({"dayId": "d1", "reps": 5}));
    f.put("plans", "other", json!({"name": "keep"}));
    f.put("plan_days", "d3", json!({"planId": "other", "dayIndex": 0}));
    for (c, id) in [
        ("plans", "p"),
        ("plan_days", "d1"),
        ("plan_days", "d2"),
        ("sets", "s1"),
        ("plans", "other"),
        ("plan_days", "d3"),
    ] {
        f.mark_synced(c, id, 1);
    }
    f.delete("plans", "p");
    let deleted: Vec<(String, OpKind, Option<i64>)> = summary(&f.outbox());
    // The server deletes what it has below p itself, by its own current parent links.
    assert_eq!(deleted, vec![("p".into(), OpKind::Delete, Some(1))]);
    assert!(f.engine.get("plan_days", "d1").unwrap().is_none());
    assert!(f.engine.get("sets", "s1").unwrap().is_none());
    assert!(
        f.engine.get("plan_days", "d3").unwrap().is_some(),
        "other plans' days are untouched"
    );
}

#[test]
fn cascade_of_never_synced_records_leaves_nothing() {
    let f = fixture();
    f.put("plans", "p", json!({"name": "x"}));
    f.put("plan_days", "d", json!({"planId": "p", "dayIndex": 0}));
    f.put("sets", "s", json!({"dayId": "d"}));
    f.delete("plans", "p");
    assert!(f.outbox().is_empty());
    assert_eq!(f.record_count(), 0);
}

#[test]
fn a_failed_batch_changes_nothing() {
    let f = fixture();
    f.put("plans", "keep", json!({"name": "x"}));
    let before = f.outbox();
    let result = f.engine.write(vec![
        WriteOp::Put {
            collection: "plans".into(),
            id: Some("new".into()),
            doc: json!({"name": "a"}),
            space_id: None,
        },
        WriteOp::Delete {
            collection: "plans".into(),
            id: "keep".into(),
        },
        WriteOp::Put {
            collection: "plans".into(),
            id: Some("bad".into()),
            doc: json!({"nme": "typo"}),
            space_id: None,
        },
    ]);
    assert!(result.is_err());
    assert_eq!(f.outbox(), before);
    assert!(f.engine.get("plans", "new").unwrap().is_none());
    assert!(f.engine.get("plans", "keep").unwrap().is_some());
}

#[test]
fn indexed_queries_use_the_expression_index_and_cascades_use_the_parent_index() {
    use crate::query::{Filter, FilterOp, Query};
    let f = fixture();
    let by_plan = Query {
        filters: vec![Filter {
            field: "planId".into(),
            op: FilterOp::Eq,
            value: json!("p"),
        }],
        ..Query::default()
    };
    let plan = f.engine.explain("plan_days", &by_plan).unwrap();
    assert!(plan.contains("USING INDEX tdx_plan_days_"), "{plan}");
    let by_parent = Query {
        filters: vec![Filter {
            field: "dayId".into(),
            op: FilterOp::Eq,
            value: json!("d"),
        }],
        ..Query::default()
    };
    let plan = f.engine.explain("sets", &by_parent).unwrap();
    assert!(
        plan.contains("USING INDEX tdx_sets_"),
        "implicit parent index: {plan}"
    );
}

#[test]
fn reads_do_not_wait_for_a_running_write() {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    let f = fixture();
    f.put("plans", "p", json!({"name": "before"}));
    let (write_open, wait_for_write) = channel();
    let (read_done, wait_for_read) = channel();
    let f = &f;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            f.engine
                .store()
                .write(|tx| {
                    tx.execute(
                        "UPDATE records SET doc = '{\"name\":\"during\"}' WHERE id = 'p'",
                        [],
                    )?;
                    write_open.send(()).unwrap();
                    // Hold the write open until the reader is done; if reads waited for writes,
                    // this would time out instead.
                    wait_for_read
                        .recv_timeout(Duration::from_secs(10))
                        .expect("the read finished during the write");
                    Ok(())
                })
                .unwrap();
        });
        wait_for_write.recv().unwrap();
        let seen = f.engine.get("plans", "p").unwrap().unwrap();
        assert_eq!(
            seen.doc.as_deref(),
            Some(r#"{"name":"before"}"#),
            "readers see the last commit"
        );
        read_done.send(()).unwrap();
    });
    let after = f.engine.get("plans", "p").unwrap().unwrap();
    assert_eq!(after.doc.as_deref(), Some(r#"{"name":"during"}"#));
}

#[test]
fn a_burst_of_one_record_writes_writes_the_edit_clock_once() {
    // A stopped wall clock: the burst falls within the lease however slow the machine is.
    let dir = TempDir::new().unwrap();
    let wall = std::sync::Arc::new(tandem_protocol::ManualClock::at_ms(1_796_627_044_000));
    let engine = Engine::open(dir.path(), SCHEMA)
        .unwrap()
        .with_edit_clock(wall, "device-a");
    let f = Fixture { _dir: dir, engine };
    let clock = || {
        f.engine
            .store()
            .read(|c| crate::store::meta_get(c, "edit_clock"))
            .unwrap()
    };
    f.put("plans", "a", json!({"name": "A"}));
    let saved = clock().expect("the clock is saved with the first write");
    for i in 0..20 {
        f.put("plans", &format!("b{i}"), json!({"name": "B"}));
    }
    // Within the lease the first save reserved, no write saves it again.
    assert_eq!(clock().unwrap(), saved);
    let (ms, rest) = saved.split_once(':').unwrap();
    let ms: i64 = ms.parse().unwrap();
    assert_eq!(rest, "0:0");
    let last = f.engine.get("plans", "b19").unwrap().unwrap();
    assert!(last.edited_at_ms().unwrap() < ms, "{saved}");
}
