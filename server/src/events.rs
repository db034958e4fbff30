//! Change notices inside one server instance: pushes (SQLite) or the PostgreSQL LISTEN connection
//! publish `(user, seq)`; every SSE stream of that user turns it into a `poke`.

use std::sync::Arc;

use tokio::sync::broadcast;

/// One user's change sequence reached `seq`.
#[derive(Debug, Clone)]
pub struct ChangeNotice {
    pub user_id: Arc<str>,
    pub seq: i64,
}

/// Fan-out of change notices to SSE streams. Slow streams may miss notices (the broadcast
/// channel drops the oldest); they then get a poke for a later one, which is all a poke promises.
#[derive(Clone)]
pub struct ChangeHub {
    sender: broadcast::Sender<ChangeNotice>,
}

impl ChangeHub {
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
        }
    }

    /// Tells every stream of `user_id` that its data changed up to `seq`.
    pub fn publish(&self, user_id: &str, seq: i64) {
        // No subscribers is not an error: nobody is listening right now.
        let _ = self.sender.send(ChangeNotice {
            user_id: user_id.into(),
            seq,
        });
    }

    /// A receiver of all notices; streams filter for their user.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeNotice> {
        self.sender.subscribe()
    }
}

impl Default for ChangeHub {
    fn default() -> Self {
        Self::new()
    }
}
