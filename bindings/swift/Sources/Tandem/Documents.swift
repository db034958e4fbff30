// Hand-written Codable helpers: documents cross the FFI as JSON text (`Record.document`, the
// `json` of `put`), so Swift types that are `Codable` can be stored and read directly.

import Foundation

extension Record {
    /// Decodes the record's document as `T`.
    ///
    /// - Parameter decoder: configure it for dates and keys the way the documents were encoded
    ///   (a plain `JSONDecoder` by default).
    public func decode<T: Decodable>(_ type: T.Type = T.self, using decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(T.self, from: Data(document.utf8))
    }
}

/// Encodes values as the JSON text Tandem's API takes.
public enum TandemJSON {
    /// `value` as JSON text, e.g. a document for `put` or a merge patch for `patch`.
    public static func encode<T: Encodable>(_ value: T, using encoder: JSONEncoder = JSONEncoder()) throws -> String {
        let data = try encoder.encode(value)
        // JSONEncoder writes UTF-8, so this never falls back.
        return String(decoding: data, as: UTF8.self)
    }
}

extension Tandem {
    /// Creates or replaces a whole document, encoded from `document`; generates a UUID v7 id when
    /// `id` is nil. Throws `EncodingError` if `document` cannot be encoded, else as `put(collection:id:json:)`.
    @discardableResult
    public func put<T: Encodable>(
        collection: String, id: String? = nil, document: T, encoder: JSONEncoder = JSONEncoder()
    ) throws -> Record {
        try put(collection: collection, id: id, json: TandemJSON.encode(document, using: encoder))
    }

    /// Applies `patch`, encoded as an RFC 7386 JSON merge patch (`nil` optionals are left out by
    /// `JSONEncoder`, so they leave fields untouched; use the JSON-text `patch` to remove fields).
    @discardableResult
    public func patch<T: Encodable>(
        collection: String, id: String, patch: T, encoder: JSONEncoder = JSONEncoder()
    ) throws -> Record {
        try self.patch(collection: collection, id: id, patchJson: TandemJSON.encode(patch, using: encoder))
    }

    /// The record's document decoded as `T`, or nil when the record does not exist.
    public func get<T: Decodable>(
        _ type: T.Type, collection: String, id: String, decoder: JSONDecoder = JSONDecoder()
    ) throws -> T? {
        try get(collection: collection, id: id)?.decode(T.self, using: decoder)
    }

    /// The documents of the records matching `query`, decoded as `T`.
    public func query<T: Decodable>(
        _ type: T.Type, collection: String, query: Query = Query(), decoder: JSONDecoder = JSONDecoder()
    ) throws -> [T] {
        try self.query(collection: collection, query: query).map { try $0.decode(T.self, using: decoder) }
    }
}

extension TandemCollection {
    /// The record's document decoded as `T`, or nil when the record does not exist.
    public func get<T: Decodable>(_ type: T.Type, id: String, decoder: JSONDecoder = JSONDecoder()) throws -> T? {
        try get(id: id)?.decode(T.self, using: decoder)
    }

    /// The documents of the records matching `query`, decoded as `T`.
    public func query<T: Decodable>(
        _ type: T.Type, query: Query = Query(), decoder: JSONDecoder = JSONDecoder()
    ) throws -> [T] {
        try self.query(query: query).map { try $0.decode(T.self, using: decoder) }
    }
}

extension WriteOp {
    /// A put of `document` (encoded as JSON) for `Tandem.write`.
    public static func put<T: Encodable>(
        collection: String, id: String? = nil, document: T, encoder: JSONEncoder = JSONEncoder()
    ) throws -> WriteOp {
        let json = try TandemJSON.encode(document, using: encoder)
        return .put(collection: collection, id: id, json: json)
    }
}

extension Filter {
    /// `field <op> value`, with `value` encoded as JSON (a string, number, bool, or an array for
    /// `.in`).
    public init<V: Encodable>(field: String, op: FilterOp, value: V) throws {
        let valueJson = try TandemJSON.encode(value)
        self.init(field: field, op: op, valueJson: valueJson)
    }
}
