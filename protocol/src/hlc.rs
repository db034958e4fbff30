//! Edit time: a hybrid logical clock (HLC). Every change carries the time the user made it on
//! the device, as an [`Hlc`] — the device's wall clock in milliseconds, a counter for edits within
//! one millisecond (or while the wall clock lags behind a time already seen), and the id of the
//! device that made it, so two edits never compare equal. [`HlcGenerator`] keeps a device's clock
//! honest:
//!
//! - **monotonic**: every time it issues is above every time it issued or saw before;
//! - **never behind the server**: the server's time (in every push and pull answer) and the edit
//!   times of pulled changes are observed, so a device whose clock lags behind issues times after
//!   them;
//! - **bounded skew**: the server clamps an edit time more than [`MAX_CLOCK_SKEW_MS`] ahead of its
//!   own clock to its clock + [`MAX_CLOCK_SKEW_MS`] (see [`Hlc::clamped`]), and a device that
//!   finds itself more than that ahead of the server's time corrects its wall clock by the
//!   difference from then on, so a device whose clock is days ahead cannot win every conflict.
//!
//! The text form sorts as the times compare: `MMMMMMMMMMMMMMM-CCCCC-NODE`, the milliseconds since
//! the Unix epoch zero-padded to 15 digits, the counter zero-padded to 5, then the node (a client
//! id: 1 to 128 characters of `[A-Za-z0-9_.:-]`), e.g. `001733535600000-00000-device-7`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::is_valid_id;

/// How far ahead of the server's clock an edit time may be. Further ahead, the server clamps it
/// to its clock + this, and a device that sees it is further ahead corrects its own clock.
pub const MAX_CLOCK_SKEW_MS: i64 = 60_000;
/// Largest millisecond value the text form holds (15 digits: beyond the year 30000).
pub const MAX_HLC_MS: i64 = 999_999_999_999_999;
/// Largest counter; the next tick moves to the next millisecond instead.
pub const MAX_HLC_COUNTER: u32 = 99_999;
/// The node of the times a server issues itself (`serverTime`).
pub const SERVER_NODE: &str = "server";

/// One hybrid logical time. Compares by milliseconds, then counter, then node (bytewise), exactly
/// as its text form sorts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hlc {
    pub ms: i64,
    pub counter: u32,
    pub node: String,
}

/// Why a text is not an [`Hlc`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an edit time (MMMMMMMMMMMMMMM-CCCCC-NODE): {0}")]
pub struct HlcParseError(pub String);

impl Hlc {
    /// A time at `ms` (clamped into the encodable range), counter `counter`, made by `node`.
    pub fn new(ms: i64, counter: u32, node: impl Into<String>) -> Self {
        Self {
            ms: ms.clamp(0, MAX_HLC_MS),
            counter: counter.min(MAX_HLC_COUNTER),
            node: node.into(),
        }
    }

    /// This time, no later than `limit_ms` milliseconds: the milliseconds are cut to the limit,
    /// the counter and node stay (so two clamped times of one device keep their order, and two of
    /// different devices still differ).
    pub fn clamped(&self, limit_ms: i64) -> Self {
        if self.ms <= limit_ms {
            return self.clone();
        }
        Self::new(limit_ms, self.counter, self.node.clone())
    }

    /// The text form. Built digit by digit: a pull encodes one per record, and the formatting
    /// machinery's zero padding was a measurable share of applying a page.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(22 + self.node.len());
        if (0..=MAX_HLC_MS).contains(&self.ms) && self.counter <= MAX_HLC_COUNTER {
            push_padded(&mut text, self.ms.unsigned_abs(), 15);
            text.push('-');
            push_padded(&mut text, u64::from(self.counter), 5);
            text.push('-');
            text.push_str(&self.node);
        } else {
            // Out of the encodable range (the fields are public): as `format!` pads it.
            use fmt::Write;
            let _ = write!(text, "{:015}-{:05}-{}", self.ms, self.counter, self.node);
        }
        text
    }

    /// Compares only the clock part (milliseconds, counter), ignoring the node.
    pub fn cmp_clock(&self, other: &Self) -> Ordering {
        (self.ms, self.counter).cmp(&(other.ms, other.counter))
    }
}

