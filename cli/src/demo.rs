//! `tandem demo`: a phone and a tablet of one account sync through a server started in this
//! process (a temporary SQLite database, a free port), through a scripted story: offline edits
//! that merge, a conflict settled by hand, a cascaded delete and a realtime update. Each step
//! says what each device sees and how long it took, and checks what it shows: a demo that
//! stops working fails with `demo_failed`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tandem::{
    Query, QueryObserver, Record, Resolution, SyncConfig, SyncFailure, SyncReport, TandemError,
    WriteOp,
};
use tandem_server::{Config, ServerHandle};
use tokio::runtime::Runtime;
use uuid::Uuid;

use crate::device::{read_schema, Device};
use crate::error::CliError;
use crate::render;

/// Where `demo --keep` listens when it can: the sample apps' default server.
const SAMPLE_APPS_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 8787);

/// How long the realtime step waits for the tablet before calling the demo broken.
const REALTIME_TIMEOUT: Duration = Duration::from_secs(15);

pub fn run(rt: &Runtime, keep: bool, json: bool) -> Result<(), CliError> {
    let dir = tempfile::Builder::new().prefix("tandem-demo-").tempdir()?;
    let db = dir.path().join("server.db");
    let mut story = Story::new(json);
    story.say("Tandem demo: a phone and a tablet of one account sync through a server started in this process.\n");

    let step = story.begin("Start a server");
    let server = rt.block_on(start_server(&db, first_addr(keep)))?;
    let (url, addr) = (server.url(), server.addr);
    story.end(
        step,
        vec![format!("listening on {url}, SQLite at {}", db.display())],
    );

    let step = story.begin("Sign the phone up and the tablet in to the same account");
    let email = format!(
        "demo-{}@example.com",
        &Uuid::now_v7().simple().to_string()[20..]
    );
    // Random and never shown: the account lives only as long as this demo's server.
    let password = Uuid::now_v7().simple().to_string();
    let phone = DemoDevice::open(dir.path(), "phone", &url)?;
    let tablet = DemoDevice::open(dir.path(), "tablet", &url)?;
    rt.block_on(phone.tandem().sign_up(email.clone(), password.clone()))?;
    rt.block_on(tablet.tandem().sign_in(email.clone(), password))?;
    story.end(
        step,
        vec![
            format!("phone:  signed up as {email}"),
            format!("tablet: signed in as {email}"),
        ],
    );

    let step = story.begin("The phone creates a plan with two days; both sync");
    let plan = Ids::new();
    phone.tandem().write(plan.ops())?;
    let pushed = phone.sync(rt)?;
    let pulled = tablet.sync(rt)?;
    let (phone_view, tablet_view) = (phone.view(&plan)?, tablet.view(&plan)?);
    expect(
        phone_view == tablet_view,
        "the tablet to show the phone's plan",
    )?;
    story.end(
        step,
        vec![
            format!(
                "phone pushed {} changes; tablet pulled {}",
                pushed.pushed, pulled.pulled
            ),
            format!("phone:  {phone_view}"),
            format!("tablet: {tablet_view}"),
        ],
    );

    let step = story.begin("The server goes down; both devices keep editing offline");
    rt.block_on(server.shutdown())
        .map_err(|e| CliError::new("server", format!("the demo server failed: {e:#}")))?;
    phone.patch("plans", &plan.plan, json!({ "name": "Push day (heavy)" }))?;
    tablet.patch("plans", &plan.plan, json!({ "notes": "Warm up first" }))?;
    let offline = rt.block_on(phone.tandem().sync_now());
    expect(
        matches!(
            offline,
            Err(TandemError::Sync {
                kind: SyncFailure::Offline,
                ..
            })
        ),
        "the phone's sync to fail as offline",
    )?;
    story.end(
        step,
        vec![
            "phone renames the plan; tablet adds notes to it".into(),
            format!(
                "phone tries to sync: offline; {} change waits in its outbox, nothing is lost",
                phone.tandem().pending_count()?
            ),
        ],
    );

    let step = story.begin("The server is back; edits to different fields merge");
    let server = rt.block_on(start_server(&db, addr))?;
    phone.sync(rt)?;
    tablet.sync(rt)?;
    phone.sync(rt)?;
    let (phone_view, tablet_view) = (phone.view(&plan)?, tablet.view(&plan)?);
    expect(
        phone_view == tablet_view
            && phone_view.contains("(heavy)")
            && phone_view.contains("Warm up"),
        "both devices to show the new name and the notes",
    )?;
    story.end(
        step,
        vec![
            format!("phone:  {phone_view}"),
            format!("tablet: {tablet_view}"),
        ],
    );

    let step = story.begin("Both retitle day 1: a conflict, settled on the tablet");
    phone.patch(
        "plan_days",
        &plan.days[0],
        json!({ "title": "Chest & triceps" }),
    )?;
    tablet.patch(
        "plan_days",
        &plan.days[0],
        json!({ "title": "Chest, flat bench" }),
    )?;
    phone.sync(rt)?;
    let report = tablet.sync(rt)?;
    let conflicts = tablet.tandem().conflicts()?;
    expect(
        report.conflicts == 1 && conflicts.len() == 1,
        "the tablet's sync to find one conflict",
    )?;
    let mut lines = vec![
        "phone syncs first; the tablet's sync finds a conflict:".to_string(),
        render::conflict_lines(&conflicts[0]),
    ];
    tablet.tandem().resolve(
        "plan_days".into(),
        plan.days[0].clone(),
        Resolution::KeepMine,
    )?;
    tablet.sync(rt)?;
    phone.sync(rt)?;
    let (phone_view, tablet_view) = (phone.view(&plan)?, tablet.view(&plan)?);
    expect(
        phone_view == tablet_view && phone_view.contains("Chest, flat bench"),
        "both devices to show the tablet's title",
    )?;
    lines.extend([
        "tablet keeps its title (keep-mine); both sync".to_string(),
        format!("phone:  {phone_view}"),
        format!("tablet: {tablet_view}"),
    ]);
    story.end(step, lines);

    let step = story.begin("The phone deletes the plan; its days go with it");
    phone.tandem().delete("plans".into(), plan.plan.clone())?;
    let phone_days = phone.days_of(&plan)?;
    phone.sync(rt)?;
    let before = tablet.days_of(&plan)?;
    tablet.sync(rt)?;
    let (phone_view, tablet_view) = (phone.view(&plan)?, tablet.view(&plan)?);
    expect(
        phone_days == 0 && tablet.days_of(&plan)? == 0 && tablet_view == "no plan",
        "the plan and its days to be gone on both devices",
    )?;
    story.end(
        step,
        vec![
            format!("phone:  {phone_view} ({phone_days} days left: they went with it)"),
            format!("tablet: had {before} days; after its sync: {tablet_view}"),
        ],
    );

    let step = story.begin("Realtime: background sync on both; the phone adds an exercise");
    let latency = realtime(&phone, &tablet)?;
    let pending = phone.tandem().pending_count()? + tablet.tandem().pending_count()?;
    expect(pending == 0, "no change left waiting on either device")?;
    story.end(
        step,
        vec![format!(
            "the tablet's list showed it {} ms after the phone wrote it \
             (the write starts the phone's push at once; the server pokes the tablet)",
            latency.as_millis(),
        )],
    );
    drop((phone, tablet));

    if keep {
        let step = story.begin("Seed the public exercise catalog for the sample apps");
        let summary = rt.block_on(seed_catalog(&db, addr))?;
        story.end(
            step,
            vec![format!(
                "{} exercises in catalog_exercises (as `tandem-server import catalog_exercises schemas/sample-catalog.jsonl` does)",
                summary.created + summary.updated + summary.unchanged
            )],
        );
    }

    story.finish(&url, &email, keep);
    if keep {
        rt.block_on(crate::interrupted());
    }
    rt.block_on(server.shutdown())
        .map_err(|e| CliError::new("server", format!("the demo server failed: {e:#}")))?;
    Ok(())
}

