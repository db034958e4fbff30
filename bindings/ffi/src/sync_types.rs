//! Records and enums of the auth and sync API, and their conversions from the engine's types.

use std::time::{Duration, SystemTime};

use tandem_core::auth::AuthState as EngineAuthState;
use tandem_core::{
    ConflictPolicy as EnginePolicy, ConflictReason as EngineReason, ConflictRow, Metrics,
    OutboxEntry as EngineOutboxEntry, Phase, Resolution as EngineResolution, Status, SyncOptions,
    SyncReport as EngineReport,
};

use super::error::{SyncFailure, TandemError, ValidationReason};
use super::types::{parse_json, time, ChangeKind};
use tandem_core::defaults;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct User {
    pub id: String,
    pub email: String,
    /// RFC 3339.
    pub created_at: String,
}

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AuthState {
    SignedOut,
    SignedIn {
        user: User,
    },
    /// The session ended (its refresh token was refused). Local data and pending changes stay
    /// and go up once the same user signs in again.
    SessionExpired {
        user: User,
    },
}

/// How sync behaves. Every field has a default.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncConfig {
    /// Mutations per push request.
    #[uniffi(default = 200)]
    pub push_batch_size: u32,
    /// Changes per pull page.
    #[uniffi(default = 500)]
    pub pull_page_size: u32,
    /// The minimum interval between the runs local writes start. A write starts a run at once
    /// when none started within it; writes made meanwhile, or while a run is under way, join
    /// the next run. 0 (the default): every write is on the server within one round trip. Set
    /// it to batch a burst of writes into fewer runs.
    #[uniffi(default = 0)]
    pub debounce_ms: u64,
    /// Background runs happen at least this often.
    #[uniffi(default = 900)]
    pub periodic_interval_secs: u64,
    /// Listen to the server's event stream and pull on every poke.
    #[uniffi(default = true)]
    pub realtime: bool,
    /// `None` means `Merge`.
    #[uniffi(default)]
    pub conflict_policy: Option<ConflictPolicy>,
    /// The kill switch: `false` disables sync entirely, local data untouched.
    #[uniffi(default = true)]
    pub enabled: bool,
    /// Longest one HTTP exchange may take.
    #[uniffi(default = 30000)]
    pub request_timeout_ms: u64,
}

/// The defaults of `tandem_core::defaults`. The `#[uniffi(default = …)]` literals above must be
/// the same: UniFFI takes literals only, so each binding's tests compare its generated
/// `SyncConfig()` with `defaultSyncConfig()`.
impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            push_batch_size: defaults::PUSH_BATCH_SIZE as u32,
            pull_page_size: defaults::PULL_PAGE_SIZE,
            debounce_ms: defaults::DEBOUNCE.as_millis() as u64,
            periodic_interval_secs: defaults::PERIODIC_INTERVAL.as_secs(),
            realtime: defaults::REALTIME,
            conflict_policy: None,
            enabled: defaults::SYNC_ENABLED,
            request_timeout_ms: defaults::REQUEST_TIMEOUT.as_millis() as u64,
        }
    }
}

/// The sync configuration's defaults as the engine defines them (`SyncConfig()` in Swift,
/// Kotlin and Python has the same values).
#[uniffi::export]
pub fn default_sync_config() -> SyncConfig {
    SyncConfig::default()
}

/// The most changes one `write` batch may make and still be one atomic group on the wire (all of
/// it reaches other devices, or none). A larger batch is a bulk write: atomic on the device, its
/// changes sent as separate changes.
#[uniffi::export]
pub fn max_write_batch() -> u32 {
    tandem_protocol::MAX_GROUP_SIZE as u32
}

impl From<&SyncConfig> for SyncOptions {
    fn from(c: &SyncConfig) -> Self {
        Self {
            push_batch_size: c.push_batch_size.max(1) as usize,
            pull_page_size: c.pull_page_size.clamp(1, tandem_protocol::MAX_PULL_LIMIT),
            debounce: Duration::from_millis(c.debounce_ms),
            periodic_interval: Duration::from_secs(c.periodic_interval_secs.max(1)),
            realtime: c.realtime,
            policy: c
                .conflict_policy
                .map_or(EnginePolicy::Merge, EnginePolicy::from),
            enabled: c.enabled,
        }
    }
}

