//! The `attachments` suite (issue 15): moving a file's bytes through the engine and the server,
//! against the same bytes moved by plain HTTP in the same run.
//!
//! - `attachment_upload`: MB/s (10^6 bytes) of one `sync_now` that uploads a 100 MB attachment
//!   (the engine's chunked, resumable upload: open, `PATCH`es of `chunkBytes`, the server hashing
//!   as chunks land), against the floor: the same file `PUT` by reqwest to a tiny axum server in
//!   this process that streams the body into a file.
//! - `attachment_download`: MB/s of `Tandem::attachment` on a second device of the same account
//!   (download, SHA-256 check, rename into the cache), against the floor: a streamed `GET` of the
//!   file from the same axum server, written to a file.
//! - `attachment_peak_memory_*`: growth of peak resident memory while a 200 MB file goes up and
//!   comes down, for the client (this process: `clear_refs` = 5 resets `VmHWM` to the current
//!   RSS, then `VmHWM` − `VmRSS` before) and for the server (the `__serve` child process, measured
//!   the same way through `/proc/<pid>/`). The design's target is < 64 MB each: neither side may
//!   hold a file in memory, only a chunk (8 MiB) and buffers.
//!
//! The server is the real server code in a child process (`__serve`, as the sync suite), with
//! `--attachment-max-bytes` raised so the 200 MB file is allowed, on SQLite and the filesystem
//! blob store in a temporary directory. Every figure is on loopback: it measures the software,
//! the network costs nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context};
use tempfile::TempDir;

use crate::report::{Measurement, Target};
use crate::sync::{block, email, BenchServer, Device};

const MB: f64 = 1e6;

/// Sizes of one run.
pub struct Sizes {
    /// The file timed up and down.
    pub speed_bytes: u64,
    /// The file whose memory cost is measured.
    pub memory_bytes: u64,
}

pub const FULL: Sizes = Sizes {
    speed_bytes: 100_000_000,
    memory_bytes: 200_000_000,
};

pub const QUICK: Sizes = Sizes {
    speed_bytes: 12_000_000,
    memory_bytes: 20_000_000,
};

/// Writes `size` bytes of pseudo-random data (not compressible, every chunk different) to `path`.
pub fn write_file(path: &Path, size: u64, seed: u64) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            // xorshift64*: fast and good enough to defeat any compression on the way.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()
}

/// Memory figures of a process from `/proc/<pid>/status` (Linux).
pub mod memory {
    /// `"self"` or a pid.
    pub fn status_kb(pid: &str, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Resets the process's peak resident set (`VmHWM`) to its current resident set.
    pub fn reset_peak(pid: &str) -> std::io::Result<()> {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
    }

    /// A measurement window: resets the peak, remembers the resident set at the start.
    pub struct Window {
        pid: String,
        rss_before_kb: u64,
    }

    impl Window {
        pub fn start(pid: &str) -> std::io::Result<Window> {
            reset_peak(pid)?;
            let rss_before_kb = status_kb(pid, "VmRSS")
                .ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{pid}/status")))?;
            Ok(Window {
                pid: pid.to_string(),
                rss_before_kb,
            })
        }

        /// How far the peak rose above the resident set at the start, in MB (10^6 bytes).
        pub fn growth_mb(&self) -> f64 {
            let peak = status_kb(&self.pid, "VmHWM").unwrap_or(0);
            peak.saturating_sub(self.rss_before_kb) as f64 * 1024.0 / 1e6
        }
    }
}

/// The floor: plain HTTP moving the same bytes, streamed on both sides (never a whole file in
/// memory), on a tokio runtime of its own in this process.
pub mod floor {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use anyhow::{ensure, Context};
    use axum::body::Body;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::put;
    use axum::Router;
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;

    /// A server with `PUT /file` (the body streamed into `dir/file`) and `GET /file` (streamed
    /// back with its `Content-Length`).
    pub struct FloorServer {
        runtime: tokio::runtime::Runtime,
        addr: SocketAddr,
    }

    async fn put_file(State(path): State<PathBuf>, body: Body) -> StatusCode {
        let Ok(mut file) = tokio::fs::File::create(&path).await else {
            return StatusCode::INTERNAL_SERVER_ERROR;
        };
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return StatusCode::BAD_REQUEST;
            };
            if file.write_all(&chunk).await.is_err() {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
        }
        if file.sync_all().await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        StatusCode::NO_CONTENT
    }

