//! Time as both sides read it: a [`Clock`] answers "now" in unix milliseconds. Production code
//! uses [`SystemClock`]; tests share one [`ManualClock`] between a server and its clients and
//! move it instead of sleeping (token expiry, the refresh-reuse grace, tombstone purges,
//! rate-limit windows).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where "now" comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Whole seconds since the Unix epoch (what JWT `exp` and `iat` hold).
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that stands still until moved. Clones share the same time, so a test hands one to
/// the server and its clients and moves them all at once.
#[derive(Clone)]
pub struct ManualClock {
    now_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at the system's current time.
    pub fn new() -> Self {
        Self::at_ms(SystemClock.now_ms())
    }

    /// A clock stopped at `ms` since the Unix epoch.
    pub fn at_ms(ms: i64) -> Self {
        Self {
            now_ms: Arc::new(AtomicI64::new(ms)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `ms` since the Unix epoch (backwards too).
    pub fn set_ms(&self, ms: i64) {
        self.now_ms.store(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now_ms", &self.now_ms())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// Another clock shifted by a fixed offset: a device whose wall clock runs ahead (positive) or
/// behind (negative) of the one a test moves.
#[derive(Debug, Clone)]
pub struct OffsetClock {
    inner: Arc<dyn Clock>,
    offset_ms: i64,
}

impl OffsetClock {
    /// `inner` shifted by `offset_ms`.
    pub fn new(inner: Arc<dyn Clock>, offset_ms: i64) -> Self {
        Self { inner, offset_ms }
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        self.inner.now_ms().saturating_add(self.offset_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let other = clock.clone();
        assert_eq!(clock.now_secs(), 1_700_000_000);
        clock.advance(Duration::from_millis(2500));
        assert_eq!(other.now_ms(), 1_700_000_002_500);
        other.set_ms(5);
        assert_eq!(clock.now_ms(), 5);
        let ahead = OffsetClock::new(Arc::new(clock.clone()), 1_000);
        assert_eq!(ahead.now_ms(), 1_005);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
