//! Which schema changes a store that already holds data can accept. Growth is fine (new
//! collections, new optional fields, new or dropped indexes, changed `maxLength`); anything that
//! would make stored records unreadable or invalid is refused, naming the place.
//!
//! A collection's `scope` can never change: its records live in another stream (the user's, a
//! space's, the public one) and stored data cannot follow. New collections may have any scope.
//!
//! References and unique constraints may be added to (or changed on, or dropped from) existing
//! collections: the schema stays usable, but stored data may already break a new rule. Those are
//! listed by [`Schema::added_rules_since`] so the store checks its data at `open` and reports
//! what breaks them (new writes are checked from then on; nothing stored is changed or lost).

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
            if new_collection.scope != old_collection.scope {
                return Err(refuse(
                    format!("{path}.scope"),
                    &format!(
                        "changed from \"{}\" to \"{}\"; stored data cannot follow",
                        old_collection.scope, new_collection.scope
                    ),
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

/// A rule that a newer schema adds to an existing collection, which stored data may break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddedRule {
    /// `collection.field` refers (newly, or to another collection than before) to `target`.
    Reference {
        collection: String,
        field: String,
        target: String,
    },
    /// `collection` gained the unique constraint `fields`.
    Unique {
        collection: String,
        fields: Vec<String>,
    },
}

impl Schema {
    /// The references and unique constraints `self` declares on collections `old` already had,
    /// that `old` did not declare (a reference counts as new when its target collection changed).
    pub fn added_rules_since(&self, old: &Schema) -> Vec<AddedRule> {
        let mut added = Vec::new();
        for (name, collection) in &self.collections {
            let Some(before) = old.collections.get(name) else {
                continue; // a new collection holds no stored records
            };
            for (field, r) in collection.refs() {
                let had = before
                    .fields
                    .get(field)
                    .and_then(|f| f.reference.as_ref())
                    .is_some_and(|b| b.collection == r.collection);
                if !had {
                    added.push(AddedRule::Reference {
                        collection: name.clone(),
                        field: field.to_string(),
                        target: r.collection.clone(),
                    });
                }
            }
            for fields in &collection.unique {
                if !before.unique.contains(fields) {
                    added.push(AddedRule::Unique {
                        collection: name.clone(),
                        fields: fields.clone(),
                    });
                }
            }
        }
        added
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

    #[test]
    fn references_and_unique_constraints_may_be_added_and_are_listed() {
        use super::AddedRule;
        let old = r#"{"t":{"fields":{"n":{"type":"string"}}},
                      "a":{"fields":{"x":{"type":"string","required":true},"y":{"type":"integer"}}}}"#;
        let new = r#"{"t":{"fields":{"n":{"type":"string"}}},
                      "u":{"fields":{}},
                      "a":{"fields":{"x":{"type":"string","required":true,"ref":{"collection":"t","onDelete":"restrict"}},
                                     "y":{"type":"integer"}},
                           "unique":[["x","y"]]},
                      "b":{"fields":{"r":{"type":"string","ref":{"collection":"t","onDelete":"cascade"}}},"unique":[["r"]]}}"#;
        evolve(old, new).unwrap();
        assert_eq!(
            schema(new).added_rules_since(&schema(old)),
            vec![
                AddedRule::Reference {
                    collection: "a".into(),
                    field: "x".into(),
                    target: "t".into()
                },
                AddedRule::Unique {
                    collection: "a".into(),
                    fields: vec!["x".into(), "y".into()]
                },
            ],
            "collection b is new: nothing stored can break its rules"
        );
        // the same rules again add nothing; a changed delete rule adds nothing; a new target does
        assert!(schema(new).added_rules_since(&schema(new)).is_empty());
        let other_rule = new.replace(r#""onDelete":"restrict""#, r#""onDelete":"cascade""#);
        assert!(schema(&other_rule)
            .added_rules_since(&schema(new))
            .is_empty());
        let other_target = new.replace(
            r#""ref":{"collection":"t","onDelete":"restrict"}"#,
            r#""ref":{"collection":"u","onDelete":"restrict"}"#,
        );
        assert_eq!(
            schema(&other_target).added_rules_since(&schema(new)).len(),
            1
        );
        // dropping them is fine too
        let dropped = r#"{"t":{"fields":{"n":{"type":"string"}}},"u":{"fields":{}},
                      "a":{"fields":{"x":{"type":"string","required":true},"y":{"type":"integer"}}},
                      "b":{"fields":{"r":{"type":"string"}}}}"#;
        evolve(new, dropped).unwrap();
        // a ref field's type still cannot change
        assert!(evolve(
            new,
            &new.replace(r#""y":{"type":"integer"}"#, r#""y":{"type":"string"}"#)
        )
        .unwrap_err()
        .starts_with("collections.a.fields.y.type: changed"));
    }

    #[test]
    fn attachments_evolve_like_other_fields() {
        let old = r#"{"a":{"fields":{"s":{"type":"string"},"o":{"type":"object"},
                                   "f":{"type":"attachment"}}}}"#;
        // adding an optional attachment field, or a collection with one, is growth
        evolve(
            old,
            r#"{"a":{"fields":{"s":{"type":"string"},"o":{"type":"object"},
                               "f":{"type":"attachment"},"g":{"type":"attachment"}}},
                "b":{"fields":{"x":{"type":"attachment","required":true}}}}"#,
        )
        .unwrap();
        // a new required one is not (stored records lack it)
        assert!(evolve(
            old,
            r#"{"a":{"fields":{"s":{"type":"string"},"o":{"type":"object"},
                               "f":{"type":"attachment"},"g":{"type":"attachment","required":true}}}}"#,
        )
        .unwrap_err()
        .starts_with("collections.a.fields.g: is new and required"));
        // to or from attachment is a type change, even from object (the values' shape differs)
        assert_eq!(
            evolve(
                old,
                r#"{"a":{"fields":{"s":{"type":"attachment"},"o":{"type":"object"},"f":{"type":"attachment"}}}}"#
            )
            .unwrap_err(),
            "collections.a.fields.s.type: changed from string to attachment; a field's type cannot change"
        );
        assert_eq!(
            evolve(
                old,
                r#"{"a":{"fields":{"s":{"type":"string"},"o":{"type":"attachment"},"f":{"type":"attachment"}}}}"#
            )
            .unwrap_err(),
            "collections.a.fields.o.type: changed from object to attachment; a field's type cannot change"
        );
        assert_eq!(
            evolve(
                old,
                r#"{"a":{"fields":{"s":{"type":"string"},"o":{"type":"object"},"f":{"type":"object"}}}}"#
            )
            .unwrap_err(),
            "collections.a.fields.f.type: changed from attachment to object; a field's type cannot change"
        );
        // the attachments option may be added, changed and dropped
        let eager = r#"{"a":{"fields":{"s":{"type":"string"},"o":{"type":"object"},
                                     "f":{"type":"attachment"}},
                            "attachments":{"download":"eager","eagerMaxBytes":5}}}"#;
        evolve(old, eager).unwrap();
        evolve(
            eager,
            &eager.replace(r#""eagerMaxBytes":5"#, r#""eagerMaxBytes":9"#),
        )
        .unwrap();
        evolve(
            eager,
            &eager.replace(
                r#""download":"eager","eagerMaxBytes":5"#,
                r#""download":"onDemand""#,
            ),
        )
        .unwrap();
        evolve(eager, old).unwrap();
    }

    #[test]
    fn a_scope_change_is_refused_and_new_collections_take_any_scope() {
        let user = r#"{"plans":{"fields":{"name":{"type":"string"}}}}"#;
        let space = r#"{"plans":{"scope":"space","fields":{"name":{"type":"string"}}}}"#;
        assert_eq!(
            evolve(user, space).unwrap_err(),
            r#"collections.plans.scope: changed from "user" to "space"; stored data cannot follow"#
        );
        assert_eq!(
            evolve(space, &space.replace("space", "public")).unwrap_err(),
            r#"collections.plans.scope: changed from "space" to "public"; stored data cannot follow"#
        );
        // declaring the default explicitly is no change
        evolve(
            user,
            &user.replace("{\"fields\"", "{\"scope\":\"user\",\"fields\""),
        )
        .unwrap();
        // a child's inherited scope is its parent's: declaring it changes nothing either
        let family = r#"{"p":{"scope":"space","fields":{}},
                         "c":{"parent":{"collection":"p","field":"pId"},"fields":{"pId":{"type":"string"}}}}"#;
        evolve(
            family,
            &family.replace(r#""c":{"parent""#, r#""c":{"scope":"space","parent""#),
        )
        .unwrap();
        // new collections may have any scope
        evolve(
            user,
            r#"{"plans":{"fields":{"name":{"type":"string"}}},
                "s":{"scope":"space","fields":{}},"pub":{"scope":"public","fields":{}}}"#,
        )
        .unwrap();
    }
}
