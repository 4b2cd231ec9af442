"""The production profile, started as docs/deploy.md says, from a clean copy of the repository:
`scripts/install`, `manage.py release`, `createsuperuser`, `zoom_connect`, then the web, worker
and beat processes with the very command lines of deploy/systemd/*.service, with DEBUG unset (so
off), on PostgreSQL and Redis, against the Zoom sandbox. Chromium then finds the pages styled,
htmx loaded, an End that succeeds, and /healthz answering 200.

It needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL): it fails without them, it does not skip;
`make test` deselects it in the embedded profile and says so (CI runs it in the service profile).
It uses a database and a Redis db of its own, emptied first: PRODUCTION_DATABASE_URL (default:
DATABASE_URL's server, database `<name>_production`) and PRODUCTION_REDIS_URL (default:
REDIS_URL's server, db 1).
"""

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from playwright.sync_api import expect

from .conftest import JOB_TIMEOUT_MS, LAPTOP

ROOT = Path(__file__).resolve().parent.parent.parent
UNITS = ROOT / "deploy" / "systemd"
# The paths the units are written for (docs/deploy.md, "On hosts with systemd").
UNIT_CHECKOUT = "/opt/zoomadmin"
UNIT_STATE = "/var/lib/zoomadmin"
# What a clean clone does not hold: a developer's virtualenv, state, collected files, caches.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "var", "staticfiles", "__pycache__", "*.egg-info", ".*_cache"
)
START_TIMEOUT = 120  # gunicorn, a worker and beat cold-starting on a loaded 2-core machine
INSTALL_TIMEOUT = 600  # a fresh virtualenv from pip's cache; longer on a cold cache

pytestmark = [pytest.mark.browser, pytest.mark.production]


def exec_start(unit, checkout, state):
    """The unit's ExecStart as argv, for this checkout and state directory."""
    text = (UNITS / unit).read_text()
    (line,) = re.findall(r"^ExecStart=(.+)$", text, flags=re.MULTILINE)
    line = line.replace(UNIT_CHECKOUT, str(checkout)).replace(UNIT_STATE, str(state))
    return shlex.split(line)


def production_urls():
    database, redis = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database.startswith("postgres") or not redis.startswith("redis"):
        pytest.fail(
            "The production profile needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL "
            "(make test deselects this test without them)",
            pytrace=False,
        )
    if os.environ.get("PRODUCTION_DATABASE_URL"):
        database = os.environ["PRODUCTION_DATABASE_URL"]
    else:
        parts = urlsplit(database)
        database = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_production"))
    if os.environ.get("PRODUCTION_REDIS_URL"):
        redis = os.environ["PRODUCTION_REDIS_URL"]
    else:
        redis = urlunsplit(urlsplit(redis)._replace(path="/1"))
    return database, redis


def empty_database(url):
    """Drop and create the production test's own database: the release starts from nothing."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=10) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')


class Processes:
    """The deployment's processes, each in a session of its own, logs in the state directory."""

    def __init__(self, checkout, state, env):
        self.checkout, self.state, self.env = checkout, state, env
        self.running = {}

    def run(self, *argv, timeout=300, env=None):
        result = subprocess.run(
            argv,
            cwd=self.checkout,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, name, argv):
        log = open(self.state / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it
        with log:
            self.running[name] = subprocess.Popen(
                argv,
                cwd=self.checkout,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self, name):
        return (self.state / f"{name}.log").read_text(errors="replace")

    def assert_running(self):
        for name, process in self.running.items():
            assert process.poll() is None, f"{name} stopped:\n{self.log(name)[-3000:]}"

    def stop(self):
        """SIGTERM each (systemd's KillSignal), SIGKILL what outlives 30 s: {name: exit code}."""
        for process in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        codes = {}
        for name, process in self.running.items():
            try:
                codes[name] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                codes[name] = process.wait(timeout=10)
        self.running = {}
        return codes


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def production(tmp_path, zoom_sandbox, request):
    """The production profile, released and running: (url, Processes, admin password)."""
    from cryptography.fernet import Fernet

    from meetings.zoom.sandbox import (
        DEFAULT_ACCOUNT_ID,
        DEFAULT_S2S_CLIENT_ID,
        DEFAULT_S2S_CLIENT_SECRET,
    )

    database_url, redis_url = production_urls()
    empty_database(database_url)
    import redis

    redis.Redis.from_url(redis_url).flushdb()

    # a clean copy of the repository, and the state directory its units name
    checkout, state = tmp_path / "zoomadmin", tmp_path / "state"
    shutil.copytree(ROOT, checkout, ignore=NOT_IN_A_CLONE, symlinks=True)
    state.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    webhook_secret = secrets.token_urlsafe(24)
    # The environment file of docs/deploy.md; DEBUG is not set at all (off by default).
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ZOOM_WEBHOOK_SECRET_TOKEN": webhook_secret,
        "ZOOM_API_BASE_URL": zoom_sandbox.api_url,
        "ZOOM_OAUTH_BASE_URL": zoom_sandbox.oauth_url,
        "ZOOMADMIN_VAR_DIR": str(state),
        # No proxy in front here, so no TLS: the guide's "trying it on one machine".
        "USE_TLS": "false",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "PYTHONUNBUFFERED": "1",
    }
    processes = Processes(checkout, state, env)
    request.addfinalizer(processes.stop)

    # the guide's commands, in its order
    processes.run(
        "scripts/install",
        env={"VENV": str(checkout / ".venv"), "EXTRAS": "", "PYTHON": "python3"},
        timeout=INSTALL_TIMEOUT,
    )
    python = str(checkout / ".venv" / "bin" / "python")
    released = processes.run(python, "manage.py", "release")
    assert "Released: start the new web and worker processes." in released
    password = secrets.token_urlsafe(16)
    processes.run(
        python,
        "manage.py",
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@example.com",
        env={"DJANGO_SUPERUSER_PASSWORD": password},
    )
    processes.run(
        python,
        "manage.py",
        "zoom_connect",
        "--server-to-server",
        "--name",
        "Sandbox",
        env={
            "ZOOM_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
            "ZOOM_CLIENT_ID": DEFAULT_S2S_CLIENT_ID,
            "ZOOM_CLIENT_SECRET": DEFAULT_S2S_CLIENT_SECRET,
        },
    )
    zoom_sandbox.state.set_webhook(f"{url}/webhooks/zoom/", secret=webhook_secret)
    for name in ("web", "worker", "beat"):
        processes.start(name, exec_start(f"zoomadmin-{name}.service", checkout, state))

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        processes.assert_running()
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        assert time.monotonic() < deadline, "not healthy in time:\n" + "\n".join(
            f"--- {n}\n{processes.log(n)[-2000:]}" for n in processes.running
        )
        time.sleep(0.5)
    return url, processes, password


