package dev.tandem.sample.state

import dev.tandem.AuthState
import dev.tandem.Tandem
import dev.tandem.authStateAsFlow
import dev.tandem.syncStatusAsFlow
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.withContext

/** Sync counters since the engine opened, for the diagnostics section. */
data class Diagnostics(
    val runs: Long = 0,
    val failures: Long = 0,
    val opsPushed: Long = 0,
    val changesPulled: Long = 0,
    val bytesSent: Long = 0,
    val bytesReceived: Long = 0,
    val lastRunDurationMs: Long = 0,
    /** How often a run was asked for, by reason (local_write, foreground, connectivity …). */
    val triggers: List<Pair<String, Long>> = emptyList(),
    /** Entries in the outbox (pending, in flight or refused). */
    val outboxEntries: Int = 0,
)

/** The settings screen. */
data class SettingsState(
    /** The signed-in account's email; null when signed out. */
    val email: String? = null,
    val userId: String? = null,
    val serverUrl: String = "",
    val syncEnabled: Boolean = true,
    val diagnostics: Diagnostics = Diagnostics(),
)

/**
 * Account, sign-out (keeping the account's local data on the device for the next sign-in, or
 * wiping it), automatic sync on/off, and diagnostics that refresh with every status change.
 */
class SettingsStateHolder(
    private val host: TandemHost,
    settings: SettingsStore,
    scope: CoroutineScope,
    private val io: CoroutineDispatcher = Dispatchers.IO,
) : StateHolder(scope) {
    val state: StateFlow<SettingsState> = combine(
        host.live { it.authStateAsFlow() },
        settings.settings,
        host.live { engine -> diagnostics(engine) },
    ) { auth, app, diagnostics ->
        val user = when (auth) {
            is AuthState.SignedIn -> auth.user
            is AuthState.SessionExpired -> auth.user
            AuthState.SignedOut -> null
        }
        SettingsState(user?.email, user?.id, app.serverUrl, app.syncEnabled, diagnostics)
    }.stateIn(scope, SharingStarted.Eagerly, SettingsState(serverUrl = settings.settings.value.serverUrl))

    /**
     * Signs out. With [wipeLocalData] the account's database (pending changes included) is
     * deleted from the device; without, it waits for the next sign-in of the same account.
     */
    suspend fun signOut(wipeLocalData: Boolean) = attempt { host.engine.signOut(wipeLocalData) } != null

    /** Automatic sync on or off (a tap on the indicator still syncs). */
    suspend fun setSyncEnabled(enabled: Boolean) = attempt { withContext(io) { host.setSyncEnabled(enabled) } } != null

    private fun diagnostics(engine: Tandem): Flow<Diagnostics> =
        engine.syncStatusAsFlow().conflate().map {
            withContext(io) {
                val metrics = engine.syncMetrics()
                Diagnostics(
                    runs = metrics.runs.toLong(),
                    failures = metrics.failures.toLong(),
                    opsPushed = metrics.opsPushed.toLong(),
                    changesPulled = metrics.changesPulled.toLong(),
                    bytesSent = metrics.bytesSent.toLong(),
                    bytesReceived = metrics.bytesReceived.toLong(),
                    lastRunDurationMs = metrics.lastRunDurationMs.toLong(),
                    triggers = metrics.triggers.map { it.reason to it.count.toLong() },
                    outboxEntries = engine.outbox().size,
                )
            }
        }
}
