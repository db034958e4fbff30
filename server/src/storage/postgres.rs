//! PostgreSQL: shared by any number of server instances. A push locks the user's row
//! (`SELECT … FOR UPDATE`), so pushes of one user are serialized across instances and the user's
//! change sequence grows in commit order; loads and writes are a handful of multi-row statements
//! over `UNNEST` arrays, pipelined on one connection. `pg_notify` inside the push transaction is
//! delivered on commit to every instance's LISTEN connection, which pokes its SSE clients.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::{stream, StreamExt};
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls};
use tokio_util::sync::CancellationToken;

use super::users::RejectionLabels;
use super::{
    block_deltas, count_split, group_tail, plan_pull, remaining_after_page, seq_block,
    stream_read_result, Account, ChangeRow, InvitationRow, LoadedState, MultiPull, MultiPullPage,
    PullJob, PullPage, PushJob, PushOutcome, Readable, RefreshOutcome, SpaceRow, StorageError,
    StreamStatus, UserRow, SEQ_BLOCK,
};
use crate::events::ChangeNotice;
use crate::push::{self, PushPlan, RecordKey, StoredRecord};

/// The NOTIFY channel; payloads as `events::ChangeNotice::payload` writes them.
pub const CHANGES_CHANNEL: &str = "tandem_changes";

const POOL_SIZE: usize = 16;

/// Stream rows locked per purge transaction.
const STREAM_PURGE_BATCH: i64 = 1000;

/// Rows of a deleted space deleted per transaction.
pub const DELETED_SPACE_BATCH: i64 = 10_000;

/// Any instance may start first; the advisory lock keeps concurrent migrations from colliding.
///
/// The ids of the hot tables (`records`, `ops`, `seq_blocks`) are `COLLATE "C"`: they are ASCII by
/// the protocol and only ever compared for equality, and byte comparison spares every index probe
/// and insert the locale's `strcoll` (about a tenth of a push's time in PostgreSQL under
/// C.UTF-8, more under en_US). Tables created before this keep the database collation, which
/// is just as correct.
const MIGRATION: &str = "
SELECT pg_advisory_xact_lock(7283746501);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    change_seq BIGINT NOT NULL DEFAULT 0,
    purged_seq BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE TABLE IF NOT EXISTS records (
    user_id TEXT COLLATE \"C\" NOT NULL,
    entity TEXT COLLATE \"C\" NOT NULL,
    entity_id TEXT COLLATE \"C\" NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    doc TEXT,
    parent_entity TEXT COLLATE \"C\",
    parent_id TEXT COLLATE \"C\",
    seq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, entity, entity_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS records_by_seq ON records (user_id, seq);
CREATE INDEX IF NOT EXISTS records_by_parent ON records (user_id, parent_entity, parent_id)
    WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tombstones_by_age ON records (updated_at) WHERE deleted;
CREATE TABLE IF NOT EXISTS ops (
    user_id TEXT COLLATE \"C\" NOT NULL,
    op_id TEXT COLLATE \"C\" NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, op_id)
);
CREATE INDEX IF NOT EXISTS ops_by_age ON ops (created_at);
-- Atomic groups: the group that last wrote each record and that group's last seq, for pull pages.
ALTER TABLE records ADD COLUMN IF NOT EXISTS group_id TEXT COLLATE \"C\";
ALTER TABLE records ADD COLUMN IF NOT EXISTS group_end BIGINT;
-- References and unique keys of live records (collections with `ref` fields or `unique`
-- constraints), maintained with every write (see the SQLite backend).
CREATE TABLE IF NOT EXISTS record_refs (
    user_id TEXT COLLATE \"C\" NOT NULL,
    entity TEXT COLLATE \"C\" NOT NULL,
    entity_id TEXT COLLATE \"C\" NOT NULL,
    field TEXT COLLATE \"C\" NOT NULL,
    target_entity TEXT COLLATE \"C\" NOT NULL,
    target_id TEXT COLLATE \"C\" NOT NULL,
    PRIMARY KEY (user_id, entity, entity_id, field)
);
CREATE INDEX IF NOT EXISTS record_refs_by_target ON record_refs (user_id, target_entity, target_id);
CREATE TABLE IF NOT EXISTS record_uniques (
    user_id TEXT COLLATE \"C\" NOT NULL,
    entity TEXT COLLATE \"C\" NOT NULL,
    entity_id TEXT COLLATE \"C\" NOT NULL,
    fields TEXT COLLATE \"C\" NOT NULL,
    key TEXT COLLATE \"C\" NOT NULL,
    PRIMARY KEY (user_id, entity, entity_id, fields)
);
CREATE INDEX IF NOT EXISTS record_uniques_by_key ON record_uniques (user_id, entity, fields, key);
DO $$
BEGIN
    IF to_regclass('seq_blocks') IS NULL THEN
        CREATE TABLE seq_blocks (
            user_id TEXT COLLATE \"C\" NOT NULL,
            block BIGINT NOT NULL,
            live BIGINT NOT NULL,
            PRIMARY KEY (user_id, block)
        );
        -- A database from before this table: count the rows it already has (1024 = SEQ_BLOCK).
        INSERT INTO seq_blocks (user_id, block, live)
            SELECT user_id, seq / 1024, count(*) FROM records GROUP BY 1, 2;
    END IF;
END $$;
-- Edit times (HLC text, and a JSON object of them per field) came after the first release.
ALTER TABLE records ADD COLUMN IF NOT EXISTS edited_at TEXT COLLATE \"C\";
ALTER TABLE records ADD COLUMN IF NOT EXISTS field_edited_at TEXT;
-- Spaces and public collections (docs/design/spaces.md section 4). One row per non-user stream:
-- its change sequence and purge state (a user's own stream keeps them in `users`).
CREATE TABLE IF NOT EXISTS streams (
    id TEXT COLLATE \"C\" PRIMARY KEY,
    change_seq BIGINT NOT NULL DEFAULT 0,
    purged_seq BIGINT NOT NULL DEFAULT 0,
    deleted_at BIGINT
);
INSERT INTO streams (id) VALUES ('public') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS spaces (
    id TEXT COLLATE \"C\" PRIMARY KEY,
    name TEXT NOT NULL,
    created_by TEXT COLLATE \"C\" NOT NULL,
    created_at BIGINT NOT NULL,
    request_id TEXT COLLATE \"C\" NOT NULL,
    UNIQUE (created_by, request_id)
);
CREATE TABLE IF NOT EXISTS members (
    space_id TEXT COLLATE \"C\" NOT NULL,
    user_id TEXT COLLATE \"C\" NOT NULL,
    role TEXT COLLATE \"C\" NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id, space_id);
CREATE TABLE IF NOT EXISTS invitations (
    id TEXT COLLATE \"C\" PRIMARY KEY,
    space_id TEXT COLLATE \"C\" NOT NULL,
    email TEXT NOT NULL,
    role TEXT COLLATE \"C\" NOT NULL,
    invited_by TEXT COLLATE \"C\" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    UNIQUE (space_id, email)
);
CREATE INDEX IF NOT EXISTS invitations_by_email ON invitations (email);
-- Bumped whenever the user's spaces, roles or pending invitations change; never locked by pushes.
CREATE TABLE IF NOT EXISTS user_epochs (
    user_id TEXT COLLATE \"C\" PRIMARY KEY,
    account_seq BIGINT NOT NULL DEFAULT 0
);
";

// Each key is looked up through a LATERAL subquery with LIMIT 1 (or OFFSET 0 for children), which
// the planner cannot flatten into a hash join: right after a bulk load the statistics lag behind and
// a hash join would scan all of the user's rows on every push. These stay one index probe per key.
const SELECT_OPS: &str = "SELECT o.op_id, o.version FROM UNNEST($2::text[]) AS k(op_id)
     CROSS JOIN LATERAL (SELECT op_id, version FROM ops WHERE user_id = $1 AND op_id = k.op_id LIMIT 1) o";
const SELECT_RECORDS: &str = "SELECT r.entity, r.entity_id, r.version, r.deleted, r.doc, r.parent_entity, r.parent_id, r.seq,
       r.edited_at, r.field_edited_at
     FROM UNNEST($2::text[], $3::text[]) AS k(entity, entity_id)
     CROSS JOIN LATERAL (SELECT * FROM records
                         WHERE user_id = $1 AND entity = k.entity AND entity_id = k.entity_id LIMIT 1) r";
const SELECT_LIVE_CHILDREN: &str =
    "SELECT r.entity, r.entity_id, r.version, r.deleted, r.doc, r.parent_entity, r.parent_id, r.seq,
       r.edited_at, r.field_edited_at
     FROM UNNEST($2::text[], $3::text[]) AS k(entity, entity_id)
     CROSS JOIN LATERAL (SELECT * FROM records
                         WHERE user_id = $1 AND parent_entity = k.entity AND parent_id = k.entity_id
                           AND NOT deleted OFFSET 0) r";
const SELECT_LIVE_REFERRERS: &str =
    "SELECT r.entity, r.entity_id, r.version, r.deleted, r.doc, r.parent_entity, r.parent_id, r.seq,
       r.edited_at, r.field_edited_at, x.field
     FROM UNNEST($2::text[], $3::text[]) AS k(entity, entity_id)
     CROSS JOIN LATERAL (SELECT * FROM record_refs
                         WHERE user_id = $1 AND target_entity = k.entity AND target_id = k.entity_id
                         OFFSET 0) x
     JOIN records r ON r.user_id = x.user_id AND r.entity = x.entity AND r.entity_id = x.entity_id
     WHERE NOT r.deleted";
const SELECT_UNIQUE_HOLDERS: &str =
    "SELECT r.entity, r.entity_id, r.version, r.deleted, r.doc, r.parent_entity, r.parent_id, r.seq,
       r.edited_at, r.field_edited_at
     FROM UNNEST($2::text[], $3::text[], $4::text[]) AS k(entity, fields, key)
     CROSS JOIN LATERAL (SELECT * FROM record_uniques
                         WHERE user_id = $1 AND entity = k.entity AND fields = k.fields AND key = k.key
                         OFFSET 0) u
     JOIN records r ON r.user_id = u.user_id AND r.entity = u.entity AND r.entity_id = u.entity_id
     WHERE NOT r.deleted";
const CLEAR_REFS: &str = "DELETE FROM record_refs x USING UNNEST($2::text[], $3::text[]) AS k(e, i)
     WHERE x.user_id = $1 AND x.entity = k.e AND x.entity_id = k.i";
const CLEAR_UNIQUES: &str =
    "DELETE FROM record_uniques x USING UNNEST($2::text[], $3::text[]) AS k(e, i)
     WHERE x.user_id = $1 AND x.entity = k.e AND x.entity_id = k.i";
const INSERT_REFS: &str = "INSERT INTO record_refs (user_id, entity, entity_id, field, target_entity, target_id)
     SELECT $1, e, i, f, te, ti FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       AS w(e, i, f, te, ti)";
const CLEAR_BLOBS: &str =
    "DELETE FROM record_blobs x USING UNNEST($2::text[], $3::text[]) AS k(e, i)
     WHERE x.user_id = $1 AND x.entity = k.e AND x.entity_id = k.i";
const INSERT_BLOBS: &str = "INSERT INTO record_blobs (user_id, entity, entity_id, field, hash)
     SELECT $1, e, i, f, h FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) AS w(e, i, f, h)";
const INSERT_UNIQUES: &str = "INSERT INTO record_uniques (user_id, entity, entity_id, fields, key)
     SELECT $1, e, i, f, k FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) AS w(e, i, f, k)";
// A push knows, under the user's lock, which of its records exist: new ones go in with a plain
// INSERT and only existing ones through ON CONFLICT, whose speculative insertion costs about a
// third more per row. Only pushes holding the user's lock write the user's records, so a record
// found missing stays missing until commit.
const INSERT_RECORDS: &str = "INSERT INTO records
     (user_id, entity, entity_id, version, deleted, doc, parent_entity, parent_id, seq, updated_at,
      group_id, group_end, edited_at, field_edited_at)
     SELECT $1, e, i, v, d, doc, pe, pi, s, $10, g, ge, ea, fea
     FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::bool[], $6::text[], $7::text[], $8::text[], $9::int8[],
                 $11::text[], $12::int8[], $13::text[], $14::text[])
       AS w(e, i, v, d, doc, pe, pi, s, g, ge, ea, fea)";
