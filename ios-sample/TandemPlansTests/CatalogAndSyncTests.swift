// The exercise catalog against a local-only engine, and the pure presentation of sync state and
// conflicts.

import Foundation
import Tandem
import XCTest
@testable import TandemPlans

@MainActor
final class ExerciseCatalogTests: XCTestCase {
    func testExercisesAreGroupedByCategoryAndSearchable() async throws {
        let tandem = try makeLocalTandem()
        let catalog = ExerciseCatalog(tandem: tandem)
        let task = start(catalog.run)
        defer { task.cancel() }
        for (name, category) in [("Squat", "Legs"), ("bench press", "Push"), ("Lunge", "Legs"), ("Plank", "")] {
            var form = ExerciseForm()
            form.name = name
            form.category = category
            _ = try catalog.create(form)
        }
        try await waitUntil("four exercises") { catalog.exercises.count == 4 }

        XCTAssertEqual(catalog.groups.map(\.category), ["Legs", "Push", "Uncategorized"])
        XCTAssertEqual(catalog.groups.first?.exercises.map(\.name), ["Lunge", "Squat"])
        XCTAssertEqual(catalog.categories, ["Legs", "Push"])

        catalog.searchText = "PRESS"
        XCTAssertEqual(catalog.groups.flatMap(\.exercises).map(\.name), ["bench press"])
        catalog.searchText = "legs"
        XCTAssertEqual(catalog.groups.flatMap(\.exercises).map(\.name), ["Lunge", "Squat"])
    }

