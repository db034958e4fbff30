//! Judging a document against its collection: declared fields only, JSON types, required fields,
//! `maxLength` in Unicode code points and the size limit. Errors name the collection and field but
//! never quote the document's values, so they are safe to log.

use std::fmt;

use serde_json::{Map, Value};

use crate::attachment::{AttachmentProblem, AttachmentRef};
use crate::codes::RejectionCode;
use crate::schema::{Collection, FieldRef, FieldType};

/// The conflict code of a unique violation, which is also a local write's validation code.
const UNIQUE_VIOLATION: &str = "unique_violation";
/// The codes of the engine's local space refusals (docs/design/spaces.md §9); the server never
/// sends them (a write it refuses for the space is `forbidden`).
const READ_ONLY: &str = "read_only";
const SPACE_MISMATCH: &str = "space_mismatch";
const UNKNOWN_SPACE: &str = "unknown_space";

/// Largest document accepted, measured as compact JSON (the server answers `too_large` above it).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why a document (or a write) was refused, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub collection: String,
    /// The field at fault; `None` when the document as a whole is.
    pub field: Option<String>,
    pub reason: ValidationReason,
}

/// What is wrong. The protocol's rejection code for each is [`ValidationReason::code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationReason {
    UnknownCollection,
    NotAnObject,
    UnknownField,
    Required,
    WrongType {
        expected: FieldType,
    },
    TooLong {
        max: u64,
    },
    TooLarge {
        bytes: usize,
    },
    ParentMissing {
        parent_collection: String,
        parent_id: String,
    },
    /// A `ref` field names a record that does not exist (or is deleted).
    RefMissing {
        ref_collection: String,
        ref_id: String,
    },
    /// A delete refused by a `restrict` reference: `referrer_collection/referrer_id` refers to
    /// the record through the error's field.
    Restricted {
        referrer_collection: String,
        referrer_id: String,
    },
    /// The document's values of a unique constraint's fields are those of `existing_id`.
    UniqueViolation {
        fields: Vec<String>,
        existing_id: String,
    },
    /// A local write to a `public` collection: only the server's admin writes them.
    ReadOnly,
    /// A write to a space where the user's role may not write (a viewer); the server's
    /// rejection `forbidden` (also: removed from the space) reads the same.
    Forbidden,
    /// A write naming the wrong space: a space for a user collection, none for a new record of a
    /// space collection, or one other than the record's own or its parent's.
    SpaceMismatch,
    /// A write to a space this device does not know (not a member, or not synced yet).
    UnknownSpace,
    /// An attachment field's value is an object but not a valid reference (`invalid_payload`).
    InvalidAttachment {
        problem: AttachmentProblem,
    },
    /// An attachment field names a blob the server does not hold complete, or the pusher may
    /// not read (`attachment_missing`).
    AttachmentMissing,
}

impl ValidationReason {
    /// The protocol's `reason` code for a rejected mutation.
    pub fn rejection_code(&self) -> RejectionCode {
        match self {
            Self::UnknownCollection => RejectionCode::UnknownEntity,
            Self::TooLarge { .. } => RejectionCode::TooLarge,
            Self::ParentMissing { .. } => RejectionCode::InvalidParent,
            Self::RefMissing { .. } => RejectionCode::InvalidReference,
            Self::Restricted { .. } => RejectionCode::Restricted,
            // On the wire a unique violation is a conflict (`unique_violation`), never a
            // rejection; a local write that breaks one is refused with this reason.
            Self::UniqueViolation { .. } => RejectionCode::Other(UNIQUE_VIOLATION.to_string()),
            Self::Forbidden => RejectionCode::Forbidden,
            Self::AttachmentMissing => RejectionCode::AttachmentMissing,
            // Local refusals only: no server rejects a mutation with them.
            Self::ReadOnly => RejectionCode::Other(READ_ONLY.to_string()),
            Self::SpaceMismatch => RejectionCode::Other(SPACE_MISMATCH.to_string()),
            Self::UnknownSpace => RejectionCode::Other(UNKNOWN_SPACE.to_string()),
            Self::NotAnObject
            | Self::UnknownField
            | Self::Required
            | Self::WrongType { .. }
            | Self::TooLong { .. }
            | Self::InvalidAttachment { .. } => RejectionCode::InvalidPayload,
        }
    }

