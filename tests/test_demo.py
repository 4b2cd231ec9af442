"""`make demo` (`manage.py demo`) on a fresh state directory: everything comes up, the printed
credentials sign in, the synced sandbox shows, and Ctrl-C stops every process it started."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
# A status badge in a list (the status filter's options read the same words).
BADGE = r'class="badge [^"]*"[^>]*>'
START_TIMEOUT = 240  # migrate + sync + three PBKDF2 passwords + worker start on a busy 2-core box


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with(marker):
    """PIDs of live processes whose environment contains MARKER (our temporary VAR dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:  # zombies are already gone
                    found.append(int(entry.name))
    return found


def test_demo_starts_everything_signs_in_and_ctrl_c_stops_it_all(tmp_path):
    var_dir = str(tmp_path / "var")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "ZOOM_", "DJANGO_", "PYTEST_"))
    }
    # The embedded profile in a directory of its own: the demo's database, broker and logs.
    env.update(ZOOMADMIN_VAR_DIR=var_dir, PYTHONUNBUFFERED="1", DEBUG="true")
    port, sandbox_port = free_port(), free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "demo",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
            "--latency-ms",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    reader = threading.Thread(target=lambda: output.extend(iter(demo.stdout.readline, "")))
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Press Ctrl-C" not in "".join(output):
            assert demo.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "demo not up in time:\n" + "".join(output)
            time.sleep(0.2)
        text = "".join(output)
        assert f"zoomadmin is running: http://127.0.0.1:{port}/" in text
        passwords = dict(re.findall(r"^\s+(admin|operator|viewer)\s+(\S+)$", text, re.M))
        assert set(passwords) == {"admin", "operator", "viewer"}
        assert f"Sign in at http://127.0.0.1:{port}/accounts/login/" in text
        assert "no second factor is asked for in the demo" in text

        # the printed operator password signs in, and the synced sandbox is there
        base = f"http://127.0.0.1:{port}"
        with requests.Session() as browser:
            login = browser.get(f"{base}/accounts/login/", timeout=10)
            assert login.status_code == 200
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
            overview = browser.post(
                f"{base}/accounts/login/",
                data={
                    "username": "operator",
                    "password": passwords["operator"],
                    "csrfmiddlewaretoken": token,
                },
                headers={"Referer": f"{base}/accounts/login/"},
                timeout=10,
            )
            assert overview.url == f"{base}/"
            assert "Sandbox (demo)" in overview.text
            assert "Live now" in overview.text
            meetings = browser.get(f"{base}/meetings/", timeout=10)
            assert re.search(r"\d+ meetings", meetings.text)

            # the demo's scheduled stream stop, trigger and policy preview (issue 16)
            stop = re.search(r"a stream stop at \S+ UTC: (/meetings/\d+/)", text)
            assert stop, text[-1500:]
            page = browser.get(f"{base}{stop.group(1)}", timeout=10).text
            assert "Stop the live stream" in page and "schedules-waiting" in page
            trigger = re.search(r"stream with “Demo stage”: (/meetings/\d+/)", text)
            assert trigger, text[-1500:]
            page = browser.get(f"{base}{trigger.group(1)}", timeout=10).text
            assert "its live stream starts with “Demo stage”" in page
            policies = re.search(r"with their preview: (/connections/\d+/policies/)", text)
            page = browser.get(f"{base}{policies.group(1)}", timeout=10).text
            assert "Preview: what it would do now" in page and "End it" in page

            # the operator is subscribed to notifications, by e-mail (seed_demo)
            page = browser.get(f"{base}/notifications/", timeout=10).text
            assert "E-mail to operator@demo.example" in page
            assert "An action failed" in page
            # and its test message is sent: with no mail server, into the worker's log
            subscription = re.search(r'id="subscription-(\d+)"', page).group(1)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
            browser.post(
                f"{base}/notifications/{subscription}/test/",
                data={"csrfmiddlewaretoken": token},
                headers={"Referer": f"{base}/notifications/"},
                timeout=10,
            )
            deadline = time.monotonic() + 30
            while ">Sent<" not in browser.get(f"{base}/notifications/", timeout=10).text:
                assert time.monotonic() < deadline, "the demo's test e-mail was not sent"
                time.sleep(0.5)
            worker_log = Path(var_dir, "demo", "logs", "worker.log").read_text()
            assert "To: operator@demo.example" in worker_log

            # Every action has something to try on: what the seed made live shows live, though
            # Zoom's lists cannot say so (the sandbox announced it through its webhooks).
            def shown(path, params, pattern):
                page = browser.get(f"{base}{path}", params=params, timeout=10).text
                return len(re.findall(pattern, page))

            deadline = time.monotonic() + 30
            while True:
                seen = {
                    "live webinars": shown("/webinars/", {"status": "started"}, BADGE + r"Live<"),
                    "streams": shown("/meetings/", {"status": "started"}, BADGE + r"Streaming<"),
                    "deleted": shown("/meetings/", {"status": "deleted"}, BADGE + r"Deleted<"),
                    "ended": shown("/meetings/", {"status": "ended"}, BADGE + r"Ended<"),
                }
                if seen["live webinars"] >= 2 and all(seen.values()):
                    break
                assert time.monotonic() < deadline, f"the demo's world is not all shown: {seen}"
                time.sleep(0.5)
            assert "Webinars live" in browser.get(f"{base}/", timeout=10).text

            # Production-like: the real 404 page (never Django's debug page), with the CSP.
            missing = browser.get(f"{base}/no/such/page/", timeout=10)
            assert missing.status_code == 404
            assert "Not found" in missing.text and "URLconf" not in missing.text
            assert "default-src 'self'" in missing.headers["Content-Security-Policy"]

            # The sandbox's webhooks reach the dashboard: a meeting ended "in Zoom" shows ended.
            sandbox = f"http://127.0.0.1:{sandbox_port}/_sandbox"
            live = requests.get(f"{sandbox}/meetings?status=started&limit=1", timeout=10).json()
            zoom_id = live["meetings"][0]["id"]
            requests.post(f"{sandbox}/meetings/{zoom_id}/end", timeout=10).raise_for_status()
            deadline = time.monotonic() + 30
            while True:
                row = browser.get(f"{base}/meetings/", params={"q": zoom_id}, timeout=10).text
                if ">Ended<" in row:
                    break
                assert time.monotonic() < deadline, "the meeting.ended webhook did not arrive"
                time.sleep(0.5)
        assert len(processes_with(var_dir)) >= 5  # demo, sandbox, web, worker (+ pool), beat
    finally:
        # Ctrl-C: the terminal sends SIGINT to the demo's process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
            output.append("\n(the demo did not stop within 60 s of Ctrl-C)")
        reader.join(timeout=10)
        rest = "".join(output)
        deadline = time.monotonic() + 10
        left = processes_with(var_dir)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = processes_with(var_dir)
        for pid in left:  # never leave strays behind, even when the test fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert "Stopped: " in rest, rest
    assert demo.returncode == 0, rest
    assert left == [], f"processes left running after Ctrl-C: {left}"


