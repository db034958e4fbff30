// What the sync indicator shows, fed by the engine's sync status stream.

import Foundation
import Observation
import Tandem

/// The state behind the sync indicator shown on every screen: the engine's latest `SyncStatus`,
/// reduced to one of a few displays, plus "sync now" on tap.
@MainActor
@Observable
final class SyncIndicatorModel {
    /// What the indicator says.
    enum Display: Equatable {
        case starting
        case synced
        case syncing
        case offline
        case paused
        case error(String)
        case off
        case signedOut
        case sessionExpired

        var title: String {
            switch self {
            case .starting: return "Starting"
            case .synced: return "Synced"
            case .syncing: return "Syncing…"
            case .offline: return "Offline"
            case .paused: return "Sync paused by the server"
            case .error: return "Sync error"
            case .off: return "Sync off"
            case .signedOut: return "Signed out"
            case .sessionExpired: return "Session expired: tap to sign in"
            }
        }

        /// The error message of `.error`, else nil.
        var errorMessage: String? {
            if case let .error(message) = self {
                return message
            }
            return nil
        }

        /// An SF Symbol name.
        var symbol: String {
            switch self {
            case .starting, .syncing: return "arrow.triangle.2.circlepath"
            case .synced: return "checkmark.icloud"
            case .offline: return "icloud.slash"
            case .paused: return "pause.circle"
            case .error: return "exclamationmark.icloud"
            case .off: return "icloud.slash"
            case .signedOut, .sessionExpired: return "person.crop.circle.badge.exclamationmark"
            }
        }
    }

    /// The engine's latest status; nil until the stream delivered the first one.
    private(set) var status: SyncStatus?
    /// Whether a tap-triggered run is under way (it shows as syncing even before the engine's
    /// status reports the run).
    private(set) var isSyncingNow = false
    /// Why the last tap-triggered run failed, until the next status shows a successful run.
    private(set) var notice: String?
    /// Mirrors the app's sync switch; with sync off, the indicator says so.
    var syncEnabled = true
    /// Mirrors the auth state: an expired session needs a new sign-in, which the indicator offers.
    var sessionExpired = false

    /// The engine to sync; set by `AppModel` whenever it opens one.
    @ObservationIgnored var tandem: Tandem?

    var display: Display {
        Self.display(for: status, syncEnabled: syncEnabled, sessionExpired: sessionExpired, syncingNow: isSyncingNow)
    }

    /// Local changes waiting for the server.
    var pending: UInt64 { status?.pending ?? 0 }
    var lastSyncedAt: Date? { status?.lastSyncedAt }
    /// When the last run ended, worked or not. The engine keeps it with its outcome in the store,
    /// so it is right at launch after a sync that failed before the app was closed.
    var lastRunAt: Date? { status?.lastRunAt }
    /// Why the last run failed, typed; nil after a run that worked (or before any).
    var lastFailure: SyncFailure? { status?.lastFailure }
    /// Why the last run failed, in words ("The server could not be reached."); nil when it worked.
    var lastFailureText: String? { Self.lastFailureText(for: status) }
    /// Connected to the server's event stream: other devices' changes arrive within moments.
    var isRealtime: Bool { status?.realtime ?? false }
    /// "3 pending", or nil when nothing waits.
    var pendingText: String? { pending > 0 ? "\(pending) pending" : nil }
    /// Conflicts and refused changes waiting for the user (the Sync tab's badge).
    var attentionCount: Int { Int((status?.conflicts ?? 0) + (status?.rejected ?? 0)) }

    /// Why the status's last run failed, in words, from its typed `lastFailure` (the engine's
    /// `lastError` is added where the type alone says too little); nil when it worked.
    static func lastFailureText(for status: SyncStatus?) -> String? {
        guard let status, let failure = status.lastFailure else {
            return nil
        }
        return ErrorText.lastRunFailure(failure, detail: status.lastError)
    }

    /// The display for a status; a pure function so the mapping is tested without an engine.
    static func display(for status: SyncStatus?, syncEnabled: Bool, sessionExpired: Bool, syncingNow: Bool) -> Display {
        if sessionExpired {
            return .sessionExpired
        }
        if syncingNow {
            return .syncing
        }
        guard let status else {
            return .starting
        }
        switch status.phase {
        case .signedOut:
            return .signedOut
        case .pushing, .pulling:
            return .syncing
        case .offline:
            return .offline
        case .paused:
            return .paused
        case .error:
            return .error(lastFailureText(for: status) ?? status.lastError ?? "The last sync failed.")
        case .idle:
            return syncEnabled ? .synced : .off
        }
    }

    func update(_ status: SyncStatus) {
        self.status = status
        if status.phase == .idle, status.lastError == nil {
            notice = nil
        }
    }

    /// Runs one sync now (also with background sync off: the user asked for it).
    func syncNow() async {
        guard let tandem, !isSyncingNow else {
            return
        }
        isSyncingNow = true
        defer { isSyncingNow = false }
        do {
            _ = try await tandem.syncNow()
            notice = nil
        } catch {
            notice = ErrorText.describe(error)
        }
    }

    /// Forgets the previous engine's status (after sign-out or a server change).
    func reset() {
        status = nil
        notice = nil
        sessionExpired = false
    }
}
