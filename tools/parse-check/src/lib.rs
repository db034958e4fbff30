//! Checks the Swift of the repository on machines without a Swift toolchain: every file must
//! parse with the tree-sitter Swift grammar, and the Swift package (`bindings/swift`) must be laid
//! out the way `Package.swift`, `scripts/build-xcframework.sh` and `uniffi.toml` expect. The
//! [`kotlin`] module does the same parse check for the Kotlin that needs an Android toolchain
//! (the sample app, the Android library, Gradle scripts).
//!
//! The Swift grammar lags behind Swift in two places that UniFFI's generated code hits. Each is
//! worked around by a narrow, exact rewrite ([`KNOWN_GAPS`]) whose every use is counted and
//! reported, so nothing is skipped silently and any other parse error still fails.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use tree_sitter::{Node, Parser, Tree};

pub mod kotlin;

/// A construct that is valid Swift but that the tree-sitter grammar cannot parse, with the
/// rewrite that lets the rest of the file be checked.
pub struct KnownGap {
    /// Short name used in reports.
    pub name: &'static str,
    /// What the construct is and why it is rewritten.
    pub description: &'static str,
    /// Rewrites every occurrence in place (same byte length, so positions stay right) and
    /// returns how many it rewrote.
    pub rewrite: fn(&mut String) -> usize,
}

/// The gaps worked around, in the order they are applied.
pub const KNOWN_GAPS: &[KnownGap] = &[
    KnownGap {
        name: "documentation-attribute",
        description: "`@_documentation(...)` alone between `#if swift(...)` and `#endif` ahead of its declaration \
                      (UniFFI's generated helpers); the attribute is blanked out",
        rewrite: blank_documentation_attributes,
    },
    KnownGap {
        name: "empty-tuple-closure",
        description: "the closure `{ () }` (the grammar has no empty-tuple expression); read as `{ [] }`",
        rewrite: rewrite_empty_tuple_closures,
    },
];

/// Blanks the `@_documentation(...)` attribute where UniFFI writes it alone inside a
/// conditional block ahead of the declaration it applies to:
///
/// ```text
/// #if swift(>=5.8)
/// @_documentation(visibility: private)
/// #endif
/// fileprivate struct FfiConverterUInt64: FfiConverterPrimitive {
/// ```
///
/// The grammar parses the attribute next to its declaration, but not separated from it by
/// `#endif`. Only that exact three-line shape is rewritten (with spaces, keeping positions); an
/// attribute anywhere else is left to the parser.
pub fn blank_documentation_attributes(source: &mut String) -> usize {
    let lines: Vec<(usize, &str)> = line_spans(source);
    let mut spans = Vec::new();
    for window in lines.windows(3) {
        let [(_, open), (offset, attribute), (_, close)] = window else {
            continue;
        };
        let trimmed = attribute.trim();
        if open.trim_start().starts_with("#if swift(")
            && close.trim() == "#endif"
            && trimmed.starts_with("@_documentation(")
            && trimmed.ends_with(')')
            && trimmed.matches('(').count() == 1
            && trimmed.matches(')').count() == 1
        {
            let start = offset + (attribute.len() - attribute.trim_start().len());
            spans.push(start..start + trimmed.len());
        }
    }
    let count = spans.len();
    if count > 0 {
        let mut bytes = std::mem::take(source).into_bytes();
        for span in spans {
            bytes[span].fill(b' ');
        }
        // Only ASCII bytes were replaced with ASCII spaces, so the text is still UTF-8.
        *source = String::from_utf8(bytes).expect("ASCII-for-ASCII rewrite keeps UTF-8");
    }
    count
}

/// Each line of `source` (without its line break) with the byte offset where it starts.
fn line_spans(source: &str) -> Vec<(usize, &str)> {
    let mut offset = 0;
    source
        .split('\n')
        .map(|line| {
            let start = offset;
            offset += line.len() + 1;
            (start, line.strip_suffix('\r').unwrap_or(line))
        })
        .collect()
}

