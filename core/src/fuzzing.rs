//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`) and for the corpus replay
//! test below: each one takes untrusted bytes the way the engine receives them and runs the
//! engine's own parsing on them. None may panic; bad input is an error, and the errors are
//! dropped here because only panics matter to a fuzzer.

use std::cell::RefCell;

use rusqlite::Connection;
use tandem_protocol::{PullResponse, PushResponse, Schema};

use crate::http::{decode_json, parse_error_body};

thread_local! {
    /// One migrated in-memory store per thread; every install runs in a transaction rolled back.
    static STORE: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// A schema document as an app passes it to `Tandem.open`: parsed, and when it parses, installed
/// into an empty in-memory store (indexes created, planner statistics seeded), then rolled back.
pub fn schema_document(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(schema) = Schema::from_json(text) else {
        return;
    };
    STORE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let conn = cell.get_or_insert_with(|| {
            let mut conn = Connection::open_in_memory().expect("in-memory SQLite");
            let tx = conn.transaction().expect("transaction");
            crate::store::migrate(&tx).expect("migrations of an empty store");
            tx.commit().expect("commit");
            conn
        });
        let tx = conn.transaction().expect("transaction");
        let _ = crate::schema::install(&tx, &schema);
        drop(tx); // rolls back
    });
}

/// A document against `schema`'s collection `collection`, validated as a local write and a
/// pushed mutation are (`Collection::validate_document`, `parent_id`).
pub fn document(schema: &Schema, collection: &str, bytes: &[u8]) {
    let Some(c) = schema.collections.get(collection) else {
        return;
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    if c.validate_document(collection, &doc).is_ok() {
        if let serde_json::Value::Object(map) = &doc {
            let _ = c.parent_id(map);
        }
    }
}

/// A server answer, the first byte choosing its kind: 0 an auth session (sign-up, sign-in,
/// refresh), 1 a push answer, 2 a pull page, 3 an error body, 4 an event stream (the realtime
/// pokes). The rest is the body.
pub fn server_answer(bytes: &[u8]) {
    let Some((kind, body)) = bytes.split_first() else {
        return;
    };
    let ok = reqwest::StatusCode::OK;
    match kind % 5 {
        0 => {
            if let Ok(value) = decode_json::<serde_json::Value>(ok, body) {
                if let Ok(session) = crate::auth::session_from_value(value) {
                    let now = crate::auth::tokens_unix_now();
                    let _ = session.tokens.needs_refresh(now);
                    let _ = session.tokens.expired(now);
                }
            }
        }
        1 => {
            let _ = decode_json::<PushResponse>(ok, body);
        }
        2 => {
            let _ = decode_json::<PullResponse>(ok, body);
        }
        3 => {
            let _ = parse_error_body(body);
        }
        _ => event_stream(body),
    }
}

/// Runs the event-stream parser the realtime loop uses over `body`, split in two chunks at a
/// point the body's first byte chooses (a stream arrives in pieces).
fn event_stream(body: &[u8]) {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    let split = body.first().map_or(0, |b| usize::from(*b)).min(body.len());
    let chunks = vec![
        Ok::<_, std::io::Error>(body[..split].to_vec()),
        Ok(body[split..].to_vec()),
    ];
    let mut events = futures_util::stream::iter(chunks).eventsource();
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    // The source is ready at once, so every poll completes.
    while let std::task::Poll::Ready(Some(event)) = events.poll_next_unpin(&mut cx) {
        if let Ok(event) = event {
            let _ = event.event == tandem_protocol::POKE_EVENT;
        }
    }
}

/// How the `document_validation` target reads its input: the first byte picks one of `schema`'s
/// collections (in name order), the rest is the document.
pub fn split_collection<'a, 'b>(schema: &'a Schema, bytes: &'b [u8]) -> (&'a str, &'b [u8]) {
    let names: Vec<&str> = schema.collections.keys().map(String::as_str).collect();
    match bytes.split_first() {
        Some((b, rest)) if !names.is_empty() => (names[usize::from(*b) % names.len()], rest),
        _ => ("", bytes),
    }
}

#[cfg(test)]
mod tests {
    //! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) on stable, so a crash found
    //! once stays fixed.

    use std::path::PathBuf;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    #[test]
    fn replays_the_fuzz_corpus() {
        for input in corpus("schema_document") {
            super::schema_document(&input);
        }
        let schema = sample_schema();
        for input in corpus("document_validation") {
            let (collection, body) = super::split_collection(&schema, &input);
            super::document(&schema, collection, body);
        }
        for input in corpus("client_server_answers") {
            super::server_answer(&input);
        }
    }

    fn sample_schema() -> tandem_protocol::Schema {
        let text = include_str!("../../schemas/sample.json");
        tandem_protocol::Schema::from_json(text).unwrap()
    }
}
