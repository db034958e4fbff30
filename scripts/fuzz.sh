#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 60) with libFuzzer, starting from the
# committed corpus (fuzz/corpus/<target>/; what a run finds goes to a scratch copy, not there).
# Prints each target's executions per second and fails if any target crashes.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs the nightly toolchain; installs cargo-fuzz when it is missing.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tandem/fuzz-target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets=(schema_document document_validation client_server_answers server_push_body server_pull_body)
max_len=65536
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cargo +nightly fuzz build -O

failed=()
for target in "${targets[@]}"; do
  work="$scratch/$target"
  mkdir -p "$work" "$root/fuzz/artifacts/$target"
  log="$scratch/$target.log"
  status=0
  cargo +nightly fuzz run -O "$target" "$work" "$root/fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 \
    -artifact_prefix="$root/fuzz/artifacts/$target/" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  execs="${execs:-0}"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "$target: CRASHED (exit $status); log tail:"
    tail -n 40 "$log"
  else
    echo "$target: $execs executions in $seconds s = $((execs / (seconds > 0 ? seconds : 1))) exec/s"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
