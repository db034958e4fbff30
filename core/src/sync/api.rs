//! The sync routes over HTTP: push, pull and the events stream, with the bearer token from the
//! auth session. A 401 `token_expired` (or `unauthorized`: a revoked token) triggers one refresh
//! and one retry.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::path::Path;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tandem_protocol::{
    CreateSpaceRequest, Hlc, InviteRequest, MembersOut, Mutation, PullRequest, PullResponse,
    PushRequest, PushResponse, RenameSpaceRequest, Role, SetRoleRequest, StreamKey,
    StreamPullRequest, StreamPullResponse, StreamStatus,
};
use tandem_protocol::{
    ErrorCode, OpenUploadRequest, UploadStatus, OFFSET_STREAM_CONTENT_TYPE, UPLOAD_OFFSET,
};

use super::error::SyncError;
use super::pull::{AccountSection, StreamPage, StreamState};
use super::spaces::{Member, SentInvitation, Space};
use crate::auth::{AccessToken, AuthSession};
use crate::error::{Error, SpaceErrorKind};
use crate::http::{decode_json, network_error, HttpClient, HttpError};

/// What one exchange moved over the wire, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub sent: u64,
    pub received: u64,
}

pub struct SyncApi {
    http: HttpClient,
    auth: Arc<AuthSession>,
    client_id: String,
    timeout: Duration,
}

impl SyncApi {
    pub fn new(
        http: HttpClient,
        auth: Arc<AuthSession>,
        client_id: String,
        timeout: Duration,
    ) -> Self {
        Self {
            http,
            auth,
            client_id,
            timeout,
        }
    }

