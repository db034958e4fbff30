//! The attachments directory of one account, next to its database: `guest.attachments/` beside
//! `guest.db`, `users/<id>.attachments/` beside `users/<id>.db` (0700; files 0600).
//!
//! - `<hash>`: a complete file whose bytes hash to `hash` (SHA-256, 64 lowercase hex). Only ever
//!   created by a rename, so a file under its hash's name is whole and verified.
//! - `<hash>.part`: a partial download (`download.rs`), resumed with `Range`.
//! - `tmp/`: files being attached, copied and hashed here before their rename to `<hash>`.
//!
//! - `open/`: with a cache key, the decrypted copies the path API hands out
//!   (`Client::attachment`), emptied when the engine opens.
//!
//! With a cache key ([`Files::with_key`], the store encrypted) every complete file and partial
//! download is sealed ([`super::sealed`]); without one they are the plain bytes.
//!
//! The directory is created on first use (an account that never attaches has none).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::sealed::{CacheKey, SealWriter, SealedFile};
use crate::store::files::{create_private_dir, open_private};

/// The copy buffer: 64 KiB, so importing a file of any size holds this much of it in memory.
const BUFFER: usize = 64 * 1024;
const TMP_DIR: &str = "tmp";
/// Decrypted copies handed to the app by the path API (with a cache key).
const OPEN_DIR: &str = "open";
/// The directory name's suffix after the database file's stem.
const DIR_SUFFIX: &str = "attachments";

/// What an import stored: the bytes' hash and their length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub hash: String,
    pub size: u64,
}

/// One account's attachments directory.
#[derive(Debug, Clone)]
pub struct Files {
    dir: PathBuf,
    /// Seals the files when set (the store is encrypted).
    key: Option<CacheKey>,
}

impl Files {
    /// The directory of the account whose database is `db_path` (`<dir>/<stem>.attachments`).
    /// Nothing is created yet.
    pub fn of_store(db_path: &Path) -> Self {
        let stem = db_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = db_path.parent().unwrap_or(Path::new("."));
        Self {
            dir: parent.join(format!("{stem}.{DIR_SUFFIX}")),
            key: None,
        }
    }

    /// These files sealed with `key` (`None`: plain, as without encryption).
    pub fn with_key(self, key: Option<CacheKey>) -> Self {
        Self { key, ..self }
    }

    /// The key the files are sealed with, if any.
    pub fn key(&self) -> Option<&CacheKey> {
        self.key.as_ref()
    }

    /// The directory of decrypted copies (`open/`).
    pub fn open_dir(&self) -> PathBuf {
        self.dir.join(OPEN_DIR)
    }

