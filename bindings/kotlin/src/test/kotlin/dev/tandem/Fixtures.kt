package dev.tandem

import java.io.File
import java.nio.file.Path
import kotlin.test.fail

/** The schema of the Python tests (bindings/python/tests): plans and their days, a cascade. */
const val SCHEMA = """{
  "version": 1,
  "collections": {
    "plans": {"fields": {"name": {"type": "string", "required": true, "maxLength": 200},
                         "notes": {"type": "string"}, "archived": {"type": "boolean"}}},
    "plan_days": {"parent": {"collection": "plans", "field": "planId"},
                  "fields": {"planId": {"type": "string", "required": true},
                             "dayIndex": {"type": "integer", "required": true},
                             "exerciseIds": {"type": "array"}},
                  "indexes": [["planId", "dayIndex"]]}
  }
}"""

fun openTandem(dir: Path, schema: String = SCHEMA): Tandem =
    Tandem.open(TandemConfig(dataDir = dir.toString(), schemaJson = schema))

fun ids(records: List<Record>): List<String> = records.map { it.id }.sorted()

/** Polls [condition] for up to [millis] of real time; the engine delivers on its own thread. */
fun eventually(millis: Long = 5_000, what: String, condition: () -> Boolean) {
    val deadline = System.nanoTime() + millis * 1_000_000
    while (!condition()) {
        if (System.nanoTime() > deadline) fail("timed out after $millis ms waiting for: $what")
        Thread.sleep(10)
    }
}

/** Observers and listeners that Rust still holds (UniFFI's foreign handle maps). */
fun liveCallbacks(): Int =
    FfiConverterTypeQueryObserver.handleMap.size + FfiConverterTypeChangeListener.handleMap.size +
        FfiConverterTypeSyncStatusListener.handleMap.size + FfiConverterTypeAuthStateListener.handleMap.size

/**
 * The OS threads of this process that engines started (`tandem-notify`, `tandem-checkpoint`; the
 * kernel keeps 15 characters of a name). Rust threads never show up in the JVM's thread list
 * unless they call back into Kotlin, so this reads /proc; null where there is none (macOS).
 *
 * `tandem-rt` is left out: that is the process-wide tokio runtime, started by the first sync or
 * auth call and alive until the process ends by design. Its blocking-pool threads carry the same
 * name and come and go on tokio's own keep-alive timer, so counting them would measure timing
 * (which test class ran first, how long ago), not leaks.
 */
fun tandemThreads(): Int? {
    val tasks = File("/proc/self/task").listFiles() ?: return null
    return tasks.count { task ->
        val name = runCatching { File(task, "comm").readText().trim() }.getOrDefault("")
        name.startsWith("tandem-") && name != "tandem-rt"
    }
}
