//! The control plane of one instance (docs/design/operations.md §1): the cached set of pauses
//! (the kill switch, [`PauseSet`]) and the cached revocations of users' access tokens
//! ([`Revocations`]), both read on every sync request without a query.
//!
//! The stored truth is the `pauses` table and `users.tokens_valid_after`
//! (`storage/control_*.rs`). On PostgreSQL a write sends `control:pauses` or
//! `control:revoked:<user id>` on the changes channel the instances already LISTEN on; each
//! instance reloads on such a notice ([`ControlPlane::on_notice`]) and every
//! [`BACKSTOP`] besides (a listener that reconnected may have missed a notice). SQLite is one
//! instance: the admin routes reload the cache right after their write, so the change holds for
//! the next request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::storage::{PauseRow, Storage, StorageError};

/// How often each instance reloads the pauses and revocations even without a notice.
pub const BACKSTOP: Duration = Duration::from_secs(5);

/// The scope of the global pause.
pub const GLOBAL: &str = "*";

/// The `Retry-After` of a pause that does not name one.
pub const DEFAULT_RETRY_AFTER_SECS: i64 = 60;

/// One pause as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub paused_at_ms: i64,
    pub retry_after_secs: i64,
    pub reason: String,
}

impl From<&PauseRow> for Pause {
    fn from(row: &PauseRow) -> Self {
        Self {
            paused_at_ms: row.paused_at_ms,
            retry_after_secs: row.retry_after_secs,
            reason: row.reason.clone(),
        }
    }
}

/// The pauses in force on this instance, by scope (`*` or a user id). Reads are a read lock and
/// a hash lookup.
#[derive(Default)]
pub struct PauseSet {
    by_scope: RwLock<HashMap<String, Pause>>,
}

impl PauseSet {
    /// The global pause, if sync is paused for everyone.
    pub fn global(&self) -> Option<Pause> {
        self.read().get(GLOBAL).cloned()
    }

    /// The pause that applies to `user_id`: the global one, else the user's own.
    pub fn for_user(&self, user_id: &str) -> Option<Pause> {
        let map = self.read();
        map.get(GLOBAL).or_else(|| map.get(user_id)).cloned()
    }

    /// Whether the user has a pause of their own (the global one aside).
    pub fn user_paused(&self, user_id: &str) -> bool {
        user_id != GLOBAL && self.read().contains_key(user_id)
    }

    /// Whether any user has a pause of their own (so a sync request must be authenticated
    /// before it can be let through).
    pub fn any_user_paused(&self) -> bool {
        self.paused_users() > 0
    }

    /// How many users have a pause of their own.
    pub fn paused_users(&self) -> usize {
        let map = self.read();
        map.len() - usize::from(map.contains_key(GLOBAL))
    }

