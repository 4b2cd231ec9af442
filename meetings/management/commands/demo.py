"""`manage.py demo` (what `make demo` runs): the whole dashboard on one machine, one command.

Migrates, starts the Zoom sandbox (seeded: users, ~200 meetings, some live with live streams,
webinars, past instances) with its webhooks pointed at the dashboard, connects the sandbox's
account (Server-to-Server), syncs it, creates the demo users (passwords printed), then runs
the web server, a Celery worker and Celery beat, has the sandbox send the webhooks that say
what no sync can learn (webinars live, live streams running, meetings deleted or just ended),
and prints the URL. Ctrl-C (or SIGTERM) stops everything it started.

The dashboard runs as it would in production (DEBUG off: the real error pages, never Django's
debug pages; the Content-Security-Policy; JSON logs), in a state directory of its own
(var/demo/: database, broker, logs) with secrets generated on the first run and kept in
var/demo/secrets.env, so tokens stored by one run are readable by the next. Only TLS is off
(it serves http://127.0.0.1). With DATABASE_URL / REDIS_URL set it uses those servers instead.

Each child runs in a session (process group) of its own, so the terminal's Ctrl-C reaches only
this command, which then stops the children in order: SIGTERM to each whole group, SIGKILL to
what is left after a grace period. If this process dies before it has finished (a supervisor's
SIGTERM then SIGKILL two seconds later, a terminal closing), a watcher cleans up: a small process
in a session of its own that holds a pipe from this one, learns each child's group through it,
and on the pipe's end (however this process ended) sends each group SIGTERM, then SIGKILL after
WATCH_GRACE_SECONDS. The parent-death signal alone was not enough: a Celery worker already in
its warm shutdown took the second SIGTERM and then waited forever, orphaned, after its pool was
gone. Children's output goes to var/demo/<name>.log; the tail is printed if one of them stops
unexpectedly.
"""

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...zoom import sandbox as sbx

# The sandbox account's plan in the demo (the sandbox's own default is Pro, the stricter one).
DEMO_PLAN = "business"

STOP_GRACE_SECONDS = 10  # a worker finishing its current Zoom call, gunicorn its requests
READY_TIMEOUT_SECONDS = 90  # cold starts on a busy 2-core machine take a while; fail clearly
# After the demo died unannounced, how long its children get to stop before SIGKILL: short, as
# whatever killed it wants everything gone (a supervisor waits about that long itself).
WATCH_GRACE_SECONDS = 3

# The watcher (see the module docstring): one process group id a line on stdin; at end of input,
# SIGTERM to each group still there, SIGKILL to any left after the grace period.
WATCHER = """
import os, signal, sys, time
grace = float(sys.argv[1])
groups = [int(line) for line in sys.stdin if line.strip().isdigit()]
def send(group, signum):
    try:
        os.killpg(group, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False
groups = [g for g in groups if send(g, signal.SIGTERM)]
deadline = time.monotonic() + grace
while groups and time.monotonic() < deadline:
    time.sleep(0.1)
    groups = [g for g in groups if send(g, 0)]
for group in groups:
    send(group, signal.SIGKILL)
"""


def _die_with_parent():
    """In the child, before exec: get SIGTERM when the demo process dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _port_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _demo_secrets(path):
    """The demo's SECRET_KEY, FIELD_ENCRYPTION_KEY and webhook secret: made once, then reused."""
    from cryptography.fernet import Fernet

    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name and value:
                values[name.strip()] = value.strip()
    wanted = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEY": lambda: Fernet.generate_key().decode(),
        "ZOOM_WEBHOOK_SECRET_TOKEN": lambda: secrets.token_urlsafe(32),
    }
    if any(name not in values for name in wanted):
        for name, make in wanted.items():
            values.setdefault(name, make())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{name}={value}\n" for name, value in values.items()))
    return {name: values[name] for name in wanted}


def _get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own URL
        return response.status


class Child:
    def __init__(self, name, command, env, log_dir):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it; closed below
        try:
            self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command,
                cwd=settings.BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # the demo starts no threads: safe before exec
            )
        finally:
            log.close()

    def running(self):
        return self.popen.poll() is None

    def tail(self, lines=30):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal_group(self, signum):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


