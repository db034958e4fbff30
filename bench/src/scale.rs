//! The `scale` suite (issue 18): how sync, opening and queries cost as the store grows, and as
//! the outbox grows, against a real server on loopback (the sync suite's `__serve` child).
//!
//! Store series: for each size (10k, 100k, 1M records; a tenth `plans`, nine tenths `plan_days`
//! with nine days per plan), an account is seeded over HTTP (pushes of 500, the fast way into
//! the server's database), a bootstrap client in a child process (`__bootstrap`) pulls it all
//! into an empty device and reports its peak resident memory, and a device in this process pulls
//! it too and stays open. Then, rounds alternating between the sizes so that machine noise hits
//! them alike: a no-op sync, an indexed query, a pull of 1,000 changes (new records pushed over
//! HTTP by the same account), a push of 1,000 changes (updates of existing plans), and reopening
//! the engine.
//!
//! Outbox series: for each outbox size (1k, 100k), a device holding 10,000 synced records writes
//! that many new plans without syncing; then (again alternating) a one-record put, an indexed
//! query and reopening with that backlog, and finally the one run that pushes it all. A no-op
//! sync and a pull cannot be measured with a backlog: every run pushes the outbox first.
//!
//! `--chart PATH` renders the store series as an SVG (plotters, SVG backend only: no font or C
//! library is needed).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};
use tandem::{Filter, FilterOp, Query, Tandem, TandemConfig, WriteOp};
use tempfile::TempDir;

use crate::report::{Measurement, Target};
use crate::stats::{median, micros, millis, percentile, Lcg};
use crate::sync::{
    self, block, email, plan_json, plan_puts, BenchServer, Http, HttpUser, Secrets, SCHEMA,
};

struct Sizes {
    /// Records in the store, one series point each (ascending).
    stores: &'static [usize],
    /// Pending changes in the outbox, one series point each.
    outboxes: &'static [usize],
    /// Synced records under each outbox.
    outbox_store: usize,
    /// Changes pushed or pulled by one timed run.
    changes: usize,
    change_rounds: usize,
    noop_runs: usize,
    queries: usize,
    opens: usize,
    puts: usize,
}

const FULL: Sizes = Sizes {
    stores: &[10_000, 100_000, 1_000_000],
    outboxes: &[1_000, 100_000],
    outbox_store: 10_000,
    changes: 1_000,
    change_rounds: 3,
    noop_runs: 60,
    queries: 2_000,
    opens: 5,
    puts: 500,
};

const QUICK: Sizes = Sizes {
    stores: &[200, 1_000],
    outboxes: &[50, 300],
    outbox_store: 200,
    changes: 20,
    change_rounds: 1,
    noop_runs: 3,
    queries: 20,
    opens: 2,
    puts: 20,
};

const DAYS_PER_PLAN: usize = 9;
/// Mutations per seeding push (the server's default batch limit).
const SEED_BATCH: usize = 500;
/// `noop_sync` at the largest store over the smallest.
const NOOP_RATIO_TARGET: f64 = 1.2;
/// Peak resident memory of a client bootstrapping the largest store.
const BOOTSTRAP_RSS_TARGET_MB: f64 = 48.0;

/// `10k`, `1m`, or the plain number.
fn label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// Runs the suite. `only` keeps the series whose name (`store`, `outbox`) contains it; `sizes`
/// replaces the store sizes; `chart` is where the SVG goes.
pub fn run(
    quick: bool,
    only: Option<&str>,
    sizes_arg: Option<Vec<usize>>,
    chart: Option<&str>,
) -> anyhow::Result<Vec<Measurement>> {
    let sizes = if quick { &QUICK } else { &FULL };
    let stores: Vec<usize> = sizes_arg.unwrap_or_else(|| sizes.stores.to_vec());
    let wanted = |series: &str| only.is_none_or(|o| series.contains(o));
    let server = BenchServer::start();
    let http = Http::new(&server.url);
    let mut results = Vec::new();
    if wanted("store") && !stores.is_empty() {
        let figures = store_series(&server, &http, sizes, &stores)?;
        if let Some(path) = chart {
            render_chart(path, &figures).with_context(|| format!("rendering {path}"))?;
            eprintln!("scale: chart written to {path}");
        }
        results.extend(figures.measurements());
    }
    if wanted("outbox") {
        results.extend(outbox_series(&server, &http, sizes)?);
    }
    Ok(results)
}

