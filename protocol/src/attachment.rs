//! Attachments: the value a field of type `attachment` holds, a reference to a blob of bytes the
//! server stores beside the documents (`docs/protocol.md`, "Attachments").
//!
//! The value is `{"hash": "<64 lowercase hex, SHA-256>", "size": n, "contentType": "image/jpeg",
//! "name": "climb.jpg"}` with `name` optional. Every rule is checked here, once, so the engine and
//! the server judge a reference alike; a problem names the rule, never the value.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schema::{AttachmentOptions, Collection, FieldType, Schema};

/// Length of a blob hash: SHA-256 as lowercase hex.
pub const BLOB_HASH_LEN: usize = 64;
/// Largest `size` a reference may state (2^53, the largest integer every JSON reader keeps
/// exactly). Servers take far less (the reference server 100 MiB by default).
pub const MAX_ATTACHMENT_SIZE: u64 = 1 << 53;
/// Longest `contentType`, in characters.
pub const MAX_CONTENT_TYPE_CHARS: usize = 255;
/// Longest `name`, in characters.
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 255;

/// The value of an attachment field: which blob, how big, what it is and (optionally) the name
/// the user knows it by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentRef {
    /// SHA-256 of the bytes, 64 lowercase hex digits: the blob's address.
    pub hash: String,
    /// Bytes.
    pub size: u64,
    /// A MIME type, `type/subtype` (`image/jpeg`).
    pub content_type: String,
    /// The file name shown to users (`climb.jpg`); no path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What is wrong with an attachment value. Names the rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachmentProblem {
    /// Not a JSON object.
    NotAnObject,
    /// A key other than `hash`, `size`, `contentType` and `name`.
    UnknownKey,
    /// `hash` missing, or not 64 lowercase hex digits.
    BadHash,
    /// `size` missing, or not an integer from 0 to 2^53.
    BadSize,
    /// `contentType` missing, or not a `type/subtype` of 1 to 255 characters without spaces or
    /// control characters.
    BadContentType,
    /// `name` not a string of 1 to 255 characters without `/`, `\` or control characters.
    BadName,
}

impl fmt::Display for AttachmentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnObject => "attachment must be an object {hash, size, contentType, name?}",
            Self::UnknownKey => {
                "attachment holds only the keys hash, size, contentType and name"
            }
            Self::BadHash => "attachment hash must be 64 lowercase hex digits (SHA-256)",
            Self::BadSize => "attachment size must be an integer from 0 to 2^53",
            Self::BadContentType => {
                "attachment contentType must be type/subtype, 1 to 255 characters, without spaces or control characters"
            }
            Self::BadName => {
                "attachment name must be 1 to 255 characters, without /, \\ or control characters"
            }
        })
    }
}

impl std::error::Error for AttachmentProblem {}

/// Whether `hash` is a blob address: 64 lowercase hex digits.
pub fn is_valid_blob_hash(hash: &str) -> bool {
    hash.len() == BLOB_HASH_LEN
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `content_type` has the shape the protocol takes: `type/subtype` (one `/`, both sides
/// non-empty), 1 to 255 characters, no whitespace or control characters. Parameters are allowed
/// when written without spaces (`text/plain;charset=utf-8`).
pub fn is_valid_content_type(content_type: &str) -> bool {
    let chars = content_type.chars().count();
    if chars == 0 || chars > MAX_CONTENT_TYPE_CHARS {
        return false;
    }
    if content_type
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let mut parts = content_type.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(kind), Some(sub), None) if !kind.is_empty() && !sub.is_empty()
    )
}

/// Whether `name` is a valid attachment name: 1 to 255 characters, no `/`, `\` or control
/// characters (a file name, never a path).
pub fn is_valid_attachment_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_ATTACHMENT_NAME_CHARS).contains(&chars)
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

impl AttachmentRef {
    /// The reference `value` holds, when it is a valid attachment value (see [`Self::parse`]).
    pub fn from_value(value: &Value) -> Option<Self> {
        Self::parse(value).ok()
    }

    /// Reads an attachment value, checking every rule: an object with exactly the keys `hash`,
    /// `size`, `contentType` and optionally `name` (`"name": null` counts as absent).
    pub fn parse(value: &Value) -> Result<Self, AttachmentProblem> {
        let Value::Object(map) = value else {
            return Err(AttachmentProblem::NotAnObject);
        };
        Self::parse_map(map)
    }

