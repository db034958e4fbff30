//! `GET /sync/v1/events`: a server-sent event stream that pokes the client to pull after any
//! change to a stream its user may read (its own records, the public collections, each space it
//! belongs to) commits, on whichever instance, and when its spaces, roles or invitations change.
//!
//! Each connection loads its user's readable streams once it has subscribed (so nothing committed
//! after the answer starts is missed), keeps their database keys in a set, and judges each notice
//! by one hash lookup: no query per poke. An account notice for its user reloads the set, then
//! pokes `{"account": true}`. Every poke carries `cursor`, the latest user-stream cursor the
//! connection knows (read when it opens, then taken from the user's own notices).
//!
//! A poke is cheap per connection, since one notice may poke hundreds of them (every member of a
//! space connected here): the connection signs its cursor only when its user's sequence moves and
//! keeps it as the head of the poke's JSON; each notice carries the rest, made once for all
//! connections (`ChangeNotice::poke_tail`). A poke is those two strings joined, no signing and
//! no serialising.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tandem_protocol::POKE_EVENT;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::{AuthUser, SharedState, KEEP_ALIVE};
use crate::cursor::Cursor;
use crate::error::ApiError;
use crate::events::{poke_head, poke_tail, Notice};
use crate::storage::StorageError;

/// The event stream of the authenticated user; ends when the server shuts down, or at its next
/// poke once an operator revoked the user's sessions after its token was issued (the revocation
/// cache, no query). A token of an account that no longer exists is refused, and so is a stream
/// past the per-user cap.
pub async fn events(
    State(state): State<SharedState>,
    user: AuthUser,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if state.storage.user_by_id(&user.user_id).await?.is_none() {
        return Err(ApiError::account_gone());
    }
    let slot = state
        .stream_slots
        .take(&user.user_id)
        .ok_or_else(ApiError::too_many_streams)?;
    // Subscribe before reading what the user may see, so no change committed after the response
    // starts is missed.
    let notices = BroadcastStream::new(state.hub.subscribe());
    let user_id: Arc<str> = user.user_id.into();
    let mut connection = Connection {
        state: state.clone(),
        user_id,
        issued_at: user.issued_at,
        streams: HashSet::new(),
        user_seq: 0,
        head: String::new(),
    };
    connection.reload().await?;
    let greeting = stream::once(async { Ok(Event::default().comment("connected")) });
    let pokes = stream::unfold(
        (notices, connection),
        |(mut notices, mut connection)| async move {
            loop {
                let notice = notices.next().await?;
                if connection.revoked() {
                    tracing::info!(user_id = %connection.user_id, "event stream ended: its token was revoked");
                    return None;
                }
                if let Some(event) = connection.judge(notice).await {
                    return Some((Ok(event), (notices, connection)));
                }
            }
        },
    );
    let stream = greeting
        .chain(pokes)
        .take_until(state.shutdown.clone().cancelled_owned())
        // The slot lives as long as the stream: dropping the stream gives it back.
        .map(move |event| {
            let _ = &slot;
            event
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// What one event stream knows about its user.
struct Connection {
    state: SharedState,
    user_id: Arc<str>,
    /// The `iat` of the token the stream was opened with.
    issued_at: i64,
    /// Database keys of the streams other than the user's own it may read (`public`,
    /// `space:<id>` of each space it belongs to).
    streams: HashSet<String>,
    /// The latest sequence of the user's own stream this connection knows.
    user_seq: i64,
    /// `{"cursor":"<the user-stream cursor at user_seq>"`: every poke's data starts with it.
    head: String,
}

/// The end of an account poke's data (after its cursor).
static ACCOUNT_TAIL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| poke_tail(None, true));

impl Connection {
    /// Whether the operator revoked the user's sessions since the stream's token was issued.
    fn revoked(&self) -> bool {
        self.state
            .control
            .revocations
            .refuses(&self.user_id, self.issued_at)
    }

    /// Reads the user's readable streams and own sequence again.
    async fn reload(&mut self) -> Result<(), StorageError> {
        let readable = self.state.storage.readable_streams(&self.user_id).await?;
        self.streams = readable
            .into_iter()
            .filter(|key| **key != *self.user_id)
            .collect();
        let seq = self.state.storage.latest_seq(&self.user_id).await?;
        self.learn_user_seq(seq);
        Ok(())
    }

    /// Moves the user's sequence to `seq` if that is later, signing the cursor pokes carry only
    /// then (and once at the start).
    fn learn_user_seq(&mut self, seq: i64) {
        if seq <= self.user_seq && !self.head.is_empty() {
            return;
        }
        self.user_seq = self.user_seq.max(seq);
        // The latest sequence is at or past every purge, so the recorded purge state changes
        // nothing for this cursor (see `Cursor::expired`); 0 needs no read.
        let cursor = self.state.cursors.encode(
            &self.user_id,
            Cursor {
                seq: self.user_seq,
                purged_seq: 0,
            },
        );
        self.head = poke_head(&cursor);
    }

    /// The poke a notice earns this connection, if any.
    async fn judge(&mut self, notice: Result<Notice, BroadcastStreamRecvError>) -> Option<Event> {
        match notice {
            Ok(Notice::Change(change)) => {
                if *change.stream == *self.user_id {
                    self.learn_user_seq(change.seq);
                    Some(self.poke(change.tail_for(&self.user_id)))
                } else if self.streams.contains(&*change.stream) {
                    Some(self.poke(change.tail_for(&self.user_id)))
                } else {
                    None
                }
            }
            Ok(Notice::Account(account)) if *account.user_id == *self.user_id => {
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, user_id = %self.user_id, "event stream could not reload its streams");
                }
                Some(self.poke(&ACCOUNT_TAIL))
            }
            Ok(Notice::Account(_)) => None,
            // Missed notices, perhaps ours: reload what the user may read, and poke rather than
            // risk missing a change or an account change.
            Err(BroadcastStreamRecvError::Lagged(_)) => {
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, user_id = %self.user_id, "event stream could not reload its streams");
                }
                Some(self.poke(&ACCOUNT_TAIL))
            }
        }
    }

    /// The poke whose data is this connection's head joined to `tail` (a notice's, or the
    /// account tail): `{"cursor":"…"}`, `{"cursor":"…","stream":"…"}` or
    /// `{"cursor":"…","account":true}`, byte for byte what serialising a `Poke` gives.
    fn poke(&self, tail: &str) -> Event {
        let mut data = String::with_capacity(self.head.len() + tail.len());
        data.push_str(&self.head);
        data.push_str(tail);
        Event::default().event(POKE_EVENT).data(data)
    }
}
