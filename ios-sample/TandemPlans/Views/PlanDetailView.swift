// A plan with its days: reorder, add and delete days; edit, archive or delete the plan; share
// it, see who it is shared with, leave it. A viewer sees it "View only", without editing controls.

import SwiftUI
import Tandem

/// One plan, live: edits made on another device show up as they sync.
struct PlanDetailView: View {
    @State private var model: PlanDetailModel
    @State private var isEditing = false
    @State private var isConfirmingDelete = false
    @State private var isSharing = false
    @State private var isConfirmingLeave = false
    @Environment(\.dismiss) private var dismiss
    private let tandem: Tandem

    init(tandem: Tandem, planId: String) {
        self.init(tandem: tandem, plan: .personal(planId))
    }

    init(tandem: Tandem, plan: PlanRef) {
        self.tandem = tandem
        _model = State(initialValue: PlanDetailModel(tandem: tandem, plan: plan))
    }

    var body: some View {
        content
            .navigationTitle(model.plan?.name ?? "Plan")
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                if model.plan != nil {
                    if !model.isViewOnly {
                        ToolbarItem(placement: .topBarTrailing) {
                            EditButton()
                        }
                    }
                    ToolbarItem(placement: .topBarTrailing) {
                        actionsMenu
                    }
                }
            }
            .sheet(isPresented: $isEditing) {
                if let plan = model.plan {
                    PlanEditorView(title: "Edit Plan", form: PlanForm(plan: plan)) { form in
                        try model.save(form)
                    }
                }
            }
            .sheet(isPresented: $isSharing) {
                ShareSheetView(tandem: tandem, plan: model.ref) { moved in
                    // Sharing moved a personal plan into a space: it is under "Shared" now.
                    if moved != model.ref {
                        dismiss()
                    }
                }
            }
            .confirmationDialog("Leave this plan?", isPresented: $isConfirmingLeave, titleVisibility: .visible) {
                Button("Leave", role: .destructive) {
                    Task {
                        if await model.leave() {
                            dismiss()
                        }
                    }
                }
            } message: {
                Text("The plan leaves this device. To see it again, an owner has to invite you again.")
            }
            .confirmationDialog("Delete this plan?", isPresented: $isConfirmingDelete, titleVisibility: .visible) {
                Button("Delete Plan", role: .destructive) {
                    model.deletePlan()
                    dismiss()
                }
            } message: {
                Text(model.days.isEmpty
                    ? "It is deleted on every device once synced."
                    : "Its \(model.days.count) day(s) go with it, on every device once synced.")
            }
            .errorAlert($model.errorMessage)
            .task {
                await model.run()
            }
    }

    @ViewBuilder
    private var content: some View {
        if model.isDeleted {
            ContentUnavailableView(
                "Plan Deleted",
                systemImage: "trash",
                description: Text("This plan was deleted, here or on another device.")
            )
        } else if model.isUnreadable {
            ContentUnavailableView(
                "Cannot Show This Plan",
                systemImage: "questionmark.folder",
                description: Text("Another client wrote it in a form this app does not read.")
            )
        } else if let plan = model.plan {
            List {
                Section {
                    if let space = model.space {
                        Label(
                            "Shared with \(model.sharedWith) · you: \(space.role.label)" + (model.isViewOnly ? " · View only" : ""),
                            systemImage: model.isViewOnly ? "eye" : "person.2"
                        )
                        .font(.footnote)
                        .foregroundStyle(.secondary)
                    }
                    if let notes = plan.notes, !notes.isEmpty {
                        Text(notes)
                    }
                    if let edited = EditedAgo.text(plan.editedAt) {
                        Text(edited)
                            .font(.footnote)
                            .foregroundStyle(.secondary)
                    }
                    if plan.isArchived {
                        Label("Archived", systemImage: "archivebox")
                            .foregroundStyle(.secondary)
                    }
                    if plan.recordState != .synced {
                        HStack {
                            RecordStateBadge(state: plan.recordState)
                            Text(stateText(plan.recordState))
                                .font(.footnote)
                                .foregroundStyle(.secondary)
                        }
                    }
                }
                Section {
                    ForEach(Array(model.days.enumerated()), id: \.element.id) { position, day in
                        NavigationLink(value: DayRoute(dayId: day.id, collection: model.ref.daysCollection)) {
                            VStack(alignment: .leading, spacing: 3) {
                                HStack {
                                    Text(day.displayTitle(position: position))
                                        .font(.headline)
                                    RecordStateBadge(state: day.recordState)
                                }
                                Text(model.exerciseSummary(of: day))
                                    .font(.subheadline)
                                    .foregroundStyle(.secondary)
                                    .lineLimit(2)
                            }
                        }
                    }
                    .onMove(perform: model.isViewOnly ? nil : { source, destination in
                        model.moveDays(from: source, to: destination)
                    })
                    .onDelete(perform: model.isViewOnly ? nil : { offsets in
                        model.deleteDays(at: offsets)
                    })
                    if !model.isViewOnly {
                        Button {
                            model.addDay()
                        } label: {
                            Label("Add Day", systemImage: "plus.circle")
                        }
                    }
                } header: {
                    Text("Days")
                } footer: {
                    Text(model.isViewOnly
                        ? "View only: you can see this plan but not change it."
                        : "Drag to reorder in Edit mode; swipe to delete a day.")
                }
            }
        } else {
            ProgressView()
        }
    }

    private var actionsMenu: some View {
        Menu {
            Button {
                isSharing = true
            } label: {
                Label("Share", systemImage: "person.crop.circle.badge.plus")
            }
            if !model.isViewOnly {
                Button {
                    isEditing = true
                } label: {
                    Label("Edit Name and Notes", systemImage: "pencil")
                }
                Button {
                    model.setArchived(!(model.plan?.isArchived ?? false))
                } label: {
                    if model.plan?.isArchived == true {
                        Label("Unarchive", systemImage: "archivebox")
                    } else {
                        Label("Archive", systemImage: "archivebox")
                    }
                }
            }
            if model.plan?.recordState == .pending {
                Button {
                    model.revertChanges()
                } label: {
                    Label("Undo Unsynced Changes", systemImage: "arrow.uturn.backward")
                }
            }
            if model.ref.isShared {
                Button(role: .destructive) {
                    isConfirmingLeave = true
                } label: {
                    Label("Leave", systemImage: "rectangle.portrait.and.arrow.right")
                }
            }
            if !model.isViewOnly {
                Button(role: .destructive) {
                    isConfirmingDelete = true
                } label: {
                    Label("Delete Plan", systemImage: "trash")
                }
            }
        } label: {
            Label("Actions", systemImage: "ellipsis.circle")
        }
    }

    private func stateText(_ state: RecordState) -> String {
        switch state {
        case .synced: return "Synced"
        case .pending: return "Changes waiting to sync"
        case .conflicted: return "In conflict: see the Sync tab"
        case .rejected: return "Refused by the server: see the Sync tab"
        }
    }
}
