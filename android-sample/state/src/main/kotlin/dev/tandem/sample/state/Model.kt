package dev.tandem.sample.state

import dev.tandem.Filter
import dev.tandem.FilterOp
import dev.tandem.Record
import dev.tandem.RecordState
import java.time.Instant
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonNull
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.booleanOrNull
import kotlinx.serialization.json.contentOrNull
import kotlinx.serialization.json.intOrNull
import kotlinx.serialization.json.jsonPrimitive
import kotlinx.serialization.json.Json

/** The collection names of `schemas/sample.json`, the schema the app and the server share. */
object Collections {
    /** The user's own exercises. */
    const val EXERCISES = "exercises"
    const val PLANS = "plans"
    const val PLAN_DAYS = "plan_days"

    /** Plans in a space (`"scope": "space"`): shared with the space's members. */
    const val SHARED_PLANS = "shared_plans"

    /** Their days (a child collection, so in the same space as their plan). */
    const val SHARED_PLAN_DAYS = "shared_plan_days"

    /** The public exercise catalog (`"scope": "public"`): seeded by the server, read-only here. */
    const val CATALOG_EXERCISES = "catalog_exercises"
}

/**
 * Which plan: a personal one (`plans` and its `plan_days`) or one in a space (`shared_plans` and
 * its `shared_plan_days`, with the space's id). Every plan screen works on either pair.
 */
data class PlanRef(val collection: String, val id: String, val spaceId: String? = null) {
    val shared: Boolean get() = collection == Collections.SHARED_PLANS

    /** The collection of this plan's days. */
    val daysCollection: String get() = if (shared) Collections.SHARED_PLAN_DAYS else Collections.PLAN_DAYS

    companion object {
        fun personal(id: String) = PlanRef(Collections.PLANS, id)

        fun shared(id: String, spaceId: String) = PlanRef(Collections.SHARED_PLANS, id, spaceId)
    }
}

/**
 * An exercise: the user's own (`exercises`, editable) or the public catalog's
 * (`catalog_exercises`, [readOnly]). Days refer to exercises by id, from either.
 */
data class Exercise(
    val id: String,
    val name: String,
    val category: String,
    val notes: String,
    val state: RecordState,
    /** From the public catalog: the server's, never edited or deleted here. */
    val readOnly: Boolean = false,
)

/** A training plan (`plans`); archived plans are hidden from the list unless asked for. */
data class Plan(
    val id: String,
    val name: String,
    val notes: String,
    val archived: Boolean,
    val state: RecordState,
    val updatedAt: Instant,
    /** When the user last edited the plan, on any device; see [EditedAgo]. */
    val editedAt: Instant? = null,
    /** The space of a shared plan (`shared_plans`); null for a personal one. */
    val spaceId: String? = null,
) {
    val ref: PlanRef get() = spaceId?.let { PlanRef.shared(id, it) } ?: PlanRef.personal(id)
}

/**
 * One day of a plan (`plan_days`, a child of `plans` through `planId`, so deleting the plan
 * deletes its days). [exerciseIds] is ordered: it is the order the exercises are done in.
 */
data class PlanDay(
    val id: String,
    val planId: String,
    val dayIndex: Int,
    val title: String,
    val exerciseIds: List<String>,
    val state: RecordState,
)

/**
 * Reading and writing the sample's documents. Documents cross the Tandem boundary as JSON text;
 * this is the one place that turns them into the data classes above and back, reading
 * leniently (a field another client left out reads as its empty value) because records synced
 * from other devices may predate a field.
 */
object Documents {
    /** Parses a document; anything but a JSON object (a deleted record's `null`) is empty. */
    fun parse(json: String?): JsonObject =
        json?.let { runCatching { Json.parseToJsonElement(it) }.getOrNull() as? JsonObject } ?: JsonObject(emptyMap())

    fun exercise(record: Record): Exercise {
        val doc = parse(record.document)
        return Exercise(
            record.id,
            doc.string("name"),
            doc.string("category"),
            doc.string("notes"),
            record.state,
            readOnly = record.collection == Collections.CATALOG_EXERCISES,
        )
    }

    fun plan(record: Record): Plan {
        val doc = parse(record.document)
        return Plan(
            id = record.id,
            name = doc.string("name"),
            notes = doc.string("notes"),
            archived = (doc["archived"] as? JsonPrimitive)?.booleanOrNull ?: false,
            state = record.state,
            updatedAt = record.updatedAt,
            editedAt = record.editedAt,
            spaceId = record.spaceId,
        )
    }

    fun planDay(record: Record): PlanDay {
        val doc = parse(record.document)
        return PlanDay(
            id = record.id,
            planId = doc.string("planId"),
            dayIndex = (doc["dayIndex"] as? JsonPrimitive)?.intOrNull ?: 0,
            title = doc.string("title"),
            exerciseIds = (doc["exerciseIds"] as? JsonArray)
                ?.mapNotNull { (it as? JsonPrimitive)?.contentOrNull } ?: emptyList(),
            state = record.state,
        )
    }

    /**
     * A merge patch (RFC 7386) setting each given field; a blank string or null removes the
     * field, so optional fields stay absent instead of holding "".
     */
    fun patch(vararg fields: Pair<String, Any?>): String = JsonObject(fields.associate { (k, v) -> k to element(v) }).toString()

    /** A whole document of the given fields, leaving out blank optional ones. */
    fun document(vararg fields: Pair<String, Any?>): String =
        JsonObject(fields.map { (k, v) -> k to element(v) }.filter { it.second != JsonNull }.toMap()).toString()

    /** The JSON text of a filter value (`"\"abc\""` for a string), as `Filter.valueJson` wants. */
    fun value(v: Any?): String = element(v).toString()

    /** `field == value`, for queries. */
    fun eq(field: String, v: Any?): Filter = Filter(field, FilterOp.EQ, value(v))

    private fun element(v: Any?): JsonElement = when (v) {
        null -> JsonNull
        is String -> if (v.isBlank()) JsonNull else JsonPrimitive(v)
        is Boolean -> JsonPrimitive(v)
        is Number -> JsonPrimitive(v)
        is List<*> -> JsonArray(v.map { element(it) })
        is JsonElement -> v
        else -> throw IllegalArgumentException("not a JSON value: ${v::class.simpleName}")
    }

    private fun JsonObject.string(key: String): String = (this[key] as? JsonPrimitive)?.contentOrNull ?: ""

    /** The fields of a document as display text: strings bare, everything else as JSON. */
    fun displayFields(json: String?): Map<String, String> =
        parse(json).mapValues { (_, v) -> if (v is JsonPrimitive && v.isString) v.content else v.toString() }

    /** `name` or `title` of a document, whichever it has, for naming a record in lists. */
    fun displayName(json: String?): String? {
        val doc = parse(json)
        return listOf("name", "title").firstNotNullOfOrNull { key ->
            runCatching { doc[key]?.jsonPrimitive?.contentOrNull }.getOrNull()?.takeIf { it.isNotBlank() }
        }
    }
}
