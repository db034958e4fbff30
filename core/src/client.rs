//! The client: everything one data directory holds — the engine of the current account, the auth
//! session and the syncer — and the account switches between them. Each user's data lives in its
//! own database file (`users/<user id>.db`); data written while signed out lives in `guest.db`,
//! which the first sign-in on the device adopts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tandem_protocol::clock::{Clock, SystemClock};
use tandem_protocol::{is_valid_id, AttachmentRef, Schema, User};

use crate::attachments::cache;
use crate::attachments::download::{self, check_blob_hash};
use crate::attachments::{self, progress, AttachmentState, Files, Imported};
use crate::auth::{secret_namespace, AuthError, AuthSession, AuthState, KeyringStore, SecretStore};
use crate::engine::{Engine, WriteOp, GUEST_DB};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpConfig};
use crate::observe::{ChangeCallback, Notifier, QueryCallback, SubscriptionHandle};
use crate::outbox::{self, OutboxEntry};
use crate::query::Query;
use crate::records::RecordRow;
use crate::runtime::runtime;
use crate::store::cipher::DatabaseKey;
use crate::store::convert::{self, StoreEncryption};
use crate::store::keys::{DbKeys, Encryption, Secrets};
use crate::store::{files, CurrentStore};
use crate::sync::api::SyncApi;
use crate::sync::conflict::ConflictRow;
use crate::sync::error::SyncError;
use crate::sync::orchestrator::{EngineSlot, Resolver, SyncOptions, Syncer};
use crate::sync::resolve::{self, Resolution};
use crate::sync::revert::{self, Reverted};
use crate::sync::run::SyncReport;
use crate::sync::spaces::{self, Invitation, Member, SentInvitation, Space, SpaceRole};
use crate::sync::status::{Metrics, Status, Trigger};

/// An attachment's content type when none is given and the file name's extension tells none.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// The longest `name` of an attachment reference (characters).
const MAX_ATTACHMENT_NAME: usize = 255;

/// A file name as an attachment reference's default `name`: path separators and control
/// characters become `_` (the reference's rules refuse them), at most 255 characters.
fn file_name_for_ref(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .take(MAX_ATTACHMENT_NAME)
        .collect()
}

/// How many times `create_space` sends its request again after a network failure.
const CREATE_RETRIES: u64 = 2;
const USERS_DIR: &str = "users";
const CLIENT_ID_FILE: &str = "client-id";
/// How long an account switch waits for calls still using the previous database to finish.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What `Client::open` needs.
pub struct ClientConfig {
    pub data_dir: PathBuf,
    pub schema_json: String,
    /// The server; `None` keeps the client local-only (no auth, no sync).
    pub server: Option<HttpConfig>,
    pub sync: SyncOptions,
    /// Where tokens live; the platform keyring when `None`.
    pub secret_store: Option<Arc<dyn SecretStore>>,
    pub resolver: Option<Resolver>,
    /// Bytes of attachment files kept on disk ([`crate::defaults::ATTACHMENT_CACHE_BYTES`]):
    /// after a download, the least recently used files beyond it are deleted (they download
    /// again on demand), never one not uploaded yet or named by an unsent change.
    pub attachment_cache_bytes: u64,
    /// Whether the databases are encrypted at rest (docs/design/encryption.md). Switching it
    /// converts the current database on the next open; the keys live in `secret_store`.
    pub encryption: Encryption,
}

pub struct Client {
    data_dir: PathBuf,
    /// What every engine's edit times read (the wall clock) and name (this installation).
    edit_clock: Arc<dyn Clock>,
    installation_id: String,
    schema: Schema,
    notifier: Arc<Notifier>,
    current_store: Arc<CurrentStore>,
    engines: Arc<EngineSlot>,
    auth: Option<Arc<AuthSession>>,
    syncer: Option<Arc<Syncer>>,
    /// The sync routes for the space calls (the syncer has its own for runs).
    api: Option<Arc<SyncApi>>,
    /// Serialises account switches.
    switching: tokio::sync::Mutex<()>,
    /// Tells the syncer when the session expires.
    expiry_watch: Option<tokio::task::JoinHandle<()>>,
    /// The attachment cache's limit in bytes.
    attachment_cache_bytes: u64,
    /// How every database of this directory is kept (and where its keys live).
    encryption: StoreEncryption,
}

impl Client {
    pub fn open(config: ClientConfig) -> Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// [`open`](Self::open), with the auth session judging token expiry by `clock`. For tests
    /// only: they share one `ManualClock` with an in-process server and move it instead of
    /// sleeping. Apps use `open` (the system clock).
    #[doc(hidden)]
    pub fn open_with_clock(config: ClientConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::open_with_clocks(config, Arc::clone(&clock), clock)
    }

