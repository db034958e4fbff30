//! The `ffi` suite: what the bindings cost and weigh.
//!
//! - `cdylib_size`: the host cdylib built with the workspace's `mobile` profile (the one the AAR and
//!   XCFramework scripts ship; it strips symbols), in MB (10^6 bytes).
//! - `ffi_get_kotlin`, `ffi_get_python`: µs per `Tandem.get` of one existing record through the
//!   generated bindings (Kotlin on the JVM through JNA, Python through ctypes), against the same
//!   call on the same `tandem::Tandem` object made directly from Rust in this process (the floor).
//!   The foreign harnesses (bench/ffi/) open their own store with the same schema, documents, id
//!   order and loop sizes, and print one JSON line with µs per call for each timed loop.
//!
//! The foreign side loads a cdylib of the same profile as this binary (release under
//! `cargo run --release`, debug otherwise), so the ratio is the crossing alone, not an optimiser
//! gap. Before measuring, the suite runs `scripts/generate-bindings.sh` (with `--release` when this
//! binary is a release build) so the bindings and the library come from the current sources.
//! Needs `java`, `mvn` and `python3` on the PATH.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::Value;
use tandem::{Tandem, TandemConfig, WriteOp};
use tempfile::TempDir;

use crate::report::{Measurement, Target};
use crate::stats::{median, micros, time};

/// Sizes of one run, shared with the foreign harnesses through their command line.
struct Sizes {
    /// Records in the store; gets cycle through them in order.
    records: usize,
    /// Untimed gets first: the JVM needs them to JIT-compile the call path, and every side gets
    /// the same so none starts colder.
    warmup: usize,
    /// Timed loops per side; the figure is the median loop (the machine is shared and noisy).
    loops: usize,
    /// Gets per timed loop.
    calls: usize,
}

const FULL: Sizes = Sizes {
    records: 5_000,
    warmup: 100_000,
    loops: 15,
    calls: 20_000,
};
const QUICK: Sizes = Sizes {
    records: 200,
    warmup: 1_000,
    loops: 3,
    calls: 1_000,
};

const LIB: &str = if cfg!(target_os = "macos") {
    "libtandem.dylib"
} else {
    "libtandem.so"
};

/// Runs the suite; `only` keeps the measurements whose name contains it.
pub fn run(quick: bool, only: Option<&str>) -> Result<Vec<Measurement>, String> {
    let sizes = if quick { &QUICK } else { &FULL };
    let wanted = |name: &str| only.is_none_or(|o| name.contains(o));
    let root = repo_root();
    let target_dir = target_dir();
    let mut results = Vec::new();
    // The mobile profile's whole-program LTO build took most of test.sh's smoke run (about 40 s
    // of a fresh clone's), for a size figure `--quick` says means nothing.
    if wanted("cdylib_size") && quick {
        eprintln!("ffi: cdylib_size skipped under --quick (it needs the optimised mobile build)");
    } else if wanted("cdylib_size") {
        results.push(cdylib_size(&root, &target_dir)?);
    }
    let (kotlin, python) = (wanted("ffi_get_kotlin"), wanted("ffi_get_python"));
    if kotlin || python {
        results.extend(ffi_get(&root, &target_dir, sizes, kotlin, python)?);
    }
    Ok(results)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// The same default as scripts/generate-bindings.sh, so both look at the same libraries.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/tandem/target")
        }
    }
}

