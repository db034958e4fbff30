//! The HTTP client the engine talks to the auth and sync servers with.
//!
//! # TLS
//! reqwest over rustls, verifying certificates with `rustls-platform-verifier`: the system trust
//! store and revocation policy on iOS, macOS, Android and Windows (user-installed and MDM roots
//! included), and the system CA bundle through `rustls-native-certs` plus webpki on Linux.
//!
//! The crypto provider is **ring**, passed explicitly to the `ClientConfig` (never installed as
//! the process default, so an app that installs another provider is unaffected). ring builds
//! with nothing but the platform C compiler and ships assembly for aarch64/armv7/x86_64/i686, so
//! `cargo ndk` for the four Android ABIs and the iOS device and simulator targets cross-compile
//! with the toolchains those builds already need. aws-lc-rs (reqwest's default) wants CMake, and
//! bindgen/libclang for targets without pre-generated bindings, inside every NDK/Xcode build,
//! and has had recurring Android/iOS cross-build breakage; its advantages (FIPS, post-quantum key
//! exchange by default) do not matter for a sync client. reqwest is built with
//! `rustls-no-provider`, so aws-lc is not even compiled.
//!
//! # Android initialisation
//! On Android the verifier calls into the JVM (`CertificateVerifier` from the Kotlin component
//! `rustls:rustls-platform-verifier`, shipped inside the `rustls-platform-verifier-android`
//! crate as a local Maven repository that the app's Gradle build adds; see that crate's README).
//! Before the first request, native code must receive the JVM and the application `Context`
//! once per process:
//!
//! ```ignore
//! // in a JNI entry point the app calls from Application.onCreate(), e.g.
//! // Java_dev_tandem_Tandem_initAndroid(env, _class, context):
//! rustls_platform_verifier::android::init_with_env(&mut env, context)?;
//! ```
//!
//! Until then building the client fails with [`HttpError::Config`] instead of panicking.
//!
//! # Errors and secrets
//! Failures are typed ([`HttpError`]): network (connect, timeout, I/O: "offline"), an HTTP error
//! status with the protocol's code and description in either body shape
//! (`{"error","error_description"}` or GoTrue's `{"error_code"|"code","msg"}`) and `Retry-After`,
//! or a body that cannot be read or decoded. Bearer tokens and the API key travel in headers
//! marked sensitive; no error, `Debug` output or log line carries them or a body's values.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tandem_protocol::ErrorCode;

/// Longest server error description kept in an error, in characters.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// Where the servers are and how to reach them.
#[derive(Clone)]
pub struct HttpConfig {
    /// Base URL of the server; auth lives at `{server_url}/auth/v1`, sync at `{server_url}/sync/v1`.
    pub server_url: String,
    /// Overrides the auth base (e.g. a Supabase project's `https://x.supabase.co/auth/v1`).
    pub auth_url: Option<String>,
    /// Overrides the sync base (e.g. a sync function hosted elsewhere).
    pub sync_url: Option<String>,
    /// Sent as the `apikey` header on every request (Supabase needs it).
    pub api_key: Option<String>,
    /// Allows plain `http://` to hosts other than loopback. For development only.
    pub allow_insecure_http: bool,
    /// Longest a whole request/response exchange may take (not applied to streams).
    pub request_timeout: Duration,
    /// Longest establishing a connection (TCP and TLS) may take.
    pub connect_timeout: Duration,
}

