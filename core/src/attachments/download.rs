//! Downloads (docs/design/attachments.md §5 "Download, cache, collection"): [`fetch`] gives the
//! path of a whole, verified file, downloading it first when it is not on disk.
//!
//! - One download per file at a time: a per-hash async lock; a second caller waits and then finds
//!   the file on disk.
//! - Resumed: the bytes go to `<hash>.part`, appended from its length with `Range: bytes=<n>-`;
//!   the body is streamed to the file chunk by chunk (never the whole file in memory) while the
//!   SHA-256 runs over the existing prefix first, then over every new chunk.
//! - Verified before it is visible: a digest other than the hash deletes the `.part`
//!   ([`AttachmentErrorKind::Corrupt`]; the next call starts clean); a match renames it to
//!   `<hash>` and marks the row on disk, so the app only ever sees whole, verified files.
//! - Cancellable by dropping the future: the `.part` stays for the next call.
//! - `404` is [`AttachmentErrorKind::NotFound`] (no such blob, or not readable by this user);
//!   network failures are the usual `Sync(Offline)`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::sealed::{self, CacheKey, Sealer};
use crate::engine::{now_ms, Engine};
use crate::error::{AttachmentErrorKind, Error, Result};
use crate::http::network_error;
use crate::observe::ATTACHMENTS;
use crate::store::{files, lock};
use crate::sync::api::SyncApi;
use crate::sync::error::SyncError;

/// Bytes read at a time when hashing a file.
const HASH_BUFFER: usize = 64 * 1024;
/// The write buffer in front of the `.part` file.
const WRITE_BUFFER: usize = 256 * 1024;

/// Refuses anything but 64 lowercase hex digits (a SHA-256), which is also what makes a hash safe
/// as a file name.
pub fn check_blob_hash(hash: &str) -> Result<()> {
    if tandem_protocol::is_valid_blob_hash(hash) {
        Ok(())
    } else {
        Err(Error::invalid(
            "an attachment hash is 64 lowercase hex digits (SHA-256)",
        ))
    }
}

/// The account's attachment directory, next to its database: `guest.attachments/`,
/// `users/<id>.attachments/`.
pub fn dir(engine: &Engine) -> PathBuf {
    engine.files().dir().to_path_buf()
}

/// What [`fetch`] needs of an attachment reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub hash: String,
    pub size: u64,
    pub content_type: String,
}

impl From<&tandem_protocol::AttachmentRef> for Wanted {
    fn from(r: &tandem_protocol::AttachmentRef) -> Self {
        Self {
            hash: r.hash.clone(),
            size: r.size,
            content_type: r.content_type.clone(),
        }
    }
}

/// The attachments of pulled `changes` that their collection prefetches (`"download": "eager"`,
/// at most `eagerMaxBytes`).
pub(crate) fn eager_refs(
    schema: &tandem_protocol::Schema,
    changes: &[tandem_protocol::Change],
) -> Vec<Wanted> {
    let mut wanted = Vec::new();
    for change in changes {
        let (Some(doc), Some(collection)) = (&change.doc, schema.collection(&change.entity)) else {
            continue;
        };
        let options = collection.attachment_options();
        if options.download != tandem_protocol::DownloadPolicy::Eager {
            continue;
        }
        for (_, reference) in collection.attachment_refs(doc) {
            if options.prefetches(reference.size) {
                wanted.push(Wanted::from(&reference));
            }
        }
    }
    wanted
}

/// Told the size of every chunk received, as it arrives (a download that fails later counts too).
pub type Counter<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// The path of the whole, verified file of `wanted`, downloading it first when it is not on
/// disk; the cache is then brought within `cache_limit` (never evicting this file).
pub async fn fetch(
    engine: &Arc<Engine>,
    api: &SyncApi,
    wanted: &Wanted,
    cache_limit: u64,
    count: Counter<'_>,
) -> Result<PathBuf> {
    check_blob_hash(&wanted.hash)?;
    let dir = dir(engine);
    let path = dir.join(&wanted.hash);
    if let Some(found) = use_on_disk(engine, wanted, &path).await? {
        return Ok(found);
    }
    let gate = hash_lock(&path);
    let _held = gate.lock().await;
    // Another caller may have downloaded it while this one waited.
    if let Some(found) = use_on_disk(engine, wanted, &path).await? {
        return Ok(found);
    }
    {
        let dir = dir.clone();
        blocking(move || Ok(files::create_private_dir(&dir)?)).await?;
    }
    // Tells the end of the transfer however it ends (done, failed, or the future dropped).
    let _told = Finished {
        engine: Arc::clone(engine),
        hash: wanted.hash.clone(),
    };
    let received = match download(engine, api, wanted, &dir, count).await {
        Err(Error::Attachment {
            kind: AttachmentErrorKind::Corrupt,
            detail,
        }) => {
            tracing::warn!(hash = %short(&wanted.hash), %detail, "a downloaded attachment did not verify; its partial file was deleted");
            return Err(Error::Attachment {
                kind: AttachmentErrorKind::Corrupt,
                detail,
            });
        }
        other => other?,
    };
    let engine2 = Arc::clone(engine);
    let w = wanted.clone();
    blocking(move || {
        engine2.store().write(|tx| mark_on_disk(tx, &w, now_ms()))?;
        engine2.committed([ATTACHMENTS.to_string()].into());
        Ok(())
    })
    .await?;
    tracing::debug!(hash = %short(&wanted.hash), size = wanted.size, received, "attachment downloaded");
    let engine2 = Arc::clone(engine);
    let keep = wanted.hash.clone();
    if let Err(e) = blocking(move || super::cache::evict(&engine2, cache_limit, Some(&keep))).await
    {
        tracing::warn!(error = %e, "evicting attachments after a download failed");
    }
    Ok(path)
}

