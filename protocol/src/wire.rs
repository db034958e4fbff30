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
    /// The space the record belongs to: required exactly for mutations of space-scoped
    /// collections (`400` when missing there, or present on another scope). A record's space
    /// never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
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
    /// The space of a space-scoped record; absent for user and public records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
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
    /// The user's latest cursor (of the user stream, also in a poke about another stream).
    pub cursor: String,
    /// The stream that changed, when it is not the user's own (`public`, `space:<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamKey>,
    /// `true`: the user's spaces, roles or pending invitations changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub account: bool,
    /// The `clientId` of the push whose commit this poke announces, in pokes to the pushing
    /// user's own event streams only. A client that pushed it may skip the poke: its own run
    /// pulls after its push, and every other commit pokes on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl Poke {
    /// A poke about the user's own stream, as before spaces.
    pub fn user(cursor: impl Into<String>) -> Self {
        Self {
            cursor: cursor.into(),
            stream: None,
            account: false,
            origin: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Spaces and public collections (docs/protocol.md, "Spaces and public collections").
// ---------------------------------------------------------------------------------------------

/// Prefix of a space's stream key: `space:<space id>`.
pub const SPACE_STREAM_PREFIX: &str = "space:";
/// The wire name of the user's own stream.
pub const USER_STREAM: &str = "user";
/// The wire name and database key of the public collections' stream.
pub const PUBLIC_STREAM: &str = "public";

/// The wire name and database key of space `space_id`'s stream: `space:<space id>`.
pub fn space_stream(space_id: &str) -> String {
    format!("{SPACE_STREAM_PREFIX}{space_id}")
}

/// The space a stream key names, if it names one.
pub fn space_of_stream(stream: &str) -> Option<&str> {
    stream.strip_prefix(SPACE_STREAM_PREFIX)
}

/// A stream: the change sequence a record belongs to. Its wire name is the key of a pull's
/// `streams` map; its database key is what the server stores in `records.user_id` & co.
///
/// Ordered as a pull page orders streams: `user`, `public`, then spaces by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamKey {
    /// The user's own records (wire `user`, database key the user id).
    User,
    /// One space's records (wire and database key `space:<space id>`).
    Space(String),
    /// The public collections (wire and database key `public`).
    Public,
}

impl StreamKey {
    /// The stream of a wire name (`user`, `public`, `space:<id>` with a valid id); `None` for
    /// anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            USER_STREAM => Some(Self::User),
            PUBLIC_STREAM => Some(Self::Public),
            _ => {
                let id = space_of_stream(text)?;
                crate::is_valid_id(id).then(|| Self::Space(id.to_string()))
            }
        }
    }

    /// The wire name: `user`, `public` or `space:<id>`.
    pub fn as_wire(&self) -> String {
        match self {
            Self::User => USER_STREAM.to_string(),
            Self::Public => PUBLIC_STREAM.to_string(),
            Self::Space(id) => space_stream(id),
        }
    }

    /// The server's database key for this stream of user `user_id`: the user id for `User`,
    /// the wire name otherwise. User ids are UUIDs (no `:`), so the kinds never collide.
    pub fn db_key(&self, user_id: &str) -> String {
        match self {
            Self::User => user_id.to_string(),
            other => other.as_wire(),
        }
    }

    /// The stream a database key names, as seen by user `user_id`: `None` when it is another
    /// user's own stream (or not a valid key).
    pub fn from_db_key(key: &str, user_id: &str) -> Option<Self> {
        if key == user_id {
            return Some(Self::User);
        }
        match Self::parse(key)? {
            Self::User => None,
            other => Some(other),
        }
    }

    /// The space id of a space stream.
    pub fn space_id(&self) -> Option<&str> {
        match self {
            Self::Space(id) => Some(id),
            _ => None,
        }
    }

    /// The stream of a record of a collection with `scope` in `space` (a mutation's or a
    /// change's `space`); `None` when the two do not fit (a space collection without a space,
    /// or a space given for another scope).
    pub fn for_scope(scope: crate::Scope, space: Option<&str>) -> Option<Self> {
        match (scope, space) {
            (crate::Scope::User, None) => Some(Self::User),
            (crate::Scope::Public, None) => Some(Self::Public),
            (crate::Scope::Space, Some(id)) if crate::is_valid_id(id) => {
                Some(Self::Space(id.to_string()))
            }
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::User => 0,
            Self::Public => 1,
            Self::Space(_) => 2,
        }
    }
}

