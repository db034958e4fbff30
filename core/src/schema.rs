//! The app's schema as the store sees it: checked against the schema the store was last opened
//! with, and turned into real SQLite expression indexes (so indexed queries never scan).

use std::collections::BTreeSet;

use rusqlite::Transaction;
use tandem_protocol::{Collection, Schema, ValidationError, ValidationReason};

use crate::error::{Error, Result};
use crate::store::{meta_get, meta_set};

const SCHEMA_KEY: &str = "app_schema";
/// Every index the engine manages starts with this; others in the file are left alone.
const INDEX_PREFIX: &str = "tdx_";

/// The schema's declaration of `collection`; an unknown one is a validation error.
pub fn declared<'s>(schema: &'s Schema, collection: &str) -> Result<&'s Collection> {
    schema.collection(collection).ok_or_else(|| {
        ValidationError::new(collection, None, ValidationReason::UnknownCollection).into()
    })
}

/// Accepts `schema` for the store inside `tx`: refuses a change stored data cannot follow, records
/// the new schema and brings the SQLite indexes in line with it.
pub fn install(tx: &Transaction<'_>, schema: &Schema) -> Result<()> {
    let stored = meta_get(tx, SCHEMA_KEY)?;
    if let Some(stored) = stored {
        let previous = Schema::from_json(&stored)
            .map_err(|e| Error::Corrupt(format!("stored app schema: {e}")))?;
        if previous == *schema {
            return Ok(());
        }
        schema
            .check_evolution_from(&previous)
            .map_err(Error::SchemaChange)?;
        report_added_rules(tx, schema, &previous)?;
    }
    meta_set(tx, SCHEMA_KEY, &schema.to_json())?;
    sync_indexes(tx, schema)
}

/// References and unique constraints new to collections that already held data are checked
/// against it once, here: what breaks them is kept (nothing stored is lost) and reported in the
/// log; the app reads the list with `schema_violations()`. New writes are checked from now on.
fn report_added_rules(tx: &Transaction<'_>, schema: &Schema, previous: &Schema) -> Result<()> {
    let added = schema.added_rules_since(previous);
    if added.is_empty() {
        return Ok(());
    }
    let broken = crate::refs::violations(tx, &added)?;
    if !broken.is_empty() {
        let collections: BTreeSet<&str> = broken.iter().map(|v| v.collection.as_str()).collect();
        tracing::warn!(
            records = broken.len(),
            collections = ?collections,
            "stored records break references or unique constraints the new schema adds; see schema_violations()"
        );
    }
    Ok(())
}

/// The SQL expression for a document field. Queries must spell it exactly like this for SQLite
/// to match them to the indexes below. Field names are restricted by the protocol to
/// `[A-Za-z_][A-Za-z0-9_]*`, so inlining them is safe.
pub fn field_expr(field: &str) -> String {
    format!("json_extract(doc, '$.{field}')")
}

struct IndexDef {
    name: String,
    sql: String,
    columns: usize,
}

fn sync_indexes(tx: &Transaction<'_>, schema: &Schema) -> Result<()> {
    let wanted: Vec<IndexDef> = schema
        .collections
        .iter()
        .flat_map(|(name, c)| {
            index_columns(c)
                .into_iter()
                .map(move |cols| index_def(name, &cols))
        })
        .collect();
    let wanted_names: BTreeSet<&str> = wanted.iter().map(|d| d.name.as_str()).collect();
    let existing: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND substr(name, 1, 4) = ?1")?
        .query_map([INDEX_PREFIX], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in &existing {
        if !wanted_names.contains(name.as_str()) {
            tx.execute_batch(&format!("DROP INDEX \"{name}\""))?;
        }
    }
    for def in &wanted {
        if !existing.contains(&def.name) {
            tx.execute_batch(&def.sql)?;
        }
    }
    seed_planner_stats(tx, &wanted)
}

/// Without statistics SQLite prefers the primary key for `collection = 'x'` over a field index,
/// which scans the whole collection. Seeding `sqlite_stat1` with the shape we know (many rows per
/// collection, few per indexed value) fixes the choice from the first query. Statistics a real
/// `ANALYZE` wrote are left alone.
fn seed_planner_stats(tx: &Transaction<'_>, indexes: &[IndexDef]) -> Result<()> {
    tx.execute_batch("ANALYZE sqlite_schema")?; // creates sqlite_stat1 when missing
    let mut seeds = vec![(
        "sqlite_autoindex_records_1".to_string(),
        "1000000 100000 1".to_string(),
    )];
    for def in indexes {
        let per_value: Vec<&str> = (0..def.columns)
            .map(|i| if i == 0 { "10" } else { "2" })
            .collect();
        seeds.push((def.name.clone(), format!("100000 {}", per_value.join(" "))));
    }
    let mut insert = tx.prepare(
        "INSERT INTO sqlite_stat1 (tbl, idx, stat) SELECT 'records', ?1, ?2
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE tbl = 'records' AND idx = ?1)",
    )?;
    for (index, stat) in &seeds {
        insert.execute([index, stat])?;
    }
    drop(insert);
    tx.execute_batch("ANALYZE sqlite_schema")?; // reload, so this connection plans with them
    Ok(())
}

/// The declared indexes, plus one on the parent field and one on each `ref` field when no
/// declared index starts with it, and one per unique constraint not covered by an index, so
/// cascading deletes, delete rules, parent checks and unique checks never scan.
fn index_columns(collection: &Collection) -> Vec<Vec<String>> {
    let mut columns: Vec<Vec<String>> = Vec::with_capacity(collection.indexes.len() + 1);
    for index in &collection.indexes {
        // A schema built in code may repeat an index; it is created once.
        if !columns.contains(index) {
            columns.push(index.clone());
        }
    }
    if let Some(parent) = &collection.parent {
        if !columns.iter().any(|c| c.first() == Some(&parent.field)) {
            columns.push(vec![parent.field.clone()]);
        }
    }
    // Unique checks find a key's holder; delete rules find referrers by their ref field. A
    // unique constraint's index that starts with a ref field serves both (every index costs
    // each write of the collection its expressions).
    for unique in &collection.unique {
        if !columns.iter().any(|c| c.starts_with(unique)) {
            columns.push(unique.clone());
        }
    }
    for (field, _) in collection.refs() {
        if !columns
            .iter()
            .any(|c| c.first().map(String::as_str) == Some(field))
        {
            columns.push(vec![field.to_string()]);
        }
    }
    columns
}

fn index_def(collection: &str, fields: &[String]) -> IndexDef {
    let name = format!(
        "{INDEX_PREFIX}{collection}_{:016x}",
        fnv1a(collection, fields)
    );
    let exprs: Vec<String> = fields.iter().map(|f| field_expr(f)).collect();
    let sql = format!(
        "CREATE INDEX \"{name}\" ON records ({}) WHERE collection = '{collection}'",
        exprs.join(", ")
    );
    IndexDef {
        name,
        sql,
        columns: fields.len(),
    }
}

/// A stable name for an index from its collection and fields (names alone could collide once
/// joined, and may be too long).
fn fnv1a(collection: &str, fields: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = std::iter::once(collection).chain(fields.iter().map(String::as_str));
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
