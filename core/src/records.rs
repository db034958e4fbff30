//! Rows of the `records` table: what the app sees (`doc`), what the server last confirmed
//! (`server_doc`, `server_version`) and where the record stands (`state`).

use rusqlite::{Connection, OptionalExtension, Row};

use crate::error::{Error, Result};
use crate::schema::field_expr;

/// Where a record stands relative to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Identical to what the server confirmed.
    Synced,
    /// Local changes wait in the outbox.
    Pending,
    /// Local and server changes collided; the app must resolve it.
    Conflicted,
    /// The server refused the last change; it sits in the dead-letter list.
    Rejected,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::Pending => "pending",
            Self::Conflicted => "conflicted",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "synced" => Self::Synced,
            "pending" => Self::Pending,
            "conflicted" => Self::Conflicted,
            "rejected" => Self::Rejected,
            other => return Err(Error::Corrupt(format!("unknown record state {other:?}"))),
        })
    }
}

/// One row of `records`. Documents stay JSON text: they are handed to the app as text anyway.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRow {
    pub collection: String,
    pub id: String,
    pub doc: Option<String>,
    pub server_doc: Option<String>,
    pub server_version: i64,
    pub deleted: bool,
    pub state: RecordState,
    pub created_at: i64,
    pub updated_at: i64,
    /// The edit time (HLC text, see `tandem_protocol::hlc`) of the user's last change of the
    /// record as it shows (of its delete, when deleted); `None` before edit times were kept.
    pub edited_at: Option<String>,
    /// The edit times of the fields of `doc` that differ from `edited_at`, and of removed
    /// fields, a JSON object of HLC texts (`None`: none); a field of `doc` without one was edited
    /// at `edited_at` (`edit_time::effective`).
    pub field_times: Option<String>,
    /// The space the record belongs to (a `space`-scoped collection); `None` for user and public
    /// records. Fixed when the record is created: a record never moves between spaces.
    pub space_id: Option<String>,
}

impl RecordRow {
    /// The user's last edit, unix milliseconds (the wall-clock part of `edited_at`). Read from
    /// the text's first 15 digits alone: every record a write or read hands out asks for it, and
    /// a whole parse would allocate its node.
    pub fn edited_at_ms(&self) -> Option<i64> {
        let text = self.edited_at.as_deref()?;
        let b = text.as_bytes();
        if b.len() < 23 || b[15] != b'-' || !b[..15].iter().all(u8::is_ascii_digit) {
            return None;
        }
        text[..15].parse().ok()
    }
}

/// The column list every `SELECT` of whole rows uses, in [`from_row`]'s order. A macro so that
/// statements built from it stay `&'static str` (no formatting on the hot path).
macro_rules! columns {
    () => {
        "collection, id, doc, server_doc, server_version, deleted, state, created_at, updated_at, edited_at, field_times, space_id"
    };
}
pub const COLUMNS: &str = columns!();

/// What `server_doc` holds when it is the record's `doc` (the usual state of a synced record):
/// each document is stored once. Never a document's text (a document is a JSON object).
const SERVER_DOC_IS_DOC: &str = "";

pub fn from_row(row: &Row<'_>) -> rusqlite::Result<RecordRow> {
    let state: String = row.get(6)?;
    let doc: Option<String> = row.get(2)?;
    let server_doc: Option<String> = row.get(3)?;
    let server_doc = match server_doc.as_deref() {
        Some(SERVER_DOC_IS_DOC) => doc.clone(),
        _ => server_doc,
    };
    Ok(RecordRow {
        collection: row.get(0)?,
        id: row.get(1)?,
        doc,
        server_doc,
        server_version: row.get(4)?,
        deleted: row.get(5)?,
        state: RecordState::parse(&state).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
        })?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        edited_at: row.get(9)?,
        field_times: row.get(10)?,
        space_id: row.get(11)?,
    })
}

/// The row for `collection/id`, deleted or not.
pub fn load(conn: &Connection, collection: &str, id: &str) -> Result<Option<RecordRow>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        columns!(),
        " FROM records WHERE collection = ?1 AND id = ?2"
    ))?;
    Ok(stmt.query_row([collection, id], from_row).optional()?)
}

/// The row for `collection/id` when it exists and is not deleted.
pub fn load_live(conn: &Connection, collection: &str, id: &str) -> Result<Option<RecordRow>> {
    Ok(load(conn, collection, id)?.filter(|r| !r.deleted))
}

/// The INSERT of a whole row, parameters in [`execute_with_row`]'s order.
macro_rules! insert_row {
    () => {
        "INSERT INTO records (collection, id, doc, server_doc, server_version, deleted, state, created_at, updated_at, edited_at, field_times, space_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    };
}
/// Inserts the row unless one with its key exists; returns whether it did. Lets a write to a new
/// record skip looking for a previous state it cannot have.
pub fn insert_new(conn: &Connection, row: &RecordRow) -> Result<bool> {
    let inserted = execute_with_row(
        conn,
        concat!(insert_row!(), " ON CONFLICT (collection, id) DO NOTHING"),
        row,
    )?;
    Ok(inserted == 1)
}

/// Inserts or replaces the row.
pub fn save(conn: &Connection, row: &RecordRow) -> Result<()> {
    execute_with_row(
        conn,
        concat!(
            insert_row!(),
            " ON CONFLICT (collection, id) DO UPDATE SET
               doc = excluded.doc, server_doc = excluded.server_doc,
               server_version = excluded.server_version, deleted = excluded.deleted,
               state = excluded.state, updated_at = excluded.updated_at,
               edited_at = excluded.edited_at, field_times = excluded.field_times"
        ),
        row,
    )?;
    Ok(())
}

fn execute_with_row(conn: &Connection, sql: &'static str, row: &RecordRow) -> Result<usize> {
    let server_doc = match (&row.server_doc, &row.doc) {
        (Some(server), Some(doc)) if server == doc => Some(SERVER_DOC_IS_DOC),
        (server, _) => server.as_deref(),
    };
    Ok(conn.prepare_cached(sql)?.execute(rusqlite::params![
        row.collection,
        row.id,
        row.doc,
        server_doc,
        row.server_version,
        row.deleted,
        row.state.as_str(),
        row.created_at,
        row.updated_at,
        row.edited_at,
        row.field_times,
        row.space_id,
    ])?)
}

/// Sets the edit times of `collection/id`, if it has a row.
pub fn set_times(
    conn: &Connection,
    collection: &str,
    id: &str,
    edited_at: Option<&str>,
    field_times: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE records SET edited_at = ?3, field_times = ?4 WHERE collection = ?1 AND id = ?2",
    )?
    .execute(rusqlite::params![collection, id, edited_at, field_times])?;
    Ok(())
}

