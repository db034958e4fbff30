// swift-tools-version:5.9
// Tandem for Apple platforms: the UniFFI-generated Swift (Sources/Tandem/Tandem.swift, copied in
// by scripts/build-xcframework.sh) and a small hand-written layer, over the Rust core shipped as
// the static library in TandemFFI.xcframework (also built by that script).
//
// Build first, on macOS with Xcode:   scripts/build-xcframework.sh
// Then test:                          swift test --package-path bindings/swift

import PackageDescription

let package = Package(
    name: "Tandem",
    platforms: [
        // Keep in step with IPHONEOS_DEPLOYMENT_TARGET / MACOSX_DEPLOYMENT_TARGET in
        // scripts/build-xcframework.sh, so the static library links without warnings.
        .iOS(.v15),
        .macOS(.v12),
    ],
    products: [
        .library(name: "Tandem", targets: ["Tandem"]),
    ],
    targets: [
        // The Rust core (libtandem.a per platform) with its C header and module map; the module
        // it provides is `TandemFFI`, which the generated Swift imports.
        .binaryTarget(name: "TandemFFI", path: "TandemFFI.xcframework"),
        .target(
            name: "Tandem",
            dependencies: ["TandemFFI"],
            path: "Sources/Tandem",
            linkerSettings: [
                // A static Rust library does not carry its framework dependencies to the final
                // link: TLS certificate checks (rustls-platform-verifier) and the keychain use
                // Security and CoreFoundation; network reachability uses SystemConfiguration.
                .linkedFramework("Security"),
                .linkedFramework("CoreFoundation"),
                .linkedFramework("SystemConfiguration"),
            ]
        ),
        .testTarget(
            name: "TandemTests",
            dependencies: ["Tandem"],
            path: "Tests/TandemTests"
        ),
    ]
)
