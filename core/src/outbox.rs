//! The outbox: every local change waiting to be sent, written in the same transaction as the
//! record it changes. Entries that have not left yet coalesce per record, so a record edited a
//! hundred times offline is sent once; entries leave in commit order, so a parent created before
//! its child reaches the server first.

use std::cell::RefCell;
use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use tandem_protocol::MAX_GROUP_SIZE;

use crate::error::{Error, Result};
use crate::records::RecordRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Upsert,
    Delete,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Waiting to be sent; may still coalesce with newer writes.
    Pending,
    /// Sent and not yet answered; never changed again (a newer write gets a new entry).
    Inflight,
    /// Refused by the server; kept in the dead-letter list.
    Rejected,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Inflight => "inflight",
            Self::Rejected => "rejected",
        }
    }
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub op_id: String,
    pub collection: String,
    pub entity_id: String,
    pub op: OpKind,
    /// The server version the change started from; `None` when the server has never seen it.
    pub base_version: Option<i64>,
    /// The server document the change started from (for three-way merges).
    pub base_doc: Option<String>,
    /// The desired document; `None` for deletes.
    pub doc: Option<String>,
    pub attempts: i64,
    pub state: EntryState,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The atomic group (one `write` batch of several ops) the entry belongs to.
    pub group_id: Option<String>,
    /// The edit time (HLC text) of the latest edit the entry sends (`editedAt`).
    pub edited_at: Option<String>,
    /// The edit times of the fields of `doc` that differ from `edited_at`, and of removed fields
    /// (`fieldEditedAt`), a JSON object of HLC texts; `None` when there are none (a fresh put).
    pub field_times: Option<String>,
    /// The space the change is sent to (the mutation's `space`); `None` for user records.
    pub space_id: Option<String>,
}

// ---- Atomic groups ----
//
// Every entry one `write` batch of several ops records carries the batch's group id; a write of
// one op records entries without a group. The rules that keep a group whole:
// - coalescing: a write without a group folds into a pending entry whatever its group (a later
//   edit of a grouped record travels with its group, which then carries the newer document). A
//   batch that folds into a pending entry of another group merges that group into its own: the
//   entry now carries both batches' change of the record, so only sending the two together keeps
//   each whole (and a record still has one entry to send, as without groups). A merge that would
//   make a group larger than `MAX_GROUP_SIZE` does not happen: the batch's change gets an entry
//   of its own instead, sent after the other group's;
// - push: a group goes in one push batch, all of its unsent entries together (`take_batch`);
// - failure: when one member meets a conflict or a rejection, the server applies none; the
//   others are answered `aborted` and wait, pending, while the failing member's conflict is open
//   (`group_holds`) or its rejection is a dead letter; once settled (its new entry joins the
//   group, back in its place, so a kept parent still goes before its children) or discarded
//   (a correction written since takes the dead letter's place), the group goes again.
// - streams: a group stays in one stream (the server refuses one spanning two). A batch that
//   writes the user's records and those of a space, or of two spaces, is atomic here and goes as
//   one group per stream: the first stream it writes takes the batch's group id, the next ones
//   `<group id>.2`, `<group id>.3`, ... Coalescing never crosses streams: a record has one space.

/// The `write` running on this thread, when it is a batch: its group id, its op count and the
/// streams (spaces; `None` for the user's own) its entries went to so far, in order.
#[derive(Clone)]
struct WriteGroup {
    base: String,
    ops: usize,
    streams: Vec<Option<String>>,
}

impl WriteGroup {
    /// The group id of the stream at `index` of `streams`.
    fn id_at(&self, index: usize) -> String {
        if index == 0 {
            self.base.clone()
        } else {
            format!("{}.{}", self.base, index + 1)
        }
    }
}

thread_local! {
    /// The group of the `write` running on this thread, if it is a batch.
    static WRITE_GROUP: RefCell<Option<WriteGroup>> = const { RefCell::new(None) };
}

/// While alive, every entry recorded on this thread joins `group` (see [`GroupScope::enter`]).
pub struct GroupScope(());

