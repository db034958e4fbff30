//! Tokens and the session record kept in the secret store. Every type holding a token formats
//! it as `<redacted>` in `Debug`, so a stray `{:?}` cannot leak one.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tandem_protocol::User;

/// An access token (a JWT), sent as `Authorization: Bearer …`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccessToken(String);

impl AccessToken {
    pub(crate) fn new(token: String) -> Self {
        Self(token)
    }

    /// The token itself, to put in a header. Never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// An opaque, single-use refresh token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct RefreshToken(String);

impl RefreshToken {
    pub(crate) fn new(token: String) -> Self {
        Self(token)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// The tokens of a signed-in session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tokens {
    pub access_token: AccessToken,
    pub refresh_token: RefreshToken,
    /// Unix seconds at which the access token expires.
    pub expires_at: i64,
    /// The access token's lifetime as issued, in seconds.
    pub expires_in: u64,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The usual margin before `expires_at` at which the access token is refreshed.
const REFRESH_MARGIN_SECS: u64 = crate::defaults::REFRESH_MARGIN.as_secs();

impl Tokens {
    /// Whether the access token should be refreshed before use: within 60 s of its expiry, or
    /// within half its lifetime for tokens issued for less than two minutes (so a short-lived
    /// token is not refreshed on every single use).
    pub fn needs_refresh(&self, now: i64) -> bool {
        let margin = REFRESH_MARGIN_SECS.min(self.expires_in / 2) as i64;
        now >= self.expires_at.saturating_sub(margin)
    }

    /// Whether the access token has expired.
    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// A signed-in user and their tokens, as answered by the auth server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedInSession {
    pub user: User,
    pub tokens: Tokens,
}

/// What the secret store holds for a data directory: the user, and the tokens while the session
/// lives (`None` once it expired, so the user — and whose data this is — survives a restart).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredSession {
    /// Format version of this record.
    pub v: u32,
    pub user: User,
    pub tokens: Option<Tokens>,
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("user", &self.user)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl StoredSession {
    pub const VERSION: u32 = 1;

    /// Encodes the record for the secret store.
    pub fn encode(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes a record; `None` when it is damaged or of an unknown version.
    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_str::<Self>(text)
            .ok()
            .filter(|s| s.v == Self::VERSION)
    }
}

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(expires_at: i64, expires_in: u64) -> Tokens {
        Tokens {
            access_token: AccessToken::new("access-secret".into()),
            refresh_token: RefreshToken::new("refresh-secret".into()),
            expires_at,
            expires_in,
        }
    }

    #[test]
    fn refresh_within_sixty_seconds_or_half_a_short_lifetime() {
        let t = tokens(10_000, 3600);
        assert!(!t.needs_refresh(10_000 - 61));
        assert!(t.needs_refresh(10_000 - 60));
        let short = tokens(10_000, 2);
        assert!(!short.needs_refresh(9_998));
        assert!(short.needs_refresh(9_999));
        assert!(short.expired(10_000) && !short.expired(9_999));
    }

    #[test]
    fn records_round_trip_and_never_print_tokens() {
        let user = User {
            id: "u1".into(),
            email: "a@b.c".into(),
            created_at: "2025-01-01T00:00:00Z".into(),
        };
        let stored = StoredSession {
            v: StoredSession::VERSION,
            user,
            tokens: Some(tokens(5, 5)),
        };
        assert_eq!(
            StoredSession::decode(&stored.encode()),
            Some(stored.clone())
        );
        let debug = format!("{stored:?}");
        assert!(
            !debug.contains("access-secret") && !debug.contains("refresh-secret"),
            "{debug}"
        );
        assert_eq!(StoredSession::decode("{not json"), None);
        assert_eq!(
            StoredSession::decode(&stored.encode().replace("\"v\":1", "\"v\":99")),
            None
        );
    }
}
