package dev.tandem

import java.io.File
import java.nio.file.Path
import kotlin.test.fail

/**
 * The one test schema, `schemas/test.json` (the Rust, Python and Swift tests load it too): plans
 * and their days, a cascade. Its path is `-Dtandem.test.schema` (set by the pom), else resolved
 * from this module's directory, where Maven runs the tests. Read on first use, so the Android
 * sample's state tests, which use this test-jar with their own schema, never need it.
 */
val SCHEMA: String by lazy {
    val file = File(System.getProperty("tandem.test.schema") ?: "../../schemas/test.json")
    check(file.isFile) { "the test schema is not at ${file.absolutePath}" }
    file.readText()
}

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
