//! Every sync and HTTP default, defined once. The core's configurations (`SyncOptions`,
//! `HttpConfig`), the exported `SyncConfig` (tandem-ffi, whose UniFFI literals a test in each
//! binding compares with `defaultSyncConfig()`) and the CLI's help all take them from here.

use std::time::Duration;

/// Mutations per push request.
pub const PUSH_BATCH_SIZE: usize = 200;

/// Changes per pull page (the server caps it at `tandem_protocol::MAX_PULL_LIMIT`).
pub const PULL_PAGE_SIZE: u32 = 500;

/// The minimum interval between background runs that local writes start: a write starts a run
/// at once when none started within it (0: always at once; writes during a run join the next).
pub const DEBOUNCE: Duration = Duration::ZERO;

/// Background runs happen at least this often.
pub const PERIODIC_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Whether the server's event stream (realtime pokes) is listened to.
pub const REALTIME: bool = true;

/// Whether sync is on (the kill switch).
pub const SYNC_ENABLED: bool = true;

/// First retry delay after a failed run (and of the event stream's reconnects); doubled per
/// attempt, with full jitter.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Longest one HTTP exchange may take (not applied to the event stream).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest establishing a connection (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of downloaded attachments kept on disk (`ClientConfig::attachment_cache_bytes`); files
/// not uploaded yet or named by unsent changes are kept beyond it.
pub const ATTACHMENT_CACHE_BYTES: u64 = 500_000_000;

/// An access token is refreshed this long before it expires (half its lifetime for shorter ones).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
