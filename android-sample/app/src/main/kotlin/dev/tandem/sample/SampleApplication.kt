package dev.tandem.sample

import android.app.Application
import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.ProcessLifecycleOwner
import dev.tandem.TandemAndroid
import dev.tandem.sample.state.AppSettings
import dev.tandem.sample.state.EngineOptions
import dev.tandem.sample.state.PlatformSync
import dev.tandem.sample.state.SampleGraph

/**
 * The process's one engine and its platform wiring: Tandem's Android start-up, the foreground
 * and connectivity signals, and the periodic background sync.
 */
class SampleApplication : Application() {
    /** The long-lived objects every screen and the background worker share. */
    lateinit var graph: SampleGraph
        private set

    override fun onCreate() {
        super.onCreate()
        // First, so that what the engine does from its first call on shows in logcat.
        EngineLog.install(debug = BuildConfig.DEBUG)
        // Before the first Tandem.open with a server: the TLS verifier gets Android's trust
        // store, the default secure store the Android Keystore (tokens never touch the database).
        TandemAndroid.initialize(this)
        val schema = assets.open("sample.json").bufferedReader().use { it.readText() }
        // Opened here, on the main thread, once: every screen needs the engine at once, and
        // opening is a few small SQLite reads.
        graph = SampleGraph(
            EngineOptions(
                dataDir = filesDir.resolve("tandem").path,
                schemaJson = schema,
                // Plain HTTP to the emulator's host is for development only.
                allowInsecureHttp = BuildConfig.DEBUG,
            ),
            settingsFile = filesDir.resolve("settings.json"),
            defaults = AppSettings(serverUrl = BuildConfig.DEFAULT_SERVER_URL),
        )

        ProcessLifecycleOwner.get().lifecycle.addObserver(
            object : DefaultLifecycleObserver {
                // onStart of the process: the first activity became visible (app launch or
                // return from the background), the moment to catch up.
                override fun onStart(owner: LifecycleOwner) = graph.platform.onForeground()
            },
        )
        ConnectivityWatcher(this, graph.platform).start()
        SyncWorker.schedule(this)
    }
}

/**
 * Forwards the device's default network coming and going to the engine: back online retries at
 * once instead of waiting out a backoff, and offline shows on the indicator straight away.
 */
private class ConnectivityWatcher(context: Context, private val platform: PlatformSync) {
    private val manager = context.getSystemService(ConnectivityManager::class.java)

    fun start() {
        val active = manager.activeNetwork?.let(manager::getNetworkCapabilities)
        if (active?.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET) != true) {
            platform.onConnectivity(false)
        }
        // Registered for the life of the process, like the engine it informs.
        manager.registerDefaultNetworkCallback(
            object : ConnectivityManager.NetworkCallback() {
                override fun onAvailable(network: Network) = platform.onConnectivity(true)

                override fun onLost(network: Network) = platform.onConnectivity(false)
            },
        )
    }
}
