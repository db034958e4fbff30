//! `/auth/v1`: sign-up, the password and refresh-token grants, logout, the current user,
//! settings and health. Shapes follow Supabase Auth (GoTrue) so a client works against either
//! (docs/protocol.md, "GoTrue compatibility"): the session and user objects carry GoTrue's fields,
//! and error bodies GoTrue's `code`, `error_code` and `msg` beside the protocol's `error` and
//! `error_description`.

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tandem_protocol::{ErrorCode, PasswordCredentials, RefreshTokenRequest, MAX_EMAIL_LEN};

use super::{AuthUser, ClientAddr, JsonBody, SharedState};
use crate::auth::passwords::{hash_password, verify_against_dummy, verify_password};
use crate::auth::refresh_tokens::{hash_refresh_token, new_refresh_token};
use crate::auth::{is_plausible_email, normalize_email};
use crate::clock::rfc3339_from_ms;
use crate::error::{gotrue_code, ApiError, ErrorParts};
use crate::storage::{RefreshOutcome, UserRow};

/// `POST /auth/v1/signup`: creates a confirmed account and signs it in.
pub async fn signup(
    State(state): State<SharedState>,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<PasswordCredentials>,
) -> Result<Json<SessionOut>, ApiError> {
    let email = normalize_email(&body.email);
    check_email(&email)?;
    if !is_plausible_email(&email) {
        return Err(invalid_input("the email must be of the form local@domain"));
    }
    if body.password.chars().count() < state.min_password_chars {
        return Err(ApiError::weak_password(state.min_password_chars));
    }
    state
        .sign_up_limit
        .reserve(&client.to_string(), state.clock.now_ms())
        .map_err(ApiError::too_many_sign_ups)?;
    let password = body.password;
    let password_hash = state
        .hashing
        .run(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::server_busy())?;
    let user = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        email,
        password_hash,
        created_at_ms: state.clock.now_ms(),
    };
    if !state.storage.create_user(user.clone()).await? {
        return Err(ApiError::user_already_exists());
    }
    tracing::info!(user_id = %user.id, "signed up");
    start_session(&state, &user).await.map(Json)
}

#[derive(Deserialize)]
pub struct GrantQuery {
    grant_type: Option<String>,
}

/// `POST /auth/v1/token?grant_type=password|refresh_token`.
pub async fn token(
    State(state): State<SharedState>,
    query: Result<Query<GrantQuery>, axum::extract::rejection::QueryRejection>,
    request: axum::extract::Request,
) -> Result<Json<SessionOut>, ApiError> {
    use axum::extract::FromRequest;
    let grant_type = query.ok().and_then(|Query(q)| q.grant_type);
    match grant_type.as_deref() {
        Some("password") => {
            let JsonBody(body) =
                JsonBody::<PasswordCredentials>::from_request(request, &state).await?;
            password_grant(&state, body).await.map(Json)
        }
        Some("refresh_token") => {
            let JsonBody(body) =
                JsonBody::<RefreshTokenRequest>::from_request(request, &state).await?;
            refresh_grant(&state, body).await.map(Json)
        }
        _ => Err(ApiError::unsupported_grant_type()),
    }
}

async fn password_grant(
    state: &SharedState,
    body: PasswordCredentials,
) -> Result<SessionOut, ApiError> {
    let email = normalize_email(&body.email);
    check_email(&email)?;
    if !is_plausible_email(&email) {
        // No account has such an email, so answering at once reveals nothing.
        return Err(
            ApiError::invalid_grant("invalid email or password").gotrue("invalid_credentials")
        );
    }
    state
        .sign_in_limit
        .reserve(&email, state.clock.now_ms())
        .map_err(ApiError::rate_limited)?;
    let user = state.storage.user_by_email(&email).await?;
    let password = body.password;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let matches = state
        .hashing
        .run(move || match stored_hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                verify_against_dummy(&password);
                false
            }
        })
        .await
        .map_err(|_| {
            // Not checked, so not a failure: a busy server must not use up the user's attempts.
            state.sign_in_limit.release(&email);
            ApiError::server_busy()
        })?;
    match user.filter(|_| matches) {
        Some(user) => {
            state.sign_in_limit.release(&email);
            start_session(state, &user).await
        }
        None => {
            Err(ApiError::invalid_grant("invalid email or password").gotrue("invalid_credentials"))
        }
    }
}

/// Input GoTrue refuses with `400 validation_failed` (an email that is none, an unknown logout
/// scope); elsewhere the protocol's `validation_failed` is a 422.
fn invalid_input(description: impl Into<String>) -> ApiError {
    let mut error = ApiError::validation_failed(description);
    error.status = StatusCode::BAD_REQUEST;
    error
}

/// Emails longer than the protocol allows are refused before they are looked up or remembered.
fn check_email(email: &str) -> Result<(), ApiError> {
    if email.len() > MAX_EMAIL_LEN {
        return Err(invalid_input(format!(
            "the email must have at most {MAX_EMAIL_LEN} bytes"
        )));
    }
    Ok(())
}