impl GroupScope {
    /// Starts a group of a batch of `ops` ops: the entries recorded on this thread until the
    /// scope drops belong to it.
    pub fn enter(group: String, ops: usize) -> Self {
        WRITE_GROUP.with(|g| {
            *g.borrow_mut() = Some(WriteGroup {
                base: group,
                ops,
                streams: Vec::new(),
            });
        });
        Self(())
    }
}

impl Drop for GroupScope {
    fn drop(&mut self) {
        WRITE_GROUP.with(|g| *g.borrow_mut() = None);
    }
}

/// The group the entries of stream `space` recorded now join (see the stream rule above).
pub fn current_group(space: Option<&str>) -> Option<String> {
    WRITE_GROUP.with(|g| {
        let mut g = g.borrow_mut();
        let group = g.as_mut()?;
        let index = match group.streams.iter().position(|s| s.as_deref() == space) {
            Some(index) => index,
            None => {
                group.streams.push(space.map(str::to_string));
                group.streams.len() - 1
            }
        };
        Some(group.id_at(index))
    })
}

/// The groups the running write's entries joined so far (one per stream written).
pub fn current_groups() -> Vec<String> {
    WRITE_GROUP.with(|g| {
        g.borrow().as_ref().map_or_else(Vec::new, |group| {
            (0..group.streams.len()).map(|i| group.id_at(i)).collect()
        })
    })
}

/// Whether the running write may fold into the pending entry `head` (of a record of stream
/// `space`); when it may and the entry is of another group (or of none), that group is merged
/// into the running batch's group of that stream.
fn fold_into(tx: &Transaction<'_>, head: &Head, space: Option<&str>) -> Result<bool> {
    let Some(ops) = WRITE_GROUP.with(|g| g.borrow().as_ref().map(|g| g.ops)) else {
        return Ok(true);
    };
    let Some(current) = current_group(space) else {
        return Ok(true);
    };
    match head.group_id.as_deref() {
        Some(g) if g == current => Ok(true),
        None => {
            tx.prepare_cached("UPDATE outbox SET group_id = ?2 WHERE seq = ?1")?
                .execute(rusqlite::params![head.seq, current])?;
            Ok(true)
        }
        Some(other) => {
            let merged = group_size(tx, other)? + group_size(tx, &current)? + ops as u64;
            if merged > MAX_GROUP_SIZE as u64 {
                return Ok(false);
            }
            tx.prepare_cached("UPDATE outbox SET group_id = ?2 WHERE group_id = ?1")?
                .execute([other, current.as_str()])?;
            tx.prepare_cached("UPDATE group_holds SET group_id = ?2 WHERE group_id = ?1")?
                .execute([other, current.as_str()])?;
            Ok(true)
        }
    }
}

/// How many unsent entries `group` has.
pub fn group_size(conn: &Connection, group: &str) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM outbox WHERE group_id = ?1 AND state IN ('pending', 'inflight')",
        )?
        .query_row([group], |r| r.get(0))?;
    Ok(n as u64)
}

/// The unsent entries of `group`, oldest first.
pub fn group_members(conn: &Connection, group: &str) -> Result<Vec<OutboxEntry>> {
    let entries = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE group_id = ?1
             AND state IN ('pending', 'inflight') ORDER BY seq"
        ))?
        .query_map([group], entry_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

/// Whether `group` is held back: one of its members is a dead letter, or a member's conflict
/// is open.
pub fn group_held(conn: &Connection, group: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE group_id = ?1 AND state = 'rejected')
                 OR EXISTS (SELECT 1 FROM group_holds h JOIN conflicts c
                            ON c.collection = h.collection AND c.id = h.entity_id
                            WHERE h.group_id = ?1)",
        )?
        .query_row([group], |r| r.get(0))?)
}

/// A record's place in a group: the group, and the outbox position of the record's change in
/// it. A batch's changes are in an order the server accepts (a parent created before its
/// children), so a member that is settled and sent again goes back to its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlace {
    pub group: String,
    pub seq: i64,
}