/// A device in a directory of its own that can be closed and opened again (its session stays in
/// its in-memory secure store).
struct Store {
    dir: TempDir,
    secrets: Arc<Secrets>,
    url: String,
    engine: Option<Arc<Tandem>>,
}

impl Store {
    fn signed_in(url: &str, account: &str) -> Self {
        let mut store = Self {
            dir: TempDir::new().expect("temp dir"),
            secrets: Arc::new(Secrets::default()),
            url: url.to_string(),
            engine: None,
        };
        store.engine = Some(Tandem::open(store.config()).expect("open"));
        block(store.t().sign_in(account.into(), sync::PASSWORD.into())).expect("sign in");
        store
    }

    fn config(&self) -> TandemConfig {
        let mut config =
            TandemConfig::with_server(self.dir.path().to_string_lossy(), SCHEMA, &self.url);
        config.sync.realtime = false;
        config.sync.pull_page_size = 1000;
        config.secure_store = Some(Arc::clone(&self.secrets) as _);
        config
    }

    fn t(&self) -> &Tandem {
        self.engine.as_ref().expect("open")
    }

    /// Closes the engine and times opening it again (ms).
    fn reopen(&mut self) -> f64 {
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
        let started = Instant::now();
        let engine = Tandem::open(self.config()).expect("reopen");
        let spent = millis(started.elapsed());
        self.engine = Some(engine);
        spent
    }

    /// One `sync_now`, timed (ms).
    fn sync(&self) -> (f64, tandem::SyncReport) {
        let started = Instant::now();
        let report = block(self.t().sync_now()).expect("sync");
        (millis(started.elapsed()), report)
    }

    /// One `planId = …` query on `plan_days`, timed (µs); `plans` is how many plans there are.
    fn query(&self, plan: usize) -> f64 {
        let query = Query {
            filters: vec![Filter {
                field: "planId".into(),
                op: FilterOp::Eq,
                value_json: format!("\"p{plan}\""),
            }],
            ..Query::default()
        };
        let started = Instant::now();
        let hits = self.t().query("plan_days".into(), query).expect("query");
        let spent = micros(started.elapsed());
        assert_eq!(hits.len(), DAYS_PER_PLAN, "every day of the plan found");
        spent
    }
}

fn day_json(plan: usize, day: usize) -> Value {
    json!({
        "planId": format!("p{plan}"),
        "dayIndex": day,
        "title": format!("Day {day}"),
        "exerciseIds": ["squat", "bench", "row"],
    })
}

/// Pushes new records over HTTP in batches of 500, every one applied.
fn push_docs(
    http: &Http,
    user: &HttpUser,
    client: &str,
    collection: &str,
    docs: impl Iterator<Item = (String, Value)>,
) {
    let mut docs = docs.peekable();
    while docs.peek().is_some() {
        let mutations: Vec<Value> = docs
            .by_ref()
            .take(SEED_BATCH)
            .map(|(id, payload)| {
                json!({
                    "opId": format!("{client}-{collection}-{id}"),
                    "entity": collection,
                    "entityId": id,
                    "type": "upsert",
                    "baseVersion": null,
                    "payload": payload,
                    "clientTime": "2025-01-01T00:00:00Z",
                })
            })
            .collect();
        http.push_all_applied(user, client, mutations);
    }
}

/// An account on the server holding `records` records: a tenth plans, the rest their days.
fn seed(http: &Http, records: usize) -> (String, HttpUser) {
    let account = email(&format!("scale-{}", label(records)));
    let user = http.sign_up(&account);
    let plans = records / (DAYS_PER_PLAN + 1);
    let docs = (0..plans).map(|p| {
        (
            format!("p{p}"),
            serde_json::from_str(&plan_json(p)).expect("JSON"),
        )
    });
    push_docs(http, &user, "seed", "plans", docs);
    let days = (0..plans)
        .flat_map(|p| (0..DAYS_PER_PLAN).map(move |d| (format!("d{p}-{d}"), day_json(p, d))));
    push_docs(http, &user, "seed", "plan_days", days);
    (account, user)
}