fn first_addr(keep: bool) -> SocketAddr {
    let preferred = SocketAddr::from(SAMPLE_APPS_ADDR);
    if keep && std::net::TcpListener::bind(preferred).is_ok() {
        preferred
    } else {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }
}

async fn start_server(db: &Path, addr: SocketAddr) -> Result<ServerHandle, CliError> {
    let config = Config {
        addr,
        db: format!("sqlite://{}", db.display()),
        ..Config::default()
    };
    tandem_server::run(config)
        .await
        .map_err(|e| CliError::new("server", format!("cannot start the demo server: {e:#}")))
}

/// The sample apps' public exercise catalog, the file `tandem-server import` takes.
const SAMPLE_CATALOG: &str = include_str!("../../schemas/sample-catalog.jsonl");

/// Imports [`SAMPLE_CATALOG`] into the running demo server's database, in this process, through
/// the server's own import (validated whole, then written under the `public` stream's lock; the
/// server's clients see it at their next pull).
async fn seed_catalog(
    db: &Path,
    addr: SocketAddr,
) -> Result<tandem_server::import::ImportSummary, CliError> {
    let file = db.with_file_name("sample-catalog.jsonl");
    std::fs::write(&file, SAMPLE_CATALOG)?;
    let config = Config {
        addr,
        db: format!("sqlite://{}", db.display()),
        ..Config::default()
    };
    tandem_server::import::run(&config, "catalog_exercises", &file, false)
        .await
        .map_err(|e| CliError::new("server", format!("cannot seed the catalog: {e:#}")))
}