    /// How many pauses there are, the global one included.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the set with `rows` (as stored).
    pub fn replace(&self, rows: &[PauseRow]) {
        let map = rows
            .iter()
            .map(|row| (row.scope.clone(), Pause::from(row)))
            .collect();
        *self.by_scope.write().unwrap_or_else(|e| e.into_inner()) = map;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Pause>> {
        self.by_scope.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Per user, the time (ms) before which their access tokens are refused: only users revoked
/// within the last access-token lifetime (older revocations outlive every token they refused).
#[derive(Default)]
pub struct Revocations {
    valid_after_ms: RwLock<HashMap<String, i64>>,
}

impl Revocations {
    /// The user's `tokens_valid_after`, if revoked recently.
    pub fn valid_after_ms(&self, user_id: &str) -> Option<i64> {
        self.valid_after_ms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(user_id)
            .copied()
    }

    /// Whether an access token of `user_id` issued at `iat_secs` is refused. Tokens carry their
    /// issue time in whole seconds, so the rule is `iat * 1000 < tokens_valid_after`: a token of
    /// the revocation's own second is refused (it may predate the revocation), and tokens issued
    /// afterwards get an `iat` no earlier than the next second ([`Self::issue_secs`]).
    pub fn refuses(&self, user_id: &str, iat_secs: i64) -> bool {
        self.valid_after_ms(user_id)
            .is_some_and(|after| iat_secs.saturating_mul(1000) < after)
    }

    /// The `iat` (seconds) of a token issued to `user_id` at `now_secs`: `now_secs`, or the first
    /// whole second at or after the user's revocation when that is later, so a sign-in right
    /// after a revocation gets a token that [`Self::refuses`] lets through.
    pub fn issue_secs(&self, user_id: &str, now_secs: i64) -> i64 {
        match self.valid_after_ms(user_id) {
            Some(after) => now_secs.max(after.div_euclid(1000) + i64::from(after % 1000 != 0)),
            None => now_secs,
        }
    }

    /// Records a revocation this instance made (or heard of).
    pub fn insert(&self, user_id: &str, valid_after_ms: i64) {
        let mut map = self
            .valid_after_ms
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(user_id.to_string()).or_insert(valid_after_ms);
        *entry = (*entry).max(valid_after_ms);
    }

    /// Replaces the set with `rows` (as stored).
    pub fn replace(&self, rows: Vec<(String, i64)>) {
        *self
            .valid_after_ms
            .write()
            .unwrap_or_else(|e| e.into_inner()) = rows.into_iter().collect();
    }
}

/// The pauses and revocations of this instance, and what keeps them current.
pub struct ControlPlane {
    pub pauses: Arc<PauseSet>,
    pub revocations: Arc<Revocations>,
    storage: Storage,
    clock: Arc<dyn Clock>,
    /// How long an access token lives: revocations older than this refuse nothing any more.
    access_ttl_ms: i64,
    reload: Notify,
}

impl ControlPlane {
    pub fn new(storage: Storage, clock: Arc<dyn Clock>, access_ttl_secs: u64) -> Arc<Self> {
        Arc::new(Self {
            pauses: Arc::default(),
            revocations: Arc::default(),
            storage,
            clock,
            access_ttl_ms: i64::try_from(access_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            reload: Notify::new(),
        })
    }

    /// Reads the pauses and recent revocations from the database into the caches.
    pub async fn reload(&self) -> Result<(), StorageError> {
        let pauses = self.storage.pauses().await?;
        self.pauses.replace(&pauses);
        // One second of slack: the clocks of instances differ a little.
        let since = self
            .clock
            .now_ms()
            .saturating_sub(self.access_ttl_ms)
            .saturating_sub(1000);
        let revoked = self.storage.revocations_since(since).await?;
        self.revocations.replace(revoked);
        Ok(())
    }

    /// A NOTIFY payload of the changes channel: `true` when it was a control notice
    /// (`control:…`), which wakes the reload task; `false` for anything else.
    pub fn on_notice(&self, payload: &str) -> bool {
        if !payload.starts_with("control:") {
            return false;
        }
        self.reload.notify_one();
        true
    }

    /// Reloads on every control notice and every [`BACKSTOP`], until `shutdown`.
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) {
        let control = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = control.reload.notified() => {}
                    _ = tokio::time::sleep(BACKSTOP) => {}
                }
                if let Err(e) = control.reload().await {
                    tracing::warn!(error = %e, "cannot reload pauses and revocations; will retry");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scope: &str) -> PauseRow {
        PauseRow {
            scope: scope.into(),
            email: None,
            paused_at_ms: 1,
            retry_after_secs: 30,
            reason: String::new(),
        }
    }

    #[test]
    fn the_global_pause_covers_everyone_and_user_pauses_only_their_user() {
        let set = PauseSet::default();
        set.replace(&[row("u1")]);
        assert!(set.global().is_none());
        assert!(set.for_user("u1").is_some());
        assert!(set.for_user("u2").is_none());
        assert_eq!(set.paused_users(), 1);
        set.replace(&[row("*"), row("u1")]);
        assert!(set.for_user("u2").is_some());
        assert_eq!((set.paused_users(), set.len()), (1, 2));
    }

    #[test]
    fn tokens_of_the_revocation_second_are_refused_and_later_ones_are_not() {
        let revocations = Revocations::default();
        revocations.insert("u", 10_500);
        assert!(revocations.refuses("u", 9));
        assert!(revocations.refuses("u", 10));
        assert!(!revocations.refuses("u", 11));
        assert!(!revocations.refuses("other", 0));
        // A sign-in in the revocation's second gets the next second as its `iat`.
        assert_eq!(revocations.issue_secs("u", 10), 11);
        assert!(!revocations.refuses("u", revocations.issue_secs("u", 10)));
        assert_eq!(revocations.issue_secs("u", 20), 20);
        // A revocation on a whole second: tokens of that second are let through from then on.
        revocations.insert("w", 12_000);
        assert_eq!(revocations.issue_secs("w", 12), 12);
        assert!(!revocations.refuses("w", 12));
        assert!(revocations.refuses("w", 11));
    }
}
