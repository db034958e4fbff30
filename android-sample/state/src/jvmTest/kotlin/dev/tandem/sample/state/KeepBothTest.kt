package dev.tandem.sample.state

import dev.tandem.Conflict
import dev.tandem.ConflictReason
import dev.tandem.InMemorySecureStore
import dev.tandem.TandemServer
import java.io.File
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension
import org.junit.jupiter.api.io.TempDir

/**
 * "Keep both" in the conflict center: two devices created records with the same unique key; the
 * user types a new value of the key's field, and both records end up on both devices. The sample
 * schema has no unique key, so this runs on the tests' schema (its `files`, unique by
 * `(projectId, path)`) through the same state holders.
 */
@Timeout(120)
class KeepBothTest {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer()

        val TEST_SCHEMA: String by lazy {
            File(System.getProperty("tandem.repo.root") ?: error("-Dtandem.repo.root is not set"), "schemas/test.json").readText()
        }
    }

    @TempDir
    lateinit var root: Path
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val graphs = mutableListOf<SampleGraph>()

    @AfterEach
    fun close() {
        scope.cancel()
        graphs.forEach(SampleGraph::close)
    }

    private fun device(name: String): SampleGraph = SampleGraph(
        EngineOptions(
            dataDir = root.resolve(name).resolve("tandem").toString(),
            schemaJson = TEST_SCHEMA,
            secureStore = InMemorySecureStore(),
            realtime = false,
        ),
        root.resolve(name).resolve("settings.json").toFile(),
        AppSettings(serverUrl = server.url, syncEnabled = false),
    ).also(graphs::add)

    private fun conflict(localDocument: String?) = ConflictCenterStateHolder.item(
        Conflict(
            collection = "files", id = "mine", reason = ConflictReason.UNIQUE_VIOLATION,
            fields = listOf("projectId", "path"), localDocument = localDocument, serverDocument = null,
            baseDocument = null, serverVersion = 0UL, existingId = "theirs",
        ),
    )

    @Test
    fun `keep both asks for the key's text field and builds mine with the new value`() {
        val item = conflict("""{"projectId":"p","path":"/a","size":2}""")
        assertEquals("path", item.keepBothField)
        assertEquals("/a (2)", item.keepBothSuggestion)
        assertEquals("""{"projectId":"p","path":"/b","size":2}""", item.keepBothDocument("path", " /b "))
        assertEquals(
            "Another record already has this path; enter a different one.",
            runCatching { item.keepBothDocument("path", "/a") }.exceptionOrNull()?.message,
        )
        assertTrue(runCatching { item.keepBothDocument("path", "  ") }.isFailure)

        // Deleted here: nothing to keep twice. Not a unique conflict: no keep both.
        assertNull(conflict(null).keepBothField)
        val other = ConflictCenterStateHolder.item(
            Conflict("files", "f", ConflictReason.BOTH_CHANGED, listOf("path"), """{"path":"/a"}""", """{"path":"/b"}""", null, 2UL, null),
        )
        assertNull(other.keepBothField)
    }

    @Test
    fun `keep both gives mine the new key and both records reach both devices`() = runBlocking<Unit> {
        val email = newEmail()
        val phone = device("phone")
        val tablet = device("tablet")
        phone.host.engine.signUp(email, PASSWORD)
        tablet.host.engine.signIn(email, PASSWORD)
        phone.host.engine.put("projects", "p", """{"name": "P"}""")
        phone.host.engine.syncNow()
        tablet.host.engine.syncNow()

        phone.host.engine.put("files", "fa", """{"projectId": "p", "path": "/same"}""")
        tablet.host.engine.put("files", "fb", """{"projectId": "p", "path": "/same", "size": 2}""")
        phone.host.engine.syncNow()
        tablet.host.engine.syncNow()

        val center = ConflictCenterStateHolder(tablet.host, scope)
        val item = center.state.await("the unique conflict") { it.conflicts.size == 1 }.conflicts.single()
        assertTrue(item.isUniqueViolation)
        assertEquals("fa", item.existingId)
        assertEquals("path", item.keepBothField)
        assertEquals("/same (2)", item.keepBothSuggestion)

        // The key the other record holds is refused with words, and the conflict stays.
        assertFalse(center.keepBoth(item, "path", "/same"))
        assertEquals("Another record already has this path; enter a different one.", center.message.value)
        assertEquals(1, center.state.value.conflicts.size)

        assertTrue(center.keepBoth(item, "path", item.keepBothSuggestion!!))
        center.state.await("settled") { it.conflicts.isEmpty() }
        assertNull(center.message.value)

        tablet.host.engine.syncNow()
        phone.host.engine.syncNow()
        for (device in listOf(phone, tablet)) {
            val theirs = Documents.parse(device.host.engine.get("files", "fa")?.document)
            val mine = Documents.parse(device.host.engine.get("files", "fb")?.document)
            assertEquals(Documents.parse("""{"projectId":"p","path":"/same"}"""), theirs)
            assertEquals(Documents.parse("""{"projectId":"p","path":"/same (2)","size":2}"""), mine)
        }
        assertEquals(emptyList(), tablet.host.engine.conflicts())
    }
}
