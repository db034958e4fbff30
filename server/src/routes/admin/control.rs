//! The control plane's admin routes (docs/protocol.md "Admin API"): the overview, the kill
//! switch (pauses, globally or per user) and revoking a user's sessions.
//!
//! - `GET /admin/v1/overview` → `{"users", "liveStreams", "paused", "pauses",
//!   "pushesPerMinute", "pullsPerMinute", "instance", "version"}` (streams and traffic: this
//!   instance's);
//! - `GET /admin/v1/pauses` → `{"pauses": [Pause]}`;
//! - `POST /admin/v1/pause` `{"user"?, "retryAfterSecs"?, "reason"?}` → `{"pause": Pause}`
//!   (pausing again updates the pause);
//! - `POST /admin/v1/resume` `{"user"?}` → `{"resumed": bool}`;
//! - `POST /admin/v1/users/{id}/revoke` → `{"sessionsRevoked": n}`.
//!
//! `user` (and `{id}`) is a user id or an email; an unknown one answers `404 not_found`. Every
//! change is written to the database, then this instance's caches are reloaded at once (on
//! PostgreSQL the other instances reload on the `control` notice the write sent).

use axum::extract::{FromRequest, Path, Request, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{audit, Admin, Outcome};
use crate::clock::rfc3339_from_ms;
use crate::control::{DEFAULT_RETRY_AFTER_SECS, GLOBAL};
use crate::error::ApiError;
use crate::routes::{declared_length, JsonBody, SharedState};
use crate::storage::PauseRow;

/// The longest `Retry-After` a pause may ask for (a day).
pub const MAX_RETRY_AFTER_SECS: i64 = 86_400;

/// The longest reason of a pause, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// `GET /admin/v1/overview`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    users: u64,
    live_streams: usize,
    paused: bool,
    pauses: usize,
    pushes_per_minute: Vec<u64>,
    pulls_per_minute: Vec<u64>,
    instance: String,
    version: &'static str,
}

pub async fn overview(
    State(state): State<SharedState>,
    _admin: Admin,
) -> Result<Json<Overview>, ApiError> {
    let users = state.storage.user_count().await?;
    let (pushes_per_minute, pulls_per_minute) = state.traffic.per_minute(state.clock.now_ms());
    Ok(Json(Overview {
        users,
        live_streams: state.stream_slots.total(),
        paused: state.pauses.global().is_some(),
        pauses: state.pauses.len(),
        pushes_per_minute,
        pulls_per_minute,
        instance: state.instance_id.clone(),
        version: env!("CARGO_PKG_VERSION"),
    }))
}

/// A pause as the admin API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseBody {
    /// `*` (everyone) or a user id.
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    paused_at: String,
    retry_after_secs: i64,
    reason: String,
}

impl From<PauseRow> for PauseBody {
    fn from(row: PauseRow) -> Self {
        Self {
            scope: row.scope,
            email: row.email,
            paused_at: rfc3339_from_ms(row.paused_at_ms),
            retry_after_secs: row.retry_after_secs,
            reason: row.reason,
        }
    }
}

#[derive(Serialize)]
pub struct Pauses {
    pauses: Vec<PauseBody>,
}

