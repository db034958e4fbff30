package dev.tandem

import java.io.File
import java.nio.file.Path
import java.security.MessageDigest
import java.util.Base64
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.io.TempDir

/**
 * Encryption at rest through the generated API, on the host library (docs/design/encryption.md):
 * a store opened with `Encryption.ON` keeps no document value or field name in its files, and
 * the same check finds both once it is turned off (so the check can fail); the key lives in the
 * app's [SecureStore]; a missing or wrong key is `TandemException.Key` and leaves the file
 * byte for byte as it was; `rekey` rotates the key and keeps every record.
 */
@Timeout(120)
class EncryptionTest {
    @TempDir
    lateinit var dir: Path

    private val value = "quetzalcoatl-kotlin-distinctive-4711"
    private val field = "zanzibarKotlinField"
    private val document = "{\"name\": \"" + value + "\", \"meta\": {\"" + field + "\": 1}}"

    private fun config(store: SecureStore, encryption: Encryption) =
        TandemConfig(
            dataDir = dir.resolve("data").toString(),
            schemaJson = SCHEMA,
            secureStore = store,
            encryption = encryption,
        )

    private fun openStore(store: SecureStore, encryption: Encryption): Tandem =
        Tandem.open(config(store, encryption))

    /** The data directory's files (databases, WAL, shared memory) that contain [text]. */
    private fun filesContaining(text: String): List<String> =
        dir.resolve("data").toFile().walk().filter { it.isFile }
            // ISO-8859-1 maps every byte to one char, so this finds the text's ASCII bytes.
            .filter { String(it.readBytes(), Charsets.ISO_8859_1).contains(text) }
            .map { it.name }.toList()

    private fun database(): File = dir.resolve("data").resolve("guest.db").toFile()

    private fun sha256(file: File): String =
        MessageDigest.getInstance("SHA-256").digest(file.readBytes()).joinToString("") { "%02x".format(it) }

    /** The store's entry holding the guest database's key. */
    private fun keyName(store: InMemorySecureStore): String =
        assertNotNull(store.names().singleOrNull { it.endsWith("/db-key/guest.db") }, "one stored key")

    @Test
    fun `an encrypted store keeps no document text on disk, a plaintext one does`() {
        val store = InMemorySecureStore()
        openStore(store, Encryption.ON).use { tandem ->
            tandem.put("plans", "p1", document)
            assertEquals(Encryption.ON, tandem.encryptionStatus())
            // Checked while open too: the WAL holds the write until a checkpoint.
            assertEquals(emptyList(), filesContaining(value))
            assertEquals(emptyList(), filesContaining(field))
        }
        assertEquals(emptyList(), filesContaining(value))
        assertEquals(emptyList(), filesContaining(field))
        keyName(store)

        // Turning it off decrypts the file on the next open, and the same check finds the text.
        openStore(store, Encryption.OFF).use { tandem ->
            assertEquals(Encryption.OFF, tandem.encryptionStatus())
            assertTrue(tandem.get("plans", "p1")!!.document.contains(value))
            tandem.put("plans", "p2", document)
        }
        assertTrue(filesContaining(value).isNotEmpty(), "plaintext files show the value")
        assertTrue(filesContaining(field).isNotEmpty(), "plaintext files show the field name")
        assertTrue(store.names().none { it.contains("/db-key") }, "the key is deleted once decrypted")

        // And on again: both records survive, encrypted.
        openStore(store, Encryption.ON).use { tandem ->
            assertEquals(listOf("p1", "p2"), ids(tandem.query("plans", Query())))
        }
        assertEquals(emptyList(), filesContaining(value))
    }

    @Test
    fun `a missing or wrong key is a typed error and the file is left as it was`() {
        val store = InMemorySecureStore()
        openStore(store, Encryption.ON).use { it.put("plans", "p1", document) }
        val before = sha256(database())

        // A restored backup: the file is here, its key is not.
        val missing = assertFailsWith<TandemException.Key> { openStore(InMemorySecureStore(), Encryption.ON) }
        assertEquals(KeyFailure.MISSING, missing.kind)
        // Asking for plaintext does not help without the key: nothing is decrypted or deleted.
        assertFailsWith<TandemException.Key> { openStore(InMemorySecureStore(), Encryption.OFF) }

        val wrongStore = InMemorySecureStore()
        wrongStore.set(keyName(store), Base64.getEncoder().encodeToString(ByteArray(32) { 7 }))
        val wrong = assertFailsWith<TandemException.Key> { openStore(wrongStore, Encryption.ON) }
        assertEquals(KeyFailure.WRONG, wrong.kind)
        assertFalse(wrong.message!!.contains(store.get(keyName(store))!!), "no key in a message")
        assertEquals(before, sha256(database()), "the file is untouched")

        // The right key opens it with everything in it, the pending change included.
        openStore(store, Encryption.ON).use { tandem ->
            assertTrue(tandem.get("plans", "p1")!!.document.contains(value))
            assertEquals(1UL, tandem.pendingCount())
        }
    }

    @Test
    fun `an app-supplied key is used and rekey hands the app the new one`() = runBlocking {
        // The app's own key, answered for the database's key name (here before the first open).
        val appKey = Base64.getEncoder().encodeToString(ByteArray(32) { (it * 3).toByte() })
        val store = object : SecureStore {
            val values = mutableMapOf<String, String>()
            override fun get(key: String): String? =
                values[key] ?: if (key.endsWith("/db-key/guest.db")) appKey else null
            override fun set(key: String, value: String) { values[key] = value }
            override fun delete(key: String) { values.remove(key) }
        }
        openStore(store, Encryption.ON).use { tandem ->
            tandem.put("plans", "p1", document)
            assertEquals(Encryption.ON, tandem.encryptionStatus())
            tandem.rekey()
            assertTrue(tandem.get("plans", "p1")!!.document.contains(value))
        }
        val rotated = store.values.entries.single { it.key.endsWith("/db-key/guest.db") }.value
        assertNotEquals(appKey, rotated, "the engine stored the new key through set")
        assertEquals(emptyList(), filesContaining(value))
        openStore(store, Encryption.ON).use { tandem ->
            assertEquals(listOf("p1"), ids(tandem.query("plans", Query())))
        }
    }

    @Test
    fun `a backup restored on another device is set aside and the app starts afresh`() {
        openStore(InMemorySecureStore(), Encryption.ON).use { it.put("plans", "p1", document) }
        val before = sha256(database())
        // The new device: the files came back, the keys (this device only) did not.
        val restored = InMemorySecureStore()
        assertFailsWith<TandemException.Key> { openStore(restored, Encryption.ON) }

        val moved = setAsideUnreadableData(config(restored, Encryption.ON))
        assertEquals(1, moved.size)
        assertTrue(moved.single().contains("guest.db.unreadable-"), moved.single())
        assertEquals(before, sha256(File(moved.single())), "set aside byte for byte, not deleted")
        openStore(restored, Encryption.ON).use { tandem ->
            assertEquals(0UL, tandem.count("plans", Query()))
            tandem.put("plans", "p2", document)
        }
        assertEquals(emptyList(), setAsideUnreadableData(config(restored, Encryption.ON)), "readable now")
    }

    @Test
    fun `rekey with encryption off is an invalid argument`() = runBlocking {
        openStore(InMemorySecureStore(), Encryption.OFF).use { tandem ->
            assertFailsWith<TandemException.InvalidArgument> { tandem.rekey() }
            assertEquals(Encryption.OFF, tandem.encryptionStatus())
        }
    }
}
