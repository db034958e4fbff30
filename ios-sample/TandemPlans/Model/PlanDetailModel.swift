// One plan and its days, live.

import Foundation
import Observation
import Tandem

/// Live state of a plan's screen: the plan, its days in order, and the exercise names the day
/// rows show. Days are children of the plan (`planId`), so deleting the plan deletes them.
@MainActor
@Observable
final class PlanDetailModel {
    let planId: String
    private(set) var plan: Plan?
    /// The plan's days, by `dayIndex`.
    private(set) var days: [PlanDay] = []
    private(set) var exercises: [String: Exercise] = [:]
    private(set) var isLoaded = false
    /// The plan is gone: deleted here or on another device (then synced).
    private(set) var isDeleted = false
    /// The plan exists but its document does not decode as `Plan`.
    private(set) var isUnreadable = false
    var errorMessage: String?

    private let tandem: Tandem

    init(tandem: Tandem, planId: String) {
        self.tandem = tandem
        self.planId = planId
    }

    /// Exercise names of a day, in the day's order; unknown ids (deleted or not yet synced
    /// exercises) are left out.
    func exerciseSummary(of day: PlanDay) -> String {
        let names = (day.exerciseIds ?? []).compactMap { exercises[$0]?.name }
        return names.isEmpty ? "No exercises" : names.joined(separator: ", ")
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followPlan() }
            group.addTask { await self.observeDays() }
            group.addTask { await self.observeExercises() }
        }
    }

    private func followPlan() async {
        do {
            try await followRecord(tandem, collection: Plan.collection, id: planId) { record in
                self.apply(record)
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func apply(_ record: Record?) {
        if let record {
            plan = try? Plan(record: record)
            isUnreadable = plan == nil
            isDeleted = false
        } else {
            plan = nil
            isUnreadable = false
            isDeleted = true
        }
        isLoaded = true
    }

    private func observeDays() async {
        do {
            let ofThisPlan = try Filter(field: "planId", op: .eq, value: planId)
            let query = Query(filters: [ofThisPlan], orderBy: [OrderBy(field: "dayIndex")])
            for await records in try tandem.observeAsStream(collection: PlanDay.collection, query: query) {
                days = DocumentDecoding.decode(records, as: PlanDay.self).items
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func observeExercises() async {
        do {
            try await followExerciseNames(tandem) { exercises in
                self.exercises = exercises
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Saves the edit sheet's fields, sending only what changed; throws for the sheet to show.
    func save(_ form: PlanForm) throws {
        guard let plan else {
            throw TandemError.NotFound(collection: Plan.collection, id: planId)
        }
        try form.validate()
        if let patch = try MergePatch.between(plan, form.applied(to: plan)) {
            _ = try tandem.patch(collection: Plan.collection, id: planId, patchJson: patch)
        }
    }

    func setArchived(_ archived: Bool) {
        guard let plan else {
            return
        }
        var changed = plan
        changed.archived = archived
        do {
            if let patch = try MergePatch.between(plan, changed) {
                _ = try tandem.patch(collection: Plan.collection, id: planId, patchJson: patch)
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Appends a day after the last one.
    @discardableResult
    func addDay() -> PlanDay? {
        let next = (days.map(\.dayIndex).max() ?? -1) + 1
        do {
            let record = try tandem.put(
                collection: PlanDay.collection,
                document: PlanDay(planId: planId, dayIndex: next, exerciseIds: [])
            )
            return try PlanDay(record: record)
        } catch {
            errorMessage = ErrorText.describe(error)
            return nil
        }
    }

    /// Deletes days and closes the gaps in one transaction.
    func deleteDays(at offsets: IndexSet) {
        let doomed = offsets.filter { $0 < days.count }.map { days[$0] }
        let remaining = days.enumerated().filter { !offsets.contains($0.offset) }.map(\.element)
        do {
            let reindexed = try reindexDays(remaining)
            let deletes = doomed.map { WriteOp.delete(collection: PlanDay.collection, id: $0.id) }
            // Shown at once: SwiftUI's List expects the rows gone when onDelete returns; the
            // observer then delivers the same state.
            days = reindexed.days
            _ = try tandem.write(ops: deletes + reindexed.ops)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Reorders days (List's onMove) and writes the new indexes in one `write`: one transaction
    /// here and one atomic group on the wire, so other devices see the whole move or none of it.
    func moveDays(from source: IndexSet, to destination: Int) {
        do {
            let reindexed = try reindexDays(Reorder.moved(days, from: source, to: destination))
            days = reindexed.days
            if !reindexed.ops.isEmpty {
                _ = try tandem.write(ops: reindexed.ops)
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Undoes the plan's edits that have not reached the server yet: the server's version comes
    /// back (a plan never synced goes away, with its days).
    func revertChanges() {
        do {
            _ = try tandem.revert(collection: Plan.collection, id: planId)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Deletes the plan. Its days go with it: the engine cascades through the schema's parent
    /// (here at once, on the server with the plan's delete), so the app deletes only the plan.
    func deletePlan() {
        do {
            try tandem.delete(collection: Plan.collection, id: planId)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }
}
