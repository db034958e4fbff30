//! The server's log output: `tracing` events to stderr, as text or JSON lines
//! (`--log-format`), at the levels `RUST_LOG` asks for (`info` by default).
//!
//! What is logged never holds a token, password, email or document: request lines carry the
//! request id, method, matched route, user id, status, error code and duration only. Libraries
//! below the server that would log query parameters (`tokio_postgres` logs the values bound to
//! a statement at `debug`, the sign-up email among them) are capped at `info` whatever
//! `RUST_LOG` says.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing::Metadata;
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::LogFormat;

/// Targets whose events below `info` may quote what they were given (statement parameters).
const CAPPED_TARGETS: &[&str] = &["tokio_postgres", "postgres_protocol"];

/// Whether an event or span at `metadata` may be written at all, whatever `RUST_LOG` says.
pub fn allowed(metadata: &Metadata<'_>) -> bool {
    let capped = CAPPED_TARGETS.iter().any(|t| {
        metadata
            .target()
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    !capped || *metadata.level() <= LevelFilter::INFO
}

/// The filter of the server's log output: `directives` (`RUST_LOG` syntax), with the cap of
/// [`allowed`].
pub fn filter<S>(directives: &str) -> impl Filter<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let env = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    env.and(filter_fn(allowed))
}

/// Installs the global subscriber: stderr, `format`, levels from `RUST_LOG`.
pub fn init(format: LogFormat) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let ansi = std::io::stderr().is_terminal();
    let layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter(&directives)))
        .init();
}
