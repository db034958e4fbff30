//! Randomized multi-device convergence: a seeded generator drives three engines of one account
//! and one of another against the real server through the fault proxy, restarting the server
//! on the same database now and then. Once faults stop and every device has synced until
//! nothing changes, the oracle checks that:
//! - every device of an account holds exactly what a fresh device of that account pulls;
//! - every locally successful put or patch is reflected (the record exists) unless a later
//!   delete of it or of its parent (keeping a local delete in a conflict is one), or a later
//!   `KeepServer`/merged resolution, superseded it;
//! - nothing is left pending and no conflict is left open (the final round resolves each
//!   conflict `KeepMine`, the user's last word);
//! - `PRAGMA integrity_check` is `ok` in every device's database;
//! - the other account sees none of the first account's records;
//! - no device shows a day without its plan.
//!
//! [`shrink`] reduces a failing op list by delta debugging.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tandem::{Query, Resolution, SecureStore, SecureStoreError, SyncReport, Tandem, TandemConfig};
use tempfile::TempDir;

use crate::proxy::{Chaos, Proxy};
use crate::server::{email, TestServer};

/// The schema of the runs: the one test schema, whose plans and days (a cascade parent and its
/// children) the ops write, as in the sample app.
pub use crate::fixtures::TEST_SCHEMA as SCHEMA;

const PASSWORD: &str = "correct horse battery staple";
/// Devices 0..3 belong to account A, device 3 to account B.
const DEVICES: usize = 4;
const PLANS: usize = 4;
const DAYS: usize = 6;

/// How a conflict is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveKind {
    KeepMine,
    KeepServer,
    Merged,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    PutPlan {
        dev: usize,
        plan: usize,
        name: String,
    },
    PutDay {
        dev: usize,
        day: usize,
        index: i64,
    },
    Patch {
        dev: usize,
        plan: usize,
        field: &'static str,
        value: Value,
    },
    PatchDay {
        dev: usize,
        day: usize,
        title: String,
    },
    DeletePlan {
        dev: usize,
        plan: usize,
    },
    DeleteDay {
        dev: usize,
        day: usize,
    },
    /// One `write` batch (an atomic group on the wire): a day and a new name for its plan.
    Batch {
        dev: usize,
        day: usize,
        index: i64,
        name: String,
    },
    Sync {
        dev: usize,
    },
    Resolve {
        dev: usize,
        kind: ResolveKind,
    },
    RestartServer,
    /// A sync of `dev` in a child process killed at `CRASH_POINTS[point]`.
    KillSync {
        dev: usize,
        point: usize,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// The day `day` always belongs to plan `day % PLANS` (days never move).
fn plan_of(day: usize) -> usize {
    day % PLANS
}

fn ids(dev: usize) -> &'static str {
    if dev == DEVICES - 1 {
        "b"
    } else {
        "a"
    }
}

fn plan_id(dev: usize, plan: usize) -> String {
    format!("{}-plan-{plan}", ids(dev))
}

fn day_id(dev: usize, day: usize) -> String {
    format!("{}-day-{day}", ids(dev))
}

