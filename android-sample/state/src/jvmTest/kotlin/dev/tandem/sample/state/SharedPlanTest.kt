package dev.tandem.sample.state

import dev.tandem.SpaceRole
import dev.tandem.TandemException
import dev.tandem.TandemServer
import dev.tandem.ValidationReason
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.extension.RegisterExtension
import org.junit.jupiter.api.io.TempDir

/**
 * Shared plans through the app's state layer against a real `tandem-server` (the sample schema):
 * an owner shares a plan with an editor and a viewer, the editor's change reaches the owner's
 * list, the viewer's edit is refused on the device, and removal takes the plan off the removed
 * member's phone. Each phone is its own account; data moves only when a test syncs.
 */
@Timeout(180)
class SharedPlanTest {
    companion object {
        @JvmField
        @RegisterExtension
        val server = TandemServer(schema = null)
    }

    @TempDir
    lateinit var root: Path
    private val devices = mutableListOf<Device>()

    @AfterEach
    fun closeDevices() {
        devices.forEach(Device::close)
    }

    private suspend fun signedUp(name: String): Pair<Device, String> {
        val device = Device(name, root, server.url).also(devices::add)
        val email = newEmail()
        device.enter(email, SignInMode.SIGN_UP)
        return device to email
    }

    /** Answers the one pending invitation from the plans list's banner, after a sync brings it. */
    private suspend fun acceptTheInvitation(device: Device, role: SpaceRole, planName: String) {
        device.sync()
        val invitation = device.plansList.state
            .await("${device.name}'s invitation") { it.invitations.size == 1 }
            .invitations.single()
        assertEquals(planName, invitation.spaceName)
        assertEquals(role, invitation.role)
        assertTrue(invitation.bannerText().endsWith("invited you to ‘$planName’ as ${role.label()}"))
        assertTrue(device.plansList.accept(invitation), device.plansList.message.value)
        device.sync()
        device.plansList.state.await("${device.name}'s shared plan") { state ->
            state.invitations.isEmpty() && state.shared.singleOrNull()?.plan?.name == planName
        }
    }

    @Test
    fun `an owner shares a plan with an editor and a viewer, edits flow, a viewer cannot edit, removal drops it`() = runBlocking<Unit> {
        val (owner, _) = signedUp("owner")
        val (editor, editorEmail) = signedUp("editor")
        val (viewer, viewerEmail) = signedUp("viewer")

        val plan = assertNotNull(owner.plansList.create("Legs", "heavy"))
        assertNotNull(owner.planDetail(plan.id).addDay("Squats"))
        owner.sync()

        // Sharing moves the personal plan (and its day) into a space named after it.
        val sheet = owner.shareSheet(plan.ref)
        assertTrue(sheet.invite(editorEmail, SpaceRole.EDITOR), sheet.message.value)
        val shared = sheet.state.value.plan
        assertTrue(shared.shared)
        assertEquals(plan.id, shared.id)
        assertTrue(sheet.invite(viewerEmail, SpaceRole.VIEWER), sheet.message.value)
        owner.sync()
        val ownerList = owner.plansList.state.await("the plan under Shared") { state ->
            state.plans.isEmpty() && state.shared.singleOrNull()?.plan?.name == "Legs"
        }
        assertEquals(SpaceRole.OWNER, ownerList.shared.single().role)
        owner.planDetail(shared).state.await("the moved day") { it.days.map { row -> row.day.title } == listOf("Squats") }

        acceptTheInvitation(editor, SpaceRole.EDITOR, "Legs")
        acceptTheInvitation(viewer, SpaceRole.VIEWER, "Legs")

        // The owner's list says who it is shared with, and the sheet lists them.
        owner.sync()
        owner.plansList.state.await("shared with two") { it.shared.singleOrNull()?.sharedWith == 2 }
        assertTrue(sheet.refresh(), sheet.message.value)
        assertEquals(
            mapOf(editorEmail to SpaceRole.EDITOR, viewerEmail to SpaceRole.VIEWER),
            sheet.state.value.members.filter { it.role != SpaceRole.OWNER }.associate { it.email to it.role },
        )

        // The editor's change reaches the owner's observed list.
        val editorDetail = editor.planDetail(shared)
        editorDetail.state.await("the editor's copy") { it.plan?.name == "Legs" && it.days.size == 1 }
        assertFalse(editorDetail.state.value.viewOnly)
        assertTrue(editorDetail.update("Legs and core", "heavy"), editorDetail.message.value)
        editor.sync()
        owner.sync()
        owner.plansList.state.await("the editor's rename on the owner's list") {
            it.shared.singleOrNull()?.plan?.name == "Legs and core"
        }

        // The viewer sees it "View only"; an edit is refused on the device, nothing is queued.
        viewer.sync()
        val viewerDetail = viewer.planDetail(shared)
        val seen = viewerDetail.state.await("the viewer's copy") { it.plan?.name == "Legs and core" }
        assertTrue(seen.viewOnly)
        assertFalse(viewerDetail.update("Mine now", ""))
        assertEquals("View only: you can see this plan but not change it.", viewerDetail.message.value)
        assertEquals(0UL, viewer.graph.host.engine.pendingCount())

        // The owner removes the viewer: the plan leaves the viewer's phone at its next sync.
        val viewerMember = sheet.state.value.members.single { it.email == viewerEmail }
        assertTrue(sheet.remove(viewerMember), sheet.message.value)
        viewer.sync()
        viewer.plansList.state.await("the plan gone from the viewer's list") { it.shared.isEmpty() }
        viewerDetail.state.await("the viewer's plan screen closing") { it.gone }
        assertEquals(listOf(editorEmail), sheet.state.value.members.filter { it.role != SpaceRole.OWNER }.map { it.email })
    }

    @Test
    fun `an editor leaves a shared plan and the public catalog is read-only`() = runBlocking<Unit> {
        val (owner, _) = signedUp("owner")
        val (editor, editorEmail) = signedUp("editor")
        val plan = assertNotNull(owner.plansList.create("Push", ""))
        val sheet = owner.shareSheet(plan.ref)
        assertTrue(sheet.invite(editorEmail, SpaceRole.EDITOR), sheet.message.value)
        val shared = sheet.state.value.plan
        owner.sync()
        acceptTheInvitation(editor, SpaceRole.EDITOR, "Push")

        val detail = editor.planDetail(shared)
        detail.state.await("the editor's copy") { it.plan != null }
        assertTrue(detail.leave(), detail.message.value)
        editor.plansList.state.await("the plan gone after leaving") { it.shared.isEmpty() }
        owner.sync()
        owner.plansList.state.await("nobody else on the plan") { it.shared.singleOrNull()?.sharedWith == 0 }

        // The owner cannot leave as the last owner.
        assertFalse(owner.planDetail(shared).leave())

        // The catalog comes from the server: a local write is refused, typed.
        val refused = assertFailsWith<TandemException.Validation> {
            owner.graph.host.engine.put(Collections.CATALOG_EXERCISES, null, Documents.document("name" to "Mine"))
        }
        assertEquals(ValidationReason.READ_ONLY, refused.reason)
        assertEquals(
            "The exercise catalog comes from the server and cannot be changed here.",
            Messages.of(refused),
        )
    }
}