    /// [`open`](Self::open), with the auth session judging token expiry by `clock` and edit times
    /// read from `edit_clock` (a device whose clock is skewed). For tests only.
    #[doc(hidden)]
    pub fn open_with_clocks(
        config: ClientConfig,
        clock: Arc<dyn Clock>,
        edit_clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let schema = Schema::from_json(&config.schema_json)?;
        files::create_private_dir(&config.data_dir)?;
        files::create_private_dir(&config.data_dir.join(USERS_DIR))?;
        let data_dir = config.data_dir.canonicalize()?;
        let installation_id = client_id(&data_dir)?;
        let current_store = Arc::new(CurrentStore::default());
        let notifier = Arc::new(Notifier::start(Arc::clone(&current_store))?);
        let namespace = secret_namespace(&installation_id);
        let secret_store = secret_store_of(&config)?;
        let encryption = StoreEncryption {
            mode: config.encryption,
            secrets: secret_store.as_ref().map(|store| Secrets {
                store: Arc::clone(store),
                namespace: namespace.clone(),
            }),
        };
        let (auth, http) = match &config.server {
            Some(server) => {
                let http = HttpClient::new(server).map_err(|e| Error::invalid(e.to_string()))?;
                let store: Arc<dyn SecretStore> = match &secret_store {
                    Some(store) => Arc::clone(store),
                    None => Arc::new(KeyringStore::new().map_err(AuthError::from)?),
                };
                let session = AuthSession::open_with_clock(http.clone(), store, &namespace, clock)?;
                (
                    Some(Arc::new(session)),
                    Some((http, server.request_timeout)),
                )
            }
            None => (None, None),
        };
        let state = auth.as_ref().map_or(AuthState::SignedOut, |a| a.state());
        let engine = Engine::open_file_with(
            &db_path(&data_dir, &state)?,
            schema.clone(),
            Arc::clone(&notifier),
            &encryption,
        )?
        .with_edit_clock(Arc::clone(&edit_clock), &installation_id);
        collect_attachments(&engine);
        current_store.set(Some(engine.store()));
        let engines: Arc<EngineSlot> = Arc::new(RwLock::new(Arc::new(engine)));
        let space_api = match (&auth, &http) {
            (Some(auth), Some((http, timeout))) => Some(Arc::new(SyncApi::new(
                http.clone(),
                Arc::clone(auth),
                installation_id.clone(),
                *timeout,
            ))),
            _ => None,
        };
        let syncer = match (&auth, http) {
            (Some(auth), Some((http, timeout))) => {
                let api = SyncApi::new(http, Arc::clone(auth), installation_id.clone(), timeout);
                let lock_dir = data_dir.join(USERS_DIR);
                Some(Syncer::new(
                    Arc::clone(&engines),
                    Arc::clone(auth),
                    api,
                    config.sync,
                    lock_dir,
                    config.resolver,
                    config.attachment_cache_bytes,
                ))
            }
            _ => None,
        };
        let expiry_watch = watch_session(auth.as_ref(), syncer.as_ref());
        Ok(Self {
            data_dir,
            edit_clock,
            installation_id,
            schema,
            notifier,
            current_store,
            engines,
            auth,
            syncer,
            api: space_api,
            switching: tokio::sync::Mutex::new(()),
            expiry_watch,
            attachment_cache_bytes: config.attachment_cache_bytes,
            encryption,
        })
    }

