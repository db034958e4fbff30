//! The `server` suite: the reference sync server (`tandem-server`, in this process) driven over
//! HTTP on loopback, once on a temp SQLite file and once on PostgreSQL. There is no raw floor here:
//! the targets are absolute. The load generator runs on the same tokio runtime, hence on the same
//! cores as the server, so every figure includes the client's own work (building and parsing JSON).
//!
//! PostgreSQL comes from `TANDEM_BENCH_POSTGRES_URL` (a fresh database is created in it and
//! dropped afterwards), else from a throwaway cluster of `scripts/postgres.sh`, stopped at the end.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tandem_server::{Config, ServerHandle};
use tempfile::TempDir;

use crate::report::{Measurement, Target};
use crate::stats::{median, millis, percentile};

/// Sizes of one run.
struct Sizes {
    /// Timed rounds of pushes; each round's rate is one sample.
    push_rounds: usize,
    batches_per_round: usize,
    batch: usize,
    /// Full pulls (from a null cursor to `hasMore: false`) of everything the push rounds wrote.
    pull_rounds: usize,
    pull_limit: usize,
    clients: usize,
    /// Timed pushes per client in the concurrent test (after one untimed warm-up push each).
    pushes_per_client: usize,
    concurrent_batch: usize,
}

/// 10 rounds × 20 batches × 500 = the 100k records the pull test pages through.
const FULL: Sizes = Sizes {
    push_rounds: 10,
    batches_per_round: 20,
    batch: 500,
    pull_rounds: 3,
    pull_limit: 1000,
    clients: 32,
    pushes_per_client: 25,
    concurrent_batch: 50,
};

const QUICK: Sizes = Sizes {
    push_rounds: 2,
    batches_per_round: 2,
    batch: 500,
    pull_rounds: 1,
    pull_limit: 1000,
    clients: 32,
    pushes_per_client: 2,
    concurrent_batch: 50,
};

const SQLITE_PUSH_TARGET: f64 = 20_000.0;
const POSTGRES_PUSH_TARGET: f64 = 10_000.0;
const PULL_TARGET: f64 = 100_000.0;

/// The secret of the server under test (given, so no secret is generated and stored).
const SECRET: &str = "tandem-bench-secret-0123456789abcdef";
const PASSWORD: &str = "bench-password-1";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn suffix(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn push_target(self) -> f64 {
        match self {
            Backend::Sqlite => SQLITE_PUSH_TARGET,
            Backend::Postgres => POSTGRES_PUSH_TARGET,
        }
    }
}

const GROUPS: [&str; 3] = ["push_throughput", "pull_throughput", "push_p99_32_clients"];

/// Runs the suite; `only` keeps the results whose full name (`<name>_<backend>`) contains it.
pub fn run(quick: bool, only: Option<&str>) -> anyhow::Result<Vec<Measurement>> {
    let sizes = if quick { &QUICK } else { &FULL };
    // Default worker count: one per core, as a server would run.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut cluster: Option<ThrowawayCluster> = None;
    let mut results = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let wanted: Vec<&str> = GROUPS
            .into_iter()
            .filter(|g| only.is_none_or(|o| format!("{g}_{}", backend.suffix()).contains(o)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        eprintln!("server suite: {} …", backend.suffix());
        let db = runtime.block_on(BenchDb::create(backend, &mut cluster))?;
        let measured =
            runtime.block_on(until_interrupted(measure(backend, &db.url, sizes, &wanted)));
        runtime.block_on(db.drop_database())?;
        results.extend(measured?);
    }
    // `cluster` (if this run started one) stops here, and also when an error returned early above.
    drop(cluster);
    Ok(results)
}

/// Runs `work`, or stops it with an error on Ctrl-C, so that the database and the cluster this run
/// made are still dropped and stopped.
async fn until_interrupted<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    }
}

/// Starts a server on `db_url` and takes the wanted measurements of one backend.
async fn measure(
    backend: Backend,
    db_url: &str,
    sizes: &Sizes,
    wanted: &[&str],
) -> anyhow::Result<Vec<Measurement>> {
    let server = start_server(db_url).await?;
    let outcome = measure_on(backend, &server.url(), sizes, wanted).await;
    server.shutdown().await?;
    outcome
}

async fn measure_on(
    backend: Backend,
    base: &str,
    sizes: &Sizes,
    wanted: &[&str],
) -> anyhow::Result<Vec<Measurement>> {
    let name = |group: &str| format!("{group}_{}", backend.suffix());
    let mut results = Vec::new();
    if wanted.contains(&"push_throughput") || wanted.contains(&"pull_throughput") {
        let client = Client::sign_up(base, "bulk@bench.example").await?;
        // The pull test pages through what the push test wrote, so it runs the pushes either way.
        let pushed = push_throughput(&client, sizes).await?;
        if wanted.contains(&"push_throughput") {
            results.push(
                Measurement::new(name("push_throughput"), pushed, "mutations/s")
                    .target(Target::AtLeast(backend.push_target())),
            );
        }
        if wanted.contains(&"pull_throughput") {
            let total = sizes.push_rounds * sizes.batches_per_round * sizes.batch;
            let pulled = pull_throughput(&client, total, sizes).await?;
            results.push(
                Measurement::new(name("pull_throughput"), pulled, "records/s")
                    .target(Target::AtLeast(PULL_TARGET)),
            );
        }
    }
    if wanted.contains(&"push_p99_32_clients") {
        let p99 = push_p99_concurrent(base, sizes).await?;
        results.push(Measurement::new(name("push_p99_32_clients"), p99, "ms"));
    }
    Ok(results)
}