const UPSERT_RECORDS: &str = "INSERT INTO records
     (user_id, entity, entity_id, version, deleted, doc, parent_entity, parent_id, seq, updated_at,
      group_id, group_end, edited_at, field_edited_at)
     SELECT $1, e, i, v, d, doc, pe, pi, s, $10, g, ge, ea, fea
     FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::bool[], $6::text[], $7::text[], $8::text[], $9::int8[],
                 $11::text[], $12::int8[], $13::text[], $14::text[])
       AS w(e, i, v, d, doc, pe, pi, s, g, ge, ea, fea)
     ON CONFLICT (user_id, entity, entity_id) DO UPDATE SET version = excluded.version,
       deleted = excluded.deleted, doc = excluded.doc, parent_entity = excluded.parent_entity,
       parent_id = excluded.parent_id, seq = excluded.seq, updated_at = excluded.updated_at,
       group_id = excluded.group_id, group_end = excluded.group_end,
       edited_at = excluded.edited_at, field_edited_at = excluded.field_edited_at";
const ADD_BLOCK_DELTAS: &str = "INSERT INTO seq_blocks (user_id, block, live)
     SELECT $1, b, d FROM UNNEST($2::int8[], $3::int8[]) AS x(b, d)
     ON CONFLICT (user_id, block) DO UPDATE SET live = seq_blocks.live + excluded.live";
const SELECT_PAGE: &str =
    "SELECT entity, entity_id, version, deleted, doc, seq, updated_at, group_id, group_end, edited_at,
     field_edited_at FROM records WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
/// The rest of the group a page ends in: the rows after $2 up to the group's last seq $3.
const SELECT_GROUP_TAIL: &str =
    "SELECT entity, entity_id, version, deleted, doc, seq, updated_at, group_id, group_end, edited_at,
     field_edited_at FROM records WHERE user_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq";
/// The user's rows after sequence number $2: those in $2's own block by index, then the later
/// blocks' counts ($3 = first seq of the next block, $4 = that block).
const ROWS_AFTER: &str =
    "SELECT (SELECT count(*) FROM records WHERE user_id = $1 AND seq > $2 AND seq < $3)
     + (SELECT coalesce(sum(live), 0)::int8 FROM seq_blocks WHERE user_id = $1 AND block >= $4)";
// A plain INSERT for the same reason: the batch's opIds were looked up under the user's lock and
// only pushes holding it add the user's ops, so none of them can exist.
const INSERT_OPS: &str = "INSERT INTO ops (user_id, op_id, version, created_at)
     SELECT $1, o, v, $4 FROM UNNEST($2::text[], $3::int8[]) AS x(o, v)";

/// [`ROWS_AFTER`] of several streams, summed: $1 the streams, $2 their positions, $3 and $4 the
/// first seq and block counted from `seq_blocks` (`count_split`).
const STREAMS_ROWS_AFTER: &str = "SELECT coalesce(sum(
         (SELECT count(*) FROM records r WHERE r.user_id = q.id AND r.seq > q.after AND r.seq < q.start)
         + (SELECT coalesce(sum(b.live), 0) FROM seq_blocks b WHERE b.user_id = q.id AND b.block >= q.block)
     ), 0)::int8
     FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[]) AS q(id, after, start, block)";

