#!/usr/bin/env bash
# Builds the Tandem Android library (AAR) from this checkout:
#   1. libtandem.so for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk;
#   2. the Kotlin bindings with UniFFI's `android = true` (bindings/android/uniffi-android.toml);
#   3. `gradle assembleRelease` in bindings/android, which packages both with the hand-written
#      layer shared with the JVM build (bindings/kotlin/src/main/kotlin).
# Output: bindings/android/build/outputs/aar/tandem-release.aar
#
# Prerequisites (see docs/bindings.md): rustup with the three Android targets, cargo-ndk
# (`cargo install cargo-ndk`), an Android NDK (ANDROID_NDK_HOME, or ANDROID_HOME/ndk/<version>),
# the Android SDK with platform 36 (ANDROID_HOME), JDK 17+, Gradle 8.13+ on PATH (or
# GRADLE=/path/to/gradle).
#
# Usage: scripts/build-aar.sh
# Environment: TANDEM_ANDROID_PROFILE (Cargo profile; default `mobile` when the workspace defines
# it, else `release`), TANDEM_ANDROID_API (minimum API level the .so files link against; 26).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tandem/target}"

android="$root/bindings/android"
generated="$android/build/generated"
abis=(arm64-v8a armeabi-v7a x86_64)
rust_targets=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
api="${TANDEM_ANDROID_API:-26}"
gradle="${GRADLE:-gradle}"

if [[ -n "${TANDEM_ANDROID_PROFILE:-}" ]]; then
  profile="$TANDEM_ANDROID_PROFILE"
elif grep -q '^\[profile\.mobile\]' Cargo.toml; then
  profile=mobile
else
  profile=release
fi

fail() { echo "build-aar: $*" >&2; exit 1; }

command -v cargo-ndk >/dev/null 2>&1 || fail "cargo-ndk is missing: cargo install cargo-ndk"
command -v "$gradle" >/dev/null 2>&1 || fail "Gradle 8.13+ is missing: install it or set GRADLE"
if [[ -z "${ANDROID_NDK_HOME:-}" ]]; then
  [[ -n "${ANDROID_HOME:-}" && -d "${ANDROID_HOME}/ndk" ]] \
    || fail "no NDK: set ANDROID_NDK_HOME, or ANDROID_HOME with an ndk/ directory"
fi
[[ -n "${ANDROID_HOME:-}" || -f "$android/local.properties" ]] \
  || fail "no Android SDK: set ANDROID_HOME (or write sdk.dir to bindings/android/local.properties)"
if command -v rustup >/dev/null 2>&1; then
  rustup target add "${rust_targets[@]}"
fi

echo "==> libtandem.so for ${abis[*]} (profile $profile, API $api)"
rm -rf "$generated/jniLibs"
ndk_targets=()
for abi in "${abis[@]}"; do
  ndk_targets+=(--target "$abi")
done
cargo ndk "${ndk_targets[@]}" --platform "$api" --output-dir "$generated/jniLibs" \
  build --profile "$profile" -p tandem-ffi

echo "==> Kotlin bindings (android = true)"
# Library mode reads the exported API from a built library. The host debug build has the same
# metadata as the Android builds of this checkout, and unlike a stripped release .so still has
# the symbols the generator looks for.
case "$(uname -s)" in
  Darwin) host_lib="libtandem.dylib" ;;
  *) host_lib="libtandem.so" ;;
esac
cargo build -p tandem-ffi -p uniffi-bindgen
rm -rf "$generated/uniffi"
"$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate --config "$android/uniffi-android.toml" \
  --language kotlin --no-format --out-dir "$generated/uniffi/kotlin" "$CARGO_TARGET_DIR/debug/$host_lib"

echo "==> AAR"
(cd "$android" && "$gradle" --no-daemon assembleRelease)
aar="$android/build/outputs/aar/tandem-release.aar"
[[ -f "$aar" ]] || fail "Gradle finished but $aar is missing"
echo "built $aar"