/// The op list of `seed`: `count` ops.
pub fn generate(seed: u64, count: usize) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ops = Vec::with_capacity(count);
    for n in 0..count {
        let dev = if rng.random_bool(0.15) {
            DEVICES - 1
        } else {
            rng.random_range(0..DEVICES - 1)
        };
        let op = match rng.random_range(0..100) {
            0..=11 => Op::PutPlan {
                dev,
                plan: rng.random_range(0..PLANS),
                name: format!("plan {n}"),
            },
            12..=17 => Op::Batch {
                dev,
                day: rng.random_range(0..DAYS),
                index: rng.random_range(0..7),
                name: format!("batch {n}"),
            },
            18..=31 => Op::PutDay {
                dev,
                day: rng.random_range(0..DAYS),
                index: rng.random_range(0..7),
            },
            32..=45 => {
                let (field, value) = match rng.random_range(0..3) {
                    0 => ("name", json!(format!("renamed {n}"))),
                    1 => ("notes", json!(format!("notes {n}"))),
                    _ => ("archived", json!(rng.random_bool(0.5))),
                };
                Op::Patch {
                    dev,
                    plan: rng.random_range(0..PLANS),
                    field,
                    value,
                }
            }
            46..=52 => Op::PatchDay {
                dev,
                day: rng.random_range(0..DAYS),
                title: format!("title {n}"),
            },
            53..=57 => Op::DeletePlan {
                dev,
                plan: rng.random_range(0..PLANS),
            },
            58..=62 => Op::DeleteDay {
                dev,
                day: rng.random_range(0..DAYS),
            },
            63..=85 => Op::Sync { dev },
            86..=89 => Op::KillSync {
                dev,
                point: rng.random_range(0..CRASH_POINTS.len()),
            },
            90..=97 => Op::Resolve {
                dev,
                kind: match rng.random_range(0..3) {
                    0 => ResolveKind::KeepMine,
                    1 => ResolveKind::KeepServer,
                    _ => ResolveKind::Merged,
                },
            },
            _ => Op::RestartServer,
        };
        ops.push(op);
    }
    ops
}

/// What a run covered.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub ops: u64,
    pub syncs: u64,
    pub conflicts_made: u64,
    pub conflicts_resolved: u64,
    pub restarts: u64,
    pub kills: u64,
    pub full_repulls: u64,
    /// Children refused `invalid_parent` that the final round discarded.
    pub dead_letters_discarded: u64,
    pub faults: BTreeMap<&'static str, u64>,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.ops += other.ops;
        self.syncs += other.syncs;
        self.conflicts_made += other.conflicts_made;
        self.conflicts_resolved += other.conflicts_resolved;
        self.restarts += other.restarts;
        self.kills += other.kills;
        self.full_repulls += other.full_repulls;
        self.dead_letters_discarded += other.dead_letters_discarded;
        for (kind, n) in &other.faults {
            *self.faults.entry(kind).or_default() += n;
        }
    }
}

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The server's database (`None`: a fresh SQLite file; else e.g. a PostgreSQL URL of an
    /// empty database).
    pub db: Option<String>,
    /// The probability that a sync request meets a fault.
    pub fault_rate: f64,
    /// The `tandem-testkit` binary, for `KillSync` ops (`None`: they only sync in-process).
    pub crash_child: Option<std::path::PathBuf>,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            db: None,
            fault_rate: 0.25,
            crash_child: None,
        }
    }
}

/// Tokens in a JSON file of the device's directory (not secure: for tests), so the
/// `crash-sync` child process can act as the same signed-in device.
struct FileSecrets(std::path::PathBuf, Mutex<()>);

impl FileSecrets {
    fn load(&self) -> HashMap<String, String> {
        std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    fn store(&self, map: &HashMap<String, String>) -> Result<(), SecureStoreError> {
        let text = serde_json::to_string(map).map_err(|e| SecureStoreError::Failed {
            detail: e.to_string(),
        })?;
        std::fs::write(&self.0, text).map_err(|e| SecureStoreError::Failed {
            detail: e.to_string(),
        })
    }
}

impl SecureStore for FileSecrets {
    fn get(&self, key: String) -> Result<Option<String>, SecureStoreError> {
        let _guard = self.1.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.load().get(&key).cloned())
    }
    fn set(&self, key: String, value: String) -> Result<(), SecureStoreError> {
        let _guard = self.1.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = self.load();
        map.insert(key, value);
        self.store(&map)
    }
    fn delete(&self, key: String) -> Result<(), SecureStoreError> {
        let _guard = self.1.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = self.load();
        map.remove(&key);
        self.store(&map)
    }
}

struct Device {
    dir: TempDir,
    t: Arc<Tandem>,
    batch: u32,
    page: u32,
}