/// The PostgreSQL backend.
#[derive(Clone)]
pub struct PostgresStore {
    pub(super) pool: Pool,
    /// Shared: the LISTEN task connects with it, and a store is cloned per request.
    config: Arc<tokio_postgres::Config>,
    /// How long a `blob_holders` row lets its user read the blob (`--attachment-grace-secs`).
    blob_grace_ms: Arc<std::sync::atomic::AtomicI64>,
}

/// Brings the tables up to date, unless the database already holds this version's tables.
///
/// The DDL is idempotent, but running it against a database in use is not harmless: `CREATE
/// INDEX` takes a share lock on `records` that a later `ALTER TABLE` of the same text upgrades
/// to an exclusive one, which deadlocks with a running instance's transaction that read
/// `records` and then writes it (a purge, a push). So an instance (or a test) opening a database
/// another instance already migrated runs no DDL at all: the migration's fingerprint is kept in
/// `meta` and compared under the advisory lock.
async fn migrate(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), StorageError> {
    use sha2::Digest;
    tx.execute("SELECT pg_advisory_xact_lock(7283746501)", &[])
        .await?;
    let fingerprint = {
        let mut hash = sha2::Sha256::new();
        hash.update(MIGRATION);
        hash.update(super::blobs_postgres::MIGRATION);
        hash.update(super::control_postgres::MIGRATION);
        hash.update(super::admin_postgres::MIGRATION);
        format!("{:x}", hash.finalize())
    };
    let has_meta: bool = tx
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .await?
        .get(0);
    if has_meta {
        let applied: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE key = 'migration'", &[])
            .await?
            .map(|r| r.get(0));
        if applied.as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
    }
    tx.batch_execute(MIGRATION).await?;
    tx.batch_execute(super::blobs_postgres::MIGRATION).await?;
    tx.batch_execute(super::control_postgres::MIGRATION).await?;
    tx.batch_execute(super::admin_postgres::MIGRATION).await?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('migration', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&fingerprint],
    )
    .await?;
    Ok(())
}