/// What the store series measured, per size (ascending).
struct StoreFigures {
    sizes: Vec<usize>,
    noop_ms: Vec<f64>,
    query_us: Vec<f64>,
    pull_ms: Vec<f64>,
    push_ms: Vec<f64>,
    open_ms: Vec<f64>,
    bootstrap_rate: Vec<f64>,
    bootstrap_rss_mb: Vec<f64>,
}

impl StoreFigures {
    fn measurements(&self) -> Vec<Measurement> {
        let mut out = Vec::new();
        let last = self.sizes.len() - 1;
        for (i, n) in self.sizes.iter().enumerate() {
            let l = label(*n);
            let mut noop = Measurement::new(format!("noop_sync_{l}"), self.noop_ms[i], "ms");
            if i == last && last > 0 {
                // The largest store against the smallest, measured in the same rounds.
                noop = noop
                    .floor(self.noop_ms[0])
                    .target(Target::RatioAtMost(NOOP_RATIO_TARGET));
            }
            out.push(noop);
            out.push(Measurement::new(
                format!("query_indexed_{l}"),
                self.query_us[i],
                "us",
            ));
            out.push(Measurement::new(
                format!("pull_1k_{l}"),
                self.pull_ms[i],
                "ms",
            ));
            out.push(Measurement::new(
                format!("push_1k_{l}"),
                self.push_ms[i],
                "ms",
            ));
            out.push(Measurement::new(format!("open_{l}"), self.open_ms[i], "ms"));
            out.push(Measurement::new(
                format!("bootstrap_{l}"),
                self.bootstrap_rate[i],
                "records/s",
            ));
            let mut rss =
                Measurement::new(format!("bootstrap_{l}_rss"), self.bootstrap_rss_mb[i], "MB");
            if i == last {
                rss = rss.target(Target::AtMost(BOOTSTRAP_RSS_TARGET_MB));
            }
            out.push(rss);
        }
        out
    }
}

fn store_series(
    server: &BenchServer,
    http: &Http,
    sizes: &Sizes,
    stores: &[usize],
) -> anyhow::Result<StoreFigures> {
    let mut devices = Vec::new();
    let (mut bootstrap_rate, mut bootstrap_rss_mb) = (Vec::new(), Vec::new());
    for &n in stores {
        anyhow::ensure!(
            n > DAYS_PER_PLAN && n.is_multiple_of(DAYS_PER_PLAN + 1),
            "a store size must be a multiple of {}",
            DAYS_PER_PLAN + 1
        );
        let started = Instant::now();
        let (account, user) = seed(http, n);
        eprintln!(
            "scale: {} records seeded in {:.1} s",
            label(n),
            started.elapsed().as_secs_f64()
        );
        let (secs, rss) = sync::bootstrap_in_child(
            &server.url,
            &account,
            n,
            &["--collections", "plans,plan_days"],
        );
        eprintln!(
            "scale: {} bootstrapped by the child in {secs:.1} s, peak RSS {rss:.1} MB",
            label(n)
        );
        bootstrap_rate.push(n as f64 / secs);
        bootstrap_rss_mb.push(rss);
        let store = Store::signed_in(&server.url, &account);
        let (_, report) = store.sync();
        assert_eq!(report.pulled as usize, n, "the device pulled every record");
        devices.push((n, user, store));
    }

    let count = devices.len();
    // Rounds alternate between the sizes, so that machine noise hits every size alike.
    let mut noop = vec![Vec::new(); count];
    for _ in 0..sizes.noop_runs {
        for (i, (_, _, store)) in devices.iter().enumerate() {
            let (ms, report) = store.sync();
            assert_eq!(report.pushed + report.pulled, 0, "nothing to do");
            noop[i].push(ms);
        }
    }
    eprintln!("scale: no-op syncs done");

    let mut rng = Lcg(11);
    let mut queries = vec![Vec::new(); count];
    for _ in 0..sizes.queries {
        for (i, (n, _, store)) in devices.iter().enumerate() {
            let plans = n / (DAYS_PER_PLAN + 1);
            queries[i].push(store.query(rng.below(plans)));
        }
    }
    eprintln!("scale: queries done");

    let mut pulls = vec![Vec::new(); count];
    for round in 0..sizes.change_rounds {
        for (i, (_, user, store)) in devices.iter().enumerate() {
            http.push_new(user, "plans", None, &format!("pull{round}-"), sizes.changes);
            let (ms, report) = store.sync();
            assert_eq!(report.pulled as usize, sizes.changes, "the changes arrived");
            pulls[i].push(ms);
        }
    }
    eprintln!("scale: pulls done");

    let mut pushes = vec![Vec::new(); count];
    for round in 0..sizes.change_rounds {
        for (i, (n, _, store)) in devices.iter().enumerate() {
            let plans = n / (DAYS_PER_PLAN + 1);
            let ops = (0..sizes.changes)
                .map(|k| {
                    let p = (round * sizes.changes + k) % plans;
                    WriteOp::Put {
                        collection: "plans".into(),
                        id: Some(format!("p{p}")),
                        json: plan_json(p + 1_000_000 * (round + 1)),
                        space_id: None,
                    }
                })
                .collect();
            store.t().write(ops).expect("changes to push");
            let (ms, report) = store.sync();
            assert_eq!(
                report.applied as usize,
                sizes.changes.min(plans),
                "every change applied"
            );
            pushes[i].push(ms);
        }
    }
    eprintln!("scale: pushes done");

    let mut opens = vec![Vec::new(); count];
    for _ in 0..sizes.opens {
        for (i, (_, _, store)) in devices.iter_mut().enumerate() {
            opens[i].push(store.reopen());
        }
    }
    for (_, _, store) in &devices {
        store.t().shutdown();
    }

    Ok(StoreFigures {
        sizes: devices.iter().map(|(n, _, _)| *n).collect(),
        noop_ms: noop.iter_mut().map(|s| percentile(s, 50.0)).collect(),
        query_us: queries.iter_mut().map(|s| percentile(s, 50.0)).collect(),
        pull_ms: pulls.iter_mut().map(|s| median(s)).collect(),
        push_ms: pushes.iter_mut().map(|s| median(s)).collect(),
        open_ms: opens.iter_mut().map(|s| median(s)).collect(),
        bootstrap_rate,
        bootstrap_rss_mb,
    })
}

