//! SQLite: one file in WAL mode, one writer connection (SQLite allows one writer at a time anyway,
//! so a mutex around it is the user row lock of the design, for every user at once) and a few
//! reader connections, all used on tokio's blocking pool. A push is one `BEGIN IMMEDIATE`
//! transaction of cached prepared statements, which in-process is as fast as multi-row SQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::users::RejectionLabels;
use super::{
    block_deltas, count_split, group_tail, plan_pull, remaining_after_page, seq_block,
    stream_read_result, Account, ChangeRow, InvitationRow, LoadedState, MultiPull, MultiPullPage,
    PullJob, PullPage, PushJob, PushOutcome, Readable, RefreshOutcome, Role, SpaceRow,
    StorageError, StreamStatus, UserRow, SEQ_BLOCK,
};
use crate::push::{self, PushPlan, RecordKey, StoredRecord};
use tandem_protocol::Schema;

const READERS: usize = 4;

/// Rows of a deleted space deleted per transaction.
pub const DELETED_SPACE_BATCH: i64 = 10_000;

const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    change_seq INTEGER NOT NULL DEFAULT 0,
    purged_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE TABLE IF NOT EXISTS records (
    user_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    doc TEXT,
    parent_entity TEXT,
    parent_id TEXT,
    seq INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, entity, entity_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS records_by_seq ON records (user_id, seq);
CREATE INDEX IF NOT EXISTS records_by_parent ON records (user_id, parent_entity, parent_id)
    WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tombstones_by_age ON records (updated_at) WHERE deleted = 1;
CREATE TABLE IF NOT EXISTS ops (
    user_id TEXT NOT NULL,
    op_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, op_id)
);
CREATE INDEX IF NOT EXISTS ops_by_age ON ops (created_at);
-- References and unique keys of live records (collections with `ref` fields or `unique`
-- constraints), maintained with every write: a delete finds its referrers and an upsert the
-- holder of its key by one index probe each.
CREATE TABLE IF NOT EXISTS record_refs (
    user_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    field TEXT NOT NULL,
    target_entity TEXT NOT NULL,
    target_id TEXT NOT NULL,
    PRIMARY KEY (user_id, entity, entity_id, field)
);
CREATE INDEX IF NOT EXISTS record_refs_by_target ON record_refs (user_id, target_entity, target_id);
CREATE TABLE IF NOT EXISTS record_uniques (
    user_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (user_id, entity, entity_id, fields)
);
CREATE INDEX IF NOT EXISTS record_uniques_by_key ON record_uniques (user_id, entity, fields, key);
-- Spaces and public collections (docs/design/spaces.md section 4). One row per non-user stream:
-- its change sequence and purge state (a user's own stream keeps them in `users`).
CREATE TABLE IF NOT EXISTS streams (
    id TEXT PRIMARY KEY,
    change_seq INTEGER NOT NULL DEFAULT 0,
    purged_seq INTEGER NOT NULL DEFAULT 0,
    deleted_at INTEGER
);
INSERT OR IGNORE INTO streams (id) VALUES ('public');
CREATE TABLE IF NOT EXISTS spaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    UNIQUE (created_by, request_id)
);
CREATE TABLE IF NOT EXISTS members (
    space_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id, space_id);
CREATE TABLE IF NOT EXISTS invitations (
    id TEXT PRIMARY KEY,
    space_id TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (space_id, email)
);
CREATE INDEX IF NOT EXISTS invitations_by_email ON invitations (email);
-- Bumped whenever the user's spaces, roles or pending invitations change; never locked by pushes.
CREATE TABLE IF NOT EXISTS user_epochs (
    user_id TEXT PRIMARY KEY,
    account_seq INTEGER NOT NULL DEFAULT 0
);
";

const SELECT_LIVE_REFERRERS: &str =
    "SELECT r.entity, r.entity_id, r.version, r.doc, r.parent_entity, r.parent_id, r.seq,
            r.edited_at, r.field_edited_at, x.field
     FROM record_refs x JOIN records r
       ON r.user_id = x.user_id AND r.entity = x.entity AND r.entity_id = x.entity_id
     WHERE x.user_id = ?1 AND x.target_entity = ?2 AND x.target_id = ?3 AND r.deleted = 0";
const SELECT_UNIQUE_HOLDERS: &str =
    "SELECT r.entity, r.entity_id, r.version, r.doc, r.parent_entity, r.parent_id, r.seq,
            r.edited_at, r.field_edited_at
     FROM record_uniques u JOIN records r
       ON r.user_id = u.user_id AND r.entity = u.entity AND r.entity_id = u.entity_id
     WHERE u.user_id = ?1 AND u.entity = ?2 AND u.fields = ?3 AND u.key = ?4 AND r.deleted = 0";

const CREATE_SEQ_BLOCKS: &str = "CREATE TABLE seq_blocks (
    user_id TEXT NOT NULL,
    block INTEGER NOT NULL,
    live INTEGER NOT NULL,
    PRIMARY KEY (user_id, block)
)";

const SELECT_RECORD: &str =
    "SELECT version, deleted, doc, parent_entity, parent_id, seq, edited_at, field_edited_at FROM records
     WHERE user_id = ?1 AND entity = ?2 AND entity_id = ?3";
const SELECT_LIVE_CHILDREN: &str =
    "SELECT entity, entity_id, version, doc, parent_entity, parent_id, seq, edited_at, field_edited_at
     FROM records WHERE user_id = ?1 AND parent_entity = ?2 AND parent_id = ?3 AND deleted = 0";
const ADD_BLOCK_DELTA: &str = "INSERT INTO seq_blocks (user_id, block, live) VALUES (?1, ?2, ?3)
     ON CONFLICT (user_id, block) DO UPDATE SET live = live + excluded.live";
