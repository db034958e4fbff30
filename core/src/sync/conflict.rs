//! Conflicts: how a policy decides what happens when a local change meets a different server
//! state, and the `conflicts` rows that hold what the app must decide itself.

use rusqlite::{Connection, OptionalExtension, Row, Transaction};

use super::merge::{merge_preferring, parse_doc, three_way, Doc, Merge, Side};
use super::reconcile::ServerState;
use crate::error::{Error, Result};

/// How conflicts are settled. `Merge` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    /// Three-way merge per field; a field changed on both sides, or an edit against a delete,
    /// goes to the app.
    #[default]
    Merge,
    /// The server's state replaces the local change.
    ServerWins,
    /// The local change is rebased on the server's version and sent again.
    ClientWins,
    /// Every conflict goes to the app.
    Manual,
    /// Per field, the later edit wins (by edit time, a hybrid logical clock; ties by device),
    /// an edit against a delete by the delete's time; nothing goes to the app. See `lww`.
    LastWriteWins,
}

/// Why a conflict went to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictReason {
    /// The same fields changed on both sides (see the conflict's fields).
    BothChanged,
    /// Edited here, deleted on the server.
    LocalEditServerDelete,
    /// Deleted here, edited on the server.
    LocalDeleteServerEdit,
    /// The policy is `Manual` (or a resolver left it to the app).
    Manual,
    /// The server holds the record's unique key in another record (`existing_id`): keep the
    /// existing one (`KeepServer` drops mine), keep mine (`KeepMine` deletes the existing one,
    /// then sends mine) or keep both (`Merged` with another key). Every policy leaves it here.
    UniqueViolation,
}

impl ConflictReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BothChanged => "both_changed",
            Self::LocalEditServerDelete => "local_edit_server_delete",
            Self::LocalDeleteServerEdit => "local_delete_server_edit",
            Self::Manual => "manual",
            Self::UniqueViolation => "unique_violation",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "both_changed" => Self::BothChanged,
            "local_edit_server_delete" => Self::LocalEditServerDelete,
            "local_delete_server_edit" => Self::LocalDeleteServerEdit,
            "manual" => Self::Manual,
            "unique_violation" => Self::UniqueViolation,
            other => return Err(Error::Corrupt(format!("unknown conflict reason {other:?}"))),
        })
    }
}

/// What to do with a record whose local change (`None`: a delete) met the server's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Take the server's state; drop the local change.
    AdoptServer,
    /// Send this (`None`: a delete) again, based on the server's version.
    Rebase(Option<Doc>),
    /// Leave it to the app.
    Park {
        reason: ConflictReason,
        fields: Vec<String>,
    },
}

pub fn decide(
    policy: ConflictPolicy,
    base: Option<&Doc>,
    local: Option<&Doc>,
    server: Option<&Doc>,
) -> Decision {
    match policy {
        ConflictPolicy::ServerWins => Decision::AdoptServer,
        ConflictPolicy::ClientWins => Decision::Rebase(local.cloned()),
        ConflictPolicy::Manual if local.is_none() && server.is_none() => Decision::AdoptServer,
        ConflictPolicy::Manual => Decision::Park {
            reason: ConflictReason::Manual,
            fields: Vec::new(),
        },
        ConflictPolicy::Merge => merge_decision(base, local, server),
        // `reconcile::settle` decides these by the edit times, which this has not got: without
        // them the server's side wins every tie.
        ConflictPolicy::LastWriteWins => Decision::AdoptServer,
    }
}

fn merge_decision(base: Option<&Doc>, local: Option<&Doc>, server: Option<&Doc>) -> Decision {
    match (local, server) {
        (None, None) => Decision::AdoptServer, // both deleted it
        (Some(_), None) => Decision::Park {
            reason: ConflictReason::LocalEditServerDelete,
            fields: Vec::new(),
        },
        (None, Some(_)) => Decision::Park {
            reason: ConflictReason::LocalDeleteServerEdit,
            fields: Vec::new(),
        },
        (Some(local), Some(server)) => {
            let empty = Doc::new();
            match three_way(base.unwrap_or(&empty), local, server) {
                Merge::Clean(merged) => Decision::Rebase(Some(merged)),
                Merge::Conflict(fields) => Decision::Park {
                    reason: ConflictReason::BothChanged,
                    fields,
                },
            }
        }
    }
}

