//! Test servers, one way: [`TestServer::builder`] starts either the real `tandem-server` binary
//! (the default: what operators run, flags and environment included) or an in-process server on
//! a [`ManualClock`] the test moves instead of sleeping ([`TestServerBuilder::in_process`]).
//!
//! Either way the server gets a fresh SQLite database unless one is given, the test JWT secret,
//! and the one test schema (`schemas/test.json`) unless the flags name a `--schema`.
//!
//! The binary is looked up next to the test executable (`target/<profile>/deps/<test>` →
//! `target/<profile>/tandem-server`), or taken from `TANDEM_SERVER_BIN`. When it is missing it
//! is built once with `cargo build -p tandem-server`; if that cargo has to wait for the build
//! directory lock (held by the `cargo test` running us), it builds into a side target directory
//! instead of deadlocking. Set `TANDEM_TEST_SERVER_LOGS=1` to see the servers' logs.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use clap::Parser;
use tandem_server::ManualClock;

use crate::db::TestDb;
use crate::protocol::Client;

pub use crate::fixtures::email;

/// The JWT secret test servers get (through the environment for the binary, never argv).
pub const SECRET: &str = "conformance-test-secret-0123456789";
/// The same secret, under the name the engine suites use.
pub const JWT_SECRET: &str = SECRET;

/// The flags of a server that purges every tombstone within a second (retention 0, a purge every
/// second), so cursors from before a delete expire. In process, [`TestServer::advance`] runs the
/// purge that moving the clock would have brought.
pub const PURGING: &[&str] = &[
    "--tombstone-retention-days",
    "0",
    "--purge-interval-secs",
    "1",
];

/// The path of `schemas/test.json`, the one test schema.
pub fn test_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/test.json")
}

/// How a [`TestServer`] is started.
#[derive(Default)]
pub struct TestServerBuilder {
    db: Option<String>,
    args: Vec<String>,
    env: Option<Vec<(String, String)>>,
    clock: Option<ManualClock>,
    capture_logs: bool,
    log_filter: Option<String>,
    schema: Option<String>,
    blob_env: Vec<(String, String)>,
}

impl TestServerBuilder {
    /// Keeps attachments in `store` (`--blob-store` and, for S3, its `AWS_*` settings).
    pub fn blob_store(mut self, store: &crate::blobs::TestBlobStore) -> Self {
        self.args.push("--blob-store".into());
        self.args.push(store.url.clone());
        self.blob_env = store.env.clone();
        self
    }

    /// Serves the schema document `schema` instead of `schemas/test.json`.
    pub fn schema(mut self, schema: &str) -> Self {
        self.schema = Some(schema.to_string());
        self
    }

    /// Runs on `db` (the test keeps it alive) instead of a fresh SQLite file.
    pub fn db(mut self, db: &TestDb) -> Self {
        self.db = Some(db.url.clone());
        self
    }

    /// Runs on the database at `url` (`sqlite://…` or `postgres://…`).
    pub fn db_url(mut self, url: &str) -> Self {
        self.db = Some(url.to_string());
        self
    }

    /// Adds server flags (e.g. `["--access-token-ttl", "2"]`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Purges every tombstone within a second (see [`PURGING`]).
    pub fn purging(self) -> Self {
        self.args(PURGING)
    }

    /// The binary gets exactly these `TANDEM_*` variables (by default only `TANDEM_JWT_SECRET`).
    pub fn env(mut self, env: &[(&str, &str)]) -> Self {
        self.env = Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }

    /// Runs the server in this process on a [`ManualClock`] stopped at the current time.
    pub fn in_process(self) -> Self {
        self.clock(ManualClock::new())
    }

