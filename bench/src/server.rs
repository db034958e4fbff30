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
    /// `space_push_200_members`: members of the space (the owner included), each with an open
    /// event stream, and timed pushes (each followed by its one-user counterpart).
    space_members: usize,
    space_push_rounds: usize,
    /// `pull_100_spaces_ratio`: spaces of the one member, records in each, full pulls of each kind.
    pull_spaces: usize,
    records_per_space: usize,
    spaces_pull_rounds: usize,
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
    space_members: 200,
    space_push_rounds: 15,
    pull_spaces: 100,
    records_per_space: 1000,
    spaces_pull_rounds: 3,
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
    space_members: 8,
    space_push_rounds: 2,
    pull_spaces: 4,
    records_per_space: 250,
    spaces_pull_rounds: 1,
};

const SQLITE_PUSH_TARGET: f64 = 20_000.0;
const POSTGRES_PUSH_TARGET: f64 = 10_000.0;
const PULL_TARGET: f64 = 100_000.0;
/// The time until every member's stream was poked, against one user's own poke (design §12).
const POKE_ALL_RATIO_TARGET: f64 = 2.0;
/// Own-collection pull rate over the rate for the same records spread over 100 spaces.
const SPACES_PULL_RATIO_TARGET: f64 = 1.5;

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

const GROUPS: [&str; 5] = [
    "push_throughput",
    "pull_throughput",
    "push_p99_32_clients",
    "space_push_200_members",
    "pull_100_spaces_ratio",
];

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
    if wanted.contains(&"space_push_200_members") {
        let figures = space_push(base, sizes).await?;
        results.push(Measurement::new(
            name("space_push_200_members"),
            figures.push_ms,
            "ms",
        ));
        // The floor is a one-user poke (own collection, one stream) measured in the same rounds.
        results.push(
            Measurement::new(
                name("space_push_200_members_poke_all"),
                figures.poke_all_ms,
                "ms",
            )
            .floor(figures.one_user_poke_ms)
            .target(Target::RatioAtMost(POKE_ALL_RATIO_TARGET)),
        );
    }
    if wanted.contains(&"pull_100_spaces_ratio") {
        let (own, spaces) = pull_spaces_ratio(base, sizes).await?;
        // A rate: the ratio is own records/s over spaces records/s (1.0 = spaces cost nothing).
        results.push(
            Measurement::new(name("pull_100_spaces_ratio"), spaces, "records/s")
                .floor(own)
                .inverse_ratio()
                .target(Target::RatioAtMost(SPACES_PULL_RATIO_TARGET)),
        );
    }
    Ok(results)
}

/// Sign-ups sent at once while building the space of `space_push_200_members`.
const SIGN_UP_WAVE: usize = 8;

/// Medians of `space_push_200_members`.
struct SpacePushFigures {
    /// An editor's push of one change to the space, until its answer.
    push_ms: f64,
    /// From the start of that push until the last of the members' streams got its poke.
    poke_all_ms: f64,
    /// From the start of a one-change push to a user's own collection until that user's one
    /// stream got its poke, in the same rounds (with the members' streams open).
    one_user_poke_ms: f64,
}