/// How conflicts are settled (unless a `ConflictResolver` is configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ConflictPolicy {
    /// Three-way merge per field; a field changed on both sides, or an edit against a delete,
    /// becomes a conflict for the app.
    Merge,
    ServerWins,
    /// Rebase the local change on the server's version and send it again.
    ClientWins,
    /// Every conflict goes to the app.
    Manual,
    /// Per field, the later edit wins (by each change's edit time; ties by device), an edit
    /// against a delete by the delete's time; nothing goes to the app, and every device ends
    /// with the same document.
    LastWriteWins,
}

impl From<ConflictPolicy> for EnginePolicy {
    fn from(p: ConflictPolicy) -> Self {
        match p {
            ConflictPolicy::Merge => Self::Merge,
            ConflictPolicy::ServerWins => Self::ServerWins,
            ConflictPolicy::ClientWins => Self::ClientWins,
            ConflictPolicy::Manual => Self::Manual,
            ConflictPolicy::LastWriteWins => Self::LastWriteWins,
        }
    }
}

/// What sync is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncPhase {
    Idle,
    Pushing,
    Pulling,
    Offline,
    Paused,
    SignedOut,
    Error,
}

/// Everything a sync indicator shows.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncStatus {
    pub phase: SyncPhase,
    /// Local changes waiting for the server.
    pub pending: u64,
    pub conflicts: u64,
    pub rejected: u64,
    /// The end of the account's last successful run, kept across restarts of the app.
    pub last_synced_at: Option<SystemTime>,
    pub last_error: Option<String>,
    /// During a pull: changes received in this run, and still to come.
    pub pulled: u64,
    pub remaining: u64,
    /// Connected to the server's event stream (background sync with `realtime` on): changes
    /// from other devices arrive within moments instead of at the next periodic run.
    pub realtime: bool,
    /// When the last run ended, successful or not; kept across restarts with its outcome, so an
    /// app (or `tandem status`) shows at open how the last sync went.
    pub last_run_at: Option<SystemTime>,
    /// Why the last run failed, typed (`last_error` says it in words); nothing after a success.
    pub last_failure: Option<SyncFailure>,
    /// Attachments named by unsent changes and not uploaded yet (the next run uploads them
    /// before it pushes those changes).
    #[uniffi(default)]
    pub attachments_pending: u64,
    /// Their bytes.
    #[uniffi(default)]
    pub attachment_bytes_pending: u64,
    /// During a run: attachment bytes sent and received so far (0 between runs).
    #[uniffi(default)]
    pub attachment_bytes_transferred: u64,
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    pub pushed: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    pub rejected: u64,
    pub pulled: u64,
    pub duration_ms: u64,
    /// Whether this run pulled everything again (the server answered `cursor_expired`, or an
    /// earlier such re-pull was cut off), removing what the server no longer has.
    pub full_repull: bool,
    /// Conflicts this run left to the app.
    pub parked: Vec<ParkedConflict>,
    /// What became of each pushed mutation, in the order sent.
    pub outcomes: Vec<PushOutcome>,
    /// Attachments the run's upload phase finished (uploaded, or already held by the server).
    #[uniffi(default)]
    pub attachments_uploaded: u64,
    /// Attachment bytes the run sent in upload chunks.
    #[uniffi(default)]
    pub attachment_bytes_sent: u64,
    /// Attachment bytes the run downloaded (eager prefetch).
    #[uniffi(default)]
    pub attachment_bytes_received: u64,
}

/// A record whose conflict a run left to the app.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ParkedConflict {
    pub collection: String,
    pub id: String,
}

/// What became of one pushed mutation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushOutcome {
    pub op_id: String,
    pub collection: String,
    pub id: String,
    pub kind: OutcomeKind,
    /// The server's reason, for `Rejected`; for `WaitsForGroup`, the op id of the group member
    /// whose conflict or rejection kept the group from applying.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutcomeKind {
    Applied,
    /// The server had applied this op before (a retried request).
    Duplicate,
    /// A conflict the policy settled.
    ConflictSettled,
    /// A conflict left to the app.
    ConflictParked,
    Rejected,
    /// Refused for a parent whose own change has not landed yet; sent again after it.
    WaitsForParent,
    /// Not applied because another change of its `write` batch (an atomic group; its op id in
    /// `reason`) met a conflict or a rejection: nothing of the batch was applied. It waits and
    /// goes again with the batch once that change is settled (its conflict resolved, or its dead
    /// letter discarded).
    WaitsForGroup,
}

/// How often a run was asked for, by reason (`local_write`, `foreground`, `connectivity`,
/// `periodic`, `realtime`, `manual`, `retry`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TriggerCount {
    pub reason: String,
    pub count: u64,
}

