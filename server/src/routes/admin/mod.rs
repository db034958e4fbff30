//! `/admin/v1`: the operator's interface, behind the admin token (`--admin-token-file` or
//! `TANDEM_ADMIN_TOKEN`, at least 32 bytes). Without a token configured every `/admin/v1` route
//! answers `404` as an unknown route does; with one, a request without it (a user's JWT
//! included) answers `401 unauthorized`. The token is compared in constant time.
//!
//! One file per concern: `public` (writes of public records), `blobs` (blobs for public
//! records). Every route is registered in [`routes`].

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::Router;
use sha2::{Digest, Sha256};

use super::SharedState;
use crate::error::ApiError;

mod blobs;
mod public;
mod users;

/// The `/admin/v1` routes, registered only when an admin token is configured.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/admin/v1/public/write", post(public::public_write))
        .route("/admin/v1/blobs/{hash}", put(blobs::put_blob))
        .route("/admin/v1/users", get(users::list))
        .route(
            "/admin/v1/users/{id}",
            get(users::detail).delete(users::delete),
        )
        .route("/admin/v1/rejections", get(users::rejections))
}

/// A request that presented the admin token.
pub struct Admin;

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
            Some(token) if same_secret(token, expected) => Ok(Admin),
            _ => {
                tracing::info!("admin request without the admin token");
                Err(ApiError::unauthorized(
                    "admin routes need Authorization: Bearer <admin token>",
                ))
            }
        }
    }
}

/// Constant-time equality of two secrets (compared as digests, so lengths leak nothing either).
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
