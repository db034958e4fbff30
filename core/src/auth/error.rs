//! The typed auth error, and how HTTP failures of the auth routes map onto it in both body
//! shapes (the protocol's `error` codes and GoTrue's `error_code`s).

use crate::auth::secret_store::SecretStoreError;
use crate::http::HttpError;
use tandem_protocol::ErrorCode;

/// Why an auth operation failed. Messages never contain a token or a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong email or password (the server does not say which).
    #[error("invalid email or password")]
    InvalidCredentials,

    /// Sign-up with an email that already has an account.
    #[error("an account with this email already exists")]
    UserExists,

    /// The server refused the password as too weak; the text says why.
    #[error("the password is too weak: {0}")]
    WeakPassword(String),

    /// The server refused the email address.
    #[error("the email address is not valid: {0}")]
    InvalidEmail(String),

    /// Too many attempts; try again after `retry_after_secs` (when the server said).
    #[error("too many attempts{}", .retry_after_secs.map(|s| format!("; retry in {s} s")).unwrap_or_default())]
    RateLimited { retry_after_secs: Option<u64> },

    /// The server could not be reached (offline, timeout, connection lost).
    #[error("network: {message}")]
    Network { message: String },

    /// Any other failure of the server or of its answer (`status` 0: no HTTP status, e.g. the
    /// client could not be configured).
    #[error("server error (HTTP {status}): {message}")]
    Server { status: u16, message: String },

    /// The session ended (its refresh token was refused); sign in again. The user is kept.
    #[error("the session expired; sign in again")]
    SessionExpired,

    /// Nobody is signed in.
    #[error("not signed in")]
    NotSignedIn,

    /// The secure store (keyring) failed.
    #[error("secure store: {0}")]
    SecureStore(String),
}

impl From<SecretStoreError> for AuthError {
    fn from(e: SecretStoreError) -> Self {
        Self::SecureStore(e.to_string())
    }
}

// Our protocol's codes are `ErrorCode`s; GoTrue (Supabase Auth) answers with codes of its own,
// which arrive as `ErrorCode::Other` and are listed here by meaning.

/// GoTrue's code for "wrong email or password" (ours: `invalid_grant`).
const GOTRUE_INVALID_CREDENTIALS: &[&str] = &["invalid_credentials"];
/// GoTrue's codes for "this email has an account" (ours: `user_already_exists`).
const GOTRUE_USER_EXISTS: &[&str] = &["email_exists", "phone_exists"];
/// GoTrue's codes for "bad email address" (ours: `validation_failed`).
const GOTRUE_INVALID_EMAIL: &[&str] = &["email_address_invalid", "invalid_email"];
/// GoTrue's codes of rate limiting (ours: `rate_limited`; any 429 counts too).
const GOTRUE_RATE_LIMITED: &[&str] = &["over_request_rate_limit", "over_email_send_rate_limit"];
/// GoTrue's codes for a dead refresh token (ours: `invalid_grant`).
const GOTRUE_DEAD_REFRESH_TOKEN: &[&str] = &[
    "refresh_token_not_found",
    "refresh_token_already_used",
    "session_not_found",
    "session_expired",
];

/// Whether `code` is `ours`, or one of GoTrue's codes of the same meaning.
fn means(code: Option<&ErrorCode>, ours: ErrorCode, gotrue: &[&str]) -> bool {
    match code {
        Some(ErrorCode::Other(text)) => gotrue.contains(&text.as_str()),
        Some(code) => *code == ours,
        None => false,
    }
}

impl AuthError {
    /// Maps a failure of a sign-up or password sign-in.
    pub(crate) fn from_http(e: HttpError) -> Self {
        match e {
            HttpError::Network { message, .. } => Self::Network { message },
            HttpError::Config(message) => Self::Server { status: 0, message },
            HttpError::Body { status, message } => Self::Server { status, message },
            HttpError::Status {
                status,
                code,
                description,
                retry_after_secs,
            } => Self::from_status(status, code.as_deref(), description, retry_after_secs),
        }
    }