    /// [`rejection_code`](Self::rejection_code) as its wire string.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UniqueViolation { .. } => UNIQUE_VIOLATION,
            Self::ReadOnly => READ_ONLY,
            Self::SpaceMismatch => SPACE_MISMATCH,
            Self::UnknownSpace => UNKNOWN_SPACE,
            _ => self
                .rejection_code()
                .known_str()
                .expect("every validation reason maps to a known code"),
        }
    }
}

impl fmt::Display for ValidationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCollection => f.write_str("collection is not declared in the schema"),
            Self::NotAnObject => f.write_str("document must be a JSON object"),
            Self::UnknownField => f.write_str("field is not declared in the schema"),
            Self::Required => f.write_str("required"),
            Self::WrongType { expected } => write!(f, "must be of type {expected}"),
            Self::TooLong { max } => write!(f, "longer than {max} characters"),
            Self::TooLarge { bytes } => {
                write!(
                    f,
                    "document is {bytes} bytes, over the limit of {MAX_DOCUMENT_BYTES}"
                )
            }
            Self::ParentMissing {
                parent_collection,
                parent_id,
            } => {
                write!(f, "parent {parent_collection}/{parent_id} does not exist")
            }
            Self::RefMissing {
                ref_collection,
                ref_id,
            } => write!(f, "referenced {ref_collection}/{ref_id} does not exist"),
            Self::Restricted {
                referrer_collection,
                referrer_id,
            } => write!(
                f,
                "cannot delete: {referrer_collection}/{referrer_id} refers to it (onDelete: restrict)"
            ),
            Self::UniqueViolation {
                fields,
                existing_id,
            } => write!(
                f,
                "unique ({}) is already held by {existing_id}",
                fields.join(", ")
            ),
            Self::ReadOnly => f.write_str("public collections are read-only on devices"),
            Self::Forbidden => f.write_str("your role in this space does not allow writing"),
            Self::SpaceMismatch => f.write_str(
                "wrong space: a user record has none, a new space record needs one, and a                  record stays in its own (or its parent's) space",
            ),
            Self::UnknownSpace => f.write_str("not a space of this account (sync, or accept the invitation, first)"),
            Self::InvalidAttachment { problem } => write!(f, "{problem}"),
            Self::AttachmentMissing => f.write_str(
                "the attachment is not uploaded, or not readable by this account",
            ),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}.{}: {}", self.collection, field, self.reason),
            None => write!(f, "{}: {}", self.collection, self.reason),
        }
    }
}

impl std::error::Error for ValidationError {}

impl ValidationError {
    pub fn new(collection: &str, field: Option<&str>, reason: ValidationReason) -> Self {
        Self {
            collection: collection.to_string(),
            field: field.map(str::to_string),
            reason,
        }
    }
}

impl Collection {
    /// Checks `doc` against this collection (named `name` in errors). Parent existence needs the
    /// data and is checked by the caller; see [`Collection::parent_id`].
    pub fn validate_document(&self, name: &str, doc: &Value) -> Result<(), ValidationError> {
        self.validate_fields(name, doc)?;
        check_size(name, compact_len(doc))
    }

    /// [`Collection::validate_document`] without the size limit, for callers that serialize the
    /// document anyway and check its length with [`check_size`].
    pub fn validate_fields(&self, name: &str, doc: &Value) -> Result<(), ValidationError> {
        let fail = |field: Option<&str>, reason| Err(ValidationError::new(name, field, reason));
        let Value::Object(map) = doc else {
            return fail(None, ValidationReason::NotAnObject);
        };
        for (key, value) in map {
            let Some(field) = self.fields.get(key) else {
                return fail(Some(key), ValidationReason::UnknownField);
            };
            if value.is_null() {
                continue; // null in a field counts as absent
            }
            if !type_matches(field.kind, value) {
                return fail(
                    Some(key),
                    ValidationReason::WrongType {
                        expected: field.kind,
                    },
                );
            }
            if field.kind == FieldType::Attachment {
                if let Err(problem) = AttachmentRef::parse(value) {
                    return fail(Some(key), ValidationReason::InvalidAttachment { problem });
                }
            }
            if let (Some(max), Value::String(s)) = (field.max_length, value) {
                if s.chars().count() as u64 > max {
                    return fail(Some(key), ValidationReason::TooLong { max });
                }
            }
        }
        for (key, field) in &self.fields {
            if field.required && map.get(key).is_none_or(Value::is_null) {
                return fail(Some(key), ValidationReason::Required);
            }
        }
        Ok(())
    }

