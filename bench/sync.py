"""
3. A full sync of 100,000 meetings from the sandbox into PostgreSQL (`meetings.sync.sync_account`,
what the sync action runs, here called in this process with the account's real client and the
shared rate limiter), then a second sync with nothing changed at Zoom.

Rows written are PostgreSQL's own count (`pg_stat_user_tables`: n_tup_ins + n_tup_upd +
n_tup_del deltas of the mirror's tables), and, as a cross-check, the INSERT/UPDATE/DELETE
statements on those tables that Django sent. The sync's time is split into waiting for the
Medium rate limit (Zoom's 20 list requests/s on Pro), Zoom's answers (HTTP) and the rest (our
work: parsing, comparing, writing).
"""

import time

from django.db import connection

from .harness import BenchError, Result, fmt

TITLE = "3. Full sync of 100,000 meetings from the sandbox into PostgreSQL"
PROFILES = ("service",)
TIMEOUT = 420

MEETINGS = 100_000
USERS = 5
SEED = 11
MIRROR_TABLES = ("meetings_meeting", "meetings_webinar")


def run(ctx, options):
    from django.conf import settings

    from .harness import sandbox_account

    ctx.say(f"seeding the sandbox with {MEETINGS:,} meetings")
    ctx.start_sandbox(seed=SEED, users=USERS, meetings=MEETINGS, webinars=0)
    account = sandbox_account()

    ctx.say("first sync")
    first = timed_sync(account)
    ctx.say("second sync, nothing changed")
    second = timed_sync(account)

    rows = [row("first (empty mirror)", first), row("second (nothing changed)", second)]
    listed = first["result"].meetings
    if listed < MEETINGS * 0.95:
        raise BenchError(f"the sync saw {listed:,} meetings, not about {MEETINGS:,}")
    result = Result(
        "sync",
        TITLE,
        setup=(
            f"sandbox: {MEETINGS:,} meetings over {USERS} users (Zoom lists the "
            f"{listed:,} not deleted), latency 0, Pro plan (Medium 20/s); "
            f"ZOOM_RATE_LIMIT_HEADROOM={settings.ZOOM_RATE_LIMIT_HEADROOM}; PostgreSQL"
        ),
        columns=[
            "sync",
            "wall s",
            "meetings/s",
            "pages",
            "rate-limit wait s",
            "Zoom HTTP s",
            "our work s",
            "created",
            "updated",
            "mirror rows written (pg_stat)",
            "write statements",
        ],
        rows=rows,
    )
    result.ratios.append(
        (
            "meetings/s without the rate-limit wait (what PostgreSQL and our code sustain)",
            fmt(listed / max(first["wall"] - first["throttle"], 1e-9), 0),
        )
    )
    result.check(
        "second sync: mirror rows written",
        str(second["written"]),
        "0",
        second["written"] == 0 and second["statements"] == 0,
    )
    result.check(
        "first sync: every listed meeting stored",
        f"{first['result'].created:,} created",
        f"{listed:,}",
        first["result"].created == listed,
    )
    other = {t: n for t, n in second["other_tables"].items() if n}
    if other:
        result.notes.append(
            "second sync's other writes (bookkeeping, not mirror rows): "
            + ", ".join(f"{t} {n}" for t, n in sorted(other.items()))
        )
    return result


def row(label, f):
    r = f["result"]
    return [
        label,
        fmt(f["wall"]),
        fmt(r.meetings / f["wall"], 0),
        fmt(r.pages),
        fmt(f["throttle"]),
        fmt(f["http"]),
        fmt(f["wall"] - f["throttle"] - f["http"]),
        fmt(r.created),
        fmt(r.updated),
        fmt(f["written"]),
        fmt(f["statements"]),
    ]


def timed_sync(account):
    from meetings.models import ZoomAccount
    from meetings.ratelimit import throttle_for
    from meetings.sync import sync_account
    from meetings.zoom.client import ZoomClient

    account = ZoomAccount.objects.get(pk=account.pk)
    limiter = throttle_for(account)
    spent = {"throttle": 0.0, "http": 0.0}

    def throttle(label):
        started = time.perf_counter()
        try:
            return limiter(label)
        finally:
            spent["throttle"] += time.perf_counter() - started

    def on_response(method, path, status, duration_ms, error):
        spent["http"] += duration_ms / 1000

    client = ZoomClient.for_account(account, throttle=throttle, on_response=on_response)
    statements = WriteCounter(MIRROR_TABLES)
    before = table_writes()
    started = time.perf_counter()
    with connection.execute_wrapper(statements):
        result = sync_account(account, client)
    wall = time.perf_counter() - started
    after = table_writes()
    delta = {t: after.get(t, 0) - before.get(t, 0) for t in set(after) | set(before)}
    if not result.complete:
        raise BenchError(f"the sync did not complete: {result.summary()}")
    return {
        "result": result,
        "wall": wall,
        "written": sum(delta.get(t, 0) for t in MIRROR_TABLES),
        "statements": statements.count,
        "other_tables": {t: n for t, n in delta.items() if t not in MIRROR_TABLES},
        **spent,
    }


class WriteCounter:
    """Counts INSERT / UPDATE / DELETE statements on TABLES (a Django execute wrapper)."""

    def __init__(self, tables):
        self.tables = tables
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        head = sql.lstrip()[:200].upper()
        if head.startswith(("INSERT", "UPDATE", "DELETE")) and any(
            f'"{t.upper()}"' in head or f" {t.upper()} " in head for t in self.tables
        ):
            self.count += 1
        return execute(sql, params, many, context)


def table_writes():
    """n_tup_ins + n_tup_upd + n_tup_del per table, as PostgreSQL counted them.

    A backend reports its counts when it ends (or at most once a second while it runs), so the
    connection is closed first, and the reading transaction drops any cached statistics snapshot.
    """
    connection.close()
    time.sleep(1.1)  # PostgreSQL 15+: pending statistics are flushed at least every second
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
            "WHERE relname LIKE 'meetings_%%'"
        )
        return dict(cursor.fetchall())
