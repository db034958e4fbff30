// The engine driven through the generated Swift, as an iOS app would drive it; mirrors
// bindings/kotlin/src/test/kotlin/dev/tandem/TandemTest.kt.

import Foundation
import XCTest
@testable import Tandem

final class TandemTests: XCTestCase {
    private var tandem: Tandem!

    override func setUpWithError() throws {
        tandem = try openTandem(temporaryDirectory())
    }

    override func tearDown() {
        tandem?.shutdown()
        tandem = nil
    }

    func testWriteReadPatchAndOutbox() throws {
        let plan = try tandem.put(collection: "plans", id: nil, json: #"{"name": "Push day"}"#)
        XCTAssertEqual(plan.state, .pending)
        XCTAssertEqual(plan.version, 0)
        XCTAssertEqual(plan.id.count, 36)
        XCTAssertEqual(try tandem.get(collection: "plans", id: plan.id)?.document, #"{"name":"Push day"}"#)
        _ = try tandem.patch(collection: "plans", id: plan.id, patchJson: #"{"notes": "heavy"}"#)
        XCTAssertEqual(
            try tandem.get(collection: "plans", id: plan.id)?.document, #"{"name":"Push day","notes":"heavy"}"#)
        XCTAssertNil(try tandem.get(collection: "plans", id: "missing"))
        XCTAssertEqual(try tandem.pendingCount(), 1)
        let entries = try tandem.outbox()
        XCTAssertEqual(entries.map(\.collection), ["plans"])
        XCTAssertEqual(entries.map(\.id), [plan.id])
        XCTAssertEqual(entries.map(\.kind), [.upsert])
        XCTAssertLessThanOrEqual(plan.createdAt, plan.updatedAt)
        // When the user edited it (the edit time), beside the store's own times.
        let edited = try XCTUnwrap(plan.editedAt)
        XCTAssertLessThan(abs(edited.timeIntervalSince(plan.createdAt)), 60)
    }

    func testBatchWriteQueryAndCount() throws {
        var ops: [WriteOp] = [.put(collection: "plans", id: "p", json: #"{"name": "P"}"#)]
        for day in 0..<5 {
            ops.append(.put(collection: "plan_days", id: "d\(day)", json: #"{"planId": "p", "dayIndex": \#(day)}"#))
        }
        XCTAssertEqual(try tandem.write(ops: ops).count, 6)
        // A batch is one atomic group on the wire, bounded in size.
        XCTAssertEqual(maxWriteBatch(), 500)

        let byPlan = Query(
            filters: [Filter(field: "planId", op: .eq, valueJson: #""p""#)],
            orderBy: [OrderBy(field: "dayIndex", descending: true)],
            limit: 2)
        XCTAssertEqual(try tandem.query(collection: "plan_days", query: byPlan).map(\.id), ["d4", "d3"])
        XCTAssertEqual(try tandem.count(collection: "plan_days", query: Query()), 5)
        let late = Query(filters: [Filter(field: "dayIndex", op: .in, valueJson: "[0, 3]")])
        XCTAssertEqual(try tandem.query(collection: "plan_days", query: late).map(\.id), ["d0", "d3"])

        try tandem.delete(collection: "plans", id: "p")
        XCTAssertEqual(try tandem.count(collection: "plan_days", query: Query()), 0, "delete cascades to the plan's days")
    }

    func testTheGeneratedSyncConfigDefaultsAreTheEngines() {
        XCTAssertEqual(SyncConfig(), defaultSyncConfig())
    }

    func testErrorsAreTypedWithTheirFields() throws {
        XCTAssertThrowsError(try tandem.put(collection: "plans", id: nil, json: #"{"notes": "no name"}"#)) { error in
            guard let error = error as? TandemError, case let .Validation(collection, field, reason, reasonCode, detail) = error else {
                return XCTFail("expected Validation, got \(error)")
            }
            XCTAssertEqual(collection, "plans")
            XCTAssertEqual(field, "name")
            XCTAssertEqual(reason, .invalidPayload)
            XCTAssertEqual(reasonCode, "invalid_payload")
            XCTAssertEqual(detail, "plans.name: required")
        }
        XCTAssertThrowsError(try tandem.put(collection: "plan_days", id: nil, json: #"{"planId": "123", "dayIndex": 0}"#)) { error in
            guard let error = error as? TandemError, case let .Validation(_, _, reason, _, detail) = error else {
                return XCTFail("expected Validation, got \(error)")
            }
            XCTAssertEqual(reason, .invalidParent)
            XCTAssertEqual(detail, "plan_days.planId: parent plans/123 does not exist")
        }
        XCTAssertThrowsError(try tandem.delete(collection: "plans", id: "nope")) { error in
            XCTAssertEqual(error as? TandemError, .NotFound(collection: "plans", id: "nope"))
        }
        XCTAssertThrowsError(try tandem.put(collection: "plans", id: nil, json: "{not json")) { error in
            guard case .InvalidArgument? = error as? TandemError else { return XCTFail("got \(error)") }
        }
        let badFilter = Query(filters: [Filter(field: "dayIndex", op: .eq, valueJson: #""3""#)])
        XCTAssertThrowsError(try tandem.query(collection: "plan_days", query: badFilter)) { error in
            guard case .InvalidArgument? = error as? TandemError else { return XCTFail("got \(error)") }
        }
        XCTAssertEqual(try tandem.pendingCount(), 0)
    }

    func testBadSchemaDoubleOpenAndUseAfterShutdown() throws {
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try openTandem(dir, schema: #"{"version": 1, "collections": {"X": {"fields": {}}}}"#)) { error in
            guard let error = error as? TandemError, case let .Schema(detail) = error else {
                return XCTFail("expected Schema, got \(error)")
            }
            XCTAssertTrue(detail.contains("collections.X"), detail)
        }
        let first = try openTandem(dir)
        XCTAssertThrowsError(try openTandem(dir)) { error in
            guard case .AlreadyOpen? = error as? TandemError else { return XCTFail("got \(error)") }
        }
        first.shutdown()
        XCTAssertThrowsError(try first.get(collection: "plans", id: "x")) { error in
            XCTAssertEqual(error as? TandemError, .Closed)
        }
        XCTAssertEqual(try openTandem(dir).pendingCount(), 0)
    }

    func testObserveWithASwiftObserverThenCancel() throws {
        var collector: Collector? = Collector()
        weak var released = collector
        let inbox = collector!.inbox
        let subscription = try tandem.observe(collection: "plans", query: Query(), observer: collector!)
        collector = nil // from here on only Rust holds the observer
        XCTAssertEqual(inbox.take(), [])
        _ = try tandem.put(collection: "plans", id: "a", json: #"{"name": "A"}"#)
        XCTAssertEqual(inbox.take(), ["a"])
        XCTAssertNotNil(released)

        subscription.cancel()
        _ = try tandem.put(collection: "plans", id: "c", json: #"{"name": "C"}"#)
        XCTAssertNil(inbox.take(timeout: 0.3), "no delivery after cancel()")
        // Cancelling drops Rust's reference to the observer, so Swift frees it.
        eventually("the observer to be released") { released == nil }
    }

    func testObserversAndWritesFromManyThreads() throws {
        let listener = Collector()
        let subscription = try tandem.addChangeListener(listener: listener)
        let tandem = self.tandem!
        DispatchQueue.concurrentPerform(iterations: 4) { writer in
            for i in 0..<10 {
                XCTAssertNoThrow(try tandem.put(collection: "plans", id: "t\(writer)-\(i)", json: #"{"name": "N"}"#))
            }
        }
        for _ in 0..<40 {
            XCTAssertEqual(listener.inbox.take(), ["plans"])
        }
        XCTAssertEqual(try tandem.count(collection: "plans", query: Query()), 40)
        subscription.cancel()
    }
}
