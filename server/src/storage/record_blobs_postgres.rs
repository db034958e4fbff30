//! The record side of attachments on PostgreSQL (docs/design/attachments.md section 4): which
//! blobs a push may name, and the purge's collection of blobs no record references. The tables
//! are created with the blob store's (`blobs_postgres.rs`); `record_blobs` is kept by
//! `postgres::write_index_rows`.
//!
//! Locking: a push (or admin write) reads the blobs it names `FOR SHARE`; the collection locks
//! the blobs it deletes `FOR UPDATE SKIP LOCKED`, checks again in a new statement that nothing
//! uses them, deletes their objects and then their rows before it commits. So a blob is either
//! seen by the push (and its new reference commits before the collection can lock the blob,
//! which then finds it in use) or gone (the push answers `attachment_missing`).

use std::collections::HashSet;

use super::{AbandonedUpload, BlobGc, DeleteObject, PostgresStore, StorageError, BLOB_GC_BATCH};

/// Of the hashes $1, the complete blobs user $2 may read: a record of a stream they can read
/// (their own, `public`, a live space they are a member of) references it, or they hold it
/// since $3. Locks the rows it returns against the collection until the push commits.
const READABLE_BLOBS: &str = "SELECT b.hash FROM blobs b
     WHERE b.hash = ANY($1)
       AND (EXISTS (SELECT 1 FROM blob_holders h
                    WHERE h.hash = b.hash AND h.user_id = $2 AND h.held_at >= $3)
            OR EXISTS (SELECT 1 FROM record_blobs x
                       WHERE x.hash = b.hash
                         AND (x.user_id = $2 OR x.user_id = 'public'
                              OR x.user_id IN (SELECT 'space:' || m.space_id FROM members m
                                               JOIN streams s ON s.id = 'space:' || m.space_id
                                               WHERE m.user_id = $2 AND s.deleted_at IS NULL))))
     FOR SHARE OF b";

/// Whether blob `b` is in use: a live record references it, or someone holds it since $1.
const IN_USE: &str = "(EXISTS (SELECT 1 FROM record_blobs x WHERE x.hash = b.hash)
     OR EXISTS (SELECT 1 FROM blob_holders h WHERE h.hash = b.hash AND h.held_at >= $1))";

/// Whether someone is uploading blob `b` again (an upload's completion would record it): checked
/// only for the few blobs about to be deleted.
const UPLOADING: &str = "EXISTS (SELECT 1 FROM blob_uploads u WHERE u.hash = b.hash)";

/// Of `hashes`, the blobs `user_id` may name in a push (see [`READABLE_BLOBS`]).
pub(super) async fn readable_blobs(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: &str,
    hashes: &[String],
    held_after_ms: i64,
) -> Result<HashSet<String>, StorageError> {
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let select = tx.prepare_cached(READABLE_BLOBS).await?;
    let rows = tx
        .query(&select, &[&hashes, &user_id, &held_after_ms])
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Of `hashes`, the blobs the server holds complete (what an admin write may name), locked
/// `FOR SHARE` like [`readable_blobs`].
pub(super) async fn complete_blobs(
    tx: &deadpool_postgres::Transaction<'_>,
    hashes: &[String],
) -> Result<HashSet<String>, StorageError> {
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = tx
        .query(
            "SELECT hash FROM blobs WHERE hash = ANY($1) FOR SHARE",
            &[&hashes],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

impl PostgresStore {
    /// See `Storage::complete_blobs`.
    pub async fn complete_blobs(
        &self,
        hashes: Vec<String>,
    ) -> Result<HashSet<String>, StorageError> {
        if hashes.is_empty() {
            return Ok(HashSet::new());
        }
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT hash FROM blobs WHERE hash = ANY($1)", &[&hashes])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// See `Storage::collect_blobs` (and the module's locking note).
    pub async fn collect_blobs(
        &self,
        now_ms: i64,
        held_after_ms: i64,
        orphaned_before_ms: i64,
        delete: DeleteObject,
    ) -> Result<BlobGc, StorageError> {
        let mut client = self.pool.get().await?;
        let revived = client
            .execute(
                &format!(
                    "UPDATE blobs b SET orphaned_at = NULL WHERE orphaned_at IS NOT NULL AND {IN_USE}"
                ),
                &[&held_after_ms],
            )
            .await?;
        let marked = client
            .execute(
                &format!(
                    "UPDATE blobs b SET orphaned_at = $2 WHERE orphaned_at IS NULL AND NOT {IN_USE}"
                ),
                &[&held_after_ms, &now_ms],
            )
            .await?;
        let mut gc = BlobGc {
            marked,
            revived,
            ..BlobGc::default()
        };
        let mut after = String::new();
        loop {
            let tx = client.transaction().await?;
            let locked: Vec<String> = tx
                .query(
                    "SELECT hash FROM blobs WHERE orphaned_at < $1 AND hash > $2
                     ORDER BY hash LIMIT $3 FOR UPDATE SKIP LOCKED",
                    &[&orphaned_before_ms, &after, &BLOB_GC_BATCH],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let Some(last) = locked.last().cloned() else {
                return Ok(gc);
            };
            after = last;
            // A new statement sees every reference committed before the lock was granted.
            let doomed: Vec<String> = tx
                .query(
                    &format!(
                        "SELECT hash FROM blobs b WHERE hash = ANY($2) AND NOT {IN_USE} AND NOT {UPLOADING}"
                    ),
                    &[&held_after_ms, &locked],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut deleted = Vec::new();
            for hash in doomed {
                // The object first: a failure keeps the row, and the next purge retries.
                if delete(hash.clone()).await {
                    deleted.push(hash);
                } else {
                    gc.failed += 1;
                }
            }
            if !deleted.is_empty() {
                tx.execute("DELETE FROM blob_holders WHERE hash = ANY($1)", &[&deleted])
                    .await?;
                tx.execute("DELETE FROM blobs WHERE hash = ANY($1)", &[&deleted])
                    .await?;
            }
            tx.commit().await?;
            gc.deleted += deleted.len() as u64;
        }
    }

    /// See `Storage::abandoned_uploads`.
    pub async fn abandoned_uploads(
        &self,
        updated_before_ms: i64,
    ) -> Result<Vec<AbandonedUpload>, StorageError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT user_id, hash, multipart_id, updated_at FROM blob_uploads
                 WHERE updated_at < $1 ORDER BY updated_at LIMIT $2",
                &[&updated_before_ms, &BLOB_GC_BATCH],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AbandonedUpload {
                user_id: r.get(0),
                hash: r.get(1),
                multipart_id: r.get(2),
                updated_at_ms: r.get(3),
            })
            .collect())
    }

    /// See `Storage::forget_abandoned_upload`.
    pub async fn forget_abandoned_upload(
        &self,
        upload: AbandonedUpload,
    ) -> Result<bool, StorageError> {
        let client = self.pool.get().await?;
        let gone = client
            .execute(
                "DELETE FROM blob_uploads
                 WHERE user_id = $1 AND hash = $2 AND multipart_id = $3 AND updated_at = $4",
                &[
                    &upload.user_id,
                    &upload.hash,
                    &upload.multipart_id,
                    &upload.updated_at_ms,
                ],
            )
            .await?;
        Ok(gone > 0)
    }
}