    fn parse_map(map: &Map<String, Value>) -> Result<Self, AttachmentProblem> {
        if map
            .keys()
            .any(|k| !matches!(k.as_str(), "hash" | "size" | "contentType" | "name"))
        {
            return Err(AttachmentProblem::UnknownKey);
        }
        let hash = match map.get("hash") {
            Some(Value::String(h)) if is_valid_blob_hash(h) => h.clone(),
            _ => return Err(AttachmentProblem::BadHash),
        };
        let size = match map.get("size").and_then(Value::as_u64) {
            Some(n) if n <= MAX_ATTACHMENT_SIZE => n,
            _ => return Err(AttachmentProblem::BadSize),
        };
        let content_type = match map.get("contentType") {
            Some(Value::String(t)) if is_valid_content_type(t) => t.clone(),
            _ => return Err(AttachmentProblem::BadContentType),
        };
        let name = match map.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) if is_valid_attachment_name(n) => Some(n.clone()),
            Some(_) => return Err(AttachmentProblem::BadName),
        };
        Ok(Self {
            hash,
            size,
            content_type,
            name,
        })
    }

    /// Checks the reference's own fields (for one built in code rather than read from JSON).
    pub fn check(&self) -> Result<(), AttachmentProblem> {
        if !is_valid_blob_hash(&self.hash) {
            return Err(AttachmentProblem::BadHash);
        }
        if self.size > MAX_ATTACHMENT_SIZE {
            return Err(AttachmentProblem::BadSize);
        }
        if !is_valid_content_type(&self.content_type) {
            return Err(AttachmentProblem::BadContentType);
        }
        if self
            .name
            .as_deref()
            .is_some_and(|n| !is_valid_attachment_name(n))
        {
            return Err(AttachmentProblem::BadName);
        }
        Ok(())
    }

    /// The reference as the JSON value a document holds.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an attachment reference always serializes")
    }
}

impl Collection {
    /// The collection's attachment fields, in field order.
    pub fn attachment_fields(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(|(_, f)| f.kind == FieldType::Attachment)
            .map(|(name, _)| name.as_str())
    }

    /// The references a document holds in its attachment fields, in field order: one per field
    /// holding a valid reference (null, absent or malformed values are skipped; validation
    /// refuses the malformed ones).
    pub fn attachment_refs<'a>(
        &'a self,
        doc: &Map<String, Value>,
    ) -> Vec<(&'a str, AttachmentRef)> {
        self.attachment_fields()
            .filter_map(|field| {
                doc.get(field)
                    .and_then(AttachmentRef::from_value)
                    .map(|r| (field, r))
            })
            .collect()
    }

    /// The collection's `attachments` option, the default (on demand) when it declares none.
    pub fn attachment_options(&self) -> AttachmentOptions {
        self.attachments.unwrap_or_default()
    }
}