/// Forgets the row entirely (a record the server never saw and nothing will be sent for).
pub fn remove(conn: &Connection, collection: &str, id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM records WHERE collection = ?1 AND id = ?2")?
        .execute([collection, id])?;
    Ok(())
}

/// Ids of the live records of `collection` whose `field` holds `parent_id`. Uses the parent-field
/// index the schema module creates, so a cascade never scans.
pub fn live_children(
    conn: &Connection,
    collection: &str,
    field: &str,
    parent_id: &str,
) -> Result<Vec<String>> {
    child_ids(conn, collection, field, parent_id, "AND deleted = 0")
}

/// Ids of the records of `collection` whose document names `parent_id` in `field`: live ones and
/// hidden ones (see [`hidden_children`]); a deleted record keeps no document.
pub fn children(
    conn: &Connection,
    collection: &str,
    field: &str,
    parent_id: &str,
) -> Result<Vec<String>> {
    child_ids(conn, collection, field, parent_id, "")
}

/// Ids of the records of `collection` whose `field` holds `parent_id` and that match `also`.
fn child_ids(
    conn: &Connection,
    collection: &str,
    field: &str,
    parent_id: &str,
    also: &str,
) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT id FROM records WHERE collection = '{collection}' AND {} = ?1 {also} ORDER BY id",
        field_expr(field)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let ids = stmt
        .query_map([parent_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Whether any record is hidden (one probe of the `records_hidden` partial index).
pub fn any_hidden(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM records WHERE deleted = 1 AND doc IS NOT NULL)",
        )?
        .query_row([], |r| r.get(0))?)
}

/// The hidden records of `collection` below `parent_id`: rows the server has live whose parent
/// does not show here. They keep the server's document (so the parent-field index finds them)
/// and `deleted` set, which keeps them out of every read, until the parent shows again.
pub fn hidden_children(
    conn: &Connection,
    collection: &str,
    field: &str,
    parent_id: &str,
) -> Result<Vec<RecordRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM records WHERE collection = '{collection}' AND {} = ?1
         AND deleted = 1 AND doc IS NOT NULL ORDER BY id",
        field_expr(field)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map([parent_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;
    use crate::store::Store;

    fn synced(doc: &str, server_doc: Option<&str>) -> RecordRow {
        RecordRow {
            collection: "plans".into(),
            id: "p1".into(),
            doc: Some(doc.into()),
            server_doc: server_doc.map(str::to_string),
            server_version: 3,
            deleted: false,
            state: RecordState::Synced,
            created_at: 1,
            updated_at: 2,
            edited_at: None,
            field_times: None,
            space_id: None,
        }
    }

    fn stored_server_doc(store: &Store) -> Option<String> {
        store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT server_doc FROM records WHERE collection = 'plans' AND id = 'p1'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    }

    #[test]
    fn a_server_doc_equal_to_the_doc_is_stored_once_and_read_back_whole() {
        let dir = TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("s.db"), None).unwrap();
        let doc = r#"{"name":"a"}"#;
        store.write(|tx| save(tx, &synced(doc, Some(doc)))).unwrap();
        assert_eq!(stored_server_doc(&store).as_deref(), Some(""));
        let row = store.read(|c| load(c, "plans", "p1")).unwrap().unwrap();
        assert_eq!(row.server_doc.as_deref(), Some(doc));
        assert_eq!(row.doc.as_deref(), Some(doc));

        // Sides that differ, or a server side that is missing, keep their own value.
        let theirs = r#"{"name":"b"}"#;
        store
            .write(|tx| save(tx, &synced(doc, Some(theirs))))
            .unwrap();
        assert_eq!(stored_server_doc(&store).as_deref(), Some(theirs));
        store.write(|tx| save(tx, &synced(doc, None))).unwrap();
        assert_eq!(stored_server_doc(&store), None);
        let row = store.read(|c| load(c, "plans", "p1")).unwrap().unwrap();
        assert_eq!(row.server_doc, None);
    }

    #[test]
    fn a_store_of_the_previous_format_reads_its_copied_server_docs_unchanged() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("v9.db");
        let doc = r#"{"name":"a"}"#;
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            crate::store::migrate_to(&tx, 9).unwrap();
            tx.execute(
                "INSERT INTO records (collection, id, doc, server_doc, server_version, state, created_at, updated_at)
                 VALUES ('plans', 'p1', ?1, ?1, 3, 'synced', 1, 2)",
                [doc],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&path, None).unwrap();
        let version: i64 = store
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, 10);
        let row = store.read(|c| load(c, "plans", "p1")).unwrap().unwrap();
        assert_eq!(row.server_doc.as_deref(), Some(doc));
        assert_eq!(stored_server_doc(&store).as_deref(), Some(doc));
    }
}
