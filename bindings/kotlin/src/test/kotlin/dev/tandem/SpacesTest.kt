package dev.tandem

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * Spaces through the generated bindings and the Flow adapters, against a real `tandem-server`
 * (docs/design/spaces.md §12, the Rust story shorter): an owner, an editor and a viewer; edits
 * flow both ways; the viewer's write is refused here; the editor, removed while offline with an
 * unsent edit, keeps it as a `FORBIDDEN` dead letter; the public catalog is read-only.
 */
@Timeout(120)
class SpacesTest : ServerTest(server) {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer(adminToken = "kotlin-binding-tests-admin-0123456789abcdef")
    }

    private suspend fun signedUp(name: String): Pair<Tandem, String> {
        val t = device(name)
        val email = newEmail()
        t.signUp(email, PASSWORD)
        return t to email
    }

    @Test
    fun `an owner shares a space with an editor and a viewer`() = runBlocking {
        val (owner, ownerEmail) = signedUp("owner")
        val (editor, editorEmail) = signedUp("editor")
        val (viewer, viewerEmail) = signedUp("viewer")

        val space = owner.createSpace("Family")
        assertEquals(SpaceRole.OWNER, space.role)
        assertEquals(listOf(space.id), withTimeout(10_000) { owner.spacesAsFlow().first { it.isNotEmpty() } }.map { it.id })
        assertEquals(SpaceRole.EDITOR, owner.invite(space.id, editorEmail, SpaceRole.EDITOR).role)
        owner.invite(space.id, viewerEmail, SpaceRole.VIEWER)

        // The invitation arrives with a sync, through the flow; accepting joins.
        val invited = async(Dispatchers.Default) { editor.invitationsAsFlow().first { it.isNotEmpty() } }
        editor.syncNow()
        val invitation = withTimeout(10_000) { invited.await() }.single()
        assertEquals("Family" to SpaceRole.EDITOR, invitation.spaceName to invitation.role)
        assertEquals(SpaceRole.EDITOR, editor.accept(invitation.id).role)
        assertTrue(editor.invitations().isEmpty())
        viewer.syncNow()
        viewer.accept(viewer.invitations().single().id)
        assertEquals(3, owner.members(space.id).size)

        // Edits flow both ways; a child goes to its parent's space.
        val plan = owner.putInSpace(space.id, "team_projects", "p1", """{"name": "Garden"}""")
        assertEquals(space.id, plan.spaceId)
        owner.syncNow()
        editor.syncNow()
        assertEquals(space.id, editor.get("team_projects", "p1")!!.spaceId)
        editor.put("team_tasks", "t1", """{"projectId": "p1", "title": "Dig"}""")
        editor.syncNow()
        owner.syncNow()
        assertEquals(space.id, owner.get("team_tasks", "t1")!!.spaceId)
        assertEquals(listOf("t1"), ids(owner.query("team_tasks", Query(spaceId = space.id))))

        // The viewer reads but cannot write; only an owner manages.
        viewer.syncNow()
        assertEquals("p1", viewer.get("team_projects", "p1")!!.id)
        val refused = assertFailsWith<TandemException.Validation> {
            viewer.putInSpace(space.id, "team_projects", null, """{"name": "No"}""")
        }
        assertEquals(ValidationReason.FORBIDDEN, refused.reason)
        val notOwner = assertFailsWith<TandemException.Space> {
            editor.invite(space.id, newEmail(), SpaceRole.VIEWER)
        }
        assertEquals(SpaceErrorKind.FORBIDDEN, notOwner.kind)
        val lastOwner = assertFailsWith<TandemException.Space> { owner.leave(space.id) }
        assertEquals(SpaceErrorKind.LAST_OWNER, lastOwner.kind)

        // A second space, the editor's, with the owner as its viewer: roles are per space.
        val coach = editor.createSpace("Coach")
        editor.invite(coach.id, ownerEmail, SpaceRole.VIEWER)
        owner.syncNow()
        assertEquals(SpaceRole.VIEWER, owner.accept(owner.invitations().single().id).role)
        editor.putInSpace(coach.id, "team_projects", "c1", """{"name": "Intervals"}""")
        editor.syncNow()
        owner.syncNow()
        assertEquals(coach.id, owner.get("team_projects", "c1")!!.spaceId)
        assertEquals(listOf("p1"), ids(owner.query("team_projects", Query(spaceId = space.id))))
        val ownerRefused = assertFailsWith<TandemException.Validation> {
            owner.putInSpace(coach.id, "team_projects", null, """{"name": "No"}""")
        }
        assertEquals(ValidationReason.FORBIDDEN, ownerRefused.reason)

        // Removed while offline with an unsent edit: the edit stays as a dead letter, the rest goes.
        editor.patch("team_projects", "p1", """{"name": "Garden (editor)"}""")
        owner.removeMember(space.id, editor.currentUser()!!.id)
        editor.syncNow()
        val left = withTimeout(10_000) { editor.spacesAsFlow().first { spaces -> spaces.none { it.id == space.id } } }
        assertEquals(listOf(coach.id), left.map { it.id })
        val kept = editor.rejected().single()
        assertEquals(ValidationReason.FORBIDDEN to space.id, kept.reason to kept.spaceId)
        assertEquals(RecordState.REJECTED, editor.get("team_projects", "p1")!!.state)
        editor.discardRejected(kept.opId)
        assertNull(editor.get("team_projects", "p1"))
    }

    @Test
    fun `the public catalog is read by everyone and written by no one`() = runBlocking {
        val (t, _) = signedUp("reader")
        server.adminWrite("""[{"collection": "catalog", "id": "squat", "doc": {"name": "Squat"}}]""")
        t.syncNow()
        val squat = t.get("catalog", "squat")!!
        assertEquals(null to RecordState.SYNCED, squat.spaceId to squat.state)
        val refused = assertFailsWith<TandemException.Validation> {
            t.put("catalog", "squat", """{"name": "Mine"}""")
        }
        assertEquals(ValidationReason.READ_ONLY, refused.reason)
    }
}