    func testDeletingAnExerciseTakesItOutOfEveryDay() async throws {
        let tandem = try makeLocalTandem()
        _ = try tandem.put(collection: "plans", id: "p", json: #"{"name":"Legs"}"#)
        _ = try tandem.put(collection: "exercises", id: "squat", json: #"{"name":"Squat"}"#)
        _ = try tandem.put(collection: "exercises", id: "lunge", json: #"{"name":"Lunge"}"#)
        _ = try tandem.put(collection: "plan_days", id: "d1", json: #"{"planId":"p","dayIndex":0,"exerciseIds":["squat","lunge"]}"#)
        _ = try tandem.put(collection: "plan_days", id: "d2", json: #"{"planId":"p","dayIndex":1,"exerciseIds":["lunge"]}"#)
        let catalog = ExerciseCatalog(tandem: tandem)
        let task = start(catalog.run)
        defer { task.cancel() }
        try await waitUntil("usage counted") { catalog.usage["lunge"] == 2 && catalog.exercises.count == 2 }

        let lunge = try XCTUnwrap(catalog.exercises.first { $0.id == "lunge" })
        catalog.delete(lunge)
        XCTAssertNil(catalog.errorMessage)
        XCTAssertNil(try tandem.get(collection: "exercises", id: "lunge"))
        XCTAssertEqual(try tandem.get(PlanDay.self, collection: "plan_days", id: "d1")?.exerciseIds, ["squat"])
        XCTAssertEqual(try tandem.get(PlanDay.self, collection: "plan_days", id: "d2")?.exerciseIds, [])
        try await waitUntil("the catalog updated") { catalog.exercises.map(\.id) == ["squat"] }
    }
}

final class SyncPresentationTests: XCTestCase {
    private func status(_ phase: SyncPhase, pending: UInt64 = 0, lastError: String? = nil) -> SyncStatus {
        SyncStatus(
            phase: phase, pending: pending, conflicts: 1, rejected: 2, lastSyncedAt: nil,
            lastError: lastError, pulled: 0, remaining: 0, realtime: false,
            lastRunAt: nil, lastFailure: nil
        )
    }

    @MainActor
    func testTheIndicatorReducesTheEngineStatus() {
        typealias Model = SyncIndicatorModel
        XCTAssertEqual(Model.display(for: nil, syncEnabled: true, sessionExpired: false, syncingNow: false), .starting)
        XCTAssertEqual(Model.display(for: status(.idle), syncEnabled: true, sessionExpired: false, syncingNow: false), .synced)
        XCTAssertEqual(Model.display(for: status(.idle), syncEnabled: false, sessionExpired: false, syncingNow: false), .off)
        XCTAssertEqual(Model.display(for: status(.idle), syncEnabled: false, sessionExpired: false, syncingNow: true), .syncing)
        XCTAssertEqual(Model.display(for: status(.pushing), syncEnabled: true, sessionExpired: false, syncingNow: false), .syncing)
        XCTAssertEqual(Model.display(for: status(.pulling), syncEnabled: true, sessionExpired: false, syncingNow: false), .syncing)
        XCTAssertEqual(Model.display(for: status(.offline), syncEnabled: true, sessionExpired: false, syncingNow: false), .offline)
        XCTAssertEqual(Model.display(for: status(.paused), syncEnabled: true, sessionExpired: false, syncingNow: false), .paused)
        XCTAssertEqual(Model.display(for: status(.signedOut), syncEnabled: true, sessionExpired: false, syncingNow: false), .signedOut)
        XCTAssertEqual(
            Model.display(for: status(.error, lastError: "boom"), syncEnabled: true, sessionExpired: false, syncingNow: false),
            .error("boom")
        )
        XCTAssertEqual(
            Model.display(for: status(.error), syncEnabled: true, sessionExpired: true, syncingNow: false),
            .sessionExpired
        )

        let model = SyncIndicatorModel()
        XCTAssertNil(model.pendingText)
        model.update(status(.idle, pending: 3))
        XCTAssertEqual(model.pendingText, "3 pending")
        XCTAssertEqual(model.attentionCount, 3)
    }

    func testAConflictIsShownFieldByFieldWithReferencesAsNames() {
        let conflict = Conflict(
            collection: "plan_days", id: "d", reason: .bothChanged, fields: ["exerciseIds", "title"],
            localDocument: #"{"planId":"p","dayIndex":0,"title":"Upper","exerciseIds":["e1","e2"],"extra":{"a":1}}"#,
            serverDocument: #"{"planId":"p","dayIndex":2,"title":"Push","exerciseIds":["e2"]}"#,
            baseDocument: #"{"planId":"p","dayIndex":0,"title":"Day"}"#,
            serverVersion: 4
        )
        let names: ConflictPresentation.NameLookup = { collection, id in
            ["plans/p": "Legs", "exercises/e1": "Squat", "exercises/e2": "Lunge"]["\(collection)/\(id)"]
        }
        let item = ConflictPresentation.item(for: conflict, names: names)
        XCTAssertEqual(item.id, "plan_days/d")
        XCTAssertEqual(item.title, "Day “Upper” of “Legs”")
        XCTAssertEqual(item.reason, "Changed here and on the server: Exercises, Title.")
        XCTAssertEqual(item.rows.map(\.field), ["title", "dayIndex", "exerciseIds", "planId", "extra"])
        let byField = Dictionary(uniqueKeysWithValues: item.rows.map { ($0.field, $0) })
        XCTAssertEqual(byField["title"]?.mine, "Upper")
        XCTAssertEqual(byField["title"]?.server, "Push")
        XCTAssertEqual(byField["title"]?.isConflicting, true)
        XCTAssertEqual(byField["dayIndex"]?.mine, "1")
        XCTAssertEqual(byField["dayIndex"]?.server, "3")
        XCTAssertEqual(byField["dayIndex"]?.isConflicting, false)
        XCTAssertEqual(byField["exerciseIds"]?.mine, "Squat, Lunge")
        XCTAssertEqual(byField["exerciseIds"]?.server, "Lunge")
        XCTAssertEqual(byField["planId"]?.differs, false)
        XCTAssertEqual(byField["extra"]?.mine, #"{"a":1}"#)
        XCTAssertEqual(byField["extra"]?.server, "—")
    }

    func testADeletedSideSaysSo() {
        let conflict = Conflict(
            collection: "plans", id: "p", reason: .localEditServerDelete, fields: [],
            localDocument: #"{"name":"Legs","archived":true}"#, serverDocument: nil, baseDocument: nil,
            serverVersion: 2
        )
        let item = ConflictPresentation.item(for: conflict) { _, _ in nil }
        XCTAssertTrue(item.serverDeleted)
        XCTAssertFalse(item.localDeleted)
        XCTAssertEqual(item.title, "Plan “Legs”")
        XCTAssertEqual(item.reason, "Edited here, deleted on the server.")
        XCTAssertEqual(item.rows.map(\.mine), ["Legs", "Yes"])
        XCTAssertEqual(item.rows.map(\.server), ["Deleted", "Deleted"])
    }

    func testRefusedChangesCarryTheirReasonInWords() {
        let change = RejectedChange(
            opId: "op1", collection: "plan_days", id: "d", kind: .upsert, reason: .invalidParent, reasonCode: "invalid_parent",
            document: #"{"planId":"gone","dayIndex":0,"title":"Upper"}"#, createdAt: Date()
        )
        let item = ConflictPresentation.rejectedItem(for: change) { _, _ in nil }
        XCTAssertEqual(item.id, "op1")
        XCTAssertEqual(item.title, "Day “Upper”")
        XCTAssertEqual(item.kind, "Change")
        XCTAssertEqual(item.reason, ErrorText.rejectionReason(.invalidParent, code: "invalid_parent"))
    }

    func testEngineErrorsBecomeSentences() {
        XCTAssertEqual(
            ErrorText.describe(TandemError.Auth(kind: .invalidCredentials, detail: "x", retryAfterSecs: nil)),
            "Wrong email or password."
        )
        XCTAssertEqual(
            ErrorText.describe(TandemError.Sync(kind: .rateLimited, detail: "x", retryAfterSecs: 7)),
            "The server asked to slow down. Try again in 7 s."
        )
        XCTAssertEqual(ErrorText.describe(FormProblem(message: "A plan needs a name.")), "A plan needs a name.")
    }
}
