//! Where the CLI keeps the engine's tokens: `credentials.json` in the data directory, readable by
//! its owner only.
//!
//! Not the platform keyring: a developer tool runs from scripts, CI and several terminals, and
//! Linux's kernel keyring is per login session (a token saved in one terminal is gone in the
//! next, and CI has no session at all). The file holds what the data directory's databases
//! already imply (this device's access to the account), never a password.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use tandem::{SecureStore, SecureStoreError};

/// A [`SecureStore`] over one JSON file, written atomically (a new file renamed over the old).
pub struct FileSecureStore {
    path: PathBuf,
    // Serialises read-modify-write cycles within this process.
    lock: Mutex<()>,
}

impl FileSecureStore {
    pub const FILE_NAME: &'static str = "credentials.json";

    /// The store in `dir` (the file appears on the first `set`).
    pub fn in_dir(dir: PathBuf) -> Self {
        Self {
            path: dir.join(Self::FILE_NAME),
            lock: Mutex::new(()),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecureStoreError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| failed(format!("{} is corrupt: {e}", self.path.display()))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(failed(format!("cannot read {}: {e}", self.path.display()))),
        }
    }

    fn write(&self, entries: &BTreeMap<String, String>) -> Result<(), SecureStoreError> {
        let dir = self.path.parent().expect("the file is inside a directory");
        let io = |e: std::io::Error| failed(format!("cannot write {}: {e}", self.path.display()));
        if entries.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(io(e)),
                _ => Ok(()),
            };
        }
        fs::create_dir_all(dir).map_err(io)?;
        // tempfile creates the file readable by its owner only (0600 on Unix).
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let text = serde_json::to_vec_pretty(entries).expect("strings always serialise");
        file.write_all(&text).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(&self.path).map_err(|e| io(e.error))?;
        Ok(())
    }

    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), SecureStoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut entries = self.read()?;
        change(&mut entries);
        self.write(&entries)
    }
}

fn failed(detail: String) -> SecureStoreError {
    SecureStoreError::Failed { detail }
}

impl SecureStore for FileSecureStore {
    fn get(&self, key: String) -> Result<Option<String>, SecureStoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.read()?.remove(&key))
    }

    fn set(&self, key: String, value: String) -> Result<(), SecureStoreError> {
        self.update(|entries| {
            entries.insert(key, value);
        })
    }

    fn delete(&self, key: String) -> Result<(), SecureStoreError> {
        self.update(|entries| {
            entries.remove(&key);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_a_new_store_and_deletes_remove_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecureStore::in_dir(dir.path().to_path_buf());
        assert_eq!(store.get("a".into()).unwrap(), None);
        store.set("a".into(), "1".into()).unwrap();
        store.set("b".into(), "2".into()).unwrap();
        let again = FileSecureStore::in_dir(dir.path().to_path_buf());
        assert_eq!(again.get("a".into()).unwrap().as_deref(), Some("1"));
        again.delete("a".into()).unwrap();
        again.delete("b".into()).unwrap();
        assert!(!dir.path().join(FileSecureStore::FILE_NAME).exists());
    }

    #[cfg(unix)]
    #[test]
    fn only_the_owner_can_read_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecureStore::in_dir(dir.path().to_path_buf());
        store.set("token".into(), "secret".into()).unwrap();
        let mode = fs::metadata(dir.path().join(FileSecureStore::FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FileSecureStore::FILE_NAME), b"{not json").unwrap();
        let store = FileSecureStore::in_dir(dir.path().to_path_buf());
        assert!(store.get("a".into()).is_err());
    }
}
