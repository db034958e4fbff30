//! The `ffi` suite: what the bindings cost and weigh.
//!
//! - `cdylib_size`: the host cdylib built with the workspace's `mobile` profile (the one the AAR and
//!   XCFramework scripts ship; it strips symbols), in MB (10^6 bytes).
//! - `ffi_get_kotlin`, `ffi_get_python`: µs per `get(id)` of one existing record on a collection
//!   handle (`tandem.collection("plans")`, the call docs/bindings.md recommends) through the
//!   generated bindings (Kotlin on the JVM through JNA, Python through ctypes), against the same
//!   call on the same exported object made directly from Rust in this process (the floor).
//! - `ffi_get2_kotlin`, `ffi_get2_python`: the same read through `Tandem.get(collection, id)`
//!   (two string arguments, one more crossing), against the same call from Rust; no target, it
//!   shows what the handle saves.
//! - `ffi_query100_kotlin`, `ffi_query100_python`: µs per query returning 100 records (`plans`,
//!   limit 100, in id order) on the handle, against the same query from Rust.
//! - `ffi_getmany100_kotlin`, `ffi_getmany100_python`: µs per `get_many` of 100 ids on the handle
//!   (windows of 100 consecutive ids, cycling), against the same call from Rust; no target.
//!
//! The foreign harnesses (bench/ffi/) open their own store with the same schema, documents, id
//! order and loop sizes, and print one JSON line with µs per call for each timed loop of each
//! figure.
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
use tandem::{Query, Tandem, TandemConfig, WriteOp};
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
    /// Timed loops per side and figure; the figure is the median loop (the machine is shared and
    /// noisy).
    loops: usize,
    /// Gets per timed loop.
    calls: usize,
    /// Untimed queries (and `get_many`) of 100 records first, as `warmup` for gets.
    query_warmup: usize,
    /// Queries (and `get_many` calls) per timed loop.
    query_calls: usize,
}

const FULL: Sizes = Sizes {
    records: 5_000,
    warmup: 100_000,
    loops: 15,
    calls: 20_000,
    query_warmup: 3_000,
    query_calls: 500,
};
const QUICK: Sizes = Sizes {
    records: 200,
    warmup: 1_000,
    loops: 3,
    calls: 1_000,
    query_warmup: 20,
    query_calls: 20,
};

/// The timed figures of the foreign harnesses: the key in their JSON, and the Rust floor's loop.
#[derive(Clone, Copy, PartialEq)]
enum Figure {
    /// `get(id)` on the collection handle.
    Get,
    /// `Tandem.get(collection, id)`.
    Get2,
    /// A query of 100 records on the collection handle.
    Query100,
    /// `get_many` of 100 ids on the collection handle.
    GetMany100,
}

impl Figure {
    const ALL: [Figure; 4] = [
        Figure::Get,
        Figure::Get2,
        Figure::Query100,
        Figure::GetMany100,
    ];

