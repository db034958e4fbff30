package dev.tandem.sample.state

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.stateIn

/** The plans list screen. */
data class PlansListState(
    /** The plans shown: active ones, plus archived ones when [showArchived]. */
    val plans: List<Plan> = emptyList(),
    val showArchived: Boolean = false,
    /** How many are archived (hidden or not), for the toggle's label. */
    val archivedCount: Int = 0,
    /** False until the first results arrived, so the screen does not flash "no plans". */
    val loaded: Boolean = false,
)

/**
 * The plans list: live, so a plan created, renamed or deleted on another device shows up here
 * as soon as sync pulls it, without a refresh.
 */
class PlansListStateHolder(private val plans: PlanRepository, scope: CoroutineScope) : StateHolder(scope) {
    private val showArchived = MutableStateFlow(false)

    val state: StateFlow<PlansListState> = combine(plans.plans(), showArchived) { all, archived ->
        PlansListState(
            plans = if (archived) all else all.filterNot { it.archived },
            showArchived = archived,
            archivedCount = all.count { it.archived },
            loaded = true,
        )
    }.stateIn(scope, SharingStarted.Eagerly, PlansListState())

    fun setShowArchived(show: Boolean) {
        showArchived.value = show
    }

    /** Creates a plan; returns it (to open it), or null with [message] set. */
    suspend fun create(name: String, notes: String = ""): Plan? = attempt { plans.createPlan(name, notes) }

    suspend fun setArchived(id: String, archived: Boolean) = attempt { plans.updatePlan(id, archived = archived) } != null

    /** Deletes a plan and, through the engine's cascade, its days. */
    suspend fun delete(id: String) = attempt { plans.deletePlan(id) } != null
}

/** One day on the plan screen, with its exercises' names resolved from the catalog. */
data class DayRow(val day: PlanDay, val exerciseNames: List<String>)

/** The plan detail screen. */
data class PlanDetailState(
    val plan: Plan? = null,
    val days: List<DayRow> = emptyList(),
    val loaded: Boolean = false,
) {
    /** The plan was there and is gone (deleted here or on another device): leave the screen. */
    val gone: Boolean get() = loaded && plan == null
}

/** A plan with its days: edit the plan, add, rename, reorder and delete days. */
class PlanDetailStateHolder(
    private val planId: String,
    private val plans: PlanRepository,
    exercises: ExerciseRepository,
    scope: CoroutineScope,
) : StateHolder(scope) {
    val state: StateFlow<PlanDetailState> =
        combine(plans.plan(planId), plans.days(planId), exercises.exercises()) { plan, days, catalog ->
            val names = catalog.associate { it.id to it.name }
            PlanDetailState(
                plan = plan,
                days = days.map { day -> DayRow(day, day.exerciseIds.map { names[it] ?: DELETED_EXERCISE }) },
                loaded = true,
            )
        }.stateIn(scope, SharingStarted.Eagerly, PlanDetailState())

    suspend fun update(name: String, notes: String) = attempt { plans.updatePlan(planId, name = name, notes = notes) } != null

    suspend fun setArchived(archived: Boolean) = attempt { plans.updatePlan(planId, archived = archived) } != null

    /** Deletes the plan; its days go with it. */
    suspend fun delete() = attempt { plans.deletePlan(planId) } != null

    /**
     * Undoes this plan's edits that have not reached the server yet (shown while the plan is
     * pending): the server's version comes back; a plan never synced goes away.
     */
    suspend fun revertChanges() = attempt { plans.revertPlan(planId) } != null

    /** Adds a day at the end; returns it (to open the editor), or null with [message] set. */
    suspend fun addDay(title: String): PlanDay? = attempt { plans.addDay(planId, title) }

    suspend fun deleteDay(dayId: String) = attempt { plans.deleteDay(dayId) } != null

    /** Moves a day one place earlier (`up`) or later in the plan. */
    suspend fun moveDay(dayId: String, up: Boolean): Boolean {
        val days = state.value.days.map { it.day }
        val at = days.indexOfFirst { it.id == dayId }
        val other = if (up) at - 1 else at + 1
        if (at < 0 || other !in days.indices) return false
        return attempt { plans.swapDays(days[at], days[other]) } != null
    }

    companion object {
        /** Shown for an id whose exercise was deleted on a device that did not clean up days. */
        const val DELETED_EXERCISE = "(deleted exercise)"
    }
}
