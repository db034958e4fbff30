//! The attachments half of `Tandem` (docs/design/attachments.md §6): files beside records. A
//! record's attachment field holds an [`AttachmentRef`] (hash, size, content type, name); the
//! bytes live in the engine's content-addressed directory and on the server, uploaded by the
//! sync run before the change that names them and downloaded on demand.
//!
//! A thin layer over `tandem_core::Client`'s attachment calls, like every other part of the
//! exported API: conversions, error mapping, panics caught (`guard`, `on_runtime`).

use std::sync::Arc;

use tandem_core::{AttachmentFailure as EngineFailure, AttachmentState as EngineState};

use super::error::TandemError;
use super::types::Record;
use super::{Subscription, Tandem};

/// What an attachment field holds: the file's SHA-256 (64 lowercase hex digits, its name on the
/// server and in the device's cache), its size in bytes, its content type (`image/jpeg`) and,
/// optionally, the name it was attached under. The same JSON object sits in the record's
/// document (`{"hash", "size", "contentType", "name"?}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct AttachmentRef {
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub hash: String,
    /// Bytes.
    pub size: u64,
    /// `type/subtype`, as given when attached (or guessed from the file name).
    pub content_type: String,
    /// The file name it was attached under (display only), when there is one.
    #[uniffi(default)]
    pub name: Option<String>,
}

/// Where one attachment is, for a progress bar or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AttachmentState {
    /// On this device only; the next sync uploads it (before the change that names it).
    Local,
    /// Being uploaded: `sent` of `total` bytes are on the server.
    Uploading { sent: u64, total: u64 },
    /// On this device and on the server.
    Uploaded,
    /// On the server only: never downloaded here, or evicted from the cache. `attachment()`
    /// downloads it.
    Remote,
    /// Being downloaded: `received` of `total` bytes are here.
    Downloading { received: u64, total: u64 },
    /// The upload failed for good; the changes naming it are in `rejected()` with the same
    /// reason. `detail` says it in words (the server's limit, for `TooLarge`).
    Failed {
        reason: AttachmentFailure,
        detail: String,
    },
}

/// Why an upload failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum AttachmentFailure {
    /// Over the server's per-file limit (`attachment_too_large`).
    TooLarge,
    /// Over the user's storage quota on the server (`quota_exceeded`).
    QuotaExceeded,
    /// The server twice computed another hash than the reference's (`hash_mismatch`): the local
    /// file changed or is damaged.
    HashMismatch,
    /// The local file is gone (deleted from the device's attachment directory).
    FileMissing,
    /// Any other permanent refusal.
    Other,
}

/// Why `attachment()` could not give a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum AttachmentErrorKind {
    /// The server has no such file, or the user may not read it (the two look the same): the
    /// record naming it was deleted, or belongs to someone else.
    NotFound,
    /// The downloaded bytes do not hash to the reference's hash; nothing was kept.
    Corrupt,
    /// Reading or writing the local file failed (disk full, permissions).
    Io,
}

/// Receives the state of one attachment: the current state right after `observe_attachment`,
/// then each change (progress at most ten times a second). Called on Tandem's notification
/// thread; hand it to your UI thread.
#[uniffi::export(with_foreign)]
pub trait AttachmentObserver: Send + Sync {
    /// The attachment's state now (the first call) or after a change.
    fn on_state(&self, state: AttachmentState);
}

impl From<tandem_core::AttachmentErrorKind> for AttachmentErrorKind {
    fn from(kind: tandem_core::AttachmentErrorKind) -> Self {
        use tandem_core::AttachmentErrorKind as K;
        match kind {
            K::NotFound => Self::NotFound,
            K::Corrupt => Self::Corrupt,
            K::Io => Self::Io,
        }
    }
}

impl From<EngineFailure> for AttachmentFailure {
    fn from(failure: EngineFailure) -> Self {
        match failure {
            EngineFailure::TooLarge => Self::TooLarge,
            EngineFailure::QuotaExceeded => Self::QuotaExceeded,
            EngineFailure::HashMismatch => Self::HashMismatch,
            EngineFailure::FileMissing => Self::FileMissing,
            EngineFailure::Other => Self::Other,
        }
    }
}

