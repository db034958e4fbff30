//! The repository's own Swift: every file parses and the package is laid out as the scripts
//! expect. Needs the generated bindings (scripts/generate-bindings.sh), which are checked too.

use std::fs;
use std::path::{Path, PathBuf};

use parse_check::{check_package_layout, check_source, swift_files};

/// The checkout under test. Read at run time (`cargo test` sets it), not baked in with env!: a
/// test binary shared between checkouts through one cargo target directory must check the one
/// it runs for.
fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test")).join("../..")
}

fn assert_all_parse(dir: &Path) -> usize {
    let (files, _) = swift_files(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(!files.is_empty(), "no Swift under {}", dir.display());
    for file in &files {
        let report = check_source(&fs::read_to_string(file).unwrap());
        assert!(
            report.errors.is_empty(),
            "{}: {:?}",
            file.display(),
            report.errors
        );
    }
    files.len()
}

#[test]
fn hand_written_swift_parses_without_workarounds() {
    let (files, _) = swift_files(&root().join("bindings/swift")).unwrap();
    assert!(
        files.len() >= 8,
        "Package.swift, sources and tests: {files:?}"
    );
    for file in files
        .iter()
        .filter(|f| !f.ends_with("Sources/Tandem/Tandem.swift"))
    {
        let report = check_source(&fs::read_to_string(file).unwrap());
        assert!(report.is_clean(), "{}: {report:?}", file.display());
    }
}

#[test]
fn generated_swift_parses_with_the_known_gaps_worked_around() {
    let dir = root().join("bindings/generated/swift");
    assert!(
        dir.join("Tandem.swift").is_file(),
        "run scripts/generate-bindings.sh first"
    );
    assert_eq!(assert_all_parse(&dir), 1);
    let report = check_source(&fs::read_to_string(dir.join("Tandem.swift")).unwrap());
    assert!(
        report
            .workarounds
            .iter()
            .any(|(name, n)| *name == "documentation-attribute" && *n > 0),
        "UniFFI's output is expected to use @_documentation: {:?}",
        report.workarounds
    );
}

#[test]
fn the_swift_package_layout_is_right() {
    let problems = check_package_layout(&root(), &root().join("bindings/swift"));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_broken_layout_is_reported() {
    // A copy of the package whose manifest points a target at a missing directory and depends on
    // an undeclared target.
    let copy = tempdir();
    let package = copy.join("bindings/swift");
    fs::create_dir_all(package.join("Sources/Tandem")).unwrap();
    fs::create_dir_all(copy.join("scripts")).unwrap();
    fs::write(package.join("Sources/Tandem/A.swift"), "let a = 1\n").unwrap();
    fs::copy(root().join("uniffi.toml"), copy.join("uniffi.toml")).unwrap();
    fs::copy(
        root().join("scripts/build-xcframework.sh"),
        copy.join("scripts/build-xcframework.sh"),
    )
    .unwrap();
    fs::copy(
        root().join("bindings/swift/.gitignore"),
        package.join(".gitignore"),
    )
    .unwrap();
    let manifest = fs::read_to_string(root().join("bindings/swift/Package.swift"))
        .unwrap()
        .replace(r#"path: "Tests/TandemTests""#, r#"path: "Tests/Missing""#)
        .replace(
            r#"dependencies: ["Tandem"]"#,
            r#"dependencies: ["Tandem", "Ghost"]"#,
        );
    fs::write(package.join("Package.swift"), manifest).unwrap();

    let problems = check_package_layout(&copy, &package);
    assert!(
        problems.iter().any(|p| p.contains("Tests/Missing")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("undeclared target Ghost")),
        "{problems:#?}"
    );
    fs::remove_dir_all(copy).unwrap();
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parse-check-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}
