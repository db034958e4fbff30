package dev.tandem

import java.io.File
import java.security.MessageDigest
import kotlin.random.Random
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * Attachments through the generated suspend functions and [attachmentStateFlow], against a real
 * `tandem-server`: a photo attached on one device opens, byte for byte, on another device of the
 * same account; its upload is watched through the flow; another account cannot download it.
 */
@Timeout(120)
class AttachmentsTest : ServerTest(server) {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer()

        /** Over `photos`' eager prefetch limit (1,000,000 bytes) and over one 8 MiB chunk. */
        const val SIZE = 9 * 1024 * 1024
    }

    private fun sha256(bytes: ByteArray): String =
        MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }

    @Test
    fun `a photo attached on one device opens on another, its upload observed`() = runBlocking<Unit> {
        val a = device("a")
        val b = device("b")
        oneAccount(a, b)
        val bytes = Random(15).nextBytes(SIZE)
        val source = File(dir.toFile(), "climb.jpg").apply { writeBytes(bytes) }
        val hash = sha256(bytes)

        a.put("photos", "p1", """{"caption": "Climb"}""")
        val record = a.attachFile("photos", "p1", "image", source.path, null, null)
        assertTrue(record.document.contains(hash))
        source.delete() // the engine keeps its own copy
        assertEquals(AttachmentState.Local, a.attachmentState(hash))

        // The flow starts with the current state and follows the upload to its end. The sync
        // starts once the flow has its first element, so that element is the state before it.
        val started = CompletableDeferred<Unit>()
        val states = async(Dispatchers.Default) {
            a.attachmentStateFlow(hash).onEach { started.complete(Unit) }.takeWhile { it != AttachmentState.Uploaded }.toList()
        }
        withTimeout(10_000) { started.await() }
        assertEquals(1UL, a.syncNow().applied)
        val seen = withTimeout(30_000) { states.await() }
        assertEquals(AttachmentState.Local, seen.first())
        assertTrue(seen.all { it == AttachmentState.Local || it is AttachmentState.Uploading }, "$seen")
        assertEquals(AttachmentState.Uploaded, a.attachmentState(hash))
        assertEquals(0UL, a.syncStatus().attachmentsPending)

        b.syncNow()
        val reference = b.attachmentRef("photos", "p1", "image")!!
        assertEquals(AttachmentRef(hash, SIZE.toULong(), "image/jpeg", "climb.jpg"), reference)
        assertEquals(AttachmentState.Remote, b.attachmentStateFlow(hash).first())
        val path = b.attachment(reference)
        assertContentEquals(bytes, File(path).readBytes())
        assertEquals(AttachmentState.Uploaded, b.attachmentState(hash))
        // A range of the bytes, without a path: across a 64 KiB edge, and at the end.
        assertContentEquals(bytes.copyOfRange(65_530, 65_560), b.readAttachment(reference, 65_530UL, 30UL))
        assertContentEquals(bytes.copyOfRange(SIZE - 4, SIZE), b.readAttachment(reference, (SIZE - 4).toULong(), 100UL))
        assertEquals(0, b.readAttachment(reference, SIZE.toULong(), 10UL).size)
    }

    @Test
    fun `another account cannot download, and bad input is a typed error`() = runBlocking<Unit> {
        val a = device("a")
        val other = device("other")
        a.signUp(newEmail(), PASSWORD)
        other.signUp(newEmail(), PASSWORD)
        a.put("photos", "p1", "{}")
        a.attachBytes("photos", "p1", "image", "hello".toByteArray(), "text/plain", "hello.txt")
        a.syncNow()
        val reference = a.attachmentRef("photos", "p1", "image")!!

        val denied = assertFailsWith<TandemException.Attachment> { other.attachment(reference) }
        assertEquals(AttachmentErrorKind.NOT_FOUND, denied.kind)
        val notAnAttachment = assertFailsWith<TandemException.Validation> {
            a.attachBytes("photos", "p1", "caption", "x".toByteArray(), "text/plain", null)
        }
        assertEquals("caption", notAnAttachment.field)
        assertFailsWith<TandemException.NotFound> {
            a.attachBytes("photos", "missing", "image", "x".toByteArray(), "text/plain", null)
        }
        assertFailsWith<TandemException.InvalidArgument> { a.attachmentState("not-a-hash") }
        a.put("photos", "p2", "{}")
        assertNull(a.attachmentRef("photos", "p2", "image"))
        assertIs<AttachmentState.Remote>(a.attachmentState("0".repeat(64)))
    }
}
