//! Where tokens live: a small key-value store of secrets, by default the platform's keyring.
//!
//! The default, [`KeyringStore`], uses the keyring ecosystem (`keyring-core` with one credential
//! store per platform, as the `keyring` 4.x crate recommends for applications):
//!
//! - **iOS**: the data protection Keychain (`apple-native-keyring-store`'s `protected` store,
//!   generic passwords), every item `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`: readable
//!   by background sync once the device was unlocked after boot, and never carried to another
//!   device by a backup (a restored backup's encrypted database then reports a missing key and
//!   the user signs in again). Nothing to initialise.
//! - **macOS**: the login Keychain (the same crate's `keychain` store), which unsigned
//!   command-line tools can use too.
//! - **Android**: `android-native-keyring-store`, values encrypted with a key held in the Android
//!   Keystore and kept in SharedPreferences. It reaches the app's `Context` through
//!   `ndk-context`, which the app initialises once, before the engine opens, with the JNI function
//!   that crate exports (it is linked into `libtandem.so`):
//!
//!   ```kotlin
//!   // package io.crates.keyring; class Keyring { companion object {
//!   //     init { System.loadLibrary("tandem") }
//!   //     external fun initializeNdkContext(context: Context) } }
//!   Keyring.initializeNdkContext(applicationContext)   // the one line, in Application.onCreate
//!   ```
//! - **Linux**: the kernel key-retention service (keyutils, session keyring, linked to the
//!   user's persistent keyring), which needs neither D-Bus nor a desktop session. Its keys live
//!   in kernel memory: they survive the process, not a reboot. So a Linux program that turns
//!   encryption at rest on supplies a store that persists (the CLI keeps its secrets in a file
//!   of the data directory readable by its owner only), or its databases are unreadable after
//!   a reboot (`Key { Missing }`, nothing deleted).
//! - elsewhere: no default; the app supplies its own [`SecretStore`].
//!
//! Keys are namespaced by the data directory's installation id ([`secret_namespace`]) so two
//! apps or two data directories on one machine never read each other's tokens.

use std::fmt;
use std::sync::{Arc, Mutex};

/// Why the secret store failed. Messages never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretStoreError {
    /// There is no secure store on this platform, or it cannot be reached (locked, refused).
    #[error("no secure store available: {0}")]
    Unavailable(String),
    /// The store failed reading or writing.
    #[error("secure store failed: {0}")]
    Failed(String),
}

/// A store of string secrets by key. Implementations must be safe to call from any thread;
/// calls are short and may block briefly (a keychain round trip).
pub trait SecretStore: Send + Sync {
    /// The secret under `key`, or `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<String>, SecretStoreError>;
    /// Stores `value` under `key`, replacing what was there.
    fn set(&self, key: &str, value: &str) -> Result<(), SecretStoreError>;
    /// Removes `key`; removing a missing key succeeds.
    fn delete(&self, key: &str) -> Result<(), SecretStoreError>;
}

/// The namespace of the secrets of one data directory: `tandem.` and the directory's
/// installation id (the `client-id` file inside it). Not the directory's path: an iOS app's
/// container path changes across app updates, and the session must survive those; two
/// directories still never share a namespace.
pub fn secret_namespace(installation_id: &str) -> String {
    format!("tandem.{installation_id}")
}

/// The platform keyring (see the module documentation for what that is on each platform).
pub struct KeyringStore {
    store: Arc<keyring_core::CredentialStore>,
    service: String,
}

impl fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl KeyringStore {
    /// The service name entries are filed under.
    pub const SERVICE: &'static str = "dev.tandem";

    /// The platform's default keyring.
    pub fn new() -> Result<Self, SecretStoreError> {
        Ok(Self {
            store: platform_store()?,
            service: Self::SERVICE.to_string(),
        })
    }

    fn entry(&self, key: &str) -> Result<keyring_core::Entry, SecretStoreError> {
        self.store
            .build(&self.service, key, entry_modifiers().as_ref())
            .map_err(store_error)
    }
}

/// How new items are protected: on iOS after first unlock, this device only (tokens and
/// database keys must be readable by background sync, and must not travel in backups).
#[cfg(target_os = "ios")]
fn entry_modifiers() -> Option<std::collections::HashMap<&'static str, &'static str>> {
    Some(std::collections::HashMap::from([(
        "access-policy",
        "after-first-unlock-this-device-only",
    )]))
}

