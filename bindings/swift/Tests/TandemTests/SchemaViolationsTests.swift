// A reference and a unique key added over stored data, reported by `schemaViolations()`; mirrors
// bindings/kotlin/src/test/kotlin/dev/tandem/SchemaViolationsTest.kt.

import Foundation
import XCTest
@testable import Tandem

final class SchemaViolationsTests: XCTestCase {
    private let before = #"""
        {"version": 1, "collections": {
          "projects": {"fields": {"name": {"type": "string"}}},
          "files": {"fields": {"projectId": {"type": "string"}, "path": {"type": "string"}}}}}
        """#

    private let after = #"""
        {"version": 2, "collections": {
          "projects": {"fields": {"name": {"type": "string"}}},
          "files": {"fields": {
              "projectId": {"type": "string", "ref": {"collection": "projects", "onDelete": "cascade"}},
              "path": {"type": "string"}},
            "unique": [["projectId", "path"]]}}}
        """#

    func testRulesAddedToStoredDataAreReportedUntilTheDataIsFixed() throws {
        let dir = try temporaryDirectory()
        let old = try openTandem(dir, schema: before)
        _ = try old.put(collection: "projects", id: "p", json: #"{"name": "P"}"#)
        _ = try old.put(collection: "files", id: "a", json: #"{"projectId": "p", "path": "/a"}"#)
        _ = try old.put(collection: "files", id: "b", json: #"{"projectId": "p", "path": "/a"}"#)
        _ = try old.put(collection: "files", id: "c", json: #"{"projectId": "gone", "path": "/c"}"#)
        XCTAssertEqual(try old.schemaViolations(), [])
        old.shutdown()

        let tandem = try openTandem(dir, schema: after)
        defer { tandem.shutdown() }
        let found = try tandem.schemaViolations()
        XCTAssertEqual(found.map(\.collection), ["files", "files"])
        XCTAssertEqual(found.map(\.id), ["c", "b"])
        XCTAssertEqual(found.first?.kind, .danglingReference(field: "projectId", targetCollection: "projects", targetId: "gone"))
        XCTAssertEqual(found.last?.kind, .duplicateKey(fields: ["projectId", "path"], otherId: "a"))

        _ = try tandem.patch(collection: "files", id: "b", patchJson: #"{"path": "/b"}"#)
        try tandem.delete(collection: "files", id: "c")
        XCTAssertEqual(try tandem.schemaViolations(), [])
    }
}
