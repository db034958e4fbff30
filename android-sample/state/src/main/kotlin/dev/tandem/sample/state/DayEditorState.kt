package dev.tandem.sample.state

import dev.tandem.SpaceRole
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.flowOf
import kotlinx.coroutines.flow.stateIn

/** One exercise in a day, at [position] (0-based) of its order. */
data class DayEntry(val position: Int, val exerciseId: String, val name: String, val category: String)

/** The day editor screen. */
data class DayEditorState(
    val day: PlanDay? = null,
    /** The day's exercises in order, names resolved from the catalog. */
    val entries: List<DayEntry> = emptyList(),
    /** Everything to pick from: the public catalog and the user's own exercises, by name. */
    val catalog: List<Exercise> = emptyList(),
    val loaded: Boolean = false,
    /** A day of a plan the user only views: no editing controls. */
    val viewOnly: Boolean = false,
) {
    /** The day was there and is gone (its plan deleted here or on another device). */
    val gone: Boolean get() = loaded && day == null
}

/**
 * Editing one day: its title, and its ordered exercises (pick from the catalog, remove, move up
 * or down). Every change is written at once; there is no save button, and another device sees
 * the new order after its next sync.
 *
 * Each change is computed from the day as stored when it is applied, not from [state], so quick
 * taps never work from a list an earlier tap already changed.
 */
class DayEditorStateHolder(
    private val ref: PlanRef,
    private val dayId: String,
    private val plans: PlanRepository,
    exercises: ExerciseRepository,
    scope: CoroutineScope,
    /** For a shared plan's day: the user's role (a viewer's day is view-only). */
    spaces: SpacesRepository? = null,
) : StateHolder(scope) {
    /** A day of a personal plan. */
    constructor(planId: String, dayId: String, plans: PlanRepository, exercises: ExerciseRepository, scope: CoroutineScope) :
        this(PlanRef.personal(planId), dayId, plans, exercises, scope)

    val state: StateFlow<DayEditorState> =
        combine(
            plans.day(ref, dayId),
            exercises.all(),
            ref.spaceId?.let { id -> spaces?.space(id) } ?: flowOf(null),
        ) { day, catalog, space ->
            val byId = catalog.associateBy { it.id }
            DayEditorState(
                day = day,
                entries = day?.exerciseIds?.mapIndexed { i, id ->
                    val exercise = byId[id]
                    DayEntry(i, id, exercise?.name ?: PlanDetailStateHolder.DELETED_EXERCISE, exercise?.category ?: "")
                } ?: emptyList(),
                catalog = catalog,
                loaded = true,
                viewOnly = space?.role == SpaceRole.VIEWER,
            )
        }.stateIn(scope, SharingStarted.Eagerly, DayEditorState())

    suspend fun rename(title: String) = attempt { plans.renameDay(ref, dayId, title) } != null

    /** Appends an exercise (the same one may appear twice, e.g. a superset done again). */
    suspend fun add(exerciseId: String) = edit { it + exerciseId }

    suspend fun removeAt(position: Int) = edit { ids ->
        if (position in ids.indices) ids.filterIndexed { i, _ -> i != position } else ids
    }

    /** Moves the exercise at [from] to [to], shifting the ones between. */
    suspend fun move(from: Int, to: Int) = edit { ids ->
        if (from !in ids.indices || to !in ids.indices || from == to) {
            ids
        } else {
            ids.toMutableList().apply { add(to, removeAt(from)) }
        }
    }

    suspend fun moveUp(position: Int) = move(position, position - 1)

    suspend fun moveDown(position: Int) = move(position, position + 1)

    private suspend fun edit(change: (List<String>) -> List<String>) = attempt { plans.editExercises(ref, dayId, change) } != null
}
