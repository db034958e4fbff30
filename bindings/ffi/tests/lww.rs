//! Last-write-wins by edit time end to end: two or three devices with skewed wall clocks, syncing
//! through the real `tandem-server` (in process, on a manual clock the test moves), converge on
//! the document whose every field holds its latest edit; a device days ahead does not win every
//! conflict; an edit against a delete goes by the delete's time; records expose `edited_at`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use tandem::{ConflictPolicy, Query, Tandem};
use tandem_protocol::{OffsetClock, MAX_CLOCK_SKEW_MS};
use tandem_testkit::server::TestServer;
use tandem_testkit::ManualClock;

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

mod common;

use common::{device_opened_by, one_account, Device};

/// A device whose wall clock is `skew_ms` off the server's (tokens still judged by the server's
/// clock, so only edit times see the skew), settling conflicts by last write wins.
fn device(server: &TestServer, clock: &ManualClock, skew_ms: i64) -> Device {
    device_opened_by(
        server.url(),
        |config| config.sync.conflict_policy = Some(ConflictPolicy::LastWriteWins),
        |config| {
            let edit_clock = OffsetClock::new(Arc::new(clock.clone()), skew_ms);
            Tandem::open_with_clocks(config, Arc::new(clock.clone()), Arc::new(edit_clock)).unwrap()
        },
    )
}

fn server_at(clock: &ManualClock) -> TestServer {
    TestServer::builder().clock(clock.clone()).start()
}

/// Devices with these skews, signed in to one new account.
fn devices(server: &TestServer, clock: &ManualClock, skews: &[i64]) -> Vec<Device> {
    let all: Vec<Device> = skews.iter().map(|s| device(server, clock, *s)).collect();
    one_account(&all);
    all
}

impl Device {
    fn edited_at_ms(&self, id: &str) -> i64 {
        let at = self.record("plans", id).edited_at.expect("an edit time");
        at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
    }

    fn plans(&self) -> Vec<(String, Value)> {
        self.t
            .query("plans".into(), Query::default())
            .unwrap()
            .into_iter()
            .map(|r| (r.id, serde_json::from_str(&r.document).unwrap()))
            .collect()
    }
}

fn advance(clock: &ManualClock, ms: i64) {
    clock.advance(Duration::from_millis(ms as u64));
}

/// Syncs every device twice over, in order: enough for every change to reach every device.
fn sync_all(devices: &[&Device]) {
    for _ in 0..2 {
        for d in devices {
            let report = d.sync();
            assert!(report.parked.is_empty(), "nothing goes to the app");
        }
    }
}

#[test]
fn offline_edits_on_skewed_devices_converge_to_the_latest_edit_of_each_field() {
    let start = 1_800_000_000_000;
    let clock = ManualClock::at_ms(start);
    let server = server_at(&clock);
    // A runs two minutes behind, B thirty seconds ahead, C on time.
    let all = devices(&server, &clock, &[-2 * MINUTE, 30_000, 0]);
    let [a, b, c] = [&all[0], &all[1], &all[2]];
    a.put(
        "plans",
        "p",
        json!({"name": "Plan", "notes": "first", "archived": false}),
    );
    sync_all(&[a, b, c]);
    assert_eq!(b.doc("plans", "p"), a.doc("plans", "p"));

    // Offline: A (behind, so its edit counts as made when it last saw the server) renames;
    // B edits the notes; C renames and archives, later than A's edit.
    advance(&clock, 10_000);
    a.patch("plans", "p", json!({"name": "A's name"}));
    advance(&clock, 10_000);
    b.patch("plans", "p", json!({"notes": "B's notes"}));
    advance(&clock, 10_000);
    c.patch("plans", "p", json!({"name": "C's name", "archived": true}));
    // Different devices, different fields and the same field: in any order, the same result.
    for d in [b, a, c] {
        d.sync();
    }
    sync_all(&[c, a, b]);
    let expected = json!({"name": "C's name", "notes": "B's notes", "archived": true});
    for d in [a, b, c] {
        assert_eq!(d.doc("plans", "p"), Some(expected.clone()));
        assert!(d.t.conflicts().unwrap().is_empty());
    }
    assert_eq!(a.plans(), b.plans());
    assert_eq!(b.plans(), c.plans());

    // A has seen the server's time now: its next edit, a minute on, beats C's.
    advance(&clock, MINUTE);
    a.patch("plans", "p", json!({"name": "A again"}));
    // A's wall clock reads a minute before C's edit; its edit time is after it all the same.
    assert!(
        a.edited_at_ms("p") >= start + 30_000,
        "caught up with the server's time"
    );
    advance(&clock, 1_000);
    b.patch("plans", "p", json!({"archived": false}));
    sync_all(&[b, a, c]);
    let expected = json!({"name": "A again", "notes": "B's notes", "archived": false});
    for d in [a, b, c] {
        assert_eq!(d.doc("plans", "p"), Some(expected.clone()));
    }
    // Every device shows the same edit time: the latest edit, B's.
    assert_eq!(a.edited_at_ms("p"), c.edited_at_ms("p"));
}

