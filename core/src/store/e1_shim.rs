//! Stand-ins for the names slice E1 provides (`store::cipher`, the key errors), so this slice
//! builds before E1 lands; removed when E1 is merged. Until then `key_connection` keys nothing.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// A 256-bit database key. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseKey([u8; 32]);

impl DatabaseKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseKey(..)")
    }
}

/// Why a store's key could not be had or used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Missing,
    Wrong,
    Unavailable(String),
}

pub fn key_error(problem: KeyProblem) -> Error {
    Error::Corrupt(format!("database key: {problem:?}"))
}

pub fn key_connection(_conn: &Connection, _key: &DatabaseKey) -> Result<()> {
    Ok(())
}