impl From<EngineState> for AttachmentState {
    fn from(state: EngineState) -> Self {
        match state {
            EngineState::Local => Self::Local,
            EngineState::Uploading { sent, total } => Self::Uploading { sent, total },
            EngineState::Uploaded => Self::Uploaded,
            EngineState::Remote => Self::Remote,
            EngineState::Downloading { received, total } => Self::Downloading { received, total },
            EngineState::Failed { reason, detail } => Self::Failed {
                reason: reason.into(),
                detail: detail.unwrap_or_default(),
            },
        }
    }
}

impl From<tandem_protocol::AttachmentRef> for AttachmentRef {
    fn from(r: tandem_protocol::AttachmentRef) -> Self {
        Self {
            hash: r.hash,
            size: r.size,
            content_type: r.content_type,
            name: r.name,
        }
    }
}

impl From<AttachmentRef> for tandem_protocol::AttachmentRef {
    fn from(r: AttachmentRef) -> Self {
        Self {
            hash: r.hash,
            size: r.size,
            content_type: r.content_type,
            name: r.name,
        }
    }
}

#[uniffi::export]
impl Tandem {
    /// Attaches the file at `path` to `field` (an attachment field) of the existing record
    /// `collection/id`: copies it into the account's attachment directory while hashing it (on
    /// a background thread), then sets the field to its reference in one local write, offline
    /// like any other (validation, outbox, observers). The next sync uploads the file before it
    /// pushes the change. The file at `path` is never moved or changed; the app may delete it
    /// at once. `content_type` defaults from the file name's extension (else
    /// `application/octet-stream`), `name` to the file's name. Returns the written record.
    /// Fails `NotFound` for a missing record, `Validation` when `field` is not an attachment
    /// field, `Storage` when the file cannot be read.
    pub async fn attach_file(
        &self,
        collection: String,
        id: String,
        field: String,
        path: String,
        content_type: Option<String>,
        name: Option<String>,
    ) -> Result<Record, TandemError> {
        self.check_attachment_field(&collection, &field)?;
        self.on_runtime(|client| async move {
            let row = client
                .attach_file(
                    &collection,
                    &id,
                    &field,
                    std::path::Path::new(&path),
                    content_type.as_deref(),
                    name.as_deref(),
                )
                .await?;
            Ok(Record::from(row))
        })
        .await
    }

    /// `attach_file` for bytes the app holds in memory (a photo from the picker): the same
    /// copy, reference and write, with the content type given.
    pub async fn attach_bytes(
        &self,
        collection: String,
        id: String,
        field: String,
        bytes: Vec<u8>,
        content_type: String,
        name: Option<String>,
    ) -> Result<Record, TandemError> {
        self.check_attachment_field(&collection, &field)?;
        self.on_runtime(|client| async move {
            let row = client
                .attach_bytes(
                    &collection,
                    &id,
                    &field,
                    bytes,
                    &content_type,
                    name.as_deref(),
                )
                .await?;
            Ok(Record::from(row))
        })
        .await
    }

    /// The path of the attachment's file on this device: whole and verified (its bytes hash to
    /// `reference.hash`), downloaded first when it is not here (resuming a partial download;
    /// its progress shows in `observe_attachment`). Async; cancelling the call keeps what was
    /// downloaded for the next one. A file the app reads from the path must not be changed or
    /// deleted: the engine owns it (and may evict it from its cache later; ask again then).
    /// Fails `Attachment { NotFound }` when the server has no such file or the user may not read
    /// it, `Attachment { Corrupt }` when the bytes do not match the hash, `Attachment { Io }`
    /// for a local disk failure, `Sync { Offline }` without a network.
    ///
    /// With encryption on, the cache holds only encrypted files: the path is then a decrypted
    /// copy (in `<database>.attachments/open/`, readable by this app only), deleted when the
    /// engine next opens. Prefer `read_attachment` where a range of bytes will do (thumbnails,
    /// previews): it writes no plaintext copy.
    pub async fn attachment(&self, reference: AttachmentRef) -> Result<String, TandemError> {
        self.on_runtime(|client| async move {
            let path = client.attachment(&reference.into()).await?;
            Ok(path.to_string_lossy().into_owned())
        })
        .await
    }

