//! Change notices inside one server instance: pushes (SQLite) or the PostgreSQL LISTEN connection
//! publish `(stream, seq)`; every SSE stream that reads that stream turns it into a `poke`.

use std::sync::Arc;

use tokio::sync::broadcast;

/// One stream's change sequence reached `seq`. `stream` is the stream's database key: a user id
/// for a user's own records, `space:<id>` for a space, `public` for the public collections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNotice {
    pub stream: Arc<str>,
    pub seq: i64,
}

impl ChangeNotice {
    /// The PostgreSQL NOTIFY payload of a change of `stream`: `<user id>:<seq>` (as before
    /// spaces), `space:<id>:<seq>` or `public:<seq>`. One is sent per stream a push writes, inside
    /// the push's transaction, so every instance hears it on commit.
    pub fn payload(stream: &str, seq: i64) -> String {
        format!("{stream}:{seq}")
    }

    /// The notice a NOTIFY payload carries; `None` for any other payload (the sequence is the
    /// text after the last `:`, the stream everything before it).
    pub fn parse(payload: &str) -> Option<Self> {
        let (stream, seq) = payload.rsplit_once(':')?;
        if stream.is_empty() {
            return None;
        }
        Some(Self {
            stream: stream.into(),
            seq: seq.parse().ok()?,
        })
    }
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

    /// Tells every event stream reading `stream` (a stream's database key) that it changed up
    /// to `seq`.
    pub fn publish(&self, stream: &str, seq: i64) {
        // No subscribers is not an error: nobody is listening right now.
        let _ = self.sender.send(ChangeNotice {
            stream: stream.into(),
            seq,
        });
    }

    /// A receiver of all notices; event streams filter for the streams their user reads.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeNotice> {
        self.sender.subscribe()
    }
}

impl Default for ChangeHub {
    fn default() -> Self {
        Self::new()
    }
}

/// The cap on open event streams per user: each stream holds a connection for as long as the
/// app runs, so one account must not be able to take them all.
pub struct StreamSlots {
    max_per_user: usize,
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// One open stream's place; given back when the stream ends (it is dropped).
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    user_id: String,
}

impl StreamSlots {
    pub fn new(max_per_user: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_user,
            open: Default::default(),
        })
    }

    /// A place for one more stream of `user_id`, or `None` when it has `max_per_user` open.
    pub fn take(self: &Arc<Self>, user_id: &str) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user_id.to_string()).or_default();
        if *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            slots: Arc::clone(self),
            user_id: user_id.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_payloads_round_trip() {
        let user = "0195c3d2-7a1e-7000-8000-000000000001";
        for stream in [user, "space:0195c3d2-7a1e-7000-8000-0000000000aa", "public"] {
            let payload = ChangeNotice::payload(stream, 42);
            let notice = ChangeNotice::parse(&payload).unwrap();
            assert_eq!((&*notice.stream, notice.seq), (stream, 42));
        }
        assert_eq!(
            ChangeNotice::parse(&format!("{user}:7"))
                .unwrap()
                .stream
                .as_ref(),
            user
        );
        assert!(ChangeNotice::parse("public:x").is_none());
        assert!(ChangeNotice::parse(":1").is_none());
        assert!(ChangeNotice::parse("account:someone").is_none());
        assert!(ChangeNotice::parse("nothing").is_none());
    }

    #[test]
    fn slots_are_capped_per_user_and_given_back_on_drop() {
        let slots = StreamSlots::new(2);
        let a1 = slots.take("a").unwrap();
        let _a2 = slots.take("a").unwrap();
        assert!(slots.take("a").is_none());
        assert!(slots.take("b").is_some());
        drop(a1);
        assert!(slots.take("a").is_some());
    }
}