/// Counters since the store was opened.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncMetrics {
    pub triggers: Vec<TriggerCount>,
    pub runs: u64,
    pub failures: u64,
    pub ops_pushed: u64,
    pub changes_pulled: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub last_run_duration_ms: u64,
}

/// Why a conflict needs the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ConflictReason {
    /// The same fields changed on both sides (see `fields`).
    BothChanged,
    LocalEditServerDelete,
    LocalDeleteServerEdit,
    /// The policy is `Manual`, or the resolver left it to the app.
    Manual,
    /// Another record (`existing_id`) holds this record's unique key on the server. Resolve with
    /// `KeepServer` (keep the existing one, drop mine), `KeepMine` (delete the existing one, then
    /// send mine) or `Merged` with another key (keep both).
    UniqueViolation,
}

/// A conflict waiting for `resolve`. Documents are JSON; `None` means deleted (or, for the base,
/// that the record was new).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Conflict {
    pub collection: String,
    pub id: String,
    pub reason: ConflictReason,
    pub fields: Vec<String>,
    pub local_document: Option<String>,
    pub server_document: Option<String>,
    pub base_document: Option<String>,
    pub server_version: u64,
    /// `UniqueViolation` only: the id (same collection) of the record holding the key.
    #[uniffi(default)]
    pub existing_id: Option<String>,
}

/// The app's answer to a conflict.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Resolution {
    KeepMine,
    KeepServer,
    /// A merged document (JSON), validated like a put.
    Merged {
        json: String,
    },
}

/// A change the server refused (a dead letter).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RejectedChange {
    pub op_id: String,
    pub collection: String,
    pub id: String,
    pub kind: ChangeKind,
    /// Why the server refused it.
    pub reason: ValidationReason,
    /// The server's code for it (`invalid_payload`, `invalid_parent`, `too_large`,
    /// `unknown_entity`, or one this version does not know).
    pub reason_code: String,
    pub document: Option<String>,
    pub created_at: SystemTime,
    /// The space of the change's record; `None` for the user's own records. A change of a space
    /// the user was removed from is refused `Forbidden` and keeps its space here.
    #[uniffi(default)]
    pub space_id: Option<String>,
}

impl From<tandem_protocol::User> for User {
    fn from(u: tandem_protocol::User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            created_at: u.created_at,
        }
    }
}

impl From<EngineAuthState> for AuthState {
    fn from(s: EngineAuthState) -> Self {
        match s {
            EngineAuthState::SignedOut => Self::SignedOut,
            EngineAuthState::SignedIn(user) => Self::SignedIn { user: user.into() },
            EngineAuthState::SessionExpired(user) => Self::SessionExpired { user: user.into() },
        }
    }
}

impl From<Status> for SyncStatus {
    fn from(s: Status) -> Self {
        Self {
            phase: match s.phase {
                Phase::Idle => SyncPhase::Idle,
                Phase::Pushing => SyncPhase::Pushing,
                Phase::Pulling => SyncPhase::Pulling,
                Phase::Offline => SyncPhase::Offline,
                Phase::Paused => SyncPhase::Paused,
                Phase::SignedOut => SyncPhase::SignedOut,
                Phase::Error => SyncPhase::Error,
            },
            pending: s.pending,
            conflicts: s.conflicts,
            rejected: s.rejected,
            last_synced_at: s.last_synced_at.map(time),
            last_error: s.last_error,
            pulled: s.pulled,
            remaining: s.remaining,
            realtime: s.realtime,
            last_run_at: s.last_run_at.map(time),
            last_failure: s.last_failure.map(SyncFailure::from),
            attachments_pending: s.attachments_pending,
            attachment_bytes_pending: s.attachment_bytes_pending,
            attachment_bytes_transferred: s.attachment_bytes_transferred,
        }
    }
}

