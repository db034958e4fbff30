//! `/sync/v1/blobs`: open an upload, send a chunk, download (docs/protocol.md "Attachments").
//! Bodies stream both ways: a chunk is read into one buffer of at most `chunkBytes`, a download
//! streams from the blob store into the response, never a whole file in memory.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Duration;

use futures_util::StreamExt;
use tandem_protocol::{
    ErrorCode, OpenUploadRequest, UploadStatus, OFFSET_STREAM_CONTENT_TYPE, UPLOAD_OFFSET,
};

use super::{AuthUser, JsonBody, SharedState};
use crate::blobs::{hash_prefix, UploadError};
use crate::error::ApiError;
use crate::metrics::Direction;

fn error(status: StatusCode, code: ErrorCode, description: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        description: description.into(),
        retry_after: None,
        gotrue: None,
    }
}

/// The answer to a refused or failed upload call.
pub(super) fn upload_error(e: UploadError) -> Response {
    match e {
        UploadError::Invalid(d) => ApiError::invalid_request(d).into_response(),
        UploadError::TooLarge { max } => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::AttachmentTooLarge,
            format!("an attachment may have at most {max} bytes"),
        )
        .into_response(),
        UploadError::QuotaExceeded { quota } => error(
            StatusCode::FORBIDDEN,
            ErrorCode::QuotaExceeded,
            format!("the account's attachments may take at most {quota} bytes"),
        )
        .into_response(),
        UploadError::NotFound => error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no upload of this hash is open: open it first",
        )
        .into_response(),
        UploadError::OffsetMismatch { offset } => {
            let code = ErrorCode::OffsetMismatch;
            let body = serde_json::json!({
                "error": code.as_str(),
                "error_description": format!("the upload is at offset {offset}: continue from there"),
                "offset": offset,
            });
            let mut response = (StatusCode::CONFLICT, Json(body)).into_response();
            // The chunk's body may be unread: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            response.extensions_mut().insert(code);
            response
        }
        UploadError::ChunkTooLarge { max } => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("this chunk may have at most {max} bytes"),
        )
        .into_response(),
        UploadError::HashMismatch => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::HashMismatch,
            "the uploaded bytes do not hash to the upload's hash; the upload was discarded",
        )
        .into_response(),
        UploadError::Incomplete => {
            ApiError::invalid_request("the chunk's body did not arrive whole").into_response()
        }
        UploadError::Timeout => ApiError::body_timeout().into_response(),
        UploadError::Storage(e) => ApiError::from(e).into_response(),
        UploadError::Store(e) => ApiError::internal(&format!("blob store: {e}")).into_response(),
    }
}

pub async fn open(
    State(state): State<SharedState>,
    user: AuthUser,
    JsonBody(request): JsonBody<OpenUploadRequest>,
) -> Response {
    let uploads = &state.uploads;
    match uploads
        .open(
            &user.user_id,
            &request.hash,
            request.size,
            &request.content_type,
        )
        .await
    {
        Ok(status) => Json(UploadStatus {
            hash: request.hash,
            offset: status.offset,
            complete: status.complete,
            chunk_bytes: (!status.complete).then_some(uploads.limits.chunk_bytes),
        })
        .into_response(),
        Err(e) => upload_error(e),
    }
}

pub async fn chunk(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(hash): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let media_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(OFFSET_STREAM_CONTENT_TYPE)) {
        let mut e = ApiError::unsupported_media_type();
        e.description = format!("a chunk's body must be {OFFSET_STREAM_CONTENT_TYPE}");
        return e.into_response();
    }
    let Some(offset) = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return ApiError::invalid_request(format!(
            "a chunk needs an {UPLOAD_OFFSET} header: the offset of its first byte"
        ))
        .into_response();
    };
    let declared = super::declared_length(headers);
    let result = state
        .uploads
        .chunk(
            &user.user_id,
            &hash,
            offset,
            declared,
            request.into_body(),
            chunk_read_timeout(state.body_read_timeout, state.uploads.limits.chunk_bytes),
        )
        .await;
    match result {
        Ok(status) => {
            let received = status.offset.saturating_sub(offset);
            state.metrics.attachment_bytes(Direction::Up, received);
            Json(UploadStatus {
                hash,
                offset: status.offset,
                complete: status.complete,
                chunk_bytes: None,
            })
            .into_response()
        }
        Err(e) => upload_error(e),
    }
}

/// How long a chunk's body may take to arrive: `--body-read-timeout-secs`, but at least the time
/// of a whole chunk at 64 KiB/s (128 s for 8 MiB), so a phone on a slow link is not cut off in
/// the middle of every chunk.
pub(super) fn chunk_read_timeout(body_read_timeout: Duration, chunk_bytes: u64) -> Duration {
    body_read_timeout.max(Duration::from_secs(chunk_bytes / (64 * 1024)))
}