/// Rewrites the exact closure `{ () }` to `{ [] }`: same length, still one expression.
pub fn rewrite_empty_tuple_closures(source: &mut String) -> usize {
    let count = source.matches("{ () }").count();
    if count > 0 {
        *source = source.replace("{ () }", "{ [] }");
    }
    count
}

/// Where the grammar failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The source around the error (first line of the failing node).
    pub snippet: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: cannot parse `{}`",
            self.line, self.column, self.snippet
        )
    }
}

/// What checking one source gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SourceReport {
    /// How often each known gap was worked around (only gaps that occurred).
    pub workarounds: Vec<(&'static str, usize)>,
    /// Every parse error left after the workarounds.
    pub errors: Vec<ParseError>,
}

impl SourceReport {
    /// Parsed with no error and no workaround: what hand-written Swift must be (the
    /// workarounds exist for UniFFI's output only).
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.workarounds.is_empty()
    }
}

/// Parses Swift source text (tree-sitter Swift grammar).
pub fn parse(source: &str) -> Tree {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_swift::LANGUAGE.into())
        .expect("the tree-sitter-swift grammar matches the tree-sitter library");
    parser
        .parse(source, None)
        .expect("parsing without a timeout or cancellation returns a tree")
}

/// Applies the known-gap workarounds to `source`, parses it and lists what failed.
pub fn check_source(source: &str) -> SourceReport {
    let mut text = source.to_string();
    let mut report = SourceReport::default();
    for gap in KNOWN_GAPS {
        let count = (gap.rewrite)(&mut text);
        if count > 0 {
            report.workarounds.push((gap.name, count));
        }
    }
    let tree = parse(&text);
    collect_errors(tree.root_node(), &text, &mut report.errors);
    report
}

/// Every ERROR and MISSING node under `node`, one per broken region (any grammar).
pub(crate) fn collect_errors(node: Node, text: &str, errors: &mut Vec<ParseError>) {
    if !node.has_error() {
        return;
    }
    if node.is_error() || node.is_missing() {
        let position = node.start_position();
        let snippet = if node.is_missing() {
            format!("missing {}", node.kind())
        } else {
            text[node.byte_range()]
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .chars()
                .take(80)
                .collect()
        };
        errors.push(ParseError {
            line: position.row + 1,
            column: position.column + 1,
            snippet,
        });
        return; // one report per broken region
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        collect_errors(child, text, errors);
    }
}

/// Every `.swift` file under `path` (or `path` itself), sorted. SwiftPM's build and state
/// directories (`.build`, `.swiftpm`) hold no sources of ours and are left out; the caller is
/// told which were.
pub fn swift_files(path: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    source_files(
        path,
        |name| name.ends_with(".swift"),
        &[".build", ".swiftpm"],
    )
}

/// Every file under `path` (or `path` itself) whose name `is_source` accepts, sorted, and the
/// directories left out because their name is in `skip` (build output, tool state), sorted.
pub fn source_files(
    path: &Path,
    is_source: fn(&str) -> bool,
    skip: &[&str],
) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut left_out = Vec::new();
    if path.is_file() {
        files.push(path.to_path_buf());
    } else {
        walk(path, is_source, skip, &mut files, &mut left_out)?;
    }
    files.sort();
    left_out.sort();
    Ok((files, left_out))
}

fn walk(
    dir: &Path,
    is_source: fn(&str) -> bool,
    skip: &[&str],
    files: &mut Vec<PathBuf>,
    left_out: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if skip.contains(&name) {
                left_out.push(path);
            } else {
                walk(&path, is_source, skip, files, left_out)?;
            }
        } else if is_source(name) {
            files.push(path);
        }
    }
    Ok(())
}

/// A target declared in `Package.swift`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `binaryTarget`, `target` or `testTarget`.
    pub kind: String,
    pub name: String,
    pub path: Option<String>,
    pub dependencies: Vec<String>,
}

/// The parts of a `Package.swift` the layout check needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub targets: Vec<Target>,
    /// `(product name, its targets)` of each `.library`.
    pub libraries: Vec<(String, Vec<String>)>,
}

