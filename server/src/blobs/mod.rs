//! Attachment bytes on the server (docs/design/attachments.md §4): the blob store
//! ([`store::BlobStore`], a directory or S3 through `object_store`) and resumable uploads into it
//! ([`upload::Uploads`]). The HTTP side is `routes/blobs.rs`; the tables are
//! `storage/blobs_sqlite.rs` and `storage/blobs_postgres.rs`.

pub mod store;
pub mod upload;

pub use store::BlobStore;
pub use upload::{Limits, Status, UploadError, Uploads, CHUNK_BYTES};

/// The first 12 hex digits of a hash, as logs name a blob (whole hashes are not secrets, but a
/// prefix is enough to find it and keeps lines short). Anything else is shown as `-`.
pub fn hash_prefix(hash: &str) -> &str {
    if hash.len() >= 12 && hash.is_char_boundary(12) && tandem_protocol::is_valid_blob_hash(hash) {
        &hash[..12]
    } else {
        "-"
    }
}
