// Shared helpers of the Swift tests, which mirror the Kotlin JVM tests (bindings/kotlin/src/test).

import Darwin
import Foundation
import XCTest
@testable import Tandem

/// `schemas/test.json` at the repository's root, found from this file's path
/// (`bindings/swift/Tests/TandemTests/Fixtures.swift`).
let schemaURL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // TandemTests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()  // swift
    .deletingLastPathComponent()  // bindings
    .appendingPathComponent("schemas")
    .appendingPathComponent("test.json")

/// The one test schema (the Rust, Kotlin and Python tests load it too): plans and their days, a
/// cascade.
let schema: String = {
    do {
        return try String(contentsOf: schemaURL, encoding: .utf8)
    } catch {
        fatalError("cannot read the test schema at \(schemaURL.path): \(error)")
    }
}()

extension XCTestCase {
    /// A fresh directory, removed when the test ends.
    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}

func openTandem(_ dir: URL, schema: String = schema) throws -> Tandem {
    try Tandem.open(config: TandemConfig(dataDir: dir.path, schemaJson: schema))
}

func ids(_ records: [Record]) -> [String] {
    records.map(\.id).sorted()
}

/// Polls `condition` for up to `timeout` seconds of real time; the engine delivers on its own thread.
func eventually(
    timeout: TimeInterval = 5, _ what: String, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () -> Bool
) {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline {
            XCTFail("timed out after \(timeout) s waiting for: \(what)", file: file, line: line)
            return
        }
        Thread.sleep(forTimeInterval: 0.01)
    }
}

/// `eventually` for async tests: polls with `Task.sleep` instead of blocking a thread of the
/// cooperative pool.
func eventuallyAsync(
    timeout: TimeInterval = 5, _ what: String, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () -> Bool
) async {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline {
            XCTFail("timed out after \(timeout) s waiting for: \(what)", file: file, line: line)
            return
        }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
}

/// A thread-safe queue that callbacks fill and tests drain with a timeout.
final class Inbox<Element>: @unchecked Sendable {
    // @unchecked: every access to `items` holds `condition`.
    private let condition = NSCondition()
    private var items: [Element] = []

    func put(_ item: Element) {
        condition.lock()
        items.append(item)
        condition.signal()
        condition.unlock()
    }

    /// The oldest item, waiting up to `timeout` seconds; nil if none came.
    func take(timeout: TimeInterval = 5) -> Element? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty {
            if !condition.wait(until: deadline) { break }
        }
        return items.isEmpty ? nil : items.removeFirst()
    }

    /// The next item matching `predicate` (earlier ones are dropped), waiting up to `timeout`
    /// seconds; nil if none came. For async tests: it polls with `Task.sleep` instead of blocking
    /// a thread of the cooperative pool, which the consumer tasks filling the inbox need.
    func next(timeout: TimeInterval = 10, where predicate: (Element) -> Bool = { _ in true }) async -> Element? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let item = take(timeout: 0) {
                if predicate(item) {
                    return item
                }
                continue
            }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return nil
    }
}

/// Records what a query observer or change listener receives.
final class Collector: QueryObserver, ChangeListener {
    let inbox = Inbox<[String]>()

    func onResults(records: [Record]) {
        inbox.put(ids(records))
    }

    func onChange(collections: [String]) {
        inbox.put(collections)
    }
}

/// Runs `body`, failing with `TimedOut` if it takes longer than `seconds`; cancelling it then
/// ends any stream it is iterating.
struct TimedOut: Error {}

func withTimeout<T: Sendable>(
    _ seconds: Double, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            throw TimedOut()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw TimedOut() }
        return first
    }
}

/// The threads of this process that engines started (`tandem-notify`, `tandem-checkpoint`),
/// found by name through Mach, since Rust threads are invisible to Foundation's Thread API.
///
/// `tandem-rt` is left out: that is the process-wide tokio runtime, started by the first sync or
/// auth call and alive until the process ends by design. Its blocking-pool threads carry the same
/// name and come and go on tokio's own keep-alive timer, so counting them would measure timing,
/// not leaks.
func tandemThreads() -> Int {
    var threads: thread_act_array_t?
    var count: mach_msg_type_number_t = 0
    guard task_threads(mach_task_self_, &threads, &count) == KERN_SUCCESS, let threads else {
        XCTFail("task_threads failed")
        return -1
    }
    defer {
        for i in 0..<Int(count) {
            mach_port_deallocate(mach_task_self_, threads[i])
        }
        vm_deallocate(
            mach_task_self_, vm_address_t(UInt(bitPattern: threads)),
            vm_size_t(Int(count) * MemoryLayout<thread_act_t>.stride))
    }
    var named = 0
    for i in 0..<Int(count) {
        guard let pthread = pthread_from_mach_thread_np(threads[i]) else { continue }
        var name = [CChar](repeating: 0, count: 64)
        guard pthread_getname_np(pthread, &name, name.count) == 0 else { continue }
        let threadName = String(cString: name)
        if threadName.hasPrefix("tandem-") && threadName != "tandem-rt" {
            named += 1
        }
    }
    return named
}
