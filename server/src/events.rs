//! Change notices inside one server instance: pushes (SQLite) or the PostgreSQL LISTEN connection
//! publish them; every SSE stream whose user may read the stream turns one into a `poke`.
//!
//! Two kinds: a stream's change sequence moved (`ChangeNotice`: the stream's database key, a
//! user id or `space:<id>` or `public`, and its sequence, and for a push the pushing user and
//! client, its origin), or a user's spaces, roles or pending invitations changed
//! (`AccountNotice`). On PostgreSQL both travel as NOTIFY payloads on channel `tandem_changes`:
//! `<user id>:<seq>`, `space:<id>:<seq>`, `public:<seq>`, each followed by ` <user id> <client id>`
//! when a push caused it, and `account:<user id>` (see [`parse_payload`]).

use std::sync::Arc;

use tandem_protocol::{Poke, StreamKey};
use tokio::sync::broadcast;

/// One stream's change sequence reached `seq`. `stream` is the stream's database key: a user id
/// for a user's own records, `space:<id>` for a space, `public` for the public collections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNotice {
    pub stream: Arc<str>,
    pub seq: i64,
    /// The end of the JSON data of a poke about this stream, after its `cursor` (see
    /// [`poke_tail`]): `,"stream":"space:<id>"}` or `,"stream":"public"}`, or `}` for a user
    /// stream. Made once per notice and shared by every connection it pokes, so fanning a space's
    /// change out to its members' streams serialises nothing per connection.
    pub poke_tail: Arc<str>,
    /// The push that caused it, when one did: the pusher's streams get a poke naming its client.
    pub origin: Option<Origin>,
}

/// The push a change notice announces: who pushed, from which client, and the tail of the poke
/// that pusher's own event streams get (the stream's tail with `"origin":"<client id>"`). Other
/// users never see a client id of someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub user_id: Arc<str>,
    pub client_id: Arc<str>,
    pub poke_tail: Arc<str>,
}

impl ChangeNotice {
    /// The notice that `stream` (a database key) changed up to `seq`.
    pub fn new(stream: &str, seq: i64) -> Self {
        let key = StreamKey::parse(stream).filter(|key| *key != StreamKey::User);
        Self {
            stream: stream.into(),
            seq,
            poke_tail: poke_tail(key, false).into(),
            origin: None,
        }
    }

    /// The notice that a push of `user_id` from `client_id` moved `stream` up to `seq`.
    pub fn pushed(stream: &str, seq: i64, user_id: &str, client_id: &str) -> Self {
        let key = StreamKey::parse(stream).filter(|key| *key != StreamKey::User);
        Self {
            origin: Some(Origin {
                user_id: user_id.into(),
                client_id: client_id.into(),
                poke_tail: origin_tail(key, client_id).into(),
            }),
            ..Self::new(stream, seq)
        }
    }

    /// The PostgreSQL NOTIFY payload of a change of `stream`: `<user id>:<seq>` (as before
    /// spaces), `space:<id>:<seq>` or `public:<seq>`, then ` <user id> <client id>` when a push
    /// caused it (ids never hold a space). One is sent per stream a push writes, inside the
    /// push's transaction, so every instance hears it on commit.
    pub fn payload(stream: &str, seq: i64, origin: Option<(&str, &str)>) -> String {
        match origin {
            Some((user_id, client_id)) => format!("{stream}:{seq} {user_id} {client_id}"),
            None => format!("{stream}:{seq}"),
        }
    }

    /// The notice a NOTIFY payload carries; `None` for any other payload (the sequence is the
    /// text after the last `:` of the first word, the stream everything before it; the origin,
    /// when there is one, the next two words).
    pub fn parse(payload: &str) -> Option<Self> {
        let mut words = payload.split(' ');
        let (stream, seq) = words.next()?.rsplit_once(':')?;
        if stream.is_empty() {
            return None;
        }
        let seq = seq.parse().ok()?;
        match (words.next(), words.next(), words.next()) {
            (None, _, _) => Some(Self::new(stream, seq)),
            (Some(user_id), Some(client_id), None)
                if !user_id.is_empty() && !client_id.is_empty() =>
            {
                Some(Self::pushed(stream, seq, user_id, client_id))
            }
            _ => None,
        }
    }

    /// The end of the poke this notice gives a connection of `user_id`.
    pub fn tail_for(&self, user_id: &str) -> &str {
        match &self.origin {
            Some(origin) if *origin.user_id == *user_id => &origin.poke_tail,
            _ => &self.poke_tail,
        }
    }
}

