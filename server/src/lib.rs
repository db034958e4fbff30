//! Tandem's reference sync server: sync protocol v1 (see `docs/protocol.md`) over HTTP with axum,
//! on SQLite (one file, for development) or PostgreSQL (any number of stateless instances).
//!
//! Use it as a binary (`tandem-server`) or as a library: [`run`] starts a server from a
//! [`Config`] and returns a [`ServerHandle`] with the address it listens on; [`run_with_clock`]
//! does the same on a [`Clock`] of the caller's (tests pass a [`ManualClock`] and move it).

pub mod admin_cli;
mod auth;
pub mod blobs;
mod clock;
pub mod config;
pub mod control;
mod cursor;
mod error;
mod events;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod import;
mod jwt;
pub mod logging;
mod metrics;
mod push;
mod routes;
mod secret;
mod serve;
pub mod spaces;
pub mod storage;
pub mod traffic;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tandem_protocol::Schema;
use tokio_util::sync::CancellationToken;

pub use config::{Config, LogFormat};
pub use tandem_protocol::clock::{Clock, ManualClock, SystemClock};

use crate::auth::attempt_limit::AttemptLimit;
use crate::auth::passwords::HashPool;
use crate::control::ControlPlane;
use crate::cursor::CursorCodec;
use crate::events::{ChangeHub, StreamSlots};
use crate::jwt::JwtKeys;
use crate::routes::AppState;
use crate::storage::Storage;

/// How long op ids are remembered for idempotency (the protocol asks for at least 7 days).
const OP_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// A running server.
pub struct ServerHandle {
    /// The address it listens on (the real port when port 0 was asked).
    pub addr: SocketAddr,
    /// The address of the `--metrics-addr` listener, when one was asked for.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    purger: Purger,
}

impl ServerHandle {
    /// The base URL, `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, ends event streams, and waits for requests in flight.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task
            .await
            .context("server task failed")?
            .context("server failed")
    }

    /// Waits until the server stops (after [`ServerHandle::shutdown`] from elsewhere, or a failure).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task
            .await
            .context("server task failed")?
            .context("server failed")
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs one purge of old tombstones and op ids now, as the periodic purger does, against
    /// the server's clock; returns how many tombstones went. For tests that move a
    /// [`ManualClock`] and want the purge that time would have brought.
    pub async fn purge_now(&self) -> anyhow::Result<u64> {
        self.purger.run_once().await
    }
}

/// Opens the database, loads the schema, binds `config.addr` and starts serving in the background.
pub async fn run(config: Config) -> anyhow::Result<ServerHandle> {
    run_with_clock(config, Arc::new(SystemClock)).await
}