    /// Runs the server in this process on `clock` (share it with the clients under test).
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The binary's `RUST_LOG` (e.g. `"trace"`); by default the test's own.
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.log_filter = Some(filter.to_string());
        self
    }

    /// Keeps the binary's stderr (its logs) for [`TestServer::logs`].
    pub fn capture_logs(mut self) -> Self {
        self.capture_logs = true;
        self
    }

    /// Starts the server and waits until it listens.
    pub fn start(self) -> TestServer {
        let dir = tempfile::tempdir().expect("creating a temp dir for the server database");
        let db = self
            .db
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("s.db").display()));
        let mut args = self.args;
        if let Some(schema) = &self.schema {
            let path = dir.path().join("schema.json");
            std::fs::write(&path, schema).expect("writing the server's schema");
            args.push("--schema".into());
            args.push(path.display().to_string());
        } else if !args.iter().any(|a| a == "--schema") {
            args.push("--schema".into());
            args.push(test_schema_path().display().to_string());
        }
        let env = self
            .env
            .unwrap_or_else(|| vec![("TANDEM_JWT_SECRET".into(), SECRET.into())]);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut server = TestServer {
            running: None,
            url: String::new(),
            spec: Spec {
                db,
                args,
                env,
                clock: self.clock,
                capture_logs: self.capture_logs.then_some(logs),
                log_filter: self.log_filter,
                blob_env: self.blob_env,
            },
            _dir: dir,
        };
        server.launch("127.0.0.1:0");
        server
    }
}

/// What a server was started with, to start it again.
struct Spec {
    db: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    clock: Option<ManualClock>,
    capture_logs: Option<Arc<Mutex<Vec<u8>>>>,
    log_filter: Option<String>,
    /// The `AWS_*` settings of an S3 blob store.
    blob_env: Vec<(String, String)>,
}

enum Running {
    Binary(Child),
    InProcess(InProcess),
}

/// A running server; stopped when dropped.
pub struct TestServer {
    running: Option<Running>,
    url: String,
    spec: Spec,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// How to start one.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// The binary with the default flags on a fresh SQLite database.
    pub fn start() -> TestServer {
        Self::builder().start()
    }

    /// The binary with `extra` flags (e.g. `["--access-token-ttl", "2"]`).
    pub fn start_with(extra: &[&str]) -> TestServer {
        Self::builder().args(extra).start()
    }

    /// The binary with the schema document `schema` on a fresh SQLite database.
    pub fn with_schema(schema: &str) -> TestServer {
        Self::builder().schema(schema).start()
    }

