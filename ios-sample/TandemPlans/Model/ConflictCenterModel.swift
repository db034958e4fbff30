// The conflict center: conflicts waiting for a decision, and changes the server refused.

import Foundation
import Observation
import Tandem

/// A conflict as the conflict center shows it: both versions side by side, field by field.
struct ConflictItem: Identifiable, Equatable {
    var id: String { "\(conflict.collection)/\(conflict.id)" }
    let conflict: Conflict
    /// What the record is, e.g. "Plan “Legs”".
    let title: String
    let reason: String
    let rows: [FieldComparison]
    var localDeleted: Bool { conflict.localDocument == nil }
    var serverDeleted: Bool { conflict.serverDocument == nil }
    /// A unique-key conflict: Keep Mine replaces the record holding the key (`existingId`), Keep
    /// Server drops this one, Keep Both sends this one with another key.
    var isUniqueViolation: Bool { conflict.reason == .uniqueViolation }
    var existingId: String? { conflict.existingId }

    /// The field Keep Both asks a new value for: the key's last field that holds text here
    /// (`path` of `(projectId, path)`: the leading fields usually name what the record belongs
    /// to). Nil when Keep Both is not offered (not a unique conflict, or deleted here).
    var keepBothField: String? {
        guard isUniqueViolation, let mine = ConflictPresentation.object(conflict.localDocument) else {
            return nil
        }
        return conflict.fields.last { mine[$0] is String } ?? conflict.fields.last
    }

    /// What the Keep Both field starts with: this device's value and " (2)", e.g. "/a (2)".
    var keepBothSuggestion: String {
        guard let field = keepBothField,
              let value = ConflictPresentation.object(conflict.localDocument)?[field]
        else {
            return ""
        }
        return (value as? String).map { "\($0) (2)" } ?? "\(value)"
    }
}

/// One field of a conflicted record on both sides.
struct FieldComparison: Identifiable, Equatable {
    var id: String { field }
    let field: String
    let label: String
    let mine: String
    let server: String
    /// Changed on both sides: the fields the engine's merge left to the user.
    let isConflicting: Bool
    var differs: Bool { mine != server }
}

/// A change the server refused (a dead letter), with the reason in words.
struct RejectedItem: Identifiable, Equatable {
    var id: String { change.opId }
    let change: RejectedChange
    let title: String
    let reason: String
    var kind: String { change.kind == .delete ? "Deletion" : "Change" }
}

/// Builds what the conflict center shows from the engine's `Conflict` and `RejectedChange`
/// values; pure functions, so they are tested without an engine.
enum ConflictPresentation {
    /// This device's document with `value` as `field` (a number stays a number when `value` reads
    /// as one): what Keep Both sends. A blank value, or the one the other record holds, is refused
    /// with a sentence instead of a second conflict.
    static func keepBothDocument(_ item: ConflictItem, field: String, value: String) throws -> String {
        let text = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            throw FormProblem(message: "Enter a new \(label(field)) to keep both.")
        }
        guard var document = object(item.conflict.localDocument) else {
            throw FormProblem(message: "This record was deleted here; there is nothing to keep twice.")
        }
        let old = document[field]
        let taken = (old as? String) ?? (old as? NSNumber).map { "\($0)" }
        if taken == text {
            throw FormProblem(message: "Another record already has this \(label(field)); enter a different one.")
        }
        if let number = old as? NSNumber, CFGetTypeID(number) != CFBooleanGetTypeID(), let whole = Int64(text) {
            document[field] = whole
        } else if let number = old as? NSNumber, CFGetTypeID(number) != CFBooleanGetTypeID(), let real = Double(text) {
            document[field] = real
        } else {
            document[field] = text
        }
        // Sorted for a stable text; slashes as they are ("/a", not "\/a": a path is a common key).
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// The name of a referenced record (a plan for `planId`, exercises for `exerciseIds`).
    typealias NameLookup = (_ collection: String, _ id: String) -> String?

