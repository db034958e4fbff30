//! Access tokens: JWTs with GoTrue's claims.
//!
//! The server signs its own tokens (its `/auth/v1`) with HS256 and the server secret. It accepts
//! HS256 tokens signed with that secret — its own, or an external issuer's (Supabase Auth /
//! GoTrue) when the secret is the issuer's — and, when a JWK set is configured (`--jwks-url` or
//! `--jwks-file`), tokens signed with one of its asymmetric keys (RS256/384/512, PS256/384/512,
//! ES256/384, EdDSA: what current Supabase projects sign with). The algorithm comes from the
//! token's header but must match the key (so `alg: none` and algorithm confusion are refused: an
//! HS256 token is only ever checked against the secret, an asymmetric one only against the JWK
//! set). The audience must be one of the configured ones (`authenticated` by default), `sub` and
//! `exp` must be present, and `exp` gets at most one second of leeway. A token whose `role` is
//! `anon`, `service_role` or `supabase_admin` names no user and is refused.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use tandem_protocol::AccessClaims;

use crate::error::ApiError;

/// The audience of the tokens this server issues, and the default of those it accepts.
pub const AUDIENCE: &str = "authenticated";
/// Seconds past `exp` a token is still accepted (clock skew between instances).
const EXP_LEEWAY_SECS: i64 = 1;
/// Roles of tokens that name no user (Supabase's API keys and its admin): refused.
const NON_USER_ROLES: [&str; 3] = ["anon", "service_role", "supabase_admin"];

/// Signs and verifies access tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: u64,
    audiences: Vec<String>,
    jwks: Option<Jwks>,
}

/// A freshly signed access token.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub expires_at: i64,
}

/// The claims of the tokens this server issues: the protocol's, and GoTrue's `aal`, `amr` and
/// `is_anonymous` (a password sign-in, one factor; `amr`'s time is the token's issue, where
/// GoTrue keeps the sign-in's across refreshes).
#[derive(serde::Serialize)]
struct IssuedClaims {
    #[serde(flatten)]
    claims: AccessClaims,
    aal: &'static str,
    amr: [Amr; 1],
    is_anonymous: bool,
}

#[derive(serde::Serialize)]
struct Amr {
    method: &'static str,
    timestamp: i64,
}

/// The claims read from a token: lenient about what an external issuer may leave out (only `sub`,
/// `exp` and `aud` are required; GoTrue omits `session_id` in some tokens).
#[derive(Deserialize)]
struct TokenClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: i64,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
}

