//! `tandem write FILE|-`: a batch of JSON lines, one write each, applied through one `write`
//! call (one transaction: all of them or none).
//!
//! A line is `{"op": "put"|"patch"|"delete", "collection": …, "id": …, "doc": …}`: `put` takes a
//! whole document and an optional id, `patch` an id and a merge patch as `doc`, `delete` an id and
//! no `doc`. Blank lines are skipped. Every line is checked before anything is written (its shape,
//! its document against the schema, and, played in order against the store, that the records it
//! patches, deletes or names as a parent exist at that point); the first bad one fails the
//! command with its line number, and nothing is written. What only the engine finds (a child of
//! a record the batch deleted by cascade, say) fails the batch the same way, with the line where
//! the error names one.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use tandem::{Tandem, TandemError, WriteOp};
use tandem_protocol::Schema;

use crate::commands::Reply;
use crate::error::CliError;
use crate::render;

/// One parsed line and where it was.
struct Line {
    number: usize,
    op: WriteOp,
    /// The line's document (a put's) or patch, parsed.
    doc: Option<Value>,
}

pub fn run(tandem: &Tandem, schema_text: &str, text: &str) -> Result<Reply, CliError> {
    let schema =
        Schema::from_json(schema_text).map_err(|e| CliError::new("schema", e.to_string()))?;
    let lines = parse(&schema, text)?;
    preflight(tandem, &schema, &lines)?;
    let ops: Vec<WriteOp> = lines.iter().map(|l| l.op.clone()).collect();
    let written = tandem.write(ops).map_err(|e| {
        let line = failing_line(&e, &lines);
        let error = CliError::from(e);
        match line {
            Some(number) => error.at_line(number),
            None => error,
        }
    })?;
    let deleted: Vec<Value> = lines
        .iter()
        .filter_map(|l| match &l.op {
            WriteOp::Delete { collection, id } => {
                Some(json!({ "collection": collection, "id": id }))
            }
            _ => None,
        })
        .collect();
    let mut text: Vec<String> = written.iter().map(render::record_line).collect();
    text.extend(deleted.iter().map(|d| {
        format!(
            "deleted {}/{}",
            d["collection"].as_str().unwrap_or_default(),
            d["id"].as_str().unwrap_or_default()
        )
    }));
    if text.is_empty() {
        text.push("nothing to write".into());
    }
    Ok(Reply::new(
        json!({
            "written": written.iter().map(render::record_json).collect::<Vec<_>>(),
            "deleted": deleted,
        }),
        text.join("\n"),
    ))
}

/// Every non-blank line as a write, or the first bad line's error.
fn parse(schema: &Schema, text: &str) -> Result<Vec<Line>, CliError> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let (op, doc) = parse_line(schema, raw).map_err(|e| e.at_line(number))?;
        lines.push(Line { number, op, doc });
    }
    Ok(lines)
}

fn parse_line(schema: &Schema, raw: &str) -> Result<(WriteOp, Option<Value>), CliError> {
    let bad = |message: String| CliError::new("invalid_line", message);
    let value: Value = serde_json::from_str(raw).map_err(|e| bad(format!("not JSON ({e})")))?;
    let Value::Object(mut map) = value else {
        return Err(bad("not a JSON object".into()));
    };
    let op = take_string(&mut map, "op")?.ok_or_else(|| bad("no \"op\"".into()))?;
    let collection =
        take_string(&mut map, "collection")?.ok_or_else(|| bad("no \"collection\"".into()))?;
    let id = take_string(&mut map, "id")?;
    let space = take_string(&mut map, "space")?;
    let doc = map.remove("doc");
    if let Some(key) = map.keys().next() {
        return Err(bad(format!(
            "unknown key \"{key}\" (a line has op, collection, id, doc and, for a put into a space, space)"
        )));
    }
    if space.is_some() && op != "put" {
        return Err(bad(format!(
            "\"{op}\" takes no \"space\" (a record stays in its space; only a put of a new one names it)"
        )));
    }
    let Some(declared) = schema.collection(&collection) else {
        return Err(CliError::new(
            "validation",
            format!("{collection}: no such collection in the schema"),
        ));
    };
    let need_id = |id: Option<String>| id.ok_or_else(|| bad(format!("\"{op}\" needs an \"id\"")));
    let need_object = |doc: Option<Value>| match doc {
        Some(doc @ Value::Object(_)) => Ok(doc),
        Some(_) => Err(bad("\"doc\" must be a JSON object".into())),
        None => Err(bad(format!("\"{op}\" needs a \"doc\""))),
    };
    match op.as_str() {
        "put" => {
            let mut doc = need_object(doc)?;
            let text = doc.to_string();
            // The engine's own checks, here so that a bad document is named by its line.
            if let Value::Object(fields) = &mut doc {
                fields.retain(|_, v| !v.is_null());
            }
            declared
                .validate_document(&collection, &doc)
                .map_err(|e| CliError::new("validation", e.to_string()))?;
            Ok((
                WriteOp::Put {
                    collection,
                    id,
                    json: text,
                    space_id: space,
                },
                Some(doc),
            ))
        }
        "patch" => {
            let id = need_id(id)?;
            let patch = need_object(doc)?;
            Ok((
                WriteOp::Patch {
                    collection,
                    id,
                    patch_json: patch.to_string(),
                },
                Some(patch),
            ))
        }
        "delete" => {
            let id = need_id(id)?;
            if doc.is_some() {
                return Err(bad("\"delete\" takes no \"doc\"".into()));
            }
            Ok((WriteOp::Delete { collection, id }, None))
        }
        other => Err(bad(format!(
            "unknown op \"{other}\" (put, patch or delete)"
        ))),
    }
}

