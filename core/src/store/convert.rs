//! Turning encryption on, off, and rotating the key: one operation, [`convert`], run on open when
//! the configuration and the file disagree and by `rekey` (docs/design/encryption.md §4), and
//! [`recover`], run on every open before anything else, which finishes or undoes a conversion a
//! crash interrupted.
//!
//! The steps of a conversion, each followed by a crash point (`crash.rs`, `convert_*`):
//!
//! 1. checkpoint the WAL (`TRUNCATE`) on a connection keyed with the old key (the caller has
//!    closed every connection of the store);
//! 2. write the target key to `db-key-next/<name>` (not when turning encryption off);
//! 3. copy the database into `<db>.converting` (`VACUUM INTO` a URI carrying the new key, or an
//!    empty one: see the comment in [`convert`] for why not the backup API) from a connection
//!    keyed with the old key (or none), and `fsync` it;
//! 4. remove the (empty) `-wal` and `-shm`, rename `<db>.converting` over `<db>`, `fsync` the
//!    directory;
//! 5. convert the attachment cache (both keys are still at hand: see [`convert_cache`]), then
//!    promote `db-key-next` to `db-key` (or delete `db-key` when turning off).
//!
//! Decision (differs from the design's order in step 5): the cache is converted *before* the key
//! is promoted or deleted, so the old key is never gone while a cache file may still need it;
//! deleting `db-key` first when turning encryption off would lose the pending (not yet uploaded)
//! attachment files encrypted with it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::cipher::{key_connection, DatabaseKey, KeyProblem};
use zeroize::Zeroizing;

use super::files;
use super::keys::{self, DbKeys, Encryption, Secrets, Slot};
use crate::crash::{self, Point};
use crate::error::{Error, Result};

/// The first 16 bytes of every plaintext SQLite database.
const PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// `<db>.converting`, the conversion's copy until it is renamed over the database.
pub fn converting_path(path: &Path) -> PathBuf {
    sibling(path, ".converting")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What the database file's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// No file, or an empty one: a new database, nothing to convert.
    New,
    /// A plaintext SQLite database.
    Plain,
    /// Anything else: an encrypted database (SQLite3MC encrypts the header too).
    Encrypted,
}

pub fn file_state(path: &Path) -> io::Result<FileState> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FileState::New),
        Err(e) => return Err(e),
    };
    let mut header = Vec::with_capacity(16);
    (&mut file).take(16).read_to_end(&mut header)?;
    Ok(if header.is_empty() {
        FileState::New
    } else if header == PLAIN_HEADER {
        FileState::Plain
    } else {
        FileState::Encrypted
    })
}

/// What recovery sees before it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// `<db>.converting` exists.
    pub converting: bool,
    pub file: FileState,
    /// `None` when there is no `db-key`; otherwise whether it opens the file (always `true` for
    /// a file that is not `Encrypted`: nothing to try).
    pub current: Option<bool>,
    /// The same for `db-key-next`.
    pub next: Option<bool>,
}

/// What is left to do of a conversion whose rename happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Nothing,
    /// Encrypted with `db-key-next`: convert the cache from `db-key` (if any) to it, then promote.
    Promote,
    /// Decrypted: decrypt the cache with `db-key`, then delete it.
    DropCurrent,
}

/// How the file opens once recovery is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Without a key (plaintext, or a new file).
    Plain,
    /// With `db-key` (after a `Promote`, the promoted key).
    Current,
}

/// Recovery's decision: a pure function of the observed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub delete_converting: bool,
    pub delete_next: bool,
    pub finish: Finish,
    pub opening: Opening,
}

