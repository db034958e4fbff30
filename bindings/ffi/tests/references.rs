//! References and unique constraints end to end: two or three devices of one account against
//! the real `tandem-server` binary, on the reference collections of `schemas/test.json`
//! (`day_types` ← `schedule_days` by setNull, `project_day_types` joining `projects` and
//! `day_types` by cascade, `files` unique per (projectId, path) and held by `projects` by restrict).

use serde_json::{json, Value};
use tandem::{ConflictReason, Query, Resolution, TandemError, ValidationReason};
use tandem_testkit::server::TestServer;

mod common;

use common::{devices, Device};

impl Device {
    fn ids(&self, collection: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .t
            .query(collection.into(), Query::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    }

    /// No live record refers to a record that does not exist here.
    fn assert_no_dangling_link(&self) {
        for (collection, field, target) in [
            ("schedule_days", "dayTypeId", "day_types"),
            ("project_day_types", "projectId", "projects"),
            ("project_day_types", "dayTypeId", "day_types"),
            ("files", "projectId", "projects"),
        ] {
            for r in self.t.query(collection.into(), Query::default()).unwrap() {
                let doc: Value = serde_json::from_str(&r.document).unwrap();
                if let Some(id) = doc[field].as_str() {
                    assert!(
                        self.doc(target, id).is_some(),
                        "{collection}/{} names missing {target}/{id}",
                        r.id
                    );
                }
            }
        }
    }
}

#[test]
fn delete_rules_reach_every_device() {
    let server = TestServer::start();
    let d = devices(&server, 2);
    let (a, b) = (&d[0], &d[1]);
    a.put("day_types", "push", json!({"name": "Push"}));
    a.put("projects", "p", json!({"name": "P"}));
    a.put(
        "schedule_days",
        "mon",
        json!({"title": "Mon", "dayTypeId": "push"}),
    );
    a.put(
        "project_day_types",
        "j",
        json!({"projectId": "p", "dayTypeId": "push"}),
    );
    a.put("files", "f", json!({"projectId": "p", "path": "/a"}));
    a.sync();
    b.sync();
    assert_eq!(b.doc("schedule_days", "mon").unwrap()["dayTypeId"], "push");

    // restrict refuses locally with a typed error naming the referrer
    match b.t.delete("projects".into(), "p".into()) {
        Err(TandemError::Validation {
            collection,
            field,
            reason,
            detail,
            ..
        }) => {
            assert_eq!(reason, ValidationReason::Restricted);
            assert_eq!(
                (collection.as_str(), field.as_deref()),
                ("files", Some("projectId"))
            );
            assert!(detail.contains("files/f"), "{detail}");
        }
        other => panic!("expected a restricted delete, got {other:?}"),
    }

    b.delete("day_types", "push");
    assert_eq!(b.doc("schedule_days", "mon"), Some(json!({"title": "Mon"})));
    assert_eq!(b.doc("project_day_types", "j"), None);
    b.sync();
    a.sync();
    for d in [a, b] {
        assert_eq!(d.doc("day_types", "push"), None);
        assert_eq!(d.doc("schedule_days", "mon"), Some(json!({"title": "Mon"})));
        assert_eq!(d.doc("project_day_types", "j"), None);
        assert_eq!(d.t.pending_count().unwrap(), 0);
        assert!(d.t.conflicts().unwrap().is_empty());
        assert!(d.t.rejected().unwrap().is_empty());
        d.assert_no_dangling_link();
    }
}

#[test]
fn a_referrer_created_while_its_target_is_deleted_ends_visibly() {
    let server = TestServer::start();
    let d = devices(&server, 3);
    let (a, b, c) = (&d[0], &d[1], &d[2]);
    a.put("day_types", "dt", json!({"name": "Push"}));
    a.put("projects", "p", json!({"name": "P"}));
    a.sync();
    b.sync();
    c.sync();

    // A deletes the day type and syncs first; B, offline, files days under it.
    a.delete("day_types", "dt");
    b.put(
        "schedule_days",
        "s",
        json!({"title": "S", "dayTypeId": "dt"}),
    );
    b.put(
        "project_day_types",
        "j",
        json!({"projectId": "p", "dayTypeId": "dt"}),
    );
    a.sync();
    b.sync();
    // B's links were refused with their reason, and the pulled delete applied the rules to them:
    // the day keeps its title without the link, the join row is gone
    let rejected = b.t.rejected().unwrap();
    let mut reasons: Vec<(String, ValidationReason, String)> = rejected
        .iter()
        .map(|r| (r.id.clone(), r.reason, r.reason_code.clone()))
        .collect();
    reasons.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        reasons,
        vec![
            (
                "j".into(),
                ValidationReason::InvalidReference,
                "invalid_reference".into()
            ),
            (
                "s".into(),
                ValidationReason::InvalidReference,
                "invalid_reference".into()
            ),
        ]
    );
    assert_eq!(b.doc("schedule_days", "s"), Some(json!({"title": "S"})));
    assert_eq!(b.doc("project_day_types", "j"), None);
    b.assert_no_dangling_link();