/// A conflict waiting for the app.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictRow {
    pub collection: String,
    pub id: String,
    pub reason: ConflictReason,
    pub fields: Vec<String>,
    pub local_doc: Option<String>,
    pub server_doc: Option<String>,
    pub server_version: i64,
    pub base_doc: Option<String>,
    pub created_at: i64,
    /// `UniqueViolation` only: the record holding the key on the server.
    pub existing_id: Option<String>,
    /// The edit time (HLC text) of the server side's last change; `None` when unknown.
    pub server_edited_at: Option<String>,
    /// The edit time of each field of `server_doc` (a JSON object of HLC texts).
    pub server_field_times: Option<String>,
}

impl ConflictRow {
    /// This conflict after a new local write (`None`: a delete); `None` when the two sides no
    /// longer differ, so nothing is left to decide.
    pub fn with_local(&self, local: Option<&str>) -> Result<Option<ConflictRow>> {
        self.with_sides(
            local.map(str::to_string),
            self.server_doc.clone(),
            self.server_version,
        )
    }

    /// This conflict after the server's side moved on (a later pull), with that side's edit
    /// times; `None` when the two sides no longer differ.
    pub fn with_server(&self, server: &ServerState) -> Result<Option<ConflictRow>> {
        let moved = self.with_sides(self.local_doc.clone(), server.doc.clone(), server.version)?;
        Ok(moved.map(|moved| ConflictRow {
            server_edited_at: server.edited_at.clone(),
            server_field_times: server.field_times.clone(),
            ..moved
        }))
    }

    /// The reason and contested fields follow the sides; a `Manual` conflict stays manual.
    fn with_sides(
        &self,
        local_doc: Option<String>,
        server_doc: Option<String>,
        server_version: i64,
    ) -> Result<Option<ConflictRow>> {
        let local = parse_doc(local_doc.as_deref())?;
        let server = parse_doc(server_doc.as_deref())?;
        let (reason, fields) = match (&local, &server) {
            _ if local == server => return Ok(None),
            (Some(l), Some(s)) => {
                let base = parse_doc(self.base_doc.as_deref())?.unwrap_or_default();
                let fields = match three_way(&base, l, s) {
                    Merge::Clean(_) => Vec::new(),
                    Merge::Conflict(fields) => fields,
                };
                (ConflictReason::BothChanged, fields)
            }
            (Some(_), None) => (ConflictReason::LocalEditServerDelete, Vec::new()),
            (None, _) => (ConflictReason::LocalDeleteServerEdit, Vec::new()),
        };
        let (reason, fields) = if matches!(
            self.reason,
            ConflictReason::Manual | ConflictReason::UniqueViolation
        ) {
            (ConflictReason::Manual, self.fields.clone())
        } else {
            (reason, fields)
        };
        Ok(Some(ConflictRow {
            reason,
            fields,
            local_doc,
            server_doc,
            server_version,
            ..self.clone()
        }))
    }

    /// The document that settles this conflict taking `side` for what both sides changed and
    /// keeping every change only one side made (`None`: the record is deleted). Between an edit
    /// and a delete, the side taken decides whether the record stays.
    pub fn settled(&self, side: Side) -> Result<Option<String>> {
        let local = parse_doc(self.local_doc.as_deref())?;
        let server = parse_doc(self.server_doc.as_deref())?;
        Ok(match (local, server) {
            (Some(local), Some(server)) => {
                let base = parse_doc(self.base_doc.as_deref())?.unwrap_or_default();
                let merged = merge_preferring(&base, &local, &server, side);
                Some(serde_json::Value::Object(merged).to_string())
            }
            (local, server) => match side {
                Side::Local => local.map(|d| serde_json::Value::Object(d).to_string()),
                Side::Server => server.map(|d| serde_json::Value::Object(d).to_string()),
            },
        })
    }
}