/// `GET /admin/v1/pauses`: from the database (not the cache), with each user's email.
pub async fn pauses(
    State(state): State<SharedState>,
    _admin: Admin,
) -> Result<Json<Pauses>, ApiError> {
    let rows = state.storage.pauses().await?;
    Ok(Json(Pauses {
        pauses: rows.into_iter().map(PauseBody::from).collect(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PauseRequest {
    user: Option<String>,
    retry_after_secs: Option<i64>,
    reason: Option<String>,
}

#[derive(Serialize)]
pub struct Paused {
    pause: PauseBody,
}

/// `POST /admin/v1/pause`.
pub async fn pause(
    State(state): State<SharedState>,
    admin: Admin,
    OptionalJson(request): OptionalJson<PauseRequest>,
) -> Result<Json<Paused>, ApiError> {
    let refused = |subject: &str, e: ApiError| {
        audit(&admin, "pause", subject, Outcome::Refused, e.code.as_str());
        e
    };
    let retry_after_secs = request.retry_after_secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS);
    if !(1..=MAX_RETRY_AFTER_SECS).contains(&retry_after_secs) {
        return Err(refused(
            "-",
            ApiError::invalid_request(format!("retryAfterSecs must be 1..{MAX_RETRY_AFTER_SECS}")),
        ));
    }
    let reason = request.reason.unwrap_or_default();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(refused(
            "-",
            ApiError::invalid_request(format!(
                "reason must be at most {MAX_REASON_CHARS} characters"
            )),
        ));
    }
    let scope = match &request.user {
        None => GLOBAL.to_string(),
        Some(user) => resolve(&state, user).await.map_err(|e| refused("-", e))?,
    };
    let row = PauseRow {
        scope: scope.clone(),
        email: None,
        paused_at_ms: state.clock.now_ms(),
        retry_after_secs,
        reason,
    };
    if let Err(e) = state.storage.put_pause(row).await {
        return Err(refused(&scope, e.into()));
    }
    reload(&state).await;
    audit(
        &admin,
        "pause",
        &scope,
        Outcome::Done,
        &format!("retry_after_secs={retry_after_secs}"),
    );
    let stored = state
        .storage
        .pauses()
        .await?
        .into_iter()
        .find(|p| p.scope == scope)
        .ok_or_else(|| ApiError::internal(&"a pause just stored is missing"))?;
    Ok(Json(Paused {
        pause: stored.into(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResumeRequest {
    user: Option<String>,
}

#[derive(Serialize)]
pub struct Resumed {
    resumed: bool,
}

/// `POST /admin/v1/resume`: `resumed` is `false` when there was no such pause.
pub async fn resume(
    State(state): State<SharedState>,
    admin: Admin,
    OptionalJson(request): OptionalJson<ResumeRequest>,
) -> Result<Json<Resumed>, ApiError> {
    let scope = match &request.user {
        None => GLOBAL.to_string(),
        Some(user) => resolve(&state, user).await.inspect_err(|e| {
            audit(&admin, "resume", "-", Outcome::Refused, e.code.as_str());
        })?,
    };
    let resumed = match state.storage.delete_pause(&scope).await {
        Ok(resumed) => resumed,
        Err(e) => {
            audit(&admin, "resume", &scope, Outcome::Refused, "storage");
            return Err(e.into());
        }
    };
    reload(&state).await;
    let outcome = if resumed {
        Outcome::Done
    } else {
        Outcome::Unchanged
    };
    audit(&admin, "resume", &scope, outcome, "");
    Ok(Json(Resumed { resumed }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    sessions_revoked: u64,
}

/// `POST /admin/v1/users/{id}/revoke`: every sign-in of the user ends (refresh tokens refused)
/// and their access tokens issued up to now are refused `401` (`users.tokens_valid_after`).
pub async fn revoke(
    State(state): State<SharedState>,
    admin: Admin,
    Path(user): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let user_id = resolve(&state, &user).await.inspect_err(|e| {
        audit(&admin, "revoke", "-", Outcome::Refused, e.code.as_str());
    })?;
    let now_ms = state.clock.now_ms();
    let (sessions_revoked, valid_after_ms) = match state.storage.revoke_user(&user_id, now_ms).await
    {
        Ok(revoked) => revoked,
        Err(e) => {
            audit(&admin, "revoke", &user_id, Outcome::Refused, "storage");
            return Err(e.into());
        }
    };
    // This instance refuses the old tokens from the next request on; the others on the notice.
    state.control.revocations.insert(&user_id, valid_after_ms);
    audit(
        &admin,
        "revoke",
        &user_id,
        Outcome::Done,
        &format!("sessions={sessions_revoked}"),
    );
    Ok(Json(Revoked { sessions_revoked }))
}

/// The id of the user `user` names (an id or an email), or `404 not_found`.
async fn resolve(state: &SharedState, user: &str) -> Result<String, ApiError> {
    state
        .storage
        .resolve_user(user)
        .await?
        .ok_or_else(ApiError::unknown_user)
}

/// Reloads this instance's caches after a change (a failure is logged: the backstop reload
/// catches up).
async fn reload(state: &SharedState) {
    if let Err(e) = state.control.reload().await {
        tracing::warn!(error = %e, "cannot reload the pauses after a change; the backstop will");
    }
}

/// A JSON body that may be left out: no body at all (no `Content-Type`, no or zero
/// `Content-Length`) is `T::default()`, so `curl -X POST …/pause` pauses everyone; anything
/// else is read as [`JsonBody`] reads it.
pub struct OptionalJson<T>(pub T);

impl<T: serde::de::DeserializeOwned + Default> FromRequest<SharedState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, ApiError> {
        let headers = request.headers();
        let no_body = !headers.contains_key(axum::http::header::CONTENT_TYPE)
            && declared_length(headers).unwrap_or(0) == 0
            && !headers.contains_key(axum::http::header::TRANSFER_ENCODING);
        if no_body {
            return Ok(Self(T::default()));
        }
        let JsonBody(value) = JsonBody::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}
