//! Resumable uploads (docs/protocol.md "Attachments"): open / chunk / complete over the tables
//! and the blob store.
//!
//! - An upload is named by (user, hash); its row holds the multipart upload, the offset durably
//!   received and the part ids. A chunk is read whole into one buffer (at most `chunkBytes`: the
//!   only whole-chunk buffer), stored as the next part, and only then is the offset advanced, in
//!   one statement guarded by the old offset (two racing chunks cannot both land). A connection
//!   cut mid-chunk stores nothing.
//! - Chunks of one upload are serialized in this process (a lock per upload), and hashed as they
//!   pass (`Progress`); after a restart, or when another instance took a chunk, the hash comes from
//!   re-reading the staged object instead.
//! - The last chunk completes the multipart upload into the staging key, checks the hash (a
//!   mismatch discards the upload), renames the object to `blobs/<hash>` and records the blob and
//!   its holder in one transaction. Each step can be repeated: an upload whose every byte arrived
//!   but that did not finish (a crash) finishes when it is opened again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::hash_prefix;
use super::store::{BlobStore, StoreError};
use crate::clock::Clock;
use crate::storage::{BlobRow, Storage, StorageError, UploadRow};
use tandem_protocol::{is_valid_blob_hash, is_valid_content_type};

/// The largest chunk the server takes (`chunkBytes`): every chunk but the last is exactly this
/// long (at least S3's smallest multipart part, and equal parts suit R2 too).
pub const CHUNK_BYTES: u64 = tandem_protocol::DEFAULT_CHUNK_BYTES;
/// The largest size a reference may declare (JSON's exact integers).
pub const MAX_DECLARED_SIZE: u64 = 1 << 53;
/// The SHA-256 of no bytes: the one hash an empty upload may have.
pub const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// How much past `chunkBytes` a refused chunk's body is still read (and dropped) so that its
/// sender gets the answer.
const DRAIN_SLACK_BYTES: u64 = 1024 * 1024;
/// Uploads whose incremental hash this process keeps at most; beyond, idle ones are forgotten
/// (their hash is then re-read at completion).
const MAX_TRACKED: usize = 4096;

/// The limits of `config.rs`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub quota_bytes: u64,
    pub chunk_bytes: u64,
}

/// Where an upload stands, as the routes answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub offset: u64,
    pub complete: bool,
}

/// Why an upload call was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    Invalid(String),
    #[error("the attachment is over the limit of {max} bytes")]
    TooLarge { max: u64 },
    #[error("the account's attachments would exceed its quota of {quota} bytes")]
    QuotaExceeded { quota: u64 },
    #[error("no upload of this hash is open")]
    NotFound,
    #[error("the upload is at offset {offset}")]
    OffsetMismatch { offset: u64 },
    #[error("a chunk here may have at most {max} bytes")]
    ChunkTooLarge { max: u64 },
    #[error("the bytes do not hash to the upload's hash")]
    HashMismatch,
    /// The chunk's body did not arrive whole (the client hung up, or sent something broken).
    #[error("the chunk did not arrive whole")]
    Incomplete,
    #[error("the chunk took too long to arrive")]
    Timeout,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("blob store: {0}")]
    Store(#[from] StoreError),
}

/// The hash of the bytes received so far of one multipart upload.
#[derive(Clone)]
struct Progress {
    multipart_id: String,
    offset: u64,
    hasher: Sha256,
}

type Slot = Arc<tokio::sync::Mutex<Option<Progress>>>;

/// The uploads of this server.
pub struct Uploads {
    pub store: BlobStore,
    storage: Storage,
    clock: Arc<dyn Clock>,
    pub limits: Limits,
    slots: Mutex<HashMap<(String, String), Slot>>,
}

