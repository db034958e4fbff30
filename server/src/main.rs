//! `tandem-server`: parses flags, logs to stderr (text or JSON, `--log-format`), prints `listening on http://HOST:PORT` on stdout
//! once ready, and shuts down gracefully on Ctrl-C or SIGTERM.
//!
//! `tandem-server import COLLECTION FILE.jsonl [--prune]` loads a public collection instead
//! (same `--db`, `--schema` and environment), prints a summary and exits.
//!
//! `tandem-server admin pause|resume|users|revoke|delete-user …` calls a running server's admin
//! API (`tandem_server::admin_cli`).

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tandem_server::Config;

#[derive(Parser)]
#[command(
    name = "tandem-server",
    version,
    about = "Tandem's reference sync server"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the sync protocol (the default).
    Serve,
    /// Load a public collection from a JSON Lines file: one `{"id": …, "doc": {…} | null}` per
    /// line. The whole file is validated first; nothing is written when a line is bad.
    Import {
        /// The public collection to write.
        collection: String,
        /// The JSON Lines file.
        file: PathBuf,
        /// Also delete the collection's public records the file does not name.
        #[arg(long)]
        prune: bool,
    },
    /// Steer a running server through its admin API: pause and resume sync, list users, revoke
    /// sessions, delete a user. The admin token comes from `TANDEM_ADMIN_TOKEN` or
    /// `--admin-token-file`, never from the command line.
    Admin(tandem_server::admin_cli::AdminArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = cli.config;
    tandem_server::logging::init(config.log_format);
    if let Some(Command::Admin(args)) = cli.command {
        return tandem_server::admin_cli::run(args, &config).await;
    }
    if let Some(Command::Import {
        collection,
        file,
        prune,
    }) = cli.command
    {
        return match tandem_server::import::run(&config, &collection, &file, prune).await {
            Ok(summary) => {
                println!(
                    "{}",
                    serde_json::to_string(&summary).expect("a summary serializes")
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("import failed: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let handle = match tandem_server::run(config).await {
        Ok(handle) => handle,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {}", handle.url());
        let _ = stdout.flush();
    }
    let stop = handle.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    match handle.wait().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
