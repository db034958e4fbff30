//! `tandem attach` and `tandem attachment`: files in a record's attachment field (issue 15).
//!
//! - `attach COLLECTION ID FIELD FILE [--content-type T] [--name N]` copies the file into the
//!   device (hashing it) and sets the field to its reference; prints the record (`--json`: the
//!   record as `tandem get` prints it). The next `tandem sync` uploads the file, then pushes the
//!   change.
//! - `attachment COLLECTION ID FIELD --out FILE` writes the field's file to FILE (`-`: standard
//!   output), downloading it first when it is not on the device; on a terminal the download's
//!   progress goes to standard error. Prints (`--json`) `{"out", "hash", "size", "contentType",
//!   "name"}`. A field that is empty fails `not_found`; a file the server does not have or the
//!   user may not read fails `attachment_not_found`, a download whose bytes do not match the hash
//!   `attachment_corrupt`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use tandem::{AttachmentObserver, AttachmentState, Tandem};
use tokio::runtime::Runtime;

use crate::commands::Reply;
use crate::error::CliError;
use crate::render;

/// The record field a command works on.
pub struct Target {
    pub collection: String,
    pub id: String,
    pub field: String,
}

/// `tandem attach`.
pub fn attach(
    rt: &Runtime,
    tandem: &Tandem,
    Target {
        collection,
        id,
        field,
    }: Target,
    file: &Path,
    content_type: Option<String>,
    name: Option<String>,
) -> Result<Reply, CliError> {
    if !file.is_file() {
        return Err(CliError::new(
            "invalid_argument",
            format!("{} is not a readable file", file.display()),
        ));
    }
    let path = file.to_string_lossy().into_owned();
    let record =
        rt.block_on(tandem.attach_file(collection, id, field, path, content_type, name))?;
    Ok(Reply::new(
        render::record_json(&record),
        render::record_line(&record),
    ))
}

/// `tandem attachment`.
pub fn attachment(
    rt: &Runtime,
    tandem: &Tandem,
    Target {
        collection,
        id,
        field,
    }: Target,
    out: &Path,
) -> Result<Reply, CliError> {
    let Some(reference) = tandem.attachment_ref(collection.clone(), id.clone(), field.clone())?
    else {
        return Err(CliError::new(
            "not_found",
            format!("{collection}/{id} has no file in {field}"),
        ));
    };
    let to_stdout = out == Path::new("-");
    // Progress on a terminal only: a script reading stderr gets nothing but errors.
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tandem.observe_attachment(reference.hash.clone(), Arc::new(Progress)))
        .transpose()?;
    let cached = rt.block_on(tandem.attachment(reference.clone()));
    if let Some(subscription) = progress {
        subscription.cancel();
        eprint!("\r\x1b[K");
    }
    let cached = PathBuf::from(cached?);
    if to_stdout {
        let mut source = std::fs::File::open(&cached)?;
        let mut stdout = std::io::stdout().lock();
        std::io::copy(&mut source, &mut stdout)?;
        stdout.flush()?;
    } else {
        copy_into_place(&cached, out)?;
    }
    let json = json!({
        "out": out.to_string_lossy(),
        "hash": reference.hash,
        "size": reference.size,
        "contentType": reference.content_type,
        "name": reference.name,
    });
    let text = if to_stdout {
        String::new()
    } else {
        format!(
            "wrote {} ({}, {})",
            out.display(),
            bytes(reference.size),
            reference.content_type
        )
    };
    Ok(Reply::new(json, text))
}

/// Copies the cached file to `out` through a temporary file next to it, so `out` is never seen
/// half written.
fn copy_into_place(cached: &Path, out: &Path) -> Result<(), CliError> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = out
        .file_name()
        .ok_or_else(|| CliError::usage(format!("--out {} names no file", out.display())))?;
    let temp = dir.join(format!(".{}.tandem-part", file_name.to_string_lossy()));
    std::fs::copy(cached, &temp)?;
    std::fs::rename(&temp, out).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    Ok(())
}

/// The attachment part of `tandem status --json`: `{"pending", "bytesPending", "failed"}`.
pub fn status_json(status: &tandem::SyncStatus, failed: u64) -> Value {
    json!({
        "pending": status.attachments_pending,
        "bytesPending": status.attachment_bytes_pending,
        "failed": failed,
    })
}

/// How many unsent changes were refused for their attachment (too large, over quota, damaged,
/// missing here or not readable on the server): the `failed` of `tandem status`.
pub fn failed_uploads(tandem: &Tandem) -> Result<u64, CliError> {
    const CODES: [&str; 4] = [
        "attachment_too_large",
        "quota_exceeded",
        "hash_mismatch",
        "attachment_missing",
    ];
    Ok(tandem
        .rejected()?
        .iter()
        .filter(|r| CODES.contains(&r.reason_code.as_str()))
        .count() as u64)
}

/// `12.3 MB`.
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// Prints download progress on one line of standard error.
struct Progress;

impl AttachmentObserver for Progress {
    fn on_state(&self, state: AttachmentState) {
        if let AttachmentState::Downloading { received, total } = state {
            let percent = (received * 100).checked_div(total).unwrap_or(100);
            eprint!(
                "\r\x1b[Kdownloading {} / {} ({percent}%)",
                bytes(received),
                bytes(total)
            );
            let _ = std::io::stderr().flush();
        }
    }
}