/// Decides what recovery does. The rename of step 4 is atomic, so `<db>.converting` present means
/// it did not happen and `<db>` is the old database, intact; the copy is deleted. With no copy,
/// the file is either the old database (a leftover `db-key-next` is dropped) or the new one
/// (it opens only with `db-key-next`, or is plaintext with `db-key` still stored), whose step 5
/// is finished now. A file no key opens is a key error and nothing at all is touched.
pub fn decide(o: Observed) -> std::result::Result<Plan, KeyProblem> {
    let (finish, opening, delete_next) = match o.file {
        FileState::New => (
            Finish::Nothing,
            if o.current.is_some() {
                Opening::Current
            } else {
                Opening::Plain
            },
            o.next.is_some(),
        ),
        FileState::Plain => (
            if o.current.is_some() {
                Finish::DropCurrent
            } else {
                Finish::Nothing
            },
            Opening::Plain,
            o.next.is_some(),
        ),
        FileState::Encrypted => match (o.current, o.next) {
            (Some(true), next) => (Finish::Nothing, Opening::Current, next.is_some()),
            (_, Some(true)) => (Finish::Promote, Opening::Current, false),
            (None, None) => return Err(KeyProblem::Missing),
            _ => return Err(KeyProblem::Wrong),
        },
    };
    Ok(Plan {
        delete_converting: o.converting,
        delete_next,
        finish,
        opening,
    })
}

/// Recovery on open (the same code path whatever was interrupted): observes, decides, and does
/// what [`decide`] says. Returns the key the store opens with (`None`: plaintext or new).
pub fn recover(path: &Path, keys: Option<&DbKeys>) -> Result<Option<DatabaseKey>> {
    let file = file_state(path)?;
    // A plaintext (or new) file opens without the secret store: when it cannot be read (a phone
    // before its first unlock), leftover keys are cleaned up on a later open instead.
    let read = |slot| match keys.map(|keys| keys.get(slot)).transpose() {
        Ok(key) => Ok(key.flatten()),
        Err(e) if file != FileState::Encrypted => {
            tracing::warn!(error = %e, "the secret store failed; a plaintext database opens without it");
            Ok(None)
        }
        Err(e) => Err(e),
    };
    let (current, next) = (read(Slot::Current)?, read(Slot::Next)?);
    let opens = |key: &Option<DatabaseKey>| -> Result<Option<bool>> {
        match key {
            None => Ok(None),
            Some(_) if file != FileState::Encrypted => Ok(Some(true)),
            Some(key) => opens_with(path, key).map(Some),
        }
    };
    let observed = Observed {
        converting: converting_path(path).exists(),
        file,
        current: opens(&current)?,
        next: opens(&next)?,
    };
    let plan = decide(observed).map_err(|problem| {
        tracing::error!(path = %path.display(), ?problem, "no stored key opens the database; it was left untouched");
        Error::Key(problem)
    })?;
    if plan != Plan::default_for(observed) {
        tracing::info!(
            ?observed,
            ?plan,
            "recovering an interrupted encryption conversion"
        );
    }
    if plan.delete_converting {
        remove_converting(path)?;
    }
    let keys_or_missing = || keys.ok_or_else(|| Error::Key(KeyProblem::Missing));
    if plan.delete_next {
        keys_or_missing()?.delete(Slot::Next)?;
    }
    match plan.finish {
        Finish::Nothing => {}
        Finish::Promote => {
            convert_cache(path, current.as_ref(), next.as_ref())?;
            keys_or_missing()?.promote()?;
        }
        Finish::DropCurrent => {
            convert_cache(path, current.as_ref(), None)?;
            keys_or_missing()?.delete(Slot::Current)?;
        }
    }
    Ok(match plan.opening {
        Opening::Plain => None,
        Opening::Current if plan.finish == Finish::Promote => next,
        Opening::Current => current,
    })
}

impl Plan {
    /// The plan of a file no conversion touched (for logging only the unusual ones).
    fn default_for(o: Observed) -> Plan {
        Plan {
            delete_converting: false,
            delete_next: false,
            finish: Finish::Nothing,
            opening: if o.current.is_some() && o.file != FileState::Plain {
                Opening::Current
            } else {
                Opening::Plain
            },
        }
    }
}