#[test]
fn a_device_days_ahead_does_not_win_forever() {
    let clock = ManualClock::at_ms(1_800_000_000_000);
    let server = server_at(&clock);
    let all = devices(&server, &clock, &[3 * DAY, 0]);
    let [fast, honest] = [&all[0], &all[1]];
    fast.put("plans", "p", json!({"name": "Plan", "notes": "n"}));
    sync_all(&[fast, honest]);
    // The fast device's time was clamped to the server's clock + the bound.
    let start = 1_800_000_000_000;
    assert!(honest.edited_at_ms("p") <= start + MAX_CLOCK_SKEW_MS);
    assert!(fast.edited_at_ms("p") <= start + MAX_CLOCK_SKEW_MS);

    // Both edit the name offline; the honest edit is made two minutes later (in real time) and
    // wins, whichever device syncs first.
    fast.patch("plans", "p", json!({"name": "fast"}));
    advance(&clock, 2 * MINUTE);
    honest.patch("plans", "p", json!({"name": "honest"}));
    sync_all(&[fast, honest]);
    assert_eq!(fast.doc("plans", "p").unwrap()["name"], "honest");
    assert_eq!(honest.doc("plans", "p").unwrap()["name"], "honest");

    // The other way round: the fast device edits later (in real time) and wins too.
    advance(&clock, MINUTE);
    honest.patch("plans", "p", json!({"notes": "honest notes"}));
    advance(&clock, 2 * MINUTE);
    fast.patch("plans", "p", json!({"notes": "fast notes"}));
    let fast_edit = fast.edited_at_ms("p");
    assert!(
        fast_edit < start + 3 * DAY,
        "the fast device corrected its clock after seeing the server's"
    );
    sync_all(&[honest, fast]);
    assert_eq!(honest.doc("plans", "p"), fast.doc("plans", "p"));
    assert_eq!(fast.doc("plans", "p").unwrap()["notes"], "fast notes");
}

#[test]
fn an_edit_against_a_delete_goes_by_the_delete_time() {
    let clock = ManualClock::at_ms(1_800_000_000_000);
    let server = server_at(&clock);
    let all = devices(&server, &clock, &[0, 5_000]);
    let [a, b] = [&all[0], &all[1]];
    a.put("plans", "p", json!({"name": "Plan"}));
    a.put("plans", "q", json!({"name": "Other"}));
    sync_all(&[a, b]);

    // p: deleted on A, edited on B afterwards: the edit brings it back everywhere.
    // q: edited on B, deleted on A afterwards: it stays deleted everywhere.
    a.delete("plans", "p");
    advance(&clock, 1_000);
    b.patch("plans", "p", json!({"name": "kept"}));
    b.patch("plans", "q", json!({"name": "edited"}));
    advance(&clock, 10_000);
    a.delete("plans", "q");
    sync_all(&[a, b]);
    for d in [a, b] {
        assert_eq!(d.doc("plans", "p"), Some(json!({"name": "kept"})));
        assert_eq!(d.doc("plans", "q"), None);
        assert!(d.t.conflicts().unwrap().is_empty());
    }
}