/// The file's path when it is on disk (its last use touched); `None` when it must be downloaded.
async fn use_on_disk(
    engine: &Arc<Engine>,
    wanted: &Wanted,
    path: &Path,
) -> Result<Option<PathBuf>> {
    let (engine, wanted, path) = (Arc::clone(engine), wanted.clone(), path.to_path_buf());
    blocking(move || {
        let exists = path.is_file();
        let changed = engine.store().write(|tx| {
            let on_disk: Option<bool> = tx
                .prepare_cached("SELECT on_disk FROM attachments WHERE hash = ?1")?
                .query_row([&wanted.hash], |r| r.get(0))
                .optional()?;
            match (exists, on_disk) {
                (true, Some(true)) => {
                    tx.prepare_cached("UPDATE attachments SET last_used_ms = ?2 WHERE hash = ?1")?
                        .execute(rusqlite::params![wanted.hash, now_ms()])?;
                    Ok(false)
                }
                // A complete file only ever appears verified (renamed from a checked `.part` or
                // an import), so one the table does not know is taken as it is.
                (true, _) => {
                    mark_on_disk(tx, &wanted, now_ms())?;
                    Ok(true)
                }
                (false, Some(true)) => {
                    tracing::warn!(hash = %short(&wanted.hash), "an attachment marked on disk is missing; downloading it again");
                    tx.prepare_cached("UPDATE attachments SET on_disk = 0 WHERE hash = ?1")?
                        .execute([&wanted.hash])?;
                    Ok(true)
                }
                (false, _) => Ok(false),
            }
        })?;
        if changed {
            engine.committed([ATTACHMENTS.to_string()].into());
        }
        Ok(exists.then_some(path))
    })
    .await
}

/// Records `wanted` as on disk and held by the server (it came from there, or from a record the
/// server sent), used now. Inserts the row when the table does not know the hash.
pub(crate) fn mark_on_disk(
    tx: &rusqlite::Transaction<'_>,
    wanted: &Wanted,
    now: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO attachments (hash, size, content_type, on_disk, uploaded, last_used_ms)
         VALUES (?1, ?2, ?3, 1, 1, ?4)
         ON CONFLICT (hash) DO UPDATE SET on_disk = 1, uploaded = 1, last_used_ms = ?4",
    )?
    .execute(rusqlite::params![
        wanted.hash,
        wanted.size as i64,
        wanted.content_type,
        now
    ])?;
    Ok(())
}

