#!/usr/bin/env bash
# Builds the tandem cdylib for this machine and generates the Kotlin, Swift and Python bindings
# from it (UniFFI library mode). Output: bindings/generated/{kotlin,swift,python}; the Python
# directory also gets a copy of the library so `import tandem` works from there.
#
# Usage: scripts/generate-bindings.sh [--release]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tandem/target}"

profile=debug
cargo_flags=()
if [[ "${1:-}" == "--release" ]]; then
  profile=release
  cargo_flags+=(--release)
fi

case "$(uname -s)" in
  Darwin) lib="libtandem.dylib" ;;
  *) lib="libtandem.so" ;;
esac

cargo build "${cargo_flags[@]}" -p tandem-ffi -p uniffi-bindgen
library="$CARGO_TARGET_DIR/$profile/$lib"
bindgen="$CARGO_TARGET_DIR/$profile/uniffi-bindgen"
out="$root/bindings/generated"
rm -rf "$out"
for language in kotlin swift python; do
  "$bindgen" generate --config "$root/uniffi.toml" --language "$language" --no-format \
    --out-dir "$out/$language" "$library"
done
cp "$library" "$out/python/"
echo "bindings generated in $out"
