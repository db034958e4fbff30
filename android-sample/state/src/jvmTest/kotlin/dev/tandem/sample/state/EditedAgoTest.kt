package dev.tandem.sample.state

import dev.tandem.Record
import dev.tandem.RecordState
import java.time.Duration
import java.time.Instant
import kotlin.test.assertEquals
import kotlin.test.assertNull
import org.junit.jupiter.api.Test

/** The "edited 2 min ago" label the plan screens show from a record's `editedAt`. */
class EditedAgoTest {
    private val now = Instant.parse("2026-12-07T12:00:00Z")

    private fun ago(d: Duration) = EditedAgo.format(now.minus(d), now)

    @Test
    fun `labels round down to the largest whole unit`() {
        assertEquals("edited just now", ago(Duration.ofSeconds(59)))
        assertEquals("edited 2 min ago", ago(Duration.ofSeconds(150)))
        assertEquals("edited 59 min ago", ago(Duration.ofMinutes(59)))
        assertEquals("edited 3 h ago", ago(Duration.ofMinutes(200)))
        assertEquals("edited yesterday", ago(Duration.ofHours(30)))
        assertEquals("edited 4 days ago", ago(Duration.ofDays(4)))
    }

    @Test
    fun `an edit time ahead of this device's clock reads as just now, and none as no label`() {
        assertEquals("edited just now", EditedAgo.format(now.plusSeconds(30), now))
        assertNull(EditedAgo.format(null, now))
    }

    @Test
    fun `a plan carries its record's edit time, not the store's write time`() {
        val edited = now.minusSeconds(120)
        val record = Record(
            collection = Collections.PLANS, id = "p", document = """{"name":"Legs"}""", version = 3UL,
            state = RecordState.SYNCED, createdAt = now, updatedAt = now, editedAt = edited,
        )
        val plan = Documents.plan(record)
        assertEquals(edited, plan.editedAt)
        assertEquals("edited 2 min ago", EditedAgo.format(plan.editedAt, now))
    }
}
