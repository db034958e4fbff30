//! The record side of attachments on SQLite (docs/design/attachments.md section 4): which blobs a
//! push may name, and the purge's collection of blobs no record references. The tables
//! themselves (`blobs`, `blob_holders`, `blob_uploads`, `record_blobs`) are created with the
//! blob store's (`blobs_sqlite.rs`); `record_blobs` is kept by `sqlite::write_index_rows`.

use std::collections::HashSet;

use rusqlite::{params, Connection, TransactionBehavior};

use super::{AbandonedUpload, BlobGc, DeleteObject, SqliteStore, StorageError, BLOB_GC_BATCH};

/// Of the hashes in the JSON array ?1, the complete blobs user ?2 may read: a record of a
/// stream they can read (their own, `public`, a live space they are a member of) references
/// it, or they hold it since ?3.
const READABLE_BLOBS: &str = "SELECT b.hash FROM blobs b
     WHERE b.hash IN (SELECT value FROM json_each(?1))
       AND (EXISTS (SELECT 1 FROM blob_holders h
                    WHERE h.hash = b.hash AND h.user_id = ?2 AND h.held_at >= ?3)
            OR EXISTS (SELECT 1 FROM record_blobs x
                       WHERE x.hash = b.hash
                         AND (x.user_id = ?2 OR x.user_id = 'public'
                              OR x.user_id IN (SELECT 'space:' || m.space_id FROM members m
                                               JOIN streams s ON s.id = 'space:' || m.space_id
                                               WHERE m.user_id = ?2 AND s.deleted_at IS NULL))))";

/// Whether blob `b` is in use: a live record references it, or someone holds it since ?1.
const IN_USE: &str = "(EXISTS (SELECT 1 FROM record_blobs x WHERE x.hash = b.hash)
     OR EXISTS (SELECT 1 FROM blob_holders h WHERE h.hash = b.hash AND h.held_at >= ?1))";

/// Whether someone is uploading blob `b` again (an upload's completion would record it): checked
/// only for the few blobs about to be deleted.
const UPLOADING: &str = "EXISTS (SELECT 1 FROM blob_uploads u WHERE u.hash = b.hash)";

/// Of `hashes`, the blobs `user_id` may name in a push (see [`READABLE_BLOBS`]).
pub(super) fn readable_blobs(
    conn: &Connection,
    user_id: &str,
    hashes: &[String],
    held_after_ms: i64,
) -> Result<HashSet<String>, StorageError> {
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let list = serde_json::to_string(hashes).expect("strings always serialize");
    let mut select = conn.prepare_cached(READABLE_BLOBS)?;
    let found = select
        .query_map(params![list, user_id, held_after_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(found)
}

/// Of `hashes`, the blobs the server holds complete (what an admin write may name).
pub(super) fn complete_blobs(
    conn: &Connection,
    hashes: &[String],
) -> Result<HashSet<String>, StorageError> {
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let list = serde_json::to_string(hashes).expect("strings always serialize");
    let mut select = conn
        .prepare_cached("SELECT hash FROM blobs WHERE hash IN (SELECT value FROM json_each(?1))")?;
    let found = select
        .query_map([list], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(found)
}

impl SqliteStore {
    /// See `Storage::complete_blobs`.
    pub async fn complete_blobs(
        &self,
        hashes: Vec<String>,
    ) -> Result<HashSet<String>, StorageError> {
        self.read(move |conn| complete_blobs(conn, &hashes)).await
    }

    /// See `Storage::collect_blobs`. Each batch is one write transaction that holds the writer
    /// while the batch's objects are deleted, so no push, admin write or upload can make a blob
    /// of the batch referenced between the check and the row's deletion.
    pub async fn collect_blobs(
        &self,
        now_ms: i64,
        held_after_ms: i64,
        orphaned_before_ms: i64,
        delete: DeleteObject,
    ) -> Result<BlobGc, StorageError> {
        let mut gc = self
            .write(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let revived = tx.execute(
                    &format!(
                        "UPDATE blobs SET orphaned_at = NULL
                         WHERE orphaned_at IS NOT NULL AND hash IN (SELECT hash FROM blobs b WHERE {IN_USE})"
                    ),
                    [held_after_ms],
                )?;
                let marked = tx.execute(
                    &format!(
                        "UPDATE blobs SET orphaned_at = ?2
                         WHERE orphaned_at IS NULL AND hash IN (SELECT hash FROM blobs b WHERE NOT {IN_USE})"
                    ),
                    params![held_after_ms, now_ms],
                )?;
                tx.commit()?;
                Ok(BlobGc {
                    marked: marked as u64,
                    revived: revived as u64,
                    ..BlobGc::default()
                })
            })
            .await?;
        let handle = tokio::runtime::Handle::current();
        let mut after = String::new();
        loop {
            let delete = delete.clone();
            let handle = handle.clone();
            let from = after.clone();
            let (deleted, failed, last) = self
                .write(move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let doomed: Vec<String> = tx
                        .prepare_cached(&format!(
                            "SELECT hash FROM blobs b
                             WHERE orphaned_at < ?2 AND hash > ?3 AND NOT {IN_USE} AND NOT {UPLOADING}
                             ORDER BY hash LIMIT ?4"
                        ))?
                        .query_map(
                            params![held_after_ms, orphaned_before_ms, from, BLOB_GC_BATCH],
                            |r| r.get(0),
                        )?
                        .collect::<Result<_, _>>()?;
                    let last = doomed.last().cloned();
                    let mut deleted = 0u64;
                    let mut failed = 0u64;
                    for hash in doomed {
                        // The object first: a failure keeps the row, and the next purge retries.
                        if !handle.block_on(delete(hash.clone())) {
                            failed += 1;
                            continue;
                        }
                        tx.execute("DELETE FROM blob_holders WHERE hash = ?1", [&hash])?;
                        tx.execute("DELETE FROM blobs WHERE hash = ?1", [&hash])?;
                        deleted += 1;
                    }
                    tx.commit()?;
                    Ok((deleted, failed, last))
                })
                .await?;
            gc.deleted += deleted;
            gc.failed += failed;
            match last {
                Some(last) => after = last,
                None => return Ok(gc),
            }
        }
    }

    /// See `Storage::abandoned_uploads`.
    pub async fn abandoned_uploads(
        &self,
        updated_before_ms: i64,
    ) -> Result<Vec<AbandonedUpload>, StorageError> {
        self.read(move |conn| {
            let mut select = conn.prepare_cached(
                "SELECT user_id, hash, multipart_id, updated_at FROM blob_uploads
                 WHERE updated_at < ?1 ORDER BY updated_at LIMIT ?2",
            )?;
            let found = select
                .query_map(params![updated_before_ms, BLOB_GC_BATCH], |r| {
                    Ok(AbandonedUpload {
                        user_id: r.get(0)?,
                        hash: r.get(1)?,
                        multipart_id: r.get(2)?,
                        updated_at_ms: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(found)
        })
        .await
    }

    /// See `Storage::forget_abandoned_upload`.
    pub async fn forget_abandoned_upload(
        &self,
        upload: AbandonedUpload,
    ) -> Result<bool, StorageError> {
        self.write(move |conn| {
            let gone = conn
                .prepare_cached(
                    "DELETE FROM blob_uploads
                     WHERE user_id = ?1 AND hash = ?2 AND multipart_id = ?3 AND updated_at = ?4",
                )?
                .execute(params![
                    upload.user_id,
                    upload.hash,
                    upload.multipart_id,
                    upload.updated_at_ms
                ])?;
            Ok(gone > 0)
        })
        .await
    }
}
