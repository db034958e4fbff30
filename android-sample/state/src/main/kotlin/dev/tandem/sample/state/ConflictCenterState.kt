package dev.tandem.sample.state

import dev.tandem.ChangeKind
import dev.tandem.Conflict
import dev.tandem.ConflictReason
import dev.tandem.RejectedChange
import dev.tandem.Resolution
import dev.tandem.Tandem
import dev.tandem.ValidationReason
import dev.tandem.changesAsFlow
import dev.tandem.syncStatusAsFlow
import java.time.Instant
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.merge
import kotlinx.coroutines.flow.onStart
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.withContext
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.contentOrNull

/** One field of a conflicted record, both sides next to each other. Null means "not set". */
data class FieldComparison(
    val field: String,
    val mine: String?,
    val server: String?,
    /** Changed on both sides (the engine's `fields`), or the whole record for a delete conflict. */
    val conflicting: Boolean,
)

/** A conflict as the conflict center shows it. */
data class ConflictItem(
    val collection: String,
    val id: String,
    /** The record's name or title (from whichever side has one), else its id. */
    val title: String,
    val reason: ConflictReason,
    val reasonText: String,
    val fields: List<FieldComparison>,
    /** This device deleted the record (Keep Mine deletes it everywhere). */
    val mineDeleted: Boolean,
    /** Another device deleted it (Keep Server deletes it here). */
    val serverDeleted: Boolean,
    /**
     * A unique-key conflict: the record that holds the key on the server. Keep Mine replaces it
     * (deletes it, then sends this one), Keep Server drops this one, [keepBoth] gives this one
     * another key.
     */
    val existingId: String? = null,
    /** This device's document as it waits to go up (null when this device deleted the record). */
    val mineDocument: String? = null,
    /** A unique-key conflict: the fields of the key both records hold (empty otherwise). */
    val keyFields: List<String> = emptyList(),
) {
    val isUniqueViolation: Boolean get() = reason == ConflictReason.UNIQUE_VIOLATION

    /**
     * The field "keep both" asks a new value for: the key's last field that holds text here
     * (`path` of `(projectId, path)`: the leading fields usually name what the record belongs
     * to); null when keep both is not offered (not a unique conflict, or mine was deleted).
     */
    val keepBothField: String?
        get() {
            if (!isUniqueViolation || mineDocument == null) return null
            val doc = Documents.parse(mineDocument)
            return keyFields.lastOrNull { (doc[it] as? JsonPrimitive)?.isString == true } ?: keyFields.lastOrNull()
        }

    /** What the keep-both field starts with: this device's value and " (2)", e.g. "/a (2)". */
    val keepBothSuggestion: String?
        get() = keepBothField?.let { field -> Documents.displayFields(mineDocument)[field]?.let { "$it (2)" } ?: "" }

    /**
     * This device's document with [value] as [field] (a number stays a number when [value] reads
     * as one): what keep both sends. Refuses a blank value and the one the other record holds,
     * so the user gets a word instead of a second conflict.
     */
    fun keepBothDocument(field: String, value: String): String {
        val doc = Documents.parse(mineDocument)
        val text = value.trim()
        require(text.isNotEmpty()) { "Enter a new $field to keep both." }
        val old = doc[field] as? JsonPrimitive
        require(old?.contentOrNull != text) { "Another record already has this $field; enter a different one." }
        val number = if (old != null && !old.isString) text.toLongOrNull() ?: text.toDoubleOrNull() else null
        val element = number?.let { JsonPrimitive(it) } ?: JsonPrimitive(text)
        return JsonObject(doc + (field to element)).toString()
    }
}

/** A change the server refused, with the reason in words. */
data class RejectedItem(
    val opId: String,
    val collection: String,
    val id: String,
    val title: String,
    val kind: ChangeKind,
    val reason: ValidationReason,
    /** The server's code for [reason] (also for one this app does not know). */
    val reasonCode: String,
    val reasonText: String,
    val createdAt: Instant,
)

/** The conflict center screen. */
data class ConflictCenterState(
    val conflicts: List<ConflictItem> = emptyList(),
    val rejected: List<RejectedItem> = emptyList(),
    val loaded: Boolean = false,
)

/**
 * Conflicts waiting for the user and changes the server refused. The lists reload whenever the
 * engine's counts change or a commit lands (a sync bringing a new conflict, a resolve on this
 * device), so resolving one needs no restart and no manual refresh.
 */
