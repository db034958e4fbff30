package dev.tandem

import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir

/**
 * The Flow adapters (Flows.kt). Deliveries come from Tandem's notification thread, in real time,
 * so waits that must pass real time run on Dispatchers.Default, outside runTest's virtual clock.
 */
class FlowTest {
    @TempDir
    lateinit var dir: Path
    private lateinit var tandem: Tandem

    @BeforeEach
    fun open() {
        tandem = openTandem(dir)
    }

    @AfterEach
    fun close() {
        tandem.close()
    }

    @Test
    fun `observeAsFlow emits the current results, then each change`() = runTest(timeout = 30.seconds) {
        val before = liveCallbacks()
        // Each emission triggers the next write, so no result set can be conflated away.
        val seen = mutableListOf<List<String>>()
        val last = tandem.observeAsFlow("plans")
            .map(::ids)
            .onEach { ids ->
                seen += ids
                when (ids) {
                    emptyList<String>() -> tandem.put("plans", "a", """{"name": "A"}""")
                    listOf("a") -> tandem.put("plans", "b", """{"name": "B"}""")
                }
            }
            .first { it == listOf("a", "b") }
        assertEquals(listOf("a", "b"), last)
        assertEquals(listOf(emptyList(), listOf("a"), listOf("a", "b")), seen)

        // first() ended the collection: the subscription is cancelled and the observer released.
        testScheduler.advanceUntilIdle()
        eventually(what = "the flow's observer to be released") { liveCallbacks() == before }
    }

    @Test
    fun `observeAsFlow applies the query`() = runTest(timeout = 30.seconds) {
        tandem.put("plans", "p", """{"name": "P"}""")
        val dayTwo = Query(filters = listOf(Filter("dayIndex", FilterOp.GE, "2")))
        val days = async { tandem.observeAsFlow("plan_days", dayTwo).map(::ids).first { it.isNotEmpty() } }
        testScheduler.runCurrent()
        tandem.write((0 until 4).map { WriteOp.Put("plan_days", "d$it", """{"planId": "p", "dayIndex": $it}""") })
        assertEquals(listOf("d2", "d3"), days.await())
    }

    @Test
    fun `observeRecordAsFlow follows one record`() = runTest(timeout = 30.seconds) {
        val seen = Channel<String?>(Channel.UNLIMITED)
        val job = launch { tandem.observeRecordAsFlow("plans", "p").collect { seen.send(it?.document) } }
        assertEquals(null, seen.receive(), "absent at first")
        tandem.put("plans", "p", """{"name": "P"}""")
        assertEquals("""{"name":"P"}""", seen.receive())
        tandem.put("plans", "other", """{"name": "O"}""")
        tandem.patch("plans", "p", """{"notes": "n"}""")
        assertEquals("""{"name":"P","notes":"n"}""", seen.receive(), "another record's write emits nothing")
        tandem.delete("plans", "p")
        assertEquals(null, seen.receive())
        job.cancel()
    }

    @Test
    fun `cancelling the collector cancels the subscription`() = runTest(timeout = 30.seconds) {
        val before = liveCallbacks()
        val received = Channel<List<String>>(Channel.UNLIMITED)
        val job = launch { tandem.observeAsFlow("plans").map(::ids).collect { received.send(it) } }
        assertEquals(emptyList(), received.receive())
        assertEquals(before + 1, liveCallbacks(), "one observer registered by the collector")

        tandem.put("plans", "a", """{"name": "A"}""")
        assertEquals(listOf("a"), received.receive())

        job.cancel()
        job.join()
        eventually(what = "the subscription to be cancelled") { liveCallbacks() == before }
        tandem.put("plans", "b", """{"name": "B"}""")
        val late = withContext(Dispatchers.Default) { withTimeoutOrNull(300) { received.receive() } }
        assertEquals(null, late, "no results after the collector was cancelled")
    }

    @Test
    fun `a registration error reaches the collector`() = runTest(timeout = 30.seconds) {
        val badFilter = Query(filters = listOf(Filter("dayIndex", FilterOp.EQ, "\"not a number\"")))
        val error = runCatching { tandem.observeAsFlow("plan_days", badFilter).first() }.exceptionOrNull()
        assertTrue(error is TandemException.InvalidArgument, "got $error")
    }

    @Test
    fun `changesAsFlow emits once per commit, without dropping any`() = runTest(timeout = 30.seconds) {
        val before = liveCallbacks()
        val changes = async(start = CoroutineStart.UNDISPATCHED) { tandem.changesAsFlow().take(3).toList() }
        // Let the collector register before writing, in real time.
        testScheduler.runCurrent()
        withContext(Dispatchers.Default) {
            withTimeout(5_000) { while (liveCallbacks() == before) delay(5) }
        }
        tandem.put("plans", "p", """{"name": "P"}""")
        tandem.put("plan_days", "d", """{"planId": "p", "dayIndex": 0}""")
        tandem.delete("plans", "p")
        assertEquals(listOf(listOf("plans"), listOf("plan_days"), listOf("plan_days", "plans")), changes.await())
        testScheduler.advanceUntilIdle()
        eventually(what = "the change listener to be released") { liveCallbacks() == before }
    }
}