/// The user's rows after sequence number ?2: those in ?2's own block by index, then the later
/// blocks' counts (?3 = first seq of the next block, ?4 = that block).
const ROWS_AFTER: &str =
    "SELECT (SELECT count(*) FROM records WHERE user_id = ?1 AND seq > ?2 AND seq < ?3)
     + (SELECT coalesce(sum(live), 0) FROM seq_blocks WHERE user_id = ?1 AND block >= ?4)";
/// [`ROWS_AFTER`] of several streams, summed: ?1 a JSON array of `[stream, after, start, block]`.
const STREAMS_ROWS_AFTER: &str = "WITH q(id, after, start, block) AS (
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?1))
     SELECT coalesce(sum(
         (SELECT count(*) FROM records r WHERE r.user_id = q.id AND r.seq > q.after AND r.seq < q.start)
         + (SELECT coalesce(sum(b.live), 0) FROM seq_blocks b WHERE b.user_id = q.id AND b.block >= q.block)
     ), 0) FROM q";
const UPSERT_RECORD: &str = "INSERT INTO records
     (user_id, entity, entity_id, version, deleted, doc, parent_entity, parent_id, seq, updated_at,
      group_id, group_end, edited_at, field_edited_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
     ON CONFLICT (user_id, entity, entity_id) DO UPDATE SET version = excluded.version,
       deleted = excluded.deleted, doc = excluded.doc, parent_entity = excluded.parent_entity,
       parent_id = excluded.parent_id, seq = excluded.seq, updated_at = excluded.updated_at,
       group_id = excluded.group_id, group_end = excluded.group_end,
       edited_at = excluded.edited_at, field_edited_at = excluded.field_edited_at";
const PAGE_COLUMNS: &str =
    "entity, entity_id, version, deleted, doc, seq, updated_at, group_id, group_end,
     edited_at, field_edited_at";
/// Edit times (HLC text, and a JSON object of them per field) came after the first release.
const ADD_EDIT_TIMES: &str = "ALTER TABLE records ADD COLUMN edited_at TEXT;
     ALTER TABLE records ADD COLUMN field_edited_at TEXT;";

/// The SQLite backend.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: deadpool::unmanaged::Pool<Connection>,
    /// How long a `blob_holders` row lets its user read the blob (`--attachment-grace-secs`).
    blob_grace_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl SqliteStore {
    /// Opens or creates the database file at `path` and brings its tables up to date.
    pub async fn open(path: &str) -> Result<Self, StorageError> {
        let path = path.to_string();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path)).await?
    }

    fn open_blocking(path: &str) -> Result<Self, StorageError> {
        let mut writer = open_connection(path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open_connection(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: deadpool::unmanaged::Pool::from(readers),
            blob_grace_ms: Arc::new(super::DEFAULT_BLOB_GRACE_MS.into()),
        })
    }

    /// How long a `blob_holders` row lets its user read the blob.
    pub fn blob_grace_ms(&self) -> i64 {
        self.blob_grace_ms
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_blob_grace_ms(&self, grace_ms: i64) {
        self.blob_grace_ms
            .store(grace_ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The reader pool's use (the one writer connection is not counted).
    pub fn pool_status(&self) -> super::PoolStatus {
        super::PoolStatus::of(self.readers.status())
    }

    /// Runs `f` on the writer connection on the blocking pool.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await?
    }

    /// Runs `f` on a reader connection on the blocking pool.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let mut conn = self
            .readers
            .get()
            .await
            .map_err(|e| StorageError::Other(format!("sqlite readers: {e:?}")))?;
        tokio::task::spawn_blocking(move || f(&mut conn)).await?
    }

    pub async fn legacy_jwt_secret(&self) -> Result<Option<String>, StorageError> {
        self.write(|conn| {
            Ok(conn
                .query_row("SELECT value FROM meta WHERE key = 'jwt_secret'", [], |r| {
                    r.get(0)
                })
                .optional()?)
        })
        .await
    }

    pub async fn delete_legacy_jwt_secret(&self) -> Result<(), StorageError> {
        self.write(|conn| {
            conn.execute("DELETE FROM meta WHERE key = 'jwt_secret'", [])?;
            Ok(())
        })
        .await
    }

    pub async fn create_user(&self, user: UserRow) -> Result<bool, StorageError> {
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (email) DO NOTHING",
                params![user.id, user.email, user.password_hash, user.created_at_ms],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    pub async fn insert_user_if_absent(&self, user: UserRow) -> Result<bool, StorageError> {
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![user.id, user.email, user.password_hash, user.created_at_ms],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    pub async fn update_user_email(
        &self,
        user_id: &str,
        email: &str,
    ) -> Result<bool, StorageError> {
        let (user_id, email) = (user_id.to_string(), email.to_string());
        self.write(move |conn| {
            let updated = conn.execute(
                "UPDATE users SET email = ?2 WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM users WHERE email = ?2)",
                params![user_id, email],
            )?;
            Ok(updated == 1)
        })
        .await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StorageError> {
        let email = email.to_string();
        self.read(move |conn| user_where(conn, "email = ?1", &email))
            .await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StorageError> {
        let id = id.to_string();
        self.read(move |conn| user_where(conn, "id = ?1", &id))
            .await
    }

    /// Whether sign-in `session_id` of `user_id` exists and is not revoked.
    pub async fn session_active(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StorageError> {
        let (user_id, session_id) = (user_id.to_string(), session_id.to_string());
        self.read(move |conn| {
            let found = conn
                .prepare_cached(
                    "SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                )?
                .query_row(params![session_id, user_id], |_| Ok(()))
                .optional()?;
            Ok(found.is_some())
        })
        .await
    }

    pub async fn create_session(
        &self,
        user_id: &str,
        session_id: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let (user_id, session_id, token_hash) = (
            user_id.to_string(),
            session_id.to_string(),
            token_hash.to_string(),
        );
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO sessions (id, user_id, created_at) VALUES (?1, ?2, ?3)",
                params![session_id, user_id, now_ms],
            )?;
            insert_refresh_token(&tx, &token_hash, &session_id, &user_id, now_ms)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub async fn exchange_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<RefreshOutcome, StorageError> {
        let (old_hash, new_hash) = (old_hash.to_string(), new_hash.to_string());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found = tx
                .query_row(
                    "SELECT t.session_id, t.user_id, t.used_at, s.revoked_at
                     FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?1",
                    [&old_hash],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?, r.get::<_, Option<i64>>(3)?)),
                )
                .optional()?;
            let Some((session_id, user_id, used_at, revoked_at)) = found else {
                return Ok(RefreshOutcome::Refused);
            };
            if revoked_at.is_some() {
                return Ok(RefreshOutcome::Refused);
            }
            if let Some(used_at) = used_at {
                if now_ms - used_at > grace_ms {
                    tx.execute("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1", params![session_id, now_ms])?;
                    tx.commit()?;
                    return Ok(RefreshOutcome::Refused);
                }
                // A retry of an exchange whose answer was lost: the token it handed out replaces
                // nothing yet (still unused, created by that exchange), so it gives way to a new one.
                let replaced = tx.execute(
                    "DELETE FROM refresh_tokens WHERE session_id = ?1 AND used_at IS NULL AND created_at = ?2",
                    params![session_id, used_at],
                )?;
                if replaced == 0 {
                    return Ok(RefreshOutcome::Refused);
                }
            } else {
                tx.execute("UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1", params![old_hash, now_ms])?;
            }
            insert_refresh_token(&tx, &new_hash, &session_id, &user_id, used_at.unwrap_or(now_ms))?;
            let user = user_where(&tx, "id = ?1", &user_id)?;
            tx.commit()?;
            Ok(match user {
                Some(user) => RefreshOutcome::Exchanged { user, session_id },
                None => RefreshOutcome::Refused,
            })
        })
        .await
    }

    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let (user_id, session_id) = (user_id.to_string(), session_id.to_string());
        self.write(move |conn| {
            conn.execute(
                "UPDATE sessions SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                params![session_id, user_id, now_ms],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn revoke_other_sessions(
        &self,
        user_id: &str,
        keep_session_id: &str,
        now_ms: i64,
    ) -> Result<u64, StorageError> {
        let (user_id, keep) = (user_id.to_string(), keep_session_id.to_string());
        self.write(move |conn| {
            let revoked = conn.execute(
                "UPDATE sessions SET revoked_at = ?3 WHERE user_id = ?1 AND id <> ?2 AND revoked_at IS NULL",
                params![user_id, keep, now_ms],
            )?;
            Ok(revoked as u64)
        })
        .await
    }

    pub async fn push(&self, job: PushJob) -> Result<Option<PushOutcome>, StorageError> {
        let grace_ms = self.blob_grace_ms();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let seqs: Option<(i64, i64)> = tx
                .prepare_cached("SELECT change_seq, purged_seq FROM users WHERE id = ?1")?
                .query_row([&job.user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((current_seq, purged_seq)) = seqs else {
                return Ok(None);
            };
            let mut streams = push::PushStreams::user_only(&job.user_id, current_seq, purged_seq);
            // Spaces cost only batches that name one. The writer is the lock of every stream
            // (one writer at a time), so the roles read here hold until commit.
            let spaces = push::named_spaces(&job.mutations);
            if !spaces.is_empty() {
                read_space_streams(&tx, &job.user_id, &spaces, &mut streams)?;
            }
            let LoadedState {
                known_ops,
                records,
                stored_seqs,
            } = load_push_state(&tx, &job, &streams)?;
            // Costs nothing unless the batch names attachments the records do not already hold.
            let hashes = push::new_attachment_hashes(
                &job.schema,
                &job.user_id,
                &job.mutations,
                &records,
                |stream| streams.may_write(stream),
            );
            if !hashes.is_empty() {
                streams.readable_blobs = super::record_blobs_sqlite::readable_blobs(
                    &tx,
                    &job.user_id,
                    &hashes,
                    job.now_ms - grace_ms,
                )?;
            }
            let labels = RejectionLabels::of(&job.schema, &job.mutations);
            let plan = push::plan_push(
                &job.schema,
                job.mutations,
                known_ops,
                records,
                &streams,
                &push::EditStamp {
                    now_ms: job.now_ms,
                    client_id: job.client_id.clone(),
                },
            );
            let rejections = labels.rejections(&plan.results);
            super::admin_sqlite::note_push(&tx, &job.user_id, job.now_ms, &rejections)?;
            if plan.writes.is_empty() && plan.applied_ops.is_empty() {
                tx.commit()?;
                return Ok(Some(PushOutcome::unchanged(plan.results)));
            }
            write_plan(
                &tx,
                &job.schema,
                &job.user_id,
                &plan,
                &stored_seqs,
                job.now_ms,
            )?;
            tx.commit()?;
            Ok(Some(PushOutcome::written(plan, &job.user_id)))
        })
        .await
    }

    pub async fn index_rules(&self, schema: &Schema) -> Result<(), StorageError> {
        let fingerprint = push::rules_fingerprint(schema);
        let collections = push::indexed_collections(schema);
        let schema = schema.clone();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let indexed: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'rules_indexed'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if indexed.as_deref() == Some(fingerprint.as_str()) {
                return Ok(());
            }
            tx.execute("DELETE FROM record_refs", [])?;
            tx.execute("DELETE FROM record_uniques", [])?;
            tx.execute("DELETE FROM record_blobs", [])?;
            let mut select = tx.prepare(
                "SELECT user_id, entity_id, doc FROM records WHERE entity = ?1 AND deleted = 0",
            )?;
            let mut count = 0usize;
            for entity in &collections {
                let rows = select.query_map([entity], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?;
                for row in rows {
                    let (user_id, id, doc) = row?;
                    let write = push::RecordWrite {
                        record: StoredRecord {
                            key: RecordKey::new(&user_id, entity.clone(), id),
                            version: 0,
                            deleted: false,
                            doc,
                            parent: None,
                            edited_at: None,
                            field_times: Default::default(),
                        },
                        seq: 0,
                        group: None,
                    };
                    write_index_rows(&tx, &schema, &user_id, &[write])?;
                    count += 1;
                }
            }
            drop(select);
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('rules_indexed', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [&fingerprint],
            )?;
            tx.commit()?;
            tracing::info!(
                records = count,
                "indexed references and unique keys for the schema's rules"
            );
            Ok(())
        })
        .await
    }

    pub async fn pull(
        &self,
        user_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Option<PullPage>, StorageError> {
        let user_id = user_id.to_string();
        self.read(move |conn| {
            // One read transaction: the page, the count and the user's sequence share a snapshot.
            let tx = conn.transaction()?;
            let seqs: Option<(i64, i64)> = tx
                .prepare_cached("SELECT change_seq, purged_seq FROM users WHERE id = ?1")?
                .query_row([&user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((user_seq, purged_seq)) = seqs else {
                return Ok(None);
            };
            let mut changes = tx
                .prepare_cached(&format!(
                    "SELECT {PAGE_COLUMNS} FROM records
                     WHERE user_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
                ))?
                .query_map(params![user_id, after_seq, limit], change_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let full = changes.len() == limit as usize;
            // A page never ends inside a group: it runs on to the group's last change.
            if let (Some(end), Some(last)) = (group_tail(&changes), changes.last().map(|c| c.seq)) {
                let tail = tx
                    .prepare_cached(&format!(
                        "SELECT {PAGE_COLUMNS} FROM records
                         WHERE user_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq"
                    ))?
                    .query_map(params![user_id, last, end], change_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                changes.extend(tail);
            }
            // Only a full page can leave changes behind; a short one needs no count.
            let rows_after = if full {
                rows_after(&tx, &user_id, after_seq)?
            } else {
                0
            };
            let remaining = remaining_after_page(rows_after, changes.len(), limit);
            Ok(Some(PullPage {
                changes,
                remaining,
                user_seq,
                purged_seq,
            }))
        })
        .await
    }

    pub async fn pull_streams(&self, job: PullJob) -> Result<Option<MultiPull>, StorageError> {
        self.read(move |conn| {
            // One read transaction: the readable streams, their heads, the rows, the counts and
            // the account section share a snapshot.
            let tx = conn.transaction()?;
            let Some(readable) = readable_in(&tx, &job.user_id)? else {
                return Ok(None);
            };
            let (reads, mut statuses) = match plan_pull(&readable, &job.named) {
                Ok(planned) => planned,
                Err(stream) => return Ok(Some(MultiPull::AheadOfHead(stream))),
            };
            let mut changes = Vec::new();
            let mut quota = job.limit as usize;
            // Streams whose rows after a position are still to count: (stream key, position).
            let mut to_count: Vec<(String, i64)> = Vec::new();
            let mut page = tx.prepare_cached(&format!(
                "SELECT {PAGE_COLUMNS} FROM records
                 WHERE user_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))?;
            let mut tail = tx.prepare_cached(&format!(
                "SELECT {PAGE_COLUMNS} FROM records
                 WHERE user_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq"
            ))?;
            for read in &reads {
                let db = &read.stream.db;
                if read.stream.head <= read.from {
                    if let (Some(status), _) = stream_read_result(read, &[], 1) {
                        statuses.push((read.stream.wire.clone(), status));
                    }
                    continue;
                }
                if quota == 0 {
                    to_count.push((db.clone(), read.from));
                    continue;
                }
                let mut rows = page
                    .query_map(params![db, read.from, quota as i64], change_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                let asked = quota;
                // A page never ends inside a group: it runs on to the group's last change.
                if let (Some(end), Some(last)) = (group_tail(&rows), rows.last().map(|c| c.seq)) {
                    let more = tail
                        .query_map(params![db, last, end], change_row)?
                        .collect::<Result<Vec<_>, _>>()?;
                    rows.extend(more);
                }
                quota = quota.saturating_sub(rows.len());
                let (status, finished) = stream_read_result(read, &rows, asked);
                if let Some(status) = status {
                    statuses.push((read.stream.wire.clone(), status));
                }
                if !finished {
                    to_count.push((db.clone(), rows.last().map_or(read.from, |r| r.seq)));
                }
                changes.extend(rows.into_iter().map(|r| (read.stream.wire.clone(), r)));
            }
            let mut expired = false;
            for (wire, status) in &statuses {
                if *status == StreamStatus::Expired {
                    expired = true;
                    if let Some(r) = readable.iter().find(|r| &r.wire == wire) {
                        to_count.push((r.db.clone(), 0));
                    }
                }
            }
            let remaining = streams_rows_after(&tx, &to_count)?.max(0) as u64;
            let account = account_if_changed(&tx, &job)?;
            Ok(Some(MultiPull::Page(MultiPullPage {
                changes,
                streams: statuses,
                remaining,
                has_more: remaining > 0 || expired,
                account,
            })))
        })
        .await
    }

    pub async fn account(&self, user_id: &str, now_ms: i64) -> Result<Account, StorageError> {
        let user_id = user_id.to_string();
        self.read(move |conn| {
            let tx = conn.transaction()?;
            read_account(&tx, &user_id, now_ms)
        })
        .await
    }

    pub async fn readable_streams(&self, user_id: &str) -> Result<Vec<String>, StorageError> {
        let user_id = user_id.to_string();
        self.read(move |conn| {
            let tx = conn.transaction()?;
            Ok(readable_in(&tx, &user_id)?
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.db)
                .collect())
        })
        .await
    }

    pub async fn latest_seq(&self, user_id: &str) -> Result<i64, StorageError> {
        let user_id = user_id.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT change_seq FROM users WHERE id = ?1")?
                .query_row([&user_id], |r| r.get(0))
                .optional()?
                .unwrap_or(0))
        })
        .await
    }

    pub async fn purge(
        &self,
        tombstones_before_ms: i64,
        ops_before_ms: i64,
    ) -> Result<u64, StorageError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE users SET purged_seq = max(purged_seq, (SELECT max(seq) FROM records r
                     WHERE r.user_id = users.id AND r.deleted = 1 AND r.updated_at < ?1))
                 WHERE id IN (SELECT user_id FROM records WHERE deleted = 1 AND updated_at < ?1)",
                [tombstones_before_ms],
            )?;
            // Streams (public, spaces) raise their own purge state: an expired cursor expires
            // its stream only.
            tx.execute(
                "UPDATE streams SET purged_seq = max(purged_seq, (SELECT max(seq) FROM records r
                     WHERE r.user_id = streams.id AND r.deleted = 1 AND r.updated_at < ?1))
                 WHERE id IN (SELECT user_id FROM records WHERE deleted = 1 AND updated_at < ?1)",
                [tombstones_before_ms],
            )?;
            uncount_doomed_tombstones(&tx, tombstones_before_ms)?;
            let purged = tx.execute(
                "DELETE FROM records WHERE deleted = 1 AND updated_at < ?1",
                [tombstones_before_ms],
            )?;
            tx.execute("DELETE FROM seq_blocks WHERE live = 0", [])?;
            tx.execute("DELETE FROM ops WHERE created_at < ?1", [ops_before_ms])?;
            tx.commit()?;
            Ok(purged as u64)
        })
        .await
    }
}

