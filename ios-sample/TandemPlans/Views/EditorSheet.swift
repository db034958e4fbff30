// The frame every create/edit sheet shares.

import SwiftUI

/// A form in a sheet with Cancel and Save. `save` writes; when it throws, the sheet stays open
/// and says why below the fields.
struct EditorSheet<Fields: View>: View {
    let title: String
    let canSave: Bool
    let save: () throws -> Void
    let fields: () -> Fields
    @State private var saveError: String?
    @Environment(\.dismiss) private var dismiss

    init(
        title: String,
        canSave: Bool,
        save: @escaping () throws -> Void,
        @ViewBuilder fields: @escaping () -> Fields
    ) {
        self.title = title
        self.canSave = canSave
        self.save = save
        self.fields = fields
    }

    var body: some View {
        NavigationStack {
            Form {
                fields()
                if let saveError {
                    Section {
                        Label(saveError, systemImage: "exclamationmark.triangle.fill")
                            .foregroundStyle(.red)
                    }
                }
            }
            .navigationTitle(title)
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                ToolbarItem(placement: .cancellationAction) {
                    Button("Cancel") { dismiss() }
                }
                ToolbarItem(placement: .confirmationAction) {
                    Button("Save") {
                        do {
                            try save()
                            dismiss()
                        } catch {
                            saveError = ErrorText.describe(error)
                        }
                    }
                    .disabled(!canSave)
                }
            }
        }
    }
}