/// Reads the targets and library products of a `Package.swift` from its syntax tree. Only
/// literal strings count: the manifest is meant to be declarative.
pub fn read_manifest(source: &str) -> Result<Manifest, String> {
    let report = check_source(source);
    if let Some(error) = report.errors.first() {
        return Err(format!("Package.swift does not parse: {error}"));
    }
    let tree = parse(source);
    let mut manifest = Manifest::default();
    visit_calls(tree.root_node(), source, &mut manifest);
    Ok(manifest)
}

fn visit_calls(node: Node, source: &str, manifest: &mut Manifest) {
    if node.kind() == "call_expression" {
        if let Some(callee) = node.child(0) {
            let callee_text = &source[callee.byte_range()];
            let kind = callee_text.trim_start_matches('.');
            if callee_text.starts_with('.')
                && matches!(kind, "binaryTarget" | "target" | "testTarget" | "library")
            {
                let arguments = labeled_arguments(node, source);
                let string = |label: &str| {
                    arguments
                        .iter()
                        .find(|(l, _)| l == label)
                        .and_then(|(_, v)| string_literal(*v, source))
                };
                let strings = |label: &str| {
                    arguments
                        .iter()
                        .find(|(l, _)| l == label)
                        .map(|(_, v)| string_elements(*v, source))
                        .unwrap_or_default()
                };
                if let Some(name) = string("name") {
                    if kind == "library" {
                        manifest.libraries.push((name, strings("targets")));
                    } else {
                        manifest.targets.push(Target {
                            kind: kind.to_string(),
                            name,
                            path: string("path"),
                            dependencies: strings("dependencies"),
                        });
                    }
                }
            }
        }
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        visit_calls(child, source, manifest);
    }
}

/// `(label, value)` of each labeled argument of a call.
fn labeled_arguments<'t>(call: Node<'t>, source: &str) -> Vec<(String, Node<'t>)> {
    let mut out = Vec::new();
    let mut cursor = call.walk();
    for suffix in call
        .children(&mut cursor)
        .filter(|n| n.kind() == "call_suffix")
    {
        let mut c2 = suffix.walk();
        for arguments in suffix
            .children(&mut c2)
            .filter(|n| n.kind() == "value_arguments")
        {
            let mut c3 = arguments.walk();
            for argument in arguments
                .children(&mut c3)
                .filter(|n| n.kind() == "value_argument")
            {
                if let (Some(label), Some(value)) = (
                    argument.child_by_field_name("name"),
                    argument.child_by_field_name("value"),
                ) {
                    out.push((source[label.byte_range()].to_string(), value));
                }
            }
        }
    }
    out
}

fn string_literal(node: Node, source: &str) -> Option<String> {
    if node.kind() != "line_string_literal" {
        return None;
    }
    let text = &source[node.byte_range()];
    // Interpolation would make the value depend on evaluation; only plain literals are read.
    (!text.contains("\\(")).then(|| text.trim_matches('"').to_string())
}

fn string_elements(node: Node, source: &str) -> Vec<String> {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .filter_map(|n| string_literal(n, source))
        .collect()
}

