// Shared plans: a plan lives in a space of its own once shared; the people it is shared with
// are the space's members (owner, editor or viewer). The space list and pending invitations are
// live; managing members needs the server (those calls throw a sync error offline).

import Foundation
import Observation
import Tandem

extension CollectionName {
    /// Plans in a space (`"scope": "space"`).
    static let sharedPlans = "shared_plans"
    /// Their days (a child collection: in the same space as their plan).
    static let sharedPlanDays = "shared_plan_days"
    /// The public exercise catalog (`"scope": "public"`): seeded by the server, read-only here.
    static let catalogExercises = "catalog_exercises"
}

/// Which plan: a personal one (`plans`/`plan_days`) or one in a space
/// (`shared_plans`/`shared_plan_days`). Every plan screen works on either pair.
struct PlanRef: Hashable {
    let id: String
    /// The space of a shared plan; nil for a personal one.
    let spaceId: String?

    static func personal(_ id: String) -> PlanRef {
        PlanRef(id: id, spaceId: nil)
    }

    var isShared: Bool { spaceId != nil }
    var collection: String { isShared ? CollectionName.sharedPlans : CollectionName.plans }
    var daysCollection: String { isShared ? CollectionName.sharedPlanDays : CollectionName.planDays }
}

extension SpaceRole {
    /// The role as the app says it.
    var label: String {
        switch self {
        case .owner: return "owner"
        case .editor: return "editor"
        case .viewer: return "viewer"
        }
    }
}

extension Invitation {
    /// "coach@… invited you to ‘Legs’ as viewer".
    var bannerText: String {
        "\(invitedBy) invited you to ‘\(spaceName)’ as \(role.label)"
    }
}

/// The user's spaces and invitations as `AsyncStream`s: the current list first, then one per
/// change, newest only; the engine observation ends with the stream (as `observeAsStream`).
enum SpaceUpdates {
    static func spaces(_ tandem: Tandem) throws -> AsyncStream<[Space]> {
        let (stream, continuation) = AsyncStream.makeStream(of: [Space].self, bufferingPolicy: .bufferingNewest(1))
        let subscription = try tandem.observeSpaces(observer: SpacesRelay { continuation.yield($0) })
        continuation.onTermination = { _ in subscription.cancel() }
        return stream
    }

    static func invitations(_ tandem: Tandem) throws -> AsyncStream<[Invitation]> {
        let (stream, continuation) = AsyncStream.makeStream(of: [Invitation].self, bufferingPolicy: .bufferingNewest(1))
        let subscription = try tandem.observeInvitations(observer: InvitationsRelay { continuation.yield($0) })
        continuation.onTermination = { _ in subscription.cancel() }
        return stream
    }
}

private final class SpacesRelay: SpacesObserver {
    private let deliver: @Sendable ([Space]) -> Void

    init(_ deliver: @escaping @Sendable ([Space]) -> Void) {
        self.deliver = deliver
    }

    func onSpaces(spaces: [Space]) {
        deliver(spaces)
    }
}

private final class InvitationsRelay: InvitationsObserver {
    private let deliver: @Sendable ([Invitation]) -> Void

    init(_ deliver: @escaping @Sendable ([Invitation]) -> Void) {
        self.deliver = deliver
    }

    func onInvitations(invitations: [Invitation]) {
        deliver(invitations)
    }
}

/// A shared plan on the plans list, with where the user stands in its space.
struct SharedPlanRow: Identifiable {
    let plan: Plan
    let ref: PlanRef
    let space: Space?

    var id: String { plan.id }
    var role: SpaceRole? { space?.role }
    /// The other members: "Shared with N".
    var sharedWith: Int { max(Int(space?.memberCount ?? 1) - 1, 0) }
    var isViewOnly: Bool { role == .viewer }
}

/// The "Shared" section and the invitations banner of the Plans tab.
@MainActor
@Observable
final class SpacesModel {
    private(set) var spaces: [Space] = []
    private(set) var invitations: [Invitation] = []
    private(set) var sharedPlans: [SharedPlanRow] = []
    var errorMessage: String?

    @ObservationIgnored private var planRecords: [Record] = []
    private let tandem: Tandem

    init(tandem: Tandem) {
        self.tandem = tandem
    }

