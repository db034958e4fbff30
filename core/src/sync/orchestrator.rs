//! When sync runs: on demand (`sync_now`, `sync_once` with a deadline) and, once started, in the
//! background on triggers — local writes (at once, at most one run per minimum interval), foreground, connectivity, a periodic timer,
//! realtime pokes from the server's event stream, and retries with exponential backoff and full
//! jitter. Runs never overlap: a trigger during a run schedules exactly one more run after it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::api::SyncApi;
use super::conflict::{self, ConflictPolicy, ConflictRow};
use super::error::SyncError;
use super::lock::ProcessLock;
use super::resolve::{self, Resolution};
use super::run::{self, RunSettings, SyncReport};
use super::status::{FailureKind, Metrics, Phase, Status, Trigger};
use crate::attachments;
use crate::auth::{AuthSession, AuthState};
use crate::engine::{now_ms, Engine};
use crate::outbox;
use crate::runtime::runtime;
use crate::store::{lock, meta_delete, meta_get, meta_set};

use crate::defaults::{self, BACKOFF_BASE, BACKOFF_CAP};

/// Status counts are refreshed at most this often after local writes.
const COUNTS_THROTTLE: Duration = Duration::from_millis(50);

/// How sync behaves; the defaults are [`crate::defaults`].
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub push_batch_size: usize,
    pub pull_page_size: u32,
    pub debounce: Duration,
    pub periodic_interval: Duration,
    pub realtime: bool,
    pub policy: ConflictPolicy,
    /// The kill switch: `false` disables sync without touching local data.
    pub enabled: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            push_batch_size: defaults::PUSH_BATCH_SIZE,
            pull_page_size: defaults::PULL_PAGE_SIZE,
            debounce: defaults::DEBOUNCE,
            periodic_interval: defaults::PERIODIC_INTERVAL,
            realtime: defaults::REALTIME,
            policy: ConflictPolicy::Merge,
            enabled: defaults::SYNC_ENABLED,
        }
    }
}

/// The app's conflict resolver: `None` leaves the conflict to `resolve` later.
pub type Resolver = Arc<dyn Fn(&ConflictRow) -> Option<Resolution> + Send + Sync>;

/// The engine sync works on: replaced when the signed-in account changes.
pub type EngineSlot = RwLock<Arc<Engine>>;

#[derive(Default)]
struct Schedule {
    /// A run is wanted.
    pending: bool,
    /// Not before this (the minimum interval after a write, backoff).
    not_before: Option<Instant>,
    backoff_attempt: u32,
    /// When the last run started, for the minimum interval between runs a write starts.
    last_started: Option<Instant>,
}

pub struct Syncer {
    engines: Arc<EngineSlot>,
    auth: Arc<AuthSession>,
    api: SyncApi,
    options: SyncOptions,
    lock_dir: PathBuf,
    resolver: Option<Resolver>,
    /// The attachment cache's limit, for eviction after a run's prefetch.
    attachment_cache_bytes: u64,
    /// The sync status: the only copy of it (the client's notification thread delivers it).
    status: watch::Sender<Status>,
    metrics: Mutex<Metrics>,
    schedule: Mutex<Schedule>,
    run_gate: tokio::sync::Mutex<()>,
    wake: Notify,
    background: Mutex<Vec<JoinHandle<()>>>,
    counts_scheduled: AtomicBool,
}

