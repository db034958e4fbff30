package dev.tandem

import java.nio.file.Path
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.io.TempDir

/** The engine driven through the generated Kotlin, as an Android app would drive it. */
@Timeout(60)
class TandemTest {
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
    fun `write, read, patch and the outbox`() {
        val plan = tandem.put("plans", null, """{"name": "Push day"}""")
        assertEquals(RecordState.PENDING, plan.state)
        assertEquals(0UL, plan.version)
        assertEquals(36, plan.id.length)
        assertEquals("""{"name":"Push day"}""", tandem.get("plans", plan.id)?.document)
        tandem.patch("plans", plan.id, """{"notes": "heavy"}""")
        assertEquals("""{"name":"Push day","notes":"heavy"}""", tandem.get("plans", plan.id)?.document)
        assertNull(tandem.get("plans", "missing"))
        assertEquals(1UL, tandem.pendingCount())
        val entries = tandem.outbox()
        assertEquals(listOf(Triple("plans", plan.id, ChangeKind.UPSERT)), entries.map { Triple(it.collection, it.id, it.kind) })
        assertTrue(!plan.updatedAt.isBefore(plan.createdAt))
    }

    @Test
    fun `an identical save writes nothing and revert drops unsent changes`() {
        val plan = tandem.put("plans", "p", """{"name": "P", "notes": "n"}""")
        val entries = tandem.outbox()
        val same = tandem.put("plans", "p", """{"notes": "n", "name": "P"}""")
        assertEquals(plan.updatedAt, same.updatedAt, "a no-op save rewrites nothing")
        assertEquals(same, tandem.patch("plans", "p", """{"name": "P"}"""))
        assertEquals(entries, tandem.outbox())

        tandem.put("plan_days", "d", """{"planId": "p", "dayIndex": 0}""")
        val reverted = tandem.revert("plans", "p")
        assertTrue(reverted.changed)
        assertNull(reverted.record, "never synced: it disappears")
        assertNull(tandem.get("plan_days", "d"), "with what was created below it")
        assertEquals(0UL, tandem.pendingCount())
        assertFailsWith<TandemException.NotFound> { tandem.revert("plans", "p") }
        assertFailsWith<TandemException.InvalidArgument> { tandem.revert("plans", "bad id") }
    }

    @Test
    fun `batch write, query and count`() {
        val ops = listOf<WriteOp>(WriteOp.Put("plans", "p", """{"name": "P"}""")) +
            (0 until 5).map { WriteOp.Put("plan_days", "d$it", """{"planId": "p", "dayIndex": $it}""") }
        assertEquals(6, tandem.write(ops).size)

        val byPlan = Query(
            filters = listOf(Filter("planId", FilterOp.EQ, "\"p\"")),
            orderBy = listOf(OrderBy("dayIndex", descending = true)),
            limit = 2UL,
        )
        assertEquals(listOf("d4", "d3"), tandem.query("plan_days", byPlan).map { it.id })
        assertEquals(5UL, tandem.count("plan_days", Query()))
        val late = Query(filters = listOf(Filter("dayIndex", FilterOp.IN, "[0, 3]")))
        assertEquals(listOf("d0", "d3"), tandem.query("plan_days", late).map { it.id })

        tandem.delete("plans", "p")
        assertEquals(0UL, tandem.count("plan_days", Query()), "delete cascades to the plan's days")
    }

    @Test
    fun `the generated SyncConfig defaults are the engine's`() {
        assertEquals(defaultSyncConfig(), SyncConfig())
    }

    @Test
    fun `errors arrive as typed exceptions with their fields`() {
        val missingName = assertFailsWith<TandemException.Validation> {
            tandem.put("plans", null, """{"notes": "no name"}""")
        }
        assertEquals(listOf<Any?>("plans", "name", ValidationReason.INVALID_PAYLOAD), listOf(missingName.collection, missingName.field, missingName.reason))
        assertEquals("invalid_payload", missingName.reasonCode)
        assertEquals("plans.name: required", missingName.detail)

        val orphan = assertFailsWith<TandemException.Validation> {
            tandem.put("plan_days", null, """{"planId": "123", "dayIndex": 0}""")
        }
        assertEquals("planId" to ValidationReason.INVALID_PARENT, orphan.field to orphan.reason)
        assertEquals("plan_days.planId: parent plans/123 does not exist", orphan.detail)

        val notFound = assertFailsWith<TandemException.NotFound> { tandem.delete("plans", "nope") }
        assertEquals("plans" to "nope", notFound.collection to notFound.id)

        assertFailsWith<TandemException.InvalidArgument> { tandem.put("plans", null, "{not json") }
        val badFilter = Query(filters = listOf(Filter("dayIndex", FilterOp.EQ, "\"3\"")))
        assertFailsWith<TandemException.InvalidArgument> { tandem.query("plan_days", badFilter) }

        // Apps catch the sealed base class and branch on the case, with its fields smart-cast.
        val error: TandemException = assertFailsWith<TandemException> { tandem.patch("plans", "ghost", "{}") }
        val described = when (error) {
            is TandemException.NotFound -> "missing ${error.collection}/${error.id}"
            is TandemException.Validation -> "invalid ${error.field}"
            else -> "other: $error"
        }
        assertEquals("missing plans/ghost", described)
        assertEquals(0UL, tandem.pendingCount())
    }

    @Test
    fun `bad schema, double open and use after shutdown`() {
        val other = dir.resolve("other")
        val schemaError = assertFailsWith<TandemException.Schema> {
            openTandem(other, """{"version": 1, "collections": {"X": {"fields": {}}}}""")
        }
        assertContains(schemaError.detail, "collections.X")

        assertFailsWith<TandemException.AlreadyOpen> { openTandem(dir) }
        tandem.shutdown()
        assertFailsWith<TandemException.Closed> { tandem.get("plans", "x") }
        openTandem(dir).use { reopened -> assertEquals(0UL, reopened.pendingCount()) }
    }

    @Test
    fun `observe with a Kotlin observer, then cancel the subscription`() {
        val results = LinkedBlockingQueue<List<String>>()
        val before = liveCallbacks()
        val subscription = tandem.observe("plans", Query(), object : QueryObserver {
            override fun onResults(records: List<Record>) {
                results.put(ids(records))
            }
        })
        assertEquals(emptyList(), results.poll(5, TimeUnit.SECONDS))
        tandem.put("plans", "a", """{"name": "A"}""")
        assertEquals(listOf("a"), results.poll(5, TimeUnit.SECONDS))
        assertEquals(before + 1, liveCallbacks())

        subscription.cancel()
        tandem.put("plans", "c", """{"name": "C"}""")
        assertNull(results.poll(300, TimeUnit.MILLISECONDS), "no delivery after cancel()")
        // Cancelling drops Rust's reference to the observer, so Kotlin's handle is released.
        eventually(what = "the observer to be released") { liveCallbacks() == before }
        subscription.close()
    }

    @Test
    fun `observers and writes from many threads`() {
        val changes = LinkedBlockingQueue<List<String>>()
        tandem.addChangeListener(object : ChangeListener {
            override fun onChange(collections: List<String>) {
                changes.put(collections)
            }
        }).use {
            val writers = (0 until 4).map { t ->
                Thread { repeat(10) { i -> tandem.put("plans", "t$t-$i", """{"name": "N"}""") } }
            }
            writers.forEach(Thread::start)
            writers.forEach(Thread::join)
            repeat(40) { assertEquals(listOf("plans"), changes.poll(5, TimeUnit.SECONDS)) }
            assertEquals(40UL, tandem.count("plans", Query()))
        }
    }
}
