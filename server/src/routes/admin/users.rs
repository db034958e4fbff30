//! Users and their data (docs/design/operations.md §2): `GET /admin/v1/users` (search and
//! paging by email), `GET /admin/v1/users/{id}` (one user's counts, spaces and sessions),
//! `DELETE /admin/v1/users/{id}` (the user and everything of theirs; their spaces pass on or
//! go) and `GET /admin/v1/rejections` (recent rejected changes with their codes).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use tandem_protocol::{
    is_valid_id, DeletedUserOut, RejectionOut, RejectionsOut, TransferredSpace, UserDetailOut,
    UserSession, UserSpace, UserSummary, UsersPage, DEFAULT_REJECTIONS_PAGE, DEFAULT_USERS_PAGE,
    MAX_REJECTIONS_PAGE, MAX_USERS_PAGE,
};

use super::{audit, Admin, Outcome};
use crate::auth::normalize_email;
use crate::clock::rfc3339_from_ms;
use crate::error::ApiError;
use crate::routes::SharedState;
use crate::storage::UserSummaryRow;

/// Longest `query` or `after` accepted (an email is at most 254 characters).
const MAX_QUERY_CHARS: usize = 320;

/// The query of `GET /admin/v1/users`; every value is read as text, so a malformed one gets
/// the protocol's `400 invalid_request` naming it, not the framework's own answer.
#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    query: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /admin/v1/users?query=&limit=&after=`.
pub async fn list(
    State(state): State<SharedState>,
    _admin: Admin,
    q: Result<Query<UsersQuery>, QueryRejection>,
) -> Result<Json<UsersPage>, ApiError> {
    let Query(q) = q.map_err(malformed_query)?;
    let limit = limit_param(q.limit.as_deref(), DEFAULT_USERS_PAGE, MAX_USERS_PAGE)?;
    let query = text_param("query", q.query.as_deref())?.map(|s| normalize_email(&s));
    let after = text_param("after", q.after.as_deref())?;
    let (rows, more) = state
        .storage
        .list_users(query.as_deref(), after.as_deref(), limit)
        .await?;
    let next = more.then(|| rows.last().map(|u| u.email.clone())).flatten();
    Ok(Json(UsersPage {
        users: rows.into_iter().map(|u| summary(&state, u)).collect(),
        next,
    }))
}

/// `GET /admin/v1/users/{id}`.
pub async fn detail(
    State(state): State<SharedState>,
    _admin: Admin,
    Path(user): Path<String>,
) -> Result<Json<UserDetailOut>, ApiError> {
    let user_id = user_id_of(&state, &user).await?;
    let detail = state
        .storage
        .user_detail(&user_id)
        .await?
        .ok_or_else(ApiError::unknown_user)?;
    let live_streams = state.stream_slots.of(&user_id) as u64;
    Ok(Json(UserDetailOut {
        user: summary(&state, detail.user),
        collections: detail.collections.into_iter().collect(),
        spaces: detail
            .spaces
            .into_iter()
            .map(|s| UserSpace {
                id: s.id,
                name: s.name,
                role: s.role,
            })
            .collect(),
        sessions: detail
            .sessions
            .into_iter()
            .map(|s| UserSession {
                id: s.id,
                created_at: rfc3339_from_ms(s.created_at_ms),
                last_used_at: rfc3339_from_ms(s.last_used_at_ms),
            })
            .collect(),
        live_streams,
    }))
}

/// `DELETE /admin/v1/users/{id}`: the user's account, sign-ins, records, op ids, blob holds,
/// uploads, pauses and rejections; their memberships (a space they were the only owner of
/// passes to the member who joined first, a space with no other member is deleted).
pub async fn delete(
    State(state): State<SharedState>,
    admin: Admin,
    Path(user): Path<String>,
) -> Result<Json<DeletedUserOut>, ApiError> {
    let refused = |subject: &str| {
        audit(
            &admin,
            "delete_user",
            subject,
            Outcome::Refused,
            "not_found",
        );
        ApiError::unknown_user()
    };
    // The subject of the audit line is an id, never an email.
    let user_id = match user_id_of(&state, &user).await {
        Ok(id) => id,
        Err(e) if e.code == tandem_protocol::ErrorCode::NotFound => {
            let subject = if user.contains('@') {
                "-"
            } else {
                user.as_str()
            };
            return Err(refused(subject));
        }
        Err(e) => return Err(e),
    };
    let Some(deleted) = state
        .storage
        .delete_user(&user_id, state.clock.now_ms())
        .await?
    else {
        return Err(refused(&user_id));
    };
    // PostgreSQL sent the account notices inside the transaction; SQLite has one process. The
    // deleted user's own event streams are poked too: their next pull answers `401`.
    if !state.storage.notifies_changes() {
        for member in deleted.concerned.iter().chain([&user_id]) {
            state.hub.publish_account(member);
        }
    }
    // A pause of the user went with them: this instance's cache forgets it now (others on the
    // PostgreSQL notice).
    if let Err(e) = state.control.reload().await {
        tracing::warn!(error = %e, "cannot reload the pauses after deleting a user; the backstop will");
    }
    for upload in &deleted.uploads {
        state.uploads.discard(upload).await;
    }
    let detail = format!(
        "records={} spaces_transferred={} spaces_deleted={}",
        deleted.records,
        deleted.spaces_transferred.len(),
        deleted.spaces_deleted.len()
    );
    audit(&admin, "delete_user", &user_id, Outcome::Done, &detail);
    Ok(Json(DeletedUserOut {
        records: deleted.records,
        spaces_transferred: deleted
            .spaces_transferred
            .into_iter()
            .map(|(id, new_owner)| TransferredSpace { id, new_owner })
            .collect(),
        spaces_deleted: deleted.spaces_deleted,
    }))
}