    /// The declared `ref` fields, in field order.
    pub fn refs(&self) -> impl Iterator<Item = (&str, &FieldRef)> {
        self.fields
            .iter()
            .filter_map(|(name, f)| f.reference.as_ref().map(|r| (name.as_str(), r)))
    }

    /// The records a document refers to through its `ref` fields: (field, collection, id), for
    /// every ref field that holds a string.
    pub fn ref_targets<'a>(
        &'a self,
        doc: &'a Map<String, Value>,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> {
        self.refs().filter_map(move |(field, r)| {
            doc.get(field)
                .and_then(Value::as_str)
                .map(|id| (field, r.collection.as_str(), id))
        })
    }

    /// The key a document holds under the unique constraint `fields`: the values as one compact
    /// JSON array, or `None` when any of them is absent (or null), which exempts the document.
    pub fn unique_key(fields: &[String], doc: &Map<String, Value>) -> Option<String> {
        let mut values = Vec::with_capacity(fields.len());
        for field in fields {
            match doc.get(field) {
                None | Some(Value::Null) => return None,
                Some(v) => values.push(v),
            }
        }
        Some(serde_json::to_string(&values).expect("JSON values always serialize"))
    }

    /// The parent id a document names, when the collection has a parent and the field is set.
    pub fn parent_id<'a>(&self, doc: &'a Map<String, Value>) -> Option<&'a str> {
        let parent = self.parent.as_ref()?;
        doc.get(&parent.field).and_then(Value::as_str)
    }
}

/// Refuses a document whose compact JSON form is `bytes` long when that is over the limit.
pub fn check_size(collection: &str, bytes: usize) -> Result<(), ValidationError> {
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(ValidationError::new(
            collection,
            None,
            ValidationReason::TooLarge { bytes },
        ));
    }
    Ok(())
}

fn type_matches(kind: FieldType, value: &Value) -> bool {
    match kind {
        FieldType::String => value.is_string(),
        FieldType::Integer => value.is_i64() || value.is_u64(),
        FieldType::Number => value.is_number(),
        FieldType::Boolean => value.is_boolean(),
        FieldType::Array => value.is_array(),
        FieldType::Object | FieldType::Attachment => value.is_object(),
    }
}

