import Foundation
import Tandem
import XCTest
@testable import TandemPlans

/// The sync indicator's last run (kept by the engine across launches) and Keep Both in the
/// conflict center, as pure presentation logic.
final class LastRunAndKeepBothTests: XCTestCase {
    private func status(_ phase: SyncPhase, failure: SyncFailure?, lastError: String? = nil) -> SyncStatus {
        SyncStatus(
            phase: phase, pending: 1, conflicts: 0, rejected: 0, lastSyncedAt: nil,
            lastError: lastError, pulled: 0, remaining: 0, realtime: false,
            lastRunAt: Date(timeIntervalSince1970: 1_800_000_000), lastFailure: failure
        )
    }

    @MainActor
    func testTheLastRunsFailureIsShownTypedWithItsTime() {
        typealias Model = SyncIndicatorModel
        XCTAssertNil(Model.lastFailureText(for: nil))
        XCTAssertNil(Model.lastFailureText(for: status(.idle, failure: nil)))
        XCTAssertEqual(Model.lastFailureText(for: status(.offline, failure: .offline)), "The server could not be reached.")
        XCTAssertEqual(
            Model.lastFailureText(for: status(.error, failure: .server, lastError: "sync: server error 500")),
            "The server failed (sync: server error 500)."
        )
        // The error display says it typed, not the engine's raw text.
        XCTAssertEqual(
            Model.display(for: status(.error, failure: .server, lastError: "boom"), syncEnabled: true, sessionExpired: false, syncingNow: false),
            .error("The server failed (boom).")
        )

        // At launch after a failed sync, before any run: the model already knows why and when.
        let model = SyncIndicatorModel()
        model.update(status(.offline, failure: .offline))
        XCTAssertEqual(model.lastFailure, .offline)
        XCTAssertEqual(model.lastRunAt, Date(timeIntervalSince1970: 1_800_000_000))
        XCTAssertEqual(model.lastFailureText, "The server could not be reached.")
        model.update(status(.idle, failure: nil))
        XCTAssertNil(model.lastFailureText)
    }

    private func uniqueConflict(_ local: String?) -> ConflictItem {
        let conflict = Conflict(
            collection: "files", id: "mine", reason: .uniqueViolation, fields: ["projectId", "path"],
            localDocument: local, serverDocument: nil, baseDocument: nil, serverVersion: 0, existingId: "theirs"
        )
        return ConflictPresentation.item(for: conflict) { _, _ in nil }
    }

    func testKeepBothAsksForTheKeysTextFieldAndBuildsMineWithTheNewValue() throws {
        let item = uniqueConflict(#"{"projectId":"p","path":"/a","size":2}"#)
        XCTAssertEqual(item.keepBothField, "path")
        XCTAssertEqual(item.keepBothSuggestion, "/a (2)")
        XCTAssertEqual(
            try ConflictPresentation.keepBothDocument(item, field: "path", value: " /b "),
            #"{"path":"/b","projectId":"p","size":2}"#
        )
        XCTAssertThrowsError(try ConflictPresentation.keepBothDocument(item, field: "path", value: "/a")) { error in
            XCTAssertEqual(ErrorText.describe(error), "Another record already has this path; enter a different one.")
        }
        XCTAssertThrowsError(try ConflictPresentation.keepBothDocument(item, field: "path", value: "  "))

        XCTAssertNil(uniqueConflict(nil).keepBothField, "deleted here: nothing to keep twice")
        let other = ConflictPresentation.item(
            for: Conflict(
                collection: "plans", id: "p", reason: .bothChanged, fields: ["name"], localDocument: #"{"name":"A"}"#,
                serverDocument: #"{"name":"B"}"#, baseDocument: nil, serverVersion: 2, existingId: nil
            )
        ) { _, _ in nil }
        XCTAssertNil(other.keepBothField)
    }
}
