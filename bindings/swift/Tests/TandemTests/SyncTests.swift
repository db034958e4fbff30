// Auth and sync through the generated async functions, against a real tandem-server started for
// this class; mirrors bindings/kotlin/src/test/kotlin/dev/tandem/SyncTest.kt.

import Foundation
import XCTest
@testable import Tandem

final class SyncTests: XCTestCase {
    private static let password = "correct horse battery staple"
    // One server for the whole class, started by the first test: each test signs up its own
    // account, so tests do not see each other's data.
    private static var server: TandemServer?
    private var dir: URL!
    private var devices: [Tandem] = []

    override func setUpWithError() throws {
        if SyncTests.server == nil {
            SyncTests.server = try TandemServer()
        }
        dir = try temporaryDirectory()
    }

    override func tearDown() {
        for device in devices {
            device.shutdown()
        }
        devices = []
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    private func device(_ name: String) throws -> Tandem {
        let server = try XCTUnwrap(SyncTests.server)
        let device = try server.device(dir.appendingPathComponent(name))
        devices.append(device)
        return device
    }

    private func newEmail() -> String {
        "swift-\(UUID().uuidString.lowercased())@example.com"
    }

    func testTwoDevicesConvergeThroughTheServerAndAConflictIsResolved() async throws {
        let email = newEmail()
        let a = try device("a")
        let b = try device("b")
        let user = try await a.signUp(email: email, password: SyncTests.password)
        XCTAssertEqual(user.email, email)
        let same = try await b.signIn(email: email, password: SyncTests.password)
        XCTAssertEqual(same.id, user.id)

        _ = try a.put(collection: "plans", id: "p", json: #"{"name": "Plan"}"#)
        let report = try await a.syncNow()
        XCTAssertEqual(report.pushed, 1)
        XCTAssertEqual(report.applied, 1)

        // B's stream sees the pulled record; it starts with the current results, so it does not
        // matter whether the sync ends before the loop starts.
        let plans = try b.observeAsStream(collection: "plans")
        _ = try await b.syncNow()
        let seen = try await withTimeout(10) { () -> [Record] in
            for await records in plans where records.contains(where: { $0.id == "p" }) {
                return records
            }
            return []
        }
        XCTAssertEqual(seen.count, 1)
        let plan = try XCTUnwrap(seen.first)
        XCTAssertEqual(plan.document, #"{"name":"Plan"}"#)
        XCTAssertEqual(plan.state, .synced)
        XCTAssertGreaterThan(plan.version, 0)

        // The same field edited on both devices: A's edit reaches the server first.
        _ = try a.patch(collection: "plans", id: "p", patchJson: #"{"name": "A"}"#)
        _ = try b.patch(collection: "plans", id: "p", patchJson: #"{"name": "B"}"#)
        _ = try await a.syncNow()
        let bReport = try await b.syncNow()
        XCTAssertEqual(bReport.conflicts, 1)
        let conflicts = try b.conflicts()
        XCTAssertEqual(conflicts.count, 1)
        let conflict = try XCTUnwrap(conflicts.first)
        XCTAssertEqual(conflict.collection, "plans")
        XCTAssertEqual(conflict.id, "p")
        XCTAssertEqual(conflict.reason, .bothChanged)
        XCTAssertEqual(conflict.fields, ["name"])
        XCTAssertEqual(conflict.localDocument, #"{"name":"B"}"#)
        XCTAssertEqual(conflict.serverDocument, #"{"name":"A"}"#)
        XCTAssertEqual(conflict.baseDocument, #"{"name":"Plan"}"#)

        let resolved = try b.resolve(collection: "plans", id: "p", resolution: .keepMine)
        XCTAssertEqual(resolved?.document, #"{"name":"B"}"#)
        _ = try await b.syncNow()
        _ = try await a.syncNow()
        XCTAssertEqual(try a.get(collection: "plans", id: "p")?.document, #"{"name":"B"}"#)
        XCTAssertEqual(try b.conflicts(), [])
        XCTAssertEqual(try a.pendingCount(), 0)
        XCTAssertEqual(try b.pendingCount(), 0)
    }

    func testSignOutIsThisDeviceOnlyAndSignOutEverywhereEveryDevice() async throws {
        let email = newEmail()
        let phone = try device("phone")
        let tablet = try device("tablet")
        let laptop = try device("laptop")
        _ = try await phone.signUp(email: email, password: SyncTests.password)
        _ = try await tablet.signIn(email: email, password: SyncTests.password)
        _ = try await laptop.signIn(email: email, password: SyncTests.password)
        // The tablet signs out (scope=local): the others go on syncing.
        try await tablet.signOut(wipeLocalData: false)
        _ = try phone.put(collection: "plans", id: "p", json: #"{"name": "after the tablet left"}"#)
        _ = try await phone.syncNow()
        _ = try await laptop.syncNow()
        XCTAssertEqual(try laptop.get(collection: "plans", id: "p")?.document, #"{"name":"after the tablet left"}"#)
        // The laptop signs out everywhere (scope=global): the phone's session ends.
        try await laptop.signOutEverywhere(wipeLocalData: false)
        XCTAssertNil(try laptop.currentUser())
        _ = try phone.put(collection: "plans", id: "q", json: #"{"name": "pending"}"#)
        do {
            _ = try await phone.syncNow()
            XCTFail("the phone's session outlived sign-out everywhere")
        } catch {
            guard case let .Sync(kind, _, _)? = error as? TandemError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(kind, .sessionExpired)
        }
        XCTAssertEqual(try phone.pendingCount(), 1)
    }

    func testAuthAndSyncFailuresAreTypedErrorsWithTheirKind() async throws {
        let d = try device("d")
        do {
            _ = try await d.syncNow()
            XCTFail("syncNow succeeded while signed out")
        } catch {
            guard case let .Sync(kind, _, retryAfterSecs)? = error as? TandemError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(kind, .notSignedIn)
            XCTAssertNil(retryAfterSecs)
        }

        do {
            _ = try await d.signIn(email: "nobody-\(UUID().uuidString)@example.com", password: SyncTests.password)
            XCTFail("signed in to an account that does not exist")
        } catch {
            guard case let .Auth(kind, detail, _)? = error as? TandemError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(kind, .invalidCredentials)
            XCTAssertFalse(detail.contains(SyncTests.password), "messages never carry the password")
        }

        let email = newEmail()
        _ = try await d.signUp(email: email, password: SyncTests.password)
        try await d.signOut(wipeLocalData: true)
        do {
            _ = try await d.signUp(email: email, password: SyncTests.password)
            XCTFail("signed up twice with one email")
        } catch {
            guard case let .Auth(kind, _, _)? = error as? TandemError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(kind, .userExists)
        }
    }

    func testSyncStatusStreamStartsWithTheCurrentStatusAndSeesPendingGoToZero() async throws {
        let a = try device("a")
        _ = try await a.signUp(email: newEmail(), password: SyncTests.password)
        let statuses = Inbox<SyncStatus>()
        let stream = try a.syncStatusStream()
        let consumer = Task {
            for await status in stream {
                statuses.put(status)
            }
        }
        defer { consumer.cancel() }

        let first = await statuses.next()
        XCTAssertEqual(first?.phase, .idle)
        XCTAssertEqual(first?.pending, 0)

        _ = try a.write(ops: [
            .put(collection: "plans", id: "p1", json: #"{"name": "1"}"#),
            .put(collection: "plans", id: "p2", json: #"{"name": "2"}"#),
        ])
        let pending = await statuses.next { $0.pending == 2 }
        XCTAssertNotNil(pending, "2 pending changes")
        let report = try await a.syncNow()
        XCTAssertEqual(report.pushed, 2)
        let synced = await statuses.next { $0.pending == 0 && $0.lastSyncedAt != nil }
        XCTAssertNotNil(synced, "nothing pending after the sync")
        XCTAssertEqual(synced?.phase, .idle)
        XCTAssertNil(synced?.lastError)
    }

    func testAuthStateStreamSeesSignedOutSignedInThenSignedOut() async throws {
        let a = try device("a")
        let states = Inbox<AuthState>()
        let stream = try a.authStateStream()
        let consumer = Task {
            for await state in stream {
                states.put(state)
            }
        }
        defer { consumer.cancel() }

        let current = await states.next()
        XCTAssertEqual(current, .signedOut)
        let user = try await a.signUp(email: newEmail(), password: SyncTests.password)
        let signedIn = await states.next()
        XCTAssertEqual(signedIn, .signedIn(user: user))
        try await a.signOut(wipeLocalData: true)
        let signedOut = await states.next()
        XCTAssertEqual(signedOut, .signedOut)
    }

    func testCancellingTheConsumingTasksCancelsTheStatusAndAuthSubscriptions() async throws {
        let a = try device("a")
        _ = try await a.signUp(email: newEmail(), password: SyncTests.password)
        let before = StreamObservers.live
        let statuses = Inbox<SyncStatus>()
        let states = Inbox<AuthState>()
        let statusStream = try a.syncStatusStream()
        let stateStream = try a.authStateStream()
        let statusConsumer = Task {
            for await status in statusStream {
                statuses.put(status)
            }
        }
        let stateConsumer = Task {
            for await state in stateStream {
                states.put(state)
            }
        }
        let firstStatus = await statuses.next()
        let firstState = await states.next()
        XCTAssertNotNil(firstStatus)
        XCTAssertNotNil(firstState)
        XCTAssertEqual(StreamObservers.live, before + 2, "one listener registered per stream")

        statusConsumer.cancel()
        stateConsumer.cancel()
        // Cancelling ends each stream, which cancels its subscription and frees the Rust object,
        // which drops Rust's reference to the listener.
        await eventuallyAsync("both listeners to be released") { StreamObservers.live == before }

        // Changes of both kinds now reach nobody. (What arrived before the cancellation, such as
        // the count refresh that follows a sign-up, is drained first.)
        while statuses.take(timeout: 0) != nil {}
        while states.take(timeout: 0) != nil {}
        _ = try a.put(collection: "plans", id: "p", json: #"{"name": "P"}"#)
        try await a.signOut(wipeLocalData: false)
        let lateStatus = await statuses.next(timeout: 0.3)
        let lateState = await states.next(timeout: 0.3)
        XCTAssertNil(lateStatus, "no status after cancellation")
        XCTAssertNil(lateState, "no auth state after cancellation")
    }

    func testWithoutAServerTheStreamsThrowInvalidArgument() throws {
        let before = StreamObservers.live
        let local = try openTandem(dir.appendingPathComponent("local"))
        defer { local.shutdown() }
        XCTAssertThrowsError(try local.syncStatusStream()) { error in
            guard case .InvalidArgument? = error as? TandemError else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try local.authStateStream()) { error in
            guard case .InvalidArgument? = error as? TandemError else { return XCTFail("got \(error)") }
        }
        eventually("the refused listeners to be released") { StreamObservers.live == before }
    }
}
