//! Test support: runs the real `tandem-server` binary on a fresh SQLite database.
//!
//! The binary is looked up next to the test executable (`target/<profile>/deps/<test>` →
//! `target/<profile>/tandem-server`), or taken from `TANDEM_SERVER_BIN`. When it is missing it
//! is built once with `cargo build -p tandem-server`; if that cargo has to wait for the build
//! directory lock (held by the `cargo test` running us), it builds into a side target directory
//! instead of deadlocking. Set `TANDEM_TEST_SERVER_LOGS=1` to see the servers' logs.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

/// The JWT secret test servers get (through the environment, never argv).
pub const JWT_SECRET: &str = "tandem-core-test-secret-0123456789abcdef";

/// A running server on its own temporary database; killed when dropped.
pub struct TestServer {
    child: Child,
    url: String,
    extra: Vec<String>,
    db: String,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the default flags.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts a server with `extra` flags (e.g. `["--access-token-ttl", "2"]`).
    pub fn start_with(extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("creating a temp dir for the server database");
        let db = format!("sqlite://{}", dir.path().join("s.db").display());
        Self::start_in(dir, db, extra)
    }

    /// Starts a server on the database `db` (a `sqlite://` or `postgres://` URL).
    pub fn start_on(db: &str, extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        Self::start_in(dir, db.to_string(), extra)
    }

    fn start_in(dir: tempfile::TempDir, db: String, extra: &[&str]) -> TestServer {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, url) = spawn(&db, "127.0.0.1:0", &extra);
        TestServer {
            child,
            url,
            extra,
            db,
            _dir: dir,
        }
    }

    /// Kills the server and starts it again on the same database and port.
    pub fn restart(&mut self) {
        self.stop();
        let addr = self.url.trim_start_matches("http://").to_string();
        let (child, url) = spawn(&self.db, &addr, &self.extra);
        self.child = child;
        self.url = url;
    }

    /// Kills the server (until `restart`).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn spawn(db: &str, addr: &str, extra: &[String]) -> (Child, String) {
    {
        let mut command = Command::new(server_binary());
        command.args(["--addr", addr, "--db", db]).args(extra);
        // Only the variables given here: a developer's TANDEM_* settings must not leak in.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("TANDEM_")) {
            command.env_remove(key);
        }
        command.env("TANDEM_JWT_SECRET", JWT_SECRET);
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        command.stderr(if std::env::var_os("TANDEM_TEST_SERVER_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().expect("spawning tandem-server");
        let url = read_listening_line(&mut child);
        (child, url)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for `listening on URL` on the server's stdout and keeps the pipe drained after it.
fn read_listening_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            panic!(
                "tandem-server did not start: {other:?} (set TANDEM_TEST_SERVER_LOGS=1 to see why)"
            );
        }
    };
    match line.strip_prefix("listening on ") {
        Some(url) => url.trim().to_string(),
        None => {
            let _ = child.kill();
            panic!("unexpected first line from tandem-server: {line:?}");
        }
    }
}

/// The server binary, built once per test process when missing.
pub fn server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate_or_build).clone()
}

fn locate_or_build() -> PathBuf {
    if let Some(path) = std::env::var_os("TANDEM_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let profile_dir = profile_dir();
    let binary = profile_dir.join(format!("tandem-server{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        return binary;
    }
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory has a parent")
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    if cargo_build(&target_dir, release, true) {
        return binary;
    }
    // The build directory is locked (by the `cargo test` running us): build beside it.
    let side = target_dir.join("tandem-core-test-server");
    assert!(
        cargo_build(&side, release, false),
        "cargo build -p tandem-server failed"
    );
    side.join(profile_dir.file_name().unwrap())
        .join(format!("tandem-server{}", std::env::consts::EXE_SUFFIX))
}

/// `target/<profile>`: the test executable lives in `target/<profile>/deps`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable has a directory");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap()
    } else {
        deps
    };
    dir.to_path_buf()
}

/// Runs `cargo build -p tandem-server` into `target_dir`. With `give_up_if_locked`, returns
/// false as soon as cargo reports waiting for the directory lock.
fn cargo_build(target_dir: &Path, release: bool, give_up_if_locked: bool) -> bool {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "-p",
            "tandem-server",
            "--bin",
            "tandem-server",
            "--manifest-path",
        ])
        .arg(&manifest);
    command.arg("--target-dir").arg(target_dir);
    if release {
        command.arg("--release");
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    eprintln!("building tandem-server into {} …", target_dir.display());
    let mut child = command.spawn().expect("spawning cargo");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines().map_while(Result::ok) {
        if give_up_if_locked && line.contains("Blocking waiting for file lock") {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        if line.contains("error") {
            eprintln!("{line}");
        }
    }
    child.wait().is_ok_and(|status| status.success())
}

/// A fresh email address.
pub fn email() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "user-{nanos}-{}@example.com",
        N.fetch_add(1, Ordering::Relaxed)
    )
}
