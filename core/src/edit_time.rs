//! Edit times on the device: the engine's hybrid logical clock (see `tandem_protocol::hlc`),
//! persisted in the store so it stays monotonic across restarts, and the per-field times a write
//! gives a record. Every local write takes one tick; every push and pull answer shows the clock
//! the server's time and the edit times it brings, so the next tick comes after them.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use serde_json::{Map, Value};
use tandem_protocol::clock::{Clock, SystemClock};
use tandem_protocol::{FieldTimes, Hlc, HlcGenerator};

use crate::error::Result;
use crate::store::{lock, meta_get, meta_set};

/// The meta key of the clock's state (`HlcGenerator::to_text`).
const STATE_KEY: &str = "edit_clock";
/// The node of a store's edit times before a client names its device (the engine's own tests).
pub const LOCAL_NODE: &str = "local";

/// The engine's edit clock: the wall clock it reads, the device's node (its client id) and the
/// generator's state, mirrored in the store's meta table in every transaction that moves it.
pub struct EditClock {
    clock: Arc<dyn Clock>,
    node: String,
    state: Mutex<HlcGenerator>,
}

impl EditClock {
    /// The clock of the store `conn` belongs to, on the system clock.
    pub fn load(conn: &Connection) -> Result<Self> {
        let state = meta_get(conn, STATE_KEY)?
            .and_then(|t| HlcGenerator::from_text(&t))
            .unwrap_or_default();
        Ok(Self {
            clock: Arc::new(SystemClock),
            node: LOCAL_NODE.to_string(),
            state: Mutex::new(state),
        })
    }

    /// This clock reading `clock` for device `node`.
    pub fn with(self, clock: Arc<dyn Clock>, node: &str) -> Self {
        Self {
            clock,
            node: node.to_string(),
            ..self
        }
    }

    /// The next edit time. The caller persists the clock ([`save`](Self::save)) in the same
    /// transaction before it commits (once per transaction, however many ticks it took).
    pub fn tick(&self) -> Hlc {
        lock(&self.state).tick(self.clock.now_ms(), &self.node)
    }

    /// Persists the clock's state in `conn`'s transaction.
    pub fn save(&self, conn: &Connection) -> Result<()> {
        let text = lock(&self.state).to_text();
        meta_set(conn, STATE_KEY, &text)
    }

    /// Sees the server's time (`server`, from a push or pull answer) and edit times pulled from
    /// it, persisted in `conn`'s transaction.
    pub fn observe<'a>(
        &self,
        conn: &Connection,
        server: Option<&Hlc>,
        seen: impl IntoIterator<Item = &'a Hlc>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let before = *state;
        if let Some(server) = server {
            state.observe_server(server.ms, self.clock.now_ms());
        }
        for t in seen {
            state.observe(t);
        }
        if *state != before {
            meta_set(conn, STATE_KEY, &state.to_text())?;
        }
        Ok(())
    }
}

/// Field times as stored (a JSON object of HLC texts); unreadable ones count as unknown.
pub fn parse_times(text: Option<&str>) -> FieldTimes {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// The stored form of field times; `None` when there are none.
pub fn times_text(times: &FieldTimes) -> Option<String> {
    (!times.is_empty()).then(|| serde_json::to_string(times).unwrap_or_else(|_| "{}".into()))
}

/// The stored field times of a new document whose every field (`keys`) was set at `at` (an HLC
/// text): written directly, since field names and HLC texts need no JSON escaping (the hot path
/// of every create).
pub fn all_at<'a>(keys: impl Iterator<Item = &'a String>, at: &str) -> Option<String> {
    let mut text = String::from("{");
    for key in keys {
        if text.len() > 1 {
            text.push(',');
        }
        text.push('"');
        text.push_str(key);
        text.push_str("\":\"");
        text.push_str(at);
        text.push('"');
    }
    (text.len() > 1).then(|| text + "}")
}

/// The field times after a local write of `new` over `old` (`None`: a new or deleted record)
/// at `at`: every field whose value changes (set, changed or removed) takes `at`; the others
/// keep their times. Edits coalesced into one outbox entry so keep each field's own time.
pub fn after_edit(
    old: Option<&Map<String, Value>>,
    old_times: FieldTimes,
    new: &Map<String, Value>,
    at: &Hlc,
) -> FieldTimes {
    let empty = Map::new();
    let (old, mut times) = match old {
        Some(old) => (old, old_times),
        None => (&empty, FieldTimes::new()),
    };
    for key in old.keys().chain(new.keys()) {
        if old.get(key) != new.get(key) {
            times.insert(key.clone(), at.clone());
        }
    }
    times
}

/// Cuts every time of a record to at most `limit_ms`, as the server clamped them when the change
/// landed (its clock + the skew bound). Returns the texts to store.
pub fn clamp_texts(
    edited_at: Option<&str>,
    field_times: Option<&str>,
    limit_ms: i64,
) -> (Option<String>, Option<String>) {
    let at = edited_at
        .and_then(|t| t.parse::<Hlc>().ok())
        .map(|t| t.clamped(limit_ms).encode());
    let fields: FieldTimes = parse_times(field_times)
        .into_iter()
        .map(|(k, t)| (k, t.clamped(limit_ms)))
        .collect();
    (at.or(edited_at.map(str::to_string)), times_text(&fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn an_edit_stamps_only_the_fields_it_changes() {
        let t1 = Hlc::new(1_000, 0, "a");
        let t2 = Hlc::new(2_000, 0, "a");
        let first = after_edit(None, FieldTimes::new(), &doc(json!({"x": 1, "y": 2})), &t1);
        assert_eq!(first.len(), 2);
        let old = doc(json!({"x": 1, "y": 2}));
        let second = after_edit(Some(&old), first, &doc(json!({"x": 1, "z": 3})), &t2);
        assert_eq!(second["x"], t1);
        assert_eq!(second["y"], t2, "a removal is an edit too");
        assert_eq!(second["z"], t2);
        let text = times_text(&second).unwrap();
        let fresh = all_at(doc(json!({"x": 1, "y": 2})).keys(), &t1.encode()).unwrap();
        assert_eq!(
            parse_times(Some(&fresh)),
            after_edit(None, FieldTimes::new(), &doc(json!({"x": 1, "y": 2})), &t1)
        );
        assert_eq!(all_at(doc(json!({})).keys(), &t1.encode()), None);
        assert_eq!(parse_times(Some(&text)), second);
        let (at, fields) = clamp_texts(Some(&t2.encode()), Some(&text), 1_500);
        assert_eq!(at.unwrap(), Hlc::new(1_500, 0, "a").encode());
        assert_eq!(parse_times(fields.as_deref())["x"], t1);
    }
}