    /// Observes until cancelled.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.observeSpaces() }
            group.addTask { await self.observeInvitations() }
            group.addTask { await self.observeSharedPlans() }
        }
    }

    private func observeSpaces() async {
        do {
            for await spaces in try SpaceUpdates.spaces(tandem) {
                self.spaces = spaces
                rebuildRows()
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func observeInvitations() async {
        do {
            for await invitations in try SpaceUpdates.invitations(tandem) {
                self.invitations = invitations
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func observeSharedPlans() async {
        do {
            for await records in try tandem.observeAsStream(collection: CollectionName.sharedPlans) {
                planRecords = records
                rebuildRows()
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func rebuildRows() {
        let byId = Dictionary(spaces.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let rows = planRecords.compactMap { record -> SharedPlanRow? in
            guard let plan = try? Plan(record: record), let spaceId = record.spaceId else {
                return nil
            }
            return SharedPlanRow(plan: plan, ref: PlanRef(id: plan.id, spaceId: spaceId), space: byId[spaceId])
        }
        sharedPlans = DisplayOrder.byName(rows) { $0.plan.name }
    }

    /// Accepts; the space's plans arrive with the sync the engine starts.
    func accept(_ invitation: Invitation) async {
        do {
            _ = try await tandem.accept(invitationId: invitation.id)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    func decline(_ invitation: Invitation) async {
        do {
            try await tandem.decline(invitationId: invitation.id)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }
}

/// The share sheet of one plan: invite by email as editor or viewer, the members, and for
/// owners: change a role, remove a member.
@MainActor
@Observable
final class ShareSheetModel {
    /// Where the plan is now: a personal plan moves into a space on its first invitation.
    private(set) var plan: PlanRef
    private(set) var members: [Member] = []
    /// The user's role in the plan's space; nil while the plan is personal.
    private(set) var role: SpaceRole?
    private(set) var isBusy = false
    var errorMessage: String?

    private let tandem: Tandem

    init(tandem: Tandem, plan: PlanRef) {
        self.tandem = tandem
        self.plan = plan
    }

    /// Owners invite and manage; a personal plan's owner is its user.
    var canManage: Bool { role == nil || role == .owner }

    /// Fetches the members (online).
    func refresh() async {
        guard let spaceId = plan.spaceId else {
            return
        }
        do {
            role = try tandem.spaces().first { $0.id == spaceId }?.role
            members = try await tandem.members(spaceId: spaceId).sorted { lhs, rhs in
                lhs.email.localizedStandardCompare(rhs.email) == .orderedAscending
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Invites `email` as `role`; returns whether it worked.
    @discardableResult
    func invite(email: String, role: SpaceRole) async -> Bool {
        isBusy = true
        defer { isBusy = false }
        do {
            if !plan.isShared {
                plan = try await moveIntoNewSpace(plan)
            }
            guard let spaceId = plan.spaceId else {
                return false
            }
            let trimmed = email.trimmingCharacters(in: .whitespacesAndNewlines)
            _ = try await tandem.invite(spaceId: spaceId, email: trimmed, role: role)
            await refresh()
            return true
        } catch {
            errorMessage = ErrorText.describe(error)
            return false
        }
    }

    /// Creates a space named after the plan, then one `write` puts the plan and its days into
    /// the space's collections (same ids) and deletes the personal copies: atomic here and on
    /// the server.
    private func moveIntoNewSpace(_ personal: PlanRef) async throws -> PlanRef {
        guard let record = try tandem.get(collection: personal.collection, id: personal.id) else {
            throw TandemError.NotFound(collection: personal.collection, id: personal.id)
        }
        let name = (try? Plan(record: record).name) ?? "Shared plan"
        let space = try await tandem.createSpace(name: name)
        let ofThisPlan = try Filter(field: "planId", op: .eq, value: personal.id)
        let days = try tandem.query(collection: personal.daysCollection, query: Query(filters: [ofThisPlan]))
        var ops = [WriteOp.put(collection: CollectionName.sharedPlans, id: personal.id, json: record.document, spaceId: space.id)]
        for day in days {
            ops.append(.put(collection: CollectionName.sharedPlanDays, id: day.id, json: day.document, spaceId: space.id))
        }
        // The personal days go with their plan (the schema's parent link).
        ops.append(.delete(collection: personal.collection, id: personal.id))
        _ = try tandem.write(ops: ops)
        role = .owner
        return PlanRef(id: personal.id, spaceId: space.id)
    }

    func setRole(_ member: Member, to role: SpaceRole) async {
        guard let spaceId = plan.spaceId else {
            return
        }
        do {
            try await tandem.setRole(spaceId: spaceId, userId: member.userId, role: role)
            await refresh()
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    func remove(_ member: Member) async {
        guard let spaceId = plan.spaceId else {
            return
        }
        do {
            try await tandem.removeMember(spaceId: spaceId, userId: member.userId)
            await refresh()
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }
}