class Command(BaseCommand):
    help = (
        "Run the whole dashboard against the Zoom sandbox (migrate, seed, serve). Ctrl-C stops it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to serve on (default: %(default)s)"
        )
        parser.add_argument(
            "--port", type=int, default=8000, help="the dashboard's port (default: %(default)s)"
        )
        parser.add_argument(
            "--sandbox-port",
            type=int,
            default=8100,
            help="the Zoom sandbox's port (default: %(default)s)",
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="the sandbox's data seed (default: %(default)s)"
        )
        parser.add_argument(
            "--latency-ms",
            type=float,
            default=50,
            help="the sandbox's delay per request, in ms (default: %(default)s)",
        )

    def handle(self, *args, host, port, sandbox_port, seed, latency_ms, **options):
        if not settings.DEBUG:
            # DEBUG off here means a production environment: the demo resets the passwords of
            # users called admin/operator/viewer, which has no place there.
            raise CommandError("The demo is for development machines: run it with DEBUG on.")
        for what, number in (("dashboard", port), ("sandbox", sandbox_port)):
            if not _port_free(host, number):
                raise CommandError(
                    f"Port {number} ({what}) is in use: stop what uses it, or pass "
                    f"--{'port' if what == 'dashboard' else 'sandbox-port'} N."
                )
        self.base_url = f"http://{host}:{port}"
        self.sandbox_url = f"http://{host}:{sandbox_port}"
        state_dir = Path(settings.VAR_DIR) / "demo"
        self.log_dir = state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            **_demo_secrets(state_dir / "secrets.env"),
            "ZOOMADMIN_VAR_DIR": str(state_dir),
            "STATIC_ROOT": str(state_dir / "static"),
            "DEBUG": "false",
            "USE_TLS": "false",  # served on http://127.0.0.1; everything else as in production
            "ALLOWED_HOSTS": f"{host},localhost,127.0.0.1",
            "LOG_FORMAT": "text",
            "ZOOM_SANDBOX": "true",  # the connections screen may use the sandbox's OAuth app
            "ZOOM_API_BASE_URL": f"{self.sandbox_url}/v2",
            "ZOOM_OAUTH_BASE_URL": self.sandbox_url,
            "PYTHONUNBUFFERED": "1",
            # The dashboard runs with DEBUG off, where admins and operators must set up a second
            # factor before anything else; the demo's users sign in with their password alone
            # unless the caller asks for it (MFA_REQUIRED_ROLES=admin,operator make demo).
            "MFA_REQUIRED_ROLES": os.environ.get("MFA_REQUIRED_ROLES", "none"),
            # No mail server on a newcomer's machine: the notifications' e-mails are written to
            # the worker's log, unless the caller names a server (EMAIL_HOST) or a backend.
            "EMAIL_BACKEND": os.environ.get("EMAIL_BACKEND")
            or (
                "django.core.mail.backends.smtp.EmailBackend"
                if os.environ.get("EMAIL_HOST")
                else "django.core.mail.backends.console.EmailBackend"
            ),
        }
        self.children = []
        self.watcher = subprocess.Popen(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", WATCHER, str(WATCH_GRACE_SECONDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the group a terminal or a supervisor signals
        )
        previous = signal.signal(signal.SIGTERM, self._terminated)
        try:
            self._start(seed, latency_ms)
            self._watch()
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            self._stop_all()
            # Everything stopped: the watcher finds no group left and ends at once.
            with contextlib.suppress(OSError):
                self.watcher.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watcher.wait(timeout=WATCH_GRACE_SECONDS + 5)
            signal.signal(signal.SIGTERM, previous)

    def _terminated(self, signum, frame):
        raise KeyboardInterrupt

    # --- starting ---------------------------------------------------------------------------

    def _how_to_sign_in(self):
        roles = self.env["MFA_REQUIRED_ROLES"]
        if roles == "none":
            second = (
                "no second factor is asked for in the demo (MFA_REQUIRED_ROLES=admin,operator "
                "make demo asks it of those roles)"
            )
        else:
            second = (
                f"roles {roles} set up an authenticator app (TOTP) at their first sign-in, then "
                "give its code at each sign-in"
            )
        return (
            f"Sign in at {self.base_url}/accounts/login/ with a username and password above; "
            f"{second}. Your second factor and open sessions: {self.base_url}/accounts/2fa/."
        )

    def _step(self, text):
        self.stdout.write(self.style.MIGRATE_HEADING(f"== {text}"))

    def _manage(self, *args, name):
        """Run a management command in a child process with the demo's environment."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,  # a sync of the seeded sandbox takes seconds; this only stops a hang
            preexec_fn=_die_with_parent,
        )
        if result.returncode != 0:
            raise CommandError(f"{name} failed:\n{result.stdout}{result.stderr}".strip())
        return result.stdout.strip()

    def _spawn(self, name, *command):
        child = Child(name, [sys.executable, *command], self.env, self.log_dir)
        self.children.append(child)
        with contextlib.suppress(OSError):
            # Its group id is its pid (a session of its own): the watcher's to clean up.
            self.watcher.stdin.write(f"{child.popen.pid}\n".encode())
            self.watcher.stdin.flush()
        return child

    def _wait_for(self, child, what, check):
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not child.running():
                raise CommandError(f"The {child.name} stopped while starting:\n{child.tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                if check():
                    return
            time.sleep(0.2)
        raise CommandError(f"The {child.name} did not become ready ({what}):\n{child.tail()}")

    def _start(self, seed, latency_ms):
        self._step("Migrating the database, collecting the static files")
        self._manage("migrate", "--noinput", "-v0", name="Migrating")
        self._manage("collectstatic", "--noinput", "-v0", name="Collecting the static files")

        self._step(f"Starting the Zoom sandbox on {self.sandbox_url} (seed {seed})")
        sandbox = self._spawn(
            "sandbox",
            "manage.py",
            "zoom_sandbox",
            "--port",
            str(self.sandbox_url.rsplit(":", 1)[1]),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
            # Business: the plan whose Dashboard lists every live meeting, instant and PMI ones
            # included, so the demo shows them live; the tests try Pro (no live list) apart.
            "--plan",
            DEMO_PLAN,
            "--webhook-url",
            f"{self.base_url}/webhooks/zoom/",
        )
        self._wait_for(sandbox, self.sandbox_url, lambda: _get(f"{self.sandbox_url}/_sandbox/"))

        self._step("Connecting the sandbox's account (Server-to-Server)")
        connect_env = {
            "ZOOM_ACCOUNT_ID": sbx.DEFAULT_ACCOUNT_ID,
            "ZOOM_CLIENT_ID": sbx.DEFAULT_S2S_CLIENT_ID,
            # Through the environment, not argv: other users of the machine can read argv.
            "ZOOM_CLIENT_SECRET": sbx.DEFAULT_S2S_CLIENT_SECRET,
        }
        saved = self.env
        self.env = {**saved, **connect_env}
        try:
            self.stdout.write(
                self._manage(
                    "zoom_connect",
                    "--server-to-server",
                    "--name",
                    "Sandbox (demo)",
                    "--plan",
                    DEMO_PLAN,
                    name="Connecting",
                )
            )
        finally:
            self.env = saved

        self._step("Syncing its users, meetings and webinars")
        self.stdout.write(self._manage("zoom_sync", "--account", "Sandbox (demo)", name="Sync"))

        self._step("Creating the demo users")
        users = self._manage("seed_demo", "--force", name="Creating the demo users")

        self._step(f"Starting the web server, a Celery worker and beat (logs: {self.log_dir})")
        # The web process of a deployment (docs/deploy.md), static files served by WhiteNoise.
        web = self._spawn(
            "web",
            "-m",
            "gunicorn",
            "--config",
            "deploy/gunicorn.conf.py",
            "--bind",
            self.base_url.split("//", 1)[1],
            "--workers",
            "2",
        )
        worker = self._spawn(
            "worker",
            "-m",
            "celery",
            "-A",
            "zoomadmin",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
        )
        self._spawn(
            "beat",
            "-m",
            "celery",
            "-A",
            "zoomadmin",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(self.log_dir.parent / "celerybeat-schedule"),
        )
        self._wait_for(web, self.base_url, lambda: _get(f"{self.base_url}/accounts/login/"))
        self._wait_for(worker, "worker ready", lambda: " ready." in worker.tail(200))

        self._step("Telling the dashboard what only Zoom's webhooks say (the sandbox announces)")
        self._announce(sandbox)

        # After the events: the streams running are known only from them.
        self._step("Scheduling a stream stop, a trigger and the policies (with their preview)")
        automatic = self._manage(
            "seed_automation", "--account", "Sandbox (demo)", "--force", name="Automation"
        )

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"zoomadmin is running: {self.base_url}/"))
        self.stdout.write(users)
        self.stdout.write(automatic)
        self.stdout.write(self._how_to_sign_in())
        self.stdout.write(f"Zoom sandbox: {self.sandbox_url}/_sandbox/ (its control API)")
        self.stdout.write("Press Ctrl-C to stop everything.")
        self.stdout.flush()

    def _announce(self, sandbox):
        """Have the sandbox send the events of its world (webinars live, streams running,
        meetings deleted or just ended) to the dashboard, now that it and its worker are up:
        the sync cannot learn these from Zoom's lists. Waits until they are delivered."""
        control = f"{self.sandbox_url}/_sandbox"

        def counters():
            with urllib.request.urlopen(f"{control}/counters", timeout=5) as response:  # noqa: S310
                data = json.load(response)
            return data.get("webhooks_delivered", 0) + data.get("webhooks_failed", 0)

        before = counters()
        request = urllib.request.Request(  # noqa: S310 - our own sandbox's http URL
            f"{control}/announce", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            sent = json.load(response)["sent"]
        total = sum(sent.values())
        self._wait_for(sandbox, f"{total} events delivered", lambda: counters() >= before + total)
        self.stdout.write(", ".join(f"{n} {event}" for event, n in sorted(sent.items())))

    # --- running and stopping ---------------------------------------------------------------

    def _watch(self):
        while True:
            for child in self.children:
                if not child.running():
                    raise CommandError(
                        f"The {child.name} stopped (exit code {child.popen.returncode}); "
                        f"stopping the rest. Its last lines:\n{child.tail()}"
                    )
            time.sleep(0.5)

    def _stop_all(self):
        # The web server first (no new clicks), then beat and the worker (which finishes the
        # Zoom call it is in), the sandbox last (the worker may still be talking to it).
        order = {"web": 0, "beat": 1, "worker": 2, "sandbox": 3}
        children = sorted(self.children, key=lambda c: order.get(c.name, 9))
        for child in children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.children:
            # Whatever is left of each group (a pool process, a stuck thread) goes now.
            child.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=5)
        if self.children:
            self.stdout.write("Stopped: " + ", ".join(c.name for c in self.children) + ".")
