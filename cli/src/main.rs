//! `tandem`: a Tandem device in a terminal, and the two-device demo.
//!
//! Exit status: 0 on success, 1 when the command failed, 2 when the command line cannot work
//! (unknown options, a malformed argument, no way to read a password).

mod args;
mod attachments;
mod batch;
mod commands;
mod credentials;
mod demo;
mod device;
mod endpoints;
mod error;
mod input;
mod password;
mod policy;
mod render;
mod revert;
mod spaces;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tokio::runtime::Runtime;

use args::{Cli, Command};
use error::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.global.json;
    endpoints::init(&cli.global.endpoints);
    let result = runtime().and_then(|rt| match cli.command {
        Command::Watch => watch::run(&rt, &cli.global).map(|()| None),
        Command::Demo { keep } => demo::run(&rt, keep, json).map(|()| None),
        command => commands::run(&rt, &cli.global, command).map(Some),
    });
    match result {
        Ok(reply) => {
            if let Some(reply) = reply {
                print_reply(&reply, json);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            if json {
                eprintln!("{}", error.to_json());
            } else {
                eprintln!("tandem: {error}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}

fn runtime() -> Result<Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::from)
}

fn print_reply(reply: &commands::Reply, json: bool) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`tandem list … | head`) is not an error worth a message.
    let _ = if json {
        writeln!(out, "{}", reply.json)
    } else if reply.text.is_empty() {
        Ok(())
    } else {
        writeln!(out, "{}", reply.text)
    };
}

/// Help and version print as usual; a bad command line exits 2, as JSON with `--json`.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) && error.exit_code() == 0
    {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    if std::env::args().any(|a| a == "--json") {
        let message = error.kind().to_string();
        let detail = error.to_string();
        let first = detail.lines().next().unwrap_or(&message);
        let cli_error = CliError::usage(first.trim_start_matches("error: ").to_string());
        eprintln!("{}", cli_error.to_json());
    } else {
        let _ = error.print();
    }
    ExitCode::from(2)
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
pub(crate) async fn interrupted() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
