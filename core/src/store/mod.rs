//! The SQLite file: one writer connection and a small pool of readers. In WAL mode readers never
//! wait for a running write, so queries stay fast while a long sync transaction is open.

#[cfg(test)]
mod at_rest_tests;
mod checkpoint;
pub mod cipher;
pub mod convert;
pub mod files;
pub mod keys;
mod migrations;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use migrations::migrate;
#[cfg(test)]
pub(crate) use migrations::migrate_to;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
use checkpoint::Checkpointer;
use cipher::{DatabaseKey, KeyProblem};

/// Pragmas every connection gets. Public so the benchmark floor runs raw SQLite with exactly these
/// (the floor also turns automatic checkpoints off, as the engine moves them to a background thread).
pub const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = NORMAL;
     PRAGMA temp_store = MEMORY;
     PRAGMA cache_size = -16000;";

/// The reader connections' share of [`CONNECTION_PRAGMAS`]: the writer's page cache (point reads
/// that hit it cost no I/O and, with encryption, no decryption) and memory for temporary tables.
const READER_PRAGMAS: &str = "PRAGMA temp_store = MEMORY;
     PRAGMA cache_size = -16000;";

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const STATEMENT_CACHE: usize = 64;
const MAX_IDLE_READERS: usize = 4;

// Fields drop in order: connections first, then the checkpointer (whose thread ends once the
// writer's hook is gone), and the directory claim last.
pub struct Store {
    path: PathBuf,
    /// The key of an encrypted database; every connection is keyed with it before its first read.
    key: Option<DatabaseKey>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    _checkpointer: Checkpointer,
    claim: DirectoryClaim,
}

impl Store {
    /// Opens (creating when missing) the store at `path` and migrates it. A file written by a newer
    /// engine is refused before anything is written to it. With `key`, every connection is keyed
    /// (a new file is encrypted from its first page; docs/design/encryption.md); a key that does
    /// not open the file, or no key for an encrypted file, is [`Error::Key`] and leaves the file
    /// untouched.
    #[cfg(test)]
    pub fn open(path: &Path, key: Option<&DatabaseKey>) -> Result<Self> {
        let claim = DirectoryClaim::take(path)?;
        Self::open_claimed(path, key, claim)
    }

    /// [`Store::open`] as `encryption` asks: recovers an interrupted conversion, converts the file
    /// when it and the configuration disagree (see [`convert::prepare`]), then opens it with the
    /// key that opens it. The directory claim is held throughout.
    pub fn open_with(path: &Path, encryption: &convert::StoreEncryption) -> Result<Self> {
        let claim = DirectoryClaim::take(path)?;
        // Before anything creates the file: a missing one is a new database.
        let key = convert::prepare(path, encryption)?;
        Self::open_claimed(path, key.as_ref(), claim)
    }

    /// Sets the database at `path` aside when no stored key opens it
    /// ([`convert::set_aside_if_unreadable`]), holding its claim: `AlreadyOpen` while an engine
    /// of this process has it open.
    pub fn set_aside_if_unreadable(
        path: &Path,
        encryption: &convert::StoreEncryption,
    ) -> Result<Option<PathBuf>> {
        let _claim = DirectoryClaim::take(path)?;
        let keys = encryption
            .secrets
            .as_ref()
            .map(|secrets| keys::DbKeys::new(secrets.clone(), path));
        convert::set_aside_if_unreadable(path, keys.as_ref())
    }

