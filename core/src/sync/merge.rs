//! Three-way merge of documents, field by field: a field changed on one side only takes that
//! side's value; a field changed on both sides to different values is a conflict.

use serde_json::{Map, Value};

pub type Doc = Map<String, Value>;

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
        let chosen = if l == s || s == b {
            l
        } else if l == b {
            s
        } else {
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
}
