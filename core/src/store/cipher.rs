//! Encryption of the SQLite file at rest (docs/design/encryption.md §1–§3). The workspace builds
//! SQLite3 Multiple Ciphers in place of SQLite (vendor/libsqlite3-sys); every connection the store
//! opens is keyed here, before its first read, with the cipher `aegis` (AEGIS-256, SQLite3MC's
//! default AEGIS variant: authenticated encryption of each page with a 256-bit key and nonce, on
//! the CPU's AES instructions when it has them: AES-NI, the ARMv8 crypto extension; chosen over
//! `chacha20` by measurement, docs/design/encryption.md §1) and a raw 256-bit key, so no
//! password stretching runs on open.
//!
//! SQLite3MC's raw-key form: a key string `raw:` followed by exactly the cipher's key length in
//! bytes (32 for AEGIS-256) bypasses the key derivation (`sqlite3mcExtractRawKey`); the page salt
//! then stays the one stored in the file. The key goes through the C API (`sqlite3_key_v2`) or as
//! a bound `ATTACH ... KEY ?` parameter, never as SQL text.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt;

use rusqlite::{ffi, Connection, ErrorCode};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// The cipher every encrypted database uses (SQLite3MC's name).
pub const CIPHER: &str = "aegis";

/// SQLite3MC's prefix for a key that is used as is (no key derivation).
const RAW_PREFIX: &[u8] = b"raw:";

/// The first 16 bytes of every plaintext SQLite database.
pub const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

extern "C" {
    /// SQLite3MC's keying call (the SQLITE_HAS_CODEC API); not in libsqlite3-sys's bindings,
    /// which are generated from plain SQLite.
    fn sqlite3_key_v2(
        db: *mut ffi::sqlite3,
        db_name: *const c_char,
        key: *const c_void,
        key_len: c_int,
    ) -> c_int;
}

/// A database's 256-bit key. Its bytes are wiped when it is dropped and never printed (no
/// `PartialEq` either: nothing needs to compare keys, and a comparison would not be constant-time).
#[derive(Clone)]
pub struct DatabaseKey([u8; DatabaseKey::LEN]);

impl DatabaseKey {
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// `None` unless `bytes` is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; Self::LEN]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// SQLite3MC's raw-key string for this key: `raw:` and the 32 bytes (wiped on drop).
    fn raw_key(&self) -> Zeroizing<Vec<u8>> {
        let mut raw = Zeroizing::new(Vec::with_capacity(RAW_PREFIX.len() + Self::LEN));
        raw.extend_from_slice(RAW_PREFIX);
        raw.extend_from_slice(&self.0);
        raw
    }
}

impl Drop for DatabaseKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseKey(..)")
    }
}

/// Why an encrypted database could not be opened. The file is never deleted, truncated or
/// rewritten on any of these paths: its pending changes wait in it for the key to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// The file is encrypted and no key for it was found.
    Missing,
    /// The key does not open the file (SQLite answers `SQLITE_NOTADB` on the first read).
    Wrong,
    /// The secret store holding the key cannot be read now (e.g. before the device's first
    /// unlock); retrying later may succeed.
    Unavailable,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "the database is encrypted and its key is missing",
            Self::Wrong => "the database key does not open the database",
            Self::Unavailable => "the secret store holding the database key is unavailable",
        })
    }
}

/// Keys `conn`'s main database with `key` (cipher [`CIPHER`], raw key) and reads the schema once,
/// so that a key that does not open an existing file fails here as [`KeyProblem::Wrong`] rather
/// than on some later query. A new (empty) file takes the key and is encrypted from its first
/// page on. Must run before anything else reads the connection.
pub fn key_connection(conn: &Connection, key: &DatabaseKey) -> Result<()> {
    let cipher: String =
        conn.query_row(&format!("PRAGMA cipher = '{CIPHER}'"), [], |r| r.get(0))?;
    if !cipher.eq_ignore_ascii_case(CIPHER) {
        return Err(Error::Corrupt(format!(
            "SQLite3 Multiple Ciphers refused the cipher {CIPHER} (answered {cipher})"
        )));
    }
    let rc = set_main_key(conn, key);
    if rc != ffi::SQLITE_OK {
        // SAFETY: the handle is live; SQLite returns a static string for any code.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errstr(rc)) };
        tracing::error!(code = rc, "keying the database connection failed");
        return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some(message.to_string_lossy().into_owned()),
        )));
    }
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| key_error(e, KeyProblem::Wrong))
}

/// SQLite3MC's keying call on `conn`'s main database with `key` in its raw form: the SQLite
/// result code. Reads nothing: a wrong key shows on the first read.
fn set_main_key(conn: &Connection, key: &DatabaseKey) -> c_int {
    let raw = key.raw_key();
    // SAFETY: the handle is the live connection's; `raw` outlives the call, which copies it.
    unsafe {
        sqlite3_key_v2(
            conn.handle(),
            c"main".as_ptr(),
            raw.as_ptr().cast(),
            raw.len() as c_int,
        )
    }
}

