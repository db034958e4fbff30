//! Tandem's exported API (UniFFI): a thin layer over [`tandem_core::Client`] that converts types,
//! maps errors and keeps panics from crossing into Swift, Kotlin or Python. No engine logic lives
//! here. `session.rs` holds the auth and sync half of `Tandem`.
//!
//! This is the only crate built as a `cdylib`/`staticlib` (`libtandem`); Rust programs may use
//! its `Tandem` too (the CLI, the bench, the convergence kit), or `tandem_core` directly.

#[cfg(any(target_os = "android", test))]
mod android;
mod attachments;
mod collection;
mod encryption;
mod error;
mod foreign;
mod logging;
mod session;
mod spaces;
mod sync_types;
mod types;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use attachments::{
    AttachmentErrorKind, AttachmentFailure, AttachmentObserver, AttachmentRef, AttachmentState,
};
pub use collection::TandemCollection;
pub use encryption::{set_aside_unreadable_data, Encryption};
pub use error::{
    AuthFailure, KeyFailure, SpaceErrorKind, SyncFailure, TandemError, ValidationReason,
};
pub use foreign::{
    AuthStateListener, ChangeListener, ConflictResolver, QueryObserver, RecordObserver,
    SecureStore, SecureStoreError, SyncStatusListener,
};
pub use logging::{clear_log_sink, dropped_log_lines, set_log_sink, LogLevel, LogSink};
pub use spaces::{InvitationsObserver, SpacesObserver};
pub use sync_types::{
    default_sync_config, max_write_batch, AuthState, Conflict, ConflictPolicy, ConflictReason,
    OutcomeKind, ParkedConflict, PushOutcome, RejectedChange, Resolution, SchemaViolation,
    SchemaViolationKind, SyncConfig, SyncMetrics, SyncPhase, SyncReport, SyncStatus, TriggerCount,
    User,
};
pub use types::{
    ChangeKind, Filter, FilterOp, Invitation, Member, OrderBy, OutboxEntry, OutboxState, Query,
    Record, RecordState, Reverted, SentInvitation, Space, SpaceRole, TandemConfig, WriteOp,
};

use tandem_core::http::HttpConfig;
use tandem_core::runtime::runtime;
use tandem_core::{
    Client, ClientConfig, Error, Query as EngineQuery, RecordRow, SubscriptionHandle, SyncOptions,
    WriteOp as EngineWriteOp,
};
use tandem_protocol::clock::{Clock, SystemClock};

/// The runtime `Tandem`'s async functions run on, for Rust callers that block on them.
pub use tandem_core::runtime;

uniffi::setup_scaffolding!("tandem");

/// A running observation or listener. `cancel()` ends it; so does dropping the last reference.
#[derive(uniffi::Object)]
pub struct Subscription {
    handle: SubscriptionHandle,
}

impl Subscription {
    pub(crate) fn new(handle: SubscriptionHandle) -> Arc<Self> {
        Arc::new(Self { handle })
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops deliveries; none starts after this returns.
    pub fn cancel(&self) {
        self.handle.cancel();
    }
}

/// An open Tandem store: local records, their outbox, observers, and (with a server) the auth
/// session and sync.
#[derive(uniffi::Object)]
pub struct Tandem {
    client: RwLock<Option<Arc<Client>>>,
    /// The schema the store was opened with, for the calls that ask what a field is (the
    /// attachment calls).
    schema: tandem_protocol::Schema,
}

#[uniffi::export]
impl Tandem {
    /// Opens the store in `config.data_dir` (creating it when missing) for `config.schema_json`,
    /// restoring the signed-in session, if any, from the secure store. Fails with `Schema` for a
    /// bad schema (or one the stored data cannot follow), `AlreadyOpen` when this process already
    /// has the directory open, and `InvalidArgument` for a bad server URL.
    #[uniffi::constructor]
    pub fn open(config: TandemConfig) -> Result<Arc<Self>, TandemError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Closes the store and stops sync and observers. Later calls fail with `Closed`. The same
    /// directory can be opened again at once (e.g. with another server): `open` waits for a run
    /// under way here to let go of the database. (Kotlin's `close()` from `AutoCloseable`
    /// releases the object and does this too.)
    pub fn shutdown(&self) {
        let client = self
            .client
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(client) = client {
            client.close();
        }
    }

    /// Creates or replaces a whole document; generates a UUID v7 id when `id` is absent. A put
    /// that leaves a synced or pending record's document as it is (a no-op save) writes
    /// nothing: no outbox entry, no new `updated_at`, no observer call, no sync.
    pub fn put(
        &self,
        collection: String,
        id: Option<String>,
        json: String,
    ) -> Result<Record, TandemError> {
        self.write_one(WriteOp::Put {
            collection,
            id,
            json,
            space_id: None,
        })
    }

