//! `/metrics`: the server's figures for Prometheus, registered once with `prometheus-client` (the
//! Prometheus project's Rust crate). Routes and storage call the small methods of [`Metrics`];
//! what is already kept elsewhere is read when scraped, without a query (the open event streams
//! from `StreamSlots`, the database pool's status, the pauses from `control.rs`'s `PauseSet`).
//!
//! Labels are bounded: a route is the matched axum path template, never a raw path or an id
//! (`unmatched` for requests no route took), a method one of the standard ones (`other` beyond),
//! a status the HTTP status, a reason one of the protocol's codes. A route's parameters are
//! spelled `:name` in the label (`/sync/v1/blobs/:hash`, axum's former syntax and Express's),
//! not `{name}`: braces inside a label value are valid but trip line-based parsers (the
//! `prometheus-parse` crate silently drops such samples), and a label is for every scraper.
//!
//! The names (docs/design/operations.md §3): `tandem_http_requests_total{route,method,status}`,
//! `tandem_http_request_duration_seconds{route}` (until the response's head is ready: an event
//! stream counts until it opens), `tandem_push_duration_seconds` and
//! `tandem_pull_duration_seconds` (storage time), `tandem_changes_applied_total{op}`,
//! `tandem_conflicts_total{reason}`, `tandem_rejections_total{reason}`, `tandem_event_streams`,
//! `tandem_db_pool_connections{state}`, `tandem_sync_paused`, `tandem_paused_users`,
//! `tandem_attachment_bytes_total{direction}`.
//!
//! Served in the Prometheus text format (0.0.4), or OpenMetrics when the scraper's `Accept`
//! asks for `application/openmetrics-text` (as Prometheus itself does).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tandem_protocol::{ConflictCode, MutationResult, RejectionCode, ResultStatus};

use crate::error::ApiError;
use crate::routes::admin::Admin;
use crate::routes::SharedState;
use crate::storage::PoolStatus;

/// Upper bounds of the latency histograms, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The route label of a request no route matched (an unknown path's 404).
const UNMATCHED: &str = "unmatched";

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// `tandem_http_requests_total`'s labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Arc<str>,
    method: &'static str,
    status: u16,
}

/// `tandem_http_request_duration_seconds`'s label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

/// Which way attachment bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received: upload chunks and the admin's blob uploads.
    Up,
    /// Sent: downloads.
    Down,
}