fn block<F: std::future::Future>(future: F) -> F::Output {
    tandem::runtime::runtime().block_on(future)
}

/// Opens the engine of the device directory `dir` (tokens in `dir/../<name>.secrets.json`).
pub fn open_engine(dir: &Path, url: &str, batch: u32, page: u32) -> Result<Arc<Tandem>, String> {
    let mut config = TandemConfig::with_server(dir.to_string_lossy(), SCHEMA, url);
    config.sync.realtime = false;
    config.sync.push_batch_size = batch;
    config.sync.pull_page_size = page;
    let secrets = dir.with_extension("secrets.json");
    config.secure_store =
        Some(Arc::new(FileSecrets(secrets, Mutex::new(()))) as Arc<dyn SecureStore>);
    Tandem::open(config).map_err(|e| format!("open: {e}"))
}

fn open_device(url: &str, batch: u32, page: u32) -> Result<Device, String> {
    let dir = TempDir::new().map_err(|e| e.to_string())?;
    let data = dir.path().join("device");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let t = open_engine(&data, url, batch, page)?;
    Ok(Device {
        dir,
        t,
        batch,
        page,
    })
}

/// The crash points a killed sync may stop at (`TANDEM_CRASH_POINT`).
pub const CRASH_POINTS: [&str; 6] = [
    "push_answered",
    "push_applied",
    "pull_fetched",
    "pull_between_pages",
    "repull_started",
    "repull_before_sweep",
];

/// The `crash-sync` child: one sync of the device in `dir`; the armed crash point (if the run
/// reaches it) aborts the process.
pub fn crash_sync(dir: &Path, url: &str, batch: u32, page: u32) -> Result<(), String> {
    let t = open_engine(dir, url, batch, page)?;
    let result = block(t.sync_now()).map(|_| ()).map_err(|e| e.to_string());
    t.shutdown();
    result
}

/// Kills a sync of `device` in a child process at `point`, then opens the engine again.
fn kill_sync(device: &mut Device, binary: &Path, url: &str, point: &str) -> Result<bool, String> {
    let data = device.dir.path().join("device");
    device.t.shutdown();
    let status = std::process::Command::new(binary)
        .arg("crash-sync")
        .arg("--dir")
        .arg(&data)
        .args(["--url", url])
        .args(["--batch", &device.batch.to_string()])
        .args(["--page", &device.page.to_string()])
        .env("TANDEM_CRASH_POINT", point)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("spawning crash-sync: {e}"))?;
    device.t = open_engine(&data, url, device.batch, device.page)?;
    Ok(!status.success())
}

type Snapshot = BTreeMap<(String, String), Value>;

fn snapshot(t: &Tandem) -> Result<Snapshot, String> {
    let mut all = BTreeMap::new();
    for collection in ["plans", "plan_days"] {
        let records = t
            .query(collection.into(), Query::default())
            .map_err(|e| format!("query {collection}: {e}"))?;
        for record in records {
            let doc: Value = serde_json::from_str(&record.document)
                .map_err(|e| format!("document of {}: {e}", record.id))?;
            all.insert((collection.to_string(), record.id.clone()), doc);
        }
    }
    Ok(all)
}

fn integrity(dir: &Path) -> Result<(), String> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let entries = std::fs::read_dir(&path).map_err(|e| e.to_string())?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "db") {
                let conn = rusqlite::Connection::open_with_flags(
                    &p,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .map_err(|e| format!("{}: {e}", p.display()))?;
                let ok: String = conn
                    .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                if ok != "ok" {
                    return Err(format!("integrity_check of {}: {ok}", p.display()));
                }
            }
        }
    }
    Ok(())
}

