package dev.tandem.sample.ui

import android.text.format.DateUtils
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.size
import androidx.compose.foundation.shape.CircleShape
import androidx.compose.foundation.background
import androidx.compose.material3.AssistChip
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.staticCompositionLocalOf
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.semantics.contentDescription
import androidx.compose.ui.semantics.semantics
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.tandem.sample.SyncIndicatorViewModel
import dev.tandem.sample.state.SyncIndicator
import dev.tandem.sample.state.SyncKind

/** The activity's sync indicator, for every screen's top bar. */
val LocalSyncIndicator = staticCompositionLocalOf<SyncIndicatorViewModel> {
    error("SampleApp provides the sync indicator")
}

/**
 * The sync indicator: a coloured dot and a short state ("Synced 2 min ago", "Syncing…",
 * "Offline · 3 pending", "Sync error"), live from the engine's status. A tap syncs now.
 */
@Composable
fun SyncIndicatorChip() {
    val viewModel = LocalSyncIndicator.current
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val text = syncLabel(state)
    AssistChip(
        onClick = { if (!state.manualSyncRunning) viewModel.act { syncNow() } },
        label = { Text(text, style = MaterialTheme.typography.labelMedium) },
        leadingIcon = {
            if (state.kind == SyncKind.SYNCING || state.manualSyncRunning) {
                CircularProgressIndicator(modifier = Modifier.size(14.dp), strokeWidth = 2.dp)
            } else {
                Box(Modifier.size(10.dp).background(color(state.kind), CircleShape))
            }
        },
        modifier = Modifier
            .padding(end = 8.dp)
            .semantics { contentDescription = "Sync status: $text. Tap to sync now." },
    )
}

/**
 * The indicator's words; the pending count is always shown when something waits. After a failed
 * run (also one from an earlier launch: the engine keeps its outcome) a waiting change says so.
 */
fun syncLabel(state: SyncIndicator): String {
    val pending = if (state.pending > 0) " · ${state.pending} pending" else ""
    return when (state.kind) {
        SyncKind.SYNCED -> state.lastSyncedAt?.let { "Synced ${relative(it.toEpochMilli())}" } ?: "Synced"
        SyncKind.PENDING -> when {
            state.lastRunFailed -> "Last sync failed$pending"
            state.autoSync -> "Waiting$pending"
            else -> "Auto-sync off$pending"
        }
        SyncKind.SYNCING -> if (state.remaining > 0) "Syncing ${state.pulled}/${state.pulled + state.remaining}" else "Syncing…"
        SyncKind.OFFLINE -> "Offline$pending"
        SyncKind.ERROR -> "Sync error$pending"
        SyncKind.PAUSED -> "Sync paused$pending"
        SyncKind.SIGNED_OUT -> "Signed out"
    }
}

private fun relative(millis: Long): String =
    DateUtils.getRelativeTimeSpanString(millis, System.currentTimeMillis(), DateUtils.MINUTE_IN_MILLIS).toString()

private fun color(kind: SyncKind): Color = when (kind) {
    SyncKind.SYNCED -> Color(0xFF2E7D32)
    SyncKind.PENDING, SyncKind.SYNCING -> Color(0xFF1565C0)
    SyncKind.OFFLINE, SyncKind.PAUSED -> Color(0xFF9E9E9E)
    SyncKind.ERROR -> Color(0xFFC62828)
    SyncKind.SIGNED_OUT -> Color(0xFF616161)
}

/** The details behind the chip, for the settings screen: last sync, the last run's outcome, realtime. */
@Composable
fun SyncDetails(state: SyncIndicator) {
    Row(horizontalArrangement = Arrangement.spacedBy(8.dp), verticalAlignment = Alignment.CenterVertically) {
        Box(Modifier.size(10.dp).background(color(state.kind), CircleShape))
        Text(syncLabel(state), style = MaterialTheme.typography.bodyMedium)
    }
    state.lastSyncedAt?.let { Text("Last successful sync: ${relative(it.toEpochMilli())}", style = MaterialTheme.typography.bodySmall) }
    // How the last run went, failed ones with their typed reason: kept by the engine across
    // launches, so this is right at open after a sync that failed before the app was closed.
    state.lastRunText()?.let { text ->
        Text(
            text,
            style = MaterialTheme.typography.bodySmall,
            color = if (state.lastRunFailed) MaterialTheme.colorScheme.error else MaterialTheme.colorScheme.onSurface,
        )
    }
    Text(
        if (state.realtime) "Live updates: connected" else "Live updates: not connected",
        style = MaterialTheme.typography.bodySmall,
    )
}