    /// The id this installation pushes as (`clientId`), which the pokes of its own pushes name.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub async fn push(
        &self,
        mutations: Vec<Mutation>,
    ) -> Result<(PushResponse, Traffic), SyncError> {
        let body = PushRequest {
            client_id: self.client_id.clone(),
            mutations,
        };
        self.post("/push", &body).await
    }

    pub async fn pull(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(PullResponse, Traffic), SyncError> {
        self.post(
            "/pull",
            &PullRequest {
                cursor,
                limit: Some(i64::from(limit)),
            },
        )
        .await
    }

    /// One page of the multi-stream pull: `streams` maps every stream this device pulls to its
    /// cursor (`None`: from the beginning), `account_seq` is the account section last applied.
    pub async fn pull_streams(
        &self,
        streams: BTreeMap<String, Option<String>>,
        account_seq: Option<i64>,
        limit: u32,
    ) -> Result<(StreamPage, Option<Hlc>, Traffic), SyncError> {
        let mut keys = BTreeMap::new();
        for (stream, cursor) in streams {
            match StreamKey::parse(&stream) {
                Some(key) => {
                    keys.insert(key, cursor);
                }
                None => {
                    tracing::warn!(stream = %stream, "a stored stream key is malformed; not sent")
                }
            }
        }
        let request = StreamPullRequest {
            streams: keys,
            account_seq,
            limit: Some(i64::from(limit)),
        };
        let (answer, traffic): (StreamPullResponse, Traffic) = self.post("/pull", &request).await?;
        let StreamPullResponse {
            changes,
            streams,
            has_more,
            remaining,
            account,
            server_time,
        } = answer;
        let mut states = Vec::with_capacity(streams.len());
        for (key, entry) in streams {
            let state = match (entry.status, entry.cursor) {
                (StreamStatus::Ok, Some(cursor)) => StreamState::Ok(cursor),
                (StreamStatus::Ok, None) => {
                    return Err(SyncError::from(Error::Protocol(format!(
                        "stream {key} is ok without a cursor"
                    ))))
                }
                (StreamStatus::Gone, _) => StreamState::Gone,
                (StreamStatus::Expired, _) => StreamState::Expired,
            };
            states.push((key.as_wire(), state));
        }
        let account = account
            .map(AccountSection::from_wire)
            .transpose()
            .map_err(SyncError::from)?;
        let page = StreamPage {
            changes,
            streams: states,
            account,
            has_more,
            remaining,
        };
        Ok((page, server_time, traffic))
    }

    // ---- Space calls (docs/design/spaces.md §6) ----

    pub async fn create_space(&self, name: &str, request_id: &str) -> Result<Space, Error> {
        let body = json_body(&CreateSpaceRequest {
            name: name.to_string(),
            request_id: request_id.to_string(),
        })?;
        Space::from_wire(
            self.space_call_json(Method::POST, "/spaces", Some(body))
                .await?,
        )
    }

    pub async fn rename_space(&self, space_id: &str, name: &str) -> Result<Space, Error> {
        let body = json_body(&RenameSpaceRequest {
            name: name.to_string(),
        })?;
        let path = format!("/spaces/{space_id}");
        Space::from_wire(
            self.space_call_json(Method::PATCH, &path, Some(body))
                .await?,
        )
    }

    pub async fn delete_space(&self, space_id: &str) -> Result<(), Error> {
        let path = format!("/spaces/{space_id}");
        self.space_call::<Value>(Method::DELETE, &path, None)
            .await
            .map(drop)
    }

    pub async fn members(&self, space_id: &str) -> Result<Vec<Member>, Error> {
        let path = format!("/spaces/{space_id}/members");
        let out: MembersOut = self.space_call_json(Method::GET, &path, None).await?;
        out.members.into_iter().map(Member::from_wire).collect()
    }

    pub async fn set_role(
        &self,
        space_id: &str,
        user_id: &str,
        role: Role,
    ) -> Result<Member, Error> {
        let body = json_body(&SetRoleRequest { role })?;
        let path = format!("/spaces/{space_id}/members/{user_id}");
        Member::from_wire(self.space_call_json(Method::PUT, &path, Some(body)).await?)
    }

    pub async fn remove_member(&self, space_id: &str, user_id: &str) -> Result<(), Error> {
        let path = format!("/spaces/{space_id}/members/{user_id}");
        self.space_call::<Value>(Method::DELETE, &path, None)
            .await
            .map(drop)
    }

    pub async fn invite(
        &self,
        space_id: &str,
        email: &str,
        role: Role,
    ) -> Result<SentInvitation, Error> {
        let body = json_body(&InviteRequest {
            email: email.to_string(),
            role,
        })?;
        let path = format!("/spaces/{space_id}/invitations");
        SentInvitation::from_wire(
            self.space_call_json(Method::POST, &path, Some(body))
                .await?,
        )
    }

    pub async fn accept(&self, invitation_id: &str) -> Result<Space, Error> {
        let path = format!("/invitations/{invitation_id}/accept");
        Space::from_wire(self.space_call_json(Method::POST, &path, None).await?)
    }

    pub async fn decline(&self, invitation_id: &str) -> Result<(), Error> {
        let path = format!("/invitations/{invitation_id}/decline");
        self.space_call::<Value>(Method::POST, &path, None)
            .await
            .map(drop)
    }

    /// The user's spaces and pending invitations (`GET /sync/v1/account`).
    pub async fn account(&self) -> Result<AccountSection, Error> {
        AccountSection::from_wire(self.space_call_json(Method::GET, "/account", None).await?)
    }

    // ---- Attachments (docs/protocol.md "Attachments") ----

    /// The longest one exchange may take; a download's bound on each read of its body.
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// `GET /sync/v1/blobs/{hash}`, from byte `offset` on (`Range: bytes=<offset>-` when it is
    /// not 0). Returns the response with its body unread (`200`: the whole blob, `206`: from
    /// `offset`), for the caller to stream to a file; no overall timeout (a large file takes
    /// long), so the caller bounds each read. An error status is the usual [`SyncError`] (`404`
    /// and `416` as `Server` with their status).
    pub async fn download_blob(
        &self,
        hash: &str,
        offset: u64,
    ) -> Result<reqwest::Response, SyncError> {
        let url = self.http.sync_url(&format!("/blobs/{hash}"));
        self.authorized(|token| {
            let mut request = self.http.request(Method::GET, &url, Some(token.as_str()));
            if offset > 0 {
                request = request.header(reqwest::header::RANGE, format!("bytes={offset}-"));
            }
            async move {
                let response = request.send().await.map_err(network_error)?;
                if response.status().is_success() {
                    return Ok(response);
                }
                let (status, headers) = (response.status(), response.headers().clone());
                let body = response.bytes().await.unwrap_or_default();
                Err(crate::http::status_error(status, &headers, &body))
            }
        })
        .await
    }

    // ---- Attachment uploads (docs/protocol.md "Attachments") ----

    /// Opens (or reopens) the user's upload of a blob: `POST /sync/v1/blobs/uploads`. The answer
    /// says the offset the server holds, or `complete` when it holds the blob for this user.
    pub async fn open_upload(
        &self,
        request: &OpenUploadRequest,
    ) -> Result<(UploadAnswer, Traffic), SyncError> {
        let bytes = serde_json::to_vec(request)
            .map_err(|e| SyncError::Local(format!("encoding a request: {e}")))?;
        let url = self.http.sync_url("/blobs/uploads");
        self.authorized(|token| {
            let request = self
                .http
                .request(Method::POST, &url, Some(token.as_str()))
                .timeout(self.timeout)
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            let sent = bytes.len() as u64;
            async move { upload_exchange(request, sent).await }
        })
        .await
    }

    /// Sends `len` bytes of the file at `path` from `offset` as one chunk of the upload of
    /// `hash`: `PATCH /sync/v1/blobs/uploads/{hash}` with `Upload-Offset`. The body is streamed
    /// from the file (256 KiB at a time), never read into memory whole. The inner `Err` is the
    /// local file failing (gone, unreadable).
    pub async fn send_chunk(
        &self,
        hash: &str,
        path: &Path,
        key: Option<&crate::attachments::sealed::CacheKey>,
        offset: u64,
        len: u64,
    ) -> Result<std::io::Result<(UploadAnswer, Traffic)>, SyncError> {
        let url = self.http.sync_url(&format!("/blobs/uploads/{hash}"));
        // A chunk is up to 8 MiB: the usual request timeout would cut it on a slow network, so
        // the chunk gets at least `CHUNK_TIMEOUT`.
        let timeout = self.timeout.max(CHUNK_TIMEOUT);
        self.authorized(|token| {
            let body = chunk_body(path, key, offset, len);
            let request = self
                .http
                .request(Method::PATCH, &url, Some(token.as_str()))
                .timeout(timeout)
                .header(UPLOAD_OFFSET, offset.to_string())
                .header(CONTENT_TYPE, OFFSET_STREAM_CONTENT_TYPE)
                .header(CONTENT_LENGTH, len.to_string());
            async move {
                let body = match body {
                    Ok(body) => body,
                    Err(e) => return Ok(Err(e)),
                };
                upload_exchange(request.body(body), len).await.map(Ok)
            }
        })
        .await
    }

    /// Opens the server-sent events stream (no overall timeout: it stays open).
    pub async fn events(&self) -> Result<reqwest::Response, SyncError> {
        let url = self.http.sync_url("/events");
        self.authorized(|token| {
            let request = self
                .http
                .request(Method::GET, &url, Some(token.as_str()))
                .header("accept", "text/event-stream");
            async move {
                let response = request.send().await.map_err(network_error)?;
                if response.status().is_success() {
                    return Ok(response);
                }
                let (status, headers) = (response.status(), response.headers().clone());
                let body = response.bytes().await.unwrap_or_default();
                Err(crate::http::status_error(status, &headers, &body))
            }
        })
        .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(T, Traffic), SyncError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| SyncError::Local(format!("encoding a request: {e}")))?;
        let url = self.http.sync_url(path);
        self.authorized(|token| {
            let request = self
                .http
                .request(Method::POST, &url, Some(token.as_str()))
                .timeout(self.timeout)
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            let sent = bytes.len() as u64;
            async move {
                let (status, answer) = self.http.exchange(request).await?;
                let traffic = Traffic {
                    sent,
                    received: answer.len() as u64,
                };
                Ok((decode_json(status, &answer)?, traffic))
            }
        })
        .await
    }

    /// One space call (`/sync/v1/spaces...`, `/invitations...`, `/account`): `body` as JSON
    /// (none for GET and DELETE), the answer decoded when the status has one (`204` has none).
    /// A refusal the caller can act on (`403`, `404`, `409`, `422` with a space code) is an
    /// [`Error::Space`]; the network and the session fail as sync does.
    async fn space_call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Option<T>, Error> {
        let url = self.http.sync_url(path);
        let answer = self
            .authorized(|token| {
                let mut request = self
                    .http
                    .request(method.clone(), &url, Some(token.as_str()))
                    .timeout(self.timeout);
                if let Some(bytes) = &body {
                    request = request
                        .header(CONTENT_TYPE, "application/json")
                        .body(bytes.clone());
                }
                async move {
                    match self.http.exchange(request).await {
                        Ok((status, bytes)) if status.as_u16() == 204 || bytes.is_empty() => {
                            Ok(Ok(None))
                        }
                        Ok((status, bytes)) => Ok(Ok(Some(decode_json(status, &bytes)?))),
                        Err(e) => match space_refusal(&e) {
                            Some(refused) => Ok(Err(refused)),
                            None => Err(e),
                        },
                    }
                }
            })
            .await;
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(refused)) => {
                tracing::info!(path = %redact_path(path), error = %refused, "space call refused");
                Err(refused)
            }
            Err(e) => {
                tracing::warn!(path = %redact_path(path), error = %e, "space call failed");
                Err(Error::Sync(e))
            }
        }
    }

    /// [`space_call`](Self::space_call) for an answer that must have a body.
    async fn space_call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        self.space_call(method, path, body).await?.ok_or_else(|| {
            Error::Protocol(format!("the answer to {} had no body", redact_path(path)))
        })
    }

    /// Runs `call` with a valid access token; on a refused token (`token_expired`, or
    /// `unauthorized` as a revoked one is answered), refreshes once and retries. A refresh the
    /// server refuses ends the session (`SessionExpired`).
    async fn authorized<T, F, Fut>(&self, call: F) -> Result<T, SyncError>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, HttpError>>,
    {
        let token = self.auth.access_token().await?;
        match call(token.clone()).await {
            Err(e) if e.is_token_refused() => {
                let fresh = self.auth.refresh_after_expired(&token).await?;
                Ok(call(fresh).await?)
            }
            other => Ok(other?),
        }
    }
}

