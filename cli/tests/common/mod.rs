//! The CLI tests' harness: an in-process server of their own and devices (data directories the
//! `tandem` binary runs on), shared by `cli.rs` and `spaces.rs`.
#![allow(dead_code)] // each test file uses its own part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";

/// A server of its own for each test.
pub struct Server {
    pub url: String,
    handle: Option<tandem_server::ServerHandle>,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with_schema(None)
    }

    pub fn start_with_schema(schema: Option<PathBuf>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = tandem_server::Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            db: format!("sqlite://{}", dir.path().join("server.db").display()),
            schema,
            ..tandem_server::Config::default()
        };
        let handle = rt.block_on(tandem_server::run(config)).unwrap();
        Self {
            url: handle.url(),
            handle: Some(handle),
            rt,
            _dir: dir,
        }
    }

    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.rt.block_on(handle.shutdown()).unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One device: a data directory the `tandem` binary runs on, against one server.
pub struct Device {
    pub dir: tempfile::TempDir,
    pub server: String,
}

pub fn email() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cli-{}-{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Device {
    pub fn new(server: &Server) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            server: server.url.clone(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `tandem --data-dir … --server … ARGS`, with no inherited TANDEM_* settings.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = tandem();
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--server", &self.server])
            .args(args);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(self.command(args))
    }

    /// Runs with `--json` and expects success: the single JSON value on stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "tandem {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout_json(&output)
    }

    /// Runs with `--json` and expects failure with `status`: the error's code.
    pub fn error(&self, args: &[&str], status: i32) -> String {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert_eq!(
            output.status.code(),
            Some(status),
            "tandem {args:?}: {output:?}"
        );
        assert!(output.stdout.is_empty(), "errors print nothing on stdout");
        let error: Value = serde_json::from_slice(&output.stderr).unwrap_or_else(|e| {
            panic!(
                "stderr is not JSON ({e}): {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        assert!(error["error"]["message"].as_str().is_some(), "{error}");
        error["error"]["code"].as_str().unwrap().to_string()
    }

    pub fn signup(&self, email: &str) -> Value {
        let mut command = self.command(&["--json", "signup", email]);
        command.env("TANDEM_PASSWORD", PASSWORD);
        let output = run(command);
        assert!(output.status.success(), "{output:?}");
        stdout_json(&output)
    }

    pub fn login(&self, email: &str) -> Value {
        let mut command = self.command(&["--json", "login", email, "--password-stdin"]);
        let output = run_with_stdin(command.stdin(Stdio::piped()), &format!("{PASSWORD}\n"));
        assert!(output.status.success(), "{output:?}");
        stdout_json(&output)
    }
}

pub fn tandem() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
    for var in [
        "TANDEM_DATA_DIR",
        "TANDEM_SERVER",
        "TANDEM_SCHEMA",
        "TANDEM_PASSWORD",
        "TANDEM_AUTH_URL",
        "TANDEM_SYNC_URL",
        "TANDEM_API_KEY",
        "TANDEM_API_KEY_FILE",
    ] {
        command.env_remove(var);
    }
    command.stdin(Stdio::null());
    command
}

pub fn run(mut command: Command) -> Output {
    command.output().expect("running tandem")
}

pub fn run_with_stdin(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

pub fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}
