//! Sealed attachment files: the encrypted form of a file in the attachment cache
//! (docs/design/encryption.md §3), used when the store is encrypted.
//!
//! A sealed file is XChaCha20-Poly1305 in the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway, Vizár: "Online authenticated-encryption and its nonce-reuse misuse-resistance";
//! RustCrypto's `aead::stream::StreamBE32`, the primitive behind `EncryptorBE32` /
//! `DecryptorBE32`), laid out as
//!
//! ```text
//! "TNDMENC1" (8 bytes) · nonce prefix (19 random bytes) · chunk 0 · chunk 1 · … · chunk n-1
//! ```
//!
//! where every chunk is 64 KiB of plaintext sealed with its 16-byte tag, except the last, which
//! holds the remaining 0..=64 KiB and is sealed with STREAM's "last" flag (so a 0-byte file is
//! one empty last chunk). A chunk's nonce is the prefix, its index (32-bit big endian) and the
//! flag, so:
//!
//! - a flipped byte anywhere fails that chunk's tag (a changed nonce prefix fails every chunk);
//! - chunks swapped or moved fail (their index is in the nonce);
//! - a file cut short fails: its new last chunk was not sealed as last, or the cut left a chunk
//!   shorter than a tag ([`SealedFile::open`] authenticates the last chunk up front);
//! - another key fails every chunk (it cannot be told apart from tampering: both are
//!   [`SealError::Authentication`]).
//!
//! Every such failure is a [`SealError`], which the engine reports as `Attachment { Corrupt }`.
//!
//! The plaintext length follows from the file's length, and any chunk can be opened on its own,
//! so [`SealedFile::read_at`] decrypts only the chunks a read covers. [`Sealer`] encrypts a
//! stream as its bytes arrive (a download is never whole in memory nor on disk in the clear) and
//! can resume after the last whole chunk of a partial file ([`resume_part`]). The stateful
//! `EncryptorBE32` cannot start at a chunk other than 0, so this module drives the primitive
//! with its own counter; the bytes are the same.
//!
//! The key: [`CacheKey::derive`], HKDF-SHA256 of the 32-byte database key with info
//! `"tandem attachment cache v1"` (no salt: the input is already a uniformly random key); it is
//! never stored.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::XChaCha20Poly1305;
use sha2::{Digest, Sha256};

use crate::error::{AttachmentErrorKind, Error};
use crate::store::cipher::DatabaseKey;

/// The first bytes of every sealed file.
pub const MAGIC: &[u8; 8] = b"TNDMENC1";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// The random part of every chunk's nonce (24-byte XChaCha20 nonce less STREAM's 5 bytes).
const NONCE_PREFIX: usize = 19;
/// Poly1305's tag, after every chunk.
const TAG: usize = 16;
/// The header: magic and nonce prefix.
pub const HEADER: usize = MAGIC.len() + NONCE_PREFIX;
/// A whole (not last) chunk on disk.
const SEALED_CHUNK: usize = CHUNK + TAG;
/// HKDF's info for the attachment cache key.
const KEY_INFO: &[u8] = b"tandem attachment cache v1";

type Stream = StreamBE32<XChaCha20Poly1305>;

/// The attachment cache's key, derived from the database key. Its bytes never appear in a
/// `Debug` output, a message or a log.
#[derive(Clone, PartialEq, Eq)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// HKDF-SHA256 of the 32-byte database key, info `"tandem attachment cache v1"`.
    pub fn derive(database_key: &DatabaseKey) -> Self {
        let mut okm = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, database_key.as_bytes())
            .expand(KEY_INFO, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(okm)
    }

    fn stream(&self, prefix: &[u8; NONCE_PREFIX]) -> Stream {
        let aead = XChaCha20Poly1305::new((&self.0).into());
        Stream::from_aead(aead, prefix.into())
    }
}

impl Drop for CacheKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheKey(…)")
    }
}

