//! Command-line flags and their `TANDEM_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// The sample schema shipped in the repo, used when no `--schema` is given.
pub const SAMPLE_SCHEMA: &str = include_str!("../../schemas/sample.json");

/// How the server runs. Every flag also reads `TANDEM_<NAME>` from the environment; prefer the
/// environment for `--jwt-secret` so the secret never shows in the process list.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tandem-server",
    version,
    about = "Tandem's reference sync server"
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TANDEM_ADDR", default_value = "127.0.0.1:8787")]
    pub addr: SocketAddr,

    /// Database: `sqlite://PATH` or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "TANDEM_DB",
        default_value = "sqlite://tandem-server.db"
    )]
    pub db: String,

    /// Schema document; the sample schema shipped in the repo when absent.
    #[arg(long, global = true, env = "TANDEM_SCHEMA")]
    pub schema: Option<PathBuf>,

    /// HS256 secret for access tokens (and cursors), at least 16 bytes. Give it in the
    /// environment or with `--jwt-secret-file`: a flag's value shows in every process list.
    /// Without either, a server on loopback with SQLite generates one into
    /// `<database>.jwt-secret` (mode 0600); anywhere else it refuses to start.
    #[arg(long, env = "TANDEM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// A file holding the JWT secret (surrounding whitespace ignored).
    #[arg(long, env = "TANDEM_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,

    /// External auth mode: trust the access tokens of an external issuer (Supabase Auth /
    /// GoTrue) and provision each of its users on first use (`sub`, and `email` when the token
    /// has one). HS256 tokens are checked with the JWT secret (give the issuer's:
    /// `GOTRUE_JWT_SECRET`, a Supabase project's "JWT secret"), asymmetric ones with
    /// `--jwks-url`/`--jwks-file`. Implied by either of those.
    #[arg(long, env = "TANDEM_EXTERNAL_AUTH")]
    pub external_auth: bool,

    /// The issuer's JWK set, fetched at start and again for a key id it lacks (e.g.
    /// `https://PROJECT.supabase.co/auth/v1/.well-known/jwks.json`); `https://`, or `http://`
    /// to a loopback address. For RS256/ES256/EdDSA tokens.
    #[arg(long, env = "TANDEM_JWKS_URL", value_parser = parse_jwks_url)]
    pub jwks_url: Option<reqwest13::Url>,

    /// The issuer's JWK set from a file (`{"keys": [...]}`), read at start.
    #[arg(long, env = "TANDEM_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// The audiences (`aud`) an access token may have, comma-separated.
    #[arg(
        long,
        env = "TANDEM_JWT_AUDIENCE",
        value_delimiter = ',',
        default_value = "authenticated"
    )]
    pub jwt_audience: Vec<String>,

    /// Shortest password a sign-up may choose, in characters (GoTrue's default, so an account
    /// moves between the two).
    #[arg(long, env = "TANDEM_MIN_PASSWORD_LENGTH", default_value_t = crate::auth::MIN_PASSWORD_CHARS)]
    pub min_password_length: usize,

    /// Turns the server's own `/auth/v1` (sign-up, sign-in, refresh, logout, user) off: every
    /// route of it answers 404. For external auth mode, where users sign in at the issuer.
    #[arg(long, env = "TANDEM_DISABLE_OWN_AUTH")]
    pub disable_own_auth: bool,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "TANDEM_ACCESS_TOKEN_TTL", default_value_t = 3600)]
    pub access_token_ttl: u64,

    /// Seconds after a refresh token's exchange during which presenting it again (a client whose
    /// answer was lost) yields a new session instead of an error, as long as the token that
    /// exchange handed out is unused.
    #[arg(long, env = "TANDEM_REFRESH_REUSE_GRACE_SECS", default_value_t = 10)]
    pub refresh_reuse_grace_secs: u64,

    /// Largest request body, in bytes.
    #[arg(long, env = "TANDEM_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds a client has to send a request's head (line and headers); also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "TANDEM_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds a client has to send a request's whole body.
    #[arg(long, env = "TANDEM_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,

    /// Largest request head (request line and headers), in bytes; larger ones answer 431.
    #[arg(long, env = "TANDEM_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Open connections at most; connections beyond answer 503 at once. Keep it below the
    /// process's descriptor limit (`ulimit -n`) less what the database needs.
    #[arg(long, env = "TANDEM_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Most mutations one push may carry.
    #[arg(long, env = "TANDEM_MAX_BATCH", default_value_t = tandem_protocol::DEFAULT_MAX_BATCH)]
    pub max_batch: usize,

    /// Event streams one user may hold open at once (each device keeps one).
    #[arg(long, env = "TANDEM_MAX_EVENT_STREAMS_PER_USER", default_value_t = 8)]
    pub max_event_streams_per_user: usize,

    /// Sign-ups per client address per hour.
    #[arg(long, env = "TANDEM_SIGN_UPS_PER_HOUR", default_value_t = 100)]
    pub sign_ups_per_hour: usize,

    /// Password hashes computed at once (each takes 19 MiB); the number of cores when absent.
    /// Sixteen times as many wait their turn; beyond that sign-ins answer 503 `server_busy`.
    #[arg(long, env = "TANDEM_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// The header a reverse proxy in front of the server puts the client's address in (e.g.
    /// `x-forwarded-for`; its last value is used). Without it, the connection's peer is the
    /// client, which behind a proxy is the proxy: set it there, or every sign-up shares one limit.
    #[arg(long, env = "TANDEM_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<axum::http::HeaderName>,

    /// Days tombstones are kept before they are purged.
    #[arg(long, env = "TANDEM_TOMBSTONE_RETENTION_DAYS", default_value_t = 30)]
    pub tombstone_retention_days: u32,

    /// Seconds between purges of old tombstones and old op ids.
    #[arg(long, env = "TANDEM_PURGE_INTERVAL_SECS", default_value_t = 3600)]
    pub purge_interval_secs: u64,

    /// Kill switch at start: stores the global pause (reason "--sync-paused flag", unless a
    /// global pause is stored already), so sync routes answer 503 `sync_paused` while auth keeps
    /// working, until `POST /admin/v1/resume` lifts it (no restart needed).
    #[arg(long, env = "TANDEM_SYNC_PAUSED")]
    pub sync_paused: bool,

    /// A file holding the admin token (surrounding whitespace ignored, at least 32 bytes) that
    /// `/admin/v1` routes (writes to public collections) require. The token can also come from
    /// the environment variable `TANDEM_ADMIN_TOKEN`; never from a flag's value, which shows in
    /// every process list. Without either, `/admin/v1` answers 404.
    #[arg(long, env = "TANDEM_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// The admin token itself, read from `TANDEM_ADMIN_TOKEN` only (there is no flag).
    #[arg(skip = std::env::var("TANDEM_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()))]
    pub admin_token: Option<String>,

    /// Spaces one user may belong to; creating or accepting beyond answers 409 `limit_reached`.
    #[arg(long, env = "TANDEM_MAX_SPACES_PER_USER", default_value_t = 1000)]
    pub max_spaces_per_user: i64,

    /// Members one space may have; accepting an invitation beyond answers 409 `limit_reached`.
    #[arg(long, env = "TANDEM_MAX_SPACE_MEMBERS", default_value_t = 10_000)]
    pub max_space_members: i64,

    /// Pending invitations one space may have; inviting beyond answers 409 `limit_reached`.
    #[arg(long, env = "TANDEM_MAX_INVITATIONS_PER_SPACE", default_value_t = 1000)]
    pub max_invitations_per_space: i64,

    /// Where attachment bytes are kept: `file:///PATH` (a directory), or `s3://BUCKET/PREFIX`
    /// for any S3-compatible store, configured by the usual `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `AWS_ENDPOINT_URL` (MinIO, R2, …;
    /// `AWS_ALLOW_HTTP=true` is accepted for a loopback endpoint only). Absent: the directory
    /// `<database file>.blobs/` next to a SQLite database, `./tandem-blobs/` with PostgreSQL.
    #[arg(long, env = "TANDEM_BLOB_STORE")]
    pub blob_store: Option<String>,

    /// Largest attachment, in bytes; opening a larger upload answers 413 `attachment_too_large`.
    #[arg(long, env = "TANDEM_ATTACHMENT_MAX_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub attachment_max_bytes: u64,

    /// Bytes of attachments one user may hold (what they uploaded or claimed, until the blobs
    /// are collected); beyond it an upload answers 403 `quota_exceeded`.
    #[arg(long, env = "TANDEM_ATTACHMENT_QUOTA_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub attachment_quota_bytes: u64,

    /// Seconds an uploader may read an attachment that no record names yet (so a photo can be
    /// shown before its record is pushed).
    #[arg(long, env = "TANDEM_ATTACHMENT_GRACE_SECS", default_value_t = 86_400)]
    pub attachment_grace_secs: u64,

    /// `AWS_*` settings of an `s3://` blob store given by the embedding program (tests) rather
    /// than the environment; they win over the environment's.
    #[arg(skip)]
    pub blob_store_options: Vec<(String, String)>,

    /// A second listener serving `GET /metrics` (Prometheus text) without a token, for a
    /// scraper on a private network: `HOST:PORT`, or just `PORT` (or `:PORT`) for loopback.
    /// Without it, `/metrics` is served on `--addr` to the admin token only (and not at all
    /// without one).
    #[arg(long, env = "TANDEM_METRICS_ADDR", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<SocketAddr>,

    /// Log lines on stderr: `text` (human-readable) or `json` (one object per line). Levels
    /// come from `RUST_LOG` (default `info`).
    #[arg(long, env = "TANDEM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Default for Config {
    /// The defaults of the flags, ignoring the environment.
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8787)),
            db: "sqlite://tandem-server.db".into(),
            schema: None,
            jwt_secret: None,
            jwt_secret_file: None,
            external_auth: false,
            jwks_url: None,
            jwks_file: None,
            jwt_audience: vec![crate::jwt::AUDIENCE.to_string()],
            disable_own_auth: false,
            min_password_length: crate::auth::MIN_PASSWORD_CHARS,
            access_token_ttl: 3600,
            refresh_reuse_grace_secs: 10,
            max_body_bytes: 4 * 1024 * 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            max_batch: tandem_protocol::DEFAULT_MAX_BATCH,
            max_event_streams_per_user: 8,
            sign_ups_per_hour: 100,
            hash_concurrency: None,
            client_ip_header: None,
            tombstone_retention_days: 30,
            purge_interval_secs: 3600,
            sync_paused: false,
            admin_token_file: None,
            admin_token: None,
            max_spaces_per_user: 1000,
            max_space_members: 10_000,
            max_invitations_per_space: 1000,
            blob_store: None,
            attachment_max_bytes: 100 * 1024 * 1024,
            attachment_quota_bytes: 10 * 1024 * 1024 * 1024,
            attachment_grace_secs: 86_400,
            blob_store_options: Vec::new(),
            metrics_addr: None,
            log_format: LogFormat::Text,
        }
    }
}

