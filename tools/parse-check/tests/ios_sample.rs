//! The iOS sample app (`ios-sample/`), checked without Xcode: every Swift file parses with no
//! known-gap workaround, `project.yml` (XcodeGen) and `Info.plist` agree with the repository and
//! with the Swift code, the app calls the Tandem API with argument labels the bindings declare,
//! and the development-only settings stay development-only.
//!
//! The API check needs the generated bindings (scripts/generate-bindings.sh), like
//! tests/repository.rs. What it cannot do is type-check: that needs Xcode (see
//! ios-sample/README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use parse_check::{check_source, parse, read_manifest, swift_files};
use serde_yaml_ng::Value as Yaml;
use tree_sitter::Node;

/// The checkout under test, read at run time as in tests/repository.rs.
fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test")).join("../..")
}

fn sample() -> PathBuf {
    root().join("ios-sample")
}

/// `(path, text)` of every Swift file under `dir`.
fn read_swift(dir: &Path) -> Vec<(PathBuf, String)> {
    let (files, _) = swift_files(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files
        .into_iter()
        .map(|file| {
            let text =
                fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            (file, text)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// project.yml and Info.plist

/// What the project check found: problems, and facts the other checks use.
#[derive(Debug, Default)]
struct ProjectReport {
    problems: Vec<String>,
    /// Source directories and files of each target, resolved against `ios-sample/`.
    target_sources: BTreeMap<String, Vec<PathBuf>>,
}

fn yaml_str<'a>(value: &'a Yaml, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Yaml::as_str)
}

/// Checks `project.yml` in `sample_dir` against the repository at `root`:
///
/// - every path it names exists (sources, packages, `INFOPLIST_FILE`, `info.path`);
/// - the only package is the local Swift package at `bindings/swift` (no third-party
///   dependency), and each package dependency names a library product its manifest declares;
/// - target dependencies name declared targets and packages; a unit-test target depends on the
///   app target;
/// - the schema is the repository's `schemas/sample.json`, referenced as a resource, and no
///   copy of it lives under `ios-sample/`;
/// - the deployment target is iOS 17 or later;
/// - the app's Info.plist (the file, plus any `info.properties`) has
///   `NSAppTransportSecurity.NSAllowsLocalNetworking = true`, `UIBackgroundModes` with `fetch`,
///   and lists `background_identifier` in `BGTaskSchedulerPermittedIdentifiers`;
/// - the generated Xcode project is ignored by git.
fn check_project(root: &Path, sample_dir: &Path, background_identifier: &str) -> ProjectReport {
    let mut report = ProjectReport::default();
    let problems = &mut report.problems;
    let spec_path = sample_dir.join("project.yml");
    let spec: Yaml = match fs::read_to_string(&spec_path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_yaml_ng::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(spec) => spec,
        Err(e) => {
            problems.push(format!("project.yml: {e}"));
            return report;
        }
    };
    let exists = |relative: &str| sample_dir.join(relative).exists();
    let same_file = |relative: &str, expected: &Path| match (
        sample_dir.join(relative).canonicalize(),
        expected.canonicalize(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };

    // The deployment target.
    match spec
        .get("options")
        .and_then(|o| o.get("deploymentTarget"))
        .and_then(|d| d.get("iOS"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| f.to_string()))
        }) {
        Some(version) => {
            let major: u32 = version
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if major < 17 {
                problems.push(format!(
                    "options.deploymentTarget.iOS is {version}, the app needs 17.0 (Observation)"
                ));
            }
        }
        None => problems.push("options.deploymentTarget.iOS is not set".into()),
    }

    // Packages: local only, the repository's Swift package.
    let mut package_products: BTreeMap<String, Vec<String>> = BTreeMap::new();
    match spec.get("packages").and_then(Yaml::as_mapping) {
        Some(packages) => {
            for (name, package) in packages {
                let name = name.as_str().unwrap_or_default().to_string();
                if package.get("url").is_some() || package.get("github").is_some() {
                    problems.push(format!(
                        "package {name} is remote: the sample takes no third-party dependency"
                    ));
                    continue;
                }
                let Some(path) = yaml_str(package, "path") else {
                    problems.push(format!("package {name} has no path"));
                    continue;
                };
                if !same_file(path, &root.join("bindings/swift")) {
                    problems.push(format!(
                        "package {name} path {path} is not the repository's bindings/swift"
                    ));
                }
                match fs::read_to_string(sample_dir.join(path).join("Package.swift")) {
                    Ok(manifest) => match read_manifest(&manifest) {
                        Ok(manifest) => {
                            package_products.insert(
                                name,
                                manifest.libraries.into_iter().map(|(l, _)| l).collect(),
                            );
                        }
                        Err(e) => problems.push(format!("package {name}: {e}")),
                    },
                    Err(e) => {
                        problems.push(format!("package {name}: no Package.swift at {path}: {e}"))
                    }
                }
            }
        }
        None => problems
            .push("project.yml declares no packages (the app needs ../bindings/swift)".into()),
    }
    if package_products.is_empty() {
        problems.push("no local package at ../bindings/swift".into());
    }

    // Targets.
    let Some(targets) = spec.get("targets").and_then(Yaml::as_mapping) else {
        problems.push("project.yml declares no targets".into());
        return report;
    };
    let target_names: BTreeSet<String> = targets
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let mut schema_resource = false;
    let mut app_targets = Vec::new();
    for (name, target) in targets {
        let name = name.as_str().unwrap_or_default().to_string();
        let kind = yaml_str(target, "type").unwrap_or_default().to_string();
        if kind == "application" {
            app_targets.push(name.clone());
        }
        let sources: Vec<Yaml> = match target.get("sources") {
            Some(Yaml::Sequence(items)) => items.clone(),
            Some(single) => vec![single.clone()],
            None => Vec::new(),
        };
        if sources.is_empty() {
            problems.push(format!("target {name} has no sources"));
        }
        for source in &sources {
            let path = source.as_str().or_else(|| yaml_str(source, "path"));
            let Some(path) = path else {
                problems.push(format!("target {name}: a source without a path"));
                continue;
            };
            if !exists(path) {
                problems.push(format!("target {name}: source {path} does not exist"));
                continue;
            }
            report
                .target_sources
                .entry(name.clone())
                .or_default()
                .push(sample_dir.join(path).canonicalize().expect("exists"));
            if path.ends_with("sample.json") {
                if !same_file(path, &root.join("schemas/sample.json")) {
                    problems.push(format!(
                        "target {name}: {path} is not the repository's schemas/sample.json"
                    ));
                } else if yaml_str(source, "buildPhase") != Some("resources") {
                    problems.push(format!(
                        "target {name}: {path} is not in the resources build phase"
                    ));
                } else if kind == "application" {
                    schema_resource = true;
                }
            }
        }
        if let Some(dependencies) = target.get("dependencies").and_then(Yaml::as_sequence) {
            for dependency in dependencies {
                if let Some(package) = yaml_str(dependency, "package") {
                    match package_products.get(package) {
                        None => problems.push(format!(
                            "target {name} depends on undeclared package {package}"
                        )),
                        Some(products) => {
                            let product = yaml_str(dependency, "product").unwrap_or(package);
                            if !products.iter().any(|p| p == product) {
                                problems.push(format!(
                                    "target {name}: package {package} has no library product {product} (it has {products:?})"
                                ));
                            }
                        }
                    }
                }
                if let Some(other) = yaml_str(dependency, "target") {
                    if !target_names.contains(other) {
                        problems.push(format!(
                            "target {name} depends on undeclared target {other}"
                        ));
                    }
                }
            }
        }
        if kind == "bundle.unit-test" {
            let hosts: Vec<&str> = target
                .get("dependencies")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|d| yaml_str(d, "target"))
                .collect();
            if !hosts.iter().any(|h| {
                targets
                    .get(*h)
                    .and_then(|t| yaml_str(t, "type"))
                    .is_some_and(|k| k == "application")
            }) {
                problems.push(format!(
                    "test target {name} does not depend on the app target"
                ));
            }
        }

        // Info.plist: the file named by INFOPLIST_FILE or info.path, plus info.properties.
        let settings = target
            .get("settings")
            .and_then(|s| s.get("base").or(Some(s)));
        let plist_file = settings
            .and_then(|s| yaml_str(s, "INFOPLIST_FILE"))
            .or_else(|| target.get("info").and_then(|i| yaml_str(i, "path")));
        if kind != "application" {
            if let Some(file) = plist_file {
                if !exists(file) {
                    problems.push(format!("target {name}: {file} does not exist"));
                }
            }
            continue;
        }
        let mut info = plist::Dictionary::new();
        match plist_file {
            Some(file) => match plist::Value::from_file(sample_dir.join(file)) {
                Ok(plist::Value::Dictionary(dictionary)) => info = dictionary,
                Ok(_) => problems.push(format!("target {name}: {file} is not a dictionary")),
                Err(e) => problems.push(format!("target {name}: {file}: {e}")),
            },
            None => {
                if target.get("info").is_none() {
                    problems.push(format!(
                        "target {name} has neither INFOPLIST_FILE nor info properties"
                    ));
                }
            }
        }
        if let Some(properties) = target.get("info").and_then(|i| i.get("properties")) {
            match serde_yaml_ng::from_value::<plist::Value>(properties.clone()) {
                Ok(plist::Value::Dictionary(extra)) => info.extend(extra),
                _ => problems.push(format!(
                    "target {name}: info.properties is not a dictionary"
                )),
            }
        }
        problems.extend(check_info(&name, &info, background_identifier));
    }
    if app_targets.len() != 1 {
        problems.push(format!(
            "expected one application target, found {app_targets:?}"
        ));
    }
    if !schema_resource {
        problems.push("the app target does not bundle ../schemas/sample.json as a resource".into());
    }

    // No copy of the schema inside the sample.
    let schema = fs::read(root.join("schemas/sample.json")).unwrap_or_default();
    let mut stack = vec![sample_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("TandemPlans.xcodeproj") && !path.ends_with("DerivedData") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "json")
                && fs::read(&path).ok() == Some(schema.clone())
            {
                problems.push(format!(
                    "{} duplicates schemas/sample.json; reference it instead",
                    path.display()
                ));
            }
        }
    }

    let ignore = fs::read_to_string(sample_dir.join(".gitignore")).unwrap_or_default();
    if !ignore
        .lines()
        .any(|l| l.trim().trim_matches('/') == "TandemPlans.xcodeproj")
    {
        problems.push(
            "ios-sample/.gitignore does not ignore the generated TandemPlans.xcodeproj".into(),
        );
    }
    report
}