impl Syncer {
    pub fn new(
        engines: Arc<EngineSlot>,
        auth: Arc<AuthSession>,
        api: SyncApi,
        options: SyncOptions,
        lock_dir: PathBuf,
        resolver: Option<Resolver>,
        attachment_cache_bytes: u64,
    ) -> Arc<Self> {
        let syncer = Arc::new(Self {
            engines,
            auth,
            api,
            options,
            lock_dir,
            resolver,
            attachment_cache_bytes,
            status: watch::Sender::new(Status::default()),
            metrics: Mutex::new(Metrics::default()),
            schedule: Mutex::new(Schedule::default()),
            run_gate: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            background: Mutex::new(Vec::new()),
            counts_scheduled: AtomicBool::new(false),
        });
        let initial = syncer.idle_phase();
        syncer.status.send_modify(|status| status.phase = initial);
        // Right from the start, not after a first refresh: a sync indicator (or `tandem status`)
        // shows the counts and the last sync of the previous session at once.
        match stored_status(&syncer.engine()) {
            Ok(stored) => syncer.status.send_modify(|status| stored.apply(status)),
            Err(e) => tracing::warn!(error = %e, "reading the stored sync status failed"),
        }
        match syncer.engine().store().read(load_last_run) {
            Ok(at) => syncer.status.send_modify(|status| status.last_run_at = at),
            Err(e) => tracing::warn!(error = %e, "reading the last sync run failed"),
        }
        if initial == Phase::Idle {
            match syncer.engine().store().read(StoredFailure::load) {
                Ok(Some(failure)) => syncer.status.send_modify(|status| failure.apply(status)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading the stored sync failure failed"),
            }
        }
        syncer
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// The sync status as a watched value: its current value, then every change.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    pub fn metrics(&self) -> Metrics {
        lock(&self.metrics).clone()
    }

    /// Counts the bytes of an attachment download outside a run (`Client::attachment`).
    pub fn count_attachment_download(&self, bytes: u64) {
        lock(&self.metrics).attachment_bytes_received += bytes;
    }

    /// One run now (waiting for a running one to finish first).
    pub async fn sync_now(self: &Arc<Self>, trigger: Trigger) -> Result<SyncReport, SyncError> {
        self.count_trigger(trigger);
        let _gate = self.run_gate.lock().await;
        self.run_and_record().await
    }

    /// One run bounded by `deadline` (for iOS background tasks and Android WorkManager).
    pub async fn sync_once(self: &Arc<Self>, deadline: Duration) -> Result<SyncReport, SyncError> {
        match tokio::time::timeout(deadline, self.sync_now(Trigger::Manual)).await {
            Ok(result) => result,
            Err(_) => {
                tracing::info!(
                    deadline_ms = deadline.as_millis() as u64,
                    "sync run cut off by its deadline"
                );
                // Entries left in flight are sent again next time with the same op ids.
                self.finish_failed(&SyncError::DeadlineExceeded).await;
                Err(SyncError::DeadlineExceeded)
            }
        }
    }

    /// Keeps runs from starting while the guard lives (an account switch is under way); waits for
    /// a running one to finish.
    pub async fn hold_runs(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.run_gate.lock().await
    }

    /// Starts background sync: the trigger loop and, when realtime is on, the event stream.
    pub fn start(self: &Arc<Self>) {
        let mut background = lock(&self.background);
        if !background.is_empty() {
            return;
        }
        tracing::debug!(realtime = self.options.realtime, "background sync started");
        background.push(runtime().spawn(Arc::clone(self).trigger_loop()));
        if self.options.realtime {
            background.push(runtime().spawn(Arc::clone(self).event_loop()));
        }
    }

    /// Stops background sync; a run under way finishes.
    pub fn stop(&self) {
        tracing::debug!("background sync stopped");
        for task in lock(&self.background).drain(..) {
            task.abort();
        }
        // The event loop was aborted mid-stream, so it never cleared the flag itself.
        self.set_realtime(false);
    }

    pub fn is_started(&self) -> bool {
        !lock(&self.background).is_empty()
    }

    /// Asks for a run (when started) for `trigger`.
    pub fn trigger(&self, trigger: Trigger) {
        self.count_trigger(trigger);
        {
            let mut schedule = lock(&self.schedule);
            schedule.pending = true;
            match trigger {
                // Writes made while a run is under way join the next one (`pending`), so a
                // burst costs one or two runs.
                Trigger::LocalWrite => {
                    schedule.not_before =
                        after_write(&schedule, self.options.debounce, Instant::now())
                }
                // The user or the OS says "now": skip any backoff wait.
                Trigger::Foreground | Trigger::Connectivity | Trigger::Manual => {
                    schedule.not_before = None
                }
                _ => {}
            }
        }
        self.wake.notify_one();
    }

    /// A local write happened: refresh the counts and, when started, ask for a run (at once
    /// when none ran within the minimum interval).
    pub fn local_write(self: &Arc<Self>) {
        if self.is_started() {
            self.trigger(Trigger::LocalWrite);
        }
        self.refresh_counts_soon();
    }

    /// The device went online (retry at once) or offline.
    pub fn connectivity(&self, online: bool) {
        if online {
            self.trigger(Trigger::Connectivity);
        } else {
            self.set_phase(Phase::Offline);
        }
    }

    /// The signed-in account (or its session) changed.
    pub fn account_changed(self: &Arc<Self>) {
        let phase = self.idle_phase();
        tracing::debug!(phase = ?phase, "sync follows the account change");
        self.change_status(|status| {
            status.phase = phase;
            status.last_error = None;
            status.last_synced_at = None;
            status.last_run_at = None;
            status.last_failure = None;
        });
        lock(&self.schedule).backoff_attempt = 0;
        self.refresh_counts_soon();
        if self.is_started() {
            // The event stream belongs to the previous account's token: reconnect as this one.
            // Restarting the loops also runs a first sync for the new account right away.
            self.stop();
            self.start();
        }
    }

    /// The session expired (a refresh was refused): show it at once; runs stop by themselves
    /// until someone signs in.
    pub fn session_expired(&self) {
        tracing::info!("sync stops: the session expired");
        self.set_phase(Phase::SignedOut);
    }

    fn idle_phase(&self) -> Phase {
        if !self.options.enabled {
            return Phase::Paused;
        }
        match self.auth.state() {
            AuthState::SignedIn(_) => Phase::Idle,
            _ => Phase::SignedOut,
        }
    }

    async fn trigger_loop(self: Arc<Self>) {
        let mut next_periodic = Instant::now(); // a first run right away
        loop {
            let now = Instant::now();
            if now >= next_periodic {
                next_periodic = now + self.options.periodic_interval;
                self.trigger(Trigger::Periodic);
            }
            let (pending, not_before) = {
                let s = lock(&self.schedule);
                (s.pending, s.not_before)
            };
            if pending && not_before.is_none_or(|t| now >= t) {
                {
                    let mut schedule = lock(&self.schedule);
                    schedule.pending = false;
                    schedule.last_started = Some(now);
                }
                let result = {
                    let _gate = self.run_gate.lock().await;
                    self.run_and_record().await
                };
                if let Err(e) = result {
                    self.schedule_retry(&e);
                }
                continue;
            }
            let wake_at = match (pending, not_before) {
                (true, Some(t)) => t.min(next_periodic),
                _ => next_periodic,
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(wake_at.into()) => {}
            }
        }
    }

    fn schedule_retry(&self, error: &SyncError) {
        if matches!(
            error,
            SyncError::SessionExpired | SyncError::NotSignedIn | SyncError::Disabled
        ) {
            return; // nothing a retry could fix; sign-in or configuration restarts sync
        }
        {
            let mut schedule = lock(&self.schedule);
            schedule.backoff_attempt = schedule.backoff_attempt.saturating_add(1);
            let jittered = full_jitter(schedule.backoff_attempt);
            let asked = Duration::from_secs(error.retry_after_secs().unwrap_or(0));
            let delay = jittered.max(asked);
            schedule.not_before = Some(Instant::now() + delay);
            tracing::debug!(
                attempt = schedule.backoff_attempt,
                delay_ms = delay.as_millis() as u64,
                "sync retry scheduled"
            );
        }
        self.trigger_retry();
    }

    fn trigger_retry(&self) {
        self.count_trigger(Trigger::Retry);
        lock(&self.schedule).pending = true;
        self.wake.notify_one();
    }

    async fn event_loop(self: Arc<Self>) {
        let mut attempt = 0u32;
        loop {
            if matches!(self.auth.state(), AuthState::SignedIn(_)) && self.options.enabled {
                match self.api.events().await {
                    Ok(response) => {
                        attempt = 0;
                        tracing::info!("realtime stream connected");
                        // The server subscribed before answering; a run now catches up with
                        // anything committed while the stream was down.
                        self.set_realtime(true);
                        self.trigger(Trigger::Realtime);
                        let mut events =
                            eventsource_stream::Eventsource::eventsource(response.bytes_stream());
                        loop {
                            match events.next().await {
                                Some(Ok(event)) => {
                                    if event.event != tandem_protocol::POKE_EVENT {
                                        continue;
                                    }
                                    if own_push(&event.data, self.api.client_id()) {
                                        tracing::trace!(
                                            "realtime poke of this device's own push skipped"
                                        );
                                    } else {
                                        tracing::trace!("realtime poke");
                                        self.trigger(Trigger::Realtime);
                                    }
                                }
                                Some(Err(e)) => {
                                    tracing::info!(error = %e, "realtime stream read failed");
                                    break;
                                }
                                None => {
                                    tracing::info!("realtime stream ended");
                                    break;
                                }
                            }
                        }
                        self.set_realtime(false);
                    }
                    Err(e) => {
                        attempt = attempt.saturating_add(1);
                        tracing::info!(attempt, error = %e, "realtime stream connect failed");
                    }
                }
            } else {
                attempt = attempt.saturating_add(1);
            }
            tokio::time::sleep(full_jitter(attempt.max(1))).await;
        }
    }

    /// One run with status, metrics and the resolver around it. Callers hold the run gate.
    async fn run_and_record(self: &Arc<Self>) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        tracing::debug!("sync run started");
        let result = self.run_guarded().await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(report) => tracing::info!(
                pushed = report.pushed,
                applied = report.applied,
                duplicates = report.duplicates,
                conflicts = report.conflicts,
                rejected = report.rejected,
                pulled = report.pulled,
                parked = report.parked.len(),
                full_repull = report.full_repull,
                bytes_sent = report.bytes_sent,
                bytes_received = report.bytes_received,
                attachments_uploaded = report.attachments_uploaded,
                attachment_bytes_sent = report.attachment_bytes_sent,
                attachment_bytes_received = report.attachment_bytes_received,
                duration_ms,
                "sync run finished"
            ),
            // Expected states, not failures: nobody signed in, sync disabled, another process.
            Err(
                e @ (SyncError::NotSignedIn
                | SyncError::SessionExpired
                | SyncError::Disabled
                | SyncError::Busy),
            ) => tracing::debug!(error = %e, duration_ms, "sync run skipped"),
            Err(e @ SyncError::Offline(_)) => {
                tracing::info!(error = %e, duration_ms, "sync run failed: offline")
            }
            Err(e) => tracing::warn!(error = %e, duration_ms, "sync run failed"),
        }
        {
            let mut metrics = lock(&self.metrics);
            metrics.runs += 1;
            metrics.last_run_duration_ms = started.elapsed().as_millis() as u64;
            match &result {
                Ok(report) => {
                    metrics.ops_pushed += report.pushed;
                    metrics.changes_pulled += report.pulled;
                    metrics.bytes_sent += report.bytes_sent;
                    metrics.bytes_received += report.bytes_received;
                    metrics.space_collisions += report.space_collisions;
                    metrics.attachment_bytes_received += report.attachment_bytes_received;
                    metrics.attachment_bytes_sent += report.attachment_bytes_sent;
                }
                Err(_) => metrics.failures += 1,
            }
        }
        match &result {
            Ok(_) => self.finish_ok().await,
            Err(e) => self.finish_failed(e).await,
        }
        result
    }

    async fn run_guarded(self: &Arc<Self>) -> Result<SyncReport, SyncError> {
        if !self.options.enabled {
            return Err(SyncError::Disabled);
        }
        match self.auth.state() {
            AuthState::SignedIn(_) => {}
            AuthState::SessionExpired(_) => return Err(SyncError::SessionExpired),
            AuthState::SignedOut => return Err(SyncError::NotSignedIn),
        }
        let engine = self.engine();
        let lock_path = self.lock_dir.join(lock_file_name(&engine));
        let Some(_process_lock) =
            ProcessLock::try_acquire(&lock_path).map_err(|e| SyncError::Local(e.to_string()))?
        else {
            return Err(SyncError::Busy);
        };
        self.set_phase(Phase::Pushing);
        let settings = RunSettings {
            push_batch_size: self.options.push_batch_size,
            pull_page_size: self.options.pull_page_size,
            policy: if self.resolver.is_some() {
                ConflictPolicy::Manual
            } else {
                self.options.policy
            },
            attachment_cache_bytes: self.attachment_cache_bytes,
        };
        let progress = |pulled: u64, remaining: u64| self.set_progress(pulled, remaining);
        let transfer = |_hash: &str, _done: u64, _total: u64, run_bytes: u64| {
            self.change_status(|status| status.attachment_bytes_transferred = run_bytes);
        };
        let report = run::run(&engine, &self.api, settings, &progress, &transfer).await?;
        if let Some(resolver) = &self.resolver {
            self.apply_resolver(&engine, resolver, &report.parked).await;
        }
        Ok(report)
    }

    /// Hands conflicts of this run to the app's resolver; its answers go up with the next run.
    async fn apply_resolver(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        resolver: &Resolver,
        parked: &[(String, String)],
    ) {
        let mut resolved_any = false;
        for (collection, id) in parked {
            let (engine, resolver) = (Arc::clone(engine), Arc::clone(resolver));
            let (collection, id) = (collection.clone(), id.clone());
            let outcome = tokio::task::spawn_blocking(move || -> bool {
                let open = match engine.store().read(|c| conflict::get(c, &collection, &id)) {
                    Ok(Some(open)) => open,
                    Ok(None) => return false,
                    Err(e) => {
                        tracing::warn!(%collection, %id, error = %e, "reading a conflict for the resolver failed");
                        return false;
                    }
                };
                // The resolver is the app's code; a failure there leaves the conflict to the app.
                let answer = match catch_unwind(AssertUnwindSafe(|| resolver(&open))) {
                    Ok(Some(answer)) => answer,
                    Ok(None) => {
                        tracing::debug!(%collection, %id, "the resolver left the conflict to the app");
                        return false;
                    }
                    Err(_) => {
                        tracing::error!(%collection, %id, "the conflict resolver panicked; the conflict stays open");
                        return false;
                    }
                };
                match resolve::resolve(&engine, &collection, &id, answer) {
                    Ok(_) => {
                        tracing::debug!(%collection, %id, "conflict resolved by the resolver");
                        true
                    }
                    Err(e) => {
                        tracing::warn!(%collection, %id, error = %e, "applying the resolver's answer failed");
                        false
                    }
                }
            })
            .await;
            resolved_any |= match outcome {
                Ok(resolved) => resolved,
                Err(e) => {
                    tracing::error!(error = %e, "the resolver task failed");
                    false
                }
            };
        }
        if resolved_any {
            lock(&self.schedule).pending = true;
            self.wake.notify_one();
        }
    }

    async fn finish_ok(&self) {
        lock(&self.schedule).backoff_attempt = 0;
        let now = now_ms();
        self.change_status(|status| {
            status.phase = Phase::Idle;
            status.last_error = None;
            status.last_synced_at = Some(now);
            status.last_run_at = Some(now);
            status.last_failure = None;
            status.pulled = 0;
            status.remaining = 0;
            status.attachment_bytes_transferred = 0;
        });
        // Kept in the account's store, so the next session's status starts with it.
        let engine = self.engine();
        let saved =
            tokio::task::spawn_blocking(move || engine.store().write(|tx| save_last_sync(tx, now)))
                .await;
        log_store_task(saved, "storing the last sync time failed");
        self.refresh_counts().await;
    }

    async fn finish_failed(&self, error: &SyncError) {
        let phase = match error {
            SyncError::Offline(_) => Phase::Offline,
            SyncError::Paused { .. } | SyncError::Disabled => Phase::Paused,
            SyncError::SessionExpired | SyncError::NotSignedIn => Phase::SignedOut,
            SyncError::Busy => Phase::Idle,
            _ => Phase::Error,
        };
        let now = now_ms();
        self.change_status(|status| {
            status.phase = phase;
            status.last_error = (error != &SyncError::Busy).then(|| error.to_string());
            if error != &SyncError::Busy {
                status.last_failure = Some(FailureKind::of(error));
                status.last_run_at = Some(now);
            }
            status.pulled = 0;
            status.remaining = 0;
            status.attachment_bytes_transferred = 0;
        });
        // Kept like the last success, so a new process (`tandem status`, an app's next launch)
        // shows that the last run failed and why instead of a blank `idle`.
        if let Some(failure) = StoredFailure::of(phase, error, now) {
            let engine = self.engine();
            let saved =
                tokio::task::spawn_blocking(move || engine.store().write(|tx| failure.save(tx)))
                    .await;
            log_store_task(saved, "storing the last sync failure failed");
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.change_status(|status| status.phase = phase);
    }

    fn set_realtime(&self, connected: bool) {
        self.change_status(|status| status.realtime = connected);
    }

    /// Applies `change`; observers hear of it only when something actually changed.
    fn change_status(&self, change: impl FnOnce(&mut Status)) {
        self.status.send_if_modified(|status| {
            let before = status.clone();
            change(status);
            *status != before
        });
    }

    fn set_progress(&self, pulled: u64, remaining: u64) {
        self.change_status(|status| {
            status.phase = Phase::Pulling;
            status.pulled = pulled;
            status.remaining = remaining;
        });
    }

    fn refresh_counts_soon(self: &Arc<Self>) {
        if self.counts_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        // Weak while it waits: a closed engine must not stay open for a pending count.
        let syncer = Arc::downgrade(self);
        runtime().spawn(async move {
            tokio::time::sleep(COUNTS_THROTTLE).await;
            let Some(syncer) = syncer.upgrade() else {
                return;
            };
            syncer.counts_scheduled.store(false, Ordering::Release);
            syncer.refresh_counts().await;
        });
    }

    /// Reads the counts and the last sync of the current account's store into the status.
    async fn refresh_counts(&self) {
        let engine = self.engine();
        let stored = tokio::task::spawn_blocking(move || stored_status(&engine)).await;
        match stored {
            Ok(Ok(stored)) => self.change_status(|status| stored.apply(status)),
            Ok(Err(e)) => tracing::warn!(error = %e, "reading the sync counts failed"),
            Err(e) => tracing::warn!(error = %e, "the sync counts task failed"),
        }
    }

    fn engine(&self) -> Arc<Engine> {
        Arc::clone(&*self.engines.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn count_trigger(&self, trigger: Trigger) {
        *lock(&self.metrics).triggers.entry(trigger).or_insert(0) += 1;
    }
}

/// Logs a failed store write that sync carries on without (once, at warn).
fn log_store_task(
    result: Result<crate::error::Result<()>, tokio::task::JoinError>,
    what: &'static str,
) {
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "{what}"),
        Err(e) => tracing::warn!(error = %e, "{what}"),
    }
}

