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
    state: Mutex<State>,
}

/// How far ahead of the last issued time a local write persists the clock (see
/// [`EditClock::save`]): a burst of writes within it writes the clock once, not once per
/// transaction; a restart within it issues times at most this much after the wall clock. Short:
/// with a one-second lease, two edits a second apart made in processes opened one after the
/// other (the CLI) came out in the wrong order under last-write-wins.
pub const SAVE_LEASE_MS: i64 = 10;

/// The generator and the `(ms, counter)` below which the store's copy keeps every time issued:
/// a tick under it needs no write. `None` when unknown (a write transaction failed).
#[derive(Clone, Copy)]
struct State {
    generator: HlcGenerator,
    saved_above: Option<(i64, u32)>,
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
            state: Mutex::new(State {
                generator: state,
                saved_above: Some(state.last()),
            }),
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
        lock(&self.state)
            .generator
            .tick(self.clock.now_ms(), &self.node)
    }

    /// Persists the clock in `conn`'s transaction, unless the store's copy is already after every
    /// time issued. It writes a state [`SAVE_LEASE_MS`] ahead of the last time issued, so the
    /// writes of the next 10 ms need no write of their own: a clock write is a whole page in
    /// the WAL, about a sixth of what a one-record transaction writes. Reopened, the clock goes
    /// on from that state: its times stay after every time issued before, at the price of
    /// running up to the lease ahead of the wall clock when the store reopens within it.
    pub fn save(&self, conn: &Connection) -> Result<()> {
        let mut state = lock(&self.state);
        let last = state.generator.last();
        if state.saved_above.is_some_and(|above| last < above) {
            return Ok(());
        }
        let leased = state.generator.past(last.0.saturating_add(SAVE_LEASE_MS));
        meta_set(conn, STATE_KEY, &leased.to_text())?;
        state.saved_above = Some(leased.last());
        Ok(())
    }

    /// Forgets what the store's copy holds, after a transaction that may have saved it failed:
    /// the next [`save`](Self::save) writes.
    pub fn unsaved(&self) {
        lock(&self.state).saved_above = None;
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
        let before = state.generator;
        if let Some(server) = server {
            state
                .generator
                .observe_server(server.ms, self.clock.now_ms());
        }
        for t in seen {
            state.generator.observe(t);
        }
        if state.generator != before {
            meta_set(conn, STATE_KEY, &state.generator.to_text())?;
            // The store's copy is the state itself now: the next tick, after it, saves again
            // (also when this transaction rolls back to an older copy).
            state.saved_above = Some(state.generator.last());
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

/// The field times after a local write of `new` over `old` (`None`: a new or deleted record,
/// which starts afresh) at `at`, in the stored (sparse) form: every field whose value changes
/// (set, changed or removed) takes `at`, the others keep their times (`old_times`, sparse against
/// `old_edited_at`). Edits coalesced into one outbox entry so keep each field's own time. Only the
/// times a field of `new` does not share with `at` are kept (see [`sparse`]): a fresh document
/// has none.
pub fn after_edit(
    old: Option<&Map<String, Value>>,
    old_edited_at: Option<&str>,
    old_times: FieldTimes,
    new: &Map<String, Value>,
    at: &Hlc,
) -> FieldTimes {
    let Some(old) = old else {
        return FieldTimes::new();
    };
    let mut times = old_times;
    let old_at = old_edited_at.and_then(|t| t.parse::<Hlc>().ok());
    for key in old.keys().chain(new.keys()) {
        if old.get(key) != new.get(key) {
            times.insert(key.clone(), at.clone());
        } else if let Some(old_at) = &old_at {
            if !times.contains_key(key) {
                times.insert(key.clone(), old_at.clone());
            }
        }
    }
    sparse(times, new, at)
}

/// The stored (sparse) text of another side's field times (a pulled change's): `None`, with
/// nothing serialised, when every time is `at`'s for a field of `doc`, as a record created in one
/// edit has them.
pub fn sparse_text(times: &FieldTimes, doc: &Map<String, Value>, at: &Hlc) -> Option<String> {
    if times
        .iter()
        .all(|(key, time)| time == at && doc.contains_key(key))
    {
        return None;
    }
    times_text(&sparse(times.clone(), doc, at))
}

/// The stored form of the field times of `doc` edited last at `at`: a field of the document whose
/// time is `at` is left out (it reads as `at`, see [`effective`]); every other time is kept,
/// among them those of removed fields (not in `doc`), which never read as `at` when left out.
pub fn sparse(mut times: FieldTimes, doc: &Map<String, Value>, at: &Hlc) -> FieldTimes {
    times.retain(|key, time| time != at || !doc.contains_key(key));
    times
}

/// The edit time of every field of a side as the merge reads it, from its stored (sparse) times:
/// a field of `doc` without a time of its own was edited at `edited_at`; a field not in `doc`
/// has only the time it was stored with (its removal's), if any.
pub fn effective(
    doc: Option<&Map<String, Value>>,
    edited_at: Option<&Hlc>,
    mut times: FieldTimes,
) -> FieldTimes {
    if let (Some(doc), Some(at)) = (doc, edited_at) {
        for key in doc.keys() {
            if !times.contains_key(key) {
                times.insert(key.clone(), at.clone());
            }
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
        let first = after_edit(
            None,
            None,
            FieldTimes::new(),
            &doc(json!({"x": 1, "y": 2})),
            &t1,
        );
        assert!(first.is_empty(), "a fresh document stores no field times");
        let old = doc(json!({"x": 1, "y": 2}));
        let new = doc(json!({"x": 1, "z": 3}));
        let second = after_edit(Some(&old), Some(&t1.encode()), first, &new, &t2);
        assert_eq!(
            second["x"], t1,
            "an untouched field keeps its time, now explicit"
        );
        assert_eq!(
            second["y"], t2,
            "a removal is an edit too, and stays explicit"
        );
        assert!(
            !second.contains_key("z"),
            "a field set at editedAt reads as it"
        );
        let full = effective(Some(&new), Some(&t2), second.clone());
        assert_eq!(full["z"], t2);
        assert_eq!(full["x"], t1);
        assert_eq!(full["y"], t2);
        let text = times_text(&second).unwrap();
        assert_eq!(parse_times(Some(&text)), second);
        let (at, fields) = clamp_texts(Some(&t2.encode()), Some(&text), 1_500);
        assert_eq!(at.unwrap(), Hlc::new(1_500, 0, "a").encode());
        assert_eq!(parse_times(fields.as_deref())["x"], t1);
    }

    #[test]
    fn coalesced_edits_keep_the_first_edit_time_explicitly() {
        let t1 = Hlc::new(1_000, 0, "a");
        let t2 = Hlc::new(2_000, 0, "a");
        let t3 = Hlc::new(3_000, 0, "a");
        let v1 = doc(json!({"x": 1, "y": 2}));
        let v2 = doc(json!({"x": 1, "y": 3}));
        let v3 = doc(json!({"x": 4, "y": 3}));
        let second = after_edit(Some(&v1), Some(&t1.encode()), FieldTimes::new(), &v2, &t2);
        assert_eq!(second.len(), 1);
        assert_eq!(second["x"], t1);
        let third = after_edit(Some(&v2), Some(&t2.encode()), second, &v3, &t3);
        assert_eq!(third.len(), 1);
        assert_eq!(third["y"], t2);
        assert_eq!(effective(Some(&v3), Some(&t3), third)["x"], t3);
    }

    #[test]
    fn a_burst_of_writes_saves_the_clock_once_and_a_reopened_clock_stays_after_it() {
        use tandem_protocol::clock::ManualClock;
        const NOW: i64 = 1_733_535_600_000;
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            .unwrap();
        let wall = Arc::new(ManualClock::at_ms(NOW));
        let clock = EditClock::load(&conn).unwrap().with(wall.clone(), "d");
        let saved = || meta_get(&conn, STATE_KEY).unwrap();
        let first = clock.tick();
        clock.save(&conn).unwrap();
        assert_eq!(saved().unwrap(), format!("{}:0:0", NOW + SAVE_LEASE_MS));
        // Within the lease: no write (the copy is marked to see that it stays).
        meta_set(&conn, STATE_KEY, "marker").unwrap();
        let mut issued = vec![first];
        let step = SAVE_LEASE_MS / 4;
        for _ in 0..3 {
            wall.advance(std::time::Duration::from_millis(step as u64));
            issued.push(clock.tick());
            clock.save(&conn).unwrap();
        }
        assert_eq!(saved().unwrap(), "marker");
        meta_set(&conn, STATE_KEY, &format!("{}:0:0", NOW + SAVE_LEASE_MS)).unwrap();
        // Reopened with the wall clock where it was: every new time is after every issued one.
        let reopened = EditClock::load(&conn).unwrap().with(wall.clone(), "d");
        let next = reopened.tick();
        assert!(issued.iter().all(|t| *t < next), "{next}");
        assert!(next.ms - wall.now_ms() <= SAVE_LEASE_MS);
        // Past the lease, the clock is saved again; after a failed transaction, always.
        wall.advance(std::time::Duration::from_millis(SAVE_LEASE_MS as u64));
        clock.tick();
        clock.save(&conn).unwrap();
        let later = NOW + 3 * step + SAVE_LEASE_MS * 2;
        assert_eq!(saved().unwrap(), format!("{later}:0:0"));
        meta_set(&conn, STATE_KEY, "marker").unwrap();
        clock.unsaved();
        clock.tick();
        clock.save(&conn).unwrap();
        assert_eq!(saved().unwrap(), format!("{later}:0:0"));
        // An observed time beyond the lease is written as it is; the next tick saves again.
        clock
            .observe(&conn, None, [&Hlc::new(later + 5_000, 3, "x")])
            .unwrap();
        assert_eq!(saved().unwrap(), format!("{}:3:0", later + 5_000));
        clock.tick();
        clock.save(&conn).unwrap();
        assert_eq!(
            saved().unwrap(),
            format!("{}:0:0", later + 5_000 + SAVE_LEASE_MS)
        );
    }
}