fn compact_len(doc: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, doc).expect("writing to a counter cannot fail");
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Schema;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::from_json(crate::schema::tests_sample()).unwrap()
    }

    fn check(collection: &str, doc: Value) -> Result<(), String> {
        let s = schema();
        s.collection(collection)
            .unwrap()
            .validate_document(collection, &doc)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_valid_documents() {
        check(
            "plans",
            json!({"name": "Push", "notes": null, "archived": false}),
        )
        .unwrap();
        check(
            "plan_days",
            json!({"planId": "p1", "dayIndex": 3, "exerciseIds": ["a"]}),
        )
        .unwrap();
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(
            check("plans", json!({})).unwrap_err(),
            "plans.name: required"
        );
        assert_eq!(
            check("plans", json!({"name": null})).unwrap_err(),
            "plans.name: required"
        );
        assert_eq!(
            check("plans", json!({"name": "x", "colour": "red"})).unwrap_err(),
            "plans.colour: field is not declared in the schema"
        );
        assert_eq!(
            check("plans", json!({"name": 5})).unwrap_err(),
            "plans.name: must be of type string"
        );
        assert_eq!(
            check("plan_days", json!({"planId": "p", "dayIndex": 1.5})).unwrap_err(),
            "plan_days.dayIndex: must be of type integer"
        );
        assert_eq!(
            check("plans", json!([1])).unwrap_err(),
            "plans: document must be a JSON object"
        );
    }

    #[test]
    fn max_length_counts_code_points() {
        check("plans", json!({"name": "é".repeat(200)})).unwrap();
        assert_eq!(
            check("plans", json!({"name": "é".repeat(201)})).unwrap_err(),
            "plans.name: longer than 200 characters"
        );
    }

    #[test]
    fn size_limit() {
        let e = check(
            "plans",
            json!({"name": "x", "notes": "n".repeat(MAX_DOCUMENT_BYTES)}),
        )
        .unwrap_err();
        assert!(e.starts_with("plans: document is"), "{e}");
    }

    #[test]
    fn errors_never_quote_values() {
        let e = check("plans", json!({"name": 12345678})).unwrap_err();
        assert!(!e.contains("12345678"));
    }

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn check_attached(collection: &str, doc: Value) -> Result<(), ValidationError> {
        let s = Schema::from_json(
            r#"{"version":1,"collections":{
                "files":  {"fields": {"blob": {"type": "attachment", "required": true},
                                      "title": {"type": "string"}}},
                "photos": {"fields": {"image": {"type": "attachment"}}}}}"#,
        )
        .unwrap();
        s.collection(collection)
            .unwrap()
            .validate_document(collection, &doc)
    }

    #[test]
    fn attachment_values() {
        let good = json!({"hash": HASH, "size": 5, "contentType": "image/png", "name": "x.png"});
        check_attached("files", json!({"blob": good, "title": "t"})).unwrap();
        check_attached(
            "files",
            json!({"blob": {"hash": HASH, "size": 0, "contentType": "a/b"}}),
        )
        .unwrap();
        check_attached("photos", json!({"image": null})).unwrap();
        check_attached("photos", json!({})).unwrap();
        // required
        assert_eq!(
            check_attached("files", json!({"blob": null}))
                .unwrap_err()
                .to_string(),
            "files.blob: required"
        );
        // not an object: the wrong type
        let e = check_attached("photos", json!({"image": HASH})).unwrap_err();
        assert_eq!(
            e.reason,
            ValidationReason::WrongType {
                expected: FieldType::Attachment
            }
        );
        assert_eq!(e.to_string(), "photos.image: must be of type attachment");
        assert_eq!(e.reason.code(), "invalid_payload");
        // an object breaking a rule: the rule, the field, never the value
        let bad = |image: Value| check_attached("photos", json!({ "image": image })).unwrap_err();
        for (image, problem) in [
            (
                json!({"hash": HASH, "size": 1, "contentType": "a/b", "extra": 1}),
                AttachmentProblem::UnknownKey,
            ),
            (
                json!({"hash": HASH.to_uppercase(), "size": 1, "contentType": "a/b"}),
                AttachmentProblem::BadHash,
            ),
            (
                json!({"size": 1, "contentType": "a/b"}),
                AttachmentProblem::BadHash,
            ),
            (
                json!({"hash": HASH, "size": -1, "contentType": "a/b"}),
                AttachmentProblem::BadSize,
            ),
            (
                json!({"hash": HASH, "size": 9_007_199_254_740_993_u64, "contentType": "a/b"}),
                AttachmentProblem::BadSize,
            ),
            (
                json!({"hash": HASH, "size": 1, "contentType": "image jpeg"}),
                AttachmentProblem::BadContentType,
            ),
            (
                json!({"hash": HASH, "size": 1, "contentType": "a/b", "name": "../etc/passwd"}),
                AttachmentProblem::BadName,
            ),
        ] {
            let e = bad(image);
            assert_eq!(e.field.as_deref(), Some("image"));
            assert_eq!(e.reason, ValidationReason::InvalidAttachment { problem });
            assert_eq!(e.reason.code(), "invalid_payload");
            assert_eq!(e.reason.rejection_code(), RejectionCode::InvalidPayload);
            let text = e.to_string();
            assert!(text.starts_with("photos.image: attachment"), "{text}");
            assert!(!text.contains(HASH) && !text.contains("passwd"), "{text}");
        }
    }

    #[test]
    fn attachment_missing_is_its_own_rejection() {
        assert_eq!(
            ValidationReason::AttachmentMissing.rejection_code(),
            RejectionCode::AttachmentMissing
        );
        assert_eq!(
            ValidationReason::AttachmentMissing.code(),
            "attachment_missing"
        );
    }

    #[test]
    fn reason_codes() {
        assert_eq!(ValidationReason::Required.code(), "invalid_payload");
        assert_eq!(ValidationReason::TooLarge { bytes: 1 }.code(), "too_large");
        assert_eq!(ValidationReason::UnknownCollection.code(), "unknown_entity");
    }
}