/// The least time a chunk upload may take before it is given up (see [`SyncApi::send_chunk`]).
const CHUNK_TIMEOUT: Duration = Duration::from_secs(300);
/// The read buffer of a streamed chunk body.
const CHUNK_READ_BUFFER: usize = 256 * 1024;

/// The server's answer to an upload call: where the upload stands, or a refusal the upload phase
/// acts on. Other failures (network, 5xx, session) are the call's `SyncError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadAnswer {
    Status(UploadStatus),
    Refused(UploadRefusal),
}

/// Upload refusals with a meaning of their own (docs/protocol.md "Attachments").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadRefusal {
    /// 413 `attachment_too_large`: over the server's per-file limit (its description says it).
    TooLarge(String),
    /// 403 `quota_exceeded`.
    QuotaExceeded(String),
    /// 422 `hash_mismatch`: the bytes did not hash to the hash; the server discarded them.
    HashMismatch(String),
    /// 409 `offset_mismatch`: the server holds this offset; continue from it.
    OffsetMismatch(u64),
    /// 404: no open upload of that hash (it was never opened, or expired).
    NotFound,
}

/// A chunk's body: `len` bytes of the file at `path` from `offset`, streamed.
///
/// A sealed cache file (`key`, encryption on) is decrypted for the chunk: its plaintext is held
/// in memory for the one request (at most `chunkBytes`, 8 MiB), never written to disk.
fn chunk_body(
    path: &Path,
    key: Option<&crate::attachments::sealed::CacheKey>,
    offset: u64,
    len: u64,
) -> std::io::Result<reqwest::Body> {
    use std::io::{Seek, SeekFrom};
    if let Some(key) = key {
        let bytes = crate::attachments::sealed::SealedFile::open(path, key)
            .and_then(|mut file| file.read_at(offset, len))
            .map_err(|e| match e {
                crate::attachments::sealed::SealError::Io(e) => e,
                other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
            })?;
        return Ok(reqwest::Body::from(bytes));
    }
    use tokio::io::AsyncReadExt;
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let reader = tokio::fs::File::from_std(file).take(len);
    Ok(reqwest::Body::wrap_stream(
        tokio_util::io::ReaderStream::with_capacity(reader, CHUNK_READ_BUFFER),
    ))
}