const COLUMNS: &str =
    "collection, id, reason, fields, local_doc, server_doc, server_version, base_doc, \
     created_at, existing_id, server_edited_at, server_field_times";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ConflictRow> {
    let reason: String = row.get(2)?;
    let fields: Option<String> = row.get(3)?;
    let corrupt = |e: Error| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    };
    Ok(ConflictRow {
        collection: row.get(0)?,
        id: row.get(1)?,
        reason: ConflictReason::parse(&reason).map_err(corrupt)?,
        fields: fields
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default(),
        local_doc: row.get(4)?,
        server_doc: row.get(5)?,
        server_version: row.get(6)?,
        base_doc: row.get(7)?,
        created_at: row.get(8)?,
        existing_id: row.get(9)?,
        server_edited_at: row.get(10)?,
        server_field_times: row.get(11)?,
    })
}

/// Records (or replaces) the conflict of a record.
pub fn park(tx: &Transaction<'_>, conflict: &ConflictRow) -> Result<()> {
    let fields =
        serde_json::to_string(&conflict.fields).map_err(|e| Error::Corrupt(e.to_string()))?;
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO conflicts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(rusqlite::params![
        conflict.collection,
        conflict.id,
        conflict.reason.as_str(),
        fields,
        conflict.local_doc,
        conflict.server_doc,
        conflict.server_version,
        conflict.base_doc,
        conflict.created_at,
        conflict.existing_id,
        conflict.server_edited_at,
        conflict.server_field_times,
    ])?;
    Ok(())
}

pub fn get(conn: &Connection, collection: &str, id: &str) -> Result<Option<ConflictRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM conflicts WHERE collection = ?1 AND id = ?2"
        ))?
        .query_row([collection, id], from_row)
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<ConflictRow>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM conflicts ORDER BY created_at, collection, id"
        ))?
        .query_map([], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM conflicts")?
        .query_row([], |r| r.get(0))?;
    Ok(n as u64)
}

pub fn remove(tx: &Transaction<'_>, collection: &str, id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM conflicts WHERE collection = ?1 AND id = ?2")?
        .execute([collection, id])?;
    crate::outbox::release_hold(tx, collection, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: serde_json::Value) -> Doc {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn policies() {
        let base = doc(json!({"name": "a"}));
        let local = doc(json!({"name": "l"}));
        let server = doc(json!({"name": "s"}));
        let d = |p| decide(p, Some(&base), Some(&local), Some(&server));
        assert_eq!(d(ConflictPolicy::ServerWins), Decision::AdoptServer);
        assert_eq!(
            d(ConflictPolicy::ClientWins),
            Decision::Rebase(Some(local.clone()))
        );
        assert_eq!(
            d(ConflictPolicy::Manual),
            Decision::Park {
                reason: ConflictReason::Manual,
                fields: vec![]
            }
        );
        assert_eq!(
            d(ConflictPolicy::Merge),
            Decision::Park {
                reason: ConflictReason::BothChanged,
                fields: vec!["name".into()]
            }
        );
        assert_eq!(
            decide(ConflictPolicy::Merge, Some(&base), Some(&local), None),
            Decision::Park {
                reason: ConflictReason::LocalEditServerDelete,
                fields: vec![]
            }
        );
        assert_eq!(
            decide(ConflictPolicy::Merge, Some(&base), None, Some(&server)),
            Decision::Park {
                reason: ConflictReason::LocalDeleteServerEdit,
                fields: vec![]
            }
        );
        assert_eq!(
            decide(ConflictPolicy::Merge, Some(&base), None, None),
            Decision::AdoptServer
        );
        let other_field = doc(json!({"name": "a", "notes": "s"}));
        assert_eq!(
            decide(
                ConflictPolicy::Merge,
                Some(&base),
                Some(&local),
                Some(&other_field)
            ),
            Decision::Rebase(Some(doc(json!({"name": "l", "notes": "s"}))))
        );
    }
}
