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
import androidx.compose.material.icons.filled.MoreVert
import androidx.compose.material.icons.filled.Share
import androidx.compose.material3.Card
import androidx.compose.material3.DropdownMenu
import androidx.compose.material3.DropdownMenuItem
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
import dev.tandem.Invitation
import dev.tandem.RecordState
import dev.tandem.SpaceRole
import dev.tandem.sample.PlanDetailViewModel
import dev.tandem.sample.PlansViewModel
import dev.tandem.sample.SampleViewModels
import dev.tandem.sample.state.DayRow
import dev.tandem.sample.state.EditedAgo
import dev.tandem.sample.state.Plan
import dev.tandem.sample.state.PlanRef
import dev.tandem.sample.state.bannerText
import dev.tandem.sample.state.label

/**
 * The plans list: "My plans", then "Shared" (plans in spaces, each with the user's role and who
 * else has it), under a banner of pending invitations. Live: plans created, renamed or deleted
 * on another device or by another member appear as soon as sync brings them, with no refresh.
 */
@Composable
fun PlansScreen(onOpen: (PlanRef) -> Unit, viewModel: PlansViewModel = viewModel(factory = SampleViewModels)) {
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
            items(state.invitations, key = { "invitation-${it.id}" }) { invitation ->
                InvitationBanner(
                    invitation = invitation,
                    onAccept = { viewModel.act { accept(invitation) } },
                    onDecline = { viewModel.act { decline(invitation) } },
                )
            }
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
            if (state.shared.isNotEmpty()) item { SectionTitle("My plans") }
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
                    modifier = Modifier.clickable { onOpen(plan.ref) },
                )
                HorizontalDivider()
            }
            if (state.shared.isNotEmpty()) item { SectionTitle("Shared") }
            items(state.shared, key = { "shared-${it.plan.id}" }) { row ->
                ListItem(
                    headlineContent = { Text(row.plan.name) },
                    supportingContent = {
                        val parts = listOfNotNull(
                            row.role?.let { "you: ${it.label()}" },
                            "shared with ${row.sharedWith}",
                            "archived".takeIf { row.plan.archived },
                            stateNote(row.plan.state),
                            EditedAgo.format(row.plan.editedAt),
                        )
                        Text(parts.joinToString(" · "), maxLines = 2)
                    },
                    modifier = Modifier.clickable { onOpen(row.plan.ref) },
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
            viewModel.act({ create(name, notes) }) { plan -> plan?.let { onOpen(it.ref) } }
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

/**
 * A plan with its days: edit, archive or delete the plan; add, reorder and delete days; share it
 * (the share sheet). A shared plan shows who it is shared with; a viewer sees it "View only",
 * with no editing controls; any member can leave it.
 */
@Composable
fun PlanDetailScreen(
    onBack: () -> Unit,
    onOpenDay: (plan: PlanRef, dayId: String) -> Unit,
    onMoved: (PlanRef) -> Unit,
    viewModel: PlanDetailViewModel = viewModel(factory = SampleViewModels),
) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val message by viewModel.holder.message.collectAsStateWithLifecycle()
    var editing by remember { mutableStateOf(false) }
    var addingDay by remember { mutableStateOf(false) }
    var confirmDelete by remember { mutableStateOf(false) }
    var sharing by remember { mutableStateOf(false) }
    var confirmLeave by remember { mutableStateOf(false) }
    var menu by remember { mutableStateOf(false) }

    // Deleted here or on another device, or the space left or lost: nothing left to show.
    LaunchedEffect(state.gone) { if (state.gone) onBack() }
    val plan = state.plan
    val editable = plan != null && !state.viewOnly

    SampleScaffold(
        title = plan?.name ?: "Plan",
        message = message,
        onMessageShown = viewModel.holder::dismissMessage,
        onBack = onBack,
        actions = {
            IconButton(onClick = { editing = true }, enabled = editable) { Icon(Icons.Default.Edit, "Edit plan") }
            IconButton(onClick = { sharing = true }, enabled = plan != null) { Icon(Icons.Default.Share, "Share plan") }
            Box {
                IconButton(onClick = { menu = true }, enabled = plan != null) { Icon(Icons.Default.MoreVert, "More") }
                DropdownMenu(expanded = menu, onDismissRequest = { menu = false }) {
                    if (state.space?.role != SpaceRole.VIEWER) {
                        DropdownMenuItem(text = { Text("Delete plan") }, onClick = {
                            menu = false
                            confirmDelete = true
                        })
                    }
                    if (state.space != null) {
                        DropdownMenuItem(text = { Text("Leave") }, onClick = {
                            menu = false
                            confirmLeave = true
                        })
                    }
                }
            }
        },
        floatingActionButton = {
            if (editable) {
                ExtendedFloatingActionButton(
                    onClick = { addingDay = true },
                    icon = { Icon(Icons.Default.Add, null) },
                    text = { Text("Add day") },
                )
            }
        },
    ) { padding ->
        LazyColumn(
            Modifier.fillMaxSize().padding(padding),
            verticalArrangement = Arrangement.spacedBy(8.dp),
        ) {
            if (plan != null) {
                item {
                    Column(Modifier.padding(horizontal = 16.dp)) {
                        state.space?.let { space ->
                            Text(
                                listOfNotNull(
                                    "Shared with ${state.sharedWith}",
                                    "you: ${space.role.label()}",
                                    "View only".takeIf { state.viewOnly },
                                ).joinToString(" · "),
                                style = MaterialTheme.typography.labelLarge,
                            )
                        }
                        if (plan.notes.isNotBlank()) Text(plan.notes, style = MaterialTheme.typography.bodyMedium)
                        EditedAgo.format(plan.editedAt)?.let { Text(it, style = MaterialTheme.typography.labelMedium) }
                        Row(verticalAlignment = Alignment.CenterVertically) {
                            Text(
                                if (plan.archived) "Archived" else "Active",
                                style = MaterialTheme.typography.labelLarge,
                            )
                            TextButton(onClick = { viewModel.act { setArchived(!plan.archived) } }, enabled = editable) {
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
                    editable = editable,
                    onOpen = { plan?.let { onOpenDay(it.ref, row.day.id) } },
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
            viewModel.act({ addDay(title) }) { day -> if (day != null && plan != null) onOpenDay(plan.ref, day.id) }
        }
    }
    if (sharing && plan != null) {
        ShareSheet(onDismiss = { sharing = false }, onMoved = { moved ->
            sharing = false
            if (moved != plan.ref) onMoved(moved)
        })
    }
    if (confirmLeave && plan != null) {
        ConfirmDialog(
            title = "Leave ${plan.name}?",
            text = "The plan leaves this device. To see it again, someone who owns it has to invite you again.",
            confirmLabel = "Leave",
            onDismiss = { confirmLeave = false },
        ) {
            confirmLeave = false
            viewModel.act({ leave() }) { left -> if (left) onBack() }
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
    editable: Boolean,
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
            if (editable) {
                IconButton(onClick = { onMove(true) }, enabled = !first) { Icon(Icons.Default.KeyboardArrowUp, "Move up") }
                IconButton(onClick = { onMove(false) }, enabled = !last) { Icon(Icons.Default.KeyboardArrowDown, "Move down") }
                IconButton(onClick = onDelete) { Icon(Icons.Default.Delete, "Delete day") }
            }
        }
    }
}

/** "coach@… invited you to 'Legs' as viewer — Accept / Decline". */
@Composable
private fun InvitationBanner(invitation: Invitation, onAccept: () -> Unit, onDecline: () -> Unit) {
    Card(Modifier.fillMaxWidth().padding(horizontal = 16.dp, vertical = 4.dp)) {
        Column(Modifier.padding(12.dp)) {
            Text(invitation.bannerText(), style = MaterialTheme.typography.bodyMedium)
            Row(Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.End) {
                TextButton(onClick = onDecline) { Text("Decline") }
                TextButton(onClick = onAccept) { Text("Accept") }
            }
        }
    }
}

@Composable
private fun SectionTitle(text: String) {
    Text(
        text,
        style = MaterialTheme.typography.titleSmall,
        modifier = Modifier.padding(start = 16.dp, top = 12.dp, bottom = 4.dp),
    )
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