/// Where the time of the last successful run is kept, in the account store's `meta` table.
const LAST_SYNC_KEY: &str = "last_synced_at";

/// What the status shows that the store knows: the counts and the last successful run.
struct StoredStatus {
    pending: u64,
    conflicts: u64,
    rejected: u64,
    last_synced_at: Option<i64>,
    /// Attachments to upload, and their bytes.
    attachments: (u64, u64),
}

impl StoredStatus {
    fn apply(self, status: &mut Status) {
        status.pending = self.pending;
        status.conflicts = self.conflicts;
        status.rejected = self.rejected;
        status.last_synced_at = self.last_synced_at;
        (status.attachments_pending, status.attachment_bytes_pending) = self.attachments;
    }
}

fn stored_status(engine: &Engine) -> crate::error::Result<StoredStatus> {
    let schema = engine.schema();
    engine.store().read(|c| {
        Ok(StoredStatus {
            pending: outbox::unsent_count(c)?,
            conflicts: conflict::count(c)?,
            rejected: outbox::rejected_count(c)?,
            last_synced_at: meta_get(c, LAST_SYNC_KEY)?.and_then(|ms| ms.parse().ok()),
            attachments: attachments::pending_totals(c, schema)?,
        })
    })
}

/// A success also clears the failure kept before it.
fn save_last_sync(tx: &rusqlite::Transaction<'_>, at_ms: i64) -> crate::error::Result<()> {
    meta_set(tx, LAST_SYNC_KEY, &at_ms.to_string())?;
    meta_set(tx, LAST_RUN_KEY, &at_ms.to_string())?;
    meta_delete(tx, LAST_FAILURE_KIND_KEY)?;
    meta_delete(tx, LAST_FAILURE_KEY)
}

