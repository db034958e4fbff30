package io.crates.keyring

import android.content.Context

/**
 * The Kotlin side of the JNI entry point that `android-native-keyring-store` (linked into
 * `libtandem.so`) exports as `Java_io_crates_keyring_Keyring_initializeNdkContext`. Its package
 * and name are fixed by that symbol. Apps call `TandemAndroid.initialize`, not this.
 */
class Keyring {
    companion object {
        init {
            System.loadLibrary("tandem")
        }

        /** Gives the keyring store the app's context (for the Keystore and SharedPreferences). */
        @JvmStatic
        external fun initializeNdkContext(context: Context)
    }
}
