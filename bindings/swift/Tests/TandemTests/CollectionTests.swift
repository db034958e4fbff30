// `tandem.collection(name:)` and `getMany`: the cheaper reads answer as `Tandem`'s do; mirrors
// bindings/kotlin/src/test/kotlin/dev/tandem/CollectionTest.kt.

import Foundation
import XCTest
@testable import Tandem

final class CollectionTests: XCTestCase {
    private var tandem: Tandem!
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try temporaryDirectory()
        tandem = try openTandem(directory)
        _ = try tandem.write(ops: (0..<5).map { WriteOp.put(collection: "plans", id: "p\($0)", json: #"{"name": "Plan \#($0)"}"#) })
    }

    override func tearDown() {
        tandem?.shutdown()
        tandem = nil
    }

    func testACollectionHandleReadsWhatTandemReads() throws {
        let plans = try tandem.collection(name: "plans")
        XCTAssertEqual(plans.name(), "plans")
        XCTAssertEqual(try plans.get(id: "p1"), try tandem.get(collection: "plans", id: "p1"))
        XCTAssertEqual(try plans.get(id: "p1")?.document, #"{"name":"Plan 1"}"#)
        XCTAssertNil(try plans.get(id: "missing"))
        let firstTwo = Query(orderBy: [OrderBy(field: "name", descending: true)], limit: 2)
        XCTAssertEqual(try plans.query(query: firstTwo).map(\.id), ["p4", "p3"])
        XCTAssertEqual(try plans.query(query: firstTwo), try tandem.query(collection: "plans", query: firstTwo))
        XCTAssertEqual(try plans.count(query: Query()), 5)
        struct Plan: Decodable, Equatable { let name: String }
        XCTAssertEqual(try plans.get(Plan.self, id: "p2"), Plan(name: "Plan 2"))
        XCTAssertEqual(try plans.query(Plan.self, query: firstTwo), [Plan(name: "Plan 4"), Plan(name: "Plan 3")])
        try tandem.delete(collection: "plans", id: "p1")
        XCTAssertNil(try plans.get(id: "p1"))
    }

    func testGetManyAnswersInTheOrderAsked() throws {
        let asked = ["p3", "missing", "p0", "p3"]
        let many = try tandem.getMany(collection: "plans", ids: asked)
        XCTAssertEqual(many.map { $0?.id }, ["p3", nil, "p0", "p3"])
        XCTAssertEqual(many, try asked.map { try tandem.get(collection: "plans", id: $0) })
        let plans = try tandem.collection(name: "plans")
        XCTAssertEqual(try plans.getMany(ids: asked), many)
        XCTAssertEqual(try plans.getMany(ids: []), [])
    }

    func testAnUnknownCollectionIsRefusedUpFront() throws {
        XCTAssertThrowsError(try tandem.collection(name: "nope")) { error in
            guard let error = error as? TandemError, case let .Validation(collection, _, reason, _, _) = error else {
                return XCTFail("expected Validation, got \(error)")
            }
            XCTAssertEqual(collection, "nope")
            XCTAssertEqual(reason, .unknownEntity)
        }
    }

    func testAHandleDoesNotKeepTheStoreOpen() throws {
        let plans = try tandem.collection(name: "plans")
        tandem.shutdown()
        XCTAssertThrowsError(try plans.get(id: "p0")) { error in
            XCTAssertEqual(error as? TandemError, .Closed)
        }
        tandem = nil
        XCTAssertThrowsError(try plans.getMany(ids: ["p0"])) { error in
            XCTAssertEqual(error as? TandemError, .Closed)
        }
        tandem = try openTandem(directory)
        XCTAssertEqual(try tandem.collection(name: "plans").get(id: "p0")?.id, "p0")
    }
}
