//! After a conflict settled on the server's side (the default `Merge` policy parks a field both
//! devices changed; the app keeps the server's side), the record's `edited_at` is the server's
//! edit time at once, as on every other device, not empty until its next change. Two devices
//! with their own edit clocks, through the real `tandem-server` (in process, on a manual clock).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use tandem::{Resolution, SecureStore, SyncReport, Tandem, TandemConfig};
use tandem_protocol::OffsetClock;
use tandem_testkit::fixtures::MemorySecrets;
use tandem_testkit::fixtures::TEST_SCHEMA as SCHEMA;
use tandem_testkit::server::{email, TestServer};
use tandem_testkit::ManualClock;
use tempfile::TempDir;

const PASSWORD: &str = "correct horse battery staple";
const START: i64 = 1_800_000_000_000;

fn block<F: Future>(future: F) -> F::Output {
    tandem::runtime::runtime().block_on(future)
}

struct Device {
    _dir: TempDir,
    t: Arc<Tandem>,
}

fn device(server: &TestServer, clock: &ManualClock) -> Device {
    let dir = TempDir::new().unwrap();
    let mut config = TandemConfig::with_server(dir.path().to_string_lossy(), SCHEMA, server.url());
    config.sync.realtime = false;
    config.secure_store = Some(Arc::new(MemorySecrets::default()) as Arc<dyn SecureStore>);
    let edit_clock = OffsetClock::new(Arc::new(clock.clone()), 0);
    let t =
        Tandem::open_with_clocks(config, Arc::new(clock.clone()), Arc::new(edit_clock)).unwrap();
    Device { _dir: dir, t }
}

impl Device {
    fn sync(&self) -> SyncReport {
        block(self.t.sync_now()).unwrap()
    }

    fn patch(&self, id: &str, patch: Value) {
        self.t
            .patch("plans".into(), id.into(), patch.to_string())
            .unwrap();
    }

    fn doc(&self, id: &str) -> Value {
        let record = self.t.get("plans".into(), id.into()).unwrap().unwrap();
        serde_json::from_str(&record.document).unwrap()
    }

    fn edited_at_ms(&self, id: &str) -> Option<i64> {
        let record = self.t.get("plans".into(), id.into()).unwrap().unwrap();
        record
            .edited_at
            .map(|at| at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64)
    }
}

#[test]
fn keeping_the_servers_side_shows_the_servers_edit_time() {
    let clock = ManualClock::at_ms(START);
    let server = TestServer::builder().clock(clock.clone()).start();
    let (a, b) = (device(&server, &clock), device(&server, &clock));
    let account = email();
    block(a.t.sign_up(account.clone(), PASSWORD.into())).unwrap();
    block(b.t.sign_in(account, PASSWORD.into())).unwrap();
    a.t.put(
        "plans".into(),
        Some("p".into()),
        json!({"name": "Plan"}).to_string(),
    )
    .unwrap();
    a.sync();
    b.sync();

    // Both rename offline, B a minute after A; A's rename reaches the server first.
    clock.advance(Duration::from_secs(60));
    a.patch("p", json!({"name": "A's name"}));
    let a_time = a.edited_at_ms("p").expect("A's edit time");
    clock.advance(Duration::from_secs(60));
    b.patch("p", json!({"name": "B's name"}));
    a.sync();
    let report = b.sync();
    assert_eq!(report.parked.len(), 1, "both renamed: the app decides");

    b.t.resolve("plans".into(), "p".into(), Resolution::KeepServer)
        .unwrap();
    assert_eq!(b.doc("p"), json!({"name": "A's name"}));
    assert_eq!(
        b.edited_at_ms("p"),
        Some(a_time),
        "the server's edit time (A's), at once"
    );
    assert_eq!(b.t.pending_count().unwrap(), 0, "nothing to send");
    // Every device agrees on it.
    b.sync();
    a.sync();
    assert_eq!(a.edited_at_ms("p"), b.edited_at_ms("p"));
}