/// An event that may supersede earlier writes of a record: (op index, "delete" or "resolve",
/// the record).
type Supersede = (usize, &'static str, Option<(String, String)>);

/// Server flags that purge every tombstone within a second of the delete.
pub const PURGING: [&str; 4] = [
    "--tombstone-retention-days",
    "0",
    "--purge-interval-secs",
    "1",
];

/// Whether the server of `seed`'s run purges tombstones at once.
pub fn is_purging(seed: u64) -> bool {
    seed.is_multiple_of(3)
}

/// Runs `ops` of `seed` and checks the oracle. `Err` says what diverged.
pub fn run(seed: u64, ops: &[Op], setup: &Setup) -> Result<Stats, String> {
    let mut stats = Stats::default();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x05ee_d0ff_a017);
    // A third of the seeds run a server that purges every tombstone each second, so devices
    // that were away find their cursor expired and pull everything again.
    let purging = is_purging(seed);
    let flags: &[&str] = if purging { &PURGING } else { &[] };
    let mut server = match &setup.db {
        None => TestServer::start_with(flags),
        Some(db) => TestServer::start_on(db, flags),
    };
    let proxy = Proxy::start(server.url());
    let batch = rng.random_range(1..=4);
    let page = rng.random_range(1..=4);
    let mut devices: Vec<Device> = (0..DEVICES)
        .map(|_| open_device(proxy.url(), batch, page))
        .collect::<Result<_, _>>()?;
    let (a, b) = (email(), email());
    block(devices[0].t.sign_up(a.clone(), PASSWORD.into())).map_err(|e| format!("sign up: {e}"))?;
    for d in &devices[1..DEVICES - 1] {
        block(d.t.sign_in(a.clone(), PASSWORD.into())).map_err(|e| format!("sign in: {e}"))?;
    }
    block(devices[DEVICES - 1].t.sign_up(b.clone(), PASSWORD.into()))
        .map_err(|e| format!("sign up: {e}"))?;

    proxy.set_chaos(Some(Chaos::new(seed, setup.fault_rate)));
    // Per account: (collection, id) → index of the last locally successful write, and the
    // indexes of the events that may supersede it.
    let mut written: HashMap<(String, String), usize> = HashMap::new();
    let mut supersede: Vec<Supersede> = Vec::new();
    let trace = Trace::from_env();
    for (i, op) in ops.iter().enumerate() {
        stats.ops += 1;
        trace.op(i, op, &devices);
        match op {
            Op::PutPlan { dev, plan, name } => {
                let id = plan_id(*dev, *plan);
                if devices[*dev]
                    .t
                    .put(
                        "plans".into(),
                        Some(id.clone()),
                        json!({ "name": name }).to_string(),
                    )
                    .is_ok()
                {
                    written.insert(("plans".into(), id), i);
                }
            }
            Op::PutDay { dev, day, index } => {
                let id = day_id(*dev, *day);
                let doc = json!({"planId": plan_id(*dev, plan_of(*day)), "dayIndex": index});
                if devices[*dev]
                    .t
                    .put("plan_days".into(), Some(id.clone()), doc.to_string())
                    .is_ok()
                {
                    written.insert(("plan_days".into(), id), i);
                }
            }
            Op::Patch {
                dev,
                plan,
                field,
                value,
            } => {
                let id = plan_id(*dev, *plan);
                let patch = json!({ *field: value });
                if devices[*dev]
                    .t
                    .patch("plans".into(), id.clone(), patch.to_string())
                    .is_ok()
                {
                    written.insert(("plans".into(), id), i);
                }
            }
            Op::PatchDay { dev, day, title } => {
                let id = day_id(*dev, *day);
                if devices[*dev]
                    .t
                    .patch(
                        "plan_days".into(),
                        id.clone(),
                        json!({ "title": title }).to_string(),
                    )
                    .is_ok()
                {
                    written.insert(("plan_days".into(), id), i);
                }
            }
            Op::Batch {
                dev,
                day,
                index,
                name,
            } => {
                let plan = plan_id(*dev, plan_of(*day));
                let id = day_id(*dev, *day);
                let ops = vec![
                    tandem::WriteOp::Put {
                        collection: "plans".into(),
                        id: Some(plan.clone()),
                        json: json!({ "name": name }).to_string(),
                        space_id: None,
                    },
                    tandem::WriteOp::Put {
                        collection: "plan_days".into(),
                        id: Some(id.clone()),
                        json: json!({"planId": plan, "dayIndex": index}).to_string(),
                        space_id: None,
                    },
                ];
                if devices[*dev].t.write(ops).is_ok() {
                    written.insert(("plans".into(), plan), i);
                    written.insert(("plan_days".into(), id), i);
                }
            }
            Op::DeletePlan { dev, plan } => {
                let id = plan_id(*dev, *plan);
                let _ = devices[*dev].t.delete("plans".into(), id.clone());
                // Attempted deletes count: another device's delete may reach the server.
                supersede.push((i, "delete", Some(("plans".into(), id))));
            }
            Op::DeleteDay { dev, day } => {
                let id = day_id(*dev, *day);
                let _ = devices[*dev].t.delete("plan_days".into(), id.clone());
                supersede.push((i, "delete", Some(("plan_days".into(), id))));
            }
            Op::Sync { dev } => {
                stats.syncs += 1;
                let result = block(devices[*dev].t.sync_now());
                trace.sync(*dev, &result);
                if let Ok(report) = result {
                    count(&mut stats, &report);
                }
            }
            Op::Resolve { dev, kind } => {
                let t = &devices[*dev].t;
                let mut tried = BTreeSet::new();
                // One at a time: settling a parent's conflict can settle its children's too.
                while let Some(c) = next_open_conflict(t, &mut tried)? {
                    let resolution = match kind {
                        ResolveKind::KeepMine => Resolution::KeepMine,
                        ResolveKind::KeepServer => Resolution::KeepServer,
                        ResolveKind::Merged => {
                            match merged(&c.local_document, &c.server_document) {
                                Some(json) => Resolution::Merged { json },
                                None => Resolution::KeepServer,
                            }
                        }
                    };
                    match t.resolve(c.collection.clone(), c.id.clone(), resolution) {
                        Ok(_) => stats.conflicts_resolved += 1,
                        Err(e) => {
                            return Err(format!("op {i}: resolve {}/{}: {e}", c.collection, c.id))
                        }
                    }
                    if *kind != ResolveKind::KeepMine {
                        supersede.push((i, "resolve", Some((c.collection, c.id))));
                    } else if c.local_document.is_none() {
                        // Keeping a local delete is a delete.
                        supersede.push((i, "delete", Some((c.collection, c.id))));
                    }
                }
            }
            Op::KillSync { dev, point } => {
                stats.syncs += 1;
                match &setup.crash_child {
                    Some(binary) => {
                        let url = proxy.url().to_string();
                        if kill_sync(&mut devices[*dev], binary, &url, CRASH_POINTS[*point])? {
                            stats.kills += 1;
                        }
                    }
                    None => {
                        if let Ok(report) = block(devices[*dev].t.sync_now()) {
                            count(&mut stats, &report);
                        }
                    }
                }
            }
            Op::RestartServer => {
                stats.restarts += 1;
                server.restart();
            }
        }
    }

    trace.op(ops.len(), &"(the final rounds)", &devices);
    // Faults stop; every device syncs (resolving what is open as its own) until nothing moves.
    proxy.set_chaos(None);
    let mut quiet = false;
    let mut last_error = String::new();
    for _round in 0..12 {
        let mut moved = false;
        for (n, d) in devices.iter().enumerate() {
            let mut tried = BTreeSet::new();
            while let Some(c) = next_open_conflict(&d.t, &mut tried)? {
                d.t.resolve(c.collection.clone(), c.id.clone(), Resolution::KeepMine)
                    .map_err(|e| format!("final resolve on device {n}: {e}"))?;
                stats.conflicts_resolved += 1;
                if c.local_document.is_none() {
                    supersede.push((ops.len(), "delete", Some((c.collection, c.id))));
                }
                moved = true;
            }
            // A child the server refused for a parent deleted there is a dead letter the app
            // settles; here it takes the server's word (the write stays counted: only a delete
            // of its parent in the run excuses its absence).
            for dead in d.t.rejected().map_err(|e| format!("rejected: {e}"))? {
                if dead.reason != tandem::ValidationReason::InvalidParent {
                    continue; // the kit writes only valid documents: the oracle must see this
                }
                d.t.discard_rejected(dead.op_id.clone())
                    .map_err(|e| format!("discarding on device {n}: {e}"))?;
                stats.dead_letters_discarded += 1;
                moved = true;
            }
            // A sync on a connection the restarted server closed fails like any network
            // error; the device syncs again next round.
            let result = block(d.t.sync_now());
            trace.sync(n, &result);
            trace.unsettled(n, &d.t);
            match result {
                Ok(report) => {
                    count(&mut stats, &report);
                    if report.pushed + report.pulled + report.conflicts > 0 {
                        moved = true;
                    }
                }
                Err(e) => {
                    last_error = format!("final sync of device {n}: {e}");
                    moved = true;
                }
            }
        }
        if !moved {
            quiet = true;
            break;
        }
    }
    if !quiet {
        return Err(format!(
            "the devices did not settle in 12 rounds (last error: {last_error})"
        ));
    }
    stats.faults = proxy.fault_counts();

    // Fresh devices of both accounts.
    let fresh_a = open_device(proxy.url(), 100, 100)?;
    block(fresh_a.t.sign_in(a, PASSWORD.into())).map_err(|e| format!("fresh sign in: {e}"))?;
    settle(&fresh_a.t)?;
    let fresh_b = open_device(proxy.url(), 100, 100)?;
    block(fresh_b.t.sign_in(b, PASSWORD.into())).map_err(|e| format!("fresh sign in: {e}"))?;
    settle(&fresh_b.t)?;
    let truth_a = snapshot(&fresh_a.t)?;
    let truth_b = snapshot(&fresh_b.t)?;

    for (n, d) in devices.iter().enumerate() {
        let truth = if n == DEVICES - 1 { &truth_b } else { &truth_a };
        let mine = snapshot(&d.t)?;
        if &mine != truth {
            return Err(format!(
                "device {n} differs from a fresh device{}: {}",
                if purging { " (purging server)" } else { "" },
                diff(&mine, truth, &d.t)
            ));
        }
        let open = d.t.conflicts().map_err(|e| e.to_string())?;
        if !open.is_empty() {
            return Err(format!("device {n} has {} open conflicts", open.len()));
        }
        let pending = d.t.pending_count().map_err(|e| e.to_string())?;
        if pending != 0 {
            return Err(format!("device {n} still has {pending} pending changes"));
        }
        orphans(n, &mine)?;
        integrity(d.dir.path()).map_err(|e| format!("device {n}: {e}"))?;
    }
    orphans(DEVICES, &truth_a)?;
    if let Some(key) = truth_b.keys().find(|(_, id)| id.starts_with("a-")) {
        return Err(format!("account B sees account A's {key:?}"));
    }
    if let Some(key) = truth_a.keys().find(|(_, id)| id.starts_with("b-")) {
        return Err(format!("account A sees account B's {key:?}"));
    }

    // Every locally successful write is reflected unless superseded.
    for ((collection, id), at) in &written {
        let truth = if id.starts_with("b-") {
            &truth_b
        } else {
            &truth_a
        };
        let parent = (collection == "plan_days").then(|| {
            let day: usize = id
                .rsplit('-')
                .next()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            (
                "plans".to_string(),
                format!("{}-plan-{}", &id[..1], plan_of(day)),
            )
        });
        let superseded = supersede.iter().any(|(i, what, key)| {
            let Some(key) = key else { return false };
            let on_self = key.0 == *collection && key.1 == *id;
            let on_parent = parent.as_ref() == Some(key);
            // A parent's delete anywhere in the run may cascade over a later child write
            // (the child write is then refused as an orphan or hidden: the documented rule).
            (on_self && i > at) || (on_parent && *what == "delete")
        });
        if !superseded && !truth.contains_key(&(collection.clone(), id.clone())) {
            return Err(format!(
                "{collection}/{id}, written by op {at}, is missing and nothing superseded it"
            ));
        }
    }
    Ok(stats)
}