/// Every metric of the server, registered once.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    push_duration: Histogram,
    pull_duration: Histogram,
    changes_applied: Family<OpLabel, Counter>,
    conflicts: Family<ReasonLabel, Counter>,
    rejections: Family<ReasonLabel, Counter>,
    event_streams: Gauge,
    db_pool: Family<StateLabel, Gauge>,
    sync_paused: Gauge,
    paused_users: Gauge,
    attachment_bytes: Family<DirectionLabel, Counter>,
    /// The label of each route template seen, made once: a request's label is a clone of one
    /// (no allocation).
    routes: RwLock<HashMap<Box<str>, Arc<str>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "tandem_http_requests",
            "HTTP requests answered, by matched route template, method and status",
            requests.clone(),
        );
        let request_duration =
            Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "tandem_http_request_duration_seconds",
            "Seconds until a request's response head was ready, by matched route template",
            request_duration.clone(),
        );
        let push_duration = latency_histogram();
        registry.register(
            "tandem_push_duration_seconds",
            "Seconds a push spent in storage (judging and writing the batch)",
            push_duration.clone(),
        );
        let pull_duration = latency_histogram();
        registry.register(
            "tandem_pull_duration_seconds",
            "Seconds a pull spent in storage (reading the page)",
            pull_duration.clone(),
        );
        let changes_applied = Family::<OpLabel, Counter>::default();
        registry.register(
            "tandem_changes_applied",
            "Pushed changes applied, by op (upsert, delete)",
            changes_applied.clone(),
        );
        let conflicts = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "tandem_conflicts",
            "Pushed changes answered conflict, by reason",
            conflicts.clone(),
        );
        let rejections = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "tandem_rejections",
            "Pushed changes answered rejected, by reason",
            rejections.clone(),
        );
        let event_streams = Gauge::default();
        registry.register(
            "tandem_event_streams",
            "Event streams open on this instance",
            event_streams.clone(),
        );
        let db_pool = Family::<StateLabel, Gauge>::default();
        registry.register(
            "tandem_db_pool_connections",
            "Database pool connections (PostgreSQL's pool; SQLite's reader pool), by state (in_use, idle, max)",
            db_pool.clone(),
        );
        let sync_paused = Gauge::default();
        registry.register(
            "tandem_sync_paused",
            "1 while sync is paused for everyone, else 0",
            sync_paused.clone(),
        );
        let paused_users = Gauge::default();
        registry.register(
            "tandem_paused_users",
            "Users whose sync is paused on their own",
            paused_users.clone(),
        );
        let attachment_bytes = Family::<DirectionLabel, Counter>::default();
        registry.register(
            "tandem_attachment_bytes",
            "Attachment bytes received (up) and sent (down)",
            attachment_bytes.clone(),
        );
        // Every labelled series that is known up front exists from the start, so a scrape shows
        // every name (at zero) before the first request of its kind.
        for op in ["upsert", "delete"] {
            drop(changes_applied.get_or_create(&OpLabel { op }));
        }
        for state in ["in_use", "idle", "max"] {
            drop(db_pool.get_or_create(&StateLabel { state }));
        }
        for direction in ["up", "down"] {
            drop(attachment_bytes.get_or_create(&DirectionLabel { direction }));
        }
        for code in ConflictCode::KNOWN {
            drop(conflicts.get_or_create(&ReasonLabel {
                reason: code.as_str(),
            }));
        }
        for code in RejectionCode::KNOWN {
            drop(rejections.get_or_create(&ReasonLabel {
                reason: code.as_str(),
            }));
        }
        Self {
            registry,
            requests,
            request_duration,
            push_duration,
            pull_duration,
            changes_applied,
            conflicts,
            rejections,
            event_streams,
            db_pool,
            sync_paused,
            paused_users,
            attachment_bytes,
            routes: RwLock::new(HashMap::new()),
        }
    }

    /// One answered request: `route` is the matched path template (`None`: no route matched).
    pub fn request(&self, route: Option<&str>, method: &Method, status: u16, took: Duration) {
        let route = self.route(route.unwrap_or(UNMATCHED));
        let secs = took.as_secs_f64();
        self.request_duration
            .get_or_create(&RouteLabel {
                route: route.clone(),
            })
            .observe(secs);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method_label(method),
                status,
            })
            .inc();
    }

    /// The label of route template `template`, made the first time it is seen.
    fn route(&self, template: &str) -> Arc<str> {
        if let Some(route) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(template)
        {
            return route.clone();
        }
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(template.into())
            .or_insert_with(|| route_label(template).into())
            .clone()
    }

    /// A push's storage time.
    pub fn push_took(&self, took: Duration) {
        self.push_duration.observe(took.as_secs_f64());
    }

    /// A pull's storage time.
    pub fn pull_took(&self, took: Duration) {
        self.pull_duration.observe(took.as_secs_f64());
    }

    /// A push's answers: `deletes[i]` tells whether mutation `i` (answered by `results[i]`) was a
    /// delete. Applied changes count by op, conflicts and rejections by reason.
    pub fn push_results(&self, deletes: &[bool], results: &[MutationResult]) {
        for (result, &delete) in results.iter().zip(deletes) {
            match result.status {
                ResultStatus::Applied => {
                    let op = if delete { "delete" } else { "upsert" };
                    self.changes_applied.get_or_create(&OpLabel { op }).inc();
                }
                ResultStatus::Conflict => {
                    let reason = known(
                        result.reason.as_deref(),
                        ConflictCode::KNOWN,
                        ConflictCode::as_str,
                    );
                    self.conflicts.get_or_create(&ReasonLabel { reason }).inc();
                }
                ResultStatus::Rejected => {
                    let reason = known(
                        result.reason.as_deref(),
                        RejectionCode::KNOWN,
                        RejectionCode::as_str,
                    );
                    self.rejections.get_or_create(&ReasonLabel { reason }).inc();
                }
                ResultStatus::Duplicate | ResultStatus::Aborted => {}
            }
        }
    }

    /// Attachment bytes that went `direction`.
    pub fn attachment_bytes(&self, direction: Direction, bytes: u64) {
        let direction = match direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        self.attachment_bytes
            .get_or_create(&DirectionLabel { direction })
            .inc_by(bytes);
    }

    /// The figures read at scrape time: the event streams open, the database pool and the pauses
    /// (`global_pause`: everyone's sync paused; `paused_users`: users paused on their own).
    pub fn observe_state(
        &self,
        event_streams: usize,
        pool: PoolStatus,
        global_pause: bool,
        paused_users: usize,
    ) {
        self.event_streams
            .set(i64::try_from(event_streams).unwrap_or(i64::MAX));
        for (state, value) in [
            ("in_use", pool.in_use),
            ("idle", pool.idle),
            ("max", pool.max),
        ] {
            self.db_pool
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        self.sync_paused.set(i64::from(global_pause));
        self.paused_users
            .set(i64::try_from(paused_users).unwrap_or(i64::MAX));
    }

    /// Every metric as text: OpenMetrics when `accept` asks for it, else the Prometheus text
    /// format (0.0.4).
    pub fn render(&self, accept: &HeaderMap) -> Response {
        let openmetrics = accept
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        let mut text = String::with_capacity(16 * 1024);
        let (written, content_type) = if openmetrics {
            (
                prometheus_client::encoding::text::encode(&mut text, &self.registry),
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
        } else {
            (
                prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry),
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )
        };
        if let Err(e) = written {
            return ApiError::internal(&format!("cannot encode the metrics: {e}")).into_response();
        }
        let mut response = text.into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

/// `GET /metrics` on the API's listener: the admin token's (the route exists only when one is
/// configured).
pub async fn scrape_with_admin_token(
    State(state): State<SharedState>,
    _admin: Admin,
    headers: HeaderMap,
) -> Response {
    scrape(&state, &headers)
}

/// `GET /metrics` on `--metrics-addr`'s listener: no token (that address is the operator's
/// private network).
pub async fn scrape_open(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    scrape(&state, &headers)
}

/// Reads what is read at scrape time (this instance's caches: no query), then renders every
/// metric.
fn scrape(state: &SharedState, headers: &HeaderMap) -> Response {
    state.metrics.observe_state(
        state.stream_slots.total(),
        state.storage.pool_status(),
        state.pauses.global().is_some(),
        state.pauses.paused_users(),
    );
    state.metrics.render(headers)
}

/// The router of `--metrics-addr`: `GET /metrics`, and 404 for anything else.
pub fn router(state: SharedState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape_open))
        .fallback(|| async { ApiError::not_found() })
        .with_state(state)
}

