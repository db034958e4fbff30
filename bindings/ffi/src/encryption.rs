//! The encryption-at-rest half of `Tandem` (docs/design/encryption.md §5): the `Encryption`
//! setting, `encryption_status` and `rekey`. A thin layer over `tandem_core::Client`'s calls;
//! the keys, the conversion and its crash safety live in the engine's `store` module.

use super::error::TandemError;
use super::types::TandemConfig;
use super::{client_config, guard, Tandem};

/// Encryption at rest of the local store: the database, its WAL and journal, and the
/// attachment cache.
///
/// With `On`, the engine generates a 256-bit key per database (one per account and one for the
/// guest database) and keeps it in the secure store: the platform keyring by default (the
/// Keychain with after-first-unlock, this-device-only accessibility; the Android Keystore; the
/// Linux kernel keyring), or the app's `SecureStore`. An app that supplies its own key answers
/// the store's `get` for the names ending in `/db-key/<database file>` with the key (32 bytes,
/// base64) and keeps what the engine `set`s there when it rotates the key (`rekey`).
///
/// A missing or wrong key fails `open` (and a later account switch) with `TandemError.Key`;
/// the file is never deleted or rewritten then, so pending changes wait for the key's return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, uniffi::Enum)]
pub enum Encryption {
    /// Plaintext files (the default). A database encrypted earlier is decrypted on the next
    /// open, as long as its key is still in the secure store.
    #[default]
    Off,
    /// Encrypted files. A plaintext database is encrypted on the next open, crash-safely.
    On,
}

impl From<Encryption> for tandem_core::Encryption {
    fn from(e: Encryption) -> Self {
        match e {
            Encryption::Off => Self::Off,
            Encryption::On => Self::On,
        }
    }
}

impl From<tandem_core::Encryption> for Encryption {
    fn from(e: tandem_core::Encryption) -> Self {
        match e {
            tandem_core::Encryption::Off => Self::Off,
            tandem_core::Encryption::On => Self::On,
        }
    }
}

#[uniffi::export]
impl Tandem {
    /// Whether the current database (the signed-in account's, or the guest one) is encrypted
    /// on disk now: what the files are, not what the configuration asks for (the two differ
    /// only while a conversion has not run yet).
    pub fn encryption_status(&self) -> Result<Encryption, TandemError> {
        self.call(|client| client.encryption_status().map(Encryption::from))
    }

    /// Rotates the current database's key: the database and the attachment cache are copied
    /// under a fresh key and the old key is deleted, crash-safely (a crash leaves a database
    /// that opens with the old key or the new one). Other calls wait while it runs (seconds
    /// for a large database); sync runs are held. Fails `InvalidArgument` with encryption off.
    pub async fn rekey(&self) -> Result<(), TandemError> {
        self.on_runtime(|client| async move { Ok(client.rekey().await?) })
            .await
    }
}

/// Moves aside every encrypted database of `config`'s data directory that no stored key opens,
/// so that the next `Tandem.open(config)` starts afresh and the user can sign in again; returns
/// the paths the files were moved to.
///
/// For the one case a key cannot come back from: a device backup restored onto another device
/// (its files came back; its keys, kept this device only, did not), where `open` fails with
/// `TandemError.Key` (`Missing`) every time. Ask the user first: nothing is deleted (each
/// database, its WAL and its attachment cache are renamed `….unreadable-<unix seconds>`), but
/// the changes in them that never reached the server are not sent. Readable and plaintext
/// databases are left alone. Call it with no `Tandem` open on the directory (else
/// `AlreadyOpen`); a secure store that cannot be read yet (`Key { Unavailable }`, before the
/// first unlock) moves nothing: retry later instead.
#[uniffi::export]
pub fn set_aside_unreadable_data(config: TandemConfig) -> Result<Vec<String>, TandemError> {
    guard(|| {
        let moved = tandem_core::Client::set_aside_unreadable(client_config(config))?;
        Ok(moved
            .into_iter()
            .map(|path| path.to_string_lossy().into_owned())
            .collect())
    })
}
