//! `TandemCollection`: one collection of an open store, for the reads an app makes most often.
//!
//! It exists for the foreign languages' call cost (issue 18, docs/benchmarks.md "ffi suite"):
//! every string argument of an exported call is one more native call and one more buffer in the
//! generated Kotlin (an allocation in Rust, filled from the JVM), so `plans.get(id)` crosses
//! four times where `tandem.get("plans", id)` crosses five, and `get_many` reads any number of
//! records for the crossings of one `get`. The results are the same as `Tandem`'s calls.

use std::sync::{Arc, Weak};

use tandem_core::{Error, Query as EngineQuery, ValidationError, ValidationReason};

use super::error::TandemError;
use super::types::{Query, Record};
use super::Tandem;

/// One collection of an open store: `tandem.collection("plans")`. Its calls are `Tandem`'s
/// reads with the collection already given, and cost fewer native calls from Kotlin, Swift and
/// Python; keep one per collection for the life of the store. It does not keep the store open:
/// once the `Tandem` is shut down or released, its calls fail with `Closed`.
#[derive(uniffi::Object)]
pub struct TandemCollection {
    tandem: Weak<Tandem>,
    name: String,
}

#[uniffi::export]
impl Tandem {
    /// A handle on `name`, for cheaper reads of it (`get`, `get_many`, `query`, `count`).
    /// Fails with `Validation` (`UnknownCollection`) when the schema does not declare it, as
    /// `get` on it would.
    pub fn collection(self: Arc<Self>, name: String) -> Result<Arc<TandemCollection>, TandemError> {
        self.client()?;
        if self.schema.collection(&name).is_none() {
            return Err(Error::Validation(ValidationError::new(
                &name,
                None,
                ValidationReason::UnknownCollection,
            ))
            .into());
        }
        Ok(Arc::new(TandemCollection {
            tandem: Arc::downgrade(&self),
            name,
        }))
    }

    /// The records of `collection` with these ids, in the order of `ids`: each one, or nothing
    /// where a record does not exist or was deleted (an id asked twice is answered twice). One
    /// call for many records, so one crossing of the FFI instead of one per `get`.
    pub fn get_many(
        &self,
        collection: String,
        ids: Vec<String>,
    ) -> Result<Vec<Option<Record>>, TandemError> {
        self.call(|client| {
            Ok(client
                .get_many(&collection, &ids)?
                .into_iter()
                .map(|row| row.map(Record::from))
                .collect())
        })
    }
}

#[uniffi::export]
impl TandemCollection {
    /// The collection's name, as given to `Tandem.collection`.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// The record, or nothing when it does not exist or was deleted (`Tandem.get`).
    pub fn get(&self, id: String) -> Result<Option<Record>, TandemError> {
        let tandem = self.tandem()?;
        tandem.call(|client| Ok(client.get(&self.name, &id)?.map(Record::from)))
    }

    /// The records with these ids, in the order of `ids`, nothing where one does not exist or
    /// was deleted (`Tandem.get_many`).
    pub fn get_many(&self, ids: Vec<String>) -> Result<Vec<Option<Record>>, TandemError> {
        self.tandem()?.get_many(self.name.clone(), ids)
    }

    /// The records matching `query` (`Tandem.query`).
    pub fn query(&self, query: Query) -> Result<Vec<Record>, TandemError> {
        let tandem = self.tandem()?;
        let query = EngineQuery::try_from(query)?;
        tandem.call(|client| {
            Ok(client
                .query(&self.name, &query)?
                .into_iter()
                .map(Record::from)
                .collect())
        })
    }

    /// How many records match `query`; its limit and offset are ignored (`Tandem.count`).
    pub fn count(&self, query: Query) -> Result<u64, TandemError> {
        self.tandem()?.count(self.name.clone(), query)
    }
}

impl TandemCollection {
    /// The store, while the app still holds it; `Closed` once it is gone.
    fn tandem(&self) -> Result<Arc<Tandem>, TandemError> {
        self.tandem.upgrade().ok_or(TandemError::Closed)
    }
}
