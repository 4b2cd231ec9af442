"""
What every benchmark shares: the profiles' environments, the processes a benchmark starts (and
always stops), the Zoom sandbox's control API, the database set-up, statistics and the result
table.

Processes are started in sessions of their own (so a Celery worker's pool children or gunicorn's
workers go with them) and their group ids are written to a pid file, so that the parent
(`python -m bench`) can still end them if a benchmark hangs and has to be killed.
"""

import contextlib
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
VAR = ROOT / "var" / "bench"

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"

# How long a process may take to come up on a busy 2-core machine (Django + Celery imports ~5 s).
READY_TIMEOUT = 90


class BenchError(Exception):
    """A benchmark could not be run (a process did not start, a deadline passed)."""


# --- Environments ---------------------------------------------------------------------------


def base_env(secrets, profile, *, database_url="", redis_url=""):
    """The environment of every Django process of a benchmark: production settings (DEBUG off),
    the run's random secrets, the profile's database and broker, quiet INFO logs."""
    var_dir = VAR / profile
    # The caller's environment, less what points at other databases, brokers or Zoom; the rate
    # limiter's and the pipeline's knobs pass through (ZOOM_RATE_LIMIT_HEADROOM=0.97 make bench).
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("ZOOM_RATE_LIMIT_")
        or not k.startswith(("DJANGO_", "ZOOM_", "DATABASE_URL", "REDIS_URL", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="zoomadmin.settings",
        DEBUG="false",
        USE_TLS="false",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        SECRET_KEY=secrets["SECRET_KEY"],
        FIELD_ENCRYPTION_KEY=secrets["FIELD_ENCRYPTION_KEY"],
        ZOOM_WEBHOOK_SECRET_TOKEN=secrets["ZOOM_WEBHOOK_SECRET_TOKEN"],
        ZOOMADMIN_VAR_DIR=str(var_dir),
        PROMETHEUS_MULTIPROC_DIR=str(var_dir / "prometheus"),
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
        # The benchmarks' operators sign in with a password alone (production would send them to
        # set up a second factor first: meetings/signin.py).
        MFA_REQUIRED_ROLES="none",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
    )
    return env


def new_secrets():
    """Fresh secrets for one run: nothing a benchmark writes can be read with a known key."""
    import secrets

    from cryptography.fernet import Fernet

    return {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ZOOM_WEBHOOK_SECRET_TOKEN": secrets.token_urlsafe(24),
    }


def database_name(url):
    return urlsplit(url).path.lstrip("/")


def check_bench_database(url):
    """The benchmarks empty the database they are given: refuse one not named for them."""
    name = database_name(url)
    if "bench" not in name and os.environ.get("BENCH_ALLOW_ANY_DATABASE") != "1":
        raise BenchError(
            f"the benchmarks empty their database; {name!r} is not named *bench* "
            "(set BENCH_ALLOW_ANY_DATABASE=1 if you really mean it)"
        )


def ensure_postgres_database(url):
    """Create the benchmark's PostgreSQL database if it does not exist."""
    import psycopg

    parts = urlsplit(url)
    name = database_name(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


# --- Processes ------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A process a benchmark started, in its own session, logging to var/bench/logs/."""

    registry = []
    pid_file = None

    def __init__(self, name, argv, env, *, log_dir):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        Process.registry.append(self)
        if Process.pid_file is not None:
            with open(Process.pid_file, "a") as f:
                f.write(f"{self.popen.pid}\n")

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern, timeout=READY_TIMEOUT):
        """The first match of PATTERN in the log, waiting for it; BenchError if the process
        exits or the deadline passes first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = regex.search(self.log())
            if match:
                return match
            if not self.alive():
                raise BenchError(f"{self.name} exited:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise BenchError(f"{self.name}: no {pattern!r} in {timeout} s:\n{self.log()[-3000:]}")

    def stop(self, timeout=15):
        """SIGTERM (a worker finishes its task, gunicorn its requests), then SIGKILL the group."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Pool children or workers that outlived their parent.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        if self in Process.registry:
            Process.registry.remove(self)

    @classmethod
    def stop_all(cls):
        for process in reversed(list(cls.registry)):
            process.stop()


def kill_groups_in(pid_file):
    """What the parent does when a benchmark had to be killed: end the process groups it
    recorded (each was started by the benchmark, in a session of its own)."""
    try:
        pids = [int(line) for line in Path(pid_file).read_text().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def manage(*args):
    return [PYTHON, "manage.py", *args]


# --- The Zoom sandbox -----------------------------------------------------------------------


class Sandbox:
    """`manage.py zoom_sandbox` as a process, driven through its control API (/_sandbox/)."""

    def __init__(self, ctx, *, latency_ms=0, seed=None, users=5, meetings=0, webinars=0):
        argv = manage(
            "zoom_sandbox",
            "--port",
            "0",
            "--latency-ms",
            str(latency_ms),
            "--users",
            str(users),
            "--meetings",
            str(meetings),
            "--webinars",
            str(webinars),
        )
        if seed is not None:
            argv += ["--seed", str(seed)]
        self.process = ctx.spawn("sandbox", argv)
        # The sandbox stands in for Zoom, which runs on other machines: its timestamps are what
        # the rate limit judges, so it should not queue for a CPU behind what it measures.
        # Raising a priority needs root (else the sandbox runs at the default priority).
        self.prioritised = False
        with contextlib.suppress(PermissionError, OSError):
            os.setpriority(os.PRIO_PROCESS, self.process.pid, -10)
            self.prioritised = True
        match = self.process.wait_for_log(r"listening on (http://[\d.]+:\d+)")
        self.url = match[1]
        self.api_url = self.url + "/v2"
        self.http = requests.Session()

    def control(self, method, path, body=None, **params):
        response = self.http.request(
            method, f"{self.url}/_sandbox/{path}", json=body, params=params or None, timeout=60
        )
        if response.status_code >= 400:
            raise BenchError(f"sandbox {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def reset(self, **body):
        return self.control("POST", "reset", body)

    def seed(self, **body):
        return self.control("POST", "seed", body)

    def set_rate_limit(self, label, per_second):
        return self.control("POST", "rate_limits", {"label": label, "per_second": per_second})

    def requests_since(self, seq=0):
        return self.control("GET", "requests", since=seq)["requests"]

    def last_seq(self):
        log = self.requests_since(0)
        return log[-1]["seq"] if log else 0

    def counters(self):
        return self.control("GET", "counters")

    def meetings(self, status=None, limit=100_000):
        params = {"limit": limit}
        if status:
            params["status"] = status
        return self.control("GET", "meetings", **params)["meetings"]

    def token(self):
        """A Server-to-Server access token for the sandbox's default account."""
        from meetings.zoom.sandbox import (
            DEFAULT_ACCOUNT_ID,
            DEFAULT_S2S_CLIENT_ID,
            DEFAULT_S2S_CLIENT_SECRET,
        )

        response = requests.post(
            f"{self.url}/oauth/token",
            params={"grant_type": "account_credentials", "account_id": DEFAULT_ACCOUNT_ID},
            auth=(DEFAULT_S2S_CLIENT_ID, DEFAULT_S2S_CLIENT_SECRET),
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]


# --- The run's context ----------------------------------------------------------------------


class Context:
    """What a benchmark's `run(ctx)` gets: its profile's environment, a place for logs, and
    helpers to start processes that are stopped when it ends."""

    def __init__(self, name, profile, env):
        self.name = name
        self.profile = profile
        self.env = dict(env)
        self.log_dir = VAR / "logs" / f"{name}-{profile}"
        self.sandbox = None

    def say(self, message):
        print(f"  [{self.name}/{self.profile}] {message}", file=sys.stderr, flush=True)

    def spawn(self, name, argv, env=None):
        return Process(name, argv, {**self.env, **(env or {})}, log_dir=self.log_dir)

    def start_sandbox(self, **kwargs):
        """Start the sandbox and point this process and every process started after at it."""
        from django.conf import settings

        self.sandbox = Sandbox(self, **kwargs)
        self.env.update(
            ZOOM_API_BASE_URL=self.sandbox.api_url, ZOOM_OAUTH_BASE_URL=self.sandbox.url
        )
        settings.ZOOM_API_BASE_URL = self.sandbox.api_url
        settings.ZOOM_OAUTH_BASE_URL = self.sandbox.url
        return self.sandbox

    def start_worker(self, name="w1", *, concurrency=2, pool="prefork", extra=(), env=None):
        """A `celery worker` process (no beat: nothing here needs the sweeper)."""
        argv = [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "zoomadmin",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "-Q",
            "celery",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
            "-n",
            f"bench-{name}@%h",
            *extra,
        ]
        worker = self.spawn(f"worker-{name}", argv, env)
        worker.wait_for_log(r" ready\.")
        return worker

    def start_gunicorn(self, *, workers=2):
        """gunicorn with WORKERS sync workers on a free loopback port; returns (process, url)."""
        port = free_port()
        argv = [
            str(BIN / "gunicorn"),
            "zoomadmin.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            # A request slower than this is a hang, not a figure.
            "--timeout",
            "30",
            "--graceful-timeout",
            "5",
        ]
        process = self.spawn("gunicorn", argv)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/accounts/login/", timeout=5).status_code == 200:
                    return process, url
            if not process.alive():
                raise BenchError(f"gunicorn exited:\n{process.log()[-3000:]}")
            time.sleep(0.2)
        raise BenchError(f"gunicorn not answering in {READY_TIMEOUT} s")


# --- Database -------------------------------------------------------------------------------


def prepare_database(profile):
    """An empty, migrated database for the profile; called after django.setup()."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    # flush truncates every table and runs post_migrate, which recreates the two roles.
    call_command("flush", verbosity=0, interactive=False)


def purge_broker():
    """An empty task queue (and, on Redis, no leftover rate-limiter state or unacked tasks)."""
    from django.conf import settings

    from zoomadmin.celery import app

    app.control.purge()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        try:
            stale = [
                *client.scan_iter("unacked*"),
                *client.scan_iter("zoomadmin:*"),
                *client.scan_iter("_kombu*"),
            ]
            if stale:
                client.delete(*stale)
        finally:
            client.close()


def reset_rate_limiter(account):
    from meetings.ratelimit import backend

    backend().reset(account.pk)


def sandbox_account(name="Sandbox (bench)"):
    """A connected Server-to-Server ZoomAccount for the sandbox's default account (Pro plan)."""
    from meetings.models import ZoomAccount
    from meetings.zoom.sandbox import (
        DEFAULT_ACCOUNT_ID,
        DEFAULT_S2S_CLIENT_ID,
        DEFAULT_S2S_CLIENT_SECRET,
    )

    return ZoomAccount.objects.create(
        name=name,
        kind=ZoomAccount.Kind.SERVER_TO_SERVER,
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=DEFAULT_S2S_CLIENT_ID,
        client_secret=DEFAULT_S2S_CLIENT_SECRET,
        scopes="meeting:read:admin meeting:write:admin webinar:read:admin "
        "webinar:write:admin user:read:admin",
    )


def mirror_live_meetings(sandbox, account):
    """Record the sandbox's live meetings live in the mirror, as their meeting.started events
    would: on the sandbox's Pro plan no list shows a meeting live (zoom/api#76), and the
    benchmarks run no webhook receiver. Returns the ids."""
    from meetings import mirror
    from meetings.models import MeetingStatus

    ids = []
    for meeting in sandbox.meetings(status="started"):
        mirror.record_meeting_status(
            account,
            meeting["id"],
            MeetingStatus.STARTED,
            uuid=meeting["uuid"],
            details={k: meeting[k] for k in ("host_id", "topic", "type")},
        )
        ids.append(meeting["id"])
    return ids


def make_user(username, *, role="operator", superuser=False):
    """A dashboard user in a role's group ("operator" or "viewer"), or a superuser."""
    from django.contrib.auth.models import Group, User

    from meetings.roles import OPERATORS, VIEWERS

    if superuser:
        return User.objects.create_superuser(username, f"{username}@bench.example", None)
    user = User.objects.create_user(username, f"{username}@bench.example", None)
    user.groups.add(Group.objects.get(name=OPERATORS if role == "operator" else VIEWERS))
    return user


def wait_until(condition, *, timeout, interval=0.1, what="condition"):
    """Poll CONDITION until it returns something truthy (returned), or BenchError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- Statistics -----------------------------------------------------------------------------


def median(values):
    return statistics.median(values) if values else float("nan")


def percentile(values, p):
    """The nearest-rank percentile (p in 0..100): a value that was measured, never interpolated."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds):
    return seconds * 1000.0


# --- Results --------------------------------------------------------------------------------


@dataclass
class Check:
    """A target of the issue and whether this run met it."""

    what: str
    value: str
    target: str
    ok: bool


@dataclass
class Result:
    name: str
    title: str
    profile: str = ""
    setup: str = ""
    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    ratios: list = field(default_factory=list)  # (what, value)
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    def check(self, what, value, target, ok):
        self.checks.append(Check(what, value, target, bool(ok)))

    def as_json(self):
        return asdict(self)

    @classmethod
    def from_json(cls, data):
        data = dict(data)
        data["checks"] = [Check(**c) for c in data.get("checks", [])]
        return cls(**data)


def fmt(value, digits=1):
    """A figure for the table: thousands separated, DIGITS decimals, '—' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def render(results):
    """The table `make bench` prints: one block per benchmark, then the targets."""
    lines = []
    for result in results:
        head = f"{result.title}"
        if result.profile:
            head += f"  [{result.profile} profile]"
        lines += ["", head, "=" * min(len(head), 100)]
        if result.setup:
            lines.append(result.setup)
        if result.error:
            lines.append(f"NOT MEASURED: {result.error}")
            continue
        if result.columns:
            table = [result.columns, *result.rows]
            widths = [max(len(str(row[i])) for row in table) for i in range(len(result.columns))]
            for n, row in enumerate(table):
                cells = [
                    str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i])
                    for i, cell in enumerate(row)
                ]
                lines.append("  " + "  ".join(cells))
                if n == 0:
                    lines.append("  " + "  ".join("-" * w for w in widths))
        for what, value in result.ratios:
            lines.append(f"  ratio: {what}: {value}")
        for check in result.checks:
            mark = "ok " if check.ok else "MISSED"
            lines.append(f"  [{mark}] {check.what}: {check.value} (target {check.target})")
        for note in result.notes:
            lines.append(f"  note: {note}")
        lines.append(f"  ({result.seconds:.0f} s)")
    checks = [c for r in results for c in r.checks]
    missed = [c for c in checks if not c.ok]
    failed = [r for r in results if r.error]
    lines += [
        "",
        f"Targets: {len(checks) - len(missed)} of {len(checks)} met"
        + (f"; missed: {', '.join(c.what for c in missed)}" if missed else "")
        + (f"; {len(failed)} benchmark(s) not measured" if failed else ""),
    ]
    return "\n".join(lines)


def machine_description():
    """One line about the machine, for the table's head and BENCHMARKS.md."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    load = ""
    with contextlib.suppress(OSError):
        load = f", load {os.getloadavg()[0]:.1f}"
    return f"{os.cpu_count()} CPUs ({cpu}){mem}{load}, Python {sys.version.split()[0]}"


def write_json(path, payload):
    Path(path).write_text(json.dumps(payload, indent=2, default=str))


# --- HTTP as a signed-in user ---------------------------------------------------------------


def signed_in_session(base_url, username, password):
    """A requests.Session signed in to the dashboard through its sign-in form, with the CSRF
    token ready for htmx-style POSTs (`session.headers["X-CSRFToken"]`)."""
    session = requests.Session()
    page = session.get(f"{base_url}/accounts/login/", timeout=30)
    page.raise_for_status()
    token = session.cookies["csrftoken"]
    answer = session.post(
        f"{base_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base_url}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise BenchError(f"signing in as {username} answered {answer.status_code}")
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session
