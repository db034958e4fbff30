//! Regressions the convergence kit's soaks found (docs/testing.md), each shrunk to the few steps
//! that diverge, against the real `tandem-server` binary.

use serde_json::{json, Value};
use tandem::{Query, Resolution, WriteOp};
use tandem_testkit::proxy::{Fault, Proxy};
use tandem_testkit::server::{email, TestServer};

mod common;

use common::{block, device, pair, Device};

/// Every live plan and day of `d` as (collection, id, document).
fn snapshot(d: &Device) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for collection in ["plans", "plan_days"] {
        for r in d.t.query(collection.into(), Query::default()).unwrap() {
            all.push((
                r.collection,
                r.id,
                serde_json::from_str(&r.document).unwrap(),
            ));
        }
    }
    all
}

/// A and B share plan `p` with day `d`; A deletes `p` and creates it again offline (the day
/// hides with the delete) while B edits `p`. Returns the server and both devices, B's edit sent.
fn deleted_and_created_again_against(b_edit: Value) -> (TestServer, Device, Device) {
    let server = TestServer::start();
    let (a, b) = pair(&server);
    a.put("plans", "p", json!({"name": "Plan", "notes": "n"}));
    a.put("plan_days", "d", json!({"planId": "p", "dayIndex": 0}));
    a.sync();
    b.sync();
    b.patch("plans", "p", b_edit);
    b.sync();
    a.delete("plans", "p");
    a.put("plans", "p", json!({"name": "Again", "notes": "n"}));
    assert_eq!(a.doc("plan_days", "d"), None, "hidden with the delete");
    (server, a, b)
}

/// Seed 5 (and, on a purging server, seed 303): the delete of a parent deleted and created again
/// offline met another device's edit, so it never landed: the server kept the parent's day, but
/// the deleting device kept it hidden (nothing showed it again when the parent's change was
/// rebased instead of deleted), for ever.
#[test]
fn a_parent_whose_delete_never_lands_shows_its_children_again() {
    // B's edit merges cleanly with A's: A's change goes again as an edit, at once.
    let (_server, a, b) = deleted_and_created_again_against(json!({"notes": "B's notes"}));
    a.sync();
    b.sync();
    let day = json!({"planId": "p", "dayIndex": 0});
    for d in [&a, &b] {
        assert_eq!(
            d.doc("plans", "p"),
            Some(json!({"name": "Again", "notes": "B's notes"}))
        );
        assert_eq!(d.doc("plan_days", "d"), Some(day.clone()), "never deleted");
    }
    assert_eq!(snapshot(&a), snapshot(&b));
    assert_eq!(a.pending() + b.pending(), 0);
}

#[test]
fn a_parent_whose_delete_meets_a_conflict_kept_mine_shows_its_children_again() {
    // Both renamed: the app keeps A's; the delete is dropped with the conflict.
    let (_server, a, b) = deleted_and_created_again_against(json!({"name": "B's name"}));
    let report = a.sync();
    assert_eq!(report.parked.len(), 1, "both renamed: the app decides");
    a.t.resolve("plans".into(), "p".into(), Resolution::KeepMine)
        .unwrap();
    assert_eq!(
        a.doc("plan_days", "d"),
        Some(json!({"planId": "p", "dayIndex": 0})),
        "the delete is gone: so is the day's hiding"
    );
    a.sync();
    b.sync();
    assert_eq!(snapshot(&a), snapshot(&b));
    assert_eq!(a.pending() + b.pending(), 0);
}

#[test]
fn a_parent_whose_delete_meets_a_conflict_kept_server_shows_its_children_again() {
    let (_server, a, b) = deleted_and_created_again_against(json!({"name": "B's name"}));
    a.sync();
    a.t.resolve("plans".into(), "p".into(), Resolution::KeepServer)
        .unwrap();
    assert_eq!(
        a.doc("plans", "p"),
        Some(json!({"name": "B's name", "notes": "n"}))
    );
    assert_eq!(
        a.doc("plan_days", "d"),
        Some(json!({"planId": "p", "dayIndex": 0}))
    );
    a.sync();
    b.sync();
    assert_eq!(snapshot(&a), snapshot(&b));
    assert_eq!(a.pending() + b.pending(), 0);
}

