// The Codable documents, merge patches and list reordering: pure code, no engine.

import Foundation
import Tandem
import XCTest
@testable import TandemPlans

final class DocumentTests: XCTestCase {
    func testRecordIdAndStateAreAttachedButNeverWrittenIntoTheDocument() throws {
        let plan = try Plan(record: makeRecord("plans", "p1", #"{"name":"Legs","archived":true}"#, state: .pending))
        XCTAssertEqual(plan.id, "p1")
        XCTAssertEqual(plan.recordState, .pending)
        XCTAssertEqual(plan.name, "Legs")
        XCTAssertTrue(plan.isArchived)

        let keys = try MergePatch.jsonObject(plan).keys.sorted()
        XCTAssertEqual(keys, ["archived", "name"])
    }

    func testAMissingArchivedFlagMeansActive() throws {
        let plan = try Plan(record: makeRecord("plans", "p1", #"{"name":"Legs"}"#))
        XCTAssertFalse(plan.isArchived)
    }

    func testUndecodableRecordsAreCountedNotFatal() {
        let decoded = DocumentDecoding.decode(
            [
                makeRecord("plan_days", "d1", #"{"planId":"p","dayIndex":0,"exerciseIds":["e1"]}"#),
                // Another client put numbers in exerciseIds: valid for the schema's untyped
                // array, unreadable as [String].
                makeRecord("plan_days", "d2", #"{"planId":"p","dayIndex":1,"exerciseIds":[1,2]}"#),
            ],
            as: PlanDay.self
        )
        XCTAssertEqual(decoded.items.map(\.id), ["d1"])
        XCTAssertEqual(decoded.skipped, 1)
    }

    func testDayTitlesFallBackToTheirPosition() {
        var day = PlanDay(planId: "p", dayIndex: 4)
        XCTAssertEqual(day.displayTitle(position: 1), "Day 2")
        day.title = "  "
        XCTAssertEqual(day.displayTitle(position: 0), "Day 1")
        day.title = "Upper"
        XCTAssertEqual(day.displayTitle(position: 0), "Upper")
    }

    func testUnchangedDocumentsNeedNoPatch() throws {
        let plan = Plan(id: "p", name: "Legs", notes: "heavy", archived: false)
        XCTAssertNil(try MergePatch.between(plan, plan))
    }

    func testOnlyChangedFieldsAreSent() throws {
        let old = Plan(name: "Legs", notes: "heavy", archived: false)
        var new = old
        new.archived = true
        XCTAssertEqual(try MergePatch.between(old, new), #"{"archived":true}"#)
    }

    func testAClearedOptionalIsRemovedWithNull() throws {
        let old = Plan(name: "Legs", notes: "heavy")
        var new = old
        new.notes = nil
        new.name = "Legs A"
        XCTAssertEqual(try MergePatch.between(old, new), #"{"name":"Legs A","notes":null}"#)
    }

    func testArraysAreReplacedWhole() throws {
        let old = PlanDay(planId: "p", dayIndex: 0, exerciseIds: ["a", "b"])
        var new = old
        new.exerciseIds = ["b", "a"]
        XCTAssertEqual(try MergePatch.between(old, new), #"{"exerciseIds":["b","a"]}"#)
    }

    func testReorderFollowsOnMoveOffsets() {
        let items = ["a", "b", "c", "d"]
        XCTAssertEqual(Reorder.moved(items, from: [0], to: 2), ["b", "a", "c", "d"])
        XCTAssertEqual(Reorder.moved(items, from: [3], to: 0), ["d", "a", "b", "c"])
        XCTAssertEqual(Reorder.moved(items, from: [0, 2], to: 4), ["b", "d", "a", "c"])
        XCTAssertEqual(Reorder.moved(items, from: [1], to: 1), items)
        XCTAssertEqual(Reorder.moved(items, from: [1], to: 2), items)
    }

    func testFormsTrimAndDropBlankOptionalFields() {
        var form = PlanForm()
        XCTAssertNotNil(form.problem)
        form.name = "  Strength A "
        form.notes = "   "
        XCTAssertNil(form.problem)
        let plan = form.applied(to: Plan(name: ""))
        XCTAssertEqual(plan.name, "Strength A")
        XCTAssertNil(plan.notes)

        form.name = String(repeating: "é", count: maxNameLength + 1)
        XCTAssertThrowsError(try form.validate())
    }

    func testServerAddressesAreNormalized() throws {
        XCTAssertEqual(try ServerAddress.normalize(" HTTP://127.0.0.1:8787/ "), "http://127.0.0.1:8787")
        XCTAssertEqual(try ServerAddress.normalize("https://Sync.Example.com/base/"), "https://sync.example.com/base")
        XCTAssertThrowsError(try ServerAddress.normalize("")) { error in
            XCTAssertEqual(error as? ServerAddress.Problem, .empty)
        }
        XCTAssertThrowsError(try ServerAddress.normalize("ftp://example.com")) { error in
            XCTAssertEqual(error as? ServerAddress.Problem, .unsupportedScheme("ftp"))
        }
        XCTAssertThrowsError(try ServerAddress.normalize("127.0.0.1:8787"))
    }
}
