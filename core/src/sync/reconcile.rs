//! Record-level transitions shared by push answers, pulls and conflict resolution: taking the
//! server's state, rebasing a local change on it, or parking a conflict for the app. Each runs in
//! the caller's transaction and keeps the record row, its outbox entries and its conflict row
//! consistent with each other.

use rusqlite::Transaction;
use tandem_protocol::Schema;

use super::conflict::{self, ConflictPolicy, ConflictReason, ConflictRow, Decision};
use super::lww;
use super::merge::{parse_doc, parse_object, Doc};
use crate::error::Result;
use crate::outbox::{self, AfterDelete};
use crate::records::{self, RecordRow, RecordState};

/// The server's view of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerState {
    /// 0 when the server has no such record.
    pub version: i64,
    /// `None` when deleted or missing.
    pub doc: Option<String>,
    /// The edit time (HLC text) of the server's last change of it; `None` when unknown.
    pub edited_at: Option<String>,
    /// The edit time of each field of `doc` (a JSON object of HLC texts); `None` when unknown.
    pub field_times: Option<String>,
}

impl ServerState {
    /// The server side an open conflict holds, with its edit times (`None` for conflicts parked
    /// before the store kept them, or when the server sent none).
    pub fn of(open: &ConflictRow) -> Self {
        Self {
            version: open.server_version,
            doc: open.server_doc.clone(),
            edited_at: open.server_edited_at.clone(),
            field_times: open.server_field_times.clone(),
        }
    }

