package dev.tandem.sample.state

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.stateIn

/** The exercise catalog screen. */
data class CatalogState(
    /** The user's own exercises shown (in [category] when one is chosen), by name; editable. */
    val exercises: List<Exercise> = emptyList(),
    /** The public catalog's exercises shown (same filter), by name; read-only. */
    val catalog: List<Exercise> = emptyList(),
    /** Every category in use, sorted, for the filter chips. */
    val categories: List<String> = emptyList(),
    val category: String? = null,
    val loaded: Boolean = false,
)

/**
 * The exercise catalog: the public catalog the server seeds (read-only: no edit or delete), then
 * the user's own exercises (live list, create, edit, delete); one category filter over both.
 */
class CatalogStateHolder(private val exercises: ExerciseRepository, scope: CoroutineScope) : StateHolder(scope) {
    private val category = MutableStateFlow<String?>(null)

    val state: StateFlow<CatalogState> = combine(exercises.exercises(), exercises.catalog(), category) { all, fromServer, chosen ->
        val categories = (all + fromServer).map { it.category }.filter { it.isNotBlank() }.distinct().sorted()
        // A category that no exercise has any more (renamed elsewhere) stops filtering.
        val active = chosen?.takeIf { it in categories }
        CatalogState(
            exercises = if (active == null) all else all.filter { it.category == active },
            catalog = if (active == null) fromServer else fromServer.filter { it.category == active },
            categories = categories,
            category = active,
            loaded = true,
        )
    }.stateIn(scope, SharingStarted.Eagerly, CatalogState())

    /** Shows one category only, or all with null. */
    fun setCategory(chosen: String?) {
        category.value = chosen
    }

    suspend fun create(name: String, category: String, notes: String): Exercise? =
        attempt { exercises.create(name, category, notes) }

    suspend fun update(id: String, name: String, category: String, notes: String) =
        attempt { exercises.update(id, name, category, notes) } != null

    /** Deletes the exercise and removes it from every day that lists it. */
    suspend fun delete(id: String) = attempt { exercises.delete(id) } != null
}
