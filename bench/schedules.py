"""
9. 200 scheduled ends due in the same minute (issue 16): 200 live meetings, each with a schedule
"end the meeting" at one and the same time, run by two Celery worker processes that each embed a
beat (so every tick is claimed by two beats at once, every second), against the sandbox at Zoom's
Light limit (30 requests/s, Pro) with 100 ms latency and its status lag, every request through
the shared rate limiter.

Counted from the sandbox's request log (the ends, `PUT /meetings/{id}/status`, per meeting; the
429s; the busiest second of Light requests) and from the database (schedules done, missed;
actions per schedule and their states). None lost: every schedule done, every meeting ended at
Zoom. None doubled: one action per schedule, one end per meeting at Zoom. Service profile.
"""

import time
from datetime import timedelta

from .bulk_end import PUT, busiest_second, light_templates, still_live
from .harness import BenchError, Result, fmt, wait_until

TITLE = "9. 200 scheduled ends due in the same minute (two beats, 30/s limit)"
PROFILES = ("service",)
TIMEOUT = 420

SCHEDULES = 200
LIMIT = 30.0
LATENCY_MS = 100
WORKERS = 2
CONCURRENCY = 6
SEED = 11
LEAD_SECONDS = 20  # the schedules' time, after the workers and beats are up


def run(ctx, options):
    from django.utils.timezone import now

    from meetings import automation
    from meetings.models import Action, Meeting, ScheduledAction, Step

    from .harness import make_user, mirror_live_meetings, reset_rate_limiter, sandbox_account

    sandbox = ctx.start_sandbox(latency_ms=LATENCY_MS, users=5)
    sandbox.reset()
    sandbox.seed(
        seed=SEED,
        users=5,
        meetings=SCHEDULES + SCHEDULES // 10,
        webinars=0,
        past_instances=0,
        live_share=1.0,
    )
    sandbox.set_rate_limit("light", LIMIT)
    account = sandbox_account()
    operator = make_user("bench-scheduler")
    mirror_live_meetings(sandbox, account)
    ids = [m["id"] for m in sandbox.meetings(status="started") if m["type"] not in (1, 4)]
    ids = ids[:SCHEDULES]
    if len(ids) < SCHEDULES:
        raise BenchError(f"the sandbox has {len(ids)} live meetings, not {SCHEDULES}")
    reset_rate_limiter(account)
    env = {"AUTOMATION_INTERVAL_SECONDS": "1", "POLICY_INTERVAL_SECONDS": "3600"}
    for n in range(1, WORKERS + 1):
        ctx.start_worker(
            f"w{n}",
            concurrency=CONCURRENCY,
            extra=("-B", "-s", str(ctx.log_dir / f"beat-w{n}")),
            env=env,
        )
    at = now() + timedelta(seconds=LEAD_SECONDS)
    topics = dict(
        Meeting.objects.filter(account=account, zoom_id__in=ids).values_list("zoom_id", "topic")
    )
    for zoom_id in ids:
        automation.schedule(
            account=account,
            target_type="meeting",
            target_id=zoom_id,
            topic=topics.get(zoom_id, ""),
            steps=[Step.END],
            run_at=at,
            user=operator,
        )
    since = sandbox.last_seq()
    ctx.say(f"{SCHEDULES} schedules due at {at:%H:%M:%S} UTC")
    finished = ScheduledAction.objects.exclude(state__in=["pending", "running"])
    wait_until(
        lambda: finished.count() == SCHEDULES,
        timeout=LEAD_SECONDS + 240,
        interval=0.2,
        what="every schedule to finish",
    )
    done_at = time.time()
    states = dict.fromkeys(["done", "missed", "cancelled"], 0)
    for state in ScheduledAction.objects.values_list("state", flat=True):
        states[state] = states.get(state, 0) + 1
    actions = Action.objects.filter(rule_type="schedule")
    per_schedule = {}
    for rule_id in actions.values_list("rule_id", flat=True):
        per_schedule[rule_id] = per_schedule.get(rule_id, 0) + 1
    succeeded = actions.filter(state="succeeded").count()
    late = list(ScheduledAction.objects.values_list("late_seconds", flat=True))

    light = light_templates()
    log = [r for r in sandbox.requests_since(since) if (r["method"], r["template"]) in light]
    times = sorted(r["time"] for r in log)
    ends = [r for r in log if (r["method"], r["template"]) == PUT and r["status"] == 204]
    ends_per_meeting = {}
    for r in ends:
        zoom_id = int(r["path"].rstrip("/").split("/")[-2])
        ends_per_meeting[zoom_id] = ends_per_meeting.get(zoom_id, 0) + 1
    end_times = sorted(r["time"] for r in ends)
    n429 = sum(1 for r in log if r["status"] == 429)
    busiest = busiest_second(times)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span > 0 else 0.0
    first_end_after = end_times[0] - at.timestamp() if end_times else None
    last_end_after = end_times[-1] - at.timestamp() if end_times else None
    ended = len(ids) - still_live(sandbox, ids)
    doubled_actions = sum(1 for n in per_schedule.values() if n > 1)
    doubled_ends = sum(1 for n in ends_per_meeting.values() if n > 1)
    lost = SCHEDULES - states["done"]

    result = Result(
        "schedules",
        TITLE,
        setup=(
            f"PostgreSQL + Redis; {SCHEDULES} live meetings, one 'end' schedule each, all due "
            f"at the same second; {WORKERS} workers × {CONCURRENCY}, each with a beat ticking "
            f"every 1 s; sandbox Light limit {LIMIT:.0f}/s, {LATENCY_MS} ms latency"
        ),
        columns=["measure", "value"],
        rows=[
            ["schedules done / missed", f"{states['done']} / {states['missed']}"],
            ["actions made (one per schedule)", f"{actions.count()} ({succeeded} succeeded)"],
            ["schedules with more than one action", fmt(doubled_actions)],
            ["ends at Zoom (PUT status, 204)", fmt(len(ends))],
            ["meetings ended more than once at Zoom", fmt(doubled_ends)],
            ["meetings Zoom shows ended", f"{ended}/{SCHEDULES}"],
            ["claimed late by, max (s)", fmt(max(x or 0 for x in late), 2)],
            ["first end after the due time (s)", fmt(first_end_after, 2)],
            ["last end after the due time (s)", fmt(last_end_after, 2)],
            ["Light requests (ends and confirming looks)", fmt(len(times))],
            ["Light rate achieved (/s)", fmt(rate)],
            ["busiest 1 s (limit 30)", fmt(busiest)],
            ["429s", fmt(n429)],
            ["all done after the due time (s)", fmt(done_at - at.timestamp(), 1)],
        ],
        notes=[
            "Two beats run on purpose (production runs exactly one): due schedules are claimed "
            "in one transaction (FOR UPDATE SKIP LOCKED, judged by the database's clock), so a "
            "second beat, or a worker on another host, finds nothing left to claim.",
            "Ends are confirmed by a look (GET /meetings/{id}) booked after the account's ends "
            "still to be sent, as without webhooks; both count against the Light limit.",
        ],
    )
    result.check("scheduled ends: none lost", f"{lost} lost", "0", lost == 0 and ended == SCHEDULES)
    result.check(
        "scheduled ends: none doubled",
        f"{doubled_actions} actions, {doubled_ends} ends doubled",
        "0",
        doubled_actions == 0 and doubled_ends == 0 and len(ends) == SCHEDULES,
    )
    result.check(
        "scheduled ends: under the rate limit",
        f"busiest second {busiest}, {n429} × 429",
        f"≤ {LIMIT:.0f}, no 429",
        busiest <= LIMIT and n429 == 0,
    )
    return result