impl SqliteStore {
    /// Deletes the records of deleted spaces, [`DELETED_SPACE_BATCH`] rows per transaction (so
    /// the writer is never held long), then each space's stream row. Returns the rows deleted.
    pub async fn purge_deleted_spaces(&self) -> Result<u64, StorageError> {
        let mut total = 0u64;
        loop {
            let (deleted, more) = self
                .write(|conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let stream: Option<String> = tx
                        .query_row(
                            "SELECT id FROM streams WHERE deleted_at IS NOT NULL ORDER BY id LIMIT 1",
                            [],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let Some(stream) = stream else {
                        return Ok((0, false));
                    };
                    let mut deleted = 0usize;
                    for table in ["records", "record_refs", "record_uniques", "record_blobs"] {
                        deleted += tx.execute(
                            &format!(
                                "DELETE FROM {table} WHERE rowid IN
                                 (SELECT rowid FROM {table} WHERE user_id = ?1 LIMIT ?2)"
                            ),
                            params![stream, DELETED_SPACE_BATCH],
                        )?;
                    }
                    if deleted == 0 {
                        tx.execute("DELETE FROM seq_blocks WHERE user_id = ?1", [&stream])?;
                        tx.execute("DELETE FROM streams WHERE id = ?1", [&stream])?;
                        tracing::info!(stream = %stream, "purged a deleted space");
                    }
                    tx.commit()?;
                    Ok((deleted as u64, true))
                })
                .await?;
            total += deleted;
            if !more {
                return Ok(total);
            }
        }
    }
}

