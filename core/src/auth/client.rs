//! The auth routes (`docs/protocol.md`, GoTrue-compatible): sign-up, the password and refresh
//! grants, and logout. Answers are decoded leniently enough for GoTrue (whose users may lack an
//! email and whose sessions carry more fields) and strictly enough that a wrong-typed or partial
//! answer is an error, never a half-filled session.

use serde::{Deserialize, Serialize};
use tandem_protocol::User;

use crate::auth::error::AuthError;
use crate::auth::tokens::{unix_now, AccessToken, RefreshToken, SignedInSession, Tokens};
use crate::http::{HttpClient, HttpError};

/// Calls the auth server.
#[derive(Debug, Clone)]
pub(crate) struct AuthClient {
    http: HttpClient,
}

/// Body of sign-up and the password grant. No `Debug`: it holds the password.
#[derive(Serialize)]
struct Credentials<'a> {
    email: &'a str,
    password: &'a str,
}

/// Body of the refresh grant. No `Debug`: it holds the token.
#[derive(Serialize)]
struct RefreshBody<'a> {
    refresh_token: &'a str,
}

/// A session as answered. No `Debug`: it holds tokens.
#[derive(Deserialize)]
struct SessionBody {
    access_token: String,
    refresh_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    expires_at: Option<i64>,
    user: UserBody,
}

#[derive(Deserialize)]
struct UserBody {
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

impl SessionBody {
    fn into_session(self) -> Result<SignedInSession, AuthError> {
        let malformed = |what: &str| AuthError::Server {
            status: 200,
            message: format!("the session answered has {what}"),
        };
        if self.access_token.is_empty() || self.refresh_token.is_empty() {
            return Err(malformed("an empty token"));
        }
        if self.user.id.is_empty() {
            return Err(malformed("no user id"));
        }
        let now = unix_now();
        let (expires_at, expires_in) = match (self.expires_at, self.expires_in) {
            (Some(at), Some(secs)) => (at, secs),
            (Some(at), None) => (at, u64::try_from(at.saturating_sub(now)).unwrap_or(0)),
            (None, Some(secs)) => (
                now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
                secs,
            ),
            (None, None) => return Err(malformed("no expiry")),
        };
        Ok(SignedInSession {
            user: User {
                id: self.user.id,
                email: self.user.email.unwrap_or_default(),
                created_at: self.user.created_at.unwrap_or_default(),
            },
            tokens: Tokens {
                access_token: AccessToken::new(self.access_token),
                refresh_token: RefreshToken::new(self.refresh_token),
                expires_at,
                expires_in,
            },
        })
    }
}

impl AuthClient {
    /// A client of the auth routes at `http`'s auth base.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// `POST /signup`: creates the account and signs it in.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<SignedInSession, AuthError> {
        self.post_credentials("/signup", email, password).await
    }

    /// `POST /token?grant_type=password`.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<SignedInSession, AuthError> {
        self.post_credentials("/token?grant_type=password", email, password)
            .await
    }

    /// Posts the credentials to the auth route `path` and decodes the session answered.
    async fn post_credentials(
        &self,
        path: &str,
        email: &str,
        password: &str,
    ) -> Result<SignedInSession, AuthError> {
        let url = self.http.auth_url(path);
        let body = Credentials { email, password };
        let answer: serde_json::Value = self
            .http
            .post_json(&url, None, &body)
            .await
            .map_err(AuthError::from_http)?;
        session_from_value(answer)
    }

    /// `POST /token?grant_type=refresh_token`. The raw HTTP error is returned so the caller can
    /// tell a refused token (the session is over) from a failure worth retrying.
    pub async fn refresh(
        &self,
        refresh_token: &RefreshToken,
    ) -> Result<Result<SignedInSession, AuthError>, HttpError> {
        let url = self.http.auth_url("/token?grant_type=refresh_token");
        let body = RefreshBody {
            refresh_token: refresh_token.as_str(),
        };
        let answer: serde_json::Value = self.http.post_json(&url, None, &body).await?;
        Ok(session_from_value(answer))
    }

    /// `POST /logout?scope=…`: revokes the sign-in `access_token` belongs to (`Local`), or every
    /// sign-in of the user (`Global`). The scope is always sent: GoTrue's default is global.
    pub async fn logout(
        &self,
        access_token: &AccessToken,
        scope: SignOutScope,
    ) -> Result<(), HttpError> {
        let path = format!("/logout?scope={}", scope.as_str());
        self.http
            .post_empty(&self.http.auth_url(&path), Some(access_token.as_str()))
            .await
    }
}