impl Ord for StreamKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank()
            .cmp(&other.rank())
            .then_with(|| match (self, other) {
                (Self::Space(a), Self::Space(b)) => a.cmp(b),
                _ => std::cmp::Ordering::Equal,
            })
    }
}

impl PartialOrd for StreamKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User => f.write_str("user"),
            Self::Public => f.write_str("public"),
            Self::Space(id) => write!(f, "{SPACE_STREAM_PREFIX}{id}"),
        }
    }
}

impl std::str::FromStr for StreamKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or_else(|| {
            format!("unknown stream \"{text}\" (expected user, public or space:<id>)")
        })
    }
}

impl Serialize for StreamKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A member's role in a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, writes and manages the space (rename, invite, roles, remove, delete).
    Owner,
    /// Reads and writes the space's records.
    Editor,
    /// Reads the space's records only.
    Viewer,
}

impl Role {
    /// Every role, strongest first.
    pub const ALL: [Role; 3] = [Role::Owner, Role::Editor, Role::Viewer];

    /// The role named `text` (`owner`, `editor`, `viewer`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "owner" => Self::Owner,
            "editor" => Self::Editor,
            "viewer" => Self::Viewer,
            _ => return None,
        })
    }

    /// The wire (and database) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Editor => "editor",
            Self::Viewer => "viewer",
        }
    }

    /// Whether the role may push changes to the space's records.
    pub fn can_write(self) -> bool {
        matches!(self, Self::Owner | Self::Editor)
    }

    /// Whether the role may rename, invite, change roles, remove members and delete the space.
    pub fn can_manage(self) -> bool {
        self == Self::Owner
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest space name, in Unicode code points (a name is taken as given: 1..=200 of them).
pub const MAX_SPACE_NAME_CHARS: usize = 200;

/// Whether `name` is a valid space name: 1..=200 code points.
pub fn is_valid_space_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_SPACE_NAME_CHARS).contains(&n)
}

/// A space as its member sees it (`Space` in the protocol text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceOut {
    pub id: String,
    pub name: String,
    /// The caller's role.
    pub role: Role,
    pub member_count: i64,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// One member of a space (`Member`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberOut {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    /// RFC 3339 UTC.
    pub joined_at: String,
}

/// Answer to `GET /sync/v1/spaces/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersOut {
    pub members: Vec<MemberOut>,
}

/// A pending invitation as its invitee sees it (the account section's `invitations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationOut {
    pub id: String,
    pub space_id: String,
    pub space_name: String,
    /// The role accepting gives.
    pub role: Role,
    /// The inviting member's email.
    pub invited_by: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC; after it the invitation is gone.
    pub expires_at: String,
}

/// A pending invitation as the space's owners see it: the answer to `POST …/invitations` and
/// each entry of `GET …/invitations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentInvitationOut {
    pub id: String,
    /// Trimmed and lower-cased.
    pub email: String,
    pub role: Role,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
}

/// Answer to `GET /sync/v1/spaces/{id}/invitations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentInvitationsOut {
    pub invitations: Vec<SentInvitationOut>,
}

/// The user's spaces and pending invitations: `GET /sync/v1/account` and a pull's `account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountOut {
    /// Changes whenever the spaces, roles or invitations do; send it back as a pull's
    /// `accountSeq` to get the section only when it changed.
    pub account_seq: i64,
    pub spaces: Vec<SpaceOut>,
    pub invitations: Vec<InvitationOut>,
}

/// Body of `POST /sync/v1/spaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSpaceRequest {
    pub name: String,
    /// The creator's idempotency key (a valid id): the same key again answers the same space.
    pub request_id: String,
}

/// Body of `PATCH /sync/v1/spaces/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameSpaceRequest {
    pub name: String,
}

/// Body of `POST /sync/v1/spaces/{id}/invitations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRequest {
    pub email: String,
    pub role: Role,
}

/// Body of `PUT /sync/v1/spaces/{id}/members/{userId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRoleRequest {
    pub role: Role,
}

/// Body of `POST /sync/v1/pull`, stream form: a cursor per stream the client holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamPullRequest {
    /// Stream → cursor (`null`: from the beginning). Readable streams not named start from the
    /// beginning too.
    pub streams: std::collections::BTreeMap<StreamKey, Option<String>>,
    /// The `accountSeq` the client holds; the answer carries `account` only when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_seq: Option<i64>,
    /// 1..=1000, default 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// The two forms of a pull body: `{"cursor", "limit"}` (the user stream only, as before spaces)
