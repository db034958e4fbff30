// The Plans tab: live list of plans, archived ones in their own section.

import SwiftUI
import Tandem

/// A plan to show (navigation value): personal, or shared (with its space).
struct PlanRoute: Hashable {
    let planId: String
    var spaceId: String?

    var ref: PlanRef { PlanRef(id: planId, spaceId: spaceId) }
}

/// A day to edit (navigation value), in `plan_days` or `shared_plan_days`.
struct DayRoute: Hashable {
    let dayId: String
    var collection: String = PlanDay.collection
}

/// The list of plans. It observes the store, so plans created, edited or deleted on another
/// device appear as soon as they are synced, without a refresh.
struct PlansListView: View {
    private let tandem: Tandem
    @State private var store: PlansStore
    @State private var spaces: SpacesModel
    @State private var isCreating = false
    @State private var planToDelete: Plan?

    init(tandem: Tandem) {
        self.tandem = tandem
        _store = State(initialValue: PlansStore(tandem: tandem))
        _spaces = State(initialValue: SpacesModel(tandem: tandem))
    }

    var body: some View {
        List {
            if !spaces.invitations.isEmpty {
                Section {
                    ForEach(spaces.invitations, id: \.id) { invitation in
                        invitationBanner(invitation)
                    }
                }
            }
            Section(spaces.sharedPlans.isEmpty ? "" : "My plans") {
                ForEach(store.activePlans) { plan in
                    planRow(plan)
                }
            }
            let shared = spaces.sharedPlans.filter { store.showArchived || !$0.plan.isArchived }
            if !shared.isEmpty {
                Section("Shared") {
                    ForEach(shared) { row in
                        sharedRow(row)
                    }
                }
            }
            if store.showArchived, !store.archivedPlans.isEmpty {
                Section("Archived") {
                    ForEach(store.archivedPlans) { plan in
                        planRow(plan)
                    }
                }
            }
            if store.skipped > 0 {
                Section {
                    Text("\(store.skipped) plan(s) written by another client cannot be shown by this app.")
                        .font(.footnote)
                        .foregroundStyle(.secondary)
                }
            }
        }
        .overlay {
            if store.isLoaded, store.activePlans.isEmpty, spaces.sharedPlans.isEmpty, spaces.invitations.isEmpty,
               !(store.showArchived && !store.archivedPlans.isEmpty) {
                ContentUnavailableView {
                    Label("No Plans", systemImage: "list.bullet.clipboard")
                } description: {
                    Text("Create a training plan, or sign in on another device and watch it appear here.")
                } actions: {
                    Button("New Plan") { isCreating = true }
                }
            }
        }
        .navigationTitle("Plans")
        .navigationDestination(for: PlanRoute.self) { route in
            PlanDetailView(tandem: tandem, plan: route.ref)
        }
        .navigationDestination(for: DayRoute.self) { route in
            DayEditorView(tandem: tandem, dayId: route.dayId, collection: route.collection)
        }
        .toolbar {
            ToolbarItem(placement: .topBarLeading) {
                Toggle(isOn: $store.showArchived) {
                    Label("Show Archived", systemImage: "archivebox")
                }
                .toggleStyle(.button)
                .disabled(store.archivedPlans.isEmpty && !store.showArchived)
            }
            ToolbarItem(placement: .topBarTrailing) {
                Button {
                    isCreating = true
                } label: {
                    Label("New Plan", systemImage: "plus")
                }
            }
        }
        .sheet(isPresented: $isCreating) {
            PlanEditorView(title: "New Plan", form: PlanForm()) { form in
                _ = try store.create(form)
            }
        }
        .confirmationDialog(
            "Delete this plan?",
            isPresented: Binding(get: { planToDelete != nil }, set: { if !$0 { planToDelete = nil } }),
            titleVisibility: .visible,
            presenting: planToDelete
        ) { plan in
            Button("Delete “\(plan.name)”", role: .destructive) {
                store.delete(plan)
            }
        } message: { plan in
            Text(deleteMessage(for: plan))
        }
        .errorAlert($store.errorMessage)
        .errorAlert($spaces.errorMessage)
        .task {
            await store.run()
        }
        .task {
            await spaces.run()
        }
    }

