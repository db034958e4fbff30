package dev.tandem.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.mutableStateListOf
import androidx.compose.runtime.remember
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp

/** One text field of a [FormDialog]: its label, first value, and whether it may stay empty. */
data class FormField(val label: String, val initial: String = "", val required: Boolean = false, val multiline: Boolean = false)

/**
 * A dialog editing a few text fields (a plan's name and notes, an exercise, a day's title).
 * [onConfirm] gets the values in the order of [fields]; it is offered only when every required
 * field has text.
 */
@Composable
fun FormDialog(
    title: String,
    fields: List<FormField>,
    confirmLabel: String,
    onDismiss: () -> Unit,
    onConfirm: (List<String>) -> Unit,
) {
    val values = remember { mutableStateListOf(*fields.map { it.initial }.toTypedArray()) }
    val complete = fields.indices.all { !fields[it].required || values[it].isNotBlank() }
    AlertDialog(
        onDismissRequest = onDismiss,
        title = { Text(title) },
        text = {
            Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
                fields.forEachIndexed { i, field ->
                    OutlinedTextField(
                        value = values[i],
                        onValueChange = { values[i] = it },
                        label = { Text(field.label) },
                        singleLine = !field.multiline,
                        minLines = if (field.multiline) 2 else 1,
                        modifier = Modifier.fillMaxWidth(),
                    )
                }
            }
        },
        confirmButton = {
            TextButton(enabled = complete, onClick = { onConfirm(values.toList()) }) { Text(confirmLabel) }
        },
        dismissButton = { TextButton(onClick = onDismiss) { Text("Cancel") } },
    )
}

/** Asks before something that cannot be undone. */
@Composable
fun ConfirmDialog(title: String, text: String, confirmLabel: String, onDismiss: () -> Unit, onConfirm: () -> Unit) {
    AlertDialog(
        onDismissRequest = onDismiss,
        title = { Text(title) },
        text = { Text(text) },
        confirmButton = { TextButton(onClick = onConfirm) { Text(confirmLabel) } },
        dismissButton = { TextButton(onClick = onDismiss) { Text("Cancel") } },
    )
}