/// or `{"streams", "accountSeq", "limit"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullForm {
    Cursor(PullRequest),
    Streams(StreamPullRequest),
}

impl PullForm {
    /// Reads a pull body: the stream form when it has `streams`, else the cursor form; both
    /// `cursor` and `streams` is an error (answered `400 invalid_request`).
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(obj) = &value else {
            return Err("the body must be a JSON object".into());
        };
        match (obj.contains_key("streams"), obj.contains_key("cursor")) {
            (true, true) => Err("give either cursor or streams, not both".into()),
            (true, false) => serde_json::from_value(value)
                .map(Self::Streams)
                .map_err(|e| e.to_string()),
            (false, _) => serde_json::from_value(value)
                .map(Self::Cursor)
                .map_err(|e| e.to_string()),
        }
    }
}

/// The state of one stream in a stream-form pull answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    /// Read on: `cursor` is the stream's next position.
    Ok,
    /// The user may not read the stream (removed, left, space deleted, or it never existed):
    /// drop its local records and cursor.
    Gone,
    /// The cursor predates purged tombstones: re-pull this stream from the beginning.
    Expired,
}

/// One entry of [`StreamPullResponse::streams`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEntry {
    pub status: StreamStatus,
    /// `ok` only: the stream's cursor after this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl StreamEntry {
    /// An `ok` entry with its next cursor.
    pub fn ok(cursor: impl Into<String>) -> Self {
        Self {
            status: StreamStatus::Ok,
            cursor: Some(cursor.into()),
        }
    }

    /// A `gone` entry.
    pub fn gone() -> Self {
        Self {
            status: StreamStatus::Gone,
            cursor: None,
        }
    }

    /// An `expired` entry.
    pub fn expired() -> Self {
        Self {
            status: StreamStatus::Expired,
            cursor: None,
        }
    }
}

/// Answer to a stream-form pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamPullResponse {
    /// Incremental streams first, then streams read from the beginning; each group `user`,
    /// `public`, spaces by id; within a stream by sequence.
    pub changes: Vec<Change>,
    /// Every stream whose position moved in this page, and every `gone` or `expired` one. A
    /// stream not listed keeps the cursor the client holds.
    pub streams: std::collections::BTreeMap<StreamKey, StreamEntry>,
    pub has_more: bool,
    /// Rows still to fetch after this page, over every readable stream.
    pub remaining: u64,
    /// Present when the request's `accountSeq` was absent or differs from the user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountOut>,
    /// The server's clock when it answered (an HLC of node `server`), for the client's edit clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Hlc>,
}

/// Most writes one `POST /admin/v1/public/write` may carry.
pub const MAX_ADMIN_WRITES: usize = 1000;

/// Body of `POST /admin/v1/public/write`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminWriteRequest {
    pub writes: Vec<AdminWrite>,
}

/// One authoritative write of a public record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminWrite {
    /// A public collection.
    pub collection: String,
    pub id: String,
    /// The whole document; `null` deletes the record (and its public children). Required.
    #[serde(deserialize_with = "nullable")]
    pub doc: Option<Map<String, Value>>,
}

/// Answer to `POST /admin/v1/public/write`: one result per write, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminWriteResponse {
    pub results: Vec<AdminResult>,
}

/// What one admin write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResult {
    pub id: String,
    /// The record's version after the write (`0` when a delete named no record).
    pub version: i64,
    /// `false` when the write changed nothing (the same document, or deleting what is not there).
    pub changed: bool,
}

/// Header of an upload chunk (`PATCH /sync/v1/blobs/uploads/{hash}`): the offset of the chunk's
/// first byte, which must be the server's offset (tus 1.0).
pub const UPLOAD_OFFSET: &str = "Upload-Offset";
/// `Content-Type` of an upload chunk's body.
pub const OFFSET_STREAM_CONTENT_TYPE: &str = "application/offset+octet-stream";
/// The reference server's `chunkBytes`: the largest chunk it takes (8 MiB).
pub const DEFAULT_CHUNK_BYTES: u64 = 8 * 1024 * 1024;
/// The smallest chunk but the last a server may ask for (S3's smallest multipart part, 5 MiB):
/// every chunk but the last is exactly `chunkBytes` long, and `chunkBytes` is at least this.
pub const MIN_CHUNK_BYTES: u64 = 5 * 1024 * 1024;

