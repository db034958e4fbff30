//! Attachments (docs/design/attachments.md §5): files beside records, addressed by their SHA-256.
//!
//! Provisional module root of slice S5 (download side); slice S4 owns this file (the state types,
//! table access, `referenced` and `pinned`) and its version replaces this one at the merge.

pub mod cache;
pub mod download;
pub mod progress;

/// Why an upload failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentFailure {
    TooLarge,
    QuotaExceeded,
    HashMismatch,
    FileMissing,
    Other,
}

impl AttachmentFailure {
    pub fn from_code(code: &str) -> Self {
        match code {
            "attachment_too_large" => Self::TooLarge,
            "quota_exceeded" => Self::QuotaExceeded,
            "hash_mismatch" => Self::HashMismatch,
            "file_missing" => Self::FileMissing,
            _ => Self::Other,
        }
    }
}

/// Where one attachment is, as an app shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentState {
    /// On this device only: not uploaded yet.
    Local,
    Uploading {
        sent: u64,
        total: u64,
    },
    /// On this device and on the server.
    Uploaded,
    /// On the server only (never downloaded here, or evicted from the cache).
    Remote,
    Downloading {
        received: u64,
        total: u64,
    },
    Failed {
        reason: AttachmentFailure,
        detail: String,
    },
}
