"""Two engines syncing through the real tandem-server binary, driven from Python (async API)."""
import asyncio
import json
import time
import uuid

import pytest

import tandem
from tandem import ConflictReason, Query, Resolution, SyncFailure, TandemError
from tandem_fixtures import PASSWORD, device, new_email, one_account


def test_two_devices_converge_and_a_conflict_is_resolved(tmp_path, server):
    email = new_email()
    a, b = device(tmp_path, server, "a"), device(tmp_path, server, "b")

    async def story():
        user = await a.sign_up(email, PASSWORD)
        assert user.email == email
        await b.sign_in(email, PASSWORD)
        a.put("plans", "p", json.dumps({"name": "Plan"}))
        report = await a.sync_now()
        assert (report.pushed, report.applied) == (1, 1)
        await b.sync_now()
        assert json.loads(b.get("plans", "p").document) == {"name": "Plan"}

        a.patch("plans", "p", json.dumps({"name": "A"}))
        b.patch("plans", "p", json.dumps({"name": "B"}))
        await a.sync_now()
        await b.sync_now()
        [conflict] = b.conflicts()
        assert conflict.reason == ConflictReason.BOTH_CHANGED
        assert conflict.fields == ["name"]
        assert json.loads(conflict.server_document) == {"name": "A"}
        b.resolve("plans", "p", Resolution.KEEP_MINE())
        await b.sync_now()
        await a.sync_now()
        assert json.loads(a.get("plans", "p").document) == {"name": "B"}
        assert a.sync_status().pending == 0

    asyncio.run(story())
    a.shutdown()
    b.shutdown()


def test_a_batch_with_a_conflicting_member_reaches_the_other_device_all_or_nothing(tmp_path, server):
    a, b = device(tmp_path, server, "a"), device(tmp_path, server, "b")

    async def story():
        await one_account(a, b)
        a.put("plans", "p", json.dumps({"name": "v1"}))
        await a.sync_now()
        await b.sync_now()
        b.patch("plans", "p", json.dumps({"name": "B"}))
        await b.sync_now()
        # One write batch: one atomic group on the wire. Its rename of p meets b's rename.
        a.write([
            tandem.WriteOp.PATCH(collection="plans", id="p", patch_json=json.dumps({"name": "A"})),
            tandem.WriteOp.PUT(collection="plan_days", id="d",
                               json=json.dumps({"planId": "p", "dayIndex": 0})),
        ])
        report = await a.sync_now()
        assert [c.id for c in report.parked] == ["p"]
        [waiting] = [o for o in report.outcomes if o.kind == tandem.OutcomeKind.WAITS_FOR_GROUP]
        assert waiting.id == "d" and waiting.reason
        assert a.rejected() == []
        await b.sync_now()
        assert b.get("plan_days", "d") is None, "nothing of the batch reached b"
        a.resolve("plans", "p", Resolution.KEEP_MINE())
        await a.sync_now()
        await b.sync_now()
        assert json.loads(b.get("plans", "p").document) == {"name": "A"}
        assert b.get("plan_days", "d") is not None, "the whole batch, once resolved"
        assert tandem.max_write_batch() == 500

    asyncio.run(story())
    a.shutdown()
    b.shutdown()


def test_last_write_wins_by_edit_time_and_edited_at(tmp_path, server):
    lww = tandem.ConflictPolicy.LAST_WRITE_WINS
    a, b = device(tmp_path, server, "a", lww), device(tmp_path, server, "b", lww)

    async def story():
        await one_account(a, b)
        before = time.time() - 1
        a.put("plans", "p", json.dumps({"name": "Plan", "notes": "n"}))
        await a.sync_now()
        await b.sync_now()
        edited = b.get("plans", "p").edited_at
        assert edited is not None, "a pulled record shows when it was edited"
        assert before <= edited.timestamp() <= time.time() + 61

        # A edits both fields, then B the name, later: B's name and A's notes win, no conflict.
        a.patch("plans", "p", json.dumps({"name": "A", "notes": "A's notes"}))
        time.sleep(0.02)
        b.patch("plans", "p", json.dumps({"name": "B"}))
        await a.sync_now()
        report = await b.sync_now()
        assert report.conflicts == 1 and report.parked == []
        await a.sync_now()
        expected = {"name": "B", "notes": "A's notes"}
        assert json.loads(a.get("plans", "p").document) == expected
        assert json.loads(b.get("plans", "p").document) == expected
        assert b.conflicts() == []
        assert a.get("plans", "p").edited_at == b.get("plans", "p").edited_at

    asyncio.run(story())
    a.shutdown()
    b.shutdown()


def test_keeping_the_servers_side_of_a_conflict_shows_the_servers_edit_time(tmp_path, server):
    email = f"py-{uuid.uuid4().hex}@example.com"
    a, b = device(tmp_path, server, "a"), device(tmp_path, server, "b")

    async def story():
        await a.sign_up(email, PASSWORD)
        await b.sign_in(email, PASSWORD)
        a.put("plans", "p", json.dumps({"name": "Plan"}))
        await a.sync_now()
        await b.sync_now()
        # Both rename offline; A's reaches the server first, B's is left to the app.
        a.patch("plans", "p", json.dumps({"name": "A"}))
        time.sleep(0.02)
        b.patch("plans", "p", json.dumps({"name": "B"}))
        await a.sync_now()
        report = await b.sync_now()
        assert [c.id for c in report.parked] == ["p"]
        b.resolve("plans", "p", Resolution.KEEP_SERVER())
        record = b.get("plans", "p")
        assert json.loads(record.document) == {"name": "A"}
        assert record.edited_at is not None, "the server's edit time, at once"
        assert record.edited_at == a.get("plans", "p").edited_at

    asyncio.run(story())
    a.shutdown()
    b.shutdown()