/// `TANDEM_KIT_TRACE=<collection>/<id>`: prints, before every op, what each device holds of that
/// record, and every sync's outcome, to standard error (for reading a failing seed).
struct Trace(Option<(String, String)>);

impl Trace {
    fn from_env() -> Trace {
        let wanted = std::env::var("TANDEM_KIT_TRACE").ok();
        Trace(wanted.and_then(|w| {
            let (collection, id) = w.split_once('/')?;
            Some((collection.to_string(), id.to_string()))
        }))
    }

    fn op(&self, i: usize, op: &dyn fmt::Display, devices: &[Device]) {
        let Some((collection, id)) = &self.0 else {
            return;
        };
        let held: Vec<String> = devices
            .iter()
            .enumerate()
            .map(|(n, d)| format!("d{n}: {}", local_account(&d.t, collection, id)))
            .collect();
        eprintln!("{i}: {op}\n    {}", held.join("\n    "));
    }

    fn sync(&self, dev: usize, result: &Result<SyncReport, tandem::TandemError>) {
        if self.0.is_none() {
            return;
        }
        match result {
            Ok(r) => eprintln!(
                "    sync d{dev}: pushed {} pulled {} conflicts {} full_repull {}",
                r.pushed, r.pulled, r.conflicts, r.full_repull
            ),
            Err(e) => eprintln!("    sync d{dev}: {e}"),
        }
    }
    /// In the final rounds (which sync every device until nothing moves): everything a device
    /// still has to settle after its sync, every record of it, so a round that never ends shows
    /// what goes round.
    fn unsettled(&self, dev: usize, t: &Tandem) {
        if self.0.is_none() {
            return;
        }
        for e in t.outbox().unwrap_or_default() {
            eprintln!(
                "      d{dev} outbox: {}/{} {:?} {:?} base {:?}, attempts {}",
                e.collection, e.id, e.kind, e.state, e.base_version, e.attempts
            );
        }
        for r in t.rejected().unwrap_or_default() {
            eprintln!(
                "      d{dev} dead letter: {}/{} {:?}",
                r.collection, r.id, r.reason
            );
        }
        for c in t.conflicts().unwrap_or_default() {
            eprintln!(
                "      d{dev} conflict: {}/{} {:?}",
                c.collection, c.id, c.reason
            );
        }
    }
}

