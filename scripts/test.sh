#!/usr/bin/env bash
# Runs every test of the project: Rust (unit, integration, crash), the generated bindings' tests,
# the README's commands and a smoke run of the benchmarks. On a Debian-like machine it installs
# what is missing; elsewhere it says what is missing and stops.
#
# Usage: scripts/test.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Outside the clone, so a fresh clone on the same machine reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tandem/target}"
export CARGO_TERM_COLOR=never
# A fresh clone (CI) builds the workspace's own crates from scratch at a new path, so incremental
# state would only be written, never reused: it cost build time and gigabytes of the cache.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n==> %s\n' "$*"; }

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  if ! have apt-get; then
    echo "missing: $* (install it with your package manager)" >&2
    exit 1
  fi
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

ensure_tools() {
  have cargo || { echo "missing: cargo (install Rust from https://rustup.rs)" >&2; exit 1; }
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  have python3 || apt_install python3 python3-pip
  python3 -c 'import pytest' 2>/dev/null || python3 -m pip install --quiet pytest \
    || apt_install python3-pytest
  # moto's S3 server, for the attachment tests on an S3 blob store (scripts/s3.sh).
  have moto_server || python3 -m pip install --quiet 'moto[server]'
  have shellcheck || apt_install shellcheck
  # Go, to build Supabase Auth (GoTrue) from vendor/gotrue for the end-to-end test (a Go older
  # than its go.mod asks fetches the newer toolchain itself, unless GOTOOLCHAIN=local).
  have go || apt_install golang-go
  have mvn || apt_install maven
  have java || apt_install default-jdk-headless
  # Debian's headless Chromium, its WebDriver and Selenium, for the admin console's browser test
  # (scripts/console-test.py).
  { have chromium && have chromedriver; } || apt_install chromium chromium-driver
  python3 -c 'import selenium' 2>/dev/null || python3 -m pip install --quiet selenium \
    || apt_install python3-selenium
}

# The workspace's declared `rust-version`, checked with that toolchain (installed through rustup
# when missing; a machine without rustup says so and skips the check).
msrv="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
check_msrv() {
  if ! have rustup; then
    echo "rustup is missing: the rust-version check needs it (skipped)"
    return
  fi
  rustup run "$msrv" rustc --version >/dev/null 2>&1 \
    || rustup toolchain install "$msrv" --profile minimal
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/msrv" cargo "+$msrv" check --workspace --all-targets
}

# A throwaway PostgreSQL cluster (scripts/postgres.sh installs Debian's package when missing) for
# the server's tests on its production backend; stopped however this script ends.
start_postgres() {
  TANDEM_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
  export TANDEM_TEST_POSTGRES_URL
}

# A throwaway S3 server (moto's, on loopback, bucket `tandem-test`) for the attachment tests on an
# S3 blob store; stopped however this script ends, like the PostgreSQL cluster.
start_s3() {
  TANDEM_TEST_S3_URL="$(scripts/s3.sh start)"
  export TANDEM_TEST_S3_URL
}

# Supabase Auth (GoTrue), built once into ~/.cache/tandem/gotrue (scripts/gotrue.sh), on its own
# database of the throwaway cluster, with access tokens that live 5 s so the end-to-end test
# (bindings/ffi/tests/gotrue.rs) sees them refresh.
start_gotrue() {
  TANDEM_TEST_GOTRUE_JWT_EXP=5
  TANDEM_TEST_GOTRUE_URL="$(GOTRUE_JWT_EXP="$TANDEM_TEST_GOTRUE_JWT_EXP" scripts/gotrue.sh start "$TANDEM_TEST_POSTGRES_URL")"
  TANDEM_TEST_GOTRUE_SECRET_FILE="$(scripts/gotrue.sh secret-file "$TANDEM_TEST_GOTRUE_URL")"
  export TANDEM_TEST_GOTRUE_JWT_EXP TANDEM_TEST_GOTRUE_URL TANDEM_TEST_GOTRUE_SECRET_FILE
}

stop_services() {
  if [[ -n "${TANDEM_TEST_GOTRUE_URL:-}" ]]; then
    scripts/gotrue.sh stop "$TANDEM_TEST_GOTRUE_URL" >/dev/null 2>&1 || true
  fi
  if [[ -n "${TANDEM_TEST_POSTGRES_URL:-}" ]]; then
    scripts/postgres.sh stop "$TANDEM_TEST_POSTGRES_URL" >/dev/null 2>&1 || true
  fi
  if [[ -n "${TANDEM_TEST_S3_URL:-}" ]]; then
    scripts/s3.sh stop "$TANDEM_TEST_S3_URL" >/dev/null 2>&1 || true
  fi
}
trap stop_services EXIT

step "tools"
ensure_tools
cargo --version
python3 --version

step "lint: rustfmt, shellcheck"
cargo fmt --all -- --check
cargo fmt --manifest-path tools/parse-check/Cargo.toml -- --check
shellcheck -x scripts/*.sh scripts/lib/*.sh .ci/run

step "build"
cargo build --workspace --all-targets

step "lint: clippy (every warning is an error)"
cargo clippy --workspace --all-targets -- -D warnings

step "rust-version: the workspace builds with the declared minimum ($msrv)"
check_msrv

step "PostgreSQL (throwaway cluster) and S3 (moto)"
start_postgres
echo "$TANDEM_TEST_POSTGRES_URL"
start_s3
echo "$TANDEM_TEST_S3_URL"

step "Supabase Auth (GoTrue v2.196.0 from vendor/gotrue; built once, minutes the first time)"
scripts/gotrue.sh build
start_gotrue
echo "$TANDEM_TEST_GOTRUE_URL"

step "rust tests (server conformance on SQLite and PostgreSQL, engine, sync end to end)"
cargo test --workspace --no-fail-fast

step "bindings: generate Kotlin, Swift and Python"
scripts/generate-bindings.sh

step "bindings: Python tests"
python3 -m pytest -q bindings/python/tests

step "bindings: Kotlin tests on the JVM (then installed for the Android sample's state layer)"
mvn -B -ntp -f bindings/kotlin/pom.xml install

step "android-sample: the state layer's JVM tests against a real server"
mvn -B -ntp -f android-sample/state/pom.xml test

step "Swift and Kotlin parse checks (bindings, sample apps), Swift package and sample app layout"
cargo test --manifest-path tools/parse-check/Cargo.toml

step "README: every command of its sh blocks, exactly as written"
TANDEM_README_CHECK=test.sh python3 scripts/check-readme.py

step "admin console: sign in, kill switch, a device paused and resumed, in headless Chromium"
python3 scripts/console-test.py

step "benchmarks: smoke run of every suite (figures mean nothing here)"
cargo run -p tandem-bench -- local --quick >/dev/null
cargo run -p tandem-bench -- sync --quick >/dev/null
TANDEM_BENCH_POSTGRES_URL="$TANDEM_TEST_POSTGRES_URL" cargo run -p tandem-bench -- server --quick >/dev/null
cargo run -p tandem-bench -- ffi --quick >/dev/null
cargo run -p tandem-bench -- attachments --quick >/dev/null
# The scale suite draws its chart too: the SVG must come out non-empty.
scale_chart_dir="$(mktemp -d)"
cargo run -p tandem-bench -- scale --quick --chart "$scale_chart_dir/scale.svg" >/dev/null
test -s "$scale_chart_dir/scale.svg"
rm -r "$scale_chart_dir"

echo
echo "all tests passed"
