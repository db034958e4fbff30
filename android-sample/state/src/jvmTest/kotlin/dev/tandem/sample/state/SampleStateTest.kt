package dev.tandem.sample.state

import dev.tandem.AuthFailure
import dev.tandem.ConflictReason
import dev.tandem.RecordState
import dev.tandem.SyncFailure
import dev.tandem.TandemException
import dev.tandem.ValidationReason
import dev.tandem.TandemServer
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
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
 * The sample app's state layer against a real `tandem-server` with the sample schema: what each
 * screen shows and does, on one or two devices. Everything runs in runBlocking on real
 * dispatchers, because the waits are for the server and the engine's threads.
 */
@Timeout(120)
class SampleStateTest {
    companion object {
        @JvmField
        @RegisterExtension
        // The server's built-in schema: the sample app's, schemas/sample.json.
        val server = TandemServer(schema = null)
    }

    @TempDir
    lateinit var root: Path
    private val devices = mutableListOf<Device>()

    @AfterEach
    fun closeDevices() {
        devices.forEach(Device::close)
        // A test that stopped the server must not leave it down for the next.
        runCatching { server.start() }
    }

    private fun device(name: String, autoSync: Boolean = false) = Device(name, root, server.url, autoSync).also(devices::add)

    @Test
    fun `sign up, wrong password, existing account and sign in show in the session and form`() = runBlocking<Unit> {
        val phone = device("phone")
        assertEquals(Session.SignedOut(), phone.session.session.await("the first auth state") { it != Session.Starting })
        assertEquals(server.url, phone.session.form.value.serverUrl)
        assertFalse(phone.session.form.value.canSubmit, "nothing typed yet")

        val email = newEmail()
        phone.enter(email, SignInMode.SIGN_UP)
        assertEquals(email, (phone.session.session.value as Session.SignedIn).user.email)
        assertEquals("", phone.session.form.value.password, "the password is not kept after success")
        assertEquals(email, phone.graph.settings.settings.value.lastEmail)

        val tablet = device("tablet")
        tablet.session.setEmail(email)
        tablet.session.setPassword("wrong $PASSWORD")
        assertFalse(tablet.session.submit())
        assertEquals("Wrong email or password.", tablet.session.form.value.error)
        assertEquals("wrong $PASSWORD", tablet.session.form.value.password, "kept for a retry")
        assertFalse(tablet.session.form.value.busy)

        tablet.session.setMode(SignInMode.SIGN_UP)
        assertNull(tablet.session.form.value.error, "editing the form clears the error")
        tablet.session.setPassword(PASSWORD)
        assertFalse(tablet.session.submit())
        assertTrue(tablet.session.form.value.error!!.startsWith("An account with this email already exists"))
        assertTrue(tablet.session.session.value is Session.SignedOut)

        tablet.enter(email, SignInMode.SIGN_IN)
        assertEquals(email, (tablet.session.session.value as Session.SignedIn).user.email)
    }

    @Test
    fun `the plans list is live, including changes synced from a second device`() = runBlocking<Unit> {
        val email = newEmail()
        val phone = device("phone").apply { enter(email, SignInMode.SIGN_UP) }
        val tablet = device("tablet").apply { enter(email, SignInMode.SIGN_IN) }
        val list = tablet.plansList
        assertEquals(emptyList(), list.state.await("the first results") { it.loaded }.plans)

        val legs = assertNotNull(phone.plansList.create("Legs", "squats first"))
        phone.plansList.create("Arms")
        phone.sync()
        tablet.sync()
        // No refresh: the observed query delivers what the pull committed.
        val synced = list.state.await("both plans from the phone") { it.plans.size == 2 }
        assertEquals(listOf("Arms", "Legs"), synced.plans.map { it.name }, "sorted by name")
        assertEquals("squats first", synced.plans.single { it.id == legs.id }.notes)
        assertTrue(synced.plans.all { it.state == RecordState.SYNCED })

        // A rename and an archive on the phone; the tablet hides archived plans by default.
        phone.planDetail(legs.id).update("Legs & glutes", "squats first")
        phone.plansList.setArchived(phone.plansList.state.value.plans.single { it.name == "Arms" }.id, true)
        phone.sync()
        tablet.sync()
        val renamed = list.state.await("the rename and the archive") { it.archivedCount == 1 && it.plans.size == 1 }
        assertEquals("Legs & glutes", renamed.plans.single().name)
        list.setShowArchived(true)
        assertEquals(listOf("Arms", "Legs & glutes"), list.state.await("archived shown") { it.plans.size == 2 }.plans.map { it.name })

        // And a plan made on the tablet shows up on the phone's list.
        tablet.plansList.create("Core")
        tablet.sync()
        phone.sync()
        phone.plansList.setShowArchived(true)
        phone.plansList.state.await("the tablet's plan on the phone") { s -> s.plans.any { it.name == "Core" } }
    }

