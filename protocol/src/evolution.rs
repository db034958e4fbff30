//! Which schema changes a store that already holds data can accept. Growth is fine (new
//! collections, new optional fields, new or dropped indexes, changed `maxLength`); anything that
//! would make stored records unreadable or invalid is refused, naming the place.

use crate::schema::{Schema, SchemaError};

impl Schema {
    /// Checks that `self` can replace `old` for a store that holds data written under `old`.
    pub fn check_evolution_from(&self, old: &Schema) -> Result<(), SchemaError> {
        for (name, old_collection) in &old.collections {
            let path = format!("collections.{name}");
            let Some(new_collection) = self.collections.get(name) else {
                return Err(refuse(path, "was removed; stored records may belong to it"));
            };
            if new_collection.parent != old_collection.parent {
                return Err(refuse(
                    format!("{path}.parent"),
                    "changed; a collection's parent cannot change",
                ));
            }
            for (field, old_field) in &old_collection.fields {
                let field_path = format!("{path}.fields.{field}");
                let Some(new_field) = new_collection.fields.get(field) else {
                    return Err(refuse(
                        field_path,
                        "was removed; stored records may hold it",
                    ));
                };
                if new_field.kind != old_field.kind {
                    return Err(refuse(
                        format!("{field_path}.type"),
                        &format!(
                            "changed from {} to {}; a field's type cannot change",
                            old_field.kind, new_field.kind
                        ),
                    ));
                }
                if new_field.required && !old_field.required {
                    return Err(refuse(
                        field_path,
                        "became required; stored records may lack it",
                    ));
                }
            }
            for (field, new_field) in &new_collection.fields {
                if new_field.required && !old_collection.fields.contains_key(field) {
                    return Err(refuse(
                        format!("{path}.fields.{field}"),
                        "is new and required; stored records lack it (add it as optional)",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn refuse(path: impl Into<String>, message: &str) -> SchemaError {
    SchemaError {
        path: path.into(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::Schema;

    fn schema(collections: &str) -> Schema {
        Schema::from_json(&format!(r#"{{"version":1,"collections":{collections}}}"#)).unwrap()
    }

    fn evolve(old: &str, new: &str) -> Result<(), String> {
        schema(new)
            .check_evolution_from(&schema(old))
            .map_err(|e| e.to_string())
    }

    const BASE: &str =
        r#"{"a":{"fields":{"x":{"type":"string","required":true},"y":{"type":"integer"}}}}"#;

    #[test]
    fn growth_is_accepted() {
        evolve(BASE, BASE).unwrap();
        evolve(
            BASE,
            r#"{"a":{"fields":{"x":{"type":"string","required":true,"maxLength":9},"y":{"type":"integer"},
                              "z":{"type":"boolean"}},"indexes":[["y"]]},
                "b":{"fields":{"q":{"type":"string","required":true}}}}"#,
        )
        .unwrap();
    }

    #[test]
    fn type_change_is_refused() {
        assert_eq!(
            evolve(BASE, r#"{"a":{"fields":{"x":{"type":"string","required":true},"y":{"type":"number"}}}}"#)
                .unwrap_err(),
            "collections.a.fields.y.type: changed from integer to number; a field's type cannot change"
        );
    }

    #[test]
    fn removals_and_new_requirements_are_refused() {
        assert!(evolve(BASE, r#"{"b":{"fields":{}}}"#)
            .unwrap_err()
            .starts_with("collections.a: was removed"));
        assert!(evolve(
            BASE,
            r#"{"a":{"fields":{"x":{"type":"string","required":true}}}}"#
        )
        .unwrap_err()
        .starts_with("collections.a.fields.y: was removed"));
        assert!(evolve(BASE, r#"{"a":{"fields":{"x":{"type":"string","required":true},"y":{"type":"integer","required":true}}}}"#)
            .unwrap_err()
            .starts_with("collections.a.fields.y: became required"));
        assert!(evolve(BASE, r#"{"a":{"fields":{"x":{"type":"string","required":true},"y":{"type":"integer"},"n":{"type":"string","required":true}}}}"#)
            .unwrap_err()
            .starts_with("collections.a.fields.n: is new and required"));
    }
}