    // The other order: B's file lands first, then C's offline delete of its project is refused
    // by the server (`restricted`), and C gets the project back by discarding the refused delete.
    b.put("files", "f", json!({"projectId": "p", "path": "/x"}));
    c.delete("projects", "p");
    b.sync();
    c.sync();
    let refused = c.t.rejected().unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].reason, ValidationReason::Restricted);
    assert_eq!(refused[0].reason_code, "restricted");
    c.t.discard_rejected(refused[0].op_id.clone()).unwrap();
    c.sync();
    assert_eq!(c.doc("projects", "p"), Some(json!({"name": "P"})));
    assert_eq!(c.doc("files", "f").unwrap()["path"], "/x");
    for d in [a, b, c] {
        d.sync();
        d.assert_no_dangling_link();
    }
    assert_eq!(a.ids("files"), vec!["f".to_string()]);
}

/// A and B create the same key offline under ids `mine_a` and `mine_b`; A lands first, B meets
/// a `unique_violation` naming A's record.
fn meet_on_a_key(a: &Device, b: &Device, path: &str, mine_a: &str, mine_b: &str) {
    a.put(
        "files",
        mine_a,
        json!({"projectId": "p", "path": path, "size": 1}),
    );
    b.put(
        "files",
        mine_b,
        json!({"projectId": "p", "path": path, "size": 2}),
    );
    a.sync();
    b.sync();
    let conflicts = b.t.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let c = &conflicts[0];
    assert_eq!((c.collection.as_str(), c.id.as_str()), ("files", mine_b));
    assert_eq!(c.reason, ConflictReason::UniqueViolation);
    assert_eq!(c.existing_id.as_deref(), Some(mine_a));
    assert_eq!(c.fields, vec!["projectId".to_string(), "path".to_string()]);
    assert_eq!(c.server_document, None);
    assert_eq!(
        serde_json::from_str::<Value>(c.local_document.as_deref().unwrap()).unwrap()["size"],
        2
    );
}

#[test]
fn a_unique_violation_is_resolved_each_of_three_ways() {
    let server = TestServer::start();
    let d = devices(&server, 2);
    let (a, b) = (&d[0], &d[1]);
    a.put("projects", "p", json!({"name": "P"}));
    a.sync();
    b.sync();

    // Keep the existing one: mine is dropped.
    meet_on_a_key(a, b, "/one", "a1", "b1");
    b.t.resolve("files".into(), "b1".into(), Resolution::KeepServer)
        .unwrap();
    b.sync();
    a.sync();

    // Keep mine: the existing one is deleted, then mine is sent.
    meet_on_a_key(a, b, "/two", "a2", "b2");
    b.t.resolve("files".into(), "b2".into(), Resolution::KeepMine)
        .unwrap();
    assert_eq!(b.doc("files", "a2"), None);
    b.sync();
    a.sync();

    // Keep both: mine takes another key.
    meet_on_a_key(a, b, "/three", "a3", "b3");
    // a merged document holding a taken key is refused, naming the holder
    match b.t.resolve(
        "files".into(),
        "b3".into(),
        Resolution::Merged {
            json: json!({"projectId": "p", "path": "/three"}).to_string(),
        },
    ) {
        Err(TandemError::Validation { reason, detail, .. }) => {
            assert_eq!(reason, ValidationReason::UniqueViolation);
            assert!(detail.contains("a3"), "{detail}");
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }
    b.t.resolve(
        "files".into(),
        "b3".into(),
        Resolution::Merged {
            json: json!({"projectId": "p", "path": "/three (2)", "size": 2}).to_string(),
        },
    )
    .unwrap();
    b.sync();
    a.sync();

    for d in [a, b] {
        assert_eq!(d.ids("files"), vec!["a1", "a3", "b2", "b3"]);
        assert_eq!(d.doc("files", "b2").unwrap()["path"], "/two");
        assert_eq!(d.doc("files", "b3").unwrap()["path"], "/three (2)");
        assert!(d.t.conflicts().unwrap().is_empty());
        assert!(d.t.rejected().unwrap().is_empty());
        assert_eq!(d.t.pending_count().unwrap(), 0);
    }

    // Locally, a second holder of a key is refused with a typed error naming the holder.
    match b.t.put(
        "files".into(),
        Some("dup".into()),
        json!({"projectId": "p", "path": "/two"}).to_string(),
    ) {
        Err(TandemError::Validation {
            reason,
            reason_code,
            detail,
            ..
        }) => {
            assert_eq!(reason, ValidationReason::UniqueViolation);
            assert_eq!(reason_code, "unique_violation");
            assert!(detail.contains("b2"), "{detail}");
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }
}

#[test]
fn two_accounts_may_hold_the_same_key() {
    let server = TestServer::start();
    let alice = &devices(&server, 1)[0];
    let bob = &devices(&server, 1)[0];
    for d in [alice, bob] {
        d.put("projects", "p", json!({"name": "P"}));
        d.put("files", "f", json!({"projectId": "p", "path": "/same"}));
        d.sync();
        assert!(d.t.conflicts().unwrap().is_empty());
        assert_eq!(d.t.pending_count().unwrap(), 0);
    }
}
