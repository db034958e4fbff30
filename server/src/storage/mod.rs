//! Where accounts, sessions and records live: SQLite (one file, one writer) or PostgreSQL (shared
//! by any number of server instances). Both keep the same tables:
//!
//! - `users`: the account, plus `change_seq` (the user's change sequence, advanced only while the
//!   user's row is locked, so per user the sequence order is the commit order and a cursor never
//!   skips a change committed later) and `purged_seq` (highest sequence number of a purged
//!   tombstone; a cursor below it answers 410 when it was raised after the cursor was issued);
//! - `sessions` and `refresh_tokens` (hashed, single-use);
//! - `records`: the latest state of each (user, entity, entityId) with the `seq` of its last change,
//!   so a pull is one index range scan on (user_id, seq);
//! - `seq_blocks`: per user, how many `records` rows have a `seq` in each block of
//!   [`SEQ_BLOCK`] sequence numbers, kept exact in the transaction that changes `records`. It makes
//!   a pull's `remaining` cost one partial block plus one small row per later block, where a
//!   `count(*)` of everything after the cursor walked every remaining row on every page;
//! - `ops`: applied opIds for idempotency (keyed by the *pushing* user, whatever stream it wrote);
//! - `meta`: the generated JWT secret;
//! - `streams`: the change sequence and purge state of every stream that is not a user's own
//!   (`public`, `space:<id>`), advanced only under that row's lock as `users.change_seq` is;
//!   `deleted_at` marks a deleted space whose records the purge task removes in the background
//!   (and, under a user id, a deleted user's: see `users.rs`);
//! - `spaces`, `members` (`members_by_user` for a user's spaces), `invitations`, and
//!   `user_epochs` (bumped when a user's spaces, roles or invitations change).
//! - `rejections` (the changes pushes refused, the newest 10,000) and `users.last_push_at`,
//!   `users.last_pull_at`: what the operator sees of users (`users.rs`, `admin_*.rs`).
//!
//! The `user_id` column of `records`, `seq_blocks`, `record_refs`, `record_uniques` and
//! `record_blobs` holds the *stream key*: a user id for the user's own records, `space:<id>` or
//! `public`. A user id is a UUID (no `:`), so the kinds never collide. Lock order (deadlock
//! freedom on PostgreSQL): a push locks the pusher's `users` row, then the `streams` rows it
//! writes `ORDER BY id`, then (`FOR SHARE`) the `blobs` rows its new attachments name;
//! membership changes lock the `streams` row, then `user_epochs` rows `ORDER BY user_id`; the
//! purge locks users, commits, then `streams` rows in id order, and its blob collection locks
//! `blobs` rows only. Nothing locks `users` after `streams`, nor either after `blobs`.

mod admin_postgres;
mod admin_sqlite;
mod blobs_postgres;
mod blobs_sqlite;
mod control_postgres;
mod control_sqlite;
mod postgres;
mod record_blobs_postgres;
mod record_blobs_sqlite;
mod spaces_postgres;
mod spaces_sqlite;
mod sqlite;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tandem_protocol::{Mutation, MutationResult, Schema};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use users::*;

use crate::cursor::Cursor;
use crate::push::{RecordKey, RecordWrite, StoredRecord};

/// A storage failure: the server's fault, never the client's.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    /// A text the database cannot store (PostgreSQL refuses NUL and characters outside its
    /// encoding): bad input that got past the route's checks, not a failure of the server.
    pub fn is_unstorable_text(&self) -> bool {
        use tokio_postgres::error::SqlState;
        let Self::Postgres(e) = self else {
            return false;
        };
        e.code().is_some_and(|code| {
            *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
                || *code == SqlState::UNTRANSLATABLE_CHARACTER
        })
    }
}

impl From<tokio::task::JoinError> for StorageError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Other(format!("storage task failed: {e}"))
    }
}

/// An account as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at_ms: i64,
}

/// A stored pause (the kill switch): `scope` is `*` (everyone) or a user id; `email` is the
/// user's when read back (for the admin list), ignored when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseRow {
    pub scope: String,
    pub email: Option<String>,
    pub paused_at_ms: i64,
    pub retry_after_secs: i64,
    pub reason: String,
}

/// What exchanging a refresh token came to.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// The token was live; the new one is stored in the same sign-in.
    Exchanged { user: UserRow, session_id: String },
    /// Unknown, revoked, or already exchanged.
    Refused,
}

