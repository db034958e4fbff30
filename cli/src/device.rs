//! This terminal's device: the engine opened on the data directory, with the schema, the server
//! and the token file the global options pick.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tandem::{SyncConfig, Tandem, TandemConfig};

use crate::args::Global;
use crate::credentials::FileSecureStore;
use crate::error::CliError;

/// The server when neither `--server` nor an earlier login names one: `tandem-server`'s default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8787";

/// Remembers, per data directory, the server the device signed in to.
const SETTINGS_FILE: &str = "cli.json";

/// An open device.
pub struct Device {
    pub tandem: Arc<Tandem>,
    pub server: String,
    pub data_dir: PathBuf,
    schema: Value,
}

impl Device {
    /// Opens the device the global options describe.
    pub fn open(global: &Global, sync: SyncConfig) -> Result<Self, CliError> {
        let data_dir = match &global.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        let schema_text = read_schema(global.schema.as_deref())?;
        let server = match &global.server {
            Some(url) => url.clone(),
            None => remembered_server(&data_dir).unwrap_or_else(|| DEFAULT_SERVER.to_string()),
        };
        Self::open_at(data_dir, schema_text, server, sync)
    }

    /// Opens a device in `data_dir` syncing with `server`.
    pub fn open_at(
        data_dir: PathBuf,
        schema_text: String,
        server: String,
        sync: SyncConfig,
    ) -> Result<Self, CliError> {
        fs::create_dir_all(&data_dir).map_err(|e| {
            CliError::new(
                "io",
                format!(
                    "cannot create the data directory {}: {e}",
                    data_dir.display()
                ),
            )
        })?;
        let schema: Value = serde_json::from_str(&schema_text)
            .map_err(|e| CliError::new("schema", format!("the schema is not JSON: {e}")))?;
        let mut config = TandemConfig::with_server(
            data_dir.to_string_lossy().into_owned(),
            schema_text,
            server.clone(),
        );
        config.sync = sync;
        config.secure_store = Some(Arc::new(FileSecureStore::in_dir(data_dir.clone())));
        let tandem = Tandem::open(config)?;
        Ok(Self {
            tandem,
            server,
            data_dir,
            schema,
        })
    }

    /// The schema's collections, in the schema's order.
    pub fn collections(&self) -> Vec<String> {
        self.schema["collections"]
            .as_object()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Makes the server the default for later commands on this data directory.
    pub fn remember_server(&self) -> Result<(), CliError> {
        let settings = serde_json::json!({ "server": self.server });
        fs::write(
            self.data_dir.join(SETTINGS_FILE),
            serde_json::to_vec_pretty(&settings).expect("JSON values always serialise"),
        )?;
        Ok(())
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.tandem.shutdown();
    }
}

/// Options for one-shot commands: nothing runs in the background; `sync` runs on demand.
pub fn one_shot_sync() -> SyncConfig {
    SyncConfig {
        realtime: false,
        ..SyncConfig::default()
    }
}

fn default_data_dir() -> Result<PathBuf, CliError> {
    dirs::data_dir().map(|d| d.join("tandem")).ok_or_else(|| {
        CliError::usage("this platform has no user data directory; pass --data-dir DIR")
    })
}

/// The schema file's text, or the sample schema the server also defaults to.
pub fn read_schema(path: Option<&Path>) -> Result<String, CliError> {
    match path {
        None => Ok(tandem_server::config::SAMPLE_SCHEMA.to_string()),
        Some(path) => fs::read_to_string(path).map_err(|e| {
            CliError::new(
                "io",
                format!("cannot read the schema {}: {e}", path.display()),
            )
        }),
    }
}

fn remembered_server(data_dir: &Path) -> Option<String> {
    let text = fs::read(data_dir.join(SETTINGS_FILE)).ok()?;
    let settings: Value = serde_json::from_slice(&text).ok()?;
    settings["server"].as_str().map(str::to_string)
}
