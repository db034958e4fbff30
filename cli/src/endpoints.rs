//! Where auth and sync live when they are not `{server}/auth/v1` and `{server}/sync/v1`, and the
//! API key hosted Supabase wants: `--auth-url`, `--sync-url` and `--api-key-file` (or
//! `TANDEM_API_KEY`; never a command-line value, which every process list shows). Like
//! `--server`, what a login used is remembered for the data directory: the URLs in `cli.json`,
//! the key beside the tokens in `credentials.json` (owner-only).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clap::Args;
use serde_json::Value;
use tandem::{SecureStore, TandemConfig};

use crate::credentials::FileSecureStore;
use crate::error::CliError;

/// The settings file `device.rs` keeps `server` in.
const SETTINGS_FILE: &str = "cli.json";
const AUTH_URL_KEY: &str = "authUrl";
const SYNC_URL_KEY: &str = "syncUrl";
/// The key of the API key in the data directory's credentials.
const API_KEY_KEY: &str = "cli/apiKey";

/// The global options of the endpoints.
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// The auth server, e.g. Supabase Auth at https://PROJECT.supabase.co/auth/v1 [default: the
    /// one of the last login on this data directory, else {server}/auth/v1]
    #[arg(long, env = "TANDEM_AUTH_URL", global = true, value_name = "URL")]
    pub auth_url: Option<String>,

    /// The sync server's base, e.g. https://sync.example.com/sync/v1 [default: the one of the
    /// last login on this data directory, else {server}/sync/v1]
    #[arg(long, env = "TANDEM_SYNC_URL", global = true, value_name = "URL")]
    pub sync_url: Option<String>,

    /// A file holding the API key sent as the `apikey` header (hosted Supabase's anon or
    /// publishable key); the key itself may come from TANDEM_API_KEY instead, never from a
    /// command-line value [default: the one of the last login on this data directory]
    #[arg(long, env = "TANDEM_API_KEY_FILE", global = true, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

/// The command line's endpoint options, set once by `main` before any device opens.
static ARGS: OnceLock<EndpointArgs> = OnceLock::new();

/// Keeps the command line's options for the devices this process opens.
pub fn init(args: &EndpointArgs) {
    let _ = ARGS.set(args.clone());
}

/// What one device uses.
#[derive(Default)]
struct Endpoints {
    auth_url: Option<String>,
    sync_url: Option<String>,
    api_key: Option<String>,
}

/// The endpoints of the device in `data_dir`: each from its option (or environment variable),
/// else as the last login on the directory left it.
fn resolve(data_dir: &Path) -> Result<Endpoints, CliError> {
    let Some(args) = ARGS.get() else {
        // The demo's devices, which `main` opens without options of this kind.
        return Ok(Endpoints::default());
    };
    let settings = settings(data_dir);
    let remembered = |key: &str| settings[key].as_str().map(str::to_string);
    let api_key = match (&args.api_key_file, env_api_key()) {
        (Some(path), _) => Some(read_key_file(path)?),
        (None, Some(key)) => Some(key),
        (None, None) => store(data_dir)
            .get(API_KEY_KEY.into())
            .map_err(|e| CliError::new("io", format!("cannot read the remembered API key: {e}")))?,
    };
    Ok(Endpoints {
        auth_url: args.auth_url.clone().or_else(|| remembered(AUTH_URL_KEY)),
        sync_url: args.sync_url.clone().or_else(|| remembered(SYNC_URL_KEY)),
        api_key,
    })
}

/// Sets the endpoints of the device in `data_dir` on its configuration.
pub fn apply(config: &mut TandemConfig, data_dir: &Path) -> Result<(), CliError> {
    let endpoints = resolve(data_dir)?;
    config.auth_url = endpoints.auth_url;
    config.sync_url = endpoints.sync_url;
    config.api_key = endpoints.api_key;
    Ok(())
}

/// After a login: keeps what it used for the later commands on `data_dir` (and forgets what it
/// did not use).
pub fn remember(data_dir: &Path) -> Result<(), CliError> {
    let endpoints = resolve(data_dir)?;
    let path = data_dir.join(SETTINGS_FILE);
    let mut settings = settings(data_dir);
    for (key, value) in [
        (AUTH_URL_KEY, &endpoints.auth_url),
        (SYNC_URL_KEY, &endpoints.sync_url),
    ] {
        match value {
            Some(url) => settings[key] = url.as_str().into(),
            None => {
                if let Some(map) = settings.as_object_mut() {
                    map.remove(key);
                }
            }
        }
    }
    fs::write(
        path,
        serde_json::to_vec_pretty(&settings).expect("JSON values always serialise"),
    )?;
    let store = store(data_dir);
    let kept = match endpoints.api_key {
        Some(key) => store.set(API_KEY_KEY.into(), key),
        None => store.delete(API_KEY_KEY.into()),
    };
    kept.map_err(|e| CliError::new("io", format!("cannot remember the API key: {e}")))
}

fn settings(data_dir: &Path) -> Value {
    fs::read(data_dir.join(SETTINGS_FILE))
        .ok()
        .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}))
}

fn store(data_dir: &Path) -> Arc<FileSecureStore> {
    Arc::new(FileSecureStore::in_dir(data_dir.to_path_buf()))
}

fn env_api_key() -> Option<String> {
    std::env::var("TANDEM_API_KEY")
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
}

/// The key in `path`, surrounding whitespace ignored; an empty file is an error.
fn read_key_file(path: &Path) -> Result<String, CliError> {
    let text = fs::read_to_string(path).map_err(|e| {
        CliError::new(
            "io",
            format!("cannot read --api-key-file {}: {e}", path.display()),
        )
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(CliError::usage(format!(
            "--api-key-file {} is empty",
            path.display()
        )));
    }
    Ok(key.to_string())
}