/// One pulled record, in its latest state.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub entity: String,
    pub entity_id: String,
    pub version: i64,
    pub deleted: bool,
    pub doc: Option<String>,
    pub seq: i64,
    pub updated_at_ms: i64,
    /// The group whose push last wrote the record, and that group's last sequence number.
    pub group_id: Option<String>,
    pub group_end: Option<i64>,
    /// The edit time (HLC text) of the record's last change.
    pub edited_at: Option<String>,
    /// The edit time of each field, a JSON object as stored.
    pub field_edited_at: Option<String>,
}

/// Where a page of `changes` must end so that it does not end inside a group: the last change's
/// group end when that is beyond it (the page is then extended to it), else `None`.
pub fn group_tail(changes: &[ChangeRow]) -> Option<i64> {
    let last = changes.last()?;
    last.group_end.filter(|&end| end > last.seq)
}

/// One page of a pull, read from one snapshot.
#[derive(Debug)]
pub struct PullPage {
    pub changes: Vec<ChangeRow>,
    /// Changes after this page.
    pub remaining: u64,
    /// The user's change sequence in the snapshot.
    pub user_seq: i64,
    /// Highest purged tombstone sequence number, in the page's snapshot: cursors issued before it
    /// rose are expired below it, and the next cursor records it.
    pub purged_seq: i64,
}

/// `remaining` of a page read in the same snapshot as `rows_after_cursor` (the count of the
/// user's rows with a `seq` after the cursor): the page holds the first of those rows in `seq`
/// order, so the rest is the difference. A page shorter than `limit` holds them all.
pub fn remaining_after_page(rows_after_cursor: i64, page_len: usize, limit: u32) -> u64 {
    if page_len < limit as usize {
        return 0;
    }
    (rows_after_cursor.max(0) as u64).saturating_sub(page_len as u64)
}

/// A pull of every stream the user may read (the `{"streams": …}` form): the streams the request
/// names, by wire name (`user`, `public`, `space:<id>`), each with its decoded cursor (`None`:
/// from the beginning).
#[derive(Debug, Clone)]
pub struct PullJob {
    pub user_id: String,
    pub named: HashMap<String, Option<Cursor>>,
    /// The client's `accountSeq`: the account section is read when it differs.
    pub account_seq: Option<i64>,
    pub limit: u32,
    /// For the expiry of invitations in the account section.
    pub now_ms: i64,
}

/// Where one stream stands in the page: moved to a new position, gone (the user may no longer
/// read it, or it never existed), or expired (a purge passed its cursor: pull it from the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    Ok(Cursor),
    Gone,
    Expired,
}

/// One page of a multi-stream pull, read from one snapshot.
#[derive(Debug)]
pub struct MultiPullPage {
    /// Each change with the wire name of its stream, in page order.
    pub changes: Vec<(String, ChangeRow)>,
    /// An entry for every stream whose position moved and every gone or expired stream.
    pub streams: Vec<(String, StreamStatus)>,
    /// Rows still to fetch over every readable stream (an expired one counts from its start).
    pub remaining: u64,
    /// Whether the client should pull again at once (rows remain, or a stream expired).
    pub has_more: bool,
    /// Present when the request's `accountSeq` differs from the user's.
    pub account: Option<Account>,
}

/// What a multi-stream pull came to.
#[derive(Debug)]
pub enum MultiPull {
    Page(MultiPullPage),
    /// The cursor of this (readable) stream is ahead of the stream's head: not issued for this
    /// stream's present (a refused request, as the single-stream form answers it).
    AheadOfHead(String),
}

/// A stream the user may read, as the page's snapshot has it.
#[derive(Debug, Clone)]
pub struct Readable {
    /// `user`, `public` or `space:<id>`.
    pub wire: String,
    /// The key of its rows (`records.user_id`): the user's id, `public` or `space:<id>`.
    pub db: String,
    pub head: i64,
    pub purged_seq: i64,
}

/// One stream to read in a page: from `from` (exclusive), up to `head`.
#[derive(Debug, Clone)]
pub struct StreamRead {
    pub stream: Readable,
    pub from: i64,
    /// Pulled from the beginning (the request gave no cursor): its position is reported even
    /// when nothing is read, so the client holds a cursor from then on.
    pub bootstrap: bool,
}

/// The streams to read in page order, and the statuses known before reading.
pub type PlannedPull = (Vec<StreamRead>, Vec<(String, StreamStatus)>);