/// Runs a build step. Its stdout goes to our stderr: our stdout is the suite's JSON alone.
fn step(what: &str, command: &mut Command) -> Result<(), String> {
    eprintln!("ffi: {what}");
    let status = command
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn cdylib_size(root: &Path, target_dir: &Path) -> Result<Measurement, String> {
    step(
        "cargo build --profile mobile -p tandem-ffi",
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--profile", "mobile", "-p", "tandem-ffi"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(root),
    )?;
    let lib = target_dir.join("mobile").join(LIB);
    let bytes = std::fs::metadata(&lib)
        .map_err(|e| format!("{}: {e}", lib.display()))?
        .len();
    Ok(Measurement::new("cdylib_size", bytes as f64 / 1e6, "MB").target(Target::AtMost(6.0)))
}

fn ffi_get(
    root: &Path,
    target_dir: &Path,
    sizes: &Sizes,
    kotlin: bool,
    python: bool,
) -> Result<Vec<Measurement>, String> {
    let release = !cfg!(debug_assertions);
    let mut generate = Command::new(root.join("scripts/generate-bindings.sh"));
    if release {
        generate.arg("--release");
    }
    step(
        "scripts/generate-bindings.sh",
        generate
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(root),
    )?;

    // A private copy of the Python module and the library it was generated from: another
    // checkout's generate-bindings.sh (debug or release) may rewrite bindings/generated while we
    // measure, and the Kotlin checksums must match the library JNA loads.
    let generated = root.join("bindings/generated");
    let private = TempDir::new().map_err(|e| format!("temp dir: {e}"))?;
    for file in ["tandem.py", LIB] {
        std::fs::copy(
            generated.join("python").join(file),
            private.path().join(file),
        )
        .map_err(|e| format!("copy {file} from bindings/generated/python: {e}"))?;
    }
    let classpath = if kotlin {
        Some(build_kotlin(root, target_dir)?)
    } else {
        None
    };

    let schema = root.join("schemas/sample.json");
    let args = |s: &Sizes| {
        vec![
            schema.to_string_lossy().into_owned(),
            s.records.to_string(),
            s.warmup.to_string(),
            s.loops.to_string(),
            s.calls.to_string(),
        ]
    };
    let schema_json =
        std::fs::read_to_string(&schema).map_err(|e| format!("{}: {e}", schema.display()))?;

    // Rust before and after the foreign runs, pooled: drift in the machine's load over the run
    // then weighs on the floor as it does on the foreign figures.
    let mut rust = rust_get(&schema_json, sizes);
    let kotlin_us = match &classpath {
        Some(classpath) => {
            let mut java = Command::new("java");
            java.arg(format!("-Djna.library.path={}", private.path().display()))
                .args(["-cp", classpath, "dev.tandem.bench.GetBenchKt"])
                .args(args(sizes));
            Some(harness("kotlin", &mut java)?)
        }
        None => None,
    };
    let python_us = if python {
        let mut py = Command::new("python3");
        py.env("TANDEM_PYTHON_BINDINGS", private.path())
            .arg(root.join("bench/ffi/get_bench.py"))
            .args(args(sizes));
        Some(harness("python", &mut py)?)
    } else {
        None
    };
    rust.extend(rust_get(&schema_json, sizes));
    summary("rust", &rust);
    let floor = median(&mut rust);

    let mut results = Vec::new();
    if let Some(mut us) = kotlin_us {
        results.push(
            Measurement::new("ffi_get_kotlin", median(&mut us), "us")
                .floor(floor)
                .target(Target::RatioAtMost(3.0)),
        );
    }
    // No target for Python: the issue sets none (an interpreter's own call overhead dominates).
    if let Some(mut us) = python_us {
        results.push(Measurement::new("ffi_get_python", median(&mut us), "us").floor(floor));
    }
    Ok(results)
}

/// Builds the Kotlin harness with the generated bindings and returns its runtime classpath.
/// Maven (and the Kotlin compiler on ~7,000 generated lines) takes most of a minute here, so the
/// build is skipped when its inputs are the same as last time: `--quick` stays quick.
fn build_kotlin(root: &Path, target_dir: &Path) -> Result<String, String> {
    let module = root.join("bench/ffi/kotlin");
    let out = module.join("target");
    let inputs = [
        root.join("bindings/generated/kotlin/dev/tandem/tandem.kt"),
        module.join("src/main/kotlin/dev/tandem/bench/GetBench.kt"),
        module.join("pom.xml"),
    ];
    let mut hasher = DefaultHasher::new();
    for input in &inputs {
        std::fs::read(input)
            .map_err(|e| format!("{}: {e}", input.display()))?
            .hash(&mut hasher);
    }
    // Kept by the hash of its inputs beside cargo's builds, outside the checkout: a fresh clone
    // of unchanged sources (test.sh's smoke run in CI) skips the 20 s Maven build.
    let cache = target_dir
        .join("ffi-bench-kotlin")
        .join(format!("{:016x}", hasher.finish()));
    let jar = cache.join("harness.jar");
    let deps_file = cache.join("classpath.txt");
    if !(jar.exists() && deps_file.exists()) {
        step(
            "mvn package (Kotlin harness + generated bindings)",
            Command::new("mvn")
                .args(["-q", "-f"])
                .arg(module.join("pom.xml"))
                .arg("package"),
        )?;
        // Copied then renamed, so an interrupted copy never passes for a built harness.
        let cached = |from: &str, to: &Path| {
            let partial = to.with_extension("partial");
            std::fs::create_dir_all(&cache)
                .and_then(|()| std::fs::copy(out.join(from), &partial))
                .and_then(|_| std::fs::rename(&partial, to))
                .map_err(|e| format!("{from} into {}: {e}", cache.display()))
        };
        cached("classpath.txt", &deps_file)?;
        cached("tandem-ffi-bench-0.1.0.jar", &jar)?;
    }
    let deps =
        std::fs::read_to_string(&deps_file).map_err(|e| format!("{}: {e}", deps_file.display()))?;
    Ok(format!("{}:{}", jar.display(), deps.trim()))
}

/// Runs a foreign harness and returns its µs per call, one figure per timed loop.
fn harness(name: &str, command: &mut Command) -> Result<Vec<f64>, String> {
    eprintln!("ffi: {name} harness");
    let output = command.stderr(Stdio::inherit()).output().map_err(|e| {
        format!(
            "{name} harness: cannot start {:?}: {e}",
            command.get_program()
        )
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{name} harness failed ({}): {stdout}",
            output.status
        ));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("{name} harness printed no JSON: {stdout}"))?;
    let value: Value =
        serde_json::from_str(line).map_err(|e| format!("{name} harness JSON: {e}: {line}"))?;
    let us: Vec<f64> = value["us_per_call"]
        .as_array()
        .ok_or_else(|| format!("{name} harness JSON has no us_per_call: {line}"))?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    if us.is_empty() {
        return Err(format!("{name} harness reported no loops: {line}"));
    }
    summary(name, &us);
    Ok(us)
}