/// Brings the tables up to date. `seq_blocks` came after the first release: when it is missing,
/// it is created and filled from the records already there, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    conn.execute_batch(MIGRATION)?;
    conn.execute_batch(super::blobs_sqlite::MIGRATION)?;
    conn.execute_batch(super::control_sqlite::MIGRATION)?;
    super::control_sqlite::migrate_columns(conn)?;
    conn.execute_batch(super::admin_sqlite::MIGRATION)?;
    super::admin_sqlite::migrate_columns(conn)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Atomic groups came later: the group that last wrote each record, for pull pages.
    let has_groups: i64 = tx.query_row(
        "SELECT count(*) FROM pragma_table_info('records') WHERE name = 'group_id'",
        [],
        |r| r.get(0),
    )?;
    if has_groups == 0 {
        tx.execute_batch(
            "ALTER TABLE records ADD COLUMN group_id TEXT;
             ALTER TABLE records ADD COLUMN group_end INTEGER;",
        )?;
    }
    let has_blocks: i64 = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'seq_blocks'",
        [],
        |r| r.get(0),
    )?;
    if has_blocks == 0 {
        tx.execute_batch(CREATE_SEQ_BLOCKS)?;
        tx.execute(
            "INSERT INTO seq_blocks (user_id, block, live) SELECT user_id, seq / ?1, count(*) FROM records GROUP BY 1, 2",
            [SEQ_BLOCK],
        )?;
    }
    let has_edit_times: i64 = tx.query_row(
        "SELECT count(*) FROM pragma_table_info('records') WHERE name = 'edited_at'",
        [],
        |r| r.get(0),
    )?;
    if has_edit_times == 0 {
        tx.execute_batch(ADD_EDIT_TIMES)?;
    }
    tx.commit()?;
    Ok(())
}

