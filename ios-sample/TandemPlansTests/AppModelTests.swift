// The session model with a server configured but never reached: opening, the sync switch, and
// switching servers (which reopens the engine on the same data directory).

import Foundation
import Tandem
import XCTest
@testable import TandemPlans

@MainActor
final class AppModelTests: XCTestCase {
    private func makeModel(serverURL: String) throws -> (AppModel, UserDefaults) {
        let suite = "tandem-plans-tests-\(UUID().uuidString)"
        let defaults = try XCTUnwrap(UserDefaults(suiteName: suite))
        defaults.set(serverURL, forKey: "serverURL")
        let directory = try makeTemporaryDirectory()
        let model = AppModel(defaults: defaults, dataDirectory: { directory })
        addTeardownBlock {
            defaults.removePersistentDomain(forName: suite)
        }
        return (model, defaults)
    }

    func testOpeningWithoutASessionShowsSignIn() async throws {
        // Port 9 (discard) has no Tandem server: nothing here may need one.
        let (model, _) = try makeModel(serverURL: "http://127.0.0.1:9")
        model.start()
        defer { model.tandem?.shutdown() }
        XCTAssertEqual(model.session, .signedOut)
        XCTAssertNotNil(model.tandem)
        try await waitUntil("the first sync status") { model.syncIndicator.status != nil }
        XCTAssertEqual(model.syncIndicator.display, .signedOut)
        // The foreground and connectivity triggers are safe while signed out.
        model.appBecameActive()
        model.connectivityChanged(online: false)
        model.connectivityChanged(online: true)
        let synced = await model.backgroundSync(deadlineMs: 1_000)
        XCTAssertTrue(synced, "nothing to do while signed out")
    }

    func testTheSyncSwitchIsRemembered() throws {
        let (model, defaults) = try makeModel(serverURL: "http://127.0.0.1:9")
        model.start()
        defer { model.tandem?.shutdown() }
        model.setSyncEnabled(false)
        XCTAssertFalse(model.syncEnabled)
        XCTAssertEqual(model.syncIndicator.syncEnabled, false)
        XCTAssertEqual(defaults.object(forKey: "syncEnabled") as? Bool, false)
        model.setSyncEnabled(true)
        XCTAssertEqual(defaults.object(forKey: "syncEnabled") as? Bool, true)
    }

    func testSigningInElsewhereReopensTheEngineForThatServer() async throws {
        let (model, defaults) = try makeModel(serverURL: "http://127.0.0.1:9")
        model.start()
        defer { model.tandem?.shutdown() }
        let firstEngine = try XCTUnwrap(model.tandem)
        // Written while signed out: lives in the guest database, which stays across servers.
        _ = try firstEngine.put(collection: "plans", id: "p", json: #"{"name":"Legs"}"#)

        do {
            try await model.authenticate(
                email: "someone@example.com", password: "correct horse battery staple",
                serverURL: "http://127.0.0.1:7/", createAccount: false
            )
            XCTFail("signed in without a server")
        } catch let error as TandemError {
            guard case let .Auth(kind, _, _) = error else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(kind, .network)
        }
        XCTAssertEqual(model.serverURL, "http://127.0.0.1:7")
        XCTAssertEqual(defaults.string(forKey: "serverURL"), "http://127.0.0.1:7")
        let secondEngine = try XCTUnwrap(model.tandem)
        XCTAssertFalse(firstEngine === secondEngine)
        XCTAssertEqual(try secondEngine.get(collection: "plans", id: "p")?.id, "p")
        XCTAssertEqual(model.session, .signedOut)
    }

    func testABadServerAddressIsRefusedWithoutTouchingTheEngine() async throws {
        let (model, _) = try makeModel(serverURL: "http://127.0.0.1:9")
        model.start()
        defer { model.tandem?.shutdown() }
        let engine = model.tandem
        do {
            try await model.authenticate(email: "a@example.com", password: "pw", serverURL: "ftp://x", createAccount: true)
            XCTFail("accepted ftp://")
        } catch {
            XCTAssertEqual(error as? ServerAddress.Problem, .unsupportedScheme("ftp"))
        }
        XCTAssertTrue(model.tandem === engine)
        XCTAssertEqual(model.serverURL, "http://127.0.0.1:9")
    }
}
