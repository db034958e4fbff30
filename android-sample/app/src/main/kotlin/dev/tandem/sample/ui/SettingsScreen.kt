package dev.tandem.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Switch
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.tandem.sample.SampleViewModels
import dev.tandem.sample.SettingsViewModel
import dev.tandem.sample.state.Diagnostics

/** Account and sign-out, automatic sync on/off, and the engine's sync diagnostics. */
@Composable
fun SettingsScreen(viewModel: SettingsViewModel = viewModel(factory = SampleViewModels)) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val message by viewModel.holder.message.collectAsStateWithLifecycle()
    val indicator by LocalSyncIndicator.current.holder.state.collectAsStateWithLifecycle()
    var signingOut by remember { mutableStateOf<Boolean?>(null) }

    SampleScaffold(title = "Settings", message = message, onMessageShown = viewModel.holder::dismissMessage) { padding ->
        Column(
            Modifier.fillMaxSize().padding(padding).verticalScroll(rememberScrollState()).padding(16.dp),
            verticalArrangement = Arrangement.spacedBy(12.dp),
        ) {
            Text("Account", style = MaterialTheme.typography.titleMedium)
            Text(state.email ?: "Not signed in")
            Text("Server: ${state.serverUrl}", style = MaterialTheme.typography.bodySmall)
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                OutlinedButton(onClick = { signingOut = false }) { Text("Sign out") }
                OutlinedButton(onClick = { signingOut = true }) { Text("Sign out and erase") }
            }
            HorizontalDivider()

            Text("Sync", style = MaterialTheme.typography.titleMedium)
            Row(verticalAlignment = Alignment.CenterVertically, modifier = Modifier.fillMaxWidth()) {
                Column(Modifier.weight(1f)) {
                    Text("Automatic sync")
                    Text(
                        "After changes, in the background and when the device comes online. Off: only tapping the status syncs.",
                        style = MaterialTheme.typography.bodySmall,
                    )
                }
                Switch(checked = state.syncEnabled, onCheckedChange = { on -> viewModel.act { setSyncEnabled(on) } })
            }
            SyncDetails(indicator)
            HorizontalDivider()

            Text("Diagnostics", style = MaterialTheme.typography.titleMedium)
            DiagnosticsTable(state.diagnostics, indicator.pending, indicator.conflicts, indicator.rejected)
        }
    }

    signingOut?.let { wipe ->
        ConfirmDialog(
            title = if (wipe) "Sign out and erase?" else "Sign out?",
            text = if (wipe) {
                "This account's data is deleted from this device, including changes not synced yet (${indicator.pending} pending)."
            } else {
                "This account's data stays on this device and is there again when you sign back in; changes not synced yet go up then."
            },
            confirmLabel = if (wipe) "Erase and sign out" else "Sign out",
            onDismiss = { signingOut = null },
        ) {
            signingOut = null
            viewModel.act { signOut(wipeLocalData = wipe) }
        }
    }
}

@Composable
private fun DiagnosticsTable(diagnostics: Diagnostics, pending: Long, conflicts: Long, rejected: Long) {
    val rows = listOf(
        "Pending changes" to "$pending",
        "Outbox entries" to "${diagnostics.outboxEntries}",
        "Conflicts" to "$conflicts",
        "Refused changes" to "$rejected",
        "Sync runs" to "${diagnostics.runs}",
        "Failed runs" to "${diagnostics.failures}",
        "Changes pushed" to "${diagnostics.opsPushed}",
        "Changes pulled" to "${diagnostics.changesPulled}",
        "Bytes sent" to "${diagnostics.bytesSent}",
        "Bytes received" to "${diagnostics.bytesReceived}",
        "Last run" to "${diagnostics.lastRunDurationMs} ms",
    ) + diagnostics.triggers.map { (reason, count) -> "Trigger: $reason" to "$count" }
    Column(verticalArrangement = Arrangement.spacedBy(4.dp)) {
        rows.forEach { (name, value) ->
            Row(Modifier.fillMaxWidth()) {
                Text(name, Modifier.weight(1f), style = MaterialTheme.typography.bodySmall)
                Text(value, style = MaterialTheme.typography.bodySmall)
            }
        }
    }
}
