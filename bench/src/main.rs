//! `tandem-bench <suite> [--quick] [--only NAME]`: runs a benchmark suite and prints one JSON
//! object. Suites: `local` (the store), `sync` (engines syncing through a local server), `server`
//! (the sync server over HTTP, on SQLite and PostgreSQL), `ffi` (library size and the cost of a
//! call from Kotlin and Python), `attachments` (files up and down through engine and server, against
//! plain HTTP, and the memory it takes), `scale` (sync, open and queries as the store and the
//! outbox grow; `--chart PATH` writes its SVG, `--sizes N,N,…` replaces its store sizes).
//! `--quick` shrinks every size for a smoke run in tests (its figures mean nothing;
//! `cdylib_size`, which needs an optimised build, is skipped); `--only NAME` runs just the
//! measurements named so.

mod attachments;
mod ffi;
mod local;
mod report;
mod scale;
mod server;
mod stats;
mod sync;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let suite = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str);
    match suite {
        Some("ffi") => match ffi::run(quick, only) {
            Ok(results) => {
                report::print("ffi", &results);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ffi suite failed: {e}");
                ExitCode::FAILURE
            }
        },
        Some("attachments") => match attachments::run(quick, only) {
            Ok(results) => {
                report::print("attachments", &results);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("attachments suite failed: {e:#}");
                ExitCode::FAILURE
            }
        },
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
        Some("scale") => {
            let option = |name: &str| {
                args.iter()
                    .position(|a| a == name)
                    .and_then(|i| args.get(i + 1))
                    .map(String::as_str)
            };
            let sizes = option("--sizes").map(|list| {
                list.split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            });
            match scale::run(quick, only, sizes, option("--chart")) {
                Ok(results) => {
                    report::print("scale", &results);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("scale suite failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("sync") => {
            report::print("sync", &sync::run(quick, only));
            ExitCode::SUCCESS
        }
        // Child processes of the sync suite: the server, and the client whose memory is measured.
        Some("__serve") => {
            sync::serve_child(
                args.get(1).map_or("", String::as_str),
                args.get(2).and_then(|n| n.parse().ok()),
            );
            ExitCode::SUCCESS
        }
        Some("__bootstrap") => {
            sync::bootstrap_child(&args[1..]);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: tandem-bench local|sync|server|ffi|attachments|scale [--quick] [--only NAME] \
                 [--chart PATH] [--sizes N,N,…]"
            );
            ExitCode::from(2)
        }
    }
}