    /// A server side whose edit times are not known.
    pub fn untimed(version: i64, doc: Option<String>) -> Self {
        Self {
            version,
            doc,
            edited_at: None,
            field_times: None,
        }
    }
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
    if policy == ConflictPolicy::LastWriteWins {
        let server_doc = parse_doc(server.doc.as_deref())?;
        return settle_by_edit_time(
            tx,
            schema,
            row,
            server,
            local.as_ref(),
            server_doc.as_ref(),
            now,
        )
        .map(|()| false);
    }
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

/// Settles by [`lww`]: per field, the later edit wins; the record ends as the server has it, or
/// rebased on it with the winning local fields and their own edit times.
fn settle_by_edit_time(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: &RecordRow,
    server: &ServerState,
    local: Option<&Doc>,
    server_doc: Option<&Doc>,
    now: i64,
) -> Result<()> {
    let mine = lww::Side::of(local, row.edited_at.as_deref(), row.field_times.as_deref());
    let theirs = lww::Side::of(
        server_doc,
        server.edited_at.as_deref(),
        server.field_times.as_deref(),
    );
    match lww::resolve(&mine, &theirs) {
        lww::Outcome::Server => adopt_server(tx, schema, row, server, now),
        lww::Outcome::Rebase {
            doc,
            edited_at,
            field_times,
        } => {
            let doc = doc.map(|d| serde_json::Value::Object(d).to_string());
            rebase_local(tx, schema, row, server, doc.as_deref(), now)?;
            set_edit_times(tx, row, edited_at, &field_times)
        }
    }
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
            rebase_local(tx, schema, row, server, doc.as_deref(), now)
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
    // The record takes the server's edit times with its state.
    let row = &RecordRow {
        edited_at: server.edited_at.clone(),
        field_times: server.field_times.clone(),
        ..row.clone()
    };
    match &server.doc {
        Some(doc) => show_server_doc(tx, schema, row, doc, server.version, now),
        None => {
            let removed = crate::refs::going_with(tx, schema, collection, id)?;
            remove_descendants(tx, schema, collection, id)?;
            forget_or_tombstone(tx, collection, id, Some(row.clone()), server.version, now)?;
            if removed.is_empty() {
                return Ok(());
            }
            // Local referrers the server's own rules could not reach (changes not sent yet).
            crate::refs::Deletion::new(tx, schema, now, crate::refs::Mode::Pulled)
                .after_removal(&removed)
        }
    }
}

/// Saves the server's live document `doc` as the record's synced state. The record shows only
/// while its parent shows here: under a parent deleted locally (or not pulled yet) it waits
/// hidden, and shows again with the parent. A record that shows brings back its hidden
/// descendants.
pub fn show_server_doc(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: &RecordRow,
    doc: &str,
    version: i64,
    now: i64,
) -> Result<()> {
    let shown = parent_shown(tx, schema, &row.collection, &parse_object(doc)?)?;
    records::save(
        tx,
        &RecordRow {
            doc: Some(doc.to_string()),
            server_doc: Some(doc.to_string()),
            server_version: version,
            deleted: !shown,
            state: RecordState::Synced,
            updated_at: now,
            ..row.clone()
        },
    )?;
    if shown {
        reveal_descendants(tx, schema, &row.collection, &row.id)?;
    } else if !row.deleted {
        // Moved by the server under a parent deleted here: what showed below it goes with it.
        cascade_local_delete(tx, schema, &row.collection, &row.id, now)?;
    }
    Ok(())
}

/// Whether the parent `doc` names (if its collection has one) is a live record here.
pub fn parent_shown(
    tx: &Transaction<'_>,
    schema: &Schema,
    collection: &str,
    doc: &Doc,
) -> Result<bool> {
    let Some(declared) = schema.collection(collection) else {
        return Ok(true);
    };
    let (Some(parent), Some(parent_id)) = (&declared.parent, declared.parent_id(doc)) else {
        return Ok(true);
    };
    Ok(records::load_live(tx, &parent.collection, parent_id)?.is_some())
}

/// Shows again every hidden record below `collection/id`, which now shows.
pub fn reveal_descendants(
    tx: &Transaction<'_>,
    schema: &Schema,
    collection: &str,
    id: &str,
) -> Result<()> {
    if schema.children_of(collection).next().is_none() || !records::any_hidden(tx)? {
        return Ok(()); // the common case, and a first sync's every record: nothing to look for
    }
    reveal_hidden_below(tx, schema, collection, id)
}

/// [`reveal_descendants`] once it is known that hidden records exist: asked once, not per level.
fn reveal_hidden_below(
    tx: &Transaction<'_>,
    schema: &Schema,
    collection: &str,
    id: &str,
) -> Result<()> {
    for (child, field) in schema.children_of(collection) {
        for row in records::hidden_children(tx, child, field, id)? {
            let state = if outbox::unsent_for_record(tx, child, &row.id)?.is_empty() {
                RecordState::Synced
            } else {
                RecordState::Pending
            };
            records::save(
                tx,
                &RecordRow {
                    deleted: false,
                    state,
                    ..row.clone()
                },
            )?;
            reveal_hidden_below(tx, schema, child, &row.id)?;
        }
    }
    Ok(())
}

/// A local write of a record with an open conflict. A new document (`desired`) becomes "mine"
/// in the conflict and waits, unsent, for the resolution; the conflict's reason and fields follow
/// it, and it ends when the new document equals the server's. A delete (`None`) is the user's
/// resolution: the record goes, based on the server's side of the conflict. Returns the row.
pub fn write_in_conflict(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: &RecordRow,
    open: &ConflictRow,
    desired: Option<&str>,
    now: i64,
) -> Result<RecordRow> {
    let server = ServerState::of(open);
    let still_open = match desired {
        Some(doc) => open.with_local(Some(doc))?.map(|moved| (doc, moved)),
        None => None,
    };
    let Some((doc, moved)) = still_open else {
        settle_to(tx, schema, row, &server, desired, now)?;
        return Ok(records::load(tx, &row.collection, &row.id)?.unwrap_or_else(|| row.clone()));
    };
    conflict::park(tx, &moved)?;
    let conflicted = RecordRow {
        doc: Some(doc.to_string()),
        deleted: false,
        state: RecordState::Conflicted,
        updated_at: now,
        ..row.clone()
    };
    records::save(tx, &conflicted)?;
    Ok(conflicted)
}

/// Settles the record of `row` on `desired` (`None`: deleted) against `server`: when that is the
/// server's state, the record is synced at it; otherwise `desired` is sent, based on it.
pub fn settle_to(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: &RecordRow,
    server: &ServerState,
    desired: Option<&str>,
    now: i64,
) -> Result<()> {
    let desired_doc = parse_doc(desired)?;
    let server_doc = parse_doc(server.doc.as_deref())?;
    if desired_doc == server_doc {
        return adopt_server(tx, schema, row, server, now);
    }
    rebase_local(tx, schema, row, server, desired, now)?;
    let (Some(desired_doc), Some(server_doc)) = (desired_doc, server_doc) else {
        return Ok(());
    };
    if server.field_times.is_none() {
        return Ok(());
    }
    // The fields the settled document takes from the server's side keep the server's times.
    let local_doc = if row.deleted {
        None
    } else {
        parse_doc(row.doc.as_deref())?
    };
    let (at, fields) = settled_times(row, server, &desired_doc, &server_doc, local_doc.as_ref());
    set_edit_times(tx, row, at, &fields)
}

/// Gives `row` the edit times of its settled document, and its pending change the same ones.
fn set_edit_times(
    tx: &Transaction<'_>,
    row: &RecordRow,
    at: Option<tandem_protocol::Hlc>,
    fields: &tandem_protocol::FieldTimes,
) -> Result<()> {
    let at = at.map(|t| t.encode());
    let fields = crate::edit_time::times_text(fields);
    records::set_times(
        tx,
        &row.collection,
        &row.id,
        at.as_deref(),
        fields.as_deref(),
    )?;
    if let Some(at) = &at {
        outbox::stamp_times(tx, &row.collection, &row.id, at, fields.as_deref())?;
    }
    Ok(())
}

/// The edit times of `desired`, a document settled between the local side of `row` and
/// `server`: a field set (or removed) as the server has it, where the local side had it
/// otherwise, takes the server's time for it; every other field keeps the local one. The
/// record's time is the latest of the local edit and the server times taken.
fn settled_times(
    row: &RecordRow,
    server: &ServerState,
    desired: &Doc,
    server_doc: &Doc,
    local: Option<&Doc>,
) -> (Option<tandem_protocol::Hlc>, tandem_protocol::FieldTimes) {
    // Both sides' times are stored sparse: read as the merge reads them.
    let mine = lww::Side::of(local, row.edited_at.as_deref(), row.field_times.as_deref());
    let theirs = lww::Side::of(
        Some(server_doc),
        server.edited_at.as_deref(),
        server.field_times.as_deref(),
    )
    .fields;
    let (mut at, mut times) = (mine.edited_at, mine.fields);
    let empty = Doc::new();
    let local = local.unwrap_or(&empty);
    let fields: std::collections::BTreeSet<&String> = desired
        .keys()
        .chain(server_doc.keys())
        .chain(local.keys())
        .collect();
    for field in fields {
        // Set or removed as the server has it, where the local side had it otherwise.
        let value = desired.get(field);
        let from_server = server_doc.get(field) == value && local.get(field) != value;
        if let (true, Some(time)) = (from_server, theirs.get(field)) {
            times.insert(field.clone(), time.clone());
            if at.as_ref().is_none_or(|a| a < time) {
                at = Some(time.clone());
            }
        }
    }
    (at, times)
}

/// Replaces the record's local change with `desired` (`None`: a delete), based on `server`. A
/// live `desired` drops any delete of the record still unsent (it was deleted and created again
/// here): the server's cascade will not take what that delete hid below it, which shows again.
pub fn rebase_local(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: &RecordRow,
    server: &ServerState,
    desired: Option<&str>,
    now: i64,
) -> Result<()> {
    // A member of a group stays in it: its new change goes again with the rest of the group.
    let group = outbox::group_of_record(tx, &row.collection, &row.id)?;
    drop_local_change(tx, &row.collection, &row.id)?;
    let rebased = RecordRow {
        doc: desired.map(str::to_string),
        deleted: desired.is_none(),
        state: RecordState::Pending,
        updated_at: now,
        ..with_server_side(row.clone(), server)
    };
    records::save(tx, &rebased)?;
    if let Some(doc) = desired {
        if parent_shown(tx, schema, &row.collection, &parse_object(doc)?)? {
            reveal_descendants(tx, schema, &row.collection, &row.id)?;
        }
    }
    match desired {
        Some(doc) => {
            outbox::record_upsert(tx, &row.collection, &row.id, Some(&rebased), doc, None, now)?
        }
        None => outbox::record_delete(tx, &rebased_for_delete(&rebased), now).map(drop)?,
    }
    // The change sent again carries the user's edit times (last-write-wins replaces them with
    // each field's winning time).
    if let Some(at) = &rebased.edited_at {
        outbox::stamp_times(
            tx,
            &row.collection,
            &row.id,
            at,
            rebased.field_times.as_deref().filter(|_| desired.is_some()),
        )?;
    }
    match group {
        Some(place) => outbox::join_group(tx, &row.collection, &row.id, &place),
        None => Ok(()),
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
    // A group member's conflict holds its group back until it is settled.
    if let Some(place) = outbox::group_of_record(tx, &row.collection, &row.id)? {
        outbox::hold_group(tx, &row.collection, &row.id, &place)?;
    }
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
            existing_id: None,
            server_edited_at: server.edited_at.clone(),
            server_field_times: server.field_times.clone(),
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

/// Parks a `unique_violation` answer: the record's local change waits in a conflict naming the
/// record that holds the key on the server (`existing_id`) and the constraint fields the local
/// document holds a key of, whatever the policy (only the app can choose which record keeps it).
pub fn park_unique(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: &RecordRow,
    server: &ServerState,
    base: Option<&str>,
    existing_id: &str,
    now: i64,
) -> Result<()> {
    let mut fields: Vec<String> = Vec::new();
    if let (Some(declared), Some(doc)) = (schema.collection(&row.collection), row.doc.as_deref()) {
        let doc = parse_object(doc)?;
        for constraint in &declared.unique {
            if tandem_protocol::Collection::unique_key(constraint, &doc).is_some() {
                for f in constraint {
                    if !fields.contains(f) {
                        fields.push(f.clone());
                    }
                }
            }
        }
    }
    park(
        tx,
        row,
        server,
        base,
        ConflictReason::UniqueViolation,
        fields,
        now,
    )?;
    let mut open = conflict::get(tx, &row.collection, &row.id)?
        .ok_or_else(|| crate::error::Error::Corrupt("a parked conflict vanished".into()))?;
    open.existing_id = Some(existing_id.to_string());
    conflict::park(tx, &open)
}

/// Removes, locally only, every record below `collection/id`, which the server deleted (and with
/// it, by its cascade, every record it had below). A child moved here locally onto that parent
/// is not below it on the server: its move can never land, and it goes back to the server's
/// state instead.
pub fn remove_descendants(
    tx: &Transaction<'_>,
    schema: &Schema,
    collection: &str,
    id: &str,
) -> Result<()> {
    for (child, field) in schema.children_of(collection) {
        for child_id in records::children(tx, child, field, id)? {
            let Some(before) = records::load(tx, child, &child_id)? else {
                continue;
            };
            let now = crate::engine::now_ms();
            if let Some(doc) = before.server_doc.clone() {
                if !names_parent(&doc, field, id)? {
                    drop_local_change(tx, child, &child_id)?;
                    show_server_doc(tx, schema, &before, &doc, before.server_version, now)?;
                    continue;
                }
            }
            remove_descendants(tx, schema, child, &child_id)?;
            drop_local_change(tx, child, &child_id)?;
            let version = before.server_version;
            forget_or_tombstone(tx, child, &child_id, Some(before), version, now)?;
        }
    }
    Ok(())
}

/// Whether the stored document `doc` names `parent_id` as its parent in `field`.
fn names_parent(doc: &str, field: &str, parent_id: &str) -> Result<bool> {
    let doc = parse_object(doc)?;
    Ok(doc.get(field).and_then(serde_json::Value::as_str) == Some(parent_id))
}

/// What a local delete of `collection/id` does to the records below it. Those the server also
/// has below it are hidden at once and their unsent changes dropped: the server's cascade deletes
/// them with their parent, following its own current parent links, so a child another device
/// moved elsewhere meanwhile is not deleted but shows again once pulled. Those the user moved
/// below it here, which the server has elsewhere, get a delete of their own, since the user saw
/// them go.
pub fn cascade_local_delete(
    tx: &Transaction<'_>,
    schema: &Schema,
    collection: &str,
    id: &str,
    now: i64,
) -> Result<()> {
    for (child, field) in schema.children_of(collection) {
        for child_id in records::live_children(tx, child, field, id)? {
            let Some(row) = records::load(tx, child, &child_id)? else {
                continue;
            };
            match server_copy(tx, &row)? {
                Some(doc) if names_parent(&doc, field, id)? => hide(tx, &row, doc, now)?,
                _ => delete_own(tx, schema, &row, now)?,
            }
            cascade_local_delete(tx, schema, child, &child_id, now)?;
        }
    }
    Ok(())
}

/// What the server has (or will have, once a change in flight lands) of the record: the document
/// of its in-flight upsert, else its server document.
fn server_copy(tx: &Transaction<'_>, row: &RecordRow) -> Result<Option<String>> {
    let inflight = outbox::unsent_for_record(tx, &row.collection, &row.id)?
        .into_iter()
        .rev()
        .find(|e| e.state == outbox::EntryState::Inflight);
    Ok(match inflight {
        Some(entry) => entry.doc,
        None => row.server_doc.clone(),
    })
}

/// Hides a record whose server copy `doc` goes with its parent's delete: its pending changes and
/// open conflict are dropped (changes in flight stay; their answers settle them).
fn hide(tx: &Transaction<'_>, row: &RecordRow, doc: String, now: i64) -> Result<()> {
    outbox::drop_pending(tx, &row.collection, &row.id)?;
    conflict::remove(tx, &row.collection, &row.id)?;
    records::save(
        tx,
        &RecordRow {
            doc: Some(doc),
            deleted: true,
            state: RecordState::Synced,
            updated_at: now,
            ..row.clone()
        },
    )
}

/// Deletes one live record locally with an outbox entry of its own (a conflicted one through its
/// conflict, as the user's resolution).
pub fn delete_own(tx: &Transaction<'_>, schema: &Schema, row: &RecordRow, now: i64) -> Result<()> {
    if row.state == RecordState::Conflicted {
        if let Some(open) = conflict::get(tx, &row.collection, &row.id)? {
            return write_in_conflict(tx, schema, row, &open, None, now).map(drop);
        }
    }
    match outbox::record_delete(tx, row, now)? {
        AfterDelete::Forget => records::remove(tx, &row.collection, &row.id),
        AfterDelete::KeepTombstone => records::save(
            tx,
            &RecordRow {
                doc: None,
                deleted: true,
                state: RecordState::Pending,
                updated_at: now,
                ..row.clone()
            },
        ),
    }
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
