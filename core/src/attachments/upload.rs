//! The sync run's upload phase (`sync/run.rs` runs it before pushing): every attachment named by
//! an unsent change that the server does not hold for us yet is uploaded, resumably, in chunks
//! (docs/protocol.md "Attachments"):
//!
//! 1. `POST /blobs/uploads` opens (or reopens) the upload: `complete` means the server already
//!    holds the blob for this user (another device sent it, or this one before a crash), and
//!    nothing is sent; otherwise it answers the offset it holds durably.
//! 2. `PATCH` chunks of `chunkBytes` from that offset, each streamed from the file; a
//!    `409 offset_mismatch` continues from the offset the server names. An acknowledged chunk
//!    is durable on the server, so a run cut anywhere (network, kill) resumes at the next open
//!    with at most one chunk sent twice.
//! 3. The last chunk's answer is `complete` (the server verified the hash): the row is marked
//!    uploaded in one commit, and the changes naming it may be pushed.
//!
//! A network failure or a 5xx fails the run like a push failure would (backoff; the next run
//! reopens and resumes). A permanent refusal (`attachment_too_large`, `quota_exceeded`,
//! `hash_mismatch` twice in a row, the local file gone) fails that attachment: its row keeps the
//! failure and every unsent change naming it becomes a dead letter with that reason (one
//! transaction, [`super::fail_upload`]); the run goes on with the others.

use std::sync::Arc;

use tandem_protocol::{OpenUploadRequest, DEFAULT_CHUNK_BYTES};

use super::download::short;
use super::{AttachmentFailure, AttachmentRow, Files};
use crate::crash::{self, Point};
use crate::engine::{now_ms, Engine};
use crate::sync::api::{SyncApi, UploadAnswer, UploadRefusal};
use crate::sync::error::SyncError;
use crate::sync::run::{blocking, SyncReport, TransferProgress};

/// How many times an upload is reopened after its open upload vanished (`404` to a chunk).
const REOPENS: u32 = 3;
/// How many answers in a row may leave the offset where it was before the run gives up (a
/// server that misbehaves must not keep a run busy for ever).
const STALLS: u32 = 3;

/// What became of one attachment.
enum Done {
    Uploaded,
    Failed(AttachmentFailure, String),
}

/// Runs the upload phase. Returns when every attachment of the work list is uploaded or failed
/// for good; a network or server failure ends it with that error (the run fails).
pub async fn run(
    engine: &Arc<Engine>,
    api: &SyncApi,
    report: &mut SyncReport,
    on_transfer: TransferProgress<'_>,
) -> Result<(), SyncError> {
    let (work, failed) = blocking(engine, |e| {
        let schema = e.schema();
        e.store().read(|c| {
            Ok((
                super::upload_work(c, schema)?,
                super::failed_but_named(c, schema)?,
            ))
        })
    })
    .await?;
    // Changes written after their attachment failed for good cannot be sent either.
    for row in failed {
        let failure = row
            .failure_code
            .as_deref()
            .map_or(AttachmentFailure::Other, AttachmentFailure::parse);
        fail(engine, report, &row, failure, row.failure_detail.clone()).await?;
    }
    if work.is_empty() {
        return Ok(());
    }
    let files = engine.files();
    let mut run_bytes = 0u64;
    for row in work {
        match upload_one(api, &files, &row, report, on_transfer, &mut run_bytes).await? {
            Done::Uploaded => {
                let hash = row.hash.clone();
                blocking(engine, move |e| {
                    e.store().write(|tx| super::mark_uploaded(tx, &hash))?;
                    // The attachment's state observers read the row again.
                    e.committed([crate::observe::ATTACHMENTS.to_string()].into());
                    Ok(())
                })
                .await?;
                report.attachments_uploaded += 1;
                tracing::debug!(
                    hash = short(&row.hash),
                    size = row.size,
                    "attachment uploaded"
                );
            }
            Done::Failed(failure, detail) => {
                fail(engine, report, &row, failure, Some(detail)).await?;
            }
        }
    }
    Ok(())
}

/// Records a permanent failure and makes the changes naming the attachment dead letters.
async fn fail(
    engine: &Arc<Engine>,
    report: &mut SyncReport,
    row: &AttachmentRow,
    failure: AttachmentFailure,
    detail: Option<String>,
) -> Result<(), SyncError> {
    tracing::warn!(
        hash = short(&row.hash),
        size = row.size,
        failure = failure.code(),
        detail = detail.as_deref().unwrap_or(""),
        "attachment upload failed for good"
    );
    let hash = row.hash.clone();
    let dead = blocking(engine, move |e| {
        let schema = e.schema();
        let (changed, dead) = e.store().write(|tx| {
            super::fail_upload(tx, schema, &hash, failure, detail.as_deref(), now_ms())
        })?;
        let mut changed = changed;
        changed.insert(crate::observe::ATTACHMENTS.to_string());
        e.committed(changed);
        Ok(dead)
    })
    .await?;
    report.rejected += dead;
    Ok(())
}

