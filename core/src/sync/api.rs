//! The sync routes over HTTP: push, pull and the events stream, with the bearer token from the
//! auth session. A 401 `token_expired` triggers one refresh and one retry.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_protocol::{Mutation, PullRequest, PullResponse, PushRequest, PushResponse};

use super::error::SyncError;
use crate::auth::{AccessToken, AuthSession};
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

    /// Runs `call` with a valid access token; on `token_expired`, refreshes once and retries.
    async fn authorized<T, F, Fut>(&self, call: F) -> Result<T, SyncError>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, HttpError>>,
    {
        let token = self.auth.access_token().await?;
        match call(token.clone()).await {
            Err(e) if e.is_token_expired() => {
                let fresh = self.auth.refresh_after_expired(&token).await?;
                Ok(call(fresh).await?)
            }
            other => Ok(other?),
        }
    }
}
