//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes). Hashing is slow on
//! purpose, so callers run it on the blocking pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use tokio::sync::Semaphore;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// A hash to verify against when the email is unknown, so that answering "no such account" takes
/// as long as "wrong password" and does not reveal which emails have accounts.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password("not a real password"));

/// The PHC string of an argon2id hash of `password` with a random salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Whether `password` matches the PHC string `hash`; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the time of one verification, for unknown emails.
pub fn verify_against_dummy(password: &str) {
    let _ = verify_password(password, &DUMMY_HASH);
}

/// Hashing runs on at most `concurrency` threads at once (each hash holds 19 MiB), and at most
/// 16 times as many more wait their turn: beyond that the server is too busy to take more sign-ins,
/// and says so rather than pile up memory and latency.
pub struct HashPool {
    running: Semaphore,
    /// Hashes running or waiting.
    in_flight: AtomicUsize,
    max_in_flight: usize,
}

/// Hashing asked of a pool whose queue is full.
#[derive(Debug)]
pub struct PoolBusy;

impl HashPool {
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            running: Semaphore::new(concurrency),
            in_flight: AtomicUsize::new(0),
            max_in_flight: concurrency * 17,
        }
    }

    /// Runs `hashing` on the blocking pool once a place is free.
    pub async fn run<T: Send + 'static>(
        &self,
        hashing: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolBusy> {
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _leaves = Decrement(&self.in_flight);
        if before >= self.max_in_flight {
            return Err(PoolBusy);
        }
        let _place = self.running.acquire().await.map_err(|_| PoolBusy)?;
        tokio::task::spawn_blocking(hashing)
            .await
            .map_err(|_| PoolBusy)
    }
}

struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pool_caps_concurrency_and_refuses_past_its_queue() {
        let pool = std::sync::Arc::new(HashPool::new(1));
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        let mut busy = 0;
        for task in tasks {
            if task.await.unwrap().is_err() {
                busy += 1;
            }
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "one hash at a time");
        assert!(busy > 0 && busy < 40, "{busy} of 40 refused");
        assert!(pool.run(|| ()).await.is_ok(), "the queue empties again");
    }
}
