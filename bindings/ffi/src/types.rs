//! The records and enums of the exported API, and their conversions to the engine's types.
//! Documents cross the boundary as JSON text, which Swift's `Codable`, Kotlin's serialization and
//! Python's `json` all read directly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use std::sync::Arc;

use super::encryption::Encryption;
use super::error::TandemError;
use super::foreign::{ConflictResolver, SecureStore};
use super::sync_types::SyncConfig;
use tandem_core::{
    EntryState, Filter as EngineFilter, FilterOp as EngineFilterOp, OpKind, Order,
    OutboxEntry as EngineOutboxEntry, Query as EngineQuery, RecordRow,
    RecordState as EngineRecordState, WriteOp as EngineWriteOp,
};

/// How `Tandem.open` finds its data, schema and server. Only `data_dir` and `schema_json` are
/// required; without `server_url` the store is local-only.
#[derive(Clone, uniffi::Record)]
pub struct TandemConfig {
    /// A directory the engine owns (created when missing); it holds one database per account.
    pub data_dir: String,
    /// The schema document (JSON), the same file the server loads.
    pub schema_json: String,
    /// The Tandem server: auth at `{server_url}/auth/v1`, sync at `{server_url}/sync/v1`.
    /// Plain `http://` is refused for any host but loopback unless `allow_insecure_http`.
    /// May be left out when both `auth_url` and `sync_url` are given (With Supabase); none of
    /// the three: the engine works on this device only.
    #[uniffi(default)]
    pub server_url: Option<String>,
    /// Overrides the auth base (e.g. Supabase Auth at `https://<project>.supabase.co/auth/v1`).
    #[uniffi(default)]
    pub auth_url: Option<String>,
    /// Overrides the sync base (e.g. a sync function hosted elsewhere).
    #[uniffi(default)]
    pub sync_url: Option<String>,
    /// Sent as the `apikey` header (Supabase needs it).
    #[uniffi(default)]
    pub api_key: Option<String>,
    /// Development only: allows plain `http://` to hosts other than loopback (e.g. an emulator's
    /// `10.0.2.2`). Never set it in release builds.
    #[uniffi(default)]
    pub allow_insecure_http: bool,
    #[uniffi(default)]
    pub sync: SyncConfig,
    /// Where tokens are kept; the platform keyring (Keychain, Android keystore, Linux kernel
    /// keyring) when absent.
    #[uniffi(default)]
    pub secure_store: Option<Arc<dyn SecureStore>>,
    /// Decides conflicts as they happen, instead of the policy.
    #[uniffi(default)]
    pub conflict_resolver: Option<Arc<dyn ConflictResolver>>,
    /// How many bytes of downloaded attachments the device keeps (per account): past it, the
    /// least recently used files are removed (they stay on the server; `attachment()` fetches
    /// them again). Files not yet uploaded, or named by unsent changes, are never removed.
    #[uniffi(default = 500000000)]
    pub attachment_cache_bytes: u64,
    /// Whether the local databases and the attachment cache are encrypted at rest
    /// (docs/design/encryption.md); `None` means `Off`. Changing it converts the files on the
    /// next open. (An option because UniFFI's records cannot default an enum field yet.)
    #[uniffi(default)]
    pub encryption: Option<Encryption>,
}

/// `TandemConfig::attachment_cache_bytes` by default: the engine's 500 MB (the
/// `#[uniffi(default)]` above repeats it as a literal; a test checks the two agree).
pub const DEFAULT_ATTACHMENT_CACHE_BYTES: u64 = tandem_core::defaults::ATTACHMENT_CACHE_BYTES;

impl TandemConfig {
    /// A local-only store (no server) in `data_dir`.
    pub fn local(data_dir: impl Into<String>, schema_json: impl Into<String>) -> Self {
        Self {
            data_dir: data_dir.into(),
            schema_json: schema_json.into(),
            server_url: None,
            auth_url: None,
            sync_url: None,
            api_key: None,
            allow_insecure_http: false,
            sync: SyncConfig::default(),
            secure_store: None,
            conflict_resolver: None,
            attachment_cache_bytes: DEFAULT_ATTACHMENT_CACHE_BYTES,
            encryption: None,
        }
    }

