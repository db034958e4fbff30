"""Spaces through the generated Python bindings against the real tandem-server binary (the Rust
story of bindings/ffi/tests/spaces.rs, shorter): an owner, an editor and a viewer; edits flow both
ways; the viewer's write is refused here; the editor, removed while offline with an unsent edit,
keeps it as a FORBIDDEN dead letter; observers; the public catalog is read-only."""
import asyncio
import json
import threading

import pytest

import tandem
from tandem import Query, RecordState, SpaceErrorKind, SpaceRole, TandemError, ValidationReason
from tandem_fixtures import PASSWORD, admin_write, device, new_email


class Spaces(tandem.SpacesObserver):
    """Keeps the latest list of spaces delivered."""

    def __init__(self):
        self.latest = None
        self.changed = threading.Event()

    def on_spaces(self, spaces):
        self.latest = spaces
        self.changed.set()

    def wait_for(self, condition, timeout=10):
        for _ in range(int(timeout * 100)):
            if self.latest is not None and condition(self.latest):
                return self.latest
            self.changed.wait(0.01)
            self.changed.clear()
        raise AssertionError(f"no delivery satisfying the condition; last: {self.latest!r}")


class Invitations(tandem.InvitationsObserver):
    def __init__(self):
        self.seen = []

    def on_invitations(self, invitations):
        self.seen.append(invitations)


def test_owner_editor_and_viewer_share_a_space(tmp_path, server):
    owner, editor, viewer = (device(tmp_path, server, name) for name in ("owner", "editor", "viewer"))
    emails = [new_email() for _ in range(3)]
    spaces_seen = Spaces()
    invitations_seen = Invitations()

    async def story():
        for d, email in zip((owner, editor, viewer), emails):
            await d.sign_up(email, PASSWORD)
        subscription = editor.observe_spaces(spaces_seen)
        invitations_subscription = editor.observe_invitations(invitations_seen)
        spaces_seen.wait_for(lambda s: s == [])

        space = await owner.create_space("Family")
        assert (space.role, space.member_count) == (SpaceRole.OWNER, 1)
        sent = await owner.invite(space.id, emails[1], SpaceRole.EDITOR)
        assert sent.role == SpaceRole.EDITOR
        await owner.invite(space.id, emails[2], SpaceRole.VIEWER)

        await editor.sync_now()
        [invitation] = editor.invitations()
        assert (invitation.space_name, invitation.role) == ("Family", SpaceRole.EDITOR)
        assert (await editor.accept(invitation.id)).role == SpaceRole.EDITOR
        spaces_seen.wait_for(lambda s: [x.id for x in s] == [space.id])
        await viewer.sync_now()
        await viewer.accept(viewer.invitations()[0].id)
        assert len(await owner.members(space.id)) == 3

        # Edits both ways; a child goes to its parent's space.
        plan = owner.put_in_space(space.id, "team_projects", "p1", json.dumps({"name": "Garden"}))
        assert plan.space_id == space.id
        await owner.sync_now()
        await editor.sync_now()
        editor.put("team_tasks", "t1", json.dumps({"projectId": "p1", "title": "Dig"}))
        await editor.sync_now()
        await owner.sync_now()
        assert [r.id for r in owner.query("team_tasks", Query(space_id=space.id))] == ["t1"]

        # The viewer reads but cannot write; only owners manage.
        await viewer.sync_now()
        assert viewer.get("team_projects", "p1").space_id == space.id
        with pytest.raises(TandemError.Validation) as refused:
            viewer.put_in_space(space.id, "team_projects", None, json.dumps({"name": "No"}))
        assert refused.value.reason == ValidationReason.FORBIDDEN
        with pytest.raises(TandemError.Space) as not_owner:
            await editor.invite(space.id, new_email(), SpaceRole.VIEWER)
        assert not_owner.value.kind == SpaceErrorKind.FORBIDDEN

        # Removed while offline with an unsent edit: kept as a dead letter, the rest goes.
        editor.patch("team_projects", "p1", json.dumps({"name": "Garden (editor)"}))
        await owner.remove_member(space.id, editor.current_user().id)
        await editor.sync_now()
        spaces_seen.wait_for(lambda s: s == [])
        [kept] = editor.rejected()
        assert (kept.reason, kept.reason_code, kept.space_id) == (ValidationReason.FORBIDDEN, "forbidden", space.id)
        assert editor.get("team_projects", "p1").state == RecordState.REJECTED
        subscription.cancel()
        invitations_subscription.cancel()

    asyncio.run(story())
    assert any(len(seen) == 1 for seen in invitations_seen.seen), invitations_seen.seen
    for d in (owner, editor, viewer):
        d.shutdown()


def test_the_public_catalog_is_read_only(tmp_path, server):
    reader = device(tmp_path, server, "reader")

    async def story():
        await reader.sign_up(new_email(), PASSWORD)
        admin_write(server, [{"collection": "catalog", "id": "squat", "doc": {"name": "Squat"}}])
        await reader.sync_now()
        squat = reader.get("catalog", "squat")
        assert (squat.space_id, squat.state) == (None, RecordState.SYNCED)
        with pytest.raises(TandemError.Validation) as refused:
            reader.put("catalog", "squat", json.dumps({"name": "Mine"}))
        assert refused.value.reason == ValidationReason.READ_ONLY

    asyncio.run(story())
    reader.shutdown()