/// The first conflict still open on `t` that was not tried yet (marked tried now).
fn next_open_conflict(
    t: &Tandem,
    tried: &mut BTreeSet<(String, String)>,
) -> Result<Option<tandem::Conflict>, String> {
    let open = t.conflicts().map_err(|e| format!("conflicts: {e}"))?;
    Ok(open
        .into_iter()
        .find(|c| tried.insert((c.collection.clone(), c.id.clone()))))
}

/// Syncs a fresh device, retrying network errors a few times.
fn settle(t: &Tandem) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..4 {
        match block(t.sync_now()) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("fresh sync: {last}"))
}

fn count(stats: &mut Stats, report: &SyncReport) {
    stats.conflicts_made += report.conflicts;
    if report.full_repull {
        stats.full_repulls += 1;
    }
}

/// A merge of two documents: the server's with the local fields on top.
fn merged(local: &Option<String>, server: &Option<String>) -> Option<String> {
    let local: Value = serde_json::from_str(local.as_deref()?).ok()?;
    let mut server: Value = serde_json::from_str(server.as_deref()?).ok()?;
    let (Value::Object(l), Value::Object(s)) = (local, &mut server) else {
        return None;
    };
    for (k, v) in l {
        s.insert(k, v);
    }
    Some(server.to_string())
}

