package dev.tandem.sample.state

import dev.tandem.Invitation
import dev.tandem.InvitationsObserver
import dev.tandem.Member
import dev.tandem.Query
import dev.tandem.Space
import dev.tandem.SpaceRole
import dev.tandem.SpacesObserver
import dev.tandem.Subscription
import dev.tandem.Tandem
import dev.tandem.TandemException
import dev.tandem.WriteOp
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.launchIn
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.withContext

/**
 * Spaces: the shared side of the app. A shared plan lives in a space of its own (named after the
 * plan); the people it is shared with are the space's members, each an owner, an editor or a
 * viewer. The space list and pending invitations are live (the engine updates them after each
 * sync, and realtime pokes make that immediate); managing members is online: those calls fail
 * with `TandemException.Sync` (offline) when the server cannot be reached, and change nothing.
 */
class SpacesRepository(private val host: TandemHost, private val io: CoroutineDispatcher = Dispatchers.IO) {
    /** The spaces the user belongs to, with their role in each. */
    fun spaces(): Flow<List<Space>> = host.live { engine ->
        observed { emit -> engine.observeSpaces(object : SpacesObserver { override fun onSpaces(spaces: List<Space>) = emit(spaces) }) }
    }

    /** Invitations waiting for the user's answer. */
    fun invitations(): Flow<List<Invitation>> = host.live { engine ->
        observed { emit ->
            engine.observeInvitations(object : InvitationsObserver { override fun onInvitations(invitations: List<Invitation>) = emit(invitations) })
        }
    }

    /** One space, or null when the user is not (or no longer) a member. */
    fun space(id: String): Flow<Space?> = spaces().map { all -> all.firstOrNull { it.id == id } }.distinctUntilChanged()

    /**
     * Shares a plan with [email] as [role]. A personal plan first moves into a new space named
     * after it: one `write` puts the plan and its days into `shared_plans` / `shared_plan_days`
     * in that space (same ids) and deletes the personal copies, so the move is atomic on this
     * device and on the server. A plan already shared only gets the invitation. Returns where
     * the plan is now.
     */
    suspend fun share(plan: PlanRef, email: String, role: SpaceRole): PlanRef {
        val shared = if (plan.shared) plan else moveIntoNewSpace(plan)
        invite(checkNotNull(shared.spaceId), email, role)
        return shared
    }

    private suspend fun moveIntoNewSpace(plan: PlanRef): PlanRef {
        val engine = host.engine
        val record = withContext(io) { engine.get(plan.collection, plan.id) }
            ?: throw TandemException.NotFound(plan.collection, plan.id)
        val name = Documents.plan(record).name.ifBlank { "Shared plan" }
        val space = engine.createSpace(name)
        withContext(io) {
            val days = engine.query(plan.daysCollection, Query(filters = listOf(Documents.eq("planId", plan.id))))
            val moves = buildList {
                add(WriteOp.Put(Collections.SHARED_PLANS, plan.id, record.document, space.id))
                days.forEach { add(WriteOp.Put(Collections.SHARED_PLAN_DAYS, it.id, it.document, space.id)) }
                // The personal days go with their plan (the schema's parent link).
                add(WriteOp.Delete(plan.collection, plan.id))
            }
            engine.write(moves)
        }
        return PlanRef.shared(plan.id, space.id)
    }

    suspend fun invite(spaceId: String, email: String, role: SpaceRole) =
        host.engine.invite(spaceId, email.trim(), role)

    suspend fun accept(invitationId: String): Space = host.engine.accept(invitationId)

    suspend fun decline(invitationId: String) = host.engine.decline(invitationId)

    suspend fun members(spaceId: String): List<Member> = host.engine.members(spaceId)

    suspend fun setRole(spaceId: String, userId: String, role: SpaceRole) = host.engine.setRole(spaceId, userId, role)

    suspend fun removeMember(spaceId: String, userId: String) = host.engine.removeMember(spaceId, userId)

    /** Leaves the space: its plans leave this device (unsent edits stay visible as rejected). */
    suspend fun leave(spaceId: String) = host.engine.leave(spaceId)
}

/**
 * An engine observation as a conflated cold flow (the current value first, then one per change),
 * cancelled and released when the collector stops: the same shape as the bindings' `observeAsFlow`.
 */
private fun <T> observed(register: (emit: (T) -> Unit) -> Subscription): Flow<T> =
    callbackFlow {
        val subscription = register { value -> trySend(value) }
        awaitClose {
            subscription.cancel()
            subscription.close()
        }
    }.conflate()

