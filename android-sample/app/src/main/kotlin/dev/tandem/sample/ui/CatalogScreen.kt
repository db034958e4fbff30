package dev.tandem.sample.ui

import androidx.compose.foundation.clickable
import androidx.compose.foundation.horizontalScroll
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.rememberScrollState
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Add
import androidx.compose.material.icons.filled.Delete
import androidx.compose.material3.ExtendedFloatingActionButton
import androidx.compose.material3.FilterChip
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.ListItem
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.tandem.sample.CatalogViewModel
import dev.tandem.sample.SampleViewModels
import dev.tandem.sample.state.Exercise

/** The exercise catalog: filter by category, create, edit (tap), delete. */
@Composable
fun CatalogScreen(viewModel: CatalogViewModel = viewModel(factory = SampleViewModels)) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val message by viewModel.holder.message.collectAsStateWithLifecycle()
    var creating by remember { mutableStateOf(false) }
    var editing by remember { mutableStateOf<Exercise?>(null) }
    var deleting by remember { mutableStateOf<Exercise?>(null) }

    SampleScaffold(
        title = "Exercises",
        message = message,
        onMessageShown = viewModel.holder::dismissMessage,
        floatingActionButton = {
            ExtendedFloatingActionButton(
                onClick = { creating = true },
                icon = { Icon(Icons.Default.Add, null) },
                text = { Text("New exercise") },
            )
        },
    ) { padding ->
        LazyColumn(Modifier.fillMaxSize().padding(padding)) {
            if (state.categories.isNotEmpty()) {
                item {
                    Row(
                        Modifier.horizontalScroll(rememberScrollState()).padding(horizontal = 16.dp),
                        horizontalArrangement = Arrangement.spacedBy(8.dp),
                    ) {
                        FilterChip(selected = state.category == null, onClick = { viewModel.holder.setCategory(null) }, label = { Text("All") })
                        state.categories.forEach { category ->
                            FilterChip(
                                selected = state.category == category,
                                onClick = { viewModel.holder.setCategory(category) },
                                label = { Text(category) },
                            )
                        }
                    }
                }
            }
            // The public catalog, seeded by the server: read-only (no edit, no delete).
            if (state.catalog.isNotEmpty()) {
                item { CatalogSection("Catalog") }
                items(state.catalog, key = { "catalog-${it.id}" }) { exercise ->
                    ListItem(
                        headlineContent = { Text(exercise.name) },
                        supportingContent = {
                            val parts = listOfNotNull(
                                exercise.category.takeIf { it.isNotBlank() },
                                exercise.notes.takeIf { it.isNotBlank() },
                            )
                            if (parts.isNotEmpty()) Text(parts.joinToString(" · "), maxLines = 2)
                        },
                    )
                    HorizontalDivider()
                }
                item { CatalogSection("My exercises") }
            }
            if (state.loaded && state.exercises.isEmpty()) {
                item { EmptyHint("No exercises of your own yet. Add the ones your plans use.") }
            }
            items(state.exercises, key = { it.id }) { exercise ->
                ListItem(
                    headlineContent = { Text(exercise.name) },
                    supportingContent = {
                        val parts = listOfNotNull(
                            exercise.category.takeIf { it.isNotBlank() },
                            exercise.notes.takeIf { it.isNotBlank() },
                            stateNote(exercise.state),
                        )
                        if (parts.isNotEmpty()) Text(parts.joinToString(" · "), maxLines = 2)
                    },
                    trailingContent = {
                        IconButton(onClick = { deleting = exercise }) { Icon(Icons.Default.Delete, "Delete ${exercise.name}") }
                    },
                    modifier = Modifier.clickable { editing = exercise },
                )
                HorizontalDivider()
            }
        }
    }

    if (creating) {
        ExerciseDialog(title = "New exercise", exercise = null, onDismiss = { creating = false }) { name, category, notes ->
            creating = false
            viewModel.act { create(name, category, notes) }
        }
    }
    editing?.let { exercise ->
        ExerciseDialog(title = "Edit exercise", exercise = exercise, onDismiss = { editing = null }) { name, category, notes ->
            editing = null
            viewModel.act { update(exercise.id, name, category, notes) }
        }
    }
    deleting?.let { exercise ->
        ConfirmDialog(
            title = "Delete ${exercise.name}?",
            text = "It is also taken out of every day that lists it.",
            confirmLabel = "Delete",
            onDismiss = { deleting = null },
        ) {
            deleting = null
            viewModel.act { delete(exercise.id) }
        }
    }
}

@Composable
private fun CatalogSection(text: String) {
    Text(text, style = MaterialTheme.typography.titleSmall, modifier = Modifier.padding(start = 16.dp, top = 12.dp, bottom = 4.dp))
}

@Composable
private fun ExerciseDialog(
    title: String,
    exercise: Exercise?,
    onDismiss: () -> Unit,
    onSave: (name: String, category: String, notes: String) -> Unit,
) {
    FormDialog(
        title = title,
        fields = listOf(
            FormField("Name", exercise?.name ?: "", required = true),
            FormField("Category", exercise?.category ?: ""),
            FormField("Notes", exercise?.notes ?: "", multiline = true),
        ),
        confirmLabel = "Save",
        onDismiss = onDismiss,
    ) { (name, category, notes) -> onSave(name, category, notes) }
}
