package dev.tandem.sample.state

import dev.tandem.Invitation
import dev.tandem.Space
import dev.tandem.SpaceRole
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.flowOf
import kotlinx.coroutines.flow.stateIn

/** The plans list screen: "My plans", then "Shared", under the invitations banner. */
data class PlansListState(
    /** The user's own plans shown: active ones, plus archived ones when [showArchived]. */
    val plans: List<Plan> = emptyList(),
    /** Plans in the user's spaces (the same archived filter), each with its role and members. */
    val shared: List<SharedPlanRow> = emptyList(),
    /** Invitations waiting for an answer (the banner). */
    val invitations: List<Invitation> = emptyList(),
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
class PlansListStateHolder(
    private val plans: PlanRepository,
    scope: CoroutineScope,
    /** Spaces for the "Shared" section and the invitations banner; without, only "My plans". */
    private val spaces: SpacesRepository? = null,
) : StateHolder(scope) {
    private val showArchived = MutableStateFlow(false)

    private val shared: Flow<List<SharedPlanRow>> =
        spaces?.let { sharedRows(plans.sharedPlans(), it.spaces()) } ?: flowOf(emptyList())
    private val invitations: Flow<List<Invitation>> = spaces?.invitations() ?: flowOf(emptyList())

    val state: StateFlow<PlansListState> =
        combine(plans.plans(), shared, invitations, showArchived) { all, sharedRows, pending, archived ->
            PlansListState(
                plans = if (archived) all else all.filterNot { it.archived },
                shared = if (archived) sharedRows else sharedRows.filterNot { it.plan.archived },
                invitations = pending,
                showArchived = archived,
                archivedCount = all.count { it.archived } + sharedRows.count { it.plan.archived },
                loaded = true,
            )
        }.stateIn(scope, SharingStarted.Eagerly, PlansListState())

    /** Accepts an invitation; the space's plans arrive with the sync the engine starts. */
    suspend fun accept(invitation: Invitation) = attempt { checkNotNull(spaces).accept(invitation.id) } != null

    suspend fun decline(invitation: Invitation) = attempt { checkNotNull(spaces).decline(invitation.id) } != null

    fun setShowArchived(show: Boolean) {
        showArchived.value = show
    }

    /** Creates a plan; returns it (to open it), or null with [message] set. */
    suspend fun create(name: String, notes: String = ""): Plan? = attempt { plans.createPlan(name, notes) }

    suspend fun setArchived(id: String, archived: Boolean) = setArchived(PlanRef.personal(id), archived)

    suspend fun setArchived(plan: PlanRef, archived: Boolean) = attempt { plans.updatePlan(plan, archived = archived) } != null

    /** Deletes a plan and, through the engine's cascade, its days. */
    suspend fun delete(id: String) = delete(PlanRef.personal(id))

    suspend fun delete(plan: PlanRef) = attempt { plans.deletePlan(plan) } != null
}

/** One day on the plan screen, with its exercises' names resolved from the catalog. */
data class DayRow(val day: PlanDay, val exerciseNames: List<String>)

/** The plan detail screen. */
data class PlanDetailState(
    val plan: Plan? = null,
    val days: List<DayRow> = emptyList(),
    val loaded: Boolean = false,
    /** A shared plan's space (role, member count); null for a personal plan. */
    val space: Space? = null,
) {
    /** A viewer sees the plan without editing controls ("View only"). */
    val viewOnly: Boolean get() = space?.role == SpaceRole.VIEWER

    /** The other members of a shared plan's space: "Shared with N". */
    val sharedWith: Int get() = ((space?.memberCount?.toInt() ?: 1) - 1).coerceAtLeast(0)

    /** The plan was there and is gone (deleted here or on another device): leave the screen. */
    val gone: Boolean get() = loaded && plan == null
}

/**
 * A plan with its days: edit the plan, add, rename, reorder and delete days. Works on a personal
 * plan or a shared one ([PlanRef]); for a shared plan [spaces] gives the role (a viewer's edits
 * are refused by the engine with `ValidationReason.FORBIDDEN`, shown in [message]) and [leave].
 */
class PlanDetailStateHolder(
    private val ref: PlanRef,
    private val plans: PlanRepository,
    exercises: ExerciseRepository,
    scope: CoroutineScope,
    private val spaces: SpacesRepository? = null,
) : StateHolder(scope) {
    /** A personal plan. */
    constructor(planId: String, plans: PlanRepository, exercises: ExerciseRepository, scope: CoroutineScope) :
        this(PlanRef.personal(planId), plans, exercises, scope)

    private val space: Flow<Space?> =
        ref.spaceId?.let { id -> spaces?.space(id) } ?: flowOf(null)

    val state: StateFlow<PlanDetailState> =
        combine(plans.plan(ref), plans.days(ref), exercises.all(), space) { plan, days, catalog, space ->
            val names = catalog.associate { it.id to it.name }
            PlanDetailState(
                plan = plan,
                days = days.map { day -> DayRow(day, day.exerciseIds.map { names[it] ?: DELETED_EXERCISE }) },
                loaded = true,
                space = space,
            )
        }.stateIn(scope, SharingStarted.Eagerly, PlanDetailState())

    suspend fun update(name: String, notes: String) = attempt { plans.updatePlan(ref, name = name, notes = notes) } != null

    suspend fun setArchived(archived: Boolean) = attempt { plans.updatePlan(ref, archived = archived) } != null

    /** Deletes the plan; its days go with it. */
    suspend fun delete() = attempt { plans.deletePlan(ref) } != null

    /**
     * Undoes this plan's edits that have not reached the server yet (shown while the plan is
     * pending): the server's version comes back; a plan never synced goes away.
     */
    suspend fun revertChanges() = attempt { plans.revertPlan(ref) } != null

    /** Adds a day at the end; returns it (to open the editor), or null with [message] set. */
    suspend fun addDay(title: String): PlanDay? = attempt { plans.addDay(ref, title) }

    suspend fun deleteDay(dayId: String) = attempt { plans.deleteDay(ref, dayId) } != null

    /** Leaves a shared plan's space (the plan leaves this device); false for a personal plan. */
    suspend fun leave(): Boolean {
        val spaceId = ref.spaceId ?: return false
        val repository = spaces ?: return false
        return attempt { repository.leave(spaceId) } != null
    }

    /** Moves a day one place earlier (`up`) or later in the plan. */
    suspend fun moveDay(dayId: String, up: Boolean): Boolean {
        val days = state.value.days.map { it.day }
        val at = days.indexOfFirst { it.id == dayId }
        val other = if (up) at - 1 else at + 1
        if (at < 0 || other !in days.indices) return false
        return attempt { plans.swapDays(ref, days[at], days[other]) } != null
    }

    companion object {
        /** Shown for an id whose exercise was deleted on a device that did not clean up days. */
        const val DELETED_EXERCISE = "(deleted exercise)"
    }
}
