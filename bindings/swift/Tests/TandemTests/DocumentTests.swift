// The Codable helpers (Sources/Tandem/Documents.swift).

import Foundation
import XCTest
@testable import Tandem

private struct Plan: Codable, Equatable {
    var name: String
    var notes: String?
    var archived: Bool?
}

private struct PlanDay: Codable, Equatable {
    var planId: String
    var dayIndex: Int
}

private struct NotesPatch: Encodable {
    var notes: String
}

final class DocumentTests: XCTestCase {
    private var tandem: Tandem!

    override func setUpWithError() throws {
        tandem = try openTandem(temporaryDirectory())
    }

    override func tearDown() {
        tandem?.shutdown()
        tandem = nil
    }

    func testCodableDocumentsRoundTrip() throws {
        let record = try tandem.put(collection: "plans", document: Plan(name: "Legs"))
        XCTAssertEqual(try record.decode(Plan.self), Plan(name: "Legs"))
        try tandem.patch(collection: "plans", id: record.id, patch: NotesPatch(notes: "slow"))
        XCTAssertEqual(try tandem.get(Plan.self, collection: "plans", id: record.id), Plan(name: "Legs", notes: "slow"))
        XCTAssertNil(try tandem.get(Plan.self, collection: "plans", id: "missing"))
    }

    func testTypedBatchQueryAndFilters() throws {
        var ops = [try WriteOp.put(collection: "plans", id: "p", document: Plan(name: "P"))]
        for day in 0..<3 {
            ops.append(try .put(collection: "plan_days", id: "d\(day)", document: PlanDay(planId: "p", dayIndex: day)))
        }
        XCTAssertEqual(try tandem.write(ops: ops).count, 4)
        let query = Query(
            filters: [try Filter(field: "planId", op: .eq, value: "p"), try Filter(field: "dayIndex", op: .in, value: [0, 2])],
            orderBy: [OrderBy(field: "dayIndex")])
        XCTAssertEqual(
            try tandem.query(PlanDay.self, collection: "plan_days", query: query),
            [PlanDay(planId: "p", dayIndex: 0), PlanDay(planId: "p", dayIndex: 2)])
    }

    func testADocumentOfAnotherShapeFailsToDecode() throws {
        let record = try tandem.put(collection: "plans", document: Plan(name: "P"))
        XCTAssertThrowsError(try record.decode(PlanDay.self)) { error in
            XCTAssertTrue(error is DecodingError, "got \(error)")
        }
    }

    func testAnInvalidDocumentIsRefusedByTheSchema() throws {
        XCTAssertThrowsError(try tandem.put(collection: "plan_days", document: PlanDay(planId: "nope", dayIndex: 1))) { error in
            guard let error = error as? TandemError, case let .Validation(_, field, reason, _, _) = error else {
                return XCTFail("expected Validation, got \(error)")
            }
            XCTAssertEqual(field, "planId")
            XCTAssertEqual(reason, .invalidParent)
        }
    }
}