def test_a_demo_killed_two_seconds_after_sigterm_leaves_no_process_behind(tmp_path):
    # As a supervisor stops a service (or a closing terminal): SIGTERM, then SIGKILL two seconds
    # later, to the demo alone. Its Celery worker, already in its warm shutdown, used to stay
    # running, orphaned.
    var_dir = str(tmp_path / "var")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "ZOOM_", "DJANGO_", "PYTEST_"))
    }
    env.update(ZOOMADMIN_VAR_DIR=var_dir, PYTHONUNBUFFERED="1", DEBUG="true")
    demo = subprocess.Popen(
        [
            sys.executable,
            *("manage.py", "demo", "--latency-ms", "0"),
            *("--port", str(free_port()), "--sandbox-port", str(free_port())),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    reader = threading.Thread(target=lambda: output.extend(iter(demo.stdout.readline, "")))
    reader.start()
    left = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Press Ctrl-C" not in "".join(output):
            assert demo.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "demo not up in time:\n" + "".join(output)
            time.sleep(0.2)
        started = processes_with(var_dir)
        assert len(started) >= 6  # demo, watcher, sandbox, web, worker (+ pool), beat

        # when it is stopped as a supervisor stops it
        demo.send_signal(signal.SIGTERM)
        time.sleep(2)
        demo.kill()
        demo.wait(timeout=10)

        # then every process it started is gone within a few seconds, the worker too
        deadline = time.monotonic() + 20
        left = processes_with(var_dir)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = processes_with(var_dir)
    finally:
        for pid in processes_with(var_dir):  # never leave strays behind, even when failing
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        reader.join(timeout=10)
    assert left == [], f"processes left running after SIGTERM and SIGKILL: {left}"
