//! References and unique constraints in the local store: write checks, delete rules (local and
//! pulled), outbox order and the indexes every rule uses.

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::engine::{Engine, WriteOp};
use crate::error::Error;
use crate::outbox::OpKind;
use crate::query::Query;
use crate::sync::reconcile::{self, ServerState};
use tandem_protocol::ValidationReason;

/// The reference collections of `schemas/test.json`, with a child collection under projects.
const SCHEMA: &str = r#"{"version": 1, "collections": {
  "day_types": {"fields": {"name": {"type": "string", "required": true}}},
  "schedule_days": {"fields": {"title": {"type": "string"},
     "dayTypeId": {"type": "string", "ref": {"collection": "day_types", "onDelete": "setNull"}}}},
  "projects": {"fields": {"name": {"type": "string", "required": true}}},
  "folders": {"parent": {"collection": "projects", "field": "projectId"},
              "fields": {"projectId": {"type": "string", "required": true}}},
  "project_day_types": {"fields": {
     "projectId": {"type": "string", "required": true, "ref": {"collection": "projects", "onDelete": "cascade"}},
     "dayTypeId": {"type": "string", "required": true, "ref": {"collection": "day_types", "onDelete": "cascade"}}}},
  "files": {"fields": {
     "projectId": {"type": "string", "required": true, "ref": {"collection": "projects", "onDelete": "restrict"}},
     "folderId": {"type": "string", "ref": {"collection": "folders", "onDelete": "cascade"}},
     "path": {"type": "string", "required": true}, "size": {"type": "integer"}},
   "unique": [["projectId", "path"]]}}}"#;

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
    fn try_put(&self, collection: &str, id: &str, doc: Value) -> Result<(), Error> {
        self.engine
            .write(vec![WriteOp::Put {
                collection: collection.into(),
                id: Some(id.into()),
                doc,
                space_id: None,
            }])
            .map(drop)
    }

    fn put(&self, collection: &str, id: &str, doc: Value) {
        self.try_put(collection, id, doc).unwrap();
    }

    fn try_delete(&self, collection: &str, id: &str) -> Result<(), Error> {
        self.engine
            .write(vec![WriteOp::Delete {
                collection: collection.into(),
                id: id.into(),
            }])
            .map(drop)
    }

    fn doc(&self, collection: &str, id: &str) -> Option<Value> {
        self.engine
            .get(collection, id)
            .unwrap()
            .map(|r| serde_json::from_str(r.doc.as_deref().unwrap()).unwrap())
    }

    fn outbox(&self) -> Vec<(String, String, OpKind)> {
        self.engine
            .outbox()
            .unwrap()
            .into_iter()
            .map(|e| (e.collection, e.entity_id, e.op))
            .collect()
    }

    /// What a sync leaves: every record confirmed at version 1, no outbox entries.
    fn all_synced(&self) {
        self.engine
            .store()
            .write(|tx| {
                Ok(tx.execute_batch(
                    "UPDATE records SET server_version = 1, server_doc = doc, state = 'synced';
                     DELETE FROM outbox;",
                )?)
            })
            .unwrap();
    }

    fn base(&self) {
        self.put("day_types", "push", json!({"name": "Push"}));
        self.put("projects", "p", json!({"name": "P"}));
        self.put("folders", "f", json!({"projectId": "p"}));
    }
}

