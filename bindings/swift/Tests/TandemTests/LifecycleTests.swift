// Many engines opened and closed leave no threads or observers behind; mirrors LifecycleTest.kt.

import Foundation
import XCTest
@testable import Tandem

final class LifecycleTests: XCTestCase {
    func testManyEnginesOpenedAndClosedLeakNoThreads() throws {
        let root = try temporaryDirectory()
        let threadsBefore = tandemThreads()
        let streamsBefore = StreamObservers.live
        var released: [() -> Bool] = []

        for i in 0..<40 {
            // Half in fresh directories, half reopening one directory: its claim must be released.
            let dir = root.appendingPathComponent(i % 2 == 0 ? "engine-\(i)" : "shared")
            do {
                let tandem = try openTandem(dir)
                // A new thread names itself once it runs, so wait for that before counting.
                eventually("the engine's threads to start") { tandemThreads() > threadsBefore }
                _ = try tandem.put(collection: "plans", id: "p\(i)", json: #"{"name": "P"}"#)
                let collector = Collector()
                weak var weakCollector = collector
                released.append { weakCollector == nil }
                // The subscriptions and the stream are left open on purpose: ending the engine
                // must end them.
                let subscription = try tandem.observe(collection: "plans", query: Query(), observer: collector)
                XCTAssertNotNil(collector.inbox.take())
                let stream = try tandem.changesAsStream()
                withExtendedLifetime((subscription, stream)) {
                    tandem.shutdown()
                }
            }
        }
        XCTAssertEqual(try openTandem(root.appendingPathComponent("shared")).count(collection: "plans", query: Query()), 20)

        eventually("Tandem's threads to stop") { tandemThreads() == threadsBefore }
        eventually("every query observer to be released") { released.allSatisfy { $0() } }
        eventually("every stream observer to be released") { StreamObservers.live == streamsBefore }
    }

    func testReleasingTheLastReferenceClosesTheEngine() throws {
        let dir = try temporaryDirectory()
        let threadsBefore = tandemThreads()
        do {
            let tandem = try openTandem(dir)
            eventually("the engine's threads to start") { tandemThreads() > threadsBefore }
            _ = try tandem.put(collection: "plans", id: "p", json: #"{"name": "P"}"#)
        }
        // No shutdown(): freeing the Swift object frees the engine, its threads and its claim.
        eventually("threads to stop after the last reference went") { tandemThreads() == threadsBefore }
        XCTAssertEqual(try openTandem(dir).count(collection: "plans", query: Query()), 1)
    }
}
