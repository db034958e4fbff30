//! `/metrics`, on SQLite and PostgreSQL, against the real binary: served to the admin token only
//! (`401` without it or with a user's token, `404` when no admin token and no `--metrics-addr`
//! is configured), or without a token on `--metrics-addr`'s own listener. The text is parsed by
//! a Prometheus text-format parser (the `prometheus-parse` crate; the server answers the
//! Prometheus text format 0.0.4 unless the scraper asks for OpenMetrics), every name of the
//! design's list is there, and the figures move when a device pushes, pulls, conflicts, is
//! rejected, holds an event stream and moves attachment bytes.

use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use tandem_testkit::blobs::{sha256_hex, BlobStoreKind, TestBlobStore};
use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite::{create, delete, upsert, Client, TestDb, TestServer, SECRET};

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

/// Every metric of docs/design/operations.md §3, as scraped (HELP names).
const NAMES: &[&str] = &[
    "tandem_http_requests_total",
    "tandem_http_request_duration_seconds",
    "tandem_push_duration_seconds",
    "tandem_pull_duration_seconds",
    "tandem_changes_applied_total",
    "tandem_conflicts_total",
    "tandem_rejections_total",
    "tandem_event_streams",
    "tandem_db_pool_connections",
    "tandem_sync_paused",
    "tandem_paused_users",
    "tandem_attachment_bytes_total",
];

on_both_backends!(
    metrics_need_the_admin_token,
    every_name_is_there_and_parses,
    figures_move_when_a_device_syncs,
    conflicts_and_rejections_count_by_reason,
    pauses_show_in_the_gauges,
    the_metrics_address_serves_without_a_token,
);

/// A server on `db` with the admin token and a blob store of its own (kept alive with it).
fn with_admin(db: &TestDb, args: &[&str]) -> (TestServer, TestBlobStore) {
    let blobs = TestBlobStore::new(BlobStoreKind::Filesystem).unwrap();
    let server = TestServer::builder()
        .db(db)
        .blob_store(&blobs)
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .args(args)
        .start();
    (server, blobs)
}

/// `GET url/metrics` with `token`, parsed; asserts 200 and the Prometheus text content type.
async fn scrape(base: &str, token: Option<&str>) -> Scrape {
    let mut request = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scraping /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

/// The samples of `name` whose labels include `labels`.
fn samples<'a>(
    scrape: &'a Scrape,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Sample> + 'a {
    scrape.samples.iter().filter(move |s| {
        s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    })
}

/// The sum of `name`'s values over the samples with `labels`: a counter's or gauge's value, a
/// histogram's count of observations.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(scrape, name, labels)
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(0.0, |b| b.count),
            Value::Summary(_) => panic!("{name} is not a summary"),
        })
        .sum()
}

async fn metrics_need_the_admin_token(db: TestDb) {
    {
        // No admin token, no metrics address: there is no /metrics.
        let blobs = TestBlobStore::new(BlobStoreKind::Filesystem).unwrap();
        let server = TestServer::builder().db(&db).blob_store(&blobs).start();
        let c = server.client();
        c.get("/metrics", Some(ADMIN))
            .await
            .assert_error(404, "not_found");
    }
    let (server, _blobs) = with_admin(&db, &[]);
    let c = server.client();
    let user = c.user().await;
    c.get("/metrics", None)
        .await
        .assert_error(401, "unauthorized");
    c.get("/metrics", Some(&user.token))
        .await
        .assert_error(401, "unauthorized");
    c.get("/metrics", Some("admin-token-for-tests-0123456789abcdeX"))
        .await
        .assert_error(401, "unauthorized");
    let scraped = scrape(server.url(), Some(ADMIN)).await;
    // The refusals were counted under the route's template.
    assert_eq!(
        value(
            &scraped,
            "tandem_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "401")]
        ),
        3.0
    );
    // A scraper asking for OpenMetrics gets it, ending in `# EOF`.
    let response = reqwest::Client::new()
        .get(format!("{}/metrics", server.url()))
        .bearer_auth(ADMIN)
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(response.text().await.unwrap().ends_with("# EOF\n"));
}