/// `--metrics-addr`: `HOST:PORT`, or a port alone (`9090` or `:9090`) for loopback
/// (`127.0.0.1:PORT`): without a host, nothing is served beyond this machine.
fn parse_metrics_addr(value: &str) -> Result<SocketAddr, String> {
    let value = value.trim();
    let port = value.strip_prefix(':').unwrap_or(value);
    if let Ok(port) = port.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    value
        .parse()
        .map_err(|_| format!("{value:?} is neither HOST:PORT (e.g. 10.0.0.5:9090) nor a port"))
}

/// `--jwks-url`: `https://`, or `http://` to a loopback address only (keys fetched in the clear
/// from elsewhere could be anyone's).
fn parse_jwks_url(value: &str) -> Result<reqwest13::Url, String> {
    let url = reqwest13::Url::parse(value.trim()).map_err(|e| format!("not a URL: {e}"))?;
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err("the JWK set URL must be https:// (http:// only to a loopback address)".into()),
    }
}

/// Shortest admin token accepted, in bytes.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

impl Config {
    /// Whether the server trusts an external issuer's tokens (and provisions its users).
    pub fn external_auth(&self) -> bool {
        self.external_auth || self.jwks_url.is_some() || self.jwks_file.is_some()
    }

    /// The admin token: `TANDEM_ADMIN_TOKEN`, else the `--admin-token-file`'s content; `None`
    /// when neither is given. Shorter than [`MIN_ADMIN_TOKEN_LEN`] bytes is an error (the
    /// server refuses to start).
    pub fn admin_token(&self) -> anyhow::Result<Option<String>> {
        let (token, source) = if let Some(token) = &self.admin_token {
            (token.trim().to_string(), "TANDEM_ADMIN_TOKEN")
        } else if let Some(path) = &self.admin_token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read --admin-token-file {}: {e}", path.display())
            })?;
            (text.trim().to_string(), "--admin-token-file")
        } else {
            return Ok(None);
        };
        if token.len() < MIN_ADMIN_TOKEN_LEN {
            anyhow::bail!(
                "the admin token from {source} must have at least {MIN_ADMIN_TOKEN_LEN} bytes"
            );
        }
        Ok(Some(token))
    }

    /// The limits on spaces, members and invitations.
    pub fn space_limits(&self) -> crate::spaces::SpaceLimits {
        crate::spaces::SpaceLimits {
            spaces_per_user: self.max_spaces_per_user.max(1),
            members_per_space: self.max_space_members.max(1),
            invitations_per_space: self.max_invitations_per_space.max(1),
        }
    }

    /// The schema document's text: the file given, or the shipped sample.
    pub fn schema_text(&self) -> anyhow::Result<String> {
        match &self.schema {
            None => Ok(SAMPLE_SCHEMA.to_string()),
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read schema {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metrics_address_alone_is_a_loopback_port() {
        assert_eq!(
            parse_metrics_addr("9090").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 9090))
        );
        assert_eq!(
            parse_metrics_addr("0.0.0.0:9100").unwrap(),
            SocketAddr::from(([0, 0, 0, 0], 9100))
        );
        assert_eq!(
            parse_metrics_addr("[::1]:9100").unwrap(),
            "[::1]:9100".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_metrics_addr(":9090").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 9090))
        );
        assert!(parse_metrics_addr("metrics.local").is_err());
        let config = Config::try_parse_from(["tandem-server", "--metrics-addr", "9464"]).unwrap();
        assert_eq!(
            config.metrics_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
    }

    #[test]
    fn admin_tokens_come_from_the_environment_or_a_file_and_are_long() {
        let mut config = Config::default();
        assert!(config.admin_token().unwrap().is_none());
        config.admin_token = Some("short".into());
        assert!(config.admin_token().is_err());
        config.admin_token = Some(format!(" {} ", "k".repeat(32)));
        assert_eq!(config.admin_token().unwrap(), Some("k".repeat(32)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        std::fs::write(&path, format!("{}\n", "f".repeat(40))).unwrap();
        config.admin_token = None;
        config.admin_token_file = Some(path.clone());
        assert_eq!(config.admin_token().unwrap(), Some("f".repeat(40)));
        std::fs::write(&path, "too short\n").unwrap();
        assert!(config.admin_token().is_err());
        config.admin_token_file = Some(dir.path().join("missing"));
        assert!(config.admin_token().is_err());
    }
}
