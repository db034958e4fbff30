package dev.tandem

import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.async
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * Auth and sync through the generated suspend functions, against a real `tandem-server` started
 * for this class. Everything runs in runBlocking on real dispatchers: the waits are for the server
 * and Tandem's threads, which a virtual clock (runTest) would skip past.
 */
@Timeout(120)
class SyncTest : ServerTest(server) {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer()
    }

    @Test
    fun `two devices converge through the server and a conflict is resolved`() = runBlocking {
        val email = newEmail()
        val a = device("a")
        val b = device("b")
        assertEquals(email, a.signUp(email, PASSWORD).email)
        assertEquals(email, b.signIn(email, PASSWORD).email)

        a.put("plans", "p", """{"name": "Plan"}""")
        val report = a.syncNow()
        assertEquals(1UL to 1UL, report.pushed to report.applied)

        // B's observer sees the pulled record; registering before or after the sync both work,
        // since the flow starts with the current results.
        val seen = async(Dispatchers.Default) { b.observeAsFlow("plans").first { records -> records.any { it.id == "p" } } }
        b.syncNow()
        val plan = withTimeout(10_000) { seen.await() }.single()
        assertEquals("""{"name":"Plan"}""", plan.document)
        assertEquals(RecordState.SYNCED, plan.state)
        assertTrue(plan.version > 0UL)

        // The same field edited on both devices: A's edit reaches the server first.
        a.patch("plans", "p", """{"name": "A"}""")
        b.patch("plans", "p", """{"name": "B"}""")
        a.syncNow()
        assertEquals(1UL, b.syncNow().conflicts)
        val conflict = b.conflicts().single()
        assertEquals("plans" to "p", conflict.collection to conflict.id)
        assertEquals(ConflictReason.BOTH_CHANGED, conflict.reason)
        assertEquals(listOf("name"), conflict.fields)
        assertEquals("""{"name":"B"}""", conflict.localDocument)
        assertEquals("""{"name":"A"}""", conflict.serverDocument)
        assertEquals("""{"name":"Plan"}""", conflict.baseDocument)

        assertEquals("""{"name":"B"}""", b.resolve("plans", "p", Resolution.KeepMine)?.document)
        b.syncNow()
        a.syncNow()
        assertEquals("""{"name":"B"}""", a.get("plans", "p")?.document)
        assertEquals(emptyList(), b.conflicts())
        assertEquals(0UL, a.pendingCount())
        assertEquals(0UL, b.pendingCount())
    }

    @Test
    fun `a write batch with a conflicting member reaches the other device all or nothing`() = runBlocking {
        val a = device("a")
        val b = device("b")
        oneAccount(a, b)
        a.put("plans", "p", """{"name": "v1"}""")
        a.syncNow()
        b.syncNow()
        b.patch("plans", "p", """{"name": "B"}""")
        b.syncNow()

        // One batch is one atomic group on the wire; its rename of p meets b's rename.
        a.write(
            listOf(
                WriteOp.Patch("plans", "p", """{"name": "A"}"""),
                WriteOp.Put("plan_days", "d", """{"planId": "p", "dayIndex": 0}"""),
            ),
        )
        val report = a.syncNow()
        assertEquals(listOf("p"), report.parked.map { it.id })
        val waiting = report.outcomes.single { it.kind == OutcomeKind.WAITS_FOR_GROUP }
        assertEquals("d", waiting.id)
        assertNotNull(waiting.reason, "names the member that failed")
        assertEquals(emptyList(), a.rejected())
        b.syncNow()
        assertNull(b.get("plan_days", "d"), "nothing of the batch reached b")

        a.resolve("plans", "p", Resolution.KeepMine)
        a.syncNow()
        b.syncNow()
        assertEquals("""{"name":"A"}""", b.get("plans", "p")?.document)
        assertNotNull(b.get("plan_days", "d"), "the whole batch, once resolved")
        assertEquals(500U, maxWriteBatch())
    }

    @Test
    fun `last write wins settles the same field by edit time and records show when they were edited`() = runBlocking {
        val a = device("lww-a", ConflictPolicy.LAST_WRITE_WINS)
        val b = device("lww-b", ConflictPolicy.LAST_WRITE_WINS)
        oneAccount(a, b)
        val before = java.time.Instant.now().minusSeconds(1)
        a.put("plans", "p", """{"name": "Plan", "notes": "n"}""")
        a.syncNow()
        b.syncNow()
        val pulled = assertNotNull(b.get("plans", "p"))
        val edited = assertNotNull(pulled.editedAt, "a pulled record shows when it was edited")
        assertTrue(!edited.isBefore(before) && !edited.isAfter(java.time.Instant.now().plusSeconds(61)))

        // A edits both fields, then B edits the name later: B's name and A's notes win.
        a.patch("plans", "p", """{"name": "A", "notes": "A's notes"}""")
        Thread.sleep(20)
        b.patch("plans", "p", """{"name": "B"}""")
        a.syncNow()
        val report = b.syncNow()
        assertEquals(1UL, report.conflicts)
        assertTrue(report.parked.isEmpty(), "nothing goes to the app")
        a.syncNow()
        val expected = """{"name":"B","notes":"A's notes"}"""
        assertEquals(expected, assertNotNull(a.get("plans", "p")).document)
        assertEquals(expected, assertNotNull(b.get("plans", "p")).document)
        assertTrue(b.conflicts().isEmpty())
        assertEquals(a.get("plans", "p")?.editedAt, b.get("plans", "p")?.editedAt)
    }

    @Test
    fun `keeping the server's side of a conflict shows the server's edit time`() = runBlocking {
        val a = device("keep-server-a")
        val b = device("keep-server-b")
        oneAccount(a, b)
        a.put("plans", "p", """{"name": "Plan"}""")
        a.syncNow()
        b.syncNow()
        // Both rename offline; A's reaches the server first, B's is left to the app.
        a.patch("plans", "p", """{"name": "A"}""")
        Thread.sleep(20)
        b.patch("plans", "p", """{"name": "B"}""")
        a.syncNow()
        assertEquals(listOf("p"), b.syncNow().parked.map { it.id })
        b.resolve("plans", "p", Resolution.KeepServer)
        val record = assertNotNull(b.get("plans", "p"))
        assertEquals("""{"name":"A"}""", record.document)
        assertNotNull(record.editedAt, "the server's edit time, at once")
        assertEquals(a.get("plans", "p")?.editedAt, record.editedAt)
    }

    @Test
    fun `auth and sync failures are typed exceptions with their kind`() = runBlocking {
        val d = device("d")
        val notSignedIn = assertFailsWith<TandemException.Sync> { d.syncNow() }
        assertEquals(SyncFailure.NOT_SIGNED_IN, notSignedIn.kind)
        assertNull(notSignedIn.retryAfterSecs)

        val unknown = assertFailsWith<TandemException.Auth> { d.signIn("nobody-${UUID.randomUUID()}@example.com", PASSWORD) }
        assertEquals(AuthFailure.INVALID_CREDENTIALS, unknown.kind)
        assertTrue(PASSWORD !in unknown.detail, "messages never carry the password")

        val email = newEmail()
        d.signUp(email, PASSWORD)
        d.signOut(wipeLocalData = true)
        assertEquals(AuthFailure.INVALID_CREDENTIALS, assertFailsWith<TandemException.Auth> { d.signIn(email, "wrong $PASSWORD") }.kind)
        // Apps branch on the sealed class, then on the kind.
        val error = assertFailsWith<TandemException> { d.signUp(email, PASSWORD) }
        val described = when (error) {
            is TandemException.Auth -> when (error.kind) {
                AuthFailure.USER_EXISTS -> "taken"
                else -> "auth: ${error.kind}"
            }
            else -> "other: $error"
        }
        assertEquals("taken", described)
    }

    @Test
    fun `the status says when the last run ended and why it failed, typed`() = runBlocking {
        val d = device("d")
        assertNull(d.syncStatus().lastRunAt)
        assertFailsWith<TandemException.Sync> { d.syncNow() }
        assertEquals(SyncFailure.NOT_SIGNED_IN, d.syncStatus().lastFailure)
        d.signUp(newEmail(), PASSWORD)
        d.syncNow()
        val status = d.syncStatus()
        assertNull(status.lastFailure)
        assertNull(status.lastError)
        assertEquals(status.lastSyncedAt, status.lastRunAt)
    }

    @Test
    fun `syncStatusAsFlow starts with the current status and sees pending go to 0 after a sync`() = runBlocking {
        val a = device("a")
        a.signUp(newEmail(), PASSWORD)
        val statuses = collectInto(a.syncStatusAsFlow())
        try {
            val first = statuses.await("the current status") { true }
            assertEquals(SyncPhase.IDLE, first.phase)
            assertEquals(0UL, first.pending)

            a.write(listOf(WriteOp.Put("plans", "p1", """{"name": "1"}"""), WriteOp.Put("plans", "p2", """{"name": "2"}""")))
            statuses.await("2 pending changes") { it.pending == 2UL }
            assertEquals(2UL, a.syncNow().pushed)
            val synced = statuses.await("nothing pending after the sync") { it.pending == 0UL && it.lastSyncedAt != null }
            assertEquals(SyncPhase.IDLE, synced.phase)
            assertNull(synced.lastError)
        } finally {
            statuses.job.cancel()
        }
    }

    @Test
    fun `signOut is this device only and signOutEverywhere every device`() = runBlocking {
        val email = newEmail()
        val phone = device("phone")
        val tablet = device("tablet")
        val laptop = device("laptop")
        phone.signUp(email, PASSWORD)
        tablet.signIn(email, PASSWORD)
        laptop.signIn(email, PASSWORD)
        // The tablet signs out (scope=local): the others go on syncing.
        tablet.signOut(wipeLocalData = false)
        phone.put("plans", "p", """{"name": "after the tablet left"}""")
        phone.syncNow()
        laptop.syncNow()
        assertEquals("""{"name":"after the tablet left"}""", laptop.get("plans", "p")?.document)
        // The laptop signs out everywhere (scope=global): the phone's session ends.
        laptop.signOutEverywhere(wipeLocalData = false)
        assertNull(laptop.currentUser())
        phone.put("plans", "q", """{"name": "pending"}""")
        val ended = assertFailsWith<TandemException.Sync> { phone.syncNow() }
        assertEquals(SyncFailure.SESSION_EXPIRED, ended.kind)
        assertEquals(1UL, phone.pendingCount())
    }

    @Test
    fun `authStateAsFlow sees SignedOut, SignedIn, then SignedOut`() = runBlocking {
        val a = device("a")
        val states = collectInto(a.authStateAsFlow())
        try {
            assertEquals(AuthState.SignedOut, states.await("the current state") { true })
            val email = newEmail()
            val user = a.signUp(email, PASSWORD)
            val signedIn = states.await("signed in") { true }
            assertEquals(AuthState.SignedIn(user), signedIn)
            assertEquals(email, (signedIn as AuthState.SignedIn).user.email)
            a.signOut(wipeLocalData = true)
            assertEquals(AuthState.SignedOut, states.await("signed out") { true })
        } finally {
            states.job.cancel()
        }
    }

    @Test
    fun `cancelling the collection cancels the status and auth subscriptions`() = runBlocking {
        val a = device("a")
        a.signUp(newEmail(), PASSWORD)
        val before = liveCallbacks()
        val statuses = collectInto(a.syncStatusAsFlow())
        val states = collectInto(a.authStateAsFlow())
        statuses.await("the current status") { true }
        states.await("the current state") { true }
        assertEquals(before + 2, liveCallbacks(), "one listener registered per collector")

        statuses.job.cancel()
        states.job.cancel()
        statuses.job.join()
        states.job.join()
        // Cancelling drops Rust's reference to each listener, which frees Kotlin's handle.
        eventually(what = "both listeners to be released") { liveCallbacks() == before }

        // Changes of both kinds now reach nobody. (What arrived before the cancellation, such
        // as the count refresh that follows a sign-up, is drained first.)
        while (statuses.channel.tryReceive().isSuccess) continue
        while (states.channel.tryReceive().isSuccess) continue
        a.put("plans", "p", """{"name": "P"}""")
        a.signOut(wipeLocalData = false)
        assertNull(withTimeoutOrNull(300) { statuses.channel.receive() }, "no status after cancellation")
        assertNull(withTimeoutOrNull(300) { states.channel.receive() }, "no auth state after cancellation")
    }

    @Test
    fun `raw query, status and auth observers each get the current value first`() = runBlocking {
        // A fresh device: signed out, so the first status says so (not a default "idle").
        val fresh = device("fresh")
        val freshStatus = Channel<SyncStatus>(Channel.UNLIMITED)
        val freshAuth = Channel<AuthState>(Channel.UNLIMITED)
        fresh.observeSyncStatus(object : SyncStatusListener {
            override fun onSyncStatus(status: SyncStatus) { freshStatus.trySend(status) }
        }).use {
            fresh.observeAuthState(object : AuthStateListener {
                override fun onAuthState(state: AuthState) { freshAuth.trySend(state) }
            }).use {
                assertEquals(SyncPhase.SIGNED_OUT, withTimeout(10_000) { freshStatus.receive() }.phase)
                assertEquals(AuthState.SignedOut, withTimeout(10_000) { freshAuth.receive() })
            }
        }

        // A signed-in device with a synced record: nothing changes while the observers register.
        val a = device("a")
        val user = a.signUp(newEmail(), PASSWORD)
        a.put("plans", "p", """{"name": "P"}""")
        a.syncNow()
        val current = a.syncStatus()
        val results = Channel<List<Record>>(Channel.UNLIMITED)
        val statuses = Channel<SyncStatus>(Channel.UNLIMITED)
        val states = Channel<AuthState>(Channel.UNLIMITED)
        val subscriptions = listOf(
            a.observe("plans", Query(), object : QueryObserver {
                override fun onResults(records: List<Record>) { results.trySend(records) }
            }),
            a.observeSyncStatus(object : SyncStatusListener {
                override fun onSyncStatus(status: SyncStatus) { statuses.trySend(status) }
            }),
            a.observeAuthState(object : AuthStateListener {
                override fun onAuthState(state: AuthState) { states.trySend(state) }
            }),
        )
        try {
            assertEquals(listOf("p"), withTimeout(10_000) { results.receive() }.map { it.id })
            assertEquals(current, withTimeout(10_000) { statuses.receive() })
            assertEquals(AuthState.SignedIn(user), withTimeout(10_000) { states.receive() })
        } finally {
            subscriptions.forEach(Subscription::close)
        }
    }

    @Test
    fun `without a server the status flow fails with InvalidArgument`() = runBlocking {
        openTandem(dir.resolve("local")).use { local ->
            val error = runCatching { local.syncStatusAsFlow().first() }.exceptionOrNull()
            assertTrue(error is TandemException.InvalidArgument, "got $error")
            val authError = runCatching { local.authStateAsFlow().first() }.exceptionOrNull()
            assertTrue(authError is TandemException.InvalidArgument, "got $authError")
        }
    }

    /** A flow collected on a real-time dispatcher into a channel the test reads from. */
    private class Collected<T>(val channel: Channel<T>, val job: Job) {
        /** The next element matching [predicate] (earlier ones are skipped), within 10 s. */
        suspend fun await(what: String, predicate: (T) -> Boolean): T =
            withTimeoutOrNull(10_000) {
                var value = channel.receive()
                while (!predicate(value)) value = channel.receive()
                value
            } ?: throw AssertionError("timed out waiting for $what")
    }

    private fun <T> CoroutineScope.collectInto(flow: Flow<T>): Collected<T> {
        val channel = Channel<T>(Channel.UNLIMITED)
        val job = launch(Dispatchers.Default) { flow.collect { channel.send(it) } }
        return Collected(channel, job)
    }
}
