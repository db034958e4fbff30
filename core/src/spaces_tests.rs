//! Spaces in the engine without a server (docs/design/spaces.md §9): the write rules, the
//! removal of a space keeping unsent changes as dead letters, the per-stream sweep and the store
//! migration v7 → v8.

use std::collections::HashSet;

use serde_json::{json, Value};
use tandem_protocol::{Change, ValidationReason};
use tempfile::TempDir;

use crate::engine::{now_ms, Engine, WriteOp};
use crate::error::Error;
use crate::outbox::EntryState;
use crate::query::Query;
use crate::records::RecordState;
use crate::sync::pull::{self, space_stream};
use crate::sync::spaces::{self, Space, SpaceRole};
use crate::sync::{conflict::ConflictPolicy, resolve};

const SCHEMA: &str = r#"{"version": 1, "collections": {
  "notes":     {"fields": {"title": {"type": "string", "required": true}}},
  "projects":  {"scope": "space", "fields": {"name": {"type": "string", "required": true}}},
  "tasks":     {"parent": {"collection": "projects", "field": "projectId"},
                "fields": {"projectId": {"type": "string", "required": true},
                           "title": {"type": "string"},
                           "tagId": {"type": "string",
                                     "ref": {"collection": "tags", "onDelete": "setNull"}}}},
  "tags":      {"scope": "space", "fields": {"name": {"type": "string", "required": true}},
                "unique": [["name"]]},
  "catalog":   {"scope": "public", "fields": {"name": {"type": "string", "required": true}}}}}"#;

const S1: &str = "s1";
const S2: &str = "s2";
const VIEWED: &str = "s3";

struct Fixture {
    _dir: TempDir,
    engine: Engine,
}

fn fixture() -> Fixture {
    let dir = TempDir::new().unwrap();
    let engine = Engine::open(dir.path(), SCHEMA).unwrap();
    let f = Fixture { _dir: dir, engine };
    f.join(S1, SpaceRole::Owner);
    f.join(S2, SpaceRole::Editor);
    f.join(VIEWED, SpaceRole::Viewer);
    f
}

fn put(collection: &str, id: &str, doc: Value, space: Option<&str>) -> WriteOp {
    WriteOp::Put {
        collection: collection.into(),
        id: Some(id.into()),
        doc,
        space_id: space.map(str::to_string),
    }
}

fn delete(collection: &str, id: &str) -> WriteOp {
    WriteOp::Delete {
        collection: collection.into(),
        id: id.into(),
    }
}

