//! The attachment tables of docs/design/attachments.md §4 on SQLite: complete blobs, who holds
//! them (uploaded or claimed, for the grace period and the quota), uploads in progress, and which
//! live record names which blob (`record_blobs`, kept by the push path with `record_refs`).

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{BlobRow, SqliteStore, StorageError, UploadRow};

/// Created with the other tables (`sqlite::migrate`). `offset` is quoted: PostgreSQL reserves
/// the word, and both backends spell the column alike.
pub(super) const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    orphaned_at INTEGER
);
CREATE TABLE IF NOT EXISTS blob_holders (
    hash TEXT NOT NULL,
    user_id TEXT NOT NULL,
    held_at INTEGER NOT NULL,
    PRIMARY KEY (hash, user_id)
);
CREATE INDEX IF NOT EXISTS blob_holders_by_user ON blob_holders (user_id);
CREATE TABLE IF NOT EXISTS blob_uploads (
    user_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    multipart_id TEXT NOT NULL,
    \"offset\" INTEGER NOT NULL,
    parts TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, hash)
);
CREATE TABLE IF NOT EXISTS record_blobs (
    user_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    field TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (user_id, entity, entity_id, field)
);
CREATE INDEX IF NOT EXISTS record_blobs_by_hash ON record_blobs (hash, user_id);
";

/// Whether `?2` may read blob `?1`: it is complete, and a live record of a stream the user reads
/// (their own, `public`, a live space they are a member of) names it, or they hold it since
/// `?3` or later.
const MAY_READ: &str = "SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1) AND (
        EXISTS (SELECT 1 FROM blob_holders WHERE hash = ?1 AND user_id = ?2 AND held_at >= ?3)
     OR EXISTS (SELECT 1 FROM record_blobs WHERE hash = ?1 AND user_id IN (?2, 'public'))
     OR EXISTS (SELECT 1 FROM record_blobs b
                JOIN members m ON b.user_id = 'space:' || m.space_id
                JOIN streams s ON s.id = b.user_id
                WHERE b.hash = ?1 AND m.user_id = ?2 AND s.deleted_at IS NULL))";

/// [`MAY_READ`] on `conn` (inside a push transaction, say): `held_after_ms` is now less the
/// holders' grace period.
pub(crate) fn may_read_blob_in(
    conn: &Connection,
    user_id: &str,
    hash: &str,
    held_after_ms: i64,
) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached(MAY_READ)?
        .query_row(params![hash, user_id, held_after_ms], |r| r.get(0))?)
}

pub(super) const UPLOAD_COLUMNS: &str =
    "user_id, hash, size, content_type, multipart_id, \"offset\", parts,
     created_at, updated_at";

pub(super) fn upload_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(UploadRow, String)> {
    Ok((
        UploadRow {
            user_id: r.get(0)?,
            hash: r.get(1)?,
            size: r.get(2)?,
            content_type: r.get(3)?,
            multipart_id: r.get(4)?,
            offset: r.get(5)?,
            parts: Vec::new(),
            created_at_ms: r.get(7)?,
            updated_at_ms: r.get(8)?,
        },
        r.get(6)?,
    ))
}

