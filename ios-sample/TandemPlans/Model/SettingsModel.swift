// Settings and diagnostics: the account, the sync switch, sign-out, sync metrics and the outbox.

import Foundation
import Observation
import Tandem

/// State of the Settings and Diagnostics screens.
@MainActor
@Observable
final class SettingsModel {
    /// Counters since the store was opened (runs, failures, bytes, triggers by reason).
    private(set) var metrics: SyncMetrics?
    /// Local changes waiting for the server, in sending order.
    private(set) var outbox: [OutboxEntry] = []
    private(set) var isSigningOut = false
    var errorMessage: String?

    let app: AppModel

    init(app: AppModel) {
        self.app = app
    }

    var email: String { app.session.user?.email ?? "" }
    var userId: String { app.session.user?.id ?? "" }
    var serverURL: String { app.serverURL }

    var syncEnabled: Bool {
        get { app.syncEnabled }
        set { app.setSyncEnabled(newValue) }
    }

    /// Triggers by reason, most frequent first.
    var triggers: [TriggerCount] {
        (metrics?.triggers ?? []).sorted { $0.count > $1.count }
    }

    func refreshDiagnostics() {
        guard let tandem = app.tandem else {
            return
        }
        do {
            metrics = try tandem.syncMetrics()
            outbox = try tandem.outbox()
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Refreshes the diagnostics on every sync status change until cancelled.
    func watchDiagnostics() async {
        refreshDiagnostics()
        guard let tandem = app.tandem else {
            return
        }
        do {
            for await _ in try tandem.syncStatusStream() {
                refreshDiagnostics()
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// What a wiping sign-out would lose.
    var pendingChanges: UInt64 { app.pendingChanges() }

    /// Signs out; with `wipeLocalData` this account's data is deleted from the device.
    func signOut(wipeLocalData: Bool) async {
        isSigningOut = true
        defer { isSigningOut = false }
        do {
            try await app.signOut(wipeLocalData: wipeLocalData)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }
}
