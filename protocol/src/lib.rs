//! Types shared by the Tandem engine and the Tandem server: the schema document, document
//! validation, identifier rules, the wire types and codes, and the clock both read. Pure data and
//! logic, no I/O, so both sides judge a document exactly the same way.

mod admin_users;
mod attachment;
pub mod clock;
mod codes;
mod document;
pub mod evolution;
pub mod hlc;
mod ids;
mod schema;
mod wire;

pub use admin_users::*;
pub use attachment::{
    is_valid_attachment_name, is_valid_blob_hash, is_valid_content_type, AttachmentProblem,
    AttachmentRef, BLOB_HASH_LEN, MAX_ATTACHMENT_NAME_CHARS, MAX_ATTACHMENT_SIZE,
    MAX_CONTENT_TYPE_CHARS,
};
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use codes::{AbortCode, ConflictCode, ErrorCode, RejectionCode};
pub use document::{check_size, ValidationError, ValidationReason, MAX_DOCUMENT_BYTES};
pub use evolution::AddedRule;
pub use hlc::{FieldTimes, Hlc, HlcGenerator, HlcParseError, MAX_CLOCK_SKEW_MS};
pub use ids::{is_valid_collection_name, is_valid_field_name, is_valid_id, MAX_ID_LEN};
pub use schema::{
    AttachmentOptions, Collection, DownloadPolicy, Field, FieldRef, FieldType, OnDelete, ParentRef,
    Referrer, Schema, SchemaError, Scope,
};
pub use wire::*;