impl Uploads {
    pub fn new(store: BlobStore, storage: Storage, clock: Arc<dyn Clock>, limits: Limits) -> Self {
        Self {
            store,
            storage,
            clock,
            limits,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The lock (and incremental hash) of the user's upload of `hash` in this process.
    fn slot(&self, user_id: &str, hash: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= MAX_TRACKED {
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots
            .entry((user_id.to_string(), hash.to_string()))
            .or_default()
            .clone()
    }

    fn forget(&self, user_id: &str, hash: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.remove(&(user_id.to_string(), hash.to_string()));
    }

    /// Opens (or reopens) the user's upload of `hash`: `complete` when the server holds the blob
    /// and the user may read it (their `blob_holders` row is then written or refreshed), else the
    /// offset the server holds. A `size` or `content_type` differing from the open upload's
    /// restarts it at 0.
    pub async fn open(
        &self,
        user_id: &str,
        hash: &str,
        size: u64,
        content_type: &str,
    ) -> Result<Status, UploadError> {
        let prefix = hash_prefix(hash);
        if !is_valid_blob_hash(hash) {
            return Err(UploadError::Invalid(
                "hash must be 64 lowercase hex digits (SHA-256)".into(),
            ));
        }
        if size > MAX_DECLARED_SIZE {
            return Err(UploadError::Invalid(format!(
                "size must be at most {MAX_DECLARED_SIZE}"
            )));
        }
        if !is_valid_content_type(content_type) {
            return Err(UploadError::Invalid(
                "contentType must be type/subtype: 1-255 characters, no spaces".into(),
            ));
        }
        if size > self.limits.max_bytes {
            tracing::info!(
                user_id,
                hash = prefix,
                size,
                max = self.limits.max_bytes,
                "upload refused: attachment too large"
            );
            return Err(UploadError::TooLarge {
                max: self.limits.max_bytes,
            });
        }
        let now = self.clock.now_ms();
        // Dedup: a blob the user may already read is never sent again. Nobody else learns from
        // the answer whether the server has it.
        if self.storage.may_read_blob(user_id, hash, now).await? {
            if let Some(blob) = self.storage.blob(hash).await? {
                if blob.size as u64 != size {
                    return Err(UploadError::Invalid(format!(
                        "the blob with this hash has {} bytes, not {size}",
                        blob.size
                    )));
                }
            }
            self.storage.hold_blob(user_id, hash, now).await?;
            if let Some(row) = self.storage.upload(user_id, hash).await? {
                self.discard(&row).await;
            }
            return Ok(Status {
                offset: size,
                complete: true,
            });
        }
        let held = self.storage.held_bytes(user_id, hash).await?;
        if (held.max(0) as u64).saturating_add(size) > self.limits.quota_bytes {
            tracing::info!(
                user_id,
                hash = prefix,
                size,
                held,
                quota = self.limits.quota_bytes,
                "upload refused: quota exceeded"
            );
            return Err(UploadError::QuotaExceeded {
                quota: self.limits.quota_bytes,
            });
        }
        let slot = self.slot(user_id, hash);
        let mut progress = slot.lock().await;
        if size == 0 {
            // Nothing to send: the empty blob is stored at once (S3 has no empty multipart).
            if hash != EMPTY_HASH {
                tracing::warn!(
                    user_id,
                    hash = prefix,
                    "upload refused: an empty upload whose hash is not the empty one"
                );
                return Err(UploadError::HashMismatch);
            }
            self.store
                .put(&self.store.blob_key(hash), Bytes::new())
                .await?;
            self.storage
                .complete_blob(Some(user_id), blob_row(hash, 0, content_type), now)
                .await?;
            return Ok(Status {
                offset: 0,
                complete: true,
            });
        }
        match self.storage.upload(user_id, hash).await? {
            Some(row) if row.size as u64 == size && row.content_type == content_type => {
                if row.offset == row.size {
                    // Every byte arrived, but the upload did not finish (a crash, a lost answer).
                    return self.finish(&row, &mut progress).await;
                }
                Ok(Status {
                    offset: row.offset as u64,
                    complete: false,
                })
            }
            existing => {
                if let Some(row) = &existing {
                    tracing::info!(
                        user_id,
                        hash = prefix,
                        "upload restarted: another size or content type"
                    );
                    self.discard(row).await;
                }
                let key = self.store.staging_key(user_id, hash);
                let multipart_id = self.store.create_multipart(&key).await?;
                self.storage
                    .put_upload(UploadRow {
                        user_id: user_id.to_string(),
                        hash: hash.to_string(),
                        size: size as i64,
                        content_type: content_type.to_string(),
                        multipart_id: multipart_id.clone(),
                        offset: 0,
                        parts: Vec::new(),
                        created_at_ms: now,
                        updated_at_ms: now,
                    })
                    .await?;
                *progress = Some(Progress {
                    multipart_id,
                    offset: 0,
                    hasher: Sha256::new(),
                });
                Ok(Status {
                    offset: 0,
                    complete: false,
                })
            }
        }
    }

    /// Takes the chunk `body` at `offset` of the user's upload of `hash`.
    pub async fn chunk(
        &self,
        user_id: &str,
        hash: &str,
        offset: u64,
        declared: Option<u64>,
        body: Body,
        read_timeout: Duration,
    ) -> Result<Status, UploadError> {
        if !is_valid_blob_hash(hash) {
            return Err(self
                .refuse(body, declared, read_timeout, UploadError::NotFound)
                .await);
        }
        let prefix = hash_prefix(hash);
        // The checks and the body's arrival need no lock (a client on a dead connection must
        // not hold up its own retry); the offset is checked again under the lock below.
        let Some(row) = self.storage.upload(user_id, hash).await? else {
            return Err(self
                .refuse(body, declared, read_timeout, UploadError::NotFound)
                .await);
        };
        let (size, at) = (row.size as u64, row.offset as u64);
        if offset != at {
            tracing::info!(
                user_id,
                hash = prefix,
                offset,
                server_offset = at,
                "chunk refused: offset mismatch"
            );
            return Err(self
                .refuse(
                    body,
                    declared,
                    read_timeout,
                    UploadError::OffsetMismatch { offset: at },
                )
                .await);
        }
        let remaining = size - at;
        let max = remaining.min(self.limits.chunk_bytes);
        if declared.is_some_and(|n| n > max) {
            tracing::info!(
                user_id,
                hash = prefix,
                declared,
                max,
                "chunk refused: too large"
            );
            return Err(self
                .refuse(
                    body,
                    declared,
                    read_timeout,
                    UploadError::ChunkTooLarge { max },
                )
                .await);
        }
        // Every chunk but the last is exactly `chunkBytes` long.
        let short = |len: u64| len < remaining && len != self.limits.chunk_bytes;
        if declared.is_some_and(|n| n > 0 && short(n)) {
            return Err(self
                .refuse(body, declared, read_timeout, short_chunk())
                .await);
        }
        let bytes = match tokio::time::timeout(read_timeout, read_chunk(body, max, declared)).await
        {
            Err(_) => {
                tracing::info!(
                    user_id,
                    hash = prefix,
                    offset,
                    "chunk not stored: its body took too long"
                );
                return Err(UploadError::Timeout);
            }
            Ok(Err(e)) => {
                if !matches!(e, UploadError::ChunkTooLarge { .. }) {
                    tracing::info!(
                        user_id,
                        hash = prefix,
                        offset,
                        "chunk not stored: its body did not arrive whole"
                    );
                }
                return Err(e);
            }
            Ok(Ok(bytes)) => bytes,
        };
        let slot = self.slot(user_id, hash);
        let mut progress = slot.lock().await;
        let Some(row) = self
            .storage
            .upload(user_id, hash)
            .await?
            .filter(|now| now.multipart_id == row.multipart_id)
        else {
            return Err(UploadError::NotFound);
        };
        if row.offset as u64 != at {
            tracing::info!(
                user_id,
                hash = prefix,
                offset,
                server_offset = row.offset,
                "chunk lost a race with another"
            );
            return Err(UploadError::OffsetMismatch {
                offset: row.offset as u64,
            });
        }
        let len = bytes.len() as u64;
        if len == 0 && remaining > 0 {
            return Ok(Status {
                offset: at,
                complete: false,
            });
        }
        if short(len) {
            return Err(short_chunk());
        }
        // The hash so far, when this process saw every earlier byte of this multipart upload.
        let hasher = match progress.as_ref() {
            Some(p) if p.multipart_id == row.multipart_id && p.offset == at => {
                Some(p.hasher.clone())
            }
            _ if at == 0 => Some(Sha256::new()),
            _ => None,
        };
        let mut parts = row.parts.clone();
        let hasher = if len == 0 {
            hasher
        } else {
            // The chunk is hashed on the blocking pool while the store writes and syncs it, not
            // before (the runtime's thread is not held for the hash either).
            let hashed = {
                let bytes = bytes.clone();
                tokio::task::spawn_blocking(move || {
                    hasher.map(|mut h| {
                        h.update(&bytes);
                        h
                    })
                })
            };
            let key = self.store.staging_key(user_id, hash);
            let stored = self
                .store
                .put_part(&key, &row.multipart_id, parts.len(), bytes);
            let (part, hasher) = tokio::join!(stored, hashed);
            let part = part?;
            let hasher = hasher.map_err(|e| {
                UploadError::Store(StoreError::Generic {
                    store: "upload",
                    source: format!("chunk hasher failed: {e}").into(),
                })
            })?;
            parts.push(part);
            let now = self.clock.now_ms();
            let advanced = self
                .storage
                .advance_upload(&row, (at + len) as i64, &parts, now)
                .await?;
            if !advanced {
                // Another instance took a chunk, restarted or finished the upload meanwhile.
                let now_at = self
                    .storage
                    .upload(user_id, hash)
                    .await?
                    .map_or(0, |r| r.offset as u64);
                tracing::info!(
                    user_id,
                    hash = prefix,
                    offset,
                    server_offset = now_at,
                    "chunk lost a race with another"
                );
                *progress = None;
                return Err(UploadError::OffsetMismatch { offset: now_at });
            }
            hasher
        };
        *progress = hasher.map(|hasher| Progress {
            multipart_id: row.multipart_id.clone(),
            offset: at + len,
            hasher,
        });
        if at + len < size {
            return Ok(Status {
                offset: at + len,
                complete: false,
            });
        }
        let row = UploadRow {
            offset: size as i64,
            parts,
            ..row
        };
        self.finish(&row, &mut progress).await
    }

    /// `e`, once the refused chunk's body is read and dropped when it is no larger than a chunk
    /// may be (and a little more): a client still sending would otherwise take the closed connection for a network
    /// failure and never see the answer.
    async fn refuse(
        &self,
        mut body: Body,
        declared: Option<u64>,
        read_timeout: Duration,
        e: UploadError,
    ) -> UploadError {
        let max = self.limits.chunk_bytes + DRAIN_SLACK_BYTES;
        if declared.is_some_and(|n| n <= max) {
            let drain = async {
                let mut seen = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        seen += data.len() as u64;
                        if seen > max {
                            break;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(read_timeout, drain).await;
        }
        e
    }

    /// Completes an upload whose every byte arrived: joins the parts into the staging object,
    /// checks the hash (from `progress` when it covers the whole upload, else by re-reading the
    /// staged bytes), and moves the blob into place with its rows. A mismatch discards the upload.
    async fn finish(
        &self,
        row: &UploadRow,
        progress: &mut Option<Progress>,
    ) -> Result<Status, UploadError> {
        let (user_id, hash) = (row.user_id.as_str(), row.hash.as_str());
        let prefix = hash_prefix(hash);
        let staging = self.store.staging_key(user_id, hash);
        let blob_key = self.store.blob_key(hash);
        // Where the bytes are: the staging object (completed now or by an earlier attempt), or
        // already `blobs/<hash>` (an attempt that crashed after the rename).
        let completed = self
            .store
            .complete_multipart(&staging, &row.multipart_id, &row.parts)
            .await;
        let source = match completed {
            Ok(_) => staging.clone(),
            Err(e) => {
                if self.store.size(&staging).await? == Some(row.size as u64) {
                    staging.clone()
                } else if self.store.size(&blob_key).await? == Some(row.size as u64) {
                    blob_key.clone()
                } else {
                    // The parts are gone (aborted elsewhere): start over.
                    tracing::warn!(user_id, hash = prefix, error = %e, "upload's parts are gone; restarting it");
                    self.discard(row).await;
                    *progress = None;
                    return Err(UploadError::OffsetMismatch { offset: 0 });
                }
            }
        };
        let digest = match progress.take() {
            Some(p)
                if p.multipart_id == row.multipart_id
                    && p.offset == row.size as u64
                    && source == staging =>
            {
                format!("{:x}", p.hasher.finalize())
            }
            _ => {
                tracing::debug!(user_id, hash = prefix, "hashing the staged upload again");
                self.hash_object(&source).await?
            }
        };
        if digest != hash {
            tracing::warn!(
                user_id,
                hash = prefix,
                size = row.size,
                "upload discarded: its bytes do not hash to its hash"
            );
            if source == staging {
                self.store.delete(&source).await?;
            } else {
                // `blobs/<hash>` itself does not hash to its name: never delete another's blob
                // on an upload's say-so, but say it loudly.
                tracing::error!(hash = prefix, "a stored blob does not hash to its name");
            }
            self.discard(row).await;
            return Err(UploadError::HashMismatch);
        }
        if source != blob_key {
            if self.storage.blob(hash).await?.is_some() {
                // Another account's upload stored these very bytes already.
                self.store.delete(&source).await?;
            } else {
                self.store.rename(&source, &blob_key).await?;
            }
        }
        self.storage
            .complete_blob(
                Some(user_id),
                blob_row(hash, row.size, &row.content_type),
                self.clock.now_ms(),
            )
            .await?;
        self.forget(user_id, hash);
        tracing::info!(user_id, hash = prefix, size = row.size, "upload complete");
        Ok(Status {
            offset: row.size as u64,
            complete: true,
        })
    }

    /// Deletes an upload's row (if it is still this multipart upload), parts and staged object;
    /// failures of the store are logged (the purge of abandoned uploads gets them later).
    pub(crate) async fn discard(&self, row: &UploadRow) {
        let (user_id, hash) = (row.user_id.as_str(), row.hash.as_str());
        let key = self.store.staging_key(user_id, hash);
        if let Err(e) = self
            .storage
            .delete_upload(user_id, hash, &row.multipart_id)
            .await
        {
            tracing::warn!(user_id, hash = hash_prefix(hash), error = %e, "cannot delete an upload's row");
        }
        if let Err(e) = self.store.abort_multipart(&key, &row.multipart_id).await {
            tracing::debug!(user_id, hash = hash_prefix(hash), error = %e, "aborting an upload's parts failed");
        }
        if let Err(e) = self.store.delete(&key).await {
            tracing::warn!(user_id, hash = hash_prefix(hash), error = %e, "cannot delete a staged upload");
        }
    }

    /// The SHA-256 of an object, streamed.
    async fn hash_object(&self, key: &object_store::path::Path) -> Result<String, UploadError> {
        let mut stream = self.store.read_from(key, 0).await?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(format!("{:x}", hasher.finalize()))
    }
}

fn short_chunk() -> UploadError {
    UploadError::Invalid(
        "a chunk that does not end the upload must be exactly chunkBytes long".into(),
    )
}

fn blob_row(hash: &str, size: i64, content_type: &str) -> BlobRow {
    BlobRow {
        hash: hash.to_string(),
        size,
        content_type: content_type.to_string(),
        created_at_ms: 0,
    }
}

/// Reads the whole body, at most `max` bytes (more: `ChunkTooLarge`); a body that ends early
/// or breaks is `Incomplete`.
async fn read_chunk(body: Body, max: u64, declared: Option<u64>) -> Result<Bytes, UploadError> {
    let mut body = body;
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(max) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| UploadError::Incomplete)?;
        if let Ok(data) = frame.into_data() {
            if (buffer.len() + data.len()) as u64 > max {
                return Err(UploadError::ChunkTooLarge { max });
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}