    /// The sample schema's fields in the order a form shows them; other fields follow by name.
    static let fieldOrder: [String: [String]] = [
        CollectionName.exercises: ["name", "category", "notes"],
        CollectionName.plans: ["name", "notes", "archived"],
        CollectionName.planDays: ["title", "dayIndex", "exerciseIds", "planId"],
    ]

    static func item(for conflict: Conflict, names: NameLookup) -> ConflictItem {
        let local = object(conflict.localDocument)
        let server = object(conflict.serverDocument)
        return ConflictItem(
            conflict: conflict,
            title: title(collection: conflict.collection, id: conflict.id, document: local ?? server, names: names),
            reason: reasonText(conflict.reason, fields: conflict.fields),
            rows: rows(for: conflict, names: names)
        )
    }

    static func rows(for conflict: Conflict, names: NameLookup) -> [FieldComparison] {
        let local = object(conflict.localDocument)
        let server = object(conflict.serverDocument)
        let present = Set((local ?? [:]).keys).union((server ?? [:]).keys)
        let known = fieldOrder[conflict.collection] ?? []
        let fields = known.filter { present.contains($0) } + present.subtracting(known).sorted()
        return fields.map { field in
            FieldComparison(
                field: field,
                label: label(field),
                mine: side(local, field: field, names: names),
                server: side(server, field: field, names: names),
                isConflicting: conflict.fields.contains(field)
            )
        }
    }

    static func rejectedItem(for change: RejectedChange, names: NameLookup) -> RejectedItem {
        RejectedItem(
            change: change,
            title: title(collection: change.collection, id: change.id, document: object(change.document), names: names),
            reason: ErrorText.rejectionReason(change.reason, code: change.reasonCode)
        )
    }

    static func reasonText(_ reason: ConflictReason, fields: [String]) -> String {
        switch reason {
        case .bothChanged:
            let labels = fields.map(label).joined(separator: ", ")
            return labels.isEmpty ? "Changed here and on the server." : "Changed here and on the server: \(labels)."
        case .localEditServerDelete:
            return "Edited here, deleted on the server."
        case .localDeleteServerEdit:
            return "Deleted here, edited on the server."
        case .manual:
            return "Waiting for your decision."
        case .uniqueViolation:
            let labels = fields.map(label).joined(separator: ", ")
            return labels.isEmpty
                ? "Another record already has the same key."
                : "Another record already has the same \(labels)."
        }
    }

    static func label(_ field: String) -> String {
        switch field {
        case "name": return "Name"
        case "category": return "Category"
        case "notes": return "Notes"
        case "archived": return "Archived"
        case "title": return "Title"
        case "dayIndex": return "Day"
        case "exerciseIds": return "Exercises"
        case "planId": return "Plan"
        default: return field
        }
    }

    /// "Plan “Legs”", "Exercise “Squat”", "Day “Upper” of “Legs”".
    static func title(collection: String, id: String, document: [String: Any]?, names: NameLookup) -> String {
        let name = (document?["name"] as? String) ?? (document?["title"] as? String)
        switch collection {
        case CollectionName.plans:
            return name.map { "Plan “\($0)”" } ?? "A plan"
        case CollectionName.exercises:
            return name.map { "Exercise “\($0)”" } ?? "An exercise"
        case CollectionName.planDays:
            let day = name.map { "Day “\($0)”" } ?? "A day"
            if let planId = document?["planId"] as? String, let plan = names(CollectionName.plans, planId) {
                return "\(day) of “\(plan)”"
            }
            return day
        default:
            return "\(collection) \(id)"
        }
    }

    /// A document's field for display; a deleted side says so.
    private static func side(_ document: [String: Any]?, field: String, names: NameLookup) -> String {
        guard let document else {
            return "Deleted"
        }
        return format(document[field], field: field, names: names)
    }

