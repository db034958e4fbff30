package dev.tandem

import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.io.TempDir

/** `tandem.collection(name)` and `getMany`: the cheaper reads, with `Tandem`'s answers. */
@Timeout(60)
class CollectionTest {
    @TempDir
    lateinit var dir: Path
    private lateinit var tandem: Tandem

    @BeforeEach
    fun open() {
        tandem = openTandem(dir)
        tandem.write((0 until 5).map { WriteOp.Put("plans", "p$it", """{"name": "Plan $it"}""") })
    }

    @AfterEach
    fun close() {
        tandem.close()
    }

    @Test
    fun `a collection handle reads what Tandem reads`() {
        tandem.collection("plans").use { plans ->
            assertEquals("plans", plans.name())
            assertEquals(tandem.get("plans", "p1"), plans.get("p1"))
            assertEquals("""{"name":"Plan 1"}""", plans.get("p1")?.document)
            assertNull(plans.get("missing"))

            val firstTwo = Query(orderBy = listOf(OrderBy("name", descending = true)), limit = 2UL)
            assertEquals(tandem.query("plans", firstTwo), plans.query(firstTwo))
            assertEquals(listOf("p4", "p3"), plans.query(firstTwo).map { it.id })
            assertEquals(5UL, plans.count(Query()))

            tandem.delete("plans", "p1")
            assertNull(plans.get("p1"), "a deleted record reads as nothing, as with Tandem.get")
            assertEquals(4UL, plans.count(Query()))
        }
    }

    @Test
    fun `getMany answers in the order asked, null where nothing exists`() {
        val asked = listOf("p3", "missing", "p0", "p3")
        val many = tandem.getMany("plans", asked)
        assertEquals(listOf("p3", null, "p0", "p3"), many.map { it?.id })
        assertEquals(asked.map { tandem.get("plans", it) }, many)
        tandem.collection("plans").use { plans ->
            assertEquals(many, plans.getMany(asked))
            assertEquals(emptyList(), plans.getMany(emptyList()))
        }
        val unknown = assertFailsWith<TandemException.Validation> { tandem.getMany("nope", listOf("a")) }
        assertEquals(ValidationReason.UNKNOWN_ENTITY, unknown.reason)
    }

    @Test
    fun `an unknown collection is refused up front`() {
        val unknown = assertFailsWith<TandemException.Validation> { tandem.collection("nope") }
        assertEquals("nope" to ValidationReason.UNKNOWN_ENTITY, unknown.collection to unknown.reason)
    }

    @Test
    fun `a handle does not keep the store open`() {
        val plans = tandem.collection("plans")
        tandem.shutdown()
        assertFailsWith<TandemException.Closed> { plans.get("p0") }
        tandem.close()
        assertFailsWith<TandemException.Closed> { plans.getMany(listOf("p0")) }
        // The directory opens again at once although the old handle is still alive.
        tandem = openTandem(dir)
        tandem.collection("plans").use { reopened -> assertEquals("p0", reopened.get("p0")?.id) }
        assertFailsWith<TandemException.Closed> { plans.query(Query()) }
        plans.close()
    }
}
