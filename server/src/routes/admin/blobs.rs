//! `PUT /admin/v1/blobs/{hash}` (body: the whole file, `Content-Type`: the blob's): stores a blob
//! for public records, streamed into the blob store in `chunkBytes` parts (never the whole file
//! in memory), size-limited (`413 attachment_too_large`) and verified (`422 hash_mismatch`),
//! like a completed upload but held by no user: only references make it readable. Answers the
//! upload status `{"hash", "offset": size, "complete": true}`; storing it again is harmless.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tandem_protocol::{is_valid_blob_hash, is_valid_content_type, UploadStatus};

use super::{audit, Admin, Outcome};
use crate::blobs::{hash_prefix, UploadError};
use crate::routes::SharedState;
use crate::storage::BlobRow;

/// `PUT /admin/v1/blobs/{hash}`.
pub async fn put_blob(
    State(state): State<SharedState>,
    admin: Admin,
    Path(hash): Path<String>,
    request: Request,
) -> Response {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    let declared = crate::routes::declared_length(request.headers());
    match store_blob(&state, &hash, &content_type, declared, request.into_body()).await {
        Ok(size) => {
            audit(
                &admin,
                "blob_put",
                hash_prefix(&hash),
                Outcome::Done,
                &format!("size={size}"),
            );
            Json(UploadStatus {
                hash,
                offset: size,
                complete: true,
                chunk_bytes: None,
            })
            .into_response()
        }
        Err(e) => {
            audit(
                &admin,
                "blob_put",
                hash_prefix(&hash),
                Outcome::Refused,
                &e.to_string(),
            );
            crate::routes::blobs::upload_error(e)
        }
    }
}

/// Streams `body` into the blob store as blob `hash` (parts of `chunkBytes` in a multipart
/// upload of its own staging key, hashed on the way), then records it held by no one. Returns
/// its size.
async fn store_blob(
    state: &SharedState,
    hash: &str,
    content_type: &str,
    declared: Option<u64>,
    body: Body,
) -> Result<u64, UploadError> {
    if !is_valid_blob_hash(hash) {
        return Err(UploadError::Invalid(
            "hash must be 64 lowercase hex digits (SHA-256)".into(),
        ));
    }
    if !is_valid_content_type(content_type) {
        return Err(UploadError::Invalid(
            "Content-Type must be the blob's type/subtype: 1-255 characters, no spaces".into(),
        ));
    }
    let uploads = &state.uploads;
    let max = uploads.limits.max_bytes;
    if declared.is_some_and(|n| n > max) {
        return Err(UploadError::TooLarge { max });
    }
    let store = &uploads.store;
    // A staging key of this request's own: two puts of one blob never share parts.
    let staging = store.staging_key(
        crate::spaces::ADMIN_OP_USER,
        &format!("{hash}.{}", uuid::Uuid::now_v7().simple()),
    );
    let multipart_id = store.create_multipart(&staging).await?;
    let streamed = stream_parts(state, &staging, &multipart_id, max, body).await;
    let (size, digest, parts) = match streamed {
        Ok(done) => done,
        Err(e) => {
            abort(state, &staging, &multipart_id).await;
            return Err(e);
        }
    };
    if digest != hash {
        abort(state, &staging, &multipart_id).await;
        return Err(UploadError::HashMismatch);
    }
    let blob_key = store.blob_key(hash);
    if parts.is_empty() {
        // No bytes (S3 has no empty multipart upload): the empty object itself.
        abort(state, &staging, &multipart_id).await;
        store.put(&blob_key, Bytes::new()).await?;
    } else {
        store
            .complete_multipart(&staging, &multipart_id, &parts)
            .await?;
        // Always moved into place (the same bytes replace the same bytes), so the row written
        // next never names a missing object.
        store.rename(&staging, &blob_key).await?;
    }
    let now = state.clock.now_ms();
    state
        .storage
        .complete_blob(
            None,
            BlobRow {
                hash: hash.to_string(),
                size: size as i64,
                content_type: content_type.to_string(),
                created_at_ms: now,
            },
            now,
        )
        .await?;
    Ok(size)
}

/// Reads `body` into parts of exactly `chunkBytes` (the last shorter), each stored as it fills;
/// more than `max` bytes is `TooLarge`. Each part must arrive within a chunk's read timeout (the
/// body read timeout, at least a chunk at 64 KiB/s).
/// Returns the size, the SHA-256 (hex) and the part ids.
async fn stream_parts(
    state: &SharedState,
    staging: &object_store::path::Path,
    multipart_id: &str,
    max: u64,
    mut body: Body,
) -> Result<(u64, String, Vec<String>), UploadError> {
    use sha2::Digest;
    let store = &state.uploads.store;
    let chunk = state.uploads.limits.chunk_bytes as usize;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = BytesMut::new();
    let mut parts = Vec::new();
    let mut size = 0u64;
    let part_timeout =
        crate::routes::blobs::chunk_read_timeout(state.body_read_timeout, chunk as u64);
    let mut deadline = tokio::time::Instant::now() + part_timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(UploadError::Timeout),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|_| UploadError::Incomplete)?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len() as u64;
        if size > max {
            return Err(UploadError::TooLarge { max });
        }
        hasher.update(&data);
        buffer.extend_from_slice(&data);
        while buffer.len() >= chunk {
            let part = buffer.split_to(chunk).freeze();
            parts.push(
                store
                    .put_part(staging, &multipart_id.to_string(), parts.len(), part)
                    .await?,
            );
            deadline = tokio::time::Instant::now() + part_timeout;
        }
    }
    if !buffer.is_empty() {
        parts.push(
            store
                .put_part(
                    staging,
                    &multipart_id.to_string(),
                    parts.len(),
                    buffer.freeze(),
                )
                .await?,
        );
    }
    let digest = format!("{:x}", hasher.finalize());
    Ok((size, digest, parts))
}

/// Drops a multipart upload and its staged object; failures are logged (nothing names them).
async fn abort(state: &SharedState, staging: &object_store::path::Path, multipart_id: &str) {
    let store = &state.uploads.store;
    if let Err(e) = store
        .abort_multipart(staging, &multipart_id.to_string())
        .await
    {
        tracing::debug!(error = %e, "aborting an admin blob's parts failed");
    }
    if let Err(e) = store.delete(staging).await {
        tracing::warn!(error = %e, "cannot delete an admin blob's staged object");
    }
}
