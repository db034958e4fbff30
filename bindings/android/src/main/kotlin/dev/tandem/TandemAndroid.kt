package dev.tandem

import android.content.Context
import io.crates.keyring.Keyring

/**
 * Android start-up for Tandem. Call [initialize] once, in `Application.onCreate`, before the
 * first `Tandem.open` that has a `serverUrl`:
 *
 * ```kotlin
 * class App : Application() {
 *     override fun onCreate() {
 *         super.onCreate()
 *         TandemAndroid.initialize(this)
 *     }
 * }
 * ```
 *
 * It hands the application context to the native library twice: to the TLS certificate verifier
 * (Android's own trust store, through `rustls-platform-verifier`) and to the default secure store
 * (tokens encrypted with a key held in the Android Keystore).
 */
object TandemAndroid {
    init {
        System.loadLibrary("tandem")
    }

    /** Initialises the native library with [context]'s application context. Safe to call twice. */
    @JvmStatic
    fun initialize(context: Context) {
        val app = context.applicationContext
        check(initializeVerifier(app)) { "Tandem could not initialise the TLS certificate verifier" }
        Keyring.initializeNdkContext(app)
    }

    @JvmStatic
    private external fun initializeVerifier(context: Context): Boolean
}
