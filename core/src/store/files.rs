//! Owner-only files and directories. A device's databases hold the user's data, so the engine
//! makes its directories `0700` and its files `0600` whatever the process umask says; SQLite
//! gives the `-wal` and `-shm` files it creates the database file's mode. Elsewhere than Unix the
//! platform's own app sandbox is what protects them.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` (and missing parents) and makes `dir` itself owner-only.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    restrict(dir, 0o700)
}

/// Makes the file at `path` owner-only, creating it empty when missing.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    open_private(path, OpenOptions::new().append(true).create(true)).map(drop)?;
    restrict(path, 0o600)
}

/// Opens a file with `options`, creating it (when they allow) with owner-only permissions.
pub fn open_private(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options.open(path)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
