//! The auth and sync half of `Tandem`: async functions (Swift `async`, Kotlin `suspend`) that run
//! on Tandem's own runtime, status and listeners, conflicts and dead letters.

use std::sync::Arc;
use std::time::Duration;

use super::error::TandemError;
use super::foreign::{AuthStateListener, SyncStatusListener};
use super::sync_types::{
    AuthState, Conflict, RejectedChange, Resolution, SchemaViolation, SyncMetrics, SyncReport,
    SyncStatus, User,
};
use super::types::{Record, Reverted};
use super::{Subscription, Tandem};
use tandem_core::Resolution as EngineResolution;

#[uniffi::export]
impl Tandem {
    /// Creates an account and signs in. The first sign-in on a device adopts the data written
    /// while signed out; its pending changes go up to the new account.
    pub async fn sign_up(&self, email: String, password: String) -> Result<User, TandemError> {
        self.on_runtime(|client| async move { Ok(client.sign_up(&email, &password).await?.into()) })
            .await
    }

    /// Signs in. Each account's data lives in its own database; signing in as another user never
    /// shows this user's data.
    pub async fn sign_in(&self, email: String, password: String) -> Result<User, TandemError> {
        self.on_runtime(|client| async move { Ok(client.sign_in(&email, &password).await?.into()) })
            .await
    }

    /// Signs this device out; the user's other devices stay signed in. With `wipe_local_data`
    /// the user's database (pending changes included) and secrets are deleted; otherwise they
    /// wait for the next sign-in.
    pub async fn sign_out(&self, wipe_local_data: bool) -> Result<(), TandemError> {
        self.on_runtime(|client| async move { Ok(client.sign_out(wipe_local_data).await?) })
            .await
    }

    /// Signs this device out and every other device of the user too (the server revokes every
    /// sign-in of the account). Offline, only this device is signed out. `wipe_local_data` as
    /// for `sign_out`.
    pub async fn sign_out_everywhere(&self, wipe_local_data: bool) -> Result<(), TandemError> {
        self.on_runtime(
            |client| async move { Ok(client.sign_out_everywhere(wipe_local_data).await?) },
        )
        .await
    }

    /// The signed-in user (also while the session is expired), or nothing.
    pub fn current_user(&self) -> Result<Option<User>, TandemError> {
        self.call(|client| Ok(client.current_user().map(User::from)))
    }

    /// Who is signed in.
    pub fn auth_state(&self) -> Result<AuthState, TandemError> {
        self.call(|client| Ok(client.auth_state().into()))
    }

    /// Tells `listener` the auth state right away, then every change (sign-in, sign-out, expiry),
    /// on Tandem's notification thread.
    pub fn observe_auth_state(
        &self,
        listener: Arc<dyn AuthStateListener>,
    ) -> Result<Arc<Subscription>, TandemError> {
        self.call(|client| {
            let handle = client
                .observe_auth_state(Box::new(move |state| listener.on_auth_state(state.into())))?;
            Ok(Subscription::new(handle))
        })
    }

    /// Runs one sync now (push, then pull) and reports what it did. Runs never overlap: this
    /// waits for a running one first.
    pub async fn sync_now(&self) -> Result<SyncReport, TandemError> {
        self.on_runtime(|client| async move { Ok(client.sync_now().await?.into()) })
            .await
    }

    /// One run bounded by `deadline_ms`, for iOS `BGTaskScheduler` and Android WorkManager.
    pub async fn sync_once(&self, deadline_ms: u64) -> Result<SyncReport, TandemError> {
        self.on_runtime(|client| async move {
            Ok(client
                .sync_once(Duration::from_millis(deadline_ms))
                .await?
                .into())
        })
        .await
    }

    /// Starts background sync: runs after local writes (at once by default), a periodic run, realtime pokes
    /// from the server, retries with backoff.
    pub fn start_sync(&self) -> Result<(), TandemError> {
        self.call(|client| client.start_sync())
    }

    /// Stops background sync (a run under way finishes).
    pub fn stop_sync(&self) -> Result<(), TandemError> {
        self.call(|client| client.stop_sync())
    }

