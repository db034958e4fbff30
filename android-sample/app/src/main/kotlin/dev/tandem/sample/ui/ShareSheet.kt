package dev.tandem.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.FilterChip
import androidx.compose.material3.ListItem
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.tandem.Member
import dev.tandem.SpaceRole
import dev.tandem.sample.SampleViewModels
import dev.tandem.sample.ShareSheetViewModel
import dev.tandem.sample.state.PlanRef
import dev.tandem.sample.state.label

/**
 * The share sheet of the plan on screen: invite someone by email as editor or viewer (a personal
 * plan moves into a space of its own on the first invitation, and [onMoved] gets where it is
 * now), the members with their roles, and for owners: change a role, remove a member. Needs the
 * server; offline, the message says so and nothing changes.
 */
@Composable
fun ShareSheet(
    onDismiss: () -> Unit,
    onMoved: (PlanRef) -> Unit,
    viewModel: ShareSheetViewModel = viewModel(factory = SampleViewModels),
) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val message by viewModel.holder.message.collectAsStateWithLifecycle()
    var email by remember { mutableStateOf("") }
    var role by remember { mutableStateOf(SpaceRole.EDITOR) }

    val close = {
        onDismiss()
        onMoved(state.plan)
    }
    AlertDialog(
        onDismissRequest = close,
        title = { Text("Share") },
        text = {
            Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
                if (state.canManage) {
                    OutlinedTextField(
                        value = email,
                        onValueChange = { email = it },
                        label = { Text("Email") },
                        singleLine = true,
                        modifier = Modifier.fillMaxWidth(),
                    )
                    Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                        listOf(SpaceRole.EDITOR, SpaceRole.VIEWER).forEach { choice ->
                            FilterChip(
                                selected = role == choice,
                                onClick = { role = choice },
                                label = { Text(if (choice == SpaceRole.EDITOR) "Can edit" else "View only") },
                            )
                        }
                    }
                    TextButton(
                        onClick = { viewModel.act({ invite(email, role) }) { invited -> if (invited) email = "" } },
                        enabled = email.isNotBlank() && !state.busy,
                    ) { Text("Invite") }
                }
                message?.let { Text(it, color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.bodySmall) }
                if (state.members.isNotEmpty()) {
                    Text("Shared with", style = MaterialTheme.typography.titleSmall)
                    LazyColumn {
                        items(state.members, key = { it.userId }) { member ->
                            MemberRow(member, canManage = state.role == SpaceRole.OWNER, onRole = { next ->
                                viewModel.act { setRole(member, next) }
                            }, onRemove = { viewModel.act { remove(member) } })
                        }
                    }
                }
            }
        },
        confirmButton = { TextButton(onClick = close) { Text("Done") } },
    )
}

@Composable
private fun MemberRow(member: Member, canManage: Boolean, onRole: (SpaceRole) -> Unit, onRemove: () -> Unit) {
    ListItem(
        headlineContent = { Text(member.email) },
        supportingContent = { Text(member.role.label()) },
        trailingContent = {
            if (canManage) {
                Row {
                    val next = if (member.role == SpaceRole.VIEWER) SpaceRole.EDITOR else SpaceRole.VIEWER
                    TextButton(onClick = { onRole(next) }) { Text("Make ${next.label()}") }
                    TextButton(onClick = onRemove) { Text("Remove") }
                }
            }
        },
        modifier = Modifier.padding(vertical = 0.dp),
    )
}
