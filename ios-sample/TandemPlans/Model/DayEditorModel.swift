// One plan day being edited: its title and its ordered exercises.

import Foundation
import Observation
import Tandem

/// Live state of the day editor. List edits (adding, removing, reordering exercises) are
/// written at once, each as one merge patch of `exerciseIds`; the title is a draft committed
/// when the field loses focus or the screen closes, so typing does not sync every keystroke.
@MainActor
@Observable
final class DayEditorModel {
    /// One row of the day's exercise list.
    struct Entry: Identifiable, Equatable {
        /// The position makes ids unique even when another client wrote an id twice.
        var id: String { "\(position):\(exerciseId)" }
        let position: Int
        let exerciseId: String
        /// Nil when the exercise was deleted or has not been synced to this device yet.
        let exercise: Exercise?
    }

    let dayId: String
    private(set) var day: PlanDay?
    /// The catalog, for names and the picker.
    private(set) var catalog: [String: Exercise] = [:]
    private(set) var isLoaded = false
    /// The day is gone (deleted here, with its plan, or on another device).
    private(set) var isDeleted = false
    /// The title field's text; follows the stored title while the field is not being edited.
    var titleDraft = ""
    /// Set by the view from the field's focus: while editing, incoming changes leave the draft alone.
    var isEditingTitle = false
    var errorMessage: String?

    private let tandem: Tandem

    /// `plan_days`, or `shared_plan_days` for a day of a shared plan.
    let collection: String

    init(tandem: Tandem, dayId: String, collection: String = PlanDay.collection) {
        self.collection = collection
        self.tandem = tandem
        self.dayId = dayId
    }

    var entries: [Entry] {
        (day?.exerciseIds ?? []).enumerated().map { position, id in
            Entry(position: position, exerciseId: id, exercise: catalog[id])
        }
    }

    /// The catalog sorted by name, for the picker.
    var sortedCatalog: [Exercise] {
        DisplayOrder.byName(Array(catalog.values)) { $0.name }
    }

    func contains(_ exercise: Exercise) -> Bool {
        day?.exerciseIds?.contains(exercise.id) ?? false
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followDay() }
            group.addTask { await self.observeCatalog() }
        }
    }

    private func followDay() async {
        do {
            try await followRecord(tandem, collection: collection, id: dayId) { record in
                self.apply(record)
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func apply(_ record: Record?) {
        isLoaded = true
        guard let record else {
            day = nil
            isDeleted = true
            return
        }
        do {
            let day = try PlanDay(record: record)
            self.day = day
            isDeleted = false
            if !isEditingTitle {
                titleDraft = day.title ?? ""
            }
        } catch {
            errorMessage = "This day's document cannot be read by the app: \(error.localizedDescription)"
        }
    }

    private func observeCatalog() async {
        do {
            try await followExerciseNames(tandem) { catalog in
                self.catalog = catalog
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Writes the title draft (blank removes the title, so the day shows as "Day N").
    func commitTitle() {
        guard let day else {
            return
        }
        var changed = day
        let trimmed = titleDraft.trimmingCharacters(in: .whitespacesAndNewlines)
        changed.title = trimmed.isEmpty ? nil : trimmed
        write(from: day, to: changed)
    }

    /// Adds the exercise at the end, or removes it when the day has it (the picker's tap).
    func toggle(_ exercise: Exercise) {
        guard let day else {
            return
        }
        var ids = day.exerciseIds ?? []
        if let index = ids.firstIndex(of: exercise.id) {
            ids.remove(at: index)
        } else {
            ids.append(exercise.id)
        }
        setExerciseIds(ids)
    }

    func removeExercises(at offsets: IndexSet) {
        let ids = (day?.exerciseIds ?? []).enumerated().filter { !offsets.contains($0.offset) }.map(\.element)
        setExerciseIds(ids)
    }

    func moveExercises(from source: IndexSet, to destination: Int) {
        setExerciseIds(Reorder.moved(day?.exerciseIds ?? [], from: source, to: destination))
    }

    /// Creates an exercise in the catalog and adds it to this day, in one transaction; throws
    /// for the picker sheet to show.
    @discardableResult
    func createExercise(_ form: ExerciseForm) throws -> Exercise {
        guard let day else {
            throw TandemError.NotFound(collection: collection, id: dayId)
        }
        try form.validate()
        // The id is chosen here so the day can refer to it in the same batch (the engine makes
        // one only inside the write, too late for the day's patch).
        let exercise = form.applied(to: Exercise(id: UUID().uuidString.lowercased(), name: form.trimmedName))
        var changed = day
        changed.exerciseIds = (day.exerciseIds ?? []) + [exercise.id]
        let create = try WriteOp.put(collection: Exercise.collection, id: exercise.id, document: exercise)
        var ops = [create]
        if let patch = try MergePatch.between(day, changed) {
            ops.append(.patch(collection: collection, id: dayId, patchJson: patch))
        }
        _ = try tandem.write(ops: ops)
        self.day = changed
        return exercise
    }

    private func setExerciseIds(_ ids: [String]) {
        guard let day else {
            return
        }
        var changed = day
        changed.exerciseIds = ids
        write(from: day, to: changed)
    }

    /// Patches the fields that differ. The new state is shown at once (List's onMove and
    /// onDelete expect that); the observer then delivers the same state from the store.
    private func write(from old: PlanDay, to new: PlanDay) {
        do {
            guard let patch = try MergePatch.between(old, new) else {
                return
            }
            day = new
            _ = try tandem.patch(collection: collection, id: dayId, patchJson: patch)
        } catch {
            day = old
            errorMessage = ErrorText.describe(error)
        }
    }
}
