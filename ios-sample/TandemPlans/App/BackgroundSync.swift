// Background sync with a deadline: a BGAppRefreshTask runs one bounded sync.

import BackgroundTasks
import Foundation
import os

private let log = Logger(subsystem: "dev.tandem.plans", category: "background")

/// Registers, schedules and runs the app refresh task.
enum BackgroundSync {
    /// Must be listed in Info.plist under BGTaskSchedulerPermittedIdentifiers (with
    /// UIBackgroundModes `fetch`), or `register` traps.
    static let refreshTaskIdentifier = "dev.tandem.plans.sync-refresh"
    /// An app refresh task gets about 30 seconds; the run is bounded well inside that, so the
    /// task completes before the system's expiration handler has to cut it off.
    static let deadlineMs: UInt64 = 20_000
    /// The earliest next run; the system decides the actual time from the app's usage.
    static let interval: TimeInterval = 15 * 60

    /// Registers the launch handler. Call before the app finishes launching.
    @MainActor
    static func register(model: AppModel) {
        // Handlers run on the main queue, where the app model lives.
        let registered = BGTaskScheduler.shared.register(forTaskWithIdentifier: refreshTaskIdentifier, using: .main) { task in
            MainActor.assumeIsolated {
                BackgroundSync.run(task, model: model)
            }
        }
        if !registered {
            log.error("\(refreshTaskIdentifier, privacy: .public) is not in BGTaskSchedulerPermittedIdentifiers")
        }
    }

    /// Asks for a refresh task no earlier than `interval` from now.
    static func schedule() {
        let request = BGAppRefreshTaskRequest(identifier: refreshTaskIdentifier)
        request.earliestBeginDate = Date(timeIntervalSinceNow: interval)
        do {
            try BGTaskScheduler.shared.submit(request)
        } catch {
            // The simulator refuses background tasks (BGTaskScheduler error "unavailable"); see
            // the README for triggering one from the debugger.
            log.notice("cannot schedule background sync: \(String(describing: error), privacy: .public)")
        }
    }

    @MainActor
    private static func run(_ task: BGTask, model: AppModel) {
        schedule()
        let completion = TaskCompletion(task)
        let work = Task { @MainActor in
            let success = await model.backgroundSync(deadlineMs: BackgroundSync.deadlineMs)
            completion.finish(success: success)
        }
        task.expirationHandler = {
            // The deadline should make this rare; what was sent is safe to send again, the
            // server answers a repeated op id as a duplicate.
            work.cancel()
            completion.finish(success: false)
        }
    }
}

/// Completes a BGTask exactly once, whichever comes first: the sync's end or expiration.
private final class TaskCompletion: @unchecked Sendable {
    // @unchecked: `finished` is only touched with `lock` held; BGTask itself is thread-safe to
    // complete.
    private let task: BGTask
    private let lock = NSLock()
    private var finished = false

    init(_ task: BGTask) {
        self.task = task
    }

    func finish(success: Bool) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else {
            return
        }
        finished = true
        task.setTaskCompleted(success: success)
    }
}
