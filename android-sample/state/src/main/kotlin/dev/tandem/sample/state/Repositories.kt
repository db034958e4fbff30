package dev.tandem.sample.state

import dev.tandem.OrderBy
import dev.tandem.Query
import dev.tandem.SpaceRole
import dev.tandem.WriteOp
import dev.tandem.observeAsFlow
import dev.tandem.observeRecordAsFlow
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.combine
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
    /** The user's own plans by name (archived ones too; the list screen filters). */
    fun plans(): Flow<List<Plan>> = plansOf(Collections.PLANS)

    /** Plans in every space the user belongs to, by name (each knows its space). */
    fun sharedPlans(): Flow<List<Plan>> = plansOf(Collections.SHARED_PLANS)

    private fun plansOf(collection: String): Flow<List<Plan>> =
        host.live { it.observeAsFlow(collection, Query(orderBy = listOf(OrderBy("name")))) }
            .map { records -> records.map(Documents::plan) }

    /** One plan, or null once it is deleted (here or on another device) or its space is left. */
    fun plan(ref: PlanRef): Flow<Plan?> =
        host.live { it.observeRecordAsFlow(ref.collection, ref.id) }.map { record -> record?.let(Documents::plan) }

    /** The days of a plan in day order (the schema's `[planId, dayIndex]` index serves this). */
    fun days(ref: PlanRef): Flow<List<PlanDay>> =
        host.live {
            it.observeAsFlow(
                ref.daysCollection,
                Query(filters = listOf(Documents.eq("planId", ref.id)), orderBy = listOf(OrderBy("dayIndex"))),
            )
        }.map { records -> records.map(Documents::planDay) }

    /** One day of [ref], or null once it (or its plan) is deleted. */
    fun day(ref: PlanRef, id: String): Flow<PlanDay?> =
        host.live { it.observeRecordAsFlow(ref.daysCollection, id) }
            .map { record -> record?.let(Documents::planDay)?.takeIf { it.planId == ref.id } }

    suspend fun createPlan(name: String, notes: String = ""): Plan = withContext(io) {
        Documents.plan(host.engine.put(Collections.PLANS, null, Documents.document("name" to name.trim(), "notes" to notes)))
    }

    /**
     * Changes only the given fields (a merge patch), so an edit of the name here and of the
     * notes on another device (or by another member of the space) merge instead of conflicting.
     */
    suspend fun updatePlan(ref: PlanRef, name: String? = null, notes: String? = null, archived: Boolean? = null) {
        val fields = buildList {
            name?.let { add("name" to it.trim()) }
            notes?.let { add("notes" to it) }
            archived?.let { add("archived" to it) }
        }
        if (fields.isEmpty()) return
        withContext(io) { host.engine.patch(ref.collection, ref.id, Documents.patch(*fields.toTypedArray())) }
    }

    /** Deletes the plan; the engine deletes its days with it (the schema's parent link). */
    suspend fun deletePlan(ref: PlanRef) = withContext(io) { host.engine.delete(ref.collection, ref.id) }

    /**
     * Drops the plan's changes not synced yet and shows the server's version again (a plan the
     * server never had goes away, with its days). Returns whether anything changed.
     */
    suspend fun revertPlan(ref: PlanRef): Boolean = withContext(io) { host.engine.revert(ref.collection, ref.id).changed }

    /** Adds a day after the plan's last one (in a shared plan, the engine puts it in the plan's space). */
    suspend fun addDay(ref: PlanRef, title: String): PlanDay = withContext(io) {
        val last = host.engine.query(
            ref.daysCollection,
            Query(
                filters = listOf(Documents.eq("planId", ref.id)),
                orderBy = listOf(OrderBy("dayIndex", descending = true)),
                limit = 1UL,
            ),
        ).firstOrNull()?.let(Documents::planDay)
        val doc = Documents.document(
            "planId" to ref.id,
            "dayIndex" to (last?.dayIndex?.plus(1) ?: 1),
            "title" to title.trim(),
            "exerciseIds" to emptyList<String>(),
        )
        Documents.planDay(host.engine.put(ref.daysCollection, null, doc))
    }

    suspend fun renameDay(ref: PlanRef, id: String, title: String) = withContext(io) {
        host.engine.patch(ref.daysCollection, id, Documents.patch("title" to title.trim()))
        Unit
    }

    /**
     * Changes the day's ordered exercise list with [change], applied to the list as stored now
     * (not as some screen last saw it), and writes the result. The array is one field, so it is
     * written whole.
     */
    suspend fun editExercises(ref: PlanRef, dayId: String, change: (List<String>) -> List<String>) = withContext(io) {
        val engine = host.engine
        val day = engine.get(ref.daysCollection, dayId)?.let(Documents::planDay)
            ?: throw dev.tandem.TandemException.NotFound(ref.daysCollection, dayId)
        val next = change(day.exerciseIds)
        if (next != day.exerciseIds) {
            engine.patch(ref.daysCollection, dayId, Documents.patch("exerciseIds" to next))
        }
        Unit
    }

    suspend fun deleteDay(ref: PlanRef, id: String) = withContext(io) { host.engine.delete(ref.daysCollection, id) }

    /**
     * Moves a day one place up or down by swapping day indexes with its neighbour, both in one
     * `write`: one local transaction and one atomic group on the wire, so no other device ever
     * sees two days with the same index (it receives both changes or neither).
     */
    suspend fun swapDays(ref: PlanRef, first: PlanDay, second: PlanDay) = withContext(io) {
        host.engine.write(
            listOf(
                WriteOp.Patch(ref.daysCollection, first.id, Documents.patch("dayIndex" to second.dayIndex)),
                WriteOp.Patch(ref.daysCollection, second.id, Documents.patch("dayIndex" to first.dayIndex)),
            ),
        )
        Unit
    }
}