    /// A store syncing with the server at `server_url`.
    pub fn with_server(
        data_dir: impl Into<String>,
        schema_json: impl Into<String>,
        server_url: impl Into<String>,
    ) -> Self {
        Self {
            server_url: Some(server_url.into()),
            ..Self::local(data_dir, schema_json)
        }
    }
}

impl std::fmt::Debug for TandemConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TandemConfig")
            .field("data_dir", &self.data_dir)
            .field("server_url", &self.server_url)
            .field("auth_url", &self.auth_url)
            .field("sync_url", &self.sync_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("sync", &self.sync)
            .field("attachment_cache_bytes", &self.attachment_cache_bytes)
            .field("encryption", &self.encryption)
            .finish_non_exhaustive()
    }
}

/// A record as the app sees it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Record {
    pub collection: String,
    pub id: String,
    /// The document as JSON text.
    pub document: String,
    /// The server version the record is based on; 0 when the server has never seen it.
    pub version: u64,
    pub state: RecordState,
    /// When the local store first wrote the record.
    pub created_at: SystemTime,
    /// When the local store last wrote the record (a pull too).
    pub updated_at: SystemTime,
    /// When the user last edited it, on whichever device (the wall-clock part of its edit time,
    /// a hybrid logical clock kept within a bounded skew of the server's clock); `None` for
    /// records from before edit times were kept.
    #[uniffi(default)]
    pub edited_at: Option<SystemTime>,
    /// The space the record belongs to (a `space`-scoped collection); `None` for the user's own
    /// records and public ones. A record never moves between spaces.
    #[uniffi(default)]
    pub space_id: Option<String>,
}

/// Where a record stands relative to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RecordState {
    /// Identical to what the server confirmed.
    Synced,
    /// Local changes wait to be sent.
    Pending,
    /// Local and server changes collided; resolve it.
    Conflicted,
    /// The server refused the last change.
    Rejected,
}

/// A query over one collection. Every filter must hold; results are ordered by `order_by`, then
/// by id.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct Query {
    #[uniffi(default)]
    pub filters: Vec<Filter>,
    #[uniffi(default)]
    pub order_by: Vec<OrderBy>,
    #[uniffi(default)]
    pub limit: Option<u64>,
    #[uniffi(default)]
    pub offset: Option<u64>,
    /// Only the records of this space (a `space`-scoped collection); `None` reads every space's.
    #[uniffi(default)]
    pub space_id: Option<String>,
}

/// `field <op> value`, with the value as JSON (`"\"abc\""`, `"3"`, `"true"`, `"null"`; for
/// `In`, an array such as `"[1, 2]"`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct Filter {
    pub field: String,
    pub op: FilterOp,
    pub value_json: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

/// Sort by a field.
#[derive(Debug, Clone, uniffi::Record)]
pub struct OrderBy {
    pub field: String,
    #[uniffi(default)]
    pub descending: bool,
}

/// One write of an atomic batch (`Tandem.write`).
#[derive(Debug, Clone, uniffi::Enum)]
pub enum WriteOp {
    /// Creates or replaces a whole document; `id` is generated when absent. `space_id` names
    /// the space of a new record of a `space`-scoped collection (an existing record, or a child,
    /// stays in its own or its parent's space, which a given `space_id` must match); it is
    /// `None` for the user's own and public collections.
    Put {
        collection: String,
        id: Option<String>,
        json: String,
        #[uniffi(default)]
        space_id: Option<String>,
    },
    /// Applies an RFC 7386 JSON merge patch to an existing record.
    Patch {
        collection: String,
        id: String,
        patch_json: String,
    },
    /// Deletes a record and its descendants.
    Delete { collection: String, id: String },
}

