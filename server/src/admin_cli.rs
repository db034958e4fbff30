//! `tandem-server admin …`: the operator's command line over the admin API (`/admin/v1`, see
//! docs/protocol.md "Admin API"), for scripts and terminals.
//!
//! ```text
//! tandem-server admin [--url URL] [--admin-token-file FILE] pause [--user EMAIL] [--reason R] [--retry-after SECS]
//!                                                           resume [--user EMAIL]
//!                                                           users [--query Q] [--json]
//!                                                           revoke EMAIL
//!                                                           delete-user EMAIL [--yes]
//! ```
//!
//! The admin token comes from the same places the server reads it: `TANDEM_ADMIN_TOKEN`, else
//! the file of `--admin-token-file` (or `TANDEM_ADMIN_TOKEN_FILE`); never from a flag's value,
//! which every process list shows. `--url` (or `TANDEM_ADMIN_URL`) defaults to
//! `http://127.0.0.1:8787`; plain `http://` is accepted to loopback only, as the engine's rule,
//! since the token must never cross a network in clear.
//!
//! Exit status: 0 done; 1 the server refused the call (its code and message are printed, e.g.
//! `error: not_found: …`), could not be reached, or the email typed at `delete-user`'s prompt
//! did not match; 2 a bad command line (clap's own usage
//! errors, a bad URL, no token, `delete-user` without `--yes` on a stdin that is no terminal).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reqwest13::{Method, Url};
use serde_json::{json, Value};
use tandem_protocol::{DeletedUserOut, ErrorBody, UserSummary, UsersPage, MAX_USERS_PAGE};

use crate::Config;

/// `tandem-server admin`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The server's base URL; `http://` only to a loopback address.
    #[arg(
        long,
        global = true,
        env = "TANDEM_ADMIN_URL",
        default_value = "http://127.0.0.1:8787"
    )]
    pub url: String,

    /// A file holding the admin token (else `TANDEM_ADMIN_TOKEN`, else
    /// `TANDEM_ADMIN_TOKEN_FILE`). The token itself is never a flag.
    #[arg(long = "admin-token-file", global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: AdminCommand,
}

