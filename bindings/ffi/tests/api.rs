//! The public API end to end: writes, validation, queries, errors, lifecycle.

use serde_json::json;
use tandem::{
    Filter, FilterOp, OrderBy, Query, RecordState, Tandem, TandemError, ValidationReason, WriteOp,
};
use tandem_testkit::fixtures::{config, doc, open, TEST_SCHEMA as SCHEMA};
use tempfile::TempDir;

fn s(v: &str) -> String {
    v.to_string()
}

fn filter(field: &str, op: FilterOp, value: serde_json::Value) -> Filter {
    Filter {
        field: s(field),
        op,
        value_json: value.to_string(),
    }
}

fn by(filters: Vec<Filter>) -> Query {
    Query {
        filters,
        ..Query::default()
    }
}

#[test]
fn put_get_patch_delete() {
    let (_dir, t) = open();
    let created = t
        .put(s("plans"), None, s(r#"{"name": "Push", "notes": null}"#))
        .unwrap();
    let id = uuid::Uuid::parse_str(&created.id).expect("generated ids are UUIDs");
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(created.state, RecordState::Pending);
    assert_eq!(created.version, 0);
    assert_eq!(
        doc(&created),
        json!({"name": "Push"}),
        "null fields are dropped"
    );

    let got = t.get(s("plans"), created.id.clone()).unwrap().unwrap();
    assert_eq!(got, created);

    let patched = t
        .patch(
            s("plans"),
            created.id.clone(),
            s(r#"{"notes": "heavy", "meta": {"a": 1, "b": 2}}"#),
        )
        .unwrap();
    assert_eq!(
        doc(&patched),
        json!({"name": "Push", "notes": "heavy", "meta": {"a": 1, "b": 2}})
    );
    let patched = t
        .patch(
            s("plans"),
            created.id.clone(),
            s(r#"{"notes": null, "meta": {"a": null}}"#),
        )
        .unwrap();
    assert_eq!(
        doc(&patched),
        json!({"name": "Push", "meta": {"b": 2}}),
        "RFC 7386 removes nulls"
    );
    assert_eq!(patched.created_at, created.created_at);

    t.delete(s("plans"), created.id.clone()).unwrap();
    assert_eq!(t.get(s("plans"), created.id.clone()).unwrap(), None);
    assert!(matches!(
        t.delete(s("plans"), created.id.clone()),
        Err(TandemError::NotFound { .. })
    ));
    assert!(matches!(
        t.patch(s("plans"), created.id, s("{}")),
        Err(TandemError::NotFound { .. })
    ));
}

#[test]
fn put_with_an_id_replaces_the_whole_document() {
    let (_dir, t) = open();
    t.put(
        s("plans"),
        Some(s("p1")),
        s(r#"{"name": "a", "notes": "x"}"#),
    )
    .unwrap();
    let replaced = t
        .put(s("plans"), Some(s("p1")), s(r#"{"name": "b"}"#))
        .unwrap();
    assert_eq!(doc(&replaced), json!({"name": "b"}));
    assert_eq!(
        t.pending_count().unwrap(),
        1,
        "one record, one coalesced entry"
    );
}

fn validation(
    result: Result<tandem::Record, TandemError>,
) -> (String, Option<String>, String, String) {
    match result {
        Err(TandemError::Validation {
            collection,
            field,
            reason,
            reason_code,
            detail,
        }) => {
            assert_eq!(reason, ValidationReason::from_code(&reason_code));
            (collection, field, reason_code, detail)
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn validation_errors_name_the_place() {
    let (_dir, t) = open();
    let (c, f, reason, detail) = validation(t.put(s("plans"), None, s("{}")));
    assert_eq!(
        (c.as_str(), f.as_deref(), reason.as_str()),
        ("plans", Some("name"), "invalid_payload")
    );
    assert_eq!(detail, "plans.name: required");

    let (.., detail) = validation(t.put(s("plans"), None, s(r#"{"name": "x", "colour": 1}"#)));
    assert_eq!(detail, "plans.colour: field is not declared in the schema");
    let (.., detail) = validation(t.put(s("plans"), None, s(r#"{"name": true}"#)));
    assert_eq!(detail, "plans.name: must be of type string");
    let long = "x".repeat(201);
    let (.., detail) = validation(t.put(s("plans"), None, format!(r#"{{"name": "{long}"}}"#)));
    assert_eq!(detail, "plans.name: longer than 200 characters");

    let (c, f, reason, detail) = validation(t.put(
        s("plan_days"),
        None,
        s(r#"{"planId": "123", "dayIndex": 0}"#),
    ));
    assert_eq!(
        (c.as_str(), f.as_deref(), reason.as_str()),
        ("plan_days", Some("planId"), "invalid_parent")
    );
    assert_eq!(detail, "plan_days.planId: parent plans/123 does not exist");

    let (c, f, reason, _) = validation(t.put(s("nope"), None, s("{}")));
    assert_eq!(
        (c.as_str(), f, reason.as_str()),
        ("nope", None, "unknown_entity")
    );
    let big = "n".repeat(300 * 1024);
    let (.., reason, _) = validation(t.put(
        s("plans"),
        None,
        format!(r#"{{"name": "x", "notes": "{big}"}}"#),
    ));
    assert_eq!(reason, "too_large");
    let typed = t.put(s("plans"), None, s("{}"));
    assert!(matches!(
        typed,
        Err(TandemError::Validation {
            reason: ValidationReason::InvalidPayload,
            ..
        })
    ));
    assert_eq!(t.pending_count().unwrap(), 0, "nothing was written");
}

#[test]
fn bad_input_is_a_typed_error_that_never_quotes_the_document() {
    let (_dir, t) = open();
    let secret = "hunter2-secret";
    for json in [
        format!(r#"{{"name": "{secret}""#),
        format!(r#"["{secret}"]"#),
        format!(r#"{{"name": 1, "notes": "{secret}"}}"#),
    ] {
        let err = t.put(s("plans"), None, json).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
        assert!(!format!("{err:?}").contains(secret), "{err:?}");
    }
    assert!(matches!(
        t.put(
            s("plans"),
            Some(s("bad id/with slash")),
            s(r#"{"name": "x"}"#)
        ),
        Err(TandemError::InvalidArgument { .. })
    ));
    assert!(matches!(
        t.put(s("plans"), Some(s("")), s(r#"{"name": "x"}"#)),
        Err(TandemError::InvalidArgument { .. })
    ));
    assert!(matches!(
        t.put(s("plans"), None, s("not json")),
        Err(TandemError::InvalidArgument { .. })
    ));
    t.put(s("plans"), Some(s("p")), s(r#"{"name": "x"}"#))
        .unwrap();
    assert!(matches!(
        t.patch(s("plans"), s("p"), s("[1]")),
        Err(TandemError::InvalidArgument { .. })
    ));
    assert!(matches!(
        t.patch(s("plans"), s("p"), s(r#"{"name": null}"#)),
        Err(TandemError::Validation { .. })
    ));
    assert_eq!(
        doc(&t.get(s("plans"), s("p")).unwrap().unwrap()),
        json!({"name": "x"})
    );
}

#[test]
fn batch_write_is_all_or_nothing() {
    let (_dir, t) = open();
    let written = t
        .write(vec![
            WriteOp::Put {
                collection: s("plans"),
                id: Some(s("p")),
                json: s(r#"{"name": "x"}"#),
                space_id: None,
            },
            WriteOp::Put {
                collection: s("plan_days"),
                id: Some(s("d")),
                json: s(r#"{"planId": "p", "dayIndex": 0}"#),
                space_id: None,
            },
            WriteOp::Patch {
                collection: s("plans"),
                id: s("p"),
                patch_json: s(r#"{"notes": "n"}"#),
            },
        ])
        .unwrap();
    assert_eq!(written.len(), 3);
    assert_eq!(doc(&written[2]), json!({"name": "x", "notes": "n"}));

    let failed = t.write(vec![
        WriteOp::Put {
            collection: s("plans"),
            id: Some(s("q")),
            json: s(r#"{"name": "y"}"#),
            space_id: None,
        },
        WriteOp::Delete {
            collection: s("plans"),
            id: s("p"),
        },
        WriteOp::Delete {
            collection: s("plans"),
            id: s("missing"),
        },
    ]);
    assert!(matches!(failed, Err(TandemError::NotFound { .. })));
    assert!(t.get(s("plans"), s("q")).unwrap().is_none());
    assert!(t.get(s("plan_days"), s("d")).unwrap().is_some());
    assert_eq!(t.pending_count().unwrap(), 2);

    let bad_json = t.write(vec![
        WriteOp::Put {
            collection: s("plans"),
            id: Some(s("r")),
            json: s(r#"{"name": "z"}"#),
            space_id: None,
        },
        WriteOp::Put {
            collection: s("plans"),
            id: None,
            json: s("{"),
            space_id: None,
        },
    ]);
    assert!(matches!(bad_json, Err(TandemError::InvalidArgument { .. })));
    assert!(t.get(s("plans"), s("r")).unwrap().is_none());
}

fn seed_days(t: &Tandem) {
    t.put(
        s("plans"),
        Some(s("a")),
        s(r#"{"name": "A", "rating": 4.5, "archived": true}"#),
    )
    .unwrap();
    t.put(s("plans"), Some(s("b")), s(r#"{"name": "B", "rating": 3}"#))
        .unwrap();
    t.put(s("plans"), Some(s("c")), s(r#"{"name": "C"}"#))
        .unwrap();
    let ops = (0..6)
        .map(|i| WriteOp::Put {
            collection: s("plan_days"),
            id: Some(format!("d{i}")),
            json: json!({"planId": if i % 2 == 0 { "a" } else { "b" }, "dayIndex": i}).to_string(),
            space_id: None,
        })
        .collect();
    t.write(ops).unwrap();
}

fn ids(records: Vec<tandem::Record>) -> Vec<String> {
    records.into_iter().map(|r| r.id).collect()
}

#[test]
fn queries_filter_order_and_page() {
    let (_dir, t) = open();
    seed_days(&t);
    let days = |q: Query| ids(t.query(s("plan_days"), q).unwrap());
    assert_eq!(
        days(by(vec![filter("planId", FilterOp::Eq, json!("a"))])),
        ["d0", "d2", "d4"]
    );
    assert_eq!(
        days(by(vec![filter("planId", FilterOp::Ne, json!("a"))])),
        ["d1", "d3", "d5"]
    );
    assert_eq!(
        days(by(vec![filter("dayIndex", FilterOp::Lt, json!(2))])),
        ["d0", "d1"]
    );
    assert_eq!(
        days(by(vec![filter("dayIndex", FilterOp::Le, json!(2))])),
        ["d0", "d1", "d2"]
    );
    assert_eq!(
        days(by(vec![filter("dayIndex", FilterOp::Gt, json!(3))])),
        ["d4", "d5"]
    );
    assert_eq!(
        days(by(vec![
            filter("dayIndex", FilterOp::Ge, json!(3)),
            filter("planId", FilterOp::Eq, json!("b"))
        ])),
        ["d3", "d5"]
    );
    assert_eq!(
        days(by(vec![filter("dayIndex", FilterOp::In, json!([1, 4, 9]))])),
        ["d1", "d4"]
    );
    assert!(days(by(vec![filter("dayIndex", FilterOp::In, json!([]))])).is_empty());
    let ordered = Query {
        order_by: vec![OrderBy {
            field: s("dayIndex"),
            descending: true,
        }],
        limit: Some(2),
        offset: Some(1),
        ..Query::default()
    };
    assert_eq!(days(ordered.clone()), ["d4", "d3"]);
    assert_eq!(
        t.count(s("plan_days"), ordered).unwrap(),
        6,
        "count ignores paging"
    );
    assert_eq!(
        days(Query {
            offset: Some(5),
            ..Query::default()
        }),
        ["d5"]
    );

    let plans = |q: Query| ids(t.query(s("plans"), q).unwrap());
    assert_eq!(
        plans(by(vec![filter("archived", FilterOp::Eq, json!(true))])),
        ["a"]
    );
    assert_eq!(
        plans(by(vec![filter("archived", FilterOp::Ne, json!(true))])),
        ["b", "c"],
        "missing counts as not equal"
    );
    assert_eq!(
        plans(by(vec![filter("archived", FilterOp::Eq, json!(null))])),
        ["b", "c"]
    );
    assert_eq!(
        plans(by(vec![filter("rating", FilterOp::Gt, json!(3.5))])),
        ["a"]
    );
    assert_eq!(
        plans(by(vec![filter("rating", FilterOp::Ge, json!(3))])),
        ["a", "b"]
    );
    let by_rating = Query {
        order_by: vec![OrderBy {
            field: s("rating"),
            descending: false,
        }],
        ..Query::default()
    };
    assert_eq!(
        plans(by_rating),
        ["c", "b", "a"],
        "missing sorts first, like SQL NULL"
    );

    t.delete(s("plans"), s("a")).unwrap();
    assert_eq!(
        t.count(s("plan_days"), Query::default()).unwrap(),
        3,
        "the cascade removed a's days"
    );
    assert_eq!(plans(Query::default()), ["b", "c"]);
}

#[test]
fn bad_queries_are_invalid_arguments() {
    let (_dir, t) = open();
    let bad = [
        by(vec![filter("nope", FilterOp::Eq, json!(1))]),
        by(vec![filter("dayIndex", FilterOp::Eq, json!("3"))]),
        by(vec![filter("dayIndex", FilterOp::Eq, json!(1.5))]),
        by(vec![filter("exerciseIds", FilterOp::Eq, json!([]))]),
        by(vec![filter("dayIndex", FilterOp::In, json!(3))]),
        by(vec![filter("dayIndex", FilterOp::Lt, json!(null))]),
        by(vec![Filter {
            field: s("dayIndex"),
            op: FilterOp::Eq,
            value_json: s("{oops"),
        }]),
        Query {
            order_by: vec![OrderBy {
                field: s("nope"),
                descending: false,
            }],
            ..Query::default()
        },
    ];
    for query in bad {
        let result = t.query(s("plan_days"), query.clone());
        assert!(
            matches!(result, Err(TandemError::InvalidArgument { .. })),
            "{query:?} gave {result:?}"
        );
    }
    assert!(matches!(
        t.query(s("nope"), Query::default()),
        Err(TandemError::Validation { .. })
    ));
}

#[test]
fn opening_the_same_directory_twice_is_refused_until_shutdown() {
    let (dir, t) = open();
    t.put(s("plans"), Some(s("p")), s(r#"{"name": "kept"}"#))
        .unwrap();
    assert!(matches!(
        Tandem::open(config(&dir, SCHEMA)),
        Err(TandemError::AlreadyOpen { .. })
    ));
    t.shutdown();
    assert!(matches!(
        t.get(s("plans"), s("p")),
        Err(TandemError::Closed)
    ));
    assert!(matches!(
        t.put(s("plans"), None, s("{}")),
        Err(TandemError::Closed)
    ));
    let again = Tandem::open(config(&dir, SCHEMA)).unwrap();
    assert_eq!(
        doc(&again.get(s("plans"), s("p")).unwrap().unwrap()),
        json!({"name": "kept"})
    );
    assert_eq!(
        again.pending_count().unwrap(),
        1,
        "the outbox survives a restart"
    );
    drop(again);
    Tandem::open(config(&dir, SCHEMA)).expect("dropping the last reference closes too");
}

#[test]
fn a_bad_schema_is_refused_at_open_naming_the_place() {
    let dir = TempDir::new().unwrap();
    let bad = r#"{"version": 1, "collections": {"a": {"fields": {"x": {"type": "strin"}}}}}"#;
    match Tandem::open(config(&dir, bad)) {
        Err(TandemError::Schema { detail }) => {
            assert!(detail.contains("collections.a.fields.x.type"), "{detail}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn the_schema_may_grow_but_not_change_types() {
    let dir = TempDir::new().unwrap();
    let t = Tandem::open(config(&dir, SCHEMA)).unwrap();
    t.put(s("plans"), Some(s("p")), s(r#"{"name": "x"}"#))
        .unwrap();
    t.shutdown();

    let grown = SCHEMA
        .replace(r#""archived": {"type": "boolean"},"#, r#""archived": {"type": "boolean"}, "color": {"type": "string"},"#)
        .replace(r#""collections": {"#, r#""collections": {"tags": {"fields": {"name": {"type": "string", "required": true}}, "indexes": [["name"]]},"#);
    let t = Tandem::open(config(&dir, &grown)).unwrap();
    t.patch(s("plans"), s("p"), s(r#"{"color": "red"}"#))
        .unwrap();
    t.put(s("tags"), None, s(r#"{"name": "Squat"}"#)).unwrap();
    t.shutdown();

    let retyped = grown.replace(
        r#""color": {"type": "string"}"#,
        r#""color": {"type": "integer"}"#,
    );
    match Tandem::open(config(&dir, &retyped)) {
        Err(TandemError::Schema { detail }) => {
            assert!(
                detail.contains(
                    "collections.plans.fields.color.type: changed from string to integer"
                ),
                "{detail}"
            )
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let t = Tandem::open(config(&dir, &grown)).unwrap();
    assert_eq!(
        doc(&t.get(s("plans"), s("p")).unwrap().unwrap()),
        json!({"name": "x", "color": "red"})
    );
}

#[test]
fn a_store_from_a_newer_engine_is_refused_and_left_untouched() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("guest.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE future (x); INSERT INTO future VALUES (1); PRAGMA user_version = 99;",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match Tandem::open(config(&dir, SCHEMA)) {
        Err(TandemError::Schema { detail }) => {
            assert!(detail.contains("newer version of Tandem"), "{detail}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(
        !dir.path().join("guest.db-wal").exists(),
        "not even switched to WAL"
    );
}

#[test]
fn outbox_lists_entries_for_debugging() {
    let (_dir, t) = open();
    t.put(s("plans"), Some(s("p")), s(r#"{"name": "x"}"#))
        .unwrap();
    t.put(
        s("plan_days"),
        Some(s("d")),
        s(r#"{"planId": "p", "dayIndex": 1}"#),
    )
    .unwrap();
    let entries = t.outbox().unwrap();
    assert_eq!(
        entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["p", "d"]
    );
    assert_eq!(entries[0].kind, tandem::ChangeKind::Upsert);
    assert_eq!(entries[0].base_version, None);
    assert_eq!(entries[0].state, tandem::OutboxState::Pending);
    assert_eq!(
        entries[1].document.as_deref(),
        Some(r#"{"planId":"p","dayIndex":1}"#)
    );
}

#[test]
fn the_exported_sync_defaults_are_the_cores() {
    use tandem_core::defaults;
    let config = tandem::default_sync_config();
    assert_eq!(config.push_batch_size as usize, defaults::PUSH_BATCH_SIZE);
    assert_eq!(config.pull_page_size, defaults::PULL_PAGE_SIZE);
    assert_eq!(config.debounce_ms as u128, defaults::DEBOUNCE.as_millis());
    assert_eq!(
        config.periodic_interval_secs,
        defaults::PERIODIC_INTERVAL.as_secs()
    );
    assert_eq!(config.realtime, defaults::REALTIME);
    assert_eq!(config.enabled, defaults::SYNC_ENABLED);
    assert_eq!(config.conflict_policy, None);
    assert_eq!(
        config.request_timeout_ms as u128,
        defaults::REQUEST_TIMEOUT.as_millis()
    );
    // The core's own configuration starts from the same values.
    let options = tandem_core::SyncOptions::default();
    assert_eq!(options.push_batch_size, defaults::PUSH_BATCH_SIZE);
    assert_eq!(options.pull_page_size, defaults::PULL_PAGE_SIZE);
    assert_eq!(options.debounce, defaults::DEBOUNCE);
    assert_eq!(options.periodic_interval, defaults::PERIODIC_INTERVAL);
    let http = tandem_core::http::HttpConfig::new("https://example.com");
    assert_eq!(http.request_timeout, defaults::REQUEST_TIMEOUT);
    assert_eq!(http.connect_timeout, defaults::CONNECT_TIMEOUT);
}