/// Where the end of the last run (successful or kept as failed) is kept.
const LAST_RUN_KEY: &str = "last_sync_run_at";
/// Where the kind of the kept failure is, next to its phase and text.
const LAST_FAILURE_KIND_KEY: &str = "last_sync_failure_kind";

/// When the last kept run ended: stores from before the key existed have only the last success.
fn load_last_run(conn: &rusqlite::Connection) -> crate::error::Result<Option<i64>> {
    let at = match meta_get(conn, LAST_RUN_KEY)? {
        Some(at) => Some(at),
        None => meta_get(conn, LAST_SYNC_KEY)?,
    };
    Ok(at.and_then(|ms| ms.parse().ok()))
}

/// Where the outcome of a failed last run is kept: `<phase> <error text>`.
const LAST_FAILURE_KEY: &str = "last_sync_failure";

/// The last run's failure as the next session's status starts with it. Only failures that say
/// something about the device or the server are kept: offline and other errors. A busy lock,
/// a pause or a signed-out state is re-established by the new session itself.
struct StoredFailure {
    phase: Phase,
    error: String,
    /// `None` when read from a store written before kinds were kept.
    kind: Option<FailureKind>,
    at_ms: i64,
}

impl StoredFailure {
    fn of(phase: Phase, error: &SyncError, at_ms: i64) -> Option<Self> {
        matches!(phase, Phase::Offline | Phase::Error).then(|| Self {
            phase,
            error: error.to_string(),
            kind: Some(FailureKind::of(error)),
            at_ms,
        })
    }

