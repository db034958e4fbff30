//! This terminal's device: the engine opened on the data directory, with the schema, the server
//! and the token file the global options pick.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tandem::{Encryption, SyncConfig, Tandem, TandemConfig};

use crate::args::Global;
use crate::credentials::FileSecureStore;
use crate::error::CliError;
use crate::policy;

/// The server when neither `--server` nor an earlier login names one: `tandem-server`'s default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8787";

/// Remembers, per data directory, the server the device signed in to and the conflict policy.
const SETTINGS_FILE: &str = "cli.json";
/// The settings key of the conflict policy.
const POLICY_KEY: &str = "conflictPolicy";
/// The settings key of encryption at rest (`on` or `off`).
const ENCRYPTION_KEY: &str = "encryption";

/// An open device.
pub struct Device {
    pub tandem: Arc<Tandem>,
    pub server: String,
    pub data_dir: PathBuf,
    schema: Value,
    /// The schema document as given (for checks the CLI makes before writing).
    pub schema_text: String,
    /// The conflict policy's command-line name.
    pub conflict_policy: String,
}

impl Device {
    /// Opens the device the global options describe, encrypted or not as `encryption` says
    /// (remembered when given), else as the data directory was last set.
    pub fn open(
        global: &Global,
        sync: SyncConfig,
        encryption: Option<Encryption>,
    ) -> Result<Self, CliError> {
        let data_dir = match &global.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        let schema_text = read_schema(global.schema.as_deref())?;
        let server = match &global.server {
            Some(url) => url.clone(),
            None => remembered_server(&data_dir).unwrap_or_else(|| DEFAULT_SERVER.to_string()),
        };
        let policy = match &global.conflict_policy {
            Some(name) => name.clone(),
            None => remembered(&data_dir, POLICY_KEY).unwrap_or_else(|| policy::DEFAULT.into()),
        };
        let mut sync = sync;
        sync.conflict_policy = Some(policy::by_name(&policy).ok_or_else(|| {
            CliError::new(
                "invalid_config",
                format!(
                    "{} names an unknown conflict policy `{policy}`; pass --conflict-policy",
                    data_dir.join(SETTINGS_FILE).display()
                ),
            )
        })?);
        let remembered_encryption = match remembered(&data_dir, ENCRYPTION_KEY).as_deref() {
            Some("on") => Encryption::On,
            _ => Encryption::Off,
        };
        let mut device = Self::open_at(
            data_dir,
            schema_text,
            server,
            sync,
            encryption.unwrap_or(remembered_encryption),
        )?;
        if global.conflict_policy.is_some() {
            device.remember(POLICY_KEY, &policy)?;
        }
        if let Some(encryption) = encryption {
            device.remember(ENCRYPTION_KEY, encryption_name(encryption))?;
        }
        device.conflict_policy = policy;
        Ok(device)
    }

    /// Opens a device in `data_dir` syncing with `server`.
    pub fn open_at(
        data_dir: PathBuf,
        schema_text: String,
        server: String,
        sync: SyncConfig,
        encryption: Encryption,
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
            schema_text.clone(),
            server.clone(),
        );
        config.sync = sync;
        config.encryption = Some(encryption);
        config.secure_store = Some(Arc::new(FileSecureStore::in_dir(data_dir.clone())));
        crate::endpoints::apply(&mut config, &data_dir)?;
        let tandem = Tandem::open(config)?;
        Ok(Self {
            tandem,
            server,
            data_dir,
            schema,
            schema_text,
            conflict_policy: policy::DEFAULT.into(),
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
        self.remember("server", &self.server)
    }

    /// Keeps `key` in the data directory's settings, next to what is there already.
    fn remember(&self, key: &str, value: &str) -> Result<(), CliError> {
        let path = self.data_dir.join(SETTINGS_FILE);
        let mut settings = fs::read(&path)
            .ok()
            .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        settings[key] = value.into();
        fs::write(
            path,
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

/// `on` or `off`, as the settings file and the output say.
pub fn encryption_name(encryption: Encryption) -> &'static str {
    match encryption {
        Encryption::On => "on",
        Encryption::Off => "off",
    }
}

fn remembered_server(data_dir: &Path) -> Option<String> {
    remembered(data_dir, "server")
}

/// A setting kept in the data directory's settings file.
fn remembered(data_dir: &Path, key: &str) -> Option<String> {
    let text = fs::read(data_dir.join(SETTINGS_FILE)).ok()?;
    let settings: Value = serde_json::from_slice(&text).ok()?;
    settings[key].as_str().map(str::to_string)
}
