#!/usr/bin/env bash
# Builds TandemFFI.xcframework and the generated Swift for the Swift package in bindings/swift
# (macOS with Xcode only):
#   1. libtandem.a for iOS devices (aarch64-apple-ios), the iOS simulator (aarch64-apple-ios-sim and
#      x86_64-apple-ios, merged with lipo) and macOS (aarch64-apple-darwin and x86_64-apple-darwin,
#      merged), so `swift test` runs on a Mac too;
#   2. the Swift bindings, C header and module map from UniFFI (library mode, host build);
#   3. `xcodebuild -create-xcframework` with one library and the headers per platform.
# Output: bindings/swift/TandemFFI.xcframework and bindings/swift/Sources/Tandem/Tandem.swift
# (both gitignored). Then: swift test --package-path bindings/swift
#
# Prerequisites (see docs/bindings.md): Xcode (xcodebuild, lipo), rustup with the five targets
# (added below when rustup is present).
#
# Usage: scripts/build-xcframework.sh
# Environment: TANDEM_APPLE_PROFILE (Cargo profile; default `mobile` when the workspace defines
# it, else `release`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tandem/target}"
# Match the platforms in bindings/swift/Package.swift, so the archives link without warnings.
export IPHONEOS_DEPLOYMENT_TARGET=15.0
export MACOSX_DEPLOYMENT_TARGET=12.0

package="$root/bindings/swift"
work="$CARGO_TARGET_DIR/xcframework"
ios=aarch64-apple-ios
simulator=(aarch64-apple-ios-sim x86_64-apple-ios)
macos=(aarch64-apple-darwin x86_64-apple-darwin)

if [[ -n "${TANDEM_APPLE_PROFILE:-}" ]]; then
  profile="$TANDEM_APPLE_PROFILE"
elif grep -q '^\[profile\.mobile\]' Cargo.toml; then
  profile=mobile
else
  profile=release
fi

fail() { echo "build-xcframework: $*" >&2; exit 1; }

[[ "$(uname -s)" == Darwin ]] || fail "needs macOS with Xcode (xcodebuild, lipo)"
command -v xcodebuild >/dev/null 2>&1 || fail "xcodebuild is missing: install Xcode and run xcode-select"
if command -v rustup >/dev/null 2>&1; then
  rustup target add "$ios" "${simulator[@]}" "${macos[@]}"
fi

echo "==> libtandem.a for $ios ${simulator[*]} ${macos[*]} (profile $profile)"
for target in "$ios" "${simulator[@]}" "${macos[@]}"; do
  cargo build --profile "$profile" -p tandem-ffi --target "$target"
done
# Cargo's directory for a profile: `dev` builds to debug/, every other profile to its own name.
lib() { echo "$CARGO_TARGET_DIR/$1/$profile/libtandem.a"; }

rm -rf "$work"
mkdir -p "$work/ios" "$work/ios-simulator" "$work/macos"
cp "$(lib "$ios")" "$work/ios/libtandem.a"
# An XCFramework holds one library per platform, so the simulator's two architectures (and the
# Mac's) become one fat archive each.
lipo -create "$(lib "${simulator[0]}")" "$(lib "${simulator[1]}")" -output "$work/ios-simulator/libtandem.a"
lipo -create "$(lib "${macos[0]}")" "$(lib "${macos[1]}")" -output "$work/macos/libtandem.a"

echo "==> Swift bindings, header and module map"
# Library mode reads the exported API from the host debug build of this checkout: the same
# metadata as the static libraries above, with symbols a stripped release build lacks.
cargo build -p tandem-ffi -p uniffi-bindgen
generated="$work/swift"
"$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate --config "$root/uniffi.toml" --language swift \
  --no-format --out-dir "$generated" "$CARGO_TARGET_DIR/debug/libtandem.dylib"
# Headers go into a directory named after the module: other Rust XCFrameworks in the same app
# also ship a module.modulemap, and Xcode copies every framework's headers into one include
# directory, where two files of that name at the top would collide.
headers="$work/headers"
mkdir -p "$headers/TandemFFI"
cp "$generated/TandemFFI.h" "$headers/TandemFFI/TandemFFI.h"
cp "$generated/TandemFFI.modulemap" "$headers/TandemFFI/module.modulemap"

echo "==> TandemFFI.xcframework"
rm -rf "$package/TandemFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$work/ios/libtandem.a" -headers "$headers" \
  -library "$work/ios-simulator/libtandem.a" -headers "$headers" \
  -library "$work/macos/libtandem.a" -headers "$headers" \
  -output "$package/TandemFFI.xcframework"
cp "$generated/Tandem.swift" "$package/Sources/Tandem/Tandem.swift"
echo "built $package/TandemFFI.xcframework and Sources/Tandem/Tandem.swift"
