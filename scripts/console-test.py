#!/usr/bin/env python3
"""The admin console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`) driven by Selenium against the real `tandem-server` binary, with a device run
by the real `tandem` CLI.

1. The server starts on a free loopback port with a temporary SQLite database and an admin token
   (given in its environment, never on the command line).
2. A device signs up, writes a plan and syncs (the password in TANDEM_PASSWORD, never argv).
3. In the browser: sign in with the admin token (a wrong one refused first); the overview counts
   the users and the users page lists the device's with their last push (and an email made of
   markup as text).
4. The kill switch goes on (with a reason, confirmed in its dialog): the device's next
   `tandem sync` fails with `sync_paused` and its change stays in its outbox.
5. The kill switch goes off: the device's sync sends the change, and a second device of the
   account (`tandem login`, `sync`, `list`) sees it.
6. The user is paused from their own page (with a reason): the device is refused again; the
   overview lists that pause; resumed from the page, the change written meanwhile arrives too.
7. No Content-Security-Policy violation was reported by the browser; a screenshot of the overview
   is saved to a temporary directory, or where `--screenshot PATH` says (the README's picture:
   `--screenshot docs/admin-console.png`).

Usage: scripts/console-test.py [--screenshot PATH] [--server-bin PATH] [--cli-bin PATH]
Without --server-bin and --cli-bin, `cargo build` makes sure $CARGO_TARGET_DIR/debug's are current;
CHROMIUM and CHROMEDRIVER override /usr/bin/chromium and /usr/bin/chromedriver.
`scripts/test.sh` runs it after building the workspace.
"""

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "console test password 0123"
WAIT_SECS = 20


def log(message):
    print(f"console-test: {message}", flush=True)


def target_dir():
    default = Path.home() / ".cache" / "tandem" / "target"
    return Path(os.environ.get("CARGO_TARGET_DIR", default))


def binaries(args):
    """The two binaries: as given, else built by cargo (a no-op when they are up to date, and
    never a stale binary of an older checkout)."""
    if args.server_bin or args.cli_bin:
        server, cli = Path(args.server_bin or ""), Path(args.cli_bin or "")
        if not (server.is_file() and cli.is_file()):
            sys.exit("console-test: --server-bin and --cli-bin name the two binaries")
        return server, cli
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "tandem-server", "-p", "tandem-cli"], cwd=ROOT, check=True
    )
    return target_dir() / "debug" / "tandem-server", target_dir() / "debug" / "tandem"


class Server:
    """The real server binary on a free port; its log kept in a file for a failure's report."""

    def __init__(self, binary, workdir, admin_token):
        self.log_path = workdir / "server.log"
        env = dict(os.environ, TANDEM_ADMIN_TOKEN=admin_token, RUST_LOG="info")
        db = f"sqlite://{workdir / 'server.db'}"
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(binary), "--addr", "127.0.0.1:0", "--db", db],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            text=True,
        )
        first = []
        ready = threading.Event()

        def drain():
            for line in self.process.stdout:
                if not first:
                    first.append(line)
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60) or not first or not first[0].startswith("listening on "):
            self.stop()
            raise RuntimeError(f"tandem-server did not start:\n{self.log()}")
        self.url = first[0][len("listening on "):].strip()

    def log(self):
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