    fn key(self) -> &'static str {
        match self {
            Figure::Get => "get",
            Figure::Get2 => "get2",
            Figure::Query100 => "query100",
            Figure::GetMany100 => "getmany100",
        }
    }

    fn name(self, language: &str) -> String {
        format!("ffi_{}_{language}", self.key())
    }

    /// The issue's targets (Kotlin only: Python's interpreter dominates its figures).
    fn target(self, language: &str) -> Option<Target> {
        match (self, language) {
            (Figure::Get, "kotlin") => Some(Target::RatioAtMost(4.0)),
            (Figure::Query100, "kotlin") => Some(Target::RatioAtMost(1.5)),
            _ => None,
        }
    }
}

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
    let figures = |language: &str| -> Vec<Figure> {
        Figure::ALL
            .into_iter()
            .filter(|f| wanted(&f.name(language)))
            .collect()
    };
    let (kotlin, python) = (figures("kotlin"), figures("python"));
    if !kotlin.is_empty() || !python.is_empty() {
        results.extend(foreign_figures(
            &root,
            &target_dir,
            sizes,
            &kotlin,
            &python,
        )?);
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

fn foreign_figures(
    root: &Path,
    target_dir: &Path,
    sizes: &Sizes,
    kotlin: &[Figure],
    python: &[Figure],
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
    let classpath = if kotlin.is_empty() {
        None
    } else {
        Some(build_kotlin(root, target_dir)?)
    };

    let schema = root.join("schemas/sample.json");
    let args = |figures: &[Figure]| {
        let keys: Vec<&str> = figures.iter().map(|f| f.key()).collect();
        vec![
            schema.to_string_lossy().into_owned(),
            sizes.records.to_string(),
            sizes.warmup.to_string(),
            sizes.loops.to_string(),
            sizes.calls.to_string(),
            sizes.query_warmup.to_string(),
            sizes.query_calls.to_string(),
            keys.join(","),
        ]
    };
    let schema_json =
        std::fs::read_to_string(&schema).map_err(|e| format!("{}: {e}", schema.display()))?;
    let mut all: Vec<Figure> = kotlin.iter().chain(python).copied().collect();
    all.dedup();
    let all: Vec<Figure> = Figure::ALL
        .into_iter()
        .filter(|f| all.contains(f))
        .collect();

    // Rust before and after the foreign runs, pooled: drift in the machine's load over the run
    // then weighs on the floor as it does on the foreign figures.
    let mut rust = rust_floor(&schema_json, sizes, &all);
    // One process per figure: in one JVM, a figure ran after another inherits its heap, the JIT's
    // state and JNA's cleaner backlog (the second of three figures measured up to 5x slower than
    // in a fresh JVM on the loaded machine), so each figure starts as an app's first calls would.
    let mut kotlin_us = Vec::new();
    if let Some(classpath) = &classpath {
        for figure in kotlin {
            let mut java = Command::new("java");
            java.arg(format!("-Djna.library.path={}", private.path().display()))
                .args(["-cp", classpath, "dev.tandem.bench.GetBenchKt"])
                .args(args(std::slice::from_ref(figure)));
            kotlin_us.extend(harness("kotlin", &mut java, std::slice::from_ref(figure))?);
        }
    }
    let mut python_us = Vec::new();
    for figure in python {
        let mut py = Command::new("python3");
        py.env("TANDEM_PYTHON_BINDINGS", private.path())
            .arg(root.join("bench/ffi/get_bench.py"))
            .args(args(std::slice::from_ref(figure)));
        python_us.extend(harness("python", &mut py, std::slice::from_ref(figure))?);
    }
    for (figure, more) in rust_floor(&schema_json, sizes, &all) {
        rust.iter_mut()
            .find(|(f, _)| *f == figure)
            .expect("the same figures both times")
            .1
            .extend(more);
    }

    let floors: Vec<(Figure, f64)> = rust
        .iter_mut()
        .map(|(figure, us)| {
            summary(&format!("rust {}", figure.key()), us);
            (*figure, median(us))
        })
        .collect();
    let mut results = Vec::new();
    for (language, measured) in [("kotlin", kotlin_us), ("python", python_us)] {
        for (figure, mut us) in measured {
            let floor = floors
                .iter()
                .find(|(f, _)| *f == figure)
                .map(|(_, us)| *us)
                .expect("a floor for every figure");
            let mut m = Measurement::new(figure.name(language), median(&mut us), "us").floor(floor);
            if let Some(target) = figure.target(language) {
                m = m.target(target);
            }
            results.push(m);
        }
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
        module.join("src/main/kotlin/dev/tandem/bench/CrossingBench.kt"),
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

/// Runs a foreign harness and returns its µs per call, one figure per timed loop, for each of
/// `figures`.
fn harness(
    name: &str,
    command: &mut Command,
    figures: &[Figure],
) -> Result<Vec<(Figure, Vec<f64>)>, String> {
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
    figures
        .iter()
        .map(|&figure| {
            let us: Vec<f64> = value[figure.key()]
                .as_array()
                .ok_or_else(|| format!("{name} harness JSON has no {}: {line}", figure.key()))?
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            if us.is_empty() {
                return Err(format!(
                    "{name} harness reported no loops of {}: {line}",
                    figure.key()
                ));
            }
            summary(&format!("{name} {}", figure.key()), &us);
            Ok((figure, us))
        })
        .collect()
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

/// The floor: the same calls on the same exported objects, made from Rust without crossing the
/// FFI. They take `String`s as the exported signatures do, so building them is part of the cost
/// here too (the foreign side pays for lowering its strings).
fn rust_floor(schema_json: &str, sizes: &Sizes, figures: &[Figure]) -> Vec<(Figure, Vec<f64>)> {
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
    let plans = tandem
        .clone()
        .collection("plans".to_string())
        .expect("the plans collection");
    let run = |figure: Figure, n: usize| {
        for i in 0..n {
            match figure {
                Figure::Get => {
                    let record = plans.get(ids[i % sizes.records].clone()).expect("get");
                    // Keeps the optimiser from discarding the call's result.
                    std::hint::black_box(record.expect("record exists"));
                }
                Figure::Get2 => {
                    let id = ids[i % sizes.records].clone();
                    let record = tandem.get("plans".to_string(), id).expect("get");
                    std::hint::black_box(record.expect("record exists"));
                }
                Figure::Query100 => {
                    let records = plans.query(query100()).expect("query");
                    assert_eq!(records.len(), 100.min(sizes.records));
                    std::hint::black_box(records);
                }
                Figure::GetMany100 => {
                    // The i-th window of 100 ids, cycling through the records as gets do.
                    let start = (i * 100) % sizes.records;
                    let window: Vec<String> = (start..start + 100)
                        .map(|j| ids[j % sizes.records].clone())
                        .collect();
                    let records = plans.get_many(window).expect("get_many");
                    assert!(records.iter().all(Option::is_some));
                    std::hint::black_box(records);
                }
            }
        }
    };
    let per_call = figures
        .iter()
        .map(|&figure| {
            let (warmup, calls) = match figure {
                Figure::Get | Figure::Get2 => (sizes.warmup, sizes.calls),
                Figure::Query100 | Figure::GetMany100 => (sizes.query_warmup, sizes.query_calls),
            };
            run(figure, warmup);
            let us = (0..sizes.loops)
                .map(|_| {
                    let (spent, ()) = time(|| run(figure, calls));
                    micros(spent) / calls as f64
                })
                .collect();
            (figure, us)
        })
        .collect();
    drop(plans);
    tandem.shutdown();
    per_call
}

/// Must match the query of GetBench.kt and get_bench.py: the first 100 `plans` in id order.
fn query100() -> Query {
    Query {
        limit: Some(100),
        ..Query::default()
    }
}