fn expect(holds: bool, what: &str) -> Result<(), CliError> {
    if holds {
        Ok(())
    } else {
        Err(CliError::new(
            "demo_failed",
            format!("the demo expected {what}"),
        ))
    }
}

/// The ids of the demo's plan, its two days and their exercises.
struct Ids {
    plan: String,
    days: [String; 2],
    exercises: [String; 3],
}

impl Ids {
    fn new() -> Self {
        let id = || Uuid::now_v7().to_string();
        Self {
            plan: id(),
            days: [id(), id()],
            exercises: [id(), id(), id()],
        }
    }

    /// One atomic write: three exercises, the plan, and its two days.
    fn ops(&self) -> Vec<WriteOp> {
        let put = |collection: &str, id: &str, doc: Value| WriteOp::Put {
            collection: collection.into(),
            id: Some(id.into()),
            json: doc.to_string(),
            space_id: None,
        };
        let [bench, press, dips] = &self.exercises;
        vec![
            put(
                "exercises",
                bench,
                json!({ "name": "Bench press", "category": "chest" }),
            ),
            put(
                "exercises",
                press,
                json!({ "name": "Overhead press", "category": "shoulders" }),
            ),
            put(
                "exercises",
                dips,
                json!({ "name": "Dips", "category": "triceps" }),
            ),
            put(
                "plans",
                &self.plan,
                json!({ "name": "Push day", "archived": false }),
            ),
            put(
                "plan_days",
                &self.days[0],
                json!({ "planId": self.plan, "dayIndex": 1, "title": "Chest", "exerciseIds": [bench, dips] }),
            ),
            put(
                "plan_days",
                &self.days[1],
                json!({ "planId": self.plan, "dayIndex": 2, "title": "Shoulders", "exerciseIds": [press] }),
            ),
        ]
    }
}

/// One of the demo's devices.
struct DemoDevice {
    device: Device,
}

impl DemoDevice {
    fn open(dir: &Path, name: &str, url: &str) -> Result<Self, CliError> {
        let device = Device::open_at(
            dir.join(name),
            read_schema(None)?,
            url.to_string(),
            SyncConfig::default(),
            tandem::Encryption::Off,
        )?;
        Ok(Self { device })
    }

    fn tandem(&self) -> &tandem::Tandem {
        &self.device.tandem
    }

    fn sync(&self, rt: &Runtime) -> Result<SyncReport, CliError> {
        Ok(rt.block_on(self.tandem().sync_now())?)
    }

    fn patch(&self, collection: &str, id: &str, patch: Value) -> Result<(), CliError> {
        self.tandem()
            .patch(collection.into(), id.into(), patch.to_string())?;
        Ok(())
    }

    fn days_of(&self, ids: &Ids) -> Result<u64, CliError> {
        Ok(self.tandem().count("plan_days".into(), days_query(ids))?)
    }

    /// `"Push day" (notes: …) · day 1 "Chest" (2 exercises) · day 2 …`, or `no plan`.
    fn view(&self, ids: &Ids) -> Result<String, CliError> {
        let Some(plan) = self.tandem().get("plans".into(), ids.plan.clone())? else {
            return Ok("no plan".into());
        };
        let plan = document(&plan);
        let mut view = plan["name"].to_string();
        if let Some(notes) = plan["notes"].as_str() {
            view += &format!(" (notes: {notes})");
        }
        for day in self.tandem().query("plan_days".into(), days_query(ids))? {
            let day = document(&day);
            let exercises = day["exerciseIds"].as_array().map_or(0, Vec::len);
            let plural = if exercises == 1 { "" } else { "s" };
            view += &format!(
                " · day {} {} ({exercises} exercise{plural})",
                day["dayIndex"], day["title"]
            );
        }
        Ok(view)
    }
}

fn document(record: &Record) -> Value {
    serde_json::from_str(&record.document).unwrap_or(Value::Null)
}