    /// A JSON value for display: references become names, booleans Yes/No, a day index its
    /// 1-based number, absent values a dash.
    static func format(_ value: Any?, field: String, names: NameLookup) -> String {
        guard let value else {
            return "—"
        }
        if value is NSNull {
            return "—"
        }
        if let number = value as? NSNumber {
            if CFGetTypeID(number) == CFBooleanGetTypeID() {
                return number.boolValue ? "Yes" : "No"
            }
            if field == "dayIndex" {
                return "\(number.intValue + 1)"
            }
            return number.stringValue
        }
        if let text = value as? String {
            if field == "planId" {
                return names(CollectionName.plans, text) ?? text
            }
            return text
        }
        if let ids = value as? [String], field == "exerciseIds" {
            if ids.isEmpty {
                return "None"
            }
            return ids.map { names(CollectionName.exercises, $0) ?? "unknown exercise" }.joined(separator: ", ")
        }
        guard JSONSerialization.isValidJSONObject(value),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
        else {
            return String(describing: value)
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A JSON document as a dictionary; nil for a deleted side or text that is not an object.
    static func object(_ json: String?) -> [String: Any]? {
        guard let json, let data = json.data(using: .utf8) else {
            return nil
        }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}

/// Live state of the conflict center. Conflicts and dead letters are re-read whenever the sync
/// status reports different counts or a run ends; resolving one takes effect at once, without
/// restarting anything, and goes up with the next sync.
@MainActor
@Observable
final class ConflictCenterModel {
    private(set) var conflicts: [ConflictItem] = []
    private(set) var rejected: [RejectedItem] = []
    private(set) var isLoaded = false
    var errorMessage: String?

    private let tandem: Tandem

    init(tandem: Tandem) {
        self.tandem = tandem
    }

    func conflict(withId id: String) -> ConflictItem? {
        conflicts.first { $0.id == id }
    }

    func run() async {
        reload()
        var lastCounts: [UInt64] = []
        var lastPhase: SyncPhase?
        do {
            for await status in try tandem.syncStatusStream() {
                let counts = [status.conflicts, status.rejected]
                let runEnded = status.phase == .idle && lastPhase != .idle
                if counts != lastCounts || runEnded {
                    reload()
                }
                lastCounts = counts
                lastPhase = status.phase
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    func reload() {
        do {
            let lookup: ConflictPresentation.NameLookup = { [tandem] collection, id in
                Self.name(in: tandem, collection: collection, id: id)
            }
            conflicts = try tandem.conflicts().map { ConflictPresentation.item(for: $0, names: lookup) }
            rejected = try tandem.rejected().map { ConflictPresentation.rejectedItem(for: $0, names: lookup) }
            isLoaded = true
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Settles a conflict with one side's version. Returns whether it worked.
    @discardableResult
    func resolve(_ item: ConflictItem, keepMine: Bool) -> Bool {
        do {
            _ = try tandem.resolve(
                collection: item.conflict.collection,
                id: item.conflict.id,
                resolution: keepMine ? .keepMine : .keepServer
            )
            reload()
            return true
        } catch {
            errorMessage = ErrorText.describe(error)
            reload()
            return false
        }
    }

    /// Keeps both records of a unique-key conflict: this device's goes up again with `value` as
    /// its key field `field` (see `ConflictItem.keepBothField`); the one holding the old key
    /// stays. Returns whether it worked; a blank or unchanged value sets `errorMessage`.
    @discardableResult
    func keepBoth(_ item: ConflictItem, field: String, value: String) -> Bool {
        do {
            let json = try ConflictPresentation.keepBothDocument(item, field: field, value: value)
            _ = try tandem.resolve(collection: item.conflict.collection, id: item.conflict.id, resolution: .merged(json: json))
            reload()
            return true
        } catch {
            errorMessage = ErrorText.describe(error)
            reload()
            return false
        }
    }

    /// Drops a refused change: the record goes back to the server's state (or disappears when
    /// the server never had it).
    func discard(_ item: RejectedItem) {
        do {
            try tandem.discardRejected(opId: item.change.opId)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
        reload()
    }

    /// The current name of a record, for titles and reference fields.
    nonisolated private static func name(in tandem: Tandem, collection: String, id: String) -> String? {
        guard let record = try? tandem.get(collection: collection, id: id),
              let document = ConflictPresentation.object(record.document)
        else {
            return nil
        }
        return (document["name"] as? String) ?? (document["title"] as? String)
    }
}
