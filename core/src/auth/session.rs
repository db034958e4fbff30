//! The auth session of one data directory: who is signed in, their tokens (kept in the secret
//! store, restored at open), refreshing, and the auth state as a watched value
//! ([`AuthSession::watch_state`]; the client's notification thread delivers it to observers).
//!
//! Every change of the session (sign-in, sign-up, refresh, expiry, sign-out) runs behind one
//! async gate, so a refresh finishing late can never overwrite a newer sign-in, and concurrent
//! callers needing a fresh token share a single refresh: whoever gets the gate second sees the
//! token already changed and takes the new one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use tandem_protocol::clock::{Clock, SystemClock};
use tandem_protocol::User;

use crate::auth::client::{AuthClient, SignOutScope};
use crate::auth::error::AuthError;
use crate::auth::lock;
use crate::auth::secret_store::SecretStore;
use crate::auth::tokens::{AccessToken, SignedInSession, StoredSession, Tokens};
use crate::http::HttpClient;

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthState {
    /// Nobody.
    SignedOut,
    /// `User` is signed in and has a live session.
    SignedIn(User),
    /// `User`'s session ended (the refresh token was refused); their local data stays and goes
    /// up once the same user signs in again.
    SessionExpired(User),
}

/// The session as held in memory.
enum Current {
    SignedOut,
    SignedIn(SignedInSession),
    Expired(User),
}

impl Current {
    fn state(&self) -> AuthState {
        match self {
            Self::SignedOut => AuthState::SignedOut,
            Self::SignedIn(session) => AuthState::SignedIn(session.user.clone()),
            Self::Expired(user) => AuthState::SessionExpired(user.clone()),
        }
    }

    fn tokens(&self) -> Result<&Tokens, AuthError> {
        match self {
            Self::SignedIn(session) => Ok(&session.tokens),
            Self::Expired(_) => Err(AuthError::SessionExpired),
            Self::SignedOut => Err(AuthError::NotSignedIn),
        }
    }
}

/// The auth session of one data directory.
pub struct AuthSession {
    client: AuthClient,
    store: Arc<dyn SecretStore>,
    /// The secret store key of this directory's session record.
    key: String,
    current: Mutex<Current>,
    /// Serialises every change of the session (see the module documentation).
    gate: tokio::sync::Mutex<()>,
    /// The published auth state: changed after every change of `current`, only when it differs.
    published: watch::Sender<AuthState>,
    refreshes: AtomicU64,
    /// Where "now" comes from when judging token expiry.
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSession")
            .field("key", &self.key)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl AuthSession {
    /// Opens the session of the directory whose secrets live under `namespace` (see
    /// `secret_namespace`), restoring it from `store`: a stored live session is signed in again,
    /// an expired one stays expired, a damaged record counts as signed out.
    pub fn open(
        http: HttpClient,
        store: Arc<dyn SecretStore>,
        namespace: &str,
    ) -> Result<Self, AuthError> {
        Self::open_with_clock(http, store, namespace, Arc::new(SystemClock))
    }

    /// [`open`](Self::open), judging token expiry by `clock` (tests share a manual clock with
    /// their server and move it instead of waiting for tokens to expire).
    pub fn open_with_clock(
        http: HttpClient,
        store: Arc<dyn SecretStore>,
        namespace: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let key = format!("{namespace}/session");
        let current = match store.get(&key)?.as_deref().and_then(StoredSession::decode) {
            None => Current::SignedOut,
            Some(StoredSession {
                user,
                tokens: Some(tokens),
                ..
            }) => Current::SignedIn(SignedInSession { user, tokens }),
            Some(StoredSession {
                user, tokens: None, ..
            }) => Current::Expired(user),
        };
        let state = current.state();
        Ok(Self {
            client: AuthClient::new(http),
            store,
            key,
            current: Mutex::new(current),
            gate: tokio::sync::Mutex::new(()),
            published: watch::Sender::new(state),
            refreshes: AtomicU64::new(0),
            clock,
        })
    }

    /// Who is signed in now.
    pub fn state(&self) -> AuthState {
        lock(&self.current).state()
    }

    /// The user whose data is open: the signed-in user, or the one whose session expired.
    pub fn current_user(&self) -> Option<User> {
        match self.state() {
            AuthState::SignedIn(user) | AuthState::SessionExpired(user) => Some(user),
            AuthState::SignedOut => None,
        }
    }

    /// The auth state as a watched value: its current value, then every change.
    pub fn watch_state(&self) -> watch::Receiver<AuthState> {
        self.published.subscribe()
    }

    /// How many refresh-token exchanges succeeded since open (for metrics and tests).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Creates an account and signs it in.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<User, AuthError> {
        let _gate = self.gate.lock().await;
        let session = self.client.sign_up(email, password).await?;
        self.adopt(session)
    }

