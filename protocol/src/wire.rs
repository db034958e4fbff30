//! The wire types of sync protocol v1: the JSON bodies of the auth and sync routes, shared by the
//! client engine and the reference server so the two cannot drift. Field names follow the protocol
//! (camelCase for sync, snake_case for auth, as GoTrue does). `docs/protocol.md` is the prose.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::codes::{AbortCode, ConflictCode, ErrorCode, RejectionCode};
use crate::hlc::{FieldTimes, Hlc};

/// Default page size of a pull when `limit` is not given.
pub const DEFAULT_PULL_LIMIT: u32 = 500;
/// Largest page size of a pull; larger limits are clamped to it.
pub const MAX_PULL_LIMIT: u32 = 1000;
/// Server default for the number of mutations one push may carry.
pub const DEFAULT_MAX_BATCH: usize = 500;
/// Most changes one group (one `write` batch) may hold: a group travels in one push, so it can be
/// no larger than the server's default push limit. The engine refuses a larger `write`.
pub const MAX_GROUP_SIZE: usize = DEFAULT_MAX_BATCH;
/// Name of the SSE event that tells a client to pull.
pub const POKE_EVENT: &str = "poke";

/// A signed-in session, as answered by sign-up and both token grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub access_token: String,
    /// Always `"bearer"`.
    pub token_type: String,
    /// Seconds the access token stays valid.
    pub expires_in: u64,
    /// Unix seconds at which the access token expires.
    pub expires_at: i64,
    pub refresh_token: String,
    pub user: User,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// A UUID.
    pub id: String,
    pub email: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// Longest email accepted, in bytes (RFC 5321's limit on a forward path, less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Body of `POST /auth/v1/signup` and of `POST /auth/v1/token?grant_type=password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordCredentials {
    pub email: String,
    pub password: String,
}

/// Body of `POST /auth/v1/token?grant_type=refresh_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRequest {
    pub refresh_token: String,
}

/// The claims of an access token (a JWT signed with HS256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    /// Always `"authenticated"`.
    pub role: String,
    /// Always `"authenticated"`.
    pub aud: String,
    pub email: String,
    /// The sign-in this token belongs to; logout revokes its refresh tokens.
    pub session_id: String,
}

/// Every error body: `{"error": "<code>", "error_description": "<text>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub error_description: String,
}

/// Whether a mutation writes a document or deletes the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MutationType {
    Upsert,
    Delete,
}

/// One change a client asks the server to apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mutation {
    pub op_id: String,
    pub entity: String,
    pub entity_id: String,
    #[serde(rename = "type")]
    pub kind: MutationType,
    /// `None` (JSON `null`) creates; `Some(n)` changes the record at version `n`.
    #[serde(default)]
    pub base_version: Option<i64>,
    /// The whole document; upserts only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Map<String, Value>>,
    /// When the client made the change, RFC 3339.
    pub client_time: String,
    /// The atomic group (one local `write` batch) the change belongs to: the server applies
    /// every mutation of a push carrying the same `groupId` in one transaction, or none of them.
    /// A group's mutations are contiguous in the push. Absent: the change stands alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The edit time (HLC) of the user's change; the server keeps it per field. Optional: a
    /// change without one is stamped with the server's time at arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Hlc>,
    /// Upserts: the edit time of each field the change sets or removes, where it differs from
    /// `editedAt` (edits coalesced offline keep each field's own time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_edited_at: Option<FieldTimes>,
}

/// The groups of a push, as index ranges into its mutations: each run of mutations carrying the
/// same `groupId`, in order. Mutations without a group are in no range. A group must be one run
/// (its mutations contiguous), its id a valid id (see [`crate::is_valid_id`]) and its size at most
/// [`MAX_GROUP_SIZE`]; otherwise the error names the first offending mutation's index and why.
pub fn group_spans(mutations: &[Mutation]) -> Result<Vec<std::ops::Range<usize>>, (usize, String)> {
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut i = 0;
    while i < mutations.len() {
        let Some(group) = mutations[i].group_id.as_deref() else {
            i += 1;
            continue;
        };
        if !crate::is_valid_id(group) {
            return Err((i, "groupId must be a valid id".into()));
        }
        if !seen.insert(group) {
            return Err((i, "a group's mutations must be contiguous".into()));
        }
        let start = i;
        while i < mutations.len() && mutations[i].group_id.as_deref() == Some(group) {
            i += 1;
        }
        if i - start > MAX_GROUP_SIZE {
            return Err((
                start,
                format!("a group holds at most {MAX_GROUP_SIZE} mutations"),
            ));
        }
        spans.push(start..i);
    }
    Ok(spans)
}

/// Body of `POST /sync/v1/push`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushRequest {
    pub client_id: String,
    pub mutations: Vec<Mutation>,
}

