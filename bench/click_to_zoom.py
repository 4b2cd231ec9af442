"""
4. Click to Zoom: from the moment an operator's End is POSTed to the dashboard (gunicorn, signed
in, the htmx request the End button sends) to the moment the sandbox receives
`PUT /meetings/{id}/status`, with one idle worker, in both profiles:

- service: PostgreSQL + Redis (the target: median ≤ 100 ms);
- embedded: SQLite + the filesystem broker, which the worker polls every 50 ms.

Each sample ends a different live meeting and waits for its action to finish, then lets the
worker idle, so every click finds the worker waiting. The sandbox logs when each request arrived
(its clock is this machine's). The first clicks warm the worker's processes and token up and are
not counted.
"""

import time

from .harness import BenchError, Result, fmt, median, ms, percentile, wait_until

TITLE = "4. Click to Zoom: an End POSTed to the dashboard until Zoom receives it"
PROFILES = ("service", "embedded")
TIMEOUT = 300

WARMUP = 4
SAMPLES = 30
IDLE_SECONDS = 0.3
PASSWORD = "bench-operator-password-1"  # noqa: S105 - a throwaway user in the bench database


def run(ctx, options):
    from meetings.models import Action, ActionKind, Meeting, ZoomAccount
    from meetings.ratelimit import throttle_for
    from meetings.sync import sync_account
    from meetings.zoom.client import ZoomClient

    from .harness import make_user, mirror_live_meetings, sandbox_account, signed_in_session

    sandbox = ctx.start_sandbox(latency_ms=0, users=5)
    sandbox.reset()
    sandbox.seed(
        seed=3, users=5, meetings=WARMUP + SAMPLES, webinars=0, past_instances=0, live_share=1.0
    )
    account = sandbox_account()
    sync_account(account, ZoomClient.for_account(account, throttle=throttle_for(account)))
    mirror_live_meetings(sandbox, account)
    meetings = list(Meeting.objects.filter(status="started").order_by("pk"))
    if len(meetings) < WARMUP + SAMPLES:
        raise BenchError(f"only {len(meetings)} live meetings in the mirror")
    user = make_user("bench-operator")
    user.set_password(PASSWORD)
    user.save()

    ctx.say("starting a worker and gunicorn")
    ctx.start_worker("w1", concurrency=2)
    _, url = ctx.start_gunicorn(workers=2)
    session = signed_in_session(url, user.username, PASSWORD)

    clicks, answers = [], []
    for n, meeting in enumerate(meetings[: WARMUP + SAMPLES]):
        since = sandbox.last_seq()
        started = time.time()
        response = session.post(
            f"{url}/meetings/{meeting.pk}/end/",
            headers={"HX-Request": "true", "HX-Target": "controls"},
            timeout=30,
        )
        answered = time.time()
        if response.status_code != 200:
            raise BenchError(f"POST end answered {response.status_code}: {response.text[:300]}")
        path = f"/v2/meetings/{meeting.zoom_id}/status"
        entry = wait_until(
            lambda since=since, path=path: next(
                (r for r in sandbox.requests_since(since) if r["path"] == path), None
            ),
            timeout=30,
            interval=0.01,
            what=f"Zoom receiving the end of meeting {meeting.zoom_id}",
        )
        arrived = entry["time"] - entry["duration_ms"] / 1000
        wait_until(
            lambda m=meeting: (
                not Action.objects.filter(
                    account=account, kind=ActionKind.END_MEETING, target_id=m.zoom_id
                )
                .active()
                .exists()
            ),
            timeout=30,
            interval=0.05,
            what="the end action to finish",
        )
        if n >= WARMUP:
            clicks.append(arrived - started)
            answers.append(answered - started)
        time.sleep(IDLE_SECONDS)

    done = Action.objects.filter(account=account, kind=ActionKind.END_MEETING)
    succeeded = done.filter(state="succeeded").count()
    account = ZoomAccount.objects.get(pk=account.pk)
    broker = "Redis" if ctx.profile == "service" else "filesystem broker (50 ms polling)"
    database = "PostgreSQL" if ctx.profile == "service" else "SQLite"
    result = Result(
        "click_to_zoom",
        TITLE,
        setup=(
            f"{database} + {broker}; gunicorn 2 workers, 1 Celery worker (prefork, 2 "
            f"processes), sandbox latency 0; {SAMPLES} clicks after {WARMUP} warm-up ones, "
            f"{IDLE_SECONDS:.1f} s apart after each finished"
        ),
        columns=["measure", "median ms", "p95 ms", "max ms"],
        rows=[
            [
                "click → Zoom receives the end",
                fmt(ms(median(clicks))),
                fmt(ms(percentile(clicks, 95))),
                fmt(ms(max(clicks))),
            ],
            [
                "click → the dashboard's answer",
                fmt(ms(median(answers))),
                fmt(ms(percentile(answers, 95))),
                fmt(ms(max(answers))),
            ],
        ],
    )
    if ctx.profile == "service":
        result.check(
            "click to Zoom, median (Redis profile)",
            f"{ms(median(clicks)):.0f} ms",
            "<= 100 ms",
            median(clicks) <= 0.1,
        )
    result.check(
        "every end succeeded",
        f"{succeeded}/{done.count()}",
        f"{done.count()}/{done.count()}",
        succeeded == done.count(),
    )
    return result