/// `template` with each `{name}` (or `{*name}`) parameter spelled `:name` (`*name`).
fn route_label(template: &str) -> String {
    template
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(wildcard) if wildcard.starts_with('*') => wildcard.to_string(),
                Some(name) => format!(":{name}"),
                None => segment.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// A standard method's name; `other` for the rest (so the label stays bounded).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `reason` as one of `codes` (`other` when absent or unknown: the label stays bounded).
fn known<C>(
    reason: Option<&str>,
    codes: &'static [C],
    name: impl Fn(&'static C) -> &'static str,
) -> &'static str {
    reason
        .and_then(|r| codes.iter().find(|&c| name(c) == r))
        .map_or("other", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        let metrics = Metrics::new();
        assert!(Arc::ptr_eq(
            &metrics.route("/sync/v1/push"),
            &metrics.route("/sync/v1/push")
        ));
        assert_eq!(
            &*metrics.route("/sync/v1/spaces/{id}/members/{user_id}"),
            "/sync/v1/spaces/:id/members/:user_id"
        );
        assert_eq!(&*metrics.route("/admin/{*rest}"), "/admin/*rest");
        assert_eq!(&*metrics.route(UNMATCHED), UNMATCHED);
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(
            known(
                Some("version_mismatch"),
                ConflictCode::KNOWN,
                ConflictCode::as_str
            ),
            "version_mismatch"
        );
        assert_eq!(
            known(
                Some("disk_on_fire"),
                RejectionCode::KNOWN,
                RejectionCode::as_str
            ),
            "other"
        );
        assert_eq!(
            known(None, RejectionCode::KNOWN, RejectionCode::as_str),
            "other"
        );
    }
}
