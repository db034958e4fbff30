//! The HTTP surface: the router, the shared state, and the extractors every route uses (a JSON
//! body with the protocol's 400/413/415 answers, and the bearer token of sync routes).

pub mod auth;
pub mod events;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tandem_protocol::Schema;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::attempt_limit::AttemptLimit;
use crate::auth::passwords::HashPool;
use crate::cursor::CursorCodec;
use crate::error::ApiError;
use crate::events::{ChangeHub, StreamSlots};
use crate::jwt::JwtKeys;
use crate::storage::Storage;

/// Everything a request handler needs.
pub struct AppState {
    pub storage: Storage,
    pub schema: Arc<Schema>,
    pub jwt: JwtKeys,
    pub cursors: CursorCodec,
    pub hub: ChangeHub,
    pub stream_slots: Arc<StreamSlots>,
    pub sign_in_limit: AttemptLimit,
    pub sign_up_limit: AttemptLimit,
    pub hashing: HashPool,
    /// The header the operator's reverse proxy puts the client's address in, if any.
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// How long an exchanged refresh token may be presented again by a client whose answer was lost.
    pub refresh_reuse_grace_ms: i64,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive in full.
    pub body_read_timeout: Duration,
    pub max_batch: usize,
    pub sync_paused: bool,
    /// Fires on shutdown so that open SSE streams end and graceful shutdown can finish.
    pub shutdown: CancellationToken,
}

pub type SharedState = Arc<AppState>;

/// The whole HTTP API.
pub fn router(state: SharedState) -> Router {
    let sync_routes = Router::new()
        .route("/sync/v1/push", post(sync::push))
        .route("/sync/v1/pull", post(sync::pull))
        .route("/sync/v1/events", get(events::events))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_when_paused,
        ));
    Router::new()
        .route("/healthz", get(health))
        .route("/auth/v1/signup", post(auth::signup))
        .route("/auth/v1/token", post(auth::token))
        .route("/auth/v1/logout", post(auth::logout))
        .route("/auth/v1/user", get(auth::user))
        .merge(sync_routes)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| ApiError::internal(&"a handler panicked").into_response()))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            // Spans carry method, path (never the query or headers) and the request id.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id =
                        req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", id = %request_id, method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(tower_http::LatencyUnit::Micros)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The kill switch: sync routes answer 503 while auth keeps working.
async fn refuse_when_paused(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    if state.sync_paused {
        return ApiError::sync_paused().into_response();
    }
    next.run(request).await
}

/// A JSON request body: 415 unless `application/json`, 413 over the size limit, 400 when it does
/// not parse into `T` (the description says where).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<SharedState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, ApiError> {
        if !is_json_content_type(request.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let declared = declared_length(request.headers());
        let bytes = tokio::time::timeout(
            state.body_read_timeout,
            read_body(request.into_body(), declared, state.max_body_bytes),
        )
        .await
        .map_err(|_| ApiError::body_timeout())??;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid_request(format!("malformed request body: {e}")))
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("application/json")
}

/// Reads at most `max` bytes of `body`; a declared or actual length over it answers 413.
async fn read_body(
    body: Body,
    declared: Option<u64>,
    max: usize,
) -> Result<axum::body::Bytes, ApiError> {
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::payload_too_large(max));
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        let over_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over_limit {
            ApiError::payload_too_large(max)
        } else {
            ApiError::invalid_request("the request body could not be read")
        }
    })
}

/// The client's address: the last value of the operator's `--client-ip-header` when one is set
/// (the one their own proxy added), else the peer of the connection.
pub struct ClientAddr(pub std::net::IpAddr);

impl FromRequestParts<SharedState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        if let Some(name) = &state.client_ip_header {
            let forwarded = parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|ip| ip.trim().parse().ok());
            return forwarded.map(ClientAddr).ok_or_else(|| {
                ApiError::invalid_request(format!("missing or malformed {name} header"))
            });
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        Ok(ClientAddr(peer))
    }
}

/// The user of a sync or account route, from `Authorization: Bearer <access token>`.
pub struct AuthUser {
    pub user_id: String,
    pub session_id: String,
}

impl FromRequestParts<SharedState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing Authorization: Bearer <access token>")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be Bearer <access token>")
            })?;
        let claims = state.jwt.verify(token)?;
        Ok(AuthUser {
            user_id: claims.sub,
            session_id: claims.session_id,
        })
    }
}

/// How long SSE streams wait between keep-alive comments (the protocol asks for ≤ 20 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
