//! Attachments (docs/design/attachments.md §5): files beside records, addressed by their SHA-256.
//!
//! Provisional module root of slice S5 (download side); slice S4 owns this file (the state types,
//! table access, `referenced` and `pinned`) and its version replaces this one at the merge.

pub mod cache;
pub mod download;
pub mod progress;

/// Why an upload failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentFailure {
    TooLarge,
    QuotaExceeded,
    HashMismatch,
    FileMissing,
    Other,
}

impl AttachmentFailure {
    pub fn from_code(code: &str) -> Self {
        match code {
            "attachment_too_large" => Self::TooLarge,
            "quota_exceeded" => Self::QuotaExceeded,
            "hash_mismatch" => Self::HashMismatch,
            "file_missing" => Self::FileMissing,
            _ => Self::Other,
        }
    }
}

/// Where one attachment is, as an app shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentState {
    /// On this device only: not uploaded yet.
    Local,
    Uploading {
        sent: u64,
        total: u64,
    },
    /// On this device and on the server.
    Uploaded,
    /// On the server only (never downloaded here, or evicted from the cache).
    Remote,
    Downloading {
        received: u64,
        total: u64,
    },
    Failed {
        reason: AttachmentFailure,
        detail: String,
    },
}

// ---- Provisional until S4's table access lands (its `referenced` and `pinned` replace these).

use std::collections::HashSet;

use rusqlite::Connection;

use crate::error::Result;

/// Hashes of the attachment references (top-level objects with a `hash`) in `sql`'s documents.
fn hashes_in(conn: &Connection, sql: &str, into: &mut HashSet<String>) -> Result<()> {
    let mut statement = conn.prepare(sql)?;
    let rows = statement.query_map([], |r| r.get::<_, Option<String>>(0))?;
    for hash in rows {
        if let Some(hash) = hash? {
            into.insert(hash);
        }
    }
    Ok(())
}

/// Every hash a record (`doc`, `server_doc`), an outbox entry or a conflict names.
pub fn referenced(conn: &Connection) -> Result<HashSet<String>> {
    let mut found = pinned(conn)?;
    for column in ["doc", "server_doc"] {
        hashes_in(
            conn,
            &format!(
                "SELECT json_extract(j.value, '$.hash') FROM records, json_each(records.{column}) j
                 WHERE records.{column} IS NOT NULL AND j.type = 'object'"
            ),
            &mut found,
        )?;
    }
    Ok(found)
}

/// Hashes named by unsent changes (outbox entries of any state) and open conflicts, and those
/// not uploaded yet: never evicted.
pub fn pinned(conn: &Connection) -> Result<HashSet<String>> {
    let mut found = HashSet::new();
    hashes_in(
        conn,
        "SELECT json_extract(j.value, '$.hash') FROM outbox, json_each(outbox.doc) j
         WHERE outbox.doc IS NOT NULL AND j.type = 'object'",
        &mut found,
    )?;
    hashes_in(
        conn,
        "SELECT json_extract(j.value, '$.hash') FROM conflicts, json_each(conflicts.local_doc) j
         WHERE conflicts.local_doc IS NOT NULL AND j.type = 'object'",
        &mut found,
    )?;
    hashes_in(
        conn,
        "SELECT hash FROM attachments WHERE uploaded = 0",
        &mut found,
    )?;
    Ok(found)
}
