//! The `sync` suite: engines syncing with a real server on loopback. The server runs in a child
//! process (this binary with `__serve`), and the measured bootstrap client in another (`__bootstrap`),
//! so the reported memory is the client's alone.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tandem::{
    Encryption, Query, QueryObserver, Record, SecureStore, SecureStoreError, SyncPhase, Tandem,
    TandemConfig, WriteOp,
};
use tempfile::TempDir;

use crate::report::{Measurement, Target};
use crate::stats::{median, millis, percentile};

pub(crate) const SCHEMA: &str = include_str!("../../schemas/sample.json");
/// Passed to children in the environment, never in argv.
pub(crate) const PASSWORD_ENV: &str = "TANDEM_BENCH_PASSWORD";
pub(crate) const PASSWORD: &str = "bench password 0123456789";

struct Sizes {
    bootstrap: usize,
    push: usize,
    noop_runs: usize,
    realtime_rounds: usize,
    /// `realtime_burst_*`: puts, one every 10 ms.
    burst_writes: usize,
    /// `join_space_100k`: the space joined, and what the user holds already (half in their own
    /// collection, half in another space).
    join_space: usize,
    join_others: usize,
}

const FULL: Sizes = Sizes {
    bootstrap: 100_000,
    push: 10_000,
    noop_runs: 200,
    realtime_rounds: 30,
    burst_writes: 100,
    join_space: 100_000,
    join_others: 10_000,
};
const QUICK: Sizes = Sizes {
    bootstrap: 2_000,
    push: 500,
    noop_runs: 10,
    realtime_rounds: 3,
    burst_writes: 5,
    join_space: 2_000,
    join_others: 400,
};

pub fn run(quick: bool, only: Option<&str>) -> Vec<Measurement> {
    let sizes = if quick { &QUICK } else { &FULL };
    let wanted = |group: &str| only.is_none_or(|o| group.contains(o));
    let server = BenchServer::start();
    let mut results = Vec::new();
    if wanted("bootstrap_100k bootstrap_100k_rss bootstrap_100k_encrypted") {
        results.extend(bootstrap(&server, sizes));
    }
    if wanted("push_10k") {
        results.push(push(&server, sizes));
    }
    if wanted("noop_sync") {
        results.push(noop(&server, sizes));
    }
    if wanted("realtime_propagation") {
        results.push(realtime(&server, sizes));
    }
    if wanted("realtime_burst_runs realtime_burst_last_ms") {
        results.extend(burst(&server, sizes));
    }
    if wanted("join_space_100k") {
        results.push(join_space(&server, sizes));
    }
    results
}

/// An in-memory secure store: benchmarks must not touch the user's keyring.
#[derive(Default)]
pub(crate) struct Secrets(Mutex<HashMap<String, String>>);

impl SecureStore for Secrets {
    fn get(&self, key: String) -> Result<Option<String>, SecureStoreError> {
        Ok(self.0.lock().unwrap().get(&key).cloned())
    }
    fn set(&self, key: String, value: String) -> Result<(), SecureStoreError> {
        self.0.lock().unwrap().insert(key, value);
        Ok(())
    }
    fn delete(&self, key: String) -> Result<(), SecureStoreError> {
        self.0.lock().unwrap().remove(&key);
        Ok(())
    }
}

pub(crate) fn block<F: std::future::Future>(future: F) -> F::Output {
    tandem_core::runtime::runtime().block_on(future)
}

/// A device: an engine in its own directory, signed in (or up) to `email`.
pub(crate) struct Device {
    _dir: TempDir,
    pub(crate) t: Arc<Tandem>,
}

impl Device {
    pub(crate) fn new(url: &str, adjust: impl FnOnce(&mut TandemConfig)) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let mut config = TandemConfig::with_server(dir.path().to_string_lossy(), SCHEMA, url);
        config.sync.realtime = false;
        config.secure_store = Some(Arc::new(Secrets::default()));
        adjust(&mut config);
        let t = Tandem::open(config).expect("open");
        Self { _dir: dir, t }
    }

    pub(crate) fn sign_up(url: &str, email: &str, adjust: impl FnOnce(&mut TandemConfig)) -> Self {
        let device = Self::new(url, adjust);
        block(device.t.sign_up(email.into(), PASSWORD.into())).expect("sign up");
        device
    }

    pub(crate) fn sign_in(url: &str, email: &str, adjust: impl FnOnce(&mut TandemConfig)) -> Self {
        let device = Self::new(url, adjust);
        block(device.t.sign_in(email.into(), PASSWORD.into())).expect("sign in");
        device
    }
}