class Device:
    """One data directory the `tandem` CLI runs on."""

    def __init__(self, cli, data_dir, server_url):
        self.cli = cli
        self.env = dict(
            os.environ,
            TANDEM_DATA_DIR=str(data_dir),
            TANDEM_SERVER=server_url,
            TANDEM_PASSWORD=PASSWORD,
        )

    def run(self, *args, ok=True):
        result = subprocess.run(
            [str(self.cli), "--json", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok and result.returncode != 0:
            raise AssertionError(
                f"tandem {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result


def error_code(result):
    try:
        return json.loads(result.stderr.strip().splitlines()[-1])["error"]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1100",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def wait(driver, what, condition, timeout=WAIT_SECS):
    try:
        # A page redrawn while it is read leaves stale elements: read again at the next poll.
        return WebDriverWait(
            driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(lambda d: condition())
    except Exception as e:
        raise AssertionError(f"timed out waiting for {what}") from e


def text_of(driver, element_id):
    try:
        found = driver.find_elements(By.ID, element_id)
        return found[0].text if found else None
    except StaleElementReferenceException:
        return None


def click(driver, element_id):
    button = wait(
        driver,
        f"#{element_id} to be clickable",
        lambda: next(
            (b for b in driver.find_elements(By.ID, element_id) if b.is_displayed() and b.is_enabled()),
            None,
        ),
    )
    button.click()


def open_user(driver, email):
    """The page of the user with `email`, through the users page's search."""
    driver.find_element(By.CSS_SELECTOR, "#nav a[data-page=users]").click()
    search = wait(driver, "the users search", lambda: driver.find_element(By.ID, "user-search"))
    search.clear()
    search.send_keys(email)
    driver.find_element(By.CSS_SELECTOR, "form.search button").click()
    wait(driver, "the search in the address", lambda: "query=" in driver.current_url)

    def open_link():
        # The list is redrawn when the search lands: a link found just before is then stale.
        try:
            for a in driver.find_elements(By.CSS_SELECTOR, "a.user-link"):
                if a.text == email:
                    a.click()
                    return True
        except StaleElementReferenceException:
            pass
        return False

    wait(driver, f"{email} on the users page", open_link)
    wait(driver, f"the page of {email}", lambda: driver.find_elements(By.ID, "user-pause"))


def sync_state(driver):
    return text_of(driver, "sync-state")


def run(args, workdir):
    server_bin, cli = binaries(args)
    admin_token = secrets.token_hex(24)
    server = Server(server_bin, workdir, admin_token)
    driver = None
    try:
        log(f"server at {server.url}")
        email = f"climber-{secrets.token_hex(3)}@example.com"
        phone = Device(cli, workdir / "phone", server.url)
        phone.run("signup", email)
        phone.run("put", "plans", '{"name": "Legs"}', "--id", "legs")
        phone.run("sync")
        log(f"the phone of {email} pushed a plan")
        # An account whose email is markup: the console must show it as text.
        markup = f"<b>mallory-{secrets.token_hex(3)}</b>@example.com"
        Device(cli, workdir / "mallory", server.url).run("signup", markup)

        driver = browser()
        try:
            driver.get(f"{server.url}/admin")
            # Sign in with the admin token; a wrong one is refused first.
            wait(driver, "the sign-in form", lambda: driver.find_element(By.ID, "token").is_displayed())
            driver.find_element(By.ID, "token").send_keys("not-the-admin-token-0123456789abcdef")
            driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
            wait(
                driver,
                "a wrong token to be refused",
                lambda: driver.find_element(By.ID, "sign-in-error").is_displayed(),
            )
            driver.find_element(By.ID, "token").send_keys(admin_token)
            driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
            wait(driver, "the overview", lambda: sync_state(driver) == "Running")
            wait(driver, "the overview to count the users", lambda: text_of(driver, "stat-users") == "2")
            log("signed in; the overview counts 2 users, sync running")

            # The users page lists the device's user, with a last push.
            driver.find_element(By.CSS_SELECTOR, "#nav a[data-page=users]").click()
            link = wait(
                driver,
                f"{email} on the users page",
                lambda: next(
                    (a for a in driver.find_elements(By.CSS_SELECTOR, "a.user-link") if a.text == email),
                    None,
                ),
            )
            row = link.find_element(By.XPATH, "./ancestor::tr")
            last_push = row.find_elements(By.TAG_NAME, "td")[2].text
            assert last_push != "never", f"the users page shows no push of {email}"
            log(f"the users page lists {email} (last push {last_push})")
            shown = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a.user-link")]
            assert markup in shown, f"the markup email is not shown as text: {shown}"
            assert not driver.find_elements(By.CSS_SELECTOR, "#users b"), "an email became markup"
            log("an email made of markup is shown as text")

            # The kill switch on: confirmed, with a reason.
            driver.find_element(By.CSS_SELECTOR, "#nav a[data-page=overview]").click()
            wait(driver, "the overview", lambda: sync_state(driver) == "Running")
            click(driver, "kill-switch")
            wait(driver, "the confirmation", lambda: driver.find_element(By.ID, "confirm").is_displayed())
            driver.find_element(By.ID, "confirm-reason").send_keys("console test: a bad release")
            click(driver, "confirm-ok")
            wait(driver, "the overview to say paused", lambda: sync_state(driver) == "Paused")
            wait(
                driver,
                "the pause and its reason in the pauses table",
                lambda: "console test: a bad release" in (text_of(driver, "pauses") or ""),
            )
            log("kill switch on")

            # The device's next sync is refused, and its change waits in its outbox.
            phone.run("put", "plans", '{"name": "Arms"}', "--id", "arms")
            paused = phone.run("sync", ok=False)
            assert paused.returncode == 1, f"sync during the pause: {paused.returncode} {paused.stderr}"
            assert error_code(paused) == "sync_paused", f"sync during the pause: {paused.stderr}"
            outbox = phone.run("outbox").stdout
            assert "arms" in outbox, f"the change left the outbox during the pause: {outbox}"
            log("the phone's sync failed with sync_paused; its change is still in its outbox")

            # The kill switch off: the change arrives on a second device.
            click(driver, "kill-switch")
            wait(driver, "the overview to say running", lambda: sync_state(driver) == "Running")
            log("kill switch off")
            phone.run("sync")
            tablet = Device(cli, workdir / "tablet", server.url)
            tablet.run("login", email)
            tablet.run("sync")
            listed = json.loads(tablet.run("list", "plans").stdout)
            ids = sorted(r.get("id") for r in listed) if isinstance(listed, list) else listed
            assert ids == ["arms", "legs"], f"the tablet lists {ids}"
            log("the tablet sees the plan written during the pause")

            # One user paused from their page, with a reason: the phone is refused again.
            open_user(driver, email)
            click(driver, "user-pause")
            wait(driver, "the confirmation", lambda: driver.find_element(By.ID, "confirm").is_displayed())
            driver.find_element(By.ID, "confirm-reason").send_keys("checking an import")
            click(driver, "confirm-ok")
            wait(
                driver,
                "the user's page to offer resuming",
                lambda: text_of(driver, "user-pause") == "Resume sync for this user",
            )
            phone.run("put", "plans", '{"name": "Core"}', "--id", "core")
            paused = phone.run("sync", ok=False)
            assert error_code(paused) == "sync_paused", f"sync of a paused user: {paused.stderr}"
            log("paused the user from their page: the phone's sync failed with sync_paused")

            # The overview, reloaded (the token stays in the tab), for the screenshot: the pushes
            # just made, and the user's pause with its reason.
            driver.find_element(By.CSS_SELECTOR, "#nav a[data-page=overview]").click()
            driver.refresh()
            wait(
                driver,
                "the overview with the pushes and the user's pause",
                lambda: (text_of(driver, "stat-pushes") or "0") not in ("0", "…")
                and "checking an import" in (text_of(driver, "pauses") or ""),
            )
            shot = Path(args.screenshot) if args.screenshot else Path(tempfile.mkdtemp()) / "admin-console.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(shot))
            log(f"screenshot of the overview: {shot}")

            # Resumed from their page: the change written during that pause arrives too.
            open_user(driver, email)
            click(driver, "user-pause")
            wait(
                driver,
                "the user's page to offer pausing",
                lambda: text_of(driver, "user-pause") == "Pause sync for this user",
            )
            phone.run("sync")
            tablet.run("sync")
            listed = json.loads(tablet.run("list", "plans").stdout)
            ids = sorted(r.get("id") for r in listed)
            assert ids == ["arms", "core", "legs"], f"the tablet lists {ids}"
            log("resumed the user from their page: the tablet sees that change too")

            violations = [
                entry["message"]
                for entry in driver.get_log("browser")
                if "Content Security Policy" in entry["message"] or "Uncaught" in entry["message"]
            ]
            assert not violations, f"CSP violations or script errors: {violations}"
        except BaseException:
            try:
                failure = workdir / "failure.png"
                driver.save_screenshot(str(failure))
                kept = Path(tempfile.mkdtemp()) / "console-test-failure.png"
                shutil.copy(failure, kept)
                log(f"failure screenshot: {kept}")
                for entry in driver.get_log("browser"):
                    log(f"browser: {entry['level']} {entry['message']}")
            except WebDriverException:
                pass
            raise
    except BaseException:
        log(f"server log (tail):\n{server.log()}")
        raise
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", help="where to save the overview's screenshot")
    parser.add_argument("--server-bin", help="the tandem-server binary")
    parser.add_argument("--cli-bin", help="the tandem binary")
    args = parser.parse_args()
    if args.screenshot:
        args.screenshot = str(Path(args.screenshot).resolve())
    with tempfile.TemporaryDirectory(prefix="tandem-console-test-") as workdir:
        run(args, Path(workdir))
    log("passed")


if __name__ == "__main__":
    main()