/// Appends `value` zero-padded to `width` (at most 15) digits; `value` has at most `width`.
fn push_padded(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 15];
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend(digits[..width].iter().map(|&d| char::from(d)));
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for Hlc {
    type Err = HlcParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || HlcParseError(text.chars().take(160).collect());
        let b = text.as_bytes();
        if b.len() < 23 || b[15] != b'-' || b[21] != b'-' {
            return Err(bad());
        }
        let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        if !digits(&b[..15]) || !digits(&b[16..21]) {
            return Err(bad());
        }
        let node = &text[22..];
        if !is_valid_id(node) {
            return Err(bad());
        }
        Ok(Self {
            ms: text[..15].parse().map_err(|_| bad())?,
            counter: text[16..21].parse().map_err(|_| bad())?,
            node: node.to_string(),
        })
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The edit time of each field of a document: when the user last set (or removed) it. A field
/// removed keeps its time, so a removal competes with a later or earlier set like any edit.
pub type FieldTimes = BTreeMap<String, Hlc>;

/// A device's clock state: the last time it issued or saw, and how far its wall clock was found
/// to run ahead of the server's (0 when within [`MAX_CLOCK_SKEW_MS`]). Pure: the caller reads
/// the wall clock and persists the state (see [`HlcGenerator::to_text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HlcGenerator {
    last_ms: i64,
    last_counter: u32,
    ahead_ms: i64,
}

impl HlcGenerator {
    /// The next edit time at wall-clock time `device_ms` for `node`: after everything issued or
    /// seen before.
    pub fn tick(&mut self, device_ms: i64, node: &str) -> Hlc {
        let physical = device_ms.saturating_sub(self.ahead_ms).clamp(0, MAX_HLC_MS);
        if physical > self.last_ms {
            self.last_ms = physical;
            self.last_counter = 0;
        } else if self.last_counter >= MAX_HLC_COUNTER {
            self.last_ms = (self.last_ms + 1).min(MAX_HLC_MS);
            self.last_counter = 0;
        } else {
            self.last_counter += 1;
        }
        Hlc::new(self.last_ms, self.last_counter, node)
    }

    /// Sees an edit time from elsewhere (a pulled change): later ticks come after it.
    pub fn observe(&mut self, seen: &Hlc) {
        if (seen.ms, seen.counter) > (self.last_ms, self.last_counter) {
            self.last_ms = seen.ms.min(MAX_HLC_MS);
            self.last_counter = seen.counter;
        }
    }

    /// Sees the server's clock (`server_ms`) while the device's reads `device_ms`. A device behind
    /// catches up (later ticks come after the server's time); a device more than
    /// [`MAX_CLOCK_SKEW_MS`] ahead corrects its wall clock by the difference from now on, and
    /// pulls back a last time beyond the server's time + the bound (the server clamped every
    /// time it got from this device to no more than that anyway).
    pub fn observe_server(&mut self, server_ms: i64, device_ms: i64) {
        let ahead = device_ms.saturating_sub(server_ms);
        self.ahead_ms = if ahead > MAX_CLOCK_SKEW_MS { ahead } else { 0 };
        let limit = server_ms.saturating_add(MAX_CLOCK_SKEW_MS);
        if self.last_ms > limit {
            self.last_ms = limit;
        }
        self.observe(&Hlc::new(server_ms, 0, SERVER_NODE));
    }

    /// How far the device's wall clock was found ahead of the server's (0 within the bound).
    pub fn ahead_ms(&self) -> i64 {
        self.ahead_ms
    }

    /// `(ms, counter)` of the last time issued or seen.
    pub fn last(&self) -> (i64, u32) {
        (self.last_ms, self.last_counter)
    }

    /// This state moved on to `ms` (counter 0): every time it issues is after `ms`.
    pub fn past(&self, ms: i64) -> Self {
        Self {
            last_ms: ms,
            last_counter: 0,
            ..*self
        }
    }

    /// The state as text, to persist: `LAST_MS:LAST_COUNTER:AHEAD_MS`.
    pub fn to_text(&self) -> String {
        format!("{}:{}:{}", self.last_ms, self.last_counter, self.ahead_ms)
    }