/// Downloads into `<hash>.part` from its length on, verifies, renames into place. Returns the
/// bytes received over the network.
async fn download(
    engine: &Arc<Engine>,
    api: &SyncApi,
    wanted: &Wanted,
    dir: &Path,
    count: Counter<'_>,
) -> Result<u64> {
    let hash = wanted.hash.as_str();
    let size = wanted.size;
    let part = dir.join(format!("{hash}.part"));
    // With a cache key the `.part` is sealed as the bytes arrive (never in the clear on disk),
    // and resumes after its last whole chunk.
    let key = engine.files().key().cloned();
    let prefix = {
        let (part, key) = (part.clone(), key.clone());
        blocking(move || start_part(&part, size, key.as_ref())).await?
    };
    let (mut hasher, mut offset, mut sealer) = prefix;
    // Sealed bytes waiting to be written (a fresh file's header, then each chunk's).
    let mut sealed = Vec::new();
    let mut received = 0u64;
    if offset < size {
        let mut response = match api.download_blob(hash, offset).await {
            Ok(response) => response,
            Err(SyncError::Server { status: 404, .. }) => {
                tracing::info!(hash = %short(hash), "attachment download refused: no such blob, or not readable");
                return Err(Error::Attachment {
                    kind: AttachmentErrorKind::NotFound,
                    detail: format!(
                        "the server has no attachment {} this user may read",
                        short(hash)
                    ),
                });
            }
            // The server's blob is shorter than the partial file: it cannot be this file.
            Err(SyncError::Server { status: 416, .. }) => {
                remove_part(&part).await;
                return Err(corrupt(
                    hash,
                    "the server's file is shorter than the reference",
                ));
            }
            Err(e) => return Err(Error::Sync(e)),
        };
        let resumed = response.status().as_u16() == 206;
        if resumed && !range_starts_at(&response, offset) {
            remove_part(&part).await;
            return Err(corrupt(
                hash,
                "the server answered another range than asked",
            ));
        }
        let append = resumed && offset > 0;
        if !append {
            // A `200` to a range request: the whole file comes again (a sealed one under a new
            // nonce prefix).
            hasher = Sha256::new();
            offset = 0;
            if let Some(key) = &key {
                sealer = Some(Sealer::new(key, &mut sealed).map_err(|e| io(hash, e))?);
            }
        }
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true);
        if append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        #[cfg(unix)]
        options.mode(0o600);
        let file = options.open(&part).await.map_err(|e| io(hash, e))?;
        let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let idle = api.request_timeout();
        let progress = engine.attachment_progress();
        progress.downloading(hash, offset, size);
        loop {
            let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                Err(_) => {
                    flush(&mut file, hash).await?;
                    return Err(Error::Sync(SyncError::Offline(format!(
                        "no attachment bytes for {} s; the download resumes from its partial file",
                        idle.as_secs()
                    ))));
                }
                Ok(Err(e)) => {
                    flush(&mut file, hash).await?;
                    return Err(Error::Sync(SyncError::from(network_error(e))));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            if offset + chunk.len() as u64 > size {
                drop(file);
                remove_part(&part).await;
                return Err(corrupt(
                    hash,
                    "the server sent more bytes than the reference's size",
                ));
            }
            hasher.update(&chunk);
            match &mut sealer {
                Some(sealer) => {
                    sealer.push(&chunk, &mut sealed).map_err(|e| io(hash, e))?;
                    file.write_all(&sealed).await.map_err(|e| io(hash, e))?;
                    sealed.clear();
                }
                None => file.write_all(&chunk).await.map_err(|e| io(hash, e))?,
            }
            offset += chunk.len() as u64;
            received += chunk.len() as u64;
            count(chunk.len() as u64);
            progress.downloading(hash, offset, size);
        }
        flush(&mut file, hash).await?;
        file.get_ref().sync_all().await.map_err(|e| io(hash, e))?;
        if offset < size {
            return Err(Error::Sync(SyncError::Offline(
                "the attachment's download ended early; it resumes from its partial file".into(),
            )));
        }
    } else if let (Some(key), None) = (&key, &sealer) {
        // Nothing to download (an empty file): a fresh sealed file of no chunk but the last.
        remove_part(&part).await;
        sealer = Some(Sealer::new(key, &mut sealed).map_err(|e| io(hash, e))?);
    }
    if let Some(sealer) = sealer {
        // The last chunk: the file is whole now. Written before the hash check; a mismatch
        // deletes the file anyway.
        sealer.finish(&mut sealed).map_err(|e| io(hash, e))?;
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&part).await.map_err(|e| io(hash, e))?;
        file.write_all(&sealed).await.map_err(|e| io(hash, e))?;
        file.sync_all().await.map_err(|e| io(hash, e))?;
    }
    let digest = format!("{:x}", hasher.finalize());
    if digest != hash {
        remove_part(&part).await;
        return Err(corrupt(
            hash,
            "the downloaded bytes do not match the attachment's hash",
        ));
    }
    let target = dir.join(hash);
    tokio::fs::rename(&part, &target)
        .await
        .map_err(|e| io(hash, e))?;
    Ok(received)
}

/// Where the `.part` file lets a download start: the SHA-256 state over its plaintext, its
/// length, and with a key the sealer to go on with (`None` with a key: start afresh). A part in
/// the other form (sealed without a key, plain with one: the encryption was just turned on or
/// off) is deleted.
fn start_part(
    part: &Path,
    size: u64,
    key: Option<&CacheKey>,
) -> Result<(Sha256, u64, Option<Sealer>)> {
    let sealed = match sealed::is_sealed(part) {
        Ok(sealed) => sealed,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e.into()),
    };
    match key {
        None if sealed => {
            std::fs::remove_file(part)?;
            Ok((Sha256::new(), 0, None))
        }
        None => {
            let (hasher, offset) = hash_prefix(part, size)?;
            Ok((hasher, offset, None))
        }
        Some(key) => match sealed::resume_part(part, key)? {
            Some(resumed) if resumed.offset < size => {
                Ok((resumed.hasher, resumed.offset, Some(resumed.sealer)))
            }
            _ => Ok((Sha256::new(), 0, None)),
        },
    }
}

