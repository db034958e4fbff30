//! Attachments (docs/design/attachments.md §5): files that sync beside their records. A record's
//! attachment field holds a reference (`{"hash", "size", "contentType", "name"}`); the bytes live
//! in the account's attachments directory ([`files`]) and are uploaded by the sync run before the
//! change naming them is pushed ([`upload`]).
//!
//! This module owns the `attachments` table (store v9), one row per blob the account knows:
//!
//! | column | meaning |
//! |---|---|
//! | `hash` | SHA-256 of the bytes, 64 lowercase hex |
//! | `size`, `content_type` | as in the reference |
//! | `on_disk` | the complete file `<dir>/<hash>` is here |
//! | `uploaded` | the server holds the blob for us: an upload completed, the open answered `complete`, or it came in a pulled record (then `on_disk = 0` until downloaded) |
//! | `last_used_ms` | attached, downloaded or opened last (the cache's LRU order) |
//! | `failure_code`, `failure_detail` | a permanent upload failure ([`AttachmentFailure::code`]) |
//!
//! and the questions the rest of the engine asks about it: which hashes the store names at all
//! ([`referenced`], for collection), which must stay on disk ([`pinned`], for eviction), which
//! still have to be uploaded ([`upload_work`]), and whether a change has to wait for an upload
//! ([`UploadGate`]). All of them read the schema's attachment fields with `json_extract` over the
//! stored documents, so they need no index of their own.

pub mod cache;
pub mod download;
pub mod files;
pub mod progress;
pub mod sealed;
pub mod upload;

use std::collections::{BTreeSet, HashSet};

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde_json::Value;
use tandem_protocol::{FieldType, Schema, ValidationError, ValidationReason};

use crate::error::{Error, Result};
use crate::outbox::{self, OutboxEntry};
use crate::records;

pub use files::{Files, Imported};

/// Why an upload failed for good (the dead letters of the changes naming it carry the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentFailure {
    /// Larger than the server's per-file limit (`attachment_too_large`).
    TooLarge,
    /// The user's stored bytes would pass their quota (`quota_exceeded`).
    QuotaExceeded,
    /// The server twice found the bytes did not hash to the reference's hash (`hash_mismatch`).
    HashMismatch,
    /// The local file is gone (or unreadable) before it was uploaded (`file_missing`).
    FileMissing,
    /// Anything else a newer engine may have stored.
    Other,
}

impl AttachmentFailure {
    /// The stored code (`attachments.failure_code`).
    pub fn code(self) -> &'static str {
        match self {
            Self::TooLarge => "attachment_too_large",
            Self::QuotaExceeded => "quota_exceeded",
            Self::HashMismatch => "hash_mismatch",
            Self::FileMissing => "file_missing",
            Self::Other => "other",
        }
    }

    pub fn parse(code: &str) -> Self {
        match code {
            "attachment_too_large" => Self::TooLarge,
            "quota_exceeded" => Self::QuotaExceeded,
            "hash_mismatch" => Self::HashMismatch,
            "file_missing" => Self::FileMissing,
            _ => Self::Other,
        }
    }

    /// The reason the dead letters of the changes naming the attachment carry: the server's
    /// error code where there is one; a missing local file reads `attachment_missing` (the
    /// rejection a push of the change would get), so apps match one reason for both.
    pub fn dead_letter_reason(self) -> &'static str {
        match self {
            Self::FileMissing => "attachment_missing",
            other => other.code(),
        }
    }
}

/// Where one attachment stands, as the app observes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentState {
    /// On this device, not uploaded yet.
    Local,
    /// Being uploaded: `sent` of `total` bytes acknowledged.
    Uploading { sent: u64, total: u64 },
    /// On this device and on the server.
    Uploaded,
    /// On the server only (not downloaded, or evicted from the cache).
    Remote,
    /// Being downloaded: `received` of `total` bytes.
    Downloading { received: u64, total: u64 },
    /// The upload failed for good.
    Failed {
        reason: AttachmentFailure,
        detail: Option<String>,
    },
}

/// One row of `attachments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    pub hash: String,
    pub size: u64,
    pub content_type: String,
    pub on_disk: bool,
    pub uploaded: bool,
    pub last_used_ms: i64,
    pub failure_code: Option<String>,
    pub failure_detail: Option<String>,
}