/// The readable streams in page order: streams the request gave a cursor (incremental) first,
/// then those pulled from the beginning, each group in the order `user`, `public`, spaces by id
/// (the order of `readable`); plus the statuses known before reading (named streams the user may
/// not read are `gone`, before their position is looked at; cursors a purge passed, `expired`).
pub fn plan_pull(
    readable: &[Readable],
    named: &HashMap<String, Option<Cursor>>,
) -> Result<PlannedPull, String> {
    let mut statuses: Vec<(String, StreamStatus)> = named
        .keys()
        .filter(|wire| !readable.iter().any(|r| &r.wire == *wire))
        .map(|wire| (wire.clone(), StreamStatus::Gone))
        .collect();
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    let mut incremental = Vec::new();
    let mut bootstraps = Vec::new();
    for r in readable {
        match named.get(&r.wire).copied().flatten() {
            Some(cursor) if cursor.seq > r.head => return Err(r.wire.clone()),
            Some(cursor) if cursor.expired(r.purged_seq) => {
                statuses.push((r.wire.clone(), StreamStatus::Expired));
            }
            Some(cursor) => incremental.push(StreamRead {
                stream: r.clone(),
                from: cursor.seq,
                bootstrap: false,
            }),
            None => bootstraps.push(StreamRead {
                stream: r.clone(),
                from: 0,
                bootstrap: true,
            }),
        }
    }
    incremental.extend(bootstraps);
    Ok((incremental, statuses))
}

/// What reading one stream in a page came to: its rows (extended to the end of a group), and
/// its next position when it moved (`None`: not reached, or nothing new).
pub fn stream_read_result(
    read: &StreamRead,
    rows: &[ChangeRow],
    quota: usize,
) -> (Option<StreamStatus>, bool) {
    let head = read.stream.head;
    // Read to its end: fewer rows than asked, or the last one is the head.
    let finished = rows.len() < quota || rows.last().is_some_and(|r| r.seq >= head);
    let seq = if finished {
        head.max(read.from)
    } else {
        rows.last().map_or(read.from, |r| r.seq)
    };
    let moved = seq != read.from || read.bootstrap;
    let status = moved.then_some(StreamStatus::Ok(Cursor {
        seq,
        purged_seq: read.stream.purged_seq,
    }));
    (status, finished)
}

/// What a push did.
#[derive(Debug)]
pub struct PushOutcome {
    pub results: Vec<MutationResult>,
    /// The user's change sequence after the push, when it changed anything of the user's stream.
    pub new_seq: Option<i64>,
    /// The change sequence after the push of every other stream (`space:<id>`) it changed.
    pub stream_seqs: Vec<(String, i64)>,
}

impl PushOutcome {
    /// What a push that changed nothing answers.
    pub fn unchanged(results: Vec<MutationResult>) -> Self {
        Self {
            results,
            new_seq: None,
            stream_seqs: Vec::new(),
        }
    }

    /// What a push that wrote `plan` answers.
    pub(crate) fn written(plan: crate::push::PushPlan, user: &str) -> Self {
        let new_seq = plan
            .writes
            .iter()
            .any(|w| w.record.key.stream == user)
            .then_some(plan.last_seq);
        Self {
            results: plan.results,
            new_seq,
            stream_seqs: plan.stream_seqs,
        }
    }
}

/// Inputs of a push that both backends need.
pub struct PushJob {
    pub user_id: String,
    pub mutations: Vec<Mutation>,
    pub schema: Arc<Schema>,
    pub now_ms: i64,
    /// The pushing client: the node of the edit times stamped for changes that carry none.
    pub client_id: String,
}

/// Blobs the purge's collection handles per transaction.
pub const BLOB_GC_BATCH: i64 = 100;

/// Deletes a blob's object from the blob store; `false` when that failed (logged by the
/// caller's function; the row stays, and the next purge tries again). A missing object counts
/// as deleted.
pub type DeleteObject =
    Arc<dyn Fn(String) -> futures_util::future::BoxFuture<'static, bool> + Send + Sync>;

/// What one collection of unreferenced blobs did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlobGc {
    /// Blobs found unreferenced (and unheld within the grace period) and marked orphaned.
    pub marked: u64,
    /// Orphaned blobs referenced or held again, unmarked.
    pub revived: u64,
    /// Blobs orphaned longer than the retention, deleted (object, row and holders).
    pub deleted: u64,
    /// Of those, blobs whose object could not be deleted (kept for the next purge).
    pub failed: u64,
}

/// An upload nobody has sent a chunk to since before the retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedUpload {
    pub user_id: String,
    pub hash: String,
    pub multipart_id: String,
    pub updated_at_ms: i64,
}

/// A member's role in a space (stored as text in `members.role` and `invitations.role`).
pub use tandem_protocol::Role;

/// A stored role; an unknown text is a storage failure, never a silent role.
pub(crate) fn stored_role(text: &str) -> Result<Role, StorageError> {
    Role::parse(text).ok_or_else(|| StorageError::Other(format!("unknown stored role {text:?}")))
}

