// One plan and its days, live.

import Foundation
import Observation
import Tandem

/// Live state of a plan's screen: the plan, its days in order, and the exercise names the day
/// rows show. Days are children of the plan (`planId`), so deleting the plan deletes them.
@MainActor
@Observable
final class PlanDetailModel {
    /// The plan: personal (`plans`) or shared (`shared_plans`, in a space).
    let ref: PlanRef
    var planId: String { ref.id }
    /// A shared plan's space (the user's role, the member count); nil for a personal plan.
    private(set) var space: Space?
    private(set) var plan: Plan?
    /// The plan's days, by `dayIndex`.
    private(set) var days: [PlanDay] = []
    private(set) var exercises: [String: Exercise] = [:]
    /// The public catalog's exercises (days may list those too).
    private(set) var catalogExercises: [String: Exercise] = [:]
    private(set) var isLoaded = false
    /// The plan is gone: deleted here or on another device (then synced).
    private(set) var isDeleted = false
    /// The plan exists but its document does not decode as `Plan`.
    private(set) var isUnreadable = false
    var errorMessage: String?

    private let tandem: Tandem

    init(tandem: Tandem, planId: String) {
        self.tandem = tandem
        ref = .personal(planId)
    }

    init(tandem: Tandem, plan: PlanRef) {
        self.tandem = tandem
        ref = plan
    }

    /// A viewer sees the plan without editing controls ("View only").
    var isViewOnly: Bool { space?.role == .viewer }

    /// The other members of a shared plan's space: "Shared with N".
    var sharedWith: Int { max(Int(space?.memberCount ?? 1) - 1, 0) }

    /// Exercise names of a day, in the day's order; unknown ids (deleted or not yet synced
    /// exercises) are left out.
    func exerciseSummary(of day: PlanDay) -> String {
        let names = (day.exerciseIds ?? []).compactMap { (exercises[$0] ?? catalogExercises[$0])?.name }
        return names.isEmpty ? "No exercises" : names.joined(separator: ", ")
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followPlan() }
            group.addTask { await self.observeDays() }
            group.addTask { await self.observeExercises() }
            group.addTask { await self.observeCatalog() }
            if self.ref.isShared {
                group.addTask { await self.observeSpace() }
            }
        }
    }

    private func observeCatalog() async {
        do {
            try await followExerciseNames(tandem, collection: CollectionName.catalogExercises) { exercises in
                self.catalogExercises = exercises
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func observeSpace() async {
        do {
            for await spaces in try SpaceUpdates.spaces(tandem) {
                space = spaces.first { $0.id == ref.spaceId }
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Leaves a shared plan's space: the plan leaves this device (unsent edits stay visible as
    /// refused). Returns whether it worked.
    @discardableResult
    func leave() async -> Bool {
        guard let spaceId = ref.spaceId else {
            return false
        }
        do {
            try await tandem.leave(spaceId: spaceId)
            return true
        } catch {
            errorMessage = ErrorText.describe(error)
            return false
        }
    }

    private func followPlan() async {
        do {
            try await followRecord(tandem, collection: ref.collection, id: planId) { record in
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
            for await records in try tandem.observeAsStream(collection: ref.daysCollection, query: query) {
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
            throw TandemError.NotFound(collection: ref.collection, id: planId)
        }
        try form.validate()
        if let patch = try MergePatch.between(plan, form.applied(to: plan)) {
            _ = try tandem.patch(collection: ref.collection, id: planId, patchJson: patch)
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
                _ = try tandem.patch(collection: ref.collection, id: planId, patchJson: patch)
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
                collection: ref.daysCollection,
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
            let reindexed = try reindexDays(remaining, in: ref.daysCollection)
            let deletes = doomed.map { WriteOp.delete(collection: ref.daysCollection, id: $0.id) }
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
            let reindexed = try reindexDays(Reorder.moved(days, from: source, to: destination), in: ref.daysCollection)
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
            _ = try tandem.revert(collection: ref.collection, id: planId)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Deletes the plan. Its days go with it: the engine cascades through the schema's parent
    /// (here at once, on the server with the plan's delete), so the app deletes only the plan.
    func deletePlan() {
        do {
            try tandem.delete(collection: ref.collection, id: planId)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }
}
