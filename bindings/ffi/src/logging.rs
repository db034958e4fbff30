//! The log sink: the engine's `tracing` events, handed to the app's `LogSink` (Swift's `Logger`,
//! Android's `Log`, Python's `logging`).
//!
//! One subscriber is installed the first time `setLogSink` is called and stays; calling it again
//! only swaps the sink and the level. Events are formatted where they happen and queued (at most
//! [`QUEUE`] lines); one thread of their own calls the sink, so a slow sink never holds the
//! engine up. When the queue is full a line is dropped and counted (`droppedLogLines()`). A sink
//! that panics or throws loses that line, nothing else.
//!
//! The libraries below the engine (HTTP, TLS) reach the sink from `warn` up only. The engine
//! itself never logs a token, password, email or document content: ids, collection names,
//! counts and error kinds only.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Lines waiting for the sink at most; more are dropped and counted.
const QUEUE: usize = 1024;

/// Crates below the engine: only their warnings and errors reach the sink.
const QUIET_CRATES: &[&str] = &[
    "reqwest",
    "hyper",
    "hyper_util",
    "rustls",
    "rustls_platform_verifier",
    "h2",
    "tokio_util",
    "want",
    "mio",
];

/// How much the sink receives: `Error` least, `Trace` everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn of(level: &Level) -> Self {
        match *level {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            Level::TRACE => Self::Trace,
        }
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }
}

/// Where the app wants the engine's log lines. Called on a thread of its own, one line at a time,
/// in order; `target` is the Rust module (e.g. `tandem_core::sync::orchestrator`), `message` the
/// event's text followed by its fields (`key=value`).
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    fn log(&self, level: LogLevel, target: String, message: String);
}

/// Sends the engine's log events at `level` and above to `sink`, replacing any sink set before.
/// Safe to call at any time, from any thread, any number of times.
#[uniffi::export]
pub fn set_log_sink(sink: Arc<dyn LogSink>, level: LogLevel) {
    let state = state();
    *state.sink.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    state.level.store(level.code(), Ordering::Release);
}

/// Stops sending log lines; lines already queued are dropped.
#[uniffi::export]
pub fn clear_log_sink() {
    let state = state();
    state.level.store(OFF, Ordering::Release);
    *state.sink.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// How many log lines were dropped because the sink fell more than 1024 lines behind.
#[uniffi::export]
pub fn dropped_log_lines() -> u64 {
    state().dropped.load(Ordering::Relaxed)
}

/// No sink: nothing is formatted or queued.
const OFF: u8 = 0;

struct State {
    /// `OFF`, or the most verbose `LogLevel::code` wanted.
    level: AtomicU8,
    sink: RwLock<Option<Arc<dyn LogSink>>>,
    lines: SyncSender<Line>,
    dropped: AtomicU64,
}

struct Line {
    level: LogLevel,
    target: String,
    message: String,
}

thread_local! {
    /// Set on the sink's thread: what the sink's own call logs is not fed back to it.
    static ON_SINK_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    let mut started = false;
    let state = STATE.get_or_init(|| {
        started = true;
        let (lines, queue) = sync_channel(QUEUE);
        // Without the thread the receiver is gone, and every line counts as dropped.
        let _ = std::thread::Builder::new()
            .name("tandem-log".into())
            .spawn(move || deliver(queue));
        State {
            level: AtomicU8::new(OFF),
            sink: RwLock::new(None),
            lines,
            dropped: AtomicU64::new(0),
        }
    });
    if started {
        install();
    }
    state
}

/// Installs the subscriber once. If the process already has a global subscriber (an embedding
/// Rust app's own), that one stays and receives the events instead.
fn install() {
    // `log` records (rustls, reqwest) become tracing events; another logger may own `log` already.
    let _ = tracing_log::LogTracer::init();
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(SinkLayer));
}

fn deliver(queue: Receiver<Line>) {
    ON_SINK_THREAD.with(|flag| flag.set(true));
    for line in queue {
        let sink = state()
            .sink
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(sink) = sink else { continue };
        // A sink that panics (or throws across UniFFI) loses this line only.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            sink.log(line.level, line.target, line.message)
        }));
    }
}

fn wanted(level: &Level, target: &str) -> bool {
    let max = state().level.load(Ordering::Acquire);
    if max == OFF || ON_SINK_THREAD.with(|flag| flag.get()) {
        return false;
    }
    let level = LogLevel::of(level);
    if level.code() > max {
        return false;
    }
    let quiet = QUIET_CRATES.iter().any(|name| {
        target == *name
            || target
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with("::"))
    });
    !quiet || level <= LogLevel::Warn
}

struct SinkLayer;

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn register_callsite(
        &self,
        _metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level changes at run time: ask every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        // `log` records arrive under the target "log" and are checked again in `on_event`.
        metadata.target() == "log" || wanted(metadata.level(), metadata.target())
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if !wanted(metadata.level(), metadata.target()) {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let line = Line {
            level: LogLevel::of(metadata.level()),
            target: metadata.target().to_string(),
            message: text.finish(),
        };
        let state = state();
        match state.lines.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                state.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// An event as one line: its message, then its other fields as `key=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }

    fn field(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if field.name().starts_with("log.") {
            return; // the bridged `log` record's target, module, file and line
        }
        if field.name() == "message" {
            let _ = self.message.write_fmt(value);
            return;
        }
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{}={}", field.name(), value);
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}