    /// Moves aside every encrypted database of `config`'s data directory that no stored key
    /// opens (a backup restored on another device: its files came back, its keys, kept this
    /// device only, did not), so that the next [`open`](Self::open) starts afresh and the user
    /// can sign in again. Nothing is deleted: each file, its WAL and its attachment cache are
    /// renamed `….unreadable-<unix seconds>` and stay for the day their key returns; their
    /// unsent changes are not sent. Readable and plaintext databases are left alone. Returns the
    /// new paths. Call it only with no engine open on the directory (else `AlreadyOpen`); a
    /// secret store that cannot be read yet fails `Key { Unavailable }` and moves nothing.
    pub fn set_aside_unreadable(config: ClientConfig) -> Result<Vec<PathBuf>> {
        if !config.data_dir.is_dir() {
            return Ok(Vec::new());
        }
        let data_dir = config.data_dir.canonicalize()?;
        let namespace = secret_namespace(&client_id(&data_dir)?);
        let encryption = StoreEncryption {
            mode: config.encryption,
            secrets: secret_store_of(&config)?.map(|store| Secrets { store, namespace }),
        };
        let mut databases = vec![data_dir.join(GUEST_DB)];
        if let Ok(entries) = std::fs::read_dir(data_dir.join(USERS_DIR)) {
            for entry in entries {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "db") {
                    databases.push(path);
                }
            }
        }
        let mut moved = Vec::new();
        for path in databases {
            if let Some(aside) = crate::store::Store::set_aside_if_unreadable(&path, &encryption)? {
                moved.push(aside);
            }
        }
        Ok(moved)
    }

    /// The engine of the current account.
    fn engine(&self) -> Arc<Engine> {
        Arc::clone(&*self.engines.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Marks the current store as closing, so the same directory can be opened again at once
    /// (a run under way lets go of the database).
    pub fn close(&self) {
        self.engine().store().mark_closing();
    }

    /// Applies puts, patches and deletes in one transaction (all or nothing) through the current
    /// engine and tells the syncer. Returns the written record of each put and patch, in order.
    /// A batch that changes nothing (puts and patches that leave their documents as they are)
    /// writes nothing and does not wake the syncer.
    /// A batch of several ops is one atomic group on the wire too (see [`Engine::write`]).
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<RecordRow>> {
        let (rows, changed) = self.engine().write_reporting(ops)?;
        if changed {
            self.tell_syncer();
        }
        Ok(rows)
    }

    /// Attaches the file at `path` to the attachment field `field` of record `collection/id`:
    /// the file is copied into the account's attachments directory while it is hashed (on the
    /// blocking pool; the app's file is never moved or changed and may be deleted at once), then
    /// one write transaction stores the attachment's row and patches `field` to the reference
    /// (with its outbox entry, through the normal write path). The next sync run uploads the
    /// file before it pushes the change.
    ///
    /// `content_type` defaults from the file name's extension (else
    /// `application/octet-stream`), `name` to the file name. The record must exist
    /// ([`Error::NotFound`]) and `field` must be an attachment field of its collection
    /// ([`Error::Validation`], exported as `InvalidPayload`).
    pub async fn attach_file(
        &self,
        collection: &str,
        id: &str,
        field: &str,
        path: &Path,
        content_type: Option<&str>,
        name: Option<&str>,
    ) -> Result<RecordRow> {
        let content_type = match content_type {
            Some(given) => given.to_string(),
            None => mime_guess::from_path(path)
                .first_raw()
                .unwrap_or(DEFAULT_CONTENT_TYPE)
                .to_string(),
        };
        let name = match name {
            Some(given) => Some(given.to_string()),
            None => path
                .file_name()
                .map(|n| file_name_for_ref(&n.to_string_lossy())),
        };
        let source = path.to_path_buf();
        self.attach(collection, id, field, content_type, name, move |files| {
            files.import_file(&source)
        })
        .await
    }

    /// [`attach_file`](Self::attach_file) for bytes in memory (small data: a thumbnail, a note).
    pub async fn attach_bytes(
        &self,
        collection: &str,
        id: &str,
        field: &str,
        bytes: Vec<u8>,
        content_type: &str,
        name: Option<&str>,
    ) -> Result<RecordRow> {
        let (content_type, name) = (content_type.to_string(), name.map(str::to_string));
        self.attach(collection, id, field, content_type, name, move |files| {
            files.import_bytes(&bytes)
        })
        .await
    }

    async fn attach(
        &self,
        collection: &str,
        id: &str,
        field: &str,
        content_type: String,
        name: Option<String>,
        import: impl FnOnce(&Files) -> std::io::Result<Imported> + Send + 'static,
    ) -> Result<RecordRow> {
        let engine = self.engine();
        // Refused before any copying: a missing record or a field of another type.
        engine
            .store()
            .read(|c| attachments::check_target(c, engine.schema(), collection, id, field))?;
        let files = engine.files();
        let imported = tokio::task::spawn_blocking(move || import(&files))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(format!("the copy task failed: {e}"))))?
            .inspect_err(|e| tracing::warn!(%collection, %id, field, error = %e, "copying an attachment in failed"))?;
        let reference = AttachmentRef {
            hash: imported.hash.clone(),
            size: imported.size,
            content_type: content_type.clone(),
            name,
        };
        let value = serde_json::to_value(&reference)
            .map_err(|e| Error::invalid(format!("encoding the reference: {e}")))?;
        let mut patch = serde_json::Map::new();
        patch.insert(field.to_string(), value);
        let op = WriteOp::Patch {
            collection: collection.to_string(),
            id: id.to_string(),
            patch: serde_json::Value::Object(patch),
        };
        let writer = Arc::clone(&engine);
        let (rows, changed) = tokio::task::spawn_blocking(move || {
            writer.write_reporting_with(vec![op], |tx| {
                attachments::insert_local(
                    tx,
                    &imported.hash,
                    imported.size,
                    &content_type,
                    crate::engine::now_ms(),
                )
            })
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(format!("the write task failed: {e}"))))??;
        tracing::debug!(%collection, %id, field, size = reference.size, "attachment attached");
        // The attachment's state observers read its new row.
        engine.committed([crate::observe::ATTACHMENTS.to_string()].into());
        if changed {
            self.tell_syncer();
        }
        rows.into_iter()
            .next()
            .ok_or_else(|| Error::not_found(collection, id))
    }

    /// The record, or `None` when it does not exist or was deleted.
    pub fn get(&self, collection: &str, id: &str) -> Result<Option<RecordRow>> {
        self.engine().get(collection, id)
    }

    /// The records of `collection` with these ids, in order (`None` where [`get`](Self::get)
    /// finds none), read in one snapshot.
    pub fn get_many(&self, collection: &str, ids: &[String]) -> Result<Vec<Option<RecordRow>>> {
        self.engine().get_many(collection, ids)
    }

    /// The records of `collection` matching `query`.
    pub fn query(&self, collection: &str, query: &Query) -> Result<Vec<RecordRow>> {
        self.engine().query(collection, query)
    }

    /// How many records of `collection` match `query` (its limit and offset are ignored).
    pub fn count(&self, collection: &str, query: &Query) -> Result<u64> {
        self.engine().count(collection, query)
    }

    /// SQLite's query plan for `query`, to check that it uses an index.
    pub fn explain(&self, collection: &str, query: &Query) -> Result<String> {
        self.engine().explain(collection, query)
    }

    /// Calls `callback` with the query's results now and after every commit that touches
    /// `collection` (local or synced, and after an account switch), until the handle is dropped.
    pub fn observe(
        &self,
        collection: &str,
        query: &Query,
        callback: QueryCallback,
    ) -> Result<SubscriptionHandle> {
        self.engine().observe(collection, query, callback)
    }

    /// Calls `callback` with one record (`None` while it does not exist) now and each time it
    /// changes, appears or disappears. Commits that leave it as it was are not delivered.
    pub fn observe_record(
        &self,
        collection: &str,
        id: &str,
        callback: Box<dyn Fn(Option<RecordRow>) + Send + Sync>,
    ) -> Result<SubscriptionHandle> {
        let last: std::sync::Mutex<Option<Option<RecordRow>>> = std::sync::Mutex::new(None);
        let deliver = Box::new(move |rows: Vec<RecordRow>| {
            let record = rows.into_iter().next();
            {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.as_ref() == Some(&record) {
                    return;
                }
                *last = Some(record.clone());
            }
            callback(record);
        });
        self.engine().observe_record(collection, id, deliver)
    }

    /// The path of the attachment's whole, verified file, downloading it first when it is not on
    /// disk (resuming a partial download; one download per file at a time). Async, and
    /// cancellable by dropping the future: the partial file stays for the next call. A file on
    /// disk is marked used, for the cache's least-recently-used order; after a download the
    /// cache is brought within `attachment_cache_bytes`. `Attachment { NotFound }` when the
    /// server has no such file or the user may not read it, `Attachment { Corrupt }` when the
    /// bytes do not match the hash (the next call downloads again from the start), `Sync(Offline)`
    /// without a network.
    ///
    /// With encryption on, the cache holds only sealed files, so the path is a decrypted copy in
    /// `<db>.attachments/open/` (owner-only), made on the first call and deleted when the engine
    /// next opens; [`read_attachment`](Self::read_attachment) reads without any copy.
    pub async fn attachment(&self, reference: &tandem_protocol::AttachmentRef) -> Result<PathBuf> {
        self.cached_attachment(reference).await?;
        let files = self.engine().files();
        let hash = reference.hash.clone();
        download::blocking(move || files.plaintext_path(&hash))
            .await
            .inspect_err(|e| tracing::warn!(hash = %download::short(&reference.hash), error = %e, "opening a cached attachment failed"))
    }

    /// Seals the current account's attachment cache with `key` from now on (`None`: plain
    /// files). The encrypted store's open sets it from the database key
    /// (docs/design/encryption.md §2–§4); files already cached are converted by
    /// [`crate::convert_cache`], not here.
    #[doc(hidden)]
    pub fn set_attachment_cache_key(&self, key: Option<crate::CacheKey>) {
        self.engine().set_cache_key(key);
    }

    /// Up to `length` bytes of the attachment's content from `offset` (fewer at its end, none
    /// from or past it), downloading the file first like [`attachment`](Self::attachment). With
    /// encryption on, only the 64 KiB chunks the range covers are decrypted, in memory: no
    /// plaintext copy is written (what thumbnails and previews should use). A sealed file that
    /// was tampered with is `Attachment { Corrupt }`.
    pub async fn read_attachment(
        &self,
        reference: &tandem_protocol::AttachmentRef,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>> {
        self.cached_attachment(reference).await?;
        let files = self.engine().files();
        let hash = reference.hash.clone();
        download::blocking(move || files.read_at(&hash, offset, length))
            .await
            .inspect_err(|e| tracing::warn!(hash = %download::short(&reference.hash), error = %e, "reading a cached attachment failed"))
    }

    /// The attachment's file in the cache (sealed with encryption on), downloaded when needed.
    async fn cached_attachment(
        &self,
        reference: &tandem_protocol::AttachmentRef,
    ) -> Result<PathBuf> {
        let wanted = download::Wanted::from(reference);
        let engine = self.engine();
        let Some(api) = &self.api else {
            // Local-only: the file is here or nowhere.
            let path = download::dir(&engine).join(&wanted.hash);
            download::check_blob_hash(&wanted.hash)?;
            return if path.is_file() {
                Ok(path)
            } else {
                Err(Error::Attachment {
                    kind: crate::AttachmentErrorKind::NotFound,
                    detail: "no server is configured and the file is not on this device".into(),
                })
            };
        };
        let syncer = self.syncer.as_ref();
        let count = |bytes: u64| {
            if let Some(syncer) = syncer {
                syncer.count_attachment_download(bytes);
            }
        };
        download::fetch(&engine, api, &wanted, self.attachment_cache_bytes, &count).await
    }

    /// The state of the attachment `hash` (64 lowercase hex): a transfer under way, else what
    /// this account's attachment table says (`Remote` for a hash it does not know).
    pub fn attachment_state(&self, hash: &str) -> Result<AttachmentState> {
        check_blob_hash(hash)?;
        let engine = self.engine();
        engine
            .store()
            .read(|c| progress::state(c, engine.attachment_progress(), hash))
    }

    /// Calls `callback` with the state of attachment `hash` now and each time it changes
    /// (uploads and downloads report their progress at most ten times a second), on the
    /// notification thread, until the handle is dropped. Follows account switches.
    pub fn observe_attachment(
        &self,
        hash: &str,
        callback: Box<dyn Fn(AttachmentState) + Send + Sync>,
    ) -> Result<SubscriptionHandle> {
        check_blob_hash(hash)?;
        let hash = hash.to_string();
        // Weak: the registry must not keep the engines (and so itself) alive.
        let engines = Arc::downgrade(&self.engines);
        let last: std::sync::Mutex<Option<AttachmentState>> = std::sync::Mutex::new(None);
        let deliver = Box::new(move |_: &crate::store::Store| -> Result<()> {
            let Some(engines) = engines.upgrade() else {
                return Ok(());
            };
            let engine = Arc::clone(&*engines.read().unwrap_or_else(|e| e.into_inner()));
            let state = engine
                .store()
                .read(|c| progress::state(c, engine.attachment_progress(), &hash))?;
            {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.as_ref() == Some(&state) {
                    return Ok(());
                }
                *last = Some(state.clone());
            }
            callback(state);
            Ok(())
        });
        Ok(self
            .notifier
            .observe_named(crate::observe::ATTACHMENTS, deliver))
    }

    /// Calls `callback` with the collections every commit changed.
    pub fn listen(&self, callback: ChangeCallback) -> SubscriptionHandle {
        self.engine().listen(callback)
    }

    /// How many local changes wait for the server.
    pub fn pending_count(&self) -> Result<u64> {
        self.engine().pending_count()
    }

    /// The outbox in sending order.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        self.engine().outbox()
    }

    /// Open conflicts, oldest first.
    pub fn conflicts(&self) -> Result<Vec<ConflictRow>> {
        resolve::conflicts(&self.engine())
    }

    /// Settles a conflict and tells the syncer; the result goes up with the next run. Returns
    /// the record afterwards (`None` when it ends up deleted).
    pub fn resolve(
        &self,
        collection: &str,
        id: &str,
        resolution: Resolution,
    ) -> Result<Option<RecordRow>> {
        let row = resolve::resolve(&self.engine(), collection, id, resolution)?;
        self.tell_syncer();
        Ok(row)
    }

    /// Stored records that break a reference or unique constraint of the schema (possible only
    /// after a schema added one to a collection that already held data), for the app to fix.
    pub fn schema_violations(&self) -> Result<Vec<crate::RuleViolation>> {
        let engine = self.engine();
        let rules = crate::refs::all_rules(engine.schema());
        engine
            .store()
            .read(|conn| crate::refs::violations(conn, &rules))
    }

    /// Changes the server refused (dead letters), oldest first.
    pub fn rejected(&self) -> Result<Vec<OutboxEntry>> {
        self.engine().store().read(outbox::rejected)
    }

    /// Drops a dead letter (the record goes back to the server's state) and tells the syncer.
    pub fn discard_rejected(&self, op_id: &str) -> Result<()> {
        resolve::discard_rejected(&self.engine(), op_id)?;
        self.tell_syncer();
        Ok(())
    }

    /// Drops the record's unsent changes (its outbox entries, dead letters included, and any open
    /// conflict) and restores the server's state, in one transaction; observers are told. A
    /// record the server never had disappears, with what was created below it. Returns the
    /// record afterwards (`None` when it does not show) and whether anything changed (a record
    /// already at the server's state is left alone). `NotFound` when the store has no such record.
    pub fn revert(&self, collection: &str, id: &str) -> Result<Reverted> {
        let reverted = revert::revert(&self.engine(), collection, id)?;
        if reverted.changed {
            self.tell_syncer();
        }
        Ok(reverted)
    }

    /// Refreshes the sync status's counts and, when started, asks for a run (at once unless one
    /// started within the minimum interval).
    fn tell_syncer(&self) {
        if let Some(syncer) = &self.syncer {
            syncer.local_write();
        }
    }

    fn syncer(&self) -> Result<&Arc<Syncer>> {
        self.syncer
            .as_ref()
            .ok_or_else(|| Error::invalid("no server is configured"))
    }

    fn auth(&self) -> Result<&Arc<AuthSession>> {
        self.auth
            .as_ref()
            .ok_or_else(|| Error::invalid("no server is configured"))
    }

    fn api(&self) -> Result<&Arc<SyncApi>> {
        self.api
            .as_ref()
            .ok_or_else(|| Error::invalid("no server is configured"))
    }

    // ---- Spaces (docs/design/spaces.md §9): online calls, each applied here at once. ----

    /// Creates a space named `name` with the user as its owner. The call carries a request id
    /// of its own: when the answer is lost to the network it is sent again with the same id, and
    /// the server answers with the space it created the first time instead of a second one.
    pub async fn create_space(&self, name: &str) -> Result<Space> {
        let request_id = uuid::Uuid::now_v7().to_string();
        let api = self.api()?;
        let mut attempt = 0;
        let space = loop {
            match api.create_space(name, &request_id).await {
                Err(Error::Sync(SyncError::Offline(why))) if attempt < CREATE_RETRIES => {
                    attempt += 1;
                    tracing::info!(attempt, error = %why, "create_space failed on the network; sending it again with the same request id");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                other => break other?,
            }
        };
        self.space_changed(&space, true)?;
        Ok(space)
    }

    /// Renames a space (owner).
    pub async fn rename_space(&self, space_id: &str, name: &str) -> Result<Space> {
        check_space_id(space_id)?;
        let space = self.api()?.rename_space(space_id, name).await?;
        self.space_changed(&space, false)?;
        Ok(space)
    }

    /// Deletes a space for every member (owner). Its records leave this device at once, except
    /// those with unsent changes, which stay as `forbidden` dead letters.
    pub async fn delete_space(&self, space_id: &str) -> Result<()> {
        check_space_id(space_id)?;
        self.api()?.delete_space(space_id).await?;
        self.drop_space_here(space_id)
    }

    /// The user's spaces as the last sync or space call saw them (offline too).
    pub fn spaces(&self) -> Result<Vec<Space>> {
        self.engine().store().read(spaces::spaces)
    }

    /// Calls `callback` with the user's spaces now and after every change of them.
    pub fn observe_spaces(
        &self,
        callback: Box<dyn Fn(Vec<Space>) + Send + Sync>,
    ) -> SubscriptionHandle {
        self.notifier
            .observe_stored(crate::observe::SPACES, spaces::spaces, callback)
    }

    /// Invites `email` to a space with `role` (owner). Inviting again renews the invitation
    /// with the new role; an email without an account sees it once it signs up.
    pub async fn invite(
        &self,
        space_id: &str,
        email: &str,
        role: SpaceRole,
    ) -> Result<SentInvitation> {
        check_space_id(space_id)?;
        self.api()?.invite(space_id, email, role).await
    }

    /// The invitations waiting for the user's answer, as the last sync saw them (offline too).
    pub fn invitations(&self) -> Result<Vec<Invitation>> {
        self.engine().store().read(spaces::invitations)
    }

    /// Calls `callback` with the pending invitations now and after every change of them.
    pub fn observe_invitations(
        &self,
        callback: Box<dyn Fn(Vec<Invitation>) + Send + Sync>,
    ) -> SubscriptionHandle {
        self.notifier
            .observe_stored(crate::observe::INVITATIONS, spaces::invitations, callback)
    }

    /// Accepts an invitation: the space is the user's at once, and a sync brings its records.
    pub async fn accept(&self, invitation_id: &str) -> Result<Space> {
        check_space_id(invitation_id)?;
        let space = self.api()?.accept(invitation_id).await?;
        let engine = self.engine();
        engine.store().write(|tx| {
            spaces::remove_invitation(tx, invitation_id)?;
            spaces::save_space(tx, &space)
        })?;
        engine.committed(
            [
                crate::observe::SPACES.to_string(),
                crate::observe::INVITATIONS.to_string(),
            ]
            .into(),
        );
        self.request_sync();
        Ok(space)
    }

    /// Declines an invitation.
    pub async fn decline(&self, invitation_id: &str) -> Result<()> {
        check_space_id(invitation_id)?;
        self.api()?.decline(invitation_id).await?;
        let engine = self.engine();
        if engine
            .store()
            .write(|tx| spaces::remove_invitation(tx, invitation_id))?
        {
            engine.committed([crate::observe::INVITATIONS.to_string()].into());
        }
        Ok(())
    }

    /// The members of a space (any member; online).
    pub async fn members(&self, space_id: &str) -> Result<Vec<Member>> {
        check_space_id(space_id)?;
        self.api()?.members(space_id).await
    }

    /// Changes a member's role (owner). A space always keeps an owner (`LastOwner`).
    pub async fn set_role(&self, space_id: &str, user_id: &str, role: SpaceRole) -> Result<Member> {
        check_space_id(space_id)?;
        check_space_id(user_id)?;
        let member = self.api()?.set_role(space_id, user_id, role).await?;
        if self.is_me(user_id) {
            self.set_own_role(space_id, role)?;
        }
        Ok(member)
    }

    /// Removes a member (owner); removing oneself is [`leave`](Self::leave).
    pub async fn remove_member(&self, space_id: &str, user_id: &str) -> Result<()> {
        check_space_id(space_id)?;
        check_space_id(user_id)?;
        self.api()?.remove_member(space_id, user_id).await?;
        if self.is_me(user_id) {
            self.drop_space_here(space_id)?;
        }
        Ok(())
    }

    /// Leaves a space (the last owner cannot: `LastOwner`). Its records leave this device at
    /// once, except those with unsent changes, which stay as `forbidden` dead letters.
    pub async fn leave(&self, space_id: &str) -> Result<()> {
        check_space_id(space_id)?;
        let me = self
            .auth()?
            .current_user()
            .ok_or(Error::Sync(SyncError::NotSignedIn))?;
        self.api()?.remove_member(space_id, &me.id).await?;
        self.drop_space_here(space_id)
    }

    /// Reads the user's spaces and invitations from the server now (a pull does the same when
    /// they changed) and applies them here: a space no longer listed is dropped.
    pub async fn refresh_spaces(&self) -> Result<Vec<Space>> {
        let account = self.api()?.account().await?;
        let engine = self.engine();
        let changed = engine.store().write(|tx| {
            let change = spaces::replace_account(
                tx,
                account.account_seq,
                &account.spaces,
                &account.invitations,
            )?;
            let mut changed = std::collections::BTreeSet::new();
            if change.spaces_changed || !change.removed.is_empty() {
                changed.insert(crate::observe::SPACES.to_string());
            }
            if change.invitations_changed {
                changed.insert(crate::observe::INVITATIONS.to_string());
            }
            for space in &change.removed {
                let dropped =
                    spaces::drop_space(tx, engine.schema(), space, crate::engine::now_ms())?;
                changed.extend(dropped.changed);
            }
            Ok(changed)
        })?;
        engine.committed(changed);
        Ok(account.spaces)
    }

    fn is_me(&self, user_id: &str) -> bool {
        self.auth
            .as_ref()
            .and_then(|a| a.current_user())
            .is_some_and(|u| u.id == user_id)
    }

    /// Stores a space a call created, accepted or renamed, tells `$spaces` observers and, for a
    /// new one, asks for a sync (its stream starts from the beginning).
    fn space_changed(&self, space: &Space, new: bool) -> Result<()> {
        let engine = self.engine();
        if engine.store().write(|tx| spaces::save_space(tx, space))? {
            engine.committed([crate::observe::SPACES.to_string()].into());
        }
        if new {
            self.request_sync();
        }
        Ok(())
    }

    fn set_own_role(&self, space_id: &str, role: SpaceRole) -> Result<()> {
        let engine = self.engine();
        let changed = engine.store().write(|tx| {
            Ok(tx
                .prepare_cached("UPDATE spaces SET role = ?2 WHERE id = ?1 AND role <> ?2")?
                .execute([space_id, role.as_str()])?
                > 0)
        })?;
        if changed {
            engine.committed([crate::observe::SPACES.to_string()].into());
        }
        Ok(())
    }

    fn drop_space_here(&self, space_id: &str) -> Result<()> {
        let engine = self.engine();
        let dropped = engine.store().write(|tx| {
            spaces::drop_space(tx, engine.schema(), space_id, crate::engine::now_ms())
        })?;
        let mut changed = dropped.changed;
        changed.insert(crate::observe::SPACES.to_string());
        engine.committed(changed);
        self.tell_syncer();
        Ok(())
    }

    /// Asks the syncer for a run when background sync is on.
    fn request_sync(&self) {
        if let Some(syncer) = &self.syncer {
            if syncer.is_started() {
                syncer.trigger(Trigger::Manual);
            }
        }
    }

    /// Runs one sync now (push, then pull); waits for a running one first.
    pub async fn sync_now(&self) -> Result<SyncReport> {
        Ok(self.syncer()?.sync_now(Trigger::Manual).await?)
    }

    /// One run bounded by `deadline` (iOS background tasks, Android WorkManager).
    pub async fn sync_once(&self, deadline: Duration) -> Result<SyncReport> {
        Ok(self.syncer()?.sync_once(deadline).await?)
    }

    /// Starts background sync: runs after local writes (at once by default), a periodic run, realtime pokes,
    /// retries with backoff.
    pub fn start_sync(&self) -> Result<()> {
        self.syncer()?.start();
        Ok(())
    }

    /// Stops background sync (a run under way finishes).
    pub fn stop_sync(&self) -> Result<()> {
        self.syncer()?.stop();
        Ok(())
    }

    /// The app came to the foreground: sync now (when started).
    pub fn notify_foreground(&self) -> Result<()> {
        self.syncer()?.trigger(Trigger::Foreground);
        Ok(())
    }

    /// Connectivity changed; going online retries at once.
    pub fn notify_connectivity(&self, online: bool) -> Result<()> {
        self.syncer()?.connectivity(online);
        Ok(())
    }

    /// The sync status now.
    pub fn sync_status(&self) -> Result<Status> {
        Ok(self.syncer()?.status())
    }

    /// Calls `callback` with the sync status now and after every change (on the notification
    /// thread; changes in quick succession may arrive as the newest status only).
    pub fn observe_sync_status(
        &self,
        callback: Box<dyn Fn(Status) + Send + Sync>,
    ) -> Result<SubscriptionHandle> {
        let status = self.syncer()?.watch_status();
        Ok(self.notifier.watch(status, callback))
    }

    /// Sync counters for diagnostics screens.
    pub fn sync_metrics(&self) -> Result<Metrics> {
        Ok(self.syncer()?.metrics())
    }

    pub fn auth_state(&self) -> AuthState {
        self.auth
            .as_ref()
            .map_or(AuthState::SignedOut, |a| a.state())
    }

    /// The user whose data is open (also while the session is expired); none when signed out or
    /// local-only.
    pub fn current_user(&self) -> Option<User> {
        self.auth.as_ref().and_then(|a| a.current_user())
    }

    /// Calls `callback` with the auth state now and after every change (sign-in, sign-out,
    /// expiry), on the notification thread.
    pub fn observe_auth_state(
        &self,
        callback: Box<dyn Fn(AuthState) + Send + Sync>,
    ) -> Result<SubscriptionHandle> {
        let state = self.auth()?.watch_state();
        Ok(self.notifier.watch(state, callback))
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Result<User> {
        let user = self.auth()?.sign_up(email, password).await?;
        self.switch_to(Some(&user)).await?;
        Ok(user)
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<User> {
        let user = self.auth()?.sign_in(email, password).await?;
        self.switch_to(Some(&user)).await?;
        Ok(user)
    }

    /// Signs this device out and goes back to the guest data; the user's other devices stay
    /// signed in (`POST /logout?scope=local`). `wipe_local_data` deletes the user's database
    /// (pending changes included) and secrets; otherwise they stay for the next sign-in.
    pub async fn sign_out(&self, wipe_local_data: bool) -> Result<()> {
        self.sign_out_scoped(wipe_local_data, crate::auth::SignOutScope::Local)
            .await
    }

    /// [`Client::sign_out`], and every other device of the user is signed out too (`POST
    /// /logout?scope=global`: the server revokes every sign-in of the user; the other devices
    /// find out at their next refresh, or at once against Tandem's server, which also refuses
    /// their access tokens). Offline, only this device is signed out.
    pub async fn sign_out_everywhere(&self, wipe_local_data: bool) -> Result<()> {
        self.sign_out_scoped(wipe_local_data, crate::auth::SignOutScope::Global)
            .await
    }

    async fn sign_out_scoped(
        &self,
        wipe_local_data: bool,
        scope: crate::auth::SignOutScope,
    ) -> Result<()> {
        let auth = self.auth()?;
        let user = auth.current_user();
        auth.sign_out_scoped(scope).await?;
        let previous = self.switch_to(None).await?;
        if let (true, Some(user), Some(previous)) = (wipe_local_data, user, previous) {
            wait_until_unused(previous).await;
            let path = db_path(&self.data_dir, &AuthState::SignedIn(user))?;
            delete_database(&path)?;
            Files::of_store(&path).delete_all()?;
        }
        Ok(())
    }

    /// Whether the current database is encrypted (its file, not only the configuration).
    pub fn encryption_status(&self) -> Result<Encryption> {
        let path = self.engine().store().path().to_path_buf();
        Ok(match convert::file_state(&path)? {
            convert::FileState::Encrypted => Encryption::On,
            _ => Encryption::Off,
        })
    }

    /// Rotates the current database's key (encryption must be on): the database is copied under
    /// a fresh key and the old key deleted, crash-safely (docs/design/encryption.md §4). Other
    /// calls wait while it runs (seconds for a large database); sync runs are held.
    pub async fn rekey(&self) -> Result<()> {
        if self.encryption.mode != Encryption::On {
            return Err(Error::invalid("rekey needs encryption on"));
        }
        let secrets = self.encryption.secrets.clone().ok_or_else(|| {
            Error::invalid("encryption needs a secret store to keep the database key in")
        })?;
        let _switching = self.switching.lock().await;
        let _no_run = match &self.syncer {
            Some(syncer) => Some(syncer.hold_runs().await),
            None => None,
        };
        // While the file converts, the slot holds an engine on a scratch database, and the slot's
        // write lock is held throughout, so no call reaches either.
        let scratch = self.data_dir.join(USERS_DIR).join(".rekey-placeholder.db");
        let placeholder = Engine::open_file_with(
            &scratch,
            self.schema.clone(),
            Arc::clone(&self.notifier),
            &StoreEncryption::default(),
        )?;
        let mut slot = self.engines.write().unwrap_or_else(|e| e.into_inner());
        let previous = std::mem::replace(&mut *slot, Arc::new(placeholder));
        let path = previous.store().path().to_path_buf();
        self.current_store.set(None);
        let deadline = Instant::now() + CLOSE_WAIT;
        while (Arc::strong_count(&previous) > 1 || Arc::strong_count(&previous.store()) > 2)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        if Arc::strong_count(&previous) > 1 || Arc::strong_count(&previous.store()) > 2 {
            self.current_store.set(Some(previous.store()));
            let placeholder = std::mem::replace(&mut *slot, previous);
            drop((slot, placeholder));
            let _ = delete_database(&scratch);
            return Err(Error::invalid(
                "the database is still in use; rekey again when the app is idle",
            ));
        }
        previous.store().mark_closing();
        drop(previous);
        let rekeyed = convert::rekey(&path, &DbKeys::new(secrets, &path));
        if let Err(e) = &rekeyed {
            tracing::error!(error = %e, "rekeying the database failed; it reopens as it was");
        }
        let reopened = Engine::open_file_with(
            &path,
            self.schema.clone(),
            Arc::clone(&self.notifier),
            &self.encryption,
        )?
        .with_edit_clock(Arc::clone(&self.edit_clock), &self.installation_id);
        let reopened = Arc::new(reopened);
        self.current_store.set(Some(reopened.store()));
        let placeholder = std::mem::replace(&mut *slot, reopened);
        drop((slot, placeholder));
        if let Err(e) = delete_database(&scratch) {
            tracing::warn!(error = %e, "deleting the rekey placeholder failed");
        }
        self.notify_store_replaced();
        rekeyed.map(drop)
    }

    /// Makes `user`'s database (the guest database for `None`) the current one. Returns the
    /// engine it replaced, if it did.
    async fn switch_to(&self, user: Option<&User>) -> Result<Option<Arc<Engine>>> {
        let _switching = self.switching.lock().await;
        let _no_run = match &self.syncer {
            Some(syncer) => Some(syncer.hold_runs().await),
            None => None,
        };
        let state = user.map_or(AuthState::SignedOut, |u| AuthState::SignedIn(u.clone()));
        let target = db_path(&self.data_dir, &state)?;
        let current = self.engine();
        if current.store().path() == target {
            self.after_switch();
            return Ok(None);
        }
        let adopt_guest =
            user.is_some() && is_guest(&current) && !any_user_database(&self.data_dir)?;
        tracing::info!(
            user_id = user.map(|u| u.id.as_str()).unwrap_or("guest"),
            adopt_guest,
            "switching account database"
        );
        let (schema, notifier) = (self.schema.clone(), Arc::clone(&self.notifier));
        let (edit_clock, node) = (Arc::clone(&self.edit_clock), self.installation_id.clone());
        // The guest database and cache as the open guest engine reads them (with its key, when
        // encrypted: each database has its own).
        let guest_path = current.store().path().to_path_buf();
        let guest_key = current.store().key().cloned();
        let guest_files = current.files();
        let encryption = self.encryption.clone();
        let next = tokio::task::spawn_blocking(move || -> Result<Engine> {
            let engine = Engine::open_file_with(&target, schema, notifier, &encryption)?
                .with_edit_clock(edit_clock, &node);
            if adopt_guest {
                adopt(&engine, &guest_path, guest_key.as_ref())?;
                // The rows moved with the guest data; their files follow (a rename each, or a
                // re-seal under this database's key).
                if let Err(e) = engine.files().adopt_from(&guest_files) {
                    tracing::warn!(error = %e, "moving the guest attachments failed");
                }
            }
            collect_attachments(&engine);
            Ok(engine)
        })
        .await
        .map_err(|e| Error::Corrupt(format!("opening the account's database failed: {e}")))??;
        let next = Arc::new(next);
        self.current_store.set(Some(next.store()));
        let previous = std::mem::replace(
            &mut *self.engines.write().unwrap_or_else(|e| e.into_inner()),
            next,
        );
        self.notify_store_replaced();
        self.after_switch();
        Ok(Some(previous))
    }

    /// Every observer re-reads: the current store was replaced (another account's, or the same
    /// file reopened under a new key).
    fn notify_store_replaced(&self) {
        self.notifier.switched(
            self.schema
                .collections
                .keys()
                .cloned()
                .collect::<BTreeSet<_>>(),
        );
    }

    fn after_switch(&self) {
        if let Some(syncer) = &self.syncer {
            syncer.account_changed();
        }
    }
}

/// Deletes the attachment rows and files nothing references (at open and on an account switch;
/// sync runs do it after each run). A failure is logged: the next run tries again.
fn collect_attachments(engine: &Engine) {
    // Decrypted copies handed out before (encryption on) live until the next open.
    if let Err(e) = engine.files().empty_open() {
        tracing::warn!(error = %e, "removing decrypted attachment copies failed");
    }
    if let Err(e) = cache::collect(engine) {
        tracing::warn!(error = %e, "collecting unreferenced attachments failed");
    }
}

/// Reflects session expiry (seen by any refresh) in the sync status at once.
fn watch_session(
    auth: Option<&Arc<AuthSession>>,
    syncer: Option<&Arc<Syncer>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let (mut states, syncer) = (auth?.watch_state(), Arc::downgrade(syncer?));
    Some(runtime().spawn(async move {
        while states.changed().await.is_ok() {
            let expired = matches!(*states.borrow_and_update(), AuthState::SessionExpired(_));
            match syncer.upgrade() {
                Some(syncer) if expired => syncer.session_expired(),
                Some(_) => {}
                None => return,
            }
        }
    }))
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(task) = &self.expiry_watch {
            task.abort();
        }
        if let Some(syncer) = &self.syncer {
            syncer.stop();
        }
    }
}

/// The secret store: the app's, else the platform's (required with a server or with encryption
/// on; otherwise only used to decrypt a database encrypted before).
fn secret_store_of(config: &ClientConfig) -> Result<Option<Arc<dyn SecretStore>>> {
    Ok(match &config.secret_store {
        Some(store) => Some(Arc::clone(store)),
        None if config.server.is_some() || config.encryption == Encryption::On => {
            Some(Arc::new(KeyringStore::new().map_err(AuthError::from)?))
        }
        None => KeyringStore::new()
            .ok()
            .map(|s| Arc::new(s) as Arc<dyn SecretStore>),
    })
}

/// The database file of an account state.
fn db_path(data_dir: &Path, state: &AuthState) -> Result<PathBuf> {
    match state {
        AuthState::SignedOut => Ok(data_dir.join(GUEST_DB)),
        AuthState::SignedIn(user) | AuthState::SessionExpired(user) => {
            if !is_valid_id(&user.id) || user.id.starts_with('.') {
                return Err(Error::Protocol(
                    "the server sent a user id unfit for a file name".into(),
                ));
            }
            Ok(data_dir.join(USERS_DIR).join(format!("{}.db", user.id)))
        }
    }
}

fn is_guest(engine: &Engine) -> bool {
    engine
        .store()
        .path()
        .file_name()
        .is_some_and(|n| n == GUEST_DB)
}

fn any_user_database(data_dir: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(data_dir.join(USERS_DIR))? {
        if entry?.path().extension().is_some_and(|e| e == "db") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Space, user and invitation ids in paths follow the id rule.
fn check_space_id(id: &str) -> Result<()> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(Error::invalid(
            "ids are 1 to 128 characters from [A-Za-z0-9_.:-]",
        ))
    }
}

/// Moves the guest data into the first account's (new, empty) database in one transaction, so
/// its pending changes are pushed to that account and the guest database is left empty.
fn adopt(engine: &Engine, guest: &Path, guest_key: Option<&DatabaseKey>) -> Result<()> {
    engine
        .store()
        .write_attached(guest, guest_key, "guest", |tx| {
            Ok(tx.execute_batch(
                "INSERT INTO main.records SELECT * FROM guest.records;
             INSERT INTO main.outbox SELECT * FROM guest.outbox;
             INSERT INTO main.conflicts SELECT * FROM guest.conflicts;
             INSERT INTO main.group_holds SELECT * FROM guest.group_holds;
             INSERT OR IGNORE INTO main.attachments SELECT * FROM guest.attachments;
             DELETE FROM guest.records; DELETE FROM guest.outbox; DELETE FROM guest.conflicts;
             DELETE FROM guest.group_holds; DELETE FROM guest.attachments;",
            )?)
        })
}

/// Waits until no call holds the engine any more, so its files can be deleted.
async fn wait_until_unused(engine: Arc<Engine>) {
    let deadline = Instant::now() + CLOSE_WAIT;
    while Arc::strong_count(&engine) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn delete_database(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", ".sync-lock"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::remove_file(PathBuf::from(file)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

/// This installation's client id (sent with pushes), created once per data directory.
fn client_id(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(CLIENT_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if is_valid_id(id.trim()) => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::now_v7().to_string();
            let mut file = files::open_private(
                &path,
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true),
            )?;
            std::io::Write::write_all(&mut file, id.as_bytes())?;
            Ok(id)
        }
    }
}
