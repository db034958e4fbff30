package dev.tandem.sample.ui

import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Add
import androidx.compose.material.icons.filled.Delete
import androidx.compose.material.icons.filled.Edit
import androidx.compose.material.icons.filled.KeyboardArrowDown
import androidx.compose.material.icons.filled.KeyboardArrowUp
import androidx.compose.material3.Card
import androidx.compose.material3.ExtendedFloatingActionButton
import androidx.compose.material3.FilterChip
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.ListItem
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.tandem.RecordState
import dev.tandem.sample.PlanDetailViewModel
import dev.tandem.sample.PlansViewModel
import dev.tandem.sample.SampleViewModels
import dev.tandem.sample.state.DayRow
import dev.tandem.sample.state.EditedAgo
import dev.tandem.sample.state.Plan

/**
 * The plans list. Live: plans created, renamed or deleted on another device appear as soon as
 * sync brings them, with no refresh.
 */
@Composable
fun PlansScreen(onOpen: (String) -> Unit, viewModel: PlansViewModel = viewModel(factory = SampleViewModels)) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val message by viewModel.holder.message.collectAsStateWithLifecycle()
    var creating by remember { mutableStateOf(false) }
    var deleting by remember { mutableStateOf<Plan?>(null) }

    SampleScaffold(
        title = "Plans",
        message = message,
        onMessageShown = viewModel.holder::dismissMessage,
        floatingActionButton = {
            ExtendedFloatingActionButton(
                onClick = { creating = true },
                icon = { Icon(Icons.Default.Add, null) },
                text = { Text("New plan") },
            )
        },
    ) { padding ->
        LazyColumn(Modifier.fillMaxSize().padding(padding)) {
            if (state.archivedCount > 0) {
                item {
                    FilterChip(
                        selected = state.showArchived,
                        onClick = { viewModel.holder.setShowArchived(!state.showArchived) },
                        label = { Text("Show archived (${state.archivedCount})") },
                        modifier = Modifier.padding(horizontal = 16.dp),
                    )
                }
            }
            if (state.loaded && state.plans.isEmpty()) {
                item { EmptyHint("No plans yet. Create one, or sign in on another device that has some.") }
            }
            items(state.plans, key = { it.id }) { plan ->
                ListItem(
                    headlineContent = { Text(plan.name) },
                    supportingContent = {
                        val notes = plan.notes.takeIf { it.isNotBlank() }
                        val parts = listOfNotNull(
                            notes,
                            "archived".takeIf { plan.archived },
                            stateNote(plan.state),
                            EditedAgo.format(plan.editedAt),
                        )
                        if (parts.isNotEmpty()) Text(parts.joinToString(" · "), maxLines = 2)
                    },
                    trailingContent = {
                        IconButton(onClick = { deleting = plan }) { Icon(Icons.Default.Delete, "Delete ${plan.name}") }
                    },
                    modifier = Modifier.clickable { onOpen(plan.id) },
                )
                HorizontalDivider()
            }
        }
    }

    if (creating) {
        FormDialog(
            title = "New plan",
            fields = listOf(FormField("Name", required = true), FormField("Notes", multiline = true)),
            confirmLabel = "Create",
            onDismiss = { creating = false },
        ) { (name, notes) ->
            creating = false
            viewModel.act({ create(name, notes) }) { plan -> plan?.let { onOpen(it.id) } }
        }
    }
    deleting?.let { plan ->
        ConfirmDialog(
            title = "Delete ${plan.name}?",
            text = "Its days are deleted with it, here and on your other devices.",
            confirmLabel = "Delete",
            onDismiss = { deleting = null },
        ) {
            deleting = null
            viewModel.act { delete(plan.id) }
        }
    }
}