/// A space of `space_members` members (owner, one editor, viewers), each with an open event
/// stream; `space_push_rounds` times: one user's push to its own collection until its poke, then
/// the editor's push of one change to the space until every member's stream was poked.
async fn space_push(base: &str, sizes: &Sizes) -> anyhow::Result<SpacePushFigures> {
    let owner = Client::sign_up(base, "space-owner@bench.example").await?;
    let space = owner.create_space("Bench team").await?;
    // Sign-ups hash passwords (argon2): a few at once keep both cores busy without filling the
    // server's hashing queue (beyond it the server answers 503).
    let mut members = Vec::with_capacity(sizes.space_members);
    let numbers: Vec<usize> = (1..sizes.space_members).collect();
    for wave in numbers.chunks(SIGN_UP_WAVE) {
        let mut signing = tokio::task::JoinSet::new();
        for &i in wave {
            let base = base.to_string();
            signing.spawn(async move {
                let client = Client::sign_up(&base, &format!("member{i}@bench.example")).await?;
                anyhow::Ok((i, client))
            });
        }
        while let Some(joined) = signing.join_next().await {
            members.push(joined??);
        }
    }
    members.sort_by_key(|(i, _)| *i);
    let mut members: Vec<Client> = members.into_iter().map(|(_, c)| c).collect();
    for (i, member) in members.iter().enumerate() {
        let role = if i == 0 { "editor" } else { "viewer" };
        let invitation = owner.invite(&space, &member.email, role).await?;
        member.accept(&invitation).await?;
    }
    members.insert(0, owner);
    let solo = Client::sign_up(base, "solo@bench.example").await?;

    let (pokes_tx, mut pokes) = tokio::sync::mpsc::unbounded_channel();
    let mut listeners = Vec::with_capacity(members.len() + 1);
    for (i, member) in members.iter().enumerate() {
        listeners.push(member.listen(i, pokes_tx.clone()).await?);
    }
    let solo_index = members.len();
    listeners.push(solo.listen(solo_index, pokes_tx.clone()).await?);
    drop(pokes_tx);
    let editor = &members[1];
    let space_stream = format!("space:{space}");

    let mut push_ms = Vec::new();
    let mut poke_all_ms = Vec::new();
    let mut one_user_ms = Vec::new();
    for round in 0..sizes.space_push_rounds {
        while pokes.try_recv().is_ok() {}
        // One user, own collection, one stream.
        let body = push_body(&format!("solo{round}"), 1, "plans", None);
        let start = Instant::now();
        solo.push_all_applied(body, 1).await?;
        loop {
            let poke = next_poke(&mut pokes).await?;
            if poke.listener == solo_index && poke.stream.is_none() {
                one_user_ms.push(millis(poke.at - start));
                break;
            }
        }
        while pokes.try_recv().is_ok() {}
        // The editor's change to the space, until every member's stream has had its poke.
        let body = push_body(&format!("team{round}"), 1, "shared_plans", Some(&space));
        let start = Instant::now();
        editor.push_all_applied(body, 1).await?;
        push_ms.push(millis(start.elapsed()));
        let mut poked = vec![false; members.len()];
        let mut left = members.len();
        let mut last = start;
        while left > 0 {
            let poke = next_poke(&mut pokes).await?;
            if poke.listener < members.len()
                && poke.stream.as_deref() == Some(space_stream.as_str())
                && !poked[poke.listener]
            {
                poked[poke.listener] = true;
                left -= 1;
                last = last.max(poke.at);
            }
        }
        poke_all_ms.push(millis(last - start));
    }
    for listener in listeners {
        listener.abort();
    }
    Ok(SpacePushFigures {
        push_ms: median(&mut push_ms),
        poke_all_ms: median(&mut poke_all_ms),
        one_user_poke_ms: median(&mut one_user_ms),
    })
}

/// A poke one of the listeners read: whose stream, when, and for which stream (`None`: the
/// user's own).
struct Poked {
    listener: usize,
    at: Instant,
    stream: Option<String>,
}

async fn next_poke(
    pokes: &mut tokio::sync::mpsc::UnboundedReceiver<Poked>,
) -> anyhow::Result<Poked> {
    tokio::time::timeout(Duration::from_secs(30), pokes.recv())
        .await
        .context("no poke within 30 s")?
        .context("every event stream ended")
}

