//! `tandem-bench <suite> [--quick]`: runs a benchmark suite and prints one JSON object.
//! Suites: `local` (the store). `--quick` shrinks every size for a smoke run in tests; its figures
//! mean nothing.

mod local;
mod report;
mod stats;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let suite = args.iter().find(|a| !a.starts_with("--")).map(String::as_str);
    match suite {
        Some("local") => {
            report::print("local", &local::run(quick));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: tandem-bench local [--quick]");
            ExitCode::from(2)
        }
    }
}
