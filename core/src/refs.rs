//! References (`ref` fields) and unique constraints in the local store: the checks a write makes
//! and the delete rules (`cascade`, `setNull`, `restrict`) a delete applies, locally and when a
//! pulled delete removes a referenced record. Every lookup here uses an expression index the
//! schema module installs (one per `ref` field and one per unique constraint), so nothing scans.

use std::collections::{BTreeSet, HashSet};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};
use tandem_protocol::{AddedRule, Collection, OnDelete, Schema, ValidationError, ValidationReason};

use crate::error::{Error, Result};
use crate::outbox;
use crate::records::{self, RecordRow, RecordState};
use crate::schema::field_expr;
use crate::sync::conflict;
use crate::sync::reconcile;

/// Checks that every record `doc` refers to exists here, in the writing record's space `space`
/// (`None`: user or public records; a reference never crosses streams, as on the server). A
/// record may refer to itself. Returns those the server has not seen yet: the write's outbox
/// entry must stay behind theirs.
pub fn check_refs(
    conn: &Connection,
    declared: &Collection,
    collection: &str,
    id: &str,
    doc: &Map<String, Value>,
    space: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let mut unsent = Vec::new();
    for (field, target, target_id) in declared.ref_targets(doc) {
        if target == collection && target_id == id {
            continue;
        }
        let server_version: Option<i64> = conn
            .prepare_cached(
                "SELECT server_version FROM records WHERE collection = ?1 AND id = ?2 AND deleted = 0
                 AND space_id IS ?3",
            )?
            .query_row(rusqlite::params![target, target_id, space], |r| r.get(0))
            .optional()?;
        match server_version {
            None => {
                return Err(ValidationError::new(
                    collection,
                    Some(field),
                    ValidationReason::RefMissing {
                        ref_collection: target.to_string(),
                        ref_id: target_id.to_string(),
                    },
                )
                .into())
            }
            Some(0) => unsent.push((target.to_string(), target_id.to_string())),
            Some(_) => {}
        }
    }
    Ok(unsent)
}

/// Refuses `doc` when another live record of `collection` in the same stream (space `space`)
/// holds one of its unique keys: unique constraints hold per stream, as on the server.
pub fn check_unique(
    conn: &Connection,
    declared: &Collection,
    collection: &str,
    id: &str,
    doc: &Map<String, Value>,
    space: Option<&str>,
) -> Result<()> {
    for fields in &declared.unique {
        if let Some(existing_id) = unique_holder(conn, collection, fields, id, doc, space)? {
            return Err(ValidationError::new(
                collection,
                None,
                ValidationReason::UniqueViolation {
                    fields: fields.clone(),
                    existing_id,
                },
            )
            .into());
        }
    }
    Ok(())
}

/// The live record of `collection` other than `id` whose `fields` hold `doc`'s values, if any
/// (none when `doc` lacks one of them).
pub fn unique_holder(
    conn: &Connection,
    collection: &str,
    fields: &[String],
    id: &str,
    doc: &Map<String, Value>,
    space: Option<&str>,
) -> Result<Option<String>> {
    let mut params: Vec<SqlValue> = Vec::with_capacity(fields.len() + 2);
    params.push(SqlValue::Text(id.to_string()));
    params.push(space.map_or(SqlValue::Null, |s| SqlValue::Text(s.to_string())));
    let mut conditions = String::new();
    for field in fields {
        let value = match doc.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => SqlValue::Text(s.clone()),
            Some(Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
            },
            // The schema allows only scalar fields in a constraint; a document holding another
            // type fails validation before this.
            Some(_) => return Ok(None),
        };
        params.push(value);
        conditions.push_str(&format!(" AND {} = ?{}", field_expr(field), params.len()));
    }
    // The collection is inlined so SQLite matches the partial index the schema module created.
    let sql = format!(
        "SELECT id FROM records WHERE collection = '{collection}'{conditions}
         AND deleted = 0 AND id <> ?1 AND space_id IS ?2 LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(params), |r| r.get(0))
        .optional()?)
}

