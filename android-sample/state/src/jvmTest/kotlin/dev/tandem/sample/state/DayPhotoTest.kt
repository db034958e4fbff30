package dev.tandem.sample.state

import dev.tandem.AttachmentFailure
import dev.tandem.AttachmentState
import dev.tandem.TandemServer
import java.io.File
import java.nio.file.Path
import kotlin.random.Random
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension
import org.junit.jupiter.api.io.TempDir

/**
 * A plan day's photo through the app's state layer against a real `tandem-server` (the sample
 * schema, `plan_days.photo`): attached on one phone (what the photo picker's result does), shown
 * there as waiting, then uploaded by a sync; the other phone of the account shows it after its
 * sync with the same bytes. Data moves only when a test syncs.
 */
@Timeout(180)
class DayPhotoTest {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer(schema = null)
    }

    @TempDir
    lateinit var root: Path
    private val devices = mutableListOf<Device>()

    @AfterEach
    fun closeDevices() {
        devices.forEach(Device::close)
    }

    @Test
    fun `a photo attached to a day on one phone shows on the other after sync`() = runBlocking<Unit> {
        val phone = Device("phone", root, server.url).also(devices::add)
        val tablet = Device("tablet", root, server.url).also(devices::add)
        val email = newEmail()
        phone.enter(email, SignInMode.SIGN_UP)
        tablet.enter(email, SignInMode.SIGN_IN)

        val plan = assertNotNull(phone.plansList.create("Legs", ""))
        val day = assertNotNull(phone.planDetail(plan.id).addDay("Squats"))
        val photo = phone.dayPhoto(plan.ref, day.id)
        assertNull(photo.state.await("no photo yet") { it.photo == null }.caption)

        // Over the sample schema's eager prefetch limit (5 MB): the tablet downloads on demand.
        val bytes = Random(15).nextBytes(6_000_000)
        assertTrue(photo.attach(bytes, "image/jpeg", "squat.jpg"), photo.message.value)
        // The phone shows its own copy before any sync.
        val waiting = photo.state.await("the attached photo") {
            it.photo != null && it.transfer == AttachmentState.Local && it.file != null
        }
        assertEquals("Waiting to upload", waiting.caption)
        assertEquals(6_000_000UL, waiting.photo!!.size)
        assertContentEquals(bytes, File(waiting.file!!).readBytes())

        phone.sync()
        photo.state.await("the upload's end") { it.transfer == AttachmentState.Uploaded }

        tablet.sync()
        val shown = tablet.dayPhoto(plan.ref, day.id).state.await("the photo on the tablet") { it.file != null }
        assertEquals(waiting.photo, shown.photo)
        assertContentEquals(bytes, File(shown.file!!).readBytes())
    }

    @Test
    fun `captions say where a photo is`() {
        assertEquals("Uploading 25 %", DayPhotoState(transfer = AttachmentState.Uploading(25UL, 100UL)).caption)
        assertEquals(0.5f, DayPhotoState(transfer = AttachmentState.Downloading(5UL, 10UL)).progress)
        assertEquals(
            "Upload failed: the photo is too large for the server.",
            DayPhotoState(transfer = AttachmentState.Failed(AttachmentFailure.TOO_LARGE, "limit 100 MiB")).caption,
        )
        assertNull(DayPhotoState(transfer = AttachmentState.Uploaded).caption)
        assertNull(DayPhotoState(transfer = AttachmentState.Remote).progress)
    }
}