/// A space as one of its members sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceRow {
    pub id: String,
    pub name: String,
    /// The role of the member it is read for.
    pub role: Role,
    pub member_count: i64,
    pub created_at_ms: i64,
}

/// A member of a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub joined_at_ms: i64,
}

/// A pending invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRow {
    pub id: String,
    pub space_id: String,
    pub space_name: String,
    /// The invitee's email (trimmed, lower-cased): shown to the space's owners, never in logs.
    pub email: String,
    pub role: Role,
    pub invited_by_email: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What a membership call came to. "Not a member" is always `NotFound`, like a space that does
/// not exist: a non-member learns nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpaceOutcome<T> {
    Done(T),
    NotFound,
    /// A member whose role does not allow the call.
    Forbidden,
    /// The call would leave the space without an owner.
    LastOwner,
    AlreadyMember,
    /// A limit (spaces per user, members per space, pending invitations per space).
    Limit,
}

/// A user's spaces and pending invitations, with the `user_epochs` sequence they were read at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub account_seq: i64,
    pub spaces: Vec<SpaceRow>,
    pub invitations: Vec<InvitationRow>,
}

/// One write of the admin interface to a public collection: `doc: None` deletes.
#[derive(Debug, Clone)]
pub struct AdminWrite {
    pub collection: String,
    pub id: String,
    pub doc: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What one admin write did: the record's version after it, and whether it changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminResult {
    pub id: String,
    pub version: i64,
    pub changed: bool,
}

/// A complete blob (`blobs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRow {
    pub hash: String,
    pub size: i64,
    pub content_type: String,
    pub created_at_ms: i64,
}

/// An upload in progress (`blob_uploads`): the user's upload of one hash, its multipart upload in
/// the blob store, the bytes durably received, and the store's id of each part so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub user_id: String,
    pub hash: String,
    pub size: i64,
    pub content_type: String,
    pub multipart_id: String,
    pub offset: i64,
    pub parts: Vec<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// `blob_uploads.parts` as stored: a JSON array of part ids.
pub(crate) fn encode_parts(parts: &[String]) -> Result<String, StorageError> {
    serde_json::to_string(parts).map_err(|e| StorageError::Other(e.to_string()))
}

/// `blob_uploads.parts` (a JSON array of part ids) as stored.
pub(crate) fn parse_parts(text: &str) -> Result<Vec<String>, StorageError> {
    serde_json::from_str(text)
        .map_err(|e| StorageError::Other(format!("unreadable blob_uploads.parts: {e}")))
}

/// How long a holder may read a blob it uploaded (or claimed) with no record naming it, by
/// default: 24 hours (`--attachment-grace-secs`).
pub const DEFAULT_BLOB_GRACE_MS: i64 = 24 * 3600 * 1000;

/// Connections of a pool: in use, idle, and the most it opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub in_use: usize,
    pub idle: usize,
    pub max: usize,
}

impl PoolStatus {
    /// From a deadpool pool's status (`size` connections open, `available` of them idle).
    pub fn of(status: deadpool::Status) -> Self {
        Self {
            in_use: status.size.saturating_sub(status.available),
            idle: status.available,
            max: status.max_size,
        }
    }
}

