//! The Android side of the repository where no Android toolchain exists: every Kotlin file and
//! Gradle script of the sample app (`android-sample`), the Android library (`bindings/android`)
//! and the JVM bindings' hand-written Kotlin (`bindings/kotlin/src`) parses with tree-sitter,
//! with no workarounds; and the app's cleartext-HTTP setup is what its README promises: plain
//! HTTP only in debug builds and only to the development machine.

use std::fs;
use std::path::{Path, PathBuf};

use parse_check::kotlin::{check_kotlin_source, kotlin_files};

/// The checkout under test, read at run time (see tests/repository.rs for why).
fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test")).join("../..")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses every Kotlin file under `dir`; returns their paths relative to `dir`.
fn assert_all_parse(dir: &Path) -> Vec<String> {
    let (files, _) = kotlin_files(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut failures = Vec::new();
    for file in &files {
        let errors = check_kotlin_source(&read(file));
        if !errors.is_empty() {
            failures.push(format!("{}: {errors:?}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "parse errors:\n{}",
        failures.join("\n")
    );
    files
        .iter()
        .map(|f| {
            f.strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

#[test]
fn the_sample_app_parses_and_has_its_modules() {
    let files = assert_all_parse(&root().join("android-sample"));
    for expected in [
        "settings.gradle.kts",
        "build.gradle.kts",
        "app/build.gradle.kts",
        "state/build.gradle.kts",
        "app/src/main/kotlin/dev/tandem/sample/SampleApplication.kt",
        "app/src/main/kotlin/dev/tandem/sample/SyncWorker.kt",
        "app/src/main/kotlin/dev/tandem/sample/MainActivity.kt",
        "app/src/main/kotlin/dev/tandem/sample/EngineLog.kt",
        "state/src/main/kotlin/dev/tandem/sample/state/TandemHost.kt",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} missing: {files:?}"
        );
    }
    let screens = files
        .iter()
        .filter(|f| f.starts_with("app/src/main/kotlin/dev/tandem/sample/ui/"))
        .count();
    assert!(screens >= 8, "the Compose screens: {files:?}");
}

#[test]
fn the_android_library_and_the_jvm_bindings_parse() {
    let library = assert_all_parse(&root().join("bindings/android"));
    assert!(
        library.iter().any(|f| f == "build.gradle.kts")
            && library.iter().any(|f| f.ends_with("TandemAndroid.kt")),
        "{library:?}"
    );
    let jvm = assert_all_parse(&root().join("bindings/kotlin/src"));
    assert!(jvm.iter().any(|f| f.ends_with("Flows.kt")), "{jvm:?}");
}

/// The state module is plain Kotlin: it builds on the JVM with Maven, so it may not use Android.
#[test]
fn the_state_module_has_no_android_imports() {
    let dir = root().join("android-sample/state/src");
    let (files, _) = kotlin_files(&dir).unwrap();
    assert!(!files.is_empty());
    for file in files {
        for line in read(&file).lines() {
            let line = line.trim();
            assert!(
                !(line.starts_with("import android.") || line.starts_with("import androidx.")),
                "{}: {line}",
                file.display()
            );
        }
    }
}

/// The app's engine wiring: Tandem's Android start-up before the engine opens, plain HTTP for
/// the engine only in debug builds, tokens in the platform's secure storage (no SecureStore).
#[test]
fn the_app_wires_the_engine_as_documented() {
    let app = root().join("android-sample/app/src/main/kotlin");
    let (files, _) = kotlin_files(&app).unwrap();
    let sources: Vec<(PathBuf, String)> =
        files.into_iter().map(|f| (f.clone(), read(&f))).collect();
    let application = &sources
        .iter()
        .find(|(f, _)| f.ends_with("SampleApplication.kt"))
        .expect("SampleApplication.kt")
        .1;
    let init = application
        .find("TandemAndroid.initialize(this)")
        .expect("TandemAndroid.initialize in Application.onCreate");
    let graph = application
        .find("SampleGraph(")
        .expect("the engine is opened");
    assert!(init < graph, "initialize must come before the engine opens");
    assert!(application.contains("allowInsecureHttp = BuildConfig.DEBUG"));
    for (file, text) in &sources {
        assert!(
            !text.contains("allowInsecureHttp = true"),
            "{}: plain HTTP must follow BuildConfig.DEBUG",
            file.display()
        );
        assert!(
            !text.contains("secureStore"),
            "{}: the app keeps tokens in the platform's secure storage (the engine's default)",
            file.display()
        );
    }
    let settings = read(&root().join("android-sample/settings.gradle.kts"));
    assert!(settings.contains("include(\":tandem\")"));
    assert!(settings.contains("project(\":tandem\").projectDir = file(\"../bindings/android\")"));
}

/// `<!-- … -->` removed, so commented-out configuration never counts.
fn strip_comments(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        rest = match rest[start..].find("-->") {
            Some(end) => &rest[start + end + 3..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The value of `name="…"` (any namespace prefix) in an element's start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!("{name}=\""))?;
    let value = &tag[at + name.len() + 2..];
    Some(value[..value.find('"')?].to_string())
}

/// Every element `<name …>` of `xml`: its start tag and the text up to its end tag (empty for
/// `<name … />`).
fn elements<'x>(xml: &'x str, name: &str) -> Vec<(&'x str, &'x str)> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        // `<domain` must not match `<domain-config`.
        if !after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            rest = after;
            continue;
        }
        let tag_end = after.find('>').expect("a closed start tag");
        let tag = &after[..tag_end];
        let body_start = &after[tag_end + 1..];
        if tag.ends_with('/') {
            found.push((tag, ""));
            rest = body_start;
        } else {
            let body_end = body_start.find(&close).expect("an end tag");
            found.push((tag, &body_start[..body_end]));
            rest = &body_start[body_end..];
        }
    }
    found
}

/// The hosts a network security config lets cleartext reach, or why it is not acceptable for a
/// debug build of the sample: the base config must not allow cleartext, and each domain config
/// that does must name development hosts only, without subdomains.
fn cleartext_hosts(config: &str) -> Result<Vec<String>, String> {
    const ALLOWED: &[&str] = &["10.0.2.2", "localhost", "127.0.0.1"];
    let config = strip_comments(config);
    for (tag, _) in elements(&config, "base-config") {
        if attribute(tag, "cleartextTrafficPermitted").as_deref() == Some("true") {
            return Err("the base config allows cleartext to every host".into());
        }
    }
    if !elements(&config, "debug-overrides").is_empty() {
        return Err("debug-overrides are not expected".into());
    }
    let mut hosts = Vec::new();
    for (tag, body) in elements(&config, "domain-config") {
        if attribute(tag, "cleartextTrafficPermitted").as_deref() != Some("true") {
            continue;
        }
        for (domain_tag, host) in elements(body, "domain") {
            let host = host.trim().to_string();
            if !ALLOWED.contains(&host.as_str()) {
                return Err(format!("cleartext allowed to {host}"));
            }
            if attribute(domain_tag, "includeSubdomains").as_deref() == Some("true") {
                return Err(format!("cleartext allowed to subdomains of {host}"));
            }
            hosts.push(host);
        }
    }
    Ok(hosts)
}

#[test]
fn debug_builds_allow_cleartext_to_the_development_machine_only() {
    let app = root().join("android-sample/app/src");
    let config = read(&app.join("debug/res/xml/network_security_config.xml"));
    let mut hosts = cleartext_hosts(&config).unwrap();
    hosts.sort();
    assert_eq!(hosts, ["10.0.2.2", "127.0.0.1", "localhost"]);

    let debug_manifest = strip_comments(&read(&app.join("debug/AndroidManifest.xml")));
    assert!(
        debug_manifest.contains("android:networkSecurityConfig=\"@xml/network_security_config\""),
        "the debug manifest must use the config"
    );
}

#[test]
fn release_builds_never_enable_cleartext() {
    let app = root().join("android-sample/app/src");
    let manifest = strip_comments(&read(&app.join("main/AndroidManifest.xml")));
    assert!(
        !manifest.contains("usesCleartextTraffic"),
        "the main manifest must leave cleartext off (the default)"
    );
    assert!(
        !manifest.contains("networkSecurityConfig"),
        "the main manifest must not carry the debug network security config"
    );
    // Nothing outside src/debug may bring a network security config or cleartext into release.
    for source_set in ["main", "release"] {
        let dir = app.join(source_set);
        assert!(
            !dir.join("res/xml/network_security_config.xml").exists(),
            "{source_set} has a network security config"
        );
        let release_manifest = dir.join("AndroidManifest.xml");
        if source_set == "release" && release_manifest.exists() {
            assert!(!read(&release_manifest).contains("leartext"));
        }
    }
}

#[test]
fn the_cleartext_check_refuses_what_it_must() {
    let good = r#"<network-security-config>
        <base-config cleartextTrafficPermitted="false" />
        <domain-config cleartextTrafficPermitted="true">
            <domain includeSubdomains="false">10.0.2.2</domain>
        </domain-config>
        <!-- <domain-config cleartextTrafficPermitted="true"><domain>example.com</domain></domain-config> -->
    </network-security-config>"#;
    assert_eq!(cleartext_hosts(good).unwrap(), ["10.0.2.2"]);
    let everywhere = r#"<network-security-config><base-config cleartextTrafficPermitted="true" /></network-security-config>"#;
    assert!(cleartext_hosts(everywhere).is_err());
    let remote = r#"<network-security-config><domain-config cleartextTrafficPermitted="true">
        <domain>sync.example.com</domain></domain-config></network-security-config>"#;
    assert!(cleartext_hosts(remote).is_err());
    let subdomains = r#"<network-security-config><domain-config cleartextTrafficPermitted="true">
        <domain includeSubdomains="true">localhost</domain></domain-config></network-security-config>"#;
    assert!(cleartext_hosts(subdomains).is_err());
    let https_only = r#"<network-security-config><domain-config cleartextTrafficPermitted="false">
        <domain>sync.example.com</domain></domain-config></network-security-config>"#;
    assert_eq!(cleartext_hosts(https_only).unwrap(), Vec::<String>::new());
}