/// Why a sealed file could not be read. All but `Io` mean the file is not what was sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The file does not start with `TNDMENC1` (a plaintext file, or a damaged header).
    #[error("the file is not a sealed attachment file")]
    NotSealed,
    /// The file is shorter than its layout allows (cut short).
    #[error("the sealed file is truncated")]
    Truncated,
    /// A chunk did not authenticate: tampered with, moved, cut short, or sealed with another key.
    #[error("chunk {chunk} of the sealed file does not authenticate (tampered, reordered, truncated or another key)")]
    Authentication { chunk: u64 },
    /// The file is longer than STREAM's 2^32 chunks allow.
    #[error("the sealed file is too large")]
    TooLarge,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<SealError> for Error {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Io(e) => Error::Attachment {
                kind: AttachmentErrorKind::Io,
                detail: format!("reading a sealed attachment file: {e}"),
            },
            other => Error::Attachment {
                kind: AttachmentErrorKind::Corrupt,
                detail: other.to_string(),
            },
        }
    }
}

/// Whether the file at `path` starts with the sealed header's magic (the cache's files are
/// classified by it). A file shorter than the magic is not sealed.
pub fn is_sealed(path: &Path) -> io::Result<bool> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; MAGIC.len()];
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The plaintext length of a sealed file of `file_len` bytes, and its number of chunks.
fn layout(file_len: u64) -> Result<(u64, u64), SealError> {
    let body = file_len
        .checked_sub(HEADER as u64)
        .ok_or(SealError::Truncated)?;
    if body < TAG as u64 {
        return Err(SealError::Truncated);
    }
    let sealed = SEALED_CHUNK as u64;
    let chunks = body.div_ceil(sealed);
    let last = body - (chunks - 1) * sealed;
    if last < TAG as u64 {
        return Err(SealError::Truncated);
    }
    if chunks > u64::from(u32::MAX) {
        return Err(SealError::TooLarge);
    }
    Ok((body - chunks * TAG as u64, chunks))
}

/// The chunk a plaintext offset falls in, as STREAM's position.
fn position(chunk: u64) -> Result<u32, SealError> {
    u32::try_from(chunk).map_err(|_| SealError::TooLarge)
}

/// Encrypts a stream chunk by chunk: [`push`](Self::push) takes plaintext as it arrives and
/// appends the sealed form of every chunk it completes, [`finish`](Self::finish) seals the rest
/// as the last chunk. At most one chunk of plaintext is held.
pub struct Sealer {
    stream: Stream,
    next: u32,
    pending: Vec<u8>,
}

