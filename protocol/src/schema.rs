//! The schema document: which collections exist, their fields, parents and indexes.
//!
//! Parsing walks the JSON by hand rather than through serde's derive so that every error names
//! its place (`collections.plans.fields.name.type: unknown type "strin"`), which is what a
//! developer editing the file needs.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ids::{is_valid_collection_name, is_valid_field_name};

/// A schema document that parsed and passed every structural check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schema {
    pub version: u64,
    pub collections: BTreeMap<String, Collection>,
}

/// One collection: its declared fields, optional parent and indexes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collection {
    pub fields: BTreeMap<String, Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<Vec<String>>,
    /// Unique constraints: each a list of declared scalar fields whose values together identify
    /// at most one live record. A record missing any of the fields (or holding null) is exempt.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<Vec<String>>,
    /// Whose records these are: the user's own (the default), a space's, or everyone's. Resolved
    /// at parse time: a child without a `scope` of its own has its parent's.
    #[serde(skip_serializing_if = "Scope::is_user")]
    pub scope: Scope,
    /// `attachments`: how devices fetch the collection's attachments. Declared only on a
    /// collection with an attachment field; `None` means the default (on demand). The server
    /// ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<AttachmentOptions>,
}

/// A collection's `attachments` option: `{"download": "onDemand" | "eager", "eagerMaxBytes": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentOptions {
    pub download: DownloadPolicy,
    /// `eager` only: the largest attachment a device prefetches after a pull (bytes); larger
    /// ones are fetched on demand. 0 with `onDemand` (nothing is prefetched).
    #[serde(skip_serializing_if = "is_zero")]
    pub eager_max_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl AttachmentOptions {
    /// `eagerMaxBytes` when `eager` does not name it: 10 MB.
    pub const DEFAULT_EAGER_MAX_BYTES: u64 = 10_000_000;

    /// Fetch on demand only (the default).
    pub const ON_DEMAND: Self = Self {
        download: DownloadPolicy::OnDemand,
        eager_max_bytes: 0,
    };

    /// Whether a device prefetches an attachment of `size` bytes after pulling its record.
    pub fn prefetches(&self, size: u64) -> bool {
        self.download == DownloadPolicy::Eager && size <= self.eager_max_bytes
    }
}

impl Default for AttachmentOptions {
    fn default() -> Self {
        Self::ON_DEMAND
    }
}

/// When a device downloads a collection's attachments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub enum DownloadPolicy {
    /// When the app asks for the file (the default).
    #[default]
    #[serde(rename = "onDemand")]
    OnDemand,
    /// After every pull that brings a record naming it, up to `eagerMaxBytes` per file.
    #[serde(rename = "eager")]
    Eager,
}

impl DownloadPolicy {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "onDemand" => Self::OnDemand,
            "eager" => Self::Eager,
            _ => return None,
        })
    }

    /// The name used in the schema document.
    pub fn name(self) -> &'static str {
        match self {
            Self::OnDemand => "onDemand",
            Self::Eager => "eager",
        }
    }
}

/// Which stream a collection's records live in (see `docs/protocol.md`, "Spaces and public
/// collections"). Fixed for the life of the collection: evolution refuses a change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Each user's own records (the stream `user`).
    #[default]
    User,
    /// Records of one space, shared by its members; every mutation names its `space`.
    Space,
    /// One set of records every signed-in user reads; written only through the admin API.
    Public,
}

impl Scope {
    /// Every scope, in declaration order.
    pub const ALL: [Scope; 3] = [Scope::User, Scope::Space, Scope::Public];

    /// The scope named `name` in a schema document (`user`, `space`, `public`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "user" => Self::User,
            "space" => Self::Space,
            "public" => Self::Public,
            _ => return None,
        })
    }

    /// The name used in the schema document.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Space => "space",
            Self::Public => "public",
        }
    }

    /// Whether this is the default scope, `user`.
    pub fn is_user(&self) -> bool {
        *self == Self::User
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A declared field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(rename = "maxLength", skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// `ref`: the field holds the id of a record of another (or the same) collection.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<FieldRef>,
}

/// A field's `ref`: the collection its value names a record of, and what a delete of that
/// record does to the referrer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldRef {
    pub collection: String,
    #[serde(rename = "onDelete")]
    pub on_delete: OnDelete,
}

/// What deleting a referenced record does to the records that reference it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum OnDelete {
    /// The referrers are deleted too (and what they take with them).
    #[serde(rename = "cascade")]
    Cascade,
    /// The referring field is removed from the referrers (each gets a new version).
    #[serde(rename = "setNull")]
    SetNull,
    /// The delete is refused while a live referrer exists.
    #[serde(rename = "restrict")]
    Restrict,
}

impl OnDelete {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "cascade" => Self::Cascade,
            "setNull" => Self::SetNull,
            "restrict" => Self::Restrict,
            _ => return None,
        })
    }

    /// The name used in the schema document.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cascade => "cascade",
            Self::SetNull => "setNull",
            Self::Restrict => "restrict",
        }
    }
}

/// One reference into a collection: the referring collection, its field and the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Referrer<'a> {
    pub collection: &'a str,
    pub field: &'a str,
    pub on_delete: OnDelete,
}

/// The JSON type a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
    /// A reference to a blob stored beside the documents: an object `{hash, size, contentType,
    /// name?}` ([`crate::AttachmentRef`]).
    Attachment,
}

/// `parent`: the collection a record belongs to and the string field holding the parent's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentRef {
    pub collection: String,
    pub field: String,
}

/// A schema document that cannot be used, with the place (a dotted path) that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for SchemaError {}

fn err(path: impl Into<String>, message: impl Into<String>) -> SchemaError {
    SchemaError {
        path: path.into(),
        message: message.into(),
    }
}

