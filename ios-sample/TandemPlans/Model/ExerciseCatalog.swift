// The exercise catalog: live, grouped by category, searchable.

import Foundation
import Observation
import Tandem

/// Live state of the Exercises screen.
@MainActor
@Observable
final class ExerciseCatalog {
    /// One category's exercises.
    struct CategoryGroup: Identifiable, Equatable {
        var id: String { category }
        let category: String
        let exercises: [Exercise]
    }

    /// The user's own exercises, sorted by name (editable).
    private(set) var exercises: [Exercise] = []
    /// The public catalog the server seeds (`catalog_exercises`), sorted by name: read-only,
    /// the engine refuses a local write there (`ValidationReason.readOnly`).
    private(set) var catalog: [Exercise] = []
    /// How many plan days use each exercise, by exercise id.
    private(set) var usage: [String: Int] = [:]
    private(set) var skipped = 0
    private(set) var isLoaded = false
    var searchText = ""
    var errorMessage: String?

    private let tandem: Tandem

    init(tandem: Tandem) {
        self.tandem = tandem
    }

    /// The exercises matching the search (name, category or notes), by category, categories
    /// sorted with "Uncategorized" last.
    var groups: [CategoryGroup] {
        let query = searchText.trimmingCharacters(in: .whitespacesAndNewlines)
        let matching = query.isEmpty ? exercises : exercises.filter { exercise in
            [exercise.name, exercise.category ?? "", exercise.notes ?? ""].contains { $0.localizedCaseInsensitiveContains(query) }
        }
        let grouped = Dictionary(grouping: matching) { $0.categoryTitle }
        let categories = grouped.keys.sorted { lhs, rhs in
            if (lhs == "Uncategorized") != (rhs == "Uncategorized") {
                return rhs == "Uncategorized"
            }
            return lhs.localizedStandardCompare(rhs) == .orderedAscending
        }
        return categories.map { CategoryGroup(category: $0, exercises: grouped[$0] ?? []) }
    }

    /// The categories in use, for the editor's suggestions.
    var categories: [String] {
        let names = Set(exercises.compactMap { exercise -> String? in
            let trimmed = exercise.category?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return trimmed.isEmpty ? nil : trimmed
        })
        return DisplayOrder.byName(Array(names)) { $0 }
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.observeExercises() }
            group.addTask { await self.observeCatalog() }
            group.addTask { await self.observeUsage() }
        }
    }

    private func observeExercises() async {
        do {
            for await records in try tandem.observeAsStream(collection: Exercise.collection) {
                let decoded = DocumentDecoding.decode(records, as: Exercise.self)
                exercises = DisplayOrder.byName(decoded.items) { $0.name }
                skipped = decoded.skipped
                isLoaded = true
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func observeCatalog() async {
        do {
            for await records in try tandem.observeAsStream(collection: CollectionName.catalogExercises) {
                catalog = DisplayOrder.byName(DocumentDecoding.decode(records, as: Exercise.self).items) { $0.name }
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// The catalog's exercises matching the search.
    var matchingCatalog: [Exercise] {
        let query = searchText.trimmingCharacters(in: .whitespacesAndNewlines)
        return query.isEmpty ? catalog : catalog.filter { exercise in
            [exercise.name, exercise.category ?? "", exercise.notes ?? ""].contains { $0.localizedCaseInsensitiveContains(query) }
        }
    }

    private func observeUsage() async {
        do {
            for await records in try tandem.observeAsStream(collection: PlanDay.collection) {
                var usage: [String: Int] = [:]
                for day in DocumentDecoding.decode(records, as: PlanDay.self).items {
                    for id in Set(day.exerciseIds ?? []) {
                        usage[id, default: 0] += 1
                    }
                }
                self.usage = usage
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Creates an exercise; throws for the editor sheet to show.
    @discardableResult
    func create(_ form: ExerciseForm) throws -> Exercise {
        try form.validate()
        let exercise = form.applied(to: Exercise(name: form.trimmedName))
        return try Exercise(record: tandem.put(collection: Exercise.collection, document: exercise))
    }

    /// Saves the edit sheet's fields, sending only what changed; throws for the sheet to show.
    func update(_ exercise: Exercise, with form: ExerciseForm) throws {
        try form.validate()
        if let patch = try MergePatch.between(exercise, form.applied(to: exercise)) {
            _ = try tandem.patch(collection: Exercise.collection, id: exercise.id, patchJson: patch)
        }
    }

    /// Deletes the exercise and takes it out of every day that lists it, in one transaction.
    /// (`exerciseIds` is a plain array, not a parent link, so the engine has nothing to cascade.)
    func delete(_ exercise: Exercise) {
        do {
            let records = try tandem.query(collection: PlanDay.collection, query: Query())
            let days = DocumentDecoding.decode(records, as: PlanDay.self).items
            var ops = [WriteOp.delete(collection: Exercise.collection, id: exercise.id)]
            for day in days where day.exerciseIds?.contains(exercise.id) == true {
                var changed = day
                changed.exerciseIds = day.exerciseIds?.filter { $0 != exercise.id }
                if let patch = try MergePatch.between(day, changed) {
                    ops.append(.patch(collection: PlanDay.collection, id: day.id, patchJson: patch))
                }
            }
            _ = try tandem.write(ops: ops)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }
}