/// Uploads one attachment from where the server stands.
async fn upload_one(
    api: &SyncApi,
    files: &Files,
    row: &AttachmentRow,
    report: &mut SyncReport,
    on_transfer: TransferProgress<'_>,
    run_bytes: &mut u64,
) -> Result<Done, SyncError> {
    let path = files.path(&row.hash);
    // The plaintext's length: the file's, or what a sealed file's layout says (its last chunk
    // authenticated).
    let length = match files.key() {
        None => std::fs::metadata(&path).and_then(|meta| {
            if meta.is_file() {
                Ok(meta.len())
            } else {
                Err(std::io::Error::other("not a file"))
            }
        }),
        Some(key) => super::sealed::SealedFile::open(&path, key)
            .map(|file| file.len())
            .map_err(|e| std::io::Error::other(e.to_string())),
    };
    match length {
        Ok(length) if length == row.size => {}
        Ok(length) => {
            return Ok(Done::Failed(
                AttachmentFailure::FileMissing,
                format!(
                    "the local file has {} bytes, the attachment {}",
                    length, row.size
                ),
            ))
        }
        Err(e) => {
            return Ok(Done::Failed(
                AttachmentFailure::FileMissing,
                format!("the local file cannot be read: {e}"),
            ))
        }
    }
    let request = OpenUploadRequest {
        hash: row.hash.clone(),
        size: row.size,
        content_type: row.content_type.clone(),
    };
    let mut mismatches = 0;
    let mut reopens = 0;
    'open: loop {
        let (answer, _) = api.open_upload(&request).await?;
        let status = match answer {
            UploadAnswer::Status(status) => status,
            UploadAnswer::Refused(refusal) => match permanent(refusal) {
                Ok(done) => return Ok(done),
                Err(refusal) => return Err(unexpected("open", &refusal)),
            },
        };
        if status.complete {
            // The server holds it for us (another device, or a run cut after its last chunk).
            on_transfer(&row.hash, row.size, row.size, *run_bytes);
            return Ok(Done::Uploaded);
        }
        let chunk = status
            .chunk_bytes
            .filter(|c| *c > 0)
            .unwrap_or(DEFAULT_CHUNK_BYTES);
        let mut offset = status.offset.min(row.size);
        let mut stalls = 0;
        on_transfer(&row.hash, offset, row.size, *run_bytes);
        loop {
            let len = chunk.min(row.size - offset);
            let sent = api
                .send_chunk(&row.hash, &path, files.key(), offset, len)
                .await?;
            let (answer, _) = match sent {
                Ok(answer) => answer,
                Err(e) => {
                    return Ok(Done::Failed(
                        AttachmentFailure::FileMissing,
                        format!("reading the local file failed: {e}"),
                    ))
                }
            };
            let before = offset;
            // Answered: the body went over the wire (a refused chunk's too, which the server
            // reads and drops), so it counts whatever the answer.
            report.attachment_bytes_sent += len;
            *run_bytes += len;
            match answer {
                UploadAnswer::Status(status) => {
                    offset = status.offset.min(row.size);
                    on_transfer(&row.hash, offset, row.size, *run_bytes);
                    crash::reached(Point::UploadChunkSent);
                    if status.complete {
                        return Ok(Done::Uploaded);
                    }
                }
                UploadAnswer::Refused(UploadRefusal::OffsetMismatch(at)) => {
                    tracing::debug!(
                        hash = short(&row.hash),
                        sent_at = offset,
                        server_at = at,
                        "upload offset differs; continuing from the server's"
                    );
                    offset = at.min(row.size);
                }
                UploadAnswer::Refused(UploadRefusal::HashMismatch(detail)) => {
                    mismatches += 1;
                    if mismatches >= 2 {
                        return Ok(Done::Failed(AttachmentFailure::HashMismatch, detail));
                    }
                    tracing::info!(
                        hash = short(&row.hash),
                        "the server found a hash mismatch; sending the file again"
                    );
                    continue 'open;
                }
                UploadAnswer::Refused(UploadRefusal::NotFound) if reopens < REOPENS => {
                    reopens += 1;
                    continue 'open;
                }
                UploadAnswer::Refused(refusal) => match permanent(refusal) {
                    Ok(done) => return Ok(done),
                    Err(refusal) => return Err(unexpected("chunk", &refusal)),
                },
            }
            // An answer that did not complete the upload must move it on (an empty file's one
            // empty chunk completes it at once).
            if offset <= before {
                stalls += 1;
                if stalls >= STALLS {
                    return Err(SyncError::Server {
                        status: 200,
                        detail: format!(
                            "the upload of {} does not advance past offset {offset}",
                            short(&row.hash)
                        ),
                    });
                }
            } else {
                stalls = 0;
            }
        }
    }
}

/// The permanent failure a refusal means, or the refusal back when it is not one.
fn permanent(refusal: UploadRefusal) -> Result<Done, UploadRefusal> {
    match refusal {
        UploadRefusal::TooLarge(detail) => Ok(Done::Failed(AttachmentFailure::TooLarge, detail)),
        UploadRefusal::QuotaExceeded(detail) => {
            Ok(Done::Failed(AttachmentFailure::QuotaExceeded, detail))
        }
        UploadRefusal::HashMismatch(detail) => {
            Ok(Done::Failed(AttachmentFailure::HashMismatch, detail))
        }
        other => Err(other),
    }
}

fn unexpected(call: &str, refusal: &UploadRefusal) -> SyncError {
    SyncError::Server {
        status: match refusal {
            UploadRefusal::NotFound => 404,
            UploadRefusal::OffsetMismatch(_) => 409,
            _ => 0,
        },
        detail: format!("unexpected answer to an upload {call}: {refusal:?}"),
    }
}