/// The spread of the loops, on stderr: the JSON keeps the median only.
fn summary(name: &str, us: &[f64]) {
    let (min, max) = us
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    eprintln!(
        "ffi: {name}: {} loops, {min:.3}..{max:.3} us/call",
        us.len()
    );
}

/// Must match planJson in GetBench.kt and plan_json in get_bench.py.
fn plan_json(i: usize) -> String {
    format!(
        r#"{{"name": "Plan {i}", "notes": "Warm up for ten minutes, then three rounds of the main lifts with long rests in between; finish with mobility work.", "archived": false}}"#
    )
}

/// The floor: the same `get` on the same exported object, called from Rust without crossing the
/// FFI. It takes `String`s as the exported signature does, so building them is part of the cost
/// here too (the foreign side pays for lowering its strings).
fn rust_get(schema_json: &str, sizes: &Sizes) -> Vec<f64> {
    let dir = TempDir::new().expect("temp dir");
    let tandem: Arc<Tandem> = Tandem::open(TandemConfig::local(
        dir.path().to_string_lossy(),
        schema_json,
    ))
    .expect("open the store");
    let ids: Vec<String> = (0..sizes.records).map(|i| format!("plan-{i}")).collect();
    let ops = ids
        .iter()
        .enumerate()
        .map(|(i, id)| WriteOp::Put {
            collection: "plans".into(),
            id: Some(id.clone()),
            json: plan_json(i),
            space_id: None,
        })
        .collect();
    tandem.write(ops).expect("write the records");
    let run = |n: usize| {
        for i in 0..n {
            let id = &ids[i % sizes.records];
            let record = tandem.get("plans".to_string(), id.clone()).expect("get");
            // Keeps the optimiser from discarding the call's result.
            std::hint::black_box(record.expect("record exists"));
        }
    };
    run(sizes.warmup);
    let per_call = (0..sizes.loops)
        .map(|_| {
            let (spent, ()) = time(|| run(sizes.calls));
            micros(spent) / sizes.calls as f64
        })
        .collect();
    tandem.shutdown();
    per_call
}
