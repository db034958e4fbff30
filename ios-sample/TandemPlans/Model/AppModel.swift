// The app's session: the engine instance, who is signed in, the server, the sync switch, and
// the platform triggers (foreground, connectivity, background refresh) passed on to the engine.

import Foundation
import Observation
import os
import Tandem

private let log = Logger(subsystem: "dev.tandem.plans", category: "app")

/// Owns the one `Tandem` instance of the app and the account session around it.
///
/// The engine is opened once at launch (also for a background launch without UI) and reopened
/// only when the user signs in to a different server, because the server URL is fixed at
/// `Tandem.open`. Every screen's store is created from `tandem` while signed in.
@MainActor
@Observable
final class AppModel {
    /// Where the app stands; `RootView` shows a screen per case.
    enum Session: Equatable {
        /// Before the engine was opened.
        case starting
        /// The engine could not be opened; the message says why.
        case unavailable(String)
        case signedOut
        case signedIn(User)
        /// The server refused the session's refresh token. Local data and pending changes stay,
        /// and go up once the same user signs in again.
        case sessionExpired(User)

        var user: User? {
            switch self {
            case let .signedIn(user), let .sessionExpired(user):
                return user
            case .starting, .unavailable, .signedOut:
                return nil
            }
        }
    }

    private(set) var session: Session = .starting
    private(set) var tandem: Tandem?
    /// The server the engine talks to (persisted).
    private(set) var serverURL: String
    /// The sync switch of Settings (persisted): background sync started or stopped.
    private(set) var syncEnabled: Bool
    /// Shows the sign-in sheet over the app, to renew an expired session.
    var isReauthenticating = false
    let syncIndicator: SyncIndicatorModel

    @ObservationIgnored private let defaults: UserDefaults
    @ObservationIgnored private let dataDirectory: () throws -> URL
    @ObservationIgnored private let schema: () throws -> String
    @ObservationIgnored private var watchers: [Task<Void, Never>] = []
    @ObservationIgnored private var online: Bool?

    private enum Key {
        static let serverURL = "serverURL"
        static let syncEnabled = "syncEnabled"
    }

    /// - Parameters:
    ///   - defaults: where the server URL and the sync switch are kept.
    ///   - dataDirectory: the engine's data directory (tests pass a temporary one).
    ///   - schema: the schema document (the bundled `sample.json` in the app).
    init(
        defaults: UserDefaults = .standard,
        dataDirectory: @escaping () throws -> URL = AppConfiguration.defaultDataDirectory,
        schema: @escaping () throws -> String = { try AppConfiguration.bundledSchema() }
    ) {
        self.defaults = defaults
        self.dataDirectory = dataDirectory
        self.schema = schema
        serverURL = defaults.string(forKey: Key.serverURL) ?? AppConfiguration.defaultServerURL
        syncEnabled = defaults.object(forKey: Key.syncEnabled) as? Bool ?? true
        syncIndicator = SyncIndicatorModel()
        syncIndicator.syncEnabled = syncEnabled
    }

    /// Opens the engine (restoring the signed-in session from the Keychain) and starts
    /// background sync when it is switched on. Safe to call more than once.
    func start() {
        guard tandem == nil else {
            return
        }
        do {
            try open(serverURL: serverURL)
        } catch {
            log.error("cannot open the store: \(String(describing: error), privacy: .public)")
            session = .unavailable(ErrorText.describe(error))
        }
    }

    /// Signs in or creates an account on the server at `serverURL`, reopening the engine first
    /// when that is a different server than the current one.
    func authenticate(email: String, password: String, serverURL text: String, createAccount: Bool) async throws {
        let address = try ServerAddress.normalize(text)
        if tandem == nil || address != serverURL {
            try await reopen(serverURL: address)
        }
        guard let tandem else {
            throw TandemError.Closed
        }
        let user: User
        if createAccount {
            user = try await tandem.signUp(email: email, password: password)
        } else {
            user = try await tandem.signIn(email: email, password: password)
        }
        // The auth state stream reports this too; setting it here switches screens without
        // waiting for that delivery.
        session = .signedIn(user)
        syncIndicator.sessionExpired = false
        isReauthenticating = false
    }

    /// Signs out. With `wipeLocalData` this account's database (pending changes included) and
    /// tokens are deleted; otherwise they wait for the next sign-in of the same account.
    func signOut(wipeLocalData: Bool) async throws {
        guard let tandem else {
            return
        }
        try await tandem.signOut(wipeLocalData: wipeLocalData)
        session = .signedOut
        syncIndicator.sessionExpired = false
    }

    /// Local changes not yet on the server (what a wiping sign-out would lose).
    func pendingChanges() -> UInt64 {
        guard let tandem else {
            return 0
        }
        return (try? tandem.pendingCount()) ?? 0
    }

