//! Record-level transitions shared by push answers, pulls and conflict resolution: taking the
//! server's state, rebasing a local change on it, or parking a conflict for the app. Each runs in
//! the caller's transaction and keeps the record row, its outbox entries and its conflict row
//! consistent with each other.

use rusqlite::Transaction;
use tandem_protocol::Schema;

use super::conflict::{self, ConflictPolicy, ConflictReason, ConflictRow, Decision};
use super::merge::Doc;
use crate::error::{Error, Result};
use crate::outbox;
use crate::records::{self, RecordRow, RecordState};

/// The server's view of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerState {
    /// 0 when the server has no such record.
    pub version: i64,
    /// `None` when deleted or missing.
    pub doc: Option<String>,
}

/// `row` with its server side moved to `server`, its local side untouched.
pub fn with_server_side(row: RecordRow, server: &ServerState) -> RecordRow {
    RecordRow {
        server_doc: server.doc.clone(),
        server_version: server.version,
        ..row
    }
}

/// Settles by `policy` the local change of `row` that met `server`; `base` is the server document
/// the local change started from. Returns whether the conflict was left to the app.
pub fn settle(
    tx: &Transaction<'_>,
    schema: &Schema,
    policy: ConflictPolicy,
    row: &RecordRow,
    server: &ServerState,
    base: Option<&str>,
    now: i64,
) -> Result<bool> {
    // What the user wants now is the record as it stands, whatever entries led there.
    let local = if row.deleted {
        None
    } else {
        parse_doc(row.doc.as_deref())?
    };
    let decision = conflict::decide(
        policy,
        parse_doc(base)?.as_ref(),
        local.as_ref(),
        parse_doc(server.doc.as_deref())?.as_ref(),
    );
    let parked = matches!(decision, Decision::Park { .. });
    apply_decision(tx, schema, decision, row, server, base, now)?;
    Ok(parked)
}

/// Applies a conflict decision to `row`, whose local change met `server`. `base` is the server
/// document the local change started from.
fn apply_decision(
    tx: &Transaction<'_>,
    schema: &Schema,
    decision: Decision,
    row: &RecordRow,
    server: &ServerState,
    base: Option<&str>,
    now: i64,
) -> Result<()> {
    match decision {
        Decision::AdoptServer => adopt_server(tx, schema, row, server, now),
        Decision::Rebase(doc) => {
            let doc = doc.map(|d| serde_json::Value::Object(d).to_string());
            rebase_local(tx, row, server, doc.as_deref(), now)
        }
        Decision::Park { reason, fields } => park(tx, row, server, base, reason, fields, now),
    }
}

/// Makes the record of `row` what the server says, dropping local changes and any open
/// conflict. A record the server deleted is removed with its local descendants.
pub fn adopt_server(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: &RecordRow,
    server: &ServerState,
    now: i64,
) -> Result<()> {
    let (collection, id) = (row.collection.as_str(), row.id.as_str());
    drop_local_change(tx, collection, id)?;
    match &server.doc {
        Some(doc) => records::save(
            tx,
            &RecordRow {
                doc: Some(doc.clone()),
                server_doc: Some(doc.clone()),
                server_version: server.version,
                deleted: false,
                state: RecordState::Synced,
                updated_at: now,
                ..row.clone()
            },
        ),
        None => {
            remove_descendants(tx, schema, collection, id)?;
            forget_or_tombstone(tx, collection, id, Some(row.clone()), server.version, now)
        }
    }
}

/// Replaces the record's local change with `desired` (`None`: a delete), based on `server`.
pub fn rebase_local(
    tx: &Transaction<'_>,
    row: &RecordRow,
    server: &ServerState,
    desired: Option<&str>,
    now: i64,
) -> Result<()> {
    drop_local_change(tx, &row.collection, &row.id)?;
    let rebased = RecordRow {
        doc: desired.map(str::to_string),
        deleted: desired.is_none(),
        state: RecordState::Pending,
        updated_at: now,
        ..with_server_side(row.clone(), server)
    };
    records::save(tx, &rebased)?;
    match desired {
        Some(doc) => {
            outbox::record_upsert(tx, &row.collection, &row.id, Some(&rebased), doc, None, now)
        }
        None => outbox::record_delete(tx, &rebased_for_delete(&rebased), now).map(drop),
    }
}

/// A delete is recorded from the live record it removes.
fn rebased_for_delete(row: &RecordRow) -> RecordRow {
    RecordRow {
        deleted: false,
        ..row.clone()
    }
}

/// Leaves the collision to the app: the local change moves into a conflict row (nothing of it is
/// lost) and the record shows as conflicted, its visible document still the local one.
fn park(
    tx: &Transaction<'_>,
    row: &RecordRow,
    server: &ServerState,
    base: Option<&str>,
    reason: ConflictReason,
    fields: Vec<String>,
    now: i64,
) -> Result<()> {
    outbox::drop_unsent(tx, &row.collection, &row.id)?;
    conflict::park(
        tx,
        &ConflictRow {
            collection: row.collection.clone(),
            id: row.id.clone(),
            reason,
            fields,
            local_doc: if row.deleted { None } else { row.doc.clone() },
            server_doc: server.doc.clone(),
            server_version: server.version,
            base_doc: base.map(str::to_string),
            created_at: now,
        },
    )?;
    records::save(
        tx,
        &RecordRow {
            state: RecordState::Conflicted,
            updated_at: now,
            ..with_server_side(row.clone(), server)
        },
    )
}

/// Removes, locally only, every record below `collection/id` (the server already deleted them
/// with their parent): their unsent changes could never land.
pub fn remove_descendants(
    tx: &Transaction<'_>,
    schema: &Schema,
    collection: &str,
    id: &str,
) -> Result<()> {
    for (child, field) in schema.children_of(collection) {
        for child_id in records::live_children(tx, child, field, id)? {
            remove_descendants(tx, schema, child, &child_id)?;
            drop_local_change(tx, child, &child_id)?;
            let before = records::load(tx, child, &child_id)?;
            let version = before.as_ref().map_or(0, |b| b.server_version);
            forget_or_tombstone(
                tx,
                child,
                &child_id,
                before,
                version,
                crate::engine::now_ms(),
            )?;
        }
    }
    Ok(())
}

/// Drops the record's unsent changes and its open conflict: what the server says replaces them.
fn drop_local_change(tx: &Transaction<'_>, collection: &str, id: &str) -> Result<()> {
    outbox::drop_unsent(tx, collection, id)?;
    conflict::remove(tx, collection, id)
}

/// A deleted record keeps a row only while dead letters still refer to it.
fn forget_or_tombstone(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    before: Option<RecordRow>,
    version: i64,
    now: i64,
) -> Result<()> {
    if !outbox::has_entries(tx, collection, id)? {
        return records::remove(tx, collection, id);
    }
    let Some(before) = before else { return Ok(()) };
    records::save(
        tx,
        &RecordRow {
            doc: None,
            deleted: true,
            server_doc: None,
            server_version: version,
            state: RecordState::Synced,
            updated_at: now,
            ..before
        },
    )
}

/// Parses a stored document for merging.
fn parse_doc(text: Option<&str>) -> Result<Option<Doc>> {
    text.map(|t| match serde_json::from_str(t) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(Error::Corrupt(
            "a stored document is not a JSON object".into(),
        )),
    })
    .transpose()
}