impl PostgresStore {
    /// Connects to `url` and brings the tables up to date.
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let config = tokio_postgres::Config::from_str(url)?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StorageError::Other(format!("postgres pool: {e}")))?;
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        migrate(&tx).await?;
        tx.commit().await?;
        Ok(Self {
            pool,
            config: Arc::new(config),
            blob_grace_ms: Arc::new(super::DEFAULT_BLOB_GRACE_MS.into()),
        })
    }

    /// The connection pool's use.
    pub fn pool_status(&self) -> super::PoolStatus {
        super::PoolStatus::of(self.pool.status())
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

    /// Forwards every change notification's payload (from any instance) to `on_change` until
    /// `cancel` fires, reconnecting after failures (`crate::events::parse_payload` reads them).
    pub fn spawn_change_listener(
        &self,
        on_change: impl Fn(&str) + Send + Sync + 'static,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let config = self.config.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    result = listen_once(&config, &on_change) => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "change listener lost its connection; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        })
    }

    pub async fn create_user(&self, user: UserRow) -> Result<bool, StorageError> {
        let client = self.pool.get().await?;
        let inserted = client
            .execute(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (email) DO NOTHING",
                &[
                    &user.id,
                    &user.email,
                    &user.password_hash,
                    &user.created_at_ms,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    pub async fn insert_user_if_absent(&self, user: UserRow) -> Result<bool, StorageError> {
        let client = self.pool.get().await?;
        let inserted = client
            .execute(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[
                    &user.id,
                    &user.email,
                    &user.password_hash,
                    &user.created_at_ms,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    pub async fn update_user_email(
        &self,
        user_id: &str,
        email: &str,
    ) -> Result<bool, StorageError> {
        let client = self.pool.get().await?;
        // A concurrent update to the same email fails on the unique index: taken, as here.
        let updated = client
            .execute(
                "UPDATE users SET email = $2 WHERE id = $1
                 AND NOT EXISTS (SELECT 1 FROM users WHERE email = $2)",
                &[&user_id, &email],
            )
            .await;
        match updated {
            Ok(n) => Ok(n == 1),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StorageError> {
        let client = self.pool.get().await?;
        user_where(&client, "email = $1", email).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StorageError> {
        let client = self.pool.get().await?;
        user_where(&client, "id = $1", id).await
    }

    /// Whether sign-in `session_id` of `user_id` exists and is not revoked.
    pub async fn session_active(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StorageError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&session_id, &user_id],
            )
            .await?;
        Ok(row.is_some())
    }

    pub async fn create_session(
        &self,
        user_id: &str,
        session_id: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3)",
            &[&session_id, &user_id, &now_ms],
        )
        .await?;
        insert_refresh_token(&tx, token_hash, session_id, user_id, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn exchange_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<RefreshOutcome, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The row lock makes two concurrent exchanges of one token (two instances) take turns.
        let found = tx
            .query_opt(
                "SELECT t.session_id, t.user_id, t.used_at, s.revoked_at
                 FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
                 WHERE t.token_hash = $1 FOR UPDATE OF t",
                &[&old_hash],
            )
            .await?;
        let Some(row) = found else {
            return Ok(RefreshOutcome::Refused);
        };
        let (session_id, user_id): (String, String) = (row.get(0), row.get(1));
        let (used_at, revoked_at): (Option<i64>, Option<i64>) = (row.get(2), row.get(3));
        if revoked_at.is_some() {
            return Ok(RefreshOutcome::Refused);
        }
        if let Some(used_at) = used_at {
            if now_ms - used_at > grace_ms {
                tx.execute(
                    "UPDATE sessions SET revoked_at = $2 WHERE id = $1",
                    &[&session_id, &now_ms],
                )
                .await?;
                tx.commit().await?;
                return Ok(RefreshOutcome::Refused);
            }
            // A retry of an exchange whose answer was lost: the token it handed out replaces
            // nothing yet (still unused, created by that exchange), so it gives way to a new one.
            let replaced = tx
                .execute(
                    "DELETE FROM refresh_tokens
                     WHERE session_id = $1 AND used_at IS NULL AND created_at = $2",
                    &[&session_id, &used_at],
                )
                .await?;
            if replaced == 0 {
                return Ok(RefreshOutcome::Refused);
            }
        } else {
            tx.execute(
                "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1",
                &[&old_hash, &now_ms],
            )
            .await?;
        }
        let created_at = used_at.unwrap_or(now_ms);
        insert_refresh_token(&tx, new_hash, &session_id, &user_id, created_at).await?;
        let user = user_where(&tx, "id = $1", &user_id).await?;
        tx.commit().await?;
        Ok(match user {
            Some(user) => RefreshOutcome::Exchanged { user, session_id },
            None => RefreshOutcome::Refused,
        })
    }

    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE sessions SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&session_id, &user_id, &now_ms],
            )
            .await?;
        Ok(())
    }

    pub async fn revoke_other_sessions(
        &self,
        user_id: &str,
        keep_session_id: &str,
        now_ms: i64,
    ) -> Result<u64, StorageError> {
        let client = self.pool.get().await?;
        let revoked = client
            .execute(
                "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
                &[&user_id, &keep_session_id, &now_ms],
            )
            .await?;
        Ok(revoked)
    }

    pub async fn push(&self, job: PushJob) -> Result<Option<PushOutcome>, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let lock = tx
            .prepare_cached("SELECT change_seq, purged_seq FROM users WHERE id = $1 FOR UPDATE")
            .await?;
        let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&job.user_id];
        // Pipelined with the lock: the server runs the loads only once the lock is granted, and in
        // READ COMMITTED each of them then sees every push of this user committed before.
        // The user's own stream is loaded here; spaces (below) only for batches that name one.
        let user = job.user_id.as_str();
        let own_stream = |stream: &str| stream == user;
        let (row, mut loaded) = futures_util::try_join!(
            async {
                tx.query_opt(&lock, &lock_params)
                    .await
                    .map_err(StorageError::from)
            },
            load_push_state(&tx, &job, &own_stream, true),
        )?;
        let Some(row) = row else { return Ok(None) };
        let (current_seq, purged_seq): (i64, i64) = (row.get(0), row.get(1));
        let mut streams = push::PushStreams::user_only(user, current_seq, purged_seq);
        let spaces = push::named_spaces(&job.mutations);
        if !spaces.is_empty() {
            // Lock order: the user's row (above), then the spaces' stream rows in id order; the
            // role is read under those locks (membership changes take the same stream lock), and
            // only streams the pusher may write are loaded.
            lock_space_streams(&tx, user, &spaces, &mut streams).await?;
            let writable = |stream: &str| stream != user && streams.may_write(stream);
            let in_spaces = load_push_state(&tx, &job, &writable, false).await?;
            for (key, record) in in_spaces.records {
                let seq = in_spaces.stored_seqs[&key];
                loaded.add(record, seq);
            }
        }
        let LoadedState {
            known_ops,
            records,
            stored_seqs,
        } = loaded;
        // Costs nothing unless the batch names attachments the records do not already hold.
        let hashes =
            push::new_attachment_hashes(&job.schema, user, &job.mutations, &records, |stream| {
                streams.may_write(stream)
            });
        if !hashes.is_empty() {
            streams.readable_blobs = super::record_blobs_postgres::readable_blobs(
                &tx,
                user,
                &hashes,
                job.now_ms - self.blob_grace_ms(),
            )
            .await?;
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
        // The operator's "last push" and the rejected changes: pipelined with the writes.
        let note = super::admin_postgres::note_push(&tx, user, job.now_ms, &rejections);
        if plan.writes.is_empty() && plan.applied_ops.is_empty() {
            note.await?;
            tx.commit().await?;
            return Ok(Some(PushOutcome::unchanged(plan.results)));
        }
        let writes = async {
            for (stream, writes) in plan.writes_by_stream() {
                write_index_rows(&tx, &job.schema, stream, writes).await?;
            }
            write_plan(
                &tx,
                &job.user_id,
                &plan,
                &stored_seqs,
                job.now_ms,
                Some(&job.client_id),
            )
            .await
        };
        futures_util::try_join!(note, writes)?;
        tx.commit().await?;
        Ok(Some(PushOutcome::written(plan, &job.user_id)))
    }

    pub async fn pull(
        &self,
        user_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Option<PullPage>, StorageError> {
        let mut client = self.pool.get().await?;
        // Repeatable read: the page, the count and the user's sequence share one snapshot.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        // Right after a bulk load the table statistics lag behind (estimates of a few rows), and
        // the planner then prefers a bitmap scan of *every* row after the cursor plus a sort over
        // walking the (user_id, seq) index and stopping at the limit. Pages must cost O(limit).
        tx.batch_execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
            .await?;
        let seqs = tx
            .prepare_cached("SELECT change_seq, purged_seq FROM users WHERE id = $1")
            .await?;
        let page = tx.prepare_cached(SELECT_PAGE).await?;
        let rows_after = tx.prepare_cached(ROWS_AFTER).await?;
        let limit_param = i64::from(limit);
        let next_block = seq_block(after_seq) + 1;
        let next_block_start = next_block * SEQ_BLOCK;
        let seq_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&user_id];
        let page_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&user_id, &after_seq, &limit_param];
        let count_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&user_id, &after_seq, &next_block_start, &next_block];
        // One round trip: the count does not depend on the page (see `remaining_after_page`).
        let (seq_row, rows, count) = futures_util::try_join!(
            tx.query_opt(&seqs, &seq_params),
            tx.query(&page, &page_params),
            tx.query_one(&rows_after, &count_params),
        )?;
        let Some(seq_row) = seq_row else {
            return Ok(None);
        };
        let mut changes: Vec<ChangeRow> = rows.iter().map(change_from_row).collect();
        // A page never ends inside a group: it runs on to the group's last change.
        if let (Some(end), Some(last)) = (group_tail(&changes), changes.last().map(|c| c.seq)) {
            let tail = tx.prepare_cached(SELECT_GROUP_TAIL).await?;
            let tail_rows = tx.query(&tail, &[&user_id, &last, &end]).await?;
            changes.extend(tail_rows.iter().map(change_from_row));
        }
        tx.commit().await?;
        let remaining = remaining_after_page(count.get(0), changes.len(), limit);
        Ok(Some(PullPage {
            changes,
            remaining,
            user_seq: seq_row.get(0),
            purged_seq: seq_row.get(1),
        }))
    }

    pub async fn pull_streams(&self, job: PullJob) -> Result<Option<MultiPull>, StorageError> {
        let mut client = self.pool.get().await?;
        // Repeatable read: the readable streams, their heads, the rows, the counts and the
        // account section share one snapshot.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        // See `pull`: pages must cost O(limit) whatever the statistics say.
        tx.batch_execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
            .await?;
        let Some(readable) = readable_in(&tx, &job.user_id).await? else {
            return Ok(None);
        };
        let (reads, mut statuses) = match plan_pull(&readable, &job.named) {
            Ok(planned) => planned,
            Err(stream) => return Ok(Some(MultiPull::AheadOfHead(stream))),
        };
        let page = tx.prepare_cached(SELECT_PAGE).await?;
        let tail = tx.prepare_cached(SELECT_GROUP_TAIL).await?;
        let mut changes = Vec::new();
        let mut quota = job.limit as usize;
        // Streams whose rows after a position are still to count: (stream key, position).
        let mut to_count: Vec<(String, i64)> = Vec::new();
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
            let asked = quota;
            let rows = tx.query(&page, &[db, &read.from, &(asked as i64)]).await?;
            let mut rows: Vec<ChangeRow> = rows.iter().map(change_from_row).collect();
            // A page never ends inside a group: it runs on to the group's last change.
            if let (Some(end), Some(last)) = (group_tail(&rows), rows.last().map(|c| c.seq)) {
                let more = tx.query(&tail, &[db, &last, &end]).await?;
                rows.extend(more.iter().map(change_from_row));
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
        let remaining = streams_rows_after(&tx, &to_count).await?.max(0) as u64;
        let account = account_if_changed(&tx, &job).await?;
        tx.commit().await?;
        Ok(Some(MultiPull::Page(MultiPullPage {
            changes,
            streams: statuses,
            remaining,
            has_more: remaining > 0 || expired,
            account,
        })))
    }

    pub async fn account(&self, user_id: &str, now_ms: i64) -> Result<Account, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let account = read_account(&tx, user_id, now_ms).await?;
        tx.commit().await?;
        Ok(account)
    }

    pub async fn readable_streams(&self, user_id: &str) -> Result<Vec<String>, StorageError> {
        let client = self.pool.get().await?;
        Ok(readable_in(&client, user_id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.db)
            .collect())
    }

    pub async fn latest_seq(&self, user_id: &str) -> Result<i64, StorageError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt("SELECT change_seq FROM users WHERE id = $1", &[&user_id])
            .await?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    pub async fn purge(
        &self,
        tombstones_before_ms: i64,
        ops_before_ms: i64,
    ) -> Result<u64, StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Lock the users first, in id order, as pushes do (user row, then records): no deadlock.
        let rows = tx
            .query(
                "WITH doomed AS (
                     SELECT user_id, max(seq) AS seq FROM records
                     WHERE deleted AND updated_at < $1 GROUP BY user_id)
                 UPDATE users u SET purged_seq = GREATEST(u.purged_seq, d.seq)
                 FROM doomed d WHERE u.id = d.user_id RETURNING u.id",
                &[&tombstones_before_ms],
            )
            .await?;
        let user_ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        // Only up to the purged_seq just set: a tombstone committed meanwhile stays. The purged rows
        // leave their blocks' counts; blocks left empty go (these users are locked: no push of
        // theirs can be adding to them).
        let purged: i64 = tx
            .query_one(
                "WITH gone AS (
                     DELETE FROM records r USING users u
                     WHERE u.id = r.user_id AND u.id = ANY($1) AND r.deleted AND r.updated_at < $2
                       AND r.seq <= u.purged_seq
                     RETURNING r.user_id, r.seq),
                 per_block AS (SELECT user_id, seq / $3 AS block, count(*) AS n FROM gone GROUP BY 1, 2),
                 counted AS (
                     UPDATE seq_blocks b SET live = b.live - p.n FROM per_block p
                     WHERE b.user_id = p.user_id AND b.block = p.block RETURNING 1)
                 SELECT count(*) FROM gone",
                &[&user_ids, &tombstones_before_ms, &SEQ_BLOCK],
            )
            .await?
            .get(0);
        tx.execute(
            "DELETE FROM seq_blocks WHERE user_id = ANY($1) AND live = 0",
            &[&user_ids],
        )
        .await?;
        tx.execute("DELETE FROM ops WHERE created_at < $1", &[&ops_before_ms])
            .await?;
        tx.commit().await?;
        // Then the other streams, in separate transactions: purge never holds a user lock and a
        // stream lock at once, so it cannot deadlock with a push (user, then streams).
        let streams = self.purge_streams(tombstones_before_ms).await?;
        Ok(purged as u64 + streams)
    }

    /// Raises `purged_seq` of every live stream (public, spaces) holding tombstones older than
    /// `tombstones_before_ms` and deletes them, locking the streams in batches of
    /// [`STREAM_PURGE_BATCH`] rows `ORDER BY id`, one transaction per batch.
    async fn purge_streams(&self, tombstones_before_ms: i64) -> Result<u64, StorageError> {
        let mut client = self.pool.get().await?;
        let mut after = String::new();
        let mut total = 0i64;
        loop {
            let tx = client.transaction().await?;
            let rows = tx
                .query(
                    "SELECT id FROM streams WHERE id > $1 AND deleted_at IS NULL
                       AND id IN (SELECT DISTINCT user_id FROM records
                                  WHERE deleted AND updated_at < $2)
                     ORDER BY id LIMIT $3 FOR UPDATE",
                    &[&after, &tombstones_before_ms, &STREAM_PURGE_BATCH],
                )
                .await?;
            let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            let Some(last) = ids.last().cloned() else {
                return Ok(total as u64);
            };
            tx.execute(
                "WITH doomed AS (
                     SELECT user_id, max(seq) AS seq FROM records
                     WHERE user_id = ANY($1) AND deleted AND updated_at < $2 GROUP BY user_id)
                 UPDATE streams s SET purged_seq = GREATEST(s.purged_seq, d.seq)
                 FROM doomed d WHERE s.id = d.user_id",
                &[&ids, &tombstones_before_ms],
            )
            .await?;
            let purged: i64 = tx
                .query_one(
                    "WITH gone AS (
                         DELETE FROM records r USING streams s
                         WHERE s.id = r.user_id AND s.id = ANY($1) AND r.deleted
                           AND r.updated_at < $2 AND r.seq <= s.purged_seq
                         RETURNING r.user_id, r.seq),
                     per_block AS (SELECT user_id, seq / $3 AS block, count(*) AS n FROM gone GROUP BY 1, 2),
                     counted AS (
                         UPDATE seq_blocks b SET live = b.live - p.n FROM per_block p
                         WHERE b.user_id = p.user_id AND b.block = p.block RETURNING 1)
                     SELECT count(*) FROM gone",
                    &[&ids, &tombstones_before_ms, &SEQ_BLOCK],
                )
                .await?
                .get(0);
            tx.execute(
                "DELETE FROM seq_blocks WHERE user_id = ANY($1) AND live = 0",
                &[&ids],
            )
            .await?;
            tx.commit().await?;
            total += purged;
            if (ids.len() as i64) < STREAM_PURGE_BATCH {
                return Ok(total as u64);
            }
            after = last;
        }
    }

    /// Deletes the records of deleted spaces, [`DELETED_SPACE_BATCH`] rows per transaction (each
    /// under the space's stream lock), then each space's stream row. Returns the rows deleted.
    pub async fn purge_deleted_spaces(&self) -> Result<u64, StorageError> {
        let mut client = self.pool.get().await?;
        let mut total = 0u64;
        loop {
            let tx = client.transaction().await?;
            let Some(row) = tx
                .query_opt(
                    "SELECT id FROM streams WHERE deleted_at IS NOT NULL ORDER BY id LIMIT 1
                     FOR UPDATE SKIP LOCKED",
                    &[],
                )
                .await?
            else {
                return Ok(total);
            };
            let stream: String = row.get(0);
            let mut deleted = 0u64;
            for table in ["records", "record_refs", "record_uniques", "record_blobs"] {
                deleted += tx
                    .execute(
                        &format!(
                            "DELETE FROM {table} WHERE ctid IN
                             (SELECT ctid FROM {table} WHERE user_id = $1 LIMIT $2)"
                        ),
                        &[&stream, &DELETED_SPACE_BATCH],
                    )
                    .await?;
            }
            if deleted == 0 {
                tx.execute("DELETE FROM seq_blocks WHERE user_id = $1", &[&stream])
                    .await?;
                tx.execute("DELETE FROM streams WHERE id = $1", &[&stream])
                    .await?;
                tracing::info!(stream = %stream, "purged a deleted space");
            }
            tx.commit().await?;
            total += deleted;
        }
    }
}

