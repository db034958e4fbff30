//! `POST /admin/v1/public/write` `{"writes": [{"collection", "id", "doc": {…}|null}]}` (at most
//! 1,000): authoritative writes of public records (no `baseVersion`, no conflicts; `null`
//! deletes, cascading to public children; a document equal to the stored one changes nothing).
//! Validation failures refuse the whole request (`422 validation_failed`, naming the index).
//! One transaction under the `public` stream's lock, one notice. A write naming an attachment
//! the server does not hold is refused the same way (`writes[i]: rejected attachment_missing`).

use axum::extract::State;
use axum::Json;
use tandem_protocol::{
    is_valid_id, AdminResult, AdminWriteRequest, AdminWriteResponse, Scope, MAX_ADMIN_WRITES,
    MAX_ID_LEN,
};

use super::{audit, Admin, Outcome};
use crate::error::ApiError;
use crate::routes::{JsonBody, SharedState};
use crate::storage::AdminWrite;

/// `POST /admin/v1/public/write`.
pub async fn public_write(
    State(state): State<SharedState>,
    admin: Admin,
    JsonBody(request): JsonBody<AdminWriteRequest>,
) -> Result<Json<AdminWriteResponse>, ApiError> {
    let refused = |e: ApiError| {
        audit(
            &admin,
            "public_write",
            "public",
            Outcome::Refused,
            e.code.as_str(),
        );
        e
    };
    if request.writes.len() > MAX_ADMIN_WRITES {
        return Err(refused(ApiError::batch_too_large(MAX_ADMIN_WRITES)));
    }
    let writes = check_writes(&state.schema, request.writes).map_err(refused)?;
    let count = writes.len();
    let (results, new_seq) = state
        .storage
        .admin_write(&state.schema, writes, state.clock.now_ms())
        .await
        .map_err(|e| refused(e.into()))?
        .map_err(|why| refused(ApiError::validation_failed(why)))?;
    if let Some(seq) = new_seq {
        // PostgreSQL pokes every instance through NOTIFY after commit.
        if !state.storage.notifies_changes() {
            state.hub.publish("public", seq);
        }
    }
    let changed = results.iter().filter(|r| r.changed).count();
    let outcome = if changed > 0 {
        Outcome::Done
    } else {
        Outcome::Unchanged
    };
    audit(
        &admin,
        "public_write",
        "public",
        outcome,
        &format!("writes={count} changed={changed}"),
    );
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
