//! Users and their data on SQLite (see `users.rs`): the activity columns, the `rejections`
//! table, the operator's queries and deleting a user.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::sqlite::role_column;
use super::users::{
    DeletedUser, NewRejection, RejectionRow, SessionRow, UserDetail, UserSpaceRow, UserSummaryRow,
    PULL_NOTE_EVERY_MS,
};
use super::{Role, SqliteStore, StorageError};
use crate::spaces::space_stream;

/// Created with the other tables (`sqlite::migrate`, which then runs [`migrate_columns`]).
/// `id` orders the rejections (newest last) and lets the purge trim by one index probe.
pub(super) const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    collection TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op_id TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejections_by_user ON rejections (user_id, id);
";

/// `users.last_push_at` and `users.last_pull_at` (milliseconds, `NULL` until the first).
pub(super) fn migrate_columns(conn: &Connection) -> Result<(), StorageError> {
    for column in ["last_push_at", "last_pull_at"] {
        let present: i64 = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('users') WHERE name = ?1",
            [column],
            |r| r.get(0),
        )?;
        if present == 0 {
            conn.execute_batch(&format!("ALTER TABLE users ADD COLUMN {column} INTEGER"))?;
        }
    }
    Ok(())
}

/// In a push's transaction: the push time, and the batch's rejected changes.
pub(super) fn note_push(
    conn: &Connection,
    user_id: &str,
    now_ms: i64,
    rejections: &[NewRejection],
) -> Result<(), StorageError> {
    conn.prepare_cached("UPDATE users SET last_push_at = ?2 WHERE id = ?1")?
        .execute(params![user_id, now_ms])?;
    if rejections.is_empty() {
        return Ok(());
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO rejections (at, user_id, stream, collection, entity_id, op_id, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for r in rejections {
        insert.execute(params![
            now_ms,
            user_id,
            r.stream,
            r.collection,
            r.entity_id,
            r.op_id,
            r.reason
        ])?;
    }
    Ok(())
}

const SUMMARY_COLUMNS: &str = "u.id, u.email, u.created_at, u.last_push_at, u.last_pull_at,
     (SELECT count(*) FROM records r WHERE r.user_id = u.id AND r.deleted = 0)";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserSummaryRow> {
    Ok(UserSummaryRow {
        id: r.get(0)?,
        email: r.get(1)?,
        created_at_ms: r.get(2)?,
        last_push_at_ms: r.get(3)?,
        last_pull_at_ms: r.get(4)?,
        records: r.get(5)?,
    })
}

/// Rows of a deleted user's op ids deleted per transaction.
const OPS_BATCH: i64 = 10_000;

impl SqliteStore {
    pub async fn list_users(
        &self,
        query: Option<String>,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<UserSummaryRow>, StorageError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM users u
                     WHERE (?1 IS NULL OR instr(u.email, ?1) > 0 OR u.id = ?1)
                       AND (?2 IS NULL OR u.email > ?2)
                     ORDER BY u.email LIMIT ?3"
                ))?
                .query_map(params![query, after, limit], summary_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn user_detail(&self, user_id: &str) -> Result<Option<UserDetail>, StorageError> {
        let user_id = user_id.to_string();
        self.read(move |conn| {
            let tx = conn.transaction()?;
            let Some(user) = tx
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM users u WHERE u.id = ?1"
                ))?
                .query_row([&user_id], summary_row)
                .optional()?
            else {
                return Ok(None);
            };
            let collections = tx
                .prepare_cached(
                    "SELECT entity, count(*) FROM records WHERE user_id = ?1 AND deleted = 0
                     GROUP BY entity ORDER BY entity",
                )?
                .query_map([&user_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let spaces = tx
                .prepare_cached(
                    "SELECT sp.id, sp.name, m.role FROM members m
                     JOIN spaces sp ON sp.id = m.space_id
                     JOIN streams s ON s.id = 'space:' || m.space_id
                     WHERE m.user_id = ?1 AND s.deleted_at IS NULL ORDER BY sp.id",
                )?
                .query_map([&user_id], |r| {
                    Ok(UserSpaceRow {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        role: role_column(r, 2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let sessions = tx
                .prepare_cached(
                    "SELECT s.id, s.created_at, coalesce(max(t.created_at), s.created_at)
                     FROM sessions s LEFT JOIN refresh_tokens t ON t.session_id = s.id
                     WHERE s.user_id = ?1 AND s.revoked_at IS NULL
                     GROUP BY s.id, s.created_at ORDER BY s.created_at DESC, s.id",
                )?
                .query_map([&user_id], |r| {
                    Ok(SessionRow {
                        id: r.get(0)?,
                        created_at_ms: r.get(1)?,
                        last_used_at_ms: r.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(UserDetail {
                user,
                collections,
                spaces,
                sessions,
            }))
        })
        .await
    }

    pub async fn note_pull(&self, user_id: &str, now_ms: i64) -> Result<(), StorageError> {
        let user_id = user_id.to_string();
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE users SET last_pull_at = ?2 WHERE id = ?1
                 AND (last_pull_at IS NULL OR last_pull_at <= ?2 - ?3)",
            )?
            .execute(params![user_id, now_ms, PULL_NOTE_EVERY_MS])?;
            Ok(())
        })
        .await
    }

    pub async fn rejections(
        &self,
        user_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<RejectionRow>, StorageError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT r.at, r.user_id, u.email, r.stream, r.collection, r.entity_id,
                            r.op_id, r.reason
                     FROM rejections r LEFT JOIN users u ON u.id = r.user_id
                     WHERE ?1 IS NULL OR r.user_id = ?1 ORDER BY r.id DESC LIMIT ?2",
                )?
                .query_map(params![user_id, limit], |r| {
                    Ok(RejectionRow {
                        at_ms: r.get(0)?,
                        user_id: r.get(1)?,
                        email: r.get(2)?,
                        rejection: NewRejection {
                            stream: r.get(3)?,
                            collection: r.get(4)?,
                            entity_id: r.get(5)?,
                            op_id: r.get(6)?,
                            reason: r.get(7)?,
                        },
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn trim_rejections(&self, keep: i64) -> Result<u64, StorageError> {
        self.write(move |conn| {
            let trimmed = conn.execute(
                "DELETE FROM rejections WHERE id <=
                     (SELECT id FROM rejections ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                [keep],
            )?;
            Ok(trimmed as u64)
        })
        .await
    }

    /// The first, one-transaction part of `Storage::delete_user` (the writer is every stream's
    /// lock).
    pub async fn delete_user_rows(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Option<DeletedUser>, StorageError> {
        let user_id = user_id.to_string();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let email: Option<String> = tx
                .query_row("SELECT email FROM users WHERE id = ?1", [&user_id], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(email) = email else {
                return Ok(None);
            };
            let mut out = DeletedUser {
                records: tx.query_row(
                    "SELECT count(*) FROM records WHERE user_id = ?1 AND deleted = 0",
                    [&user_id],
                    |r| r.get::<_, i64>(0),
                )? as u64,
                ..DeletedUser::default()
            };
            let memberships = tx
                .prepare(
                    "SELECT m.space_id, m.role FROM members m
                     JOIN streams s ON s.id = 'space:' || m.space_id
                     WHERE m.user_id = ?1 AND s.deleted_at IS NULL ORDER BY m.space_id",
                )?
                .query_map([&user_id], |r| {
                    Ok((r.get::<_, String>(0)?, role_column(r, 1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (space_id, role) in memberships {
                let others = tx
                    .prepare_cached(
                        "SELECT user_id, role FROM members WHERE space_id = ?1 AND user_id <> ?2
                         ORDER BY joined_at, user_id",
                    )?
                    .query_map(params![space_id, user_id], |r| {
                        Ok((r.get::<_, String>(0)?, role_column(r, 1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                if others.is_empty() {
                    // The deleted-space purge removes its records, as after `DELETE /spaces/{id}`.
                    tx.execute(
                        "UPDATE streams SET deleted_at = ?2 WHERE id = ?1",
                        params![space_stream(&space_id), now_ms],
                    )?;
                    let invitees = tx
                        .prepare(
                            "SELECT u.id FROM invitations i JOIN users u ON u.email = i.email
                             WHERE i.space_id = ?1",
                        )?
                        .query_map([&space_id], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()?;
                    out.concerned.extend(invitees);
                    tx.execute("DELETE FROM invitations WHERE space_id = ?1", [&space_id])?;
                    tx.execute("DELETE FROM members WHERE space_id = ?1", [&space_id])?;
                    tx.execute("DELETE FROM spaces WHERE id = ?1", [&space_id])?;
                    out.spaces_deleted.push(space_id);
                    continue;
                }
                tx.execute(
                    "DELETE FROM members WHERE space_id = ?1 AND user_id = ?2",
                    params![space_id, user_id],
                )?;
                let owner_left = others.iter().any(|(_, r)| *r == Role::Owner);
                if role == Role::Owner && !owner_left {
                    let heir = others[0].0.clone();
                    tx.execute(
                        "UPDATE members SET role = 'owner' WHERE space_id = ?1 AND user_id = ?2",
                        params![space_id, heir],
                    )?;
                    out.spaces_transferred.push((space_id, heir));
                }
                out.concerned.extend(others.into_iter().map(|(id, _)| id));
            }
            out.concerned.retain(|id| *id != user_id);
            out.concerned.sort();
            out.concerned.dedup();
            super::spaces_sqlite::bump_epochs(&tx, &out.concerned)?;
            out.uploads = tx
                .prepare(&format!(
                    "SELECT {} FROM blob_uploads WHERE user_id = ?1",
                    super::blobs_sqlite::UPLOAD_COLUMNS
                ))?
                .query_map([&user_id], super::blobs_sqlite::upload_row)?
                .map(|row| {
                    let (mut row, parts) = row?;
                    row.parts = super::parse_parts(&parts)?;
                    Ok(row)
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            tx.execute("DELETE FROM invitations WHERE email = ?1", [&email])?;
            for table in [
                "refresh_tokens",
                "sessions",
                "blob_holders",
                "blob_uploads",
                "user_epochs",
                "rejections",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE user_id = ?1"),
                    [&user_id],
                )?;
            }
            // A pause of the user (slice A's table; the route reloads the cache).
            tx.execute("DELETE FROM pauses WHERE scope = ?1", [&user_id])?;
            tx.execute("DELETE FROM users WHERE id = ?1", [&user_id])?;
            // Their stream is purged as a deleted space's is: in batches, resumed after a crash.
            tx.execute(
                "INSERT INTO streams (id, deleted_at) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at",
                params![user_id, now_ms],
            )?;
            tx.commit()?;
            Ok(Some(out))
        })
        .await
    }

    /// Deletes the op ids the user pushed, [`OPS_BATCH`] per transaction.
    pub async fn delete_user_ops(&self, user_id: &str) -> Result<u64, StorageError> {
        let mut total = 0u64;
        loop {
            let user_id = user_id.to_string();
            let deleted = self
                .write(move |conn| {
                    Ok(conn.execute(
                        "DELETE FROM ops WHERE rowid IN
                         (SELECT rowid FROM ops WHERE user_id = ?1 LIMIT ?2)",
                        params![user_id, OPS_BATCH],
                    )? as u64)
                })
                .await?;
            total += deleted;
            if deleted == 0 {
                return Ok(total);
            }
        }
    }
}