    fn save(&self, tx: &rusqlite::Transaction<'_>) -> crate::error::Result<()> {
        let phase = if self.phase == Phase::Offline {
            "offline"
        } else {
            "error"
        };
        if let Some(kind) = self.kind {
            meta_set(tx, LAST_FAILURE_KIND_KEY, kind.code())?;
        }
        meta_set(tx, LAST_RUN_KEY, &self.at_ms.to_string())?;
        meta_set(tx, LAST_FAILURE_KEY, &format!("{phase} {}", self.error))
    }

    fn load(conn: &rusqlite::Connection) -> crate::error::Result<Option<Self>> {
        let Some(text) = meta_get(conn, LAST_FAILURE_KEY)? else {
            return Ok(None);
        };
        let Some((phase, error)) = text.split_once(' ') else {
            return Ok(None);
        };
        let phase = match phase {
            "offline" => Phase::Offline,
            "error" => Phase::Error,
            _ => return Ok(None),
        };
        let kind = meta_get(conn, LAST_FAILURE_KIND_KEY)?;
        Ok(Some(Self {
            phase,
            error: error.to_string(),
            kind: kind.as_deref().and_then(FailureKind::parse),
            at_ms: 0,
        }))
    }

    fn apply(self, status: &mut Status) {
        status.phase = self.phase;
        status.last_error = Some(self.error);
        status.last_failure = self.kind;
    }
}