    /// Applies an RFC 7386 JSON merge patch (`null` removes a field) to an existing record. A
    /// patch that changes nothing writes nothing, like a no-op `put`.
    pub fn patch(
        &self,
        collection: String,
        id: String,
        patch_json: String,
    ) -> Result<Record, TandemError> {
        self.write_one(WriteOp::Patch {
            collection,
            id,
            patch_json,
        })
    }

    /// Deletes a record and, through the schema's parents, all its descendants.
    pub fn delete(&self, collection: String, id: String) -> Result<(), TandemError> {
        self.call(|client| {
            client
                .write(vec![EngineWriteOp::Delete { collection, id }])
                .map(drop)
        })
    }

    /// The record, or nothing when it does not exist or was deleted.
    pub fn get(&self, collection: String, id: String) -> Result<Option<Record>, TandemError> {
        self.call(|client| Ok(client.get(&collection, &id)?.map(Record::from)))
    }

    /// The records of `collection` matching `query`.
    pub fn query(&self, collection: String, query: Query) -> Result<Vec<Record>, TandemError> {
        let query = EngineQuery::try_from(query)?;
        self.call(|client| {
            Ok(client
                .query(&collection, &query)?
                .into_iter()
                .map(Record::from)
                .collect())
        })
    }

    /// How many records of `collection` match `query` (its limit and offset are ignored).
    pub fn count(&self, collection: String, query: Query) -> Result<u64, TandemError> {
        let query = EngineQuery::try_from(query)?;
        self.call(|client| client.count(&collection, &query))
    }