/// Column arrays of a batch of record writes, for one `UNNEST` upsert.
#[derive(Default)]
struct WriteColumns<'a> {
    entity: Vec<&'a str>,
    entity_id: Vec<&'a str>,
    version: Vec<i64>,
    deleted: Vec<bool>,
    doc: Vec<Option<&'a str>>,
    parent_entity: Vec<Option<&'a str>>,
    parent_id: Vec<Option<&'a str>>,
    seq: Vec<i64>,
    group_id: Vec<Option<&'a str>>,
    group_end: Vec<Option<i64>>,
    edited_at: Vec<Option<String>>,
    field_edited_at: Vec<Option<String>>,
}

impl<'a> From<Vec<&'a push::RecordWrite>> for WriteColumns<'a> {
    fn from(writes: Vec<&'a push::RecordWrite>) -> Self {
        let mut c = WriteColumns::default();
        for w in writes {
            let r = &w.record;
            c.entity.push(&r.key.entity);
            c.entity_id.push(&r.key.id);
            c.version.push(r.version);
            c.deleted.push(r.deleted);
            c.doc.push(r.doc.as_deref());
            c.parent_entity
                .push(r.parent.as_ref().map(|p| p.entity.as_str()));
            c.parent_id.push(r.parent.as_ref().map(|p| p.id.as_str()));
            c.seq.push(w.seq);
            c.group_id.push(w.group.as_ref().map(|g| g.0.as_str()));
            c.group_end.push(w.group.as_ref().map(|g| g.1));
            c.edited_at
                .push(r.edited_at.as_ref().map(ToString::to_string));
            c.field_edited_at.push(r.field_times_json());
        }
        c
    }
}

impl WriteColumns<'_> {
    /// Runs `statement` ([`INSERT_RECORDS`] or [`UPSERT_RECORDS`]) over these rows, if any.
    async fn write(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        statement: &tokio_postgres::Statement,
        user_id: &str,
        now_ms: i64,
    ) -> Result<(), tokio_postgres::Error> {
        if self.entity.is_empty() {
            return Ok(());
        }
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 14] = [
            &user_id,
            &self.entity,
            &self.entity_id,
            &self.version,
            &self.deleted,
            &self.doc,
            &self.parent_entity,
            &self.parent_id,
            &self.seq,
            &now_ms,
            &self.group_id,
            &self.group_end,
            &self.edited_at,
            &self.field_edited_at,
        ];
        tx.execute(statement, &params).await?;
        Ok(())
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    on_change: &(impl Fn(&str) + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    let listen_sql = format!("LISTEN {CHANGES_CHANNEL}");
    let listen = client.batch_execute(&listen_sql);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            result = &mut listen, if !listening => { result?; listening = true; }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) => on_change(n.payload()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    }
}

