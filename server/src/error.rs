//! The protocol's error answers: `{"error", "error_description"}` with the right status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tandem_protocol::ErrorBody;

use crate::auth::MIN_PASSWORD_CHARS;
use crate::storage::StorageError;

/// An error answer. Descriptions are written for the client and never quote secrets or documents.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be \"password\" or \"refresh_token\"",
        )
    }

    pub fn batch_too_large(max: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "batch_too_large",
            format!("a push may carry at most {max} mutations"),
        )
    }

    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", description)
    }

    /// A valid token of an account that has since been deleted.
    pub fn account_gone() -> Self {
        Self::unauthorized("the account no longer exists")
    }

    pub fn token_expired() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "the access token has expired",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take this method",
        )
    }

    pub fn cursor_expired() -> Self {
        Self::new(
            StatusCode::GONE,
            "cursor_expired",
            "the cursor predates purged tombstones; pull again from null",
        )
    }

    pub fn payload_too_large(max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over {max} bytes"),
        )
    }

    /// The body did not arrive within the server's body read timeout.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body took too long to arrive",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        )
    }

    pub fn user_already_exists() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_already_exists",
            "an account with this email exists",
        )
    }

    pub fn weak_password() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            format!("the password must have at least {MIN_PASSWORD_CHARS} characters"),
        )
    }

    pub fn validation_failed(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            description,
        )
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many failed sign-ins for this email; try again later",
            )
        }
    }

    /// Sign-ups from one client address used up for now.
    pub fn too_many_sign_ups(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many sign-ups from this address; try again later",
            )
        }
    }

    /// The server has more work of this kind (password hashing) queued than it takes.
    pub fn server_busy() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                "the server is busy; try again shortly",
            )
        }
    }

    /// The user already has the most event streams a user may hold open.
    pub fn too_many_streams() -> Self {
        Self {
            retry_after: Some(30),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many open event streams for this account; close one first",
            )
        }
    }

    pub fn sync_paused() -> Self {
        Self {
            retry_after: Some(60),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "sync_paused",
                "sync is paused by the operator",
            )
        }
    }

    /// The server itself failed. The cause goes to the log, not to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server failed; try again",
        )
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_unstorable_text() {
            return Self::invalid_request("the request holds a character that cannot be stored");
        }
        Self::internal(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            error_description: self.description,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