async fn every_name_is_there_and_parses(db: TestDb) {
    let (server, _blobs) = with_admin(&db, &[]);
    // The request families show once a request was answered (the scrape counts after it).
    server.client().get("/healthz", None).await.assert_ok();
    let scraped = scrape(server.url(), Some(ADMIN)).await;
    for name in NAMES {
        assert!(
            scraped.docs.contains_key(*name),
            "{name} is missing: {:?}",
            scraped.docs.keys()
        );
    }
    // Labelled series known up front are there at zero.
    for op in ["upsert", "delete"] {
        assert_eq!(
            value(&scraped, "tandem_changes_applied_total", &[("op", op)]),
            0.0
        );
    }
    for direction in ["up", "down"] {
        assert_eq!(
            samples(
                &scraped,
                "tandem_attachment_bytes_total",
                &[("direction", direction)]
            )
            .count(),
            1
        );
    }
    assert_eq!(value(&scraped, "tandem_sync_paused", &[]), 0.0);
    assert_eq!(value(&scraped, "tandem_paused_users", &[]), 0.0);
    assert_eq!(value(&scraped, "tandem_event_streams", &[]), 0.0);
    // The pool: at least one connection may be opened, and what is open is used or idle.
    let max = value(&scraped, "tandem_db_pool_connections", &[("state", "max")]);
    assert!(max >= 1.0, "max {max}");
    let open = value(
        &scraped,
        "tandem_db_pool_connections",
        &[("state", "in_use")],
    ) + value(&scraped, "tandem_db_pool_connections", &[("state", "idle")]);
    assert!(open <= max, "open {open} of {max}");
    // Reasons are the protocol's codes.
    assert_eq!(
        samples(
            &scraped,
            "tandem_conflicts_total",
            &[("reason", "version_mismatch")]
        )
        .count(),
        1
    );
    assert_eq!(
        samples(
            &scraped,
            "tandem_rejections_total",
            &[("reason", "invalid_payload")]
        )
        .count(),
        1
    );
}