    /// The binary on the database `db` (a `sqlite://` or `postgres://` URL).
    pub fn start_on(db: &str, extra: &[&str]) -> TestServer {
        Self::builder().db_url(db).args(extra).start()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database URL it runs on.
    pub fn db_url(&self) -> &str {
        &self.spec.db
    }

    /// A server on `db` (the usual options), a client of it and a new user's access token: the
    /// first three lines of most server tests.
    pub async fn with_user(db: &TestDb) -> (TestServer, Client, String) {
        let server = TestServer::builder().db(db).start();
        let c = server.client();
        let (token, _) = c.new_user().await;
        (server, c, token)
    }

    /// A protocol client of this server.
    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// The clock of an in-process server.
    pub fn clock(&self) -> Option<&ManualClock> {
        self.spec.clock.as_ref()
    }

    /// Moves an in-process server's clock by `by` and, on a purging server, runs the purge that
    /// the time passed would have brought. Panics for the binary (its clock is the system's).
    pub fn advance(&self, by: Duration) {
        let clock = self
            .spec
            .clock
            .as_ref()
            .expect("advance needs an in-process server (TestServer::builder().in_process())");
        clock.advance(by);
        if self
            .spec
            .args
            .windows(2)
            .any(|w| w[0] == PURGING[0] && w[1] == PURGING[1])
        {
            self.purge_now();
        }
    }

    /// Runs one purge now on an in-process server; returns the tombstones purged.
    pub fn purge_now(&self) -> u64 {
        match &self.running {
            Some(Running::InProcess(server)) => server.purge_now(),
            _ => panic!("purge_now needs a running in-process server"),
        }
    }

    /// What the binary wrote to stderr so far (with [`TestServerBuilder::capture_logs`]).
    pub fn logs(&self) -> String {
        let logs = self
            .spec
            .capture_logs
            .as_ref()
            .expect("started without capture_logs()");
        String::from_utf8_lossy(&logs.lock().unwrap()).into_owned()
    }

    /// Kills the server and starts it again on the same database and port.
    pub fn restart(&mut self) {
        self.stop();
        let addr = self.url.trim_start_matches("http://").to_string();
        self.launch(&addr);
    }

    /// Kills the server (until `restart`).
    pub fn stop(&mut self) {
        match self.running.take() {
            Some(Running::Binary(mut child)) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Some(Running::InProcess(server)) => server.stop(),
            None => {}
        }
    }

    /// Stops the server gracefully (SIGTERM for the binary) and waits for it to exit.
    pub fn shutdown(mut self) {
        match self.running.take() {
            Some(Running::Binary(mut child)) => {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                for _ in 0..100 {
                    if child.try_wait().ok().flatten().is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            Some(Running::InProcess(server)) => server.stop(),
            None => {}
        }
    }

    fn launch(&mut self, addr: &str) {
        let (running, url) = match &self.spec.clock {
            Some(clock) => {
                let server = InProcess::start(&self.spec, addr, clock.clone());
                let url = server.url.clone();
                (Running::InProcess(server), url)
            }
            None => {
                let (child, url) = spawn(&self.spec, addr);
                (Running::Binary(child), url)
            }
        };
        self.running = Some(running);
        self.url = url;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(spec: &Spec, addr: &str) -> (Child, String) {
    let mut command = Command::new(server_binary());
    command
        .args(["--addr", addr, "--db", &spec.db])
        .args(&spec.args);
    // Only the variables given here: a developer's TANDEM_* (and AWS_*) settings must not leak in.
    for (key, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("TANDEM_") || k.starts_with("AWS_"))
    {
        command.env_remove(key);
    }
    command.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command.envs(spec.blob_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(filter) = &spec.log_filter {
        command.env("RUST_LOG", filter);
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    command.stderr(if spec.capture_logs.is_some() {
        Stdio::piped()
    } else if std::env::var_os("TANDEM_TEST_SERVER_LOGS").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().expect("spawning tandem-server");
    if let (Some(logs), Some(mut stderr)) = (spec.capture_logs.clone(), child.stderr.take()) {
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                logs.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
    }
    let url = read_listening_line(&mut child);
    (child, url)
}

/// A server in this process, on its own runtime and thread, driven by commands.
struct InProcess {
    url: String,
    commands: mpsc::Sender<ServerCommand>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum ServerCommand {
    Purge(mpsc::Sender<u64>),
    Stop,
}

impl InProcess {
    fn start(spec: &Spec, addr: &str, clock: ManualClock) -> InProcess {
        let mut argv: Vec<String> = vec![
            "tandem-server".into(),
            "--addr".into(),
            addr.into(),
            "--db".into(),
            spec.db.clone(),
        ];
        argv.extend(spec.args.iter().cloned());
        let secret = spec
            .env
            .iter()
            .find(|(k, _)| k == "TANDEM_JWT_SECRET")
            .map(|(_, v)| v.clone());
        if let Some(secret) = secret {
            argv.push("--jwt-secret".into());
            argv.push(secret);
        }
        let mut config = tandem_server::Config::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("bad test server flags {argv:?}: {e}"));
        // The admin token is read from the environment only; in process, from the spec's.
        config.admin_token = spec
            .env
            .iter()
            .find(|(k, _)| k == "TANDEM_ADMIN_TOKEN")
            .map(|(_, v)| v.clone());
        config.blob_store_options = spec.blob_env.clone();
        let (commands, receive) = mpsc::channel();
        let (ready, started) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the in-process server");
            let handle =
                match runtime.block_on(tandem_server::run_with_clock(config, Arc::new(clock))) {
                    Ok(handle) => handle,
                    Err(e) => {
                        let _ = ready.send(Err(format!("{e:#}")));
                        return;
                    }
                };
            let _ = ready.send(Ok(handle.url()));
            while let Ok(command) = receive.recv() {
                match command {
                    ServerCommand::Purge(reply) => {
                        let purged = runtime
                            .block_on(handle.purge_now())
                            .expect("the purge failed");
                        let _ = reply.send(purged);
                    }
                    ServerCommand::Stop => break,
                }
            }
            let _ = runtime.block_on(handle.shutdown());
        });
        let url = match started.recv() {
            Ok(Ok(url)) => url,
            Ok(Err(e)) => panic!("the in-process server did not start: {e}"),
            Err(_) => panic!("the in-process server's thread ended"),
        };
        InProcess {
            url,
            commands,
            thread: Some(thread),
        }
    }

    fn purge_now(&self) -> u64 {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(ServerCommand::Purge(reply))
            .expect("the in-process server is running");
        answer.recv().expect("the purge answered")
    }

    fn stop(mut self) {
        let _ = self.commands.send(ServerCommand::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.commands.send(ServerCommand::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
