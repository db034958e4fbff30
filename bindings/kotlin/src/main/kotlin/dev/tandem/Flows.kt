// Hand-written coroutine layer over the generated bindings (tandem.kt). The same file is compiled
// into the JVM jar (bindings/kotlin/pom.xml) and the Android AAR (bindings/android), so it uses
// only kotlinx.coroutines and the generated API, nothing JVM- or Android-specific.

package dev.tandem

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.conflate

/**
 * Live results of a query, as a cold [Flow]: each collector registers its own observation,
 * receives the current results right away and then the new results after every commit that
 * touches [collection]. When the collector stops (cancelled, `first()`, `take(n)` …) the
 * underlying [Subscription] is cancelled and released.
 *
 * Results are conflated: a slow collector skips intermediate result sets and always sees the
 * newest one, which is what a screen showing the query needs.
 *
 * Errors of the registration itself (an unknown collection, a bad filter) are thrown to the
 * collector as [TandemException].
 */
public fun Tandem.observeAsFlow(collection: String, query: Query = Query()): Flow<List<Record>> =
    subscriptionFlow<List<Record>> { emit ->
        observe(collection, query, object : QueryObserver {
            override fun onResults(records: List<Record>) = emit(records)
        })
    }.conflate()

/**
 * One record as a cold [Flow], for a detail screen: the record right away (`null` while it does
 * not exist), then again each time it changes, appears or disappears (a local write, a sync, an
 * account switch). Commits that leave it as it was emit nothing. Conflated, like
 * [observeAsFlow]; stopping the collection cancels and releases the underlying [Subscription].
 */
public fun Tandem.observeRecordAsFlow(collection: String, id: String): Flow<Record?> =
    subscriptionFlow<Record?> { emit ->
        observeRecord(collection, id, object : RecordObserver {
            override fun onRecord(record: Record?) = emit(record)
        })
    }.conflate()

/**
 * The names of the collections each commit changed, one emission per commit, as a cold [Flow].
 * Closing the flow cancels and releases the underlying [Subscription].
 *
 * Unlike [observeAsFlow] nothing is conflated: every commit is an event of its own. The buffer is
 * unbounded so that Tandem's notification thread never blocks on a slow collector; each element
 * is a short list of names.
 */
public fun Tandem.changesAsFlow(): Flow<List<String>> =
    subscriptionFlow<List<String>> { emit ->
        addChangeListener(object : ChangeListener {
            override fun onChange(collections: List<String>) = emit(collections)
        })
    }.buffer(Channel.UNLIMITED)

/**
 * The sync status as a cold [Flow]: the current status first, then the status after every change
 * (a run starting or ending, pull progress, pending/conflict/rejected counts changing, sign-in
 * and sign-out). For a sync indicator.
 *
 * Conflated: a slow collector skips intermediate statuses and always sees the newest one (pull
 * progress can change many times a second). Stopping the collection cancels and releases the
 * underlying [Subscription]. Without a configured server the collector gets
 * [TandemException.InvalidArgument].
 */
public fun Tandem.syncStatusAsFlow(): Flow<SyncStatus> =
    subscriptionFlow<SyncStatus> { emit ->
        observeSyncStatus(object : SyncStatusListener {
            override fun onSyncStatus(status: SyncStatus) = emit(status)
        })
    }.conflate()

/**
 * The auth state as a cold [Flow]: the current state first, then every change (sign-in, sign-out,
 * an expired session). Stopping the collection cancels and releases the underlying
 * [Subscription]. Without a configured server the collector gets
 * [TandemException.InvalidArgument].
 *
 * Not conflated: every state the engine delivers is kept in an unbounded buffer.
 */
public fun Tandem.authStateAsFlow(): Flow<AuthState> =
    subscriptionFlow<AuthState> { emit ->
        observeAuthState(object : AuthStateListener {
            override fun onAuthState(state: AuthState) = emit(state)
        })
    }.buffer(Channel.UNLIMITED)

/**
 * The user's spaces as a cold [Flow]: the current list first (as the last sync or space call left
 * it, offline too), then the list after every change: a space created, joined, renamed, left,
 * deleted, or the user's role or removal coming in with a sync. For a spaces screen.
 *
 * Conflated, like [observeAsFlow]: a slow collector always sees the newest list. Stopping the
 * collection cancels and releases the underlying [Subscription].
 */
public fun Tandem.spacesAsFlow(): Flow<List<Space>> =
    subscriptionFlow<List<Space>> { emit ->
        observeSpaces(object : SpacesObserver {
            override fun onSpaces(spaces: List<Space>) = emit(spaces)
        })
    }.conflate()

/**
 * The invitations waiting for the user's answer as a cold [Flow]: the current list first, then
 * the list after every change (one arriving with a sync, one accepted or declined). For an
 * invitations banner. Conflated, like [spacesAsFlow].
 */
public fun Tandem.invitationsAsFlow(): Flow<List<Invitation>> =
    subscriptionFlow<List<Invitation>> { emit ->
        observeInvitations(object : InvitationsObserver {
            override fun onInvitations(invitations: List<Invitation>) = emit(invitations)
        })
    }.conflate()

/**
 * The state of one attachment as a cold [Flow], for a progress bar or a placeholder: the current
 * state first ([AttachmentState.Local], [AttachmentState.Uploaded], [AttachmentState.Remote] …),
 * then every change, upload and download progress included (at most ten a second). Follows
 * account switches. Conflated: a slow collector sees the newest state. Stopping the collection
 * cancels and releases the underlying [Subscription]; a hash that is not 64 lowercase hex digits
 * fails the collector with [TandemException.InvalidArgument].
 */
public fun Tandem.attachmentStateFlow(hash: String): Flow<AttachmentState> =
    subscriptionFlow<AttachmentState> { emit ->
        observeAttachment(hash, object : AttachmentObserver {
            override fun onState(state: AttachmentState) = emit(state)
        })
    }.conflate()

/**
 * The one way every Tandem observation becomes a Flow: [register] installs a callback (the `emit`
 * it is given) with the engine and returns the [Subscription] that ends it. Every observation
 * delivers its current value first (Tandem's notification thread does that), so the flow's first
 * element is the current value without any snapshot logic here.
 *
 * The callback runs on Tandem's notification thread and must not block it, hence `trySend`: the
 * operator applied after this (conflate or an unlimited buffer) fuses into the channel and decides
 * what happens when the collector is behind. A value sent after the flow closed is dropped.
 */
internal fun <T> subscriptionFlow(register: (emit: (T) -> Unit) -> Subscription): Flow<T> =
    callbackFlow {
        val subscription = register { value -> trySend(value) }
        awaitClose {
            // cancel() stops deliveries at once; close() frees the Rust object now rather than
            // whenever the garbage collector gets to it, which releases the Kotlin callback too.
            subscription.cancel()
            subscription.close()
        }
    }
