"""
8. The sweeper under a backlog (issue 13): 2,000 end actions queued at once, drained by one slow
worker (concurrency 1, Zoom answering in 200 ms), with the sweeper run every 2 s and a dispatch
timeout of 10 s, so that nearly the whole backlog is "overdue" at every sweep for minutes. The
broker's queue is sampled at each sweep.

Side by side, from the same run: what the sweeper sent (it sends again only what the broker
lost, `meetings.actions._messages_lost`), and what the rule before it would have sent (every
overdue action, up to 500 a sweep), computed from the overdue count each sweep saw. Service
profile: PostgreSQL and Redis.
"""

import time

from .harness import BenchError, Result, fmt

TITLE = "8. The sweeper under a backlog of 2,000 (one slow worker)"
PROFILES = ("service",)
TIMEOUT = 600

BACKLOG = 2000
WINDOW_SECONDS = 90
SWEEP_EVERY = 2.0
DISPATCH_TIMEOUT = 10
OLD_RULE_LIMIT = 500  # the sweep's per-run limit, which bounded the old rule's copies
CONSTANT = 10  # what "the backlog plus a small constant" allows: prefetched, in-flight


def run(ctx, options):
    from django.conf import settings
    from django.db.models.functions import Now

    from meetings import actions
    from meetings.models import Action, ActionKind, ActionSource, ActionState

    from .harness import sandbox_account

    settings.ACTION_DISPATCH_TIMEOUT_SECONDS = DISPATCH_TIMEOUT
    ctx.start_sandbox(latency_ms=200, users=5, meetings=0)
    account = sandbox_account()
    Action.objects.bulk_create(
        Action(
            account=account,
            kind=ActionKind.END_MEETING,
            target_type="meeting",
            target_id=83_000_000_000 + n,  # not in the sandbox: each is a quick 3001 refusal
            source=ActionSource.BULK,
        )
        for n in range(BACKLOG)
    )
    pks = list(Action.objects.filter(state=ActionState.QUEUED).values_list("pk", flat=True))
    if actions.enqueue_actions(pks) != BACKLOG:
        raise BenchError("the backlog's messages were not all sent")
    ctx.start_worker(
        concurrency=1,
        env={"ACTION_DISPATCH_TIMEOUT_SECONDS": str(DISPATCH_TIMEOUT), "ZOOM_TIMEOUT_SECONDS": "5"},
    )

    samples, sent, old_rule, finished = [], 0, 0, 0
    deadline = time.monotonic() + WINDOW_SECONDS
    while time.monotonic() < deadline:
        overdue = Action.objects.filter(
            state=ActionState.QUEUED, lease_expires_at__lt=Now()
        ).count()
        old_rule += min(overdue, OLD_RULE_LIMIT)
        sent += actions.sweep()["sent"]
        queued = Action.objects.filter(state=ActionState.QUEUED).count()
        length = actions.broker_queue_length()
        samples.append((overdue, queued, length))
        time.sleep(SWEEP_EVERY)
    finished = Action.objects.exclude(state__in=[ActionState.QUEUED, ActionState.RUNNING]).count()
    if finished == 0:
        raise BenchError("the worker finished no action: nothing was drained")

    longest = max(s[2] for s in samples)
    excess = max(s[2] - s[1] for s in samples)
    sweeps = len(samples)
    result = Result(
        "sweeper",
        TITLE,
        setup=(
            f"PostgreSQL + Redis; {BACKLOG} queued ends, one worker (concurrency 1, Zoom "
            f"answering in 200 ms), a sweep every {SWEEP_EVERY:.0f} s for {WINDOW_SECONDS} s, "
            f"dispatch timeout {DISPATCH_TIMEOUT} s"
        ),
        columns=["measure", "this sweeper", "the rule before"],
        rows=[
            ["sweeps", fmt(sweeps), fmt(sweeps)],
            ["messages sent again", fmt(sent), fmt(old_rule)],
            [
                "broker queue, longest",
                fmt(longest),
                f"≈ {fmt(BACKLOG + old_rule)} (backlog + copies)",
            ],
            ["queue over the actions still queued, most", fmt(excess), "—"],
            ["actions drained in the window", fmt(finished), "—"],
        ],
        notes=[
            "The rule before sent every overdue action again at every sweep; its column is "
            "computed from the overdue counts this run's sweeps saw, not run.",
        ],
    )
    result.check(
        "sweeper backlog: queue within backlog + a small constant",
        f"{longest} messages for {BACKLOG} actions",
        f"≤ {BACKLOG + CONSTANT}",
        longest <= BACKLOG + CONSTANT,
    )
    return result