    @Test
    fun `undoing a plan's unsynced changes brings the server's version back`() = runBlocking<Unit> {
        val phone = device("phone").apply { enter(newEmail(), SignInMode.SIGN_UP) }
        val plan = assertNotNull(phone.plansList.create("Full body"))
        phone.sync()
        val detail = phone.planDetail(plan.id)
        assertTrue(detail.update("Upper body", "heavy"))
        detail.state.await("the edit, pending") { it.plan?.name == "Upper body" && it.plan.state == RecordState.PENDING }
        assertTrue(detail.revertChanges())
        detail.state.await("the server's version") { it.plan?.name == "Full body" && it.plan.state == RecordState.SYNCED }
        assertEquals(0UL, phone.graph.host.engine.pendingCount())

        val draft = assertNotNull(phone.plansList.create("Draft"))
        val draftDetail = phone.planDetail(draft.id)
        assertTrue(draftDetail.revertChanges())
        draftDetail.state.await("a plan never synced goes away") { it.gone }
    }

    @Test
    fun `deleting a plan deletes its days here and, after sync, on the other device`() = runBlocking<Unit> {
        val email = newEmail()
        val phone = device("phone").apply { enter(email, SignInMode.SIGN_UP) }
        val tablet = device("tablet").apply { enter(email, SignInMode.SIGN_IN) }
        val plan = assertNotNull(phone.plansList.create("Full body"))
        val detail = phone.planDetail(plan.id)
        val monday = assertNotNull(detail.addDay("Monday"))
        val wednesday = assertNotNull(detail.addDay("Wednesday"))
        assertEquals(1 to 2, monday.dayIndex to wednesday.dayIndex, "days are appended in order")
        detail.state.await("two days") { it.days.size == 2 }
        phone.sync()
        tablet.sync()
        val tabletDetail = tablet.planDetail(plan.id)
        assertEquals(listOf("Monday", "Wednesday"), tabletDetail.state.await("the days on the tablet") { it.days.size == 2 }.days.map { it.day.title })

        assertTrue(detail.delete())
        // Plans and days are two observed queries, delivered one after the other.
        detail.state.await("the plan and its days gone") { it.gone && it.days.isEmpty() }
        assertEquals(0UL, phone.graph.host.engine.count(Collections.PLAN_DAYS, dev.tandem.Query()), "the engine cascaded to the days")
        phone.sync()
        tablet.sync()
        tabletDetail.state.await("the plan and its days gone on the tablet") { it.gone && it.days.isEmpty() }
        assertEquals(0UL, tablet.graph.host.engine.count(Collections.PLAN_DAYS, dev.tandem.Query()))
        assertEquals(0UL, tablet.graph.host.engine.pendingCount())
    }

