package dev.tandem.sample.ui

import android.graphics.BitmapFactory
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.Image
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.produceState
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.ImageBitmap
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.ui.layout.ContentScale
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.tandem.AttachmentState
import dev.tandem.sample.DayPhotoViewModel
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * The day's photo: the image once its file is on the device (downloaded on demand), upload or
 * download progress under it, a failed upload's reason, and the Android photo picker
 * (`PickVisualMedia`, no storage permission needed) to add or replace it.
 */
@Composable
fun DayPhoto(viewModel: DayPhotoViewModel, editable: Boolean) {
    val state by viewModel.holder.state.collectAsStateWithLifecycle()
    val context = LocalContext.current
    val picker = rememberLauncherForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri != null) {
            viewModel.act {
                val resolver = context.contentResolver
                val bytes = withContext(Dispatchers.IO) { resolver.openInputStream(uri)?.use { it.readBytes() } }
                if (bytes != null) attach(bytes, resolver.getType(uri) ?: "image/jpeg")
            }
        }
    }
    val image by produceState<ImageBitmap?>(null, state.file) {
        value = state.file?.let { path -> withContext(Dispatchers.IO) { BitmapFactory.decodeFile(path)?.asImageBitmap() } }
    }

    Column(Modifier.fillMaxWidth().padding(16.dp)) {
        when {
            image != null -> Image(
                bitmap = image!!,
                contentDescription = "The day's photo",
                contentScale = ContentScale.Fit,
                modifier = Modifier.fillMaxWidth().heightIn(max = 240.dp),
            )
            state.photo != null && state.transfer !is AttachmentState.Failed -> CircularProgressIndicator()
            else -> Text("No photo", style = MaterialTheme.typography.bodyMedium)
        }
        state.progress?.let { LinearProgressIndicator(progress = { it }, modifier = Modifier.fillMaxWidth().padding(top = 8.dp)) }
        state.caption?.let { caption ->
            Text(
                caption,
                style = MaterialTheme.typography.bodySmall,
                color = if (state.transfer is AttachmentState.Failed) MaterialTheme.colorScheme.error else MaterialTheme.colorScheme.onSurfaceVariant,
            )
        }
        if (editable) {
            Row {
                TextButton(onClick = { picker.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly)) }) {
                    Text(if (state.photo == null) "Add photo" else "Replace photo")
                }
                if (state.photo != null) {
                    TextButton(onClick = { viewModel.act { remove() } }) { Text("Remove photo") }
                }
            }
        }
    }
}
