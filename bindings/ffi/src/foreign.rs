//! Traits the app implements in Swift or Kotlin (observers, listeners, the secure store, the
//! conflict resolver), and the adapters that let the engine call them.

use std::sync::Arc;

use super::sync_types::{AuthState, Conflict, Resolution, SyncStatus};
use super::types::Record;
use tandem_core::auth::{SecretStore, SecretStoreError};
use tandem_core::{ConflictRow, Resolution as EngineResolution, Resolver};

/// Receives the results of an observed query: once right after `observe`, then after every
/// commit that touches the collection (local writes and synced changes). Called on Tandem's
/// notification thread.
#[uniffi::export(with_foreign)]
pub trait QueryObserver: Send + Sync {
    fn on_results(&self, records: Vec<Record>);
}

/// Receives one observed record: the record, or nothing while it does not exist.
#[uniffi::export(with_foreign)]
pub trait RecordObserver: Send + Sync {
    /// Called on Tandem's notification thread; hand the record to your UI thread.
    fn on_record(&self, record: Option<Record>);
}

/// Receives the names of the collections each commit changed. Called on Tandem's notification
/// thread.
#[uniffi::export(with_foreign)]
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, collections: Vec<String>);
}

/// Receives the auth state: the current one first, then every change. Called on Tandem's
/// notification thread.
#[uniffi::export(with_foreign)]
pub trait AuthStateListener: Send + Sync {
    fn on_auth_state(&self, state: AuthState);
}

/// Receives the sync status: the current one first, then every change. Called on Tandem's
/// notification thread.
#[uniffi::export(with_foreign)]
pub trait SyncStatusListener: Send + Sync {
    fn on_sync_status(&self, status: SyncStatus);
}

/// Decides conflicts as they happen. Return `None` to leave one to `resolve` later.
#[uniffi::export(with_foreign)]
pub trait ConflictResolver: Send + Sync {
    fn resolve(&self, conflict: Conflict) -> Option<Resolution>;
}

/// Where tokens are kept, when the platform keyring is not what the app wants.
#[uniffi::export(with_foreign)]
pub trait SecureStore: Send + Sync {
    fn get(&self, key: String) -> Result<Option<String>, SecureStoreError>;
    fn set(&self, key: String, value: String) -> Result<(), SecureStoreError>;
    fn delete(&self, key: String) -> Result<(), SecureStoreError>;
}

/// A failure of an app-provided secure store.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SecureStoreError {
    #[error("secure store failed: {detail}")]
    Failed { detail: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SecureStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed { detail: e.reason }
    }
}

/// The app's secure store seen as the engine's.
pub(crate) struct ForeignSecretStore(pub Arc<dyn SecureStore>);

impl std::fmt::Debug for ForeignSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignSecretStore")
    }
}

fn failed(e: SecureStoreError) -> SecretStoreError {
    SecretStoreError::Failed(e.to_string())
}

impl SecretStore for ForeignSecretStore {
    fn get(&self, key: &str) -> Result<Option<String>, SecretStoreError> {
        self.0.get(key.to_string()).map_err(failed)
    }

    fn set(&self, key: &str, value: &str) -> Result<(), SecretStoreError> {
        self.0
            .set(key.to_string(), value.to_string())
            .map_err(failed)
    }

    fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        self.0.delete(key.to_string()).map_err(failed)
    }
}

/// The app's resolver as the syncer calls it; an answer that does not parse leaves the
/// conflict to the app.
pub(crate) fn resolver(app: Arc<dyn ConflictResolver>) -> Resolver {
    Arc::new(move |conflict: &ConflictRow| {
        let answer = app.resolve(Conflict::from(conflict.clone()))?;
        EngineResolution::try_from(answer).ok()
    })
}
