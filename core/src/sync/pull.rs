//! The pull half of a sync run: each page of changes is applied with its cursor in one
//! transaction, so a crash between pages resumes from the last applied one.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{Connection, Transaction};
use serde_json::Value;
use tandem_protocol::{is_valid_id, Change, Schema};

use super::conflict::{self, ConflictPolicy};
use super::reconcile::{
    adopt_server, parent_shown, reveal_descendants, settle, with_server_side, ServerState,
};
use crate::error::{Error, Result};
use crate::outbox::{self, EntryState};
use crate::records::{self, RecordRow, RecordState};
use crate::store::{meta_delete, meta_get, meta_set};

const CURSOR_KEY: &str = "sync_cursor";

/// What one page did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PullTally {
    pub applied: u64,
    pub skipped: u64,
    pub conflicts: u64,
    pub parked: Vec<(String, String)>,
    pub changed: BTreeSet<String>,
}

/// The cursor of the last applied page; `None` before the first pull.
pub fn cursor(conn: &Connection) -> Result<Option<String>> {
    meta_get(conn, CURSOR_KEY)
}

/// Set from the moment the server answers `cursor_expired` until a full re-pull and its sweep
/// complete: a re-pull cut off part way must start again, sweep included, however many runs that
/// takes, or records deleted on the server while this device was away would stay for ever.
const REPULL_OWED_KEY: &str = "full_repull_owed";

/// Whether a full re-pull (and its sweep) is owed.
pub fn repull_owed(conn: &Connection) -> Result<bool> {
    Ok(meta_get(conn, REPULL_OWED_KEY)?.is_some())
}

/// Starts a full re-pull: the cursor is forgotten and the re-pull owed, in one transaction.
pub fn begin_repull(tx: &Transaction<'_>) -> Result<()> {
    meta_delete(tx, CURSOR_KEY)?;
    meta_set(tx, REPULL_OWED_KEY, "1")
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
    meta_set(tx, CURSOR_KEY, next_cursor)?;
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
    if schema.collection(&change.entity).is_none() {
        tally.skipped += 1; // a collection this app version does not know yet
        return Ok(());
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
        field_times: change
            .field_edited_at
            .as_ref()
            .and_then(crate::edit_time::times_text),
    };
    let (collection, id) = (change.entity.as_str(), change.entity_id.as_str());
    let Some(row) = records::load(tx, collection, id)? else {
        // New here (the bulk of a first sync): no row means no outbox entry and no conflict.
        if let (Some(doc), Some(map)) = (server.doc, &change.doc) {
            // Hidden while its parent does not show here (deleted locally, or further on in a
            // full pull); it shows with the parent.
            let shown = parent_shown(tx, schema, collection, map)?;
            records::save(
                tx,
                &RecordRow {
                    edited_at: server.edited_at,
                    field_times: server.field_times,
                    ..synced_row(collection, id, doc, server.version, !shown, now)
                },
            )?;
            if shown {
                reveal_descendants(tx, schema, collection, id)?;
            }
            tally.applied += 1;
            if !tally.changed.contains(collection) {
                tally.changed.insert(collection.to_string());
            }
        }
        return Ok(());
    };
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

/// Removes the synced records a full re-pull did not deliver (and their local descendants), and
/// with that settles the re-pull owed.
pub fn sweep_missing(
    tx: &Transaction<'_>,
    schema: &Schema,
    candidates: &[(String, String)],
    seen: &HashSet<(String, String)>,
    now: i64,
) -> Result<BTreeSet<String>> {
    meta_delete(tx, REPULL_OWED_KEY)?;
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
