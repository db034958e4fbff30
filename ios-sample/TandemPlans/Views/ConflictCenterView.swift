// The Sync tab: conflicts to settle and changes the server refused.

import SwiftUI
import Tandem

/// Conflicts waiting for a decision and refused changes, both live.
struct ConflictCenterView: View {
    @State private var model: ConflictCenterModel
    @State private var changeToDiscard: RejectedItem?

    init(tandem: Tandem) {
        _model = State(initialValue: ConflictCenterModel(tandem: tandem))
    }

    var body: some View {
        List {
            Section {
                if model.conflicts.isEmpty {
                    Label("No conflicts", systemImage: "checkmark.circle")
                        .foregroundStyle(.secondary)
                }
                ForEach(model.conflicts) { item in
                    NavigationLink {
                        ConflictDetailView(model: model, itemId: item.id)
                    } label: {
                        VStack(alignment: .leading, spacing: 3) {
                            Text(item.title)
                                .font(.headline)
                            Text(item.reason)
                                .font(.subheadline)
                                .foregroundStyle(.secondary)
                        }
                    }
                }
            } header: {
                Text("Conflicts")
            } footer: {
                Text("Edits that collided with another device's and could not be merged field by field.")
            }

            Section {
                if model.rejected.isEmpty {
                    Label("No refused changes", systemImage: "checkmark.circle")
                        .foregroundStyle(.secondary)
                }
                ForEach(model.rejected) { item in
                    VStack(alignment: .leading, spacing: 4) {
                        HStack {
                            Text(item.title)
                                .font(.headline)
                            Spacer()
                            Text(item.kind)
                                .font(.caption)
                                .foregroundStyle(.secondary)
                        }
                        Text(item.reason)
                            .font(.subheadline)
                            .foregroundStyle(.red)
                        Text(item.change.createdAt.formatted(date: .abbreviated, time: .shortened))
                            .font(.caption)
                            .foregroundStyle(.secondary)
                        Button("Discard", role: .destructive) {
                            changeToDiscard = item
                        }
                        .buttonStyle(.bordered)
                        .controlSize(.small)
                    }
                    .padding(.vertical, 2)
                }
            } header: {
                Text("Refused by the Server")
            } footer: {
                Text("A refused change does not hold up the others. Discarding it puts the record back "
                    + "as the server has it; editing the record instead sends a new change.")
            }
        }
        .navigationTitle("Sync")
        .refreshable {
            // The action is a @Sendable closure, not main-actor isolated: the hop needs `await`.
            await model.reload()
        }
        .confirmationDialog(
            "Discard this change?",
            isPresented: Binding(get: { changeToDiscard != nil }, set: { if !$0 { changeToDiscard = nil } }),
            titleVisibility: .visible,
            presenting: changeToDiscard
        ) { item in
            Button("Discard Change", role: .destructive) {
                model.discard(item)
            }
        } message: { item in
            Text("\(item.title) goes back to the server's version, or disappears if the server never had it.")
        }
        .errorAlert($model.errorMessage)
        .task {
            await model.run()
        }
    }
}

/// One conflict: both versions side by side, field by field, and the ways to settle it (for a
/// unique key also Keep Both, with a field for this record's new key).
struct ConflictDetailView: View {
    let model: ConflictCenterModel
    let itemId: String
    @Environment(\.dismiss) private var dismiss
    /// Keep Both's new value of the key's field; starts as the suggestion ("/a (2)").
    @State private var newKey: String?

    var body: some View {
        if let item = model.conflict(withId: itemId) {
            ScrollView {
                VStack(alignment: .leading, spacing: 16) {
                    VStack(alignment: .leading, spacing: 4) {
                        Text(item.title)
                            .font(.title3.weight(.semibold))
                        Text(item.reason)
                            .foregroundStyle(.secondary)
                    }
                    comparison(item)
                    choices(item)
                }
                .padding()
            }
            .navigationTitle("Conflict")
            .navigationBarTitleDisplayMode(.inline)
        } else {
            // Resolved (here, or settled by a later sync): nothing left to decide.
            ContentUnavailableView(
                "Resolved",
                systemImage: "checkmark.circle",
                description: Text("This conflict is settled; the result goes up with the next sync.")
            )
        }
    }

