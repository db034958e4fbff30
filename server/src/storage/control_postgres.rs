//! The control plane's tables on PostgreSQL (see `control_sqlite.rs`). Every write sends a
//! `control` notice on the changes channel inside its transaction (`control:pauses`,
//! `control:revoked:<user id>`), so every instance reloads its caches on commit.

use deadpool_postgres::GenericClient;

use super::postgres::CHANGES_CHANNEL;
use super::{PauseRow, PostgresStore, StorageError};

/// Run in the migration transaction (`postgres::PostgresStore::open`), under its advisory lock.
pub(super) const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS pauses (
    scope TEXT PRIMARY KEY,
    paused_at BIGINT NOT NULL,
    retry_after_secs INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
ALTER TABLE users ADD COLUMN IF NOT EXISTS tokens_valid_after BIGINT;
CREATE INDEX IF NOT EXISTS users_by_tokens_valid_after ON users (tokens_valid_after)
    WHERE tokens_valid_after IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
";

/// The notice that the pauses changed.
pub const PAUSES_NOTICE: &str = "control:pauses";

/// The notice that `user_id`'s tokens were revoked.
pub fn revoked_notice(user_id: &str) -> String {
    format!("control:revoked:{user_id}")
}

fn pause_row(r: &tokio_postgres::Row) -> PauseRow {
    PauseRow {
        scope: r.get(0),
        email: r.get(1),
        paused_at_ms: r.get(2),
        retry_after_secs: i64::from(r.get::<_, i32>(3)),
        reason: r.get(4),
    }
}

async fn notify(client: &impl GenericClient, payload: &str) -> Result<(), StorageError> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANGES_CHANNEL, &payload])
        .await?;
    Ok(())
}

impl PostgresStore {
    /// Every pause, the global one (`*`) first, then by time.
    pub async fn pauses(&self) -> Result<Vec<PauseRow>, StorageError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT p.scope, u.email, p.paused_at, p.retry_after_secs, p.reason
                 FROM pauses p LEFT JOIN users u ON u.id = p.scope
                 ORDER BY p.scope <> '*', p.paused_at, p.scope",
                &[],
            )
            .await?;
        Ok(rows.iter().map(pause_row).collect())
    }

    /// Inserts or replaces the pause of `pause.scope`; every instance hears of it.
    pub async fn put_pause(&self, pause: PauseRow) -> Result<(), StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let retry = i32::try_from(pause.retry_after_secs).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO pauses (scope, paused_at, retry_after_secs, reason)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (scope) DO UPDATE SET paused_at = excluded.paused_at,
                 retry_after_secs = excluded.retry_after_secs, reason = excluded.reason",
            &[&pause.scope, &pause.paused_at_ms, &retry, &pause.reason],
        )
        .await?;
        notify(&tx, PAUSES_NOTICE).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the pause of `scope`; `false` when there was none. Every instance hears of it.
    pub async fn delete_pause(&self, scope: &str) -> Result<bool, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let deleted = tx
            .execute("DELETE FROM pauses WHERE scope = $1", &[&scope])
            .await?;
        if deleted > 0 {
            notify(&tx, PAUSES_NOTICE).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Revokes every live sign-in of `user_id` and moves its `tokens_valid_after` past `now_ms`
    /// (see `control_sqlite.rs`), in one transaction; every instance hears of it. Returns the
    /// sign-ins revoked and the new `tokens_valid_after`.
    pub async fn revoke_user(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<(u64, i64), StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let revoked = tx
            .execute(
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                &[&user_id, &now_ms],
            )
            .await?;
        tx.execute(
            "DELETE FROM refresh_tokens WHERE user_id = $1 AND used_at IS NULL",
            &[&user_id],
        )
        .await?;
        let valid_after: i64 = tx
            .query_one(
                "UPDATE users SET tokens_valid_after =
                     GREATEST($2::BIGINT, (COALESCE(tokens_valid_after, 0) + 999) / 1000 * 1000) + 1
                 WHERE id = $1 RETURNING tokens_valid_after",
                &[&user_id, &now_ms],
            )
            .await?
            .get(0);
        notify(&tx, &revoked_notice(user_id)).await?;
        tx.commit().await?;
        Ok((revoked, valid_after))
    }

    /// `(user id, tokens_valid_after)` of every user revoked at or after `since_ms`.
    pub async fn revocations_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, tokens_valid_after FROM users WHERE tokens_valid_after >= $1",
                &[&since_ms],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The id of the user named by `user`: an id, or else an email (as stored: normalized).
    pub async fn resolve_user(&self, user: &str) -> Result<Option<String>, StorageError> {
        let client = self.pool.get().await?;
        let email = crate::auth::normalize_email(user);
        let row = client
            .query_opt(
                "SELECT id FROM users WHERE id = $1 OR email = $2 ORDER BY id = $1 DESC LIMIT 1",
                &[&user, &email],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// How many accounts there are.
    pub async fn user_count(&self) -> Result<u64, StorageError> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }
}
