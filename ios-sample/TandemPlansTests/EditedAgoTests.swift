import Foundation
import Tandem
import XCTest
@testable import TandemPlans

/// The "edited 2 min ago" label the plan screens show from a record's `editedAt`.
final class EditedAgoTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1800000000)

    func testLabelsRoundDownToTheLargestWholeUnit() {
        XCTAssertEqual(EditedAgo.text(now.addingTimeInterval(-59), now: now), "edited just now")
        XCTAssertEqual(EditedAgo.text(now.addingTimeInterval(-150), now: now), "edited 2 min ago")
        XCTAssertEqual(EditedAgo.text(now.addingTimeInterval(-200 * 60), now: now), "edited 3 h ago")
        XCTAssertEqual(EditedAgo.text(now.addingTimeInterval(-30 * 3600), now: now), "edited yesterday")
        XCTAssertEqual(EditedAgo.text(now.addingTimeInterval(-4 * 86400), now: now), "edited 4 days ago")
        XCTAssertEqual(EditedAgo.text(now.addingTimeInterval(30), now: now), "edited just now")
        XCTAssertNil(EditedAgo.text(nil, now: now))
    }

    func testAPlanCarriesItsRecordsEditTime() throws {
        let edited = now.addingTimeInterval(-120)
        let record = Record(
            collection: "plans", id: "p", document: #"{"name":"Legs"}"#, version: 3, state: .synced,
            createdAt: now, updatedAt: now, editedAt: edited
        )
        let plan = try Plan(record: record)
        XCTAssertEqual(plan.editedAt, edited)
        XCTAssertEqual(EditedAgo.text(plan.editedAt, now: now), "edited 2 min ago")
    }
}
