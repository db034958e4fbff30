//! Users and their data on PostgreSQL (see `users.rs`): the activity columns, the `rejections`
//! table, the operator's queries and deleting a user.

use deadpool_postgres::Transaction;
use tokio_postgres::IsolationLevel;

use super::control_postgres::PAUSES_NOTICE;
use super::postgres::CHANGES_CHANNEL;
use super::users::{
    DeletedUser, NewRejection, RejectionRow, SessionRow, UserDetail, UserSpaceRow, UserSummaryRow,
    PULL_NOTE_EVERY_MS,
};
use super::{stored_role, PostgresStore, Role, StorageError, UploadRow};
use crate::spaces::space_stream;

/// Applied with the other tables (`postgres::migrate`, part of its fingerprint).
pub(super) const MIGRATION: &str = "
ALTER TABLE users ADD COLUMN IF NOT EXISTS last_push_at BIGINT;
ALTER TABLE users ADD COLUMN IF NOT EXISTS last_pull_at BIGINT;
CREATE TABLE IF NOT EXISTS rejections (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    collection TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op_id TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejections_by_user ON rejections (user_id, id);
";

/// In a push's transaction (the user's row is locked): the push time, and the batch's
/// rejected changes (one multi-row insert).
pub(super) async fn note_push(
    tx: &Transaction<'_>,
    user_id: &str,
    now_ms: i64,
    rejections: &[NewRejection],
) -> Result<(), StorageError> {
    let update = tx
        .prepare_cached("UPDATE users SET last_push_at = $2 WHERE id = $1")
        .await?;
    tx.execute(&update, &[&user_id, &now_ms]).await?;
    if rejections.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewRejection) -> &str| rejections.iter().map(f).collect::<Vec<&str>>();
    tx.execute(
        "INSERT INTO rejections (at, user_id, stream, collection, entity_id, op_id, reason)
         SELECT $1, $2, s, c, e, o, r
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
             WITH ORDINALITY AS x(s, c, e, o, r, n) ORDER BY n",
        &[
            &now_ms,
            &user_id,
            &column(|r| &r.stream),
            &column(|r| &r.collection),
            &column(|r| &r.entity_id),
            &column(|r| &r.op_id),
            &column(|r| &r.reason),
        ],
    )
    .await?;
    Ok(())
}

const SUMMARY_COLUMNS: &str = "u.id, u.email, u.created_at, u.last_push_at, u.last_pull_at,
     (SELECT count(*) FROM records r WHERE r.user_id = u.id AND NOT r.deleted)";

fn summary_row(r: &tokio_postgres::Row) -> UserSummaryRow {
    UserSummaryRow {
        id: r.get(0),
        email: r.get(1),
        created_at_ms: r.get(2),
        last_push_at_ms: r.get(3),
        last_pull_at_ms: r.get(4),
        records: r.get(5),
    }
}

/// Rows of a deleted user's op ids deleted per transaction.
const OPS_BATCH: i64 = 10_000;

