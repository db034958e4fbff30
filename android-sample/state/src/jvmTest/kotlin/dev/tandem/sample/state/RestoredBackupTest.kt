package dev.tandem.sample.state

import dev.tandem.Encryption
import dev.tandem.InMemorySecureStore
import dev.tandem.Query
import dev.tandem.SecureStore
import dev.tandem.TandemServer
import java.io.File
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension
import org.junit.jupiter.api.io.TempDir

/**
 * The app's data is encrypted at rest; restored from a backup onto another phone, its files come
 * back but the Keystore keys do not. The app then sets the unreadable databases aside (renamed,
 * never deleted) and starts afresh: the user signs in again and the plans come back from the
 * server.
 */
@Timeout(120)
class RestoredBackupTest {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer(schema = null)
    }

    @TempDir
    lateinit var root: Path
    private val graphs = mutableListOf<SampleGraph>()

    @AfterEach
    fun close() = graphs.forEach(SampleGraph::close)

    private fun launch(store: SecureStore): SampleGraph = launchApp(root, server.url, store).also(graphs::add)

    @Test
    fun `a backup restored on another phone starts afresh and the plans come back after sign-in`() = runBlocking<Unit> {
        val email = newEmail()
        val first = launch(InMemorySecureStore())
        assertEquals(Encryption.ON, first.host.engine.encryptionStatus(), "the sample encrypts")
        first.host.engine.signUp(email, PASSWORD)
        first.host.engine.put(Collections.PLANS, "p1", Documents.document("name" to "Legs"))
        first.host.engine.syncNow()
        first.close()
        graphs.remove(first)

        // Another phone: the same files, an empty key store.
        val restored = launch(InMemorySecureStore())
        val asideFiles = File(root.resolve("tandem").toString()).walk().filter { ".unreadable-" in it.name }.toList()
        assertTrue(asideFiles.isNotEmpty(), "the unreadable databases were set aside, not deleted")
        val engine = restored.host.engine
        engine.signIn(email, PASSWORD)
        engine.syncNow()
        assertEquals(1UL, engine.count(Collections.PLANS, Query()))
    }
}
