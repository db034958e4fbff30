// Encryption at rest through the generated Swift API (docs/design/encryption.md), the same
// checks as the Kotlin and Python tests: no document value or field name in the files with it
// on, both found with it off; a missing or wrong key is `TandemError.Key` and leaves the file as
// it was; `rekey` keeps every record under a new key.

import Foundation
import XCTest
@testable import Tandem

final class EncryptionTests: XCTestCase {
    private let value = "quetzalcoatl-swift-distinctive-4711"
    private let field = "zanzibarSwiftField"
    private var document: String { #"{"name": "\#(value)", "meta": {"\#(field)": 1}}"# }

    private func config(_ dir: URL, _ store: SecureStore, _ encryption: Encryption) -> TandemConfig {
        TandemConfig(
            dataDir: dir.appendingPathComponent("data").path, schemaJson: schema, secureStore: store,
            encryption: encryption)
    }

    private func openStore(_ dir: URL, _ store: SecureStore, _ encryption: Encryption) throws -> Tandem {
        try Tandem.open(config: config(dir, store, encryption))
    }

    /// The names of the data directory's files that contain `text`.
    private func filesContaining(_ dir: URL, _ text: String) throws -> [String] {
        let needle = Data(text.utf8)
        let data = dir.appendingPathComponent("data")
        guard let files = FileManager.default.enumerator(at: data, includingPropertiesForKeys: nil) else {
            return []
        }
        var found: [String] = []
        for case let file as URL in files {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            if try Data(contentsOf: file).range(of: needle) != nil {
                found.append(file.lastPathComponent)
            }
        }
        return found.sorted()
    }

    private func keyName(_ store: InMemorySecureStore) throws -> String {
        let names = store.names().filter { $0.hasSuffix("/db-key/guest.db") }
        XCTAssertEqual(names.count, 1, "one stored key")
        return try XCTUnwrap(names.first)
    }

    func testEncryptedFilesHoldNoDocumentTextAndPlaintextOnesDo() throws {
        let dir = try temporaryDirectory()
        let store = InMemorySecureStore()
        let tandem = try openStore(dir, store, .on)
        _ = try tandem.put(collection: "plans", id: "p1", document: document)
        XCTAssertEqual(try tandem.encryptionStatus(), .on)
        XCTAssertEqual(try filesContaining(dir, value), [])  // the WAL too: no checkpoint yet
        XCTAssertEqual(try filesContaining(dir, field), [])
        tandem.shutdown()
        XCTAssertEqual(try filesContaining(dir, value), [])
        _ = try keyName(store)

        let plain = try openStore(dir, store, .off)  // decrypted on this open
        XCTAssertEqual(try plain.encryptionStatus(), .off)
        XCTAssertTrue(try XCTUnwrap(plain.get(collection: "plans", id: "p1")).document.contains(value))
        plain.shutdown()
        XCTAssertFalse(try filesContaining(dir, value).isEmpty)
        XCTAssertFalse(try filesContaining(dir, field).isEmpty)
        XCTAssertTrue(store.names().allSatisfy { !$0.contains("/db-key") })
    }

    func testMissingAndWrongKeysAreTypedAndTouchNothing() throws {
        let dir = try temporaryDirectory()
        let store = InMemorySecureStore()
        let tandem = try openStore(dir, store, .on)
        _ = try tandem.put(collection: "plans", id: "p1", document: document)
        tandem.shutdown()
        let database = dir.appendingPathComponent("data").appendingPathComponent("guest.db")
        let before = try Data(contentsOf: database)

        XCTAssertThrowsError(try openStore(dir, InMemorySecureStore(), .on)) { error in
            guard case let TandemError.Key(kind, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(kind, .missing)
        }
        let wrongStore = InMemorySecureStore()
        try wrongStore.set(key: try keyName(store), value: Data(repeating: 9, count: 32).base64EncodedString())
        XCTAssertThrowsError(try openStore(dir, wrongStore, .on)) { error in
            guard case let TandemError.Key(kind, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(kind, .wrong)
        }
        XCTAssertEqual(try Data(contentsOf: database), before, "the file is untouched")

        let reopened = try openStore(dir, store, .on)
        XCTAssertEqual(try reopened.pendingCount(), 1)
        reopened.shutdown()
    }

    func testRekeyRotatesTheKeyAndKeepsTheRecords() async throws {
        let dir = try temporaryDirectory()
        let store = InMemorySecureStore()
        let tandem = try openStore(dir, store, .on)
        _ = try tandem.put(collection: "plans", id: "p1", document: document)
        let old = try store.get(key: try keyName(store))
        try await tandem.rekey()
        XCTAssertNotEqual(try store.get(key: try keyName(store)), old)
        XCTAssertEqual(ids(try tandem.query(collection: "plans", query: Query())), ["p1"])
        tandem.shutdown()
        XCTAssertEqual(try filesContaining(dir, value), [])
    }

    func testABackupRestoredElsewhereIsSetAsideAndTheAppStartsAfresh() throws {
        let dir = try temporaryDirectory()
        let first = try openStore(dir, InMemorySecureStore(), .on)
        _ = try first.put(collection: "plans", id: "p1", document: document)
        first.shutdown()
        let database = dir.appendingPathComponent("data").appendingPathComponent("guest.db")
        let before = try Data(contentsOf: database)
        let restored = InMemorySecureStore()  // the files came back, the keys did not
        XCTAssertThrowsError(try openStore(dir, restored, .on))

        let moved = try setAsideUnreadableData(config: config(dir, restored, .on))
        XCTAssertEqual(moved.count, 1)
        XCTAssertTrue(moved[0].contains("guest.db.unreadable-"), moved[0])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: moved[0])), before)
        let fresh = try openStore(dir, restored, .on)
        XCTAssertEqual(try fresh.count(collection: "plans", query: Query()), 0)
        fresh.shutdown()
        XCTAssertEqual(try setAsideUnreadableData(config: config(dir, restored, .on)), [])
    }
}
