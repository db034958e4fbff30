//! In-memory progress of the transfers under way (hash → uploading or downloading n/N), and the
//! attachment state an app observes: the `attachments` row combined with the transfer.
//!
//! Progress is never stored: a transfer cut off resumes from what the server (upload) or the
//! `.part` file (download) holds, so after a restart the state is read from the table alone.
//! Every change is published through the one observation registry under the reserved change name
//! [`ATTACHMENTS`](crate::observe::ATTACHMENTS) (change listeners never hear it, like `$spaces`);
//! attachment observers read their state again and hear it when it changed. Publication is
//! throttled to one per [`PUBLISH_INTERVAL`] per hash, with a trailing one so the newest progress
//! is always told; the end of a transfer is told at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::AttachmentState;
use crate::error::Result;
use crate::observe::{Notifier, ATTACHMENTS};
use crate::runtime::runtime;
use crate::store::lock;

/// At most ten publications a second per hash.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// A transfer under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Uploading { sent: u64, total: u64 },
    Downloading { received: u64, total: u64 },
}

struct Slot {
    transfer: Transfer,
    published_at: Option<Instant>,
    /// A delayed publication is scheduled (the newest value was held back by the throttle).
    trailing: bool,
}

struct Shared {
    notifier: Weak<Notifier>,
    transfers: Mutex<HashMap<String, Slot>>,
}

impl Shared {
    fn publish(&self) {
        if let Some(notifier) = self.notifier.upgrade() {
            notifier.committed(BTreeSet::from([ATTACHMENTS.to_string()]));
        }
    }
}

/// The transfers of one account's engine. Cheap to share (`Engine::attachment_progress`).
pub struct Progress {
    shared: Arc<Shared>,
}

impl Progress {
    pub fn new(notifier: &Arc<Notifier>) -> Self {
        Self {
            shared: Arc::new(Shared {
                notifier: Arc::downgrade(notifier),
                transfers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// An upload of `hash` has `sent` of `total` bytes on the server.
    pub fn uploading(&self, hash: &str, sent: u64, total: u64) {
        self.update(hash, Transfer::Uploading { sent, total });
    }

    /// A download of `hash` has `received` of `total` bytes on disk.
    pub fn downloading(&self, hash: &str, received: u64, total: u64) {
        self.update(hash, Transfer::Downloading { received, total });
    }

    /// The transfer of `hash` ended (done, failed or cancelled): its state is the table's again,
    /// told at once. Call it after the table row was written.
    pub fn finished(&self, hash: &str) {
        let removed = lock(&self.shared.transfers).remove(hash).is_some();
        if removed {
            self.shared.publish();
        }
    }

    /// The transfer of `hash` under way, if any.
    pub fn get(&self, hash: &str) -> Option<Transfer> {
        lock(&self.shared.transfers).get(hash).map(|s| s.transfer)
    }

    /// Hashes with a transfer under way.
    pub fn active(&self) -> Vec<String> {
        lock(&self.shared.transfers).keys().cloned().collect()
    }

    fn update(&self, hash: &str, transfer: Transfer) {
        let now = Instant::now();
        let delay = {
            let mut transfers = lock(&self.shared.transfers);
            let slot = transfers.entry(hash.to_string()).or_insert(Slot {
                transfer,
                published_at: None,
                trailing: false,
            });
            slot.transfer = transfer;
            match slot.published_at {
                Some(at) if now.duration_since(at) < PUBLISH_INTERVAL => {
                    if slot.trailing {
                        return; // the scheduled publication will carry this value
                    }
                    slot.trailing = true;
                    Some(PUBLISH_INTERVAL - now.duration_since(at))
                }
                _ => {
                    slot.published_at = Some(now);
                    None
                }
            }
        };
        match delay {
            None => self.shared.publish(),
            Some(delay) => {
                let shared = Arc::clone(&self.shared);
                let hash = hash.to_string();
                runtime().spawn(async move {
                    tokio::time::sleep(delay).await;
                    let due = match lock(&shared.transfers).get_mut(&hash) {
                        Some(slot) => {
                            slot.trailing = false;
                            slot.published_at = Some(Instant::now());
                            true
                        }
                        None => false, // finished meanwhile, which told already
                    };
                    if due {
                        shared.publish();
                    }
                });
            }
        }
    }
}

/// The state of `hash`: a transfer under way, else what the `attachments` table says (no row:
/// `Remote`, the server's to download).
pub fn state(conn: &Connection, progress: &Progress, hash: &str) -> Result<AttachmentState> {
    match progress.get(hash) {
        Some(Transfer::Uploading { sent, total }) => {
            return Ok(AttachmentState::Uploading { sent, total })
        }
        Some(Transfer::Downloading { received, total }) => {
            return Ok(AttachmentState::Downloading { received, total })
        }
        None => {}
    }
    Ok(super::get(conn, hash)?.map_or(AttachmentState::Remote, |row| row.state()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Notifier;
    use crate::store::CurrentStore;

    #[test]
    fn publications_are_throttled_with_a_trailing_one() {
        let current = Arc::new(CurrentStore::default());
        let notifier = Arc::new(Notifier::start(current).unwrap());
        let progress = Progress::new(&notifier);
        let hash = "a".repeat(64);
        for i in 0..1000 {
            progress.downloading(&hash, i, 1000);
        }
        assert_eq!(
            progress.get(&hash),
            Some(Transfer::Downloading {
                received: 999,
                total: 1000
            })
        );
        {
            let transfers = lock(&progress.shared.transfers);
            let slot = transfers.get(&hash).unwrap();
            assert!(slot.trailing, "the newest value waits for its turn");
        }
        std::thread::sleep(PUBLISH_INTERVAL * 3);
        assert!(
            !lock(&progress.shared.transfers)
                .get(&hash)
                .unwrap()
                .trailing
        );
        progress.finished(&hash);
        assert_eq!(progress.get(&hash), None);
        assert!(progress.active().is_empty());
    }
}
