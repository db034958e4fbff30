// The share sheet of a plan: invite by email as editor or viewer, the members and their roles,
// and for owners: change a role or remove a member. Needs the server.

import SwiftUI
import Tandem

struct ShareSheetView: View {
    @State private var model: ShareSheetModel
    @State private var email = ""
    @State private var role: SpaceRole = .editor
    @Environment(\.dismiss) private var dismiss
    /// Called when the sheet closes, with where the plan is now (a personal plan moves into a
    /// space on its first invitation).
    private let onDone: (PlanRef) -> Void

    init(tandem: Tandem, plan: PlanRef, onDone: @escaping (PlanRef) -> Void = { _ in }) {
        _model = State(initialValue: ShareSheetModel(tandem: tandem, plan: plan))
        self.onDone = onDone
    }

    var body: some View {
        NavigationStack {
            Form {
                if model.canManage {
                    Section {
                        TextField("Email", text: $email)
                            .textContentType(.emailAddress)
                            .keyboardType(.emailAddress)
                            .textInputAutocapitalization(.never)
                            .autocorrectionDisabled()
                        Picker("Access", selection: $role) {
                            Text("Can edit").tag(SpaceRole.editor)
                            Text("View only").tag(SpaceRole.viewer)
                        }
                        .pickerStyle(.segmented)
                        Button("Invite") {
                            Task {
                                if await model.invite(email: email, role: role) {
                                    email = ""
                                }
                            }
                        }
                        .disabled(email.trimmingCharacters(in: .whitespaces).isEmpty || model.isBusy)
                    } header: {
                        Text("Invite")
                    } footer: {
                        Text("They see the invitation in their app after its next sync.")
                    }
                }
                if !model.members.isEmpty {
                    Section("Shared with") {
                        ForEach(model.members, id: \.userId) { member in
                            memberRow(member)
                        }
                    }
                }
            }
            .navigationTitle("Share")
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                ToolbarItem(placement: .confirmationAction) {
                    Button("Done") {
                        dismiss()
                    }
                }
            }
            .errorAlert($model.errorMessage)
            .task {
                await model.refresh()
            }
            .onDisappear {
                onDone(model.plan)
            }
        }
    }

    private func memberRow(_ member: Member) -> some View {
        HStack {
            VStack(alignment: .leading) {
                Text(member.email)
                Text(member.role.label)
                    .font(.footnote)
                    .foregroundStyle(.secondary)
            }
            Spacer()
            if model.role == .owner, member.role != .owner {
                Menu {
                    let next: SpaceRole = member.role == .viewer ? .editor : .viewer
                    Button("Make \(next.label)") {
                        Task { await model.setRole(member, to: next) }
                    }
                    Button("Remove", role: .destructive) {
                        Task { await model.remove(member) }
                    }
                } label: {
                    Image(systemName: "ellipsis.circle")
                        .accessibilityLabel("Manage \(member.email)")
                }
            }
        }
    }
}