/// Answer to a push: one result per mutation, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
    /// The server's clock when it answered (an HLC of node `server`), for the client's edit clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Hlc>,
}

/// What became of one mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Applied,
    Duplicate,
    Conflict,
    Rejected,
    /// Not applied because another member of its group met a conflict or a rejection (reason
    /// [`AbortCode::GroupFailed`], the failing member in `failedOpId`). Sent only for mutations
    /// that carry a `groupId`.
    Aborted,
}

/// One entry of [`PushResponse::results`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MutationResult {
    pub op_id: String,
    pub status: ResultStatus,
    /// The record's version after the op (applied, duplicate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// A [`ConflictCode`] or a [`RejectionCode`], by `status` (see [`MutationResult::conflict_code`]
    /// and [`MutationResult::rejection_code`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Conflicts only: the record's version, `Some(None)` (JSON null) when there is no record.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_version: Option<Option<i64>>,
    /// Conflicts only: the live document, `Some(None)` (JSON null) when deleted or missing.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_doc: Option<Option<Map<String, Value>>>,
    /// Aborted results only: the opId of the group member whose conflict or rejection kept the
    /// group from applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_op_id: Option<String>,
    /// `unique_violation` conflicts only: the id of the live record (same collection) that holds
    /// the unique key the mutation's document asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
    /// Conflicts only: the edit time of the record's last change (of its delete, when deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_edited_at: Option<Hlc>,
    /// Conflicts only: the edit time of each field of the server's document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_field_edited_at: Option<FieldTimes>,
}

impl MutationResult {
    /// An `applied` result at `version`.
    pub fn applied(op_id: &str, version: i64) -> Self {
        Self::bare(op_id, ResultStatus::Applied, Some(version), None)
    }

    /// A `duplicate` result carrying the version the op produced the first time.
    pub fn duplicate(op_id: &str, version: i64) -> Self {
        Self::bare(op_id, ResultStatus::Duplicate, Some(version), None)
    }

    /// A `rejected` result with a rejection code.
    pub fn rejected(op_id: &str, reason: impl Into<RejectionCode>) -> Self {
        Self::bare(
            op_id,
            ResultStatus::Rejected,
            None,
            Some(reason.into().as_str()),
        )
    }

    /// A `conflict` result with the server's state of the record.
    pub fn conflict(
        op_id: &str,
        reason: impl Into<ConflictCode>,
        server_version: Option<i64>,
        server_doc: Option<Map<String, Value>>,
    ) -> Self {
        Self {
            server_version: Some(server_version),
            server_doc: Some(server_doc),
            ..Self::bare(
                op_id,
                ResultStatus::Conflict,
                None,
                Some(reason.into().as_str()),
            )
        }
    }

    /// An `aborted` result: not applied because group member `failed_op_id` failed.
    pub fn aborted(op_id: &str, failed_op_id: &str) -> Self {
        Self {
            failed_op_id: Some(failed_op_id.to_string()),
            ..Self::bare(
                op_id,
                ResultStatus::Aborted,
                None,
                Some(AbortCode::GroupFailed.as_str()),
            )
        }
    }

    /// Whether the result keeps its group from applying (a conflict or a rejection).
    pub fn fails_group(&self) -> bool {
        matches!(self.status, ResultStatus::Conflict | ResultStatus::Rejected)
    }

    /// The reason of an `aborted` result, typed.
    pub fn abort_code(&self) -> Option<AbortCode> {
        (self.status == ResultStatus::Aborted)
            .then(|| self.reason.as_deref().map(AbortCode::from))
            .flatten()
    }

    /// The reason of a `conflict` result, typed.
    pub fn conflict_code(&self) -> Option<ConflictCode> {
        (self.status == ResultStatus::Conflict)
            .then(|| self.reason.as_deref().map(ConflictCode::from))
            .flatten()
    }

    /// The reason of a `rejected` result, typed.
    pub fn rejection_code(&self) -> Option<RejectionCode> {
        (self.status == ResultStatus::Rejected)
            .then(|| self.reason.as_deref().map(RejectionCode::from))
            .flatten()
    }

    fn bare(op_id: &str, status: ResultStatus, version: Option<i64>, reason: Option<&str>) -> Self {
        Self {
            op_id: op_id.to_string(),
            status,
            version,
            reason: reason.map(str::to_string),
            server_version: None,
            server_doc: None,
            server_edited_at: None,
            server_field_edited_at: None,
            existing_id: None,
            failed_op_id: None,
        }
    }

    /// A `unique_violation` conflict: the record's own state on the server (`None`: it has none)
    /// and the id of the record holding the key.
    pub fn unique_violation(
        op_id: &str,
        server_version: Option<i64>,
        server_doc: Option<Map<String, Value>>,
        existing_id: &str,
    ) -> Self {
        Self {
            existing_id: Some(existing_id.to_string()),
            ..Self::conflict(
                op_id,
                ConflictCode::UniqueViolation,
                server_version,
                server_doc,
            )
        }
    }
}

