// The sample schema's documents (schemas/sample.json) as Codable Swift values.

import Foundation
import Tandem

/// The collection names of the sample schema.
enum CollectionName {
    static let exercises = "exercises"
    static let plans = "plans"
    static let planDays = "plan_days"
}

/// A document type stored in one Tandem collection.
///
/// The record's id and sync state belong to the record, not to its JSON document: conforming
/// types leave them out of their `CodingKeys`, so encoding never writes them into the document,
/// and `init(record:)` fills them in after decoding.
protocol TandemDocument: Codable, Identifiable, Hashable {
    /// The collection this type lives in.
    static var collection: String { get }
    var id: String { get set }
    var recordState: RecordState { get set }
    /// When the user last edited the record, on any device (the record's `editedAt`).
    var editedAt: Date? { get set }
}

extension TandemDocument {
    /// Decodes `record`'s document and attaches the record's id and state.
    init(record: Record) throws {
        self = try record.decode(Self.self)
        id = record.id
        recordState = record.state
        editedAt = record.editedAt
    }
}

/// An exercise of the catalog, e.g. "Back Squat" in "Legs".
struct Exercise: TandemDocument {
    static let collection = CollectionName.exercises

    var id = ""
    var recordState: RecordState = .pending
    var editedAt: Date?
    var name: String
    var category: String?
    var notes: String?

    /// The category to group by; exercises without one share a section.
    var categoryTitle: String {
        let trimmed = category?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return trimmed.isEmpty ? "Uncategorized" : trimmed
    }

    private enum CodingKeys: String, CodingKey {
        case name, category, notes
    }
}

/// A training plan; its days are `PlanDay` children (deleting the plan deletes them).
struct Plan: TandemDocument {
    static let collection = CollectionName.plans

    var id = ""
    var recordState: RecordState = .pending
    var editedAt: Date?
    var name: String
    var notes: String?
    /// Optional in the schema: a plan written by another client may not have it.
    var archived: Bool?

    var isArchived: Bool { archived ?? false }

    private enum CodingKeys: String, CodingKey {
        case name, notes, archived
    }
}

/// One day of a plan: a title and an ordered list of exercise ids.
struct PlanDay: TandemDocument {
    static let collection = CollectionName.planDays

    var id = ""
    var recordState: RecordState = .pending
    var editedAt: Date?
    /// The parent plan (the schema's parent field).
    var planId: String
    /// Position within the plan; the app keeps these dense (0, 1, 2, …).
    var dayIndex: Int
    var title: String?
    var exerciseIds: [String]?

    /// The title to show: the day's own, else "Day N" for its position in the plan.
    func displayTitle(position: Int) -> String {
        let trimmed = title?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return trimmed.isEmpty ? "Day \(position + 1)" : trimmed
    }

    private enum CodingKeys: String, CodingKey {
        case planId, dayIndex, title, exerciseIds
    }
}

/// Turns observed records into documents.
enum DocumentDecoding {
    /// The records decoded as `T`, in order, and how many could not be decoded. Another client
    /// (the CLI, an older app) may write a document this app's types cannot read, e.g. numbers in
    /// `exerciseIds`; such a record is counted and shown as a note instead of failing the list.
    static func decode<T: TandemDocument>(_ records: [Record], as type: T.Type) -> (items: [T], skipped: Int) {
        var items: [T] = []
        items.reserveCapacity(records.count)
        var skipped = 0
        for record in records {
            if let item = try? T(record: record) {
                items.append(item)
            } else {
                skipped += 1
            }
        }
        return (items, skipped)
    }
}

/// Sorting the way people expect in lists ("Day 2" before "Day 10", case-insensitive).
enum DisplayOrder {
    static func byName<T>(_ items: [T], _ name: (T) -> String) -> [T] {
        items.sorted { name($0).localizedStandardCompare(name($1)) == .orderedAscending }
    }
}
