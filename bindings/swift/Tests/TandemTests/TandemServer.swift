// A real tandem-server for the sync tests; mirrors bindings/kotlin/src/test/kotlin/dev/tandem/TandemServer.kt.

import Foundation
import XCTest
@testable import Tandem

/// A running `tandem-server` (the workspace's binary, SQLite backend, the tests' schema) in its
/// own temporary directory.
///
/// The binary is `$TANDEM_SERVER_BIN`, else `$CARGO_TARGET_DIR/debug/tandem-server` (default
/// `~/.cache/tandem/target`); when it is missing it is built with `cargo build -p tandem-server`,
/// as the Python and Kotlin tests do.
final class TandemServer: @unchecked Sendable {
    // @unchecked: every property is set once in `init` and never changes.
    /// The server's base URL (`http://127.0.0.1:PORT`).
    let url: String
    private let process: Process
    private let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Output goes to a file rather than a pipe: nobody has to keep draining a pipe (a full one
        // would stall the server), and the file is what a failure message shows.
        let log = dir.appendingPathComponent("server.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)

        process = Process()
        process.executableURL = try TandemServer.binary()
        process.arguments = [
            "--addr", "127.0.0.1:0", "--db", "sqlite://\(dir.appendingPathComponent("server.db").path)",
            "--schema", schemaURL.path,
        ]
        // The server reads its whole configuration from TANDEM_* too: none may leak in from the
        // developer's shell.
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TANDEM_") }
        environment["TANDEM_JWT_SECRET"] = "swift-binding-tests-secret-0123456789"
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        try process.run()
        do {
            url = try TandemServer.awaitURL(process, log: log)
        } catch {
            process.terminate()
            throw error
        }
    }

    /// Stops the server and removes its directory.
    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dir)
    }

    /// A device: an engine in `dataDir` syncing with this server. Tokens go to an
    /// `InMemorySecureStore` (never the Keychain); realtime pokes are off so that only the tests'
    /// explicit `syncNow()` calls move data, which keeps every assertion deterministic.
    func device(_ dataDir: URL, secureStore: SecureStore = InMemorySecureStore()) throws -> Tandem {
        var sync = SyncConfig()
        sync.realtime = false
        return try Tandem.open(
            config: TandemConfig(
                dataDir: dataDir.path, schemaJson: schema, serverUrl: url, sync: sync, secureStore: secureStore))
    }

    private static func awaitURL(_ process: Process, log: URL) throws -> String {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where line.hasPrefix("listening on ") {
                return line.dropFirst("listening on ".count).trimmingCharacters(in: .whitespaces)
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw ServerError(message: "tandem-server did not start:\n\(text)")
    }

    private static func binary() throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["TANDEM_SERVER_BIN"] {
            return URL(fileURLWithPath: path)
        }
        let target = environment["CARGO_TARGET_DIR"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tandem/target").path
        let binary = URL(fileURLWithPath: target).appendingPathComponent("debug/tandem-server")
        if FileManager.default.isExecutableFile(atPath: binary.path) {
            return binary
        }
        // This file is <root>/bindings/swift/Tests/TandemTests/TandemServer.swift.
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 {
            root.deleteLastPathComponent()
        }
        let cargo = Process()
        cargo.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cargo.arguments = ["cargo", "build", "-p", "tandem-server"]
        cargo.currentDirectoryURL = root
        var cargoEnvironment = environment
        // Build where the tests look: <target>/debug/tandem-server.
        cargoEnvironment["CARGO_TARGET_DIR"] = target
        cargo.environment = cargoEnvironment
        try cargo.run()
        cargo.waitUntilExit()
        guard cargo.terminationStatus == 0 else {
            throw ServerError(message: "cargo build -p tandem-server failed")
        }
        return binary
    }
}

/// Why the test server could not be started.
struct ServerError: Error, CustomStringConvertible {
    let message: String

    var description: String { message }
}

/// A `SecureStore` that keeps tokens in memory, for tests only: it is not secure, and a device
/// using it forgets its session when the process ends. It keeps the tests away from the Keychain
/// (which would need entitlements under `swift test` and must not see developers' sessions).
final class InMemorySecureStore: SecureStore, @unchecked Sendable {
    // @unchecked: every access to `values` holds `lock`.
    private let lock = NSLock()
    private var values: [String: String] = [:]

    func get(key: String) throws -> String? {
        lock.lock()
        defer { lock.unlock() }
        return values[key]
    }

    func set(key: String, value: String) throws {
        lock.lock()
        defer { lock.unlock() }
        values[key] = value
    }

    func delete(key: String) throws {
        lock.lock()
        defer { lock.unlock() }
        values[key] = nil
    }

    /// The names stored now.
    func names() -> Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return Set(values.keys)
    }
}