    @Test
    fun `the day editor picks and reorders exercises, and the order persists and syncs`() = runBlocking<Unit> {
        val email = newEmail()
        val phone = device("phone").apply { enter(email, SignInMode.SIGN_UP) }
        val squat = assertNotNull(phone.catalog.create("Squat", "Legs", "below parallel"))
        val bench = assertNotNull(phone.catalog.create("Bench press", "Chest", ""))
        val row = assertNotNull(phone.catalog.create("Row", "Back", ""))
        val plan = assertNotNull(phone.plansList.create("Strength"))
        val day = assertNotNull(phone.planDetail(plan.id).addDay("Day A"))
        val editor = phone.dayEditor(plan.id, day.id)
        assertEquals(3, editor.state.await("the catalog") { it.catalog.size == 3 }.catalog.size)

        assertTrue(editor.add(squat.id))
        assertTrue(editor.add(bench.id))
        assertTrue(editor.add(row.id))
        assertEquals(listOf("Squat", "Bench press", "Row"), editor.state.await("three picked") { it.entries.size == 3 }.entries.map { it.name })
        assertTrue(editor.moveUp(2)) // Row before Bench press
        assertTrue(editor.move(0, 2)) // Squat last
        val order = listOf("Row", "Bench press", "Squat")
        assertEquals(order, editor.state.await("the new order") { s -> s.entries.map { it.name } == order }.entries.map { it.name })
        assertTrue(editor.moveUp(0), "moving the first up changes nothing and is no error")
        assertTrue(editor.removeAt(1))
        assertTrue(editor.rename("Pull + legs"))
        val edited = editor.state.await("bench removed") { it.entries.size == 2 && it.day?.title == "Pull + legs" }
        assertEquals(listOf(row.id, squat.id), edited.day!!.exerciseIds)
        assertEquals(listOf(0, 1), edited.entries.map { it.position })

        // Persisted: a fresh holder reads it back, and another device gets it through the server.
        assertEquals(listOf(row.id, squat.id), phone.dayEditor(plan.id, day.id).state.await("reread") { it.loaded }.day!!.exerciseIds)
        phone.sync()
        val tablet = device("tablet").apply { enter(email, SignInMode.SIGN_IN) }
        tablet.sync()
        val onTablet = tablet.dayEditor(plan.id, day.id).state.await("the day on the tablet") { it.entries.size == 2 }
        assertEquals(listOf("Row", "Squat"), onTablet.entries.map { it.name })
        val planRow = tablet.planDetail(plan.id).state.await("the plan on the tablet") { it.days.size == 1 }.days.single()
        assertEquals(listOf("Row", "Squat"), planRow.exerciseNames)

        // Deleting an exercise from the catalog takes it out of the day too.
        assertTrue(phone.catalog.delete(row.id))
        assertEquals(listOf(squat.id), editor.state.await("row gone from the day") { it.entries.size == 1 }.day!!.exerciseIds)
        assertEquals(listOf("Bench press", "Squat"), phone.catalog.state.await("row gone") { it.exercises.size == 2 }.exercises.map { it.name })
        phone.catalog.setCategory("Legs")
        assertEquals(listOf("Squat"), phone.catalog.state.await("the Legs category") { it.category == "Legs" }.exercises.map { it.name })
    }

    @Test
    fun `days are reordered within their plan`() = runBlocking<Unit> {
        val phone = device("phone").apply { enter(newEmail(), SignInMode.SIGN_UP) }
        val plan = assertNotNull(phone.plansList.create("Split"))
        val detail = phone.planDetail(plan.id)
        val a = assertNotNull(detail.addDay("A"))
        detail.addDay("B")
        detail.addDay("C")
        detail.state.await("three days") { it.days.size == 3 }
        assertTrue(detail.moveDay(a.id, up = false))
        assertEquals(listOf("B", "A", "C"), detail.state.await("A moved down") { it.days.first().day.title == "B" }.days.map { it.day.title })
        assertFalse(detail.moveDay(detail.state.value.days.first().day.id, up = true), "the first day cannot move up")
        assertTrue(detail.deleteDay(a.id))
        assertEquals(listOf("B", "C"), detail.state.await("A deleted") { it.days.size == 2 }.days.map { it.day.title })
    }

