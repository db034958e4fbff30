package dev.tandem.sample.state

import dev.tandem.SyncFailure
import dev.tandem.TandemException

/** What a background sync attempt asks of the OS scheduler. */
enum class BackgroundResult {
    /** Synced; run again at the next period. */
    SUCCESS,

    /** Failed for a reason that passes (offline, server busy, deadline): retry with backoff. */
    RETRY,

    /** Nothing to do: automatic sync is off, or nobody is signed in. */
    SKIPPED,
}

/**
 * The platform's signals, in plain code: the Android app forwards the process coming to the
 * foreground (ProcessLifecycleOwner), connectivity changes (ConnectivityManager) and periodic
 * background work (WorkManager) here; this decides what the engine is told.
 *
 * The engine's own loop does the rest once started: a foreground or "back online" trigger runs
 * a sync at once, skipping any backoff wait.
 */
class PlatformSync(private val host: TandemHost, private val settings: SettingsStore) {
    /** The app came to the foreground. */
    fun onForeground() {
        if (!settings.settings.value.syncEnabled) return
        quietly { host.engine.notifyForeground() }
    }

    /**
     * The device went online or offline. Offline is passed on even with automatic sync off,
     * so the indicator says "offline" rather than promising a sync that cannot happen.
     */
    fun onConnectivity(online: Boolean) {
        quietly { host.engine.notifyConnectivity(online) }
    }

    /**
     * One background sync bounded by [deadlineMs] (the OS gives background work a few minutes;
     * the deadline keeps the run inside them, and what was sent when it passes is safe to send
     * again). Returns what the scheduler should do next.
     */
    suspend fun runInBackground(deadlineMs: Long): BackgroundResult {
        if (!settings.settings.value.syncEnabled) return BackgroundResult.SKIPPED
        val engine = host.engine
        return try {
            if (engine.currentUser() == null) return BackgroundResult.SKIPPED
            engine.syncOnce(deadlineMs.toULong())
            BackgroundResult.SUCCESS
        } catch (e: TandemException.Sync) {
            when (e.kind) {
                SyncFailure.NOT_SIGNED_IN, SyncFailure.SESSION_EXPIRED, SyncFailure.DISABLED -> BackgroundResult.SKIPPED
                SyncFailure.OFFLINE, SyncFailure.PAUSED, SyncFailure.RATE_LIMITED, SyncFailure.BUSY,
                SyncFailure.DEADLINE_EXCEEDED, SyncFailure.SERVER, SyncFailure.LOCAL,
                -> BackgroundResult.RETRY
            }
        } catch (e: TandemException.Closed) {
            // The app switched servers while the work ran; the next period uses the new engine.
            BackgroundResult.RETRY
        }
    }

    /**
     * Platform callbacks arrive at any time, also while the engine is being reopened on another
     * server; a signal lost then is harmless (the new engine starts its own first run).
     */
    private fun quietly(call: () -> Unit) {
        try {
            call()
        } catch (_: TandemException) {
        }
    }
}