/// What a sign-out revokes on the server (`POST /logout?scope=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOutScope {
    /// This device's sign-in only (`scope=local`).
    Local,
    /// Every sign-in of the user, on every device (`scope=global`).
    Global,
}

impl SignOutScope {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Global => "global",
        }
    }
}

/// Decodes a session; a sign-up answered with a bare user (GoTrue with email confirmation on)
/// gets an error that says so.
pub(crate) fn session_from_value(answer: serde_json::Value) -> Result<SignedInSession, AuthError> {
    let confirmation_pending = answer.get("access_token").is_none() && answer.get("id").is_some();
    match serde_json::from_value::<SessionBody>(answer) {
        Ok(body) => body.into_session(),
        Err(_) if confirmation_pending => Err(AuthError::Server {
            status: 200,
            message: "the account was created but no session was returned (the server requires email confirmation)".into(),
        }),
        // serde's text could quote a token from the body: say only what is wrong.
        Err(_) => Err(AuthError::Server { status: 200, message: "the session answered is malformed".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn huge_expiries_saturate_instead_of_overflowing() {
        let user = json!({"id": "u"});
        for (at, secs) in [
            (json!(i64::MIN), serde_json::Value::Null),
            (json!(i64::MAX), serde_json::Value::Null),
            (serde_json::Value::Null, json!(u64::MAX)),
        ] {
            let mut v = json!({"access_token": "a", "refresh_token": "r", "user": user});
            if !at.is_null() {
                v["expires_at"] = at;
            }
            if !secs.is_null() {
                v["expires_in"] = secs;
            }
            let s = session_from_value(v.clone()).unwrap();
            let _ = s.tokens.needs_refresh(unix_now());
            let _ = s.tokens.expired(unix_now());
        }
    }

    #[test]
    fn sessions_decode_in_both_shapes_and_refuse_partial_ones() {
        let ours = json!({"access_token": "a", "token_type": "bearer", "expires_in": 3600, "expires_at": 1_900_000_000,
                          "refresh_token": "r", "user": {"id": "u", "email": "e@x.y", "created_at": "2025-01-01T00:00:00Z"}});
        let s = session_from_value(ours).unwrap();
        assert_eq!(
            (s.user.id.as_str(), s.tokens.expires_at, s.tokens.expires_in),
            ("u", 1_900_000_000, 3600)
        );
        // GoTrue: extra fields, a phone user without email.
        let gotrue = json!({"access_token": "a", "token_type": "bearer", "expires_in": 3600, "refresh_token": "r",
                            "user": {"id": "u", "aud": "authenticated", "phone": "123", "app_metadata": {}}});
        let s = session_from_value(gotrue).unwrap();
        assert!(s.tokens.expires_at > unix_now());
        for bad in [
            json!({"access_token": 5, "refresh_token": "r", "expires_in": 1, "user": {"id": "u"}}),
            json!({"access_token": "a", "expires_in": 1, "user": {"id": "u"}}),
            json!({"access_token": "", "refresh_token": "r", "expires_in": 1, "user": {"id": "u"}}),
            json!({"access_token": "a", "refresh_token": "r", "user": {"id": "u"}}),
            json!([1, 2, 3]),
        ] {
            assert!(
                matches!(
                    session_from_value(bad.clone()),
                    Err(AuthError::Server { .. })
                ),
                "{bad}"
            );
        }
        let pending = session_from_value(json!({"id": "u", "email": "e@x.y"})).unwrap_err();
        assert!(
            pending.to_string().contains("email confirmation"),
            "{pending}"
        );
    }
}