    private func comparison(_ item: ConflictItem) -> some View {
        Grid(alignment: .topLeading, horizontalSpacing: 12, verticalSpacing: 10) {
            GridRow {
                Text("Field")
                Text("This device")
                Text("Server")
            }
            .font(.caption.weight(.semibold))
            .foregroundStyle(.secondary)
            Divider()
            ForEach(item.rows) { row in
                GridRow {
                    HStack(spacing: 4) {
                        if row.isConflicting {
                            Image(systemName: "exclamationmark.triangle.fill")
                                .foregroundStyle(.orange)
                                .font(.caption)
                        }
                        Text(row.label)
                            .font(.subheadline.weight(.medium))
                    }
                    value(row.mine, highlighted: row.differs)
                    value(row.server, highlighted: row.differs)
                }
            }
        }
        .padding()
        .background(Color(uiColor: .secondarySystemBackground), in: RoundedRectangle(cornerRadius: 12, style: .continuous))
    }

    private func value(_ text: String, highlighted: Bool) -> some View {
        Text(text)
            .font(.subheadline)
            .fontWeight(highlighted ? .semibold : .regular)
            .foregroundStyle(highlighted ? Color.primary : Color.secondary)
            .frame(maxWidth: .infinity, alignment: .leading)
            .fixedSize(horizontal: false, vertical: true)
    }

    private func choices(_ item: ConflictItem) -> some View {
        VStack(spacing: 10) {
            if let existing = item.existingId {
                Text("The key is held by \(existing) on the server.")
                    .font(.footnote)
                    .foregroundStyle(.secondary)
            }
            Button {
                if model.resolve(item, keepMine: true) {
                    dismiss()
                }
            } label: {
                Text(item.isUniqueViolation ? "Keep Mine (Replace Theirs)" : item.localDeleted ? "Keep Mine (Delete It)" : "Keep Mine")
                    .frame(maxWidth: .infinity)
            }
            .buttonStyle(.borderedProminent)
            Button {
                if model.resolve(item, keepMine: false) {
                    dismiss()
                }
            } label: {
                Text(item.isUniqueViolation ? "Keep Theirs (Drop Mine)" : item.serverDeleted ? "Keep Server (Delete It)" : "Keep Server")
                    .frame(maxWidth: .infinity)
            }
            .buttonStyle(.bordered)
            if let field = item.keepBothField {
                keepBoth(item, field: field)
            }
            Text("Either way the record is settled at once; the choice reaches other devices with the next sync.")
                .font(.footnote)
                .foregroundStyle(.secondary)
        }
        .controlSize(.large)
    }

    /// Keep Both: this record stays too, under the key typed here.
    private func keepBoth(_ item: ConflictItem, field: String) -> some View {
        let label = ConflictPresentation.label(field)
        let text = Binding(get: { newKey ?? item.keepBothSuggestion }, set: { newKey = $0 })
        return VStack(alignment: .leading, spacing: 6) {
            Text("Or keep both, this one with a new \(label):")
                .font(.footnote)
                .foregroundStyle(.secondary)
            TextField("New \(label)", text: text)
                .textFieldStyle(.roundedBorder)
                .textInputAutocapitalization(.never)
                .autocorrectionDisabled()
            Button {
                if model.keepBoth(item, field: field, value: text.wrappedValue) {
                    dismiss()
                }
            } label: {
                Text("Keep Both")
                    .frame(maxWidth: .infinity)
            }
            .buttonStyle(.bordered)
            .disabled(text.wrappedValue.trimmingCharacters(in: .whitespaces).isEmpty)
        }
    }
}