/// The storage backend chosen by `--db`.
#[derive(Clone)]
pub enum Storage {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// What a push judges against, as loaded from the database.
pub(crate) struct LoadedState {
    /// opId → version, for the batch's opIds that were applied before.
    pub known_ops: HashMap<String, i64>,
    /// The stored records the batch names, and their live descendants when it deletes.
    pub records: HashMap<RecordKey, StoredRecord>,
    /// The `seq` of each loaded record's row: the row a write replaces leaves its block.
    pub stored_seqs: HashMap<RecordKey, i64>,
}

impl LoadedState {
    /// Adds a loaded record and the `seq` of its row; returns its key when it was new.
    pub fn add(&mut self, record: StoredRecord, seq: i64) -> Option<RecordKey> {
        if self.records.contains_key(&record.key) {
            return None;
        }
        let key = record.key.clone();
        self.stored_seqs.insert(key.clone(), seq);
        self.records.insert(key.clone(), record);
        Some(key)
    }
}

/// Sequence numbers per `seq_blocks` row. A pull's `remaining` reads at most this many index
/// entries of the cursor's own block plus one row per later block; 1024 keeps both small up to
/// millions of changes per user.
pub const SEQ_BLOCK: i64 = 1024;

/// The block of sequence number `seq`.
pub fn seq_block(seq: i64) -> i64 {
    seq.div_euclid(SEQ_BLOCK)
}

/// Where counting a stream's rows after `after_seq` splits (the stream form's `remaining`): the
/// rows in `(after_seq, start)` are counted by index, the blocks from `next_block` on by their
/// `seq_blocks` counts. Returns `(start, next_block)`. Sequence numbers start at 1, so from the
/// beginning (0) the block counts alone are exact and no index entry is read.
pub fn count_split(after_seq: i64) -> (i64, i64) {
    if after_seq <= 0 {
        return (0, 0);
    }
    let next_block = seq_block(after_seq) + 1;
    (next_block * SEQ_BLOCK, next_block)
}

/// How a push changes the live row count of each block: +1 where each written row lands, -1 where
/// the row it replaces was. Returns (block, delta) pairs without zero deltas, sorted by block so
/// that concurrent transactions lock block rows in one order.
pub fn block_deltas(
    writes: &[RecordWrite],
    stored_seqs: &HashMap<RecordKey, i64>,
) -> (Vec<i64>, Vec<i64>) {
    let mut deltas: BTreeMap<i64, i64> = BTreeMap::new();
    for w in writes {
        *deltas.entry(seq_block(w.seq)).or_default() += 1;
        if let Some(&old) = stored_seqs.get(&w.record.key) {
            *deltas.entry(seq_block(old)).or_default() -= 1;
        }
    }
    deltas.into_iter().filter(|(_, d)| *d != 0).unzip()
}

impl Storage {
    /// Opens (and migrates) the database named by `url`: `sqlite://PATH` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Self::Sqlite(SqliteStore::open(path).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(PostgresStore::open(url).await?))
        } else {
            Err(StorageError::Other(
                "--db must start with sqlite:// or postgres://".into(),
            ))
        }
    }

    /// Makes the tables of references and unique keys cover every live record under `schema`'s
    /// rules: when the rules differ from those the database was last indexed for (a schema that
    /// added a `ref` or a `unique` constraint to a collection with data), the tables are rebuilt
    /// from the stored records, once, at start-up.
    pub async fn index_rules(&self, schema: &Schema) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => s.index_rules(schema).await,
            Self::Postgres(p) => p.index_rules(schema).await,
        }
    }

    /// Whether change notifications come back from the database (PostgreSQL LISTEN/NOTIFY) rather
    /// than from this process.
    pub fn notifies_changes(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// A JWT secret an earlier version kept in a SQLite database's `meta` table, if any.
    pub async fn legacy_jwt_secret(&self) -> Result<Option<String>, StorageError> {
        match self {
            Self::Sqlite(s) => s.legacy_jwt_secret().await,
            Self::Postgres(_) => Ok(None),
        }
    }

    /// Deletes that secret, once it has been moved out of the database.
    pub async fn delete_legacy_jwt_secret(&self) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => s.delete_legacy_jwt_secret().await,
            Self::Postgres(_) => Ok(()),
        }
    }

    /// Creates an account; `Ok(false)` when the email is taken.
    pub async fn create_user(&self, user: UserRow) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.create_user(user).await,
            Self::Postgres(s) => s.create_user(user).await,
        }
    }

    /// Creates an account unless its id or email exists already; `Ok(false)` then (external
    /// auth mode's provisioning, where two first requests of one user may race).
    pub async fn insert_user_if_absent(&self, user: UserRow) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.insert_user_if_absent(user).await,
            Self::Postgres(s) => s.insert_user_if_absent(user).await,
        }
    }

    /// Sets the email of `user_id` unless another user has it; `Ok(false)` then.
    pub async fn update_user_email(
        &self,
        user_id: &str,
        email: &str,
    ) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.update_user_email(user_id, email).await,
            Self::Postgres(s) => s.update_user_email(user_id, email).await,
        }
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StorageError> {
        match self {
            Self::Sqlite(s) => s.user_by_email(email).await,
            Self::Postgres(s) => s.user_by_email(email).await,
        }
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StorageError> {
        match self {
            Self::Sqlite(s) => s.user_by_id(id).await,
            Self::Postgres(s) => s.user_by_id(id).await,
        }
    }

    /// Whether sign-in `session_id` of `user_id` exists and is not revoked (signed out, revoked
    /// by the operator or by a refresh token's late reuse). Read by `/auth/v1` only.
    pub async fn session_active(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.session_active(user_id, session_id).await,
            Self::Postgres(s) => s.session_active(user_id, session_id).await,
        }
    }

    /// Starts a sign-in with its first refresh token (stored as `token_hash`).
    pub async fn create_session(
        &self,
        user_id: &str,
        session_id: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => {
                s.create_session(user_id, session_id, token_hash, now_ms)
                    .await
            }
            Self::Postgres(s) => {
                s.create_session(user_id, session_id, token_hash, now_ms)
                    .await
            }
        }
    }

    /// Exchanges the refresh token `old_hash` for `new_hash`. A token already exchanged is taken
    /// for a retry after a lost answer while it is within `grace_ms` of its exchange and the token
    /// that exchange handed out is still unused: that one is replaced by `new_hash`. Otherwise a
    /// reuse is refused, and one after `grace_ms` revokes the whole sign-in.
    pub async fn exchange_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<RefreshOutcome, StorageError> {
        match self {
            Self::Sqlite(s) => {
                s.exchange_refresh_token(old_hash, new_hash, now_ms, grace_ms)
                    .await
            }
            Self::Postgres(s) => {
                s.exchange_refresh_token(old_hash, new_hash, now_ms, grace_ms)
                    .await
            }
        }
    }

    /// Revokes sign-in `session_id` of `user_id` (its refresh tokens stop working).
    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => s.revoke_session(user_id, session_id, now_ms).await,
            Self::Postgres(s) => s.revoke_session(user_id, session_id, now_ms).await,
        }
    }

    /// Revokes every sign-in of `user_id` but `keep_session_id`; returns how many.
    pub async fn revoke_other_sessions(
        &self,
        user_id: &str,
        keep_session_id: &str,
        now_ms: i64,
    ) -> Result<u64, StorageError> {
        match self {
            Self::Sqlite(s) => {
                s.revoke_other_sessions(user_id, keep_session_id, now_ms)
                    .await
            }
            Self::Postgres(s) => {
                s.revoke_other_sessions(user_id, keep_session_id, now_ms)
                    .await
            }
        }
    }

    /// Judges and applies a batch in one transaction; `None` when the user does not exist.
    pub async fn push(&self, job: PushJob) -> Result<Option<PushOutcome>, StorageError> {
        match self {
            Self::Sqlite(s) => s.push(job).await,
            Self::Postgres(s) => s.push(job).await,
        }
    }

    /// Up to `limit` changes after `after_seq`; `None` when the user does not exist.
    pub async fn pull(
        &self,
        user_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Option<PullPage>, StorageError> {
        match self {
            Self::Sqlite(s) => s.pull(user_id, after_seq, limit).await,
            Self::Postgres(s) => s.pull(user_id, after_seq, limit).await,
        }
    }

    /// A page of every stream the user may read (the `{"streams": …}` pull form); `None` when
    /// the user does not exist.
    pub async fn pull_streams(&self, job: PullJob) -> Result<Option<MultiPull>, StorageError> {
        match self {
            Self::Sqlite(s) => s.pull_streams(job).await,
            Self::Postgres(s) => s.pull_streams(job).await,
        }
    }

    /// The user's spaces and pending invitations (expired ones left out), with their
    /// `user_epochs` sequence, read in one snapshot.
    pub async fn account(&self, user_id: &str, now_ms: i64) -> Result<Account, StorageError> {
        match self {
            Self::Sqlite(s) => s.account(user_id, now_ms).await,
            Self::Postgres(s) => s.account(user_id, now_ms).await,
        }
    }

    /// The database keys of the streams the user may read (their id, `public`, `space:<id>` of
    /// each live space they are a member of): what `events::ChangeNotice::stream` names, for
    /// event streams. Empty when the user does not exist.
    pub async fn readable_streams(&self, user_id: &str) -> Result<Vec<String>, StorageError> {
        match self {
            Self::Sqlite(s) => s.readable_streams(user_id).await,
            Self::Postgres(s) => s.readable_streams(user_id).await,
        }
    }

    /// The user's current change sequence (0 for a user with no changes or no row).
    pub async fn latest_seq(&self, user_id: &str) -> Result<i64, StorageError> {
        match self {
            Self::Sqlite(s) => s.latest_seq(user_id).await,
            Self::Postgres(s) => s.latest_seq(user_id).await,
        }
    }

    /// Deletes tombstones last changed before `tombstones_before_ms` (raising the `purged_seq`
    /// of each user and each stream that had one) and op ids older than `ops_before_ms`. Returns
    /// the tombstones purged.
    pub async fn purge(
        &self,
        tombstones_before_ms: i64,
        ops_before_ms: i64,
    ) -> Result<u64, StorageError> {
        match self {
            Self::Sqlite(s) => s.purge(tombstones_before_ms, ops_before_ms).await,
            Self::Postgres(s) => s.purge(tombstones_before_ms, ops_before_ms).await,
        }
    }

    /// Of `hashes`, the blobs the server holds complete.
    pub async fn complete_blobs(
        &self,
        hashes: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, StorageError> {
        match self {
            Self::Sqlite(s) => s.complete_blobs(hashes).await,
            Self::Postgres(s) => s.complete_blobs(hashes).await,
        }
    }

    /// The purge's collection of blobs: marks blobs no live record references and nobody holds
    /// since `held_after_ms` as orphaned (at `now_ms`), unmarks orphans referenced or held again,
    /// and deletes blobs orphaned before `orphaned_before_ms` that are still unused: the object
    /// through `delete` first, then (only when that worked) the row and its holders.
    pub async fn collect_blobs(
        &self,
        now_ms: i64,
        held_after_ms: i64,
        orphaned_before_ms: i64,
        delete: DeleteObject,
    ) -> Result<BlobGc, StorageError> {
        match self {
            Self::Sqlite(s) => {
                s.collect_blobs(now_ms, held_after_ms, orphaned_before_ms, delete)
                    .await
            }
            Self::Postgres(s) => {
                s.collect_blobs(now_ms, held_after_ms, orphaned_before_ms, delete)
                    .await
            }
        }
    }

    /// Uploads last advanced before `updated_before_ms` (at most [`BLOB_GC_BATCH`], oldest
    /// first): the purge aborts their multipart uploads and deletes them.
    pub async fn abandoned_uploads(
        &self,
        updated_before_ms: i64,
    ) -> Result<Vec<AbandonedUpload>, StorageError> {
        match self {
            Self::Sqlite(s) => s.abandoned_uploads(updated_before_ms).await,
            Self::Postgres(s) => s.abandoned_uploads(updated_before_ms).await,
        }
    }

    /// Deletes an abandoned upload's row, unless a chunk advanced it since it was read.
    pub async fn forget_abandoned_upload(
        &self,
        upload: AbandonedUpload,
    ) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.forget_abandoned_upload(upload).await,
            Self::Postgres(s) => s.forget_abandoned_upload(upload).await,
        }
    }

    /// Deletes the records of deleted spaces in the background (10,000 rows per transaction),
    /// then their stream rows. Returns the rows deleted.
    pub async fn purge_deleted_spaces(&self) -> Result<u64, StorageError> {
        match self {
            Self::Sqlite(s) => s.purge_deleted_spaces().await,
            Self::Postgres(s) => s.purge_deleted_spaces().await,
        }
    }

    /// Sets how long a `blob_holders` row lets its user read the blob (default
    /// [`DEFAULT_BLOB_GRACE_MS`]); shared by every clone of this storage.
    pub fn set_blob_grace_ms(&self, grace_ms: i64) {
        match self {
            Self::Sqlite(s) => s.set_blob_grace_ms(grace_ms),
            Self::Postgres(s) => s.set_blob_grace_ms(grace_ms),
        }
    }

    /// The complete blob `hash`, if the server has it.
    pub async fn blob(&self, hash: &str) -> Result<Option<BlobRow>, StorageError> {
        match self {
            Self::Sqlite(s) => s.blob(hash).await,
            Self::Postgres(s) => s.blob(hash).await,
        }
    }

    /// Whether `user_id` may read blob `hash`: it is complete on the server, and a live record of
    /// a stream the user may read (their own, `public`, a live space they are a member of) names
    /// it, or the user holds it (uploaded or claimed it) within the grace period before `now_ms`.
    pub async fn may_read_blob(
        &self,
        user_id: &str,
        hash: &str,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.may_read_blob(user_id, hash, now_ms).await,
            Self::Postgres(s) => s.may_read_blob(user_id, hash, now_ms).await,
        }
    }

    /// Writes or refreshes the user's `blob_holders` row of `hash` (held at `now_ms`).
    pub async fn hold_blob(
        &self,
        user_id: &str,
        hash: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => s.hold_blob(user_id, hash, now_ms).await,
            Self::Postgres(s) => s.hold_blob(user_id, hash, now_ms).await,
        }
    }

    /// The bytes the user holds (their quota's use): the size of every blob of their
    /// `blob_holders` rows but `except_hash`'s.
    pub async fn held_bytes(&self, user_id: &str, except_hash: &str) -> Result<i64, StorageError> {
        match self {
            Self::Sqlite(s) => s.held_bytes(user_id, except_hash).await,
            Self::Postgres(s) => s.held_bytes(user_id, except_hash).await,
        }
    }

    /// The user's upload of `hash` in progress.
    pub async fn upload(
        &self,
        user_id: &str,
        hash: &str,
    ) -> Result<Option<UploadRow>, StorageError> {
        match self {
            Self::Sqlite(s) => s.upload(user_id, hash).await,
            Self::Postgres(s) => s.upload(user_id, hash).await,
        }
    }

    /// Opens (or restarts, replacing the row) the user's upload of `row.hash`.
    pub async fn put_upload(&self, row: UploadRow) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => s.put_upload(row).await,
            Self::Postgres(s) => s.put_upload(row).await,
        }
    }

    /// Moves `upload` (as read: its multipart id and offset) to `to_offset` with the part ids
    /// `parts`, guarded by the old offset and the multipart id: `false` (nothing changed) when
    /// another chunk, a restart or a completion got there first.
    pub async fn advance_upload(
        &self,
        upload: &UploadRow,
        to_offset: i64,
        parts: &[String],
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.advance_upload(upload, to_offset, parts, now_ms).await,
            Self::Postgres(s) => s.advance_upload(upload, to_offset, parts, now_ms).await,
        }
    }

    /// Deletes the user's upload of `hash` when it is still multipart upload `multipart_id`.
    pub async fn delete_upload(
        &self,
        user_id: &str,
        hash: &str,
        multipart_id: &str,
    ) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.delete_upload(user_id, hash, multipart_id).await,
            Self::Postgres(s) => s.delete_upload(user_id, hash, multipart_id).await,
        }
    }

    /// How the connection pool is used now (PostgreSQL's pool; SQLite's reader pool), for
    /// `tandem_db_pool_connections`.
    pub fn pool_status(&self) -> PoolStatus {
        match self {
            Self::Sqlite(s) => s.pool_status(),
            Self::Postgres(p) => p.pool_status(),
        }
    }

    /// Records a blob stored at `blobs/<hash>` in one transaction: its `blobs` row (an existing
    /// one is kept, and unmarked as orphaned), and for an upload of `holder` that user's
    /// `blob_holders` row (held now), its upload row deleted. `holder: None`: an admin upload,
    /// held by no one.
    pub async fn complete_blob(
        &self,
        holder: Option<&str>,
        blob: BlobRow,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => s.complete_blob(holder, blob, now_ms).await,
            Self::Postgres(s) => s.complete_blob(holder, blob, now_ms).await,
        }
    }
    // --- control plane (pauses, revocations; control_*.rs) ---

    /// Every stored pause, the global one first.
    pub async fn pauses(&self) -> Result<Vec<PauseRow>, StorageError> {
        match self {
            Self::Sqlite(s) => s.pauses().await,
            Self::Postgres(s) => s.pauses().await,
        }
    }

    /// Inserts or replaces a pause (on PostgreSQL, every instance hears of it on commit).
    pub async fn put_pause(&self, pause: PauseRow) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(s) => s.put_pause(pause).await,
            Self::Postgres(s) => s.put_pause(pause).await,
        }
    }

    /// Deletes the pause of `scope` (`*` or a user id); `false` when there was none.
    pub async fn delete_pause(&self, scope: &str) -> Result<bool, StorageError> {
        match self {
            Self::Sqlite(s) => s.delete_pause(scope).await,
            Self::Postgres(s) => s.delete_pause(scope).await,
        }
    }

    /// Revokes every sign-in of `user_id` and refuses every access token issued to it so far
    /// (`users.tokens_valid_after`, just after `now_ms` and after every `iat` handed out since
    /// the last revocation). Returns the sign-ins revoked and the new `tokens_valid_after`.
    pub async fn revoke_user(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<(u64, i64), StorageError> {
        match self {
            Self::Sqlite(s) => s.revoke_user(user_id, now_ms).await,
            Self::Postgres(s) => s.revoke_user(user_id, now_ms).await,
        }
    }

    /// `(user id, tokens_valid_after)` of the users revoked at or after `since_ms`.
    pub async fn revocations_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        match self {
            Self::Sqlite(s) => s.revocations_since(since_ms).await,
            Self::Postgres(s) => s.revocations_since(since_ms).await,
        }
    }

    /// The id of the user `user` names: a user id, or else an email.
    pub async fn resolve_user(&self, user: &str) -> Result<Option<String>, StorageError> {
        match self {
            Self::Sqlite(s) => s.resolve_user(user).await,
            Self::Postgres(s) => s.resolve_user(user).await,
        }
    }

    /// How many accounts there are.
    pub async fn user_count(&self) -> Result<u64, StorageError> {
        match self {
            Self::Sqlite(s) => s.user_count().await,
            Self::Postgres(s) => s.user_count().await,
        }
    }
}
