// Helpers of the model tests. They run hosted in the app on an iOS simulator, against
// local-only engines (no server, so no network and no Keychain), over the bundled schema.

import Foundation
import Tandem
import XCTest
@testable import TandemPlans

extension XCTestCase {
    /// A local-only engine in a fresh directory, shut down and removed when the test ends.
    func makeLocalTandem() throws -> Tandem {
        let directory = try makeTemporaryDirectory()
        let tandem = try Tandem.open(
            config: TandemConfig(dataDir: directory.path, schemaJson: AppConfiguration.bundledSchema())
        )
        addTeardownBlock {
            tandem.shutdown()
        }
        return tandem
    }

    /// A fresh directory, removed when the test ends.
    func makeTemporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tandem-plans-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock {
            try? FileManager.default.removeItem(at: directory)
        }
        return directory
    }
}

/// Starts a model's `run()` for the rest of the test; the returned task is cancelled by the
/// caller (`defer { task.cancel() }`), which ends the model's streams.
@MainActor
func start(_ run: @escaping @MainActor () async -> Void) -> Task<Void, Never> {
    Task { @MainActor in
        await run()
    }
}

/// Polls `condition` until it holds. Sleeping yields the main actor, so the models' observation
/// tasks can apply what the engine delivers on its notification thread.
@MainActor
func waitUntil(
    _ what: String, timeout: TimeInterval = 5, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline {
            XCTFail("timed out after \(timeout) s waiting for: \(what)", file: file, line: line)
            return
        }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
}

/// A record as the engine would deliver it, for the pure-function tests. (Not named `record`:
/// inside an XCTestCase that name is `XCTestCase.record(_:)`, which shadows a global function.)
func makeRecord(_ collection: String, _ id: String, _ document: String, state: RecordState = .synced) -> Record {
    Record(
        collection: collection, id: id, document: document, version: 1, state: state,
        createdAt: Date(), updatedAt: Date()
    )
}