    /// The sync switch: starts or stops background sync (debounced runs after writes, the
    /// periodic run, realtime pokes). Stopping lets a run under way finish.
    func setSyncEnabled(_ enabled: Bool) {
        syncEnabled = enabled
        syncIndicator.syncEnabled = enabled
        defaults.set(enabled, forKey: Key.syncEnabled)
        guard let tandem else {
            return
        }
        do {
            if enabled {
                try tandem.startSync()
            } else {
                try tandem.stopSync()
            }
        } catch {
            log.error("cannot switch sync: \(String(describing: error), privacy: .public)")
        }
    }

    /// The app came to the foreground (scenePhase became active): the engine syncs now when
    /// background sync is started.
    func appBecameActive() {
        guard syncEnabled, let tandem, case .signedIn = session else {
            return
        }
        do {
            try tandem.notifyForeground()
        } catch {
            log.error("foreground trigger failed: \(String(describing: error), privacy: .public)")
        }
    }

    /// The network path changed (NWPathMonitor). Only transitions are passed on; going online
    /// makes the engine retry at once instead of waiting out its backoff.
    func connectivityChanged(online: Bool) {
        guard online != self.online else {
            return
        }
        self.online = online
        guard let tandem else {
            return
        }
        do {
            try tandem.notifyConnectivity(online: online)
        } catch {
            log.error("connectivity trigger failed: \(String(describing: error), privacy: .public)")
        }
    }

    /// One sync bounded by `deadlineMs`, for a BGAppRefreshTask. Returns whether it succeeded
    /// (true when there was nothing to do: sync off or nobody signed in).
    func backgroundSync(deadlineMs: UInt64) async -> Bool {
        guard syncEnabled, let tandem else {
            return true
        }
        guard let state = try? tandem.authState(), case .signedIn = state else {
            return true
        }
        do {
            let report = try await tandem.syncOnce(deadlineMs: deadlineMs)
            log.info("background sync: pushed \(report.pushed), pulled \(report.pulled) in \(report.durationMs) ms")
            return true
        } catch {
            log.notice("background sync failed: \(String(describing: error), privacy: .public)")
            return false
        }
    }

    // MARK: - Engine lifecycle

    private func open(serverURL address: String) throws {
        let configuration = AppConfiguration(
            dataDirectory: try dataDirectory(),
            schemaJSON: try schema(),
            serverURL: address
        )
        let engine = try openOrStartAfresh(configuration.tandemConfig())
        tandem = engine
        syncIndicator.reset()
        syncIndicator.tandem = engine
        apply((try? engine.authState()) ?? .signedOut)
        if syncEnabled {
            do {
                try engine.startSync()
            } catch {
                log.error("cannot start sync: \(String(describing: error), privacy: .public)")
            }
        }
        watch(engine)
    }

    /// Opens the engine; when the data on this iPhone was restored from another device's backup
    /// (its files came back, its keys, kept this device only, did not: `Key(.missing)`), the
    /// unreadable databases are set aside (renamed, not deleted) and the app starts afresh, so
    /// the user signs in again and the server's copy comes back. A store not readable yet
    /// (`.unavailable`, before the first unlock) is not touched: the error goes up.
    private func openOrStartAfresh(_ config: TandemConfig) throws -> Tandem {
        do {
            return try Tandem.open(config: config)
        } catch TandemError.Key(.missing, _) {
            let moved = try setAsideUnreadableData(config: config)
            log.notice("set aside \(moved.count) database(s) whose key is missing (restored backup)")
            return try Tandem.open(config: config)
        }
    }

    /// Follows the engine's auth state and sync status for as long as it is open.
    private func watch(_ engine: Tandem) {
        let authStates: AsyncStream<AuthState>
        let statuses: AsyncStream<SyncStatus>
        do {
            authStates = try engine.authStateStream()
            statuses = try engine.syncStatusStream()
        } catch {
            session = .unavailable(ErrorText.describe(error))
            return
        }
        watchers = [
            Task { [weak self] in
                for await state in authStates {
                    self?.apply(state)
                }
            },
            Task { [weak self] in
                for await status in statuses {
                    self?.syncIndicator.update(status)
                }
            },
        ]
    }

    private func apply(_ state: AuthState) {
        switch state {
        case .signedOut:
            session = .signedOut
            syncIndicator.sessionExpired = false
        case let .signedIn(user):
            session = .signedIn(user)
            syncIndicator.sessionExpired = false
            isReauthenticating = false
        case let .sessionExpired(user):
            session = .sessionExpired(user)
            syncIndicator.sessionExpired = true
        }
    }

    private func close() {
        for watcher in watchers {
            watcher.cancel()
        }
        watchers = []
        syncIndicator.tandem = nil
        tandem?.shutdown()
        tandem = nil
    }

    /// Replaces the engine with one for `address`; on failure the previous server's engine is
    /// opened again, so the app never stays without one.
    private func reopen(serverURL address: String) async throws {
        let previous = serverURL
        close()
        do {
            try open(serverURL: address)
            serverURL = address
            defaults.set(address, forKey: Key.serverURL)
        } catch {
            do {
                try open(serverURL: previous)
            } catch {
                session = .unavailable(ErrorText.describe(error))
            }
            throw error
        }
    }
}
