//! `Tandem::collection` and `get_many`: the reads with fewer crossings answer as `Tandem`'s do.

use std::sync::Arc;

use tandem::{OrderBy, Query, Tandem, TandemError, ValidationReason, WriteOp};
use tandem_testkit::fixtures::{config, open, TEST_SCHEMA as SCHEMA};
use tempfile::TempDir;

fn s(v: &str) -> String {
    v.to_string()
}

fn five_plans(t: &Tandem) {
    t.write(
        (0..5)
            .map(|i| WriteOp::Put {
                collection: s("plans"),
                id: Some(format!("p{i}")),
                json: format!(r#"{{"name": "Plan {i}"}}"#),
                space_id: None,
            })
            .collect(),
    )
    .unwrap();
}

#[test]
fn a_collection_handle_reads_what_tandem_reads() {
    let (_dir, t) = open();
    five_plans(&t);
    let plans = t.clone().collection(s("plans")).unwrap();
    assert_eq!(plans.name(), "plans");
    assert_eq!(
        plans.get(s("p1")).unwrap(),
        t.get(s("plans"), s("p1")).unwrap()
    );
    assert!(plans.get(s("p1")).unwrap().is_some());
    assert_eq!(plans.get(s("missing")).unwrap(), None);
    let first_two = Query {
        order_by: vec![OrderBy {
            field: s("name"),
            descending: true,
        }],
        limit: Some(2),
        ..Query::default()
    };
    let ids: Vec<String> = plans
        .query(first_two.clone())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["p4", "p3"]);
    assert_eq!(
        plans.query(first_two.clone()).unwrap(),
        t.query(s("plans"), first_two).unwrap()
    );
    assert_eq!(plans.count(Query::default()).unwrap(), 5);
    t.delete(s("plans"), s("p1")).unwrap();
    assert_eq!(plans.get(s("p1")).unwrap(), None);
    assert_eq!(plans.count(Query::default()).unwrap(), 4);
}

#[test]
fn get_many_answers_in_the_order_asked() {
    let (_dir, t) = open();
    five_plans(&t);
    let asked = vec![s("p3"), s("missing"), s("p0"), s("p3")];
    let many = t.get_many(s("plans"), asked.clone()).unwrap();
    let ids: Vec<Option<String>> = many
        .iter()
        .map(|r| r.as_ref().map(|r| r.id.clone()))
        .collect();
    assert_eq!(ids, [Some(s("p3")), None, Some(s("p0")), Some(s("p3"))]);
    let one_by_one: Vec<_> = asked
        .iter()
        .map(|id| t.get(s("plans"), id.clone()).unwrap())
        .collect();
    assert_eq!(many, one_by_one);
    let plans = t.clone().collection(s("plans")).unwrap();
    assert_eq!(plans.get_many(asked).unwrap(), many);
    assert_eq!(plans.get_many(vec![]).unwrap(), vec![]);
    match t.get_many(s("nope"), vec![s("a")]) {
        Err(TandemError::Validation { reason, .. }) => {
            assert_eq!(reason, ValidationReason::UnknownEntity)
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn an_unknown_collection_is_refused_up_front() {
    let (_dir, t) = open();
    match t.clone().collection(s("nope")) {
        Err(TandemError::Validation {
            collection, reason, ..
        }) => assert_eq!(
            (collection.as_str(), reason),
            ("nope", ValidationReason::UnknownEntity)
        ),
        Err(other) => panic!("expected a validation error, got {other:?}"),
        Ok(_) => panic!("an unknown collection gave a handle"),
    }
    t.shutdown();
    assert!(matches!(
        t.clone().collection(s("plans")),
        Err(TandemError::Closed)
    ));
}

#[test]
fn a_handle_does_not_keep_the_store_open() {
    let dir = TempDir::new().unwrap();
    let t = Tandem::open(config(&dir, SCHEMA)).unwrap();
    five_plans(&t);
    let plans = t.clone().collection(s("plans")).unwrap();
    t.shutdown();
    assert!(matches!(plans.get(s("p0")), Err(TandemError::Closed)));
    drop(t);
    assert!(matches!(
        plans.get_many(vec![s("p0")]),
        Err(TandemError::Closed)
    ));
    // The directory opens again while the old handle lives.
    let reopened: Arc<Tandem> = Tandem::open(config(&dir, SCHEMA)).unwrap();
    let again = reopened.clone().collection(s("plans")).unwrap();
    assert_eq!(again.get(s("p0")).unwrap().unwrap().id, "p0");
    assert!(matches!(
        plans.query(Query::default()),
        Err(TandemError::Closed)
    ));
}