/// Elsewhere the store's own default.
#[cfg(not(target_os = "ios"))]
fn entry_modifiers() -> Option<std::collections::HashMap<&'static str, &'static str>> {
    None
}

#[cfg(target_os = "linux")]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>, SecretStoreError> {
    let store = linux_keyutils_keyring_store::Store::new().map_err(store_error)?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>, SecretStoreError> {
    let store = apple_native_keyring_store::keychain::Store::new().map_err(store_error)?;
    Ok(store)
}

#[cfg(target_os = "ios")]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>, SecretStoreError> {
    let store = apple_native_keyring_store::protected::Store::new().map_err(store_error)?;
    Ok(store)
}

#[cfg(target_os = "android")]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>, SecretStoreError> {
    let store = android_native_keyring_store::Store::new().map_err(store_error)?;
    Ok(store)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "ios",
    target_os = "android"
)))]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>, SecretStoreError> {
    Err(SecretStoreError::Unavailable(
        "no default secure store on this platform; provide one".into(),
    ))
}

/// Maps a keyring error without its payload: some variants carry the secret's bytes.
fn store_error(e: keyring_core::Error) -> SecretStoreError {
    use keyring_core::Error as K;
    match e {
        K::NoStorageAccess(inner) => SecretStoreError::Unavailable(inner.to_string()),
        K::PlatformFailure(inner) => SecretStoreError::Failed(inner.to_string()),
        K::NoDefaultStore => SecretStoreError::Unavailable("no credential store".into()),
        K::NotSupportedByStore(what) => {
            SecretStoreError::Failed(format!("not supported by the store: {what}"))
        }
        K::BadEncoding(_) => SecretStoreError::Failed("a stored secret is not UTF-8".into()),
        K::BadDataFormat(_, _) => {
            SecretStoreError::Failed("a stored secret is not in the expected format".into())
        }
        K::BadStoreFormat(what) => {
            SecretStoreError::Failed(format!("the store is damaged: {what}"))
        }
        K::TooLong(name, limit) => {
            SecretStoreError::Failed(format!("{name} is longer than the store allows ({limit})"))
        }
        K::Invalid(name, why) => SecretStoreError::Failed(format!("invalid {name}: {why}")),
        K::Ambiguous(_) => {
            SecretStoreError::Failed("more than one stored credential matches".into())
        }
        K::NoEntry => SecretStoreError::Failed("no entry".into()),
        _ => SecretStoreError::Failed("unknown keyring error".into()),
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, key: &str) -> Result<Option<String>, SecretStoreError> {
        match self.entry(key)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    fn set(&self, key: &str, value: &str) -> Result<(), SecretStoreError> {
        self.entry(key)?.set_password(value).map_err(store_error)
    }

    fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// An in-memory store: **not secure and not persistent** beyond the value itself. For tests,
/// and for platforms without a keyring where the app accepts that sessions end with the process.
#[derive(Default)]
pub struct MemorySecretStore {
    values: Mutex<std::collections::HashMap<String, String>>,
}

impl fmt::Debug for MemorySecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.values.lock().map(|v| v.len()).unwrap_or(0);
        write!(f, "MemorySecretStore(in-memory, not secure; {keys} keys)")
    }
}

impl MemorySecretStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn values(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SecretStore for MemorySecretStore {
    fn get(&self, key: &str) -> Result<Option<String>, SecretStoreError> {
        Ok(self.values().get(key).cloned())
    }

    fn set(&self, key: &str, value: &str) -> Result<(), SecretStoreError> {
        self.values().insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        self.values().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trip_and_says_what_it_is() {
        let store = MemorySecretStore::new();
        assert_eq!(store.get("k").unwrap(), None);
        store.set("k", "v").unwrap();
        assert_eq!(store.get("k").unwrap().as_deref(), Some("v"));
        store.delete("k").unwrap();
        store.delete("k").unwrap();
        assert_eq!(store.get("k").unwrap(), None);
        store.set("k", "secret-value").unwrap();
        let debug = format!("{store:?}");
        assert!(debug.contains("in-memory, not secure") && !debug.contains("secret-value"));
    }
}
