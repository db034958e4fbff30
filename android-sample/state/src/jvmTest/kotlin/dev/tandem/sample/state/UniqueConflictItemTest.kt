package dev.tandem.sample.state

import dev.tandem.Conflict
import dev.tandem.ConflictReason
import dev.tandem.ValidationReason
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test

/** How the conflict center shows a unique-key conflict and the reference rejections. */
class UniqueConflictItemTest {
    @Test
    fun `a unique violation names the record holding the key`() {
        val item = ConflictCenterStateHolder.item(
            Conflict(
                collection = "files",
                id = "mine",
                reason = ConflictReason.UNIQUE_VIOLATION,
                fields = listOf("projectId", "path"),
                localDocument = """{"projectId":"p","path":"/a","size":2}""",
                serverDocument = null,
                baseDocument = null,
                serverVersion = 0UL,
                existingId = "theirs",
            ),
        )
        assertTrue(item.isUniqueViolation)
        assertEquals("theirs", item.existingId)
        assertEquals("Another device created theirs with the same projectId and path", item.reasonText)
        assertTrue(item.fields.first { it.field == "path" }.conflicting)
    }

    @Test
    fun `other conflicts name no existing record`() {
        val item = ConflictCenterStateHolder.item(
            Conflict("plans", "p", ConflictReason.BOTH_CHANGED, listOf("name"), """{"name":"A"}""", """{"name":"B"}""", null, 2UL, null),
        )
        assertFalse(item.isUniqueViolation)
        assertEquals(null, item.existingId)
    }

    @Test
    fun `reference rejections read as words`() {
        assertEquals(
            "A record it refers to was deleted on another device.",
            Messages.rejection(ValidationReason.INVALID_REFERENCE, "invalid_reference"),
        )
        assertEquals(
            "Other records still refer to it, so it cannot be deleted.",
            Messages.rejection(ValidationReason.RESTRICTED, "restricted"),
        )
    }
}