pub(crate) fn email(tag: &str) -> String {
    format!("bench-{tag}-{}@example.com", uuid::Uuid::now_v7().simple())
}

/// About 210 bytes of JSON (204 to 213), like a real plan.
pub(crate) fn plan_json(i: usize) -> String {
    format!(
        r#"{{"name": "Plan {i}", "notes": "Warm up for ten minutes, then three rounds of the main lifts with long rests in between; finish with mobility work and a short walk. Keep a log of the weights.", "archived": false}}"#
    )
}

/// Puts of plans `<prefix>0`, `<prefix>1`, … for the ids in `range`, documents by [`plan_json`].
pub(crate) fn plan_puts(prefix: &str, range: std::ops::Range<usize>) -> Vec<WriteOp> {
    range
        .map(|i| WriteOp::Put {
            collection: "plans".into(),
            id: Some(format!("{prefix}{i}")),
            json: plan_json(i),
            space_id: None,
        })
        .collect()
}

fn seed(url: &str, account: &str, count: usize) {
    let seeder = Device::sign_up(url, account, |c| c.sync.push_batch_size = 500);
    for start in (0..count).step_by(10_000) {
        let ops = plan_puts("p", start..count.min(start + 10_000));
        seeder.t.write(ops).expect("seed");
    }
    block(seeder.t.sync_now()).expect("seed push");
}

/// 100k records pulled into an empty client, against raw SQLite inserting the same documents in
/// one transaction; and the client's peak memory.
fn bootstrap(server: &BenchServer, sizes: &Sizes) -> Vec<Measurement> {
    let account = email("bootstrap");
    seed(&server.url, &account, sizes.bootstrap);
    let floor_secs = floor_insert(sizes.bootstrap);
    let (secs, rss) = bootstrap_in_child(&server.url, &account, sizes.bootstrap, &[]);
    // The same pull into an encrypted store, right after (its key in the child's in-memory store).
    let (encrypted_secs, encrypted_rss) =
        bootstrap_in_child(&server.url, &account, sizes.bootstrap, &["--encrypted"]);
    let per_sec = |secs: f64| sizes.bootstrap as f64 / secs;
    vec![
        // The ratio compares costs: floor records/s over engine records/s.
        Measurement::new("bootstrap_100k", per_sec(secs), "ops/s")
            .floor(per_sec(floor_secs))
            .inverse_ratio()
            .target(Target::RatioAtMost(3.0)),
        Measurement::new("bootstrap_100k_rss", rss, "MB").target(Target::AtMost(150.0)),
        // Against the plaintext engine's rate of this run, not raw SQLite (issue 17).
        Measurement::new("bootstrap_100k_encrypted", per_sec(encrypted_secs), "ops/s")
            .floor(per_sec(secs))
            .inverse_ratio()
            .target(Target::RatioAtMost(1.3)),
        Measurement::new("bootstrap_100k_encrypted_rss", encrypted_rss, "MB"),
    ]
}