/// One lock file per database, next to it.
fn lock_file_name(engine: &Engine) -> String {
    let db = engine
        .store()
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{db}.sync-lock")
}

/// When a run may start after a local write (`None`: at once): leading edge, unless the last
/// run started less than `interval` ago (then at the interval's end; the writes in between
/// join that run). A backoff wait after a failure stands: a user typing offline must not turn
/// every keystroke into a failing run.
fn after_write(schedule: &Schedule, interval: Duration, now: Instant) -> Option<Instant> {
    if schedule.backoff_attempt > 0 {
        return schedule.not_before;
    }
    schedule
        .last_started
        .map(|started| started + interval)
        .filter(|earliest| *earliest > now)
}

/// Exponential backoff with full jitter: a random delay in [0, min(cap, base · 2^attempt)].
fn full_jitter(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(rand::random::<f64>())
}

/// Whether a poke announces only a push of this device (`origin` is its `clientId`): its run
/// pulls after pushing, so such a poke brings nothing that run does not. Any other device's
/// commit, even one committed at the same moment, is announced by a poke of its own (the
/// server sends one per commit, and a connection that missed notices pokes without an origin),
/// so skipping this one loses no change. Anything unreadable counts as a poke to act on.
fn own_push(data: &str, client_id: &str) -> bool {
    serde_json::from_str::<tandem_protocol::Poke>(data)
        .is_ok_and(|poke| poke.origin.as_deref() == Some(client_id) && !poke.account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_poke_naming_this_device_as_its_origin_is_skipped() {
        assert!(own_push(r#"{"cursor":"c","origin":"me"}"#, "me"));
        assert!(own_push(
            r#"{"cursor":"c","stream":"space:s","origin":"me"}"#,
            "me"
        ));
        assert!(!own_push(r#"{"cursor":"c","origin":"other"}"#, "me"));
        assert!(!own_push(r#"{"cursor":"c"}"#, "me"));
        assert!(!own_push(r#"{"cursor":"c","account":true}"#, "me"));
        assert!(!own_push("not json", "me"));
    }

    #[test]
    fn a_write_starts_a_run_at_once_unless_one_started_within_the_interval() {
        let now = Instant::now();
        let interval = Duration::from_millis(500);
        let idle = Schedule::default();
        assert_eq!(
            after_write(&idle, interval, now),
            None,
            "never ran: at once"
        );
        let long_ago = Schedule {
            last_started: Some(now - Duration::from_secs(2)),
            ..Schedule::default()
        };
        assert_eq!(after_write(&long_ago, interval, now), None, "leading edge");
        let recent = Schedule {
            last_started: Some(now - Duration::from_millis(100)),
            ..Schedule::default()
        };
        assert_eq!(
            after_write(&recent, interval, now),
            Some(now + Duration::from_millis(400)),
            "at the interval's end"
        );
        assert_eq!(
            after_write(&recent, Duration::ZERO, now),
            None,
            "no interval: at once"
        );
        let backing_off = Schedule {
            backoff_attempt: 2,
            not_before: Some(now + Duration::from_secs(8)),
            last_started: Some(now - Duration::from_secs(2)),
            ..Schedule::default()
        };
        assert_eq!(
            after_write(&backing_off, interval, now),
            Some(now + Duration::from_secs(8)),
            "a backoff wait stands"
        );
    }

    #[test]
    fn jitter_stays_under_the_cap() {
        for attempt in 0..40 {
            let d = full_jitter(attempt);
            assert!(d <= BACKOFF_CAP);
            assert!(d <= BACKOFF_BASE.saturating_mul(1 << attempt.min(16)));
        }
    }
}
