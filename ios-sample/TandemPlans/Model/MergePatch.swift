// Edits go to the engine as RFC 7386 merge patches holding only the fields that changed.

import Foundation

/// Builds top-level JSON merge patches between two versions of a document.
///
/// Sending only what the user changed matters for sync: when another device edited a different
/// field meanwhile, the engine's three-way merge keeps both edits, whereas a whole-document `put`
/// of this screen's copy would send the other field's old value back as a change of its own.
enum MergePatch {
    /// The merge patch turning `old` into `new`, as JSON text, or nil when they encode equally.
    /// Fields present in `old` but absent in `new` (a cleared optional) become `null`, which
    /// removes them.
    static func between<T: Encodable>(_ old: T, _ new: T) throws -> String? {
        let before = try jsonObject(old)
        let after = try jsonObject(new)
        var patch: [String: Any] = [:]
        for (key, value) in after where !equal(before[key], value) {
            patch[key] = value
        }
        for key in before.keys where after[key] == nil {
            patch[key] = NSNull()
        }
        if patch.isEmpty {
            return nil
        }
        let data = try JSONSerialization.data(withJSONObject: patch, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// `value` encoded and read back as a JSON object.
    static func jsonObject<T: Encodable>(_ value: T) throws -> [String: Any] {
        let data = try JSONEncoder().encode(value)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw EncodingError.invalidValue(
                value, EncodingError.Context(codingPath: [], debugDescription: "a document must encode as a JSON object")
            )
        }
        return object
    }

    /// Foundation's JSON values are all NSObjects, whose `isEqual` compares nested arrays and
    /// objects by value.
    private static func equal(_ lhs: Any?, _ rhs: Any) -> Bool {
        guard let lhs = lhs as? NSObject, let rhs = rhs as? NSObject else {
            return false
        }
        return lhs.isEqual(rhs)
    }
}

/// Moving list rows, with the semantics of SwiftUI's `onMove` (`destination` is an offset in
/// the list before the move), kept here so the models stay free of SwiftUI and testable.
enum Reorder {
    static func moved<T>(_ items: [T], from source: IndexSet, to destination: Int) -> [T] {
        let moving = source.filter { $0 < items.count }.map { items[$0] }
        var rest: [T] = []
        for (index, item) in items.enumerated() where !source.contains(index) {
            rest.append(item)
        }
        let before = source.filter { $0 < destination }.count
        let insertAt = min(max(destination - before, 0), rest.count)
        rest.insert(contentsOf: moving, at: insertAt)
        return rest
    }
}
