// The sign-in / sign-up form.

import Foundation
import Observation

/// State of the sign-in screen; `submit` goes through `AppModel`, which owns the engine.
@MainActor
@Observable
final class SignInModel {
    enum Mode: String, CaseIterable, Identifiable {
        case signIn
        case signUp

        var id: Self { self }

        var title: String {
            switch self {
            case .signIn: return "Sign In"
            case .signUp: return "Create Account"
            }
        }
    }

    var mode = Mode.signIn
    var email = ""
    var password = ""
    var serverURL: String
    /// Renewing an expired session: the account and server are fixed.
    let isReauthentication: Bool
    private(set) var isWorking = false
    private(set) var errorMessage: String?

    init(serverURL: String, email: String = "", isReauthentication: Bool = false) {
        self.serverURL = serverURL
        self.email = email
        self.isReauthentication = isReauthentication
    }

    var trimmedEmail: String { email.trimmingCharacters(in: .whitespacesAndNewlines) }

    var canSubmit: Bool {
        !isWorking && !trimmedEmail.isEmpty && !password.isEmpty
            && !serverURL.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// Signs in or creates the account; returns whether it worked (the app then switches to
    /// the signed-in screens by itself).
    @discardableResult
    func submit(using app: AppModel) async -> Bool {
        guard canSubmit else {
            return false
        }
        isWorking = true
        errorMessage = nil
        defer { isWorking = false }
        do {
            try await app.authenticate(
                email: trimmedEmail, password: password, serverURL: serverURL, createAccount: mode == .signUp
            )
            password = ""
            return true
        } catch {
            errorMessage = ErrorText.describe(error)
            return false
        }
    }
}