/// Checks the Swift package in `package_dir` against the repository it lives in (`root`):
/// returns the problems found, empty when the layout is right.
///
/// - every target other than the binary one has a `path` that is a directory holding Swift;
/// - every dependency and every product target names a declared target;
/// - the binary target is `uniffi.toml`'s `ffi_module_name`, at the `.xcframework` path that
///   `scripts/build-xcframework.sh` writes, and the Swift target is `uniffi.toml`'s
///   `module_name`, whose directory is where the script copies the generated `Tandem.swift`;
/// - both build outputs are ignored by git, so they are never committed.
pub fn check_package_layout(root: &Path, package_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let (manifest_text, uniffi, script, ignore) = match (
        read(&package_dir.join("Package.swift")),
        read(&root.join("uniffi.toml")),
        read(&root.join("scripts/build-xcframework.sh")),
        read(&package_dir.join(".gitignore")),
    ) {
        (Ok(m), Ok(u), Ok(s), Ok(i)) => (m, u, s, i),
        (m, u, s, i) => {
            return [m.err(), u.err(), s.err(), i.err()]
                .into_iter()
                .flatten()
                .collect();
        }
    };
    let manifest = match read_manifest(&manifest_text) {
        Ok(manifest) => manifest,
        Err(problem) => return vec![problem],
    };
    let names: Vec<&str> = manifest.targets.iter().map(|t| t.name.as_str()).collect();

    for target in &manifest.targets {
        for dependency in &target.dependencies {
            if !names.contains(&dependency.as_str()) {
                problems.push(format!(
                    "target {} depends on undeclared target {dependency}",
                    target.name
                ));
            }
        }
        if target.kind == "binaryTarget" {
            continue;
        }
        let Some(path) = &target.path else {
            problems.push(format!("target {} has no explicit path", target.name));
            continue;
        };
        let dir = package_dir.join(path);
        match swift_files(&dir) {
            Ok((files, _)) if !files.is_empty() => {}
            Ok(_) => problems.push(format!(
                "target {}: {} holds no Swift file",
                target.name,
                dir.display()
            )),
            Err(e) => problems.push(format!("target {}: {}: {e}", target.name, dir.display())),
        }
    }
    for (product, targets) in &manifest.libraries {
        if targets.is_empty() {
            problems.push(format!("library {product} lists no targets"));
        }
        for target in targets {
            if !names.contains(&target.as_str()) {
                problems.push(format!(
                    "library {product} names undeclared target {target}"
                ));
            }
        }
    }

    let setting = |key: &str| {
        uniffi.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
    };
    let binaries: Vec<&Target> = manifest
        .targets
        .iter()
        .filter(|t| t.kind == "binaryTarget")
        .collect();
    match (binaries.as_slice(), setting("ffi_module_name")) {
        ([binary], Some(ffi_module)) => {
            if binary.name != ffi_module {
                problems.push(format!("binary target {} is not uniffi.toml's ffi_module_name {ffi_module}", binary.name));
            }
            match &binary.path {
                Some(path) if path.ends_with(".xcframework") => {
                    if !script.contains(&format!("\"$package/{path}\"")) {
                        problems.push(format!("scripts/build-xcframework.sh does not write $package/{path}"));
                    }
                    if !ignored(&ignore, path) {
                        problems.push(format!("{path} is not in bindings/swift/.gitignore"));
                    }
                }
                other => problems.push(format!("binary target {} has path {other:?}, not an .xcframework", binary.name)),
            }
        }
        (binaries, ffi_module) => problems.push(format!(
            "expected one binary target and uniffi.toml's ffi_module_name, found {} and {ffi_module:?}",
            binaries.len()
        )),
    }
    match setting("module_name") {
        Some(module) => match manifest
            .targets
            .iter()
            .find(|t| t.name == module && t.kind == "target")
        {
            Some(Target {
                path: Some(path),
                dependencies,
                ..
            }) => {
                let generated = format!("{path}/{module}.swift");
                if !script.contains(&format!("\"$package/{generated}\"")) {
                    problems.push(format!("scripts/build-xcframework.sh does not copy the bindings to $package/{generated}"));
                }
                if !ignored(&ignore, &generated) {
                    problems.push(format!("{generated} is not in bindings/swift/.gitignore"));
                }
                if !binaries.iter().any(|b| dependencies.contains(&b.name)) {
                    problems.push(format!(
                        "target {module} does not depend on the binary target"
                    ));
                }
            }
            _ => problems.push(format!(
                "no target named {module} (uniffi.toml's module_name) with a path"
            )),
        },
        None => problems.push("uniffi.toml has no module_name".to_string()),
    }
    problems
}