    /// The state [`to_text`](Self::to_text) wrote; `None` when it is not one.
    pub fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let generator = Self {
            last_ms: parts.next()?.parse().ok()?,
            last_counter: parts.next()?.parse().ok()?,
            ahead_ms: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_733_535_600_000;

    #[test]
    fn the_text_form_pads_as_format_does_at_every_width() {
        let cases = [
            (0, 0),
            (9, 1),
            (NOW, 99_999),
            (MAX_HLC_MS, MAX_HLC_COUNTER),
            (-5, 3),
            (MAX_HLC_MS + 1, 100_000),
        ];
        for (ms, counter) in cases {
            let t = Hlc {
                ms,
                counter,
                node: "n".into(),
            };
            assert_eq!(t.encode(), format!("{ms:015}-{counter:05}-n"));
            assert_eq!(t.to_string(), t.encode());
        }
    }

    #[test]
    fn the_text_form_round_trips_and_sorts_as_times_compare() {
        let t = Hlc::new(NOW, 7, "device-7");
        assert_eq!(t.encode(), "001733535600000-00007-device-7");
        assert_eq!(t.encode().parse::<Hlc>().unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"001733535600000-00007-device-7\"");
        assert_eq!(serde_json::from_str::<Hlc>(&json).unwrap(), t);
        let mut times = [
            Hlc::new(NOW + 1, 0, "a"),
            Hlc::new(NOW, 10, "a"),
            Hlc::new(NOW, 2, "b"),
            Hlc::new(NOW, 2, "ab"),
            Hlc::new(NOW, 2, "a"),
            Hlc::new(9, 0, "z"),
            Hlc::new(MAX_HLC_MS, MAX_HLC_COUNTER, "A"),
            Hlc::new(NOW, 2, "B"),
        ];
        let mut texts: Vec<String> = times.iter().map(Hlc::encode).collect();
        times.sort();
        texts.sort();
        assert_eq!(texts, times.iter().map(Hlc::encode).collect::<Vec<_>>());
        for bad in [
            "",
            "1733535600000-0-a",
            "001733535600000-00007-",
            "001733535600000-00007-bad node",
            "00173353560000x-00007-a",
            "001733535600000_00007-a",
        ] {
            assert!(bad.parse::<Hlc>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ticks_are_monotonic_even_when_the_wall_clock_goes_back() {
        let mut g = HlcGenerator::default();
        let a = g.tick(NOW, "d");
        let b = g.tick(NOW, "d");
        let c = g.tick(NOW - 5_000, "d"); // the wall clock stepped back
        let d = g.tick(NOW + 1, "d");
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!((b.ms, b.counter), (NOW, 1));
        assert_eq!((c.ms, c.counter), (NOW, 2));
        assert_eq!((d.ms, d.counter), (NOW + 1, 0));
        // A full counter moves on to the next millisecond.
        let mut g = HlcGenerator::default();
        g.observe(&Hlc::new(NOW, MAX_HLC_COUNTER, "x"));
        let e = g.tick(NOW, "d");
        assert_eq!((e.ms, e.counter), (NOW + 1, 0));
        // The state survives a restart.
        let text = g.to_text();
        let mut back = HlcGenerator::from_text(&text).unwrap();
        assert!(back.tick(NOW, "d") > e);
        assert_eq!(HlcGenerator::from_text("1:2"), None);
    }

    #[test]
    fn a_clock_behind_catches_up_with_what_it_saw() {
        let mut g = HlcGenerator::default();
        // The device is 10 minutes behind the server.
        g.observe_server(NOW, NOW - 600_000);
        let t = g.tick(NOW - 600_000 + 5, "slow");
        assert!(t > Hlc::new(NOW, 0, SERVER_NODE), "{t}");
        // A pulled edit time from another device is passed too.
        let seen = Hlc::new(NOW + 30_000, 3, "other");
        g.observe(&seen);
        let u = g.tick(NOW - 600_000 + 10, "slow");
        assert!(u > seen, "{u} vs {seen}");
        assert_eq!(g.ahead_ms(), 0);
    }

    #[test]
    fn a_clock_far_ahead_is_corrected_and_clamped() {
        let day = 86_400_000;
        let mut g = HlcGenerator::default();
        let early = g.tick(NOW + 3 * day, "fast");
        assert_eq!(early.ms, NOW + 3 * day);
        // The server clamps what it gets.
        let stored = early.clamped(NOW + MAX_CLOCK_SKEW_MS);
        assert_eq!(stored.ms, NOW + MAX_CLOCK_SKEW_MS);
        assert_eq!((stored.counter, stored.node.as_str()), (0, "fast"));
        assert_eq!(Hlc::new(5, 1, "x").clamped(10), Hlc::new(5, 1, "x"));
        // Seeing the server's time, the device corrects itself.
        g.observe_server(NOW, NOW + 3 * day);
        assert_eq!(g.ahead_ms(), 3 * day);
        let later = g.tick(NOW + 3 * day + 1_000, "fast");
        assert!(later.ms <= NOW + MAX_CLOCK_SKEW_MS, "{later}");
        assert!(
            later > stored,
            "still after what the server kept of its earlier edit"
        );
        // Another device editing a while later wins against it.
        let mut other = HlcGenerator::default();
        other.observe_server(NOW + 120_000, NOW + 120_000);
        assert!(other.tick(NOW + 120_000, "honest") > later);
        // Within the bound, nothing is corrected.
        let mut near = HlcGenerator::default();
        near.observe_server(NOW, NOW + MAX_CLOCK_SKEW_MS);
        assert_eq!(near.ahead_ms(), 0);
        assert_eq!(
            near.tick(NOW + MAX_CLOCK_SKEW_MS, "n").ms,
            NOW + MAX_CLOCK_SKEW_MS
        );
    }
}