fn orphans(n: usize, snapshot: &Snapshot) -> Result<(), String> {
    for ((collection, id), doc) in snapshot {
        if collection != "plan_days" {
            continue;
        }
        let parent = doc.get("planId").and_then(Value::as_str).unwrap_or("");
        if !snapshot.contains_key(&("plans".to_string(), parent.to_string())) {
            return Err(format!(
                "device {n} shows day {id} without its plan {parent}"
            ));
        }
    }
    Ok(())
}

/// The records where `mine` and `truth` differ, each with what device `t` holds of it.
fn diff(mine: &Snapshot, truth: &Snapshot, t: &Tandem) -> String {
    let keys: BTreeSet<_> = mine.keys().chain(truth.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let what = match (mine.get(key), truth.get(key)) {
            (Some(m), Some(f)) if m != f => format!("here {m}, fresh {f}"),
            (Some(_), None) => "only here".to_string(),
            (None, Some(_)) => "only on the fresh device".to_string(),
            _ => continue,
        };
        out.push(format!(
            "{key:?}: {what} [{}]",
            local_account(t, &key.0, &key.1)
        ));
    }
    out.join("; ")
}

/// The device's row and outbox entries of one record, for a failure report.
fn local_account(t: &Tandem, collection: &str, id: &str) -> String {
    let row = match t.get(collection.into(), id.into()) {
        Ok(Some(r)) => format!("{:?} at version {}", r.state, r.version),
        Ok(None) => "no live row".to_string(),
        Err(e) => format!("get failed: {e}"),
    };
    let entries: Vec<String> = t
        .outbox()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.collection == collection && e.id == id)
        .map(|e| format!("{:?} {:?} base {:?}", e.kind, e.state, e.base_version))
        .collect();
    format!("{row}; outbox: [{}]", entries.join(", "))
}

