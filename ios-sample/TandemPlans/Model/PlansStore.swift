// The plans list: a live query of all plans, with each plan's number of days.

import Foundation
import Observation
import Tandem

/// Live state of the Plans screen. `run()` observes the plans and plan_days collections until
/// its task is cancelled; every commit, local or pulled from the server, updates the arrays.
@MainActor
@Observable
final class PlansStore {
    /// Every plan, sorted by name.
    private(set) var plans: [Plan] = []
    /// How many days each plan has, by plan id.
    private(set) var dayCounts: [String: Int] = [:]
    /// Plans whose documents this app cannot read.
    private(set) var skipped = 0
    /// Whether the first results arrived (to tell "empty" from "not loaded yet").
    private(set) var isLoaded = false
    /// Shows archived plans in a section of their own.
    var showArchived = false
    /// The last failure, for an alert.
    var errorMessage: String?

    private let tandem: Tandem

    init(tandem: Tandem) {
        self.tandem = tandem
    }

    var activePlans: [Plan] { plans.filter { !$0.isArchived } }
    var archivedPlans: [Plan] { plans.filter(\.isArchived) }

    func dayCount(of plan: Plan) -> Int {
        dayCounts[plan.id] ?? 0
    }

    /// Observes until cancelled (SwiftUI's `.task` cancels it when the screen goes away, which
    /// ends the streams and cancels the engine subscriptions).
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.observePlans() }
            group.addTask { await self.observeDayCounts() }
        }
    }

    private func observePlans() async {
        let stream: AsyncStream<[Record]>
        do {
            stream = try tandem.observeAsStream(collection: Plan.collection)
        } catch {
            errorMessage = ErrorText.describe(error)
            return
        }
        for await records in stream {
            let decoded = DocumentDecoding.decode(records, as: Plan.self)
            // Sorted here rather than by the query: SQLite orders strings by bytes ("Zumba"
            // before "arms"), people expect the localized order.
            plans = DisplayOrder.byName(decoded.items) { $0.name }
            skipped = decoded.skipped
            isLoaded = true
        }
    }

    private func observeDayCounts() async {
        let stream: AsyncStream<[Record]>
        do {
            stream = try tandem.observeAsStream(collection: PlanDay.collection)
        } catch {
            errorMessage = ErrorText.describe(error)
            return
        }
        for await records in stream {
            var counts: [String: Int] = [:]
            for day in DocumentDecoding.decode(records, as: PlanDay.self).items {
                counts[day.planId, default: 0] += 1
            }
            dayCounts = counts
        }
    }

    /// Creates a plan; the write is local and immediate, sync sends it later. Throws for the
    /// editor sheet to show (an alert behind a sheet would not appear).
    @discardableResult
    func create(_ form: PlanForm) throws -> Plan {
        try form.validate()
        let plan = form.applied(to: Plan(name: form.trimmedName, archived: false))
        return try Plan(record: tandem.put(collection: Plan.collection, document: plan))
    }

    func setArchived(_ plan: Plan, _ archived: Bool) {
        var changed = plan
        changed.archived = archived
        do {
            if let patch = try MergePatch.between(plan, changed) {
                _ = try tandem.patch(collection: Plan.collection, id: plan.id, patchJson: patch)
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Deletes the plan; its days go with it (plan_days declares plans as its parent): the engine
    /// hides them at once and the server's cascade deletes them.
    func delete(_ plan: Plan) {
        do {
            try tandem.delete(collection: Plan.collection, id: plan.id)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }
}