impl AttachmentRow {
    /// The state the row alone says (no transfer under way): failed, local, uploaded or remote.
    /// `progress.rs` overlays `Uploading` / `Downloading` while a transfer runs.
    pub fn state(&self) -> AttachmentState {
        if let Some(code) = &self.failure_code {
            return AttachmentState::Failed {
                reason: AttachmentFailure::parse(code),
                detail: self.failure_detail.clone(),
            };
        }
        match (self.on_disk, self.uploaded) {
            (true, true) => AttachmentState::Uploaded,
            (true, false) => AttachmentState::Local,
            (false, _) => AttachmentState::Remote,
        }
    }
}

const COLUMNS: &str =
    "hash, size, content_type, on_disk, uploaded, last_used_ms, failure_code, failure_detail";

fn row_from(row: &Row<'_>) -> rusqlite::Result<AttachmentRow> {
    Ok(AttachmentRow {
        hash: row.get(0)?,
        size: row.get::<_, i64>(1)? as u64,
        content_type: row.get(2)?,
        on_disk: row.get(3)?,
        uploaded: row.get(4)?,
        last_used_ms: row.get(5)?,
        failure_code: row.get(6)?,
        failure_detail: row.get(7)?,
    })
}

/// The row of `hash`, if the account knows it.
pub fn get(conn: &Connection, hash: &str) -> Result<Option<AttachmentRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM attachments WHERE hash = ?1"
        ))?
        .query_row([hash], row_from)
        .optional()?)
}

/// Every row, least recently used first (the cache's eviction order).
pub fn list(conn: &Connection) -> Result<Vec<AttachmentRow>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM attachments ORDER BY last_used_ms, hash"
        ))?
        .query_map([], row_from)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Records a file just attached here: on disk, used now, a permanent failure of an earlier
/// attempt forgotten (attaching the file again tries again). Whether the server holds it is kept.
pub fn insert_local(
    tx: &Transaction<'_>,
    hash: &str,
    size: u64,
    content_type: &str,
    now_ms: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO attachments (hash, size, content_type, on_disk, uploaded, last_used_ms)
         VALUES (?1, ?2, ?3, 1, 0, ?4)
         ON CONFLICT (hash) DO UPDATE SET on_disk = 1, last_used_ms = excluded.last_used_ms,
             failure_code = NULL, failure_detail = NULL",
    )?
    .execute(params![hash, size as i64, content_type, now_ms])?;
    Ok(())
}

/// The server holds the blob for us now.
pub fn mark_uploaded(tx: &Transaction<'_>, hash: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE attachments SET uploaded = 1, failure_code = NULL, failure_detail = NULL
         WHERE hash = ?1",
    )?
    .execute([hash])?;
    Ok(())
}

/// The upload failed for good (see [`fail_upload`], which also turns the changes naming it into
/// dead letters).
pub fn mark_failed(
    tx: &Transaction<'_>,
    hash: &str,
    failure: AttachmentFailure,
    detail: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE attachments SET failure_code = ?2, failure_detail = ?3 WHERE hash = ?1",
    )?
    .execute(params![hash, failure.code(), detail])?;
    Ok(())
}

// ---- What the store names ----

/// The (collection, field) pairs of the schema's attachment fields.
pub fn fields(schema: &Schema) -> Vec<(String, String)> {
    schema
        .collections
        .keys()
        .flat_map(|c| {
            schema
                .attachment_fields(c)
                .map(move |f| (c.clone(), f.to_string()))
        })
        .collect()
}

/// One `SELECT` per (table column, collection, field), united: the hashes `column` of `table`
/// names through the attachment fields (`extra` restricts the rows, e.g. to unsent entries).
fn hashes_sql(fields: &[(String, String)], sources: &[(&str, &str, &str)]) -> Option<String> {
    let mut parts = Vec::new();
    for (collection, field) in fields {
        // Collection and field names are identifiers (the schema's rules), safe in SQL text.
        for (table, column, extra) in sources {
            parts.push(format!(
                "SELECT json_extract({column}, '$.{field}.hash') AS h FROM {table}
                 WHERE collection = '{collection}' {extra}"
            ));
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "SELECT DISTINCT h FROM ({}) WHERE typeof(h) = 'text'",
        parts.join(" UNION ALL ")
    ))
}