/// The app's Info.plist keys for local development and background sync.
fn check_info(target: &str, info: &plist::Dictionary, background_identifier: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let local_networking = info
        .get("NSAppTransportSecurity")
        .and_then(plist::Value::as_dictionary)
        .and_then(|ats| ats.get("NSAllowsLocalNetworking"))
        .and_then(plist::Value::as_boolean);
    if local_networking != Some(true) {
        problems.push(format!(
            "target {target}: NSAppTransportSecurity.NSAllowsLocalNetworking is not true"
        ));
    }
    let strings = |key: &str| -> Vec<String> {
        info.get(key)
            .and_then(plist::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_string().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let permitted = strings("BGTaskSchedulerPermittedIdentifiers");
    if !permitted.iter().any(|p| p == background_identifier) {
        problems.push(format!(
            "target {target}: BGTaskSchedulerPermittedIdentifiers {permitted:?} lacks {background_identifier:?}, the identifier the Swift code registers"
        ));
    }
    if !strings("UIBackgroundModes").iter().any(|m| m == "fetch") {
        problems.push(format!(
            "target {target}: UIBackgroundModes lacks fetch (BGAppRefreshTask needs it)"
        ));
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Swift syntax helpers

fn text<'s>(node: Node, source: &'s str) -> &'s str {
    &source[node.byte_range()]
}

fn walk<'t>(node: Node<'t>, visit: &mut impl FnMut(Node<'t>)) {
    visit(node);
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        walk(child, visit);
    }
}

/// The string assigned to `let NAME = "…"` in `source`, if there is exactly one.
fn string_constant(source: &str, name: &str) -> Option<String> {
    let tree = parse(source);
    let mut found = Vec::new();
    walk(tree.root_node(), &mut |node| {
        if node.kind() != "property_declaration" {
            return;
        }
        let bound = node
            .child_by_field_name("name")
            .and_then(|p| p.child_by_field_name("bound_identifier"))
            .map(|b| text(b, source));
        let value = node.child_by_field_name("value");
        if let (Some(bound), Some(value)) = (bound, value) {
            if bound == name && value.kind() == "line_string_literal" {
                let literal = text(value, source);
                if !literal.contains("\\(") {
                    found.push(literal.trim_matches('"').to_string());
                }
            }
        }
    });
    (found.len() == 1).then(|| found.remove(0))
}

/// One parameter of a declaration: its argument label (None for `_`) and whether it has a
/// default value.
#[derive(Debug, Clone, PartialEq)]
struct Param {
    label: Option<String>,
    defaulted: bool,
}

/// A call's argument labels (None for an unlabeled argument).
type Labels = Vec<Option<String>>;

fn parameters(declaration: Node, source: &str) -> Vec<Param> {
    let mut params: Vec<Param> = Vec::new();
    let mut cursor = declaration.walk();
    for (index, child) in declaration.children(&mut cursor).enumerate() {
        if child.kind() == "parameter" {
            let label = child
                .child_by_field_name("external_name")
                .or_else(|| child.child_by_field_name("name"))
                .map(|n| text(n, source).trim_matches('`').to_string());
            params.push(Param {
                label: label.filter(|l| l != "_"),
                defaulted: false,
            });
        } else if declaration.field_name_for_child(index as u32) == Some("default_value") {
            if let Some(last) = params.last_mut() {
                last.defaulted = true;
            }
        }
    }
    params
}

/// Whether a call with `labels` can call a declaration with `params` (defaulted parameters may
/// be left out; order is kept).
fn accepts(params: &[Param], labels: &Labels) -> bool {
    let mut remaining = labels.iter().peekable();
    for param in params {
        match remaining.peek() {
            Some(label) if **label == param.label => {
                remaining.next();
            }
            _ if param.defaulted => {}
            _ => return false,
        }
    }
    remaining.next().is_none()
}

/// The Tandem API as declared by the generated bindings and the package's hand-written Swift:
/// the methods of `Tandem` (class and extensions) and the initializers of every type.
#[derive(Debug, Default)]
struct Api {
    methods: BTreeMap<String, Vec<Vec<Param>>>,
    initializers: BTreeMap<String, Vec<Vec<Param>>>,
}

fn read_api(sources: &[String]) -> Api {
    let mut api = Api::default();
    for source in sources {
        let tree = parse(source);
        walk(tree.root_node(), &mut |node| {
            if node.kind() != "class_declaration" {
                return;
            }
            let Some(owner) = node
                .child_by_field_name("name")
                .map(|n| text(n, source).to_string())
            else {
                return;
            };
            let Some(body) = node.child_by_field_name("body") else {
                return;
            };
            let mut cursor = body.walk();
            for member in body.children(&mut cursor) {
                match member.kind() {
                    "function_declaration" if owner == "Tandem" => {
                        if let Some(name) = member.child_by_field_name("name") {
                            api.methods
                                .entry(text(name, source).trim_matches('`').to_string())
                                .or_default()
                                .push(parameters(member, source));
                        }
                    }
                    "init_declaration" => {
                        api.initializers
                            .entry(owner.clone())
                            .or_default()
                            .push(parameters(member, source));
                    }
                    _ => {}
                }
            }
        });
    }
    api
}

/// What the app calls, checked against `api`.
#[derive(Debug, Default)]
struct Usage {
    problems: Vec<String>,
    /// How many calls were checked.
    calls: usize,
    /// The Tandem methods called, by name.
    methods: BTreeSet<String>,
    /// Every argument label passed to an initializer of an API type, by type.
    initializer_labels: BTreeMap<String, BTreeSet<String>>,
}

/// Finds calls on a Tandem instance (a receiver named `tandem`, `engine` or `…Engine`, also
/// behind `?` or a property path such as `app.tandem?`), static calls on `Tandem`, and
/// initializer calls of API types, and checks each against a declaration's argument labels.
fn check_api_usage(files: &[(PathBuf, String)], api: &Api) -> Usage {
    let mut usage = Usage::default();
    for (file, source) in files {
        let tree = parse(source);
        let shown = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        walk(tree.root_node(), &mut |node| {
            if node.kind() != "call_expression" {
                return;
            }
            let Some(callee) = node.child(0) else {
                return;
            };
            let Some(suffix) = node.child(1).filter(|s| s.kind() == "call_suffix") else {
                return;
            };
            let labels = call_labels(suffix, source);
            let line = node.start_position().row + 1;
            match callee.kind() {
                "navigation_expression" => {
                    let Some(method) = callee
                        .child_by_field_name("suffix")
                        .and_then(|s| s.child_by_field_name("suffix"))
                        .map(|n| text(n, source).to_string())
                    else {
                        return;
                    };
                    let receiver = text(callee, source)
                        .rsplit_once('.')
                        .map(|(r, _)| r)
                        .unwrap_or_default()
                        .trim_end_matches(['?', '!']);
                    let last = receiver.rsplit('.').next().unwrap_or(receiver);
                    let on_instance =
                        last == "tandem" || last == "engine" || last.ends_with("Engine");
                    if !(on_instance || receiver == "Tandem") {
                        return;
                    }
                    usage.calls += 1;
                    match api.methods.get(&method) {
                        None => usage
                            .problems
                            .push(format!("{shown}:{line}: Tandem has no method {method}")),
                        Some(overloads) => {
                            if !overloads.iter().any(|p| accepts(p, &labels)) {
                                usage.problems.push(format!(
                                    "{shown}:{line}: {method}({}) matches no declaration: {overloads:?}",
                                    describe(&labels)
                                ));
                            }
                            usage.methods.insert(method);
                        }
                    }
                }
                "simple_identifier" => {
                    let name = text(callee, source);
                    if let Some(overloads) = api.initializers.get(name) {
                        usage.calls += 1;
                        if !overloads.iter().any(|p| accepts(p, &labels)) {
                            usage.problems.push(format!(
                                "{shown}:{line}: {name}({}) matches no initializer: {overloads:?}",
                                describe(&labels)
                            ));
                        }
                        usage
                            .initializer_labels
                            .entry(name.to_string())
                            .or_default()
                            .extend(labels.iter().flatten().cloned());
                    }
                }
                _ => {}
            }
        });
    }
    usage
}

fn call_labels(suffix: Node, source: &str) -> Labels {
    let mut labels = Vec::new();
    let mut cursor = suffix.walk();
    for child in suffix.children(&mut cursor) {
        match child.kind() {
            "value_arguments" => {
                let mut c2 = child.walk();
                for argument in child
                    .children(&mut c2)
                    .filter(|a| a.kind() == "value_argument")
                {
                    labels.push(
                        argument
                            .child_by_field_name("name")
                            .map(|l| text(l, source).trim_end_matches(':').trim().to_string()),
                    );
                }
            }
            // A trailing closure is the last, unlabeled argument.
            "lambda_literal" => labels.push(None),
            _ => {}
        }
    }
    labels
}

fn describe(labels: &Labels) -> String {
    labels
        .iter()
        .map(|l| format!("{}:", l.as_deref().unwrap_or("_")))
        .collect::<String>()
}

/// 1-based lines of `source` that mention `needle` outside an `#if DEBUG` branch.
fn outside_debug(source: &str, needle: &str) -> Vec<usize> {
    // Each open #if: whether the branch being read is its DEBUG branch.
    let mut branches: Vec<bool> = Vec::new();
    let mut lines = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(condition) = trimmed.strip_prefix("#if ") {
            branches.push(condition.trim() == "DEBUG");
        } else if trimmed.starts_with("#elseif") || trimmed == "#else" {
            if let Some(branch) = branches.last_mut() {
                *branch = false;
            }
        } else if trimmed == "#endif" {
            branches.pop();
        } else if line.contains(needle)
            && !trimmed.starts_with("//")
            && !branches.iter().any(|b| *b)
        {
            lines.push(index + 1);
        }
    }
    lines
}

