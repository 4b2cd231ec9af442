"""
Load: 50 concurrent simulated operators (bench/locustfile.py) for 60 s against gunicorn with 2
sync workers on PostgreSQL (and Redis), over a mirror of 100,000 meetings with jobs in progress.
Figures from locust: errors, and the response time's median and 99th percentile, overall and per
kind of request. `make load` runs it; `python -m bench load --users N --duration S` changes the
load.

Each operator has a signed-in session made beforehand (signing 50 people in through PBKDF2 at the
start of the minute would measure the password hasher, not the dashboard).
"""

import csv
import json
import sys
from types import SimpleNamespace

from .harness import BIN, BenchError, Result, fmt

TITLE = "Load: simulated operators browsing, opening meetings and polling jobs"
PROFILES = ("service",)
TIMEOUT = 300  # set-up and tear-down; the load's own duration is added (see `timeout`)


def timeout(options):
    return TIMEOUT + options.duration


MEETINGS = 100_000
QUEUED_JOBS = 60
FINISHED_JOBS = 300


def run(ctx, options):
    users, duration = options.users, options.duration
    if not (BIN / "locust").exists():
        raise BenchError("locust is not installed: `make load` installs it (the `load` extra)")
    data_file = ctx.log_dir / "load-data.json"
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    ctx.say(f"preparing {MEETINGS:,} meetings, {QUEUED_JOBS + FINISHED_JOBS} jobs, {users} users")
    data_file.write_text(json.dumps(prepare(users)))

    _, url = ctx.start_gunicorn(workers=2)
    prefix = ctx.log_dir / "locust"
    ctx.say(f"{users} operators for {duration} s")
    locust = ctx.spawn(
        "locust",
        [
            str(BIN / "locust"),
            "-f",
            "bench/locustfile.py",
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(max(users // 5, 1)),
            "--run-time",
            f"{duration}s",
            "--host",
            url,
            "--csv",
            str(prefix),
            "--only-summary",
            "--stop-timeout",
            "10",
            "--loglevel",
            "WARNING",
        ],
        env={"BENCH_LOAD_DATA": str(data_file)},
    )
    try:
        locust.popen.wait(timeout=duration + 120)
    except Exception as e:
        raise BenchError(f"locust did not finish: {e}") from e
    stats = read_stats(f"{prefix}_stats.csv")
    failures = read_failures(f"{prefix}_failures.csv")
    if "Aggregated" not in stats:
        raise BenchError(f"locust wrote no statistics:\n{locust.log()[-3000:]}")

    total = stats.pop("Aggregated")
    rows = [stat_row(name, s) for name, s in sorted(stats.items())]
    rows.append(stat_row("all requests", total))
    result = Result(
        "load",
        TITLE,
        setup=(
            f"{users} operators (locust, 1–3 s between clicks, job polls every 1 s) for "
            f"{duration} s; gunicorn 2 sync workers, PostgreSQL + Redis, {MEETINGS:,} meetings"
        ),
        columns=["request", "count", "errors", "req/s", "median ms", "p95 ms", "p99 ms", "max ms"],
        rows=rows,
    )
    errors = int(total["Failure Count"])
    result.check("errors", str(errors), "0", errors == 0)
    for failure in failures[:5]:
        result.notes.append(
            f"{failure['Occurrences']}× {failure['Method']} {failure['Name']}: {failure['Error']}"
        )
    result.notes.append(f"locust's CSV files: {prefix}_*.csv")
    print(locust.log()[-2000:], file=sys.stderr)
    return result


def stat_row(name, s):
    return [
        name,
        fmt(int(s["Request Count"])),
        fmt(int(s["Failure Count"])),
        fmt(float(s["Requests/s"])),
        fmt(float(s["50%"]), 0),
        fmt(float(s["95%"]), 0),
        fmt(float(s["99%"]), 0),
        fmt(float(s["Max Response Time"]), 0),
    ]


def read_stats(path):
    try:
        with open(path, newline="") as f:
            return {row["Name"]: row for row in csv.DictReader(f)}
    except OSError:
        return {}


def read_failures(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def prepare(users):
    """The world the operators browse, and what the locustfile needs to find its way in it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db.models import F
    from django.utils.timezone import now

    from meetings.actions import request_action
    from meetings.models import Action, ActionKind, Meeting
    from meetings.views.pagination import _encode

    from .data import seed_meetings
    from .harness import make_user, sandbox_account

    account = sandbox_account("Bench account")
    seed_meetings(account, MEETINGS)
    requester = make_user("bench-requester")
    live = list(
        Meeting.objects.filter(status="started").order_by("pk")[: QUEUED_JOBS + FINISHED_JOBS]
    )
    jobs = []
    for meeting in live:
        action, _ = request_action(
            account=account,
            kind=ActionKind.END_MEETING,
            source="dashboard",
            target_id=meeting.zoom_id,
            user=requester,
            enqueue=False,  # no worker: the queued ones stay queued, so their pages keep polling
        )
        jobs.append(action.pk)
    finished = jobs[QUEUED_JOBS:]
    Action.objects.filter(pk__in=finished).update(
        state="succeeded",
        started_at=now(),
        finished_at=now(),
        result_summary="Meeting ended (confirmed: Zoom no longer shows it in progress)",
    )

    sessions = []
    for n in range(users):
        user = make_user(f"bench-operator-{n:02d}")
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)

    order = [F("start_time").desc(), F("pk").desc()]
    rows = Meeting.objects.order_by(*order).values_list("start_time", "pk")
    cursors = []
    for depth in (50, 500, 5_000, 20_000, 50_000, 80_000, 99_000):
        start_time, pk = rows[depth - 1]
        cursors.append(_encode("start_time", SimpleNamespace(start_time=start_time, pk=pk)))
    meetings = list(Meeting.objects.order_by("?").values_list("pk", flat=True)[:2000])
    return {
        "sessions": sessions,
        "meetings": meetings,
        "cursors": cursors,
        "actions": jobs[:QUEUED_JOBS] + finished[:20],
    }