/// Sends an upload call and sorts its answer (see [`UploadAnswer`]).
async fn upload_exchange(
    request: reqwest::RequestBuilder,
    sent: u64,
) -> Result<(UploadAnswer, Traffic), HttpError> {
    let response = request.send().await.map_err(network_error)?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(network_error)?;
    let traffic = Traffic {
        sent,
        received: bytes.len() as u64,
    };
    if status.is_success() {
        return Ok((UploadAnswer::Status(decode_json(status, &bytes)?), traffic));
    }
    let error = crate::http::status_error(status, &headers, &bytes);
    let description = match &error {
        HttpError::Status { description, .. } => description.clone().unwrap_or_default(),
        _ => String::new(),
    };
    let refusal = match (status.as_u16(), error.error_code()) {
        (_, Some(ErrorCode::AttachmentTooLarge)) => UploadRefusal::TooLarge(description),
        (_, Some(ErrorCode::QuotaExceeded)) => UploadRefusal::QuotaExceeded(description),
        (_, Some(ErrorCode::HashMismatch)) => UploadRefusal::HashMismatch(description),
        (409, Some(ErrorCode::OffsetMismatch)) => {
            let offset = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("offset").and_then(Value::as_u64));
            match offset {
                Some(offset) => UploadRefusal::OffsetMismatch(offset),
                None => return Err(error),
            }
        }
        (404, _) => UploadRefusal::NotFound,
        _ => return Err(error),
    };
    Ok((UploadAnswer::Refused(refusal), traffic))
}

/// The refusal of a space call, when the server's answer is one (`403`, `404`, `409`, `422`
/// carrying a code of a space error).
fn space_refusal(e: &HttpError) -> Option<Error> {
    let status = e.status()?;
    if !matches!(status, 403 | 404 | 409 | 422) {
        return None;
    }
    let kind = match e.code().and_then(SpaceErrorKind::from_code) {
        Some(kind) => kind,
        // A 404 without a code is still "no such space, or not a member".
        None if status == 404 => SpaceErrorKind::NotFound,
        None => return None,
    };
    Some(Error::Space {
        kind,
        message: e.to_string(),
    })
}

/// A space call's path for the log: its kind, without ids (an invitation id is a capability).
fn redact_path(path: &str) -> String {
    path.split('/')
        .map(|part| {
            if part.is_empty()
                || matches!(
                    part,
                    "spaces" | "members" | "invitations" | "accept" | "decline" | "account"
                )
            {
                part
            } else {
                "…"
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The body of a request, as JSON.
fn json_body<B: Serialize>(body: &B) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(|e| Error::Protocol(format!("encoding a request: {e}")))
}
