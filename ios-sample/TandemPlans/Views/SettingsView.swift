// The Settings tab: account, sync switch, diagnostics, sign-out.

import SwiftUI
import Tandem

/// Account and sync settings.
struct SettingsView: View {
    @State private var model: SettingsModel
    @State private var isConfirmingSignOut = false

    init(app: AppModel) {
        _model = State(initialValue: SettingsModel(app: app))
    }

    var body: some View {
        Form {
            Section("Account") {
                LabeledContent("Email", value: model.email)
                LabeledContent("Server", value: model.serverURL)
                LabeledContent("User ID") {
                    Text(model.userId)
                        .font(.caption.monospaced())
                        .textSelection(.enabled)
                }
            }

            Section {
                Toggle("Sync", isOn: $model.syncEnabled)
                Button("Sync Now") {
                    Task {
                        await model.app.syncIndicator.syncNow()
                    }
                }
                .disabled(model.app.syncIndicator.isSyncingNow)
                LabeledContent("Status", value: model.app.syncIndicator.display.title)
                LabeledContent("Waiting to sync", value: "\(model.app.syncIndicator.pending)")
                LabeledContent("Live updates", value: model.app.syncIndicator.isRealtime ? "Connected" : "Not connected")
                if let last = model.app.syncIndicator.lastSyncedAt {
                    LabeledContent("Last sync", value: last.formatted(date: .abbreviated, time: .standard))
                }
                // The last run's outcome, kept by the engine across launches.
                if let failure = model.app.syncIndicator.lastFailureText, let at = model.app.syncIndicator.lastRunAt {
                    LabeledContent("Last run failed", value: at.formatted(date: .abbreviated, time: .standard))
                    Text(failure)
                        .font(.footnote)
                        .foregroundStyle(.red)
                }
            } header: {
                Text("Sync")
            } footer: {
                Text("With sync off, changes stay on this device (nothing is lost) until it is on again or you tap Sync Now.")
            }

            Section {
                NavigationLink("Diagnostics") {
                    DiagnosticsView(model: model)
                }
            }

            Section {
                Button("Sign Out", role: .destructive) {
                    isConfirmingSignOut = true
                }
                .disabled(model.isSigningOut)
            } footer: {
                Text("Tokens are kept in the Keychain by the engine.")
            }
        }
        .navigationTitle("Settings")
        .confirmationDialog("Sign out?", isPresented: $isConfirmingSignOut, titleVisibility: .visible) {
            Button("Sign Out, Keep Data on This Device") {
                Task { await model.signOut(wipeLocalData: false) }
            }
            Button("Sign Out and Erase This Device's Data", role: .destructive) {
                Task { await model.signOut(wipeLocalData: true) }
            }
        } message: {
            Text(signOutMessage)
        }
        .errorAlert($model.errorMessage)
    }

    private var signOutMessage: String {
        let pending = model.pendingChanges
        let kept = "Kept data and pending changes come back when you sign in again."
        if pending == 0 {
            return kept
        }
        return "\(pending) change(s) have not reached the server yet; erasing loses them. \(kept)"
    }
}

/// Sync counters and the outbox, for seeing what sync does.
struct DiagnosticsView: View {
    let model: SettingsModel

    var body: some View {
        List {
            if let metrics = model.metrics {
                Section("Since the App Started") {
                    LabeledContent("Runs", value: "\(metrics.runs)")
                    LabeledContent("Failed runs", value: "\(metrics.failures)")
                    LabeledContent("Changes pushed", value: "\(metrics.opsPushed)")
                    LabeledContent("Changes pulled", value: "\(metrics.changesPulled)")
                    LabeledContent("Sent", value: bytes(metrics.bytesSent))
                    LabeledContent("Received", value: bytes(metrics.bytesReceived))
                    LabeledContent("Last run", value: "\(metrics.lastRunDurationMs) ms")
                }
                Section("Runs Asked For, by Reason") {
                    if model.triggers.isEmpty {
                        Text("None yet")
                            .foregroundStyle(.secondary)
                    }
                    ForEach(model.triggers, id: \.reason) { trigger in
                        LabeledContent(trigger.reason.replacingOccurrences(of: "_", with: " "), value: "\(trigger.count)")
                    }
                }
            }
            Section {
                if model.outbox.isEmpty {
                    Text("Empty: everything is on the server.")
                        .foregroundStyle(.secondary)
                }
                ForEach(model.outbox, id: \.opId) { entry in
                    VStack(alignment: .leading, spacing: 2) {
                        Text("\(entry.kind == .delete ? "Delete" : "Upsert") \(entry.collection)/\(entry.id)")
                            .font(.caption.monospaced())
                        Text(outboxDetail(entry))
                            .font(.caption)
                            .foregroundStyle(.secondary)
                    }
                }
            } header: {
                Text("Outbox")
            } footer: {
                Text("Local changes in sending order. Each was committed together with the write it records.")
            }
        }
        .navigationTitle("Diagnostics")
        .refreshable {
            // The action is a @Sendable closure, not main-actor isolated: the hop needs `await`.
            await model.refreshDiagnostics()
        }
        .task {
            await model.watchDiagnostics()
        }
    }

    private func bytes(_ count: UInt64) -> String {
        Int64(clamping: count).formatted(.byteCount(style: .file))
    }

    private func outboxDetail(_ entry: OutboxEntry) -> String {
        var parts: [String] = []
        switch entry.state {
        case .pending: parts.append("pending")
        case .inflight: parts.append("in flight")
        case .rejected: parts.append("refused")
        }
        if entry.attempts > 0 {
            parts.append("\(entry.attempts) attempt(s)")
        }
        if let error = entry.lastError {
            parts.append(error)
        }
        return parts.joined(separator: " · ")
    }
}
