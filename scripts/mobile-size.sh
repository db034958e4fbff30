#!/usr/bin/env bash
# How much SQLite3 Multiple Ciphers adds to the library the apps ship (docs/design/encryption.md §1,
# issue 17's ceiling: 1.5 MB): builds libtandem (tandem-ffi's cdylib) with the `mobile` profile for
# the host target twice, with the workspace's `[patch.crates-io] libsqlite3-sys` (SQLite3MC) and
# without it (the published libsqlite3-sys, plain SQLite), and prints both stripped sizes and the
# growth.
#
#   scripts/mobile-size.sh
#
# Cargo cannot remove a `[patch]` from the command line (`--config` only adds), so the build
# without it runs in a temporary copy of the checkout's tracked (and modified) files with the patch
# section cut out of Cargo.toml. Both builds share $CARGO_TARGET_DIR (default: target/ of the
# checkout): the two libsqlite3-sys builds have different package ids, so everything else is built
# once. The `mobile` profile strips symbols already; `strip` runs again in case a toolchain does
# not. A cold run compiles the dependency tree in the mobile profile (fat LTO, one codegen unit):
# budget several minutes per build on a small machine (13 min for both, cold, on 2 shared cores).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
  Darwin) lib="libtandem.dylib" ;;
  *) lib="libtandem.so" ;;
esac
out="$CARGO_TARGET_DIR/mobile/$lib"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build() { # $1: checkout, $2: where to keep the library
  (cd "$1" && cargo build --quiet --profile mobile -p tandem-ffi --lib)
  cp "$out" "$2"
  strip "$2" 2>/dev/null || true
}

size_of() { wc -c <"$1" | tr -d ' '; }

echo "==> libtandem ($lib), mobile profile, with SQLite3MC (the workspace as it is)" >&2
build "$root" "$work/with.lib"

echo "==> libtandem without the [patch] (plain SQLite)" >&2
plain="$work/plain"
mkdir -p "$plain"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | grep -zv '^vendor/' |
  xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$plain"
# Cut the `[patch.crates-io]` table (its header and entries up to the next blank line or table).
awk '
  /^\[patch\.crates-io\]/ { skip = 1; next }
  skip && (/^\[/ || /^$/) { skip = 0 }
  !skip { print }
' "$root/Cargo.toml" >"$plain/Cargo.toml"
if grep -q 'vendor/libsqlite3-sys' "$plain/Cargo.toml"; then
  echo "could not remove the [patch] from the copy's Cargo.toml" >&2
  exit 1
fi
build "$plain" "$work/without.lib"

with=$(size_of "$work/with.lib")
without=$(size_of "$work/without.lib")
awk -v with="$with" -v without="$without" 'BEGIN {
  printf "plain SQLite:   %12d B\n", without
  printf "SQLite3MC:      %12d B\n", with
  printf "growth:         %12d B (%+.2f MB)\n", with - without, (with - without) / 1e6
}'
