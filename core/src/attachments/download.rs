//! Downloads.

use crate::error::{Error, Result};

/// Refuses anything but 64 lowercase hex digits (a SHA-256), which is also what makes a hash safe
/// as a file name.
pub fn check_blob_hash(hash: &str) -> Result<()> {
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(Error::invalid(
            "an attachment hash is 64 lowercase hex digits (SHA-256)",
        ))
    }
}
