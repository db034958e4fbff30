package dev.tandem

import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.io.TempDir

/** Many engines opened and closed leave no threads, callbacks or directory claims behind. */
@Timeout(120)
class LifecycleTest {
    @TempDir
    lateinit var dir: Path

    private fun jvmThreads(): Int = Thread.getAllStackTraces().size

    @Test
    fun `many engines opened and closed leak no threads`() {
        // Warm up: loads the library and starts JNA's and UniFFI's own long-lived helper threads
        // (the Cleaner), so only what the engines start is counted below.
        openTandem(dir.resolve("warmup")).use { it.put("plans", null, """{"name": "W"}""") }
        val nativeBefore = tandemThreads()
        val jvmBefore = jvmThreads()
        val callbacksBefore = liveCallbacks()

        repeat(40) { i ->
            // Half in fresh directories, half reopening one directory: its claim must be released.
            val where = if (i % 2 == 0) dir.resolve("engine-$i") else dir.resolve("shared")
            openTandem(where).use { tandem ->
                // A new thread names itself once it runs, so wait for that before counting.
                var running = 0
                if (nativeBefore != null) {
                    eventually(what = "the engine's threads to start") {
                        running = tandemThreads()!! - nativeBefore
                        running > 0
                    }
                }
                tandem.put("plans", "p$i", """{"name": "P"}""")
                val subscription = tandem.observe("plans", Query(), object : QueryObserver {
                    override fun onResults(records: List<Record>) = Unit
                })
                assertEquals(1, runBlocking { tandem.observeAsFlow("plans").first() }.count { it.id == "p$i" })
                tandem.addChangeListener(object : ChangeListener {
                    override fun onChange(collections: List<String>) = Unit
                })
                if (nativeBefore != null) {
                    // Calling back into Kotlin attaches the notification thread to the JVM; its
                    // name must survive that, or the count after closing would prove nothing.
                    // (More may have named themselves since; fewer would mean a name was lost.)
                    assertTrue(tandemThreads()!! - nativeBefore >= running, "threads still named after callbacks")
                }
                // The subscriptions are left open on purpose: closing the engine must end them.
                subscription.cancel()
            }
        }
        openTandem(dir.resolve("shared")).use { assertEquals(20UL, it.count("plans", Query())) }

        if (nativeBefore != null) {
            eventually(what = "Tandem's threads to stop") { tandemThreads() == nativeBefore }
        }
        eventually(what = "JVM threads back to $jvmBefore") { jvmThreads() <= jvmBefore }
        eventually(what = "every callback released") { liveCallbacks() == callbacksBefore }
    }

    @Test
    fun `shutdown stops the engine's threads even while the object is still referenced`() {
        val nativeBefore = tandemThreads() ?: return // only countable where /proc exists
        val tandem = openTandem(dir)
        eventually(what = "the engine's threads to start") { tandemThreads()!! > nativeBefore }
        tandem.shutdown()
        eventually(what = "threads to stop after shutdown()") { tandemThreads() == nativeBefore }
        tandem.close()
    }
}