async fn start_server(db_url: &str) -> anyhow::Result<ServerHandle> {
    let config = Config {
        addr: "127.0.0.1:0".parse()?,
        db: db_url.to_string(),
        jwt_secret: Some(SECRET.into()),
        // The load generator signs all its clients up from one address.
        sign_ups_per_hour: 1_000_000,
        ..Config::default()
    };
    tandem_server::run(config)
        .await
        .context("starting tandem-server")
}

/// Pushes `push_rounds × batches_per_round` batches of new records, one at a time as one client
/// does; returns the median over rounds of mutations per second.
async fn push_throughput(client: &Client, sizes: &Sizes) -> anyhow::Result<f64> {
    let mut rates = Vec::with_capacity(sizes.push_rounds);
    for round in 0..sizes.push_rounds {
        // Bodies are built before the clock starts: the load generator should cost the server as
        // little CPU as it can.
        let bodies: Vec<Vec<u8>> = (0..sizes.batches_per_round)
            .map(|b| push_body(&format!("r{round}b{b}"), sizes.batch))
            .collect();
        let start = Instant::now();
        for body in bodies {
            client.push_all_applied(body, sizes.batch).await?;
        }
        let mutations = sizes.batches_per_round * sizes.batch;
        rates.push(mutations as f64 / start.elapsed().as_secs_f64());
    }
    Ok(median(&mut rates))
}

/// Pages through the user's `total` records with the largest limit, `pull_rounds` times from a
/// null cursor; returns the median of records per second.
async fn pull_throughput(client: &Client, total: usize, sizes: &Sizes) -> anyhow::Result<f64> {
    let mut rates = Vec::with_capacity(sizes.pull_rounds);
    for _ in 0..sizes.pull_rounds {
        let start = Instant::now();
        let pulled = client.pull_everything(sizes.pull_limit).await?;
        let spent = start.elapsed();
        ensure!(pulled == total, "pulled {pulled} records, pushed {total}");
        rates.push(total as f64 / spent.as_secs_f64());
    }
    Ok(median(&mut rates))
}

/// `clients` users push batches of new records at once, each waiting for its answer before the
/// next; returns the 99th percentile latency in milliseconds over every timed push.
async fn push_p99_concurrent(base: &str, sizes: &Sizes) -> anyhow::Result<f64> {
    let mut clients = Vec::with_capacity(sizes.clients);
    for i in 0..sizes.clients {
        clients.push(Client::sign_up(base, &format!("client{i}@bench.example")).await?);
    }
    let start_line = Arc::new(tokio::sync::Barrier::new(sizes.clients));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(client_pushes(
                client,
                start_line.clone(),
                sizes.pushes_per_client,
                sizes.concurrent_batch,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(percentile(&mut latencies, 99.0))
}

/// One client of the concurrent test: a warm-up push, then `pushes` timed ones.
async fn client_pushes(
    client: Client,
    start_line: Arc<tokio::sync::Barrier>,
    pushes: usize,
    batch: usize,
) -> anyhow::Result<Vec<f64>> {
    let bodies: Vec<Vec<u8>> = (0..=pushes)
        .map(|p| push_body(&format!("c{p}"), batch))
        .collect();
    let mut bodies = bodies.into_iter();
    client
        .push_all_applied(bodies.next().expect("warm-up body"), batch)
        .await?;
    start_line.wait().await;
    let mut latencies = Vec::with_capacity(pushes);
    for body in bodies {
        let start = Instant::now();
        client.push_all_applied(body, batch).await?;
        latencies.push(millis(start.elapsed()));
    }
    Ok(latencies)
}

/// A push of `count` new `plans` records with ids unique under `prefix`.
fn push_body(prefix: &str, count: usize) -> Vec<u8> {
    let mutations: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "opId": format!("op-{prefix}-{i}"),
                "entity": "plans",
                "entityId": format!("plan-{prefix}-{i}"),
                "type": "upsert",
                "baseVersion": null,
                "payload": {"name": format!("Plan {prefix} {i}"),
                            "notes": "Warm up for ten minutes, then three rounds of the main lifts with long rests in between.",
                            "archived": false},
                "clientTime": "2025-01-01T00:00:00Z",
            })
        })
        .collect();
    serde_json::to_vec(&json!({"clientId": "bench-client", "mutations": mutations})).expect("JSON")
}

/// One signed-in user talking to the server over its own connection pool.
struct Client {
    http: reqwest::Client,
    base: String,
    auth: String,
}

#[derive(Deserialize)]
struct PushAnswer {
    results: Vec<PushResult>,
}

