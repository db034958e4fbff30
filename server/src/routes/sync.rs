//! `/sync/v1/push` and `/sync/v1/pull`. The request's shape is checked here (a bad shape refuses
//! the whole request); the per-mutation rules are in `crate::push`, the storage in `crate::storage`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};

use axum::response::{IntoResponse, Response};
use tandem_protocol::{
    group_spans, is_valid_id, AccountOut, Hlc, MutationType, PullForm, PullRequest, PushRequest,
    PushResponse, Scope, StreamEntry, StreamKey, StreamPullRequest, DEFAULT_PULL_LIMIT, MAX_ID_LEN,
    MAX_PULL_LIMIT,
};

use super::{AuthUser, JsonBody, SharedState};
use crate::clock::{is_rfc3339, rfc3339_from_ms};
use crate::cursor::Cursor;
use crate::error::ApiError;
use crate::storage::{ChangeRow, MultiPull, PullJob, PushJob, StreamStatus};

/// `POST /sync/v1/push`.
pub async fn push(
    State(state): State<SharedState>,
    user: AuthUser,
    JsonBody(request): JsonBody<PushRequest>,
) -> Result<Json<PushResponse>, ApiError> {
    state.traffic.push(state.clock.now_ms());
    check_push_shape(&request, state.max_batch)?;
    check_push_streams(&request, &state.schema)?;
    let count = request.mutations.len();
    // Clients from before edit times get the answer they always got.
    let knows_times = request.mutations.iter().any(|m| m.edited_at.is_some());
    // One reading of the clock: edit times are clamped by it, and the answer shows it, so the
    // client cuts its own copies of them exactly as the server did.
    let now_ms = state.clock.now_ms();
    let deletes: Vec<bool> = request
        .mutations
        .iter()
        .map(|m| m.kind == MutationType::Delete)
        .collect();
    let job = PushJob {
        user_id: user.user_id.clone(),
        mutations: request.mutations,
        schema: state.schema.clone(),
        now_ms,
        client_id: request.client_id.clone(),
    };
    let client_id = request.client_id;
    let started = std::time::Instant::now();
    let outcome = state.storage.push(job).await;
    state.metrics.push_took(started.elapsed());
    let outcome = outcome?.ok_or_else(ApiError::account_gone)?;
    state.metrics.push_results(&deletes, &outcome.results);
    // PostgreSQL pokes every instance (this one included) through NOTIFY after commit.
    if !state.storage.notifies_changes() {
        if let Some(seq) = outcome.new_seq {
            state
                .hub
                .publish_push(&user.user_id, seq, &user.user_id, &client_id);
        }
        for (stream, seq) in &outcome.stream_seqs {
            state
                .hub
                .publish_push(stream, *seq, &user.user_id, &client_id);
        }
    }
    tracing::info!(user_id = %user.user_id, mutations = count, "push");
    Ok(Json(PushResponse {
        results: outcome.results,
        server_time: knows_times.then(|| server_time(now_ms)),
    }))
}

/// What serde cannot see: batch size, id syntax, `clientTime`, and a payload on every upsert.
fn check_push_shape(request: &PushRequest, max_batch: usize) -> Result<(), ApiError> {
    if request.mutations.len() > max_batch {
        return Err(ApiError::batch_too_large(max_batch));
    }
    if !is_valid_id(&request.client_id) {
        return Err(ApiError::invalid_request(id_rule("clientId")));
    }
    for (i, m) in request.mutations.iter().enumerate() {
        let bad = |what: &str| Err(ApiError::invalid_request(format!("mutations[{i}].{what}")));
        if !is_valid_id(&m.op_id) {
            return bad(&id_rule("opId"));
        }
        if !is_valid_id(&m.entity_id) {
            return bad(&id_rule("entityId"));
        }
        if !is_rfc3339(&m.client_time) {
            return bad("clientTime must be an RFC 3339 time");
        }
        if m.kind == MutationType::Upsert && m.payload.is_none() {
            return bad("payload is required for an upsert");
        }
    }
    if let Err((i, why)) = group_spans(&request.mutations) {
        return Err(ApiError::invalid_request(format!("mutations[{i}].{why}")));
    }
    Ok(())
}

