//! The HS256 secret that signs access tokens and cursors. Anyone who holds it can forge a token
//! for any user, so it never lives in the database (whoever can read a backup could sign in as
//! anyone) and never needs the command line (argv shows in every process list):
//! - from `TANDEM_JWT_SECRET` (or `--jwt-secret`, for tests), or from `--jwt-secret-file`;
//! - on loopback with SQLite, when neither is given: generated once and kept owner-only
//!   (`0600`) in `<database>.jwt-secret` beside the database, for development;
//! - anywhere else, the server refuses to start without one: PostgreSQL means production, where
//!   every instance must share the secret, and an address off loopback means real users.
//!
//! Earlier versions kept a generated secret in the database's `meta` table; a SQLite database
//! that still has one gets it moved into the file (and deleted from the table) on start.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::RngCore;

use crate::config::Config;
use crate::storage::Storage;

/// Shortest secret accepted, in bytes.
const MIN_SECRET_LEN: usize = 16;

/// The secret this server signs with, by the rules above.
pub async fn resolve(config: &Config, storage: &Storage) -> anyhow::Result<String> {
    if let Some(secret) = &config.jwt_secret {
        return checked(secret.clone(), "TANDEM_JWT_SECRET");
    }
    if let Some(path) = &config.jwt_secret_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --jwt-secret-file {}", path.display()))?;
        return checked(text.trim().to_string(), "--jwt-secret-file");
    }
    let Some(db_path) = config.db.strip_prefix("sqlite://") else {
        bail!(
            "PostgreSQL needs the JWT secret from TANDEM_JWT_SECRET or --jwt-secret-file, shared by \
             every instance (a secret an earlier version generated is in the table meta, key \
             jwt_secret: move it to a file to keep existing sign-ins)"
        );
    };
    if !config.addr.ip().is_loopback() {
        bail!(
            "off loopback ({}), the JWT secret must come from TANDEM_JWT_SECRET or \
             --jwt-secret-file; a generated one is for development on 127.0.0.1 only",
            config.addr
        );
    }
    development_secret(Path::new(db_path), storage).await
}

fn checked(secret: String, source: &str) -> anyhow::Result<String> {
    if secret.len() < MIN_SECRET_LEN {
        bail!("the JWT secret from {source} must have at least {MIN_SECRET_LEN} bytes");
    }
    Ok(secret)
}

/// Where the development secret of the SQLite database at `db_path` is kept.
pub fn development_secret_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".jwt-secret");
    PathBuf::from(name)
}

async fn development_secret(db_path: &Path, storage: &Storage) -> anyhow::Result<String> {
    let path = development_secret_path(db_path);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        tracing::warn!(file = %path.display(), "no JWT secret given: using the development one");
        return checked(text.trim().to_string(), &path.display().to_string());
    }
    let (secret, moved) = match storage.legacy_jwt_secret().await? {
        Some(stored) => (stored, true),
        None => (generate(), false),
    };
    write_owner_only(&path, &secret)?;
    if moved {
        storage.delete_legacy_jwt_secret().await?;
        tracing::warn!(file = %path.display(), "moved the JWT secret out of the database");
    } else {
        tracing::warn!(file = %path.display(), "no JWT secret given: generated a development one");
    }
    Ok(secret)
}

fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` with `contents`, readable by its owner only; never overwrites.
fn write_owner_only(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
