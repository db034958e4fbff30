//! WAL checkpoints off the writer's path. SQLite's automatic checkpoint runs inside the commit that
//! crosses the threshold, so one unlucky write (perhaps on the UI thread) pays for copying the
//! whole log back into the database. Instead the writer's WAL hook wakes this thread each time the
//! log has grown by [`CHECKPOINT_PAGES`], and it runs a passive checkpoint on its own connection:
//! it never blocks the writer or the readers.
//!
//! The log starts over (at the writer's next transaction) only once every frame in it is copied,
//! which passive passes never achieve while small commits keep coming: each pass ends behind the
//! commits made during it. So once such commits have grown the log past [`LOG_LIMIT_PAGES`], the
//! writer copies the little the background left, once, and the log starts over; a single large
//! transaction never pays for that (the background copies it).

use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::Connection;

use super::cipher::DatabaseKey;
use super::BUSY_TIMEOUT;
use crate::error::Result;

/// WAL size, in pages, past which a commit asks for a checkpoint (SQLite's default threshold).
const CHECKPOINT_PAGES: c_int = 1000;

/// WAL size, in pages, past which a small commit copies the rest of the log itself (about 16 MiB
/// of log under writes that never pause).
const LOG_LIMIT_PAGES: c_int = 4 * CHECKPOINT_PAGES;

pub struct Checkpointer {
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path, key: Option<&DatabaseKey>) -> Result<Self> {
        let conn = Connection::open(path)?;
        super::apply_key(&conn, key)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        open_log(&conn)?;
        let (wake, requests) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("tandem-checkpoint".into())
            .spawn(move || run(&conn, &requests))?;
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// What the writer's WAL hook does after each commit.
    pub fn log_watch(&self) -> LogWatch {
        LogWatch {
            wake: self.wake.clone().expect("present until drop"),
            pages_before: 0,
            wake_at: CHECKPOINT_PAGES,
            copy_here_at: LOG_LIMIT_PAGES,
        }
    }
}

/// The writer's side: after each commit, given the log's size in pages, asks the background
/// thread for a checkpoint or (see the module's doc) copies the rest of the log itself.
pub struct LogWatch {
    wake: Sender<()>,
    pages_before: c_int,
    /// The log size at which the next commit wakes the background thread: one pass per
    /// [`CHECKPOINT_PAGES`] the log grows, not one per commit (each pass syncs both files, and
    /// copies again the pages the commits since the last one rewrote).
    wake_at: c_int,
    /// The log size at which the writer copies the rest itself.
    copy_here_at: c_int,
}

impl LogWatch {
    pub fn after_commit(&mut self, wal: &mut Wal, pages: c_int) {
        let added = pages - self.pages_before;
        self.pages_before = pages;
        if pages < CHECKPOINT_PAGES {
            // The log started over.
            self.wake_at = CHECKPOINT_PAGES;
            self.copy_here_at = LOG_LIMIT_PAGES;
            return;
        }
        if pages < self.copy_here_at || added >= CHECKPOINT_PAGES {
            if pages >= self.wake_at {
                self.wake_at = pages + CHECKPOINT_PAGES;
                let _ = self.wake.send(());
            }
            return;
        }
        // Not waking the background here lets its running pass be its last, so the writer gets
        // the checkpoint lock at one of its next commits.
        match wal.checkpoint_v2(CheckpointMode::PASSIVE) {
            // A reader holds an older snapshot: one try per LOG_LIMIT_PAGES, not every commit.
            Ok((log, copied)) if copied < log => self.copy_here_at = pages + LOG_LIMIT_PAGES,
            // Everything is copied: the log starts over at the next transaction.
            Ok(_) => {}
            // Busy at once (it does not wait) while the background is copying: tried again
            // after the next commit.
            Err(e) => tracing::trace!(error = %e, pages, "the writer's WAL checkpoint waits"),
        }
    }
}

/// A connection learns that its database is in WAL mode, and opens the log, on its first read;
/// until then SQLite answers a checkpoint with "not in WAL mode" (success, nothing copied).
fn open_log(conn: &Connection) -> Result<()> {
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    Ok(())
}

fn run(conn: &Connection, requests: &Receiver<()>) {
    while requests.recv().is_ok() {
        // One checkpoint covers every request queued so far.
        while requests.try_recv().is_ok() {}
        // A busy or failed pass is retried at the next wake (the log grew by another
        // CHECKPOINT_PAGES) or by the writer's own copy past LOG_LIMIT_PAGES.
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok((-1, _)) => tracing::warn!("WAL checkpoint found no log; it grows until close"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed; retried later"),
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
    use std::time::Duration;

    use tempfile::TempDir;

    use super::LOG_LIMIT_PAGES;

    use crate::store::Store;

    /// The next open must not index a log this one left: closed, the store's WAL is empty.
    #[test]
    fn a_closed_store_leaves_no_log_to_read_again() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path, None).unwrap();
        insert_values(&store, 0, 50, 500);
        let wal = dir.path().join("s.db-wal");
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 0,
            "written through the log"
        );
        drop(store);
        let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert_eq!(left, 0, "the log is emptied at close");
    }

    fn insert_values(store: &Store, from: usize, count: usize, size: usize) {
        store
            .write(|tx| {
                for i in from..from + count {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        [format!("k{i}"), "x".repeat(size)],
                    )?;
                }
                Ok(())
            })
            .unwrap();
    }

    /// A commit past the threshold wakes the background thread, which copies the log into the
    /// database file while the store stays open.
    #[test]
    fn the_background_copies_the_log_into_the_database() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path, None).unwrap();
        // About 1,200 pages in one transaction.
        insert_values(&store, 0, 1200, 3000);
        let copied = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(25));
            std::fs::metadata(&path).unwrap().len() > 3_000_000
        });
        assert!(copied, "the database file holds the log's pages within 5 s");
        drop(store);
    }

    /// Small commits that never pause keep the log bounded: the writer copies the rest itself
    /// once the background has fallen behind, and the log starts over.
    #[test]
    fn small_commits_without_pause_keep_the_log_bounded() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path, None).unwrap();
        // About 3 pages a commit (about 6.6 frames with the tables' other pages): some 40,000
        // frames, ten times the limit. The bound leaves room for a slow background pass holding
        // the checkpoint lock while the writer's own copy waits for it.
        for i in 0..6000 {
            insert_values(&store, i, 1, 9000);
        }
        let frame = 4096 + 24;
        let wal = std::fs::metadata(dir.path().join("s.db-wal"))
            .unwrap()
            .len();
        let bound = u64::try_from(3 * LOG_LIMIT_PAGES).unwrap() * frame;
        assert!(wal < bound, "the log peaked at {wal} bytes (bound {bound})");
        drop(store);
    }
}