    @Test
    fun `the sync indicator shows pending, synced with a time, offline when the server is down, and recovers`() = runBlocking<Unit> {
        val phone = device("phone")
        val indicator = phone.indicator
        assertEquals(SyncKind.SIGNED_OUT, indicator.state.await("signed out") { it.kind == SyncKind.SIGNED_OUT }.kind)
        phone.enter(newEmail(), SignInMode.SIGN_UP)
        indicator.state.await("idle once signed in") { it.kind == SyncKind.SYNCED }

        phone.plansList.create("Legs")
        phone.plansList.create("Arms")
        val pending = indicator.state.await("two pending") { it.pending == 2L }
        assertEquals(SyncKind.PENDING, pending.kind)
        assertFalse(pending.autoSync)

        assertTrue(indicator.syncNow())
        val synced = indicator.state.await("synced, the tap's run over") {
            it.kind == SyncKind.SYNCED && it.lastSyncedAt != null && !it.manualSyncRunning
        }
        assertEquals(0L, synced.pending)
        assertNull(indicator.message.value)

        server.stop()
        phone.plansList.create("Core")
        assertFalse(indicator.syncNow(), "no server: the tap's sync fails")
        // The pending count is refreshed just after the write, so it may trail the phase briefly.
        val offline = indicator.state.await("offline, the change kept") { it.kind == SyncKind.OFFLINE && it.pending == 1L }
        assertEquals(synced.lastSyncedAt, offline.lastSyncedAt, "the last successful sync is still shown")
        assertTrue(indicator.message.value!!.startsWith("Offline"), indicator.message.value)
        assertEquals(BackgroundResult.SKIPPED, phone.graph.platform.runInBackground(5_000), "automatic sync is off")

        server.start()
        phone.graph.platform.onConnectivity(true) // automatic sync is off: this only counts
        assertTrue(indicator.syncNow())
        val back = indicator.state.await("synced again") { it.kind == SyncKind.SYNCED && it.pending == 0L }
        assertTrue(back.lastSyncedAt!! >= synced.lastSyncedAt!!)
        assertNull(indicator.message.value)
    }

    @Test
    fun `with automatic sync on, writes go up by themselves and background work syncs within its deadline`() = runBlocking<Unit> {
        val email = newEmail()
        val phone = device("phone", autoSync = true).apply { enter(email, SignInMode.SIGN_UP) }
        phone.plansList.create("Legs")
        // The engine's debounced run, started by the host because the setting is on.
        val synced = phone.indicator.state.await("pushed without a tap") { it.kind == SyncKind.SYNCED && it.lastSyncedAt != null && it.pending == 0L }
        assertTrue(synced.autoSync)
        assertEquals(BackgroundResult.SUCCESS, phone.graph.platform.runInBackground(10_000))
        phone.graph.platform.onForeground()
        val diagnostics = phone.settings.state.await("runs counted") { it.diagnostics.runs >= 2 && it.diagnostics.triggers.any { t -> t.first == "foreground" } }.diagnostics
        assertTrue(diagnostics.opsPushed >= 1, "$diagnostics")
        assertTrue(diagnostics.triggers.any { it.first == "local_write" }, "$diagnostics")

        // Server down: background work asks to be retried, and the indicator says offline.
        server.stop()
        phone.plansList.create("Core")
        assertEquals(BackgroundResult.RETRY, phone.graph.platform.runInBackground(10_000))
        phone.indicator.state.await("offline") { it.kind == SyncKind.OFFLINE }
        server.start()
        phone.graph.platform.onConnectivity(true) // back online: the engine's loop runs at once
        phone.indicator.state.await("synced after reconnecting") { it.kind == SyncKind.SYNCED && it.pending == 0L }

        // Off: the engine's loop stops and background work skips.
        assertTrue(phone.settings.setSyncEnabled(false))
        assertFalse(phone.settings.state.await("off") { !it.syncEnabled }.syncEnabled)
        assertEquals(BackgroundResult.SKIPPED, phone.graph.platform.runInBackground(10_000))
        phone.plansList.create("Arms")
        assertEquals(SyncKind.PENDING, phone.indicator.state.await("pending while off") { it.pending == 1L }.kind)
        Thread.sleep(1_000) // well past the debounce: nothing may go up by itself
        assertEquals(1L, phone.indicator.state.value.pending)
    }