    /// "coach@… invited you to 'Legs' as viewer — Accept / Decline".
    private func invitationBanner(_ invitation: Invitation) -> some View {
        VStack(alignment: .leading, spacing: 6) {
            Text(invitation.bannerText)
                .font(.subheadline)
            HStack {
                Button("Decline", role: .destructive) {
                    Task { await spaces.decline(invitation) }
                }
                Spacer()
                Button("Accept") {
                    Task { await spaces.accept(invitation) }
                }
                .buttonStyle(.borderedProminent)
            }
            .buttonStyle(.borderless)
        }
        .padding(.vertical, 4)
    }

    private func sharedRow(_ row: SharedPlanRow) -> some View {
        NavigationLink(value: PlanRoute(planId: row.plan.id, spaceId: row.ref.spaceId)) {
            VStack(alignment: .leading, spacing: 3) {
                HStack {
                    Text(row.plan.name)
                        .font(.headline)
                    RecordStateBadge(state: row.plan.recordState)
                }
                Text(sharedSummary(of: row))
                    .font(.subheadline)
                    .foregroundStyle(.secondary)
                    .lineLimit(2)
            }
            .padding(.vertical, 2)
        }
    }

    private func sharedSummary(of row: SharedPlanRow) -> String {
        var parts: [String] = []
        if let role = row.role {
            parts.append("you: \(role.label)")
        }
        parts.append("shared with \(row.sharedWith)")
        if let edited = EditedAgo.text(row.plan.editedAt) {
            parts.append(edited)
        }
        return parts.joined(separator: " · ")
    }

    private func planRow(_ plan: Plan) -> some View {
        NavigationLink(value: PlanRoute(planId: plan.id)) {
            VStack(alignment: .leading, spacing: 3) {
                HStack {
                    Text(plan.name)
                        .font(.headline)
                    RecordStateBadge(state: plan.recordState)
                }
                Text(summary(of: plan))
                    .font(.subheadline)
                    .foregroundStyle(.secondary)
                    .lineLimit(2)
            }
            .padding(.vertical, 2)
        }
        .swipeActions(edge: .trailing) {
            Button(role: .destructive) {
                planToDelete = plan
            } label: {
                Label("Delete", systemImage: "trash")
            }
            Button {
                store.setArchived(plan, !plan.isArchived)
            } label: {
                Label(plan.isArchived ? "Unarchive" : "Archive", systemImage: "archivebox")
            }
            .tint(.indigo)
        }
    }

    private func summary(of plan: Plan) -> String {
        let count = store.dayCount(of: plan)
        let days = count == 1 ? "1 day" : "\(count) days"
        let edited = EditedAgo.text(plan.editedAt).map { " · \($0)" } ?? ""
        if let notes = plan.notes, !notes.isEmpty {
            return "\(days) · \(notes)\(edited)"
        }
        return days + edited
    }

    private func deleteMessage(for plan: Plan) -> String {
        let count = store.dayCount(of: plan)
        if count == 0 {
            return "The plan is deleted on every device once synced."
        }
        return "Its \(count == 1 ? "day goes" : "\(count) days go") with it, on every device once synced."
    }
}

/// A small marker for records that are not in step with the server.
struct RecordStateBadge: View {
    let state: RecordState

    var body: some View {
        switch state {
        case .synced:
            EmptyView()
        case .pending:
            Image(systemName: "arrow.up.circle")
                .foregroundStyle(.orange)
                .accessibilityLabel("Waiting to sync")
        case .conflicted:
            Image(systemName: "exclamationmark.triangle.fill")
                .foregroundStyle(.yellow)
                .accessibilityLabel("In conflict")
        case .rejected:
            Image(systemName: "xmark.octagon.fill")
                .foregroundStyle(.red)
                .accessibilityLabel("Refused by the server")
        }
    }
}