fn change(entity: &str, id: &str, version: i64, doc: Value, space: Option<&str>) -> Change {
    Change {
        entity: entity.into(),
        entity_id: id.into(),
        version,
        deleted: false,
        doc: doc.as_object().cloned(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        group_id: None,
        edited_at: None,
        field_edited_at: None,
        space: space.map(str::to_string),
    }
}

impl Fixture {
    fn join(&self, id: &str, role: SpaceRole) {
        self.engine
            .store()
            .write(|tx| {
                spaces::save_space(
                    tx,
                    &Space {
                        id: id.into(),
                        name: format!("Space {id}"),
                        role,
                        member_count: 2,
                        created_at_ms: 1,
                    },
                )
            })
            .unwrap();
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<(), Error> {
        self.engine.write(ops).map(drop)
    }

    fn refused(&self, ops: Vec<WriteOp>) -> ValidationReason {
        match self.write(ops) {
            Err(Error::Validation(v)) => v.reason,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn pull(&self, changes: Vec<Change>) {
        let schema = self.engine.schema().clone();
        self.engine
            .store()
            .write(|tx| {
                pull::apply_page(
                    tx,
                    &schema,
                    &changes,
                    "c1",
                    ConflictPolicy::Manual,
                    now_ms(),
                    None,
                )
            })
            .unwrap();
    }

    fn space_of(&self, collection: &str, id: &str) -> Option<String> {
        self.engine.get(collection, id).unwrap().unwrap().space_id
    }

    fn drop_space(&self, space: &str) -> spaces::Dropped {
        let schema = self.engine.schema().clone();
        self.engine
            .store()
            .write(|tx| spaces::drop_space(tx, &schema, space, now_ms()))
            .unwrap()
    }

    fn sql(&self, sql: &str) {
        self.engine
            .store()
            .write(|tx| Ok(tx.execute_batch(sql)?))
            .unwrap();
    }

    /// What a successful push of everything leaves: records confirmed at `version`, no entries.
    fn mark_all_synced(&self, version: i64) {
        self.sql(&format!(
            "UPDATE records SET server_version = {version}, server_doc = doc, state = 'synced';
             DELETE FROM outbox;"
        ));
    }
}

#[test]
fn user_collections_take_no_space_and_public_ones_are_read_only() {
    let f = fixture();
    f.write(vec![put("notes", "n1", json!({"title": "mine"}), None)])
        .unwrap();
    assert_eq!(f.space_of("notes", "n1"), None);
    assert_eq!(f.engine.outbox().unwrap()[0].space_id, None);
    assert_eq!(
        f.refused(vec![put("notes", "n2", json!({"title": "x"}), Some(S1))]),
        ValidationReason::SpaceMismatch
    );
    assert_eq!(
        f.refused(vec![put("catalog", "c1", json!({"name": "x"}), None)]),
        ValidationReason::ReadOnly
    );
    // A pulled public record shows, and stays read-only locally: no put, patch or delete.
    f.pull(vec![change(
        "catalog",
        "c1",
        1,
        json!({"name": "Squat"}),
        None,
    )]);
    assert_eq!(f.space_of("catalog", "c1"), None);
    assert_eq!(
        f.refused(vec![WriteOp::Patch {
            collection: "catalog".into(),
            id: "c1".into(),
            patch: json!({"name": "y"}),
        }]),
        ValidationReason::ReadOnly
    );
    assert_eq!(
        f.refused(vec![delete("catalog", "c1")]),
        ValidationReason::ReadOnly
    );
    assert!(f.engine.outbox().unwrap().len() == 1, "nothing queued");
}

#[test]
fn space_writes_need_a_known_space_with_a_writing_role() {
    let f = fixture();
    assert_eq!(
        f.refused(vec![put("projects", "p", json!({"name": "P"}), None)]),
        ValidationReason::SpaceMismatch
    );
    assert_eq!(
        f.refused(vec![put(
            "projects",
            "p",
            json!({"name": "P"}),
            Some("nope")
        )]),
        ValidationReason::UnknownSpace
    );
    assert_eq!(
        f.refused(vec![put(
            "projects",
            "p",
            json!({"name": "P"}),
            Some(VIEWED)
        )]),
        ValidationReason::Forbidden
    );
    f.write(vec![put("projects", "p", json!({"name": "P"}), Some(S2))])
        .unwrap();
    assert_eq!(f.space_of("projects", "p").as_deref(), Some(S2));
    let entry = &f.engine.outbox().unwrap()[0];
    assert_eq!(entry.space_id.as_deref(), Some(S2));
    // A viewer's records (pulled) can be read but not changed or deleted.
    f.pull(vec![change(
        "projects",
        "v",
        1,
        json!({"name": "V"}),
        Some(VIEWED),
    )]);
    assert_eq!(
        f.refused(vec![WriteOp::Patch {
            collection: "projects".into(),
            id: "v".into(),
            patch: json!({"name": "W"}),
        }]),
        ValidationReason::Forbidden
    );
    assert_eq!(
        f.refused(vec![delete("projects", "v")]),
        ValidationReason::Forbidden
    );
    // Queries: every space's records, or one space's.
    let all = f.engine.query("projects", &Query::default()).unwrap();
    assert_eq!(all.len(), 2);
    let only = f
        .engine
        .query(
            "projects",
            &Query {
                space_id: Some(VIEWED.into()),
                ..Query::default()
            },
        )
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].id, "v");
}

#[test]
fn a_record_stays_in_its_space_and_children_inherit_their_parents() {
    let f = fixture();
    f.write(vec![put("projects", "p", json!({"name": "P"}), Some(S1))])
        .unwrap();
    // Rewriting it with another space is refused; without one, or with its own, it stays.
    assert_eq!(
        f.refused(vec![put("projects", "p", json!({"name": "Q"}), Some(S2))]),
        ValidationReason::SpaceMismatch
    );
    f.write(vec![put("projects", "p", json!({"name": "Q"}), None)])
        .unwrap();
    assert_eq!(f.space_of("projects", "p").as_deref(), Some(S1));
    // A child takes its parent's space; naming another one is refused.
    f.write(vec![put("tasks", "t", json!({"projectId": "p"}), None)])
        .unwrap();
    assert_eq!(f.space_of("tasks", "t").as_deref(), Some(S1));
    assert_eq!(
        f.refused(vec![put("tasks", "u", json!({"projectId": "p"}), Some(S2))]),
        ValidationReason::SpaceMismatch
    );
    // A patch keeps the space; a delete cascades within it.
    f.write(vec![WriteOp::Patch {
        collection: "tasks".into(),
        id: "t".into(),
        patch: json!({"title": "x"}),
    }])
    .unwrap();
    assert_eq!(f.space_of("tasks", "t").as_deref(), Some(S1));
    f.write(vec![delete("projects", "p")]).unwrap();
    assert!(f.engine.get("tasks", "t").unwrap().is_none());
}

#[test]
fn refs_and_unique_keys_hold_within_one_space() {
    let f = fixture();
    f.write(vec![
        put("projects", "p1", json!({"name": "P"}), Some(S1)),
        put("tags", "red1", json!({"name": "red"}), Some(S1)),
        // The same key in another space is another stream's: allowed.
        put("tags", "red2", json!({"name": "red"}), Some(S2)),
    ])
    .unwrap();
    assert!(matches!(
        f.refused(vec![put("tags", "red3", json!({"name": "red"}), Some(S1))]),
        ValidationReason::UniqueViolation { .. }
    ));
    f.write(vec![put(
        "tasks",
        "t1",
        json!({"projectId": "p1", "tagId": "red1"}),
        None,
    )])
    .unwrap();
    // A tag of another space is not there for a task of this one.
    assert!(matches!(
        f.refused(vec![put(
            "tasks",
            "t2",
            json!({"projectId": "p1", "tagId": "red2"}),
            None
        )]),
        ValidationReason::RefMissing { .. }
    ));
}

#[test]
fn a_batch_over_two_streams_is_one_group_per_stream() {
    let f = fixture();
    f.write(vec![
        put("notes", "n", json!({"title": "a"}), None),
        put("projects", "p", json!({"name": "P"}), Some(S1)),
        put("tasks", "t", json!({"projectId": "p"}), None),
        put("projects", "q", json!({"name": "Q"}), Some(S2)),
    ])
    .unwrap();
    let entries = f.engine.outbox().unwrap();
    let group = |id: &str| {
        entries
            .iter()
            .find(|e| e.entity_id == id)
            .unwrap()
            .group_id
            .clone()
            .unwrap()
    };
    let base = group("n");
    assert_eq!(group("p"), format!("{base}.2"));
    assert_eq!(group("t"), format!("{base}.2"));
    assert_eq!(group("q"), format!("{base}.3"));
}

#[test]
fn dropping_a_space_keeps_unsent_changes_as_forbidden_dead_letters() {
    let f = fixture();
    f.write(vec![
        put("projects", "p", json!({"name": "P"}), Some(S2)),
        put("projects", "q", json!({"name": "Q"}), Some(S2)),
        put("tasks", "t", json!({"projectId": "p"}), None),
        put("notes", "n", json!({"title": "mine"}), None),
    ])
    .unwrap();
    f.mark_all_synced(1);
    f.sql(&format!(
        "INSERT INTO stream_cursors (stream, cursor) VALUES ('{}', 'c3.1.0.x')",
        space_stream(S2)
    ));
    // An unsent edit of q, and an open conflict on t.
    f.write(vec![WriteOp::Patch {
        collection: "projects".into(),
        id: "q".into(),
        patch: json!({"name": "Q2"}),
    }])
    .unwrap();
    f.write(vec![WriteOp::Patch {
        collection: "tasks".into(),
        id: "t".into(),
        patch: json!({"title": "mine"}),
    }])
    .unwrap();
    f.pull(vec![change(
        "tasks",
        "t",
        2,
        json!({"projectId": "p", "title": "theirs"}),
        Some(S2),
    )]);
    assert_eq!(
        f.engine.get("tasks", "t").unwrap().unwrap().state,
        RecordState::Conflicted
    );

    let dropped = f.drop_space(S2);
    assert_eq!((dropped.removed, dropped.kept), (1, 2), "{dropped:?}");
    assert!(dropped.had_space);
    assert!(f.engine.get("projects", "p").unwrap().is_none());
    let q = f.engine.get("projects", "q").unwrap().unwrap();
    assert_eq!(q.state, RecordState::Rejected);
    assert_eq!(q.doc.as_deref(), Some(r#"{"name":"Q2"}"#));
    let t = f.engine.get("tasks", "t").unwrap().unwrap();
    assert_eq!(t.state, RecordState::Rejected);
    let letters: Vec<_> = f
        .engine
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|e| e.state == EntryState::Rejected)
        .collect();
    assert_eq!(letters.len(), 2);
    assert!(letters
        .iter()
        .all(|e| e.last_error.as_deref() == Some("forbidden")));
    assert_eq!(f.engine.store().read(resolve_conflicts).unwrap(), 0);
    // The user's own records are untouched; the space and its cursor are gone.
    assert!(f.engine.get("notes", "n").unwrap().is_some());
    assert!(f
        .engine
        .store()
        .read(spaces::spaces)
        .unwrap()
        .iter()
        .all(|s| s.id != S2));
    let streams = f.engine.store().read(pull::stream_cursors).unwrap();
    assert!(streams.iter().all(|s| s.stream != space_stream(S2)));
    // Writing to it again is refused; discarding a dead letter removes its record.
    assert_eq!(
        f.refused(vec![put("projects", "z", json!({"name": "Z"}), Some(S2))]),
        ValidationReason::UnknownSpace
    );
    let q_letter = letters.iter().find(|e| e.entity_id == "q").unwrap();
    resolve::discard_rejected(&f.engine, &q_letter.op_id).unwrap();
    assert!(f.engine.get("projects", "q").unwrap().is_none());
    crate::sync::revert::revert(&f.engine, "tasks", "t").unwrap();
    assert!(f.engine.get("tasks", "t").unwrap().is_none());
    assert!(f
        .engine
        .outbox()
        .unwrap()
        .iter()
        .all(|e| e.entity_id == "n"));
}

fn resolve_conflicts(conn: &rusqlite::Connection) -> crate::error::Result<u64> {
    crate::sync::conflict::count(conn)
}

#[test]
fn a_sweep_removes_only_its_own_streams_undelivered_records() {
    let f = fixture();
    f.pull(vec![
        change("notes", "n1", 1, json!({"title": "a"}), None),
        change("catalog", "c1", 1, json!({"name": "a"}), None),
        change("projects", "p1", 1, json!({"name": "a"}), Some(S1)),
        change("projects", "p2", 1, json!({"name": "b"}), Some(S1)),
        change("projects", "q1", 1, json!({"name": "c"}), Some(S2)),
    ]);
    let schema = f.engine.schema().clone();
    let stream = space_stream(S1);
    let candidates = f
        .engine
        .store()
        .read(|c| pull::stream_records(c, &schema, &stream))
        .unwrap();
    assert_eq!(candidates.len(), 2);
    // The re-pull of S1 delivered p1 only.
    let seen: HashSet<(String, String)> = [("projects".to_string(), "p1".to_string())].into();
    f.engine
        .store()
        .write(|tx| pull::sweep_stream(tx, &schema, &stream, &candidates, &seen, now_ms()))
        .unwrap();
    assert!(f.engine.get("projects", "p1").unwrap().is_some());
    assert!(f.engine.get("projects", "p2").unwrap().is_none());
    assert!(f.engine.get("projects", "q1").unwrap().is_some());
    assert!(f.engine.get("notes", "n1").unwrap().is_some());
    assert!(f.engine.get("catalog", "c1").unwrap().is_some());
    // The public stream's candidates are the public collections' records only.
    let public = f
        .engine
        .store()
        .read(|c| pull::stream_records(c, &schema, pull::PUBLIC_STREAM))
        .unwrap();
    assert_eq!(public, vec![("catalog".to_string(), "c1".to_string())]);
    let user = f
        .engine
        .store()
        .read(|c| pull::stream_records(c, &schema, pull::USER_STREAM))
        .unwrap();
    assert_eq!(user, vec![("notes".to_string(), "n1".to_string())]);
}

#[test]
fn a_pulled_id_held_in_another_space_is_skipped() {
    let f = fixture();
    f.pull(vec![change(
        "projects",
        "p",
        1,
        json!({"name": "a"}),
        Some(S1),
    )]);
    f.pull(vec![change(
        "projects",
        "p",
        2,
        json!({"name": "b"}),
        Some(S2),
    )]);
    let row = f.engine.get("projects", "p").unwrap().unwrap();
    assert_eq!(row.space_id.as_deref(), Some(S1));
    assert_eq!(row.doc.as_deref(), Some(r#"{"name":"a"}"#));
}

#[test]
fn migration_v8_keeps_the_user_streams_cursor_and_owed_repull() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        crate::store::migrate_to(&tx, 7).unwrap();
        tx.execute_batch(
            "INSERT INTO meta (key, value) VALUES ('sync_cursor', 'c2.41.0.abc');
             INSERT INTO meta (key, value) VALUES ('full_repull_owed', '1');",
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let store = crate::store::Store::open(&path, None).unwrap();
    let cursors = store.read(pull::stream_cursors).unwrap();
    assert_eq!(
        cursors,
        vec![pull::StreamCursor {
            stream: "user".into(),
            cursor: Some("c2.41.0.abc".into()),
            repull_owed: true,
        }]
    );
    assert_eq!(
        store.read(pull::cursor).unwrap().as_deref(),
        Some("c2.41.0.abc")
    );
    assert!(store.read(pull::repull_owed).unwrap());
    let left: Option<String> = store
        .read(|c| crate::store::meta_get(c, "sync_cursor"))
        .unwrap();
    assert_eq!(left, None);
    drop(store);

    // A fresh store starts with the user stream from the beginning, nothing owed.
    let fresh = crate::store::Store::open(&dir.path().join("new.db"), None).unwrap();
    let cursors = fresh.read(pull::stream_cursors).unwrap();
    assert_eq!(cursors.len(), 1);
    assert_eq!(cursors[0].cursor, None);
    assert!(!cursors[0].repull_owed);
}