/// An outbox entry, for debugging screens.
#[derive(Debug, Clone, uniffi::Record)]
pub struct OutboxEntry {
    pub op_id: String,
    pub collection: String,
    pub id: String,
    pub kind: ChangeKind,
    /// The server version the change started from; absent when the server never saw the record.
    pub base_version: Option<u64>,
    /// The document to send (JSON); absent for deletes.
    pub document: Option<String>,
    pub attempts: u64,
    pub state: OutboxState,
    pub last_error: Option<String>,
    pub created_at: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeKind {
    Upsert,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutboxState {
    Pending,
    Inflight,
    Rejected,
}

pub(crate) fn parse_json(what: &str, text: &str) -> Result<Value, TandemError> {
    serde_json::from_str(text).map_err(|e| TandemError::InvalidArgument {
        // serde_json's syntax errors give a position, never the text itself.
        detail: format!("{what} is not valid JSON: {e}"),
    })
}

/// Unix milliseconds as the timestamp type every binding maps natively.
pub(crate) fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// What `revert` did.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Reverted {
    /// The record afterwards; nothing when it does not show (the server never had it or deleted
    /// it, or it is hidden under a parent deleted here).
    pub record: Option<Record>,
    /// Whether anything changed: false when the record had no unsent change.
    pub changed: bool,
}

impl From<tandem_core::Reverted> for Reverted {
    fn from(reverted: tandem_core::Reverted) -> Self {
        Self {
            record: reverted.record.map(Record::from),
            changed: reverted.changed,
        }
    }
}

impl From<RecordRow> for Record {
    fn from(row: RecordRow) -> Self {
        Self {
            edited_at: row.edited_at_ms().map(time),
            collection: row.collection,
            id: row.id,
            document: row.doc.unwrap_or_else(|| "null".to_string()),
            version: row.server_version.max(0) as u64,
            state: row.state.into(),
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
            space_id: row.space_id,
        }
    }
}

impl From<EngineRecordState> for RecordState {
    fn from(state: EngineRecordState) -> Self {
        match state {
            EngineRecordState::Synced => Self::Synced,
            EngineRecordState::Pending => Self::Pending,
            EngineRecordState::Conflicted => Self::Conflicted,
            EngineRecordState::Rejected => Self::Rejected,
        }
    }
}

impl From<OpKind> for ChangeKind {
    fn from(op: OpKind) -> Self {
        match op {
            OpKind::Upsert => Self::Upsert,
            OpKind::Delete => Self::Delete,
        }
    }
}

impl From<EngineOutboxEntry> for OutboxEntry {
    fn from(e: EngineOutboxEntry) -> Self {
        Self {
            op_id: e.op_id,
            collection: e.collection,
            id: e.entity_id,
            kind: e.op.into(),
            base_version: e.base_version.map(|v| v.max(0) as u64),
            document: e.doc,
            attempts: e.attempts.max(0) as u64,
            state: match e.state {
                EntryState::Pending => OutboxState::Pending,
                EntryState::Inflight => OutboxState::Inflight,
                EntryState::Rejected => OutboxState::Rejected,
            },
            last_error: e.last_error,
            created_at: time(e.created_at),
        }
    }
}

impl TryFrom<Query> for EngineQuery {
    type Error = TandemError;

    fn try_from(q: Query) -> Result<Self, TandemError> {
        let filters = q
            .filters
            .into_iter()
            .map(|f| {
                Ok(EngineFilter {
                    value: parse_json(&format!("the filter value for {}", f.field), &f.value_json)?,
                    field: f.field,
                    op: match f.op {
                        FilterOp::Eq => EngineFilterOp::Eq,
                        FilterOp::Ne => EngineFilterOp::Ne,
                        FilterOp::Lt => EngineFilterOp::Lt,
                        FilterOp::Le => EngineFilterOp::Le,
                        FilterOp::Gt => EngineFilterOp::Gt,
                        FilterOp::Ge => EngineFilterOp::Ge,
                        FilterOp::In => EngineFilterOp::In,
                    },
                })
            })
            .collect::<Result<_, TandemError>>()?;
        let order = q
            .order_by
            .into_iter()
            .map(|o| Order {
                field: o.field,
                descending: o.descending,
            })
            .collect();
        Ok(Self {
            filters,
            order,
            limit: q.limit,
            offset: q.offset,
            space_id: q.space_id,
        })
    }
}

impl TryFrom<WriteOp> for EngineWriteOp {
    type Error = TandemError;