/** A plan with its days: edit, archive or delete the plan; add, reorder and delete days. */
@Composable
fun PlanDetailScreen(
    onBack: () -> Unit,
    onOpenDay: (planId: String, dayId: String) -> Unit,
    viewModel: PlanDetailViewModel = viewModel(factory = SampleViewModels),
) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val message by viewModel.holder.message.collectAsStateWithLifecycle()
    var editing by remember { mutableStateOf(false) }
    var addingDay by remember { mutableStateOf(false) }
    var confirmDelete by remember { mutableStateOf(false) }

    // Deleted here or on another device: nothing left to show.
    LaunchedEffect(state.gone) { if (state.gone) onBack() }
    val plan = state.plan

    SampleScaffold(
        title = plan?.name ?: "Plan",
        message = message,
        onMessageShown = viewModel.holder::dismissMessage,
        onBack = onBack,
        actions = {
            IconButton(onClick = { editing = true }, enabled = plan != null) { Icon(Icons.Default.Edit, "Edit plan") }
            IconButton(onClick = { confirmDelete = true }, enabled = plan != null) { Icon(Icons.Default.Delete, "Delete plan") }
        },
        floatingActionButton = {
            ExtendedFloatingActionButton(
                onClick = { addingDay = true },
                icon = { Icon(Icons.Default.Add, null) },
                text = { Text("Add day") },
            )
        },
    ) { padding ->
        LazyColumn(
            Modifier.fillMaxSize().padding(padding),
            verticalArrangement = Arrangement.spacedBy(8.dp),
        ) {
            if (plan != null) {
                item {
                    Column(Modifier.padding(horizontal = 16.dp)) {
                        if (plan.notes.isNotBlank()) Text(plan.notes, style = MaterialTheme.typography.bodyMedium)
                        EditedAgo.format(plan.editedAt)?.let { Text(it, style = MaterialTheme.typography.labelMedium) }
                        Row(verticalAlignment = Alignment.CenterVertically) {
                            Text(
                                if (plan.archived) "Archived" else "Active",
                                style = MaterialTheme.typography.labelLarge,
                            )
                            TextButton(onClick = { viewModel.act { setArchived(!plan.archived) } }) {
                                Text(if (plan.archived) "Unarchive" else "Archive")
                            }
                            if (plan.state == RecordState.PENDING) {
                                TextButton(onClick = { viewModel.act { revertChanges() } }) {
                                    Text("Undo unsynced changes")
                                }
                            }
                        }
                    }
                }
            }
            if (state.loaded && state.days.isEmpty()) {
                item { EmptyHint("No days yet. Add the first day of this plan.") }
            }
            items(state.days, key = { it.day.id }) { row ->
                DayCard(
                    row = row,
                    first = row == state.days.first(),
                    last = row == state.days.last(),
                    onOpen = { onOpenDay(row.day.planId, row.day.id) },
                    onMove = { up -> viewModel.act { moveDay(row.day.id, up) } },
                    onDelete = { viewModel.act { deleteDay(row.day.id) } },
                )
            }
        }
    }

    if (editing && plan != null) {
        FormDialog(
            title = "Edit plan",
            fields = listOf(FormField("Name", plan.name, required = true), FormField("Notes", plan.notes, multiline = true)),
            confirmLabel = "Save",
            onDismiss = { editing = false },
        ) { (name, notes) ->
            editing = false
            viewModel.act { update(name, notes) }
        }
    }
    if (addingDay) {
        FormDialog(
            title = "New day",
            fields = listOf(FormField("Title", "Day ${state.days.size + 1}", required = true)),
            confirmLabel = "Add",
            onDismiss = { addingDay = false },
        ) { (title) ->
            addingDay = false
            viewModel.act({ addDay(title) }) { day -> day?.let { onOpenDay(it.planId, it.id) } }
        }
    }
    if (confirmDelete && plan != null) {
        ConfirmDialog(
            title = "Delete ${plan.name}?",
            text = "Its ${state.days.size} day(s) are deleted with it, here and on your other devices.",
            confirmLabel = "Delete",
            onDismiss = { confirmDelete = false },
        ) {
            confirmDelete = false
            viewModel.act { delete() }
        }
    }
}

@Composable
private fun DayCard(
    row: DayRow,
    first: Boolean,
    last: Boolean,
    onOpen: () -> Unit,
    onMove: (up: Boolean) -> Unit,
    onDelete: () -> Unit,
) {
    Card(Modifier.fillMaxWidth().padding(horizontal = 16.dp).clickable(onClick = onOpen)) {
        Row(Modifier.padding(12.dp), verticalAlignment = Alignment.CenterVertically) {
            Column(Modifier.weight(1f)) {
                Text(row.day.title.ifBlank { "Day ${row.day.dayIndex}" }, style = MaterialTheme.typography.titleMedium)
                Text(
                    row.exerciseNames.joinToString(", ").ifEmpty { "No exercises yet" },
                    style = MaterialTheme.typography.bodySmall,
                    maxLines = 2,
                )
                stateNote(row.day.state)?.let { Text(it, style = MaterialTheme.typography.labelSmall) }
            }
            IconButton(onClick = { onMove(true) }, enabled = !first) { Icon(Icons.Default.KeyboardArrowUp, "Move up") }
            IconButton(onClick = { onMove(false) }, enabled = !last) { Icon(Icons.Default.KeyboardArrowDown, "Move down") }
            IconButton(onClick = onDelete) { Icon(Icons.Default.Delete, "Delete day") }
        }
    }
}

/** A record's sync state in words, when it is worth mentioning. */
fun stateNote(state: RecordState): String? = when (state) {
    RecordState.SYNCED -> null
    RecordState.PENDING -> "not synced yet"
    RecordState.CONFLICTED -> "conflict: see Conflicts"
    RecordState.REJECTED -> "refused by the server: see Conflicts"
}

/** What an empty list says instead. */
@Composable
fun EmptyHint(text: String) {
    Box(Modifier.fillMaxWidth().padding(32.dp), contentAlignment = Alignment.Center) {
        Text(text, style = MaterialTheme.typography.bodyMedium)
    }
}