    /// Applies puts, patches and deletes in one transaction: all or nothing. Returns the written
    /// record of each put and patch, in order.
    ///
    /// A batch of two ops or more is also one atomic group on the wire: it is pushed in one
    /// request and the server applies all of it or none, so other devices see the whole batch or
    /// nothing of it. If one of its changes meets a conflict or is rejected, the others are not
    /// applied either: they wait (sync outcome `WaitsForGroup`) and go again with it once that
    /// conflict is resolved or that dead letter discarded. A group holds at most
    /// `max_write_batch()` changes (500); a larger batch is a bulk write (an import, a first
    /// load): atomic on the device, its changes sent as separate changes.
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Record>, TandemError> {
        let ops = ops
            .into_iter()
            .map(EngineWriteOp::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        self.call(|client| Ok(client.write(ops)?.into_iter().map(Record::from).collect()))
    }

    /// Observes a query: `observer` gets the results right away and after every commit that
    /// touches `collection` (local or synced, and after an account switch), until the
    /// subscription is cancelled or dropped.
    pub fn observe(
        &self,
        collection: String,
        query: Query,
        observer: Arc<dyn QueryObserver>,
    ) -> Result<Arc<Subscription>, TandemError> {
        let query = EngineQuery::try_from(query)?;
        self.call(|client| {
            let callback = Box::new(move |rows: Vec<RecordRow>| {
                observer.on_results(rows.into_iter().map(Record::from).collect());
            });
            Ok(Subscription::new(client.observe(
                &collection,
                &query,
                callback,
            )?))
        })
    }

    /// Observes one record (a detail screen): `observer` gets it right away (nothing when it does
    /// not exist) and again each time it changes, appears or disappears, whether by a local
    /// write, a sync or an account switch, until the subscription is cancelled or dropped.
    /// Commits that leave it as it was are not delivered.
    pub fn observe_record(
        &self,
        collection: String,
        id: String,
        observer: Arc<dyn RecordObserver>,
    ) -> Result<Arc<Subscription>, TandemError> {
        self.call(|client| {
            let callback =
                Box::new(move |row: Option<RecordRow>| observer.on_record(row.map(Record::from)));
            Ok(Subscription::new(client.observe_record(
                &collection,
                &id,
                callback,
            )?))
        })
    }

    /// Tells `listener` which collections every commit changed.
    pub fn add_change_listener(
        &self,
        listener: Arc<dyn ChangeListener>,
    ) -> Result<Arc<Subscription>, TandemError> {
        self.call(|client| {
            let handle =
                client.listen(Box::new(move |collections| listener.on_change(collections)));
            Ok(Subscription::new(handle))
        })
    }

    /// How many local changes wait for the server.
    pub fn pending_count(&self) -> Result<u64, TandemError> {
        self.call(|client| client.pending_count())
    }

    /// The outbox in sending order, for debugging screens.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, TandemError> {
        self.call(|client| {
            Ok(client
                .outbox()?
                .into_iter()
                .map(OutboxEntry::from)
                .collect())
        })
    }
}

impl Drop for Tandem {
    /// Dropping the last reference (Kotlin's `close()`, Swift's deinit) shuts down as `shutdown`
    /// does, so the directory opens again at once.
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Tandem {
    fn client(&self) -> Result<Arc<Client>, TandemError> {
        self.client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(TandemError::Closed)
    }

    fn call<T>(&self, f: impl FnOnce(&Client) -> Result<T, Error>) -> Result<T, TandemError> {
        let client = self.client()?;
        guard(|| f(&client).map_err(TandemError::from))
    }

    /// Runs `f` on the shared runtime (never on the caller's executor, which may not be tokio),
    /// turning a panic into `TandemError::Internal`.
    async fn on_runtime<T, F, Fut>(&self, f: F) -> Result<T, TandemError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, TandemError>> + Send + 'static,
    {
        let task = f(self.client()?);
        match runtime().spawn(task).await {
            Ok(result) => result,
            Err(e) => Err(TandemError::Internal {
                detail: format!("a background task failed: {e}"),
            }),
        }
    }

    /// Writes one put or patch (converted as `write` converts its ops) and returns its record.
    fn write_one(&self, op: WriteOp) -> Result<Record, TandemError> {
        let op = EngineWriteOp::try_from(op)?;
        self.call(|client| Ok(client.write(vec![op])?.into_iter().next().map(Record::from)))?
            .ok_or_else(|| TandemError::Internal {
                detail: "a put wrote no record".into(),
            })
    }
}

/// Rust only, not exported: the foreign languages never see a clock.
impl Tandem {
    /// [`open`](Self::open), with the auth session judging token expiry by `clock`. For tests
    /// only: they share one `ManualClock` with an in-process server and move it instead of
    /// sleeping. Apps use `open` (the system clock).
    #[doc(hidden)]
    pub fn open_with_clock(
        config: TandemConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, TandemError> {
        guard(|| {
            let schema = tandem_protocol::Schema::from_json(&config.schema_json).map_err(|e| {
                TandemError::Schema {
                    detail: e.to_string(),
                }
            })?;
            let config = with_servers(config)?;
            let client = Client::open_with_clock(client_config(config), clock)?;
            Ok(Arc::new(Self {
                client: RwLock::new(Some(Arc::new(client))),
                schema,
            }))
        })
    }

    /// [`open_with_clock`](Self::open_with_clock), with edit times read from `edit_clock`: a
    /// device whose wall clock is skewed from the server's. For tests only.
    #[doc(hidden)]
    pub fn open_with_clocks(
        config: TandemConfig,
        clock: Arc<dyn Clock>,
        edit_clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, TandemError> {
        guard(|| {
            let schema = tandem_protocol::Schema::from_json(&config.schema_json).map_err(|e| {
                TandemError::Schema {
                    detail: e.to_string(),
                }
            })?;
            let config = with_servers(config)?;
            let client = Client::open_with_clocks(client_config(config), clock, edit_clock)?;
            Ok(Arc::new(Self {
                client: RwLock::new(Some(Arc::new(client))),
                schema,
            }))
        })
    }
}

pub(crate) fn client_config(config: TandemConfig) -> ClientConfig {
    let server = config.server_url.map(|url| {
        let mut http = HttpConfig::new(url);
        http.auth_url = config.auth_url;
        http.sync_url = config.sync_url;
        http.api_key = config.api_key;
        http.allow_insecure_http = config.allow_insecure_http;
        http.request_timeout = Duration::from_millis(config.sync.request_timeout_ms.max(1));
        http
    });
    ClientConfig {
        data_dir: PathBuf::from(config.data_dir),
        schema_json: config.schema_json,
        server,
        sync: SyncOptions::from(&config.sync),
        secret_store: config
            .secure_store
            .map(|s| Arc::new(foreign::ForeignSecretStore(s)) as _),
        resolver: config.conflict_resolver.map(foreign::resolver),
        attachment_cache_bytes: config.attachment_cache_bytes,
        encryption: config.encryption.unwrap_or_default().into(),
    }
}

/// Turns a panic into `TandemError::Internal`, so none unwinds into foreign code.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, TandemError>) -> Result<T, TandemError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        Err(TandemError::Internal { detail })
    })
}

/// `config` with its servers whole: `server_url`, or both `auth_url` and `sync_url` (e.g.
/// Supabase Auth and a Tandem server elsewhere), when the sync URL stands in for `server_url`
/// (nothing is derived from it then); an `auth_url` or `sync_url` alone would leave the other
/// side nowhere, and is refused.
fn with_servers(mut config: TandemConfig) -> Result<TandemConfig, TandemError> {
    if config.server_url.is_none() {
        match (&config.auth_url, &config.sync_url) {
            (Some(_), Some(sync)) => config.server_url = Some(sync.clone()),
            (None, None) => {}
            _ => {
                return Err(TandemError::InvalidArgument {
                    detail: "without server_url, give both auth_url and sync_url".into(),
                })
            }
        }
    }
    Ok(config)
}