/// Delta debugging: the shortest sublist of `ops` (within `budget` runs) that still fails.
pub fn shrink(seed: u64, ops: &[Op], setup: &Setup, budget: usize) -> Vec<Op> {
    let mut current = ops.to_vec();
    let mut runs = 0;
    let mut chunks = 2;
    while current.len() > 1 && runs < budget {
        let size = current.len().div_ceil(chunks);
        let mut reduced = false;
        for start in (0..current.len()).step_by(size.max(1)) {
            if runs >= budget {
                break;
            }
            let mut candidate = current.clone();
            candidate.drain(start..(start + size).min(current.len()));
            runs += 1;
            if run(seed, &candidate, setup).is_err() {
                current = candidate;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if size <= 1 {
                break;
            }
            chunks = (chunks * 2).min(current.len());
        }
    }
    current
}

/// Runs `seed` with `count` ops; on a failure, shrinks and describes it.
pub fn check_seed(seed: u64, count: usize, setup: &Setup, budget: usize) -> Result<Stats, String> {
    let ops = generate(seed, count);
    match run(seed, &ops, setup) {
        Ok(stats) => Ok(stats),
        Err(first) => {
            let shortest = shrink(seed, &ops, setup, budget);
            let again = run(seed, &shortest, setup)
                .err()
                .unwrap_or_else(|| first.clone());
            let listing: Vec<String> = shortest
                .iter()
                .enumerate()
                .map(|(i, op)| format!("  {i}: {op}"))
                .collect();
            Err(format!(
                "seed {seed} failed: {first}\nshortest reproduction ({} of {count} ops): {again}\n{}",
                shortest.len(),
                listing.join("\n")
            ))
        }
    }
}
