//! The pull half of a sync run: each page of changes is applied with its cursor in one
//! transaction, so a crash between pages resumes from the last applied one.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{Connection, Transaction};
use serde_json::Value;
use tandem_protocol::{is_valid_id, Change, Schema, Scope};

use super::conflict::{self, ConflictPolicy};
use super::reconcile::{
    adopt_server, parent_shown, reveal_descendants, settle, with_server_side, ServerState,
};
use crate::error::{Error, Result};
use crate::outbox::{self, EntryState};
use crate::records::{self, RecordRow, RecordState};
use rusqlite::OptionalExtension;

/// Stream keys in `stream_cursors` are the wire names.
pub use tandem_protocol::{space_stream, PUBLIC_STREAM, USER_STREAM};

/// What one page did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PullTally {
    pub applied: u64,
    pub skipped: u64,
    pub conflicts: u64,
    pub parked: Vec<(String, String)>,
    pub changed: BTreeSet<String>,
    /// Pulled records skipped because this device holds their id in another stream.
    pub space_collisions: u64,
}

/// One row of `stream_cursors`: a stream this device pulls, where it is and whether a re-pull
/// of it (and its sweep) is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCursor {
    pub stream: String,
    /// `None`: from the beginning.
    pub cursor: Option<String>,
    /// Set from the moment the server answers `expired` (`cursor_expired` for the user stream
    /// in the single-stream form) until the stream's re-pull and its sweep complete: a re-pull
    /// cut off part way must start again, sweep included, however many runs that takes, or
    /// records deleted on the server while this device was away would stay for ever.
    pub repull_owed: bool,
}

/// The cursor of the last applied page of the user stream; `None` before the first pull.
pub fn cursor(conn: &Connection) -> Result<Option<String>> {
    stream_cursor(conn, USER_STREAM)
}

