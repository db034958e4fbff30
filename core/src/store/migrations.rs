//! The store's own tables, versioned with `PRAGMA user_version`. Each migration runs in the open
//! transaction together with the version bump, so a crash leaves either the old or the new layout.

use rusqlite::Transaction;

use crate::error::{Error, Result};

/// Migration `i` brings the store from version `i` to `i + 1`. Append only; never edit a shipped one.
///
/// Writes are the hot path, so the layout keeps each insert cheap: `records` is a rowid table
/// (appends, where a WITHOUT ROWID table would split pages to place large rows by key); `outbox`
/// has no AUTOINCREMENT (which rewrites `sqlite_sequence` on every insert) and one index, to find
/// a record's newest entry. The enumerations are checked in Rust, not by CHECK constraints, which
/// measurably slowed every insert.
const MIGRATIONS: &[&str] = &[
    // v1: records, the outbox and a key/value table for engine state (app schema, later cursors).
    "CREATE TABLE records (
        collection     TEXT    NOT NULL,
        id             TEXT    NOT NULL,
        doc            TEXT,                      -- visible document; NULL when deleted
        server_doc     TEXT,                      -- last document the server confirmed
        server_version INTEGER NOT NULL DEFAULT 0, -- 0 = the server has never seen it
        deleted        INTEGER NOT NULL DEFAULT 0,
        state          TEXT    NOT NULL,          -- synced | pending | conflicted | rejected
        created_at     INTEGER NOT NULL,          -- unix milliseconds
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (collection, id)
     );
     CREATE TABLE outbox (
        seq          INTEGER PRIMARY KEY,             -- commit order; entries leave in it
        op_id        TEXT    NOT NULL,                -- UUID v7, unique by construction
        collection   TEXT    NOT NULL,
        entity_id    TEXT    NOT NULL,
        op           TEXT    NOT NULL,                -- upsert | delete
        base_version INTEGER,                          -- NULL: the server has never seen the record
        base_doc     TEXT,
        doc          TEXT,                             -- desired document; NULL for deletes
        attempts     INTEGER NOT NULL DEFAULT 0,
        state        TEXT    NOT NULL DEFAULT 'pending', -- pending | inflight | rejected
        last_error   TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
     );
     CREATE INDEX outbox_by_record ON outbox(collection, entity_id, seq);
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    // v2: conflicts waiting for the app. The outbox entry that collided is parked here with both
    // sides, so nothing of the user's change is lost while the app decides.
    "CREATE TABLE conflicts (
        collection     TEXT    NOT NULL,
        id             TEXT    NOT NULL,
        reason         TEXT    NOT NULL,  -- both_changed | local_edit_server_delete | local_delete_server_edit | manual
        fields         TEXT,              -- JSON array of the fields changed on both sides
        local_doc      TEXT,              -- NULL: deleted locally
        server_doc     TEXT,              -- NULL: deleted (or missing) on the server
        server_version INTEGER NOT NULL,  -- 0: the server has no such record
        base_doc       TEXT,
        created_at     INTEGER NOT NULL,
        PRIMARY KEY (collection, id)
     );",
    // v3: hidden records (live on the server, kept out of reads while their parent does not show
    // here). Almost always empty, so asking whether there are any is one probe of this index, and
    // a pull skips looking for hidden children when there are none.
    "CREATE INDEX records_hidden ON records(collection, id) WHERE deleted = 1 AND doc IS NOT NULL;",
    // v4: a unique_violation conflict names the record holding the key on the server.
    "ALTER TABLE conflicts ADD COLUMN existing_id TEXT;",
    // v5: edit times (hybrid logical clock texts, see `tandem_protocol::hlc`): of the user's last
    // change of each record and of each of its fields, and what each outbox entry sends.
    "ALTER TABLE records ADD COLUMN edited_at TEXT;   -- HLC of the last edit (of the delete, when deleted)
     ALTER TABLE records ADD COLUMN field_times TEXT; -- JSON object: field -> HLC of its last edit
     ALTER TABLE outbox ADD COLUMN edited_at TEXT;
     ALTER TABLE outbox ADD COLUMN field_times TEXT;",
    // v6: atomic groups. Every outbox entry of one `write` batch carries the batch's group (NULL
    // for a write of one op); `group_holds` names the group a record's open conflict holds back
    // (the conflict row is replaced as it moves, so the link lives beside it).
    "ALTER TABLE outbox ADD COLUMN group_id TEXT;
     CREATE INDEX outbox_by_group ON outbox(group_id, seq) WHERE group_id IS NOT NULL;
     CREATE TABLE group_holds (
        collection TEXT NOT NULL,
        entity_id  TEXT NOT NULL,
        group_id   TEXT NOT NULL,
        seq        INTEGER NOT NULL, -- the parked entry's place in the outbox, to go back to
        PRIMARY KEY (collection, entity_id)
     ) WITHOUT ROWID;
     CREATE INDEX group_holds_by_group ON group_holds(group_id);",
    // v7: a conflict keeps the server side's edit times (`serverEditedAt`, `serverFieldEditedAt`
    // of the push answer or the pulled change), so a record settled on the server's side takes
    // them instead of having no edit time until its next change.
    "ALTER TABLE conflicts ADD COLUMN server_edited_at TEXT;    -- HLC text; NULL: unknown
     ALTER TABLE conflicts ADD COLUMN server_field_times TEXT; -- JSON object: field -> HLC",
    // v8: spaces (docs/design/spaces.md §9). A record's space (NULL: user or public scope) and
    // the space an outbox entry is sent to; the user's spaces and pending invitations as the last
    // pull or space call saw them; one cursor per stream, the user stream's taken over from
    // `meta` with its owed re-pull, so an upgraded device continues where it was.
    "ALTER TABLE records ADD COLUMN space_id TEXT;
     ALTER TABLE outbox  ADD COLUMN space_id TEXT;
     CREATE INDEX records_by_space ON records(space_id, collection) WHERE space_id IS NOT NULL;
     CREATE TABLE spaces (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
        member_count INTEGER NOT NULL, created_at INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE invitations (
        id TEXT PRIMARY KEY, space_id TEXT NOT NULL, space_name TEXT NOT NULL, role TEXT NOT NULL,
        invited_by TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE stream_cursors (
        stream      TEXT PRIMARY KEY,          -- 'user' | 'public' | 'space:<id>'
        cursor      TEXT,                      -- NULL: from the beginning
        repull_owed INTEGER NOT NULL DEFAULT 0
     ) WITHOUT ROWID;
     INSERT INTO stream_cursors (stream, cursor, repull_owed)
        SELECT 'user', (SELECT value FROM meta WHERE key = 'sync_cursor'),
               EXISTS (SELECT 1 FROM meta WHERE key = 'full_repull_owed');
     DELETE FROM meta WHERE key IN ('sync_cursor', 'full_repull_owed');",
    // v9: attachments (docs/design/attachments.md §5). One row per blob this account knows: its
    // file is in the account's attachments directory (`on_disk`), the server holds it for us
    // (`uploaded`: an upload completed, the open answered `complete`, or it came in a pulled
    // record), when it was last used (the cache's LRU) and a permanent upload failure.
    "CREATE TABLE attachments (
        hash           TEXT PRIMARY KEY,             -- 64 lowercase hex, SHA-256 of the bytes
        size           INTEGER NOT NULL,
        content_type   TEXT    NOT NULL,
        on_disk        INTEGER NOT NULL DEFAULT 0,
        uploaded       INTEGER NOT NULL DEFAULT 0,
        last_used_ms   INTEGER NOT NULL,
        failure_code   TEXT,                         -- attachment_too_large | quota_exceeded | hash_mismatch | file_missing
        failure_detail TEXT
     ) WITHOUT ROWID;",
    // v10: a record's `server_doc` may be '' for "the same as `doc`" (see `records`), so a synced
    // record stores its document once. No table changes; the version keeps an older engine,
    // which would read '' as a document, from opening the store.
    "-- the empty server_doc encoding",
];

/// The newest store version this engine writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Fails, before anything is written, when the file comes from a newer engine.
pub fn refuse_newer(version: i64) -> Result<()> {
    if version > LATEST {
        return Err(Error::StoreTooNew {
            found: version,
            supported: LATEST,
        });
    }
    Ok(())
}

/// Brings the store to `version` (an older layout, for migration tests) inside `tx`.
#[cfg(test)]
pub fn migrate_to(tx: &Transaction<'_>, version: usize) -> Result<()> {
    for (from, sql) in MIGRATIONS.iter().enumerate().take(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
    }
    Ok(())
}

/// Brings the store to [`LATEST`] inside `tx`.
pub fn migrate(tx: &Transaction<'_>) -> Result<()> {
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    refuse_newer(current)?;
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
    }
    Ok(())
}
