//! Observed queries and change listeners.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::{
    ChangeListener, Filter, FilterOp, Query, QueryObserver, Record, RecordObserver, Tandem,
    TandemError,
};
use tandem_testkit::fixtures::open;

const WAIT: Duration = Duration::from_secs(5);

struct Collect(Mutex<Sender<Vec<String>>>);

impl QueryObserver for Collect {
    fn on_results(&self, records: Vec<Record>) {
        let _ = self
            .0
            .lock()
            .unwrap()
            .send(records.into_iter().map(|r| r.id).collect());
    }
}

impl ChangeListener for Collect {
    fn on_change(&self, collections: Vec<String>) {
        let _ = self.0.lock().unwrap().send(collections);
    }
}

fn collector() -> (Arc<Collect>, Receiver<Vec<String>>) {
    let (tx, rx) = channel();
    (Arc::new(Collect(Mutex::new(tx))), rx)
}

fn put(t: &Tandem, collection: &str, id: &str, json: &str) {
    t.put(collection.into(), Some(id.into()), json.into())
        .unwrap();
}

fn days_of(plan: &str) -> Query {
    Query {
        filters: vec![Filter {
            field: "planId".into(),
            op: FilterOp::Eq,
            value_json: format!("\"{plan}\""),
        }],
        ..Query::default()
    }
}