/// Body of `POST /sync/v1/blobs/uploads`: open (or reopen) the caller's upload of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenUploadRequest {
    /// SHA-256 of the whole file, 64 lowercase hex digits.
    pub hash: String,
    /// The whole file's length in bytes.
    pub size: u64,
    /// The blob's MIME type, `type/subtype`.
    pub content_type: String,
}

/// Answer to opening an upload and to each chunk: how far the server is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadStatus {
    pub hash: String,
    /// Bytes the server holds durably; the next chunk starts here.
    pub offset: u64,
    /// The server holds the whole blob (verified) and the caller may read it: nothing more to
    /// send (`offset` is then the size).
    pub complete: bool,
    /// The largest chunk the server takes; every chunk but the last is exactly this long.
    /// Present in the answer to an open that is not `complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_bytes: Option<u64>,
}

/// Body of `409 offset_mismatch`: the error body with the server's offset, from which the client
/// continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetMismatchBody {
    pub error: ErrorCode,
    pub error_description: String,
    pub offset: u64,
}

/// A field that must be present but may be `null`.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upload_bodies_use_the_protocol_names() {
        let open = OpenUploadRequest {
            hash: "ab".repeat(32),
            size: 104_857_600,
            content_type: "video/mp4".into(),
        };
        let json = serde_json::to_value(&open).unwrap();
        assert_eq!(
            json,
            json!({"hash": "ab".repeat(32), "size": 104_857_600, "contentType": "video/mp4"})
        );
        assert_eq!(
            serde_json::from_value::<OpenUploadRequest>(json).unwrap(),
            open
        );
        let opened = UploadStatus {
            hash: "ab".repeat(32),
            offset: 16_777_216,
            complete: false,
            chunk_bytes: Some(DEFAULT_CHUNK_BYTES),
        };
        assert_eq!(
            serde_json::to_value(&opened).unwrap(),
            json!({"hash": "ab".repeat(32), "offset": 16_777_216, "complete": false, "chunkBytes": 8_388_608})
        );
        // a chunk's answer has no chunkBytes
        let chunk: UploadStatus =
            serde_json::from_value(json!({"hash": "ab".repeat(32), "offset": 5, "complete": true}))
                .unwrap();
        assert_eq!(chunk.chunk_bytes, None);
        assert!(!serde_json::to_string(&chunk)
            .unwrap()
            .contains("chunkBytes"));
        let mismatch: OffsetMismatchBody = serde_json::from_value(
            json!({"error": "offset_mismatch", "error_description": "x", "offset": 7}),
        )
        .unwrap();
        assert_eq!(mismatch.error, ErrorCode::OffsetMismatch);
        assert_eq!(mismatch.offset, 7);
        // and it reads as a plain error body too
        let plain: ErrorBody = serde_json::from_value(
            json!({"error": "offset_mismatch", "error_description": "x", "offset": 7}),
        )
        .unwrap();
        assert_eq!(plain.error, ErrorCode::OffsetMismatch);
        assert_eq!(UPLOAD_OFFSET, "Upload-Offset");
        assert_eq!(
            OFFSET_STREAM_CONTENT_TYPE,
            "application/offset+octet-stream"
        );
        const { assert!(MIN_CHUNK_BYTES <= DEFAULT_CHUNK_BYTES) };
    }

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
            space: None,
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

    #[test]
    fn stream_keys_parse_print_and_order_as_a_page() {
        for text in [
            "user",
            "public",
            "space:0195c3a0-7a8b-7c3d-9e0f-a1b2c3d4e5f6",
        ] {
            let key = StreamKey::parse(text).unwrap();
            assert_eq!(key.as_wire(), text);
            assert_eq!(key.to_string(), text);
            assert_eq!(serde_json::to_value(&key).unwrap(), json!(text));
        }
        for bad in [
            "",
            "User",
            "space:",
            "space:has space",
            "public:1",
            "0195c3a0-7a8b",
        ] {
            assert_eq!(StreamKey::parse(bad), None, "{bad}");
            assert!(serde_json::from_value::<StreamKey>(json!(bad)).is_err());
        }
        let user = "0195c3a0-0000-7000-8000-000000000001";
        assert_eq!(StreamKey::User.db_key(user), user);
        assert_eq!(StreamKey::Public.db_key(user), "public");
        assert_eq!(StreamKey::Space("s1".into()).db_key(user), "space:s1");
        assert_eq!(StreamKey::from_db_key(user, user), Some(StreamKey::User));
        assert_eq!(
            StreamKey::from_db_key("space:s1", user),
            Some(StreamKey::Space("s1".into()))
        );
        assert_eq!(
            StreamKey::from_db_key("public", user),
            Some(StreamKey::Public)
        );
        assert_eq!(StreamKey::from_db_key("other-user", user), None);
        assert_eq!(StreamKey::from_db_key("user", user), None);
        let mut keys = vec![
            StreamKey::Space("b".into()),
            StreamKey::Public,
            StreamKey::Space("a".into()),
            StreamKey::User,
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                StreamKey::User,
                StreamKey::Public,
                StreamKey::Space("a".into()),
                StreamKey::Space("b".into())
            ]
        );
        use crate::Scope;
        assert_eq!(
            StreamKey::for_scope(Scope::User, None),
            Some(StreamKey::User)
        );
        assert_eq!(
            StreamKey::for_scope(Scope::Public, None),
            Some(StreamKey::Public)
        );
        assert_eq!(
            StreamKey::for_scope(Scope::Space, Some("s")),
            Some(StreamKey::Space("s".into()))
        );
        assert_eq!(StreamKey::for_scope(Scope::Space, None), None);
        assert_eq!(StreamKey::for_scope(Scope::User, Some("s")), None);
        assert_eq!(StreamKey::for_scope(Scope::Public, Some("s")), None);
    }

    #[test]
    fn space_is_optional_on_mutations_and_changes() {
        let mut m = grouped("o1", None);
        assert!(serde_json::to_value(&m).unwrap().get("space").is_none());
        m.space = Some("s1".into());
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["space"], "s1");
        assert_eq!(serde_json::from_value::<Mutation>(v).unwrap(), m);
        let c: Change = serde_json::from_value(json!({
            "entity": "shared_plans", "entityId": "p1", "space": "s1", "version": 4,
            "deleted": false, "doc": {"name": "Legs"}, "updatedAt": "2025-03-01T12:00:00Z"
        }))
        .unwrap();
        assert_eq!(c.space.as_deref(), Some("s1"));
        let plain = Change { space: None, ..c };
        assert!(serde_json::to_value(&plain).unwrap().get("space").is_none());
    }

    #[test]
    fn pull_bodies_come_in_two_forms() {
        let old = PullForm::from_value(json!({"cursor": "c2.1.0.x", "limit": 10})).unwrap();
        assert_eq!(
            old,
            PullForm::Cursor(PullRequest {
                cursor: Some("c2.1.0.x".into()),
                limit: Some(10)
            })
        );
        assert_eq!(
            PullForm::from_value(json!({})).unwrap(),
            PullForm::Cursor(PullRequest::default())
        );
        let new = PullForm::from_value(json!({
            "streams": {"user": "c2.41.0.k", "public": "c3.7.0.X", "space:s1": null},
            "accountSeq": 12, "limit": 500
        }))
        .unwrap();
        let PullForm::Streams(request) = new else {
            panic!("stream form")
        };
        assert_eq!(request.account_seq, Some(12));
        assert_eq!(request.limit, Some(500));
        assert_eq!(
            request.streams.into_iter().collect::<Vec<_>>(),
            vec![
                (StreamKey::User, Some("c2.41.0.k".to_string())),
                (StreamKey::Public, Some("c3.7.0.X".to_string())),
                (StreamKey::Space("s1".into()), None),
            ]
        );
        assert!(PullForm::from_value(json!({"cursor": null, "streams": {}})).is_err());
        assert!(PullForm::from_value(json!({"streams": {"team": null}})).is_err());
        assert!(PullForm::from_value(json!({"streams": []})).is_err());
        assert!(PullForm::from_value(json!([])).is_err());
    }

    #[test]
    fn stream_pull_answers_in_protocol_names() {
        let answer = StreamPullResponse {
            changes: vec![],
            streams: [
                (StreamKey::Space("s2".into()), StreamEntry::gone()),
                (StreamKey::Space("s1".into()), StreamEntry::ok("c3.121.0.Z")),
                (StreamKey::Public, StreamEntry::expired()),
            ]
            .into_iter()
            .collect(),
            has_more: false,
            remaining: 0,
            account: Some(AccountOut {
                account_seq: 13,
                spaces: vec![SpaceOut {
                    id: "s1".into(),
                    name: "Family".into(),
                    role: Role::Editor,
                    member_count: 3,
                    created_at: "2025-03-01T12:00:00Z".into(),
                }],
                invitations: vec![InvitationOut {
                    id: "i1".into(),
                    space_id: "s3".into(),
                    space_name: "Coach".into(),
                    role: Role::Viewer,
                    invited_by: "coach@example.com".into(),
                    created_at: "2025-03-01T12:00:00Z".into(),
                    expires_at: "2025-03-15T12:00:00Z".into(),
                }],
            }),
            server_time: None,
        };
        let v = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            v,
            json!({"changes": [],
                   "streams": {"space:s1": {"status": "ok", "cursor": "c3.121.0.Z"},
                               "space:s2": {"status": "gone"},
                               "public": {"status": "expired"}},
                   "hasMore": false, "remaining": 0,
                   "account": {"accountSeq": 13,
                               "spaces": [{"id": "s1", "name": "Family", "role": "editor",
                                           "memberCount": 3, "createdAt": "2025-03-01T12:00:00Z"}],
                               "invitations": [{"id": "i1", "spaceId": "s3", "spaceName": "Coach",
                                                "role": "viewer", "invitedBy": "coach@example.com",
                                                "createdAt": "2025-03-01T12:00:00Z",
                                                "expiresAt": "2025-03-15T12:00:00Z"}]}})
        );
        assert_eq!(
            serde_json::from_value::<StreamPullResponse>(v).unwrap(),
            answer
        );
    }

    #[test]
    fn space_requests_roles_and_pokes() {
        let create: CreateSpaceRequest =
            serde_json::from_value(json!({"name": "Family", "requestId": "r1"})).unwrap();
        assert_eq!(create.request_id, "r1");
        let invite: InviteRequest =
            serde_json::from_value(json!({"email": "a@b.c", "role": "viewer"})).unwrap();
        assert_eq!(invite.role, Role::Viewer);
        assert!(serde_json::from_value::<SetRoleRequest>(json!({"role": "admin"})).is_err());
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(Role::Owner.can_manage() && Role::Owner.can_write());
        assert!(!Role::Editor.can_manage() && Role::Editor.can_write());
        assert!(!Role::Viewer.can_manage() && !Role::Viewer.can_write());
        assert!(is_valid_space_name("é") && is_valid_space_name(&"é".repeat(200)));
        assert!(!is_valid_space_name("") && !is_valid_space_name(&"é".repeat(201)));
        assert_eq!(
            serde_json::to_value(Poke::user("c2.1.0.x")).unwrap(),
            json!({"cursor": "c2.1.0.x"})
        );
        let space_poke = Poke {
            stream: Some(StreamKey::Space("s1".into())),
            ..Poke::user("c")
        };
        assert_eq!(
            serde_json::to_value(&space_poke).unwrap(),
            json!({"cursor": "c", "stream": "space:s1"})
        );
        let account: Poke =
            serde_json::from_value(json!({"cursor": "c", "account": true})).unwrap();
        assert!(account.account && account.stream.is_none());
        let own = Poke {
            origin: Some("device-1".into()),
            ..Poke::user("c")
        };
        assert_eq!(
            serde_json::to_value(&own).unwrap(),
            json!({"cursor": "c", "origin": "device-1"})
        );
        let read: Poke = serde_json::from_value(json!({"cursor": "c"})).unwrap();
        assert_eq!(read.origin, None);
    }

    #[test]
    fn admin_writes_need_a_doc_or_an_explicit_null() {
        let request: AdminWriteRequest = serde_json::from_value(json!({"writes": [
            {"collection": "catalog", "id": "c1", "doc": {"name": "Squat"}},
            {"collection": "catalog", "id": "c2", "doc": null}]}))
        .unwrap();
        assert!(request.writes[0].doc.is_some());
        assert!(request.writes[1].doc.is_none());
        assert!(
            serde_json::from_value::<AdminWrite>(json!({"collection": "catalog", "id": "c3"}))
                .is_err()
        );
        assert_eq!(
            serde_json::to_value(AdminWriteResponse {
                results: vec![AdminResult {
                    id: "c1".into(),
                    version: 2,
                    changed: true
                }]
            })
            .unwrap(),
            json!({"results": [{"id": "c1", "version": 2, "changed": true}]})
        );
    }
}