impl PostgresStore {
    pub async fn list_users(
        &self,
        query: Option<String>,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<UserSummaryRow>, StorageError> {
        let client = self.pool.get().await?;
        let limit = i64::from(limit);
        let rows = client
            .query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM users u
                     WHERE ($1::text IS NULL OR strpos(u.email, $1) > 0 OR u.id = $1)
                       AND ($2::text IS NULL OR u.email > $2)
                     ORDER BY u.email LIMIT $3"
                ),
                &[&query, &after, &limit],
            )
            .await?;
        Ok(rows.iter().map(summary_row).collect())
    }

    pub async fn user_detail(&self, user_id: &str) -> Result<Option<UserDetail>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let Some(user) = tx
            .query_opt(
                &format!("SELECT {SUMMARY_COLUMNS} FROM users u WHERE u.id = $1"),
                &[&user_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let collections = tx
            .query(
                "SELECT entity, count(*) FROM records WHERE user_id = $1 AND NOT deleted
                 GROUP BY entity ORDER BY entity",
                &[&user_id],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let spaces = tx
            .query(
                "SELECT sp.id, sp.name, m.role FROM members m
                 JOIN spaces sp ON sp.id = m.space_id
                 JOIN streams s ON s.id = 'space:' || m.space_id
                 WHERE m.user_id = $1 AND s.deleted_at IS NULL ORDER BY sp.id",
                &[&user_id],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(UserSpaceRow {
                    id: r.get(0),
                    name: r.get(1),
                    role: stored_role(r.get(2))?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let sessions = tx
            .query(
                "SELECT s.id, s.created_at, coalesce(max(t.created_at), s.created_at)
                 FROM sessions s LEFT JOIN refresh_tokens t ON t.session_id = s.id
                 WHERE s.user_id = $1 AND s.revoked_at IS NULL
                 GROUP BY s.id, s.created_at ORDER BY s.created_at DESC, s.id",
                &[&user_id],
            )
            .await?
            .iter()
            .map(|r| SessionRow {
                id: r.get(0),
                created_at_ms: r.get(1),
                last_used_at_ms: r.get(2),
            })
            .collect();
        tx.commit().await?;
        Ok(Some(UserDetail {
            user: summary_row(&user),
            collections,
            spaces,
            sessions,
        }))
    }

    pub async fn note_pull(&self, user_id: &str, now_ms: i64) -> Result<(), StorageError> {
        let client = self.pool.get().await?;
        let update = client
            .prepare_cached(
                "UPDATE users SET last_pull_at = $2 WHERE id = $1
                 AND (last_pull_at IS NULL OR last_pull_at <= $2::bigint - $3::bigint)",
            )
            .await?;
        client
            .execute(&update, &[&user_id, &now_ms, &PULL_NOTE_EVERY_MS])
            .await?;
        Ok(())
    }

    pub async fn rejections(
        &self,
        user_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<RejectionRow>, StorageError> {
        let client = self.pool.get().await?;
        let limit = i64::from(limit);
        let rows = client
            .query(
                "SELECT r.at, r.user_id, u.email, r.stream, r.collection, r.entity_id, r.op_id,
                        r.reason
                 FROM rejections r LEFT JOIN users u ON u.id = r.user_id
                 WHERE $1::text IS NULL OR r.user_id = $1 ORDER BY r.id DESC LIMIT $2",
                &[&user_id, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RejectionRow {
                at_ms: r.get(0),
                user_id: r.get(1),
                email: r.get(2),
                rejection: NewRejection {
                    stream: r.get(3),
                    collection: r.get(4),
                    entity_id: r.get(5),
                    op_id: r.get(6),
                    reason: r.get(7),
                },
            })
            .collect())
    }

    pub async fn trim_rejections(&self, keep: i64) -> Result<u64, StorageError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "DELETE FROM rejections WHERE id <=
                     (SELECT id FROM rejections ORDER BY id DESC LIMIT 1 OFFSET $1)",
                &[&keep],
            )
            .await?)
    }

    /// The first, one-transaction part of `Storage::delete_user`. Lock order as everywhere: the
    /// user's row, then the stream rows of their spaces in id order, then `user_epochs` rows.
    pub async fn delete_user_rows(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Option<DeletedUser>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT email FROM users WHERE id = $1 FOR UPDATE",
                &[&user_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let email: String = row.get(0);
        let records: i64 = tx
            .query_one(
                "SELECT count(*) FROM records WHERE user_id = $1 AND NOT deleted",
                &[&user_id],
            )
            .await?
            .get(0);
        let mut out = DeletedUser {
            records: records as u64,
            ..DeletedUser::default()
        };
        // Their live spaces' stream rows, locked in id order; memberships read under the locks.
        let locked: Vec<String> = tx
            .query(
                "SELECT s.id FROM streams s JOIN members m ON s.id = 'space:' || m.space_id
                 WHERE m.user_id = $1 AND s.deleted_at IS NULL ORDER BY s.id FOR UPDATE OF s",
                &[&user_id],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for stream in locked {
            let space_id = stream.trim_start_matches("space:").to_string();
            let members = tx
                .query(
                    "SELECT user_id, role FROM members WHERE space_id = $1
                     ORDER BY joined_at, user_id",
                    &[&space_id],
                )
                .await?;
            let mut role = None;
            let mut others = Vec::new();
            for m in &members {
                let (id, r): (String, Role) = (m.get(0), stored_role(m.get(1))?);
                if id == user_id {
                    role = Some(r);
                } else {
                    others.push((id, r));
                }
            }
            let Some(role) = role else { continue };
            if others.is_empty() {
                // The deleted-space purge removes its records, as after `DELETE /spaces/{id}`.
                tx.execute(
                    "UPDATE streams SET deleted_at = $2 WHERE id = $1",
                    &[&space_stream(&space_id), &now_ms],
                )
                .await?;
                let invitees = tx
                    .query(
                        "SELECT u.id FROM invitations i JOIN users u ON u.email = i.email
                         WHERE i.space_id = $1",
                        &[&space_id],
                    )
                    .await?;
                out.concerned
                    .extend(invitees.iter().map(|r| r.get::<_, String>(0)));
                for table in ["invitations", "members"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE space_id = $1"),
                        &[&space_id],
                    )
                    .await?;
                }
                tx.execute("DELETE FROM spaces WHERE id = $1", &[&space_id])
                    .await?;
                out.spaces_deleted.push(space_id);
                continue;
            }
            tx.execute(
                "DELETE FROM members WHERE space_id = $1 AND user_id = $2",
                &[&space_id, &user_id],
            )
            .await?;
            let owner_left = others.iter().any(|(_, r)| *r == Role::Owner);
            if role == Role::Owner && !owner_left {
                let heir = others[0].0.clone();
                tx.execute(
                    "UPDATE members SET role = 'owner' WHERE space_id = $1 AND user_id = $2",
                    &[&space_id, &heir],
                )
                .await?;
                out.spaces_transferred.push((space_id, heir));
            }
            out.concerned.extend(others.into_iter().map(|(id, _)| id));
        }
        out.concerned.retain(|id| id != user_id);
        out.concerned.sort();
        out.concerned.dedup();
        super::spaces_postgres::bump_epochs(&tx, &out.concerned).await?;
        // The deleted user's own open event streams are poked too: their next pull learns the
        // account is gone (`401`).
        let mut poked = out.concerned.clone();
        poked.push(user_id.to_string());
        super::spaces_postgres::notify_accounts(&tx, &poked).await?;
        out.uploads = tx
            .query(
                &format!(
                    "SELECT {} FROM blob_uploads WHERE user_id = $1",
                    super::blobs_postgres::UPLOAD_COLUMNS
                ),
                &[&user_id],
            )
            .await?
            .iter()
            .map(upload_of)
            .collect::<Result<Vec<_>, _>>()?;
        tx.execute("DELETE FROM invitations WHERE email = $1", &[&email])
            .await?;
        for table in [
            "refresh_tokens",
            "sessions",
            "blob_holders",
            "blob_uploads",
            "user_epochs",
            "rejections",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE user_id = $1"),
                &[&user_id],
            )
            .await?;
        }
        // A pause of the user (slice A's table): every instance reloads its cache on the notice.
        if tx
            .execute("DELETE FROM pauses WHERE scope = $1", &[&user_id])
            .await?
            > 0
        {
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&CHANGES_CHANNEL, &PAUSES_NOTICE],
            )
            .await?;
        }
        tx.execute("DELETE FROM users WHERE id = $1", &[&user_id])
            .await?;
        // Their stream is purged as a deleted space's is: in batches, resumed after a crash.
        tx.execute(
            "INSERT INTO streams (id, deleted_at) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at",
            &[&user_id, &now_ms],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(out))
    }

    /// Deletes the op ids the user pushed, [`OPS_BATCH`] per transaction.
    pub async fn delete_user_ops(&self, user_id: &str) -> Result<u64, StorageError> {
        let client = self.pool.get().await?;
        let mut total = 0u64;
        loop {
            let deleted = client
                .execute(
                    "DELETE FROM ops WHERE ctid IN
                     (SELECT ctid FROM ops WHERE user_id = $1 LIMIT $2)",
                    &[&user_id, &OPS_BATCH],
                )
                .await?;
            total += deleted;
            if deleted == 0 {
                return Ok(total);
            }
        }
    }
}

fn upload_of(r: &tokio_postgres::Row) -> Result<UploadRow, StorageError> {
    let parts: String = r.get(6);
    Ok(UploadRow {
        user_id: r.get(0),
        hash: r.get(1),
        size: r.get(2),
        content_type: r.get(3),
        multipart_id: r.get(4),
        offset: r.get(5),
        parts: super::parse_parts(&parts)?,
        created_at_ms: r.get(7),
        updated_at_ms: r.get(8),
    })
}