/// Which stream each mutation writes, from its collection's scope and its `space`: a space
/// collection needs a `space`, no other takes one, and a group stays in one stream. A mutation
/// of a collection the schema does not know is judged per mutation (`unknown_entity`); its stream
/// for the group rule is its `space`'s, or the user's.
fn check_push_streams(
    request: &PushRequest,
    schema: &tandem_protocol::Schema,
) -> Result<(), ApiError> {
    let mut streams = Vec::with_capacity(request.mutations.len());
    for (i, m) in request.mutations.iter().enumerate() {
        let bad = |what: String| Err(ApiError::invalid_request(format!("mutations[{i}].{what}")));
        if let Some(space) = m.space.as_deref() {
            if !is_valid_id(space) {
                return bad(id_rule("space"));
            }
        }
        let stream = match schema.scope_of(&m.entity) {
            None => match &m.space {
                Some(space) => StreamKey::Space(space.clone()),
                None => StreamKey::User,
            },
            Some(scope) => match StreamKey::for_scope(scope, m.space.as_deref()) {
                Some(stream) => stream,
                None if scope == Scope::Space => {
                    return bad(format!(
                        "space is required: {} is a space collection",
                        m.entity
                    ))
                }
                None => {
                    return bad(format!(
                        "space is only for space collections: {} is not one",
                        m.entity
                    ))
                }
            },
        };
        streams.push(stream);
    }
    // `check_push_shape` checked the groups' shape already.
    for span in group_spans(&request.mutations).unwrap_or_default() {
        if let Some(i) = span.clone().find(|&i| streams[i] != streams[span.start]) {
            return Err(ApiError::invalid_request(format!(
                "mutations[{i}].groupId: a group's mutations must all be in one stream (the same space, or none)"
            )));
        }
    }
    Ok(())
}

/// The server's clock as an edit time, for the client's hybrid logical clock.
fn server_time(now_ms: i64) -> Hlc {
    Hlc::new(now_ms, 0, tandem_protocol::hlc::SERVER_NODE)
}

/// The id rule of `is_valid_id`, as an error text about `field`.
fn id_rule(field: &str) -> String {
    format!("{field} must be 1..{MAX_ID_LEN} characters of [A-Za-z0-9_.:-]")
}

/// `POST /sync/v1/pull`: the cursor form (`{"cursor", "limit"}`, the user's own stream, answered
/// as before spaces) or the stream form (`{"streams", "accountSeq", "limit"}`, every stream the
/// user may read).
pub async fn pull(
    State(state): State<SharedState>,
    user: AuthUser,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    state.traffic.pull(state.clock.now_ms());
    let form = PullForm::from_value(body)
        .map_err(|e| ApiError::invalid_request(format!("malformed request body: {e}")))?;
    let answer = match form {
        PullForm::Cursor(request) => pull_cursor(&state, &user, request).await?.into_response(),
        PullForm::Streams(request) => pull_streams(&state, &user, request).await?.into_response(),
    };
    // The operator's "last pull" (at most one write a minute per user); never fails the pull.
    let now_ms = state.clock.now_ms();
    if state.pull_notes.due(&user.user_id, now_ms) {
        if let Err(e) = state.storage.note_pull(&user.user_id, now_ms).await {
            tracing::warn!(user_id = %user.user_id, error = %e, "cannot record the pull time");
        }
    }
    Ok(answer)
}

/// The cursor form: the user's own stream, exactly as before spaces.
async fn pull_cursor(
    state: &SharedState,
    user: &AuthUser,
    request: PullRequest,
) -> Result<Json<PullOut>, ApiError> {
    let limit = page_limit(request.limit)?;
    let cursor = match &request.cursor {
        None => None,
        Some(text) => Some(state.cursors.decode(&user.user_id, text).ok_or_else(|| {
            ApiError::invalid_request("the cursor was not issued to this user by this server")
        })?),
    };
    let after_seq = cursor.map_or(0, |c| c.seq);
    let started = std::time::Instant::now();
    let page = state.storage.pull(&user.user_id, after_seq, limit).await;
    state.metrics.pull_took(started.elapsed());
    let page = page?.ok_or_else(ApiError::account_gone)?;
    if after_seq > page.user_seq {
        return Err(ApiError::invalid_request(
            "the cursor is ahead of this user's changes",
        ));
    }
    // A null cursor is a full pull and never expires.
    if cursor.is_some_and(|c| c.expired(page.purged_seq)) {
        return Err(ApiError::cursor_expired());
    }
    let has_more = page.remaining > 0;
    // On the last page the cursor may move to the snapshot's sequence: nothing up to it is unseen.
    let next_seq = match page.changes.last() {
        Some(last) if has_more => last.seq,
        _ => page.user_seq.max(after_seq),
    };
    // The purge state read in the page's own snapshot: every tombstone purged by then was gone
    // before this page was read, so only later purges can take one this holder has not pulled.
    let next = Cursor {
        seq: next_seq,
        purged_seq: page.purged_seq,
    };
    let changes = page
        .changes
        .into_iter()
        .map(change_out)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(PullOut {
        changes,
        cursor: state.cursors.encode(&user.user_id, next),
        has_more,
        remaining: page.remaining,
        server_time: server_time(state.clock.now_ms()),
    }))
}