#[test]
fn an_observer_gets_results_at_once_and_after_every_commit() {
    let (_dir, t) = open();
    put(&t, "plans", "p", r#"{"name": "x"}"#);
    put(&t, "plan_days", "d1", r#"{"planId": "p", "dayIndex": 0}"#);
    let (observer, results) = collector();
    let subscription = t
        .observe("plan_days".into(), days_of("p"), observer)
        .unwrap();
    assert_eq!(results.recv_timeout(WAIT).unwrap(), ["d1"]);

    put(&t, "plan_days", "d2", r#"{"planId": "p", "dayIndex": 1}"#);
    assert_eq!(results.recv_timeout(WAIT).unwrap(), ["d1", "d2"]);
    t.delete("plans".into(), "p".into()).unwrap();
    assert_eq!(
        results.recv_timeout(WAIT).unwrap(),
        Vec::<String>::new(),
        "cascaded deletes notify too"
    );

    // Commits to other collections do not re-run the query.
    put(&t, "plans", "q", r#"{"name": "y"}"#);
    assert!(results.recv_timeout(Duration::from_millis(200)).is_err());

    subscription.cancel();
    put(&t, "plans", "p2", r#"{"name": "z"}"#);
    put(&t, "plan_days", "d3", r#"{"planId": "p2", "dayIndex": 0}"#);
    assert!(
        results.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing after cancel"
    );
}

#[test]
fn dropping_the_subscription_cancels_it() {
    let (_dir, t) = open();
    let (observer, results) = collector();
    let subscription = t
        .observe("plans".into(), Query::default(), observer)
        .unwrap();
    assert_eq!(results.recv_timeout(WAIT).unwrap(), Vec::<String>::new());
    drop(subscription);
    put(&t, "plans", "p", r#"{"name": "x"}"#);
    assert!(results.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn a_change_listener_hears_each_commit_with_its_collections() {
    let (_dir, t) = open();
    let (listener, changes) = collector();
    let _subscription = t.add_change_listener(listener).unwrap();
    put(&t, "plans", "p", r#"{"name": "x"}"#);
    assert_eq!(changes.recv_timeout(WAIT).unwrap(), ["plans"]);
    put(&t, "plan_days", "d", r#"{"planId": "p", "dayIndex": 0}"#);
    assert_eq!(changes.recv_timeout(WAIT).unwrap(), ["plan_days"]);
    t.delete("plans".into(), "p".into()).unwrap();
    assert_eq!(changes.recv_timeout(WAIT).unwrap(), ["plan_days", "plans"]);
    // A failed write commits nothing and tells no one.
    assert!(t.put("plans".into(), None, "{}".into()).is_err());
    assert!(changes.recv_timeout(Duration::from_millis(200)).is_err());
}

/// An observer that writes to the engine from inside its callback must not deadlock.
struct Reentrant {
    tandem: Mutex<Option<Arc<Tandem>>>,
    seen: Mutex<Sender<usize>>,
}

impl QueryObserver for Reentrant {
    fn on_results(&self, records: Vec<Record>) {
        let count = records.len();
        if count < 3 {
            if let Some(t) = self.tandem.lock().unwrap().as_ref() {
                t.put("plans".into(), None, r#"{"name": "from observer"}"#.into())
                    .unwrap();
            }
        }
        let _ = self.seen.lock().unwrap().send(count);
    }
}

#[test]
fn observers_may_write_from_their_callback() {
    let (_dir, t) = open();
    let (tx, seen) = channel();
    let observer = Arc::new(Reentrant {
        tandem: Mutex::new(Some(Arc::clone(&t))),
        seen: Mutex::new(tx),
    });
    let _subscription = t
        .observe("plans".into(), Query::default(), observer.clone())
        .unwrap();
    let mut last = 0;
    while last < 3 {
        last = seen
            .recv_timeout(WAIT)
            .expect("the observer kept being called");
    }
    observer.tandem.lock().unwrap().take(); // break the cycle
}

/// A panicking observer (a foreign exception) does not stop deliveries to the others.
struct Panics;

impl QueryObserver for Panics {
    fn on_results(&self, _records: Vec<Record>) {
        panic!("observer failed");
    }
}

#[test]
fn a_failing_observer_does_not_break_the_others() {
    let (_dir, t) = open();
    let _bad = t
        .observe("plans".into(), Query::default(), Arc::new(Panics))
        .unwrap();
    let (observer, results) = collector();
    let _good = t
        .observe("plans".into(), Query::default(), observer)
        .unwrap();
    assert_eq!(results.recv_timeout(WAIT).unwrap(), Vec::<String>::new());
    put(&t, "plans", "p", r#"{"name": "x"}"#);
    assert_eq!(results.recv_timeout(WAIT).unwrap(), ["p"]);
}

#[test]
fn shutdown_stops_observers() {
    let (_dir, t) = open();
    let (observer, results) = collector();
    let subscription = t
        .observe("plans".into(), Query::default(), observer)
        .unwrap();
    assert_eq!(results.recv_timeout(WAIT).unwrap(), Vec::<String>::new());
    t.shutdown();
    subscription.cancel(); // harmless after shutdown
    assert!(results.recv_timeout(Duration::from_millis(200)).is_err());
}

/// Sends each delivered record's document (`None` while it does not exist).
struct Follow(Mutex<Sender<Option<String>>>);

impl RecordObserver for Follow {
    fn on_record(&self, record: Option<Record>) {
        let _ = self.0.lock().unwrap().send(record.map(|r| r.document));
    }
}

#[test]
fn a_record_observer_follows_one_record_through_its_life() {
    let (_dir, t) = open();
    let (tx, seen) = channel();
    let follow = Arc::new(Follow(Mutex::new(tx)));
    let subscription = t
        .observe_record("plans".into(), "p".into(), follow)
        .unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), None, "not there yet");

    put(&t, "plans", "p", r#"{"name":"one"}"#);
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap().as_deref(),
        Some(r#"{"name":"one"}"#)
    );
    // Another record of the same collection changes nothing for this observer.
    put(&t, "plans", "q", r#"{"name":"other"}"#);
    assert!(seen.recv_timeout(Duration::from_millis(200)).is_err());
    t.patch("plans".into(), "p".into(), r#"{"notes":"n"}"#.into())
        .unwrap();
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap().as_deref(),
        Some(r#"{"name":"one","notes":"n"}"#)
    );
    t.delete("plans".into(), "p".into()).unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), None, "deleted");

    subscription.cancel();
    put(&t, "plans", "p", r#"{"name":"again"}"#);
    assert!(
        seen.recv_timeout(Duration::from_millis(200)).is_err(),
        "cancelled"
    );
}

#[test]
fn a_record_observer_refuses_bad_arguments_at_once() {
    let (_dir, t) = open();
    let (tx, _seen) = channel();
    let follow = Arc::new(Follow(Mutex::new(tx)));
    assert!(matches!(
        t.observe_record("nothing".into(), "p".into(), follow.clone()),
        Err(TandemError::Validation { .. })
    ));
    assert!(matches!(
        t.observe_record("plans".into(), "not an id!".into(), follow),
        Err(TandemError::InvalidArgument { .. })
    ));
}
