//! Attempts per key within a sliding window, counted when they start: password sign-ins per
//! email (given back when they succeed, so only failures use the limit up) and sign-ups per
//! client address. Counting before the slow hash is what makes the limit hold under parallel
//! guesses: the 6th of 40 concurrent attempts is refused before any of the first five has been
//! verified. Kept in memory, per server instance, with a fixed ceiling on the number of keys it
//! remembers, so a spray of made-up emails cannot grow the server's memory. Times are unix
//! milliseconds from the server's clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Keys remembered at most; with emails capped at `MAX_EMAIL_LEN`, about 4 MiB.
const MAX_TRACKED_EMAILS: usize = 10_000;

/// Attempts per key within a sliding window.
pub struct AttemptLimit {
    max_attempts: usize,
    window_ms: i64,
    max_tracked: usize,
    attempts: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl AttemptLimit {
    /// The protocol's default: 5 unsuccessful sign-ins within 60 s.
    pub fn protocol_default() -> Self {
        Self::new(5, Duration::from_secs(60), MAX_TRACKED_EMAILS)
    }

    /// `per_hour` sign-ups per client address.
    pub fn sign_ups(per_hour: usize) -> Self {
        Self::new(per_hour, Duration::from_secs(3600), MAX_TRACKED_EMAILS)
    }

    pub fn new(max_attempts: usize, window: Duration, max_tracked: usize) -> Self {
        Self {
            max_attempts,
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            max_tracked,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `email` (or another key) before its password is checked.
    /// `Err(seconds to wait)` when it has used up its attempts; the attempt is then not counted.
    pub fn reserve(&self, email: &str, now: i64) -> Result<(), u64> {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = attempts.get_mut(email) {
            self.forget_old(times, now);
            if times.len() >= self.max_attempts {
                let wait_ms = times[0].saturating_add(self.window_ms).saturating_sub(now);
                return Err(u64::try_from(wait_ms.max(0))
                    .unwrap_or(0)
                    .div_ceil(1000)
                    .max(1));
            }
            times.push_back(now);
            return Ok(());
        }
        if attempts.len() >= self.max_tracked {
            self.make_room(&mut attempts, now);
        }
        attempts.insert(email.to_string(), VecDeque::from([now]));
        Ok(())
    }

    /// Gives back the attempt of a sign-in that succeeded: only failures use up the limit.
    pub fn release(&self, email: &str) {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = attempts.get_mut(email) {
            times.pop_back();
            if times.is_empty() {
                attempts.remove(email);
            }
        }
    }

    /// How many emails are remembered now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.attempts.lock().unwrap().len()
    }

    /// Drops every email whose attempts have all left the window; when none has, the one whose
    /// latest attempt is oldest, so the map never grows past `max_tracked`.
    fn make_room(&self, attempts: &mut HashMap<String, VecDeque<i64>>, now: i64) {
        attempts.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.saturating_sub(*t) < self.window_ms)
        });
        if attempts.len() < self.max_tracked {
            return;
        }
        let stalest = attempts
            .iter()
            .min_by_key(|(_, times)| times.back().copied())
            .map(|(email, _)| email.clone());
        if let Some(email) = stalest {
            attempts.remove(&email);
        }
    }

    fn forget_old(&self, times: &mut VecDeque<i64>, now: i64) {
        while times
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= self.window_ms)
        {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_max_attempts_until_the_window_passes() {
        let limit = AttemptLimit::new(5, Duration::from_secs(60), 100);
        let t0 = 1_700_000_000_000_i64;
        for i in 0..5 {
            assert!(limit.reserve("a@b", t0 + i * 1000).is_ok());
        }
        assert_eq!(limit.reserve("a@b", t0 + 10 * 1000), Err(50));
        assert!(limit.reserve("other@b", t0).is_ok());
        assert!(limit.reserve("a@b", t0 + 60 * 1000).is_ok());
    }

    #[test]
    fn a_successful_sign_in_gives_its_attempt_back() {
        let limit = AttemptLimit::new(2, Duration::from_secs(60), 100);
        let t0 = 1_700_000_000_000_i64;
        for _ in 0..10 {
            limit.reserve("a@b", t0).unwrap();
            limit.release("a@b");
        }
        assert!(limit.reserve("a@b", t0).is_ok());
        assert!(limit.reserve("a@b", t0).is_ok());
        assert!(limit.reserve("a@b", t0).is_err());
        assert_eq!(limit.tracked(), 1);
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_emails() {
        let limit = AttemptLimit::new(5, Duration::from_secs(60), 50);
        let t0 = 1_700_000_000_000_i64;
        for i in 0..1_000u64 {
            limit
                .reserve(&format!("spray{i}@b"), t0 + i as i64)
                .unwrap();
            assert!(limit.tracked() <= 50);
        }
        // The newest emails are the ones kept: the latest still counts.
        for _ in 0..4 {
            limit.reserve("spray999@b", t0 + 2 * 1000).unwrap();
        }
        assert!(limit.reserve("spray999@b", t0 + 2 * 1000).is_err());
    }

    #[test]
    fn emails_whose_window_has_passed_are_pruned_first() {
        let limit = AttemptLimit::new(5, Duration::from_secs(60), 3);
        let t0 = 1_700_000_000_000_i64;
        limit.reserve("old@b", t0).unwrap();
        for _ in 0..5 {
            limit.reserve("victim@b", t0 + 30 * 1000).unwrap();
        }
        limit.reserve("c@b", t0 + 30 * 1000).unwrap();
        // Full: the one whose window has passed goes, the victim's count stays.
        limit.reserve("d@b", t0 + 61 * 1000).unwrap();
        assert_eq!(limit.tracked(), 3);
        assert!(limit.reserve("victim@b", t0 + 62 * 1000).is_err());
    }
}