/// A user already holding `join_others` records (half in their own `plans`, half in another
/// space) accepts an invitation to a space of `join_space` records; records/s from the accept
/// until `sync_now` has caught up, against the bootstrap floor (raw SQLite inserting the same
/// documents in one transaction). The run must pull exactly the space's records: the other
/// streams keep their cursors, so none of their rows comes again.
fn join_space(server: &BenchServer, sizes: &Sizes) -> Measurement {
    let http = Http::new(&server.url);
    let owner = http.sign_up(&email("join-owner"));
    let user_email = email("joiner");
    let user = http.sign_up(&user_email);
    // Seeded over HTTP; the measured device signs in afterwards, accepts with the exported API
    // (`Tandem.accept`) and catches up with one `sync_now`.
    let mine = sizes.join_others / 2;
    let theirs = sizes.join_others - mine;
    let other_space = http.create_space(&user, "Other");
    http.push_new(&user, "plans", None, "own", mine);
    http.push_new(&user, "shared_plans", Some(&other_space), "other", theirs);
    let big = http.create_space(&owner, "Big");
    http.push_new(&owner, "shared_plans", Some(&big), "big", sizes.join_space);
    let invitation = http.invite(&owner, &big, &user_email, "viewer");

    let device = Device::sign_in(&server.url, &user_email, |c| c.sync.pull_page_size = 1000);
    let first = block(device.t.sync_now()).expect("first sync");
    assert_eq!(
        first.pulled as usize, sizes.join_others,
        "the user's own records and the other space's arrived"
    );
    let floor_secs = floor_insert(sizes.join_space);

    let started = Instant::now();
    block(device.t.accept(invitation)).expect("accept");
    let report = block(device.t.sync_now()).expect("catch up");
    let secs = started.elapsed().as_secs_f64();
    assert!(!report.full_repull, "joining re-pulled everything");
    assert_eq!(
        report.pulled as usize, sizes.join_space,
        "only the joined space's records came (no row of the other streams again)"
    );
    let shared = device
        .t
        .count("shared_plans".into(), Query::default())
        .expect("count");
    assert_eq!(shared as usize, theirs + sizes.join_space);
    let per_sec = |secs: f64| sizes.join_space as f64 / secs;
    Measurement::new("join_space_100k", per_sec(secs), "records/s")
        .floor(per_sec(floor_secs))
        .inverse_ratio()
        .target(Target::RatioAtMost(5.0))
}

/// A user of the bench server over plain HTTP: seeding spaces and records without a device (and
/// its local store) per seeding account.
pub(crate) struct HttpUser {
    auth: String,
}

pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: base.to_string(),
        }
    }

    pub(crate) fn post(
        &self,
        path: &str,
        user: Option<&HttpUser>,
        body: serde_json::Value,
    ) -> serde_json::Value {
        block(async {
            let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
            if let Some(user) = user {
                request = request.header("authorization", &user.auth);
            }
            let response = request.send().await.expect("request");
            let status = response.status();
            let text = response.text().await.expect("answer");
            assert!(status.is_success(), "{path} answered {status}: {text}");
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
        })
    }

    pub(crate) fn sign_up(&self, email: &str) -> HttpUser {
        let session = self.post(
            "/auth/v1/signup",
            None,
            serde_json::json!({"email": email, "password": PASSWORD}),
        );
        HttpUser {
            auth: format!(
                "Bearer {}",
                session["access_token"].as_str().expect("access token")
            ),
        }
    }

    fn create_space(&self, user: &HttpUser, name: &str) -> String {
        let space = self.post(
            "/sync/v1/spaces",
            Some(user),
            serde_json::json!({"name": name, "requestId": uuid::Uuid::now_v7().to_string()}),
        );
        space["id"].as_str().expect("space id").to_string()
    }

    fn invite(&self, user: &HttpUser, space: &str, email: &str, role: &str) -> String {
        let invitation = self.post(
            &format!("/sync/v1/spaces/{space}/invitations"),
            Some(user),
            serde_json::json!({"email": email, "role": role}),
        );
        invitation["id"]
            .as_str()
            .expect("invitation id")
            .to_string()
    }

    /// Pushes `count` new records of `collection` (the documents of `plan_json`), in batches of
    /// 500, all applied.
    pub(crate) fn push_new(
        &self,
        user: &HttpUser,
        collection: &str,
        space: Option<&str>,
        tag: &str,
        count: usize,
    ) {
        for start in (0..count).step_by(500) {
            let mutations: Vec<serde_json::Value> = (start..count.min(start + 500))
                .map(|i| {
                    let mut m = serde_json::json!({
                        "opId": format!("op-{tag}-{i}"),
                        "entity": collection,
                        "entityId": format!("{tag}{i}"),
                        "type": "upsert",
                        "baseVersion": null,
                        "payload": serde_json::from_str::<serde_json::Value>(&plan_json(i)).expect("JSON"),
                        "clientTime": "2025-01-01T00:00:00Z",
                    });
                    if let Some(space) = space {
                        m["space"] = serde_json::json!(space);
                    }
                    m
                })
                .collect();
            self.push_all_applied(user, &format!("bench-{tag}"), mutations);
        }
    }

    /// Pushes `mutations` as `client` in one request; every one must be applied.
    pub(crate) fn push_all_applied(
        &self,
        user: &HttpUser,
        client: &str,
        mutations: Vec<serde_json::Value>,
    ) {
        let sent = mutations.len();
        let answer = self.post(
            "/sync/v1/push",
            Some(user),
            serde_json::json!({"clientId": client, "mutations": mutations}),
        );
        let applied = answer["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter(|r| r["status"] == "applied")
            .count();
        assert_eq!(applied, sent, "every seeded record applied");
    }
}