/// The end of a poke about `stream` that names its origin: `,"origin":"<client id>"}` after
/// the stream's members.
fn origin_tail(stream: Option<StreamKey>, client_id: &str) -> String {
    let json = serde_json::to_string(&Poke {
        cursor: String::new(),
        stream,
        account: false,
        origin: Some(client_id.to_string()),
    })
    .expect("a poke always serializes");
    json[EMPTY_CURSOR_HEAD.len()..].to_string()
}

/// A poke's JSON data is `{"cursor":"…"` followed by what this returns: `,"stream":"…"}`,
/// `,"account":true}` or `}`, exactly as `serde_json` writes [`Poke`] (it is cut from that
/// output, so the two cannot differ). An event stream keeps the head ([`poke_head`]) of its
/// user's cursor and joins it to the tail of each notice, so a poke costs no signing and no
/// serialising per connection (docs/protocol.md, "Events": the wire stays the same).
pub fn poke_tail(stream: Option<StreamKey>, account: bool) -> String {
    let json = serde_json::to_string(&Poke {
        cursor: String::new(),
        stream,
        account,
        origin: None,
    })
    .expect("a poke always serializes");
    json[EMPTY_CURSOR_HEAD.len()..].to_string()
}

/// The start of a poke's JSON data up to the end of `cursor`'s value: `{"cursor":"c2.…"`.
pub fn poke_head(cursor: &str) -> String {
    let mut json = serde_json::to_string(&Poke::user(cursor)).expect("a poke always serializes");
    json.pop(); // the closing `}`: the tail's
    json
}

/// What [`poke_head`] gives for an empty cursor.
const EMPTY_CURSOR_HEAD: &str = r#"{"cursor":"""#;

/// A user's spaces, roles or pending invitations changed.
#[derive(Debug, Clone)]
pub struct AccountNotice {
    pub user_id: Arc<str>,
}

/// What goes through the hub.
#[derive(Debug, Clone)]
pub enum Notice {
    Change(ChangeNotice),
    Account(AccountNotice),
}

/// The notice a NOTIFY payload names, by prefix: `account:<user id>`, `space:<id>:<seq>`,
/// `public:<seq>`, or `<user id>:<seq>` ([`ChangeNotice::parse`]). `None` for anything else.
pub fn parse_payload(payload: &str) -> Option<Notice> {
    if let Some(user_id) = payload.strip_prefix("account:") {
        return (!user_id.is_empty()).then(|| {
            Notice::Account(AccountNotice {
                user_id: user_id.into(),
            })
        });
    }
    ChangeNotice::parse(payload).map(Notice::Change)
}

/// Fan-out of notices to SSE streams. Slow streams may miss notices (the broadcast channel drops
/// the oldest); they then poke anyway and reload what they know, which is all a poke promises.
#[derive(Clone)]
pub struct ChangeHub {
    sender: broadcast::Sender<Notice>,
}