    @Test
    fun `the conflict center shows both sides per field and settles with keep mine and keep server`() = runBlocking<Unit> {
        val email = newEmail()
        val phone = device("phone").apply { enter(email, SignInMode.SIGN_UP) }
        val tablet = device("tablet").apply { enter(email, SignInMode.SIGN_IN) }
        val legs = assertNotNull(phone.plansList.create("Legs", "heavy"))
        val arms = assertNotNull(phone.plansList.create("Arms", "light"))
        phone.sync()
        tablet.sync()

        // Both devices edit the same fields; the phone's edits reach the server first.
        phone.planDetail(legs.id).update("Legs (phone)", "heavy")
        phone.planDetail(arms.id).update("Arms (phone)", "light")
        tablet.planDetail(legs.id).update("Legs (tablet)", "heavy")
        tablet.planDetail(arms.id).update("Arms (tablet)", "light")
        phone.sync()
        tablet.sync()

        val center = tablet.conflicts
        val state = center.state.await("two conflicts") { it.conflicts.size == 2 }
        assertEquals(2L, tablet.indicator.state.await("the badge") { it.conflicts == 2L }.conflicts)
        val legsConflict = state.conflicts.single { it.id == legs.id }
        assertEquals(ConflictReason.BOTH_CHANGED, legsConflict.reason)
        assertEquals("Legs (tablet)", legsConflict.title)
        assertEquals(FieldComparison("name", "Legs (tablet)", "Legs (phone)", conflicting = true), legsConflict.fields.first())
        assertEquals(FieldComparison("notes", "heavy", "heavy", conflicting = false), legsConflict.fields.single { it.field == "notes" })
        assertFalse(legsConflict.mineDeleted || legsConflict.serverDeleted)

        assertTrue(center.keepMine(legsConflict))
        val armsConflict = center.state.await("one left") { it.conflicts.size == 1 }.conflicts.single()
        assertEquals(arms.id, armsConflict.id)
        assertTrue(center.keepServer(armsConflict))
        assertTrue(center.state.await("none left") { it.conflicts.isEmpty() }.conflicts.isEmpty())
        tablet.indicator.state.await("the badge cleared") { it.conflicts == 0L }

        tablet.sync()
        phone.sync()
        val names = phone.plansList.state.await("both settled on the phone") { s -> s.plans.any { it.name == "Legs (tablet)" } }.plans.map { it.name }
        assertEquals(listOf("Arms (phone)", "Legs (tablet)"), names)
        assertEquals(
            listOf("Arms (phone)", "Legs (tablet)"),
            tablet.plansList.state.await("the tablet's list") { it.loaded }.plans.map { it.name },
        )
    }

    @Test
    fun `a change the server refuses is listed with its reason and can be discarded`() = runBlocking<Unit> {
        val email = newEmail()
        val phone = device("phone").apply { enter(email, SignInMode.SIGN_UP) }
        val tablet = device("tablet").apply { enter(email, SignInMode.SIGN_IN) }
        val plan = assertNotNull(phone.plansList.create("Legs"))
        phone.sync()
        tablet.sync()

        // The phone deletes the plan; the tablet, not yet knowing, adds a day to it.
        assertTrue(phone.planDetail(plan.id).delete())
        phone.sync()
        val day = assertNotNull(tablet.planDetail(plan.id).addDay("Monday"))
        tablet.sync()

        val center = tablet.conflicts
        val rejected = center.state.await("the refused day") { it.rejected.isNotEmpty() }.rejected.single()
        assertEquals(Collections.PLAN_DAYS to day.id, rejected.collection to rejected.id)
        assertEquals(ValidationReason.INVALID_PARENT, rejected.reason)
        assertEquals("What it belonged to was deleted on another device.", rejected.reasonText)
        assertEquals("Monday", rejected.title)
        assertEquals(1L, tablet.indicator.state.await("counted") { it.rejected == 1L }.rejected)

        assertTrue(center.discard(rejected))
        assertTrue(center.state.await("discarded") { it.rejected.isEmpty() }.rejected.isEmpty())
        tablet.indicator.state.await("count cleared") { it.rejected == 0L && it.pending == 0L }
        assertNull(tablet.graph.host.engine.get(Collections.PLAN_DAYS, day.id), "the server never had the day")
        assertTrue(tablet.plansList.state.await("the plan gone") { it.plans.isEmpty() }.plans.isEmpty())
    }