fn collect_hashes(conn: &Connection, sql: Option<String>) -> Result<BTreeSet<String>> {
    let Some(sql) = sql else {
        return Ok(BTreeSet::new());
    };
    let mut stmt = conn.prepare(&sql)?;
    let hashes = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    Ok(hashes)
}

/// Every hash the store names: records (`doc` and `server_doc`), outbox entries (any state) and
/// conflicts (either side and the base). A row or file of any other hash can go.
pub fn referenced(conn: &Connection, schema: &Schema) -> Result<BTreeSet<String>> {
    let sql = hashes_sql(
        &fields(schema),
        &[
            ("records", "doc", ""),
            // An empty `server_doc` is the record's `doc` (see `records`), read on the line above.
            ("records", "server_doc", "AND server_doc <> ''"),
            ("outbox", "doc", ""),
            ("outbox", "base_doc", ""),
            ("conflicts", "local_doc", ""),
            ("conflicts", "server_doc", ""),
            ("conflicts", "base_doc", ""),
        ],
    );
    collect_hashes(conn, sql)
}

/// The hashes whose files must stay on disk: named by an unsent change (outbox entries of any
/// state, dead letters included, and open conflicts' local side), or not uploaded yet. The cache
/// never evicts them.
pub fn pinned(conn: &Connection, schema: &Schema) -> Result<BTreeSet<String>> {
    let sql = hashes_sql(
        &fields(schema),
        &[("outbox", "doc", ""), ("conflicts", "local_doc", "")],
    );
    let mut pinned = collect_hashes(conn, sql)?;
    let mut stmt =
        conn.prepare_cached("SELECT hash FROM attachments WHERE uploaded = 0 AND on_disk = 1")?;
    for hash in stmt.query_map([], |r| r.get::<_, String>(0))? {
        pinned.insert(hash?);
    }
    Ok(pinned)
}

/// The hashes named by unsent outbox entries (pending or in flight).
fn named_by_unsent(conn: &Connection, schema: &Schema) -> Result<BTreeSet<String>> {
    let sql = hashes_sql(
        &fields(schema),
        &[("outbox", "doc", "AND state IN ('pending', 'inflight')")],
    );
    collect_hashes(conn, sql)
}

/// The upload phase's work: attachments named by unsent changes that are not uploaded and have
/// not failed, oldest attached first.
pub fn upload_work(conn: &Connection, schema: &Schema) -> Result<Vec<AttachmentRow>> {
    let named = named_by_unsent(conn, schema)?;
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let mut work: Vec<AttachmentRow> = list(conn)?
        .into_iter()
        .filter(|r| !r.uploaded && r.failure_code.is_none() && named.contains(&r.hash))
        .collect();
    work.sort_by(|a, b| (a.last_used_ms, &a.hash).cmp(&(b.last_used_ms, &b.hash)));
    Ok(work)
}

/// Failed attachments still named by unsent changes (written after the failure): their changes
/// become dead letters too.
pub fn failed_but_named(conn: &Connection, schema: &Schema) -> Result<Vec<AttachmentRow>> {
    let named = named_by_unsent(conn, schema)?;
    if named.is_empty() {
        return Ok(Vec::new());
    }
    Ok(list(conn)?
        .into_iter()
        .filter(|r| !r.uploaded && r.failure_code.is_some() && named.contains(&r.hash))
        .collect())
}

/// What the sync status shows as pending: the number and bytes of attachments still to upload.
pub fn pending_totals(conn: &Connection, schema: &Schema) -> Result<(u64, u64)> {
    let work = upload_work(conn, schema)?;
    Ok((work.len() as u64, work.iter().map(|r| r.size).sum()))
}