impl FieldType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "array" => Self::Array,
            "object" => Self::Object,
            "attachment" => Self::Attachment,
            _ => return None,
        })
    }

    /// The name used in the schema document.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Object => "object",
            Self::Attachment => "attachment",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Schema {
    /// Parses and checks a schema document.
    pub fn from_json(text: &str) -> Result<Self, SchemaError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| err("", format!("not valid JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Checks an already parsed schema document.
    pub fn from_value(value: &Value) -> Result<Self, SchemaError> {
        let root = as_object(value, "")?;
        reject_unknown_keys(root, "", &["version", "collections"])?;
        let version = match root.get("version") {
            None => return Err(err("version", "missing")),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| err("version", "must be a non-negative integer"))?,
        };
        let collections_value = root
            .get("collections")
            .ok_or_else(|| err("collections", "missing"))?;
        let mut collections = BTreeMap::new();
        let mut declared_scopes = BTreeMap::new();
        for (name, value) in as_object(collections_value, "collections")? {
            let path = format!("collections.{name}");
            if !is_valid_collection_name(name) {
                return Err(err(
                    path,
                    "collection names must match ^[a-z][a-z0-9_]{0,62}$",
                ));
            }
            let (collection, scope) = parse_collection(value, &path)?;
            if let Some(scope) = scope {
                declared_scopes.insert(name.clone(), scope);
            }
            collections.insert(name.clone(), collection);
        }
        let mut schema = Schema {
            version,
            collections,
        };
        schema.check_parents()?;
        schema.resolve_scopes(&declared_scopes)?;
        schema.check_refs()?;
        Ok(schema)
    }

    /// The scope of collection `name`; `None` when it is not declared.
    pub fn scope_of(&self, name: &str) -> Option<Scope> {
        self.collections.get(name).map(|c| c.scope)
    }

    /// Gives every collection its scope: the declared one, else its parent's (root collections
    /// without one are `user`). A child declaring a scope other than its parent's is refused.
    /// Runs after [`Schema::check_parents`], so every parent exists and no chain cycles.
    fn resolve_scopes(&mut self, declared: &BTreeMap<String, Scope>) -> Result<(), SchemaError> {
        let mut resolved: BTreeMap<String, Scope> = BTreeMap::new();
        for name in self.collections.keys() {
            self.resolve_scope(name, declared, &mut resolved)?;
        }
        for (name, scope) in resolved {
            if let Some(c) = self.collections.get_mut(&name) {
                c.scope = scope;
            }
        }
        Ok(())
    }

    fn resolve_scope(
        &self,
        name: &str,
        declared: &BTreeMap<String, Scope>,
        resolved: &mut BTreeMap<String, Scope>,
    ) -> Result<Scope, SchemaError> {
        if let Some(&scope) = resolved.get(name) {
            return Ok(scope);
        }
        let own = declared.get(name).copied();
        let scope = match &self.collections[name].parent {
            None => own.unwrap_or_default(),
            Some(parent) => {
                let inherited = self.resolve_scope(&parent.collection, declared, resolved)?;
                match own {
                    Some(own) if own != inherited => {
                        return Err(err(
                            format!("collections.{name}.scope"),
                            format!(
                                "\"{own}\" differs from its parent {} (\"{inherited}\"); a child has its parent's scope",
                                parent.collection
                            ),
                        ))
                    }
                    _ => inherited,
                }
            }
        };
        resolved.insert(name.to_string(), scope);
        Ok(scope)
    }

    /// The canonical JSON form (sorted keys), used to store and compare schemas.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a schema always serializes")
    }

    /// The collection called `name`, if declared.
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }

    /// The collections whose parent is `name`, with their parent field, in name order.
    pub fn children_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.collections
            .iter()
            .filter_map(move |(child, c)| match &c.parent {
                Some(p) if p.collection == name => Some((child.as_str(), p.field.as_str())),
                _ => None,
            })
    }

    /// Every `ref` field naming `name`, in (collection, field) order.
    pub fn referrers_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Referrer<'a>> {
        self.collections.iter().flat_map(move |(collection, c)| {
            c.fields
                .iter()
                .filter_map(move |(field, f)| match &f.reference {
                    Some(r) if r.collection == name => Some(Referrer {
                        collection,
                        field,
                        on_delete: r.on_delete,
                    }),
                    _ => None,
                })
        })
    }

    /// Whether any collection declares a `ref` or a unique constraint.
    pub fn has_refs_or_uniques(&self) -> bool {
        self.collections
            .values()
            .any(|c| !c.unique.is_empty() || c.refs().next().is_some())
    }

    fn check_refs(&self) -> Result<(), SchemaError> {
        for (name, collection) in &self.collections {
            for (field, r) in collection.refs() {
                let path = format!("collections.{name}.fields.{field}.ref");
                if !self.collections.contains_key(&r.collection) {
                    return Err(err(
                        format!("{path}.collection"),
                        format!("collection \"{}\" is not declared", r.collection),
                    ));
                }
                if collection.parent.as_ref().is_some_and(|p| p.field == field) {
                    return Err(err(
                        path,
                        "is the collection's parent field, which already cascades",
                    ));
                }
                let target = self.collections[&r.collection].scope;
                if target != collection.scope {
                    return Err(err(
                        path,
                        format!(
                            "{} is \"{target}\"-scoped, {name} is \"{}\"-scoped; a reference stays within one scope",
                            r.collection, collection.scope
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_parents(&self) -> Result<(), SchemaError> {
        for (name, collection) in &self.collections {
            let Some(parent) = &collection.parent else {
                continue;
            };
            let path = format!("collections.{name}.parent");
            if !self.collections.contains_key(&parent.collection) {
                return Err(err(
                    format!("{path}.collection"),
                    format!("collection \"{}\" is not declared", parent.collection),
                ));
            }
            match collection.fields.get(&parent.field) {
                None => {
                    return Err(err(
                        format!("{path}.field"),
                        format!("field \"{}\" is not declared in {name}", parent.field),
                    ))
                }
                Some(f) if f.kind != FieldType::String => {
                    return Err(err(
                        format!("{path}.field"),
                        format!(
                            "field \"{}\" must be of type string, not {}",
                            parent.field, f.kind
                        ),
                    ))
                }
                Some(_) => {}
            }
            self.check_no_cycle_from(name, &path)?;
        }
        Ok(())
    }

    fn check_no_cycle_from(&self, start: &str, path: &str) -> Result<(), SchemaError> {
        let mut chain = vec![start.to_string()];
        let mut current = start;
        while let Some(parent) = self
            .collections
            .get(current)
            .and_then(|c| c.parent.as_ref())
        {
            chain.push(parent.collection.clone());
            if parent.collection == start {
                return Err(err(path, format!("parent cycle: {}", chain.join(" -> "))));
            }
            if chain.len() > self.collections.len() + 1 {
                break; // a cycle that does not pass through `start`; reported from its own members
            }
            current = &parent.collection;
        }
        Ok(())
    }
}

/// Parses one collection; the second value is the `scope` it declares, if any (resolved against
/// its parent later, by [`Schema::resolve_scopes`]).
fn parse_collection(value: &Value, path: &str) -> Result<(Collection, Option<Scope>), SchemaError> {
    let obj = as_object(value, path)?;
    reject_unknown_keys(
        obj,
        path,
        &[
            "fields",
            "parent",
            "indexes",
            "unique",
            "scope",
            "attachments",
        ],
    )?;
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Scope::parse(s).ok_or_else(|| {
            err(
                format!("{path}.scope"),
                format!("unknown scope \"{s}\" (expected user, space or public)"),
            )
        })?),
        Some(_) => return Err(err(format!("{path}.scope"), "must be a string")),
    };
    let fields_path = format!("{path}.fields");
    let fields_value = obj
        .get("fields")
        .ok_or_else(|| err(&fields_path, "missing"))?;
    let mut fields = BTreeMap::new();
    for (name, value) in as_object(fields_value, &fields_path)? {
        let field_path = format!("{fields_path}.{name}");
        if !is_valid_field_name(name) {
            return Err(err(
                field_path,
                "field names must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$",
            ));
        }
        fields.insert(name.clone(), parse_field(value, &field_path)?);
    }
    let parent = match obj.get("parent") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_parent(v, &format!("{path}.parent"))?),
    };
    let indexes = match obj.get("indexes") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => parse_indexes(v, &format!("{path}.indexes"), &fields)?,
    };
    let unique = match obj.get("unique") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => parse_unique(v, &format!("{path}.unique"), &fields)?,
    };
    let attachments = match obj.get("attachments") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let options_path = format!("{path}.attachments");
            if !fields.values().any(|f| f.kind == FieldType::Attachment) {
                return Err(err(
                    options_path,
                    "applies to collections with an attachment field only",
                ));
            }
            Some(parse_attachment_options(v, &options_path)?)
        }
    };
    Ok((
        Collection {
            fields,
            parent,
            indexes,
            unique,
            scope: Scope::User,
            attachments,
        },
        scope,
    ))
}