/// Plays the batch against what the store holds, so that a line naming a record that will not
/// be there (a patch or delete of a missing record, a parent that does not exist) is named by its
/// number before anything is written. The engine's own checks stay the authority; this only finds
/// the line.
fn preflight(tandem: &Tandem, schema: &Schema, lines: &[Line]) -> Result<(), CliError> {
    let mut alive: HashMap<(String, String), bool> = HashMap::new();
    let is_alive = |key: (String, String), alive: &HashMap<_, _>| -> Result<bool, CliError> {
        Ok(match alive.get(&key) {
            Some(live) => *live,
            None => tandem.get(key.0, key.1)?.is_some(),
        })
    };
    for line in lines {
        let at = |e: CliError| e.at_line(line.number);
        let (collection, id) = match &line.op {
            WriteOp::Put { collection, id, .. } => (collection, id.clone()),
            WriteOp::Patch { collection, id, .. } | WriteOp::Delete { collection, id } => {
                (collection, Some(id.clone()))
            }
        };
        if let (WriteOp::Patch { .. } | WriteOp::Delete { .. }, Some(id)) = (&line.op, &id) {
            if !is_alive((collection.clone(), id.clone()), &alive)? {
                return Err(at(CliError::new(
                    "not_found",
                    format!("{collection}/{id} does not exist"),
                )));
            }
        }
        let declared = schema.collection(collection);
        let parent = match (declared, &line.doc) {
            (Some(declared), Some(Value::Object(doc))) => declared
                .parent
                .as_ref()
                .zip(declared.parent_id(doc))
                .map(|(p, parent_id)| (p, parent_id.to_string())),
            _ => None,
        };
        if let Some((parent, parent_id)) = parent {
            if !is_alive((parent.collection.clone(), parent_id.clone()), &alive)? {
                return Err(at(CliError::new(
                    "validation",
                    format!(
                        "{collection}.{}: parent {}/{parent_id} does not exist",
                        parent.field, parent.collection
                    ),
                )));
            }
        }
        if let Some(id) = id {
            let live = !matches!(line.op, WriteOp::Delete { .. });
            alive.insert((collection.clone(), id), live);
        }
    }
    Ok(())
}

/// Removes `key` from the line; a string or absent (`null` counts as absent).
fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<Option<String>, CliError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(CliError::new(
            "invalid_line",
            format!("\"{key}\" must be a string"),
        )),
    }
}

/// Names the line an engine error comes from, where the error says which record it is about:
/// the first patch or delete of a missing record, or the only line of a collection whose
/// document the engine refused.
fn failing_line(source: &TandemError, lines: &[Line]) -> Option<usize> {
    let line = match source {
        TandemError::NotFound { collection, id } => lines.iter().find(|l| match &l.op {
            WriteOp::Patch {
                collection: c,
                id: i,
                ..
            }
            | WriteOp::Delete {
                collection: c,
                id: i,
            } => c == collection && i == id,
            WriteOp::Put { .. } => false,
        }),
        TandemError::Validation { collection, .. } => {
            let mut of_collection = lines.iter().filter(|l| match &l.op {
                WriteOp::Put { collection: c, .. } | WriteOp::Patch { collection: c, .. } => {
                    c == collection
                }
                WriteOp::Delete { .. } => false,
            });
            match (of_collection.next(), of_collection.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
        _ => None,
    };
    line.map(|l| l.number)
}
