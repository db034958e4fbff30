// Shared plans and the public catalog, on a local-only engine (the flows with a server are
// covered by the Android state layer's SharedPlanTest and the engine's own tests).

import Foundation
import Tandem
import XCTest
@testable import TandemPlans

@MainActor
final class SharedPlanTests: XCTestCase {
    func testPlanRefsNameTheirCollectionPair() {
        let personal = PlanRef.personal("p1")
        XCTAssertFalse(personal.isShared)
        XCTAssertEqual(personal.collection, "plans")
        XCTAssertEqual(personal.daysCollection, "plan_days")
        let shared = PlanRef(id: "p1", spaceId: "s1")
        XCTAssertTrue(shared.isShared)
        XCTAssertEqual(shared.collection, "shared_plans")
        XCTAssertEqual(shared.daysCollection, "shared_plan_days")
    }

    func testTheBannerSaysWhoInvitedToWhatAsWhat() {
        let invitation = Invitation(
            id: "i1", spaceId: "s1", spaceName: "Legs", role: .viewer, invitedBy: "coach@example.com",
            createdAt: Date(), expiresAt: Date().addingTimeInterval(14 * 86_400)
        )
        XCTAssertEqual(invitation.bannerText, "coach@example.com invited you to ‘Legs’ as viewer")
    }

    func testASharedRowCountsTheOtherMembers() {
        let space = Space(id: "s1", name: "Legs", role: .viewer, memberCount: 3, createdAt: Date())
        let row = SharedPlanRow(plan: Plan(name: "Legs"), ref: PlanRef(id: "p1", spaceId: "s1"), space: space)
        XCTAssertEqual(row.sharedWith, 2)
        XCTAssertTrue(row.isViewOnly)
        let unknown = SharedPlanRow(plan: Plan(name: "Legs"), ref: PlanRef(id: "p1", spaceId: "s1"), space: nil)
        XCTAssertEqual(unknown.sharedWith, 0)
        XCTAssertFalse(unknown.isViewOnly)
    }

    func testThePublicCatalogIsReadOnly() throws {
        let tandem = try makeLocalTandem()
        XCTAssertThrowsError(
            try tandem.put(collection: CollectionName.catalogExercises, document: Exercise(name: "Mine"))
        ) { error in
            guard case .Validation(.readOnly, _, _, _, _) = error as? TandemError else {
                return XCTFail("expected a read-only validation error, got \(error)")
            }
            XCTAssertEqual(
                ErrorText.describe(error),
                "The exercise catalog comes from the server and cannot be changed here."
            )
        }
    }

    func testAPersonalPlanHasNoSpaceAndIsNotViewOnly() async throws {
        let tandem = try makeLocalTandem()
        let plan = try Plan(record: tandem.put(collection: Plan.collection, document: Plan(name: "Legs")))
        let model = PlanDetailModel(tandem: tandem, planId: plan.id)
        let task = start { await model.run() }
        defer { task.cancel() }
        try await waitUntil("the plan") { model.plan != nil }
        XCTAssertNil(model.space)
        XCTAssertFalse(model.isViewOnly)
        XCTAssertFalse(model.ref.isShared)
        let sheet = ShareSheetModel(tandem: tandem, plan: model.ref)
        XCTAssertTrue(sheet.canManage)
    }
}
