package dev.tandem.sample

import android.util.Log
import dev.tandem.LogLevel
import dev.tandem.LogSink
import dev.tandem.setLogSink

/**
 * The engine's log lines in logcat, under the tag `Tandem`. Tandem calls [log] on a thread of its
 * own, so a slow logcat never holds sync up. The engine never logs tokens, passwords, emails or
 * record contents: ids, collection names, counts and error kinds only.
 */
object EngineLog : LogSink {
    private const val TAG = "Tandem"

    /** Installs the sink: debug builds see the engine's debug lines, release builds info and up. */
    fun install(debug: Boolean) {
        setLogSink(this, if (debug) LogLevel.DEBUG else LogLevel.INFO)
    }

    override fun log(level: LogLevel, target: String, message: String) {
        val line = "$target: $message"
        when (level) {
            LogLevel.ERROR -> Log.e(TAG, line)
            LogLevel.WARN -> Log.w(TAG, line)
            LogLevel.INFO -> Log.i(TAG, line)
            LogLevel.DEBUG -> Log.d(TAG, line)
            LogLevel.TRACE -> Log.v(TAG, line)
        }
    }
}