impl Sealer {
    /// A new stream with a random nonce prefix; `out` receives its header.
    pub fn new(key: &CacheKey, out: &mut Vec<u8>) -> io::Result<Self> {
        let mut prefix = [0u8; NONCE_PREFIX];
        getrandom::fill(&mut prefix).map_err(|e| io::Error::other(e.to_string()))?;
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&prefix);
        Ok(Self {
            stream: key.stream(&prefix),
            next: 0,
            pending: Vec::with_capacity(CHUNK + TAG),
        })
    }

    /// Takes `data`; appends to `out` the sealed chunks it completes. A full chunk is sealed only
    /// when more bytes follow it (the last chunk may be full).
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !data.is_empty() {
            if self.pending.len() == CHUNK {
                self.seal(false, out)?;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals what is left as the last chunk into `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.seal(true, out)
    }

    fn seal(&mut self, last: bool, out: &mut Vec<u8>) -> io::Result<()> {
        self.stream
            .encrypt_in_place(self.next, last, b"", &mut self.pending)
            .map_err(|_| io::Error::other("sealing an attachment chunk failed"))?;
        out.extend_from_slice(&self.pending);
        self.pending.clear();
        self.next = self
            .next
            .checked_add(1)
            .ok_or_else(|| io::Error::other("an attachment is too large to seal"))?;
        Ok(())
    }
}

/// A [`Sealer`] writing into `W` and hashing the plaintext (SHA-256), for files written in one
/// go (imports, conversion, copies).
pub struct SealWriter<W: Write> {
    out: W,
    sealer: Sealer,
    buffer: Vec<u8>,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> SealWriter<W> {
    /// Writes the header to `out`.
    pub fn new(mut out: W, key: &CacheKey) -> io::Result<Self> {
        let mut buffer = Vec::with_capacity(SEALED_CHUNK);
        let sealer = Sealer::new(key, &mut buffer)?;
        out.write_all(&buffer)?;
        buffer.clear();
        Ok(Self {
            out,
            sealer,
            buffer,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Seals the last chunk; returns the output, the plaintext's SHA-256 (lowercase hex) and its
    /// length. The output is not flushed nor synced.
    pub fn finish(mut self) -> io::Result<(W, String, u64)> {
        self.sealer.finish(&mut self.buffer)?;
        self.out.write_all(&self.buffer)?;
        Ok((self.out, format!("{:x}", self.hasher.finalize()), self.size))
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        self.sealer.push(data, &mut self.buffer)?;
        if !self.buffer.is_empty() {
            self.out.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A sealed file opened for reading: any range of its plaintext, decrypting only the chunks it
/// covers.
pub struct SealedFile {
    file: File,
    stream: Stream,
    len: u64,
    chunks: u64,
}

impl fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedFile")
            .field("len", &self.len)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

impl SealedFile {
    /// Opens the sealed file at `path` with `key`: checks the header and the layout, and
    /// authenticates the last chunk (so a file cut short, or another key, fails here).
    pub fn open(path: &Path, key: &CacheKey) -> Result<Self, SealError> {
        let mut file = File::open(path)?;
        let file_len = file.metadata()?.len();
        if file_len < HEADER as u64 {
            // Too short for a header: a sealed file cut inside it, or a tiny plaintext one.
            return Err(if is_sealed(path)? {
                SealError::Truncated
            } else {
                SealError::NotSealed
            });
        }
        let mut header = [0u8; HEADER];
        file.read_exact(&mut header)?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(SealError::NotSealed);
        }
        let mut prefix = [0u8; NONCE_PREFIX];
        prefix.copy_from_slice(&header[MAGIC.len()..]);
        let (len, chunks) = layout(file_len)?;
        let mut opened = Self {
            file,
            stream: key.stream(&prefix),
            len,
            chunks,
        };
        opened.chunk(chunks - 1)?;
        Ok(opened)
    }

    /// The plaintext's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The plaintext of chunk `index`, authenticated.
    fn chunk(&mut self, index: u64) -> Result<Vec<u8>, SealError> {
        let last = index + 1 == self.chunks;
        let plain = if last {
            self.len - index * CHUNK as u64
        } else {
            CHUNK as u64
        };
        let mut buffer = vec![0u8; plain as usize + TAG];
        self.file
            .seek(SeekFrom::Start(HEADER as u64 + index * SEALED_CHUNK as u64))?;
        self.file.read_exact(&mut buffer).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                SealError::Truncated
            } else {
                SealError::Io(e)
            }
        })?;
        self.stream
            .decrypt_in_place(position(index)?, last, b"", &mut buffer)
            .map_err(|_| SealError::Authentication { chunk: index })?;
        Ok(buffer)
    }

    /// Up to `len` plaintext bytes from `offset` (fewer at the end; none from or past the end),
    /// decrypting only the chunks they lie in.
    pub fn read_at(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, SealError> {
        if offset >= self.len || len == 0 {
            return Ok(Vec::new());
        }
        let end = offset.saturating_add(len).min(self.len);
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut at = offset;
        while at < end {
            let index = at / CHUNK as u64;
            let chunk = self.chunk(index)?;
            let start = (at - index * CHUNK as u64) as usize;
            let stop = ((end - index * CHUNK as u64) as usize).min(chunk.len());
            out.extend_from_slice(&chunk[start..stop]);
            at = index * CHUNK as u64 + stop as u64;
        }
        Ok(out)
    }

    /// Writes the whole plaintext to `out`, chunk by chunk; returns its SHA-256 (lowercase hex).
    pub fn copy_to(&mut self, out: &mut dyn Write) -> Result<String, SealError> {
        let mut hasher = Sha256::new();
        for index in 0..self.chunks {
            let chunk = self.chunk(index)?;
            hasher.update(&chunk);
            out.write_all(&chunk)?;
        }
        Ok(format!("{:x}", hasher.finalize()))
    }
}

/// Where a partial sealed download stands: the sealer to go on with, the plaintext's hash so
/// far and its length (always whole chunks).
pub struct Resumed {
    pub sealer: Sealer,
    pub hasher: Sha256,
    pub offset: u64,
}

/// Takes up the partial sealed download at `part` (`<hash>.part`): its whole chunks are
/// authenticated and hashed, anything after the last good chunk (a chunk half written when the
/// download stopped) is cut off, and the sealer continues after them. `None` when there is
/// nothing to resume (no file, no whole header, not sealed, or its first chunk fails: then the
/// file is emptied by the caller's fresh start).
pub fn resume_part(part: &Path, key: &CacheKey) -> io::Result<Option<Resumed>> {
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut header = [0u8; HEADER];
    if file.read_exact(&mut header).is_err() || &header[..MAGIC.len()] != MAGIC {
        return Ok(None);
    }
    let mut prefix = [0u8; NONCE_PREFIX];
    prefix.copy_from_slice(&header[MAGIC.len()..]);
    let stream = key.stream(&prefix);
    let mut hasher = Sha256::new();
    let mut good = 0u32;
    let mut buffer = vec![0u8; SEALED_CHUNK];
    loop {
        match file.read_exact(&mut buffer) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        if stream
            .decrypt_in_place(good, false, b"", &mut buffer)
            .is_err()
        {
            break;
        }
        hasher.update(&buffer);
        buffer.resize(SEALED_CHUNK, 0);
        good += 1;
    }
    file.set_len(HEADER as u64 + u64::from(good) * SEALED_CHUNK as u64)?;
    file.sync_all()?;
    Ok(Some(Resumed {
        sealer: Sealer {
            stream,
            next: good,
            pending: Vec::with_capacity(SEALED_CHUNK),
        },
        hasher,
        offset: u64::from(good) * CHUNK as u64,
    }))
}

/// What [`convert_cache`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Files re-sealed, sealed or unsealed.
    pub converted: u64,
    /// Files already in the target form (a half-converted cache's done part).
    pub already: u64,
    /// Files neither key opens: left as they are (never deleted; logged).
    pub unreadable: u64,
}

/// Brings every complete file of the attachment cache `dir` to the form `to` says (sealed with
/// that key, or plain for `None`), from `from` (the key files are sealed with now, or `None` for
/// plain). Each file goes through a `<hash>.converting` sibling, fsynced, and a rename over the
/// original, so a crash leaves either form of every file; files are classified by their header
/// (and, when both forms are sealed, by which key opens them), so a half-converted cache
/// finishes on the next call. Leftover `.converting` files (the rename did not happen: the
/// original is intact) and partial downloads (`.part`, in the old form) are deleted. A missing
/// directory is an empty cache. The encrypted store's conversion calls it after its own rename
/// (docs/design/encryption.md §4 step 5).
pub fn convert_cache(
    dir: &Path,
    from: Option<&CacheKey>,
    to: Option<&CacheKey>,
) -> crate::error::Result<Converted> {
    let mut done = Converted::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e.into()),
    };
    let mut hashes = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".converting") || name.ends_with(".part") {
            std::fs::remove_file(entry.path())?;
        } else if tandem_protocol::is_valid_blob_hash(name) {
            hashes.push(name.to_string());
        }
    }
    for hash in hashes {
        let path = dir.join(&hash);
        let short = super::download::short(&hash);
        let sealed = is_sealed(&path)?;
        // Which key opens the file now; `None` = it is plain.
        let current: Option<&CacheKey> = match (sealed, to, from) {
            (false, _, _) => None,
            (true, Some(to), _) if SealedFile::open(&path, to).is_ok() => {
                done.already += 1;
                continue;
            }
            (true, _, Some(from)) if SealedFile::open(&path, from).is_ok() => Some(from),
            (true, _, _) => {
                tracing::warn!(hash = %short, "an attachment cache file opens with neither key; left as it is");
                done.unreadable += 1;
                continue;
            }
        };
        if current.is_none() && to.is_none() {
            done.already += 1;
            continue;
        }
        let tmp = dir.join(format!("{hash}.converting"));
        let result = convert_file(&path, &tmp, current, to);
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(hash = %short, error = %e, "converting an attachment cache file failed");
            return Err(e);
        }
        std::fs::rename(&tmp, &path)?;
        done.converted += 1;
    }
    if done.converted > 0 {
        #[cfg(unix)]
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        tracing::debug!(
            converted = done.converted,
            already = done.already,
            sealed = to.is_some(),
            "attachment cache converted"
        );
    }
    Ok(done)
}

/// Writes `path`'s plaintext (read through `from`, or as it is) to `tmp` (sealed with `to`, or
/// plain), fsynced.
pub(crate) fn convert_file(
    path: &Path,
    tmp: &Path,
    from: Option<&CacheKey>,
    to: Option<&CacheKey>,
) -> crate::error::Result<()> {
    let out = crate::store::files::open_private(
        tmp,
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true),
    )?;
    let out = match to {
        Some(to) => {
            let mut sealed = SealWriter::new(io::BufWriter::new(out), to)?;
            copy_plaintext(path, from, &mut sealed)?;
            let (out, _, _) = sealed.finish()?;
            out.into_inner().map_err(|e| e.into_error())?
        }
        None => {
            let mut out = io::BufWriter::new(out);
            copy_plaintext(path, from, &mut out)?;
            out.into_inner().map_err(|e| e.into_error())?
        }
    };
    out.sync_all()?;
    Ok(())
}

fn copy_plaintext(
    path: &Path,
    key: Option<&CacheKey>,
    out: &mut dyn Write,
) -> crate::error::Result<()> {
    match key {
        Some(key) => {
            SealedFile::open(path, key)?.copy_to(out)?;
        }
        None => {
            io::copy(&mut File::open(path)?, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::derive(&DatabaseKey::from_bytes([n; 32]))
    }

    /// Bytes no chunk repeats: a counter, so a swap or a shift changes the plaintext.
    fn bytes(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
            .collect()
    }

    fn seal_to(path: &Path, plain: &[u8], key: &CacheKey) -> String {
        let file = File::create(path).unwrap();
        let mut writer = SealWriter::new(file, key).unwrap();
        // Odd pieces, so chunk edges fall inside writes.
        for piece in plain.chunks(7_001) {
            writer.write_all(piece).unwrap();
        }
        let (file, hash, size) = writer.finish().unwrap();
        file.sync_all().unwrap();
        assert_eq!(size, plain.len() as u64);
        hash
    }

    fn unseal(path: &Path, key: &CacheKey) -> Result<Vec<u8>, SealError> {
        let mut file = SealedFile::open(path, key)?;
        let mut out = Vec::new();
        file.copy_to(&mut out)?;
        Ok(out)
    }

    #[test]
    fn the_key_is_hkdf_of_the_database_key_and_never_shown() {
        assert_eq!(key(1), key(1));
        assert_ne!(key(1), key(2));
        assert_ne!(key(1).0, [1u8; 32]);
        assert_eq!(format!("{:?}", key(1)), "CacheKey(…)");
    }

    #[test]
    fn round_trips_at_every_chunk_edge_and_several_mebibytes() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(7);
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            3 * 1024 * 1024 + 5,
        ] {
            let plain = bytes(len);
            let path = dir.path().join(format!("f{len}"));
            let hash = seal_to(&path, &plain, &k);
            assert_eq!(hash, format!("{:x}", Sha256::digest(&plain)), "len {len}");
            let chunks = len.div_ceil(CHUNK).max(1);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                (HEADER + len + chunks * TAG) as u64,
                "len {len}"
            );
            assert!(is_sealed(&path).unwrap());
            let opened = SealedFile::open(&path, &k).unwrap();
            assert_eq!(opened.len(), len as u64);
            assert_eq!(unseal(&path, &k).unwrap(), plain, "len {len}");
        }
    }

    #[test]
    fn read_at_decrypts_ranges_across_chunk_edges() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(3);
        let plain = bytes(3 * CHUNK + 100);
        let path = dir.path().join("f");
        seal_to(&path, &plain, &k);
        let mut file = SealedFile::open(&path, &k).unwrap();
        let c = CHUNK as u64;
        for (offset, len) in [
            (0, 1),
            (0, c),
            (c - 1, 2),
            (c, c),
            (c - 1, c + 2),
            (2 * c + 5, c),
            (3 * c, 100),
            (3 * c + 99, 10),
            (1, 3 * c + 99),
            (0, u64::MAX),
        ] {
            let end = (offset + len.min(plain.len() as u64)).min(plain.len() as u64) as usize;
            assert_eq!(
                file.read_at(offset, len).unwrap(),
                &plain[offset as usize..end],
                "{offset}+{len}"
            );
        }
        assert!(file.read_at(plain.len() as u64, 10).unwrap().is_empty());
        assert!(file.read_at(u64::MAX, 10).unwrap().is_empty());
        assert!(file.read_at(5, 0).unwrap().is_empty());
    }

    fn sealed_sample(dir: &Path, k: &CacheKey) -> (std::path::PathBuf, Vec<u8>) {
        let plain = bytes(3 * CHUNK + 10);
        let path = dir.join("sample");
        seal_to(&path, &plain, k);
        (path, plain)
    }

    #[test]
    fn a_flipped_byte_anywhere_is_an_authentication_error() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(1);
        let (path, _) = sealed_sample(dir.path(), &k);
        let original = std::fs::read(&path).unwrap();
        for at in [
            MAGIC.len() + 3,
            HEADER + 10,
            HEADER + SEALED_CHUNK + 1,
            original.len() - 1,
        ] {
            let mut bytes = original.clone();
            bytes[at] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            let err = unseal(&path, &k).unwrap_err();
            assert!(
                matches!(err, SealError::Authentication { .. }),
                "byte {at}: {err:?}"
            );
            assert!(matches!(
                Error::from(err),
                Error::Attachment {
                    kind: AttachmentErrorKind::Corrupt,
                    ..
                }
            ));
        }
        // A changed magic: not a sealed file at all.
        let mut bytes = original.clone();
        bytes[0] = b'X';
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(unseal(&path, &k), Err(SealError::NotSealed)));
    }

    #[test]
    fn a_truncated_file_fails_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(1);
        let (path, _) = sealed_sample(dir.path(), &k);
        let original = std::fs::read(&path).unwrap();
        for cut in [
            1,
            TAG,
            TAG + 1,
            10 + TAG,                // the whole last chunk: chunk 2 becomes "last"
            10 + TAG + SEALED_CHUNK, // two whole chunks
            original.len() - HEADER, // header only
            original.len() - HEADER + 1,
            original.len() - MAGIC.len() - 1, // the magic and one byte
        ] {
            std::fs::write(&path, &original[..original.len() - cut]).unwrap();
            let err = SealedFile::open(&path, &k).unwrap_err();
            assert!(
                matches!(err, SealError::Truncated | SealError::Authentication { .. }),
                "cut {cut}: {err:?}"
            );
            assert!(matches!(
                Error::from(err),
                Error::Attachment {
                    kind: AttachmentErrorKind::Corrupt,
                    ..
                }
            ));
        }
    }

    #[test]
    fn swapped_chunks_and_another_key_fail() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(1);
        let (path, _) = sealed_sample(dir.path(), &k);
        let original = std::fs::read(&path).unwrap();
        let mut swapped = original.clone();
        let (a, b) = (HEADER, HEADER + SEALED_CHUNK);
        let first = original[a..a + SEALED_CHUNK].to_vec();
        swapped[a..a + SEALED_CHUNK].copy_from_slice(&original[b..b + SEALED_CHUNK]);
        swapped[b..b + SEALED_CHUNK].copy_from_slice(&first);
        std::fs::write(&path, &swapped).unwrap();
        assert!(matches!(
            unseal(&path, &k),
            Err(SealError::Authentication { chunk: 0 })
        ));
        let mut file = SealedFile::open(&path, &k).unwrap();
        assert!(matches!(
            file.read_at(CHUNK as u64 + 1, 1),
            Err(SealError::Authentication { chunk: 1 })
        ));

        std::fs::write(&path, &original).unwrap();
        assert!(matches!(
            SealedFile::open(&path, &key(2)),
            Err(SealError::Authentication { .. })
        ));
        // And a plaintext file is not sealed.
        std::fs::write(
            &path,
            b"just some plaintext bytes, long enough for a header",
        )
        .unwrap();
        assert!(!is_sealed(&path).unwrap());
        assert!(matches!(
            SealedFile::open(&path, &k),
            Err(SealError::NotSealed)
        ));
    }

    #[test]
    fn a_sealed_file_shows_no_run_of_its_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(9);
        let marker = b"TANDEM-DISTINCTIVE-PLAINTEXT-0123456789";
        let mut plain = bytes(2 * CHUNK);
        plain.splice(CHUNK - 10..CHUNK - 10, marker.iter().copied());
        plain.extend_from_slice(marker);
        let sealed = dir.path().join("sealed");
        seal_to(&sealed, &plain, &k);
        let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        let on_disk = std::fs::read(&sealed).unwrap();
        assert!(!contains(&on_disk, marker));
        assert!(!contains(&on_disk, &plain[1000..1032]));
        // The same bytes unsealed (the check can fail).
        let plain_file = dir.path().join("plain");
        std::fs::write(&plain_file, &plain).unwrap();
        assert!(contains(&std::fs::read(&plain_file).unwrap(), marker));
        // Sealing twice gives other bytes (a fresh nonce prefix per file).
        let again = dir.path().join("again");
        seal_to(&again, &plain, &k);
        assert_ne!(std::fs::read(&again).unwrap(), on_disk);
    }

    #[test]
    fn a_partial_download_resumes_after_its_last_whole_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(4);
        let plain = bytes(4 * CHUNK + 77);
        let part = dir.path().join("x.part");
        // A download that stopped 2.5 chunks in, its last chunk half written.
        let mut out = Vec::new();
        let mut sealer = Sealer::new(&k, &mut out).unwrap();
        sealer.push(&plain[..5 * CHUNK / 2], &mut out).unwrap();
        out.extend_from_slice(&[0xAB; 1000]);
        std::fs::write(&part, &out).unwrap();
        let resumed = resume_part(&part, &k).unwrap().unwrap();
        assert_eq!(resumed.offset, 2 * CHUNK as u64);
        let Resumed {
            mut sealer,
            mut hasher,
            offset,
        } = resumed;
        let mut more = Vec::new();
        sealer.push(&plain[offset as usize..], &mut more).unwrap();
        sealer.finish(&mut more).unwrap();
        hasher.update(&plain[offset as usize..]);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .unwrap();
        file.write_all(&more).unwrap();
        assert_eq!(
            format!("{:x}", hasher.finalize()),
            format!("{:x}", Sha256::digest(&plain))
        );
        assert_eq!(unseal(&part, &k).unwrap(), plain);
        // Nothing to resume: no file, a plaintext part, another key's part (from its start).
        assert!(resume_part(&dir.path().join("none"), &k).unwrap().is_none());
        std::fs::write(&part, &plain[..100]).unwrap();
        assert!(resume_part(&part, &k).unwrap().is_none());
        std::fs::write(&part, &out).unwrap();
        assert_eq!(resume_part(&part, &key(5)).unwrap().unwrap().offset, 0);
    }

    fn hash_name(plain: &[u8]) -> String {
        format!("{:x}", Sha256::digest(plain))
    }

    #[test]
    fn convert_cache_seals_rekeys_and_unseals_and_finishes_a_half_done_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("guest.attachments");
        std::fs::create_dir(&cache).unwrap();
        let plains: Vec<Vec<u8>> = (0..6).map(|i| bytes(i * 40_000 + i)).collect();
        for plain in &plains {
            std::fs::write(cache.join(hash_name(plain)), plain).unwrap();
        }
        std::fs::write(cache.join(format!("{}.part", hash_name(&plains[0]))), b"p").unwrap();
        std::fs::create_dir(cache.join("tmp")).unwrap();
        let (k1, k2) = (key(1), key(2));
        let check = |k: Option<&CacheKey>| {
            for plain in &plains {
                let path = cache.join(hash_name(plain));
                match k {
                    Some(k) => assert_eq!(unseal(&path, k).unwrap(), *plain),
                    None => assert_eq!(std::fs::read(&path).unwrap(), *plain),
                }
            }
            let names: Vec<String> = std::fs::read_dir(&cache)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.contains('.'))
                .collect();
            assert!(names.is_empty(), "leftovers: {names:?}");
        };

        // Turning on, interrupted after half the files (and a stray `.converting` of a third,
        // as a crash before its rename leaves): the next call finishes.
        for plain in &plains[..3] {
            let path = cache.join(hash_name(plain));
            let tmp = cache.join(format!("{}.converting", hash_name(plain)));
            convert_file(&path, &tmp, None, Some(&k1)).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
        let stray = cache.join(format!("{}.converting", hash_name(&plains[3])));
        std::fs::write(&stray, b"half written").unwrap();
        let done = convert_cache(&cache, None, Some(&k1)).unwrap();
        assert_eq!((done.converted, done.already, done.unreadable), (3, 3, 0));
        check(Some(&k1));
        assert_eq!(convert_cache(&cache, None, Some(&k1)).unwrap().converted, 0);

        // A rotation, half done by hand, then finished: files are told apart by the key.
        for plain in &plains[..2] {
            let path = cache.join(hash_name(plain));
            let tmp = cache.join("x.converting");
            convert_file(&path, &tmp, Some(&k1), Some(&k2)).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
        let done = convert_cache(&cache, Some(&k1), Some(&k2)).unwrap();
        assert_eq!((done.converted, done.already), (4, 2));
        check(Some(&k2));

        // Turning off, interrupted, then finished.
        let path = cache.join(hash_name(&plains[5]));
        let tmp = cache.join("y.converting");
        convert_file(&path, &tmp, Some(&k2), None).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let done = convert_cache(&cache, Some(&k2), None).unwrap();
        assert_eq!((done.converted, done.already), (5, 1));
        check(None);

        // A file no key opens is left alone, never deleted.
        let odd = cache.join(hash_name(b"odd"));
        seal_to(&odd, b"odd", &key(3));
        let done = convert_cache(&cache, Some(&k1), Some(&k2)).unwrap();
        assert_eq!(done.unreadable, 1);
        assert!(odd.is_file());
        assert_eq!(
            convert_cache(&dir.path().join("none"), None, Some(&k1)).unwrap(),
            Converted::default()
        );
    }
}
