"""Puts the generated bindings (scripts/generate-bindings.sh) on the import path, and holds the
fixtures the tests share: `server` (a real tandem-server on SQLite) and `engine` (a local engine
on the test schema). Plain helpers are in tandem_fixtures.py."""
import os
import pathlib
import subprocess
import sys

import pytest

GENERATED = pathlib.Path(
    os.environ.get("TANDEM_PYTHON_BINDINGS", pathlib.Path(__file__).resolve().parents[2] / "generated" / "python")
)
if not (GENERATED / "tandem.py").exists():
    raise RuntimeError(f"no generated bindings in {GENERATED}: run scripts/generate-bindings.sh first")
sys.path.insert(0, str(GENERATED))

from tandem import Tandem, TandemConfig  # noqa: E402 (after the path is set)
from tandem_fixtures import ADMIN_TOKEN, ROOT, SCHEMA, SCHEMA_FILE  # noqa: E402


def server_binary():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", pathlib.Path.home() / ".cache" / "tandem" / "target"))
    binary = target / "debug" / "tandem-server"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-p", "tandem-server"], cwd=ROOT, check=True)
    return binary


@pytest.fixture
def server(tmp_path):
    """A tandem-server on a SQLite database in `tmp_path`; its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env["TANDEM_JWT_SECRET"] = "python-binding-tests-secret-0123456789"
    env["TANDEM_ADMIN_TOKEN"] = ADMIN_TOKEN  # public collections (tandem_fixtures.admin_write)
    process = subprocess.Popen(
        [server_binary(), "--addr", "127.0.0.1:0", "--db", f"sqlite://{tmp_path / 'server.db'}",
         "--schema", str(SCHEMA_FILE)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("listening on "), line
    yield line.removeprefix("listening on ").strip()
    process.kill()
    process.wait()


@pytest.fixture
def engine(tmp_path):
    """A local engine (no server) on the test schema in `tmp_path`."""
    t = Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json=SCHEMA))
    yield t
    t.shutdown()