impl HttpConfig {
    /// A configuration for `server_url` with the default timeouts
    /// ([`crate::defaults::REQUEST_TIMEOUT`], [`crate::defaults::CONNECT_TIMEOUT`]) and no
    /// overrides.
    pub fn new(server_url: impl Into<String>) -> Self {
        Self {
            server_url: server_url.into(),
            auth_url: None,
            sync_url: None,
            api_key: None,
            allow_insecure_http: false,
            request_timeout: crate::defaults::REQUEST_TIMEOUT,
            connect_timeout: crate::defaults::CONNECT_TIMEOUT,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("server_url", &self.server_url)
            .field("auth_url", &self.auth_url)
            .field("sync_url", &self.sync_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// What kind of network failure happened; all of them mean "offline or unreachable".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkErrorKind {
    /// No connection could be made (DNS, refused, unreachable, TLS handshake).
    Connect,
    /// Connecting or the exchange took longer than its timeout.
    Timeout,
    /// The connection failed while the request was under way.
    Io,
}

/// A failed HTTP exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The configuration cannot be used (bad URL, insecure HTTP refused, TLS setup failed).
    #[error("configuration: {0}")]
    Config(String),

    /// The server could not be reached or the connection failed.
    #[error("network ({kind:?}): {message}")]
    Network {
        kind: NetworkErrorKind,
        message: String,
    },

    /// The server answered with an error status.
    #[error("HTTP {status}{}", status_suffix(.code, .description))]
    Status {
        status: u16,
        /// The protocol error code (`error`, `error_code` or a string `code`).
        code: Option<String>,
        /// The human-readable text (`error_description` or `msg`), shortened.
        description: Option<String>,
        /// `Retry-After`, in seconds from now.
        retry_after_secs: Option<u64>,
    },

    /// The body could not be read to its end, or is not the JSON expected.
    #[error("undecodable response (HTTP {status}): {message}")]
    Body { status: u16, message: String },
}

/// ` code: description` for the `Display` of a status error, each part only when known.
fn status_suffix(code: &Option<String>, description: &Option<String>) -> String {
    let mut text = String::new();
    if let Some(code) = code {
        text.push(' ');
        text.push_str(code);
    }
    if let Some(description) = description {
        text.push_str(": ");
        text.push_str(description);
    }
    text
}

impl HttpError {
    /// Whether this is a network failure: the device is offline or the server unreachable.
    pub fn is_offline(&self) -> bool {
        matches!(self, Self::Network { .. })
    }

    /// The HTTP status, for `Status` and `Body` errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Body { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The protocol error code of a `Status` error (`token_expired`, `invalid_grant` …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// [`code`](Self::code), typed.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code().map(ErrorCode::from)
    }

    /// `Retry-After` of a `Status` error, in seconds.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Status {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        }
    }

    /// Whether this is a 401 `token_expired`, after which one refresh and retry is due.
    pub fn is_token_expired(&self) -> bool {
        self.status() == Some(401) && self.error_code() == Some(ErrorCode::TokenExpired)
    }

    /// Whether the access token was refused: 401 `token_expired`, or 401 `unauthorized` (a
    /// token the server no longer takes before its `exp`: the operator revoked the user's
    /// sessions, or the account is gone; RFC 6750's `invalid_token` covers both). One refresh
    /// and retry is due; a refresh the server refuses ends the session.
    pub fn is_token_refused(&self) -> bool {
        self.status() == Some(401)
            && matches!(
                self.error_code(),
                Some(ErrorCode::TokenExpired | ErrorCode::Unauthorized)
            )
    }
}

/// The auth and sync bases, checked and without trailing slashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub auth: String,
    pub sync: String,
}

impl Endpoints {
    /// Resolves the bases of `config` and refuses insecure ones.
    pub fn resolve(config: &HttpConfig) -> Result<Self, HttpError> {
        let base = |url: &str| url.trim().trim_end_matches('/').to_string();
        let derived = |suffix: &str| -> Result<String, HttpError> {
            // Checked on its own first: "https://" + "/auth/v1" would parse with host "auth".
            check_base(&config.server_url, config.allow_insecure_http)?;
            Ok(format!("{}{suffix}", base(&config.server_url)))
        };
        let auth = match &config.auth_url {
            Some(url) => base(url),
            None => derived("/auth/v1")?,
        };
        let sync = match &config.sync_url {
            Some(url) => base(url),
            None => derived("/sync/v1")?,
        };
        check_base(&auth, config.allow_insecure_http)?;
        check_base(&sync, config.allow_insecure_http)?;
        Ok(Self { auth, sync })
    }
}