fn parse_unique(
    value: &Value,
    path: &str,
    fields: &BTreeMap<String, Field>,
) -> Result<Vec<Vec<String>>, SchemaError> {
    let constraints = parse_indexes(value, path, fields)?;
    for (i, columns) in constraints.iter().enumerate() {
        for (j, name) in columns.iter().enumerate() {
            let kind = fields[name].kind;
            if matches!(kind, FieldType::Array | FieldType::Object) {
                return Err(err(
                    format!("{path}[{i}][{j}]"),
                    format!("field \"{name}\" is of type {kind}; unique fields must be scalars"),
                ));
            }
        }
        if columns
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            != columns.len()
        {
            return Err(err(format!("{path}[{i}]"), "names a field twice"));
        }
    }
    Ok(constraints)
}

fn parse_field(value: &Value, path: &str) -> Result<Field, SchemaError> {
    let obj = as_object(value, path)?;
    reject_unknown_keys(obj, path, &["type", "required", "maxLength", "ref"])?;
    let type_path = format!("{path}.type");
    let kind = match obj.get("type") {
        None => return Err(err(type_path, "missing")),
        Some(Value::String(s)) => FieldType::parse(s).ok_or_else(|| {
            err(
                &type_path,
                format!(
                    "unknown type \"{s}\" (expected string, integer, number, boolean, array, object or attachment)"
                ),
            )
        })?,
        Some(_) => return Err(err(type_path, "must be a string")),
    };
    let required = match obj.get("required") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(err(format!("{path}.required"), "must be true or false")),
    };
    let max_length = match obj.get("maxLength") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let n = v.as_u64().ok_or_else(|| {
                err(
                    format!("{path}.maxLength"),
                    "must be a non-negative integer",
                )
            })?;
            if kind != FieldType::String {
                return Err(err(
                    format!("{path}.maxLength"),
                    "applies to string fields only",
                ));
            }
            Some(n)
        }
    };
    let reference = match obj.get("ref") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let ref_path = format!("{path}.ref");
            if kind != FieldType::String {
                return Err(err(ref_path, "applies to string fields only"));
            }
            let r = parse_ref(v, &ref_path)?;
            if r.on_delete == OnDelete::SetNull && required {
                return Err(err(
                    format!("{ref_path}.onDelete"),
                    "setNull needs a field that is not required",
                ));
            }
            Some(r)
        }
    };
    Ok(Field {
        kind,
        required,
        max_length,
        reference,
    })
}

