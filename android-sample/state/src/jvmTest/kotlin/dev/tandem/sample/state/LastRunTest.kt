package dev.tandem.sample.state

import dev.tandem.InMemorySecureStore
import dev.tandem.SecureStore
import dev.tandem.SyncFailure
import dev.tandem.TandemException
import dev.tandem.TandemServer
import java.nio.file.Path
import java.time.Instant
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension
import org.junit.jupiter.api.io.TempDir

/**
 * The sync indicator's last run: when it ended and, typed, why it failed. The engine keeps both in
 * the store, so an app launched after a failed sync shows the failure at once, not a blank state.
 */
@Timeout(120)
class LastRunTest {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer(schema = null)
    }

    @TempDir
    lateinit var root: Path
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val graphs = mutableListOf<SampleGraph>()

    @AfterEach
    fun close() {
        scope.cancel()
        graphs.forEach(SampleGraph::close)
        runCatching { server.start() }
    }

    /** One launch of the app on the phone: the same data directory and token store every time. */
    private fun launch(store: SecureStore): SampleGraph = launchApp(root, server.url, store).also(graphs::add)

    @Test
    fun `a failed sync shows with its reason and time after the app is launched again, until a run works`() = runBlocking<Unit> {
        val store = InMemorySecureStore()
        val first = launch(store)
        first.host.engine.signUp(newEmail(), PASSWORD)
        first.host.engine.put(Collections.PLANS, null, Documents.document("name" to "Legs"))
        first.host.engine.syncNow()
        val worked = SyncIndicatorStateHolder(first.host, first.settings, scope).state
            .await("a run that worked") { it.lastRunAt != null && it.kind == SyncKind.SYNCED }
        assertNull(worked.lastFailure)
        assertTrue(worked.lastRunText()!!.startsWith("Last sync worked"), worked.lastRunText())

        server.stop()
        first.host.engine.put(Collections.PLANS, null, Documents.document("name" to "Arms"))
        val failure = assertFailsWith<TandemException.Sync> { first.host.engine.syncNow() }
        assertEquals(SyncFailure.OFFLINE, failure.kind)
        first.close()
        graphs.remove(first)

        // The next launch, before any run: the indicator already says the last sync failed, why and when.
        val second = launch(store)
        val indicator = SyncIndicatorStateHolder(second.host, second.settings, scope)
        val shown = indicator.state.await("the stored failure") { it.lastFailure != null }
        assertEquals(SyncKind.OFFLINE, shown.kind)
        assertEquals(SyncFailure.OFFLINE, shown.lastFailure)
        assertTrue(shown.lastRunFailed)
        val failedAt = assertNotNull(shown.lastRunAt)
        assertTrue(failedAt >= worked.lastRunAt!!, "$failedAt is the failed run, after $worked")
        assertEquals(worked.lastSyncedAt, shown.lastSyncedAt, "the last success is still shown next to it")
        assertEquals(
            "Last sync failed just now: the server could not be reached.",
            shown.lastRunText(failedAt.plusSeconds(5)),
        )

        server.start()
        assertTrue(indicator.syncNow())
        val back = indicator.state.await("a run that worked again") { it.lastFailure == null && it.kind == SyncKind.SYNCED }
        assertTrue(back.lastRunAt!! >= failedAt)
        assertEquals("Last sync worked 2 min ago", back.lastRunText(back.lastRunAt!!.plusSeconds(150)))
    }

    @Test
    fun `the last run reads as words for each failure`() {
        val at = Instant.parse("2026-12-07T12:00:00Z")
        val now = at.plusSeconds(3 * 3600)
        assertNull(SyncIndicator().lastRunText(now), "no run yet: nothing to say")
        assertEquals("Last sync worked 3 h ago", SyncIndicator(lastRunAt = at).lastRunText(now))
        assertEquals(
            "Last sync failed 3 h ago: the server failed (sync: server error 500).",
            SyncIndicator(lastRunAt = at, lastFailure = SyncFailure.SERVER, lastError = "sync: server error 500").lastRunText(now),
        )
        assertEquals(
            "Last sync failed 3 h ago: the session ended; sign in again.",
            SyncIndicator(lastRunAt = at, lastFailure = SyncFailure.SESSION_EXPIRED).lastRunText(now),
        )
        // Every kind has its words.
        SyncFailure.entries.forEach { assertTrue(Messages.lastRunFailure(it, null).endsWith("."), "$it") }
    }
}
