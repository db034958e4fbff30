package dev.tandem.sample.state

import dev.tandem.OrderBy
import dev.tandem.Query
import dev.tandem.WriteOp
import dev.tandem.observeAsFlow
import dev.tandem.observeRecordAsFlow
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.withContext

/**
 * Plans and their days. Reads are live flows (observed queries: the current results, then new
 * results after every commit, local or synced from another device); writes go straight to the
 * local store and return once committed, never waiting for the network.
 *
 * Engine calls block on SQLite, so they run on [io].
 */
class PlanRepository(private val host: TandemHost, private val io: CoroutineDispatcher = Dispatchers.IO) {
    /** All plans by name (archived ones too; the list screen filters). */
    fun plans(): Flow<List<Plan>> =
        host.live { it.observeAsFlow(Collections.PLANS, Query(orderBy = listOf(OrderBy("name")))) }
            .map { records -> records.map(Documents::plan) }

    /** One plan, or null once it is deleted (here or on another device). */
    fun plan(id: String): Flow<Plan?> =
        host.live { it.observeRecordAsFlow(Collections.PLANS, id) }.map { record -> record?.let(Documents::plan) }

    /** The days of a plan in day order (the schema's `[planId, dayIndex]` index serves this). */
    fun days(planId: String): Flow<List<PlanDay>> =
        host.live {
            it.observeAsFlow(
                Collections.PLAN_DAYS,
                Query(filters = listOf(Documents.eq("planId", planId)), orderBy = listOf(OrderBy("dayIndex"))),
            )
        }.map { records -> records.map(Documents::planDay) }

    /** One day of [planId], or null once it (or its plan) is deleted. */
    fun day(planId: String, id: String): Flow<PlanDay?> =
        host.live { it.observeRecordAsFlow(Collections.PLAN_DAYS, id) }
            .map { record -> record?.let(Documents::planDay)?.takeIf { it.planId == planId } }

    suspend fun createPlan(name: String, notes: String = ""): Plan = withContext(io) {
        Documents.plan(host.engine.put(Collections.PLANS, null, Documents.document("name" to name.trim(), "notes" to notes)))
    }

    /**
     * Changes only the given fields (a merge patch), so an edit of the name here and of the
     * notes on another device merge instead of conflicting.
     */
    suspend fun updatePlan(id: String, name: String? = null, notes: String? = null, archived: Boolean? = null) {
        val fields = buildList {
            name?.let { add("name" to it.trim()) }
            notes?.let { add("notes" to it) }
            archived?.let { add("archived" to it) }
        }
        if (fields.isEmpty()) return
        withContext(io) { host.engine.patch(Collections.PLANS, id, Documents.patch(*fields.toTypedArray())) }
    }

    /** Deletes the plan; the engine deletes its days with it (the schema's parent link). */
    suspend fun deletePlan(id: String) = withContext(io) { host.engine.delete(Collections.PLANS, id) }

    /**
     * Drops the plan's changes not synced yet and shows the server's version again (a plan the
     * server never had goes away, with its days). Returns whether anything changed.
     */
    suspend fun revertPlan(id: String): Boolean = withContext(io) { host.engine.revert(Collections.PLANS, id).changed }

    /** Adds a day after the plan's last one. */
    suspend fun addDay(planId: String, title: String): PlanDay = withContext(io) {
        val last = host.engine.query(
            Collections.PLAN_DAYS,
            Query(
                filters = listOf(Documents.eq("planId", planId)),
                orderBy = listOf(OrderBy("dayIndex", descending = true)),
                limit = 1UL,
            ),
        ).firstOrNull()?.let(Documents::planDay)
        val doc = Documents.document(
            "planId" to planId,
            "dayIndex" to (last?.dayIndex?.plus(1) ?: 1),
            "title" to title.trim(),
            "exerciseIds" to emptyList<String>(),
        )
        Documents.planDay(host.engine.put(Collections.PLAN_DAYS, null, doc))
    }

    suspend fun renameDay(id: String, title: String) = withContext(io) {
        host.engine.patch(Collections.PLAN_DAYS, id, Documents.patch("title" to title.trim()))
        Unit
    }

    /**
     * Changes the day's ordered exercise list with [change], applied to the list as stored now
     * (not as some screen last saw it), and writes the result. The array is one field, so it is
     * written whole.
     */
    suspend fun editExercises(dayId: String, change: (List<String>) -> List<String>) = withContext(io) {
        val engine = host.engine
        val day = engine.get(Collections.PLAN_DAYS, dayId)?.let(Documents::planDay)
            ?: throw dev.tandem.TandemException.NotFound(Collections.PLAN_DAYS, dayId)
        val next = change(day.exerciseIds)
        if (next != day.exerciseIds) {
            engine.patch(Collections.PLAN_DAYS, dayId, Documents.patch("exerciseIds" to next))
        }
        Unit
    }

    suspend fun deleteDay(id: String) = withContext(io) { host.engine.delete(Collections.PLAN_DAYS, id) }

    /**
     * Moves a day one place up or down by swapping day indexes with its neighbour, both in one
     * `write`: one local transaction and one atomic group on the wire, so no other device ever
     * sees two days with the same index (it receives both changes or neither).
     */
    suspend fun swapDays(first: PlanDay, second: PlanDay) = withContext(io) {
        host.engine.write(
            listOf(
                WriteOp.Patch(Collections.PLAN_DAYS, first.id, Documents.patch("dayIndex" to second.dayIndex)),
                WriteOp.Patch(Collections.PLAN_DAYS, second.id, Documents.patch("dayIndex" to first.dayIndex)),
            ),
        )
        Unit
    }
}

/** The exercise catalog, with the same live-read, local-write shape as [PlanRepository]. */
class ExerciseRepository(private val host: TandemHost, private val io: CoroutineDispatcher = Dispatchers.IO) {
    /** Every exercise by name. */
    fun exercises(): Flow<List<Exercise>> =
        host.live { it.observeAsFlow(Collections.EXERCISES, Query(orderBy = listOf(OrderBy("name")))) }
            .map { records -> records.map(Documents::exercise) }

    suspend fun create(name: String, category: String = "", notes: String = ""): Exercise = withContext(io) {
        val doc = Documents.document("name" to name.trim(), "category" to category.trim(), "notes" to notes)
        Documents.exercise(host.engine.put(Collections.EXERCISES, null, doc))
    }

    suspend fun update(id: String, name: String, category: String, notes: String) = withContext(io) {
        host.engine.patch(
            Collections.EXERCISES,
            id,
            Documents.patch("name" to name.trim(), "category" to category.trim(), "notes" to notes),
        )
        Unit
    }

    /**
     * Deletes an exercise and takes it out of every day that lists it, in one transaction: days
     * refer to exercises by id only (the schema has no link the engine could cascade along).
     */
    suspend fun delete(id: String) = withContext(io) {
        val engine = host.engine
        val edits = engine.query(Collections.PLAN_DAYS, Query())
            .map(Documents::planDay)
            .filter { id in it.exerciseIds }
            .map { day ->
                WriteOp.Patch(
                    Collections.PLAN_DAYS,
                    day.id,
                    Documents.patch("exerciseIds" to day.exerciseIds.filter { it != id }),
                )
            }
        engine.write(edits + WriteOp.Delete(Collections.EXERCISES, id))
        Unit
    }
}
