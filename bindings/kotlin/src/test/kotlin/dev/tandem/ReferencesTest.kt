package dev.tandem

import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * References and unique constraints through the generated Kotlin: the typed errors of a local
 * write or delete, and a unique_violation between two devices, named and resolved.
 */
@Timeout(120)
class ReferencesTest : ServerTest(server) {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer()
    }

    @Test
    fun `references, restrict and unique keys fail with typed validation errors`() {
        val t = localDevice("local")
        val missing = assertFailsWith<TandemException.Validation> {
            t.put("schedule_days", "d", """{"dayTypeId": "nope"}""")
        }
        assertEquals(
            listOf<Any?>("schedule_days", "dayTypeId", ValidationReason.INVALID_REFERENCE, "invalid_reference"),
            listOf(missing.collection, missing.field, missing.reason, missing.reasonCode),
        )

        t.put("projects", "p", """{"name": "P"}""")
        t.put("day_types", "dt", """{"name": "Push"}""")
        t.put("schedule_days", "d", """{"title": "Mon", "dayTypeId": "dt"}""")
        t.put("files", "a", """{"projectId": "p", "path": "/a"}""")

        val taken = assertFailsWith<TandemException.Validation> {
            t.put("files", "b", """{"projectId": "p", "path": "/a"}""")
        }
        assertEquals(ValidationReason.UNIQUE_VIOLATION to "unique_violation", taken.reason to taken.reasonCode)
        assertContains(taken.detail, "held by a")

        val held = assertFailsWith<TandemException.Validation> { t.delete("projects", "p") }
        assertEquals(ValidationReason.RESTRICTED, held.reason)
        assertEquals("files" to "projectId", held.collection to held.field)
        assertContains(held.detail, "files/a")

        t.delete("day_types", "dt")
        assertEquals("""{"title":"Mon"}""", t.get("schedule_days", "d")?.document)
    }

    @Test
    fun `a unique violation names the existing record and keep-mine replaces it`() = runBlocking {
        val a = device("a")
        val b = device("b")
        oneAccount(a, b)
        a.put("projects", "p", """{"name": "P"}""")
        a.syncNow()
        b.syncNow()

        a.put("files", "fa", """{"projectId": "p", "path": "/same"}""")
        b.put("files", "fb", """{"projectId": "p", "path": "/same", "size": 2}""")
        a.syncNow()
        assertEquals(1UL, b.syncNow().conflicts)
        val conflict = b.conflicts().single()
        assertEquals(ConflictReason.UNIQUE_VIOLATION, conflict.reason)
        assertEquals("fb" to "fa", conflict.id to conflict.existingId)
        assertNull(conflict.serverDocument)

        b.resolve("files", "fb", Resolution.KeepMine)
        b.syncNow()
        a.syncNow()
        assertNull(a.get("files", "fa"))
        assertEquals("""{"path":"/same","projectId":"p","size":2}""".length, a.get("files", "fb")?.document?.length)
        assertEquals(emptyList(), b.conflicts())
    }
}