/// A key that is present deserializes to `Some`, even when its value is `null`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Body of `POST /sync/v1/pull`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PullRequest {
    /// `None` pulls from the beginning.
    #[serde(default)]
    pub cursor: Option<String>,
    /// 1..=1000, default 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// One record in its latest state, as pulled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub entity: String,
    pub entity_id: String,
    pub version: i64,
    pub deleted: bool,
    /// `None` (JSON null) when deleted.
    pub doc: Option<Map<String, Value>>,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// The group whose push last wrote the record, when it was one. A page never ends inside a
    /// group: the server extends it to the group's last change, so a client that applies each
    /// page in one transaction shows a group all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The edit time of the record's last change (of its delete, when deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Hlc>,
    /// The edit time of each field of `doc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_edited_at: Option<FieldTimes>,
}

/// Answer to a pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullResponse {
    pub changes: Vec<Change>,
    /// Pull again with this to get what changed after this page.
    pub cursor: String,
    pub has_more: bool,
    /// Changes still to fetch after this page.
    pub remaining: u64,
    /// The server's clock when it answered (an HLC of node `server`), for the client's edit clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Hlc>,
}

/// The `data` of an SSE `poke` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poke {
    /// The user's latest cursor.
    pub cursor: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mutation_round_trips_in_protocol_names() {
        let m: Mutation = serde_json::from_value(json!({
            "opId": "o1", "entity": "plans", "entityId": "p1", "type": "upsert",
            "baseVersion": null, "payload": {"name": "A"}, "clientTime": "2025-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(m.kind, MutationType::Upsert);
        assert_eq!(m.base_version, None);
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["entityId"], "p1");
        assert_eq!(back["baseVersion"], Value::Null);
    }

    fn grouped(op: &str, group: Option<&str>) -> Mutation {
        Mutation {
            op_id: op.into(),
            entity: "plans".into(),
            entity_id: op.into(),
            kind: MutationType::Delete,
            base_version: Some(1),
            payload: None,
            client_time: "2025-01-01T00:00:00Z".into(),
            group_id: group.map(str::to_string),
            edited_at: None,
            field_edited_at: None,
        }
    }

    #[test]
    fn group_id_is_optional_on_the_wire() {
        let m = grouped("o1", None);
        let v = serde_json::to_value(&m).unwrap();
        assert!(v.get("groupId").is_none());
        let g = serde_json::to_value(grouped("o1", Some("g1"))).unwrap();
        assert_eq!(g["groupId"], "g1");
        let back: Mutation = serde_json::from_value(g).unwrap();
        assert_eq!(back.group_id.as_deref(), Some("g1"));
    }

    #[test]
    fn groups_are_contiguous_runs() {
        let push = vec![
            grouped("a", None),
            grouped("b", Some("g")),
            grouped("c", Some("g")),
            grouped("d", None),
            grouped("e", Some("h")),
        ];
        assert_eq!(group_spans(&push).unwrap(), vec![1..3, 4..5]);
        let split = vec![
            grouped("a", Some("g")),
            grouped("b", None),
            grouped("c", Some("g")),
        ];
        assert_eq!(group_spans(&split).unwrap_err().0, 2);
        assert_eq!(
            group_spans(&[grouped("a", Some("bad id"))]).unwrap_err().0,
            0
        );
        let huge: Vec<_> = (0..=MAX_GROUP_SIZE)
            .map(|i| grouped(&format!("o{i}"), Some("g")))
            .collect();
        assert!(group_spans(&huge).is_err());
        assert!(group_spans(&huge[1..]).is_ok());
    }

    #[test]
    fn aborted_results_name_the_failed_member() {
        let r = MutationResult::aborted("o2", "o1");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"opId": "o2", "status": "aborted", "reason": "group_failed", "failedOpId": "o1"})
        );
        let back: MutationResult = serde_json::from_value(v).unwrap();
        assert_eq!(back.abort_code(), Some(AbortCode::GroupFailed));
        assert!(!back.fails_group());
        assert!(MutationResult::rejected("o1", RejectionCode::InvalidPayload).fails_group());
    }

    #[test]
    fn conflict_results_carry_explicit_nulls() {
        let r = MutationResult::conflict("o1", ConflictCode::NotFound, None, None);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"opId": "o1", "status": "conflict", "reason": "not_found",
                   "serverVersion": null, "serverDoc": null})
        );
        let back: MutationResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let applied = serde_json::to_value(MutationResult::applied("o2", 3)).unwrap();
        assert_eq!(
            applied,
            json!({"opId": "o2", "status": "applied", "version": 3})
        );
    }
}