    /// Up to `length` bytes of the attachment's content from byte `offset` (fewer at its end,
    /// none from or past it), downloaded first like `attachment` when it is not on this device.
    /// With encryption on, only the 64 KiB pieces the range covers are decrypted, in memory:
    /// nothing is written in the clear. Fails like `attachment`; an encrypted file that was
    /// changed on disk is `Attachment { Corrupt }`.
    pub async fn read_attachment(
        &self,
        reference: AttachmentRef,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, TandemError> {
        self.on_runtime(|client| async move {
            Ok(client
                .read_attachment(&reference.into(), offset, length)
                .await?)
        })
        .await
    }

    /// The attachment in `field` of the record `collection/id`, or nothing while the field is
    /// empty. Reads the local record (offline too). Fails `NotFound` for a record that does not
    /// exist, `Validation` (`InvalidPayload`, naming the field) when `field` is not an attachment
    /// field of `collection`.
    pub fn attachment_ref(
        &self,
        collection: String,
        id: String,
        field: String,
    ) -> Result<Option<AttachmentRef>, TandemError> {
        self.check_attachment_field(&collection, &field)?;
        let record = self.call(|client| client.get(&collection, &id))?;
        let Some(doc) = record.and_then(|r| r.doc) else {
            return Err(TandemError::NotFound { collection, id });
        };
        let document: serde_json::Value =
            serde_json::from_str(&doc).map_err(|e| TandemError::Internal {
                detail: format!("a stored document is not JSON: {e}"),
            })?;
        Ok(document
            .get(&field)
            .and_then(tandem_protocol::AttachmentRef::from_value)
            .map(AttachmentRef::from))
    }

    /// The state of the attachment with this hash: a transfer under way, else what this account
    /// knows of it (`Remote` for a hash it has never seen). Fails `InvalidArgument` for a hash
    /// that is not 64 lowercase hex digits.
    pub fn attachment_state(&self, hash: String) -> Result<AttachmentState, TandemError> {
        self.call(|client| Ok(client.attachment_state(&hash)?.into()))
    }

    /// Tells `observer` the state of the attachment `hash` right away, then each time it changes
    /// (upload and download progress included), until the subscription is cancelled or
    /// dropped. Follows account switches.
    pub fn observe_attachment(
        &self,
        hash: String,
        observer: Arc<dyn AttachmentObserver>,
    ) -> Result<Arc<Subscription>, TandemError> {
        self.call(|client| {
            let handle = client.observe_attachment(
                &hash,
                Box::new(move |state| observer.on_state(state.into())),
            )?;
            Ok(Subscription::new(handle))
        })
    }
}

impl Tandem {
    /// `Validation` (`InvalidPayload`, naming the field) unless `field` is an attachment field
    /// of `collection`; `Validation` (`UnknownEntity`) for a collection the schema lacks.
    pub(crate) fn check_attachment_field(
        &self,
        collection: &str,
        field: &str,
    ) -> Result<(), TandemError> {
        if !self.schema.collections.contains_key(collection) {
            return Err(TandemError::Validation {
                collection: collection.to_string(),
                field: None,
                reason: super::ValidationReason::UnknownEntity,
                reason_code: "unknown_entity".into(),
                detail: format!("{collection} is not a collection of the schema"),
            });
        }
        if self
            .schema
            .attachment_fields(collection)
            .any(|f| f == field)
        {
            return Ok(());
        }
        Err(TandemError::Validation {
            collection: collection.to_string(),
            field: Some(field.to_string()),
            reason: super::ValidationReason::InvalidPayload,
            reason_code: "invalid_payload".into(),
            detail: format!("{field} is not an attachment field of {collection}"),
        })
    }
}