    fn open_claimed(path: &Path, key: Option<&DatabaseKey>, claim: DirectoryClaim) -> Result<Self> {
        files::ensure_private_file(path)?;
        let writer = Connection::open(path)?;
        apply_key(&writer, key)?;
        let version: i64 = writer
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| match key {
                // Keyed and verified above: this is some other failure.
                Some(_) => Error::Sqlite(e),
                // An encrypted file opened without a key; a plaintext file saying NOTADB is
                // damaged, not encrypted.
                None if cipher::is_plaintext(path) => Error::Sqlite(e),
                None => cipher::key_error(e, KeyProblem::Missing),
            })?;
        migrations::refuse_newer(version)?;
        let mut writer = writer;
        configure(&writer)?;
        let checkpointer = Checkpointer::start(path, key)?;
        let mut log_watch = checkpointer.log_watch();
        // Replaces SQLite's automatic checkpoint (a WAL hook and autocheckpoint exclude each other).
        writer.wal_hook(Some(
            move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
                log_watch.after_commit(wal, pages);
                Ok(())
            },
        ))?;
        let mut store = Self {
            path: path.to_path_buf(),
            key: key.cloned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            _checkpointer: checkpointer,
            claim,
        };
        store.write(migrations::migrate)?;
        let first_reader = store.open_reader()?;
        store
            .readers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .push(first_reader);
        Ok(store)
    }

    /// Says its owner is shutting down: an `open` of the same file waits for this store to be
    /// dropped (by whichever task holds it last) instead of failing with `AlreadyOpen`.
    pub fn mark_closing(&self) {
        self.claim.mark_closing();
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key the store is encrypted with (`None`: plaintext).
    pub(crate) fn key(&self) -> Option<&DatabaseKey> {
        self.key.as_ref()
    }

    /// Runs `f` in an immediate write transaction and commits when it returns `Ok`; an error (or a
    /// panic) rolls everything back.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        in_transaction(&mut lock(&self.writer), f)
    }

    /// Like [`Store::write`], with the database file `other` (encrypted with `other_key`, or
    /// plaintext) attached as `alias` for the length of the transaction (SQLite cannot attach or
    /// detach inside one, so this brackets it).
    pub fn write_attached<T>(
        &self,
        other: &Path,
        other_key: Option<&DatabaseKey>,
        alias: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = lock(&self.writer);
        let problem = if other_key.is_some() {
            KeyProblem::Wrong
        } else {
            KeyProblem::Missing
        };
        if other_key.is_some() {
            // The cipher an ATTACH with a key uses is the connection's current one, which a
            // plaintext main database never set.
            let _: String =
                conn.query_row(&format!("PRAGMA cipher = '{}'", cipher::CIPHER), [], |r| {
                    r.get(0)
                })?;
        }
        // SQLite3MC reads the attached file's first page when a key is given (the ATTACH fails),
        // otherwise on the first read: check here, so that a key problem is typed.
        conn.execute(
            "ATTACH DATABASE ?1 AS ?2 KEY ?3",
            rusqlite::params![
                other.to_string_lossy(),
                alias,
                &cipher::attach_key(other_key)[..]
            ],
        )
        .map_err(|e| cipher::key_error(e, problem))?;
        let schema = format!(
            "SELECT count(*) FROM \"{}\".sqlite_schema",
            alias.replace('"', "\"\"")
        );
        if let Err(e) = conn.query_row(&schema, [], |_| Ok(())) {
            let _ = conn.execute("DETACH DATABASE ?1", [alias]);
            return Err(cipher::key_error(e, problem));
        }
        let result = in_transaction(&mut conn, f);
        conn.execute("DETACH DATABASE ?1", [alias])?;
        result
    }

    /// Runs `f` on a reader connection inside one read transaction (a consistent snapshot).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match lock(&self.readers).pop() {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let result = read_in_snapshot(&conn, f);
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    fn open_reader(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        apply_key(&conn, self.key.as_ref())?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(READER_PRAGMAS)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// Keys a freshly opened connection when the store is encrypted (before anything reads it).
pub(crate) fn apply_key(conn: &Connection, key: Option<&DatabaseKey>) -> Result<()> {
    match key {
        Some(key) => cipher::key_connection(conn, key),
        None => Ok(()),
    }
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(CONNECTION_PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Runs `f` in an immediate transaction on `conn`, committing when it returns `Ok`.
fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

fn read_in_snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    // Cached statements: parsing BEGIN/COMMIT anew would cost more than a point read itself.
    conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
    let result = f(conn);
    conn.prepare_cached("COMMIT")?.execute([])?;
    result
}

/// The store an engine currently works on; replaced when the signed-in account changes, so that
/// long-lived readers (observers) follow the switch.
#[derive(Default)]
pub struct CurrentStore(RwLock<Option<Arc<Store>>>);

impl CurrentStore {
    pub fn get(&self) -> Option<Arc<Store>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, store: Option<Arc<Store>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = store;
    }
}

/// A value of the store's `meta` table (the installed schema, the sync cursor, the last sync).
pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

pub fn meta_delete(conn: &Connection, key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?
        .execute([key])?;
    Ok(())
}

/// Leaves no log behind: a log left behind is indexed again by the next open's first read, which
/// grew `open` with the store (182–409 ms at a million records). A truncating checkpoint here
/// copies what the log holds (what the background has not copied yet) and empties it.
impl Drop for Store {
    fn drop(&mut self) {
        let writer = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = writer.wal_checkpoint_v2(None::<&str>, CheckpointMode::TRUNCATE) {
            tracing::debug!(error = %e, "checkpoint at close failed; the next open reads the log");
        }
    }
}

/// A poisoned lock only means another call panicked; SQLite rolled its transaction back when the
/// guard unwound, so the connection is still good to use.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ensures one writer per database file in this process: a second `open` of the same file fails
/// clearly instead of racing the first instance, unless that instance is closing (see
/// [`Store::mark_closing`]), in which case it waits for it to let go.
struct DirectoryClaim(PathBuf);

/// The files claimed in this process, and those of them whose instance is closing.
#[derive(Default)]
struct Claims {
    held: HashSet<PathBuf>,
    closing: HashSet<PathBuf>,
}

fn claims() -> &'static (Mutex<Claims>, Condvar) {
    static CLAIMS: OnceLock<(Mutex<Claims>, Condvar)> = OnceLock::new();
    CLAIMS.get_or_init(Default::default)
}

/// How long an `open` waits for a closing instance of the same file (a sync run finishing).
const CLOSING_WAIT: Duration = Duration::from_secs(10);

impl DirectoryClaim {
    fn take(path: &Path) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = dir.canonicalize()?;
        let key = dir.join(path.file_name().unwrap_or_default());
        let (mutex, released) = claims();
        let deadline = Instant::now() + CLOSING_WAIT;
        let mut claims = lock(mutex);
        while claims.held.contains(&key) {
            let left = deadline.saturating_duration_since(Instant::now());
            if !claims.closing.contains(&key) || left.is_zero() {
                return Err(Error::AlreadyOpen(dir));
            }
            claims = released
                .wait_timeout(claims, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        claims.held.insert(key.clone());
        Ok(Self(key))
    }

    fn mark_closing(&self) {
        lock(&claims().0).closing.insert(self.0.clone());
    }
}

impl Drop for DirectoryClaim {
    fn drop(&mut self) {
        let (mutex, released) = claims();
        let mut claims = lock(mutex);
        claims.held.remove(&self.0);
        claims.closing.remove(&self.0);
        released.notify_all();
    }
}