async fn figures_move_when_a_device_syncs(db: TestDb) {
    let (server, _blobs) = with_admin(&db, &[]);
    let c = server.client();
    let user = c.user().await;
    let before = scrape(server.url(), Some(ADMIN)).await;
    c.push_ok(
        &user.token,
        vec![
            create("o1", "plans", "p1", json!({"name": "Legs"})),
            create("o2", "plans", "p2", json!({"name": "Arms"})),
        ],
    )
    .await;
    c.push_ok(&user.token, vec![delete("o3", "plans", "p2", Some(1))])
        .await;
    let (changes, _) = c.pull_all(&user.token, None).await;
    assert_eq!(changes.len(), 2);
    // An event stream is counted while it is open.
    let events = c.events(&user.token).await;
    // Attachment bytes, up and down.
    let photo = vec![7u8; 3000];
    assert_eq!(
        c.upload(&user.token, &photo, "image/png").await.assert_ok()["complete"],
        true
    );
    let download = c.download(&user.token, &sha256_hex(&photo), &[]).await;
    assert_eq!(download.bytes.len(), photo.len());
    let after = scrape(server.url(), Some(ADMIN)).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(moved("tandem_push_duration_seconds", &[]), 2.0);
    assert!(moved("tandem_pull_duration_seconds", &[]) >= 1.0);
    assert_eq!(
        moved("tandem_changes_applied_total", &[("op", "upsert")]),
        2.0
    );
    assert_eq!(
        moved("tandem_changes_applied_total", &[("op", "delete")]),
        1.0
    );
    let push = [
        ("route", "/sync/v1/push"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(moved("tandem_http_requests_total", &push), 2.0);
    assert_eq!(
        moved(
            "tandem_http_request_duration_seconds",
            &[("route", "/sync/v1/push")]
        ),
        2.0
    );
    assert!(
        moved(
            "tandem_http_requests_total",
            &[("route", "/sync/v1/pull"), ("status", "200")]
        ) >= 1.0
    );
    // Ids never become labels: the download is counted under its template.
    assert_eq!(
        moved(
            "tandem_http_requests_total",
            &[("route", "/sync/v1/blobs/:hash"), ("method", "GET")]
        ),
        1.0
    );
    assert!(!after
        .samples
        .iter()
        .any(|s| s.labels.values().any(|v| v.contains(&user.id))));
    assert_eq!(value(&after, "tandem_event_streams", &[]), 1.0);
    assert_eq!(
        moved("tandem_attachment_bytes_total", &[("direction", "up")]),
        3000.0
    );
    assert_eq!(
        moved("tandem_attachment_bytes_total", &[("direction", "down")]),
        3000.0
    );
    // The stream closed: the gauge comes down (the server learns of it shortly after).
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = scrape(server.url(), Some(ADMIN)).await;
        if value(&now, "tandem_event_streams", &[]) == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream is still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn conflicts_and_rejections_count_by_reason(db: TestDb) {
    let (server, _blobs) = with_admin(&db, &[]);
    let c = server.client();
    let user = c.user().await;
    c.push_ok(
        &user.token,
        vec![create("o1", "plans", "p1", json!({"name": "Legs"}))],
    )
    .await;
    let before = scrape(server.url(), Some(ADMIN)).await;
    let results = c
        .push_ok(
            &user.token,
            vec![
                // Version 1 is there: a conflict.
                upsert("o2", "plans", "p1", Some(7), json!({"name": "B"})),
                // `name` is required: a rejection.
                create("o3", "plans", "p3", json!({"notes": "no name"})),
                // A collection the schema does not know: another rejection.
                create("o4", "no_such_collection", "x", json!({})),
            ],
        )
        .await;
    let statuses: Vec<_> = results
        .iter()
        .map(|r| (r["status"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("conflict", "version_mismatch"),
            ("rejected", "invalid_payload"),
            ("rejected", "unknown_entity"),
        ]
    );
    let after = scrape(server.url(), Some(ADMIN)).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(
        moved("tandem_conflicts_total", &[("reason", "version_mismatch")]),
        1.0
    );
    assert_eq!(moved("tandem_conflicts_total", &[]), 1.0);
    assert_eq!(
        moved("tandem_rejections_total", &[("reason", "invalid_payload")]),
        1.0
    );
    assert_eq!(
        moved("tandem_rejections_total", &[("reason", "unknown_entity")]),
        1.0
    );
    assert_eq!(moved("tandem_rejections_total", &[]), 2.0);
    assert_eq!(moved("tandem_changes_applied_total", &[]), 0.0);
}

async fn pauses_show_in_the_gauges(db: TestDb) {
    let (server, _blobs) = with_admin(&db, &[]);
    let c = server.client();
    let user = c.user().await;
    let pause = |body: serde_json::Value| {
        let c = c.clone();
        async move {
            c.post("/admin/v1/pause", Some(ADMIN), &body)
                .await
                .assert_ok()
                .clone()
        }
    };
    pause(json!({"user": user.id})).await;
    let scraped = scrape(server.url(), Some(ADMIN)).await;
    assert_eq!(value(&scraped, "tandem_paused_users", &[]), 1.0);
    assert_eq!(value(&scraped, "tandem_sync_paused", &[]), 0.0);
    pause(json!({"reason": "bad release"})).await;
    let scraped = scrape(server.url(), Some(ADMIN)).await;
    assert_eq!(value(&scraped, "tandem_sync_paused", &[]), 1.0);
    // Resuming needs no restart, and the gauges follow.
    for body in [json!({}), json!({"user": user.id})] {
        c.post("/admin/v1/resume", Some(ADMIN), &body)
            .await
            .assert_ok();
    }
    let scraped = scrape(server.url(), Some(ADMIN)).await;
    assert_eq!(value(&scraped, "tandem_sync_paused", &[]), 0.0);
    assert_eq!(value(&scraped, "tandem_paused_users", &[]), 0.0);
}

async fn the_metrics_address_serves_without_a_token(db: TestDb) {
    // A free port for the metrics listener (the binary is given it on its command line).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    // No admin token: the API's listener has no /metrics, the metrics address serves it.
    let blobs = TestBlobStore::new(BlobStoreKind::Filesystem).unwrap();
    let server = TestServer::builder()
        .db(&db)
        .blob_store(&blobs)
        .args(&["--metrics-addr", &metrics_addr])
        .start();
    let c = server.client();
    c.get("/metrics", None).await.assert_error(404, "not_found");
    let user = c.user().await;
    c.push_ok(
        &user.token,
        vec![create("o1", "plans", "p1", json!({"name": "Legs"}))],
    )
    .await;
    let base = format!("http://{metrics_addr}");
    let scraped = scrape(&base, None).await;
    for name in NAMES {
        assert!(scraped.docs.contains_key(*name), "{name} is missing");
    }
    assert_eq!(
        value(
            &scraped,
            "tandem_changes_applied_total",
            &[("op", "upsert")]
        ),
        1.0
    );
    // Nothing else is served there.
    let other = Client::new(&base);
    other
        .get("/sync/v1/account", Some(&user.token))
        .await
        .assert_error(404, "not_found");
}