    @Test
    fun `settings sign out keeps the account's local data, or wipes it`() = runBlocking<Unit> {
        val email = newEmail()
        val phone = device("phone")
        phone.enter(email, SignInMode.SIGN_UP)
        val settings = phone.settings
        val account = settings.state.await("the account") { it.email != null }
        assertEquals(email, account.email)
        assertEquals(server.url, account.serverUrl)

        phone.plansList.create("Synced plan")
        phone.sync()
        phone.plansList.create("Unsynced plan")
        phone.plansList.state.await("both plans") { it.plans.size == 2 }

        assertTrue(settings.signOut(wipeLocalData = false))
        phone.session.session.await("signed out") { it is Session.SignedOut }
        assertNull(settings.state.await("no account") { it.email == null }.email)
        assertTrue(phone.plansList.state.await("the guest store is empty") { it.plans.isEmpty() }.plans.isEmpty())

        phone.enter(email, SignInMode.SIGN_IN)
        val kept = phone.plansList.state.await("kept locally") { it.plans.size == 2 }
        assertEquals(listOf("Synced plan", "Unsynced plan"), kept.plans.map { it.name })
        assertEquals(1UL, phone.graph.host.engine.pendingCount(), "the unsynced change waited for this sign-in")

        phone.plansList.create("Never synced")
        assertTrue(settings.signOut(wipeLocalData = true))
        phone.session.session.await("signed out") { it is Session.SignedOut }
        phone.enter(email, SignInMode.SIGN_IN)
        assertTrue(phone.plansList.state.await("wiped") { it.loaded && it.plans.isEmpty() }.plans.isEmpty())
        assertEquals(0UL, phone.graph.host.engine.pendingCount(), "pending changes went with the wipe")
        phone.sync()
        assertEquals(listOf("Synced plan"), phone.plansList.state.await("what the server had") { it.plans.isNotEmpty() }.plans.map { it.name })
    }

    @Test
    fun `changing the server URL on the sign-in form reopens the engine and live lists follow`() = runBlocking<Unit> {
        val phone = device("phone")
        val list = phone.plansList
        list.state.await("loaded") { it.loaded }
        val before = phone.graph.host.engine

        // A URL the engine refuses leaves everything as it was.
        phone.session.setServerUrl("not a url")
        phone.session.setEmail(newEmail())
        phone.session.setPassword(PASSWORD)
        phone.session.setMode(SignInMode.SIGN_UP)
        assertFalse(phone.session.submit())
        assertNotNull(phone.session.form.value.error)
        assertEquals(server.url, phone.graph.settings.settings.value.serverUrl)

        // The same server spelled with a trailing slash and a port-less twin: a real switch.
        val other = server.url.replace("127.0.0.1", "localhost")
        phone.session.setServerUrl("$other/")
        assertTrue(phone.session.submit(), "${phone.session.form.value.error}")
        assertEquals(other, phone.graph.settings.settings.value.serverUrl)
        assertEquals(other, phone.session.form.value.serverUrl)
        assertTrue(phone.graph.host.engine !== before, "a new engine")
        assertFailsWith<TandemException.Closed> { before.pendingCount() }

        // The list built before the switch now shows the new engine's data.
        phone.plansList.create("After the switch")
        assertEquals(listOf("After the switch"), list.state.await("the new engine's plan") { it.plans.size == 1 }.plans.map { it.name })
        phone.sync()
    }

    @Test
    fun `messages name the failure by its type`() {
        assertEquals("Wrong email or password.", Messages.of(TandemException.Auth(AuthFailure.INVALID_CREDENTIALS, "x", null)))
        assertEquals("Too many attempts. Try again in 30 s.", Messages.of(TandemException.Auth(AuthFailure.RATE_LIMITED, "x", 30UL)))
        assertTrue(Messages.of(TandemException.Sync(SyncFailure.OFFLINE, "x", null)).startsWith("Offline"))
        assertEquals("name: too long", Messages.of(TandemException.Validation("plans", "name", ValidationReason.INVALID_PAYLOAD, "invalid_payload", "too long")))
        assertEquals("Unlock the phone to open your plans.", Messages.of(TandemException.Key(dev.tandem.KeyFailure.UNAVAILABLE, "x")))
    }
}