fn floor_insert(count: usize) -> f64 {
    let dir = TempDir::new().expect("temp dir");
    let mut conn = Connection::open(dir.path().join("floor.db")).expect("raw SQLite");
    conn.execute_batch(tandem_core::CONNECTION_PRAGMAS)
        .expect("pragmas");
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE records (collection TEXT NOT NULL, id TEXT NOT NULL, doc TEXT, PRIMARY KEY (collection, id))")
        .expect("floor table");
    let docs: Vec<(String, String)> = (0..count)
        .map(|i| (format!("p{i}"), plan_json(i)))
        .collect();
    let started = Instant::now();
    let tx = conn.transaction().expect("begin");
    {
        let mut insert = tx
            .prepare("INSERT INTO records (collection, id, doc) VALUES ('plans', ?1, ?2)")
            .expect("prepare");
        for (id, doc) in &docs {
            insert.execute([id, doc]).expect("insert");
        }
    }
    tx.commit().expect("commit");
    started.elapsed().as_secs_f64()
}

/// Runs a bootstrap client (`__bootstrap`, this binary) that signs in to `account` on an empty
/// device and pulls everything (`count` records, counted in the collections `extra` names with
/// `--collections`, else in `plans`); returns its seconds and its peak resident memory (MB).
pub(crate) fn bootstrap_in_child(
    url: &str,
    account: &str,
    count: usize,
    extra: &[&str],
) -> (f64, f64) {
    let child = Command::new(std::env::current_exe().expect("own path"))
        .args(["__bootstrap", url, account, &count.to_string()])
        .args(extra)
        .env(PASSWORD_ENV, PASSWORD)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the bootstrap client");
    assert!(child.status.success(), "the bootstrap client failed");
    let answer: serde_json::Value =
        serde_json::from_slice(&child.stdout).expect("the bootstrap client's JSON");
    let secs = answer["secs"].as_f64().expect("secs");
    let rss = answer["rss_mb"].as_f64().expect("rss");
    (secs, rss)
}

/// The child side of `bootstrap`: sign in on an empty device, pull everything, report.
/// `args`: the server's URL, the account, how many records must arrive, then optionally
/// `--collections a,b` (where they are counted; `plans` when absent) and `--encrypted` (the store
/// encrypted, its key kept in the device's in-memory secure store).
pub fn bootstrap_child(args: &[String]) {
    let arg = |i: usize| args.get(i).map_or("", String::as_str);
    let (url, account) = (arg(0), arg(1));
    let expected: usize = arg(2).parse().expect("the record count");
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let collections = option("--collections").unwrap_or("plans");
    let encrypted = args.iter().any(|a| a == "--encrypted");
    let password = std::env::var(PASSWORD_ENV).expect("password in the environment");
    let device = Device::new(url, |c| {
        c.sync.pull_page_size = 1000;
        if encrypted {
            c.encryption = Some(Encryption::On);
        }
    });
    block(device.t.sign_in(account.into(), password)).expect("sign in");
    let started = Instant::now();
    block(device.t.sync_now()).expect("bootstrap");
    let secs = started.elapsed().as_secs_f64();
    // The bootstrap's own peak, before the check below reads the store through a reader
    // connection (whose page cache would count too).
    let rss_mb = peak_rss_mb();
    let count: u64 = collections
        .split(',')
        .map(|c| device.t.count(c.into(), Query::default()).expect("count"))
        .sum();
    assert_eq!(count as usize, expected, "every record arrived");
    println!("{}", serde_json::json!({"secs": secs, "rss_mb": rss_mb}));
}

