package dev.tandem.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.tandem.ChangeKind
import dev.tandem.sample.ConflictsViewModel
import dev.tandem.sample.SampleViewModels
import dev.tandem.sample.state.Collections
import dev.tandem.sample.state.ConflictItem
import dev.tandem.sample.state.FieldComparison
import dev.tandem.sample.state.RejectedItem

/**
 * The conflict center: each conflict with this device's and the server's values side by side,
 * settled with Keep Mine or Keep Server (the list updates at once, no restart). Two records
 * created with the same unique key are settled with Replace theirs, Keep theirs, or Keep both
 * (a form asks mine's new value of the key's field). Below, changes
 * the server refused, with the reason, to discard.
 */
@Composable
fun ConflictsScreen(viewModel: ConflictsViewModel = viewModel(factory = SampleViewModels)) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val message by viewModel.holder.message.collectAsStateWithLifecycle()

    SampleScaffold(title = "Conflicts", message = message, onMessageShown = viewModel.holder::dismissMessage) { padding ->
        LazyColumn(
            Modifier.fillMaxSize().padding(padding),
            verticalArrangement = Arrangement.spacedBy(12.dp),
        ) {
            item { SectionTitle("Conflicts (${state.conflicts.size})") }
            if (state.loaded && state.conflicts.isEmpty()) {
                item { EmptyHint("No conflicts. Edits of the same field on two devices would show here.") }
            }
            items(state.conflicts, key = { "${it.collection}/${it.id}" }) { conflict ->
                ConflictCard(
                    conflict,
                    onKeepMine = { viewModel.act { keepMine(conflict) } },
                    onKeepServer = { viewModel.act { keepServer(conflict) } },
                    onKeepBoth = { field, value -> viewModel.act { keepBoth(conflict, field, value) } },
                )
            }
            item { SectionTitle("Refused by the server (${state.rejected.size})") }
            if (state.loaded && state.rejected.isEmpty()) {
                item { EmptyHint("Nothing refused.") }
            }
            items(state.rejected, key = { it.opId }) { rejected ->
                RejectedCard(rejected, onDiscard = { viewModel.act { discard(rejected) } })
            }
        }
    }
}

@Composable
private fun SectionTitle(text: String) {
    Text(text, style = MaterialTheme.typography.titleMedium, modifier = Modifier.padding(horizontal = 16.dp, vertical = 4.dp))
}

@Composable
private fun ConflictCard(
    conflict: ConflictItem,
    onKeepMine: () -> Unit,
    onKeepServer: () -> Unit,
    onKeepBoth: (field: String, value: String) -> Unit,
) {
    var keepingBoth by remember { mutableStateOf(false) }
    val keyField = conflict.keepBothField
    if (keepingBoth && keyField != null) {
        // Keep both: mine stays under a new key; the user types the new value of the key's field.
        FormDialog(
            title = "Keep both",
            fields = listOf(FormField("New $keyField", conflict.keepBothSuggestion.orEmpty(), required = true)),
            confirmLabel = "Keep both",
            onDismiss = { keepingBoth = false },
            onConfirm = { values ->
                keepingBoth = false
                onKeepBoth(keyField, values.single())
            },
        )
    }
    Card(Modifier.fillMaxWidth().padding(horizontal = 16.dp)) {
        Column(Modifier.padding(12.dp), verticalArrangement = Arrangement.spacedBy(6.dp)) {
            Text("${kindName(conflict.collection)}: ${conflict.title}", style = MaterialTheme.typography.titleSmall)
            Text(conflict.reasonText, style = MaterialTheme.typography.bodySmall)
            conflict.existingId?.let { existing ->
                Text("Key held by: $existing", style = MaterialTheme.typography.bodySmall)
            }
            Row(Modifier.fillMaxWidth()) {
                Text("Field", Modifier.weight(1f), style = MaterialTheme.typography.labelMedium)
                Text(if (conflict.mineDeleted) "Mine (deleted)" else "Mine", Modifier.weight(1.5f), style = MaterialTheme.typography.labelMedium)
                Text(if (conflict.serverDeleted) "Server (deleted)" else "Server", Modifier.weight(1.5f), style = MaterialTheme.typography.labelMedium)
            }
            conflict.fields.forEach { FieldRow(it) }
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                // For a unique key, Keep mine replaces the record holding it; Keep server drops mine.
                Button(onClick = onKeepMine) { Text(if (conflict.isUniqueViolation) "Replace theirs" else "Keep mine") }
                OutlinedButton(onClick = onKeepServer) { Text(if (conflict.isUniqueViolation) "Keep theirs" else "Keep server") }
            }
            // ... or both, mine under another key (its own row: three buttons overflow a phone).
            if (keyField != null) {
                OutlinedButton(onClick = { keepingBoth = true }) { Text("Keep both…") }
            }
        }
    }
}

/** One field, both values; the contested ones in bold and in the error colour. */
@Composable
private fun FieldRow(field: FieldComparison) {
    val weight = if (field.conflicting) FontWeight.Bold else FontWeight.Normal
    val color = if (field.conflicting) MaterialTheme.colorScheme.error else MaterialTheme.colorScheme.onSurface
    Row(Modifier.fillMaxWidth()) {
        Text(field.field, Modifier.weight(1f), style = MaterialTheme.typography.bodySmall)
        Text(field.mine ?: "—", Modifier.weight(1.5f), fontWeight = weight, color = color, style = MaterialTheme.typography.bodySmall)
        Text(field.server ?: "—", Modifier.weight(1.5f), fontWeight = weight, color = color, style = MaterialTheme.typography.bodySmall)
    }
}

@Composable
private fun RejectedCard(rejected: RejectedItem, onDiscard: () -> Unit) {
    Card(Modifier.fillMaxWidth().padding(horizontal = 16.dp)) {
        Column(Modifier.padding(12.dp), verticalArrangement = Arrangement.spacedBy(6.dp)) {
            val what = if (rejected.kind == ChangeKind.DELETE) "Delete of" else "Change to"
            Text("$what ${kindName(rejected.collection).lowercase()} ${rejected.title}", style = MaterialTheme.typography.titleSmall)
            Text(rejected.reasonText, style = MaterialTheme.typography.bodySmall)
            Text("Server reason: ${rejected.reasonCode}", style = MaterialTheme.typography.labelSmall)
            OutlinedButton(onClick = onDiscard) { Text("Discard change") }
        }
    }
}

private fun kindName(collection: String): String = when (collection) {
    Collections.PLANS -> "Plan"
    Collections.PLAN_DAYS -> "Day"
    Collections.EXERCISES -> "Exercise"
    else -> collection
}
