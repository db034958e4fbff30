"""Attachments through the generated Python bindings, against the real tandem-server binary:
a file attached on one device arrives byte for byte on another of the same account, its state
and progress observed; another account cannot download it; a bad hash is a typed error."""
import asyncio
import hashlib
import json
import os
import threading
import time

import pytest

import tandem
from tandem import AttachmentErrorKind, AttachmentState, TandemError
from tandem_fixtures import PASSWORD, device, new_email, one_account

# Over photos' eager prefetch limit (1,000,000 bytes), so device B downloads on demand; over one
# upload chunk (8 MiB), so the upload takes two PATCHes.
SIZE = 9 * 1024 * 1024


class States(tandem.AttachmentObserver):
    """Keeps every state delivered, for the test to read."""

    def __init__(self):
        self.states = []
        self.lock = threading.Lock()

    def on_state(self, state):
        with self.lock:
            self.states.append(state)

    def seen(self):
        with self.lock:
            return list(self.states)


def test_a_file_attached_on_one_device_opens_on_another(tmp_path, server):
    a, b = device(tmp_path, server, "a"), device(tmp_path, server, "b")
    data = os.urandom(SIZE)
    source = tmp_path / "climb.jpg"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    async def story():
        await one_account(a, b)
        a.put("photos", "p1", json.dumps({"caption": "Climb"}))
        record = await a.attach_file("photos", "p1", "image", str(source), None, None)
        image = json.loads(record.document)["image"]
        assert image == {"hash": digest, "size": SIZE, "contentType": "image/jpeg", "name": "climb.jpg"}
        # The app may delete its copy at once: the engine keeps its own.
        source.unlink()
        assert a.attachment_state(digest) == AttachmentState.LOCAL()

        states = States()
        subscription = a.observe_attachment(digest, states)
        # The first state (delivered on the engine's thread) is the one before the sync.
        deadline = time.monotonic() + 10
        while not states.seen() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        report = await a.sync_now()
        assert report.applied == 1
        assert a.attachment_state(digest) == AttachmentState.UPLOADED()
        subscription.cancel()
        seen = states.seen()
        assert seen[0] == AttachmentState.LOCAL()
        assert seen[-1] == AttachmentState.UPLOADED()
        assert a.sync_status().attachments_pending == 0

        await b.sync_now()
        reference = b.attachment_ref("photos", "p1", "image")
        assert reference.hash == digest and reference.size == SIZE
        assert reference.content_type == "image/jpeg" and reference.name == "climb.jpg"
        assert b.attachment_state(digest) == AttachmentState.REMOTE()
        path = await b.attachment(reference)
        with open(path, "rb") as f:
            assert f.read() == data
        assert b.attachment_state(digest) == AttachmentState.UPLOADED()
        # A second call is served from the cache.
        assert await b.attachment(reference) == path

    asyncio.run(story())
    a.shutdown()
    b.shutdown()


def test_attach_bytes_another_account_and_bad_input(tmp_path, server):
    a, other = device(tmp_path, server, "a"), device(tmp_path, server, "other")
    data = b"hello, attachments\n" * 100

    async def story():
        await a.sign_up(new_email(), PASSWORD)
        await other.sign_up(new_email(), PASSWORD)
        a.put("photos", "p1", json.dumps({}))
        record = await a.attach_bytes("photos", "p1", "image", data, "text/plain", "hello.txt")
        reference = a.attachment_ref("photos", "p1", "image")
        assert json.loads(record.document)["image"]["hash"] == reference.hash
        await a.sync_now()

        # Knowing the hash grants nothing to another account.
        with pytest.raises(TandemError.Attachment) as denied:
            await other.attachment(reference)
        assert denied.value.kind == AttachmentErrorKind.NOT_FOUND

        # Not an attachment field; a record that does not exist; a malformed hash.
        with pytest.raises(TandemError.Validation):
            await a.attach_bytes("photos", "p1", "caption", data, "text/plain", None)
        with pytest.raises(TandemError.NotFound):
            await a.attach_bytes("photos", "nope", "image", data, "text/plain", None)
        with pytest.raises(TandemError.InvalidArgument):
            a.attachment_state("not-a-hash")
        with pytest.raises(TandemError.Validation):
            a.attachment_ref("photos", "p1", "caption")
        a.put("photos", "p2", json.dumps({"caption": "no image yet"}))
        assert a.attachment_ref("photos", "p2", "image") is None

        # A range of the bytes without a path: across the end, and past it.
        assert await a.read_attachment(reference, 7, 12) == data[7:19]
        assert await a.read_attachment(reference, len(data) - 3, 100) == data[-3:]
        assert await a.read_attachment(reference, len(data), 10) == b""
        with pytest.raises(TandemError.Attachment) as denied:
            await other.read_attachment(reference, 0, 10)
        assert denied.value.kind == AttachmentErrorKind.NOT_FOUND

    asyncio.run(story())
    a.shutdown()
    other.shutdown()


def test_the_cache_limit_defaults_to_the_engines(tmp_path):
    # The exported default (a literal in the UniFFI record) is the engine's 500 MB.
    config = tandem.TandemConfig(data_dir=str(tmp_path), schema_json="{}")
    assert config.attachment_cache_bytes == 500_000_000