/// The group place of the record's unsent change (else the one its open conflict holds), if any.
pub fn group_of_record(
    conn: &Connection,
    collection: &str,
    id: &str,
) -> Result<Option<GroupPlace>> {
    let from_entry = conn
        .prepare_cached(
            "SELECT group_id, seq FROM outbox WHERE collection = ?1 AND entity_id = ?2
             AND state IN ('pending', 'inflight') AND group_id IS NOT NULL ORDER BY seq LIMIT 1",
        )?
        .query_row([collection, id], |r| {
            Ok(GroupPlace {
                group: r.get(0)?,
                seq: r.get(1)?,
            })
        })
        .optional()?;
    if from_entry.is_some() {
        return Ok(from_entry);
    }
    Ok(conn
        .prepare_cached(
            "SELECT group_id, seq FROM group_holds WHERE collection = ?1 AND entity_id = ?2",
        )?
        .query_row([collection, id], |r| {
            Ok(GroupPlace {
                group: r.get(0)?,
                seq: r.get(1)?,
            })
        })
        .optional()?)
}

/// Notes that the record's conflict, about to open, holds back the group of `place`.
pub fn hold_group(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    place: &GroupPlace,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO group_holds (collection, entity_id, group_id, seq)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![collection, id, place.group, place.seq])?;
    Ok(())
}

/// Forgets what the record's conflict held back (it was settled or dropped).
pub fn release_hold(tx: &Transaction<'_>, collection: &str, id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM group_holds WHERE collection = ?1 AND entity_id = ?2")?
        .execute([collection, id])?;
    Ok(())
}

/// Puts the record's (one) unsent change back into its group at its place: in the group, and at
/// position `place.seq` when that is free (it is, unless the freed position was the last and a
/// later entry took it; then the change stays last, after every member anyway).
pub fn join_group(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    place: &GroupPlace,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE outbox SET group_id = ?3 WHERE collection = ?1 AND entity_id = ?2
         AND state IN ('pending', 'inflight')",
    )?
    .execute(rusqlite::params![collection, id, place.group])?;
    let unsent = unsent_for_record(tx, collection, id)?;
    if let [entry] = unsent.as_slice() {
        tx.prepare_cached(
            "UPDATE outbox SET seq = ?2 WHERE seq = ?1
             AND NOT EXISTS (SELECT 1 FROM outbox WHERE seq = ?2)",
        )?
        .execute([entry.seq, place.seq])?;
    }
    Ok(())
}

/// Makes an entry the server did not apply (its group failed) pending again.
pub fn requeue(tx: &Transaction<'_>, seq: i64) -> Result<()> {
    tx.prepare_cached("UPDATE outbox SET state = 'pending' WHERE seq = ?1")?
        .execute([seq])?;
    Ok(())
}

/// Moves the group's unsent entries, in their order, behind every other entry, pending again.
pub fn send_group_after_the_rest(tx: &Transaction<'_>, group: &str) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE outbox SET seq = (SELECT max(seq) FROM outbox) + 1, state = 'pending'
         WHERE seq = ?1",
    )?;
    for entry in group_members(tx, group)? {
        stmt.execute([entry.seq])?;
    }
    Ok(())
}

/// What the caller should do with a record after its delete was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterDelete {
    /// Keep a tombstone: a delete is waiting to be sent (or something else refers to the record).
    KeepTombstone,
    /// The server never saw the record and nothing is left to send: forget it entirely.
    Forget,
}

/// The newest entry of a record, as far as coalescing needs it.
struct Head {
    seq: i64,
    op: OpKind,
    state: EntryState,
    base_version: Option<i64>,
    group_id: Option<String>,
}

/// Records an upsert of `doc` for the record `before` describes (`None`: a new record).
/// `depends_on` names a parent the server has not seen yet; the change must not be moved ahead of
/// that parent's own entry.
pub fn record_upsert(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    before: Option<&RecordRow>,
    doc: &str,
    depends_on: Option<(&str, &str)>,
    now: i64,
) -> Result<()> {
    record_upsert_timed(
        tx,
        collection,
        id,
        before,
        doc,
        depends_on.as_slice(),
        now,
        None,
        None,
    )
}