async fn refresh_grant(
    state: &SharedState,
    body: RefreshTokenRequest,
) -> Result<SessionOut, ApiError> {
    let next_token = new_refresh_token();
    let outcome = state
        .storage
        .exchange_refresh_token(
            &hash_refresh_token(&body.refresh_token),
            &hash_refresh_token(&next_token),
            state.clock.now_ms(),
            state.refresh_reuse_grace_ms,
        )
        .await?;
    match outcome {
        RefreshOutcome::Exchanged { user, session_id } => {
            Ok(session_body(state, &user, &session_id, next_token))
        }
        RefreshOutcome::Refused => Err(ApiError::invalid_grant(
            "the refresh token is invalid, revoked or already used",
        )
        .gotrue("refresh_token_not_found")),
    }
}

#[derive(Deserialize)]
pub struct LogoutQuery {
    scope: Option<String>,
}

/// `POST /auth/v1/logout[?scope=local|global|others]`, as GoTrue's:
/// - `local` (the default here; GoTrue's is `global`, but engines before the scope sent none and
///   meant this device): revokes this sign-in's refresh tokens; its access token is refused by
///   `/auth/v1` at once (as GoTrue's: its session is gone) and stays valid on `/sync/v1` until it
///   expires (JWTs are stateless there, as at any resource server of GoTrue's);
/// - `global`: revokes every sign-in of the user and refuses every access token issued to it so
///   far (as the operator's `POST /admin/v1/users/{id}/revoke`): every device is signed out at
///   its next request;
/// - `others`: revokes the user's other sign-ins (their devices are signed out at their next
///   refresh, within the access tokens' lifetime); this one stays.
///
/// Another scope answers 400 `validation_failed`.
pub async fn logout(
    State(state): State<SharedState>,
    query: Result<Query<LogoutQuery>, axum::extract::rejection::QueryRejection>,
    SessionUser(user): SessionUser,
) -> Result<StatusCode, ApiError> {
    let scope = query.ok().and_then(|Query(q)| q.scope);
    let now_ms = state.clock.now_ms();
    match scope.as_deref().unwrap_or("local") {
        "local" => {
            state
                .storage
                .revoke_session(&user.user_id, &user.session_id, now_ms)
                .await?
        }
        "global" => {
            let (sessions, valid_after_ms) =
                state.storage.revoke_user(&user.user_id, now_ms).await?;
            state
                .control
                .revocations
                .insert(&user.user_id, valid_after_ms);
            tracing::info!(user_id = %user.user_id, sessions, "signed out everywhere");
        }
        "others" => {
            let sessions = state
                .storage
                .revoke_other_sessions(&user.user_id, &user.session_id, now_ms)
                .await?;
            tracing::info!(user_id = %user.user_id, sessions, "signed out the other sessions");
        }
        other => {
            return Err(invalid_input(format!(
                "unsupported logout scope {other:?}: local, global or others"
            )))
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /auth/v1/user`.
pub async fn user(
    State(state): State<SharedState>,
    SessionUser(user): SessionUser,
) -> Result<Json<UserOut>, ApiError> {
    match state.storage.user_by_id(&user.user_id).await? {
        Some(row) => Ok(Json(user_body(&row))),
        None => {
            let mut error = ApiError::account_gone().gotrue("user_not_found");
            error.status = StatusCode::FORBIDDEN;
            Err(error)
        }
    }
}

/// The user of `GET /user` and `POST /logout`, checked as GoTrue checks its own routes' tokens
/// (docs/protocol.md, "GoTrue compatibility"): no `Authorization: Bearer` answers `401
/// no_authorization`; a token that is malformed, badly signed or expired `403 bad_jwt`; a token
/// of a sign-in that is signed out (any scope), revoked by the operator or by a refresh token's
/// late reuse `403 session_not_found`. The session lookup is these routes' own: `/sync/v1` keeps
/// its stateless check and its `401`s.
pub struct SessionUser(pub AuthUser);

impl axum::extract::FromRequestParts<SharedState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &SharedState,
    ) -> Result<Self, ApiError> {
        let user = match AuthUser::from_request_parts(parts, state).await {
            Ok(user) => user,
            Err(mut error) if error.status == StatusCode::UNAUTHORIZED => {
                if error.gotrue != Some("no_authorization") {
                    error.status = StatusCode::FORBIDDEN;
                    error.gotrue = Some(error.gotrue.unwrap_or("bad_jwt"));
                }
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        // As GoTrue: a token without a session (an external issuer's) is not checked.
        if !user.session_id.is_empty()
            && !state
                .storage
                .session_active(&user.user_id, &user.session_id)
                .await?
        {
            tracing::info!(user_id = %user.user_id, "access token of a signed-out session");
            let mut error = ApiError::unauthorized("the session of this access token has ended")
                .gotrue("session_not_found");
            error.status = StatusCode::FORBIDDEN;
            return Err(error);
        }
        Ok(SessionUser(user))
    }
}

/// A new sign-in: a session row with its first refresh token, and the Session answer.
async fn start_session(state: &SharedState, user: &UserRow) -> Result<SessionOut, ApiError> {
    let session_id = uuid::Uuid::now_v7().to_string();
    let refresh_token = new_refresh_token();
    state
        .storage
        .create_session(
            &user.id,
            &session_id,
            &hash_refresh_token(&refresh_token),
            state.clock.now_ms(),
        )
        .await?;
    Ok(session_body(state, user, &session_id, refresh_token))
}

fn session_body(
    state: &SharedState,
    user: &UserRow,
    session_id: &str,
    refresh_token: String,
) -> SessionOut {
    // After a revocation, `iat` is never in the revoked second (see `Revocations::issue_secs`).
    let iat = state
        .control
        .revocations
        .issue_secs(&user.id, state.clock.now_secs());
    let issued = state.jwt.issue(&user.id, &user.email, session_id, iat);
    SessionOut {
        access_token: issued.token,
        token_type: "bearer".into(),
        expires_in: issued.expires_in,
        expires_at: issued.expires_at,
        refresh_token,
        user: user_body(user),
    }
}

/// A session as GoTrue answers it (`tandem_protocol::Session`'s fields and more).
#[derive(Serialize)]
pub struct SessionOut {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub expires_at: i64,
    pub refresh_token: String,
    pub user: UserOut,
}

/// A user as GoTrue answers it: `tandem_protocol::User`'s fields (`id`, `email`, `created_at`)
/// and those of GoTrue's user object a client reads. Accounts here are email accounts confirmed
/// at sign-up, without metadata or other identities.
#[derive(Serialize)]
pub struct UserOut {
    pub id: String,
    pub aud: &'static str,
    pub role: &'static str,
    pub email: String,
    pub email_confirmed_at: String,
    pub phone: &'static str,
    pub confirmed_at: String,
    pub app_metadata: Value,
    pub user_metadata: Value,
    pub identities: Vec<Value>,
    pub created_at: String,
    pub updated_at: String,
    pub is_anonymous: bool,
}

fn user_body(user: &UserRow) -> UserOut {
    let created_at = rfc3339_from_ms(user.created_at_ms);
    UserOut {
        id: user.id.clone(),
        aud: crate::jwt::AUDIENCE,
        role: crate::jwt::AUDIENCE,
        email: user.email.clone(),
        email_confirmed_at: created_at.clone(),
        phone: "",
        confirmed_at: created_at.clone(),
        app_metadata: json!({"provider": "email", "providers": ["email"]}),
        user_metadata: json!({}),
        identities: Vec::new(),
        created_at: created_at.clone(),
        updated_at: created_at,
        is_anonymous: false,
    }
}

/// `GET /auth/v1/settings`, as GoTrue's: email sign-up on and confirmed at once, nothing else.
pub async fn settings(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "external": {"email": true, "phone": false, "anonymous_users": false},
        "disable_signup": false,
        "mailer_autoconfirm": true,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": false,
        "password_min_length": state.min_password_chars,
    }))
}

