// Following one record live: the engine observes queries, and a query cannot select a record by
// id, so a single record is re-read after each commit that touches its collection.

import Foundation
import Tandem

/// Calls `deliver` with the record now (nil when missing or deleted) and again after every
/// commit that touches `collection`, local or pulled, until the calling task is cancelled.
@MainActor
func followRecord(
    _ tandem: Tandem, collection: String, id: String, deliver: (Record?) -> Void
) async throws {
    // Registered before the first read, so no commit can fall between the read and the stream.
    let changes = try tandem.changesAsStream()
    deliver(try tandem.get(collection: collection, id: id))
    for await collections in changes where collections.contains(collection) {
        deliver(try tandem.get(collection: collection, id: id))
    }
}

/// Observes the exercise catalog as a lookup table, for screens that show exercise names.
@MainActor
func followExerciseNames(_ tandem: Tandem, deliver: ([String: Exercise]) -> Void) async throws {
    for await records in try tandem.observeAsStream(collection: Exercise.collection) {
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
func reindexDays(_ ordered: [PlanDay]) throws -> (days: [PlanDay], ops: [WriteOp]) {
    var days = ordered
    var ops: [WriteOp] = []
    for index in days.indices where days[index].dayIndex != index {
        days[index].dayIndex = index
        let patch = try TandemJSON.encode(["dayIndex": index])
        ops.append(.patch(collection: PlanDay.collection, id: days[index].id, patchJson: patch))
    }
    return (days, ops)
}