    async fn get_file(State(path): State<PathBuf>) -> axum::response::Response {
        let Ok(file) = tokio::fs::File::open(&path).await else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let length = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 16));
        axum::response::Response::builder()
            .header("content-length", length)
            .header("content-type", "application/octet-stream")
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }

    use axum::response::IntoResponse;

    impl FloorServer {
        pub fn start(dir: &Path) -> anyhow::Result<FloorServer> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let path = dir.join("file");
            let app = Router::new()
                .route("/file", put(put_file).get(get_file))
                .with_state(path);
            let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
            let addr = listener.local_addr()?;
            runtime.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Ok(FloorServer { runtime, addr })
        }

        /// Seconds to `PUT` the file at `source`, streamed from disk.
        pub fn upload(&self, source: &Path) -> anyhow::Result<f64> {
            let url = format!("http://{}/file", self.addr);
            self.runtime.block_on(async {
                let file = tokio::fs::File::open(source).await?;
                let length = file.metadata().await?.len();
                let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                    file,
                    1 << 16,
                ));
                let started = Instant::now();
                let response = reqwest::Client::new()
                    .put(&url)
                    .header("content-length", length)
                    .body(body)
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "floor PUT: {}",
                    response.status()
                );
                Ok(started.elapsed().as_secs_f64())
            })
        }

        /// Seconds to `GET` the file into `target`, streamed to disk (synced, as the engine's
        /// download is before its rename).
        pub fn download(&self, target: &Path) -> anyhow::Result<f64> {
            let url = format!("http://{}/file", self.addr);
            self.runtime.block_on(async {
                let started = Instant::now();
                let response = reqwest::get(&url).await?;
                ensure!(
                    response.status().is_success(),
                    "floor GET: {}",
                    response.status()
                );
                let mut file = tokio::fs::File::create(target)
                    .await
                    .context("floor target")?;
                let mut stream = response.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    file.write_all(&chunk?).await?;
                }
                file.sync_all().await?;
                Ok(started.elapsed().as_secs_f64())
            })
        }
    }
}

/// The floor's rates for `bytes`, in MB/s: (upload, download). The file is written first (not
/// timed); both transfers are synced to disk like the engine's.
pub fn floor_rates(dir: &Path, source: &Path, bytes: u64) -> anyhow::Result<(f64, f64)> {
    let server_dir = dir.join("floor-server");
    std::fs::create_dir_all(&server_dir)?;
    let server = floor::FloorServer::start(&server_dir)?;
    let up = server.upload(source)?;
    let target: PathBuf = dir.join("floor-download");
    let down = server.download(&target)?;
    ensure!(
        std::fs::metadata(&target).context("floor download")?.len() == bytes,
        "the floor's download is short"
    );
    std::fs::remove_file(&target).ok();
    std::fs::remove_file(server_dir.join("file")).ok();
    Ok((bytes as f64 / MB / up, bytes as f64 / MB / down))
}

/// The design's bounds: the engine within 1.5× the plain-HTTP floor, each side's peak memory
/// growth under 64 MB for a 200 MB file.
const RATIO_TARGET: f64 = 1.5;
const MEMORY_TARGET_MB: f64 = 64.0;

/// The day every measured file is attached to (the sample schema's `plan_days.photo`).
fn day(device: &Device) {
    let t = &device.t;
    t.put(
        "plans".into(),
        Some("bench".into()),
        r#"{"name": "Bench"}"#.into(),
    )
    .expect("plan");
    t.put(
        "plan_days".into(),
        Some("bench-day".into()),
        r#"{"planId": "bench", "dayIndex": 0}"#.into(),
    )
    .expect("day");
}

fn attach(device: &Device, file: &Path) -> anyhow::Result<tandem::AttachmentRef> {
    block(device.t.attach_file(
        "plan_days".into(),
        "bench-day".into(),
        "photo".into(),
        file.to_string_lossy().into_owned(),
        Some("application/octet-stream".into()),
        None,
    ))
    .context("attach")?;
    device
        .t
        .attachment_ref("plan_days".into(), "bench-day".into(), "photo".into())?
        .context("the attached reference")
}

/// What one file's trip up and down took: seconds each way, and the peak memory growth of this
/// process and of the server's during each.
struct Trip {
    up_secs: f64,
    down_secs: f64,
    client_up_mb: f64,
    client_down_mb: f64,
    server_up_mb: f64,
    server_down_mb: f64,
}

