//! `/admin/v1`: the operator's interface, behind the admin token (`--admin-token-file` or
//! `TANDEM_ADMIN_TOKEN`, at least 32 bytes). Without a token configured every `/admin/v1` route
//! answers `404` as an unknown route does; with one, a request without it (a user's JWT
//! included) answers `401 unauthorized`. The token is compared in constant time.
//!
//! `POST /admin/v1/public/write` `{"writes": [{"collection", "id", "doc": {…}|null}]}` (at most
//! 1,000): authoritative writes of public records (no `baseVersion`, no conflicts; `null`
//! deletes, cascading to public children; a document equal to the stored one changes nothing).
//! Validation failures refuse the whole request (`422 validation_failed`, naming the index).
//! One transaction under the `public` stream's lock, one notice.

use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::Json;
use sha2::{Digest, Sha256};
use tandem_protocol::{
    is_valid_id, AdminResult, AdminWriteRequest, AdminWriteResponse, Scope, MAX_ADMIN_WRITES,
    MAX_ID_LEN,
};

use super::{JsonBody, SharedState};
use crate::error::ApiError;
use crate::storage::AdminWrite;

/// A request that presented the admin token.
pub struct Admin;

impl FromRequestParts<SharedState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let Some(expected) = &state.admin_token else {
            return Err(ApiError::not_found());
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match presented {
            Some(token) if same_secret(token, expected) => Ok(Admin),
            _ => {
                tracing::info!("admin request without the admin token");
                Err(ApiError::unauthorized(
                    "admin routes need Authorization: Bearer <admin token>",
                ))
            }
        }
    }
}

/// Constant-time equality of two secrets (compared as digests, so lengths leak nothing either).
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// `POST /admin/v1/public/write`.
pub async fn public_write(
    State(state): State<SharedState>,
    _admin: Admin,
    JsonBody(request): JsonBody<AdminWriteRequest>,
) -> Result<Json<AdminWriteResponse>, ApiError> {
    if request.writes.len() > MAX_ADMIN_WRITES {
        return Err(ApiError::batch_too_large(MAX_ADMIN_WRITES));
    }
    let writes = check_writes(&state.schema, request.writes)?;
    let count = writes.len();
    let (results, new_seq) = state
        .storage
        .admin_write(&state.schema, writes, state.clock.now_ms())
        .await?
        .map_err(|why| {
            tracing::info!(code = "validation_failed", "admin write refused");
            ApiError::validation_failed(why)
        })?;
    if let Some(seq) = new_seq {
        // PostgreSQL pokes every instance through NOTIFY after commit.
        if !state.storage.notifies_changes() {
            state.hub.publish("public", seq);
        }
    }
    let changed = results.iter().filter(|r| r.changed).count();
    tracing::info!(writes = count, changed, "admin public write");
    Ok(Json(AdminWriteResponse {
        results: results
            .into_iter()
            .map(|r| AdminResult {
                id: r.id,
                version: r.version,
                changed: r.changed,
            })
            .collect(),
    }))
}

/// The shape of each write: a public collection of the schema, the id rule, a document valid
/// under the schema. The first failure refuses the request, naming the write's index.
fn check_writes(
    schema: &tandem_protocol::Schema,
    writes: Vec<tandem_protocol::AdminWrite>,
) -> Result<Vec<AdminWrite>, ApiError> {
    writes
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let fail = |why: String| ApiError::validation_failed(format!("writes[{i}]: {why}"));
            let Some(collection) = schema.collection(&w.collection) else {
                return Err(fail(format!("unknown collection {}", w.collection)));
            };
            if collection.scope != Scope::Public {
                return Err(fail(format!("{} is not a public collection", w.collection)));
            }
            if !is_valid_id(&w.id) {
                return Err(fail(format!(
                    "id must be 1..{MAX_ID_LEN} characters of [A-Za-z0-9_.:-]"
                )));
            }
            if let Some(doc) = &w.doc {
                collection
                    .validate_document(&w.collection, &serde_json::Value::Object(doc.clone()))
                    .map_err(|e| fail(e.to_string()))?;
            }
            Ok(AdminWrite {
                collection: w.collection,
                id: w.id,
                doc: w.doc,
            })
        })
        .collect()
}