/// Peak resident memory of this process (Linux `VmHWM`), in MB.
pub(crate) fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `TANDEM_BENCH_PUSH_BATCH=N`: `push_10k` runs with push batches of N (the server then takes
/// batches of up to max(N, its default)), and prints what choosing the batch size needs to stderr:
/// the request size, the first answer's latency and the server's peak memory.
const PUSH_BATCH_ENV: &str = "TANDEM_BENCH_PUSH_BATCH";

fn push_batch_override() -> Option<usize> {
    std::env::var(PUSH_BATCH_ENV).ok()?.parse().ok()
}

/// 10,000 pending local changes pushed in one run.
fn push(server: &BenchServer, sizes: &Sizes) -> Measurement {
    let batch = push_batch_override();
    let device = Device::sign_up(&server.url, &email("push"), |c| {
        if let Some(n) = batch {
            c.sync.push_batch_size = n as u32;
        }
    });
    let ops = plan_puts("q", 0..sizes.push);
    device.t.write(ops).expect("pending changes");
    let started = Instant::now();
    let report = block(device.t.sync_now()).expect("push");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(report.applied as usize, sizes.push);
    if let Some(n) = batch {
        // One batch alone: the latency of a first answer, and one request's size.
        let one = Device::sign_up(&server.url, &email("push-one"), |c| {
            c.sync.push_batch_size = n as u32;
        });
        let ops = plan_puts("o", 0..n);
        one.t.write(ops).expect("pending changes");
        let sent_before = one.t.sync_metrics().expect("metrics").bytes_sent;
        let started = Instant::now();
        block(one.t.sync_now()).expect("push");
        let sent = one.t.sync_metrics().expect("metrics").bytes_sent - sent_before;
        eprintln!(
            "push batch {n}: {:.0} ops/s; one batch: {} bytes sent, {:.1} ms to sync; server peak RSS {:.1} MB",
            sizes.push as f64 / secs,
            sent,
            millis(started.elapsed()),
            server_rss_mb(server.pid()),
        );
    }
    Measurement::new("push_10k", sizes.push as f64 / secs, "ops/s")
        .target(Target::AtLeast(25_000.0))
}

/// Peak resident memory of the server process (Linux `VmHWM`), in MB.
fn server_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A whole run with nothing to push or pull.
fn noop(server: &BenchServer, sizes: &Sizes) -> Measurement {
    let device = Device::sign_up(&server.url, &email("noop"), |_| {});
    device
        .t
        .put("plans".into(), None, plan_json(0))
        .expect("put");
    block(device.t.sync_now()).expect("first sync");
    let mut runs: Vec<f64> = (0..sizes.noop_runs)
        .map(|_| {
            let started = Instant::now();
            block(device.t.sync_now()).expect("noop sync");
            millis(started.elapsed())
        })
        .collect();
    Measurement::new("noop_sync", percentile(&mut runs, 50.0), "ms").target(Target::AtMost(5.0))
}

struct Seen(Mutex<Sender<(Instant, Vec<String>)>>);

impl QueryObserver for Seen {
    fn on_results(&self, records: Vec<Record>) {
        let _ = self
            .0
            .lock()
            .unwrap()
            .send((Instant::now(), records.into_iter().map(|r| r.id).collect()));
    }
}

/// Waits until `device`'s event stream is connected and its catch-up run is over.
fn wait_until_live(device: &Tandem) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = device.sync_status().expect("status");
        if status.realtime && status.phase == SyncPhase::Idle {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the event stream never connected"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Two devices of a new account with the default sync configuration (realtime on), both
/// started and live, and what B's observer of `plans` sees: (when, which ids).
struct LivePair {
    a: Device,
    b: Device,
    seen: Receiver<(Instant, Vec<String>)>,
    _subscription: Arc<tandem::Subscription>,
}

impl LivePair {
    fn start(server: &BenchServer, tag: &str) -> Self {
        let account = email(tag);
        let live = |c: &mut TandemConfig| c.sync.realtime = true;
        let a = Device::sign_up(&server.url, &account, live);
        let b = Device::sign_in(&server.url, &account, live);
        a.t.start_sync().expect("start a");
        b.t.start_sync().expect("start b");
        let (tx, seen) = channel();
        let subscription =
            b.t.observe(
                "plans".into(),
                Query::default(),
                Arc::new(Seen(Mutex::new(tx))),
            )
            .expect("observe");
        wait_until_live(&a.t);
        wait_until_live(&b.t);
        while seen.try_recv().is_ok() {}
        Self {
            a,
            b,
            seen,
            _subscription: subscription,
        }
    }

    /// When B's observer has seen every id of `ids`.
    fn seen_all(&self, mut ids: HashSet<String>) -> Instant {
        let mut at = Instant::now();
        while !ids.is_empty() {
            let (when, seen) = self
                .seen
                .recv_timeout(Duration::from_secs(30))
                .expect("b saw the puts");
            for id in seen {
                ids.remove(&id);
            }
            at = when;
        }
        at
    }
}

impl Drop for LivePair {
    fn drop(&mut self) {
        self.a.t.stop_sync().ok();
        self.b.t.stop_sync().ok();
    }
}

/// A put on A until B's observer sees it, both running background sync with realtime pokes and
/// the default configuration (a write starts A's push at once), median of 30.
fn realtime(server: &BenchServer, sizes: &Sizes) -> Measurement {
    let pair = LivePair::start(server, "realtime");
    let mut latencies: Vec<f64> = (0..sizes.realtime_rounds)
        .map(|i| {
            let id = format!("live{i}");
            let started = Instant::now();
            pair.a
                .t
                .put("plans".into(), Some(id.clone()), plan_json(i))
                .expect("put");
            millis(pair.seen_all(HashSet::from([id])) - started)
        })
        .collect();
    Measurement::new("realtime_propagation", median(&mut latencies), "ms")
        .target(Target::AtMost(20.0))
}

/// 100 puts on A, one every 10 ms (a second of typing), default configuration: how many runs
/// A's writes cost (the first write starts a run at once, writes during a run join the next;
/// each run sends at most one push and one pull request), and how long after the last put B's
/// observer has seen them all.
fn burst(server: &BenchServer, sizes: &Sizes) -> Vec<Measurement> {
    let pair = LivePair::start(server, "burst");
    let runs_before = pair.a.t.sync_metrics().expect("metrics").runs;
    let mut last_put = Instant::now();
    for i in 0..sizes.burst_writes {
        pair.a
            .t
            .put("plans".into(), Some(format!("burst{i}")), plan_json(i))
            .expect("put");
        last_put = Instant::now();
        std::thread::sleep(Duration::from_millis(10));
    }
    let ids = (0..sizes.burst_writes)
        .map(|i| format!("burst{i}"))
        .collect();
    let all_seen = pair.seen_all(ids);
    let runs = pair.a.t.sync_metrics().expect("metrics").runs - runs_before;
    vec![
        Measurement::new("realtime_burst_runs", runs as f64, "runs"),
        Measurement::new(
            "realtime_burst_last_ms",
            millis(all_seen.saturating_duration_since(last_put)),
            "ms",
        ),
    ]
}

/// A `tandem-server` on a temporary SQLite database (attachments in a directory beside it) in a
/// child process.
pub struct BenchServer {
    child: Child,
    pub url: String,
    _dir: TempDir,
}

impl BenchServer {
    pub fn start() -> Self {
        Self::start_with_attachment_limit(None)
    }

    /// [`start`](Self::start) with the server's largest attachment set to `max_bytes`.
    pub fn start_with_attachment_limit(max_bytes: Option<u64>) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let db = format!("sqlite://{}", dir.path().join("server.db").display());
        let mut args = vec!["__serve".to_string(), db];
        args.extend(max_bytes.map(|n| n.to_string()));
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server process");
        let line = BufReader::new(child.stdout.take().expect("stdout"))
            .lines()
            .next();
        let url = match line {
            Some(Ok(line)) => line.trim_start_matches("listening on ").trim().to_string(),
            other => panic!("the bench server did not start: {other:?}"),
        };
        Self {
            child,
            url,
            _dir: dir,
        }
    }
}

impl BenchServer {
    /// The server process's id, for its memory figures.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.stdin.take().map(|mut s| s.flush());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child side of `BenchServer`: serves until the parent goes away (stdin closes).
pub fn serve_child(db: &str, attachment_max_bytes: Option<u64>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = tandem_server::Config {
            addr: "127.0.0.1:0".parse().expect("addr"),
            db: db.to_string(),
            jwt_secret: Some(uuid::Uuid::now_v7().simple().to_string()),
            ..tandem_server::Config::default()
        };
        let config = tandem_server::Config {
            attachment_max_bytes: attachment_max_bytes.unwrap_or(config.attachment_max_bytes),
            max_batch: push_batch_override().map_or(config.max_batch, |n| n.max(config.max_batch)),
            ..config
        };
        let handle = tandem_server::run(config).await.expect("server");
        println!("listening on {}", handle.url());
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await
        .ok();
        handle.shutdown().await.ok();
    });
}