    /// Deletes every decrypted copy (at open; a copy is only for the app's current use).
    pub fn empty_open(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(self.open_dir()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The path of a plaintext copy of the complete file of `hash` for the app: the file itself
    /// without a key; with one, a decrypted copy in `open/` (owner-only), made once (through a
    /// temporary name and a rename, verified against the hash) and reused until the next open.
    pub fn plaintext_path(&self, hash: &str) -> crate::error::Result<PathBuf> {
        let Some(key) = &self.key else {
            return Ok(self.path(hash));
        };
        let open = self.open_dir();
        let target = open.join(hash);
        if target.is_file() {
            return Ok(target);
        }
        create_private_dir(&open)?;
        let tmp = open.join(format!("{hash}.{}", uuid::Uuid::now_v7()));
        let copied = (|| -> crate::error::Result<()> {
            let mut sealed = SealedFile::open(&self.path(hash), key)?;
            let mut out = open_private(&tmp, OpenOptions::new().write(true).create_new(true))?;
            let digest = sealed.copy_to(&mut out)?;
            if digest != hash {
                return Err(crate::error::Error::Attachment {
                    kind: crate::error::AttachmentErrorKind::Corrupt,
                    detail: "a cached attachment does not match its hash".into(),
                });
            }
            out.sync_all()?;
            std::fs::rename(&tmp, &target)?;
            Ok(())
        })();
        if copied.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        copied.map(|()| target)
    }

    /// Up to `len` plaintext bytes of the complete file of `hash` from `offset` (fewer at the
    /// end), read through the seal without any copy when there is a key.
    pub fn read_at(&self, hash: &str, offset: u64, len: u64) -> crate::error::Result<Vec<u8>> {
        if let Some(key) = &self.key {
            return Ok(SealedFile::open(&self.path(hash), key)?.read_at(offset, len)?);
        }
        use std::io::{Seek, SeekFrom};
        let mut file = File::open(self.path(hash))?;
        let size = file.metadata()?.len();
        if offset >= size || len == 0 {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut out = Vec::with_capacity(len.min(size - offset) as usize);
        file.take(len).read_to_end(&mut out)?;
        Ok(out)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the complete file of `hash` (which may not exist).
    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(hash)
    }

    /// The path of the partial download of `hash` (the download side names it itself; tests
    /// use this).
    #[cfg(test)]
    pub fn part_path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}.part"))
    }

    /// Whether the complete file of `hash` is here.
    #[cfg(test)]
    pub fn has(&self, hash: &str) -> bool {
        self.path(hash).is_file()
    }

    /// Creates the directory (and `tmp/`) owner-only when missing.
    pub fn ensure(&self) -> io::Result<()> {
        create_private_dir(&self.dir)?;
        create_private_dir(&self.dir.join(TMP_DIR))
    }

    /// Copies the file at `source` in, hashing while copying (64 KiB at a time, never the whole
    /// file in memory): into `tmp/`, fsynced, then renamed to `<hash>`. The source is only read.
    pub fn import_file(&self, source: &Path) -> io::Result<Imported> {
        let mut input = File::open(source)?;
        self.import_reader(&mut input)
    }

    /// Stores `bytes` like [`import_file`](Self::import_file).
    pub fn import_bytes(&self, bytes: &[u8]) -> io::Result<Imported> {
        self.import_reader(&mut io::Cursor::new(bytes))
    }

    fn import_reader(&self, input: &mut dyn Read) -> io::Result<Imported> {
        self.ensure()?;
        let tmp = self
            .dir
            .join(TMP_DIR)
            .join(uuid::Uuid::now_v7().to_string());
        let result = copy_hashing(input, &tmp, self.key.as_ref()).and_then(|imported| {
            let target = self.path(&imported.hash);
            // A file already under this name has these very bytes (its name is their hash).
            if target.is_file() {
                std::fs::remove_file(&tmp)?;
            } else {
                std::fs::rename(&tmp, &target)?;
                sync_dir(&self.dir);
            }
            Ok(imported)
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Deletes the whole directory (sign-out with wipe).
    pub fn delete_all(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves every complete file of `other` into this directory (guest adoption), keeping a file
    /// already here. Partial downloads and `tmp/` are left behind (they are only caches). Files
    /// are renamed when both directories share their key (or both are plain), else re-sealed
    /// for this directory's key.
    pub fn adopt_from(&self, other: &Files) -> io::Result<u64> {
        let entries = match std::fs::read_dir(&other.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        self.ensure()?;
        let mut moved = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_hash_name(name) || !entry.file_type()?.is_file() {
                continue;
            }
            let target = self.path(name);
            if target.exists() {
                std::fs::remove_file(entry.path())?;
            } else if self.key == other.key {
                std::fs::rename(entry.path(), &target)?;
                moved += 1;
            } else {
                // Sealed with another key (each database has its own), or one side plain:
                // re-sealed through a `.converting` sibling, then the guest's copy goes.
                let tmp = self.dir.join(format!("{name}.converting"));
                if let Err(e) = super::sealed::convert_file(
                    &entry.path(),
                    &tmp,
                    other.key.as_ref(),
                    self.key.as_ref(),
                ) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(io::Error::other(e.to_string()));
                }
                std::fs::rename(&tmp, &target)?;
                std::fs::remove_file(entry.path())?;
                moved += 1;
            }
        }
        Ok(moved)
    }
}

/// Copies `input` into a new owner-only file at `to` (sealed with `key` when given), hashing
/// the plaintext, and fsyncs it.
fn copy_hashing(input: &mut dyn Read, to: &Path, key: Option<&CacheKey>) -> io::Result<Imported> {
    let out = open_private(to, OpenOptions::new().write(true).create_new(true))?;
    if let Some(key) = key {
        let mut sealed = SealWriter::new(out, key)?;
        io::copy(input, &mut sealed)?;
        let (out, hash, size) = sealed.finish()?;
        out.sync_all()?;
        return Ok(Imported { hash, size });
    }
    let mut out = out;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BUFFER];
    let mut size = 0u64;
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n])?;
        size += n as u64;
    }
    out.sync_all()?;
    Ok(Imported {
        hash: format!("{:x}", hasher.finalize()),
        size,
    })
}