impl SqliteStore {
    pub async fn blob(&self, hash: &str) -> Result<Option<BlobRow>, StorageError> {
        let hash = hash.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT hash, size, content_type, created_at FROM blobs WHERE hash = ?1",
                )?
                .query_row([&hash], |r| {
                    Ok(BlobRow {
                        hash: r.get(0)?,
                        size: r.get(1)?,
                        content_type: r.get(2)?,
                        created_at_ms: r.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    pub async fn may_read_blob(
        &self,
        user_id: &str,
        hash: &str,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let (user_id, hash) = (user_id.to_string(), hash.to_string());
        let held_after = now_ms - self.blob_grace_ms();
        self.read(move |conn| may_read_blob_in(conn, &user_id, &hash, held_after))
            .await
    }

    pub async fn hold_blob(
        &self,
        user_id: &str,
        hash: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let (user_id, hash) = (user_id.to_string(), hash.to_string());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO blob_holders (hash, user_id, held_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (hash, user_id) DO UPDATE SET held_at = excluded.held_at",
            )?
            .execute(params![hash, user_id, now_ms])?;
            Ok(())
        })
        .await
    }

    pub async fn held_bytes(&self, user_id: &str, except_hash: &str) -> Result<i64, StorageError> {
        let (user_id, hash) = (user_id.to_string(), except_hash.to_string());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT coalesce(sum(b.size), 0) FROM blob_holders h
                     JOIN blobs b ON b.hash = h.hash WHERE h.user_id = ?1 AND h.hash <> ?2",
                )?
                .query_row(params![user_id, hash], |r| r.get(0))?)
        })
        .await
    }

    pub async fn upload(
        &self,
        user_id: &str,
        hash: &str,
    ) -> Result<Option<UploadRow>, StorageError> {
        let (user_id, hash) = (user_id.to_string(), hash.to_string());
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {UPLOAD_COLUMNS} FROM blob_uploads WHERE user_id = ?1 AND hash = ?2"
                ))?
                .query_row([&user_id, &hash], upload_row)
                .optional()?;
            row.map(|(mut row, parts)| {
                row.parts = super::parse_parts(&parts)?;
                Ok(row)
            })
            .transpose()
        })
        .await
    }

    pub async fn put_upload(&self, row: UploadRow) -> Result<(), StorageError> {
        self.write(move |conn| {
            let parts = super::encode_parts(&row.parts)?;
            conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO blob_uploads ({UPLOAD_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))?
            .execute(params![
                row.user_id,
                row.hash,
                row.size,
                row.content_type,
                row.multipart_id,
                row.offset,
                parts,
                row.created_at_ms,
                row.updated_at_ms
            ])?;
            Ok(())
        })
        .await
    }

    pub async fn advance_upload(
        &self,
        upload: &UploadRow,
        to_offset: i64,
        parts: &[String],
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let (user_id, hash, multipart_id, from_offset) = (
            upload.user_id.clone(),
            upload.hash.clone(),
            upload.multipart_id.clone(),
            upload.offset,
        );
        let parts = super::encode_parts(parts)?;
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE blob_uploads SET \"offset\" = ?5, parts = ?6, updated_at = ?7
                     WHERE user_id = ?1 AND hash = ?2 AND multipart_id = ?3 AND \"offset\" = ?4",
                )?
                .execute(params![
                    user_id,
                    hash,
                    multipart_id,
                    from_offset,
                    to_offset,
                    parts,
                    now_ms
                ])?;
            Ok(changed == 1)
        })
        .await
    }

    pub async fn delete_upload(
        &self,
        user_id: &str,
        hash: &str,
        multipart_id: &str,
    ) -> Result<bool, StorageError> {
        let (user_id, hash, multipart_id) = (
            user_id.to_string(),
            hash.to_string(),
            multipart_id.to_string(),
        );
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "DELETE FROM blob_uploads WHERE user_id = ?1 AND hash = ?2 AND multipart_id = ?3",
                )?
                .execute(params![user_id, hash, multipart_id])?;
            Ok(n == 1)
        })
        .await
    }

    pub async fn complete_blob(
        &self,
        holder: Option<&str>,
        blob: BlobRow,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let holder = holder.map(str::to_string);
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // A blob stored again while marked orphaned is wanted again.
            tx.prepare_cached(
                "INSERT INTO blobs (hash, size, content_type, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (hash) DO UPDATE SET orphaned_at = NULL",
            )?
            .execute(params![blob.hash, blob.size, blob.content_type, now_ms])?;
            if let Some(user_id) = &holder {
                tx.prepare_cached(
                    "INSERT INTO blob_holders (hash, user_id, held_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (hash, user_id) DO UPDATE SET held_at = excluded.held_at",
                )?
                .execute(params![blob.hash, user_id, now_ms])?;
                tx.prepare_cached("DELETE FROM blob_uploads WHERE user_id = ?1 AND hash = ?2")?
                    .execute(params![user_id, blob.hash])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