/// Seed 48: a batch (a plan and its day) was in flight, its answer lost, when the user deleted
/// the plan. The day hid with the delete but its change, kept for the answer, came back not
/// applied (the plan met the server's copy, so the group aborted) and, sent again after the
/// plan's delete in one group, failed it `invalid_parent` for ever: the device never settled.
#[test]
fn a_change_in_flight_when_its_parent_was_deleted_goes_with_the_parent() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.url());
    let account = email();
    let (a, b) = (device(proxy.url()), device(server.url()));
    a.sign_up(&account);
    b.sign_in(&account);
    b.put("plans", "p", json!({"name": "B's plan"}));
    b.sync();

    // A, which never pulled, writes the plan and a day under it in one batch.
    a.t.write(vec![
        WriteOp::Put {
            collection: "plans".into(),
            id: Some("p".into()),
            json: json!({"name": "A's plan"}).to_string(),
            space_id: None,
        },
        WriteOp::Put {
            collection: "plan_days".into(),
            id: Some("d".into()),
            json: json!({"planId": "p", "dayIndex": 0}).to_string(),
            space_id: None,
        },
    ])
    .unwrap();
    proxy.fail_next("/sync/v1/push", Fault::DropResponse);
    assert!(block(a.t.sync_now()).is_err(), "the answer is lost");
    a.delete("plans", "p");
    assert_eq!(a.doc("plan_days", "d"), None);

    let report = a.sync();
    assert_eq!(report.parked.len(), 1, "A's delete meets B's plan");
    a.t.resolve("plans".into(), "p".into(), Resolution::KeepMine)
        .unwrap();
    a.sync();
    assert_eq!(a.pending(), 0, "settled: nothing goes again");
    assert!(a.t.rejected().unwrap().is_empty(), "and nothing refused");
    b.sync();
    assert_eq!(a.doc("plans", "p"), None, "A's delete kept");
    assert_eq!(snapshot(&a), snapshot(&b));
    assert!(snapshot(&a).is_empty());
}

/// The same with records the server has: the day, hidden with the document of its change in
/// flight, keeps the server's once that change comes back not applied, so when the plan's delete
/// does not land either (the app keeps the server's side) the day shows as the server has it.
#[test]
fn a_hidden_change_that_never_landed_shows_the_servers_document_again() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.url());
    let account = email();
    let (a, b) = (device(proxy.url()), device(server.url()));
    a.sign_up(&account);
    b.sign_in(&account);
    a.put("plans", "p", json!({"name": "Plan"}));
    a.put("plan_days", "d", json!({"planId": "p", "dayIndex": 0}));
    a.sync();
    b.sync();
    b.patch("plans", "p", json!({"name": "B's name"}));
    b.sync();

    a.t.write(vec![
        WriteOp::Patch {
            collection: "plans".into(),
            id: "p".into(),
            patch_json: json!({"name": "A's name"}).to_string(),
        },
        WriteOp::Patch {
            collection: "plan_days".into(),
            id: "d".into(),
            patch_json: json!({"title": "A's title"}).to_string(),
        },
    ])
    .unwrap();
    proxy.fail_next("/sync/v1/push", Fault::DropResponse);
    assert!(block(a.t.sync_now()).is_err(), "the answer is lost");
    a.delete("plans", "p");

    let report = a.sync();
    assert_eq!(report.parked.len(), 1, "A's delete meets B's rename");
    a.t.resolve("plans".into(), "p".into(), Resolution::KeepServer)
        .unwrap();
    assert_eq!(
        a.doc("plan_days", "d"),
        Some(json!({"planId": "p", "dayIndex": 0})),
        "the server's day: A's title never landed"
    );
    a.sync();
    b.sync();
    assert_eq!(a.pending() + b.pending(), 0);
    assert_eq!(snapshot(&a), snapshot(&b));
}