/// The streams `user_id` may read, in page order (`user`, `public`, spaces by id) with their
/// heads and purge states; `None` when the user does not exist.
fn readable_in(conn: &Connection, user_id: &str) -> Result<Option<Vec<Readable>>, StorageError> {
    let seqs: Option<(i64, i64)> = conn
        .prepare_cached("SELECT change_seq, purged_seq FROM users WHERE id = ?1")?
        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((head, purged_seq)) = seqs else {
        return Ok(None);
    };
    let mut readable = vec![Readable {
        wire: "user".into(),
        db: user_id.to_string(),
        head,
        purged_seq,
    }];
    let mut streams = conn.prepare_cached(
        "SELECT id, change_seq, purged_seq FROM streams WHERE id = 'public'
         UNION ALL
         SELECT * FROM (SELECT s.id, s.change_seq, s.purged_seq FROM members m
             JOIN streams s ON s.id = 'space:' || m.space_id
             WHERE m.user_id = ?1 AND s.deleted_at IS NULL ORDER BY m.space_id)",
    )?;
    let rows = streams.query_map([user_id], |r| {
        let id: String = r.get(0)?;
        Ok(Readable {
            wire: id.clone(),
            db: id,
            head: r.get(1)?,
            purged_seq: r.get(2)?,
        })
    })?;
    for row in rows {
        readable.push(row?);
    }
    Ok(Some(readable))
}