/// The one answer for a blob that does not exist and one the user may not read.
fn blob_not_found() -> Response {
    error(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such blob").into_response()
}

/// `Range: bytes=N-` or `bytes=N-M` (one range), as the first and last byte wanted; `None` for
/// anything else (then the whole blob is sent, as RFC 9110 allows).
fn parse_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(RANGE)?.to_str().ok()?.trim();
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => None,
        text => {
            let last: u64 = text.parse().ok()?;
            if last < first {
                return None;
            }
            Some(last)
        }
    };
    Some((first, last))
}

pub async fn download(
    State(state): State<SharedState>,
    user: AuthUser,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !tandem_protocol::is_valid_blob_hash(&hash) {
        return blob_not_found();
    }
    let now = state.clock.now_ms();
    let readable = match state.storage.may_read_blob(&user.user_id, &hash, now).await {
        Ok(readable) => readable,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let blob = match state.storage.blob(&hash).await {
        Ok(Some(blob)) if readable => blob,
        Ok(_) => {
            tracing::info!(user_id = %user.user_id, hash = hash_prefix(&hash), "download refused: no such blob, or not readable");
            return blob_not_found();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let size = blob.size.max(0) as u64;
    let etag = format!("\"{hash}\"");
    let content_type = HeaderValue::from_str(&blob.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let common = |response: &mut Response| {
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(ETAG, v);
        }
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        );
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    };
    let not_modified = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        common(&mut response);
        return response;
    }
    let range = parse_range(&headers);
    let (first, last) = match range {
        Some((first, _)) if first >= size => {
            let mut response = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::RangeNotSatisfiable,
                format!("the blob has {size} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(CONTENT_RANGE, v);
            }
            common(&mut response);
            return response;
        }
        Some((first, last)) => (first, last.map_or(size - 1, |l| l.min(size - 1))),
        None => (0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { last - first + 1 };
    let key = state.uploads.store.blob_key(&hash);
    let stream = match state.uploads.store.read_from(&key, first).await {
        Ok(stream) => stream,
        Err(object_store::Error::NotFound { .. }) => {
            // Deleted by the purge between the row's read and now.
            tracing::warn!(
                hash = hash_prefix(&hash),
                "download of a blob whose bytes are gone"
            );
            return blob_not_found();
        }
        Err(e) => {
            return ApiError::internal(&format!(
                "blob store: cannot read blob {}: {e}",
                hash_prefix(&hash)
            ))
            .into_response()
        }
    };
    // Exactly `length` bytes (a bounded range stops early), logging a store failure mid-way.
    let log_hash = hash_prefix(&hash).to_string();
    let counted = state.clone();
    let body = futures_util::stream::unfold((stream, length), move |(mut stream, left)| {
        let log_hash = log_hash.clone();
        let state = counted.clone();
        async move {
            if left == 0 {
                return None;
            }
            match stream.next().await? {
                Ok(mut chunk) => {
                    if chunk.len() as u64 > left {
                        chunk.truncate(left as usize);
                    }
                    let left = left - chunk.len() as u64;
                    state
                        .metrics
                        .attachment_bytes(Direction::Down, chunk.len() as u64);
                    Some((Ok(chunk), (stream, left)))
                }
                Err(e) => {
                    tracing::warn!(hash = %log_hash, error = %e, "download failed mid-way");
                    Some((Err(std::io::Error::other(e.to_string())), (stream, 0)))
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, content_type);
    h.insert(CONTENT_LENGTH, HeaderValue::from(length));
    if range.is_some() {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{size}")) {
            h.insert(CONTENT_RANGE, v);
        }
    }
    common(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> Option<(u64, Option<u64>)> {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, HeaderValue::from_str(value).unwrap());
        parse_range(&headers)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=100-"), Some((100, None)));
        assert_eq!(range("bytes=0-9"), Some((0, Some(9))));
        assert_eq!(range(" bytes=5-5 "), Some((5, Some(5))));
        // Forms the server ignores (answered with the whole blob).
        assert_eq!(range("bytes=9-0"), None);
        assert_eq!(range("bytes=-100"), None);
        assert_eq!(range("bytes=0-1,5-6"), None);
        assert_eq!(range("items=0-1"), None);
        assert_eq!(parse_range(&HeaderMap::new()), None);
    }

    #[test]
    fn slow_links_get_time_for_a_chunk() {
        let eight_mib = 8 * 1024 * 1024;
        assert_eq!(
            chunk_read_timeout(Duration::from_secs(30), eight_mib),
            Duration::from_secs(128)
        );
        assert_eq!(
            chunk_read_timeout(Duration::from_secs(600), eight_mib),
            Duration::from_secs(600)
        );
    }
}
