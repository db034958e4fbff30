// Sign in or create an account, with the server address editable.

import SwiftUI

/// The sign-in and sign-up screen; also the sheet that renews an expired session.
struct SignInView: View {
    private enum Field {
        case email, password, server
    }

    @Environment(AppModel.self) private var app
    @Environment(\.dismiss) private var dismiss
    @State private var model: SignInModel
    @FocusState private var focus: Field?

    init(serverURL: String, email: String = "", isReauthentication: Bool = false) {
        _model = State(initialValue: SignInModel(
            serverURL: serverURL, email: email, isReauthentication: isReauthentication
        ))
    }

    var body: some View {
        NavigationStack {
            Form {
                if model.isReauthentication {
                    Section {
                        Text("Your session ended. Sign in again to sync; your changes on this device are kept.")
                    }
                } else {
                    Section {
                        Picker("Account", selection: $model.mode) {
                            ForEach(SignInModel.Mode.allCases) { mode in
                                Text(mode.title).tag(mode)
                            }
                        }
                        .pickerStyle(.segmented)
                    }
                }

                Section {
                    TextField("Email", text: $model.email)
                        .textContentType(.username)
                        .keyboardType(.emailAddress)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                        .focused($focus, equals: .email)
                        .submitLabel(.next)
                        .onSubmit { focus = .password }
                        .disabled(model.isReauthentication)
                    SecureField("Password", text: $model.password)
                        .textContentType(model.mode == .signUp ? .newPassword : .password)
                        .focused($focus, equals: .password)
                        .submitLabel(.go)
                        .onSubmit(submit)
                } footer: {
                    if model.mode == .signUp {
                        Text("Use at least 6 characters (the server's default minimum); it refuses shorter passwords.")
                    }
                }

                if !model.isReauthentication {
                    Section {
                        TextField("Server URL", text: $model.serverURL)
                            .keyboardType(.URL)
                            .textContentType(.URL)
                            .textInputAutocapitalization(.never)
                            .autocorrectionDisabled()
                            .focused($focus, equals: .server)
                    } header: {
                        Text("Server")
                    } footer: {
                        Text(serverHint)
                    }
                }

                if let error = model.errorMessage {
                    Section {
                        Label(error, systemImage: "exclamationmark.triangle.fill")
                            .foregroundStyle(.red)
                    }
                }

                Section {
                    Button(action: submit) {
                        HStack {
                            Spacer()
                            if model.isWorking {
                                ProgressView()
                            } else {
                                Text(model.mode.title).bold()
                            }
                            Spacer()
                        }
                    }
                    .disabled(!model.canSubmit)
                }
            }
            .navigationTitle(model.isReauthentication ? "Sign In Again" : "Tandem Plans")
            .toolbar {
                if model.isReauthentication {
                    ToolbarItem(placement: .cancellationAction) {
                        Button("Later") { dismiss() }
                    }
                }
            }
        }
    }

    private var serverHint: String {
        #if DEBUG
        return "The simulator reaches a server on this Mac at \(AppConfiguration.defaultServerURL) "
            + "(start one with cargo run -p tandem-server). From a device, use the Mac's network "
            + "address; this development build allows plain http to it."
        #else
        return "The address of your Tandem server."
        #endif
    }

    private func submit() {
        focus = nil
        Task {
            await model.submit(using: app)
        }
    }
}
