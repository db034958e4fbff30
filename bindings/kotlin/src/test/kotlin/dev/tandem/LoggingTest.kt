package dev.tandem

import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension
import org.junit.jupiter.api.io.TempDir

/** The engine's log lines reach a [LogSink] the app installs (Android's `Log` in the sample). */
@Timeout(60)
class LoggingTest {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer()
    }

    @TempDir
    lateinit var dir: Path

    private class Lines : LogSink {
        val lines = CopyOnWriteArrayList<Triple<LogLevel, String, String>>()

        override fun log(level: LogLevel, target: String, message: String) {
            lines += Triple(level, target, message)
        }
    }

    @Test
    fun `a sync run reaches the log sink and no secret does`() = runBlocking {
        val sink = Lines()
        setLogSink(sink, LogLevel.DEBUG)
        try {
            val email = newEmail()
            val password = "kotlin-log-secret-4471"
            server.device(dir.resolve("a")).use { device ->
                device.signUp(email, password)
                device.put("plans", "p", """{"name": "Kotlin-log-plan-9902"}""")
                device.syncNow()
                val deadline = System.nanoTime() + 10_000_000_000L
                while (System.nanoTime() < deadline && sink.lines.none { "sync run finished" in it.third }) {
                    Thread.sleep(20)
                }
            }
            val run = sink.lines.firstOrNull { "sync run finished" in it.third }
            assertEquals(LogLevel.INFO to "tandem_core::sync::orchestrator", run?.let { it.first to it.second })
            assertTrue(sink.lines.none { (_, _, m) -> email in m || password in m || "Kotlin-log-plan-9902" in m })
            assertTrue(droppedLogLines() >= 0UL)
        } finally {
            clearLogSink()
        }
    }
}
