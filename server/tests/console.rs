//! The admin console (`server/console/`, served at `/admin`), on SQLite and PostgreSQL: it exists
//! only when an admin token is configured (`404` otherwise, like the admin routes); the page and
//! its two assets answer with their content types and the strict headers (CSP, `nosniff`,
//! `no-referrer`, `no-store`); no asset names another origin, runs inline script or style, or
//! writes markup from strings (`innerHTML`). Its behaviour in a browser is tested by
//! `scripts/console-test.py` (headless Chromium against the real binary).

use tandem_testkit::on_both_backends;
use tandem_testkit::server_suite as common;

use common::{TestDb, TestServer, SECRET};

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Every path the console answers, with its content type.
const ASSETS: [(&str, &str); 4] = [
    ("/admin", "text/html; charset=utf-8"),
    ("/admin/", "text/html; charset=utf-8"),
    ("/admin/assets/console.js", "text/javascript; charset=utf-8"),
    ("/admin/assets/console.css", "text/css; charset=utf-8"),
];

on_both_backends!(
    the_console_exists_only_with_an_admin_token,
    the_console_is_served_with_strict_headers,
    no_asset_reaches_another_origin,
);

fn with_admin(db: &TestDb) -> TestServer {
    TestServer::builder()
        .db(db)
        .in_process()
        .env(&[("TANDEM_JWT_SECRET", SECRET), ("TANDEM_ADMIN_TOKEN", ADMIN)])
        .start()
}

async fn fetch(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn the_console_exists_only_with_an_admin_token(db: TestDb) {
    let server = TestServer::builder().db(&db).in_process().start();
    for (path, _) in ASSETS {
        let (status, _, _) = fetch(&format!("{}{path}", server.url())).await;
        assert_eq!(status, 404, "{path} without an admin token");
    }
}

async fn the_console_is_served_with_strict_headers(db: TestDb) {
    let server = with_admin(&db);
    for (path, content_type) in ASSETS {
        // The page needs no token: it asks for one and sends it to the API itself.
        let (status, headers, body) = fetch(&format!("{}{path}", server.url())).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.is_empty(), "{path} is empty");
        assert_eq!(header(&headers, "content-type"), content_type, "{path}");
        assert_eq!(header(&headers, "content-security-policy"), CSP, "{path}");
        assert_eq!(
            header(&headers, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(header(&headers, "referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-store", "{path}");
        assert!(headers.get("set-cookie").is_none(), "{path} sets a cookie");
    }
    // The page loads exactly the two assets above, by the paths they are served at.
    let (_, _, html) = fetch(&format!("{}/admin", server.url())).await;
    assert!(html.contains(r#"<script src="/admin/assets/console.js" defer></script>"#));
    assert!(html.contains(r#"<link rel="stylesheet" href="/admin/assets/console.css">"#));
    // Anything else under /admin is not the console.
    let (status, _, _) = fetch(&format!("{}/admin/assets/other.js", server.url())).await;
    assert_eq!(status, 404);
}

async fn no_asset_reaches_another_origin(db: TestDb) {
    let server = with_admin(&db);
    let mut texts = Vec::new();
    for (path, _) in ASSETS {
        let (_, _, body) = fetch(&format!("{}{path}", server.url())).await;
        texts.push((path, body));
    }
    for (path, text) in &texts {
        let lower = text.to_ascii_lowercase();
        // The one absolute URL is the SVG namespace, a name that is never fetched.
        let without_namespace = lower.replace("http://www.w3.org/2000/svg", "");
        for scheme in ["http://", "https://", "ws://", "wss://", "ftp://"] {
            assert!(
                !without_namespace.contains(scheme),
                "{path} names another origin ({scheme})"
            );
        }
        for needle in [
            "src=\"//",
            "href=\"//",
            "url(",
            "@import",
            "innerhtml",
            "outerhtml",
            "insertadjacenthtml",
            "document.write",
            "eval(",
            "new function",
            "style=",
            "javascript:",
        ] {
            assert!(!lower.contains(needle), "{path} contains {needle:?}");
        }
    }
    // No inline script or style in the page: every <script> has a src, and there is no <style>.
    let html = &texts[0].1;
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=\"/admin/assets/").count()
    );
    assert!(!html.contains("<style"));
    for attr in [" src=\"", " href=\""] {
        for value in html.split(attr).skip(1) {
            let value = value.split('"').next().unwrap();
            assert!(
                value.starts_with("/admin/") || value.starts_with('#') || value == "data:,",
                "the page links {value:?}"
            );
        }
    }
}