impl ChangeHub {
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
        }
    }

    /// Tells every stream that may read `stream` (a database key) that it changed up to `seq`.
    pub fn publish(&self, stream: &str, seq: i64) {
        // No subscribers is not an error: nobody is listening right now.
        let _ = self
            .sender
            .send(Notice::Change(ChangeNotice::new(stream, seq)));
    }

    /// Tells every stream that may read `stream` that a push of `user_id` from `client_id`
    /// moved it up to `seq` (the pusher's own streams hear which client it was).
    pub fn publish_push(&self, stream: &str, seq: i64, user_id: &str, client_id: &str) {
        let _ = self.sender.send(Notice::Change(ChangeNotice::pushed(
            stream, seq, user_id, client_id,
        )));
    }

    /// Tells every stream of `user_id` that its spaces, roles or invitations changed.
    pub fn publish_account(&self, user_id: &str) {
        let _ = self.sender.send(Notice::Account(AccountNotice {
            user_id: user_id.into(),
        }));
    }

    /// Publishes what a NOTIFY payload names (ignored when it names nothing known).
    pub fn publish_payload(&self, payload: &str) {
        match parse_payload(payload) {
            Some(notice) => {
                let _ = self.sender.send(notice);
            }
            None => tracing::warn!("ignored a change notification of unknown form"),
        }
    }

    /// A receiver of all notices; streams filter for theirs.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
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

    /// How many event streams are open on this instance.
    pub fn total(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    /// How many event streams of `user_id` are open on this instance.
    pub fn of(&self, user_id: &str) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user_id)
            .copied()
            .unwrap_or(0)
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
    fn payloads_parse_by_prefix() {
        let change = |p: &str| match parse_payload(p) {
            Some(Notice::Change(c)) => Some((c.stream.to_string(), c.seq)),
            _ => None,
        };
        assert_eq!(
            change("0195c3a0-0000-7000-8000-000000000000:42"),
            Some(("0195c3a0-0000-7000-8000-000000000000".into(), 42))
        );
        assert_eq!(change("space:0195ff:7"), Some(("space:0195ff".into(), 7)));
        assert_eq!(change("public:3"), Some(("public".into(), 3)));
        assert!(matches!(
            parse_payload("account:u1"),
            Some(Notice::Account(a)) if &*a.user_id == "u1"
        ));
        assert!(parse_payload("account:").is_none());
        assert!(parse_payload("nonsense").is_none());
        assert!(parse_payload(":5").is_none());
        assert!(parse_payload("u:x").is_none());
    }

    #[test]
    fn a_push_names_its_client_to_the_pusher_alone() {
        let user = "0195c3a0-0000-7000-8000-000000000001";
        let payload = ChangeNotice::payload("space:s1", 9, Some((user, "dev:1")));
        assert_eq!(payload, format!("space:s1:9 {user} dev:1"));
        let Some(Notice::Change(notice)) = parse_payload(&payload) else {
            panic!("a push's payload parses");
        };
        assert_eq!((&*notice.stream, notice.seq), ("space:s1", 9));
        assert_eq!(notice, ChangeNotice::pushed("space:s1", 9, user, "dev:1"));
        let cursor = "c2.9.0.x";
        assert_eq!(
            poke_head(cursor) + notice.tail_for(user),
            r#"{"cursor":"c2.9.0.x","stream":"space:s1","origin":"dev:1"}"#
        );
        // Another member of the space hears the change, not who made it.
        assert_eq!(
            poke_head(cursor) + notice.tail_for("someone-else"),
            r#"{"cursor":"c2.9.0.x","stream":"space:s1"}"#
        );
        let own = ChangeNotice::pushed(user, 3, user, "dev-2");
        assert_eq!(
            poke_head(cursor) + own.tail_for(user),
            r#"{"cursor":"c2.9.0.x","origin":"dev-2"}"#
        );
        // Without an origin, as before; a malformed origin is no notice at all.
        assert_eq!(ChangeNotice::payload(user, 3, None), format!("{user}:3"));
        assert!(parse_payload(&format!("{user}:3 {user}")).is_none());
        assert!(parse_payload(&format!("{user}:3 {user} d e")).is_none());
        assert!(parse_payload(&format!("{user}:3  d")).is_none());
    }

    #[test]
    fn pokes_joined_from_head_and_tail_are_what_serde_writes() {
        let cursor = "c2.44.0.Xo1h0Zt2bE6y1nq7cJgP2w";
        let space = "space:0195c3a0-0000-7000-8000-000000000000";
        let cases = [
            (None, false, "0195c3a0-0000-7000-8000-000000000001"),
            (StreamKey::parse(space), false, space),
            (Some(StreamKey::Public), false, "public"),
        ];
        for (stream, account, key) in cases {
            let expected = serde_json::to_string(&Poke {
                cursor: cursor.into(),
                stream: stream.clone(),
                account,
                origin: None,
            })
            .unwrap();
            assert_eq!(poke_head(cursor) + &poke_tail(stream, account), expected);
            assert_eq!(
                poke_head(cursor) + &ChangeNotice::new(key, 7).poke_tail,
                expected
            );
        }
        let account = serde_json::to_string(&Poke {
            cursor: cursor.into(),
            stream: None,
            account: true,
            origin: None,
        })
        .unwrap();
        assert_eq!(poke_head(cursor) + &poke_tail(None, true), account);
        assert_eq!(
            account,
            format!(r#"{{"cursor":"{cursor}","account":true}}"#)
        );
        assert_eq!(
            poke_head(cursor) + &ChangeNotice::new(space, 7).poke_tail,
            format!(r#"{{"cursor":"{cursor}","stream":"{space}"}}"#)
        );
    }

    #[test]
    fn slots_are_capped_per_user_and_given_back_on_drop() {
        let slots = StreamSlots::new(2);
        let a1 = slots.take("a").unwrap();
        let _a2 = slots.take("a").unwrap();
        assert!(slots.take("a").is_none());
        let _b = slots.take("b").unwrap();
        assert_eq!((slots.total(), slots.of("a"), slots.of("b")), (3, 2, 1));
        drop(a1);
        assert!(slots.take("a").is_some());
        assert_eq!(slots.of("nobody"), 0);
    }
}
