package dev.tandem.sample.state

import dev.tandem.AttachmentFailure
import dev.tandem.AttachmentRef
import dev.tandem.AttachmentState
import dev.tandem.attachmentStateFlow
import dev.tandem.observeRecordAsFlow
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.ExperimentalCoroutinesApi
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.flatMapLatest
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.flowOf
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.withContext

/** A day's photo as the day editor shows it. */
data class DayPhotoState(
    /** The photo's reference (hash, size, type), or null when the day has none. */
    val photo: AttachmentRef? = null,
    /** Where its bytes are: here only, uploading, uploaded, on the server only, downloading, failed. */
    val transfer: AttachmentState? = null,
    /** The photo's file on this device, once there is one (downloaded on demand). */
    val file: String? = null,
) {
    /** A line under the photo: progress, or why the upload failed; null when there is nothing to say. */
    val caption: String?
        get() = when (val t = transfer) {
            is AttachmentState.Local -> "Waiting to upload"
            is AttachmentState.Uploading -> "Uploading ${percent(t.sent, t.total)} %"
            is AttachmentState.Downloading -> "Downloading ${percent(t.received, t.total)} %"
            is AttachmentState.Failed -> when (t.reason) {
                AttachmentFailure.TOO_LARGE -> "Upload failed: the photo is too large for the server."
                AttachmentFailure.QUOTA_EXCEEDED -> "Upload failed: your storage on the server is full."
                else -> "Upload failed; see Conflicts."
            }
            else -> null
        }

    /** 0.0–1.0 while a transfer runs, else null (for a progress bar). */
    val progress: Float?
        get() = when (val t = transfer) {
            is AttachmentState.Uploading -> fraction(t.sent, t.total)
            is AttachmentState.Downloading -> fraction(t.received, t.total)
            else -> null
        }

    companion object {
        fun percent(done: ULong, total: ULong): Int = if (total == 0UL) 100 else (done * 100UL / total).toInt()

        private fun fraction(done: ULong, total: ULong): Float = if (total == 0UL) 1f else done.toFloat() / total.toFloat()
    }
}

/**
 * The photo of one plan day (`plan_days.photo`, or `shared_plan_days.photo`): picked with the
 * Android photo picker, attached with [attach] (the engine copies the bytes and uploads them with
 * the next sync, before the change that names them), its upload and download progress from
 * [attachmentStateFlow], and its file from `attachment()` (downloaded when it is only on the
 * server). A failed upload shows here and among the refused changes of the conflict center.
 */
@OptIn(ExperimentalCoroutinesApi::class)
class DayPhotoStateHolder(
    private val ref: PlanRef,
    private val dayId: String,
    private val host: TandemHost,
    scope: CoroutineScope,
    private val io: CoroutineDispatcher = Dispatchers.IO,
) : StateHolder(scope) {
    /** The day's photo reference: null while the day has none, or once it is deleted. */
    private val photo: Flow<AttachmentRef?> =
        host.live { engine ->
            engine.observeRecordAsFlow(ref.daysCollection, dayId).map { record ->
                record?.let { runCatching { engine.attachmentRef(ref.daysCollection, dayId, FIELD) }.getOrNull() }
            }
        }.distinctUntilChanged()

    val state: StateFlow<DayPhotoState> =
        photo.flatMapLatest { reference ->
            if (reference == null) {
                flowOf(DayPhotoState())
            } else {
                combine(
                    host.live { it.attachmentStateFlow(reference.hash) },
                    fileOf(reference),
                ) { transfer, file -> DayPhotoState(reference, transfer, file) }
            }
        }.stateIn(scope, SharingStarted.Eagerly, DayPhotoState())

    /** The file's path: null until it is on this device (a download may be under way). */
    private fun fileOf(reference: AttachmentRef): Flow<String?> = flow {
        emit(null)
        val path = attempt { withContext(io) { host.engine.attachment(reference) } }
        if (path != null) emit(path)
    }

    /** Attaches picked image bytes as the day's photo; false (with [message]) when refused. */
    suspend fun attach(bytes: ByteArray, contentType: String, name: String? = null): Boolean =
        attempt { host.engine.attachBytes(ref.daysCollection, dayId, FIELD, bytes, contentType, name) } != null

    /** Takes the photo off the day; its file leaves the device once the change is synced. */
    suspend fun remove(): Boolean =
        attempt { withContext(io) { host.engine.patch(ref.daysCollection, dayId, """{"$FIELD": null}""") } } != null

    companion object {
        /** The attachment field of the sample schema's day collections. */
        const val FIELD = "photo"
    }
}
