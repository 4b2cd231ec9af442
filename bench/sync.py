"""
3. A full sync of 100,000 meetings from the sandbox into PostgreSQL (`meetings.sync.sync_account`,
what the sync action runs, here called in this process with the account's real client and the
shared rate limiter), then a second sync with nothing changed at Zoom.

Then the scale section (issue 13): a sync of 5,000 users with 200,000 meetings at Pro limits,
fanned out into parts on several real worker processes, and (for comparison) the same sync as one
task in one process; how long until the mirror is complete, as a share of what the Medium limit
allows. BENCH_SYNC_SCALE=fanout (or whole, or none) runs one of them only.

Rows written are PostgreSQL's own count (`pg_stat_user_tables`: n_tup_ins + n_tup_upd +
n_tup_del deltas of the mirror's tables), and, as a cross-check, the INSERT/UPDATE/DELETE
statements on those tables that Django sent. The sync's time is split into waiting for the
Medium rate limit (Zoom's 20 list requests/s on Pro), Zoom's answers (HTTP) and the rest (our
work: parsing, comparing, writing).
"""

import os
import time

from django.db import connection

from .harness import BenchError, Result, fmt

TITLE = "3. Full sync of 100,000 meetings from the sandbox into PostgreSQL"
PROFILES = ("service",)
TIMEOUT = 420  # the 100,000-meeting syncs; the scale section adds its own (timeout below)

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
    run_scale(ctx, result)
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


# --- Scale: 5,000 users, 200,000 meetings, the sync fanned out on real workers (issue 13) ------

SCALE_USERS = 5_000
SCALE_MEETINGS = 200_000
SCALE_SEED = 13
# Worker processes x pool processes that run the sync's parts (and the action's own runs).
SCALE_WORKERS = 3
SCALE_CONCURRENCY = 2
PRO_MEDIUM_PER_SECOND = 20
PAGE_SIZE = 300
SCALE_TARGET = 0.8


def scale_variants():
    """Which ways to sync the scale world: BENCH_SYNC_SCALE="fanout,whole" (the default), or
    one of them; "none" skips the scale section."""
    chosen = os.environ.get("BENCH_SYNC_SCALE", "fanout,whole")
    return [v for v in chosen.split(",") if v in ("fanout", "whole")]


def run_scale(ctx, result):
    """Adds the scale rows, ratios and the ≥ 0.8 check to RESULT."""
    from django.conf import settings

    from meetings.actions import request_action
    from meetings.models import Action, ActionKind, ActionSource

    from .harness import purge_broker, sandbox_account, wait_until

    variants = scale_variants()
    if not variants:
        return
    sandbox = ctx.sandbox
    ctx.say(f"seeding the sandbox with {SCALE_USERS:,} users and {SCALE_MEETINGS:,} meetings")
    sandbox.reset(seed=SCALE_SEED, users=SCALE_USERS, meetings=SCALE_MEETINGS, webinars=0)
    figures = {}
    if "fanout" in variants:
        purge_broker()
        ctx.say(f"starting {SCALE_WORKERS} workers × {SCALE_CONCURRENCY} processes")
        workers = [
            ctx.start_worker(f"w{n}", concurrency=SCALE_CONCURRENCY)
            for n in range(1, SCALE_WORKERS + 1)
        ]
        account = sandbox_account("Sandbox (scale, fanned out)")
        before = sandbox.counters()
        ctx.say("sync fanned out into parts on the workers")
        started = time.perf_counter()
        action, _ = request_action(
            account=account, kind=ActionKind.SYNC, source=ActionSource.COMMAND_LINE
        )
        action = wait_until(
            lambda: Action.objects.filter(pk=action.pk, state__in=["succeeded", "failed"]).first(),
            timeout=SCALE_TIMEOUT,
            interval=0.05,
            what="the fanned-out sync",
        )
        wall = time.perf_counter() - started
        if action.state != "succeeded":
            raise BenchError(f"the fanned-out sync failed: {action.result_summary}")
        after = sandbox.counters()
        figures["fanout"] = scale_figure(
            action.result, wall, before, after, parts=action.sync_run.parts.count()
        )
        for worker in workers:
            worker.stop()
    if "whole" in variants:
        from meetings.ratelimit import throttle_for
        from meetings.sync import sync_account
        from meetings.zoom.client import ZoomClient

        account = sandbox_account("Sandbox (scale, one task)")
        before = sandbox.counters()
        ctx.say("the same sync as one task in one process (the way before issue 13)")
        started = time.perf_counter()
        r = sync_account(account, ZoomClient.for_account(account, throttle=throttle_for(account)))
        wall = time.perf_counter() - started
        figures["whole"] = scale_figure(r.as_dict(), wall, before, sandbox.counters(), parts=1)

    labels = {
        "fanout": f"fanned out ({SCALE_WORKERS} workers × {SCALE_CONCURRENCY})",
        "whole": "one task, one process (before)",
    }
    result.notes.append(
        f"Scale: sandbox of {SCALE_USERS:,} users and {SCALE_MEETINGS:,} meetings (seed "
        f"{SCALE_SEED}), Pro limits (Medium {PRO_MEDIUM_PER_SECOND}/s), "
        f"ZOOM_RATE_LIMIT_HEADROOM={settings.ZOOM_RATE_LIMIT_HEADROOM}, SYNC_PART_USERS="
        f"{settings.SYNC_PART_USERS}. Share of the Medium limit = the time the limit needs "
        f"for the sync's Medium requests ÷ the time until the mirror was complete; "
        f"meetings/s ÷ (20 × 300) is the same share only where every page is full"
    )
    for key, f in figures.items():
        result.notes.append(
            f"Scale, {labels[key]}: {f['wall']:.1f} s until the mirror was complete, "
            f"{f['meetings']:,} meetings, {f['medium']:,} Medium requests ({f['parts']} parts), "
            f"{f['per_s']:.0f} meetings/s, {f['medium'] / f['wall']:.1f} Medium requests/s, "
            f"429s {f['429']}"
        )
        result.ratios.append(
            (
                f"scale sync, {labels[key]}: share of what the Medium limit allows",
                fmt(f["share"], 2),
            )
        )
        result.ratios.append(
            (
                f"scale sync, {labels[key]}: meetings/s ÷ (20/s × 300 per page)",
                fmt(f["per_s"] / (PRO_MEDIUM_PER_SECOND * PAGE_SIZE), 3),
            )
        )
    if "fanout" in figures:
        f = figures["fanout"]
        result.check(
            "scale sync (fanned out): share of the Medium limit",
            fmt(f["share"], 2),
            f"≥ {SCALE_TARGET}",
            f["share"] >= SCALE_TARGET and f["429"] == 0,
        )


# The scale sync needs about 10,000 Medium requests: 500 s at Pro's 20/s, at the least.
SCALE_TIMEOUT = 1500


def scale_figure(result, wall, before, after, *, parts):
    medium = (result.get("requests") or {}).get("medium", 0)
    return {
        "wall": wall,
        "meetings": result["meetings"],
        "medium": medium,
        "parts": parts,
        "per_s": result["meetings"] / wall,
        "share": (medium / PRO_MEDIUM_PER_SECOND) / wall,
        "429": after.get("status_429", 0) - before.get("status_429", 0),
    }


def timeout(args):
    return TIMEOUT + SCALE_TIMEOUT * len(scale_variants()) + 120