/// The query of `GET /admin/v1/rejections`.
#[derive(Debug, Deserialize)]
pub struct RejectionsQuery {
    user: Option<String>,
    limit: Option<String>,
}

/// `GET /admin/v1/rejections?user=&limit=`: newest first; `user` is an id or an email (an
/// unknown email answers `404 not_found`, an id nobody has an empty list).
pub async fn rejections(
    State(state): State<SharedState>,
    _admin: Admin,
    q: Result<Query<RejectionsQuery>, QueryRejection>,
) -> Result<Json<RejectionsOut>, ApiError> {
    let Query(q) = q.map_err(malformed_query)?;
    let limit = limit_param(
        q.limit.as_deref(),
        DEFAULT_REJECTIONS_PAGE,
        MAX_REJECTIONS_PAGE,
    )?;
    let user = match text_param("user", q.user.as_deref())? {
        Some(user) => Some(user_id_of(&state, &user).await?),
        None => None,
    };
    let rows = state.storage.rejections(user.as_deref(), limit).await?;
    Ok(Json(RejectionsOut {
        rejections: rows
            .into_iter()
            .map(|r| RejectionOut {
                at: rfc3339_from_ms(r.at_ms),
                user_id: r.user_id,
                email: r.email,
                stream: r.rejection.stream,
                collection: r.rejection.collection,
                id: r.rejection.entity_id,
                op_id: r.rejection.op_id,
                reason: r.rejection.reason,
            })
            .collect(),
    }))
}

/// The id of the user a path or parameter names: an id as it is (a user id is never an email),
/// an email (with `@`) looked up as sign-in compares it. `404 not_found` for an unknown email
/// or a malformed id; an unknown id is the caller's to find out.
async fn user_id_of(state: &SharedState, user: &str) -> Result<String, ApiError> {
    if !user.contains('@') {
        return if is_valid_id(user) {
            Ok(user.to_string())
        } else {
            Err(ApiError::unknown_user())
        };
    }
    state
        .storage
        .resolve_user(user)
        .await?
        .ok_or_else(ApiError::unknown_user)
}

fn summary(state: &SharedState, u: UserSummaryRow) -> UserSummary {
    UserSummary {
        paused: user_paused(state, &u.id),
        live_streams: state.stream_slots.of(&u.id) as u64,
        id: u.id,
        email: u.email,
        created_at: rfc3339_from_ms(u.created_at_ms),
        last_push_at: u.last_push_at_ms.map(rfc3339_from_ms),
        last_pull_at: u.last_pull_at_ms.map(rfc3339_from_ms),
        records: u.records,
    }
}

/// Whether a pause of this user (not the global one) is in force, from this instance's cache.
fn user_paused(state: &SharedState, user_id: &str) -> bool {
    state.pauses.user_paused(user_id)
}

/// A query string that does not parse (a parameter given twice, bad percent-encoding): `400
/// invalid_request`, JSON like every error.
fn malformed_query(e: QueryRejection) -> ApiError {
    ApiError::invalid_request(format!("malformed query: {}", e.body_text()))
}

/// `limit`: absent → `default`; else an integer in 1..=`max` (`400 invalid_request` otherwise).
fn limit_param(text: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_request(format!(
            "limit must be an integer between 1 and {max}"
        ))),
    }
}

/// A text parameter: trimmed, empty as absent, at most [`MAX_QUERY_CHARS`] characters.
fn text_param(name: &str, text: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_QUERY_CHARS || text.chars().any(char::is_control) {
        return Err(ApiError::invalid_request(format!(
            "{name} must be at most {MAX_QUERY_CHARS} characters, without control characters"
        )));
    }
    Ok(Some(text.to_string()))
}
