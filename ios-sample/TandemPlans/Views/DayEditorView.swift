// One plan day: its title and its exercises, picked from the catalog and reordered.

import SwiftUI
import Tandem

/// Edits a day. List changes are saved as they happen; the title when editing it ends.
struct DayEditorView: View {
    @State private var model: DayEditorModel
    @State private var isPicking = false
    @FocusState private var titleFocused: Bool
    private let tandem: Tandem

    init(tandem: Tandem, dayId: String, collection: String = PlanDay.collection) {
        self.tandem = tandem
        _model = State(initialValue: DayEditorModel(tandem: tandem, dayId: dayId, collection: collection))
    }

    var body: some View {
        content
            .navigationTitle(navigationTitle)
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                if model.day != nil {
                    ToolbarItem(placement: .topBarTrailing) {
                        EditButton()
                    }
                }
            }
            .sheet(isPresented: $isPicking) {
                ExercisePickerView(model: model)
            }
            .onChange(of: titleFocused) { _, focused in
                model.isEditingTitle = focused
                if !focused {
                    model.commitTitle()
                }
            }
            .onDisappear {
                if model.isEditingTitle {
                    model.commitTitle()
                }
            }
            .errorAlert($model.errorMessage)
            .task {
                await model.run()
            }
    }

    private var navigationTitle: String {
        let title = model.day?.title?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return title.isEmpty ? "Day" : title
    }

    @ViewBuilder
    private var content: some View {
        if model.isDeleted {
            ContentUnavailableView(
                "Day Deleted",
                systemImage: "trash",
                description: Text("This day was deleted, here or on another device.")
            )
        } else if model.day != nil {
            List {
                Section("Title") {
                    TextField("e.g. Upper Body", text: $model.titleDraft)
                        .focused($titleFocused)
                        .submitLabel(.done)
                        .onSubmit { titleFocused = false }
                }
                DayPhotoSection(tandem: tandem, dayId: model.dayId, collection: model.collection)
                Section {
                    ForEach(model.entries) { entry in
                        VStack(alignment: .leading, spacing: 2) {
                            if let exercise = entry.exercise {
                                Text(exercise.name)
                                if let category = exercise.category, !category.isEmpty {
                                    Text(category)
                                        .font(.caption)
                                        .foregroundStyle(.secondary)
                                }
                            } else {
                                Text("Unknown exercise")
                                    .foregroundStyle(.secondary)
                                Text("Deleted, or not synced to this device yet")
                                    .font(.caption)
                                    .foregroundStyle(.tertiary)
                            }
                        }
                    }
                    .onMove { source, destination in
                        model.moveExercises(from: source, to: destination)
                    }
                    .onDelete { offsets in
                        model.removeExercises(at: offsets)
                    }
                    Button {
                        isPicking = true
                    } label: {
                        Label("Add Exercises", systemImage: "plus.circle")
                    }
                } header: {
                    Text("Exercises")
                } footer: {
                    Text("In order of the session. Edit to reorder; swipe to remove.")
                }
            }
        } else {
            ProgressView()
        }
    }
}

/// Picks exercises for a day from the catalog: a tap adds or removes one; a search with no
/// match offers to create the exercise.
struct ExercisePickerView: View {
    @Bindable var model: DayEditorModel
    @State private var searchText = ""
    @State private var createError: String?
    @Environment(\.dismiss) private var dismiss

    var body: some View {
        NavigationStack {
            List {
                if let createError {
                    Label(createError, systemImage: "exclamationmark.triangle.fill")
                        .foregroundStyle(.red)
                }
                if canCreate {
                    Button {
                        create()
                    } label: {
                        Label("Create “\(trimmedSearch)”", systemImage: "plus")
                    }
                }
                ForEach(matches) { exercise in
                    Button {
                        model.toggle(exercise)
                    } label: {
                        HStack {
                            VStack(alignment: .leading, spacing: 2) {
                                Text(exercise.name)
                                    .foregroundStyle(.primary)
                                Text(exercise.categoryTitle)
                                    .font(.caption)
                                    .foregroundStyle(.secondary)
                            }
                            Spacer()
                            if model.contains(exercise) {
                                Image(systemName: "checkmark.circle.fill")
                                    .foregroundStyle(.tint)
                                    .accessibilityLabel("In this day")
                            }
                        }
                    }
                }
            }
            .overlay {
                if model.catalog.isEmpty, trimmedSearch.isEmpty {
                    ContentUnavailableView(
                        "No Exercises Yet",
                        systemImage: "dumbbell",
                        description: Text("Search for a name to create the first one.")
                    )
                }
            }
            .searchable(text: $searchText, placement: .navigationBarDrawer(displayMode: .always), prompt: "Search or create")
            .navigationTitle("Add Exercises")
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                ToolbarItem(placement: .confirmationAction) {
                    Button("Done") { dismiss() }
                }
            }
        }
    }

    private var trimmedSearch: String {
        searchText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private var matches: [Exercise] {
        let query = trimmedSearch
        guard !query.isEmpty else {
            return model.sortedCatalog
        }
        return model.sortedCatalog.filter {
            $0.name.localizedCaseInsensitiveContains(query) || $0.categoryTitle.localizedCaseInsensitiveContains(query)
        }
    }

    /// Offered when no exercise has exactly the searched name.
    private var canCreate: Bool {
        let query = trimmedSearch
        return !query.isEmpty && !model.catalog.values.contains {
            $0.name.compare(query, options: [.caseInsensitive, .diacriticInsensitive]) == .orderedSame
        }
    }

    private func create() {
        var form = ExerciseForm()
        form.name = trimmedSearch
        do {
            try model.createExercise(form)
            searchText = ""
            createError = nil
        } catch {
            createError = ErrorText.describe(error)
        }
    }
}