/**
 * Exercises, with the same live-read, local-write shape as [PlanRepository]: the user's own
 * (`exercises`) and the public catalog the server seeds (`catalog_exercises`, read-only: the
 * engine refuses a local write there with `ValidationReason.READ_ONLY`).
 */
class ExerciseRepository(private val host: TandemHost, private val io: CoroutineDispatcher = Dispatchers.IO) {
    /** The user's own exercises by name. */
    fun exercises(): Flow<List<Exercise>> = exercisesOf(Collections.EXERCISES)

    /** The public catalog by name. */
    fun catalog(): Flow<List<Exercise>> = exercisesOf(Collections.CATALOG_EXERCISES)

    /** Everything a day can pick from: the catalog's and the user's own, by name. */
    fun all(): Flow<List<Exercise>> =
        combine(catalog(), exercises()) { fromServer, own -> (fromServer + own).sortedBy { it.name.lowercase() } }

    private fun exercisesOf(collection: String): Flow<List<Exercise>> =
        host.live { it.observeAsFlow(collection, Query(orderBy = listOf(OrderBy("name")))) }
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
        // Days of personal plans list it, and so may days of shared plans (the user picked one of
        // their own there): clean those the user may edit. Spaces where the user is a viewer are
        // left alone (the engine would refuse the write, and with it the whole batch).
        val writable = engine.spaces().filter { it.role != SpaceRole.VIEWER }.map { it.id }.toSet()
        val personal = engine.query(Collections.PLAN_DAYS, Query()).map { Collections.PLAN_DAYS to it }
        val shared = engine.query(Collections.SHARED_PLAN_DAYS, Query())
            .filter { record -> record.spaceId?.let { it in writable } == true }
            .map { Collections.SHARED_PLAN_DAYS to it }
        val edits = (personal + shared)
            .map { (collection, record) -> collection to Documents.planDay(record) }
            .filter { (_, day) -> id in day.exerciseIds }
            .map { (collection, day) ->
                WriteOp.Patch(
                    collection,
                    day.id,
                    Documents.patch("exerciseIds" to day.exerciseIds.filter { it != id }),
                )
            }
        engine.write(edits + WriteOp.Delete(Collections.EXERCISES, id))
        Unit
    }
}