fn background_identifier(files: &[(PathBuf, String)]) -> Result<String, String> {
    let (_, source) = files
        .iter()
        .find(|(path, _)| path.ends_with("App/BackgroundSync.swift"))
        .ok_or("no App/BackgroundSync.swift")?;
    let identifier = string_constant(source, "refreshTaskIdentifier")
        .ok_or("BackgroundSync.swift has no `let refreshTaskIdentifier = \"…\"`")?;
    for use_site in [
        "register(forTaskWithIdentifier: refreshTaskIdentifier",
        "BGAppRefreshTaskRequest(identifier: refreshTaskIdentifier)",
    ] {
        if !source.contains(use_site) {
            return Err(format!("BackgroundSync.swift does not call {use_site}"));
        }
    }
    Ok(identifier)
}

fn api_sources() -> Vec<String> {
    let generated = root().join("bindings/generated/swift/Tandem.swift");
    assert!(
        generated.is_file(),
        "run scripts/generate-bindings.sh first"
    );
    let mut sources = vec![fs::read_to_string(generated).unwrap()];
    for name in ["Streams.swift", "Documents.swift"] {
        sources.push(
            fs::read_to_string(root().join("bindings/swift/Sources/Tandem").join(name)).unwrap(),
        );
    }
    sources
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn every_swift_file_parses_without_workarounds() {
    let files = read_swift(&sample());
    assert!(
        files.len() >= 25,
        "app, model, views and tests: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (file, source) in &files {
        let report = check_source(source);
        assert!(report.is_clean(), "{}: {report:?}", file.display());
    }
}

#[test]
fn the_project_spec_and_info_plist_match_the_repository_and_the_code() {
    let files = read_swift(&sample());
    let identifier = background_identifier(&files).unwrap();
    let report = check_project(&root(), &sample(), &identifier);
    assert!(report.problems.is_empty(), "{:#?}", report.problems);

    // Every Swift file belongs to a target: the app's sources or the tests'.
    let app = &report.target_sources["TandemPlans"];
    let tests = &report.target_sources["TandemPlansTests"];
    for (file, _) in &files {
        let file = file.canonicalize().unwrap();
        let in_app = app.iter().any(|dir| file.starts_with(dir));
        let in_tests = tests.iter().any(|dir| file.starts_with(dir));
        assert!(
            in_app ^ in_tests,
            "{} is in no target, or in both",
            file.display()
        );
        let source = fs::read_to_string(&file).unwrap();
        if in_app {
            assert!(
                !source.contains("import XCTest"),
                "{}: XCTest in the app",
                file.display()
            );
        }
    }

    // The schema is loaded under the name the resource has in the bundle.
    let configuration = files
        .iter()
        .find(|(path, _)| path.ends_with("Model/AppConfiguration.swift"))
        .map(|(_, source)| source)
        .expect("AppConfiguration.swift");
    assert!(configuration.contains(r#"forResource: "sample", withExtension: "json""#));
}

#[test]
fn the_app_calls_the_tandem_api_as_declared() {
    let api = read_api(&api_sources());
    assert!(
        api.methods.contains_key("observeAsStream"),
        "the hand-written layer is read"
    );
    assert!(
        api.methods.contains_key("syncOnce"),
        "the generated class is read"
    );
    assert!(api.initializers.contains_key("SyncStatus"));

    let files = read_swift(&sample());
    let usage = check_api_usage(&files, &api);
    assert!(usage.problems.is_empty(), "{:#?}", usage.problems);
    assert!(
        usage.calls >= 80,
        "only {} calls found: is the receiver naming rule still right?",
        usage.calls
    );
    eprintln!("{} calls of the Tandem API checked", usage.calls);

    // The requirements' engine calls are all wired somewhere.
    for method in [
        "open",
        "signIn",
        "signUp",
        "signOut",
        "startSync",
        "stopSync",
        "syncNow",
        "syncOnce",
        "notifyForeground",
        "notifyConnectivity",
        "observeAsStream",
        "observeRecordAsStream",
        "syncStatusStream",
        "authStateStream",
        "conflicts",
        "resolve",
        "rejected",
        "discardRejected",
        "syncMetrics",
        "outbox",
        "put",
        "patch",
        "delete",
        "write",
    ] {
        assert!(
            usage.methods.contains(method),
            "the app never calls Tandem.{method}: {:?}",
            usage.methods
        );
    }
    // Tokens stay in the engine's default store (the Keychain): no SecureStore is passed.
    assert!(
        !usage
            .initializer_labels
            .get("TandemConfig")
            .is_some_and(|l| l.contains("secureStore")),
        "{:?}",
        usage.initializer_labels.get("TandemConfig")
    );
    for (file, source) in &files {
        assert!(
            !source.contains("secureStore ="),
            "{}: the app sets a SecureStore",
            file.display()
        );
    }
}

#[test]
fn insecure_http_is_allowed_in_debug_builds_only() {
    let files = read_swift(&sample());
    let mut mentions = 0;
    for (file, source) in &files {
        mentions += source.matches("allowInsecureHttp").count();
        let outside = outside_debug(source, "allowInsecureHttp");
        assert!(
            outside.is_empty(),
            "{}: allowInsecureHttp outside #if DEBUG on lines {outside:?}",
            file.display()
        );
    }
    assert!(
        mentions > 0,
        "the app sets allowInsecureHttp (in DEBUG) for development servers on the LAN"
    );
}

#[test]
fn broken_specs_and_calls_are_reported() {
    // A copy of the sample whose spec points at missing files and a remote package, whose
    // Info.plist lacks the keys, with a call the bindings do not declare.
    let copy = tempdir();
    let sample_copy = copy.join("ios-sample");
    fs::create_dir_all(sample_copy.join("TandemPlans")).unwrap();
    fs::create_dir_all(copy.join("schemas")).unwrap();
    fs::copy(
        root().join("schemas/sample.json"),
        copy.join("schemas/sample.json"),
    )
    .unwrap();
    // The copied schema inside the sample is a duplicate.
    fs::copy(
        root().join("schemas/sample.json"),
        sample_copy.join("TandemPlans/sample.json"),
    )
    .unwrap();
    fs::write(
        sample_copy.join("TandemPlans/Info.plist"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>BGTaskSchedulerPermittedIdentifiers</key><array><string>other.id</string></array>
</dict></plist>"#,
    )
    .unwrap();
    let spec = fs::read_to_string(sample().join("project.yml"))
        .unwrap()
        .replace("path: TandemPlansTests", "path: MissingTests")
        .replace(
            "path: ../bindings/swift",
            "url: https://example.com/Tandem.git",
        );
    fs::write(sample_copy.join("project.yml"), spec).unwrap();

    let problems = check_project(&copy, &sample_copy, "dev.tandem.plans.sync-refresh").problems;
    for expected in [
        "source MissingTests does not exist",
        "is remote",
        "NSAllowsLocalNetworking is not true",
        "lacks \"dev.tandem.plans.sync-refresh\"",
        "UIBackgroundModes lacks fetch",
        "duplicates schemas/sample.json",
        ".gitignore does not ignore",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected}: {problems:#?}"
        );
    }

    let api = read_api(&api_sources());
    let bad = vec![(
        PathBuf::from("Bad.swift"),
        r#"
        func f(tandem: Tandem, app: AppModel) async throws {
            _ = try tandem.put(collection: "plans", document: plan)
            _ = try tandem.put(collection: "plans", json: "{}")
            try app.tandem?.notifyConnectivity(isOnline: true)
            _ = try await tandem.syncEverything()
            _ = SyncStatus(phase: .idle, pending: 0, conflicts: 0, rejected: 0, lastSyncedAt: nil, lastError: nil, pulled: 0, remaining: 0)
            let items = conflicts.first { $0.id == id }
        }
        "#
        .to_string(),
    )];
    let usage = check_api_usage(&bad, &api);
    let reported: Vec<&str> = usage.problems.iter().map(String::as_str).collect();
    assert_eq!(usage.problems.len(), 4, "{reported:#?}");
    assert!(
        reported.iter().any(|p| p.contains("put(collection:json:)")),
        "{reported:#?}"
    );
    assert!(
        reported
            .iter()
            .any(|p| p.contains("notifyConnectivity(isOnline:)")),
        "{reported:#?}"
    );
    assert!(
        reported
            .iter()
            .any(|p| p.contains("no method syncEverything")),
        "{reported:#?}"
    );
    assert!(
        reported.iter().any(|p| p.contains("SyncStatus(")),
        "a missing field: {reported:#?}"
    );

    assert_eq!(
        outside_debug(
            "#if DEBUG\nx.allowInsecureHttp = true\n#endif\n",
            "allowInsecureHttp"
        ),
        Vec::<usize>::new()
    );
    assert_eq!(
        outside_debug(
            "#if DEBUG\n#else\nx.allowInsecureHttp = true\n#endif\nallowInsecureHttp\n",
            "allowInsecureHttp"
        ),
        vec![3, 5]
    );
    assert_eq!(
        string_constant("enum B { static let id = \"a.b\" }", "id").as_deref(),
        Some("a.b")
    );
    fs::remove_dir_all(copy).unwrap();
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parse-check-ios-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}
