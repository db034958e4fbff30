#!/usr/bin/env python3
"""Runs every command of README.md's ```sh blocks exactly as written, from the repository root.

Most commands run to completion and must exit 0. A few run until interrupted; they are started in
the background, checked, interrupted with SIGINT and must then exit 0:

- the dev server (`cargo run -p tandem-server`): up when it prints `listening on URL`; `/healthz`
  must answer; it stays up while the other commands run, so the CLI commands have a server;
- `... demo --keep`: its server must answer at the URL it prints after the story;
- `... watch`: it must print that it is watching.

`scripts/test.sh` is the run that calls this script (it sets TANDEM_README_CHECK=test.sh).

The commands get a sandbox: the platform data directory (the CLI's default `--data-dir`) points
into a temporary directory, TANDEM_PASSWORD answers the password prompt, and the dev server's
`./tandem-server.db` (with its secret and its blob directory) is moved aside beforehand and
put back afterwards.
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The first build of a command may compile the whole workspace on a small machine.
BUILD_TIMEOUT = 45 * 60
DEV_DB = [
    "tandem-server.db",
    "tandem-server.db-wal",
    "tandem-server.db-shm",
    "tandem-server.db.jwt-secret",
    "tandem-server.db.blobs",
]


def readme_commands(text):
    """The commands of the ```sh blocks, in order (comment lines skipped, `\\` lines joined)."""
    commands, block, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            block = line.strip() == "```sh" if not block else False
            continue
        if not block:
            continue
        line = pending + line.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def kind(command):
    if re.match(r"scripts/test\.sh\b", command):
        return "self"
    # The dev server is the bare command; `cargo run -p tandem-server -- import …` runs to its end.
    if re.match(r"cargo run (-q )?-p tandem-server\s*(#|$)", command):
        return "server"
    if re.search(r"\bdemo --keep\b", command):
        return "keep"
    if re.search(r"-- (\S+ )*watch\b", command):
        return "watch"
    return "run"


class Background:
    """A long-running README command, started in its own process group."""

    def __init__(self, command, env):
        self.command = command
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def wait_for(self, pattern, timeout=BUILD_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output(), re.MULTILINE)
            if found:
                return found
            if self.process.poll() is not None:
                fail(f"`{self.command}` exited {self.process.returncode}", self.output())
            time.sleep(0.2)
        fail(f"`{self.command}` never printed /{pattern}/", self.output())

    def interrupt(self):
        """SIGINT to the command's own process (not cargo's), as Ctrl-C in a terminal would."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            fail(f"`{self.command}` did not stop on Ctrl-C", self.output())
        if code != 0:
            fail(f"`{self.command}` exited {code} on Ctrl-C", self.output())


def healthy(url):
    with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
        body = json.load(response)
    if body != {"status": "ok"}:
        fail(f"{url}/healthz answered {body}")


def fail(message, output=""):
    print(f"README check failed: {message}", file=sys.stderr)
    if output:
        print(output[-6000:], file=sys.stderr)
    sys.exit(1)


def run(command, env):
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=BUILD_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        fail(f"`{command}` exited {result.returncode}", result.stdout)
    print(f"ok ({time.monotonic() - started:.1f} s): {command}")


def main():
    commands = readme_commands((ROOT / "README.md").read_text())
    kinds = [(kind(c), c) for c in commands]
    servers = [c for k, c in kinds if k == "server"]
    if len(servers) != 1:
        fail(f"expected one dev server command in README.md, found {servers}")
    sandbox = Path(tempfile.mkdtemp(prefix="tandem-readme-"))
    aside = sandbox / "dev-db-aside"
    aside.mkdir()
    for name in DEV_DB:
        if (ROOT / name).exists():
            shutil.move(str(ROOT / name), aside / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(
        XDG_DATA_HOME=str(sandbox / "data"),
        TANDEM_PASSWORD=secrets.token_urlsafe(18),
        CARGO_TERM_COLOR="never",
    )
    server = None
    try:
        server = Background(servers[0], env)
        url = server.wait_for(r"^listening on (\S+)").group(1)
        healthy(url)
        print(f"ok (up at {url}): {servers[0]}")
        for k, command in kinds:
            if k == "self":
                if os.environ.get("TANDEM_README_CHECK") != "test.sh":
                    fail(f"`{command}` is checked by running it; run this script from it")
                print(f"ok (this run): {command}")
            elif k == "run":
                run(command, env)
            elif k == "watch":
                watch = Background(command, env)
                watch.wait_for(r"^watching ")
                watch.interrupt()
                print(f"ok (watched, stopped with Ctrl-C): {command}")
        server.interrupt()
        server = None
        for k, command in kinds:
            if k == "keep":
                keep = Background(command, env)
                kept = keep.wait_for(r"keeps running at (\S+)").group(1)
                healthy(kept)
                keep.interrupt()
                print(f"ok (kept {kept}, stopped with Ctrl-C): {command}")
    finally:
        if server is not None:
            os.killpg(server.process.pid, signal.SIGKILL)
        for name in DEV_DB:
            if (ROOT / name).is_dir():
                shutil.rmtree(ROOT / name)
            else:
                (ROOT / name).unlink(missing_ok=True)
            if (aside / name).exists():
                shutil.move(aside / name, ROOT / name)
        shutil.rmtree(sandbox, ignore_errors=True)
    print(f"all {len(commands)} README commands work as written")


if __name__ == "__main__":
    main()