fn parse_attachment_options(value: &Value, path: &str) -> Result<AttachmentOptions, SchemaError> {
    let obj = as_object(value, path)?;
    reject_unknown_keys(obj, path, &["download", "eagerMaxBytes"])?;
    let download = match obj.get("download") {
        None | Some(Value::Null) => DownloadPolicy::OnDemand,
        Some(Value::String(s)) => DownloadPolicy::parse(s).ok_or_else(|| {
            err(
                format!("{path}.download"),
                format!("unknown policy \"{s}\" (expected onDemand or eager)"),
            )
        })?,
        Some(_) => return Err(err(format!("{path}.download"), "must be a string")),
    };
    let max_path = format!("{path}.eagerMaxBytes");
    let eager_max_bytes = match (download, obj.get("eagerMaxBytes")) {
        (DownloadPolicy::OnDemand, None | Some(Value::Null)) => 0,
        (DownloadPolicy::OnDemand, Some(_)) => {
            return Err(err(max_path, "applies to \"download\": \"eager\" only"))
        }
        (DownloadPolicy::Eager, None | Some(Value::Null)) => {
            AttachmentOptions::DEFAULT_EAGER_MAX_BYTES
        }
        (DownloadPolicy::Eager, Some(v)) => match v.as_u64() {
            Some(n) if n > 0 => n,
            _ => return Err(err(max_path, "must be a positive integer")),
        },
    };
    Ok(AttachmentOptions {
        download,
        eager_max_bytes,
    })
}

fn parse_ref(value: &Value, path: &str) -> Result<FieldRef, SchemaError> {
    let obj = as_object(value, path)?;
    reject_unknown_keys(obj, path, &["collection", "onDelete"])?;
    let collection = match obj.get("collection") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err(format!("{path}.collection"), "must be a string")),
        None => return Err(err(format!("{path}.collection"), "missing")),
    };
    let on_delete = match obj.get("onDelete") {
        Some(Value::String(s)) => OnDelete::parse(s).ok_or_else(|| {
            err(
                format!("{path}.onDelete"),
                format!("unknown rule \"{s}\" (expected cascade, setNull or restrict)"),
            )
        })?,
        Some(_) => return Err(err(format!("{path}.onDelete"), "must be a string")),
        None => return Err(err(format!("{path}.onDelete"), "missing")),
    };
    Ok(FieldRef {
        collection,
        on_delete,
    })
}

fn parse_parent(value: &Value, path: &str) -> Result<ParentRef, SchemaError> {
    let obj = as_object(value, path)?;
    reject_unknown_keys(obj, path, &["collection", "field"])?;
    let get = |key: &str| -> Result<String, SchemaError> {
        match obj.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(err(format!("{path}.{key}"), "must be a string")),
            None => Err(err(format!("{path}.{key}"), "missing")),
        }
    };
    Ok(ParentRef {
        collection: get("collection")?,
        field: get("field")?,
    })
}

fn parse_indexes(
    value: &Value,
    path: &str,
    fields: &BTreeMap<String, Field>,
) -> Result<Vec<Vec<String>>, SchemaError> {
    let Value::Array(list) = value else {
        return Err(err(path, "must be an array of arrays of field names"));
    };
    let mut indexes = Vec::with_capacity(list.len());
    for (i, index) in list.iter().enumerate() {
        let index_path = format!("{path}[{i}]");
        let Value::Array(names) = index else {
            return Err(err(index_path, "must be an array of field names"));
        };
        if names.is_empty() {
            return Err(err(index_path, "must name at least one field"));
        }
        let mut columns = Vec::with_capacity(names.len());
        for (j, name) in names.iter().enumerate() {
            let Value::String(name) = name else {
                return Err(err(format!("{index_path}[{j}]"), "must be a field name"));
            };
            match fields.get(name) {
                None => {
                    return Err(err(
                        format!("{index_path}[{j}]"),
                        format!("field \"{name}\" is not declared"),
                    ))
                }
                Some(f) if f.kind == FieldType::Attachment => {
                    return Err(err(
                        format!("{index_path}[{j}]"),
                        format!(
                            "field \"{name}\" is of type attachment; attachments cannot be indexed or unique"
                        ),
                    ))
                }
                Some(_) => {}
            }
            columns.push(name.clone());
        }
        if indexes.contains(&columns) {
            return Err(err(index_path, "repeats an index declared before it"));
        }
        indexes.push(columns);
    }
    Ok(indexes)
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, SchemaError> {
    value
        .as_object()
        .ok_or_else(|| err(path, "must be a JSON object"))
}

fn reject_unknown_keys(
    obj: &Map<String, Value>,
    path: &str,
    known: &[&str],
) -> Result<(), SchemaError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => {
            let place = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            Err(err(
                place,
                format!("unknown key (expected one of: {})", known.join(", ")),
            ))
        }
    }
}