/// `GET /auth/v1/health`, as GoTrue's.
pub async fn health() -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "name": "tandem-server",
        "description": "Tandem's own auth, answering as GoTrue (Supabase Auth) does",
    }))
}

/// The header in which GoTrue's clients (supabase-js since 2024) ask for, and GoTrue answers
/// with, the API version whose error bodies are `{"code": "<error code>", "message"}`.
const API_VERSION: &str = "x-supabase-api-version";
/// The one API version of that kind there is.
const API_2024_01_01: &str = "2024-01-01";

/// The error bodies of `/auth/v1`, beside the protocol's `error` and `error_description` (OAuth
/// clients read those), as GoTrue's: `code` (the status), `error_code` and `msg`; or, for a
/// request with `X-Supabase-Api-Version: 2024-01-01` or later, `code` (the error code) and
/// `message`, with that header on the answer. A weak password adds `weak_password.reasons`.
pub async fn gotrue_errors(request: Request, next: Next) -> Response {
    let versioned = request
        .headers()
        .get(API_VERSION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() >= API_2024_01_01);
    let response = next.run(request).await;
    let Some(parts) = response.extensions().get::<ErrorParts>().cloned() else {
        return response;
    };
    let mut body = if versioned {
        json!({
            "error": parts.code.as_str(),
            "error_description": parts.description,
            "code": gotrue_code(&parts),
            "message": parts.description,
        })
    } else {
        json!({
            "error": parts.code.as_str(),
            "error_description": parts.description,
            "code": parts.status.as_u16(),
            "error_code": gotrue_code(&parts),
            "msg": parts.description,
        })
    };
    if parts.code == ErrorCode::WeakPassword {
        body["weak_password"] = json!({"reasons": ["length"]});
    }
    let bytes = serde_json::to_vec(&body).expect("JSON values always serialise");
    let (mut head, _) = response.into_parts();
    head.headers.remove(CONTENT_LENGTH);
    if versioned {
        head.headers.insert(
            axum::http::HeaderName::from_static(API_VERSION),
            axum::http::HeaderValue::from_static(API_2024_01_01),
        );
    }
    Response::from_parts(head, Body::from(bytes))
}
