//! WAL checkpoints off the writer's path. SQLite's automatic checkpoint runs inside the commit that
//! crosses the threshold, so one unlucky write (perhaps on the UI thread) pays for copying the
//! whole log back into the database. Instead the writer's WAL hook wakes this thread, which runs a
//! passive checkpoint on its own connection: it never blocks the writer or the readers.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

use rusqlite::wal::CheckpointMode;
use rusqlite::Connection;

use super::cipher::DatabaseKey;
use super::BUSY_TIMEOUT;
use crate::error::Result;

/// WAL size, in pages, past which a commit asks for a checkpoint (SQLite's default threshold).
pub const CHECKPOINT_PAGES: i32 = 1000;

pub struct Checkpointer {
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path, key: Option<&DatabaseKey>) -> Result<Self> {
        let conn = Connection::open(path)?;
        super::apply_key(&conn, key)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let (wake, requests) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("tandem-checkpoint".into())
            .spawn(move || run(&conn, &requests))?;
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// A handle for the writer's WAL hook.
    pub fn waker(&self) -> Sender<()> {
        self.wake.clone().expect("present until drop")
    }
}

fn run(conn: &Connection, requests: &Receiver<()>) {
    while requests.recv().is_ok() {
        // One checkpoint covers every request queued so far.
        while requests.try_recv().is_ok() {}
        // A busy or failed checkpoint is simply retried after the next commit that asks.
        if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            tracing::debug!(error = %e, "WAL checkpoint failed; retried after the next commit");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use crate::store::Store;

    /// The next open must not index a log this one left: closed, the store's WAL is empty.
    #[test]
    fn a_closed_store_leaves_no_log_to_read_again() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path, None).unwrap();
        store
            .write(|tx| {
                for i in 0..50 {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        [format!("k{i}"), "x".repeat(500)],
                    )?;
                }
                Ok(())
            })
            .unwrap();
        let wal = dir.path().join("s.db-wal");
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 0,
            "written through the log"
        );
        drop(store);
        let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert_eq!(left, 0, "the log is emptied at close");
    }
}