/// The SHA-256 state over the `.part` file's bytes and their count (a file longer than `size`
/// cannot be a prefix: it is emptied).
fn hash_prefix(part: &Path, size: u64) -> Result<(Sha256, u64)> {
    let mut hasher = Sha256::new();
    let mut file = match std::fs::File::open(part) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((hasher, 0)),
        Err(e) => return Err(e.into()),
    };
    if file.metadata()?.len() > size {
        drop(file);
        std::fs::remove_file(part)?;
        return Ok((hasher, 0));
    }
    let mut buffer = vec![0; HASH_BUFFER];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        length += n as u64;
    }
    Ok((hasher, length))
}

/// Whether a `206`'s `Content-Range: bytes <start>-<end>/<total>` starts at `offset`.
fn range_starts_at(response: &reqwest::Response, offset: u64) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|start| start.trim().parse::<u64>().ok())
        == Some(offset)
}

async fn flush(file: &mut tokio::io::BufWriter<tokio::fs::File>, hash: &str) -> Result<()> {
    file.flush().await.map_err(|e| io(hash, e))
}

async fn remove_part(part: &Path) {
    match tokio::fs::remove_file(part).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(error = %e, "removing a partial attachment file failed")
        }
        _ => {}
    }
}

fn corrupt(hash: &str, why: &str) -> Error {
    Error::Attachment {
        kind: AttachmentErrorKind::Corrupt,
        detail: format!("attachment {}: {why}", short(hash)),
    }
}

fn io(hash: &str, e: std::io::Error) -> Error {
    Error::Attachment {
        kind: AttachmentErrorKind::Io,
        detail: format!("writing attachment {}: {e}", short(hash)),
    }
}

/// A hash's first 12 hex digits, for logs and messages.
pub(crate) fn short(hash: &str) -> &str {
    // By characters: a stray file's name in the directory need not be ASCII.
    hash.char_indices()
        .nth(12)
        .map_or(hash, |(end, _)| &hash[..end])
}

/// The download lock of one file (the same path from every engine of the process).
fn hash_lock(path: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Mutex::default);
    let mut locks = lock(&LOCKS);
    locks.retain(|_, l| l.strong_count() > 0);
    if let Some(existing) = locks.get(path).and_then(Weak::upgrade) {
        return existing;
    }
    let fresh = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(path.to_path_buf(), Arc::downgrade(&fresh));
    fresh
}

/// Ends the progress of a transfer when dropped (done, failed or cancelled).
struct Finished {
    engine: Arc<Engine>,
    hash: String,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.engine.attachment_progress().finished(&self.hash);
    }
}

/// Runs file and store work on the blocking pool.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(Error::Corrupt(format!("an attachment task failed: {e}"))),
    }
}

/// After a sync run: collects the files nothing references any more, then prefetches `eager`
/// (attachments of pulled records of `"download": "eager"` collections, each within its
/// collection's `eagerMaxBytes`) that are not on disk. Failures are logged and never fail the
/// run. `moved` hears `(hash, size, bytes received so far by the prefetch)` as chunks arrive.
/// Returns the bytes received.
pub async fn after_run(
    engine: &Arc<Engine>,
    api: &SyncApi,
    eager: Vec<Wanted>,
    cache_limit: u64,
    moved: &(dyn Fn(&str, u64, u64) + Send + Sync),
) -> u64 {
    let collector = Arc::clone(engine);
    if let Err(e) = blocking(move || super::cache::collect(&collector)).await {
        tracing::warn!(error = %e, "collecting unreferenced attachments failed");
    }
    let received = std::sync::atomic::AtomicU64::new(0);
    let mut seen = std::collections::HashSet::new();
    for wanted in eager {
        if !seen.insert(wanted.hash.clone()) {
            continue;
        }
        let count = |n: u64| {
            let total = received.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            moved(&wanted.hash, wanted.size, total);
        };
        match fetch(engine, api, &wanted, cache_limit, &count).await {
            Ok(_) => {}
            Err(Error::Sync(SyncError::Offline(why))) => {
                tracing::info!(hash = %short(&wanted.hash), error = %why, "eager attachment prefetch stopped: offline");
                break;
            }
            Err(e) => {
                tracing::warn!(hash = %short(&wanted.hash), error = %e, "eager attachment prefetch failed")
            }
        }
    }
    received.into_inner()
}