/// The account section, when the client's `accountSeq` differs from the user's.
fn account_if_changed(conn: &Connection, job: &PullJob) -> Result<Option<Account>, StorageError> {
    let seq = account_seq(conn, &job.user_id)?;
    if job.account_seq == Some(seq) {
        return Ok(None);
    }
    read_account(conn, &job.user_id, job.now_ms).map(Some)
}

fn account_seq(conn: &Connection, user_id: &str) -> Result<i64, StorageError> {
    Ok(conn
        .prepare_cached("SELECT account_seq FROM user_epochs WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The user's spaces (live ones they are a member of) and pending invitations (to their
/// account's email, not expired at `now_ms`), with the account sequence, in one snapshot.
fn read_account(conn: &Connection, user_id: &str, now_ms: i64) -> Result<Account, StorageError> {
    let account_seq = account_seq(conn, user_id)?;
    let spaces = conn
        .prepare_cached(
            "SELECT sp.id, sp.name, m.role,
                    (SELECT count(*) FROM members c WHERE c.space_id = sp.id), sp.created_at
             FROM members m JOIN spaces sp ON sp.id = m.space_id
             JOIN streams s ON s.id = 'space:' || m.space_id
             WHERE m.user_id = ?1 AND s.deleted_at IS NULL ORDER BY sp.id",
        )?
        .query_map([user_id], |r| {
            Ok(SpaceRow {
                id: r.get(0)?,
                name: r.get(1)?,
                role: role_column(r, 2)?,
                member_count: r.get(3)?,
                created_at_ms: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let invitations = conn
        .prepare_cached(
            "SELECT i.id, i.space_id, sp.name, i.email, i.role, coalesce(u.email, ''),
                    i.created_at, i.expires_at
             FROM users me JOIN invitations i ON i.email = me.email
             JOIN spaces sp ON sp.id = i.space_id
             LEFT JOIN users u ON u.id = i.invited_by
             WHERE me.id = ?1 AND i.expires_at > ?2 ORDER BY i.created_at, i.id",
        )?
        .query_map(params![user_id, now_ms], invitation_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Account {
        account_seq,
        spaces,
        invitations,
    })
}

/// A role stored in column `i`; an unknown text is a storage failure, never a silent role.
pub(crate) fn role_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Role> {
    let text: String = r.get(i)?;
    Role::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown role {text:?}").into(),
        )
    })
}

/// An invitation from the columns id, space_id, space name, email, role, inviter's email,
/// created_at, expires_at.
pub(crate) fn invitation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InvitationRow> {
    Ok(InvitationRow {
        id: r.get(0)?,
        space_id: r.get(1)?,
        space_name: r.get(2)?,
        email: r.get(3)?,
        role: role_column(r, 4)?,
        invited_by_email: r.get(5)?,
        created_at_ms: r.get(6)?,
        expires_at_ms: r.get(7)?,
    })
}

/// Takes the tombstones about to be purged out of their blocks' counts.
fn uncount_doomed_tombstones(
    conn: &Connection,
    tombstones_before_ms: i64,
) -> Result<(), StorageError> {
    let doomed: Vec<(String, i64, i64)> = conn
        .prepare(
            "SELECT user_id, seq / ?2, count(*) FROM records WHERE deleted = 1 AND updated_at < ?1 GROUP BY 1, 2",
        )?
        .query_map(params![tombstones_before_ms, SEQ_BLOCK], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut add = conn.prepare_cached(ADD_BLOCK_DELTA)?;
    for (user_id, block, count) in doomed {
        add.execute(params![user_id, block, -count])?;
    }
    Ok(())
}

/// How many of the user's rows have a `seq` after `after_seq`, from the block counts.
fn rows_after(conn: &Connection, user_id: &str, after_seq: i64) -> Result<i64, StorageError> {
    let next_block = seq_block(after_seq) + 1;
    Ok(conn.prepare_cached(ROWS_AFTER)?.query_row(
        params![user_id, after_seq, next_block * SEQ_BLOCK, next_block],
        |r| r.get(0),
    )?)
}

/// How many rows the streams have after their positions, summed, in one statement (a member of
/// many spaces has up to one count per space on every page): per stream the rows of its
/// position's own block by index, then the later blocks' counts ([`count_split`]).
fn streams_rows_after(conn: &Connection, to_count: &[(String, i64)]) -> Result<i64, StorageError> {
    if to_count.is_empty() {
        return Ok(0);
    }
    let positions: Vec<serde_json::Value> = to_count
        .iter()
        .map(|(db, after)| {
            let (start, next_block) = count_split(*after);
            serde_json::json!([db, after, start, next_block])
        })
        .collect();
    Ok(conn
        .prepare_cached(STREAMS_ROWS_AFTER)?
        .query_row([serde_json::Value::Array(positions).to_string()], |r| {
            r.get(0)
        })?)
}

/// Writes a judged batch: records, block counts, op ids and the user's sequence.
pub(super) fn write_plan(
    conn: &Connection,
    schema: &Schema,
    user_id: &str,
    plan: &PushPlan,
    stored_seqs: &HashMap<RecordKey, i64>,
    now_ms: i64,
) -> Result<(), StorageError> {
    let mut upsert = conn.prepare_cached(UPSERT_RECORD)?;
    let mut add_block = conn.prepare_cached(ADD_BLOCK_DELTA)?;
    for (stream, writes) in plan.writes_by_stream() {
        write_index_rows(conn, schema, stream, writes)?;
        for w in writes {
            upsert_write(&mut upsert, stream, w, now_ms)?;
        }
        let (blocks, deltas) = block_deltas(writes, stored_seqs);
        for (block, delta) in blocks.iter().zip(&deltas) {
            add_block.execute(params![stream, block, delta])?;
        }
    }
    let mut insert_op = conn.prepare_cached(
        "INSERT INTO ops (user_id, op_id, version, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )?;
    for (op_id, version) in &plan.applied_ops {
        insert_op.execute(params![user_id, op_id, version, now_ms])?;
    }
    conn.prepare_cached("UPDATE users SET change_seq = ?2 WHERE id = ?1")?
        .execute(params![user_id, plan.last_seq])?;
    if !plan.stream_seqs.is_empty() {
        let mut set_seq =
            conn.prepare_cached("UPDATE streams SET change_seq = ?2 WHERE id = ?1")?;
        for (stream, seq) in &plan.stream_seqs {
            set_seq.execute(params![stream, seq])?;
        }
    }
    Ok(())
}

/// Writes one record's new state into `stream`.
fn upsert_write(
    upsert: &mut rusqlite::CachedStatement<'_>,
    stream: &str,
    w: &push::RecordWrite,
    now_ms: i64,
) -> Result<(), StorageError> {
    {
        let r = &w.record;
        let (parent_entity, parent_id) = r.parent.clone().map(|p| (p.entity, p.id)).unzip();
        let (group_id, group_end) = w.group.clone().unzip();
        upsert.execute(params![
            stream,
            r.key.entity,
            r.key.id,
            r.version,
            r.deleted,
            r.doc,
            parent_entity,
            parent_id,
            w.seq,
            now_ms,
            group_id,
            group_end,
            r.edited_at.as_ref().map(ToString::to_string),
            r.field_times_json(),
        ])?;
    }
    Ok(())
}

/// Reads, for a batch naming `spaces` (stream keys, sorted), each existing stream's sequence and
/// purge state and the pusher's role in each live space they are a member of.
fn read_space_streams(
    conn: &Connection,
    user_id: &str,
    spaces: &[String],
    streams: &mut push::PushStreams,
) -> Result<(), StorageError> {
    let mut seqs =
        conn.prepare_cached("SELECT change_seq, purged_seq FROM streams WHERE id = ?1")?;
    let mut role = conn.prepare_cached(
        "SELECT m.role FROM members m JOIN streams s ON s.id = ?1
         WHERE m.space_id = ?2 AND m.user_id = ?3 AND s.deleted_at IS NULL",
    )?;
    for stream in spaces {
        let Some(space_id) = push::space_of_stream(stream) else {
            continue;
        };
        if let Some(seq) = seqs
            .query_row([stream], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
        {
            streams.seqs.insert(stream.clone(), seq);
        }
        let found: Option<String> = role
            .query_row(params![stream, space_id, user_id], |r| r.get(0))
            .optional()?;
        if let Some(found) = found.as_deref().and_then(super::Role::parse) {
            streams.roles.insert(stream.clone(), found);
        }
    }
    Ok(())
}

fn change_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChangeRow> {
    Ok(ChangeRow {
        entity: r.get(0)?,
        entity_id: r.get(1)?,
        version: r.get(2)?,
        deleted: r.get(3)?,
        doc: r.get(4)?,
        seq: r.get(5)?,
        updated_at_ms: r.get(6)?,
        group_id: r.get(7)?,
        group_end: r.get(8)?,
        edited_at: r.get(9)?,
        field_edited_at: r.get(10)?,
    })
}

/// Brings the tables of references, unique keys and blobs in line with the batch's writes.
pub(super) fn write_index_rows(
    conn: &Connection,
    schema: &Schema,
    user_id: &str,
    writes: &[push::RecordWrite],
) -> Result<(), StorageError> {
    let rows = push::index_rows(schema, writes);
    if rows.cleared.is_empty() {
        return Ok(());
    }
    let mut clear_refs = conn.prepare_cached(
        "DELETE FROM record_refs WHERE user_id = ?1 AND entity = ?2 AND entity_id = ?3",
    )?;
    let mut clear_uniques = conn.prepare_cached(
        "DELETE FROM record_uniques WHERE user_id = ?1 AND entity = ?2 AND entity_id = ?3",
    )?;
    for key in &rows.cleared {
        clear_refs.execute(params![user_id, key.entity, key.id])?;
        clear_uniques.execute(params![user_id, key.entity, key.id])?;
        if push::has_attachments(schema, &key.entity) {
            conn.prepare_cached(
                "DELETE FROM record_blobs WHERE user_id = ?1 AND entity = ?2 AND entity_id = ?3",
            )?
            .execute(params![user_id, key.entity, key.id])?;
        }
    }
    let mut insert_ref = conn.prepare_cached(
        "INSERT INTO record_refs (user_id, entity, entity_id, field, target_entity, target_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (entity, id, field, target, target_id) in &rows.refs {
        insert_ref.execute(params![user_id, entity, id, field, target, target_id])?;
    }
    let mut insert_unique = conn.prepare_cached(
        "INSERT INTO record_uniques (user_id, entity, entity_id, fields, key) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (entity, id, fields, key) in &rows.uniques {
        insert_unique.execute(params![user_id, entity, id, fields, key])?;
    }
    if !rows.blobs.is_empty() {
        let mut insert_blob = conn.prepare_cached(
            "INSERT INTO record_blobs (user_id, entity, entity_id, field, hash)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (entity, id, field, hash) in &rows.blobs {
            insert_blob.execute(params![user_id, entity, id, field, hash])?;
        }
    }
    Ok(())
}

fn open_connection(path: &str) -> Result<Connection, StorageError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL lets readers work while the writer commits; NORMAL sync is durable across process
    // crashes, which is what a local development server needs.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn user_where(
    conn: &Connection,
    condition: &str,
    value: &str,
) -> Result<Option<UserRow>, StorageError> {
    let sql = format!("SELECT id, email, password_hash, created_at FROM users WHERE {condition}");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([value], |r| {
            Ok(UserRow {
                id: r.get(0)?,
                email: r.get(1)?,
                password_hash: r.get(2)?,
                created_at_ms: r.get(3)?,
            })
        })
        .optional()?)
}

fn insert_refresh_token(
    conn: &Connection,
    token_hash: &str,
    session_id: &str,
    user_id: &str,
    now_ms: i64,
) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, session_id, user_id, now_ms],
    )?;
    Ok(())
}

/// Loads what [`push::plan_push`] judges against: known opIds, the records the batch names and,
/// when it deletes, their live descendants level by level; of streams the pusher may write only.
pub(super) fn load_push_state(
    conn: &Connection,
    job: &PushJob,
    streams: &push::PushStreams,
) -> Result<LoadedState, StorageError> {
    let mut loaded = LoadedState {
        known_ops: load_known_ops(conn, job)?,
        records: HashMap::new(),
        stored_seqs: HashMap::new(),
    };
    let writable = |stream: &str| streams.may_write(stream);
    let keys = push::keys_to_load(&job.schema, &job.user_id, &job.mutations, writable);
    let mut select = conn.prepare_cached(SELECT_RECORD)?;
    for key in &keys {
        let found = select
            .query_row(params![key.stream, key.entity, key.id], |r| {
                let (edited_at, field_times) = push::stored_times(
                    r.get::<_, Option<String>>(6)?.as_deref(),
                    r.get::<_, Option<String>>(7)?.as_deref(),
                );
                let record = StoredRecord {
                    key: key.clone(),
                    version: r.get(0)?,
                    deleted: r.get(1)?,
                    doc: r.get(2)?,
                    parent: parent_of(&key.stream, r.get(3)?, r.get(4)?),
                    edited_at,
                    field_times,
                };
                Ok((record, r.get(5)?))
            })
            .optional()?;
        if let Some((record, seq)) = found {
            loaded.add(record, seq);
        }
    }
    let probes = push::unique_probes(&job.schema, &job.user_id, &job.mutations, writable);
    if !probes.is_empty() {
        let mut select = conn.prepare_cached(SELECT_UNIQUE_HOLDERS)?;
        for (stream, entity, fields, key) in &probes {
            let rows = select.query_map(params![stream, entity, fields, key], |r| {
                Ok((live_record_of(stream, r)?, r.get(6)?))
            })?;
            for row in rows {
                let (record, seq) = row?;
                loaded.add(record, seq);
            }
        }
    }
    if push::has_deletes(&job.mutations) {
        load_live_descendants(conn, job, &keys, &mut loaded)?;
    }
    Ok(loaded)
}

/// A live record of `stream` from the columns [`SELECT_LIVE_CHILDREN`], [`SELECT_LIVE_REFERRERS`]
/// and [`SELECT_UNIQUE_HOLDERS`] share (the sequence number, column 6, is read by the caller).
fn live_record_of(stream: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    let (edited_at, field_times) = push::stored_times(
        r.get::<_, Option<String>>(7)?.as_deref(),
        r.get::<_, Option<String>>(8)?.as_deref(),
    );
    Ok(StoredRecord {
        key: RecordKey::new(stream, r.get::<_, String>(0)?, r.get::<_, String>(1)?),
        version: r.get(2)?,
        deleted: false,
        doc: r.get(3)?,
        parent: parent_of(stream, r.get(4)?, r.get(5)?),
        edited_at,
        field_times,
    })
}

fn load_known_ops(conn: &Connection, job: &PushJob) -> Result<HashMap<String, i64>, StorageError> {
    let mut known_ops = HashMap::new();
    let mut select_op =
        conn.prepare_cached("SELECT version FROM ops WHERE user_id = ?1 AND op_id = ?2")?;
    for m in &job.mutations {
        if let Some(version) = select_op
            .query_row(params![job.user_id, m.op_id], |r| r.get(0))
            .optional()?
        {
            known_ops.insert(m.op_id.clone(), version);
        }
    }
    Ok(known_ops)
}

/// Adds the live descendants of `keys`, level by level, to what a push deleting them judges
/// against (each in its key's own stream).
fn load_live_descendants(
    conn: &Connection,
    job: &PushJob,
    keys: &[RecordKey],
    loaded: &mut LoadedState,
) -> Result<(), StorageError> {
    let mut frontier = push::keys_with_children(&job.schema, keys.iter());
    let mut referred = push::keys_with_referrers(&job.schema, keys.iter());
    let mut expanded: std::collections::HashSet<RecordKey> = keys.iter().cloned().collect();
    let mut select = conn.prepare_cached(SELECT_LIVE_CHILDREN)?;
    let mut select_referrers = conn.prepare_cached(SELECT_LIVE_REFERRERS)?;
    while !frontier.is_empty() || !referred.is_empty() {
        let mut found = Vec::new();
        // Referrers are loaded to apply their rule; only `cascade` ones go on to their own
        // descendants and referrers.
        for target in &referred {
            let rows = select_referrers.query_map(
                params![target.stream, target.entity, target.id],
                |r| {
                    Ok((
                        live_record_of(&target.stream, r)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, String>(9)?,
                    ))
                },
            )?;
            for row in rows {
                let (record, seq, field) = row?;
                let key = record.key.clone();
                loaded.add(record, seq);
                if push::cascades(&job.schema, &key.entity, &field) && expanded.insert(key.clone())
                {
                    found.push(key);
                }
            }
        }
        for parent in &frontier {
            let rows = select.query_map(params![parent.stream, parent.entity, parent.id], |r| {
                Ok((live_record_of(&parent.stream, r)?, r.get(6)?))
            })?;
            for row in rows {
                let (record, seq) = row?;
                let key = record.key.clone();
                loaded.add(record, seq);
                if expanded.insert(key.clone()) {
                    found.push(key);
                }
            }
        }
        frontier = push::keys_with_children(&job.schema, found.iter());
        referred = push::keys_with_referrers(&job.schema, found.iter());
    }
    Ok(())
}

fn parent_of(stream: &str, entity: Option<String>, id: Option<String>) -> Option<RecordKey> {
    entity.zip(id).map(|(e, i)| RecordKey::new(stream, e, i))
}