fn outbox_series(
    server: &BenchServer,
    http: &Http,
    sizes: &Sizes,
) -> anyhow::Result<Vec<Measurement>> {
    let mut devices = Vec::new();
    for &pending in sizes.outboxes {
        let (account, _user) = seed(http, sizes.outbox_store);
        let mut store = Store::signed_in(&server.url, &account);
        let (_, report) = store.sync();
        assert_eq!(report.pulled as usize, sizes.outbox_store);
        // Written without syncing: the device is offline, as far as the server knows.
        let ops = plan_puts("o", 0..pending);
        for chunk in ops.chunks(10_000) {
            store.t().write(chunk.to_vec()).expect("pending changes");
        }
        // Opened again, so that every figure sees the backlog on disk, not in a warm writer.
        store.reopen();
        assert_eq!(
            store.t().pending_count().expect("pending") as usize,
            pending
        );
        devices.push((pending, store));
        eprintln!("scale: outbox of {} written", label(pending));
    }

    let count = devices.len();
    let mut puts = vec![Vec::new(); count];
    for k in 0..sizes.puts {
        for (i, (_, store)) in devices.iter().enumerate() {
            let started = Instant::now();
            store
                .t()
                .put("plans".into(), Some(format!("s{k}")), plan_json(k))
                .expect("put");
            puts[i].push(micros(started.elapsed()));
        }
    }
    let mut rng = Lcg(13);
    let plans = sizes.outbox_store / (DAYS_PER_PLAN + 1);
    let mut queries = vec![Vec::new(); count];
    for _ in 0..sizes.queries {
        let plan = rng.below(plans);
        for (i, (_, store)) in devices.iter().enumerate() {
            queries[i].push(store.query(plan));
        }
    }
    let mut opens = vec![Vec::new(); count];
    for _ in 0..sizes.opens {
        for (i, (_, store)) in devices.iter_mut().enumerate() {
            opens[i].push(store.reopen());
        }
    }
    let mut out = Vec::new();
    for (i, (pending, store)) in devices.iter().enumerate() {
        let (ms, report) = store.sync();
        let total = pending + sizes.puts;
        assert_eq!(report.applied as usize, total, "the backlog pushed");
        store.t().shutdown();
        let l = label(*pending);
        out.push(Measurement::new(
            format!("outbox_{l}_put_single"),
            median(&mut puts[i]),
            "us",
        ));
        out.push(Measurement::new(
            format!("outbox_{l}_query_indexed"),
            percentile(&mut queries[i], 50.0),
            "us",
        ));
        out.push(Measurement::new(
            format!("outbox_{l}_open"),
            median(&mut opens[i]),
            "ms",
        ));
        out.push(Measurement::new(
            format!("outbox_{l}_push"),
            total as f64 / (ms / 1e3),
            "ops/s",
        ));
    }
    Ok(out)
}