/// One admin call.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Pause sync for everyone, or for one user: their sync calls answer 503 `sync_paused`
    /// until `resume`; sign-in keeps working and devices keep their changes. Pausing again
    /// updates the pause.
    Pause {
        /// The user to pause (email or id); everyone when absent.
        #[arg(long)]
        user: Option<String>,
        /// Why, shown to operators (at most 200 characters).
        #[arg(long)]
        reason: Option<String>,
        /// The `Retry-After` paused clients get, in seconds (1–86400; the server's default 60).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=86_400))]
        retry_after: Option<u32>,
    },
    /// Lift the global pause, or one user's.
    Resume {
        /// The user to resume (email or id); the global pause when absent.
        #[arg(long)]
        user: Option<String>,
    },
    /// List users (all pages): a table, or the server's JSON with `--json`.
    Users {
        /// Email substring (case-insensitive) or an exact user id.
        #[arg(long)]
        query: Option<String>,
        /// Print `{"users": [UserSummary…]}` instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every session of a user: their refresh tokens and the access tokens issued so far.
    Revoke {
        /// The user's email (or id).
        email: String,
    },
    /// Delete a user and all their data. Asks for the email typed back unless `--yes`.
    DeleteUser {
        /// The user's email (or id).
        email: String,
        /// Do not ask (required when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// Why a command failed; decides the exit status.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A bad command line or setup: exit 2.
    Usage(String),
    /// The server answered an error: exit 1 with its code and message.
    Refused { code: String, message: String },
    /// The server could not be reached or answered nonsense: exit 1.
    Failed(String),
}

impl Failure {
    fn exit(self) -> ExitCode {
        match self {
            Failure::Usage(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
            Failure::Refused { code, message } => {
                eprintln!("error: {code}: {message}");
                ExitCode::FAILURE
            }
            Failure::Failed(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs one admin command; `config` is the top-level flags (for the token sources the server
/// itself reads). Prints results on stdout, errors on stderr.
pub async fn run(args: AdminArgs, config: &Config) -> ExitCode {
    match execute(args, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

async fn execute(args: AdminArgs, config: &Config) -> Result<(), Failure> {
    let base = check_url(&args.url)?;
    let token = admin_token(&args, config)?;
    let api = Api::new(base, token)?;
    match args.command {
        AdminCommand::Pause {
            user,
            reason,
            retry_after,
        } => {
            let mut body = json!({});
            if let Some(user) = &user {
                body["user"] = json!(user);
            }
            if let Some(reason) = &reason {
                body["reason"] = json!(reason);
            }
            if let Some(secs) = retry_after {
                body["retryAfterSecs"] = json!(secs);
            }
            let answer = api.call(Method::POST, &["pause"], &[], Some(body)).await?;
            let pause = &answer["pause"];
            println!(
                "paused sync for {} (clients retry after {} s)",
                user.as_deref().unwrap_or("everyone"),
                text(&pause["retryAfterSecs"]),
            );
        }
        AdminCommand::Resume { user } => {
            let body = match &user {
                Some(user) => json!({ "user": user }),
                None => json!({}),
            };
            let answer = api.call(Method::POST, &["resume"], &[], Some(body)).await?;
            let who = user.as_deref().unwrap_or("everyone");
            if answer["resumed"].as_bool() == Some(true) {
                println!("resumed sync for {who}");
            } else {
                println!("sync for {who} was not paused");
            }
        }
        AdminCommand::Users { query, json } => {
            let users = api.users(query.as_deref()).await?;
            if json {
                let page = UsersPage { users, next: None };
                println!(
                    "{}",
                    serde_json::to_string(&page).expect("a users page serializes")
                );
            } else {
                print!("{}", users_table(&users));
            }
        }
        AdminCommand::Revoke { email } => {
            let id = api.resolve(&email).await?;
            let answer = api
                .call(Method::POST, &["users", &id, "revoke"], &[], None)
                .await?;
            println!(
                "revoked {} session(s) of {email}",
                text(&answer["sessionsRevoked"])
            );
        }
        AdminCommand::DeleteUser { email, yes } => {
            let id = api.resolve(&email).await?;
            if !yes {
                confirm_deletion(&email)?;
            }
            let answer = api.call(Method::DELETE, &["users", &id], &[], None).await?;
            let deleted: DeletedUserOut = serde_json::from_value(answer).map_err(|e| {
                Failure::Failed(format!("the deletion's answer is not understood: {e}"))
            })?;
            println!("deleted {email}: {} record(s)", deleted.records);
            for space in &deleted.spaces_transferred {
                println!("  space {} passed to user {}", space.id, space.new_owner);
            }
            for space in &deleted.spaces_deleted {
                println!("  space {space} deleted");
            }
        }
    }
    Ok(())
}

/// The base URL, checked: absolute, a host, no query or fragment, `https://` or `http://` to a
/// loopback host (the engine's rule in `tandem_core::http`).
fn check_url(url: &str) -> Result<Url, Failure> {
    let trimmed = url.trim().trim_end_matches('/');
    let bad = |why: &str| Failure::Usage(format!("invalid --url {url:?}: {why}"));
    let parsed = Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if parsed.cannot_be_a_base() || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if crate::blobs::store::is_loopback_url(parsed.as_str()) => Ok(parsed),
        "http" => Err(Failure::Usage(format!(
            "refusing plain http:// to {}: the admin token must not cross a network in clear; use https://",
            parsed.host_str().unwrap_or_default()
        ))),
        other => Err(bad(&format!("unsupported scheme {other:?}"))),
    }
}

/// The token from the server's own sources: `TANDEM_ADMIN_TOKEN`, else the file (this
/// command's `--admin-token-file`, else `TANDEM_ADMIN_TOKEN_FILE`).
fn admin_token(args: &AdminArgs, config: &Config) -> Result<String, Failure> {
    let sources = Config {
        admin_token_file: args
            .token_file
            .clone()
            .or_else(|| config.admin_token_file.clone()),
        ..config.clone()
    };
    match sources.admin_token() {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(Failure::Usage(
            "no admin token: set TANDEM_ADMIN_TOKEN or give --admin-token-file FILE".into(),
        )),
        Err(e) => Err(Failure::Usage(format!("{e:#}"))),
    }
}

/// Asks for the email typed back; refuses when stdin is not a terminal.
fn confirm_deletion(email: &str) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::Usage(
            "delete-user deletes every record of the user: pass --yes when stdin is not a terminal"
                .into(),
        ));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(
        stderr,
        "This deletes {email} and all their data, for good. Type the email to confirm: "
    );
    let _ = stderr.flush();
    let mut typed = String::new();
    stdin
        .lock()
        .read_line(&mut typed)
        .map_err(|e| Failure::Failed(format!("reading the confirmation: {e}")))?;
    if !typed.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(Failure::Failed(
            "the email typed does not match; nothing deleted".into(),
        ));
    }
    Ok(())
}

/// The admin API at one base URL with the token.
struct Api {
    client: reqwest13::Client,
    base: Url,
    token: String,
}

impl Api {
    fn new(base: Url, token: String) -> Result<Self, Failure> {
        let client = reqwest13::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("tandem-server-admin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Failed(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base,
            token,
        })
    }

    /// `{base}/admin/v1/{segments…}?{query}`, each segment percent-encoded.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("a checked base URL has a path")
            .pop_if_empty()
            .extend(["admin", "v1"])
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// One call; a 2xx answer's JSON, or the server's refusal.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let url = self.url(segments, query);
        let mut request = self
            .client
            .request(method, url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest13::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Failed(format!("cannot reach {}: {}", self.base, chain(&e))))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Failed(format!("reading the answer: {}", chain(&e))))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Failed(format!("the server's answer is not JSON ({status}): {e}"))
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Failure::Refused {
                code: body.error.as_str().to_string(),
                message: body.error_description,
            },
            Err(_) => Failure::Refused {
                code: format!("http_{}", status.as_u16()),
                message: format!("{status} from {}", url.path()),
            },
        })
    }

    /// Every user matching `query`, following the `next` cursor.
    async fn users(&self, query: Option<&str>) -> Result<Vec<UserSummary>, Failure> {
        let limit = MAX_USERS_PAGE.to_string();
        let mut users = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut params = vec![("limit", limit.as_str())];
            if let Some(query) = query {
                params.push(("query", query));
            }
            if let Some(after) = &after {
                params.push(("after", after));
            }
            let answer = self.call(Method::GET, &["users"], &params, None).await?;
            let page: UsersPage = serde_json::from_value(answer).map_err(|e| {
                Failure::Failed(format!("the server's users page is not understood: {e}"))
            })?;
            let empty = page.users.is_empty();
            users.extend(page.users);
            match page.next {
                Some(next) if !empty && after.as_deref() != Some(next.as_str()) => {
                    after = Some(next);
                }
                _ => return Ok(users),
            }
        }
    }

    /// The id of the user whose email (case-insensitive) or id is `who`: an exact match among
    /// the users the search finds.
    async fn resolve(&self, who: &str) -> Result<String, Failure> {
        let found = self.users(Some(who)).await?;
        found
            .into_iter()
            .find(|u| u.id == who || u.email.eq_ignore_ascii_case(who))
            .map(|u| u.id)
            .ok_or_else(|| Failure::Refused {
                code: "not_found".into(),
                message: format!("no user has the email or id {who:?}"),
            })
    }
}

