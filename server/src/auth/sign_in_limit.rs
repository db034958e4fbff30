//! The one rate limit on by default: after `max_failures` failed password sign-ins for an email
//! within `window`, further attempts for that email are refused until the oldest failure leaves
//! the window. Kept in memory, per server instance: a sliding window of failure times per email is
//! a few lines, and the refusal must not depend on successful attempts (which GCRA-style limiters
//! count too).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins per email within a sliding window.
pub struct SignInLimit {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SignInLimit {
    /// The protocol's default: 5 failures within 60 s.
    pub fn protocol_default() -> Self {
        Self::new(5, Duration::from_secs(60))
    }

    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when `email` has used up its failures.
    pub fn check(&self, email: &str, now: Instant) -> Result<(), u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = failures.get_mut(email) else {
            return Ok(());
        };
        self.forget_old(times, now);
        if times.is_empty() {
            failures.remove(email);
            return Ok(());
        }
        if times.len() < self.max_failures {
            return Ok(());
        }
        let oldest = times[0];
        let wait = (oldest + self.window).saturating_duration_since(now);
        Err(wait.as_secs_f64().ceil() as u64)
    }

    /// Counts one failed sign-in for `email`.
    pub fn record_failure(&self, email: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            // Bound memory under a spray of emails: drop entries whose window has passed.
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let times = failures.entry(email.to_string()).or_default();
        self.forget_old(times, now);
        times.push_back(now);
    }

    fn forget_old(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_max_failures_until_the_window_passes() {
        let limit = SignInLimit::new(5, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(limit.check("a@b", t0 + Duration::from_secs(i)).is_ok());
            limit.record_failure("a@b", t0 + Duration::from_secs(i));
        }
        assert_eq!(limit.check("a@b", t0 + Duration::from_secs(10)), Err(50));
        assert!(limit.check("other@b", t0).is_ok());
        assert!(limit.check("a@b", t0 + Duration::from_secs(60)).is_ok());
    }
}
