//! Auth: the session of a data directory against a GoTrue-compatible auth server
//! (`docs/protocol.md`, or Supabase Auth).
//!
//! - [`AuthSession`]: sign-up, sign-in, sign-out, the auth state as a watched value, and access
//!   tokens refreshed before they expire (single-flight), restored from the secret store at open.
//! - [`SecretStore`]: where tokens live; [`KeyringStore`] is the platform keyring.
//! - [`AuthError`]: one typed error for both error body shapes.
//!
//! Tokens and passwords never reach logs, errors, `Debug` output or the database.

mod client;
mod error;
mod secret_store;
mod session;
mod tokens;

use std::sync::{Mutex, MutexGuard};

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use client::session_from_value;
pub use client::SignOutScope;
pub use error::AuthError;
pub use secret_store::{
    secret_namespace, KeyringStore, MemorySecretStore, SecretStore, SecretStoreError,
};
pub use session::{AuthSession, AuthState};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use tokens::unix_now as tokens_unix_now;
pub use tokens::AccessToken;

/// Locks `mutex`, recovering from poisoning: every critical section here leaves the data whole
/// (single assignments), so a panic elsewhere must not wedge auth forever.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