/// The rustls setup of the engine (`tandem_core::http`): ring, safe protocol versions, the
/// platform's certificate verifier, HTTP/1.1.
pub(crate) fn tls_config() -> Result<rustls::ClientConfig, Failure> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |e: rustls::Error| Failure::Failed(format!("setting up TLS: {e}"));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_platform_verifier()
        .map_err(tls_error)?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// An error with its causes, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A JSON value as a table cell: strings bare, `null`/absent as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

/// The users as an aligned table with a header line.
fn users_table(users: &[UserSummary]) -> String {
    const COLUMNS: [(&str, &str); 8] = [
        ("EMAIL", "email"),
        ("ID", "id"),
        ("CREATED", "createdAt"),
        ("LAST PUSH", "lastPushAt"),
        ("LAST PULL", "lastPullAt"),
        ("RECORDS", "records"),
        ("PAUSED", "paused"),
        ("STREAMS", "liveStreams"),
    ];
    let rows: Vec<Vec<String>> =
        std::iter::once(COLUMNS.iter().map(|(h, _)| h.to_string()).collect())
            .chain(users.iter().map(|u| {
                let u = serde_json::to_value(u).expect("a user serializes");
                COLUMNS.iter().map(|(_, key)| text(&u[*key])).collect()
            }))
            .collect();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if users.is_empty() {
        out.push_str("(no users)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_https_off_loopback() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://localhost:8787/",
            "http://[::1]:8787",
            "https://sync.example.com",
            "https://sync.example.com/base/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://sync.example.com",
            "http://10.0.0.1:8787",
            "http://127.0.0.1.example.com",
            "ftp://127.0.0.1",
            "https://sync.example.com/?q=1",
            "not a url",
        ] {
            assert!(matches!(check_url(bad), Err(Failure::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn admin_paths_keep_a_base_path_and_encode_ids() {
        let api = Api::new(
            check_url("https://example.com/tandem/").unwrap(),
            "t".into(),
        )
        .unwrap();
        assert_eq!(
            api.url(&["users", "a/b", "revoke"], &[]).as_str(),
            "https://example.com/tandem/admin/v1/users/a%2Fb/revoke"
        );
        assert_eq!(
            api.url(&["users"], &[("query", "a+b@x.io")]).as_str(),
            "https://example.com/tandem/admin/v1/users?query=a%2Bb%40x.io"
        );
    }

    #[test]
    fn the_users_table_aligns_and_marks_absent_times() {
        let table = users_table(&[UserSummary {
            id: "u1".into(),
            email: "a@example.com".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            last_push_at: None,
            last_pull_at: Some("2026-01-02T00:00:00Z".into()),
            records: 3,
            paused: false,
            live_streams: 0,
        }]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("EMAIL          ID"), "{table}");
        assert!(lines[1].starts_with("a@example.com  u1"), "{table}");
        assert!(lines[1].contains("  -  "), "{table}");
        assert_eq!(users_table(&[]).lines().last(), Some("(no users)"));
    }
}
