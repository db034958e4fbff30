// The sheet that creates or edits a plan.

import SwiftUI

/// Name and notes of a plan. `onSave` writes; when it throws, the sheet stays open and says why.
struct PlanEditorView: View {
    let title: String
    let onSave: (PlanForm) throws -> Void
    @State private var form: PlanForm
    @FocusState private var nameFocused: Bool

    init(title: String, form: PlanForm, onSave: @escaping (PlanForm) throws -> Void) {
        self.title = title
        self.onSave = onSave
        _form = State(initialValue: form)
    }

    var body: some View {
        EditorSheet(title: title, canSave: form.problem == nil, save: { try onSave(form) }) {
            Section {
                TextField("Name", text: $form.name)
                    .focused($nameFocused)
                    .submitLabel(.done)
            } footer: {
                if let problem = form.problem, !form.name.isEmpty {
                    Text(problem).foregroundStyle(.red)
                }
            }
            Section("Notes") {
                TextField("e.g. 3 sessions a week", text: $form.notes, axis: .vertical)
                    .lineLimit(3...8)
            }
        }
        .onAppear { nameFocused = form.name.isEmpty }
    }
}
