//! The HTTP surface: the router, the shared state, and the extractors every route uses (a JSON
//! body with the protocol's 400/413/415 answers, and the bearer token of sync routes).

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod console;
pub mod events;
pub mod spaces;
pub mod sync;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tandem_protocol::ErrorCode;
use tandem_protocol::Schema;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::auth::attempt_limit::AttemptLimit;
use crate::auth::passwords::HashPool;
use crate::clock::Clock;
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
    /// External auth mode: the issuer's users are provisioned on first use.
    pub external_auth: bool,
    /// Whether the server's own `/auth/v1` is served.
    pub own_auth: bool,
    /// Shortest password a sign-up may choose, in characters.
    pub min_password_chars: usize,
    pub cursors: CursorCodec,
    pub hub: ChangeHub,
    pub stream_slots: Arc<StreamSlots>,
    /// Users whose last pull this instance recorded within the minute (`users.last_pull_at`).
    pub pull_notes: crate::storage::PullNotes,
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
    /// The pauses in force (the kill switch), cached from the `pauses` table.
    pub pauses: Arc<crate::control::PauseSet>,
    /// The pauses and revocations, and what keeps them current.
    pub control: Arc<crate::control::ControlPlane>,
    /// Pushes and pulls per minute of this instance (the admin overview).
    pub traffic: crate::traffic::Traffic,
    /// This instance's id (the admin overview; a new one per start).
    pub instance_id: String,
    /// Fires on shutdown so that open SSE streams end and graceful shutdown can finish.
    pub shutdown: CancellationToken,
    /// Where "now" comes from (the system clock, or a test's manual one).
    pub clock: Arc<dyn Clock>,
    /// The limits on spaces, members and invitations.
    pub space_limits: crate::spaces::SpaceLimits,
    /// The token of `/admin/v1` routes; `None`: they answer 404.
    pub admin_token: Option<String>,
    /// Attachment uploads, and the blob store they and downloads use.
    pub uploads: Arc<crate::blobs::Uploads>,
    /// The figures of `/metrics`.
    pub metrics: crate::metrics::Metrics,
}

pub type SharedState = Arc<AppState>;

/// The whole HTTP API.
pub fn router(state: SharedState) -> Router {
    let sync_routes = Router::new()
        .route("/sync/v1/push", post(sync::push))
        .route("/sync/v1/pull", post(sync::pull))
        .route("/sync/v1/events", get(events::events))
        .route("/sync/v1/account", get(spaces::account))
        // Chunks are read by their route (at most `chunkBytes`), not by `JsonBody`'s limit.
        .route("/sync/v1/blobs/uploads", post(blobs::open))
        .route(
            "/sync/v1/blobs/uploads/{hash}",
            axum::routing::patch(blobs::chunk),
        )
        .route("/sync/v1/blobs/{hash}", get(blobs::download))
        .route("/sync/v1/spaces", post(spaces::create))
        .route(
            "/sync/v1/spaces/{id}",
            axum::routing::patch(spaces::rename).delete(spaces::delete),
        )
        .route("/sync/v1/spaces/{id}/members", get(spaces::members))
        .route(
            "/sync/v1/spaces/{id}/members/{user_id}",
            put(spaces::set_role).delete(spaces::remove_member),
        )
        .route(
            "/sync/v1/spaces/{id}/invitations",
            post(spaces::invite).get(spaces::invitations),
        )
        .route(
            "/sync/v1/spaces/{id}/invitations/{invitation_id}",
            axum::routing::delete(spaces::revoke),
        )
        .route(
            "/sync/v1/invitations/{invitation_id}/accept",
            post(spaces::accept),
        )
        .route(
            "/sync/v1/invitations/{invitation_id}/decline",
            post(spaces::decline),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_when_paused,
        ));
    // Without an admin token the admin routes (and the console) do not exist: every method
    // answers 404.
    let admin_routes = if state.admin_token.is_some() {
        admin::routes()
            .merge(console::routes())
            .route("/metrics", get(crate::metrics::scrape_with_admin_token))
    } else {
        Router::new()
    };
    // `--disable-own-auth`: users sign in at an external issuer; `/auth/v1` answers 404.
    let auth_routes = if state.own_auth {
        Router::new()
            .route("/auth/v1/signup", post(auth::signup))
            .route("/auth/v1/token", post(auth::token))
            .route("/auth/v1/logout", post(auth::logout))
            .route("/auth/v1/user", get(auth::user))
            .route("/auth/v1/settings", get(auth::settings))
            .route("/auth/v1/health", get(auth::health))
            .route_layer(middleware::from_fn(auth::gotrue_errors))
    } else {
        Router::new()
    };
    Router::new()
        .route("/healthz", get(health))
        .merge(auth_routes)
        .merge(sync_routes)
        .merge(admin_routes)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .route_layer(middleware::from_fn(note_route))
        .with_state(state.clone())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(&"a handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(state, log_request))
}

/// What the request log line of one request learns on the way: filled in by `note_route` and
/// the `AuthUser` extractor, read by `log_request` once the answer is ready.
#[derive(Debug, Default)]
struct RequestNotes {
    route: Option<MatchedPath>,
    user_id: Option<String>,
}

#[derive(Clone, Default)]
struct Notes(Arc<Mutex<RequestNotes>>);

