//! `tandem-bench <suite> [--quick] [--only NAME]`: runs a benchmark suite and prints one JSON
//! object. Suites: `local` (the store), `server` (the sync server over HTTP, on SQLite and
//! PostgreSQL). `--quick` shrinks every size for a smoke run in tests (its figures mean nothing);
//! `--only NAME` runs just the measurements named so, for profiling.

mod local;
mod report;
mod server;
mod stats;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).map(String::as_str);
    let suite = args.first().filter(|a| !a.starts_with("--")).map(String::as_str);
    match suite {
        Some("local") => {
            report::print("local", &local::run(quick, only));
            ExitCode::SUCCESS
        }
        Some("server") => match server::run(quick, only) {
            Ok(results) => {
                report::print("server", &results);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("server suite failed: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: tandem-bench local|server [--quick] [--only NAME]");
            ExitCode::from(2)
        }
    }
}