impl JwtKeys {
    /// Keys for `secret` that also accept the tokens signed by a key of `jwks`, with an audience
    /// among `audiences` (`authenticated` when empty).
    pub fn with_issuers(
        secret: &[u8],
        ttl_secs: u64,
        audiences: Vec<String>,
        jwks: Option<Jwks>,
    ) -> Self {
        let audiences = if audiences.is_empty() {
            vec![AUDIENCE.to_string()]
        } else {
            audiences
        };
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_secs,
            audiences,
            jwks,
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
        let claims = IssuedClaims {
            claims: AccessClaims {
                sub: user_id.to_string(),
                exp: expires_at,
                iat: now_secs,
                role: AUDIENCE.to_string(),
                aud: AUDIENCE.to_string(),
                email: email.to_string(),
                session_id: session_id.to_string(),
            },
            aal: "aal1",
            amr: [Amr {
                method: "password",
                timestamp: now_secs,
            }],
            is_anonymous: false,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a byte secret cannot fail");
        IssuedToken {
            token,
            expires_in: self.ttl_secs,
            expires_at,
        }
    }

    /// Checks signature, algorithm, audience, role and expiry at `now_secs`; answers
    /// `token_expired` only for a well-signed token whose `exp` has passed (with one second of
    /// leeway). Missing `email` and `session_id` read as empty, a missing `iat` as 0.
    pub async fn verify(&self, token: &str, now_secs: i64) -> Result<AccessClaims, ApiError> {
        let invalid = || ApiError::unauthorized("the access token is invalid");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let claims = match header.alg {
            Algorithm::HS256 => self.decode(token, &self.decoding, Algorithm::HS256)?,
            Algorithm::HS384 | Algorithm::HS512 => return Err(invalid()),
            alg => {
                let Some(jwks) = &self.jwks else {
                    tracing::info!(
                        ?alg,
                        "an asymmetric token without --jwks-url or --jwks-file"
                    );
                    return Err(invalid());
                };
                let keys = jwks.keys_for(header.kid.as_deref(), alg).await;
                if keys.is_empty() {
                    tracing::info!(?alg, kid = ?header.kid, "no key of the JWK set for a token");
                    return Err(invalid());
                }
                let mut last = invalid();
                let mut verified = None;
                for key in &keys {
                    match self.decode(token, key, alg) {
                        Ok(claims) => {
                            verified = Some(claims);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                verified.ok_or(last)?
            }
        };
        if claims.exp.saturating_add(EXP_LEEWAY_SECS) < now_secs {
            return Err(ApiError::token_expired());
        }
        let role = claims.role.unwrap_or_else(|| AUDIENCE.to_string());
        if NON_USER_ROLES.contains(&role.as_str()) {
            tracing::info!(role = %role, "a token of a role that names no user");
            return Err(invalid());
        }
        if !tandem_protocol::is_valid_id(&claims.sub) {
            tracing::info!("a token whose sub is not a valid id");
            return Err(invalid());
        }
        Ok(AccessClaims {
            sub: claims.sub,
            exp: claims.exp,
            iat: claims.iat,
            role,
            aud: self.audiences[0].clone(),
            email: claims.email.unwrap_or_default(),
            session_id: claims.session_id.unwrap_or_default(),
        })
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
    ) -> Result<TokenClaims, ApiError> {
        let mut validation = Validation::new(alg);
        // `exp` is checked by the caller against the server's clock, not the system's.
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        match jsonwebtoken::decode::<TokenClaims>(token, key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(ApiError::token_expired())
            }
            Err(e) => {
                if matches!(e.kind(), ErrorKind::InvalidAudience) {
                    tracing::info!("a token for another audience (see --jwt-audience)");
                }
                Err(ApiError::unauthorized("the access token is invalid"))
            }
        }
    }
}

/// Where a JWK set comes from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// Fetched (`GET`), at start, then again for a key id it lacks (at most every
    /// [`JWKS_MIN_REFETCH`]) and once it is older than [`JWKS_MAX_AGE`].
    Url(reqwest13::Url),
    /// Read once, at start.
    File(PathBuf),
}

/// A JWK set is fetched again for an unknown key id at most this often.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);
/// A fetched JWK set is fetched again once older than this (keys the issuer removed go).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(600);

/// One asymmetric key of the set.
struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    decoding: DecodingKey,
}

/// The asymmetric keys of an external issuer.
pub struct Jwks {
    source: JwksSource,
    client: Option<reqwest13::Client>,
    keys: RwLock<Vec<Key>>,
    /// When the set was last fetched, and last tried; one fetch at a time.
    fetches: tokio::sync::Mutex<Fetches>,
}

#[derive(Default)]
struct Fetches {
    /// The last fetch that succeeded.
    loaded_at: Option<Instant>,
    /// The last fetch tried, whatever came of it.
    tried_at: Option<Instant>,
}

impl Jwks {
    /// The set of `source`, loaded now: a file that cannot be read or parsed is an error (the
    /// server does not start); a URL that cannot be fetched is logged and fetched again when a
    /// token needs it.
    pub async fn load(source: JwksSource) -> anyhow::Result<Self> {
        let client =
            match &source {
                JwksSource::Url(_) => Some(
                    reqwest13::Client::builder()
                        .tls_backend_preconfigured(crate::admin_cli::tls_config().map_err(|e| {
                            anyhow::anyhow!("cannot set up TLS for --jwks-url: {e:?}")
                        })?)
                        .connect_timeout(Duration::from_secs(5))
                        .timeout(Duration::from_secs(10))
                        .user_agent(concat!("tandem-server/", env!("CARGO_PKG_VERSION")))
                        .build()?,
                ),
                JwksSource::File(_) => None,
            };
        let jwks = Self {
            source,
            client,
            keys: RwLock::new(Vec::new()),
            fetches: tokio::sync::Mutex::new(Fetches::default()),
        };
        match jwks.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "loaded the JWK set");
                *jwks.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
                // Not `tried_at`: the first token naming a key this set lacks fetches it again at
                // once (a key published just after the start).
                jwks.fetches.lock().await.loaded_at = Some(Instant::now());
            }
            Err(e) => match &jwks.source {
                JwksSource::File(path) => {
                    anyhow::bail!("cannot load --jwks-file {}: {e}", path.display())
                }
                JwksSource::Url(_) => {
                    tracing::warn!(error = %e, "cannot fetch the JWK set of --jwks-url; retrying when a token needs it")
                }
            },
        }
        Ok(jwks)
    }

    /// The keys that may have signed a token with `kid` and `alg`: the key of that id (every
    /// key when the token names none) whose algorithm, when the key states one, is `alg`. A URL's
    /// set is fetched again first when it is older than [`JWKS_MAX_AGE`] or has no such key, at
    /// most once per [`JWKS_MIN_REFETCH`] (an unknown key id cannot make the server hammer the
    /// issuer); a failed fetch keeps the keys there were.
    async fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
        if let JwksSource::Url(_) = self.source {
            let mut fetches = self.fetches.lock().await;
            let stale = fetches
                .loaded_at
                .is_none_or(|at| at.elapsed() > JWKS_MAX_AGE);
            let may_try = fetches
                .tried_at
                .is_none_or(|at| at.elapsed() >= JWKS_MIN_REFETCH);
            if may_try && (stale || self.matching(kid, alg).is_empty()) {
                fetches.tried_at = Some(Instant::now());
                match self.fetch().await {
                    Ok(keys) => {
                        tracing::info!(keys = keys.len(), "fetched the JWK set");
                        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
                        fetches.loaded_at = Some(Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot fetch the JWK set; keeping the keys there were")
                    }
                }
            }
        }
        self.matching(kid, alg)
    }

    fn matching(&self, kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.alg.is_none_or(|a| a == alg))
            .map(|k| k.decoding.clone())
            .collect()
    }

    async fn fetch(&self) -> anyhow::Result<Vec<Key>> {
        let text = match &self.source {
            JwksSource::File(path) => std::fs::read_to_string(path)?,
            JwksSource::Url(url) => {
                let client = self.client.as_ref().expect("a URL's set has a client");
                let response = client.get(url.clone()).send().await?;
                let status = response.status();
                if !status.is_success() {
                    anyhow::bail!("GET {url} answered {status}");
                }
                response.text().await?
            }
        };
        parse_jwks(&text)
    }
}

/// The asymmetric keys of a JWK set document (`{"keys": [...]}`); symmetric (`oct`) keys and
/// keys of algorithms this server cannot check are skipped (logged).
fn parse_jwks(text: &str) -> anyhow::Result<Vec<Key>> {
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("not a JWK set ({{\"keys\": [...]}}): {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            tracing::warn!(kid = ?jwk.common.key_id, "skipping a symmetric key of the JWK set (HS256 uses the JWT secret)");
            continue;
        }
        let alg = match jwk.common.key_algorithm {
            Some(a) => match a.to_string().parse::<Algorithm>() {
                Ok(alg) => Some(alg),
                Err(_) => {
                    tracing::warn!(kid = ?jwk.common.key_id, "skipping a key of an unsupported algorithm");
                    continue;
                }
            },
            None => None,
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(decoding) => keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                decoding,
            }),
            Err(e) => {
                tracing::warn!(kid = ?jwk.common.key_id, error = %e, "skipping a key of the JWK set")
            }
        }
    }
    Ok(keys)
}
