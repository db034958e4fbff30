// Where the app keeps its data, which server it talks to, and the engine configuration built
// from them.

import Foundation
import Tandem

/// The inputs of `Tandem.open` that the app decides.
struct AppConfiguration {
    /// The development server as the iOS simulator reaches it: the simulator shares the Mac's
    /// network stack, so the Mac's loopback address works (an Android emulator would need
    /// 10.0.2.2 instead). On a real device, use the Mac's LAN address.
    static let defaultServerURL = "http://127.0.0.1:8787"

    /// A directory the engine owns: one database per account, the guest database, the client id.
    var dataDirectory: URL
    var schemaJSON: String
    var serverURL: String

    /// The engine configuration. No `secureStore` is passed, so the engine keeps tokens in the
    /// Keychain (its platform default). The plans are encrypted at rest: the database, its WAL
    /// and the photo cache, with a key the engine generates and keeps in the Keychain as
    /// after-first-unlock, this-device-only (background sync can read it; backups do not carry
    /// it).
    func tandemConfig() -> TandemConfig {
        var config = TandemConfig(dataDir: dataDirectory.path, schemaJson: schemaJSON, serverUrl: serverURL)
        config.encryption = .on
        #if DEBUG
        // Development builds may reach a dev server on another machine of the LAN over plain
        // http (e.g. http://192.168.1.20:8787 from a real device). Release builds never pass
        // this, so the engine refuses plain http to anything but loopback there.
        config.allowInsecureHttp = true
        #endif
        return config
    }

    /// `Application Support/Tandem`, created when missing.
    static func defaultDataDirectory() throws -> URL {
        let support = try FileManager.default.url(
            for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true
        )
        let directory = support.appendingPathComponent("Tandem", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// The schema the server also loads: `schemas/sample.json` of the repository, which
    /// project.yml copies into the app bundle as `sample.json`.
    static func bundledSchema(in bundle: Bundle = .main) throws -> String {
        guard let url = bundle.url(forResource: "sample", withExtension: "json") else {
            throw AppConfigurationError.schemaMissing
        }
        return try String(contentsOf: url, encoding: .utf8)
    }
}

enum AppConfigurationError: LocalizedError {
    case schemaMissing

    var errorDescription: String? {
        switch self {
        case .schemaMissing:
            return "sample.json is missing from the app bundle; regenerate the project with xcodegen."
        }
    }
}

/// Checks and normalizes the server address typed on the sign-in screen.
enum ServerAddress {
    enum Problem: LocalizedError, Equatable {
        case empty
        case notAURL
        case unsupportedScheme(String)

        var errorDescription: String? {
            switch self {
            case .empty:
                return "Enter the server address, e.g. \(AppConfiguration.defaultServerURL)."
            case .notAURL:
                return "The server address is not a URL with a host."
            case let .unsupportedScheme(scheme):
                return "The server address must start with http:// or https://, not \(scheme)://."
            }
        }
    }

    /// `text` trimmed, with the scheme and host lowercased and no trailing slash; the engine
    /// appends `/auth/v1` and `/sync/v1` itself.
    static func normalize(_ text: String) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw Problem.empty
        }
        guard var components = URLComponents(string: trimmed), let scheme = components.scheme?.lowercased() else {
            throw Problem.notAURL
        }
        guard scheme == "http" || scheme == "https" else {
            throw Problem.unsupportedScheme(scheme)
        }
        guard let host = components.host, !host.isEmpty else {
            throw Problem.notAURL
        }
        components.scheme = scheme
        components.host = host.lowercased()
        while components.path.hasSuffix("/") {
            components.path.removeLast()
        }
        guard let normalized = components.string else {
            throw Problem.notAURL
        }
        return normalized
    }
}