/// Whether `key` opens the encrypted file at `path` (reads its schema; writes nothing).
fn opens_with(path: &Path, key: &DatabaseKey) -> Result<bool> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // `key_connection` reads the schema once: a key that does not open the file is `Wrong`.
    match key_connection(&conn, key) {
        Ok(()) => Ok(true),
        Err(Error::Key(KeyProblem::Wrong)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The `file:` URI of the conversion's copy with its key: SQLite3MC's URI parameters `cipher` and
/// `hexkey`, the key in `store::cipher`'s raw form (`raw:` and the 32 bytes, hex-encoded here, so
/// the same bytes reach SQLite3MC as through `sqlite3_key_v2`: no password stretching), or an
/// empty `key=` (plaintext). Bound as a parameter, never formatted into SQL or logged.
fn target_uri(copy: &Path, key: Option<&DatabaseKey>) -> Zeroizing<String> {
    let mut uri = Zeroizing::new(String::from("file:"));
    for byte in copy.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(byte as char)
            }
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    match key {
        Some(key) => {
            uri.push_str("?cipher=");
            uri.push_str(super::cipher::CIPHER);
            uri.push_str("&hexkey=");
            for byte in b"raw:".iter().chain(key.as_bytes()) {
                uri.push_str(&format!("{byte:02x}"));
            }
        }
        None => uri.push_str("?key="),
    }
    uri
}

/// Removes `<db>.converting` and the journal files SQLite may have left next to it.
fn remove_converting(path: &Path) -> Result<()> {
    let copy = converting_path(path);
    for file in [
        sibling(&copy, "-journal"),
        sibling(&copy, "-wal"),
        sibling(&copy, "-shm"),
        copy,
    ] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The attachment cache's part of a conversion: re-encrypts, encrypts or decrypts the files of
/// `<db>.attachments/` from the key `from` to the key `to` (each file's cache key derived from the
/// database key), each through a `.converting` sibling and a rename, so a crash leaves every file
/// whole under one of the two keys (slice E3's `attachments::sealed::convert_cache`). Called after
/// the database's rename and before the key is promoted or deleted, so both keys are at hand; it
/// is idempotent (recovery calls it again after a crash). Files neither key opens are left as they
/// are and logged by it.
pub fn convert_cache(
    db_path: &Path,
    from: Option<&DatabaseKey>,
    to: Option<&DatabaseKey>,
) -> Result<()> {
    use crate::attachments::sealed::{convert_cache, CacheKey};
    let derive = |key: Option<&DatabaseKey>| key.map(CacheKey::derive);
    let files = crate::attachments::Files::of_store(db_path);
    let done = convert_cache(files.dir(), derive(from).as_ref(), derive(to).as_ref())?;
    if done.converted > 0 || done.unreadable > 0 {
        tracing::info!(
            converted = done.converted,
            unreadable = done.unreadable,
            "converted the attachment cache"
        );
    }
    Ok(())
}

/// Converts the database at `path` (every connection to it closed) from the key `from` to the key
/// `to` (`None`: plaintext), following the steps in the module documentation. `keys` holds the
/// database's key slots; it may be `None` only for a plaintext-to-plaintext copy.
pub fn convert(
    path: &Path,
    keys: Option<&DbKeys>,
    from: Option<&DatabaseKey>,
    to: Option<&DatabaseKey>,
) -> Result<()> {
    let started = std::time::Instant::now();
    // 1. Everything into the main file.
    let mut source = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    if let Some(from) = from {
        key_connection(&source, from)?;
    }
    source.busy_timeout(Duration::from_secs(5))?;
    let (busy, _, _): (i64, i64, i64) =
        source.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 {
        return Err(Error::Io(io::Error::other(
            "the database is still in use; the conversion needs every connection closed",
        )));
    }
    // 2. The target key is stored before any byte is encrypted with it.
    if let Some(to) = to {
        let keys = keys.ok_or_else(|| Error::Key(KeyProblem::Missing))?;
        keys.set(Slot::Next, to)?;
    }
    crash::reached(Point::ConvertNextKeyWritten);
    // 3. The copy. `VACUUM INTO` a URI that names the target's key: SQLite3MC refuses the
    // online backup API between a plaintext and an encrypted database ("backup is not supported
    // with incompatible source and target databases": the encrypted page reserves bytes for the
    // nonce and tag), has no `sqlcipher_export`, and does write a `VACUUM INTO` target with the
    // cipher and key its URI gives (an empty `key=` for plaintext; without one the target would
    // inherit the source's key). One path for all three directions.
    remove_converting(path)?;
    let copy = converting_path(path);
    files::ensure_private_file(&copy)?;
    // The crash point `convert_copying` fires part-way through the copy.
    source.progress_handler(
        10_000,
        Some(|| {
            crash::reached(Point::ConvertCopying);
            false
        }),
    )?;
    source.execute("VACUUM INTO ?1", [target_uri(&copy, to).as_str()])?;
    source.progress_handler(0, None::<fn() -> bool>)?;
    drop(source);
    File::open(&copy)?.sync_all()?;
    crash::reached(Point::ConvertCopied);
    // 4. The copy becomes the database.
    for leftover in [sibling(path, "-wal"), sibling(path, "-shm")] {
        match std::fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::rename(&copy, path)?;
    sync_dir(path)?;
    crash::reached(Point::ConvertRenamed);
    // 5. The cache, then the keys.
    convert_cache(path, from, to)?;
    crash::reached(Point::ConvertCacheConverted);
    if let Some(keys) = keys {
        match to {
            Some(_) => keys.promote()?,
            None => keys.delete(Slot::Current)?,
        }
    }
    crash::reached(Point::ConvertPromoted);
    tracing::info!(
        encrypted = to.is_some(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "converted the database"
    );
    Ok(())
}

fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = path.parent().unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// How the engine's configuration wants its store kept, and where its keys live.
#[derive(Clone, Default)]
pub struct StoreEncryption {
    pub mode: Encryption,
    /// The installation's secret store and namespace; needed to open or make an encrypted store.
    pub secrets: Option<Secrets>,
}

/// Everything before the store opens: recovery, then the conversion the configuration asks for
/// (the file plaintext while encryption is on, or the other way round). Returns the key to open
/// the store with (`None`: plaintext). The caller holds the file's directory claim.
pub fn prepare(path: &Path, encryption: &StoreEncryption) -> Result<Option<DatabaseKey>> {
    let keys = encryption
        .secrets
        .as_ref()
        .map(|secrets| DbKeys::new(secrets.clone(), path));
    let key = recover(path, keys.as_ref())?;
    let file = file_state(path)?;
    match (encryption.mode, file, key) {
        (Encryption::Off, _, None) => Ok(None),
        (Encryption::Off, _, Some(key)) => {
            tracing::info!(path = %path.display(), "encryption is off: decrypting the database");
            convert(path, keys.as_ref(), Some(&key), None)?;
            Ok(None)
        }
        (Encryption::On, _, key) => {
            let keys = keys.as_ref().ok_or_else(|| {
                Error::invalid("encryption needs a secret store to keep the database key in")
            })?;
            match (file, key) {
                (FileState::Encrypted, Some(key)) => Ok(Some(key)),
                (FileState::New, Some(key)) => Ok(Some(key)),
                (FileState::New, None) => {
                    // Stored before SQLite writes a byte with it.
                    let key = keys::generate()?;
                    keys.set(Slot::Current, &key)?;
                    Ok(Some(key))
                }
                (_, _) => {
                    tracing::info!(path = %path.display(), "encryption is on: encrypting the database");
                    let key = keys::generate()?;
                    convert(path, Some(keys), None, Some(&key))?;
                    Ok(Some(key))
                }
            }
        }
    }
}

/// Moves the database at `path` aside when no stored key opens it (its key missing or wrong):
/// the file, its `-wal` and `-shm` and its attachment cache are renamed with the suffix
/// `.unreadable-<unix seconds>`, never deleted, so a later `open` starts a new database and the
/// old one stays on disk for the day its key returns. A readable, plaintext or missing file is
/// left alone (`None`); a secret store that cannot be read now is `Key { Unavailable }` and
/// moves nothing. The caller holds the file's claim.
pub fn set_aside_if_unreadable(path: &Path, keys: Option<&DbKeys>) -> Result<Option<PathBuf>> {
    if file_state(path)? != FileState::Encrypted {
        return Ok(None);
    }
    match recover(path, keys) {
        Ok(_) => Ok(None),
        Err(Error::Key(KeyProblem::Missing | KeyProblem::Wrong)) => set_aside(path).map(Some),
        Err(e) => Err(e),
    }
}

fn set_aside(path: &Path) -> Result<PathBuf> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let suffix = format!(".unreadable-{seconds}");
    let cache = crate::attachments::Files::of_store(path)
        .dir()
        .to_path_buf();
    // The database last: a crash part-way leaves it where `open` finds it (and refuses it again).
    for companion in [cache, sibling(path, "-wal"), sibling(path, "-shm")] {
        match std::fs::rename(&companion, sibling(&companion, &suffix)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    let aside = sibling(path, &suffix);
    std::fs::rename(path, &aside)?;
    sync_dir(path)?;
    tracing::warn!(path = %path.display(), "an encrypted database no stored key opens was set aside");
    Ok(aside)
}

/// Rotates the key of the encrypted database at `path` (every connection closed): a conversion
/// from the current key to a fresh one. Returns the new key.
pub fn rekey(path: &Path, keys: &DbKeys) -> Result<DatabaseKey> {
    let current = recover(path, Some(keys))?.ok_or_else(|| {
        Error::invalid("the database is not encrypted; turn encryption on instead of rekeying")
    })?;
    let key = keys::generate()?;
    convert(path, Some(keys), Some(&current), Some(&key))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(converting: bool, file: FileState, current: Option<bool>, next: Option<bool>) -> Observed {
        Observed {
            converting,
            file,
            current,
            next,
        }
    }

    fn plan(delete_converting: bool, delete_next: bool, finish: Finish, opening: Opening) -> Plan {
        Plan {
            delete_converting,
            delete_next,
            finish,
            opening,
        }
    }

    use FileState::{Encrypted, New, Plain};
    use Finish::{DropCurrent, Nothing, Promote};

    #[test]
    fn untouched_files_open_as_they_are() {
        let plain = decide(o(false, Plain, None, None)).unwrap();
        assert_eq!(plain, plan(false, false, Nothing, Opening::Plain));
        let enc = decide(o(false, Encrypted, Some(true), None)).unwrap();
        assert_eq!(enc, plan(false, false, Nothing, Opening::Current));
        let new = decide(o(false, New, None, None)).unwrap();
        assert_eq!(new, plan(false, false, Nothing, Opening::Plain));
        // A key stored for a new database before its first page was written.
        let new_keyed = decide(o(false, New, Some(true), None)).unwrap();
        assert_eq!(new_keyed, plan(false, false, Nothing, Opening::Current));
    }

    #[test]
    fn turning_on_interrupted_before_the_rename_keeps_the_plain_file() {
        // Killed after writing db-key-next (no copy yet), or during or after the copy.
        for converting in [false, true] {
            let p = decide(o(converting, Plain, None, Some(true))).unwrap();
            assert_eq!(p, plan(converting, true, Nothing, Opening::Plain));
        }
    }

    #[test]
    fn turning_on_interrupted_after_the_rename_promotes_the_next_key() {
        let p = decide(o(false, Encrypted, None, Some(true))).unwrap();
        assert_eq!(p, plan(false, false, Promote, Opening::Current));
    }

    #[test]
    fn rekey_interrupted_before_the_rename_keeps_the_current_key() {
        for converting in [false, true] {
            let p = decide(o(converting, Encrypted, Some(true), Some(false))).unwrap();
            assert_eq!(p, plan(converting, true, Nothing, Opening::Current));
        }
    }

    #[test]
    fn rekey_interrupted_after_the_rename_promotes() {
        let p = decide(o(false, Encrypted, Some(false), Some(true))).unwrap();
        assert_eq!(p, plan(false, false, Promote, Opening::Current));
    }

    #[test]
    fn a_promotion_interrupted_between_its_two_writes_is_finished() {
        // db-key already holds the new key, db-key-next still does too.
        let p = decide(o(false, Encrypted, Some(true), Some(true))).unwrap();
        assert_eq!(p, plan(false, true, Nothing, Opening::Current));
    }

    #[test]
    fn turning_off_interrupted_before_the_rename_keeps_the_encrypted_file() {
        for converting in [false, true] {
            let p = decide(o(converting, Encrypted, Some(true), None)).unwrap();
            assert_eq!(p, plan(converting, false, Nothing, Opening::Current));
        }
    }

    #[test]
    fn turning_off_interrupted_after_the_rename_drops_the_key() {
        let p = decide(o(false, Plain, Some(true), None)).unwrap();
        assert_eq!(p, plan(false, false, DropCurrent, Opening::Plain));
    }

    #[test]
    fn no_key_that_opens_the_file_is_a_typed_error_and_touches_nothing() {
        assert_eq!(
            decide(o(false, Encrypted, None, None)),
            Err(KeyProblem::Missing)
        );
        assert_eq!(
            decide(o(true, Encrypted, None, None)),
            Err(KeyProblem::Missing)
        );
        assert_eq!(
            decide(o(false, Encrypted, Some(false), None)),
            Err(KeyProblem::Wrong)
        );
        assert_eq!(
            decide(o(true, Encrypted, Some(false), Some(false))),
            Err(KeyProblem::Wrong)
        );
        assert_eq!(
            decide(o(false, Encrypted, None, Some(false))),
            Err(KeyProblem::Wrong)
        );
    }

    #[test]
    fn the_header_tells_plain_new_and_encrypted_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        assert_eq!(file_state(&path).unwrap(), New);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(file_state(&path).unwrap(), New);
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert_eq!(file_state(&path).unwrap(), Plain);
        std::fs::write(&path, [7u8; 4096]).unwrap();
        assert_eq!(file_state(&path).unwrap(), Encrypted);
    }

    /// A plaintext WAL database at `path` with table `t` holding 1..=5000 (sum: [`ROWS_SUM`]).
    fn write_rows(path: &Path) {
        Connection::open(path)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
                 INSERT INTO t SELECT i FROM n;",
            )
            .unwrap();
    }

    const ROWS_SUM: i64 = 5000 * 5001 / 2;

    fn sum(path: &Path, key: Option<&DatabaseKey>) -> Result<i64> {
        let conn = Connection::open(path)?;
        if let Some(key) = key {
            key_connection(&conn, key)?;
        }
        Ok(conn.query_row("SELECT sum(x) FROM t", [], |r| r.get(0))?)
    }

    #[test]
    fn conversions_between_plaintext_and_keys_keep_every_row() {
        use crate::auth::MemorySecretStore;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        write_rows(&path);
        let expected = ROWS_SUM;
        let secrets = Secrets {
            store: std::sync::Arc::new(MemorySecretStore::new()),
            namespace: "tandem.test".into(),
        };
        let keys = DbKeys::new(secrets, &path);
        let (a, b) = (keys::generate().unwrap(), keys::generate().unwrap());

        convert(&path, Some(&keys), None, Some(&a)).unwrap();
        assert_eq!(file_state(&path).unwrap(), Encrypted);
        assert_eq!(sum(&path, Some(&a)).unwrap(), expected);
        assert!(matches!(
            sum(&path, Some(&b)),
            Err(Error::Key(KeyProblem::Wrong))
        ));
        assert!(sum(&path, None).is_err());
        assert_eq!(
            keys.get(Slot::Current).unwrap().map(|k| *k.as_bytes()),
            Some(*a.as_bytes())
        );
        assert!(keys.get(Slot::Next).unwrap().is_none());
        assert_eq!(
            recover(&path, Some(&keys)).unwrap().map(|k| *k.as_bytes()),
            Some(*a.as_bytes())
        );

        convert(&path, Some(&keys), Some(&a), Some(&b)).unwrap();
        assert_eq!(sum(&path, Some(&b)).unwrap(), expected);
        assert!(matches!(
            sum(&path, Some(&a)),
            Err(Error::Key(KeyProblem::Wrong))
        ));
        assert_eq!(
            keys.get(Slot::Current).unwrap().map(|k| *k.as_bytes()),
            Some(*b.as_bytes())
        );

        convert(&path, Some(&keys), Some(&b), None).unwrap();
        assert_eq!(file_state(&path).unwrap(), Plain);
        assert_eq!(sum(&path, None).unwrap(), expected);
        assert!(keys.get(Slot::Current).unwrap().is_none());
        assert!(!converting_path(&path).exists());
    }

    #[test]
    fn recovery_after_the_rename_promotes_and_before_it_drops_the_copy() {
        use crate::auth::MemorySecretStore;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42);")
            .unwrap();
        let secrets = Secrets {
            store: std::sync::Arc::new(MemorySecretStore::new()),
            namespace: "tandem.test".into(),
        };
        let keys = DbKeys::new(secrets, &path);
        let (a, b) = (keys::generate().unwrap(), keys::generate().unwrap());
        convert(&path, Some(&keys), None, Some(&a)).unwrap();
        // A rekey killed after its rename: the file opens only with db-key-next.
        keys.set(Slot::Next, &b).unwrap();
        let conn = Connection::open(&path).unwrap();
        key_connection(&conn, &a).unwrap();
        let copy = converting_path(&path);
        conn.execute("VACUUM INTO ?1", [target_uri(&copy, Some(&b)).as_str()])
            .unwrap();
        drop(conn);
        std::fs::rename(&copy, &path).unwrap();
        assert_eq!(
            recover(&path, Some(&keys)).unwrap().map(|k| *k.as_bytes()),
            Some(*b.as_bytes())
        );
        assert_eq!(
            keys.get(Slot::Current).unwrap().map(|k| *k.as_bytes()),
            Some(*b.as_bytes())
        );
        assert!(keys.get(Slot::Next).unwrap().is_none());
        assert_eq!(sum(&path, Some(&b)).unwrap(), 42);
        // A rekey killed during its copy: the copy goes, the next key goes, the file stays.
        keys.set(Slot::Next, &a).unwrap();
        std::fs::write(&copy, b"half a copy").unwrap();
        assert_eq!(
            recover(&path, Some(&keys)).unwrap().map(|k| *k.as_bytes()),
            Some(*b.as_bytes())
        );
        assert!(!copy.exists());
        assert!(keys.get(Slot::Next).unwrap().is_none());
        // No key opens it: a typed error, and the file and keys stay as they are.
        let other = DbKeys::new(
            Secrets {
                store: std::sync::Arc::new(MemorySecretStore::new()),
                namespace: "tandem.test".into(),
            },
            &path,
        );
        std::fs::write(&copy, b"half a copy").unwrap();
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            recover(&path, Some(&other)),
            Err(Error::Key(KeyProblem::Missing))
        ));
        other.set(Slot::Current, &a).unwrap();
        assert!(matches!(
            recover(&path, Some(&other)),
            Err(Error::Key(KeyProblem::Wrong))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(copy.exists());
    }

    #[test]
    fn a_plain_copy_keeps_every_row_and_leaves_no_copy_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        write_rows(&path);
        convert(&path, None, None, None).unwrap();
        assert!(!converting_path(&path).exists());
        assert_eq!(sum(&path, None).unwrap(), ROWS_SUM);
    }
}
