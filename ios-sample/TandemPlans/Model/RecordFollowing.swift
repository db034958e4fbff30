// Following records live: one record (a detail screen) and the exercise catalog as a lookup.

import Foundation
import Tandem

/// Calls `deliver` with the record now (nil when missing or deleted) and again each time it
/// changes, local or pulled, until the calling task is cancelled.
@MainActor
func followRecord(
    _ tandem: Tandem, collection: String, id: String, deliver: (Record?) -> Void
) async throws {
    for await record in try tandem.observeRecordAsStream(collection: collection, id: id) {
        deliver(record)
    }
}

/// Observes the exercise catalog as a lookup table, for screens that show exercise names.
@MainActor
func followExerciseNames(
    _ tandem: Tandem, collection: String = Exercise.collection, deliver: ([String: Exercise]) -> Void
) async throws {
    for await records in try tandem.observeAsStream(collection: collection) {
        var byId: [String: Exercise] = [:]
        for exercise in DocumentDecoding.decode(records, as: Exercise.self).items {
            byId[exercise.id] = exercise
        }
        deliver(byId)
    }
}

/// The merge patch that sets `dayIndex` to each day's position, for the days whose index is
/// not their position already, and the days with their new indexes. Reordering and deleting
/// days keep indexes dense, so other clients (the CLI) list them in the same order.
func reindexDays(_ ordered: [PlanDay], in collection: String = PlanDay.collection) throws -> (days: [PlanDay], ops: [WriteOp]) {
    var days = ordered
    var ops: [WriteOp] = []
    for index in days.indices where days[index].dayIndex != index {
        days[index].dayIndex = index
        let patch = try TandemJSON.encode(["dayIndex": index])
        ops.append(.patch(collection: collection, id: days[index].id, patchJson: patch))
    }
    return (days, ops)
}