impl Schema {
    /// The attachment fields of `collection`, in field order; none for an undeclared collection.
    pub fn attachment_fields<'a>(&'a self, collection: &str) -> impl Iterator<Item = &'a str> {
        self.collection(collection)
            .into_iter()
            .flat_map(Collection::attachment_fields)
    }

    /// The references `doc` (a document of `collection`) holds, as (field, reference) in field
    /// order; empty for an undeclared collection or a document that is not an object.
    pub fn attachment_refs<'a>(
        &'a self,
        collection: &str,
        doc: &Value,
    ) -> Vec<(&'a str, AttachmentRef)> {
        match (self.collection(collection), doc) {
            (Some(c), Value::Object(map)) => c.attachment_refs(map),
            _ => Vec::new(),
        }
    }

    /// Whether any collection declares an attachment field.
    pub fn has_attachments(&self) -> bool {
        self.collections
            .values()
            .any(|c| c.attachment_fields().next().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn hashes() {
        assert!(is_valid_blob_hash(HASH));
        assert!(!is_valid_blob_hash(&HASH.to_uppercase()));
        assert!(!is_valid_blob_hash(&HASH[1..]));
        assert!(!is_valid_blob_hash(&format!("{HASH}0")));
        assert!(!is_valid_blob_hash(&HASH.replace('9', "g")));
        assert!(!is_valid_blob_hash(""));
        // 64 bytes but not 64 hex digits
        assert!(!is_valid_blob_hash(&format!("é{}", &HASH[2..])));
    }

    #[test]
    fn content_types() {
        for good in [
            "image/jpeg",
            "application/octet-stream",
            "video/mp4",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "text/plain;charset=utf-8",
            "a/b",
        ] {
            assert!(is_valid_content_type(good), "{good}");
        }
        for bad in [
            "",
            "image",
            "image/",
            "/jpeg",
            "image/jpeg/x",
            "text/plain; charset=utf-8",
            "image /jpeg",
            "image/jp\neg",
            "image/jp\u{7f}eg",
        ] {
            assert!(!is_valid_content_type(bad), "{bad:?}");
        }
        let long = format!("a/{}", "b".repeat(253));
        assert!(is_valid_content_type(&long));
        assert!(!is_valid_content_type(&format!("{long}b")));
    }

    #[test]
    fn names() {
        assert!(is_valid_attachment_name("climb.jpg"));
        assert!(is_valid_attachment_name("ü ñ 😀.png"));
        assert!(is_valid_attachment_name(&"é".repeat(255)));
        assert!(!is_valid_attachment_name(&"é".repeat(256)));
        for bad in ["", "a/b", "a\\b", "a\nb", "a\0b", "../x"] {
            assert!(!is_valid_attachment_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn parses_and_round_trips() {
        let value = json!({"hash": HASH, "size": 12, "contentType": "image/jpeg", "name": "a.jpg"});
        let r = AttachmentRef::from_value(&value).unwrap();
        assert_eq!(
            r,
            AttachmentRef {
                hash: HASH.into(),
                size: 12,
                content_type: "image/jpeg".into(),
                name: Some("a.jpg".into()),
            }
        );
        assert_eq!(r.to_value(), value);
        assert_eq!(serde_json::from_value::<AttachmentRef>(value).unwrap(), r);
        r.check().unwrap();
        // name is optional; null counts as absent; the serialized form leaves it out
        let bare = json!({"hash": HASH, "size": 0, "contentType": "a/b"});
        let r = AttachmentRef::from_value(&bare).unwrap();
        assert_eq!(r.name, None);
        assert_eq!(r.to_value(), bare);
        let null_name = json!({"hash": HASH, "size": 0, "contentType": "a/b", "name": null});
        assert_eq!(AttachmentRef::from_value(&null_name), Some(r));
        // the largest size
        let max = json!({"hash": HASH, "size": MAX_ATTACHMENT_SIZE, "contentType": "a/b"});
        assert!(AttachmentRef::from_value(&max).is_some());
    }

    #[test]
    fn each_rule_has_its_problem() {
        let base = || json!({"hash": HASH, "size": 5, "contentType": "image/png", "name": "x.png"});
        let with = |key: &str, v: Value| {
            let mut doc = base();
            doc[key] = v;
            AttachmentRef::parse(&doc).unwrap_err()
        };
        let without = |key: &str| {
            let mut doc = base();
            doc.as_object_mut().unwrap().remove(key);
            AttachmentRef::parse(&doc).unwrap_err()
        };
        use AttachmentProblem as P;
        assert_eq!(
            AttachmentRef::parse(&json!("x")).unwrap_err(),
            P::NotAnObject
        );
        assert_eq!(
            AttachmentRef::parse(&json!([1])).unwrap_err(),
            P::NotAnObject
        );
        assert_eq!(with("extra", json!(1)), P::UnknownKey);
        assert_eq!(with("content_type", json!("a/b")), P::UnknownKey);
        assert_eq!(without("hash"), P::BadHash);
        assert_eq!(with("hash", json!(HASH.to_uppercase())), P::BadHash);
        assert_eq!(with("hash", json!(1)), P::BadHash);
        assert_eq!(without("size"), P::BadSize);
        assert_eq!(with("size", json!(-1)), P::BadSize);
        assert_eq!(with("size", json!(1.5)), P::BadSize);
        assert_eq!(with("size", json!("5")), P::BadSize);
        assert_eq!(with("size", json!(MAX_ATTACHMENT_SIZE + 1)), P::BadSize);
        assert_eq!(without("contentType"), P::BadContentType);
        assert_eq!(with("contentType", json!("jpeg")), P::BadContentType);
        assert_eq!(with("contentType", json!(null)), P::BadContentType);
        assert_eq!(with("name", json!("")), P::BadName);
        assert_eq!(with("name", json!("a/b.png")), P::BadName);
        assert_eq!(with("name", json!(7)), P::BadName);
        // the problem's text never quotes the value
        assert!(!P::BadHash.to_string().contains(HASH));
    }

    #[test]
    fn check_judges_a_built_reference_alike() {
        let mut r = AttachmentRef {
            hash: HASH.into(),
            size: 1,
            content_type: "a/b".into(),
            name: None,
        };
        r.check().unwrap();
        r.name = Some("a\\b".into());
        assert_eq!(r.check(), Err(AttachmentProblem::BadName));
        r.name = None;
        r.size = MAX_ATTACHMENT_SIZE + 1;
        assert_eq!(r.check(), Err(AttachmentProblem::BadSize));
        r.size = 1;
        r.content_type = "ab".into();
        assert_eq!(r.check(), Err(AttachmentProblem::BadContentType));
        r.hash = "00".into();
        assert_eq!(r.check(), Err(AttachmentProblem::BadHash));
    }
}