fn days_query(ids: &Ids) -> Query {
    Query {
        filters: vec![tandem::Filter {
            field: "planId".into(),
            op: tandem::FilterOp::Eq,
            value_json: json!(ids.plan).to_string(),
        }],
        order_by: vec![tandem::OrderBy {
            field: "dayIndex".into(),
            descending: false,
        }],
        limit: None,
        offset: None,
        space_id: None,
    }
}

/// Starts background sync on both, waits for the tablet's event stream, then measures how long
/// an exercise the phone writes takes to reach the tablet's observed list.
fn realtime(phone: &DemoDevice, tablet: &DemoDevice) -> Result<Duration, CliError> {
    phone.tandem().start_sync()?;
    tablet.tandem().start_sync()?;
    let connected_by = Instant::now() + REALTIME_TIMEOUT;
    while !tablet.tandem().sync_status()?.realtime {
        expect(
            Instant::now() < connected_by,
            "the tablet to connect to the server's event stream",
        )?;
        std::thread::sleep(Duration::from_millis(5));
    }
    let (tx, lists) = channel();
    let _observation = tablet.tandem().observe(
        "exercises".into(),
        Query::default(),
        Arc::new(IdsSeen(Mutex::new(tx))),
    )?;
    let id = Uuid::now_v7().to_string();
    let written = Instant::now();
    phone.tandem().put(
        "exercises".into(),
        Some(id.clone()),
        json!({ "name": "Deadlift", "category": "legs" }).to_string(),
    )?;
    loop {
        let left = REALTIME_TIMEOUT.saturating_sub(written.elapsed());
        let ids = lists.recv_timeout(left).map_err(|_| {
            CliError::new(
                "demo_failed",
                "the demo expected the tablet to see the phone's exercise within 15 s",
            )
        })?;
        if ids.contains(&id) {
            let latency = written.elapsed();
            // The tablet's echo check and the phone's push finish in the background; wait for
            // both to settle so the summary's counts are final.
            settle(phone)?;
            settle(tablet)?;
            phone.tandem().stop_sync()?;
            tablet.tandem().stop_sync()?;
            return Ok(latency);
        }
    }
}

/// Waits (briefly) until the device has nothing left to push.
fn settle(device: &DemoDevice) -> Result<(), CliError> {
    let by = Instant::now() + REALTIME_TIMEOUT;
    while device.tandem().pending_count()? > 0 && Instant::now() < by {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Sends the ids of each delivered list.
struct IdsSeen(Mutex<Sender<Vec<String>>>);

impl QueryObserver for IdsSeen {
    fn on_results(&self, records: Vec<Record>) {
        let ids = records.into_iter().map(|r| r.id).collect();
        let _ = self.0.lock().unwrap_or_else(|e| e.into_inner()).send(ids);
    }
}

/// Narrates the steps (or collects them for `--json`) with their timings.
struct Story {
    json: bool,
    started: Instant,
    steps: Vec<Value>,
}

struct Step {
    title: &'static str,
    started: Instant,
}

impl Story {
    fn new(json: bool) -> Self {
        Self {
            json,
            started: Instant::now(),
            steps: Vec::new(),
        }
    }

    fn say(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    fn begin(&self, title: &'static str) -> Step {
        Step {
            title,
            started: Instant::now(),
        }
    }

    fn end(&mut self, step: Step, details: Vec<String>) {
        let ms = step.started.elapsed().as_millis() as u64;
        if !self.json {
            println!("{}. {} ({ms} ms)", self.steps.len() + 1, step.title);
            for line in &details {
                for part in line.lines() {
                    println!("     {part}");
                }
            }
        }
        self.steps
            .push(json!({ "title": step.title, "ms": ms, "details": details }));
    }

    fn finish(&self, url: &str, email: &str, keep: bool) {
        let total = self.started.elapsed().as_millis() as u64;
        if self.json {
            println!(
                "{}",
                json!({ "server": url, "account": email, "steps": self.steps, "totalMs": total, "kept": keep })
            );
            return;
        }
        println!("\nDone in {total} ms: every change reached both devices; nothing was lost.");
        if keep {
            let port = url.rsplit(':').next().unwrap_or("8787");
            println!(
                "\nThe server keeps running at {url} until Ctrl-C (its data goes with it).\n\
                 Sample apps: sign up in the app with the server set to {url} on the iOS simulator\n\
                 or http://10.0.2.2:{port} on the Android emulator.\n\
                 A second device in this terminal:\n  \
                 cargo run -p tandem-cli -- --server {url} --data-dir /tmp/tandem-device signup you@example.com"
            );
        }
    }
}