/** A shared plan on the plans list, with where the user stands in its space. */
data class SharedPlanRow(val plan: Plan, val space: Space?) {
    val role: SpaceRole? get() = space?.role

    /** The other members: "Shared with N". */
    val sharedWith: Int get() = ((space?.memberCount?.toInt() ?: 1) - 1).coerceAtLeast(0)

    /** A viewer's plan: no editing controls. */
    val viewOnly: Boolean get() = role == SpaceRole.VIEWER
}

/** Words for a role, as the share sheet and the banner say it. */
fun SpaceRole.label(): String = when (this) {
    SpaceRole.OWNER -> "owner"
    SpaceRole.EDITOR -> "editor"
    SpaceRole.VIEWER -> "viewer"
}

/** The invitations banner's line for one invitation. */
fun Invitation.bannerText(): String = invitedBy + " invited you to ‘" + spaceName + "’ as " + role.label()

/** The share sheet of one plan. */
data class ShareSheetState(
    /** Where the plan is now (a personal plan becomes shared on its first invitation). */
    val plan: PlanRef,
    /** The user's role in the plan's space; null while the plan is personal. */
    val role: SpaceRole? = null,
    /** The space's members, as last fetched from the server (online). */
    val members: List<Member> = emptyList(),
    val busy: Boolean = false,
) {
    /** Owners invite, change roles and remove; a personal plan's owner is its user. */
    val canManage: Boolean get() = role == null || role == SpaceRole.OWNER
}

/**
 * Sharing a plan: invite by email as editor or viewer, list the members, and (owners) change a
 * role or remove a member. The member list is fetched from the server when the sheet opens and
 * again whenever the space's member count or the user's role changes.
 */
class ShareSheetStateHolder(
    plan: PlanRef,
    private val spaces: SpacesRepository,
    scope: CoroutineScope,
) : StateHolder(scope) {
    private val _state = MutableStateFlow(ShareSheetState(plan))
    val state: StateFlow<ShareSheetState> = _state.asStateFlow()

    init {
        spaces.spaces().onEach { all ->
            val spaceId = _state.value.plan.spaceId ?: return@onEach
            val space = all.firstOrNull { it.id == spaceId }
            val before = _state.value
            _state.value = before.copy(role = space?.role)
            if (space != null && (space.role != before.role || space.memberCount.toInt() != before.members.size)) {
                refresh()
            }
        }.launchIn(scope)
    }

    /** Fetches the members again. */
    suspend fun refresh(): Boolean {
        val spaceId = _state.value.plan.spaceId ?: return true
        val members = attempt { spaces.members(spaceId) } ?: return false
        _state.value = _state.value.copy(members = members.sortedWith(compareBy<Member>({ it.role.ordinal }, { it.email })))
        return true
    }

    /** Invites [email] as [role] (editor or viewer); a personal plan moves into a space first. */
    suspend fun invite(email: String, role: SpaceRole): Boolean {
        _state.value = _state.value.copy(busy = true)
        val moved = attempt { spaces.share(_state.value.plan, email, role) }
        _state.value = _state.value.copy(busy = false, plan = moved ?: _state.value.plan)
        if (moved != null) refresh()
        return moved != null
    }

    suspend fun setRole(member: Member, role: SpaceRole): Boolean {
        val spaceId = _state.value.plan.spaceId ?: return false
        return (attempt { spaces.setRole(spaceId, member.userId, role) } != null).also { if (it) refresh() }
    }

    suspend fun remove(member: Member): Boolean {
        val spaceId = _state.value.plan.spaceId ?: return false
        return (attempt { spaces.removeMember(spaceId, member.userId) } != null).also { if (it) refresh() }
    }
}

/** The invitations banner on the plans list: accept or decline each. */
class InvitationsStateHolder(private val spaces: SpacesRepository, scope: CoroutineScope) : StateHolder(scope) {
    val invitations: StateFlow<List<Invitation>> =
        spaces.invitations().stateIn(scope, SharingStarted.Eagerly, emptyList())

    /** Accepts; the space's plans arrive with the sync the engine starts. */
    suspend fun accept(invitation: Invitation) = attempt { spaces.accept(invitation.id) } != null

    suspend fun decline(invitation: Invitation) = attempt { spaces.decline(invitation.id) } != null
}

/** Shared plans joined with their spaces, for the list's "Shared" section. */
internal fun sharedRows(plans: Flow<List<Plan>>, spaces: Flow<List<Space>>): Flow<List<SharedPlanRow>> =
    combine(plans, spaces) { shared, all ->
        val byId = all.associateBy { it.id }
        shared.map { SharedPlanRow(it, it.spaceId?.let(byId::get)) }
    }