/// The streams `user_id` may read, in page order (`user`, `public`, spaces by id) with their
/// heads and purge states; `None` when the user does not exist. One round trip.
async fn readable_in(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<Option<Vec<Readable>>, StorageError> {
    let user = client
        .prepare_cached("SELECT change_seq, purged_seq FROM users WHERE id = $1")
        .await?;
    let streams = client
        .prepare_cached(
            "(SELECT id, change_seq, purged_seq FROM streams WHERE id = 'public')
             UNION ALL
             (SELECT s.id, s.change_seq, s.purged_seq FROM members m
                 JOIN streams s ON s.id = 'space:' || m.space_id
                 WHERE m.user_id = $1 AND s.deleted_at IS NULL ORDER BY m.space_id)",
        )
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&user_id];
    let (user_row, stream_rows) = futures_util::try_join!(
        client.query_opt(&user, &params),
        client.query(&streams, &params),
    )?;
    let Some(user_row) = user_row else {
        return Ok(None);
    };
    let mut readable = vec![Readable {
        wire: "user".into(),
        db: user_id.to_string(),
        head: user_row.get(0),
        purged_seq: user_row.get(1),
    }];
    readable.extend(stream_rows.iter().map(|r| Readable {
        wire: r.get(0),
        db: r.get(0),
        head: r.get(1),
        purged_seq: r.get(2),
    }));
    Ok(Some(readable))
}

/// The account section, when the client's `accountSeq` differs from the user's.
async fn account_if_changed(
    client: &impl GenericClient,
    job: &PullJob,
) -> Result<Option<Account>, StorageError> {
    let seq = account_seq(client, &job.user_id).await?;
    if job.account_seq == Some(seq) {
        return Ok(None);
    }
    read_account(client, &job.user_id, job.now_ms)
        .await
        .map(Some)
}

async fn account_seq(client: &impl GenericClient, user_id: &str) -> Result<i64, StorageError> {
    let select = client
        .prepare_cached("SELECT account_seq FROM user_epochs WHERE user_id = $1")
        .await?;
    Ok(client
        .query_opt(&select, &[&user_id])
        .await?
        .map_or(0, |r| r.get(0)))
}

/// The user's spaces (live ones they are a member of) and pending invitations (to their
/// account's email, not expired at `now_ms`), with the account sequence. Run it in one snapshot.
async fn read_account(
    client: &impl GenericClient,
    user_id: &str,
    now_ms: i64,
) -> Result<Account, StorageError> {
    let spaces = client
        .prepare_cached(
            "SELECT sp.id, sp.name, m.role,
                    (SELECT count(*) FROM members c WHERE c.space_id = sp.id), sp.created_at
             FROM members m JOIN spaces sp ON sp.id = m.space_id
             JOIN streams s ON s.id = 'space:' || m.space_id
             WHERE m.user_id = $1 AND s.deleted_at IS NULL ORDER BY sp.id",
        )
        .await?;
    let invitations = client
        .prepare_cached(
            "SELECT i.id, i.space_id, sp.name, i.email, i.role, coalesce(u.email, ''),
                    i.created_at, i.expires_at
             FROM users me JOIN invitations i ON i.email = me.email
             JOIN spaces sp ON sp.id = i.space_id
             LEFT JOIN users u ON u.id = i.invited_by
             WHERE me.id = $1 AND i.expires_at > $2 ORDER BY i.created_at, i.id",
        )
        .await?;
    let (account_seq, space_rows, invitation_rows) = futures_util::try_join!(
        account_seq(client, user_id),
        async {
            client
                .query(&spaces, &[&user_id])
                .await
                .map_err(StorageError::from)
        },
        async {
            client
                .query(&invitations, &[&user_id, &now_ms])
                .await
                .map_err(StorageError::from)
        },
    )?;
    let spaces = space_rows
        .iter()
        .map(|r| {
            Ok(SpaceRow {
                id: r.get(0),
                name: r.get(1),
                role: super::stored_role(r.get(2))?,
                member_count: r.get(3),
                created_at_ms: r.get(4),
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let invitations = invitation_rows
        .iter()
        .map(invitation_of)
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(Account {
        account_seq,
        spaces,
        invitations,
    })
}

/// An invitation from the columns id, space_id, space name, email, role, inviter's email,
/// created_at, expires_at.
pub(crate) fn invitation_of(r: &tokio_postgres::Row) -> Result<InvitationRow, StorageError> {
    Ok(InvitationRow {
        id: r.get(0),
        space_id: r.get(1),
        space_name: r.get(2),
        email: r.get(3),
        role: super::stored_role(r.get(4))?,
        invited_by_email: r.get(5),
        created_at_ms: r.get(6),
        expires_at_ms: r.get(7),
    })
}

async fn user_where(
    client: &impl GenericClient,
    condition: &str,
    value: &str,
) -> Result<Option<UserRow>, StorageError> {
    let sql = format!("SELECT id, email, password_hash, created_at FROM users WHERE {condition}");
    let statement = client.prepare_cached(&sql).await?;
    let row = client.query_opt(&statement, &[&value]).await?;
    Ok(row.map(|r| UserRow {
        id: r.get(0),
        email: r.get(1),
        password_hash: r.get(2),
        created_at_ms: r.get(3),
    }))
}

async fn insert_refresh_token(
    client: &impl GenericClient,
    token_hash: &str,
    session_id: &str,
    user_id: &str,
    now_ms: i64,
) -> Result<(), StorageError> {
    client
        .execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, user_id, created_at) VALUES ($1, $2, $3, $4)",
            &[&token_hash, &session_id, &user_id, &now_ms],
        )
        .await?;
    Ok(())
}

/// How many rows the streams have after their positions, summed, in one statement (a member of
/// many spaces has up to one count per space on every page): per stream the rows of its
/// position's own block by index, then the later blocks' counts ([`count_split`]).
async fn streams_rows_after(
    tx: &deadpool_postgres::Transaction<'_>,
    to_count: &[(String, i64)],
) -> Result<i64, StorageError> {
    if to_count.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(to_count.len());
    let mut afters = Vec::with_capacity(to_count.len());
    let mut starts = Vec::with_capacity(to_count.len());
    let mut blocks = Vec::with_capacity(to_count.len());
    for (db, after) in to_count {
        let (start, block) = count_split(*after);
        ids.push(db.as_str());
        afters.push(*after);
        starts.push(start);
        blocks.push(block);
    }
    let statement = tx.prepare_cached(STREAMS_ROWS_AFTER).await?;
    let row = tx
        .query_one(&statement, &[&ids, &afters, &starts, &blocks])
        .await?;
    Ok(row.get(0))
}

/// Locks the stream rows of `spaces` (stream keys, sorted) in id order and reads each one's
/// sequence and purge state and the pusher's role in each live space they are a member of.
async fn lock_space_streams(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: &str,
    spaces: &[String],
    streams: &mut push::PushStreams,
) -> Result<(), StorageError> {
    let lock = tx
        .prepare_cached(
            "SELECT id, change_seq, purged_seq FROM streams WHERE id = ANY($1)
             ORDER BY id FOR UPDATE",
        )
        .await?;
    let roles = tx
        .prepare_cached(
            "SELECT s.id, m.role FROM members m JOIN streams s ON s.id = 'space:' || m.space_id
             WHERE m.user_id = $1 AND m.space_id = ANY($2) AND s.deleted_at IS NULL",
        )
        .await?;
    let space_ids: Vec<&str> = spaces
        .iter()
        .filter_map(|s| push::space_of_stream(s))
        .collect();
    // Pipelined: the server runs the roles read once the locks are granted.
    let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&spaces];
    let role_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&user_id, &space_ids];
    let (locked, role_rows) = futures_util::try_join!(
        tx.query(&lock, &lock_params),
        tx.query(&roles, &role_params),
    )?;
    for row in &locked {
        streams.seqs.insert(row.get(0), (row.get(1), row.get(2)));
    }
    for row in &role_rows {
        if let Some(role) = super::Role::parse(row.get(1)) {
            streams.roles.insert(row.get(0), role);
        }
    }
    Ok(())
}

