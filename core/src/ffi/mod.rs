//! The exported API: a thin layer over [`Engine`] that converts types, maps errors and keeps
//! panics from crossing into Swift, Kotlin or Python. No engine logic lives here.

mod error;
mod types;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, RwLock};

pub use error::TandemError;
pub use types::{
    ChangeKind, Filter, FilterOp, OrderBy, OutboxEntry, OutboxState, Query, Record, RecordState,
    TandemConfig, WriteOp,
};

use crate::engine::{Engine, WriteOp as EngineWriteOp};
use crate::error::Error;
use crate::observe::SubscriptionHandle;
use crate::query::Query as EngineQuery;
use types::parse_json;

/// Receives the results of an observed query: once right after `observe`, then after every
/// commit that touches the collection. Called on Tandem's notification thread.
#[uniffi::export(with_foreign)]
pub trait QueryObserver: Send + Sync {
    fn on_results(&self, records: Vec<Record>);
}

/// Receives the names of the collections each commit changed. Called on Tandem's notification
/// thread.
#[uniffi::export(with_foreign)]
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, collections: Vec<String>);
}

/// A running observation. `cancel()` ends it; so does dropping the last reference.
#[derive(uniffi::Object)]
pub struct Subscription {
    handle: SubscriptionHandle,
}

#[uniffi::export]
impl Subscription {
    /// Stops deliveries; none starts after this returns.
    pub fn cancel(&self) {
        self.handle.cancel();
    }
}

/// An open Tandem store: local records, their outbox and observers.
#[derive(uniffi::Object)]
pub struct Tandem {
    engine: RwLock<Option<Arc<Engine>>>,
}

#[uniffi::export]
impl Tandem {
    /// Opens the store in `config.data_dir` (creating it when missing) for `config.schema_json`.
    /// Fails with `Schema` for a bad schema, or one the stored data cannot follow, and with
    /// `AlreadyOpen` when this process already has the directory open.
    #[uniffi::constructor]
    pub fn open(config: TandemConfig) -> Result<Arc<Self>, TandemError> {
        guard(|| {
            let engine = Engine::open(Path::new(&config.data_dir), &config.schema_json)?;
            Ok(Arc::new(Self { engine: RwLock::new(Some(Arc::new(engine))) }))
        })
    }

    /// Closes the store and stops observers. Later calls fail with `Closed`. (Kotlin's `close()`
    /// from `AutoCloseable` releases the object and does this too.)
    pub fn shutdown(&self) {
        let engine = self.engine.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(engine);
    }

    /// Creates or replaces a whole document; generates a UUID v7 id when `id` is absent.
    pub fn put(&self, collection: String, id: Option<String>, json: String) -> Result<Record, TandemError> {
        self.write_one(|| Ok(EngineWriteOp::Put { doc: parse_json("the document", &json)?, collection, id }))
    }

    /// Applies an RFC 7386 JSON merge patch (`null` removes a field) to an existing record.
    pub fn patch(&self, collection: String, id: String, patch_json: String) -> Result<Record, TandemError> {
        self.write_one(|| {
            Ok(EngineWriteOp::Patch { patch: parse_json("the merge patch", &patch_json)?, collection, id })
        })
    }

    /// Deletes a record and, through the schema's parents, all its descendants.
    pub fn delete(&self, collection: String, id: String) -> Result<(), TandemError> {
        self.call(|engine| engine.write(vec![EngineWriteOp::Delete { collection, id }]).map(drop))
    }

    /// The record, or nothing when it does not exist or was deleted.
    pub fn get(&self, collection: String, id: String) -> Result<Option<Record>, TandemError> {
        self.call(|engine| Ok(engine.get(&collection, &id)?.map(Record::from)))
    }

    /// The records of `collection` matching `query`.
    pub fn query(&self, collection: String, query: Query) -> Result<Vec<Record>, TandemError> {
        let query = EngineQuery::try_from(query)?;
        self.call(|engine| Ok(engine.query(&collection, &query)?.into_iter().map(Record::from).collect()))
    }

    /// How many records of `collection` match `query` (its limit and offset are ignored).
    pub fn count(&self, collection: String, query: Query) -> Result<u64, TandemError> {
        let query = EngineQuery::try_from(query)?;
        self.call(|engine| engine.count(&collection, &query))
    }

    /// Applies puts, patches and deletes in one transaction: all or nothing. Returns the written
    /// record of each put and patch, in order.
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Record>, TandemError> {
        let ops = ops.into_iter().map(EngineWriteOp::try_from).collect::<Result<Vec<_>, _>>()?;
        self.call(|engine| Ok(engine.write(ops)?.into_iter().map(Record::from).collect()))
    }

    /// Observes a query: `observer` gets the results right away and after every commit that
    /// touches `collection`, until the subscription is cancelled or dropped.
    pub fn observe(
        &self,
        collection: String,
        query: Query,
        observer: Arc<dyn QueryObserver>,
    ) -> Result<Arc<Subscription>, TandemError> {
        let query = EngineQuery::try_from(query)?;
        self.call(|engine| {
            let callback = Box::new(move |rows: Vec<crate::records::RecordRow>| {
                observer.on_results(rows.into_iter().map(Record::from).collect());
            });
            let handle = engine.observe(&collection, &query, callback)?;
            Ok(Arc::new(Subscription { handle }))
        })
    }

    /// Tells `listener` which collections every commit changed.
    pub fn add_change_listener(&self, listener: Arc<dyn ChangeListener>) -> Result<Arc<Subscription>, TandemError> {
        self.call(|engine| {
            let handle = engine.listen(Box::new(move |collections| listener.on_change(collections)));
            Ok(Arc::new(Subscription { handle }))
        })
    }

    /// How many local changes wait for the server.
    pub fn pending_count(&self) -> Result<u64, TandemError> {
        self.call(|engine| engine.pending_count())
    }

    /// The outbox in sending order, for debugging screens.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, TandemError> {
        self.call(|engine| Ok(engine.outbox()?.into_iter().map(OutboxEntry::from).collect()))
    }
}

impl Tandem {
    /// The engine underneath, for Rust callers (tests, benchmarks, the CLI).
    pub fn engine(&self) -> Result<Arc<Engine>, TandemError> {
        self.engine.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or(TandemError::Closed)
    }

    fn call<T>(&self, f: impl FnOnce(&Engine) -> Result<T, Error>) -> Result<T, TandemError> {
        let engine = self.engine()?;
        guard(|| f(&engine).map_err(TandemError::from))
    }

    fn write_one(&self, op: impl FnOnce() -> Result<EngineWriteOp, TandemError>) -> Result<Record, TandemError> {
        let op = op()?;
        self.call(|engine| Ok(engine.write(vec![op])?.into_iter().next().map(Record::from)))?
            .ok_or_else(|| TandemError::Internal { detail: "a put wrote no record".into() })
    }
}

/// Turns a panic into `TandemError::Internal`, so none unwinds into foreign code.
fn guard<T>(f: impl FnOnce() -> Result<T, TandemError>) -> Result<T, TandemError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        Err(TandemError::Internal { detail })
    })
}
