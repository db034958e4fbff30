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
    const val EXERCISES = "exercises"
    const val PLANS = "plans"
    const val PLAN_DAYS = "plan_days"
}

/** An exercise of the catalog (`exercises`). Days refer to exercises by id. */
data class Exercise(
    val id: String,
    val name: String,
    val category: String,
    val notes: String,
    val state: RecordState,
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
)

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
        return Exercise(record.id, doc.string("name"), doc.string("category"), doc.string("notes"), record.state)
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
