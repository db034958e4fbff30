//! The protocol's error answers: `{"error", "error_description"}` with the right status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tandem_protocol::{ErrorBody, ErrorCode};

use crate::storage::StorageError;

/// An error answer. Descriptions are written for the client and never quote secrets or documents.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub description: String,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// GoTrue's `error_code` for this error on `/auth/v1`, when it is not the one
    /// [`gotrue_code`] derives from `code`.
    pub gotrue: Option<&'static str>,
}

/// What `/auth/v1`'s error bodies add to the protocol's (GoTrue's shape, see
/// `routes::auth::gotrue_errors`): carried on the response, for that layer.
#[derive(Debug, Clone)]
pub struct ErrorParts {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub description: String,
    pub gotrue: Option<&'static str>,
}

/// GoTrue's `error_code` of an error answered with `code` (docs/protocol.md, "GoTrue
/// compatibility"): the same name where GoTrue has one.
pub fn gotrue_code(parts: &ErrorParts) -> &'static str {
    if let Some(code) = parts.gotrue {
        return code;
    }
    match parts.code {
        ErrorCode::InvalidRequest | ErrorCode::UnsupportedMediaType => "bad_json",
        ErrorCode::InvalidGrant => "invalid_credentials",
        ErrorCode::UnsupportedGrantType | ErrorCode::ValidationFailed => "validation_failed",
        ErrorCode::Unauthorized | ErrorCode::TokenExpired => "bad_jwt",
        ErrorCode::UserAlreadyExists => "user_already_exists",
        ErrorCode::WeakPassword => "weak_password",
        ErrorCode::RateLimited => "over_request_rate_limit",
        ErrorCode::NotFound | ErrorCode::MethodNotAllowed => "not_found",
        ErrorCode::PayloadTooLarge => "request_too_large",
        ErrorCode::RequestTimeout => "request_timeout",
        _ => "unexpected_failure",
    }
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
            gotrue: None,
        }
    }

    /// This error's GoTrue `error_code` on `/auth/v1`.
    pub fn gotrue(mut self, code: &'static str) -> Self {
        self.gotrue = Some(code);
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            description,
        )
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidGrant,
            description,
        )
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedGrantType,
            "grant_type must be \"password\" or \"refresh_token\"",
        )
    }

    pub fn batch_too_large(max: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BatchTooLarge,
            format!("a push may carry at most {max} mutations"),
        )
    }

    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            description,
        )
    }

    /// A valid token of an account that has since been deleted.
    pub fn account_gone() -> Self {
        Self::unauthorized("the account no longer exists")
    }

    pub fn token_expired() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::TokenExpired,
            "the access token has expired",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
    }

    /// An admin route naming a user (by id or email) that does not exist.
    pub fn unknown_user() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such user")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "this route does not take this method",
        )
    }

    pub fn cursor_expired() -> Self {
        Self::new(
            StatusCode::GONE,
            ErrorCode::CursorExpired,
            "the cursor predates purged tombstones; pull again from null",
        )
    }

    pub fn payload_too_large(max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the body is over {max} bytes"),
        )
    }

    /// The body did not arrive within the server's body read timeout.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            "the request body took too long to arrive",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "the body must be application/json",
        )
    }

    pub fn user_already_exists() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::UserAlreadyExists,
            "an account with this email exists",
        )
    }

    /// A password shorter than `min_chars` characters.
    pub fn weak_password(min_chars: usize) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::WeakPassword,
            format!("the password must have at least {min_chars} characters"),
        )
    }

    pub fn validation_failed(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            description,
        )
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
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
                ErrorCode::RateLimited,
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
                ErrorCode::ServerBusy,
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
                ErrorCode::RateLimited,
                "too many open event streams for this account; close one first",
            )
        }
    }

    /// Sync is paused (globally or for this user); try again in `retry_after_secs`.
    pub fn sync_paused_for(retry_after_secs: i64) -> Self {
        Self {
            retry_after: Some(u64::try_from(retry_after_secs).unwrap_or(1).max(1)),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::SyncPaused,
                "sync is paused by the operator",
            )
        }
    }

    /// A space or invitation the caller cannot see: unknown, or the caller is not a member (the
    /// same answer either way, so a non-member learns nothing).
    pub fn space_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such space or invitation",
        )
    }

    /// A member whose role does not allow the management call.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "your role in this space does not allow this",
        )
    }

    /// The call would leave the space without an owner.
    pub fn last_owner() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            ErrorCode::LastOwner,
            "a space keeps at least one owner: make another member owner first, or delete the space",
        )
    }

    /// Inviting someone who is a member already.
    pub fn already_member() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            ErrorCode::AlreadyMember,
            "this account is a member of the space already",
        )
    }

    /// A limit on spaces per user, members per space or pending invitations per space.
    pub fn limit_reached(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::LimitReached, description)
    }

    /// The server itself failed. The cause goes to the log (never a secret or a document: the
    /// causes are storage and task failures), not to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
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
        let parts = ErrorParts {
            status: self.status,
            code: self.code.clone(),
            description: self.description.clone(),
            gotrue: self.gotrue,
        };
        let body = ErrorBody {
            error: self.code.clone(),
            error_description: self.description,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            // The body was left unread, so the connection cannot carry another request: say so,
            // or a client may send its next request on a connection the server is closing.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        // For the request log line, and `/auth/v1`'s GoTrue-shaped body.
        response.extensions_mut().insert(self.code);
        response.extensions_mut().insert(parts);
        response
    }
}
