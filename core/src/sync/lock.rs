//! "Only one process syncs an account at a time": an app and its extension may share a data
//! directory. An advisory file lock, held for the length of a run, is visible to every process
//! and released by the OS if the holder dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;

pub struct ProcessLock(#[allow(dead_code)] File);

impl ProcessLock {
    /// Takes the lock at `path`, or `None` when another process (or engine) holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Self>> {
        let file = crate::store::files::open_private(
            path,
            OpenOptions::new().create(true).truncate(false).write(true),
        )?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("sync.lock");
        let first = ProcessLock::try_acquire(&path).unwrap();
        assert!(first.is_some());
        assert!(ProcessLock::try_acquire(&path).unwrap().is_none());
        drop(first);
        assert!(ProcessLock::try_acquire(&path).unwrap().is_some());
    }
}
