// The plans list, a plan's days and the day editor against a local-only engine: writes go
// through the models, results come back through the engine's observed queries.

import Foundation
import Tandem
import XCTest
@testable import TandemPlans

@MainActor
final class PlanModelTests: XCTestCase {
    func testPlansAppearLiveAndArchivedOnesAreSeparated() async throws {
        let tandem = try makeLocalTandem()
        let store = PlansStore(tandem: tandem)
        let task = start(store.run)
        defer { task.cancel() }
        try await waitUntil("the first results") { store.isLoaded }
        XCTAssertEqual(store.plans, [])

        var form = PlanForm()
        form.name = "Strength B"
        let b = try store.create(form)
        form.name = "strength a"
        _ = try store.create(form)
        // A write from elsewhere (here: straight to the engine, as a sync would) shows up too.
        _ = try tandem.put(collection: "plans", id: "legs", json: #"{"name":"Legs","archived":true}"#)

        try await waitUntil("three plans") { store.plans.count == 3 }
        XCTAssertEqual(store.activePlans.map(\.name), ["strength a", "Strength B"])
        XCTAssertEqual(store.archivedPlans.map(\.id), ["legs"])

        store.setArchived(b, true)
        try await waitUntil("B archived") { store.archivedPlans.count == 2 }
        XCTAssertNil(store.errorMessage)
    }

    func testInvalidPlansAreRefusedBeforeAnyWrite() throws {
        let tandem = try makeLocalTandem()
        let store = PlansStore(tandem: tandem)
        XCTAssertThrowsError(try store.create(PlanForm())) { error in
            XCTAssertTrue(error is FormProblem)
        }
        XCTAssertEqual(try tandem.count(collection: "plans", query: Query()), 0)
    }

    func testDaysAreAddedReorderedAndDeletedWithDenseIndexes() async throws {
        let tandem = try makeLocalTandem()
        let plan = try tandem.put(collection: "plans", id: "p", json: #"{"name":"Legs"}"#)
        let model = PlanDetailModel(tandem: tandem, planId: plan.id)
        let task = start(model.run)
        defer { task.cancel() }
        try await waitUntil("the plan") { model.plan != nil }

        let first = try XCTUnwrap(model.addDay())
        let second = try XCTUnwrap(model.addDay())
        let third = try XCTUnwrap(model.addDay())
        try await waitUntil("three days") { model.days.count == 3 }
        XCTAssertEqual(model.days.map(\.dayIndex), [0, 1, 2])

        model.moveDays(from: [2], to: 0)
        XCTAssertEqual(model.days.map(\.id), [third.id, first.id, second.id], "shown at once")
        let stored = try tandem.query(PlanDay.self, collection: "plan_days", query: Query(orderBy: [OrderBy(field: "dayIndex")]))
        XCTAssertEqual(stored.map(\.dayIndex), [0, 1, 2])
        XCTAssertEqual(try tandem.get(PlanDay.self, collection: "plan_days", id: third.id)?.dayIndex, 0)

        model.deleteDays(at: [1])
        try await waitUntil("two days") { model.days.count == 2 }
        XCTAssertEqual(model.days.map(\.id), [third.id, second.id])
        XCTAssertEqual(try tandem.get(PlanDay.self, collection: "plan_days", id: second.id)?.dayIndex, 1)
        XCTAssertNil(model.errorMessage)
    }

    func testEditingAPlanSendsOnlyTheChangedFields() async throws {
        let tandem = try makeLocalTandem()
        _ = try tandem.put(collection: "plans", id: "p", json: #"{"name":"Legs","notes":"heavy"}"#)
        let model = PlanDetailModel(tandem: tandem, planId: "p")
        let task = start(model.run)
        defer { task.cancel() }
        try await waitUntil("the plan") { model.plan != nil }

        // Another device renamed nothing but added a field this screen's copy lacks.
        _ = try tandem.patch(collection: "plans", id: "p", patchJson: #"{"archived":false}"#)
        var form = PlanForm(plan: try XCTUnwrap(model.plan))
        form.notes = ""
        try model.save(form)
        // Compared as objects: the engine keeps the document's key order, not a sorted one.
        let stored = try XCTUnwrap(tandem.get(collection: "plans", id: "p"))
        XCTAssertEqual(
            ConflictPresentation.object(stored.document) as NSDictionary?,
            ["name": "Legs", "archived": false] as NSDictionary
        )
    }

    func testDeletingAPlanDeletesItsDays() async throws {
        let tandem = try makeLocalTandem()
        _ = try tandem.put(collection: "plans", id: "p", json: #"{"name":"Legs"}"#)
        let model = PlanDetailModel(tandem: tandem, planId: "p")
        let task = start(model.run)
        defer { task.cancel() }
        try await waitUntil("the plan") { model.plan != nil }
        model.addDay()
        model.addDay()
        try await waitUntil("two days") { model.days.count == 2 }

        model.deletePlan()
        try await waitUntil("the plan gone") { model.isDeleted }
        XCTAssertEqual(try tandem.count(collection: "plan_days", query: Query()), 0, "the engine cascades")
    }

    func testTheDayEditorPicksReordersAndRemovesExercises() async throws {
        let tandem = try makeLocalTandem()
        _ = try tandem.put(collection: "plans", id: "p", json: #"{"name":"Legs"}"#)
        _ = try tandem.put(collection: "plan_days", id: "d", json: #"{"planId":"p","dayIndex":0}"#)
        let squat = try Exercise(record: tandem.put(collection: "exercises", document: Exercise(name: "Squat", category: "Legs")))
        let lunge = try Exercise(record: tandem.put(collection: "exercises", document: Exercise(name: "Lunge")))
        let model = DayEditorModel(tandem: tandem, dayId: "d")
        let task = start(model.run)
        defer { task.cancel() }
        try await waitUntil("the day and catalog") { model.day != nil && model.catalog.count == 2 }

        model.toggle(squat)
        model.toggle(lunge)
        XCTAssertEqual(model.entries.map(\.exerciseId), [squat.id, lunge.id])
        XCTAssertTrue(model.contains(squat))

        model.moveExercises(from: [1], to: 0)
        XCTAssertEqual(try tandem.get(PlanDay.self, collection: "plan_days", id: "d")?.exerciseIds, [lunge.id, squat.id])

        model.toggle(lunge)
        model.removeExercises(at: [0])
        XCTAssertEqual(try tandem.get(PlanDay.self, collection: "plan_days", id: "d")?.exerciseIds, [])

        var form = ExerciseForm()
        form.name = "Deadlift"
        let created = try model.createExercise(form)
        try await waitUntil("the new exercise in the catalog") { model.catalog[created.id] != nil }
        XCTAssertEqual(model.entries.map { $0.exercise?.name }, ["Deadlift"])
    }

    func testTheTitleDraftIsCommittedAndBlankRemovesIt() async throws {
        let tandem = try makeLocalTandem()
        _ = try tandem.put(collection: "plans", id: "p", json: #"{"name":"Legs"}"#)
        _ = try tandem.put(collection: "plan_days", id: "d", json: #"{"planId":"p","dayIndex":0,"title":"Old"}"#)
        let model = DayEditorModel(tandem: tandem, dayId: "d")
        let task = start(model.run)
        defer { task.cancel() }
        try await waitUntil("the day") { model.titleDraft == "Old" }

        // While the field is edited, a synced change does not overwrite what is being typed.
        model.isEditingTitle = true
        model.titleDraft = "Upper"
        _ = try tandem.patch(collection: "plan_days", id: "d", patchJson: #"{"exerciseIds":["x"]}"#)
        try await waitUntil("the synced change") { model.day?.exerciseIds == ["x"] }
        XCTAssertEqual(model.titleDraft, "Upper")

        model.isEditingTitle = false
        model.commitTitle()
        XCTAssertEqual(try tandem.get(PlanDay.self, collection: "plan_days", id: "d")?.title, "Upper")

        model.titleDraft = "   "
        model.commitTitle()
        let stored = try XCTUnwrap(tandem.get(collection: "plan_days", id: "d"))
        XCTAssertFalse(stored.document.contains("title"), stored.document)
    }
}
