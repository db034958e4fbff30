package dev.tandem.sample.state

import dev.tandem.Encryption
import dev.tandem.KeyFailure
import dev.tandem.SecureStore
import dev.tandem.SyncConfig
import dev.tandem.Tandem
import dev.tandem.TandemConfig
import dev.tandem.TandemException
import dev.tandem.setAsideUnreadableData
import kotlinx.coroutines.ExperimentalCoroutinesApi
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.catch
import kotlinx.coroutines.flow.flatMapLatest

/**
 * How the app opens its engine. Everything platform-specific comes in from outside: the Android
 * app passes its files directory, the schema from its assets, `allowInsecureHttp =
 * BuildConfig.DEBUG` and no [secureStore] (the engine's default, the Android Keystore); the JVM
 * tests pass a temporary directory and an in-memory store.
 */
data class EngineOptions(
    /** The directory the engine owns (one database per account inside). */
    val dataDir: String,
    /** `schemas/sample.json`, the same document the server loads. */
    val schemaJson: String,
    /** Plain `http://` to a non-loopback host (the emulator's 10.0.2.2); debug builds only. */
    val allowInsecureHttp: Boolean = false,
    /** Where tokens go; null means the platform's secure storage. */
    val secureStore: SecureStore? = null,
    /** Realtime pokes from the server (SSE); the tests turn it off to move data explicitly. */
    val realtime: Boolean = true,
    /** Quiet period after a local write before a background run. */
    val debounceMs: Long = 300,
    /**
     * The plans on this phone are encrypted at rest (database, WAL and photo cache), with a key
     * the engine generates and keeps in the Android Keystore-backed store (or [secureStore]).
     */
    val encryption: Encryption = Encryption.ON,
)

/**
 * Owns the app's one [Tandem] engine. The engine's server URL is fixed when it opens, so
 * changing the server (from the sign-in screen) shuts the engine down and opens it again on the
 * same data; [tandem] then emits the new instance, and every live query built with [live]
 * re-subscribes to it on its own.
 *
 * Automatic sync follows [AppSettings.syncEnabled]: started on open when on, stopped when off.
 */
class TandemHost(private val options: EngineOptions, private val settings: SettingsStore) : AutoCloseable {
    private val current = MutableStateFlow(openEngine(settings.settings.value.serverUrl))

    /** The engine now; a new instance after [changeServer]. */
    val tandem: StateFlow<Tandem> = current.asStateFlow()

    /** Shorthand for the engine now. */
    val engine: Tandem get() = current.value

    /**
     * Points the app at another server: a no-op for the current URL, else the engine reopens.
     * Only meant while signed out (sessions belong to a server). A URL the engine refuses
     * (malformed, or plain HTTP to a remote host in a release build) fails with
     * [TandemException.InvalidArgument] and the engine stays on the old server.
     */
    @Synchronized
    fun changeServer(url: String) {
        val trimmed = url.trim().trimEnd('/')
        if (trimmed == settings.settings.value.serverUrl) return
        val old = current.value
        // shutdown() rather than close(): calls still under way on the old instance (a screen's
        // query mid-flight) then fail with TandemException.Closed, which the callers handle,
        // instead of touching a freed object.
        old.shutdown()
        val next = try {
            openEngine(trimmed)
        } catch (e: TandemException) {
            current.value = openEngine(settings.settings.value.serverUrl)
            throw e
        }
        settings.update { it.copy(serverUrl = trimmed) }
        current.value = next
    }

    /** Turns automatic sync on or off, now and for later launches. */
    fun setSyncEnabled(enabled: Boolean) {
        settings.update { it.copy(syncEnabled = enabled) }
        if (enabled) engine.startSync() else engine.stopSync()
    }

    /**
     * A flow over whichever engine is current: [block] runs again for each new instance, and
     * the previous instance's flow is cancelled. A flow that fails because its engine was shut
     * down under it (a server switch racing the cancellation) ends quietly, since the next
     * instance brings a fresh one; any other failure is a bug and goes on to the collector.
     */
    @OptIn(ExperimentalCoroutinesApi::class)
    fun <T> live(block: (Tandem) -> Flow<T>): Flow<T> =
        tandem.flatMapLatest { engine ->
            block(engine).catch { e -> if (e !is TandemException.Closed) throw e }
        }

    override fun close() {
        current.value.shutdown()
    }

    /**
     * Opens the engine; when the data was restored from another phone's backup (its files came
     * back, the Keystore keys did not: `Key` with `MISSING`), the unreadable databases are set
     * aside (renamed, not deleted) and the app starts afresh: the user signs in again and the
     * server's copy comes back. A store not readable yet (`UNAVAILABLE`) is left alone.
     */
    private fun openOrStartAfresh(config: TandemConfig): Tandem =
        try {
            Tandem.open(config)
        } catch (e: TandemException.Key) {
            if (e.kind != KeyFailure.MISSING) throw e
            setAsideUnreadableData(config)
            Tandem.open(config)
        }

    private fun openEngine(url: String): Tandem {
        // A call still running on the old, shut-down instance holds its database a moment
        // longer; open waits for it to let go.
        val config = TandemConfig(
            dataDir = options.dataDir,
            schemaJson = options.schemaJson,
            serverUrl = url,
            allowInsecureHttp = options.allowInsecureHttp,
            sync = SyncConfig(realtime = options.realtime, debounceMs = options.debounceMs.toULong()),
            secureStore = options.secureStore,
            encryption = options.encryption,
        )
        val engine = openOrStartAfresh(config)
        if (settings.settings.value.syncEnabled) engine.startSync()
        return engine
    }
}