def test_sync_errors_are_exceptions_with_fields(tmp_path, server):
    d = device(tmp_path, server, "d")

    async def story():
        with pytest.raises(TandemError.Sync) as caught:
            await d.sync_now()
        assert caught.value.kind == SyncFailure.NOT_SIGNED_IN
        with pytest.raises(TandemError.Auth) as caught:
            await d.sign_in(f"nobody-{uuid.uuid4().hex}@example.com", PASSWORD)
        assert caught.value.kind == tandem.AuthFailure.INVALID_CREDENTIALS

    asyncio.run(story())
    d.shutdown()


def test_the_status_says_when_the_last_run_ended_and_why_it_failed(tmp_path, server):
    d = device(tmp_path, server, "d")

    async def story():
        assert d.sync_status().last_run_at is None
        with pytest.raises(TandemError.Sync):
            await d.sync_now()
        assert d.sync_status().last_failure == SyncFailure.NOT_SIGNED_IN
        await d.sign_up(new_email(), PASSWORD)
        await d.sync_now()
        status = d.sync_status()
        assert status.last_failure is None and status.last_error is None
        assert status.last_run_at == status.last_synced_at

    asyncio.run(story())
    d.shutdown()


class Lines(tandem.LogSink):
    """Collects the engine's log lines (called on Tandem's log thread)."""

    def __init__(self):
        self.lines = []

    def log(self, level, target, message):
        self.lines.append((level, target, message))


def test_the_log_sink_sees_a_sync_run(tmp_path, server):
    lines = Lines()
    tandem.set_log_sink(lines, tandem.LogLevel.DEBUG)
    try:
        email = new_email()
        a = device(tmp_path, server, "a")

        async def story():
            await a.sign_up(email, PASSWORD)
            a.put("plans", "p", json.dumps({"name": "Python-log-plan-5521"}))
            await a.sync_now()

        asyncio.run(story())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("sync run finished" in m for _, _, m in lines.lines):
            time.sleep(0.02)
        runs = [(level, target) for level, target, m in lines.lines if "sync run finished" in m]
        assert runs and runs[0] == (tandem.LogLevel.INFO, "tandem_core::sync::orchestrator")
        assert not any(email in m or PASSWORD in m or "Python-log-plan-5521" in m for _, _, m in lines.lines)
        assert tandem.dropped_log_lines() >= 0
        a.shutdown()
    finally:
        tandem.clear_log_sink()


def test_an_operators_revocation_ends_the_session_and_keeps_pending_changes(tmp_path, server):
    """`POST /admin/v1/users/{id}/revoke` (issue 16): the device's unexpired access token is
    refused, so its next sync ends the session typed (SESSION_EXPIRED), the pending change stays,
    and signing in again sends it."""
    import urllib.request

    from tandem_fixtures import ADMIN_TOKEN

    email = new_email()
    d = device(tmp_path, server, "d")

    async def story():
        await d.sign_up(email, PASSWORD)
        d.put("plans", "p", json.dumps({"name": "pending"}))
        request = urllib.request.Request(
            f"{server}/admin/v1/users/{email}/revoke", data=b"",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, method="POST",
        )
        with urllib.request.urlopen(request) as response:
            assert json.load(response) == {"sessionsRevoked": 1}
        with pytest.raises(TandemError.Sync) as caught:
            await d.sync_now()
        assert caught.value.kind == SyncFailure.SESSION_EXPIRED
        assert d.pending_count() == 1
        await d.sign_in(email, PASSWORD)
        await d.sync_now()
        assert d.pending_count() == 0

    asyncio.run(story())
    d.shutdown()


def test_sign_out_is_this_device_only_and_sign_out_everywhere_every_device(tmp_path, server):
    """`sign_out` revokes this device's sign-in only (`scope=local`): the other devices go on
    syncing. `sign_out_everywhere` (`scope=global`) ends every device's session: their next sync
    fails SESSION_EXPIRED, their pending changes stay."""
    email = new_email()
    phone, tablet, laptop = (device(tmp_path, server, name) for name in ("phone", "tablet", "laptop"))

    async def story():
        await phone.sign_up(email, PASSWORD)
        await tablet.sign_in(email, PASSWORD)
        await laptop.sign_in(email, PASSWORD)
        await tablet.sign_out(False)
        phone.put("plans", "p", json.dumps({"name": "after the tablet left"}))
        await phone.sync_now()
        await laptop.sync_now()
        assert json.loads(laptop.get("plans", "p").document) == {"name": "after the tablet left"}

        await laptop.sign_out_everywhere(False)
        assert laptop.current_user() is None
        phone.put("plans", "q", json.dumps({"name": "pending"}))
        with pytest.raises(TandemError.Sync) as caught:
            await phone.sync_now()
        assert caught.value.kind == SyncFailure.SESSION_EXPIRED
        assert phone.pending_count() == 1

    asyncio.run(story())
    for d in (phone, tablet, laptop):
        d.shutdown()
