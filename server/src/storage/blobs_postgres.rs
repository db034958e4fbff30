//! The attachment tables of docs/design/attachments.md §4 on PostgreSQL (see `blobs_sqlite.rs`
//! for what each holds).

use deadpool_postgres::GenericClient;

use super::{BlobRow, PostgresStore, StorageError, UploadRow};

/// Run in the migration transaction (`postgres::PostgresStore::open`), under its advisory lock.
pub(super) const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT COLLATE \"C\" PRIMARY KEY,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    orphaned_at BIGINT
);
CREATE TABLE IF NOT EXISTS blob_holders (
    hash TEXT COLLATE \"C\" NOT NULL,
    user_id TEXT COLLATE \"C\" NOT NULL,
    held_at BIGINT NOT NULL,
    PRIMARY KEY (hash, user_id)
);
CREATE INDEX IF NOT EXISTS blob_holders_by_user ON blob_holders (user_id);
CREATE TABLE IF NOT EXISTS blob_uploads (
    user_id TEXT COLLATE \"C\" NOT NULL,
    hash TEXT COLLATE \"C\" NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    multipart_id TEXT NOT NULL,
    \"offset\" BIGINT NOT NULL,
    parts TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, hash)
);
CREATE TABLE IF NOT EXISTS record_blobs (
    user_id TEXT COLLATE \"C\" NOT NULL,
    entity TEXT COLLATE \"C\" NOT NULL,
    entity_id TEXT COLLATE \"C\" NOT NULL,
    field TEXT COLLATE \"C\" NOT NULL,
    hash TEXT COLLATE \"C\" NOT NULL,
    PRIMARY KEY (user_id, entity, entity_id, field)
);
CREATE INDEX IF NOT EXISTS record_blobs_by_hash ON record_blobs (hash, user_id);
";

/// Whether `$2` may read blob `$1` (as `blobs_sqlite::MAY_READ`): complete, and named by a live
/// record of a stream the user reads, or held since `$3` or later.
const MAY_READ: &str = "SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = $1) AND (
        EXISTS (SELECT 1 FROM blob_holders WHERE hash = $1 AND user_id = $2 AND held_at >= $3)
     OR EXISTS (SELECT 1 FROM record_blobs WHERE hash = $1 AND user_id IN ($2, 'public'))
     OR EXISTS (SELECT 1 FROM record_blobs b
                JOIN members m ON b.user_id = 'space:' || m.space_id
                JOIN streams s ON s.id = b.user_id
                WHERE b.hash = $1 AND m.user_id = $2 AND s.deleted_at IS NULL))";

/// [`MAY_READ`] on `client` (a push transaction, say): `held_after_ms` is now less the holders'
/// grace period.
pub(crate) async fn may_read_blob_in(
    client: &impl GenericClient,
    user_id: &str,
    hash: &str,
    held_after_ms: i64,
) -> Result<bool, StorageError> {
    let statement = client.prepare_cached(MAY_READ).await?;
    let row = client
        .query_one(&statement, &[&hash, &user_id, &held_after_ms])
        .await?;
    Ok(row.get(0))
}

pub(super) const UPLOAD_COLUMNS: &str =
    "user_id, hash, size, content_type, multipart_id, \"offset\", parts,
     created_at, updated_at";

const UPSERT_HOLDER: &str = "INSERT INTO blob_holders (hash, user_id, held_at) VALUES ($1, $2, $3)
     ON CONFLICT (hash, user_id) DO UPDATE SET held_at = excluded.held_at";

impl PostgresStore {
    pub async fn blob(&self, hash: &str) -> Result<Option<BlobRow>, StorageError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT hash, size, content_type, created_at FROM blobs WHERE hash = $1",
                &[&hash],
            )
            .await?;
        Ok(row.map(|r| BlobRow {
            hash: r.get(0),
            size: r.get(1),
            content_type: r.get(2),
            created_at_ms: r.get(3),
        }))
    }

    pub async fn may_read_blob(
        &self,
        user_id: &str,
        hash: &str,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let client = self.pool.get().await?;
        may_read_blob_in(&client, user_id, hash, now_ms - self.blob_grace_ms()).await
    }

    pub async fn hold_blob(
        &self,
        user_id: &str,
        hash: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let client = self.pool.get().await?;
        client
            .execute(UPSERT_HOLDER, &[&hash, &user_id, &now_ms])
            .await?;
        Ok(())
    }

    pub async fn held_bytes(&self, user_id: &str, except_hash: &str) -> Result<i64, StorageError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT coalesce(sum(b.size), 0)::int8 FROM blob_holders h
                 JOIN blobs b ON b.hash = h.hash WHERE h.user_id = $1 AND h.hash <> $2",
                &[&user_id, &except_hash],
            )
            .await?;
        Ok(row.get(0))
    }

    pub async fn upload(
        &self,
        user_id: &str,
        hash: &str,
    ) -> Result<Option<UploadRow>, StorageError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {UPLOAD_COLUMNS} FROM blob_uploads WHERE user_id = $1 AND hash = $2"
                ),
                &[&user_id, &hash],
            )
            .await?;
        row.map(|r| {
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
        })
        .transpose()
    }

    pub async fn put_upload(&self, row: UploadRow) -> Result<(), StorageError> {
        let parts = super::encode_parts(&row.parts)?;
        let client = self.pool.get().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO blob_uploads ({UPLOAD_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (user_id, hash) DO UPDATE SET size = excluded.size,
                       content_type = excluded.content_type, multipart_id = excluded.multipart_id,
                       \"offset\" = excluded.\"offset\", parts = excluded.parts,
                       created_at = excluded.created_at, updated_at = excluded.updated_at"
                ),
                &[
                    &row.user_id,
                    &row.hash,
                    &row.size,
                    &row.content_type,
                    &row.multipart_id,
                    &row.offset,
                    &parts,
                    &row.created_at_ms,
                    &row.updated_at_ms,
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn advance_upload(
        &self,
        upload: &UploadRow,
        to_offset: i64,
        parts: &[String],
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let parts = super::encode_parts(parts)?;
        let client = self.pool.get().await?;
        let changed = client
            .execute(
                "UPDATE blob_uploads SET \"offset\" = $5, parts = $6, updated_at = $7
                 WHERE user_id = $1 AND hash = $2 AND multipart_id = $3 AND \"offset\" = $4",
                &[
                    &upload.user_id,
                    &upload.hash,
                    &upload.multipart_id,
                    &upload.offset,
                    &to_offset,
                    &parts,
                    &now_ms,
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    pub async fn delete_upload(
        &self,
        user_id: &str,
        hash: &str,
        multipart_id: &str,
    ) -> Result<bool, StorageError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "DELETE FROM blob_uploads WHERE user_id = $1 AND hash = $2 AND multipart_id = $3",
                &[&user_id, &hash, &multipart_id],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn complete_blob(
        &self,
        holder: Option<&str>,
        blob: BlobRow,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO blobs (hash, size, content_type, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (hash) DO UPDATE SET orphaned_at = NULL",
            &[&blob.hash, &blob.size, &blob.content_type, &now_ms],
        )
        .await?;
        if let Some(user_id) = holder {
            tx.execute(UPSERT_HOLDER, &[&blob.hash, &user_id, &now_ms])
                .await?;
            tx.execute(
                "DELETE FROM blob_uploads WHERE user_id = $1 AND hash = $2",
                &[&user_id, &blob.hash],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