#[derive(Deserialize)]
struct PushResult {
    status: String,
}

/// A pull page; changes are kept as raw JSON (checked for syntax, not built into values) since a
/// client that stores documents as text does no more.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullAnswer {
    changes: Vec<Box<RawValue>>,
    cursor: String,
    has_more: bool,
}

impl Client {
    async fn sign_up(base: &str, email: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let session: Value = http
            .post(format!("{base}/auth/v1/signup"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?
            .error_for_status()
            .context("sign-up")?
            .json()
            .await?;
        let token = session["access_token"]
            .as_str()
            .context("no access_token in the session")?;
        Ok(Client {
            http,
            base: base.to_string(),
            auth: format!("Bearer {token}"),
        })
    }

    /// Pushes `body` and checks that all `expected` mutations were applied.
    async fn push_all_applied(&self, body: Vec<u8>, expected: usize) -> anyhow::Result<()> {
        let answer: PushAnswer = self.post_json("/sync/v1/push", body).await?;
        let applied = answer
            .results
            .iter()
            .filter(|r| r.status == "applied")
            .count();
        ensure!(
            applied == expected,
            "{applied} of {expected} mutations applied"
        );
        Ok(())
    }

    /// Pulls from a null cursor until `hasMore` is false; returns how many changes came.
    async fn pull_everything(&self, limit: usize) -> anyhow::Result<usize> {
        let mut cursor: Option<String> = None;
        let mut pulled = 0;
        // Bounded: 10 million pages is far beyond any size this suite writes.
        for _ in 0..10_000_000 {
            let body = serde_json::to_vec(&json!({"cursor": cursor, "limit": limit}))?;
            let page: PullAnswer = self.post_json("/sync/v1/pull", body).await?;
            pulled += page.changes.len();
            if !page.has_more {
                return Ok(pulled);
            }
            cursor = Some(page.cursor);
        }
        anyhow::bail!("pull did not end")
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<T> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        ensure!(
            status.is_success(),
            "{path} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// The database of one backend's run: a temp SQLite file, or a fresh PostgreSQL database.
struct BenchDb {
    url: String,
    /// PostgreSQL: the admin URL and the database's name, to drop it afterwards.
    postgres: Option<(String, String)>,
    _dir: Option<TempDir>,
}

impl BenchDb {
    async fn create(
        backend: Backend,
        cluster: &mut Option<ThrowawayCluster>,
    ) -> anyhow::Result<BenchDb> {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new()?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(BenchDb {
                    url,
                    postgres: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url(cluster)?;
                let name = format!("tandem_bench_{}", uuid::Uuid::now_v7().simple());
                admin_execute(&admin, &format!("CREATE DATABASE {name}")).await?;
                let url = with_database(&admin, &name);
                Ok(BenchDb {
                    url,
                    postgres: Some((admin, name)),
                    _dir: None,
                })
            }
        }
    }

    async fn drop_database(&self) -> anyhow::Result<()> {
        if let Some((admin, name)) = &self.postgres {
            admin_execute(
                admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await?;
        }
        Ok(())
    }
}

/// `TANDEM_BENCH_POSTGRES_URL`, else the URL of a throwaway cluster started on first use.
fn postgres_admin_url(cluster: &mut Option<ThrowawayCluster>) -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("TANDEM_BENCH_POSTGRES_URL") {
        return Ok(url);
    }
    if cluster.is_none() {
        *cluster = Some(ThrowawayCluster::start()?);
    }
    Ok(cluster.as_ref().expect("just started").url.clone())
}

async fn admin_execute(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .with_context(|| sql.to_string())?;
    drop(client);
    let _ = connection.await;
    Ok(())
}

/// `url` with its database (the path) replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (main, query) = url
        .split_once('?')
        .map_or((url, None), |(m, q)| (m, Some(q)));
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let base = match main[authority_start..].find('/') {
        Some(slash) => &main[..authority_start + slash],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A PostgreSQL cluster of `scripts/postgres.sh`, stopped (and its files deleted) when dropped,
/// which also happens when the suite fails or panics.
struct ThrowawayCluster {
    url: String,
}

const POSTGRES_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");

impl ThrowawayCluster {
    fn start() -> anyhow::Result<ThrowawayCluster> {
        eprintln!("server suite: no TANDEM_BENCH_POSTGRES_URL; starting a throwaway cluster");
        let output = Command::new(POSTGRES_SCRIPT)
            .arg("start")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("running scripts/postgres.sh start")?;
        ensure!(output.status.success(), "scripts/postgres.sh start failed");
        let url = String::from_utf8(output.stdout)?.trim().to_string();
        ensure!(
            url.starts_with("postgres://"),
            "scripts/postgres.sh printed {url:?}"
        );
        Ok(ThrowawayCluster { url })
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let stopped = Command::new(POSTGRES_SCRIPT)
            .args(["stop", &self.url])
            .stdin(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            eprintln!(
                "server suite: could not stop the cluster at {}; run scripts/postgres.sh stop",
                self.url
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u@h:5/db?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
    }
}
