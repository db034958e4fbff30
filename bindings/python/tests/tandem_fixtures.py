"""What the binding tests share: the test schema, an in-memory secure store, devices against a
server and one-account sign-up. The pytest fixtures (`server`, `engine`) are in conftest.py."""
import json
import pathlib
import urllib.request
import uuid

import tandem
from tandem import Tandem, TandemConfig

ROOT = pathlib.Path(__file__).resolve().parents[3]
# The one test schema (the Rust, Kotlin and Swift tests load it too); the server loads the same file.
SCHEMA_FILE = ROOT / "schemas" / "test.json"
SCHEMA = SCHEMA_FILE.read_text()
PASSWORD = "correct horse battery staple"
# The `server` fixture's admin token, for writing public collections.
ADMIN_TOKEN = "python-binding-tests-admin-0123456789abcdef"


def new_email():
    """A new account's email address."""
    return f"py-{uuid.uuid4().hex}@example.com"


class Secrets(tandem.SecureStore):
    """An in-memory secure store (not secure: for tests)."""

    def __init__(self):
        self.values = {}

    def get(self, key):
        return self.values.get(key)

    def set(self, key, value):
        self.values[key] = value

    def delete(self, key):
        self.values.pop(key, None)


def device(tmp_path, url, name, policy=None):
    """A device in `tmp_path / name` against the server at `url`, syncing only when told."""
    config = TandemConfig(data_dir=str(tmp_path / name), schema_json=SCHEMA, server_url=url,
                          secure_store=Secrets())
    config.sync.realtime = False
    config.sync.conflict_policy = policy
    return Tandem.open(config)


async def one_account(a, b):
    """Signs `a` up to a new account and `b` in to it; returns the account's email."""
    email = new_email()
    await a.sign_up(email, PASSWORD)
    await b.sign_in(email, PASSWORD)
    return email


def admin_write(url, writes):
    """Writes public records as the server's administrator (`POST /admin/v1/public/write`);
    `writes` is a list of {"collection", "id", "doc"}. Returns the answer's results."""
    request = urllib.request.Request(
        f"{url}/admin/v1/public/write", data=json.dumps({"writes": writes}).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["results"]