/// The cursor of `stream`; `None` before its first pull.
pub fn stream_cursor(conn: &Connection, stream: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT cursor FROM stream_cursors WHERE stream = ?1")?
        .query_row([stream], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// Every stream this device pulls, in key order.
pub fn stream_cursors(conn: &Connection) -> Result<Vec<StreamCursor>> {
    let rows = conn
        .prepare_cached("SELECT stream, cursor, repull_owed FROM stream_cursors ORDER BY stream")?
        .query_map([], |r| {
            Ok(StreamCursor {
                stream: r.get(0)?,
                cursor: r.get(1)?,
                repull_owed: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Stores the cursor of `stream`, keeping whether a re-pull of it is owed.
pub fn set_stream_cursor(tx: &Connection, stream: &str, cursor: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO stream_cursors (stream, cursor) VALUES (?1, ?2)
         ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor",
    )?
    .execute([stream, cursor])?;
    Ok(())
}

/// Whether a full re-pull of the user stream (and its sweep) is owed.
pub fn repull_owed(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT repull_owed FROM stream_cursors WHERE stream = ?1")?
        .query_row([USER_STREAM], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// Starts a full re-pull of the user stream: its cursor is forgotten and the re-pull owed, in
/// one transaction.
pub fn begin_repull(tx: &Transaction<'_>) -> Result<()> {
    begin_stream_repull(tx, USER_STREAM)
}

/// Starts a re-pull of `stream` (its cursor expired): the cursor is forgotten and the re-pull
/// owed; the stream's sweep runs once a pull reaches its end.
pub fn begin_stream_repull(tx: &Connection, stream: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO stream_cursors (stream, cursor, repull_owed) VALUES (?1, NULL, 1)
         ON CONFLICT (stream) DO UPDATE SET cursor = NULL, repull_owed = 1",
    )?
    .execute([stream])?;
    Ok(())
}

/// The re-pull of `stream` is done (its sweep ran).
pub fn end_stream_repull(tx: &Connection, stream: &str) -> Result<()> {
    tx.prepare_cached("UPDATE stream_cursors SET repull_owed = 0 WHERE stream = ?1")?
        .execute([stream])?;
    Ok(())
}

/// Applies one page and stores its cursor. `seen` collects the records a full re-pull delivered.
pub fn apply_page(
    tx: &Transaction<'_>,
    schema: &Schema,
    changes: &[Change],
    next_cursor: &str,
    policy: ConflictPolicy,
    now: i64,
    mut seen: Option<&mut HashSet<(String, String)>>,
) -> Result<PullTally> {
    let mut tally = PullTally::default();
    let full = seen.is_some();
    for change in changes {
        if let Some(seen) = seen.as_deref_mut() {
            seen.insert((change.entity.clone(), change.entity_id.clone()));
        }
        apply_change(tx, schema, change, full, policy, now, &mut tally)?;
    }
    set_stream_cursor(tx, USER_STREAM, next_cursor)?;
    Ok(tally)
}

fn apply_change(
    tx: &Transaction<'_>,
    schema: &Schema,
    change: &Change,
    full: bool,
    policy: ConflictPolicy,
    now: i64,
    tally: &mut PullTally,
) -> Result<()> {
    let Some(declared) = schema.collection(&change.entity) else {
        tally.skipped += 1; // a collection this app version does not know yet
        return Ok(());
    };
    // A space record names its space; no other record does.
    let space_ok = match (declared.scope, change.space.as_deref()) {
        (Scope::Space, Some(space)) => is_valid_id(space),
        (Scope::Space, None) => false,
        (_, space) => space.is_none(),
    };
    if !space_ok {
        return Err(Error::Protocol(format!(
            "a pulled change of {} has a space that does not fit its scope",
            change.entity
        )));
    }
    if !is_valid_id(&change.entity_id) || change.version < 1 {
        return Err(Error::Protocol(format!(
            "a pulled change of {} is malformed",
            change.entity
        )));
    }
    let server = ServerState {
        version: change.version,
        doc: match (&change.doc, change.deleted) {
            (Some(doc), false) => Some(compact(doc)),
            (None, false) => {
                return Err(Error::Protocol(
                    "a pulled live record has no document".into(),
                ))
            }
            (_, true) => None,
        },
        edited_at: change.edited_at.as_ref().map(|t| t.encode()),
        // Stored sparse, as local times are: a record created in one edit stores none.
        field_times: change.field_edited_at.as_ref().and_then(|times| {
            match (&change.doc, &change.edited_at) {
                (Some(doc), Some(at)) => crate::edit_time::sparse_text(times, doc, at),
                _ => crate::edit_time::times_text(times),
            }
        }),
    };
    let (collection, id) = (change.entity.as_str(), change.entity_id.as_str());
    let space = change.space.as_deref();
    let (server, held) = match (server.doc, &change.doc) {
        (Some(doc), Some(map)) => {
            // New here (the bulk of a first sync) unless the insert finds a row: one b-tree
            // descent for a new record instead of a failed read and then the insert. No row
            // means no outbox entry and no conflict. Hidden while its parent does not show here
            // (deleted locally, or further on in a full pull); it shows with the parent.
            let shown = parent_shown(tx, schema, collection, map)?;
            let new = RecordRow {
                edited_at: server.edited_at,
                field_times: server.field_times,
                space_id: space.map(str::to_string),
                ..synced_row(collection, id, doc, server.version, !shown, now)
            };
            if records::insert_new(tx, &new)? {
                if shown {
                    reveal_descendants(tx, schema, collection, id)?;
                }
                tally.applied += 1;
                if !tally.changed.contains(collection) {
                    tally.changed.insert(collection.to_string());
                }
                return Ok(());
            }
            let server = ServerState {
                version: server.version,
                doc: new.server_doc,
                edited_at: new.edited_at,
                field_times: new.field_times,
            };
            (server, records::load(tx, collection, id)?)
        }
        (doc, _) => {
            let server = ServerState { doc, ..server };
            let held = records::load(tx, collection, id)?;
            (server, held)
        }
    };
    // A delete of a record never held here changes nothing.
    let Some(row) = held else {
        return Ok(());
    };
    if row.space_id.as_deref() != space {
        // The same id in two streams: only a member choosing it on purpose gets there. The
        // record this device holds stays; the other is skipped (never its content in the log).
        tracing::warn!(
            collection,
            held_space = row.space_id.as_deref().unwrap_or("-"),
            pulled_space = space.unwrap_or("-"),
            "a pulled record's id is held here in another stream; skipped"
        );
        tally.skipped += 1;
        tally.space_collisions += 1;
        return Ok(());
    }
    if already_held(&row, &server, full) {
        tally.skipped += 1;
        return Ok(());
    }
    tally.applied += 1;
    tally.changed.insert(collection.to_string());
    if row.state == RecordState::Conflicted {
        if let Some(open) = conflict::get(tx, collection, id)? {
            return follow_server_in_conflict(tx, schema, row, &open, &server, now);
        }
    }
    let unsent = outbox::unsent_for_record(tx, collection, id)?;
    if unsent.is_empty() {
        return adopt_server(tx, schema, &row, &server, now);
    }
    if unsent.iter().any(|e| e.state == EntryState::Inflight) {
        // The answer to that push settles it; meanwhile only the server side moves.
        return records::save(tx, &with_server_side(row, &server));
    }
    // Local changes wait: rebase them on the new server state instead of overwriting them.
    let base = unsent[0]
        .base_doc
        .clone()
        .or_else(|| row.server_doc.clone());
    if settle(tx, schema, policy, &row, &server, base.as_deref(), now)? {
        tracing::info!(collection, id, "pull conflict left to the app");
        tally.conflicts += 1;
        tally.parked.push((collection.to_string(), id.to_string()));
    }
    Ok(())
}

/// Whether `row` already holds the server state a pulled change brings: an echo of our own push,
/// or older than what we hold. A full re-pull delivers the server's current state, which is the
/// truth whatever its version: a record deleted there, its tombstone purged and then created
/// again starts over at version 1, and may meet the version its old incarnation had here.
fn already_held(row: &RecordRow, server: &ServerState, full: bool) -> bool {
    if full {
        row.server_version == server.version && row.server_doc == server.doc
    } else {
        row.server_version >= server.version
    }
}

/// A pulled document as stored: compact JSON, serialised straight from the parsed map.
fn compact(doc: &serde_json::Map<String, Value>) -> String {
    serde_json::to_string(doc).unwrap_or_else(|_| "{}".to_string())
}

fn synced_row(
    collection: &str,
    id: &str,
    doc: String,
    version: i64,
    hidden: bool,
    now: i64,
) -> RecordRow {
    RecordRow {
        collection: collection.to_string(),
        id: id.to_string(),
        server_doc: Some(doc.clone()),
        doc: Some(doc),
        server_version: version,
        deleted: hidden,
        state: RecordState::Synced,
        created_at: now,
        updated_at: now,
        edited_at: None,
        field_times: None,
        space_id: None,
    }
}

/// The server side of an open conflict moved on: the conflict follows it (its reason and fields
/// too), and ends when the server now has what the user has.
fn follow_server_in_conflict(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: RecordRow,
    open: &conflict::ConflictRow,
    server: &ServerState,
    now: i64,
) -> Result<()> {
    match open.with_server(server)? {
        Some(moved) => {
            conflict::park(tx, &moved)?;
            records::save(tx, &with_server_side(row, server))
        }
        None => adopt_server(tx, schema, &row, server, now),
    }
}

/// The records a sweep may remove: synced (shown, or hidden under a parent deleted here), with
/// nothing pending.
const SWEEPABLE: &str = "FROM records r WHERE state = 'synced' AND doc IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.collection = r.collection AND o.entity_id = r.id)";

/// Whether any record is [`SWEEPABLE`].
pub fn any_synced(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(&format!("SELECT EXISTS (SELECT 1 {SWEEPABLE})"))?
        .query_row([], |r| r.get(0))?)
}

/// Records that are synced and have nothing pending: after a full pull, those the server did
/// not deliver no longer exist there.
pub fn synced_records(conn: &Connection) -> Result<Vec<(String, String)>> {
    let rows = conn
        .prepare(&format!("SELECT collection, id {SWEEPABLE}"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The stream a record of `collection` in space `space` belongs to (`user`, `public` or
/// `space:<id>`).
pub fn stream_of(schema: &Schema, collection: &str, space: Option<&str>) -> String {
    match (space, schema.collection(collection).map(|c| c.scope)) {
        (Some(space), _) => space_stream(space),
        (None, Some(Scope::Public)) => PUBLIC_STREAM.to_string(),
        (None, _) => USER_STREAM.to_string(),
    }
}

/// The [`SWEEPABLE`] records of one stream: what its re-pull must deliver again, or they are
/// gone on the server. Runs only when a stream's cursor expired (or on a first pull that finds
/// synced records), so reading every sweepable row and keeping the stream's is fine.
pub fn stream_records(
    conn: &Connection,
    schema: &Schema,
    stream: &str,
) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT collection, id, space_id {SWEEPABLE} ORDER BY collection, id"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (collection, id, space) = row?;
        if stream_of(schema, &collection, space.as_deref()) == stream {
            out.push((collection, id));
        }
    }
    Ok(out)
}

/// The sweep of one stream after its re-pull reached the end: its synced records the re-pull
/// did not deliver are removed (with their local descendants), and the re-pull is settled.
pub fn sweep_stream(
    tx: &Transaction<'_>,
    schema: &Schema,
    stream: &str,
    candidates: &[(String, String)],
    seen: &HashSet<(String, String)>,
    now: i64,
) -> Result<BTreeSet<String>> {
    let changed = sweep_missing(tx, schema, candidates, seen, now)?;
    if stream != USER_STREAM {
        // `sweep_missing` settles the user stream's flag; another stream's is its own.
        end_stream_repull(tx, stream)?;
    }
    Ok(changed)
}

/// Removes the synced records a full re-pull did not deliver (and their local descendants), and
/// with that settles the re-pull owed.
pub fn sweep_missing(
    tx: &Transaction<'_>,
    schema: &Schema,
    candidates: &[(String, String)],
    seen: &HashSet<(String, String)>,
    now: i64,
) -> Result<BTreeSet<String>> {
    end_stream_repull(tx, USER_STREAM)?;
    let mut changed = BTreeSet::new();
    for key in candidates.iter().filter(|k| !seen.contains(*k)) {
        let Some(row) = records::load(tx, &key.0, &key.1)? else {
            continue;
        };
        if row.state != RecordState::Synced {
            continue; // changed locally since the re-pull started
        }
        adopt_server(
            tx,
            schema,
            &row,
            &ServerState::untimed(row.server_version, None),
            now,
        )?;
        changed.insert(key.0.clone());
    }
    Ok(changed)
}

// ---- Streams (docs/design/spaces.md §2, §9): one cursor per stream, per-stream expiry. ----

/// What the server says about one stream in a pull page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    /// Read up to here: store the cursor.
    Ok(String),
    /// The user may no longer read it (removed, left, space deleted): drop it.
    Gone,
    /// Its cursor fell behind the purge: pull it again from the start, then sweep it.
    Expired,
}

/// The account section of a pull page: the user's spaces and pending invitations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSection {
    pub account_seq: i64,
    pub spaces: Vec<super::spaces::Space>,
    pub invitations: Vec<super::spaces::Invitation>,
}

/// One page of a multi-stream pull, as the engine applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPage {
    pub changes: Vec<Change>,
    pub streams: Vec<(String, StreamState)>,
    pub account: Option<AccountSection>,
    pub has_more: bool,
    pub remaining: u64,
}

/// A stream being pulled again from the start: what it held before (synced records) and what
/// the re-pull delivered so far; once it reaches the end the difference is swept.
#[derive(Debug, Default, Clone)]
pub struct Repull {
    pub candidates: Vec<(String, String)>,
    pub seen: HashSet<(String, String)>,
}

/// What one multi-stream page did beyond [`PullTally`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StreamTally {
    pub tally: PullTally,
    /// Streams whose cursor expired in this page (their re-pull starts now).
    pub expired: Vec<String>,
    /// Spaces dropped (gone, or no longer in the account section).
    pub dropped: Vec<String>,
}

/// Applies one multi-stream page in the caller's transaction: the changes, each stream's new
/// position (`ok` stores the cursor, `expired` starts that stream's re-pull, `gone` drops the
/// space), then the account section (a space no longer listed is dropped as for `gone`).
/// `repulls` holds the streams being pulled again, and gains those expiring now.
pub fn apply_stream_page(
    tx: &Transaction<'_>,
    schema: &Schema,
    page: &StreamPage,
    policy: ConflictPolicy,
    now: i64,
    repulls: &mut std::collections::HashMap<String, Repull>,
) -> Result<StreamTally> {
    let mut out = StreamTally::default();
    for change in &page.changes {
        // Which stream a change is of matters only while one is being pulled again.
        let repull = if repulls.is_empty() {
            None
        } else {
            repulls.get_mut(&stream_of(schema, &change.entity, change.space.as_deref()))
        };
        let full = match repull {
            Some(repull) => {
                repull
                    .seen
                    .insert((change.entity.clone(), change.entity_id.clone()));
                true
            }
            None => false,
        };
        apply_change(tx, schema, change, full, policy, now, &mut out.tally)?;
    }
    for (stream, state) in &page.streams {
        match state {
            StreamState::Ok(cursor) => set_stream_cursor(tx, stream, cursor)?,
            StreamState::Expired => {
                tracing::info!(stream = %stream, "stream cursor expired; pulling it again");
                begin_stream_repull(tx, stream)?;
                let candidates = stream_records(tx, schema, stream)?;
                repulls.insert(
                    stream.clone(),
                    Repull {
                        candidates,
                        seen: HashSet::new(),
                    },
                );
                out.expired.push(stream.clone());
            }
            StreamState::Gone => match tandem_protocol::space_of_stream(stream) {
                Some(space) => {
                    drop_one(tx, schema, space, now, &mut out)?;
                    repulls.remove(stream);
                }
                None => {
                    tracing::warn!(stream = %stream, "the server answered gone for a stream that cannot go; ignored")
                }
            },
        }
    }
    if let Some(account) = &page.account {
        let change = super::spaces::replace_account(
            tx,
            account.account_seq,
            &account.spaces,
            &account.invitations,
        )?;
        if change.spaces_changed {
            out.tally.changed.insert(crate::observe::SPACES.to_string());
        }
        if change.invitations_changed {
            out.tally
                .changed
                .insert(crate::observe::INVITATIONS.to_string());
        }
        for space in change.removed {
            if !out.dropped.contains(&space) {
                repulls.remove(&space_stream(&space));
                drop_one(tx, schema, &space, now, &mut out)?;
            }
        }
    }
    Ok(out)
}

fn drop_one(
    tx: &Transaction<'_>,
    schema: &Schema,
    space: &str,
    now: i64,
    out: &mut StreamTally,
) -> Result<()> {
    let dropped = super::spaces::drop_space(tx, schema, space, now)?;
    out.tally.changed.extend(dropped.changed);
    out.tally.changed.insert(crate::observe::SPACES.to_string());
    out.dropped.push(space.to_string());
    Ok(())
}