    /// Signs in with email and password, replacing any current session.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<User, AuthError> {
        let _gate = self.gate.lock().await;
        let session = self.client.sign_in(email, password).await?;
        self.adopt(session)
    }

    /// Signs out this device only: [`AuthSession::sign_out_scoped`] with `Local`.
    pub async fn sign_out(&self) -> Result<(), AuthError> {
        self.sign_out_scoped(SignOutScope::Local).await
    }

    /// Signs out: asks the server to revoke the session — this device's (`Local`) or every
    /// device's (`Global`) — (best effort: offline, it is skipped), then forgets it and deletes
    /// its secrets. The state is `SignedOut` even when deleting the secrets fails (that failure
    /// is returned).
    pub async fn sign_out_scoped(&self, scope: SignOutScope) -> Result<(), AuthError> {
        let _gate = self.gate.lock().await;
        self.revoke_on_server(scope).await;
        let deleted = self.store.delete(&self.key);
        if let Err(e) = &deleted {
            tracing::warn!(error = %e, "sign-out: deleting the stored session failed");
        }
        tracing::info!("signed out");
        *lock(&self.current) = Current::SignedOut;
        self.publish();
        deleted.map_err(AuthError::from)
    }

    /// A valid access token, refreshed first when it is within 60 s of expiry (half its
    /// lifetime for very short-lived tokens). If that refresh fails for a passing reason
    /// (offline, server error) while the token has not expired yet, the token is returned.
    pub async fn access_token(&self) -> Result<AccessToken, AuthError> {
        let tokens = lock(&self.current).tokens()?.clone();
        if !tokens.needs_refresh(self.clock.now_secs()) {
            return Ok(tokens.access_token);
        }
        self.refresh(&tokens.access_token, false).await
    }

    /// After a request with `stale` was answered 401 `token_expired`: a refreshed token, or the
    /// current one if it already changed since `stale` was handed out.
    pub async fn refresh_after_expired(
        &self,
        stale: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        self.refresh(stale, true).await
    }

    /// Exchanges the refresh token unless the access token changed since `seen` (someone else
    /// refreshed, or signed in) or, when not `forced`, no longer needs refreshing.
    async fn refresh(&self, seen: &AccessToken, forced: bool) -> Result<AccessToken, AuthError> {
        let _gate = self.gate.lock().await;
        let tokens = lock(&self.current).tokens()?.clone();
        if tokens.access_token != *seen || (!forced && !tokens.needs_refresh(self.clock.now_secs()))
        {
            return Ok(tokens.access_token);
        }
        match self.client.refresh(&tokens.refresh_token).await {
            Ok(answer) => {
                let session = answer?;
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                self.store_refreshed(session)
            }
            Err(e) if AuthError::refresh_token_refused(&e) => {
                self.expire();
                Err(AuthError::SessionExpired)
            }
            Err(_) if !forced && !tokens.expired(self.clock.now_secs()) => Ok(tokens.access_token),
            Err(e) => Err(AuthError::from_http(e)),
        }
    }

    /// Makes `session` the current one: stored first, so a keyring failure leaves the previous
    /// state untouched instead of a session that would not survive a restart.
    fn adopt(&self, session: SignedInSession) -> Result<User, AuthError> {
        if let Err(e) = self.persist(&session.user, Some(&session.tokens)) {
            tracing::warn!(error = %e, "storing the new session failed; the previous state stays");
            return Err(e);
        }
        tracing::info!(user_id = %session.user.id, "signed in");
        let user = session.user.clone();
        *lock(&self.current) = Current::SignedIn(session);
        self.publish();
        Ok(user)
    }

    /// Keeps refreshed tokens. The old refresh token is already spent, so memory takes the new
    /// ones even if storing them fails (the session then works until the process ends).
    fn store_refreshed(&self, session: SignedInSession) -> Result<AccessToken, AuthError> {
        let access = session.tokens.access_token.clone();
        let stored = self.persist(&session.user, Some(&session.tokens));
        match &stored {
            Ok(()) => tracing::debug!(user_id = %session.user.id, "access token refreshed"),
            Err(e) => {
                tracing::warn!(error = %e, "storing refreshed tokens failed; they last until the process ends")
            }
        }
        *lock(&self.current) = Current::SignedIn(session);
        self.publish();
        stored.map(|()| access)
    }

    /// Ends the session after its refresh token was refused, keeping the user.
    fn expire(&self) {
        let user = match &*lock(&self.current) {
            Current::SignedIn(session) => session.user.clone(),
            _ => return,
        };
        tracing::info!(user_id = %user.id, "the session expired: its refresh token was refused");
        // If this write fails, the dead tokens are found dead again after a restart.
        if let Err(e) = self.persist(&user, None) {
            tracing::warn!(error = %e, "storing the expired session failed");
        }
        *lock(&self.current) = Current::Expired(user);
        self.publish();
    }

    /// Best-effort `POST /logout` so the server revokes the refresh tokens too. An expired access
    /// token is refreshed first, since logout needs a valid one.
    async fn revoke_on_server(&self, scope: SignOutScope) {
        let Ok(mut tokens) = lock(&self.current).tokens().cloned() else {
            return;
        };
        if tokens.expired(self.clock.now_secs()) {
            match self.client.refresh(&tokens.refresh_token).await {
                Ok(Ok(session)) => tokens = session.tokens,
                // A refused refresh token is revoked already; offline, nothing to do.
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "sign-out: refreshing before logout failed");
                    return;
                }
                Err(e) => {
                    tracing::info!(error = %e, "sign-out: refreshing before logout failed");
                    return;
                }
            }
        }
        if let Err(e) = self.client.logout(&tokens.access_token, scope).await {
            tracing::info!(error = %e, "sign-out: the server did not revoke the session");
        }
    }

    fn persist(&self, user: &User, tokens: Option<&Tokens>) -> Result<(), AuthError> {
        let record = StoredSession {
            v: StoredSession::VERSION,
            user: user.clone(),
            tokens: tokens.cloned(),
        };
        self.store
            .set(&self.key, &record.encode())
            .map_err(AuthError::from)
    }

    /// Publishes the current state if it differs from the one published last.
    /// The state is read inside the watch's lock, so concurrent publishes cannot reorder.
    fn publish(&self) {
        self.published.send_if_modified(|published| {
            let state = self.state();
            if *published == state {
                return false;
            }
            *published = state;
            true
        });
    }
}
