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
//! - `ops`: applied opIds for idempotency;
//! - `meta`: the generated JWT secret.

mod postgres;
mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tandem_protocol::{Mutation, MutationResult, Schema};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

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

/// What a push did.
#[derive(Debug)]
pub struct PushOutcome {
    pub results: Vec<MutationResult>,
    /// The user's change sequence after the push, when it changed anything.
    pub new_seq: Option<i64>,
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

    /// The user's current change sequence (0 for a user with no changes or no row).
    pub async fn latest_seq(&self, user_id: &str) -> Result<i64, StorageError> {
        match self {
            Self::Sqlite(s) => s.latest_seq(user_id).await,
            Self::Postgres(s) => s.latest_seq(user_id).await,
        }
    }

    /// Deletes tombstones last changed before `tombstones_before_ms` (raising each user's
    /// `purged_seq`) and op ids older than `ops_before_ms`. Returns the tombstones purged.
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
}