impl From<EngineReport> for SyncReport {
    fn from(r: EngineReport) -> Self {
        Self {
            pushed: r.pushed,
            applied: r.applied,
            duplicates: r.duplicates,
            conflicts: r.conflicts,
            rejected: r.rejected,
            pulled: r.pulled,
            duration_ms: r.duration_ms,
            full_repull: r.full_repull,
            attachments_uploaded: r.attachments_uploaded,
            attachment_bytes_sent: r.attachment_bytes_sent,
            attachment_bytes_received: r.attachment_bytes_received,
            parked: r
                .parked
                .into_iter()
                .map(|(collection, id)| ParkedConflict { collection, id })
                .collect(),
            outcomes: r
                .outcomes
                .into_iter()
                .map(|o| {
                    use tandem_core::Outcome;
                    let (kind, reason) = match o.outcome {
                        Outcome::Applied => (OutcomeKind::Applied, None),
                        Outcome::Duplicate => (OutcomeKind::Duplicate, None),
                        Outcome::ConflictSettled => (OutcomeKind::ConflictSettled, None),
                        Outcome::ConflictParked => (OutcomeKind::ConflictParked, None),
                        Outcome::Rejected(reason) => (OutcomeKind::Rejected, Some(reason)),
                        Outcome::WaitsForParent => (OutcomeKind::WaitsForParent, None),
                        Outcome::WaitsForGroup(failed) => {
                            (OutcomeKind::WaitsForGroup, Some(failed))
                        }
                    };
                    PushOutcome {
                        op_id: o.op_id,
                        collection: o.collection,
                        id: o.id,
                        kind,
                        reason,
                    }
                })
                .collect(),
        }
    }
}

impl From<Metrics> for SyncMetrics {
    fn from(m: Metrics) -> Self {
        Self {
            triggers: m
                .triggers
                .into_iter()
                .map(|(t, count)| TriggerCount {
                    reason: t.name().into(),
                    count,
                })
                .collect(),
            runs: m.runs,
            failures: m.failures,
            ops_pushed: m.ops_pushed,
            changes_pulled: m.changes_pulled,
            bytes_sent: m.bytes_sent,
            bytes_received: m.bytes_received,
            last_run_duration_ms: m.last_run_duration_ms,
        }
    }
}

impl From<ConflictRow> for Conflict {
    fn from(c: ConflictRow) -> Self {
        Self {
            collection: c.collection,
            id: c.id,
            reason: match c.reason {
                EngineReason::BothChanged => ConflictReason::BothChanged,
                EngineReason::LocalEditServerDelete => ConflictReason::LocalEditServerDelete,
                EngineReason::LocalDeleteServerEdit => ConflictReason::LocalDeleteServerEdit,
                EngineReason::Manual => ConflictReason::Manual,
                EngineReason::UniqueViolation => ConflictReason::UniqueViolation,
            },
            existing_id: c.existing_id,
            fields: c.fields,
            local_document: c.local_doc,
            server_document: c.server_doc,
            base_document: c.base_doc,
            server_version: c.server_version.max(0) as u64,
        }
    }
}

impl TryFrom<Resolution> for EngineResolution {
    type Error = TandemError;

    fn try_from(r: Resolution) -> Result<Self, TandemError> {
        Ok(match r {
            Resolution::KeepMine => Self::KeepMine,
            Resolution::KeepServer => Self::KeepServer,
            Resolution::Merged { json } => Self::Merged(parse_json("the merged document", &json)?),
        })
    }
}

impl From<EngineOutboxEntry> for RejectedChange {
    fn from(e: EngineOutboxEntry) -> Self {
        Self {
            op_id: e.op_id,
            collection: e.collection,
            id: e.entity_id,
            kind: e.op.into(),
            reason: ValidationReason::from_code(e.last_error.as_deref().unwrap_or_default()),
            reason_code: e.last_error.unwrap_or_default(),
            document: e.doc,
            created_at: time(e.created_at),
            space_id: e.space_id,
        }
    }
}

/// A stored record that breaks a reference or unique constraint the schema added after it was
/// written (see `Tandem::schema_violations`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SchemaViolation {
    pub collection: String,
    pub id: String,
    pub kind: SchemaViolationKind,
}

/// What a [`SchemaViolation`] breaks.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SchemaViolationKind {
    /// `field` names `target_collection/target_id`, which does not exist.
    DanglingReference {
        field: String,
        target_collection: String,
        target_id: String,
    },
    /// The record's values of `fields` are those of `other_id`.
    DuplicateKey {
        fields: Vec<String>,
        other_id: String,
    },
}

impl From<tandem_core::RuleViolation> for SchemaViolation {
    fn from(v: tandem_core::RuleViolation) -> Self {
        Self {
            collection: v.collection,
            id: v.id,
            kind: match v.kind {
                tandem_core::ViolationKind::DanglingReference {
                    field,
                    target_collection,
                    target_id,
                } => SchemaViolationKind::DanglingReference {
                    field,
                    target_collection,
                    target_id,
                },
                tandem_core::ViolationKind::DuplicateKey { fields, other_id } => {
                    SchemaViolationKind::DuplicateKey { fields, other_id }
                }
            },
        }
    }
}