/// The edit times an entry sends: of the latest edit (`editedAt`) and of each field of its
/// document whose time differs from it (`fieldEditedAt`, a JSON object of HLC texts).
#[derive(Debug, Clone, Copy)]
pub struct EntryTimes<'a> {
    pub edited_at: &'a str,
    pub field_times: Option<&'a str>,
}

/// [`record_upsert`] of an edit made at `times` (written with the entry, new or coalesced, in the
/// same statement), behind several records the server has not seen yet: its parent and the
/// records its `ref` fields name, whose own entries it must not move ahead of. `new_space` is
/// the space of a new record (`before` is `None`); an existing record's is its own.
#[allow(clippy::too_many_arguments)]
pub fn record_upsert_timed(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    before: Option<&RecordRow>,
    doc: &str,
    depends_on: &[(&str, &str)],
    now: i64,
    times: Option<EntryTimes<'_>>,
    new_space: Option<&str>,
) -> Result<()> {
    let (edited_at, field_times) =
        times.map_or((None, None), |t| (Some(t.edited_at), t.field_times));
    // A record without a row has no entries (rows are forgotten only once none are left).
    let head = match before {
        Some(_) => head(tx, collection, id)?,
        None => None,
    };
    let space = before.map_or(new_space, |r| r.space_id.as_deref());
    let group = group_for_new_entry(head.as_ref(), space);
    if let Some(head) = head {
        let mut blocked = false;
        for (pc, pid) in depends_on {
            if has_unsent_entry_after(tx, pc, pid, head.seq)? {
                blocked = true;
                break;
            }
        }
        // upsert+upsert keeps the oldest base. A pending delete is never folded into: the
        // server must delete (taking what lies below with it, as this device already hid it)
        // before the record is created again; folded, the delete would never reach it.
        if head.state == EntryState::Pending
            && head.op == OpKind::Upsert
            && !blocked
            && fold_into(tx, &head, space)?
        {
            tx.prepare_cached(
                "UPDATE outbox SET doc = ?1, updated_at = ?2,
                   edited_at = coalesce(?4, edited_at),
                   field_times = CASE WHEN ?4 IS NULL THEN field_times ELSE ?5 END
                 WHERE seq = ?3",
            )?
            .execute(rusqlite::params![
                doc,
                now,
                head.seq,
                edited_at,
                field_times
            ])?;
            return Ok(());
        }
    }
    insert_timed(
        tx,
        collection,
        id,
        OpKind::Upsert,
        (before, space),
        Some(doc),
        group,
        now,
        times,
    )
}

/// The group a new entry joins: the running batch's; else, for a lone write after a dead letter
/// of a group, that group (the correction takes the dead letter's place once it is discarded).
fn group_for_new_entry(head: Option<&Head>, space: Option<&str>) -> Option<String> {
    current_group(space).or_else(|| {
        head.filter(|h| h.state == EntryState::Rejected)
            .and_then(|h| h.group_id.clone())
    })
}

/// Records the delete of `before` (a live record).
pub fn record_delete(tx: &Transaction<'_>, before: &RecordRow, now: i64) -> Result<AfterDelete> {
    let (collection, id) = (before.collection.as_str(), before.id.as_str());
    let head = head(tx, collection, id)?;
    let space = before.space_id.as_deref();
    let group = group_for_new_entry(head.as_ref(), space);
    if let Some(head) = head.filter(|h| h.state == EntryState::Pending) {
        let never_sent = head.base_version.is_none()
            && before.server_version == 0
            && unsent_entries(tx, collection, id)? == 1;
        if never_sent {
            // create (+ updates) + delete of a record the server never saw: nothing to send.
            remove(tx, head.seq)?;
            return Ok(if has_entries(tx, collection, id)? {
                AfterDelete::KeepTombstone
            } else {
                AfterDelete::Forget
            });
        }
        if fold_into(tx, &head, space)? {
            // upsert+delete becomes a delete with the oldest base.
            tx.prepare_cached(
                "UPDATE outbox SET op = 'delete', doc = NULL, updated_at = ?1 WHERE seq = ?2",
            )?
            .execute(rusqlite::params![now, head.seq])?;
            return Ok(AfterDelete::KeepTombstone);
        }
        // A pending change of a group too large to merge with: this batch's delete comes after it.
    }
    insert_timed(
        tx,
        collection,
        id,
        OpKind::Delete,
        (Some(before), space),
        None,
        group,
        now,
        None,
    )?;
    Ok(AfterDelete::KeepTombstone)
}

