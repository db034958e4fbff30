#!/usr/bin/env bash
# Refreshes vendor/libsqlite3-sys: the published libsqlite3-sys crate whose bundled build compiles
# the SQLite3 Multiple Ciphers amalgamation (crate `sqlite3mc-src`) instead of its own sqlite3.c
# (docs/design/encryption.md §1). The workspace's `[patch.crates-io]` points at the copy.
#
#   scripts/vendor-libsqlite3-sys.sh VERSION     # e.g. 0.39.1, the version rusqlite asks for
#
# Run it after a rusqlite upgrade with the libsqlite3-sys version the new Cargo.lock names (look it
# up before re-adding the patch, or read it from rusqlite's Cargo.toml). It copies the registry
# source (fetching it first when Cargo has not unpacked it yet), drops the SQLite sources the
# bundled build no longer compiles (sqlite3.c, sqlite3.h, sqlite3ext.h: ~10 MB), keeps the
# committed bindings the build copies, and applies vendor/libsqlite3-sys.patch. If the patch no
# longer applies, redo its two hunks by hand against the new build.rs and save `diff -u` as the
# new patch.
#
# The bindings are libsqlite3-sys's, generated from its own SQLite; sqlite3mc-src may wrap an
# older or newer SQLite (205.1 wraps 3.53.4, libsqlite3-sys 0.39.1 ships 3.54.1). The C API is
# backwards compatible; only functions newer than the compiled SQLite are missing at link time,
# and rusqlite uses none of them (a link error would say so).
set -euo pipefail

version="${1:?usage: $0 VERSION (the libsqlite3-sys version in Cargo.lock)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/vendor/libsqlite3-sys"
patch_file="$root/vendor/libsqlite3-sys.patch"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

find_source() {
  find "$cargo_home/registry/src" -mindepth 2 -maxdepth 2 -type d -name "libsqlite3-sys-$version" \
    2>/dev/null | head -n 1
}

src="$(find_source)"
if [[ -z "$src" ]]; then
  # Let Cargo download and unpack the published crate (a throwaway crate outside the workspace,
  # so the workspace's [patch] does not apply).
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  mkdir -p "$scratch/src"
  cat >"$scratch/Cargo.toml" <<EOF
[package]
name = "fetch-libsqlite3-sys"
version = "0.0.0"
edition = "2021"

[dependencies]
libsqlite3-sys = "=$version"

[workspace]
EOF
  : >"$scratch/src/lib.rs"
  cargo fetch --manifest-path "$scratch/Cargo.toml" >&2
  src="$(find_source)"
fi
[[ -n "$src" ]] || { echo "libsqlite3-sys $version not found in $cargo_home/registry/src" >&2; exit 1; }

rm -rf "$dest"
cp -R "$src" "$dest"
chmod -R u+w "$dest"
rm -f "$dest/.cargo-ok" \
  "$dest/sqlite3/sqlite3.c" "$dest/sqlite3/sqlite3.h" "$dest/sqlite3/sqlite3ext.h"
patch --quiet --directory="$dest" -p1 --no-backup-if-mismatch <"$patch_file"
echo "vendor/libsqlite3-sys: libsqlite3-sys $version from $src, patched for SQLite3MC" >&2