/// Refuses a base that is not an absolute `https://` URL, or `http://` to loopback (or to any
/// host when `allow_insecure` is set). Tokens and passwords must never cross a network in clear.
fn check_base(base: &str, allow_insecure: bool) -> Result<(), HttpError> {
    let url = Url::parse(base)
        .map_err(|e| HttpError::Config(format!("invalid server URL {base:?}: {e}")))?;
    if url.cannot_be_a_base() || url.host_str().is_none_or(str::is_empty) {
        return Err(HttpError::Config(format!(
            "invalid server URL {base:?}: no host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(HttpError::Config(format!(
            "invalid server URL {base:?}: no query or fragment allowed"
        )));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure || is_loopback(&url) => Ok(()),
        "http" => Err(HttpError::Config(format!(
            "refusing plain http:// to {}: use https://, or allow insecure HTTP explicitly (development only)",
            url.host_str().unwrap_or_default()
        ))),
        other => Err(HttpError::Config(format!("unsupported URL scheme {other:?} in {base:?}"))),
    }
}

/// 127.0.0.0/8, ::1 (and IPv4-mapped loopback) and `localhost`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            IpAddr::V6(ip).is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// A configured client. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    endpoints: Arc<Endpoints>,
    api_key: Option<HeaderValue>,
    request_timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("endpoints", &self.endpoints)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl HttpClient {
    /// Builds a client for `config`: checks the URLs, sets up TLS with the platform verifier.
    pub fn new(config: &HttpConfig) -> Result<Self, HttpError> {
        let endpoints = Endpoints::resolve(config)?;
        let api_key = match &config.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(key).map_err(|_| {
                    HttpError::Config("the API key has characters not allowed in a header".into())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                HttpError::Config(format!("building the HTTP client: {}", error_chain(&e)))
            })?;
        Ok(Self {
            client,
            endpoints: Arc::new(endpoints),
            api_key,
            request_timeout: config.request_timeout,
        })
    }

    /// The resolved auth and sync bases.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// `{auth base}{path}`; `path` starts with `/` (e.g. `/token?grant_type=password`).
    pub fn auth_url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoints.auth)
    }

    /// `{sync base}{path}`; `path` starts with `/` (e.g. `/push`).
    pub fn sync_url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoints.sync)
    }

    /// A request with the API key and bearer token set and no overall timeout, for streams (the
    /// SSE events route); everything else should use the helpers below, which time out.
    pub fn request(&self, method: Method, url: &str, bearer: Option<&str>) -> RequestBuilder {
        let mut request = self.client.request(method, url);
        if let Some(key) = &self.api_key {
            request = request.header("apikey", key.clone());
        }
        if let Some(token) = bearer {
            // `bearer_auth` marks the header sensitive, so it is never printed.
            request = request.bearer_auth(token);
        }
        request
    }

    /// POSTs `body` as JSON and decodes a JSON answer.
    pub async fn post_json<B, T>(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &B,
    ) -> Result<T, HttpError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let request = self.json_request(Method::POST, url, bearer, body)?;
        let (status, bytes) = self.exchange(request).await?;
        decode_json(status, &bytes)
    }

    /// GETs and decodes a JSON answer.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, HttpError> {
        let request = self
            .request(Method::GET, url, bearer)
            .timeout(self.request_timeout);
        let (status, bytes) = self.exchange(request).await?;
        decode_json(status, &bytes)
    }

    /// POSTs without a body and ignores the answer's body (e.g. logout's `204`).
    pub async fn post_empty(&self, url: &str, bearer: Option<&str>) -> Result<(), HttpError> {
        let request = self
            .request(Method::POST, url, bearer)
            .timeout(self.request_timeout);
        self.exchange(request).await.map(|_| ())
    }

    fn json_request<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        body: &B,
    ) -> Result<RequestBuilder, HttpError> {
        // Serialising ourselves keeps reqwest's `json` feature (and its error texts) out.
        let bytes = serde_json::to_vec(body).map_err(|e| {
            HttpError::Config(format!("encoding the request body: {}", describe_serde(&e)))
        })?;
        Ok(self
            .request(method, url, bearer)
            .timeout(self.request_timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(bytes))
    }

    /// Sends `request` and reads the whole body; an error status becomes [`HttpError::Status`].
    pub async fn exchange(
        &self,
        request: RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), HttpError> {
        let response = request.send().await.map_err(network_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = read_body(response).await?;
        if status.is_success() {
            Ok((status, bytes))
        } else {
            Err(status_error(status, &headers, &bytes))
        }
    }
}

/// The rustls configuration: ring, safe protocol versions, the platform verifier, HTTP/1.1.
fn tls_config() -> Result<rustls::ClientConfig, HttpError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |e: rustls::Error| HttpError::Config(format!("setting up TLS: {e}"));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_platform_verifier()
        .map_err(tls_error)?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads the whole body. A body cut off by the connection (a reset, an early close, a timeout)
/// is a network failure like one before the answer: the device retries, it is not the server's
/// fault. Only a body that arrived whole and is not what was expected is `Body`.
async fn read_body(response: Response) -> Result<Vec<u8>, HttpError> {
    response
        .bytes()
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(network_error)
}

/// Classifies a reqwest failure to send or receive.
pub(crate) fn network_error(e: reqwest::Error) -> HttpError {
    let kind = if e.is_timeout() {
        NetworkErrorKind::Timeout
    } else if e.is_connect() {
        NetworkErrorKind::Connect
    } else {
        NetworkErrorKind::Io
    };
    HttpError::Network {
        kind,
        message: error_chain(&e),
    }
}

/// An error and its sources, `: `-joined (reqwest's own text hides the useful part, e.g.
/// "connection refused", in a source). URLs carry no secrets: tokens travel in headers and bodies.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// Decodes a successful answer's JSON body.
pub(crate) fn decode_json<T: DeserializeOwned>(
    status: StatusCode,
    bytes: &[u8],
) -> Result<T, HttpError> {
    serde_json::from_slice(bytes).map_err(|e| HttpError::Body {
        status: status.as_u16(),
        message: describe_serde(&e),
    })
}

/// What went wrong decoding, without serde's text: that can quote a value from the body, and a
/// body may hold a token.
fn describe_serde(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof => "the JSON ends early (truncated body)",
        Category::Syntax => "the body is not valid JSON",
        Category::Data => "the JSON does not have the expected fields or types",
        Category::Io => "the body could not be read",
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

/// Builds the error for a non-success answer from its headers and body.
pub(crate) fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> HttpError {
    let (code, description) = parse_error_body(body);
    HttpError::Status {
        status: status.as_u16(),
        code,
        description,
        retry_after_secs: retry_after(headers),
    }
}

/// The code and description of an error body in either shape: the protocol's
/// `{"error", "error_description"}` or GoTrue's `{"error_code" (or a string "code"), "msg"}`.
/// Anything else (HTML from a proxy, garbage, wrong types) gives `(None, None)`.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let code = text("error")
        .or_else(|| text("error_code"))
        .or_else(|| text("code"))
        .map(str::to_string);
    let description = text("error_description")
        .or_else(|| text("msg"))
        .or_else(|| text("message"))
        .map(|d| d.chars().take(MAX_DESCRIPTION_CHARS).collect());
    (code, description)
}

/// `Retry-After` as seconds from now: delta-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> HttpConfig {
        HttpConfig::new(url)
    }

    #[test]
    fn bases_derive_from_server_url_and_can_be_overridden() {
        let e = Endpoints::resolve(&config("https://api.example.com/")).unwrap();
        assert_eq!(e.auth, "https://api.example.com/auth/v1");
        assert_eq!(e.sync, "https://api.example.com/sync/v1");
        let mut c = config("https://api.example.com");
        c.auth_url = Some("https://x.supabase.co/auth/v1/".into());
        c.sync_url = Some("https://fn.example.net/tandem".into());
        let e = Endpoints::resolve(&c).unwrap();
        assert_eq!(e.auth, "https://x.supabase.co/auth/v1");
        assert_eq!(e.sync, "https://fn.example.net/tandem");
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://127.8.9.10",
            "http://localhost:1",
            "http://[::1]:80",
            "http://LOCALHOST",
        ] {
            assert!(Endpoints::resolve(&config(ok)).is_ok(), "{ok}");
        }
        for refused in [
            "http://example.com",
            "http://10.0.0.1",
            "http://192.168.1.2:8787",
            "http://localhost.evil.com",
            "http://[::2]",
        ] {
            let err = Endpoints::resolve(&config(refused)).unwrap_err();
            assert!(
                matches!(err, HttpError::Config(ref m) if m.contains("http://")),
                "{refused}: {err}"
            );
        }
        let mut allowed = config("http://example.com");
        allowed.allow_insecure_http = true;
        assert!(Endpoints::resolve(&allowed).is_ok());
        // An override is checked too.
        let mut sneaky = config("https://example.com");
        sneaky.sync_url = Some("http://example.com/sync".into());
        assert!(Endpoints::resolve(&sneaky).is_err());
        for bad in [
            "",
            "example.com",
            "ftp://example.com",
            "https://",
            "https://x.com/?a=1",
        ] {
            assert!(
                matches!(Endpoints::resolve(&config(bad)), Err(HttpError::Config(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn both_error_shapes_parse() {
        let ours = br#"{"error":"invalid_grant","error_description":"invalid email or password"}"#;
        assert_eq!(
            parse_error_body(ours),
            (
                Some("invalid_grant".into()),
                Some("invalid email or password".into())
            )
        );
        // GoTrue (Supabase Auth): numeric `code`, string `error_code`, `msg`.
        let gotrue =
            br#"{"code":400,"error_code":"invalid_credentials","msg":"Invalid login credentials"}"#;
        assert_eq!(
            parse_error_body(gotrue),
            (
                Some("invalid_credentials".into()),
                Some("Invalid login credentials".into())
            )
        );
        let older_gotrue =
            br#"{"code":"weak_password","msg":"Password should be at least 6 characters"}"#;
        assert_eq!(
            parse_error_body(older_gotrue).0.as_deref(),
            Some("weak_password")
        );
        for junk in [
            &b"<html>502</html>"[..],
            b"",
            b"[1,2]",
            b"{\"error\":42}",
            b"{\"error\":\"x",
        ] {
            let (code, _) = parse_error_body(junk);
            assert!(code.is_none(), "{:?}", String::from_utf8_lossy(junk));
        }
        let long = format!(
            r#"{{"error":"x","error_description":"{}"}}"#,
            "a".repeat(5000)
        );
        assert_eq!(
            parse_error_body(long.as_bytes()).1.unwrap().len(),
            MAX_DESCRIPTION_CHARS
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("42"));
        assert_eq!(retry_after(&headers), Some(42));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let secs = retry_after(&headers).unwrap();
        assert!((115..=120).contains(&secs), "{secs}");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn bad_bodies_are_typed_errors_that_quote_nothing() {
        #[derive(Debug, serde::Deserialize)]
        struct Session {
            #[allow(dead_code)]
            access_token: String,
        }
        let wrong_type = br#"{"access_token": 12345678}"#;
        let truncated = br#"{"access_token": "secret-tok"#;
        let garbage = b"\xff\xfe not json";
        for body in [&wrong_type[..], truncated, garbage, b""] {
            let err = decode_json::<Session>(StatusCode::OK, body).unwrap_err();
            assert!(matches!(err, HttpError::Body { status: 200, .. }));
            let text = err.to_string();
            assert!(
                !text.contains("secret-tok") && !text.contains("12345678"),
                "{text}"
            );
        }
        let err = decode_json::<Session>(StatusCode::OK, truncated).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn debug_output_hides_the_api_key() {
        let mut c = config("https://example.com");
        c.api_key = Some("anon-key-value".into());
        assert!(!format!("{c:?}").contains("anon-key-value"));
        let client = HttpClient::new(&c).unwrap();
        assert!(!format!("{client:?}").contains("anon-key-value"));
    }

    #[test]
    fn connection_refused_is_offline() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = HttpClient::new(&config(&format!("http://127.0.0.1:{port}"))).unwrap();
        let err = crate::runtime::runtime()
            .block_on(client.get_json::<Value>(&client.auth_url("/user"), None))
            .unwrap_err();
        assert!(err.is_offline(), "{err}");
    }
}