/// Entries still to be confirmed by the server (pending or in flight).
pub fn unsent_count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM outbox WHERE state IN ('pending', 'inflight')")?
        .query_row([], |r| r.get(0))?;
    Ok(n as u64)
}

/// Every entry, in the order they will leave (dead letters included, marked as such).
pub fn list(conn: &Connection) -> Result<Vec<OutboxEntry>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM outbox ORDER BY seq"))?;
    let entries = stmt
        .query_map([], entry_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(entries)
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let op: String = row.get(4)?;
    let state: String = row.get(9)?;
    let corrupt = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            Box::new(Error::Corrupt(what)),
        )
    };
    Ok(OutboxEntry {
        seq: row.get(0)?,
        op_id: row.get(1)?,
        collection: row.get(2)?,
        entity_id: row.get(3)?,
        op: parse_op(&op).ok_or_else(|| corrupt(format!("unknown outbox op {op:?}")))?,
        base_version: row.get(5)?,
        base_doc: row.get(6)?,
        doc: row.get(7)?,
        attempts: row.get(8)?,
        state: parse_state(&state)
            .ok_or_else(|| corrupt(format!("unknown outbox state {state:?}")))?,
        last_error: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
        group_id: row.get(13)?,
        edited_at: row.get(14)?,
        field_times: row.get(15)?,
        space_id: row.get(16)?,
    })
}

fn parse_op(s: &str) -> Option<OpKind> {
    match s {
        "upsert" => Some(OpKind::Upsert),
        "delete" => Some(OpKind::Delete),
        _ => None,
    }
}

fn parse_state(s: &str) -> Option<EntryState> {
    match s {
        "pending" => Some(EntryState::Pending),
        "inflight" => Some(EntryState::Inflight),
        "rejected" => Some(EntryState::Rejected),
        _ => None,
    }
}

fn head(conn: &Connection, collection: &str, id: &str) -> Result<Option<Head>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, op, state, base_version, group_id FROM outbox
         WHERE collection = ?1 AND entity_id = ?2 ORDER BY seq DESC LIMIT 1",
    )?;
    let head = stmt
        .query_row([collection, id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })
        .optional()?;
    let Some((seq, op, state, base_version, group_id)) = head else {
        return Ok(None);
    };
    Ok(Some(Head {
        seq,
        op: parse_op(&op).ok_or_else(|| Error::Corrupt(format!("unknown outbox op {op:?}")))?,
        state: parse_state(&state)
            .ok_or_else(|| Error::Corrupt(format!("unknown outbox state {state:?}")))?,
        base_version,
        group_id,
    }))
}

fn has_unsent_entry_after(conn: &Connection, collection: &str, id: &str, seq: i64) -> Result<bool> {
    let found: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE collection = ?1 AND entity_id = ?2
                            AND state IN ('pending', 'inflight') AND seq > ?3)",
        )?
        .query_row(rusqlite::params![collection, id, seq], |r| r.get(0))?;
    Ok(found)
}

fn unsent_entries(conn: &Connection, collection: &str, id: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM outbox WHERE collection = ?1 AND entity_id = ?2
             AND state IN ('pending', 'inflight')",
        )?
        .query_row([collection, id], |r| r.get(0))?)
}

/// Whether the record has any outbox entry left (dead letters included).
pub fn has_entries(conn: &Connection, collection: &str, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE collection = ?1 AND entity_id = ?2)",
        )?
        .query_row([collection, id], |r| r.get(0))?)
}