    fn try_from(op: WriteOp) -> Result<Self, TandemError> {
        Ok(match op {
            WriteOp::Put {
                collection,
                id,
                json,
                space_id,
            } => Self::Put {
                doc: parse_json("the document", &json)?,
                collection,
                id,
                space_id,
            },
            WriteOp::Patch {
                collection,
                id,
                patch_json,
            } => Self::Patch {
                patch: parse_json("the merge patch", &patch_json)?,
                collection,
                id,
            },
            WriteOp::Delete { collection, id } => Self::Delete { collection, id },
        })
    }
}

/// A member's role in a space: owners manage it (rename, invite, roles, remove, delete),
/// editors write its records, viewers read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum SpaceRole {
    Owner,
    Editor,
    Viewer,
}

impl From<tandem_core::SpaceRole> for SpaceRole {
    fn from(role: tandem_core::SpaceRole) -> Self {
        match role {
            tandem_core::SpaceRole::Owner => Self::Owner,
            tandem_core::SpaceRole::Editor => Self::Editor,
            tandem_core::SpaceRole::Viewer => Self::Viewer,
        }
    }
}

impl From<SpaceRole> for tandem_core::SpaceRole {
    fn from(role: SpaceRole) -> Self {
        match role {
            SpaceRole::Owner => Self::Owner,
            SpaceRole::Editor => Self::Editor,
            SpaceRole::Viewer => Self::Viewer,
        }
    }
}

/// A space the user is a member of, with the user's role in it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Space {
    pub id: String,
    pub name: String,
    /// The user's role.
    pub role: SpaceRole,
    pub member_count: u32,
    pub created_at: SystemTime,
}

impl From<tandem_core::Space> for Space {
    fn from(s: tandem_core::Space) -> Self {
        Self {
            id: s.id,
            name: s.name,
            role: s.role.into(),
            member_count: u32::try_from(s.member_count.max(0)).unwrap_or(u32::MAX),
            created_at: time(s.created_at_ms),
        }
    }
}

/// A member of a space (`Tandem.members`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: SpaceRole,
    pub joined_at: SystemTime,
}

impl From<tandem_core::Member> for Member {
    fn from(m: tandem_core::Member) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            role: m.role.into(),
            joined_at: time(m.joined_at_ms),
        }
    }
}

/// An invitation to a space waiting for the user's answer (`accept` or `decline`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Invitation {
    pub id: String,
    pub space_id: String,
    pub space_name: String,
    /// The role the user gets on accepting.
    pub role: SpaceRole,
    /// The inviter's email.
    pub invited_by: String,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
}

impl From<tandem_core::Invitation> for Invitation {
    fn from(i: tandem_core::Invitation) -> Self {
        Self {
            id: i.id,
            space_id: i.space_id,
            space_name: i.space_name,
            role: i.role.into(),
            invited_by: i.invited_by,
            created_at: time(i.created_at_ms),
            expires_at: time(i.expires_at_ms),
        }
    }
}

/// An invitation the user sent (`Tandem.invite`): pending until the invitee accepts, declines
/// or it expires.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SentInvitation {
    pub id: String,
    /// The invitee's email, trimmed and lower-cased.
    pub email: String,
    pub role: SpaceRole,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
}

impl From<tandem_core::SentInvitation> for SentInvitation {
    fn from(i: tandem_core::SentInvitation) -> Self {
        Self {
            id: i.id,
            email: i.email,
            role: i.role.into(),
            created_at: time(i.created_at_ms),
            expires_at: time(i.expires_at_ms),
        }
    }
}
