//! The control plane's tables on SQLite (docs/design/operations.md §1): `pauses` (the kill
//! switch, `scope` = `*` or a user id) and `users.tokens_valid_after` (access tokens issued
//! before it are refused). SQLite is one instance: the routes update the caches of
//! `control.rs` themselves after these writes.

use rusqlite::{params, Connection, OptionalExtension};

use super::{PauseRow, SqliteStore, StorageError};

/// Created with the other tables (`sqlite::migrate`).
pub(super) const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS pauses (
    scope TEXT PRIMARY KEY,
    paused_at INTEGER NOT NULL,
    retry_after_secs INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
";

/// Adds the columns this module keeps on tables it does not own (run after [`MIGRATION`]).
pub(super) fn migrate_columns(conn: &Connection) -> Result<(), StorageError> {
    let has_column: i64 = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('users') WHERE name = 'tokens_valid_after'",
        [],
        |r| r.get(0),
    )?;
    if has_column == 0 {
        conn.execute_batch("ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER")?;
    }
    Ok(())
}

/// The new `tokens_valid_after` of a revocation at `?2`: later than now and than every `iat`
/// issued since the last revocation (tokens issued in a revoked second get the next second, see
/// `control::Revocations::issue_secs`), so every token issued up to now is refused.
const NEXT_VALID_AFTER: &str = "max(?2, (coalesce(tokens_valid_after, 0) + 999) / 1000 * 1000) + 1";

fn pause_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PauseRow> {
    Ok(PauseRow {
        scope: r.get(0)?,
        email: r.get(1)?,
        paused_at_ms: r.get(2)?,
        retry_after_secs: r.get(3)?,
        reason: r.get(4)?,
    })
}

impl SqliteStore {
    /// Every pause, the global one (`*`) first, then by time.
    pub async fn pauses(&self) -> Result<Vec<PauseRow>, StorageError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT p.scope, u.email, p.paused_at, p.retry_after_secs, p.reason
                 FROM pauses p LEFT JOIN users u ON u.id = p.scope
                 ORDER BY p.scope <> '*', p.paused_at, p.scope",
            )?;
            let rows = statement.query_map([], pause_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Inserts or replaces the pause of `pause.scope`.
    pub async fn put_pause(&self, pause: PauseRow) -> Result<(), StorageError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO pauses (scope, paused_at, retry_after_secs, reason)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (scope) DO UPDATE SET paused_at = excluded.paused_at,
                     retry_after_secs = excluded.retry_after_secs, reason = excluded.reason",
                params![
                    pause.scope,
                    pause.paused_at_ms,
                    pause.retry_after_secs,
                    pause.reason
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes the pause of `scope`; `false` when there was none.
    pub async fn delete_pause(&self, scope: &str) -> Result<bool, StorageError> {
        let scope = scope.to_string();
        self.write(move |conn| {
            Ok(conn.execute("DELETE FROM pauses WHERE scope = ?1", [scope])? > 0)
        })
        .await
    }

    /// Revokes every live sign-in of `user_id` and moves its `tokens_valid_after` past `now_ms`
    /// ([`NEXT_VALID_AFTER`]), in one transaction. Returns the sign-ins revoked and the new
    /// `tokens_valid_after`.
    pub async fn revoke_user(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<(u64, i64), StorageError> {
        let user_id = user_id.to_string();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let revoked = tx.execute(
                "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
                params![user_id, now_ms],
            )?;
            tx.execute(
                "DELETE FROM refresh_tokens WHERE user_id = ?1 AND used_at IS NULL",
                [&user_id],
            )?;
            tx.execute(
                &format!("UPDATE users SET tokens_valid_after = {NEXT_VALID_AFTER} WHERE id = ?1"),
                params![user_id, now_ms],
            )?;
            let valid_after: i64 = tx.query_row(
                "SELECT tokens_valid_after FROM users WHERE id = ?1",
                [&user_id],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok((revoked as u64, valid_after))
        })
        .await
    }

    /// `(user id, tokens_valid_after)` of every user revoked at or after `since_ms`.
    pub async fn revocations_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, tokens_valid_after FROM users WHERE tokens_valid_after >= ?1",
            )?;
            let rows = statement.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The id of the user named by `user`: an id, or else an email (as stored: normalized).
    pub async fn resolve_user(&self, user: &str) -> Result<Option<String>, StorageError> {
        let user = user.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT id FROM users WHERE id = ?1 OR email = ?2 ORDER BY id = ?1 DESC LIMIT 1")?
                .query_row(params![user, crate::auth::normalize_email(&user)], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// How many accounts there are.
    pub async fn user_count(&self) -> Result<u64, StorageError> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }
}