    /// The app came to the foreground: sync now (when started).
    pub fn notify_foreground(&self) -> Result<(), TandemError> {
        self.call(|client| client.notify_foreground())
    }

    /// Connectivity changed; going online retries at once.
    pub fn notify_connectivity(&self, online: bool) -> Result<(), TandemError> {
        self.call(|client| client.notify_connectivity(online))
    }

    /// The sync status now.
    pub fn sync_status(&self) -> Result<SyncStatus, TandemError> {
        self.call(|client| Ok(client.sync_status()?.into()))
    }

    /// Tells `listener` the sync status right away, then after every change, on Tandem's
    /// notification thread. Changes in quick succession may arrive as the newest status only.
    pub fn observe_sync_status(
        &self,
        listener: Arc<dyn SyncStatusListener>,
    ) -> Result<Arc<Subscription>, TandemError> {
        self.call(|client| {
            let handle = client.observe_sync_status(Box::new(move |status| {
                listener.on_sync_status(status.into())
            }))?;
            Ok(Subscription::new(handle))
        })
    }

    /// Counters for diagnostics screens.
    pub fn sync_metrics(&self) -> Result<SyncMetrics, TandemError> {
        self.call(|client| Ok(client.sync_metrics()?.into()))
    }

    /// Conflicts waiting for the app, oldest first.
    pub fn conflicts(&self) -> Result<Vec<Conflict>, TandemError> {
        self.call(|client| {
            Ok(client
                .conflicts()?
                .into_iter()
                .map(Conflict::from)
                .collect())
        })
    }

    /// Settles a conflict; the result goes up with the next sync. Returns the record afterwards
    /// (nothing when it ends up deleted).
    pub fn resolve(
        &self,
        collection: String,
        id: String,
        resolution: Resolution,
    ) -> Result<Option<Record>, TandemError> {
        let resolution = EngineResolution::try_from(resolution)?;
        self.call(|client| {
            Ok(client
                .resolve(&collection, &id, resolution)?
                .map(Record::from))
        })
    }

    /// Stored records that break a reference or unique constraint of the schema: possible only
    /// after a schema added one to a collection that already held data (`open` accepts such a
    /// schema, logs a warning, and checks every new write). Empty once the app fixed them.
    pub fn schema_violations(&self) -> Result<Vec<SchemaViolation>, TandemError> {
        self.call(|client| {
            Ok(client
                .schema_violations()?
                .into_iter()
                .map(SchemaViolation::from)
                .collect())
        })
    }

    /// Changes the server refused (dead letters), oldest first.
    pub fn rejected(&self) -> Result<Vec<RejectedChange>, TandemError> {
        self.call(|client| {
            Ok(client
                .rejected()?
                .into_iter()
                .map(RejectedChange::from)
                .collect())
        })
    }

    /// Drops a dead letter: the record goes back to the server's state (or disappears when the
    /// server never had it). Editing the record instead makes a fresh change.
    pub fn discard_rejected(&self, op_id: String) -> Result<(), TandemError> {
        self.call(|client| client.discard_rejected(&op_id))
    }

    /// Drops the record's unsent changes — its pending and in-flight outbox entries, its dead
    /// letters and any open conflict — and restores the server's state, in one transaction;
    /// observers are told. A record the server never had disappears, with what was created
    /// below it; one the server deleted goes; a record deleted here comes back with the records
    /// the delete took along. Other records' changes stay. A change already sent (in flight, or
    /// its answer lost) may still land: the next sync then brings it back. Returns the record
    /// afterwards and whether anything changed (a record already at the server's state is left
    /// alone). Fails with `NotFound` when the store has no such record (live or deleted),
    /// `InvalidArgument` for a bad id and `Validation` (`unknown_entity`) for an undeclared
    /// collection.
    pub fn revert(&self, collection: String, id: String) -> Result<Reverted, TandemError> {
        self.call(|client| Ok(client.revert(&collection, &id)?.into()))
    }
}