/// The record `collection/id` and its live descendants, when references into any of them may
/// exist (empty otherwise): what a removal the server decided must apply the rules of.
pub fn going_with(
    conn: &Connection,
    schema: &Schema,
    collection: &str,
    id: &str,
) -> Result<Vec<(String, String)>> {
    if !schema
        .collections
        .values()
        .any(|c| c.refs().next().is_some())
    {
        return Ok(Vec::new());
    }
    let mut all = vec![(collection.to_string(), id.to_string())];
    let mut i = 0;
    while i < all.len() {
        let (c, parent_id) = all[i].clone();
        for (child, field) in schema.children_of(&c) {
            for child_id in records::live_children(conn, child, field, &parent_id)? {
                all.push((child.to_string(), child_id));
            }
        }
        i += 1;
    }
    Ok(all)
}

/// Whether a local delete refuses (`restrict`) or only a pulled one, which cannot be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The app deletes: a live `restrict` referrer refuses the delete.
    Local,
    /// The server deleted the record: referrers follow its rules, `restrict` ones stay (their
    /// own pending change is answered `invalid_reference` by the server, visibly).
    Pulled,
}

/// One delete with its reference rules applied, as one unit.
pub struct Deletion<'a, 'tx> {
    pub tx: &'a Transaction<'tx>,
    pub schema: &'a Schema,
    pub now: i64,
    pub mode: Mode,
    /// Every record this delete removes (so rules between them do not refuse or loop).
    doomed: HashSet<(String, String)>,
    /// Collections whose records the rules changed.
    pub changed: BTreeSet<String>,
}

impl<'a, 'tx> Deletion<'a, 'tx> {
    pub fn new(tx: &'a Transaction<'tx>, schema: &'a Schema, now: i64, mode: Mode) -> Self {
        Self {
            tx,
            schema,
            now,
            mode,
            doomed: HashSet::new(),
            changed: BTreeSet::new(),
        }
    }

    /// Deletes the live record `target` (locally, with outbox entries) and what lies below it,
    /// with the reference rules of everything that goes: first the whole set of records going
    /// is found (descendants, and referrers by `cascade`, transitively), then a `restrict`
    /// referrer outside it refuses the delete, `setNull` referrers outside it lose the field,
    /// and the deletes are queued, referrers before what they refer to, so the server never
    /// sees a delete with live referrers it would have to fix itself.
    pub fn delete(&mut self, target: &RecordRow) -> Result<()> {
        let roots = self.close_over(vec![(target.collection.clone(), target.id.clone())])?;
        self.apply_outside_rules()?;
        for (collection, id) in roots.iter().rev() {
            // An earlier root's cascade may have taken it already.
            let Some(row) = records::load_live(self.tx, collection, id)? else {
                continue;
            };
            reconcile::delete_own(self.tx, self.schema, &row, self.now)?;
            reconcile::cascade_local_delete(self.tx, self.schema, collection, id, self.now)?;
        }
        Ok(())
    }

    /// Applies the rules of references into records the server deleted (`removed`: the record
    /// and its local descendants, already gone here).
    pub fn after_removal(&mut self, removed: &[(String, String)]) -> Result<()> {
        self.doomed.extend(removed.iter().cloned());
        let mut roots = Vec::new();
        for (collection, id) in removed {
            roots.extend(self.cascading_referrers(collection, id)?);
        }
        let roots = self.close_over(roots)?;
        self.apply_outside_rules()?;
        for (collection, id) in roots.iter().rev() {
            let Some(row) = records::load_live(self.tx, collection, id)? else {
                continue;
            };
            reconcile::delete_own(self.tx, self.schema, &row, self.now)?;
            reconcile::cascade_local_delete(self.tx, self.schema, collection, id, self.now)?;
        }
        Ok(())
    }

