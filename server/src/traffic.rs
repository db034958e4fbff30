//! Pushes and pulls per minute over the last hour, of this instance, in memory: what the admin
//! overview's chart shows (`pushesPerMinute`, `pullsPerMinute`). Across instances, `/metrics`
//! is the place.

use std::sync::Mutex;

/// Minutes kept (the overview's chart).
pub const MINUTES: usize = 60;

#[derive(Clone, Copy, Default)]
struct Minute {
    /// Minutes since the epoch this slot counts; a slot of an older minute counts nothing.
    minute: i64,
    pushes: u64,
    pulls: u64,
}

/// A ring of [`MINUTES`] per-minute counters.
pub struct Traffic {
    ring: Mutex<[Minute; MINUTES]>,
}

impl Default for Traffic {
    fn default() -> Self {
        Self {
            ring: Mutex::new([Minute::default(); MINUTES]),
        }
    }
}

impl Traffic {
    /// Counts a push request at `now_ms`.
    pub fn push(&self, now_ms: i64) {
        self.count(now_ms, |m| m.pushes += 1);
    }

    /// Counts a pull request at `now_ms`.
    pub fn pull(&self, now_ms: i64) {
        self.count(now_ms, |m| m.pulls += 1);
    }

    fn count(&self, now_ms: i64, add: impl FnOnce(&mut Minute)) {
        let minute = now_ms.div_euclid(60_000);
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut ring[minute.rem_euclid(MINUTES as i64) as usize];
        if slot.minute != minute {
            *slot = Minute {
                minute,
                ..Minute::default()
            };
        }
        add(slot);
    }

    /// `(pushes, pulls)` per minute for the [`MINUTES`] minutes up to and including the current
    /// one, oldest first.
    pub fn per_minute(&self, now_ms: i64) -> (Vec<u64>, Vec<u64>) {
        let now = now_ms.div_euclid(60_000);
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        (0..MINUTES as i64)
            .rev()
            .map(|ago| {
                let minute = now - ago;
                let slot = ring[minute.rem_euclid(MINUTES as i64) as usize];
                if slot.minute == minute {
                    (slot.pushes, slot.pulls)
                } else {
                    (0, 0)
                }
            })
            .unzip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_minute_and_age_out_after_an_hour() {
        let traffic = Traffic::default();
        let t0 = 1_000 * 60_000;
        traffic.push(t0);
        traffic.push(t0 + 59_999);
        traffic.pull(t0 + 60_000);
        let (pushes, pulls) = traffic.per_minute(t0 + 60_000);
        assert_eq!(pushes.len(), MINUTES);
        assert_eq!(pushes[MINUTES - 2..], [2, 0]);
        assert_eq!(pulls[MINUTES - 2..], [0, 1]);
        let (pushes, _) = traffic.per_minute(t0 + 60 * 60_000);
        assert!(pushes.iter().all(|&n| n == 0));
        traffic.push(t0 + 60 * 60_000);
        let (pushes, pulls) = traffic.per_minute(t0 + 60 * 60_000);
        assert_eq!((pushes[MINUTES - 1], pulls[MINUTES - 1]), (1, 0));
        assert_eq!(pushes.iter().sum::<u64>(), 1);
    }
}
