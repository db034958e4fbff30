//! The process-wide tokio runtime that every engine shares for network I/O and timers.
//!
//! A mobile app may open several engines (an app and its extension, several accounts); one small
//! runtime for all of them keeps the thread count fixed. Blocking work (SQLite) goes through
//! `spawn_blocking` so it never holds up the two worker threads.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the shared runtime: network I/O is light, and phones have few cores.
const WORKER_THREADS: usize = 2;

/// The shared runtime, created on first use. Its threads are named `tandem-rt`.
///
/// # Panics
/// Only if the operating system refuses to create the runtime's threads at all, in which case no
/// part of the engine that needs the network could run.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("tandem-rt")
            .enable_all()
            .build()
            .expect("creating the tandem-rt tokio runtime")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_with_named_threads() {
        assert!(std::ptr::eq(runtime(), runtime()));
        let name = runtime().block_on(async {
            tokio::spawn(async { std::thread::current().name().map(str::to_string) })
                .await
                .unwrap()
        });
        assert_eq!(name.as_deref(), Some("tandem-rt"));
    }
}
