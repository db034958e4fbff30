package dev.tandem.sample.ui

import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.itemsIndexed
import androidx.compose.foundation.lazy.items
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Add
import androidx.compose.material.icons.filled.Close
import androidx.compose.material.icons.filled.Edit
import androidx.compose.material.icons.filled.KeyboardArrowDown
import androidx.compose.material.icons.filled.KeyboardArrowUp
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.ExtendedFloatingActionButton
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.ListItem
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.tandem.sample.DayEditorViewModel
import dev.tandem.sample.DayPhotoViewModel
import dev.tandem.sample.SampleViewModels
import dev.tandem.sample.state.Exercise

/**
 * One day of a plan: its title and its exercises in order. Pick exercises from the catalog,
 * move them up or down, remove them; every change is saved at once.
 */
@Composable
fun DayEditorScreen(
    onBack: () -> Unit,
    viewModel: DayEditorViewModel = viewModel(factory = SampleViewModels),
    photoViewModel: DayPhotoViewModel = viewModel(factory = SampleViewModels),
) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val message by viewModel.holder.message.collectAsStateWithLifecycle()
    var picking by remember { mutableStateOf(false) }
    var renaming by remember { mutableStateOf(false) }

    // Its plan deleted here or on another device: the day went with it.
    LaunchedEffect(state.gone) { if (state.gone) onBack() }
    val day = state.day

    SampleScaffold(
        title = day?.title?.ifBlank { null } ?: "Day",
        message = message,
        onMessageShown = viewModel.holder::dismissMessage,
        onBack = onBack,
        actions = {
            IconButton(onClick = { renaming = true }, enabled = day != null && !state.viewOnly) { Icon(Icons.Default.Edit, "Rename day") }
        },
        floatingActionButton = {
            if (!state.viewOnly) {
                ExtendedFloatingActionButton(
                    onClick = { picking = true },
                    icon = { Icon(Icons.Default.Add, null) },
                    text = { Text("Add exercise") },
                )
            }
        },
    ) { padding ->
        LazyColumn(Modifier.fillMaxSize().padding(padding)) {
            if (state.viewOnly) {
                item { EmptyHint("View only: you can see this plan but not change it.") }
            }
            item { DayPhoto(photoViewModel, editable = !state.viewOnly) }
            if (state.loaded && state.entries.isEmpty()) {
                item { EmptyHint("No exercises in this day. Add some from the catalog.") }
            }
            itemsIndexed(state.entries, key = { i, entry -> "$i-${entry.exerciseId}" }) { i, entry ->
                ListItem(
                    overlineContent = { Text("${i + 1}") },
                    headlineContent = { Text(entry.name) },
                    supportingContent = { if (entry.category.isNotBlank()) Text(entry.category) },
                    trailingContent = {
                        if (!state.viewOnly) Row {
                            IconButton(onClick = { viewModel.act { moveUp(i) } }, enabled = i > 0) {
                                Icon(Icons.Default.KeyboardArrowUp, "Move ${entry.name} up")
                            }
                            IconButton(onClick = { viewModel.act { moveDown(i) } }, enabled = i < state.entries.lastIndex) {
                                Icon(Icons.Default.KeyboardArrowDown, "Move ${entry.name} down")
                            }
                            IconButton(onClick = { viewModel.act { removeAt(i) } }) {
                                Icon(Icons.Default.Close, "Remove ${entry.name}")
                            }
                        }
                    },
                )
                HorizontalDivider()
            }
        }
    }

    if (picking) {
        ExercisePicker(
            catalog = state.catalog,
            onDismiss = { picking = false },
            onPick = { exercise -> viewModel.act { add(exercise.id) } },
        )
    }
    if (renaming && day != null) {
        FormDialog(
            title = "Rename day",
            fields = listOf(FormField("Title", day.title, required = true)),
            confirmLabel = "Save",
            onDismiss = { renaming = false },
        ) { (title) ->
            renaming = false
            viewModel.act { rename(title) }
        }
    }
}

/** The catalog to pick from; each tap adds one exercise and the picker stays open for more. */
@Composable
private fun ExercisePicker(catalog: List<Exercise>, onDismiss: () -> Unit, onPick: (Exercise) -> Unit) {
    AlertDialog(
        onDismissRequest = onDismiss,
        title = { Text("Add exercises") },
        text = {
            if (catalog.isEmpty()) {
                Text("The catalog is empty. Create exercises in the Exercises tab first.")
            } else {
                LazyColumn(Modifier.heightIn(max = 400.dp)) {
                    items(catalog, key = { it.id }) { exercise ->
                        ListItem(
                            headlineContent = { Text(exercise.name) },
                            supportingContent = { if (exercise.category.isNotBlank()) Text(exercise.category) },
                            modifier = Modifier.clickable { onPick(exercise) },
                        )
                    }
                }
            }
        },
        confirmButton = { TextButton(onClick = onDismiss) { Text("Done") } },
    )
}