#[allow(clippy::too_many_arguments)]
fn insert_timed(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    op: OpKind,
    (before, space): (Option<&RecordRow>, Option<&str>),
    doc: Option<&str>,
    group: Option<String>,
    now: i64,
    times: Option<EntryTimes<'_>>,
) -> Result<()> {
    let (edited_at, field_times) =
        times.map_or((None, None), |t| (Some(t.edited_at), t.field_times));
    let base_version = before.map(|r| r.server_version).filter(|v| *v > 0);
    let base_doc = before.and_then(|r| r.server_doc.as_deref());
    let mut op_id = Uuid::encode_buffer();
    let op_id: &str = Uuid::now_v7().hyphenated().encode_lower(&mut op_id);
    tx.prepare_cached(
        "INSERT INTO outbox (op_id, collection, entity_id, op, base_version, base_doc, doc, created_at, updated_at,
                             group_id, edited_at, field_times, space_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        op_id,
        collection,
        id,
        op.as_str(),
        base_version,
        base_doc,
        doc,
        now,
        group,
        edited_at,
        field_times,
        space,
    ])?;
    Ok(())
}

// ---- Sync side: what the push loop takes from the outbox and how answers change it. ----

const ENTRY_COLUMNS: &str =
    "seq, op_id, collection, entity_id, op, base_version, base_doc, doc, attempts, state,
                             last_error, created_at, updated_at, group_id, edited_at, field_times, space_id";

/// Stamps the edit times of the record's newest entry when it is still pending (after
/// [`record_upsert`] or [`record_delete`] wrote it): the time of the latest edit it sends, and the
/// time of each field of its document.
pub fn stamp_times(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    edited_at: &str,
    field_times: Option<&str>,
) -> Result<()> {
    let Some(head) = head(tx, collection, id)? else {
        return Ok(());
    };
    if head.state == EntryState::Pending {
        tx.prepare_cached("UPDATE outbox SET edited_at = ?2, field_times = ?3 WHERE seq = ?1")?
            .execute(rusqlite::params![head.seq, edited_at, field_times])?;
    }
    Ok(())
}

/// The next entries to push, in commit order: those in flight from an interrupted push first (they
/// are sent again with the same op id, which the server answers `duplicate` if it had applied
/// them), then pending ones, marked in flight. The batch stops before a second entry of a record
/// already in it: that entry's base is only known once the first one is answered. A pending
/// entry that `waits` says must wait stays pending, and so do the later entries of its record.
///
/// A group goes whole: at its first entry, all of its unsent entries join the batch together (or,
/// when they do not fit after what is already in it, the batch ends there; a group larger than
/// `limit` goes alone). A group waits whole, with the later entries of its records, while it is
/// held (a member's open conflict or dead letter), or while one of its members waits.
pub fn take_batch(
    tx: &Transaction<'_>,
    limit: usize,
    mut waits: impl FnMut(&OutboxEntry) -> Result<bool>,
) -> Result<Vec<OutboxEntry>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox WHERE state IN ('pending', 'inflight') ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    let mut in_batch = HashSet::new();
    let mut waiting = HashSet::new();
    let mut taken_groups = HashSet::new();
    let mut held_groups = HashSet::new();
    let mut batch = Vec::with_capacity(limit.min(256));
    // The last seq read in order that is in the batch: a group reaches beyond it.
    let mut frontier = i64::MIN;
    while batch.len() < limit {
        let Some(row) = rows.next()? else { break };
        let mut entry = entry_from_row(row)?;
        let key = (entry.collection.clone(), entry.entity_id.clone());
        if let Some(group) = entry.group_id.clone() {
            if taken_groups.contains(&group) {
                frontier = entry.seq;
                continue;
            }
            if held_groups.contains(&group) {
                waiting.insert(key);
                continue;
            }
            let members = group_members(tx, &group)?;
            let keys: Vec<(String, String)> = members
                .iter()
                .map(|m| (m.collection.clone(), m.entity_id.clone()))
                .collect();
            let mut held = group_held(tx, &group)? || keys.iter().any(|k| waiting.contains(k));
            for member in &members {
                if held {
                    break;
                }
                held = member.state == EntryState::Pending && waits(member)?;
            }
            if held {
                tracing::debug!(group = %group, "group waits");
                held_groups.insert(group);
                waiting.extend(keys);
                continue;
            }
            let fits = batch.is_empty() || batch.len() + members.len() <= limit;
            if !fits || keys.iter().any(|k| in_batch.contains(k)) {
                break;
            }
            for mut member in members {
                in_batch.insert((member.collection.clone(), member.entity_id.clone()));
                member.state = EntryState::Inflight;
                member.attempts += 1;
                batch.push(member);
            }
            taken_groups.insert(group);
            frontier = entry.seq;
            continue;
        }
        if waiting.contains(&key) {
            continue;
        }
        if in_batch.contains(&key) {
            break;
        }
        if entry.state == EntryState::Pending && waits(&entry)? {
            waiting.insert(key);
            continue;
        }
        in_batch.insert(key);
        entry.state = EntryState::Inflight;
        entry.attempts += 1;
        frontier = entry.seq;
        batch.push(entry);
    }
    drop(rows);
    let last = batch.iter().map(|e| e.seq).max().unwrap_or(i64::MIN);
    mark_inflight(tx, &batch, waiting.is_empty() && last <= frontier)?;
    Ok(batch)
}