/// The SHA-256 of the file at `path`, streamed.
#[cfg(test)]
fn hash_file(path: &Path) -> io::Result<Imported> {
    let mut input = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BUFFER];
    let mut size = 0u64;
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok(Imported {
        hash: format!("{:x}", hasher.finalize()),
        size,
    })
}

/// Whether `name` is a blob hash (64 lowercase hex), i.e. a complete file's name.
fn is_hash_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Makes a rename in `dir` durable (best effort: not every platform can fsync a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_hashes_while_copying_and_names_the_file_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::of_store(&dir.path().join("users").join("u1.db"));
        assert!(files.dir().ends_with("users/u1.attachments"));
        let imported = files.import_bytes(b"abc").unwrap();
        assert_eq!(
            imported.hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(imported.size, 3);
        assert_eq!(std::fs::read(files.path(&imported.hash)).unwrap(), b"abc");
        // The same bytes again: one file, and tmp/ is left empty.
        let source = dir.path().join("photo.jpg");
        std::fs::write(&source, b"abc").unwrap();
        assert_eq!(files.import_file(&source).unwrap(), imported);
        assert_eq!(
            std::fs::read_dir(files.dir().join(TMP_DIR))
                .unwrap()
                .count(),
            0
        );
        assert!(source.exists(), "the app's file is never moved");
        assert_eq!(hash_file(&files.path(&imported.hash)).unwrap(), imported);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(files.dir()), 0o700);
            assert_eq!(mode(&files.path(&imported.hash)), 0o600);
        }
    }

    #[test]
    fn a_large_file_streams_through_in_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::of_store(&dir.path().join("guest.db"));
        let bytes: Vec<u8> = (0..(3 * BUFFER + 17)).map(|i| (i % 251) as u8).collect();
        let imported = files.import_bytes(&bytes).unwrap();
        assert_eq!(imported.size, bytes.len() as u64);
        assert_eq!(imported.hash, format!("{:x}", Sha256::digest(&bytes)));
        assert!(files.dir().ends_with("guest.attachments"));
    }

    #[test]
    fn a_missing_source_fails_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::of_store(&dir.path().join("guest.db"));
        let err = files.import_file(&dir.path().join("nope")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn adoption_moves_complete_files_and_wipe_deletes_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let guest = Files::of_store(&dir.path().join("guest.db"));
        let user = Files::of_store(&dir.path().join("users").join("u.db"));
        let a = guest.import_bytes(b"one").unwrap();
        let b = guest.import_bytes(b"two").unwrap();
        user.import_bytes(b"two").unwrap();
        std::fs::write(guest.dir().join("x.part"), b"partial").unwrap();
        assert_eq!(user.adopt_from(&guest).unwrap(), 1);
        let has = |f: &Files, h: &str| f.path(h).is_file();
        assert!(has(&user, &a.hash) && has(&user, &b.hash));
        assert!(!has(&guest, &a.hash) && !has(&guest, &b.hash));
        user.delete_all().unwrap();
        assert!(!user.dir().exists());
        user.delete_all().unwrap();
    }

    #[test]
    fn with_a_key_imports_are_sealed_and_read_through_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        let key = CacheKey::derive(&crate::store::cipher::DatabaseKey::from_bytes([5; 32]));
        let files = Files::of_store(&dir.path().join("guest.db")).with_key(Some(key.clone()));
        let bytes: Vec<u8> = (0..(2 * BUFFER + 9)).map(|i| (i % 253) as u8).collect();
        let imported = files.import_bytes(&bytes).unwrap();
        assert_eq!(imported.hash, format!("{:x}", Sha256::digest(&bytes)));
        assert_eq!(imported.size, bytes.len() as u64);
        let on_disk = std::fs::read(files.path(&imported.hash)).unwrap();
        assert!(on_disk.starts_with(super::super::sealed::MAGIC));
        assert!(!on_disk.windows(64).any(|w| w == &bytes[1000..1064]));
        assert_eq!(
            files.read_at(&imported.hash, BUFFER as u64 - 2, 4).unwrap(),
            &bytes[BUFFER - 2..BUFFER + 2]
        );
        // The path API's copy: decrypted in `open/`, reused, gone after `empty_open`.
        let copy = files.plaintext_path(&imported.hash).unwrap();
        assert_eq!(copy, files.open_dir().join(&imported.hash));
        assert_eq!(std::fs::read(&copy).unwrap(), bytes);
        assert_eq!(files.plaintext_path(&imported.hash).unwrap(), copy);
        files.empty_open().unwrap();
        assert!(!files.open_dir().exists());
        files.empty_open().unwrap();
        // Without the key the same directory hands out the sealed file's path, unchanged.
        let plain = Files::of_store(&dir.path().join("guest.db"));
        assert_eq!(
            plain.plaintext_path(&imported.hash).unwrap(),
            files.path(&imported.hash)
        );
        assert!(plain.read_at(&"0".repeat(64), 0, 1).is_err());
        // Another key: a typed error, no copy left behind.
        let other = Files::of_store(&dir.path().join("guest.db")).with_key(Some(CacheKey::derive(
            &crate::store::cipher::DatabaseKey::from_bytes([6; 32]),
        )));
        assert!(matches!(
            other.plaintext_path(&imported.hash),
            Err(crate::error::Error::Attachment {
                kind: crate::error::AttachmentErrorKind::Corrupt,
                ..
            })
        ));
        assert_eq!(std::fs::read_dir(other.open_dir()).unwrap().count(), 0);
    }

    #[test]
    fn adoption_reseals_files_for_the_adopting_key() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = (
            CacheKey::derive(&crate::store::cipher::DatabaseKey::from_bytes([1; 32])),
            CacheKey::derive(&crate::store::cipher::DatabaseKey::from_bytes([2; 32])),
        );
        let guest = Files::of_store(&dir.path().join("guest.db")).with_key(Some(k1));
        let user =
            Files::of_store(&dir.path().join("users").join("u.db")).with_key(Some(k2.clone()));
        let a = guest.import_bytes(b"guest photo").unwrap();
        assert_eq!(user.adopt_from(&guest).unwrap(), 1);
        assert!(!guest.path(&a.hash).exists());
        assert_eq!(user.read_at(&a.hash, 0, 100).unwrap(), b"guest photo");
        // A plain guest into a sealed account.
        let plain_guest = Files::of_store(&dir.path().join("guest.db"));
        let b = plain_guest.import_bytes(b"plain photo").unwrap();
        assert_eq!(user.adopt_from(&plain_guest).unwrap(), 1);
        assert_eq!(user.read_at(&b.hash, 6, 100).unwrap(), b"photo");
        assert!(super::super::sealed::is_sealed(&user.path(&b.hash)).unwrap());
    }
}