/// [`run`], reading the time from `clock` wherever the server needs "now": token issue and
/// expiry, the refresh-reuse grace, tombstone purges and rate-limit windows.
pub async fn run_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<ServerHandle> {
    let schema_text = config.schema_text()?;
    let schema =
        Schema::from_json(&schema_text).map_err(|e| anyhow::anyhow!("invalid schema: {e}"))?;
    let storage = Storage::open(&config.db)
        .await
        .with_context(|| "cannot open the database")?;
    storage
        .index_rules(&schema)
        .await
        .with_context(|| "cannot index the schema's references and unique keys")?;
    let secret = secret::resolve(&config, &storage).await?;
    let jwks = match (&config.jwks_url, &config.jwks_file) {
        (Some(_), Some(_)) => anyhow::bail!("give --jwks-url or --jwks-file, not both"),
        (Some(url), None) => Some(jwt::Jwks::load(jwt::JwksSource::Url(url.clone())).await?),
        (None, Some(path)) => Some(jwt::Jwks::load(jwt::JwksSource::File(path.clone())).await?),
        (None, None) => None,
    };
    if config.external_auth() {
        tracing::info!(
            own_auth = !config.disable_own_auth,
            jwks = jwks.is_some(),
            "external auth mode: the issuer's users are provisioned on first use"
        );
    }
    let shutdown = CancellationToken::new();
    let hub = ChangeHub::new();
    let control = ControlPlane::new(storage.clone(), clock.clone(), config.access_token_ttl);
    if config.sync_paused {
        pause_at_start(&storage, clock.now_ms()).await?;
    }
    control
        .reload()
        .await
        .with_context(|| "cannot read the pauses")?;
    control.spawn(shutdown.clone());
    if let Storage::Postgres(pg) = &storage {
        let hub = hub.clone();
        let control = control.clone();
        pg.spawn_change_listener(
            move |payload| {
                if !control.on_notice(payload) {
                    hub.publish_payload(payload)
                }
            },
            shutdown.clone(),
        );
    }
    let state = app_state(
        &config,
        storage.clone(),
        schema,
        &secret,
        jwks,
        hub,
        control,
        shutdown.clone(),
        clock.clone(),
    )?;
    let purger = Purger {
        storage,
        retention_ms: i64::from(config.tombstone_retention_days) * 24 * 3600 * 1000,
        grace_ms: i64::try_from(config.attachment_grace_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        blob_objects: BlobObjects::of(&state.uploads.store),
        clock,
    };
    purger.spawn(
        Duration::from_secs(config.purge_interval_secs.max(1)),
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    let state_pause = state.pauses.global();
    let limits = serve::ConnectionLimits {
        max_connections: config.max_connections,
        header_read_timeout: Duration::from_secs(config.header_read_timeout_secs.max(1)),
        max_header_bytes: config.max_header_bytes,
    };
    let metrics_addr = match config.metrics_addr {
        Some(at) => Some(serve_metrics(at, state.clone(), &limits, shutdown.clone()).await?),
        None => None,
    };
    let app = routes::router(state);
    let stop = shutdown.clone();
    let task = tokio::spawn(serve::serve(listener, app, limits, stop));
    if let Some(pause) = state_pause {
        tracing::warn!(
            reason = %pause.reason,
            "sync is paused: sync routes answer 503 until POST /admin/v1/resume"
        );
    }
    Ok(ServerHandle {
        addr,
        metrics_addr,
        shutdown,
        task,
        purger,
    })
}

/// Serves `GET /metrics` without a token on its own listener at `at` (`--metrics-addr`), until
/// `shutdown`; returns the address it listens on. Its failures are logged: they do not stop the
/// API.
async fn serve_metrics(
    at: SocketAddr,
    state: Arc<AppState>,
    limits: &serve::ConnectionLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {at}"))?;
    let addr = listener.local_addr()?;
    if addr.ip().is_loopback() {
        tracing::info!(%addr, "serving /metrics without a token on the metrics address");
    } else {
        tracing::warn!(
            %addr,
            "serving /metrics without a token off loopback: keep this address on a private network"
        );
    }
    let limits = serve::ConnectionLimits {
        max_connections: 16,
        ..*limits
    };
    tokio::spawn(async move {
        if let Err(e) = serve::serve(listener, metrics::router(state), limits, shutdown).await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    Ok(addr)
}

/// `--sync-paused`: stores the global pause (reason [`SYNC_PAUSED_FLAG`]) unless one is stored
/// already (an operator's pause keeps its reason), so it shows in the admin API and can be
/// lifted at runtime. A stored pause outlives the process, as any pause does.
async fn pause_at_start(storage: &Storage, now_ms: i64) -> anyhow::Result<()> {
    let stored = storage.pauses().await?;
    if stored.iter().any(|p| p.scope == control::GLOBAL) {
        return Ok(());
    }
    storage
        .put_pause(storage::PauseRow {
            scope: control::GLOBAL.into(),
            email: None,
            paused_at_ms: now_ms,
            retry_after_secs: control::DEFAULT_RETRY_AFTER_SECS,
            reason: SYNC_PAUSED_FLAG.into(),
        })
        .await
        .with_context(|| "cannot store the pause of --sync-paused")
}

/// The reason of the pause `--sync-paused` stores.
pub const SYNC_PAUSED_FLAG: &str = "--sync-paused flag";

/// What every request handler shares, for `config` (an admin token too short is an error).
#[allow(clippy::too_many_arguments)]
fn app_state(
    config: &Config,
    storage: Storage,
    schema: Schema,
    secret: &str,
    jwks: Option<jwt::Jwks>,
    hub: ChangeHub,
    control: Arc<ControlPlane>,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<AppState>> {
    let admin_token = config.admin_token()?;
    let hash_concurrency = config
        .hash_concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let blob_store = blobs::BlobStore::from_config(config)?;
    tracing::info!(store = %blob_store.description, "attachments kept in the blob store");
    storage.set_blob_grace_ms(
        i64::try_from(config.attachment_grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
    );
    let uploads = Arc::new(blobs::Uploads::new(
        blob_store,
        storage.clone(),
        clock.clone(),
        blobs::Limits {
            max_bytes: config.attachment_max_bytes,
            quota_bytes: config.attachment_quota_bytes,
            chunk_bytes: blobs::CHUNK_BYTES,
        },
    ));
    Ok(Arc::new(AppState {
        storage,
        schema: Arc::new(schema),
        jwt: JwtKeys::with_issuers(
            secret.as_bytes(),
            config.access_token_ttl,
            config.jwt_audience.clone(),
            jwks,
        ),
        external_auth: config.external_auth(),
        own_auth: !config.disable_own_auth,
        min_password_chars: config.min_password_length.max(1),
        cursors: CursorCodec::new(secret.as_bytes()),
        hub,
        stream_slots: StreamSlots::new(config.max_event_streams_per_user),
        pull_notes: Default::default(),
        sign_in_limit: AttemptLimit::protocol_default(),
        sign_up_limit: AttemptLimit::sign_ups(config.sign_ups_per_hour),
        hashing: HashPool::new(hash_concurrency),
        client_ip_header: config.client_ip_header.clone(),
        refresh_reuse_grace_ms: i64::try_from(config.refresh_reuse_grace_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        max_body_bytes: config.max_body_bytes,
        body_read_timeout: Duration::from_secs(config.body_read_timeout_secs.max(1)),
        max_batch: config.max_batch,
        pauses: control.pauses.clone(),
        control,
        traffic: traffic::Traffic::default(),
        instance_id: uuid::Uuid::now_v7().simple().to_string()[..12].to_string(),
        shutdown,
        clock,
        space_limits: config.space_limits(),
        admin_token,
        uploads,
        metrics: metrics::Metrics::new(),
    }))
}

/// Purges tombstones older than the retention and op ids older than `OP_RETENTION_MS`, and
/// collects blobs no record references (deleted once orphaned longer than the retention) and
/// uploads abandoned longer than the retention.
#[derive(Clone)]
struct Purger {
    storage: Storage,
    retention_ms: i64,
    /// The attachment grace period: a blob held more recently is in use.
    grace_ms: i64,
    /// What deletes blobs' objects and aborts abandoned uploads in the blob store.
    blob_objects: BlobObjects,
    clock: Arc<dyn Clock>,
}

/// The blob store's side of a collection.
#[derive(Clone)]
struct BlobObjects {
    delete: storage::DeleteObject,
    /// Aborts an upload's multipart upload (user, hash, multipart id); `Err` is logged and
    /// retried by the next purge.
    abort: AbortUpload,
}

/// Aborts an upload's multipart upload in the blob store: (user, hash, multipart id).
type AbortUpload = Arc<
    dyn Fn(String, String, String) -> futures_util::future::BoxFuture<'static, Result<(), String>>
        + Send
        + Sync,
>;

impl BlobObjects {
    /// The collection's hooks into `store`: a blob is `blobs/<hash>`; an upload, a multipart
    /// upload staged under `uploads/<user>/<hash>`.
    fn of(store: &blobs::BlobStore) -> Self {
        let deleting = store.clone();
        let aborting = store.clone();
        Self {
            delete: Arc::new(move |hash: String| {
                let store = deleting.clone();
                Box::pin(async move {
                    match store.delete(&store.blob_key(&hash)).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(
                                hash = blobs::hash_prefix(&hash),
                                error = %e,
                                "cannot delete an unreferenced blob's object; the next purge retries"
                            );
                            false
                        }
                    }
                })
            }),
            abort: Arc::new(move |user: String, hash: String, multipart_id: String| {
                let store = aborting.clone();
                Box::pin(async move {
                    let key = store.staging_key(&user, &hash);
                    match store.abort_multipart(&key, &multipart_id).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                    store.delete(&key).await.map_err(|e| e.to_string())
                })
            }),
        }
    }
}

impl Purger {
    /// Purges at start and then every `interval`, until `shutdown`.
    fn spawn(&self, interval: Duration, shutdown: CancellationToken) {
        let purger = self.clone();
        let mut interval = tokio::time::interval(interval);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = interval.tick() => {}
                }
                if let Err(e) = purger.run_once().await {
                    tracing::warn!(error = %e, "purge failed; will retry");
                }
            }
        });
    }

    async fn run_once(&self) -> anyhow::Result<u64> {
        let now = self.clock.now_ms();
        let purged = self
            .storage
            .purge(now - self.retention_ms, now - OP_RETENTION_MS)
            .await?;
        if purged > 0 {
            tracing::info!(tombstones = purged, "purged old tombstones");
        }
        let space_rows = self.storage.purge_deleted_spaces().await?;
        if space_rows > 0 {
            tracing::info!(rows = space_rows, "purged records of deleted spaces");
        }
        let rejections = self
            .storage
            .trim_rejections(storage::MAX_REJECTIONS)
            .await?;
        if rejections > 0 {
            tracing::info!(rejections, "trimmed the oldest rejections");
        }
        self.collect_blobs(now).await?;
        Ok(purged)
    }

    /// The blob part of a purge: after the records (a space's or a tombstone's rows going may
    /// leave blobs unreferenced).
    async fn collect_blobs(&self, now: i64) -> anyhow::Result<()> {
        let objects = &self.blob_objects;
        let delete = objects.delete.clone();
        let gc = self
            .storage
            .collect_blobs(
                now,
                now.saturating_sub(self.grace_ms),
                now.saturating_sub(self.retention_ms),
                delete,
            )
            .await?;
        if gc != storage::BlobGc::default() {
            tracing::info!(
                marked = gc.marked,
                revived = gc.revived,
                deleted = gc.deleted,
                failed = gc.failed,
                "collected unreferenced blobs"
            );
        }
        let mut aborted = 0u64;
        for upload in self
            .storage
            .abandoned_uploads(now.saturating_sub(self.retention_ms))
            .await?
        {
            if let Err(e) = (objects.abort)(
                upload.user_id.clone(),
                upload.hash.clone(),
                upload.multipart_id.clone(),
            )
            .await
            {
                tracing::warn!(
                    user_id = %upload.user_id,
                    hash = blobs::hash_prefix(&upload.hash),
                    error = %e,
                    "cannot abort an abandoned upload; the next purge retries"
                );
                continue;
            }
            if self.storage.forget_abandoned_upload(upload).await? {
                aborted += 1;
            }
        }
        if aborted > 0 {
            tracing::info!(uploads = aborted, "deleted abandoned uploads");
        }
        Ok(())
    }
}
