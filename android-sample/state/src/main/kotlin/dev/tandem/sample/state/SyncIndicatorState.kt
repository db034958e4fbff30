package dev.tandem.sample.state

import dev.tandem.SyncFailure
import dev.tandem.SyncPhase
import dev.tandem.SyncStatus
import dev.tandem.syncStatusAsFlow
import java.time.Instant
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.stateIn

/** What the sync indicator says, in the order a user cares about. */
enum class SyncKind {
    /** Nothing waiting, the last run worked. */
    SYNCED,

    /** Local changes wait for the next run (one is under way or was just made, or automatic sync is off). */
    PENDING,

    /** A run is pushing or pulling. */
    SYNCING,

    /** The server cannot be reached; changes are kept and go up later. */
    OFFLINE,

    /** The last run failed for another reason; [SyncIndicator.lastError] says which. */
    ERROR,

    /** The server's operator paused sync. */
    PAUSED,

    /** Nobody is signed in (or the session expired): nothing syncs. */
    SIGNED_OUT,
}

/** Everything the sync indicator shows. */
data class SyncIndicator(
    val kind: SyncKind = SyncKind.SIGNED_OUT,
    val pending: Long = 0,
    val conflicts: Long = 0,
    val rejected: Long = 0,
    val lastSyncedAt: Instant? = null,
    val lastError: String? = null,
    /** During a pull: changes received so far in this run and still to come. */
    val pulled: Long = 0,
    val remaining: Long = 0,
    /** Connected to the server's event stream: other devices' changes arrive within moments. */
    val realtime: Boolean = false,
    /** Automatic sync (Settings); when off, only a tap syncs. */
    val autoSync: Boolean = true,
    /** A tap's sync is running. */
    val manualSyncRunning: Boolean = false,
    /**
     * When the last run ended, worked or not. The engine keeps it with its outcome in the store,
     * so it is right at launch after a sync that failed in an earlier session.
     */
    val lastRunAt: Instant? = null,
    /** Why the last run failed, typed; null when it worked (or none ran yet). */
    val lastFailure: SyncFailure? = null,
) {
    /** Conflicts or rejected changes wait for the user (a badge on the conflict center). */
    val needsAttention: Boolean get() = conflicts > 0 || rejected > 0

    /** The last run ended in a failure (shown even when a later state, e.g. pending, is calmer). */
    val lastRunFailed: Boolean get() = lastFailure != null

    /**
     * How the last run went, in words, for the indicator's details: "Last sync failed 3 min ago:
     * the server could not be reached." or "Last sync worked 3 min ago"; null before any run.
     */
    fun lastRunText(now: Instant = Instant.now()): String? {
        val at = lastRunAt ?: return null
        val ago = Ago.format(at, now)
        val failure = lastFailure ?: return "Last sync worked $ago"
        return "Last sync failed $ago: ${Messages.lastRunFailure(failure, lastError)}"
    }

    companion object {
        /** The indicator for an engine status. */
        fun from(status: SyncStatus, autoSync: Boolean): SyncIndicator = SyncIndicator(
            kind = when (status.phase) {
                SyncPhase.PUSHING, SyncPhase.PULLING -> SyncKind.SYNCING
                SyncPhase.OFFLINE -> SyncKind.OFFLINE
                SyncPhase.ERROR -> SyncKind.ERROR
                SyncPhase.PAUSED -> SyncKind.PAUSED
                SyncPhase.SIGNED_OUT -> SyncKind.SIGNED_OUT
                SyncPhase.IDLE -> if (status.pending > 0UL) SyncKind.PENDING else SyncKind.SYNCED
            },
            pending = status.pending.toLong(),
            conflicts = status.conflicts.toLong(),
            rejected = status.rejected.toLong(),
            lastSyncedAt = status.lastSyncedAt,
            lastError = status.lastError,
            pulled = status.pulled.toLong(),
            remaining = status.remaining.toLong(),
            realtime = status.realtime,
            autoSync = autoSync,
            lastRunAt = status.lastRunAt,
            lastFailure = status.lastFailure,
        )
    }
}

/**
 * The sync indicator shown on every screen: the engine's sync status as it changes (runs, pull
 * progress, pending/conflict/rejected counts, sign-in and sign-out), and "sync now" on tap.
 */
class SyncIndicatorStateHolder(
    private val host: TandemHost,
    settings: SettingsStore,
    scope: CoroutineScope,
) : StateHolder(scope) {
    private val manualRun = MutableStateFlow(false)

    val state: StateFlow<SyncIndicator> =
        combine(host.live { it.syncStatusAsFlow() }, settings.settings, manualRun) { status, app, running ->
            SyncIndicator.from(status, app.syncEnabled).copy(manualSyncRunning = running)
        }.stateIn(scope, SharingStarted.Eagerly, SyncIndicator())

    /**
     * Runs one sync now (push, then pull), also when automatic sync is off: a tap is an explicit
     * request. A failure (offline, signed out) shows in [message] and in the status itself.
     */
    suspend fun syncNow(): Boolean {
        manualRun.value = true
        return try {
            attempt { host.engine.syncNow() } != null
        } finally {
            manualRun.value = false
        }
    }
}