/// The value for `ATTACH DATABASE ... KEY ?`: the raw key, or an empty key for a plaintext file
/// (without a KEY clause SQLite3MC would use the main database's key).
pub fn attach_key(key: Option<&DatabaseKey>) -> Zeroizing<Vec<u8>> {
    key.map_or_else(|| Zeroizing::new(Vec::new()), DatabaseKey::raw_key)
}

/// Whether the file at `path` starts like a plaintext SQLite database (a missing or empty file
/// counts as plaintext: SQLite creates it so).
pub fn is_plaintext(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; PLAINTEXT_HEADER.len()];
    match std::fs::File::open(path).and_then(|mut f| f.read(&mut header)) {
        Ok(0) | Err(_) => true,
        Ok(_) => &header == PLAINTEXT_HEADER,
    }
}

/// Maps `SQLITE_NOTADB` (the answer of the first read of an encrypted file opened with a wrong
/// key, or with none) to the key problem; other errors stay what they are.
pub fn key_error(error: rusqlite::Error, problem: KeyProblem) -> Error {
    if error.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        tracing::warn!(problem = ?problem, "the database file does not open without the right key");
        Error::Key(problem)
    } else {
        Error::Sqlite(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DatabaseKey {
        DatabaseKey::from_bytes([byte; DatabaseKey::LEN])
    }

    fn write_keyed(path: &std::path::Path, key: &DatabaseKey) {
        let conn = Connection::open(path).unwrap();
        key_connection(&conn, key).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (v TEXT);
             INSERT INTO t VALUES ('distinctive-value');",
        )
        .unwrap();
    }

    #[test]
    fn the_right_key_opens_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        write_keyed(&path, &key(7));
        let conn = Connection::open(&path).unwrap();
        key_connection(&conn, &key(7)).unwrap();
        let v: String = conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(v, "distinctive-value");
        let cipher: String = conn.query_row("PRAGMA cipher", [], |r| r.get(0)).unwrap();
        assert_eq!(cipher, CIPHER);
        let header = std::fs::read(&path).unwrap();
        assert_ne!(&header[..16], PLAINTEXT_HEADER, "the header is encrypted");
    }

    #[test]
    fn a_wrong_key_fails_on_the_first_read_with_notadb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        write_keyed(&path, &key(7));
        let before = std::fs::read(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        let err = key_connection(&conn, &key(8)).unwrap_err();
        assert!(matches!(err, Error::Key(KeyProblem::Wrong)), "{err:?}");
        drop(conn);
        // The raw SQLite answer underneath is SQLITE_NOTADB.
        let conn = Connection::open(&path).unwrap();
        let rc = set_main_key(&conn, &key(8));
        assert_eq!(rc, ffi::SQLITE_OK, "keying itself does not read");
        let err = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(ErrorCode::NotADatabase));
        drop(conn);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file is untouched"
        );
    }

    #[test]
    fn without_a_key_the_file_is_not_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        write_keyed(&path, &key(7));
        let conn = Connection::open(&path).unwrap();
        let err = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(ErrorCode::NotADatabase));
        assert!(matches!(
            key_error(err, KeyProblem::Missing),
            Error::Key(KeyProblem::Missing)
        ));
    }

    #[test]
    fn the_key_never_prints() {
        let k = key(0xAB);
        let shown = format!("{k:?} {}", Error::Key(KeyProblem::Wrong));
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "));
        assert_eq!(format!("{k:?}"), "DatabaseKey(..)");
        assert!(DatabaseKey::from_slice(&[1; 31]).is_none());
        assert_eq!(
            DatabaseKey::from_slice(&[1; 32]).map(|k| *k.as_bytes()),
            Some([1; 32])
        );
    }

    #[test]
    fn attach_takes_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.db");
        let other = dir.path().join("other.db");
        write_keyed(&other, &key(9));
        let conn = Connection::open(&main).unwrap();
        key_connection(&conn, &key(7)).unwrap();
        conn.execute(
            "ATTACH DATABASE ?1 AS other KEY ?2",
            rusqlite::params![other.to_string_lossy(), &attach_key(Some(&key(9)))[..]],
        )
        .unwrap();
        let v: String = conn
            .query_row("SELECT v FROM other.t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, "distinctive-value");
        conn.execute("DETACH DATABASE other", []).unwrap();

        // A plaintext file attached to a keyed connection with an empty key.
        let plain = dir.path().join("plain.db");
        Connection::open(&plain)
            .unwrap()
            .execute_batch("CREATE TABLE p (v TEXT); INSERT INTO p VALUES ('x');")
            .unwrap();
        conn.execute(
            "ATTACH DATABASE ?1 AS plain KEY ?2",
            rusqlite::params![plain.to_string_lossy(), &attach_key(None)[..]],
        )
        .unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM plain.p", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
