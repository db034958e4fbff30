//! The admin console: three plain files (`server/console/`: `index.html`, `console.js`,
//! `console.css`; no framework, no build step, no external URL) embedded in the binary and served
//! at `GET /admin` (and `/admin/`) and `/admin/assets/…`. The page itself holds no data and needs
//! no token: it asks the operator for the admin token, keeps it in `sessionStorage` and sends it
//! as `Authorization: Bearer` to the `/admin/v1` routes (never a cookie, so there is nothing for
//! a cross-site request to ride on). Like those routes, the console exists only when an admin
//! token is configured (the router registers [`routes`] only then; otherwise `404`).
//!
//! Every answer carries a strict Content-Security-Policy (no inline script or style, no other
//! origin, no framing, no form submission), `nosniff`, `no-referrer` and `no-store`.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::SharedState;

const INDEX_HTML: &str = include_str!("../../console/index.html");
const CONSOLE_JS: &str = include_str!("../../console/console.js");
const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// The console's Content-Security-Policy: its own script, style and API calls only.
pub const CONTENT_SECURITY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// The console's routes, registered only when an admin token is configured.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/admin", get(index))
        .route("/admin/", get(index))
        .route("/admin/assets/console.js", get(script))
        .route("/admin/assets/console.css", get(style))
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, CONTENT_SECURITY),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "no-referrer"),
            (CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
