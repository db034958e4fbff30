//! `/admin/v1`: the operator's interface, behind the admin token (`--admin-token-file` or
//! `TANDEM_ADMIN_TOKEN`, at least 32 bytes). Without a token configured every `/admin/v1` route
//! answers `404` as an unknown route does; with one, a request without it (a user's JWT
//! included) answers `401 unauthorized`. The token is compared in constant time.
//!
//! One file per concern: `public` (writes of public records), `blobs` (blobs for public
//! records), `control` (overview, pauses, revocation). Every route is registered in [`routes`].

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::Router;
use sha2::{Digest, Sha256};

use super::{RequestId, SharedState};
use crate::error::ApiError;

mod blobs;
mod control;
mod public;
mod users;

/// The `/admin/v1` routes, registered only when an admin token is configured.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/admin/v1/public/write", post(public::public_write))
        .route("/admin/v1/blobs/{hash}", put(blobs::put_blob))
        // control plane (A): overview, kill switch, revocation
        .route("/admin/v1/overview", get(control::overview))
        .route("/admin/v1/pauses", get(control::pauses))
        .route("/admin/v1/pause", post(control::pause))
        .route("/admin/v1/resume", post(control::resume))
        .route("/admin/v1/users/{id}/revoke", post(control::revoke))
        // users and their data (U)
        .route("/admin/v1/users", get(users::list))
        .route(
            "/admin/v1/users/{id}",
            get(users::detail).delete(users::delete),
        )
        .route("/admin/v1/rejections", get(users::rejections))
}

/// A request that presented the admin token: its request id and the client's address, which
/// every audit line ([`audit`]) carries.
pub struct Admin {
    pub request_id: String,
    pub remote: Option<std::net::IpAddr>,
}

impl FromRequestParts<SharedState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let Some(expected) = &state.admin_token else {
            return Err(ApiError::not_found());
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match presented {
            Some(token) if same_secret(token, expected) => Ok(Admin {
                request_id: parts
                    .extensions
                    .get::<RequestId>()
                    .map(|id| id.0.clone())
                    .unwrap_or_default(),
                remote: super::client_addr(parts, state).ok(),
            }),
            _ => {
                tracing::info!("admin request without the admin token");
                Err(ApiError::unauthorized(
                    "admin routes need Authorization: Bearer <admin token>",
                ))
            }
        }
    }
}

/// What an admin action came to, for its audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It changed what it was asked to change.
    Done,
    /// It was asked for and there was nothing to change (e.g. resuming what was not paused).
    Unchanged,
    /// It was refused (bad input, unknown subject) or failed.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Unchanged => "unchanged",
            Self::Refused => "refused",
        }
    }
}

/// The audit line of an admin action that changes something (every one of them calls it once,
/// refused ones included): at `info`, target `tandem_server::admin`, with the action (e.g.
/// `pause`, `revoke`, `public_write`), its subject (a user id, `*`, a blob hash prefix, a
/// collection; never an email), the outcome, the request id and the client's address. Never
/// the token, an email or a document; `detail` is for counts and codes only.
pub fn audit(admin: &Admin, action: &str, subject: &str, outcome: Outcome, detail: &str) {
    let remote = admin
        .remote
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "-".into());
    tracing::info!(
        target: "tandem_server::admin",
        action,
        subject,
        outcome = outcome.as_str(),
        detail,
        request_id = %admin.request_id,
        remote = %remote,
        "admin action"
    );
}

/// Constant-time equality of two secrets (compared as digests, so lengths leak nothing either).
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