/// The stream form: a page of every stream the user may read (docs/protocol.md, "Spaces and
/// public collections"). Cursors are checked first (a cursor not issued to this user for that
/// stream fails the request, whatever the stream); then, in the page's snapshot, a named stream
/// the user may not read is `gone`, one a purge passed `expired` (that stream only).
async fn pull_streams(
    state: &SharedState,
    user: &AuthUser,
    request: StreamPullRequest,
) -> Result<Json<StreamPullOut>, ApiError> {
    let limit = page_limit(request.limit)?;
    let mut named = HashMap::with_capacity(request.streams.len());
    for (stream, text) in &request.streams {
        let cursor = match text {
            None => None,
            Some(text) => Some(
                state
                    .cursors
                    .decode_stream(&user.user_id, stream, text)
                    .ok_or_else(|| {
                        ApiError::invalid_request(format!(
                            "the cursor of {stream} was not issued to this user for this stream by this server"
                        ))
                    })?,
            ),
        };
        named.insert(stream.as_wire(), cursor);
    }
    let now_ms = state.clock.now_ms();
    let job = PullJob {
        user_id: user.user_id.clone(),
        named,
        account_seq: request.account_seq,
        limit,
        now_ms,
    };
    let started = std::time::Instant::now();
    let page = state.storage.pull_streams(job).await;
    state.metrics.pull_took(started.elapsed());
    let page = match page?.ok_or_else(ApiError::account_gone)? {
        MultiPull::Page(page) => page,
        MultiPull::AheadOfHead(stream) => {
            return Err(ApiError::invalid_request(format!(
                "the cursor of {stream} is ahead of that stream's changes"
            )))
        }
    };
    let mut streams = BTreeMap::new();
    for (wire, status) in page.streams {
        let Some(key) = StreamKey::parse(&wire) else {
            continue;
        };
        let entry = match status {
            StreamStatus::Ok(cursor) => {
                StreamEntry::ok(state.cursors.encode_stream(&user.user_id, &key, cursor))
            }
            StreamStatus::Gone => {
                tracing::info!(user_id = %user.user_id, stream = %wire, code = "gone", "pull: stream not readable");
                StreamEntry::gone()
            }
            StreamStatus::Expired => StreamEntry::expired(),
        };
        streams.insert(key, entry);
    }
    let changes = page
        .changes
        .into_iter()
        .map(|(wire, row)| {
            let space = wire
                .strip_prefix(tandem_protocol::SPACE_STREAM_PREFIX)
                .map(str::to_string);
            change_out(row).map(|c| ChangeOut { space, ..c })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(StreamPullOut {
        changes,
        streams,
        has_more: page.has_more,
        remaining: page.remaining,
        account: page.account.map(super::spaces::account_out),
        server_time: server_time(now_ms),
    }))
}

/// A stream-form pull answer that embeds stored documents as they are (the wire shape is
/// `tandem_protocol::StreamPullResponse`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamPullOut {
    changes: Vec<ChangeOut>,
    streams: BTreeMap<StreamKey, StreamEntry>,
    has_more: bool,
    remaining: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<AccountOut>,
    server_time: Hlc,
}

fn page_limit(limit: Option<i64>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PULL_LIMIT),
        Some(n) if n < 1 => Err(ApiError::invalid_request(format!(
            "limit must be between 1 and {MAX_PULL_LIMIT}"
        ))),
        Some(n) => Ok(n.min(i64::from(MAX_PULL_LIMIT)) as u32),
    }
}

/// A pull response that embeds stored documents as they are, without re-parsing them into values
/// (the wire shape is `tandem_protocol::PullResponse`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullOut {
    changes: Vec<ChangeOut>,
    cursor: String,
    has_more: bool,
    remaining: u64,
    server_time: Hlc,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeOut {
    entity: String,
    entity_id: String,
    /// Space records only: the space they belong to.
    #[serde(skip_serializing_if = "Option::is_none")]
    space: Option<String>,
    version: i64,
    deleted: bool,
    doc: Option<Box<RawValue>>,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edited_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field_edited_at: Option<Box<RawValue>>,
}

fn change_out(row: ChangeRow) -> Result<ChangeOut, ApiError> {
    let doc = match row.doc.filter(|_| !row.deleted) {
        Some(text) => Some(RawValue::from_string(text).map_err(|e| ApiError::internal(&e))?),
        None => None,
    };
    let field_edited_at = match row.field_edited_at.filter(|_| !row.deleted) {
        Some(text) => Some(RawValue::from_string(text).map_err(|e| ApiError::internal(&e))?),
        None => None,
    };
    Ok(ChangeOut {
        field_edited_at,
        edited_at: row.edited_at,
        entity: row.entity,
        entity_id: row.entity_id,
        space: None,
        version: row.version,
        deleted: row.deleted,
        doc,
        updated_at: rfc3339_from_ms(row.updated_at_ms),
        group_id: row.group_id,
    })
}
