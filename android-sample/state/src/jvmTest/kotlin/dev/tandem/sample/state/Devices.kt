package dev.tandem.sample.state

import dev.tandem.InMemorySecureStore
import dev.tandem.SecureStore
import java.io.File
import java.nio.file.Path
import java.util.UUID
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.withTimeoutOrNull

/** The sample schema, read from the repository: the same file the app ships and the server loads. */
val SAMPLE_SCHEMA: String by lazy {
    File(System.getProperty("tandem.repo.root") ?: error("-Dtandem.repo.root is not set"), "schemas/sample.json").readText()
}

const val PASSWORD = "correct horse battery staple"

fun newEmail(): String = "sample-${UUID.randomUUID()}@example.com"

/**
 * One launch of the app on a phone whose files are under [root] and whose token store is
 * [store]: launched again with the same store it is the same phone after a restart; with a new
 * one, a phone the files were restored onto. Sync runs only when a test asks.
 */
fun launchApp(root: Path, serverUrl: String, store: SecureStore): SampleGraph = SampleGraph(
    EngineOptions(
        dataDir = root.resolve("tandem").toString(),
        schemaJson = SAMPLE_SCHEMA,
        secureStore = store,
        realtime = false,
    ),
    root.resolve("settings.json").toFile(),
    AppSettings(serverUrl = serverUrl, syncEnabled = false),
)

/**
 * One phone running the app's state layer: its own data directory, settings file and in-memory
 * token store, the graph the app builds, and state holders in a scope of its own (what the
 * ViewModels would hold). Automatic sync is off and realtime pokes too, so data moves only when
 * a test syncs: every assertion then follows from the steps before it.
 */
class Device(
    val name: String,
    root: Path,
    serverUrl: String,
    autoSync: Boolean = false,
) : AutoCloseable {
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    val dir: Path = root.resolve(name)
    val graph = SampleGraph(
        EngineOptions(
            dataDir = dir.resolve("tandem").toString(),
            schemaJson = SAMPLE_SCHEMA,
            secureStore = InMemorySecureStore(),
            realtime = false,
        ),
        dir.resolve("settings.json").toFile(),
        AppSettings(serverUrl = serverUrl, syncEnabled = autoSync),
    )
    val session = SessionStateHolder(graph.host, graph.settings, scope)
    val indicator by lazy { SyncIndicatorStateHolder(graph.host, graph.settings, scope) }
    val plansList by lazy { PlansListStateHolder(graph.plans, scope, graph.spaces) }
    val catalog by lazy { CatalogStateHolder(graph.exercises, scope) }
    val conflicts by lazy { ConflictCenterStateHolder(graph.host, scope) }
    val settings by lazy { SettingsStateHolder(graph.host, graph.settings, scope) }

    fun planDetail(planId: String) = PlanDetailStateHolder(planId, graph.plans, graph.exercises, scope)

    fun dayEditor(planId: String, dayId: String) = DayEditorStateHolder(planId, dayId, graph.plans, graph.exercises, scope)

    fun planDetail(plan: PlanRef) = PlanDetailStateHolder(plan, graph.plans, graph.exercises, scope, graph.spaces)

    fun dayEditor(plan: PlanRef, dayId: String) = DayEditorStateHolder(plan, dayId, graph.plans, graph.exercises, scope)

    fun shareSheet(plan: PlanRef) = ShareSheetStateHolder(plan, graph.spaces, scope)

    fun dayPhoto(plan: PlanRef, dayId: String) = DayPhotoStateHolder(plan, dayId, graph.host, scope)

    /** Signs up (or in) through the sign-in form, as the screen would. */
    suspend fun enter(email: String, mode: SignInMode, password: String = PASSWORD) {
        session.setMode(mode)
        session.setEmail(email)
        session.setPassword(password)
        assertTrue(session.submit(), "$name: ${mode.name.lowercase()} failed: ${session.form.value.error}")
        session.session.await("$name signed in") { it is Session.SignedIn }
    }

    /** One explicit sync; fails the test if it fails. */
    suspend fun sync() {
        graph.host.engine.syncNow()
    }

    override fun close() {
        scope.cancel()
        graph.close()
    }
}

/** Waits (real time: the engine delivers on its own threads) for a value matching [predicate]. */
suspend fun <T> StateFlow<T>.await(what: String, millis: Long = 10_000, predicate: (T) -> Boolean): T =
    withTimeoutOrNull(millis) { first(predicate) } ?: fail("timed out after $millis ms waiting for $what; last: $value")
