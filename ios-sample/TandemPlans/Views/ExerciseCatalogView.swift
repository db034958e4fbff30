// The Exercises tab: the catalog by category, searchable; create, edit, delete.

import SwiftUI
import Tandem

/// The exercise catalog, live.
struct ExerciseCatalogView: View {
    /// What the editor sheet edits: a new exercise or an existing one.
    private enum Editing: Identifiable {
        case new
        case existing(Exercise)

        var id: String {
            switch self {
            case .new: return "new"
            case let .existing(exercise): return exercise.id
            }
        }
    }

    @State private var catalog: ExerciseCatalog
    @State private var editing: Editing?
    @State private var exerciseToDelete: Exercise?

    init(tandem: Tandem) {
        _catalog = State(initialValue: ExerciseCatalog(tandem: tandem))
    }

    var body: some View {
        List {
            // The public catalog the server seeds: read-only (no edit, no swipe to delete).
            if !catalog.matchingCatalog.isEmpty {
                Section {
                    ForEach(catalog.matchingCatalog) { exercise in
                        VStack(alignment: .leading, spacing: 2) {
                            Text(exercise.name)
                            Text([exercise.category, exercise.notes].compactMap { $0 }.joined(separator: " · "))
                                .font(.footnote)
                                .foregroundStyle(.secondary)
                        }
                    }
                } header: {
                    Text("Catalog")
                } footer: {
                    Text("From the server, for everyone. Your own exercises are below.")
                }
            }
            ForEach(catalog.groups) { group in
                Section(group.category) {
                    ForEach(group.exercises) { exercise in
                        row(exercise)
                    }
                }
            }
            if catalog.skipped > 0 {
                Text("\(catalog.skipped) exercise(s) written by another client cannot be shown by this app.")
                    .font(.footnote)
                    .foregroundStyle(.secondary)
            }
        }
        .overlay {
            if catalog.isLoaded, catalog.exercises.isEmpty, catalog.catalog.isEmpty {
                ContentUnavailableView {
                    Label("No Exercises", systemImage: "dumbbell")
                } description: {
                    Text("Build the catalog your plan days pick from.")
                } actions: {
                    Button("New Exercise") { editing = .new }
                }
            } else if !catalog.searchText.isEmpty, catalog.groups.isEmpty {
                ContentUnavailableView.search(text: catalog.searchText)
            }
        }
        .searchable(text: $catalog.searchText, prompt: "Name, category or notes")
        .navigationTitle("Exercises")
        .toolbar {
            ToolbarItem(placement: .topBarTrailing) {
                Button {
                    editing = .new
                } label: {
                    Label("New Exercise", systemImage: "plus")
                }
            }
        }
        .sheet(item: $editing) { editing in
            editor(for: editing)
        }
        .confirmationDialog(
            "Delete this exercise?",
            isPresented: Binding(get: { exerciseToDelete != nil }, set: { if !$0 { exerciseToDelete = nil } }),
            titleVisibility: .visible,
            presenting: exerciseToDelete
        ) { exercise in
            Button("Delete “\(exercise.name)”", role: .destructive) {
                catalog.delete(exercise)
            }
        } message: { exercise in
            Text(deleteMessage(for: exercise))
        }
        .errorAlert($catalog.errorMessage)
        .task {
            await catalog.run()
        }
    }

    private func row(_ exercise: Exercise) -> some View {
        Button {
            editing = .existing(exercise)
        } label: {
            VStack(alignment: .leading, spacing: 2) {
                HStack {
                    Text(exercise.name)
                        .foregroundStyle(.primary)
                    RecordStateBadge(state: exercise.recordState)
                }
                if let notes = exercise.notes, !notes.isEmpty {
                    Text(notes)
                        .font(.caption)
                        .foregroundStyle(.secondary)
                        .lineLimit(2)
                }
            }
        }
        .swipeActions {
            Button(role: .destructive) {
                exerciseToDelete = exercise
            } label: {
                Label("Delete", systemImage: "trash")
            }
        }
    }

    @ViewBuilder
    private func editor(for editing: Editing) -> some View {
        switch editing {
        case .new:
            ExerciseEditorView(title: "New Exercise", form: ExerciseForm(), categories: catalog.categories) { form in
                _ = try catalog.create(form)
            }
        case let .existing(exercise):
            ExerciseEditorView(title: "Edit Exercise", form: ExerciseForm(exercise: exercise), categories: catalog.categories) { form in
                try catalog.update(exercise, with: form)
            }
        }
    }

    private func deleteMessage(for exercise: Exercise) -> String {
        let days = catalog.usage[exercise.id] ?? 0
        if days == 0 {
            return "No plan day uses it."
        }
        return "It is taken out of the \(days == 1 ? "day" : "\(days) days") that use it, in the same change."
    }
}

/// Name, category and notes of an exercise; categories in use are offered as suggestions.
struct ExerciseEditorView: View {
    let title: String
    let categories: [String]
    let onSave: (ExerciseForm) throws -> Void
    @State private var form: ExerciseForm

    init(title: String, form: ExerciseForm, categories: [String], onSave: @escaping (ExerciseForm) throws -> Void) {
        self.title = title
        self.categories = categories
        self.onSave = onSave
        _form = State(initialValue: form)
    }

    var body: some View {
        EditorSheet(title: title, canSave: form.problem == nil, save: { try onSave(form) }) {
            Section {
                TextField("Name", text: $form.name)
            } footer: {
                if let problem = form.problem, !form.name.isEmpty {
                    Text(problem).foregroundStyle(.red)
                }
            }
            Section("Category") {
                HStack {
                    TextField("e.g. Legs", text: $form.category)
                    if !categories.isEmpty {
                        Menu {
                            ForEach(categories, id: \.self) { category in
                                Button(category) { form.category = category }
                            }
                        } label: {
                            Image(systemName: "chevron.up.chevron.down")
                        }
                        .accessibilityLabel("Choose a category")
                    }
                }
            }
            Section("Notes") {
                TextField("Cues, tempo, equipment", text: $form.notes, axis: .vertical)
                    .lineLimit(3...8)
            }
        }
    }
}
