//! Three-way merge of documents, field by field: a field changed on one side only takes that
//! side's value; a field changed on both sides to different values is a conflict.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub type Doc = Map<String, Value>;

/// Parses a stored document (`None`: deleted) for merging.
pub fn parse_doc(text: Option<&str>) -> Result<Option<Doc>> {
    text.map(parse_object).transpose()
}

/// Parses a stored document, which is always a JSON object.
pub fn parse_object(text: &str) -> Result<Doc> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Corrupt(
            "a stored document is not a JSON object".into(),
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// Both sides' changes combined.
    Clean(Doc),
    /// These fields changed on both sides to different values.
    Conflict(Vec<String>),
}

/// Merges `local` and `server`, both descended from `base`.
pub fn three_way(base: &Doc, local: &Doc, server: &Doc) -> Merge {
    let mut merged = Doc::new();
    let mut conflicts = Vec::new();
    let keys = local.keys().chain(server.keys()).chain(base.keys());
    let mut seen = std::collections::BTreeSet::new();
    for key in keys {
        if !seen.insert(key.as_str()) {
            continue;
        }
        let (b, l, s) = (base.get(key), local.get(key), server.get(key));
        let Some(chosen) = pick(b, l, s) else {
            conflicts.push(key.clone());
            continue;
        };
        if let Some(value) = chosen {
            merged.insert(key.clone(), value.clone());
        }
    }
    if conflicts.is_empty() {
        Merge::Clean(merged)
    } else {
        Merge::Conflict(conflicts)
    }
}

/// Which side a resolution takes for the fields both sides changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Local,
    Server,
}

/// The three-way merge where a field changed on both sides takes `prefer`'s value: every field
/// only one side changed keeps that side's change, whichever side is preferred.
pub fn merge_preferring(base: &Doc, local: &Doc, server: &Doc, prefer: Side) -> Doc {
    let mut merged = Doc::new();
    let mut seen = std::collections::BTreeSet::new();
    for key in local.keys().chain(server.keys()).chain(base.keys()) {
        if !seen.insert(key.as_str()) {
            continue;
        }
        let (b, l, s) = (base.get(key), local.get(key), server.get(key));
        let chosen = match pick(b, l, s) {
            Some(value) => value,
            None if prefer == Side::Local => l,
            None => s,
        };
        if let Some(value) = chosen {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// The value a field takes when at most one side changed it; `None` when both changed it to
/// different values.
fn pick<'a>(
    base: Option<&'a Value>,
    local: Option<&'a Value>,
    server: Option<&'a Value>,
) -> Option<Option<&'a Value>> {
    if local == server || server == base {
        Some(local)
    } else if local == base {
        Some(server)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn different_fields_merge() {
        let base = doc(json!({"name": "a", "notes": "n", "archived": false}));
        let local = doc(json!({"name": "local", "notes": "n", "archived": false}));
        let server = doc(json!({"name": "a", "notes": "server", "archived": true}));
        assert_eq!(
            three_way(&base, &local, &server),
            Merge::Clean(doc(
                json!({"name": "local", "notes": "server", "archived": true})
            ))
        );
    }

    #[test]
    fn same_field_changed_differently_conflicts() {
        let base = doc(json!({"name": "a"}));
        assert_eq!(
            three_way(
                &base,
                &doc(json!({"name": "b"})),
                &doc(json!({"name": "c"}))
            ),
            Merge::Conflict(vec!["name".into()])
        );
    }

    #[test]
    fn same_change_on_both_sides_is_no_conflict() {
        let base = doc(json!({"name": "a"}));
        let both = doc(json!({"name": "b"}));
        assert_eq!(three_way(&base, &both, &both), Merge::Clean(both.clone()));
    }

    #[test]
    fn additions_and_removals_merge() {
        let base = doc(json!({"name": "a", "notes": "n"}));
        let local = doc(json!({"name": "a"})); // removed notes
        let server = doc(json!({"name": "a", "notes": "n", "archived": true})); // added archived
        assert_eq!(
            three_way(&base, &local, &server),
            Merge::Clean(doc(json!({"name": "a", "archived": true})))
        );
        // removed on one side, changed on the other: a conflict
        let server = doc(json!({"name": "a", "notes": "changed"}));
        assert_eq!(
            three_way(&base, &local, &server),
            Merge::Conflict(vec!["notes".into()])
        );
    }

    #[test]
    fn a_preferred_side_settles_only_the_fields_both_changed() {
        let base = doc(json!({"name": "Base", "notes": "n0", "archived": false}));
        let local = doc(json!({"name": "C", "notes": "n0", "archived": true}));
        let server = doc(json!({"name": "A", "notes": "A notes", "archived": false}));
        assert_eq!(
            merge_preferring(&base, &local, &server, Side::Local),
            doc(json!({"name": "C", "notes": "A notes", "archived": true}))
        );
        assert_eq!(
            merge_preferring(&base, &local, &server, Side::Server),
            doc(json!({"name": "A", "notes": "A notes", "archived": true}))
        );
    }
}