class ConflictCenterStateHolder(
    private val host: TandemHost,
    scope: CoroutineScope,
    private val io: CoroutineDispatcher = Dispatchers.IO,
) : StateHolder(scope) {
    private val reload = MutableSharedFlow<Unit>(extraBufferCapacity = 1)

    val state: StateFlow<ConflictCenterState> = host.live { engine -> triggers(engine).map { withContext(io) { load(engine) } } }
        .stateIn(scope, SharingStarted.Eagerly, ConflictCenterState())

    /** Keeps this device's version; it goes up with the next sync and wins there. */
    suspend fun keepMine(item: ConflictItem) = settle(item, Resolution.KeepMine)

    /** Takes the server's version and drops this device's change. */
    suspend fun keepServer(item: ConflictItem) = settle(item, Resolution.KeepServer)

    /**
     * A unique-key conflict kept on both sides: this device's record is sent again with
     * [documentJson], which must hold another key (the engine checks it like any write).
     */
    suspend fun keepBoth(item: ConflictItem, documentJson: String) =
        settle(item, Resolution.Merged(documentJson))

    /**
     * Keep both, as the conflict center's form does it: this device's record gets [value] as
     * its key field [field] (see [ConflictItem.keepBothField]) and goes up with the next sync;
     * the record holding the old key stays. A blank or unchanged value fails with [message].
     */
    suspend fun keepBoth(item: ConflictItem, field: String, value: String): Boolean {
        val document = attempt { item.keepBothDocument(field, value) } ?: return false
        return keepBoth(item, document)
    }

    /**
     * Drops a refused change: the record goes back to the server's version (or away, if the
     * server never had it).
     */
    suspend fun discard(item: RejectedItem): Boolean {
        val done = attempt { withContext(io) { host.engine.discardRejected(item.opId) } } != null
        reload.tryEmit(Unit)
        return done
    }

    private suspend fun settle(item: ConflictItem, resolution: Resolution): Boolean {
        val done = attempt { withContext(io) { host.engine.resolve(item.collection, item.id, resolution) } } != null
        reload.tryEmit(Unit)
        return done
    }

    /** When to read the lists again: at once, on count changes, on commits, after an action. */
    private fun triggers(engine: Tandem): Flow<Unit> = merge(
        engine.syncStatusAsFlow().map { it.conflicts to it.rejected }.distinctUntilChanged().map { },
        engine.changesAsFlow().map { },
        reload,
    ).onStart { emit(Unit) }.conflate()

    private fun load(engine: Tandem) = ConflictCenterState(
        conflicts = engine.conflicts().map(::item),
        rejected = engine.rejected().map(::item),
        loaded = true,
    )

    companion object {
        /** How a conflict looks on screen: both documents field by field. */
        fun item(conflict: Conflict): ConflictItem {
            val mine = Documents.displayFields(conflict.localDocument)
            val server = Documents.displayFields(conflict.serverDocument)
            val whole = conflict.localDocument == null || conflict.serverDocument == null
            val names = (mine.keys + server.keys).distinct()
            // The contested fields first: they are what the user decides about.
            val ordered = names.sortedBy { if (it in conflict.fields) 0 else 1 }
            return ConflictItem(
                collection = conflict.collection,
                id = conflict.id,
                title = Documents.displayName(conflict.localDocument)
                    ?: Documents.displayName(conflict.serverDocument)
                    ?: Documents.displayName(conflict.baseDocument)
                    ?: conflict.id,
                reason = conflict.reason,
                reasonText = when (conflict.reason) {
                    ConflictReason.BOTH_CHANGED -> "Changed here and on another device"
                    ConflictReason.LOCAL_EDIT_SERVER_DELETE -> "Edited here, deleted on another device"
                    ConflictReason.LOCAL_DELETE_SERVER_EDIT -> "Deleted here, edited on another device"
                    ConflictReason.MANUAL -> "Needs your decision"
                    ConflictReason.UNIQUE_VIOLATION ->
                        "Another device created ${conflict.existingId ?: "a record"} with the same " +
                            conflict.fields.joinToString(" and ").ifEmpty { "key" }
                },
                existingId = conflict.existingId,
                mineDocument = conflict.localDocument,
                keyFields = if (conflict.reason == ConflictReason.UNIQUE_VIOLATION) conflict.fields else emptyList(),
                fields = ordered.map { field ->
                    FieldComparison(field, mine[field], server[field], whole || field in conflict.fields)
                },
                mineDeleted = conflict.localDocument == null,
                serverDeleted = conflict.serverDocument == null,
            )
        }

        /** How a refused change looks on screen. */
        fun item(change: RejectedChange): RejectedItem = RejectedItem(
            opId = change.opId,
            collection = change.collection,
            id = change.id,
            title = Documents.displayName(change.document) ?: change.id,
            kind = change.kind,
            reason = change.reason,
            reasonCode = change.reasonCode,
            reasonText = Messages.rejection(change.reason, change.reasonCode),
            createdAt = change.createdAt,
        )
    }
}