/// Whether `.gitignore` (anchored entries, as written in bindings/swift) ignores `path`.
fn ignored(gitignore: &str, path: &str) -> bool {
    gitignore.lines().map(str::trim).any(|line| {
        let entry = line.trim_start_matches('/').trim_end_matches('/');
        !line.starts_with('#') && !entry.is_empty() && entry == path.trim_end_matches('/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documentation_attributes_are_blanked_in_place_and_counted() {
        let mut text = "#if swift(>=5.8)\n    @_documentation(visibility: private)\n#endif\npublic func f() {}\n".to_string();
        let before = text.len();
        assert_eq!(blank_documentation_attributes(&mut text), 1);
        assert_eq!(text.len(), before, "positions of later errors stay right");
        assert_eq!(
            text,
            format!(
                "#if swift(>=5.8)\n{}\n#endif\npublic func f() {{}}\n",
                " ".repeat(40)
            )
        );
    }

    #[test]
    fn documentation_attributes_elsewhere_are_left_to_the_parser() {
        for source in [
            "@_documentation(visibility: private)\npublic func f() {}\n",
            "#if swift(>=5.8)\n@_documentation(visibility: private\n#endif\npublic func f() {}\n",
            "#if DEBUG\n@_documentation(visibility: private)\n#endif\npublic func f() {}\n",
        ] {
            let mut text = source.to_string();
            assert_eq!(blank_documentation_attributes(&mut text), 0, "{source}");
            assert_eq!(text, source);
        }
        // Next to its declaration the grammar reads it; malformed, it still fails.
        assert_eq!(
            check_source("@_documentation(visibility: private)\npublic func f() {}\n"),
            SourceReport::default()
        );
        assert!(!check_source(
            "#if swift(>=5.8)\n@_documentation(visibility: private\n#endif\nfunc f() {}\n"
        )
        .errors
        .is_empty());
    }

    #[test]
    fn the_gaps_are_real_and_the_workarounds_close_them() {
        // Without the rewrites the grammar fails on these; if a grammar update fixes them, this
        // test says so and the workaround can go.
        let documented =
            "#if swift(>=5.8)\n@_documentation(visibility: private)\n#endif\npublic struct S {}\n";
        assert!(parse(documented).root_node().has_error());
        let closure = "let writeReturn = { () }\n";
        assert!(parse(closure).root_node().has_error());

        let report = check_source(&format!("{documented}{closure}"));
        assert_eq!(report.errors, vec![]);
        assert_eq!(
            report.workarounds,
            vec![("documentation-attribute", 1), ("empty-tuple-closure", 1)]
        );
    }

    #[test]
    fn other_errors_still_fail_next_to_a_workaround() {
        let report = check_source(
            "#if swift(>=5.8)\n@_documentation(visibility: private)\n#endif\nfunc f( {\n}\n",
        );
        assert_eq!(report.workarounds, vec![("documentation-attribute", 1)]);
        assert!(!report.errors.is_empty());
        assert_eq!(report.errors[0].line, 4, "{:?}", report.errors);
    }

    #[test]
    fn valid_swift_parses_without_workarounds() {
        let report =
            check_source("import Foundation\nfinal class A: Sendable { let x = [1, 2] }\n");
        assert_eq!(report, SourceReport::default());
    }

    #[test]
    fn manifest_targets_and_products_are_read() {
        let manifest = read_manifest(
            r#"let package = Package(name: "P", products: [.library(name: "L", targets: ["A"])],
               targets: [.binaryTarget(name: "B", path: "B.xcframework"),
                         .target(name: "A", dependencies: ["B"], path: "Sources/A")])"#,
        )
        .unwrap();
        assert_eq!(
            manifest.libraries,
            vec![("L".to_string(), vec!["A".to_string()])]
        );
        assert_eq!(
            manifest.targets,
            vec![
                Target {
                    kind: "binaryTarget".into(),
                    name: "B".into(),
                    path: Some("B.xcframework".into()),
                    dependencies: vec![]
                },
                Target {
                    kind: "target".into(),
                    name: "A".into(),
                    path: Some("Sources/A".into()),
                    dependencies: vec!["B".into()]
                },
            ]
        );
    }

    #[test]
    fn gitignore_entries_match_anchored_paths() {
        let ignore = "# c\n/TandemFFI.xcframework/\n/Sources/Tandem/Tandem.swift\n";
        assert!(ignored(ignore, "TandemFFI.xcframework"));
        assert!(ignored(ignore, "Sources/Tandem/Tandem.swift"));
        assert!(!ignored(ignore, "Sources/Tandem/Streams.swift"));
    }
}