/// The sample schema of the issue tracker's examples, for tests across the crate.
#[cfg(test)]
pub(crate) fn tests_sample() -> &'static str {
    tests::SAMPLE
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"{"version": 1,
     "collections": {
       "plans":     {"fields": {"name": {"type": "string", "required": true, "maxLength": 200},
                                "notes": {"type": "string"}, "archived": {"type": "boolean"}}},
       "plan_days": {"parent": {"collection": "plans", "field": "planId"},
                     "fields": {"planId": {"type": "string", "required": true},
                                "dayIndex": {"type": "integer", "required": true},
                                "exerciseIds": {"type": "array"}},
                     "indexes": [["planId", "dayIndex"]]}}}"#;

    fn error_of(text: &str) -> String {
        Schema::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn refuses_a_duplicate_index() {
        let e = error_of(
            r#"{"version":1,"collections":{"a":{"fields":{"x":{"type":"string"}},"indexes":[["x"],["x"]]}}}"#,
        );
        assert_eq!(
            e,
            "collections.a.indexes[1]: repeats an index declared before it"
        );
    }

    #[test]
    fn parses_the_sample() {
        let s = Schema::from_json(SAMPLE).unwrap();
        assert_eq!(s.version, 1);
        let days = s.collection("plan_days").unwrap();
        assert_eq!(days.parent.as_ref().unwrap().collection, "plans");
        assert_eq!(
            days.indexes,
            vec![vec!["planId".to_string(), "dayIndex".to_string()]]
        );
        assert_eq!(
            s.collection("plans").unwrap().fields["name"].max_length,
            Some(200)
        );
        assert_eq!(
            s.children_of("plans").collect::<Vec<_>>(),
            vec![("plan_days", "planId")]
        );
        // canonical JSON round-trips
        assert_eq!(Schema::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn unknown_type_names_the_place() {
        let e = error_of(r#"{"version":1,"collections":{"a":{"fields":{"x":{"type":"strin"}}}}}"#);
        assert!(
            e.starts_with("collections.a.fields.x.type: unknown type \"strin\""),
            "{e}"
        );
    }

    #[test]
    fn bad_collection_name() {
        let e = error_of(r#"{"version":1,"collections":{"Bad-Name":{"fields":{}}}}"#);
        assert!(
            e.starts_with("collections.Bad-Name: collection names must match"),
            "{e}"
        );
    }

    #[test]
    fn bad_field_name() {
        let e =
            error_of(r#"{"version":1,"collections":{"a":{"fields":{"x.y":{"type":"string"}}}}}"#);
        assert!(
            e.starts_with("collections.a.fields.x.y: field names"),
            "{e}"
        );
    }

    #[test]
    fn parent_field_missing() {
        let e = error_of(
            r#"{"version":1,"collections":{"a":{"fields":{}},
                "b":{"parent":{"collection":"a","field":"aId"},"fields":{}}}}"#,
        );
        assert_eq!(
            e,
            "collections.b.parent.field: field \"aId\" is not declared in b"
        );
    }

    #[test]
    fn parent_field_not_string() {
        let e = error_of(
            r#"{"version":1,"collections":{"a":{"fields":{}},
                "b":{"parent":{"collection":"a","field":"aId"},"fields":{"aId":{"type":"integer"}}}}}"#,
        );
        assert_eq!(
            e,
            "collections.b.parent.field: field \"aId\" must be of type string, not integer"
        );
    }

    #[test]
    fn parent_collection_missing() {
        let e = error_of(
            r#"{"version":1,"collections":{"b":{"parent":{"collection":"zz","field":"x"},"fields":{"x":{"type":"string"}}}}}"#,
        );
        assert_eq!(
            e,
            "collections.b.parent.collection: collection \"zz\" is not declared"
        );
    }

    #[test]
    fn parent_cycle() {
        let e = error_of(
            r#"{"version":1,"collections":{
                "a":{"parent":{"collection":"b","field":"b"},"fields":{"b":{"type":"string"}}},
                "b":{"parent":{"collection":"a","field":"a"},"fields":{"a":{"type":"string"}}}}}"#,
        );
        assert_eq!(e, "collections.a.parent: parent cycle: a -> b -> a");
        let e = error_of(
            r#"{"version":1,"collections":{"a":{"parent":{"collection":"a","field":"p"},"fields":{"p":{"type":"string"}}}}}"#,
        );
        assert_eq!(e, "collections.a.parent: parent cycle: a -> a");
    }

    #[test]
    fn index_on_undeclared_field() {
        let e = error_of(r#"{"version":1,"collections":{"a":{"fields":{},"indexes":[["nope"]]}}}"#);
        assert_eq!(
            e,
            "collections.a.indexes[0][0]: field \"nope\" is not declared"
        );
    }

    #[test]
    fn max_length_only_on_strings() {
        let e = error_of(
            r#"{"version":1,"collections":{"a":{"fields":{"n":{"type":"integer","maxLength":3}}}}}"#,
        );
        assert_eq!(
            e,
            "collections.a.fields.n.maxLength: applies to string fields only"
        );
    }

    const REFS: &str = r#"{"version":1,"collections":{
        "projects": {"fields": {"name": {"type": "string"}}},
        "day_types": {"fields": {"name": {"type": "string"}}},
        "plan_days": {"fields": {"dayTypeId": {"type": "string", "ref": {"collection": "day_types", "onDelete": "setNull"}}}},
        "links": {"fields": {"a": {"type": "string", "required": true, "ref": {"collection": "projects", "onDelete": "cascade"}},
                             "b": {"type": "string", "required": true, "ref": {"collection": "day_types", "onDelete": "cascade"}}}},
        "files": {"fields": {"projectId": {"type": "string", "required": true, "ref": {"collection": "projects", "onDelete": "restrict"}},
                             "path": {"type": "string", "required": true}, "size": {"type": "integer"}},
                  "unique": [["projectId", "path"]]}}}"#;

    #[test]
    fn parses_refs_and_unique_constraints() {
        let s = Schema::from_json(REFS).unwrap();
        let files = s.collection("files").unwrap();
        assert_eq!(
            files.unique,
            vec![vec!["projectId".to_string(), "path".to_string()]]
        );
        let r = files.fields["projectId"].reference.as_ref().unwrap();
        assert_eq!(
            (r.collection.as_str(), r.on_delete),
            ("projects", OnDelete::Restrict)
        );
        let into_projects: Vec<_> = s
            .referrers_of("projects")
            .map(|r| (r.collection, r.field, r.on_delete))
            .collect();
        assert_eq!(
            into_projects,
            vec![
                ("files", "projectId", OnDelete::Restrict),
                ("links", "a", OnDelete::Cascade)
            ]
        );
        assert_eq!(s.referrers_of("day_types").count(), 2);
        assert!(s.has_refs_or_uniques());
        assert!(!Schema::from_json(SAMPLE).unwrap().has_refs_or_uniques());
        // canonical JSON keeps `ref`, `onDelete` and `unique`, and round-trips
        let json = s.to_json();
        assert!(
            json.contains(r#""ref":{"collection":"day_types","onDelete":"setNull"}"#),
            "{json}"
        );
        assert!(
            json.contains(r#""unique":[["projectId","path"]]"#),
            "{json}"
        );
        assert_eq!(Schema::from_json(&json).unwrap(), s);
        // a schema without them serializes as before
        assert!(!Schema::from_json(SAMPLE)
            .unwrap()
            .to_json()
            .contains("unique"));
    }

    #[test]
    fn ref_errors_name_the_place() {
        let one = |field: &str| {
            error_of(&format!(
                r#"{{"version":1,"collections":{{"t":{{"fields":{{}}}},"a":{{"fields":{{"x":{field}}}}}}}}}"#
            ))
        };
        assert_eq!(
            one(r#"{"type":"integer","ref":{"collection":"t","onDelete":"cascade"}}"#),
            "collections.a.fields.x.ref: applies to string fields only"
        );
        assert_eq!(
            one(
                r#"{"type":"string","required":true,"ref":{"collection":"t","onDelete":"setNull"}}"#
            ),
            "collections.a.fields.x.ref.onDelete: setNull needs a field that is not required"
        );
        assert_eq!(
            one(r#"{"type":"string","ref":{"collection":"nope","onDelete":"cascade"}}"#),
            "collections.a.fields.x.ref.collection: collection \"nope\" is not declared"
        );
        assert!(
            one(r#"{"type":"string","ref":{"collection":"t","onDelete":"explode"}}"#)
                .starts_with("collections.a.fields.x.ref.onDelete: unknown rule \"explode\"")
        );
        assert_eq!(
            one(r#"{"type":"string","ref":{"collection":"t"}}"#),
            "collections.a.fields.x.ref.onDelete: missing"
        );
        assert!(
            one(r#"{"type":"string","ref":{"collection":"t","onDelete":"cascade","x":1}}"#)
                .starts_with("collections.a.fields.x.ref.x: unknown key")
        );
        assert_eq!(
            error_of(
                r#"{"version":1,"collections":{"t":{"fields":{}},
                    "a":{"parent":{"collection":"t","field":"p"},
                         "fields":{"p":{"type":"string","ref":{"collection":"t","onDelete":"cascade"}}}}}}"#
            ),
            "collections.a.fields.p.ref: is the collection's parent field, which already cascades"
        );
    }

    #[test]
    fn unique_errors_name_the_place() {
        let one = |unique: &str| {
            error_of(&format!(
                r#"{{"version":1,"collections":{{"a":{{"fields":{{"x":{{"type":"string"}},"o":{{"type":"object"}}}},"unique":{unique}}}}}}}"#
            ))
        };
        assert_eq!(
            one(r#"[["nope"]]"#),
            "collections.a.unique[0][0]: field \"nope\" is not declared"
        );
        assert_eq!(
            one(r#"[["x","o"]]"#),
            "collections.a.unique[0][1]: field \"o\" is of type object; unique fields must be scalars"
        );
        assert_eq!(
            one(r#"[["x","x"]]"#),
            "collections.a.unique[0]: names a field twice"
        );
        assert_eq!(
            one(r#"[[]]"#),
            "collections.a.unique[0]: must name at least one field"
        );
        assert_eq!(
            one(r#"[["x"],["x"]]"#),
            "collections.a.unique[1]: repeats an index declared before it"
        );
        assert!(one(r#""x""#).starts_with("collections.a.unique: must be an array"));
    }

    #[test]
    fn unknown_keys_and_shapes() {
        assert!(error_of("[]").contains("must be a JSON object"));
        assert!(error_of("{").starts_with("not valid JSON"));
        assert_eq!(error_of(r#"{"collections":{}}"#), "version: missing");
        assert!(error_of(r#"{"version":1,"collections":{},"extra":1}"#)
            .starts_with("extra: unknown key"));
        assert!(error_of(
            r#"{"version":1,"collections":{"a":{"fields":{"x":{"type":"string","requird":true}}}}}"#
        )
        .starts_with("collections.a.fields.x.requird: unknown key"));
    }

    const SCOPED: &str = r#"{"version": 1,
     "collections": {
       "plans":            {"fields": {"name": {"type": "string"}}},
       "shared_plan_days": {"parent": {"collection": "shared_plans", "field": "planId"},
                            "fields": {"planId": {"type": "string", "required": true}}},
       "shared_plans":     {"scope": "space", "fields": {"name": {"type": "string", "required": true}}},
       "day_notes":        {"parent": {"collection": "shared_plan_days", "field": "dayId"},
                            "fields": {"dayId": {"type": "string"},
                                       "plan": {"type": "string", "ref": {"collection": "shared_plans", "onDelete": "cascade"}}}},
       "catalog":          {"scope": "public", "fields": {"name": {"type": "string"}}},
       "catalog_items":    {"scope": "public", "parent": {"collection": "catalog", "field": "c"},
                            "fields": {"c": {"type": "string"}}}}}"#;

    #[test]
    fn scopes_parse_and_children_inherit_them() {
        let schema = Schema::from_json(SCOPED).unwrap();
        assert_eq!(schema.scope_of("plans"), Some(Scope::User));
        assert_eq!(schema.scope_of("shared_plans"), Some(Scope::Space));
        // declared before its parent, and a grandchild: both inherit
        assert_eq!(schema.scope_of("shared_plan_days"), Some(Scope::Space));
        assert_eq!(schema.scope_of("day_notes"), Some(Scope::Space));
        assert_eq!(schema.scope_of("catalog"), Some(Scope::Public));
        assert_eq!(schema.scope_of("catalog_items"), Some(Scope::Public));
        assert_eq!(schema.scope_of("nope"), None);
        // the canonical form names non-default scopes only, and parses back to the same schema
        let json = schema.to_json();
        assert!(json.contains(r#""scope":"space""#));
        assert!(!json.contains(r#""scope":"user""#));
        assert_eq!(
            Schema::from_json(&format!(
                r#"{{"version":1,"collections":{}}}"#,
                serde_json::to_value(&schema).unwrap()["collections"]
            ))
            .unwrap(),
            schema
        );
        // a schema without scopes serializes exactly as before scopes existed
        let plain = Schema::from_json(SAMPLE).unwrap();
        assert!(!plain.to_json().contains("scope"));
        assert!(plain.collections.values().all(|c| c.scope == Scope::User));
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
        }
    }

    #[test]
    fn a_child_declaring_another_scope_than_its_parent_is_refused() {
        let e = error_of(&SCOPED.replace(
            r#""shared_plan_days": {"parent""#,
            r#""shared_plan_days": {"scope": "user", "parent""#,
        ));
        assert_eq!(
            e,
            r#"collections.shared_plan_days.scope: "user" differs from its parent shared_plans ("space"); a child has its parent's scope"#
        );
        // a user-scoped parent (the default) and a space child
        let e = error_of(
            r#"{"version":1,"collections":{"a":{"fields":{}},
                "b":{"scope":"public","parent":{"collection":"a","field":"aId"},"fields":{"aId":{"type":"string"}}}}}"#,
        );
        assert_eq!(
            e,
            r#"collections.b.scope: "public" differs from its parent a ("user"); a child has its parent's scope"#
        );
    }

    #[test]
    fn a_reference_stays_within_one_scope() {
        let e = error_of(
            r#"{"version":1,"collections":{"plans":{"fields":{}},
                "x":{"scope":"space","fields":{"y":{"type":"string","ref":{"collection":"plans","onDelete":"setNull"}}}}}}"#,
        );
        assert_eq!(
            e,
            r#"collections.x.fields.y.ref: plans is "user"-scoped, x is "space"-scoped; a reference stays within one scope"#
        );
        // into public from a space is refused too (a plain string field instead)
        let e = error_of(&SCOPED.replace(
            r#""collection": "shared_plans", "onDelete""#,
            r#""collection": "catalog", "onDelete""#,
        ));
        assert_eq!(
            e,
            r#"collections.day_notes.fields.plan.ref: catalog is "public"-scoped, day_notes is "space"-scoped; a reference stays within one scope"#
        );
    }

    #[test]
    fn a_bad_scope_names_its_place() {
        assert_eq!(
            error_of(r#"{"version":1,"collections":{"a":{"scope":"team","fields":{}}}}"#),
            r#"collections.a.scope: unknown scope "team" (expected user, space or public)"#
        );
        assert_eq!(
            error_of(r#"{"version":1,"collections":{"a":{"scope":1,"fields":{}}}}"#),
            "collections.a.scope: must be a string"
        );
    }

    const ATTACHED: &str = r#"{"version":1,"collections":{
        "files":  {"fields": {"blob": {"type": "attachment", "required": true},
                              "title": {"type": "string"}}},
        "photos": {"fields": {"image": {"type": "attachment"}, "caption": {"type": "string"}},
                   "attachments": {"download": "eager", "eagerMaxBytes": 1000000}},
        "notes":  {"fields": {"text": {"type": "string"}}}}}"#;

    #[test]
    fn attachment_fields_and_options_parse() {
        let s = Schema::from_json(ATTACHED).unwrap();
        let files = s.collection("files").unwrap();
        assert_eq!(files.fields["blob"].kind, FieldType::Attachment);
        assert!(files.fields["blob"].required);
        assert_eq!(files.attachments, None);
        assert_eq!(files.attachment_options(), AttachmentOptions::ON_DEMAND);
        assert!(!files.attachment_options().prefetches(0));
        let photos = s.collection("photos").unwrap();
        let eager = AttachmentOptions {
            download: DownloadPolicy::Eager,
            eager_max_bytes: 1_000_000,
        };
        assert_eq!(photos.attachments, Some(eager));
        assert!(eager.prefetches(1_000_000));
        assert!(!eager.prefetches(1_000_001));
        assert_eq!(s.attachment_fields("files").collect::<Vec<_>>(), ["blob"]);
        assert_eq!(s.attachment_fields("photos").collect::<Vec<_>>(), ["image"]);
        assert_eq!(s.attachment_fields("notes").count(), 0);
        assert_eq!(s.attachment_fields("nope").count(), 0);
        assert!(s.has_attachments());
        assert!(!Schema::from_json(SAMPLE).unwrap().has_attachments());
        // canonical JSON names the type and the option, and round-trips
        let json = s.to_json();
        assert!(
            json.contains(r#""blob":{"type":"attachment","required":true}"#),
            "{json}"
        );
        assert!(
            json.contains(r#""attachments":{"download":"eager","eagerMaxBytes":1000000}"#),
            "{json}"
        );
        assert_eq!(Schema::from_json(&json).unwrap(), s);
        // eager without a limit takes the default; onDemand serializes without one
        let s = Schema::from_json(&ATTACHED.replace(r#", "eagerMaxBytes": 1000000"#, "")).unwrap();
        assert_eq!(
            s.collection("photos")
                .unwrap()
                .attachments
                .unwrap()
                .eager_max_bytes,
            AttachmentOptions::DEFAULT_EAGER_MAX_BYTES
        );
        assert_eq!(Schema::from_json(&s.to_json()).unwrap(), s);
        let s = Schema::from_json(&ATTACHED.replace(
            r#"{"download": "eager", "eagerMaxBytes": 1000000}"#,
            r#"{"download": "onDemand"}"#,
        ))
        .unwrap();
        assert_eq!(
            s.collection("photos").unwrap().attachments,
            Some(AttachmentOptions::ON_DEMAND)
        );
        assert!(s
            .to_json()
            .contains(r#""attachments":{"download":"onDemand"}"#));
        assert_eq!(Schema::from_json(&s.to_json()).unwrap(), s);
        // a schema without attachments serializes as before
        assert!(!Schema::from_json(SAMPLE)
            .unwrap()
            .to_json()
            .contains("attachment"));
    }

    #[test]
    fn attachment_refs_of_a_document() {
        let s = Schema::from_json(ATTACHED).unwrap();
        let hash = "0".repeat(64);
        let doc = serde_json::json!({
            "blob": {"hash": hash, "size": 3, "contentType": "text/plain", "name": "a.txt"},
            "title": "t"});
        let refs = s.attachment_refs("files", &doc);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].0, "blob");
        assert_eq!(refs[0].1.hash, hash);
        assert_eq!(refs[0].1.name.as_deref(), Some("a.txt"));
        // null, absent and malformed values hold no reference
        assert!(s
            .attachment_refs("photos", &serde_json::json!({"image": null}))
            .is_empty());
        assert!(s
            .attachment_refs("photos", &serde_json::json!({}))
            .is_empty());
        assert!(s
            .attachment_refs("photos", &serde_json::json!({"image": {"hash": "x"}}))
            .is_empty());
        assert!(s.attachment_refs("nope", &doc).is_empty());
        assert!(s
            .attachment_refs("files", &serde_json::json!([1]))
            .is_empty());
    }

    #[test]
    fn attachment_schema_errors_name_the_place() {
        let one = |collection: &str| {
            error_of(&format!(
                r#"{{"version":1,"collections":{{"t":{{"fields":{{}}}},"a":{collection}}}}}"#
            ))
        };
        assert_eq!(
            one(r#"{"fields":{"f":{"type":"attachment","maxLength":3}}}"#),
            "collections.a.fields.f.maxLength: applies to string fields only"
        );
        assert_eq!(
            one(
                r#"{"fields":{"f":{"type":"attachment","ref":{"collection":"t","onDelete":"cascade"}}}}"#
            ),
            "collections.a.fields.f.ref: applies to string fields only"
        );
        assert_eq!(
            one(r#"{"fields":{"f":{"type":"attachment"}},"indexes":[["f"]]}"#),
            r#"collections.a.indexes[0][0]: field "f" is of type attachment; attachments cannot be indexed or unique"#
        );
        assert_eq!(
            one(
                r#"{"fields":{"f":{"type":"attachment"},"s":{"type":"string"}},"unique":[["s","f"]]}"#
            ),
            r#"collections.a.unique[0][1]: field "f" is of type attachment; attachments cannot be indexed or unique"#
        );
        assert_eq!(
            one(r#"{"fields":{"s":{"type":"string"}},"attachments":{"download":"eager"}}"#),
            "collections.a.attachments: applies to collections with an attachment field only"
        );
        let with_option = |option: &str| {
            one(&format!(
                r#"{{"fields":{{"f":{{"type":"attachment"}}}},"attachments":{option}}}"#
            ))
        };
        assert_eq!(
            with_option(r#"{"download":"sometimes"}"#),
            r#"collections.a.attachments.download: unknown policy "sometimes" (expected onDemand or eager)"#
        );
        assert_eq!(
            with_option(r#"{"download":1}"#),
            "collections.a.attachments.download: must be a string"
        );
        assert_eq!(
            with_option(r#"{"download":"onDemand","eagerMaxBytes":5}"#),
            r#"collections.a.attachments.eagerMaxBytes: applies to "download": "eager" only"#
        );
        assert_eq!(
            with_option(r#"{"eagerMaxBytes":5}"#),
            r#"collections.a.attachments.eagerMaxBytes: applies to "download": "eager" only"#
        );
        for bad in ["0", "-1", "1.5", r#""5""#] {
            assert_eq!(
                with_option(&format!(r#"{{"download":"eager","eagerMaxBytes":{bad}}}"#)),
                "collections.a.attachments.eagerMaxBytes: must be a positive integer"
            );
        }
        assert!(with_option(r#"{"download":"eager","prefetch":true}"#)
            .starts_with("collections.a.attachments.prefetch: unknown key"));
        assert_eq!(
            with_option("true"),
            "collections.a.attachments: must be a JSON object"
        );
        // an attachment field is no parent field
        assert_eq!(
            error_of(
                r#"{"version":1,"collections":{"t":{"fields":{}},
                    "a":{"parent":{"collection":"t","field":"p"},"fields":{"p":{"type":"attachment"}}}}}"#
            ),
            r#"collections.a.parent.field: field "p" must be of type string, not attachment"#
        );
        // the error for an unknown type lists attachment
        assert!(one(r#"{"fields":{"f":{"type":"file"}}}"#).contains("object or attachment"));
    }

    #[test]
    fn the_repository_schemas_declare_their_scopes() {
        let test = Schema::from_json(include_str!("../../schemas/test.json")).unwrap();
        for (name, scope) in [
            ("plans", Scope::User),
            ("team_projects", Scope::Space),
            ("team_tasks", Scope::Space),
            ("team_tags", Scope::Space),
            ("catalog", Scope::Public),
            ("catalog_items", Scope::Public),
        ] {
            assert_eq!(test.scope_of(name), Some(scope), "test.json {name}");
        }
        let sample = Schema::from_json(include_str!("../../schemas/sample.json")).unwrap();
        for (name, scope) in [
            ("exercises", Scope::User),
            ("plans", Scope::User),
            ("plan_days", Scope::User),
            ("shared_plans", Scope::Space),
            ("shared_plan_days", Scope::Space),
            ("catalog_exercises", Scope::Public),
        ] {
            assert_eq!(sample.scope_of(name), Some(scope), "sample.json {name}");
        }
    }

    #[test]
    fn the_repository_schemas_declare_attachments() {
        let test = Schema::from_json(include_str!("../../schemas/test.json")).unwrap();
        for (name, field, scope) in [
            ("attached_files", "blob", Scope::User),
            ("photos", "image", Scope::User),
            ("shared_files", "blob", Scope::Space),
            ("catalog_media", "image", Scope::Public),
        ] {
            assert_eq!(
                test.attachment_fields(name).collect::<Vec<_>>(),
                [field],
                "test.json {name}"
            );
            assert_eq!(test.scope_of(name), Some(scope), "test.json {name}");
        }
        assert!(test.collection("attached_files").unwrap().fields["blob"].required);
        assert!(test
            .collection("photos")
            .unwrap()
            .attachment_options()
            .prefetches(1_000_000));
        let sample = Schema::from_json(include_str!("../../schemas/sample.json")).unwrap();
        for name in ["plan_days", "shared_plan_days"] {
            assert_eq!(
                sample.attachment_fields(name).collect::<Vec<_>>(),
                ["photo"],
                "sample.json {name}"
            );
        }
        assert_eq!(
            sample
                .collection("plan_days")
                .unwrap()
                .attachment_options()
                .download,
            DownloadPolicy::Eager
        );
    }
}