    /// Adds `roots`, their descendants and (transitively) their `cascade` referrers to the
    /// records going. Returns every root (records deleted on their own), in discovery order.
    fn close_over(&mut self, mut roots: Vec<(String, String)>) -> Result<Vec<(String, String)>> {
        let mut i = 0;
        while i < roots.len() {
            let (collection, id) = roots[i].clone();
            let going = going_with(self.tx, self.schema, &collection, &id)?;
            for key in &going {
                self.doomed.insert(key.clone());
            }
            for (c, k) in &going {
                for referrer in self.cascading_referrers(c, k)? {
                    if !roots.contains(&referrer) {
                        roots.push(referrer);
                    }
                }
            }
            i += 1;
        }
        for (collection, _) in &roots {
            self.changed.extend(with_children(self.schema, collection));
        }
        Ok(roots)
    }

    /// The live `cascade` referrers of `collection/id` not already going.
    fn cascading_referrers(&self, collection: &str, id: &str) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        for referrer in self.schema.referrers_of(collection) {
            if referrer.on_delete != OnDelete::Cascade {
                continue;
            }
            for rid in records::live_children(self.tx, referrer.collection, referrer.field, id)? {
                let key = (referrer.collection.to_string(), rid);
                if !self.doomed.contains(&key) {
                    found.push(key);
                }
            }
        }
        Ok(found)
    }

    /// The `restrict` and `setNull` rules of references into the records going, from records
    /// that stay.
    fn apply_outside_rules(&mut self) -> Result<()> {
        let mut going: Vec<(String, String)> = self.doomed.iter().cloned().collect();
        going.sort(); // deterministic entry order
        let schema = self.schema;
        for (collection, id) in &going {
            for referrer in schema.referrers_of(collection) {
                if referrer.on_delete == OnDelete::Cascade {
                    continue;
                }
                let ids = records::live_children(self.tx, referrer.collection, referrer.field, id)?;
                for referrer_id in ids {
                    let key = (referrer.collection.to_string(), referrer_id);
                    if self.doomed.contains(&key) {
                        continue;
                    }
                    match (referrer.on_delete, self.mode) {
                        (OnDelete::Restrict, Mode::Local) => {
                            return Err(ValidationError::new(
                                referrer.collection,
                                Some(referrer.field),
                                ValidationReason::Restricted {
                                    referrer_collection: key.0,
                                    referrer_id: key.1,
                                },
                            )
                            .into());
                        }
                        (OnDelete::Restrict, Mode::Pulled) => {
                            tracing::warn!(
                                collection = referrer.collection,
                                id = %key.1,
                                "a record deleted on the server is still referred to (restrict); the referrer's change will be rejected"
                            );
                        }
                        _ => {
                            let Some(row) = records::load_live(self.tx, &key.0, &key.1)? else {
                                continue;
                            };
                            set_null(self.tx, schema, &row, referrer.field, self.now)?;
                            self.changed.insert(key.0);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Removes `field` from the live record `row` with an outbox entry of its own (a conflicted
/// record takes it as its new local side).
fn set_null(
    tx: &Transaction<'_>,
    schema: &Schema,
    row: &RecordRow,
    field: &str,
    now: i64,
) -> Result<()> {
    let mut doc: Map<String, Value> = match row.doc.as_deref().map(serde_json::from_str) {
        Some(Ok(Value::Object(map))) => map,
        _ => return Err(Error::Corrupt("live record without a document".into())),
    };
    doc.remove(field);
    let json = Value::Object(doc).to_string();
    if row.state == RecordState::Conflicted {
        if let Some(open) = conflict::get(tx, &row.collection, &row.id)? {
            reconcile::write_in_conflict(tx, schema, row, &open, Some(&json), now)?;
            return Ok(());
        }
    }
    let after = RecordRow {
        doc: Some(json.clone()),
        state: RecordState::Pending,
        updated_at: now,
        ..row.clone()
    };
    records::save(tx, &after)?;
    outbox::record_upsert(tx, &row.collection, &row.id, Some(row), &json, None, now)
}

/// `collection` and its child collections (observers to tell after a cascade).
fn with_children(schema: &Schema, collection: &str) -> Vec<String> {
    let mut out = vec![collection.to_string()];
    let mut i = 0;
    while i < out.len() {
        let next: Vec<String> = schema
            .children_of(&out[i])
            .map(|(c, _)| c.to_string())
            .filter(|c| !out.contains(c))
            .collect();
        out.extend(next);
        i += 1;
    }
    out
}

/// Stored data that breaks a reference or unique constraint: possible only when the schema
/// added the rule to a collection that already held records (see `Schema::added_rules_since`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    pub collection: String,
    pub id: String,
    pub kind: ViolationKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationKind {
    /// `field` names `target_collection/target_id`, which does not exist here.
    DanglingReference {
        field: String,
        target_collection: String,
        target_id: String,
    },
    /// The record's values of `fields` are those of `other_id` (the first holder by id).
    DuplicateKey {
        fields: Vec<String>,
        other_id: String,
    },
}

/// Every stored record that breaks `rules`, in rule order then id order. A one-off scan per rule
/// (it runs at `open` after a schema change, and when the app asks), never on a write.
pub fn violations(conn: &Connection, rules: &[AddedRule]) -> Result<Vec<RuleViolation>> {
    let mut found = Vec::new();
    for rule in rules {
        match rule {
            AddedRule::Reference {
                collection,
                field,
                target,
            } => {
                let expr = |alias: &str| format!("json_extract({alias}.doc, '$.{field}')");
                let sql = format!(
                    "SELECT r.id, {v} FROM records r
                     WHERE r.collection = '{collection}' AND r.deleted = 0 AND {v} IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM records t WHERE t.collection = '{target}'
                                       AND t.id = {v} AND t.deleted = 0)
                     ORDER BY r.id",
                    v = expr("r")
                );
                let mut stmt = conn.prepare(&sql)?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, rusqlite::types::Value>(1)?,
                    ))
                })?;
                for row in rows {
                    let (id, value) = row?;
                    let rusqlite::types::Value::Text(target_id) = value else {
                        continue; // not a string: the document would not validate anyway
                    };
                    found.push(RuleViolation {
                        collection: collection.clone(),
                        id,
                        kind: ViolationKind::DanglingReference {
                            field: field.clone(),
                            target_collection: target.clone(),
                            target_id,
                        },
                    });
                }
            }
            AddedRule::Unique { collection, fields } => {
                let same: Vec<String> = fields
                    .iter()
                    .map(|f| format!("json_extract(o.doc, '$.{f}') = json_extract(r.doc, '$.{f}')"))
                    .collect();
                let sql = format!(
                    "SELECT r.id, min(o.id) FROM records r JOIN records o
                       ON o.collection = '{collection}' AND o.deleted = 0 AND o.id < r.id
                      AND {}
                     WHERE r.collection = '{collection}' AND r.deleted = 0
                     GROUP BY r.id ORDER BY r.id",
                    same.join(" AND ")
                );
                let mut stmt = conn.prepare(&sql)?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                for row in rows {
                    let (id, other_id) = row?;
                    found.push(RuleViolation {
                        collection: collection.clone(),
                        id,
                        kind: ViolationKind::DuplicateKey {
                            fields: fields.clone(),
                            other_id,
                        },
                    });
                }
            }
        }
    }
    Ok(found)
}

/// Every reference and unique constraint `schema` declares, as rules to check stored data by.
pub fn all_rules(schema: &Schema) -> Vec<AddedRule> {
    let mut rules = Vec::new();
    for (name, collection) in &schema.collections {
        for (field, r) in collection.refs() {
            rules.push(AddedRule::Reference {
                collection: name.clone(),
                field: field.to_string(),
                target: r.collection.clone(),
            });
        }
        for fields in &collection.unique {
            rules.push(AddedRule::Unique {
                collection: name.clone(),
                fields: fields.clone(),
            });
        }
    }
    rules
}