def meeting_pk(database_url, zoom_id):
    import psycopg

    with psycopg.connect(database_url, connect_timeout=10) as db:
        (pk,) = db.execute(
            "SELECT id FROM meetings_meeting WHERE zoom_id = %s", [zoom_id]
        ).fetchone()
        return pk


def test_the_production_profile_serves_a_styled_dashboard_whose_end_works(
    production, zoom_sandbox, browser, screenshot
):
    url, processes, password = production
    # given a meeting scheduled in Zoom, which the guide's first sync brings into the mirror, and
    # which its host then starts: Zoom's meeting.started webhook says so (on Pro no list does)
    host = zoom_sandbox.state.add_user(email="host@sandbox.example", first_name="Hana")
    zoom_meeting = zoom_sandbox.state.add_meeting(host["id"], "Board call")
    synced = processes.run(
        str(processes.checkout / ".venv/bin/python"), "manage.py", "zoom_sync", "--user", "admin"
    )
    assert "Sandbox: syncing" in synced, synced
    pk = meeting_pk(processes.env["DATABASE_URL"], zoom_meeting["id"])
    zoom_sandbox.state.start_meeting(zoom_meeting["id"])

    context = browser.new_context(viewport=LAPTOP, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    try:
        # when the administrator signs in
        page.goto(f"{url}/accounts/login/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        # production asks an admin to set up a second factor first (MFA_REQUIRED_ROLES' default)
        page.wait_for_url(f"{url}/accounts/2fa/totp/activate/")
        secret = page.locator("#authenticator_secret").input_value()
        page.get_by_label("Authenticator code").fill(
            format_hotp_value(hotp_value(secret, int(time.time()) // 30))
        )
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(lambda u: "/accounts/2fa/" in u and "activate" not in u)
        page.goto(f"{url}/")
        page.wait_for_url(f"{url}/")

        # then the page is styled by the collected, hashed stylesheet and htmx is loaded
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(246, 247, 249)"
        assert page.evaluate("typeof window.htmx") == "object"
        stylesheet = page.locator("link[rel=stylesheet]").get_attribute("href")
        assert re.fullmatch(r"/static/meetings/app\.[0-9a-f]{12}\.css", stylesheet)
        screenshot(page, "1-overview")

        # and the static files are served compressed, cached for a year
        for path in (
            stylesheet,
            page.locator("script[src*='htmx']").get_attribute("src"),
            page.locator("script[src*='meetings/app']").get_attribute("src"),
        ):
            response = requests.get(f"{url}{path}", headers={"Accept-Encoding": "gzip"}, timeout=10)
            assert response.status_code == 200, path
            assert response.headers["Content-Encoding"] == "gzip", path
            assert "max-age=315360000" in response.headers["Cache-Control"], path
            assert "immutable" in response.headers["Cache-Control"], path

        # when they end the live meeting
        page.goto(f"{url}/meetings/{pk}/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Board call")
        controls = page.locator("#controls")
        # the webhook went through the web process and a worker; the open page follows it
        expect(controls.locator("#meeting-status")).to_have_text("Live", timeout=JOB_TIMEOUT_MS)
        page.get_by_role("link", name="End meeting…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Board call")
        screenshot(page, "2-confirm")
        dialog.get_by_role("button", name="End meeting").click()

        # then the worker ends it in Zoom, and the page shows it
        expect(controls.locator(".job")).to_contain_text("Succeeded", timeout=JOB_TIMEOUT_MS)
        expect(controls.locator("#meeting-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS)
        screenshot(page, "3-ended")
    finally:
        context.close()

    assert zoom_sandbox.state.meetings[zoom_meeting["id"]]["status"] != "started"
    assert not errors, errors
    assert not failed, failed
    health = requests.get(f"{url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    assert set(health.json()["checks"]) >= {"database", "broker", "worker"}
    processes.assert_running()
    assert "beat: Starting" in processes.log("beat")
    # and each process stops cleanly when told to (a deploy, a host shutting down)
    assert processes.stop() == {"web": 0, "worker": 0, "beat": 0}
