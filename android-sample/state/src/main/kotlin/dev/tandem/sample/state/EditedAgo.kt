package dev.tandem.sample.state

import java.time.Duration
import java.time.Instant

/**
 * "edited 2 min ago" from a record's `editedAt`: when the user last edited it, on whichever
 * device (Tandem's edit time, not when this device's store last wrote it, which a pull also does).
 */
object EditedAgo {
    /** The label for [editedAt] seen at [now]; `null` when the record has no edit time. */
    fun format(editedAt: Instant?, now: Instant = Instant.now()): String? {
        editedAt ?: return null
        return "edited ${Ago.format(editedAt, now)}"
    }
}

/** "just now", "2 min ago", "3 h ago", "yesterday", "4 days ago": how long before [now] [at] was. */
object Ago {
    fun format(at: Instant, now: Instant = Instant.now()): String {
        // A device's clock may run a little behind the editing one's: never "in the future".
        val ago = Duration.between(at, now).coerceAtLeast(Duration.ZERO)
        return when {
            ago < Duration.ofMinutes(1) -> "just now"
            ago < Duration.ofHours(1) -> "${ago.toMinutes()} min ago"
            ago < Duration.ofDays(1) -> "${ago.toHours()} h ago"
            ago < Duration.ofDays(2) -> "yesterday"
            else -> "${ago.toDays()} days ago"
        }
    }
}
