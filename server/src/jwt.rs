//! Access tokens: HS256 JWTs with GoTrue's claims. Only HS256 is accepted (so `alg: none` and
//! algorithm confusion are refused), the audience must be `authenticated`, and `exp` gets at most
//! one second of leeway.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use tandem_protocol::AccessClaims;

use crate::error::ApiError;

const AUDIENCE: &str = "authenticated";
/// Seconds past `exp` a token is still accepted (clock skew between instances).
const EXP_LEEWAY_SECS: i64 = 1;

/// Signs and verifies access tokens with the server secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

/// A freshly signed access token.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub expires_at: i64,
}

impl JwtKeys {
    /// Keys for `secret`, issuing tokens valid for `ttl_secs`.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is checked below against the server's clock, not the system's.
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    /// Signs an access token for `user_id` in sign-in `session_id`.
    pub fn issue(
        &self,
        user_id: &str,
        email: &str,
        session_id: &str,
        now_secs: i64,
    ) -> IssuedToken {
        let expires_at = now_secs + self.ttl_secs as i64;
        let claims = AccessClaims {
            sub: user_id.to_string(),
            exp: expires_at,
            iat: now_secs,
            role: AUDIENCE.to_string(),
            aud: AUDIENCE.to_string(),
            email: email.to_string(),
            session_id: session_id.to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a byte secret cannot fail");
        IssuedToken {
            token,
            expires_in: self.ttl_secs,
            expires_at,
        }
    }

    /// Checks signature, algorithm, audience and expiry at `now_secs`; answers `token_expired`
    /// only for a well-signed token whose `exp` has passed (with one second of leeway).
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<AccessClaims, ApiError> {
        match jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation) {
            Ok(data) if data.claims.exp.saturating_add(EXP_LEEWAY_SECS) < now_secs => {
                Err(ApiError::token_expired())
            }
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(ApiError::token_expired())
            }
            Err(_) => Err(ApiError::unauthorized("the access token is invalid")),
        }
    }
}