/// Loads what [`push::plan_push`] judges against: known opIds (when `with_ops`), the records the
/// batch names in the streams `load` accepts and, when it deletes, their live descendants level by
/// level (one statement per level and stream).
pub(super) async fn load_push_state(
    client: &impl GenericClient,
    job: &PushJob,
    load: &(dyn Fn(&str) -> bool + Sync),
    with_ops: bool,
) -> Result<LoadedState, StorageError> {
    let keys = push::keys_to_load(&job.schema, &job.user_id, &job.mutations, load);
    let mut loaded = LoadedState {
        known_ops: HashMap::new(),
        records: HashMap::with_capacity(keys.len()),
        stored_seqs: HashMap::with_capacity(keys.len()),
    };
    let select_records = client.prepare_cached(SELECT_RECORDS).await?;
    let grouped = push::by_stream(&keys);
    if with_ops {
        let select_ops = client.prepare_cached(SELECT_OPS).await?;
        let op_ids: Vec<&str> = job.mutations.iter().map(|m| m.op_id.as_str()).collect();
        let op_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&job.user_id, &op_ids];
        // The user-only batch (nearly every push): ops and records in one round trip.
        let user_keys = grouped.get(job.user_id.as_str());
        let (entities, ids) = key_columns(user_keys.map_or(&[][..], |k| k.as_slice()));
        let record_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&job.user_id, &entities, &ids];
        let (op_rows, record_rows) = futures_util::try_join!(
            client.query(&select_ops, &op_params),
            client.query(&select_records, &record_params),
        )?;
        loaded.known_ops = op_rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for row in &record_rows {
            add_loaded_record(&mut loaded, &job.user_id, row);
        }
    }
    for (stream, stream_keys) in &grouped {
        if with_ops && *stream == job.user_id {
            continue;
        }
        let (entities, ids) = key_columns(stream_keys);
        let rows = client
            .query(&select_records, &[stream, &entities, &ids])
            .await?;
        for row in &rows {
            add_loaded_record(&mut loaded, stream, row);
        }
    }
    let probes = push::unique_probes(&job.schema, &job.user_id, &job.mutations, load);
    if !probes.is_empty() {
        let select_holders = client.prepare_cached(SELECT_UNIQUE_HOLDERS).await?;
        let mut streams: Vec<&str> = probes.iter().map(|p| p.0.as_str()).collect();
        streams.dedup();
        for stream in streams {
            let of_stream = probes.iter().filter(|p| p.0 == stream);
            let entities: Vec<&str> = of_stream.clone().map(|p| p.1.as_str()).collect();
            let fields: Vec<&str> = of_stream.clone().map(|p| p.2.as_str()).collect();
            let unique_keys: Vec<&str> = of_stream.map(|p| p.3.as_str()).collect();
            let rows = client
                .query(
                    &select_holders,
                    &[&stream, &entities, &fields, &unique_keys],
                )
                .await?;
            for row in &rows {
                add_loaded_record(&mut loaded, stream, row);
            }
        }
    }
    if push::has_deletes(&job.mutations) {
        load_live_descendants(client, job, &keys, &mut loaded).await?;
    }
    Ok(loaded)
}

