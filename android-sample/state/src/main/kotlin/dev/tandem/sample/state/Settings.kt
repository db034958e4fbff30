package dev.tandem.sample.state

import java.io.File
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.booleanOrNull
import kotlinx.serialization.json.contentOrNull

/**
 * The app's own preferences (not the engine's data): which server to talk to, whether automatic
 * sync is on, and the last email used, to prefill the sign-in form.
 */
data class AppSettings(
    val serverUrl: String,
    val syncEnabled: Boolean = true,
    val lastEmail: String = "",
)

/**
 * [AppSettings] kept in a small JSON file. A plain file rather than Android's preferences keeps
 * this module free of Android APIs; on Android the file lives in the app's private files
 * directory, next to (never inside) the directory the engine owns.
 *
 * Writes replace the file through a temporary file and a rename, so a crash mid-write leaves the
 * old settings rather than a truncated file.
 */
class SettingsStore(private val file: File, defaults: AppSettings) {
    private val state = MutableStateFlow(read() ?: defaults)

    /** The current settings; every [update] is seen here. */
    val settings: StateFlow<AppSettings> = state.asStateFlow()

    /** Applies [change] and writes the result. */
    fun update(change: (AppSettings) -> AppSettings) {
        synchronized(this) {
            state.update(change)
            write(state.value)
        }
    }

    private fun read(): AppSettings? {
        if (!file.isFile) return null
        val doc = Documents.parse(file.readText())
        val url = (doc["serverUrl"] as? JsonPrimitive)?.contentOrNull ?: return null
        return AppSettings(
            serverUrl = url,
            syncEnabled = (doc["syncEnabled"] as? JsonPrimitive)?.booleanOrNull ?: true,
            lastEmail = (doc["lastEmail"] as? JsonPrimitive)?.contentOrNull ?: "",
        )
    }

    private fun write(settings: AppSettings) {
        file.parentFile?.mkdirs()
        val text = JsonObject(
            mapOf(
                "serverUrl" to JsonPrimitive(settings.serverUrl),
                "syncEnabled" to JsonPrimitive(settings.syncEnabled),
                "lastEmail" to JsonPrimitive(settings.lastEmail),
            ),
        ).toString()
        val temporary = File(file.path + ".tmp")
        temporary.writeText(text)
        check(temporary.renameTo(file)) { "could not replace ${file.path}" }
    }
}
