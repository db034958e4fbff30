// A plan with its days: reorder, add and delete days; edit, archive or delete the plan.

import SwiftUI
import Tandem

/// One plan, live: edits made on another device show up as they sync.
struct PlanDetailView: View {
    @State private var model: PlanDetailModel
    @State private var isEditing = false
    @State private var isConfirmingDelete = false
    @Environment(\.dismiss) private var dismiss

    init(tandem: Tandem, planId: String) {
        _model = State(initialValue: PlanDetailModel(tandem: tandem, planId: planId))
    }

    var body: some View {
        content
            .navigationTitle(model.plan?.name ?? "Plan")
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                if model.plan != nil {
                    ToolbarItem(placement: .topBarTrailing) {
                        EditButton()
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
                        NavigationLink(value: DayRoute(dayId: day.id)) {
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
                    .onMove { source, destination in
                        model.moveDays(from: source, to: destination)
                    }
                    .onDelete { offsets in
                        model.deleteDays(at: offsets)
                    }
                    Button {
                        model.addDay()
                    } label: {
                        Label("Add Day", systemImage: "plus.circle")
                    }
                } header: {
                    Text("Days")
                } footer: {
                    Text("Drag to reorder in Edit mode; swipe to delete a day.")
                }
            }
        } else {
            ProgressView()
        }
    }

    private var actionsMenu: some View {
        Menu {
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
            if model.plan?.recordState == .pending {
                Button {
                    model.revertChanges()
                } label: {
                    Label("Undo Unsynced Changes", systemImage: "arrow.uturn.backward")
                }
            }
            Button(role: .destructive) {
                isConfirmingDelete = true
            } label: {
                Label("Delete Plan", systemImage: "trash")
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