/// The same `spaces × records_per_space` records, once in one user's own `plans` and once as
/// `shared_plans` spread over `spaces` spaces of another user; full pulls of each in the stream
/// form with pages of `pull_limit`, alternating; returns the median records/s of each (own,
/// spaces).
async fn pull_spaces_ratio(base: &str, sizes: &Sizes) -> anyhow::Result<(f64, f64)> {
    let total = sizes.pull_spaces * sizes.records_per_space;
    let own = Client::sign_up(base, "own-records@bench.example").await?;
    let member = Client::sign_up(base, "in-100-spaces@bench.example").await?;
    let batch = 500;
    for s in 0..sizes.pull_spaces {
        let space = member.create_space(&format!("Space {s}")).await?;
        let mut written = 0;
        while written < sizes.records_per_space {
            let count = batch.min(sizes.records_per_space - written);
            let prefix = format!("s{s}w{written}");
            own.push_all_applied(push_body(&prefix, count, "plans", None), count)
                .await?;
            member
                .push_all_applied(
                    push_body(&prefix, count, "shared_plans", Some(&space)),
                    count,
                )
                .await?;
            written += count;
        }
    }
    let mut own_rates = Vec::with_capacity(sizes.spaces_pull_rounds);
    let mut space_rates = Vec::with_capacity(sizes.spaces_pull_rounds);
    for _ in 0..sizes.spaces_pull_rounds {
        for (client, rates) in [(&own, &mut own_rates), (&member, &mut space_rates)] {
            let start = Instant::now();
            let pulled = client.pull_all_streams(sizes.pull_limit).await?;
            let spent = start.elapsed();
            ensure!(pulled == total, "pulled {pulled} records, pushed {total}");
            rates.push(total as f64 / spent.as_secs_f64());
        }
    }
    Ok((median(&mut own_rates), median(&mut space_rates)))
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
            .map(|b| push_body(&format!("r{round}b{b}"), sizes.batch, "plans", None))
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
        .map(|p| push_body(&format!("c{p}"), batch, "plans", None))
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

/// A push of `count` new records of `entity` (`plans` or `shared_plans`, the same fields) with
/// ids unique under `prefix`, in `space` when given.
fn push_body(prefix: &str, count: usize, entity: &str, space: Option<&str>) -> Vec<u8> {
    let mutations: Vec<Value> = (0..count)
        .map(|i| {
            let mut mutation = json!({
                "opId": format!("op-{prefix}-{i}"),
                "entity": entity,
                "entityId": format!("plan-{prefix}-{i}"),
                "type": "upsert",
                "baseVersion": null,
                "payload": {"name": format!("Plan {prefix} {i}"),
                            "notes": "Warm up for ten minutes, then three rounds of the main lifts with long rests in between.",
                            "archived": false},
                "clientTime": "2025-01-01T00:00:00Z",
            });
            if let Some(space) = space {
                mutation["space"] = json!(space);
            }
            mutation
        })
        .collect();
    serde_json::to_vec(&json!({"clientId": "bench-client", "mutations": mutations})).expect("JSON")
}

/// One signed-in user talking to the server over its own connection pool.
struct Client {
    http: reqwest::Client,
    base: String,
    auth: String,
    email: String,
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

/// A stream-form pull page (only what a client needs to page on).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamPullAnswer {
    changes: Vec<Box<RawValue>>,
    streams: std::collections::BTreeMap<String, StreamEntryAnswer>,
    has_more: bool,
    account: Option<AccountSeqAnswer>,
}

#[derive(Deserialize)]
struct StreamEntryAnswer {
    status: String,
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountSeqAnswer {
    account_seq: i64,
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
            email: email.to_string(),
        })
    }

    /// Creates a space (the caller its owner); returns its id.
    async fn create_space(&self, name: &str) -> anyhow::Result<String> {
        let body = serde_json::to_vec(
            &json!({"name": name, "requestId": uuid::Uuid::now_v7().to_string()}),
        )?;
        let space: Value = self.post_json("/sync/v1/spaces", body).await?;
        Ok(space["id"].as_str().context("no space id")?.to_string())
    }

    /// Invites `email` into `space` with `role`; returns the invitation's id.
    async fn invite(&self, space: &str, email: &str, role: &str) -> anyhow::Result<String> {
        let body = serde_json::to_vec(&json!({"email": email, "role": role}))?;
        let invitation: Value = self
            .post_json(&format!("/sync/v1/spaces/{space}/invitations"), body)
            .await?;
        Ok(invitation["id"]
            .as_str()
            .context("no invitation id")?
            .to_string())
    }

    async fn accept(&self, invitation: &str) -> anyhow::Result<()> {
        let _: Value = self
            .post_json(
                &format!("/sync/v1/invitations/{invitation}/accept"),
                b"{}".to_vec(),
            )
            .await?;
        Ok(())
    }

    /// Opens this user's event stream and, once the server has said `connected` (it subscribes
    /// to notices and loads the user's streams before that), reads it in a task that sends each
    /// poke, with the time it arrived, to `pokes`.
    async fn listen(
        &self,
        listener: usize,
        pokes: tokio::sync::mpsc::UnboundedSender<Poked>,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let mut response = self
            .http
            .get(format!("{}/sync/v1/events", self.base))
            .header("authorization", &self.auth)
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await?
            .error_for_status()
            .context("event stream")?;
        let mut buffer = String::new();
        while !buffer.contains("connected") {
            let chunk = response
                .chunk()
                .await?
                .context("the event stream ended before it was connected")?;
            buffer.push_str(std::str::from_utf8(&chunk)?);
        }
        buffer.clear();
        Ok(tokio::spawn(async move {
            while let Ok(Some(chunk)) = response.chunk().await {
                let at = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    if !frame.lines().any(|l| l == "event: poke") {
                        continue;
                    }
                    let data: Value = frame
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or(Value::Null);
                    let stream = data["stream"].as_str().map(str::to_string);
                    if pokes
                        .send(Poked {
                            listener,
                            at,
                            stream,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }))
    }

    /// Pulls in the stream form, from no cursors at all, until `hasMore` is false, keeping each
    /// stream's cursor as a client does; returns how many changes came.
    async fn pull_all_streams(&self, limit: usize) -> anyhow::Result<usize> {
        let mut cursors: std::collections::BTreeMap<String, Option<String>> = Default::default();
        let mut account_seq: Option<i64> = None;
        let mut pulled = 0;
        for _ in 0..10_000_000 {
            let mut body = json!({"streams": cursors, "limit": limit});
            if let Some(seq) = account_seq {
                body["accountSeq"] = json!(seq);
            }
            let page: StreamPullAnswer = self
                .post_json("/sync/v1/pull", serde_json::to_vec(&body)?)
                .await?;
            pulled += page.changes.len();
            for (stream, entry) in page.streams {
                match entry.status.as_str() {
                    "ok" => {
                        cursors.insert(stream, entry.cursor);
                    }
                    "expired" => {
                        cursors.insert(stream, None);
                    }
                    _ => {
                        cursors.remove(&stream);
                    }
                }
            }
            if let Some(account) = page.account {
                account_seq = Some(account.account_seq);
            }
            if !page.has_more {
                return Ok(pulled);
            }
        }
        anyhow::bail!("pull did not end")
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