/// The store series as an SVG: the timed operations on a log-log plot (flat lines are what a
/// growing store should cost), and the bootstrap client's peak memory against its target.
fn render_chart(path: &str, f: &StoreFigures) -> anyhow::Result<()> {
    use plotters::prelude::*;

    let root = SVGBackend::new(path, (960, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(560);
    let x_min = f.sizes[0] as f64 / 1.5;
    let x_max = *f.sizes.last().expect("a size") as f64 * 1.5;
    let size_label = |x: &f64| label(x.round() as usize);

    let series: [(&str, Vec<f64>, RGBColor); 5] = [
        (
            "no-op sync (p50)",
            f.noop_ms.clone(),
            RGBColor(31, 119, 180),
        ),
        (
            "indexed query, 9 hits (p50)",
            f.query_us.iter().map(|us| us / 1e3).collect(),
            RGBColor(44, 160, 44),
        ),
        ("open", f.open_ms.clone(), RGBColor(148, 103, 189)),
        (
            "pull of 1,000 changes",
            f.pull_ms.clone(),
            RGBColor(255, 127, 14),
        ),
        (
            "push of 1,000 changes",
            f.push_ms.clone(),
            RGBColor(214, 39, 40),
        ),
    ];
    let all = series.iter().flat_map(|(_, v, _)| v.iter().copied());
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Headroom above the data for the legend.
    let y_range = (lo / 3.0).max(1e-4)..(hi * 40.0);

    let mut chart = ChartBuilder::on(&upper)
        .caption(
            "Cost per operation as the store grows (log-log; flat = independent of size)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x_min..x_max).log_scale(), y_range.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("records in the store")
        .y_desc("milliseconds")
        .x_label_formatter(&size_label)
        .y_label_formatter(&|y| short(*y))
        .draw()?;
    for (name, values, color) in &series {
        let points: Vec<(f64, f64)> = f
            .sizes
            .iter()
            .zip(values)
            .map(|(n, v)| (*n as f64, *v))
            .collect();
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    let rss_max = f
        .bootstrap_rss_mb
        .iter()
        .copied()
        .fold(BOOTSTRAP_RSS_TARGET_MB, f64::max)
        * 1.25;
    let mut chart = ChartBuilder::on(&lower)
        .caption(
            "Bootstrap: peak resident memory of a client pulling the whole store",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x_min..x_max).log_scale(), 0.0..rss_max)?;
    chart
        .configure_mesh()
        .x_desc("records in the store")
        .y_desc("MB (VmHWM)")
        .x_label_formatter(&size_label)
        .draw()?;
    let blue = RGBColor(31, 119, 180);
    let points: Vec<(f64, f64)> = f
        .sizes
        .iter()
        .zip(&f.bootstrap_rss_mb)
        .map(|(n, v)| (*n as f64, *v))
        .collect();
    chart
        .draw_series(LineSeries::new(points.clone(), blue.stroke_width(2)))?
        .label("peak RSS")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));
    chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, blue.filled())))?;
    chart
        .draw_series(LineSeries::new(
            vec![
                (x_min, BOOTSTRAP_RSS_TARGET_MB),
                (x_max, BOOTSTRAP_RSS_TARGET_MB),
            ],
            RED.stroke_width(1),
        ))?
        .label("target: 48 MB")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// An axis label: whole numbers plainly, small ones with up to three significant decimals.
fn short(y: f64) -> String {
    if y >= 1.0 {
        format!("{y:.0}")
    } else {
        let text = format!("{y:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
