//! `GET /sync/v1/events`: a server-sent event stream that pokes the client to pull after any
//! change to its user's data commits, on whichever instance.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tandem_protocol::{Poke, POKE_EVENT};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::{AuthUser, SharedState, KEEP_ALIVE};
use crate::cursor::Cursor;
use crate::error::ApiError;

/// The event stream of the authenticated user; ends when the server shuts down. A token of an
/// account that no longer exists is refused, and so is a stream past the per-user cap.
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
    // Subscribe before answering, so no change committed after the response starts is missed.
    let notices = BroadcastStream::new(state.hub.subscribe());
    // Shared, so that judging each notice of any user costs this stream no allocation.
    let user_id: Arc<str> = user.user_id.into();
    let greeting = stream::once(async { Ok(Event::default().comment("connected")) });
    let stream_state = state.clone();
    let pokes = notices.filter_map(move |notice| {
        let state = stream_state.clone();
        let user_id = user_id.clone();
        async move {
            let seq = match notice {
                Ok(n) if *n.stream == *user_id => n.seq,
                Ok(_) => return None,
                // Missed notices: poke with the latest sequence rather than risk missing ours.
                Err(BroadcastStreamRecvError::Lagged(_)) => {
                    state.storage.latest_seq(&user_id).await.ok()?
                }
            };
            Some(Ok(poke_event(&state, &user_id, seq)))
        }
    });
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

fn poke_event(state: &SharedState, user_id: &str, seq: i64) -> Event {
    // The latest sequence is at or past every purge, so the recorded purge state changes nothing
    // for this cursor (see `Cursor::expired`); 0 needs no read.
    let poke = Poke::user(state.cursors.encode(user_id, Cursor { seq, purged_seq: 0 }));
    Event::default()
        .event(POKE_EVENT)
        .json_data(poke)
        .expect("a poke always serializes")
}
