// The editable fields of the create/edit sheets, with the schema's rules checked before a write.

import Foundation

/// The schema's `maxLength` for names (schemas/sample.json), counted in code points as the engine
/// counts them.
let maxNameLength = 200

/// Checks a required name against the schema.
private func nameProblem(_ name: String, what: String) -> String? {
    if name.isEmpty {
        return "\(what) needs a name."
    }
    if name.unicodeScalars.count > maxNameLength {
        return "The name is longer than \(maxNameLength) characters."
    }
    return nil
}

/// A text field's value as an optional document field: blank means absent.
private func optionalText(_ text: String) -> String? {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    return trimmed.isEmpty ? nil : trimmed
}

/// A form that cannot be saved as it is; the message says why.
struct FormProblem: LocalizedError, Equatable {
    let message: String

    var errorDescription: String? { message }
}

/// The fields of the plan sheet.
struct PlanForm: Equatable {
    var name = ""
    var notes = ""

    init() {}

    init(plan: Plan) {
        name = plan.name
        notes = plan.notes ?? ""
    }

    var trimmedName: String { name.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// Why the form cannot be saved, or nil.
    var problem: String? { nameProblem(trimmedName, what: "A plan") }

    /// Throws the problem, if any, before a write.
    func validate() throws {
        if let problem {
            throw FormProblem(message: problem)
        }
    }

    /// `plan` with this form's values; blank notes are removed rather than stored as "".
    func applied(to plan: Plan) -> Plan {
        var plan = plan
        plan.name = trimmedName
        plan.notes = optionalText(notes)
        return plan
    }
}

/// The fields of the exercise sheet.
struct ExerciseForm: Equatable {
    var name = ""
    var category = ""
    var notes = ""

    init() {}

    init(exercise: Exercise) {
        name = exercise.name
        category = exercise.category ?? ""
        notes = exercise.notes ?? ""
    }

    var trimmedName: String { name.trimmingCharacters(in: .whitespacesAndNewlines) }

    var problem: String? { nameProblem(trimmedName, what: "An exercise") }

    func validate() throws {
        if let problem {
            throw FormProblem(message: problem)
        }
    }

    func applied(to exercise: Exercise) -> Exercise {
        var exercise = exercise
        exercise.name = trimmedName
        exercise.category = optionalText(category)
        exercise.notes = optionalText(notes)
        return exercise
    }
}