/// Attaches `file` on a new account's device (not timed: a local copy and hash), times the
/// `sync_now` that uploads it, then times `attachment()` on a second device of the account.
fn trip(server: &BenchServer, file: &Path, bytes: u64) -> anyhow::Result<Trip> {
    let server_pid = server.pid().to_string();
    let account = email("attachments");
    let up = Device::sign_up(&server.url, &account, |_| {});
    day(&up);
    let reference = attach(&up, file)?;
    ensure!(reference.size == bytes, "attached {} bytes", reference.size);

    let client = memory::Window::start("self")?;
    let server_window = memory::Window::start(&server_pid)?;
    let started = Instant::now();
    let report = block(up.t.sync_now()).context("the upload's sync")?;
    let up_secs = started.elapsed().as_secs_f64();
    let (client_up_mb, server_up_mb) = (client.growth_mb(), server_window.growth_mb());
    ensure!(
        report.applied >= 1,
        "the change naming the file was not applied"
    );
    ensure!(
        up.t.attachment_state(reference.hash.clone())? == tandem::AttachmentState::Uploaded,
        "the file is not uploaded"
    );
    drop(up);

    let down = Device::sign_in(&server.url, &account, |_| {});
    block(down.t.sync_now()).context("the download device's sync")?;
    let client = memory::Window::start("self")?;
    let server_window = memory::Window::start(&server_pid)?;
    let started = Instant::now();
    let path = block(down.t.attachment(reference.clone())).context("attachment()")?;
    let down_secs = started.elapsed().as_secs_f64();
    let (client_down_mb, server_down_mb) = (client.growth_mb(), server_window.growth_mb());
    ensure!(
        std::fs::metadata(&path)?.len() == bytes,
        "the downloaded file is short"
    );
    Ok(Trip {
        up_secs,
        down_secs,
        client_up_mb,
        client_down_mb,
        server_up_mb,
        server_down_mb,
    })
}

/// The suite. The memory trip runs first, each part on a fresh server process, so neither
/// process's allocator holds memory an earlier part freed (that would hide this part's growth).
pub fn run(quick: bool, only: Option<&str>) -> anyhow::Result<Vec<Measurement>> {
    let sizes = if quick { &QUICK } else { &FULL };
    let wanted = |group: &str| only.is_none_or(|o| group.contains(o));
    let dir = TempDir::new()?;
    let mut results = Vec::new();
    if wanted("attachment_peak_memory") {
        // The 200 MB file is over the server's default limit (100 MiB).
        let server = BenchServer::start_with_attachment_limit(Some(sizes.memory_bytes));
        let source = dir.path().join("memory.bin");
        write_file(&source, sizes.memory_bytes, 2)?;
        let trip = trip(&server, &source, sizes.memory_bytes)?;
        for (name, value) in [
            ("attachment_peak_memory_client_up", trip.client_up_mb),
            ("attachment_peak_memory_client_down", trip.client_down_mb),
            ("attachment_peak_memory_server_up", trip.server_up_mb),
            ("attachment_peak_memory_server_down", trip.server_down_mb),
        ] {
            results
                .push(Measurement::new(name, value, "MB").target(Target::AtMost(MEMORY_TARGET_MB)));
        }
        std::fs::remove_file(&source).ok();
    }
    if wanted("attachment_upload attachment_download") {
        let server = BenchServer::start_with_attachment_limit(Some(sizes.speed_bytes));
        let source = dir.path().join("speed.bin");
        write_file(&source, sizes.speed_bytes, 1)?;
        let (floor_up, floor_down) = floor_rates(dir.path(), &source, sizes.speed_bytes)?;
        let trip = trip(&server, &source, sizes.speed_bytes)?;
        let rate = |secs: f64| sizes.speed_bytes as f64 / MB / secs;
        results.push(
            Measurement::new("attachment_upload", rate(trip.up_secs), "MB/s")
                .floor(floor_up)
                .inverse_ratio()
                .target(Target::RatioAtMost(RATIO_TARGET)),
        );
        results.push(
            Measurement::new("attachment_download", rate(trip.down_secs), "MB/s")
                .floor(floor_down)
                .inverse_ratio()
                .target(Target::RatioAtMost(RATIO_TARGET)),
        );
    }
    Ok(results)
}