fn reason(e: Error) -> (String, Option<String>, ValidationReason) {
    match e {
        Error::Validation(v) => (v.collection, v.field, v.reason),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_write_naming_a_missing_record_is_refused_naming_the_field() {
    let f = fixture();
    let e = f
        .try_put("schedule_days", "d", json!({"dayTypeId": "nope"}))
        .unwrap_err();
    let (collection, field, why) = reason(e);
    assert_eq!(collection, "schedule_days");
    assert_eq!(field.as_deref(), Some("dayTypeId"));
    assert_eq!(
        why,
        ValidationReason::RefMissing {
            ref_collection: "day_types".into(),
            ref_id: "nope".into()
        }
    );
    assert_eq!(why.code(), "invalid_reference");
    // absent (or null) is fine for a field that is not required
    f.put(
        "schedule_days",
        "d",
        json!({"title": "x", "dayTypeId": null}),
    );
    f.base();
    f.put("schedule_days", "d", json!({"dayTypeId": "push"}));
    // a deleted record cannot be referred to
    f.put("day_types", "gone", json!({"name": "G"}));
    f.try_delete("day_types", "gone").unwrap();
    assert!(f
        .try_put("schedule_days", "e", json!({"dayTypeId": "gone"}))
        .is_err());
}

#[test]
fn delete_applies_cascade_set_null_and_restrict() {
    let f = fixture();
    f.base();
    f.put("day_types", "pull", json!({"name": "Pull"}));
    f.put(
        "schedule_days",
        "mon",
        json!({"title": "Mon", "dayTypeId": "push"}),
    );
    f.put(
        "schedule_days",
        "tue",
        json!({"title": "Tue", "dayTypeId": "pull"}),
    );
    f.put(
        "project_day_types",
        "j1",
        json!({"projectId": "p", "dayTypeId": "push"}),
    );
    f.put(
        "project_day_types",
        "j2",
        json!({"projectId": "p", "dayTypeId": "pull"}),
    );
    f.put("files", "a", json!({"projectId": "p", "path": "/a"}));
    f.all_synced();

    f.try_delete("day_types", "push").unwrap();
    assert_eq!(f.doc("schedule_days", "mon"), Some(json!({"title": "Mon"})));
    assert_eq!(
        f.doc("schedule_days", "tue"),
        Some(json!({"title": "Tue", "dayTypeId": "pull"}))
    );
    assert_eq!(f.doc("project_day_types", "j1"), None);
    assert!(f.doc("project_day_types", "j2").is_some());
    // each resulting change has its own entry, queued before the delete that caused it
    assert_eq!(
        f.outbox(),
        vec![
            ("schedule_days".into(), "mon".into(), OpKind::Upsert),
            ("project_day_types".into(), "j1".into(), OpKind::Delete),
            ("day_types".into(), "push".into(), OpKind::Delete),
        ]
    );

    // restrict: the file refuses its project's delete, naming itself; nothing changes
    let (collection, field, why) = reason(f.try_delete("projects", "p").unwrap_err());
    assert_eq!(
        (collection.as_str(), field.as_deref()),
        ("files", Some("projectId"))
    );
    assert_eq!(
        why,
        ValidationReason::Restricted {
            referrer_collection: "files".into(),
            referrer_id: "a".into()
        }
    );
    assert_eq!(why.code(), "restricted");
    assert!(f.doc("projects", "p").is_some());
    assert!(f.doc("project_day_types", "j2").is_some());
    assert_eq!(f.outbox().len(), 3);

    // without the file, the project goes with its folder and its join rows
    f.try_delete("files", "a").unwrap();
    f.try_delete("projects", "p").unwrap();
    assert_eq!(f.doc("project_day_types", "j2"), None);
    assert_eq!(f.doc("folders", "f"), None);
}

#[test]
fn rules_reach_referrers_of_what_a_parent_cascade_removes() {
    let f = fixture();
    f.base();
    // files/x refers to folder f (cascade) and project p (restrict): the project's delete takes
    // the folder, whose cascade takes the file, so the restrict no longer holds it back
    f.put(
        "files",
        "x",
        json!({"projectId": "p", "folderId": "f", "path": "/x"}),
    );
    f.try_delete("projects", "p").unwrap();
    assert_eq!(f.doc("files", "x"), None);
    assert_eq!(f.doc("folders", "f"), None);
}

#[test]
fn a_referenced_record_is_sent_before_its_referrer_even_when_the_referrer_was_queued_first() {
    let f = fixture();
    f.put("schedule_days", "d", json!({"title": "draft"}));
    f.put("day_types", "t", json!({"name": "T"}));
    // the referrer's pending entry is older than the day type's: it must not coalesce into it
    f.put(
        "schedule_days",
        "d",
        json!({"title": "draft", "dayTypeId": "t"}),
    );
    let order: Vec<_> = f.outbox().into_iter().map(|(c, i, _)| (c, i)).collect();
    let pos = |c: &str| order.iter().rposition(|(cc, _)| cc == c).unwrap();
    assert!(pos("day_types") < pos("schedule_days"), "{order:?}");
}

#[test]
fn a_pulled_delete_applies_the_rules_to_unsent_referrers() {
    let f = fixture();
    f.base();
    f.all_synced();
    // created here, not yet sent: the server's own rules cannot reach them
    f.put(
        "schedule_days",
        "new",
        json!({"title": "N", "dayTypeId": "push"}),
    );
    f.put(
        "project_day_types",
        "jn",
        json!({"projectId": "p", "dayTypeId": "push"}),
    );
    f.engine
        .store()
        .write(|tx| {
            let row = crate::records::load(tx, "day_types", "push")?.unwrap();
            reconcile::adopt_server(
                tx,
                f.engine.schema(),
                &row,
                &ServerState::untimed(2, None),
                1,
            )
        })
        .unwrap();
    assert_eq!(f.doc("day_types", "push"), None);
    assert_eq!(f.doc("schedule_days", "new"), Some(json!({"title": "N"})));
    assert_eq!(f.doc("project_day_types", "jn"), None);
    // the join row never reached the server: nothing is left to send for it
    assert!(f.outbox().iter().all(|(c, _, _)| c != "project_day_types"));
}

#[test]
fn unique_constraints_refuse_a_second_holder_naming_it() {
    let f = fixture();
    f.base();
    f.put("files", "a", json!({"projectId": "p", "path": "/a"}));
    let (collection, field, why) = reason(
        f.try_put("files", "b", json!({"projectId": "p", "path": "/a"}))
            .unwrap_err(),
    );
    assert_eq!((collection.as_str(), field), ("files", None));
    assert_eq!(
        why,
        ValidationReason::UniqueViolation {
            fields: vec!["projectId".into(), "path".into()],
            existing_id: "a".into()
        }
    );
    assert_eq!(why.code(), "unique_violation");
    // rewriting the holder itself is fine; another path is fine; a freed key can be taken
    f.put(
        "files",
        "a",
        json!({"projectId": "p", "path": "/a", "size": 3}),
    );
    f.put("files", "b", json!({"projectId": "p", "path": "/b"}));
    f.try_delete("files", "a").unwrap();
    f.put("files", "c", json!({"projectId": "p", "path": "/a"}));
    // a patch that moves onto a taken key is refused too
    let e = f
        .engine
        .write(vec![WriteOp::Patch {
            collection: "files".into(),
            id: "b".into(),
            patch: json!({"path": "/a"}),
        }])
        .unwrap_err();
    assert!(e.to_string().contains("already held by c"), "{e}");
}

#[test]
fn rule_lookups_use_indexes() {
    let f = fixture();
    for (collection, field) in [
        ("schedule_days", "dayTypeId"),
        ("project_day_types", "projectId"),
        ("files", "projectId"),
    ] {
        let plan = f
            .engine
            .store()
            .read(|conn| {
                let sql = format!(
                    "EXPLAIN QUERY PLAN SELECT id FROM records WHERE collection = '{collection}'
                     AND {} = ?1 AND deleted = 0",
                    crate::schema::field_expr(field)
                );
                let mut stmt = conn.prepare(&sql)?;
                let rows: Vec<String> = stmt
                    .query_map(["x"], |r| r.get(3))?
                    .collect::<Result<_, _>>()?;
                Ok(rows.join("\n"))
            })
            .unwrap();
        assert!(
            plan.contains("USING INDEX tdx_"),
            "{collection}.{field}: {plan}"
        );
    }
    let q = Query::default();
    assert!(f.engine.explain("files", &q).is_ok());
}

#[test]
fn rules_added_to_a_collection_with_data_are_checked_at_open_and_reported() {
    let dir = TempDir::new().unwrap();
    let before = r#"{"version": 1, "collections": {
      "projects": {"fields": {"name": {"type": "string"}}},
      "files": {"fields": {"projectId": {"type": "string"}, "path": {"type": "string"}}}}}"#;
    {
        let engine = Engine::open(dir.path(), before).unwrap();
        let put = |id: &str, doc: Value| {
            engine
                .write(vec![WriteOp::Put {
                    collection: "files".into(),
                    id: Some(id.into()),
                    doc,
                    space_id: None,
                }])
                .unwrap();
        };
        engine
            .write(vec![WriteOp::Put {
                collection: "projects".into(),
                id: Some("p".into()),
                doc: json!({"name": "P"}),
                space_id: None,
            }])
            .unwrap();
        put("a", json!({"projectId": "p", "path": "/a"}));
        put("b", json!({"projectId": "p", "path": "/a"}));
        put("c", json!({"projectId": "gone", "path": "/c"}));
        put("d", json!({"path": "/d"}));
    }
    let after = r#"{"version": 2, "collections": {
      "projects": {"fields": {"name": {"type": "string"}}},
      "files": {"fields": {"projectId": {"type": "string", "ref": {"collection": "projects", "onDelete": "cascade"}},
                           "path": {"type": "string"}},
                "unique": [["projectId", "path"]]}}}"#;
    // the schema is accepted: nothing stored is lost, what breaks the new rules is reported
    let engine = Engine::open(dir.path(), after).unwrap();
    let rules = crate::refs::all_rules(engine.schema());
    let found = engine
        .store()
        .read(|conn| crate::refs::violations(conn, &rules))
        .unwrap();
    assert_eq!(
        found,
        vec![
            crate::refs::RuleViolation {
                collection: "files".into(),
                id: "c".into(),
                kind: crate::refs::ViolationKind::DanglingReference {
                    field: "projectId".into(),
                    target_collection: "projects".into(),
                    target_id: "gone".into(),
                },
            },
            crate::refs::RuleViolation {
                collection: "files".into(),
                id: "b".into(),
                kind: crate::refs::ViolationKind::DuplicateKey {
                    fields: vec!["projectId".into(), "path".into()],
                    other_id: "a".into(),
                },
            },
        ]
    );
    assert_eq!(engine.get("files", "b").unwrap().unwrap().id, "b");
    // new writes are checked
    let e = engine
        .write(vec![WriteOp::Put {
            collection: "files".into(),
            id: Some("e".into()),
            doc: json!({"projectId": "p", "path": "/a"}),
            space_id: None,
        }])
        .unwrap_err();
    assert!(e.to_string().contains("unique"), "{e}");
    // fixing the data empties the report
    engine
        .write(vec![
            WriteOp::Delete {
                collection: "files".into(),
                id: "c".into(),
            },
            WriteOp::Patch {
                collection: "files".into(),
                id: "b".into(),
                patch: json!({"path": "/b"}),
            },
        ])
        .unwrap();
    let found = engine
        .store()
        .read(|conn| crate::refs::violations(conn, &rules))
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
}
