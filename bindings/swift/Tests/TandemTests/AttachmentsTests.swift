// Attachments through the generated async functions and `attachmentStateStream`, against a real
// tandem-server started for this class; mirrors
// bindings/kotlin/src/test/kotlin/dev/tandem/AttachmentsTest.kt.

import CryptoKit
import Foundation
import XCTest
@testable import Tandem

final class AttachmentsTests: XCTestCase {
    private static let password = "correct horse battery staple"
    /// Over `photos`' eager prefetch limit (1,000,000 bytes) and over one 8 MiB chunk.
    private static let size = 9 * 1024 * 1024
    private static var server: TandemServer?
    private var dir: URL!
    private var devices: [Tandem] = []

    override func setUpWithError() throws {
        if AttachmentsTests.server == nil {
            AttachmentsTests.server = try TandemServer()
        }
        dir = try temporaryDirectory()
    }

    override func tearDown() {
        for device in devices {
            device.shutdown()
        }
        devices = []
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    private func device(_ name: String) throws -> Tandem {
        let server = try XCTUnwrap(AttachmentsTests.server)
        let device = try server.device(dir.appendingPathComponent(name))
        devices.append(device)
        return device
    }

    private func newEmail() -> String {
        "swift-\(UUID().uuidString.lowercased())@example.com"
    }

    private func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    func testAPhotoAttachedOnOneDeviceOpensOnAnotherItsUploadObserved() async throws {
        let email = newEmail()
        let a = try device("a")
        let b = try device("b")
        _ = try await a.signUp(email: email, password: AttachmentsTests.password)
        _ = try await b.signIn(email: email, password: AttachmentsTests.password)
        var bytes = Data(count: AttachmentsTests.size)
        bytes.withUnsafeMutableBytes { buffer in
            for index in buffer.indices {
                buffer[index] = UInt8.random(in: 0...255)
            }
        }
        let source = dir.appendingPathComponent("climb.jpg")
        try bytes.write(to: source)
        let hash = sha256(bytes)

        _ = try a.put(collection: "photos", id: "p1", json: #"{"caption": "Climb"}"#)
        let record = try await a.attachFile(
            collection: "photos", id: "p1", field: "image", path: source.path, contentType: nil, name: nil
        )
        XCTAssertTrue(record.document.contains(hash))
        try FileManager.default.removeItem(at: source) // the engine keeps its own copy
        XCTAssertEqual(try a.attachmentState(hash: hash), .local)

        // The stream starts with the current state and follows the upload to its end.
        let states = try a.attachmentStateStream(hash: hash)
        let report = try await a.syncNow()
        XCTAssertEqual(report.applied, 1)
        let seen = try await withTimeout(30) { () -> [AttachmentState] in
            var seen: [AttachmentState] = []
            for await state in states {
                seen.append(state)
                if state == .uploaded {
                    break
                }
            }
            return seen
        }
        XCTAssertEqual(seen.last, .uploaded)
        XCTAssertEqual(try a.syncStatus().attachmentsPending, 0)

        _ = try await b.syncNow()
        let reference = try XCTUnwrap(try b.attachmentRef(collection: "photos", id: "p1", field: "image"))
        XCTAssertEqual(
            reference,
            AttachmentRef(hash: hash, size: UInt64(AttachmentsTests.size), contentType: "image/jpeg", name: "climb.jpg")
        )
        XCTAssertEqual(try b.attachmentState(hash: hash), .remote)
        let path = try await b.attachment(reference: reference)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), bytes)
        XCTAssertEqual(try b.attachmentState(hash: hash), .uploaded)
        // A range of the bytes, without a path: across a 64 KiB edge, and at the end.
        let range = try await b.readAttachment(reference: reference, offset: 65_530, length: 30)
        XCTAssertEqual(range, bytes.subdata(in: 65_530..<65_560))
        let size = AttachmentsTests.size
        let tail = try await b.readAttachment(reference: reference, offset: UInt64(size - 4), length: 100)
        XCTAssertEqual(tail, bytes.subdata(in: (size - 4)..<size))
    }

    func testAnotherAccountCannotDownloadAndBadInputIsATypedError() async throws {
        let a = try device("a")
        let other = try device("other")
        _ = try await a.signUp(email: newEmail(), password: AttachmentsTests.password)
        _ = try await other.signUp(email: newEmail(), password: AttachmentsTests.password)
        _ = try a.put(collection: "photos", id: "p1", json: "{}")
        _ = try await a.attachBytes(
            collection: "photos", id: "p1", field: "image", bytes: Data("hello".utf8), contentType: "text/plain", name: "hello.txt"
        )
        _ = try await a.syncNow()
        let reference = try XCTUnwrap(try a.attachmentRef(collection: "photos", id: "p1", field: "image"))

        do {
            _ = try await other.attachment(reference: reference)
            XCTFail("another account downloaded the file")
        } catch let TandemError.Attachment(kind, _) {
            XCTAssertEqual(kind, .notFound)
        }
        do {
            _ = try a.attachmentState(hash: "not-a-hash")
            XCTFail("a malformed hash was accepted")
        } catch TandemError.InvalidArgument {
        }
        _ = try a.put(collection: "photos", id: "p2", json: "{}")
        XCTAssertNil(try a.attachmentRef(collection: "photos", id: "p2", field: "image"))
    }
}
