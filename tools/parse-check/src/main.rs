//! `parse-check`: parses Swift and Kotlin with tree-sitter and checks the Swift package layout.
//!
//! Usage: parse-check [PATH...]
//!
//! Without paths it checks this repository: every Swift file of `bindings/swift` (hand-written
//! sources, tests, Package.swift) and of `bindings/generated/swift` (UniFFI's output; run
//! scripts/generate-bindings.sh first), then the package layout of `bindings/swift`, then every
//! Kotlin file (`.kt`, `.kts`) of `android-sample`, `bindings/android` and `bindings/kotlin/src`.
//! With paths, it parses the Swift and Kotlin files under them only. Exits 1 on any parse error
//! or layout problem.

use std::path::PathBuf;
use std::process::ExitCode;

use parse_check::kotlin::{check_kotlin_source, kotlin_files};
use parse_check::{check_package_layout, check_source, swift_files, KNOWN_GAPS};

fn main() -> ExitCode {
    // Read at run time, not baked in with env!: a build shared between checkouts (one cargo
    // target directory) must check the checkout it runs in. `cargo run` sets it.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from("tools/parse-check"), PathBuf::from);
    let root = manifest_dir.join("../..");
    let arguments: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let whole_repository = arguments.is_empty();
    let (paths, kotlin_paths) = if whole_repository {
        (
            vec![
                root.join("bindings/swift"),
                root.join("bindings/generated/swift"),
            ],
            vec![
                root.join("android-sample"),
                root.join("bindings/android"),
                root.join("bindings/kotlin/src"),
            ],
        )
    } else {
        (arguments.clone(), arguments)
    };

    let mut failed = false;
    let mut checked = 0;
    let mut gap_totals = vec![0usize; KNOWN_GAPS.len()];
    for path in &paths {
        let (files, left_out) = match swift_files(path) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                if path.ends_with("generated/swift") {
                    eprintln!("       the generated bindings are missing: run scripts/generate-bindings.sh first");
                }
                failed = true;
                continue;
            }
        };
        for dir in left_out {
            println!("not checked (SwiftPM build output): {}", dir.display());
        }
        // Paths given on the command line may hold only Kotlin; the total is checked below.
        if files.is_empty() && whole_repository {
            eprintln!("error: no Swift file under {}", path.display());
            failed = true;
        }
        for file in files {
            checked += 1;
            let source = match std::fs::read_to_string(&file) {
                Ok(source) => source,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    failed = true;
                    continue;
                }
            };
            let report = check_source(&source);
            let shown = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .display()
                .to_string();
            let workarounds: Vec<String> = report
                .workarounds
                .iter()
                .map(|(name, count)| format!("{name} x{count}"))
                .collect();
            for (name, count) in &report.workarounds {
                let index = KNOWN_GAPS
                    .iter()
                    .position(|g| g.name == *name)
                    .expect("reported gaps are known");
                gap_totals[index] += count;
            }
            if report.errors.is_empty() {
                if workarounds.is_empty() {
                    println!("ok    {shown}");
                } else {
                    println!(
                        "ok    {shown} (known grammar gaps worked around: {})",
                        workarounds.join(", ")
                    );
                }
            } else {
                failed = true;
                println!("FAIL  {shown}");
                for error in &report.errors {
                    println!("      {shown}:{error}");
                }
            }
        }
    }

    for (gap, total) in KNOWN_GAPS.iter().zip(&gap_totals) {
        if *total > 0 {
            println!(
                "known grammar gap {}: {} (rewritten {total} times)",
                gap.name, gap.description
            );
        }
    }

    if whole_repository {
        let problems = check_package_layout(&root, &root.join("bindings/swift"));
        if problems.is_empty() {
            println!("ok    bindings/swift package layout");
        } else {
            failed = true;
            for problem in problems {
                println!("FAIL  bindings/swift package layout: {problem}");
            }
        }
    }

    let mut kotlin_checked = 0;
    for path in &kotlin_paths {
        let (files, left_out) = match kotlin_files(path) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                failed = true;
                continue;
            }
        };
        for dir in left_out {
            println!("not checked (build output or IDE state): {}", dir.display());
        }
        if files.is_empty() && whole_repository {
            eprintln!("error: no Kotlin file under {}", path.display());
            failed = true;
        }
        for file in files {
            kotlin_checked += 1;
            let shown = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .display()
                .to_string();
            match std::fs::read_to_string(&file) {
                Ok(source) => {
                    let errors = check_kotlin_source(&source);
                    if errors.is_empty() {
                        println!("ok    {shown}");
                    } else {
                        failed = true;
                        println!("FAIL  {shown}");
                        for error in &errors {
                            println!("      {shown}:{error}");
                        }
                    }
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    failed = true;
                }
            }
        }
    }
    if !whole_repository && checked + kotlin_checked == 0 {
        eprintln!("error: no Swift or Kotlin file under the given paths");
        failed = true;
    }

    println!(
        "parse-check: {checked} Swift and {kotlin_checked} Kotlin files parsed{}",
        if failed { ", FAILED" } else { ", all ok" }
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