    fn from_status(
        status: u16,
        code: Option<&str>,
        description: Option<String>,
        retry_after_secs: Option<u64>,
    ) -> Self {
        let typed = code.map(ErrorCode::from);
        let is = |ours: ErrorCode, gotrue: &[&str]| means(typed.as_ref(), ours, gotrue);
        let text = description.clone().unwrap_or_default();
        if status == 429 || is(ErrorCode::RateLimited, GOTRUE_RATE_LIMITED) {
            Self::RateLimited { retry_after_secs }
        } else if is(ErrorCode::InvalidGrant, GOTRUE_INVALID_CREDENTIALS) {
            Self::InvalidCredentials
        } else if is(ErrorCode::UserAlreadyExists, GOTRUE_USER_EXISTS)
            || (status == 422 && text.to_lowercase().contains("already registered"))
        {
            // Older GoTrue answers 422 "User already registered" without a code.
            Self::UserExists
        } else if is(ErrorCode::WeakPassword, &[]) {
            Self::WeakPassword(text)
        } else if is(ErrorCode::ValidationFailed, GOTRUE_INVALID_EMAIL) {
            Self::InvalidEmail(text)
        } else {
            let message = match (code, description) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(code), None) => code.to_string(),
                (None, Some(text)) => text,
                (None, None) => "no error details".to_string(),
            };
            Self::Server { status, message }
        }
    }

    /// Whether a refresh failure means the refresh token is dead (unknown, revoked, reused), as
    /// opposed to a failure worth retrying.
    pub(crate) fn refresh_token_refused(e: &HttpError) -> bool {
        matches!(
            e,
            HttpError::Status {
                status: 400 | 401 | 403 | 404,
                ..
            }
        ) && means(
            e.error_code().as_ref(),
            ErrorCode::InvalidGrant,
            GOTRUE_DEAD_REFRESH_TOKEN,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_error_body;

    fn status(status: u16, body: &str, retry: Option<u64>) -> AuthError {
        let (code, description) = parse_error_body(body.as_bytes());
        AuthError::from_http(HttpError::Status {
            status,
            code,
            description,
            retry_after_secs: retry,
        })
    }

    #[test]
    fn protocol_codes_map_to_typed_errors() {
        assert_eq!(
            status(
                400,
                r#"{"error":"invalid_grant","error_description":"x"}"#,
                None
            ),
            AuthError::InvalidCredentials
        );
        assert_eq!(
            status(
                422,
                r#"{"error":"user_already_exists","error_description":"x"}"#,
                None
            ),
            AuthError::UserExists
        );
        assert_eq!(
            status(
                422,
                r#"{"error":"weak_password","error_description":"at least 8"}"#,
                None
            ),
            AuthError::WeakPassword("at least 8".into())
        );
        assert!(matches!(
            status(
                422,
                r#"{"error":"validation_failed","error_description":"e"}"#,
                None
            ),
            AuthError::InvalidEmail(_)
        ));
        assert_eq!(
            status(
                429,
                r#"{"error":"rate_limited","error_description":"x"}"#,
                Some(42)
            ),
            AuthError::RateLimited {
                retry_after_secs: Some(42)
            }
        );
    }

    #[test]
    fn gotrue_shapes_map_to_the_same_errors() {
        assert_eq!(
            status(
                400,
                r#"{"code":400,"error_code":"invalid_credentials","msg":"Invalid login credentials"}"#,
                None
            ),
            AuthError::InvalidCredentials
        );
        assert_eq!(
            status(
                422,
                r#"{"code":422,"error_code":"user_already_exists","msg":"User already registered"}"#,
                None
            ),
            AuthError::UserExists
        );
        assert_eq!(
            status(422, r#"{"code":422,"msg":"User already registered"}"#, None),
            AuthError::UserExists
        );
        assert_eq!(
            status(
                422,
                r#"{"code":422,"error_code":"weak_password","msg":"Password should be at least 6 characters."}"#,
                None
            ),
            AuthError::WeakPassword("Password should be at least 6 characters.".into())
        );
        assert!(matches!(
            status(
                400,
                r#"{"code":400,"error_code":"email_address_invalid","msg":"bad"}"#,
                None
            ),
            AuthError::InvalidEmail(_)
        ));
        assert_eq!(
            status(
                429,
                r#"{"code":429,"error_code":"over_request_rate_limit","msg":"slow down"}"#,
                None
            ),
            AuthError::RateLimited {
                retry_after_secs: None
            }
        );
        assert_eq!(
            status(500, "<html>bad gateway</html>", None),
            AuthError::Server {
                status: 500,
                message: "no error details".into()
            }
        );
    }

    #[test]
    fn refused_refresh_tokens_are_recognised() {
        let refused = |code: &str, st: u16| {
            AuthError::refresh_token_refused(&HttpError::Status {
                status: st,
                code: Some(code.into()),
                description: None,
                retry_after_secs: None,
            })
        };
        assert!(refused("invalid_grant", 400));
        assert!(refused("refresh_token_already_used", 400));
        assert!(!refused("server_error", 500));
        assert!(!refused("invalid_grant", 500));
        assert!(!AuthError::refresh_token_refused(&HttpError::Network {
            kind: crate::http::NetworkErrorKind::Connect,
            message: "refused".into()
        }));
    }
}