/// Marks the taken `batch` in flight; when nothing was left waiting between its entries it is
/// exactly the unsent entries from its first seq to its last, and one statement does it.
fn mark_inflight(tx: &Transaction<'_>, batch: &[OutboxEntry], contiguous: bool) -> Result<()> {
    let (Some(first), Some(last)) = (
        batch.iter().map(|e| e.seq).min(),
        batch.iter().map(|e| e.seq).max(),
    ) else {
        return Ok(());
    };
    if contiguous {
        tx.prepare_cached(
            "UPDATE outbox SET state = 'inflight', attempts = attempts + 1
             WHERE state IN ('pending', 'inflight') AND seq BETWEEN ?1 AND ?2",
        )?
        .execute([first, last])?;
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "UPDATE outbox SET state = 'inflight', attempts = attempts + 1 WHERE seq = ?1",
    )?;
    for entry in batch {
        stmt.execute([entry.seq])?;
    }
    Ok(())
}

/// Moves the record's unsent entries, in their order, behind every other entry, pending again:
/// the server refused them for a parent whose own change has not landed yet, and they go after it.
pub fn send_after_the_rest(tx: &Transaction<'_>, collection: &str, id: &str) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE outbox SET seq = (SELECT max(seq) FROM outbox) + 1, state = 'pending'
         WHERE seq = ?1",
    )?;
    for entry in unsent_for_record(tx, collection, id)? {
        stmt.execute([entry.seq])?;
    }
    Ok(())
}

/// Whether the entry `seq` is still in the outbox (a `revert` drops entries in flight too).
pub fn exists(conn: &Connection, seq: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE seq = ?1)")?
        .query_row([seq], |r| r.get(0))?)
}

pub fn remove(tx: &Transaction<'_>, seq: i64) -> Result<()> {
    tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
        .execute([seq])?;
    Ok(())
}

/// The record's unsent entries (pending or in flight), oldest first.
pub fn unsent_for_record(
    conn: &Connection,
    collection: &str,
    id: &str,
) -> Result<Vec<OutboxEntry>> {
    let entries = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE collection = ?1 AND entity_id = ?2
             AND state IN ('pending', 'inflight') ORDER BY seq"
        ))?
        .query_map([collection, id], entry_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

/// Drops every unsent entry of a record (its changes were superseded or resolved).
pub fn drop_unsent(tx: &Transaction<'_>, collection: &str, id: &str) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM outbox WHERE collection = ?1 AND entity_id = ?2 AND state IN ('pending', 'inflight')",
    )?
    .execute([collection, id])?;
    Ok(())
}