/// Adds the live descendants of `keys`, level by level, to what a push deleting them judges
/// against (each in its key's own stream).
async fn load_live_descendants(
    client: &impl GenericClient,
    job: &PushJob,
    keys: &[RecordKey],
    loaded: &mut LoadedState,
) -> Result<(), StorageError> {
    let select_children = client.prepare_cached(SELECT_LIVE_CHILDREN).await?;
    let select_referrers = client.prepare_cached(SELECT_LIVE_REFERRERS).await?;
    let mut frontier = push::keys_with_children(&job.schema, keys.iter());
    let mut referred = push::keys_with_referrers(&job.schema, keys.iter());
    let mut expanded: std::collections::HashSet<RecordKey> = keys.iter().cloned().collect();
    while !frontier.is_empty() || !referred.is_empty() {
        let mut found: Vec<RecordKey> = Vec::new();
        // Referrers are loaded to apply their rule; only `cascade` ones go on.
        for (stream, targets) in push::by_stream(&referred) {
            let (entities, ids) = key_columns(&targets);
            let rows = client
                .query(&select_referrers, &[&stream, &entities, &ids])
                .await?;
            for row in &rows {
                let field: String = row.get(10);
                let key = RecordKey::new(stream, row.get::<_, String>(0), row.get::<_, String>(1));
                add_loaded_record(loaded, stream, row);
                if push::cascades(&job.schema, &key.entity, &field) && expanded.insert(key.clone())
                {
                    found.push(key);
                }
            }
        }
        for (stream, parents) in push::by_stream(&frontier) {
            let (entities, ids) = key_columns(&parents);
            let rows = client
                .query(&select_children, &[&stream, &entities, &ids])
                .await?;
            for row in &rows {
                let key = RecordKey::new(stream, row.get::<_, String>(0), row.get::<_, String>(1));
                add_loaded_record(loaded, stream, row);
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

impl PostgresStore {
    /// See `Storage::index_rules`. Under an advisory lock, so instances starting together
    /// rebuild once.
    pub async fn index_rules(&self, schema: &tandem_protocol::Schema) -> Result<(), StorageError> {
        let fingerprint = push::rules_fingerprint(schema);
        let collections = push::indexed_collections(schema);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock(7283746502)", &[])
            .await?;
        let indexed: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE key = 'rules_indexed'", &[])
            .await?
            .map(|r| r.get(0));
        if indexed.as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        tx.execute("DELETE FROM record_refs", &[]).await?;
        tx.execute("DELETE FROM record_uniques", &[]).await?;
        tx.execute("DELETE FROM record_blobs", &[]).await?;
        let rows = tx
            .query(
                "SELECT user_id, entity, entity_id, doc FROM records
                 WHERE entity = ANY($1) AND NOT deleted ORDER BY user_id",
                &[&collections],
            )
            .await?;
        let mut by_user: std::collections::BTreeMap<String, Vec<push::RecordWrite>> =
            std::collections::BTreeMap::new();
        for r in &rows {
            by_user
                .entry(r.get(0))
                .or_default()
                .push(push::RecordWrite {
                    record: StoredRecord {
                        key: RecordKey::new(r.get(0), r.get::<_, String>(1), r.get::<_, String>(2)),
                        version: 0,
                        deleted: false,
                        doc: r.get(3),
                        parent: None,
                        edited_at: None,
                        field_times: Default::default(),
                    },
                    seq: 0,
                    group: None,
                });
        }
        for (user_id, writes) in by_user {
            write_index_rows(&tx, schema, &user_id, &writes).await?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('rules_indexed', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&fingerprint],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            records = rows.len(),
            "indexed references and unique keys for the schema's rules"
        );
        Ok(())
    }
}

/// Brings the tables of references, unique keys and blobs in line with the batch's writes.
pub(super) async fn write_index_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &tandem_protocol::Schema,
    user_id: &str,
    writes: &[push::RecordWrite],
) -> Result<(), StorageError> {
    let push::IndexRows {
        cleared,
        refs,
        uniques,
        blobs,
    } = push::index_rows(schema, writes);
    if cleared.is_empty() {
        return Ok(());
    }
    let with_blobs: Vec<&RecordKey> = cleared
        .iter()
        .filter(|k| push::has_attachments(schema, &k.entity))
        .collect();
    if !with_blobs.is_empty() {
        let (entities, ids) = key_columns(&with_blobs);
        let clear = tx.prepare_cached(CLEAR_BLOBS).await?;
        tx.execute(&clear, &[&user_id, &entities, &ids]).await?;
    }
    if !blobs.is_empty() {
        let insert = tx.prepare_cached(INSERT_BLOBS).await?;
        let e: Vec<&str> = blobs.iter().map(|b| b.0.as_str()).collect();
        let i: Vec<&str> = blobs.iter().map(|b| b.1.as_str()).collect();
        let f: Vec<&str> = blobs.iter().map(|b| b.2.as_str()).collect();
        let h: Vec<&str> = blobs.iter().map(|b| b.3.as_str()).collect();
        tx.execute(&insert, &[&user_id, &e, &i, &f, &h]).await?;
    }
    let cleared: Vec<&RecordKey> = cleared.iter().collect();
    let (entities, ids) = key_columns(&cleared);
    let clear_refs = tx.prepare_cached(CLEAR_REFS).await?;
    let clear_uniques = tx.prepare_cached(CLEAR_UNIQUES).await?;
    tx.execute(&clear_refs, &[&user_id, &entities, &ids])
        .await?;
    tx.execute(&clear_uniques, &[&user_id, &entities, &ids])
        .await?;
    if !refs.is_empty() {
        let insert = tx.prepare_cached(INSERT_REFS).await?;
        let column = |i: usize| -> Vec<&str> {
            refs.iter()
                .map(|r| match i {
                    0 => r.0.as_str(),
                    1 => r.1.as_str(),
                    2 => r.2.as_str(),
                    3 => r.3.as_str(),
                    _ => r.4.as_str(),
                })
                .collect()
        };
        let (e, i, f, te, ti) = (column(0), column(1), column(2), column(3), column(4));
        tx.execute(&insert, &[&user_id, &e, &i, &f, &te, &ti])
            .await?;
    }
    if !uniques.is_empty() {
        let insert = tx.prepare_cached(INSERT_UNIQUES).await?;
        let e: Vec<&str> = uniques.iter().map(|u| u.0.as_str()).collect();
        let i: Vec<&str> = uniques.iter().map(|u| u.1.as_str()).collect();
        let f: Vec<&str> = uniques.iter().map(|u| u.2.as_str()).collect();
        let k: Vec<&str> = uniques.iter().map(|u| u.3.as_str()).collect();
        tx.execute(&insert, &[&user_id, &e, &i, &f, &k]).await?;
    }
    Ok(())
}

/// Adds a row of [`SELECT_RECORDS`], [`SELECT_LIVE_CHILDREN`], [`SELECT_LIVE_REFERRERS`] or
/// [`SELECT_UNIQUE_HOLDERS`] (their first ten columns); returns its key when it was new.
fn add_loaded_record(
    loaded: &mut LoadedState,
    stream: &str,
    r: &tokio_postgres::Row,
) -> Option<RecordKey> {
    let (edited_at, field_times) =
        push::stored_times(r.get::<_, Option<&str>>(8), r.get::<_, Option<&str>>(9));
    let record = StoredRecord {
        key: RecordKey::new(stream, r.get::<_, String>(0), r.get::<_, String>(1)),
        version: r.get(2),
        deleted: r.get(3),
        doc: r.get(4),
        parent: r
            .get::<_, Option<String>>(5)
            .zip(r.get::<_, Option<String>>(6))
            .map(|(e, i)| RecordKey::new(stream, e, i)),
        edited_at,
        field_times,
    };
    loaded.add(record, r.get(7))
}

/// Writes a judged batch: records, block counts, op ids, the user's sequence and the poke (naming
/// the pushing client, `origin`, when a client's push wrote it), as
/// multi-row statements pipelined on the transaction's connection (they go out together and run
/// in order on the server).
pub(super) async fn write_plan(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: &str,
    plan: &PushPlan,
    stored_seqs: &HashMap<RecordKey, i64>,
    now_ms: i64,
    origin: Option<&str>,
) -> Result<(), StorageError> {
    let insert = tx.prepare_cached(INSERT_RECORDS).await?;
    let upsert = tx.prepare_cached(UPSERT_RECORDS).await?;
    let add_blocks = tx.prepare_cached(ADD_BLOCK_DELTAS).await?;
    let insert_ops = tx.prepare_cached(INSERT_OPS).await?;
    let set_seq = tx
        .prepare_cached("UPDATE users SET change_seq = $2 WHERE id = $1")
        .await?;
    let notify = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;

    let set_stream_seq = tx
        .prepare_cached("UPDATE streams SET change_seq = $2 WHERE id = $1")
        .await?;

    type Step<'f> =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StorageError>> + Send + 'f>>;
    let by_stream = plan.writes_by_stream();
    let mut columns = Vec::with_capacity(by_stream.len());
    let mut payloads = Vec::with_capacity(by_stream.len());
    for (stream, writes) in &by_stream {
        let (replacing, new): (Vec<&push::RecordWrite>, Vec<&push::RecordWrite>) = writes
            .iter()
            .partition(|w| stored_seqs.contains_key(&w.record.key));
        let (blocks, deltas) = block_deltas(writes, stored_seqs);
        columns.push((
            *stream,
            WriteColumns::from(new),
            WriteColumns::from(replacing),
            blocks,
            deltas,
        ));
        // One notice per stream written (see `events::ChangeNotice`).
        let seq = if *stream == user_id {
            plan.last_seq
        } else {
            plan.stream_seqs
                .iter()
                .find(|(s, _)| s == stream)
                .map_or(0, |(_, seq)| *seq)
        };
        payloads.push(ChangeNotice::payload(
            stream,
            seq,
            origin.map(|client| (user_id, client)),
        ));
    }
    let (op_ids, op_versions): (Vec<&str>, Vec<i64>) = plan
        .applied_ops
        .iter()
        .map(|(o, v)| (o.as_str(), *v))
        .unzip();
    // Every statement goes out at once, pipelined on the transaction's connection.
    let mut steps: Vec<Step<'_>> = Vec::new();
    for (stream, new, replacing, blocks, deltas) in &columns {
        let (insert, upsert, add_blocks) = (&insert, &upsert, &add_blocks);
        steps.push(Box::pin(async move {
            new.write(tx, insert, stream, now_ms).await?;
            Ok(())
        }));
        steps.push(Box::pin(async move {
            replacing.write(tx, upsert, stream, now_ms).await?;
            Ok(())
        }));
        if !blocks.is_empty() {
            steps.push(Box::pin(async move {
                tx.execute(add_blocks, &[stream, blocks, deltas]).await?;
                Ok(())
            }));
        }
    }
    if !op_ids.is_empty() {
        let (insert_ops, op_ids, op_versions) = (&insert_ops, &op_ids, &op_versions);
        steps.push(Box::pin(async move {
            tx.execute(insert_ops, &[&user_id, op_ids, op_versions, &now_ms])
                .await?;
            Ok(())
        }));
    }
    let seq_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&user_id, &plan.last_seq];
    let set_seq = &set_seq;
    steps.push(Box::pin(async move {
        tx.execute(set_seq, &seq_params).await?;
        Ok(())
    }));
    for (stream, seq) in &plan.stream_seqs {
        let set_stream_seq = &set_stream_seq;
        steps.push(Box::pin(async move {
            tx.execute(set_stream_seq, &[stream, seq]).await?;
            Ok(())
        }));
    }
    for payload in &payloads {
        let notify = &notify;
        steps.push(Box::pin(async move {
            tx.query(notify, &[&CHANGES_CHANNEL, payload]).await?;
            Ok(())
        }));
    }
    futures_util::future::try_join_all(steps).await?;
    Ok(())
}

fn key_columns<'a>(keys: &[&'a RecordKey]) -> (Vec<&'a str>, Vec<&'a str>) {
    keys.iter()
        .map(|k| (k.entity.as_str(), k.id.as_str()))
        .unzip()
}

fn change_from_row(r: &tokio_postgres::Row) -> ChangeRow {
    ChangeRow {
        entity: r.get(0),
        entity_id: r.get(1),
        version: r.get(2),
        deleted: r.get(3),
        doc: r.get(4),
        seq: r.get(5),
        updated_at_ms: r.get(6),
        group_id: r.get(7),
        group_end: r.get(8),
        edited_at: r.get(9),
        field_edited_at: r.get(10),
    }
}
