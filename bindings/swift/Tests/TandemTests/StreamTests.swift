// The AsyncStream adapters (Sources/Tandem/Streams.swift); mirrors FlowTest.kt.

import Foundation
import XCTest
@testable import Tandem

final class StreamTests: XCTestCase {
    private var tandem: Tandem!

    override func setUpWithError() throws {
        tandem = try openTandem(temporaryDirectory())
    }

    override func tearDown() {
        tandem?.shutdown()
        tandem = nil
    }

    func testObserveAsStreamEmitsTheCurrentResultsThenEachChange() async throws {
        let before = StreamObservers.live
        let tandem = self.tandem!
        // Each element triggers the next write, so no result set can be skipped by the buffer.
        let seen = try await withTimeout(10) {
            var seen: [[String]] = []
            for await records in try tandem.observeAsStream(collection: "plans") {
                let current = ids(records)
                seen.append(current)
                switch current {
                case []: _ = try tandem.put(collection: "plans", id: "a", json: #"{"name": "A"}"#)
                case ["a"]: _ = try tandem.put(collection: "plans", id: "b", json: #"{"name": "B"}"#)
                default: break
                }
                if current == ["a", "b"] { break }
            }
            return seen
        }
        XCTAssertEqual(seen, [[], ["a"], ["a", "b"]])
        // Leaving the loop ended the stream: the subscription is cancelled and the observer freed.
        eventually("the stream's observer to be released") { StreamObservers.live == before }
    }

    func testObserveRecordAsStreamFollowsOneRecord() async throws {
        let tandem = self.tandem!
        // Each element triggers the next write, so nothing can be skipped by the buffer.
        let seen = try await withTimeout(10) {
            var seen: [String?] = []
            for await record in try tandem.observeRecordAsStream(collection: "plans", id: "p") {
                seen.append(record?.document)
                switch seen.count {
                case 1: _ = try tandem.put(collection: "plans", id: "p", json: #"{"name": "P"}"#)
                case 2:
                    _ = try tandem.put(collection: "plans", id: "other", json: #"{"name": "O"}"#)
                    _ = try tandem.patch(collection: "plans", id: "p", patchJson: #"{"notes": "n"}"#)
                case 3: try tandem.delete(collection: "plans", id: "p")
                default: break
                }
                if seen.count == 4 { break }
            }
            return seen
        }
        XCTAssertEqual(seen, [nil, #"{"name":"P"}"#, #"{"name":"P","notes":"n"}"#, nil])
    }

    func testObserveAsStreamAppliesTheQuery() async throws {
        let tandem = self.tandem!
        _ = try tandem.put(collection: "plans", id: "p", json: #"{"name": "P"}"#)
        let dayTwo = Query(filters: [Filter(field: "dayIndex", op: .ge, valueJson: "2")])
        let stream = try tandem.observeAsStream(collection: "plan_days", query: dayTwo)
        _ = try tandem.write(ops: (0..<4).map {
            .put(collection: "plan_days", id: "d\($0)", json: #"{"planId": "p", "dayIndex": \#($0)}"#)
        })
        let days = try await withTimeout(10) { () -> [String] in
            for await records in stream where !records.isEmpty {
                return ids(records)
            }
            return []
        }
        XCTAssertEqual(days, ["d2", "d3"])
    }

    func testCancellingTheConsumingTaskCancelsTheSubscription() throws {
        let before = StreamObservers.live
        let stream = try tandem.observeAsStream(collection: "plans")
        let inbox = Inbox<[String]>()
        let consumer = Task {
            for await records in stream {
                inbox.put(ids(records))
            }
        }
        XCTAssertEqual(inbox.take(), [])
        XCTAssertEqual(StreamObservers.live, before + 1, "one observer registered by the stream")
        _ = try tandem.put(collection: "plans", id: "a", json: #"{"name": "A"}"#)
        XCTAssertEqual(inbox.take(), ["a"])

        consumer.cancel()
        eventually("the subscription to be cancelled") { StreamObservers.live == before }
        _ = try tandem.put(collection: "plans", id: "b", json: #"{"name": "B"}"#)
        XCTAssertNil(inbox.take(timeout: 0.3), "no results after the consumer was cancelled")
    }

    func testARegistrationErrorIsThrownAtOnce() throws {
        let before = StreamObservers.live
        let badFilter = Query(filters: [Filter(field: "dayIndex", op: .eq, valueJson: #""not a number""#)])
        XCTAssertThrowsError(try tandem.observeAsStream(collection: "plan_days", query: badFilter)) { error in
            guard case .InvalidArgument? = error as? TandemError else { return XCTFail("got \(error)") }
        }
        eventually("the refused observer to be released") { StreamObservers.live == before }
    }

    func testChangesAsStreamEmitsOncePerCommitWithoutDroppingAny() async throws {
        let before = StreamObservers.live
        let tandem = self.tandem!
        let changes = try tandem.changesAsStream()
        _ = try tandem.put(collection: "plans", id: "p", json: #"{"name": "P"}"#)
        _ = try tandem.put(collection: "plan_days", id: "d", json: #"{"planId": "p", "dayIndex": 0}"#)
        try tandem.delete(collection: "plans", id: "p")
        let received = try await withTimeout(10) { () -> [[String]] in
            var received: [[String]] = []
            for await collections in changes {
                received.append(collections)
                if received.count == 3 { break }
            }
            return received
        }
        XCTAssertEqual(received, [["plans"], ["plan_days"], ["plan_days", "plans"]])
        eventually("the change listener to be released") { StreamObservers.live == before }
    }
}