impl Notes {
    fn with<R>(&self, f: impl FnOnce(&mut RequestNotes) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One line per request: request id (also answered as `x-request-id`), method, matched route
/// (never the raw path's query, nor any header or body), user id once authenticated, status,
/// error code and duration. Everything the handler logs runs inside the request's span, so it
/// carries the same id. 500s log at `error`, other 5xx at `warn`, the rest at `info`. The same
/// route, method, status and duration go to `tandem_http_requests_total` and
/// `tandem_http_request_duration_seconds`.
async fn log_request(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let notes = Notes::default();
    request.extensions_mut().insert(notes.clone());
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let method = request.method().clone();
    let span = tracing::info_span!("request", id = %request_id);
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let code = response
        .extensions()
        .get::<ErrorCode>()
        .map(|c| c.as_str().to_string());
    let (route, user_id) = notes.with(|n| (n.route.take(), n.user_id.take()));
    let took = started.elapsed();
    let route = route.as_ref().map(MatchedPath::as_str);
    state.metrics.request(route, &method, status, took);
    let route = route.unwrap_or("-");
    let user_id = user_id.as_deref().unwrap_or("-");
    let code = code.as_deref().unwrap_or("-");
    let ms = took.as_secs_f64() * 1000.0;
    let ms = (ms * 10.0).round() / 10.0;
    let _entered = span.enter();
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                target: "tandem_server::request",
                %method, route, user_id, status, code, ms,
                "request"
            )
        };
    }
    match status {
        500 => line!(error),
        501.. => line!(warn),
        _ => line!(info),
    }
    response
}

/// The request's id (as in its log line and `x-request-id`), for handlers that log it by name
/// (the admin audit lines).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Records the matched route (`/sync/v1/push`, not the raw path) for the request log line.
async fn note_route(request: Request, next: Next) -> Response {
    if let (Some(path), Some(notes)) = (
        request.extensions().get::<MatchedPath>(),
        request.extensions().get::<Notes>(),
    ) {
        let route = path.clone();
        notes.with(|n| n.route = Some(route));
    }
    next.run(request).await
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The kill switch: sync routes answer 503 `sync_paused` (with the pause's `Retry-After`) while
/// auth keeps working, before anything reads the body. The global pause needs no token; while
/// any user has a pause of their own, the bearer token is checked here (by [`AuthUser`], which
/// the handler then reuses; a request it refuses goes on to be refused by its handler) and a
/// paused user's request is answered 503. Nothing is queried: the pauses are cached (`control.rs`).
async fn refuse_when_paused(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(pause) = state.pauses.global() {
        return ApiError::sync_paused_for(pause.retry_after_secs).into_response();
    }
    if state.pauses.any_user_paused() {
        let (mut parts, body) = request.into_parts();
        if let Ok(user) = AuthUser::from_request_parts(&mut parts, &state).await {
            if let Some(pause) = state.pauses.for_user(&user.user_id) {
                return ApiError::sync_paused_for(pause.retry_after_secs).into_response();
            }
            // The handler's `AuthUser` takes it from here instead of verifying the token again.
            parts.extensions.insert(user);
        }
        return next.run(Request::from_parts(parts, body)).await;
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

pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
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
        client_addr(parts, state).map(ClientAddr)
    }
}

/// [`ClientAddr`]'s rule, for extractors that need the address too.
pub(crate) fn client_addr(
    parts: &Parts,
    state: &SharedState,
) -> Result<std::net::IpAddr, ApiError> {
    if let Some(name) = &state.client_ip_header {
        let forwarded = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|ip| ip.trim().parse().ok());
        return forwarded.ok_or_else(|| {
            ApiError::invalid_request(format!("missing or malformed {name} header"))
        });
    }
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    Ok(peer)
}

/// The user of a sync or account route, from `Authorization: Bearer <access token>`.
#[derive(Clone)]
pub struct AuthUser {
    pub user_id: String,
    pub session_id: String,
    /// The token's `iat` (seconds): an event stream ends once a revocation refuses it.
    pub issued_at: i64,
}

impl FromRequestParts<SharedState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        // Already checked by `refuse_when_paused` (while a user has a pause of their own).
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing Authorization: Bearer <access token>")
                .gotrue("no_authorization")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be Bearer <access token>")
                    .gotrue("no_authorization")
            })?;
        let claims = state.jwt.verify(token, state.clock.now_secs()).await?;
        // An operator revoked the user's sessions after this token was issued (a cached check).
        if state.control.revocations.refuses(&claims.sub, claims.iat) {
            tracing::info!("access token issued before its user's revocation");
            return Err(
                ApiError::unauthorized("the access token was revoked").gotrue("session_not_found")
            );
        }
        // External auth mode: the issuer's user gets its row here, on its first request, so
        // every route (push, pull, events, spaces, blobs) sees the same account.
        if state.external_auth {
            crate::auth::provision(state, &claims).await?;
        }
        if let Some(notes) = parts.extensions.get::<Notes>() {
            notes.with(|n| n.user_id = Some(claims.sub.clone()));
        }
        Ok(AuthUser {
            user_id: claims.sub,
            session_id: claims.session_id,
            issued_at: claims.iat,
        })
    }
}

/// The response header carrying the request's id, as in the server's log line.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long SSE streams wait between keep-alive comments (the protocol asks for ≤ 20 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