/// Drops every entry of a record, dead letters included (the record goes back to the server's
/// state: `revert`).
pub fn drop_all(tx: &Transaction<'_>, collection: &str, id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM outbox WHERE collection = ?1 AND entity_id = ?2")?
        .execute([collection, id])?;
    Ok(())
}

/// Drops the record's pending entries, keeping those in flight (their answers settle them).
pub fn drop_pending(tx: &Transaction<'_>, collection: &str, id: &str) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM outbox WHERE collection = ?1 AND entity_id = ?2 AND state = 'pending'",
    )?
    .execute([collection, id])?;
    Ok(())
}

/// Moves an entry onto a new base (the server's current state), with the document to send, and
/// makes it pending again.
pub fn rebase(
    tx: &Transaction<'_>,
    seq: i64,
    base_version: Option<i64>,
    base_doc: Option<&str>,
    doc: Option<&str>,
    now: i64,
) -> Result<()> {
    let op = if doc.is_some() {
        OpKind::Upsert
    } else {
        OpKind::Delete
    };
    tx.prepare_cached(
        "UPDATE outbox SET state = 'pending', base_version = ?2, base_doc = ?3, op = ?4, doc = ?5, updated_at = ?6
         WHERE seq = ?1",
    )?
    .execute(rusqlite::params![seq, base_version, base_doc, op.as_str(), doc, now])?;
    Ok(())
}

/// Records a dead letter for `row` directly (a change that can no longer be sent, such as an open
/// conflict's local side when the user lost access to its space): an upsert of `doc`, or a delete
/// when `None`, refused with `reason`.
pub fn record_rejected(
    tx: &Transaction<'_>,
    row: &RecordRow,
    doc: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<()> {
    let op = if doc.is_some() {
        OpKind::Upsert
    } else {
        OpKind::Delete
    };
    let op_id = Uuid::now_v7().to_string();
    tx.prepare_cached(
        "INSERT INTO outbox (op_id, collection, entity_id, op, base_version, base_doc, doc, created_at, updated_at,
                             state, last_error, edited_at, field_times, space_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 'rejected', ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        op_id,
        row.collection,
        row.id,
        op.as_str(),
        Some(row.server_version).filter(|v| *v > 0),
        row.server_doc,
        doc,
        now,
        reason,
        row.edited_at,
        row.field_times,
        row.space_id,
    ])?;
    Ok(())
}

/// Moves an entry to the dead-letter list with the server's reason.
pub fn reject(tx: &Transaction<'_>, seq: i64, reason: &str, now: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE outbox SET state = 'rejected', last_error = ?2, updated_at = ?3 WHERE seq = ?1",
    )?
    .execute(rusqlite::params![seq, reason, now])?;
    Ok(())
}

/// The dead-letter list, oldest first.
pub fn rejected(conn: &Connection) -> Result<Vec<OutboxEntry>> {
    let entries = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE state = 'rejected' ORDER BY seq"
        ))?
        .query_map([], entry_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

/// One dead letter by op id.
pub fn rejected_by_op_id(conn: &Connection, op_id: &str) -> Result<Option<OutboxEntry>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE state = 'rejected' AND op_id = ?1"
        ))?
        .query_row([op_id], entry_from_row)
        .optional()?)
}

pub fn rejected_count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM outbox WHERE state = 'rejected'")?
        .query_row([], |r| r.get(0))?;
    Ok(n as u64)
}

/// Gives back entries a push took (`take_batch`) but never sent: pending again, their attempt
/// uncounted, as if never taken (the push pipeline's window after an answer that was not clean,
/// see `sync::run`). An entry no longer in flight (reverted, answered) is left as it is.
pub fn untake(tx: &Transaction<'_>, seqs: &[i64]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE outbox SET state = 'pending', attempts = max(attempts - 1, 0)
         WHERE seq = ?1 AND state = 'inflight'",
    )?;
    for seq in seqs {
        stmt.execute([seq])?;
    }
    Ok(())
}