/// The hashes an entry's document names through its collection's attachment fields.
pub fn hashes_of_entry(schema: &Schema, entry: &OutboxEntry) -> Vec<String> {
    let Some(doc) = entry.doc.as_deref() else {
        return Vec::new();
    };
    if schema.attachment_fields(&entry.collection).next().is_none() {
        return Vec::new();
    }
    let Ok(doc) = serde_json::from_str::<Value>(doc) else {
        return Vec::new();
    };
    schema
        .attachment_refs(&entry.collection, &doc)
        .into_iter()
        .map(|(_, r)| r.hash)
        .collect()
}

/// Push gating: a change naming an attachment this device holds but has not uploaded waits (its
/// atomic group and the later changes of its record with it, as `take_batch` keeps them). A hash
/// without a row here (a reference copied from another record) does not wait: the server judges
/// it (`attachment_missing` when the user may not read it).
pub struct UploadGate {
    not_uploaded: HashSet<String>,
}

impl UploadGate {
    pub fn load(conn: &Connection) -> Result<Self> {
        let mut stmt = conn.prepare_cached("SELECT hash FROM attachments WHERE uploaded = 0")?;
        let not_uploaded = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(Self { not_uploaded })
    }

    /// Whether `entry` must wait for an upload.
    pub fn waits(&self, schema: &Schema, entry: &OutboxEntry) -> bool {
        !self.not_uploaded.is_empty()
            && hashes_of_entry(schema, entry)
                .iter()
                .any(|h| self.not_uploaded.contains(h))
    }
}

/// A permanent upload failure, in one transaction: the row keeps the failure, and every unsent
/// change naming the hash becomes a dead letter with the failure's reason (visible in
/// `rejected()`; discard or revert as for a server rejection). Returns the collections changed
/// and how many dead letters were made.
pub fn fail_upload(
    tx: &Transaction<'_>,
    schema: &Schema,
    hash: &str,
    failure: AttachmentFailure,
    detail: Option<&str>,
    now_ms: i64,
) -> Result<(BTreeSet<String>, u64)> {
    mark_failed(tx, hash, failure, detail)?;
    dead_letter_naming(tx, schema, hash, failure.dead_letter_reason(), now_ms)
}

/// Turns every unsent entry naming `hash` into a dead letter with `reason`, as a push rejection
/// does (`push::dead_letter`).
pub fn dead_letter_naming(
    tx: &Transaction<'_>,
    schema: &Schema,
    hash: &str,
    reason: &str,
    now_ms: i64,
) -> Result<(BTreeSet<String>, u64)> {
    let mut changed = BTreeSet::new();
    let mut count = 0;
    let unsent: Vec<OutboxEntry> = outbox::list(tx)?
        .into_iter()
        .filter(|e| e.state != outbox::EntryState::Rejected)
        .filter(|e| hashes_of_entry(schema, e).iter().any(|h| h == hash))
        .collect();
    for entry in unsent {
        tracing::warn!(
            collection = %entry.collection,
            id = %entry.entity_id,
            op_id = %entry.op_id,
            reason,
            hash = &hash[..hash.len().min(12)],
            "change not sent: its attachment cannot be uploaded"
        );
        crate::sync::push::dead_letter(tx, &entry, reason, now_ms)?;
        changed.insert(entry.collection.clone());
        count += 1;
    }
    Ok((changed, count))
}

/// The record exists and `field` is one of its collection's attachment fields: what an attach
/// checks before copying a file.
/// A field that is not declared is `UnknownField`, one of another type `WrongType` (both the
/// exported `InvalidPayload`); a record that does not exist (or is deleted) is `NotFound`.
pub fn check_target(
    conn: &Connection,
    schema: &Schema,
    collection: &str,
    id: &str,
    field: &str,
) -> Result<()> {
    let declared = crate::schema::declared(schema, collection)?;
    let reason = match declared.fields.get(field) {
        None => Some(ValidationReason::UnknownField),
        Some(f) if f.kind != FieldType::Attachment => Some(ValidationReason::WrongType {
            expected: FieldType::Attachment,
        }),
        Some(_) => None,
    };
    if let Some(reason) = reason {
        return Err(ValidationError::new(collection, Some(field), reason).into());
    }
    match records::load_live(conn, collection, id)? {
        Some(_) => Ok(()),
        None => Err(Error::not_found(collection, id)),
    }
}

#[cfg(test)]
mod tests;
