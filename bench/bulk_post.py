"""
6. The bulk screen's POST: an operator runs "End" on 300 selected live meetings and waits for
the page. The time is the request's through the whole Django stack (`django.test.Client` in this
process, signed in as an operator, as the meetings list benchmark measures): the form, the dry
run, one audit Action per meeting written in one transaction, and on commit the 300 task
messages sent to the broker and marked sent. No worker runs, so nothing is taken off the queue
while it is measured.

Each sample acts on the same 300 mirrored meetings: the batch before it is cancelled (its
actions are then finished, so the next one is not "already requested") and the broker's queue
emptied. Every sample is checked: 300 actions in the batch, 300 messages in the broker, every
action marked sent. The `meetings` logs are written at INFO, as deployed, to a file in the
benchmark's log folder. Both profiles: PostgreSQL + Redis, and SQLite + the filesystem broker.
"""

import logging
import time

from .harness import BenchError, Result, fmt, median, ms, percentile
from .meetings_list import count_queries

TITLE = "6. The bulk screen's POST: End 300 live meetings (actions written, messages sent)"
PROFILES = ("service", "embedded")
TIMEOUT = 300

TARGETS = 300
WARMUP = 2
SAMPLES = 9
TARGET_SECONDS = 1.0


def run(ctx, options):
    from django.test import Client

    from meetings import actions
    from meetings.models import Batch, Meeting

    from .harness import make_user, sandbox_account

    account = sandbox_account("Bench account")
    Meeting.objects.bulk_create(
        Meeting(
            account=account,
            zoom_id=82_000_000_000 + n,
            topic=f"Live meeting #{n}",
            host_email=f"host{n % 20}@bench.example",
            status="started",
        )
        for n in range(TARGETS)
    )
    ids = list(Meeting.objects.filter(account=account).order_by("pk").values_list("pk", flat=True))
    operator = Client()
    operator.force_login(make_user("bench-operator"))
    log_file = _log_at_info(ctx)

    # How long the messages took to go out after the commit (the on-commit part of the POST).
    enqueue_times = []
    enqueue = actions.enqueue_actions

    def timed_enqueue(*args, **kwargs):
        started = time.perf_counter()
        try:
            return enqueue(*args, **kwargs)
        finally:
            enqueue_times.append(time.perf_counter() - started)

    actions.enqueue_actions = timed_enqueue

    times, queries = [], None
    try:
        for n in range(WARMUP + SAMPLES + 1):
            counting = n == WARMUP + SAMPLES  # one more, untimed, to count its statements
            counter = count_queries()
            started = time.perf_counter()
            if counting:
                with counter:
                    response = operator.post("/bulk/", {"kind": "end_meeting", "ids": ids})
            else:
                response = operator.post("/bulk/", {"kind": "end_meeting", "ids": ids})
            elapsed = time.perf_counter() - started
            batch = Batch.objects.order_by("-pk").first()
            check(response, batch)
            if counting:
                queries = counter.count
            elif n >= WARMUP:
                times.append(elapsed)
            else:
                enqueue_times.clear()
            actions.cancel_batch(batch)
            _purge()
    finally:
        actions.enqueue_actions = enqueue
        log_file.close()
    enqueue_times = enqueue_times[:SAMPLES]

    broker = "Redis" if ctx.profile == "service" else "filesystem broker"
    database = "PostgreSQL" if ctx.profile == "service" else "SQLite"
    result = Result(
        "bulk_post",
        TITLE,
        setup=(
            f"{database} + {broker}; {TARGETS} live meetings selected, {SAMPLES} timed POSTs "
            f"after {WARMUP} warm-up ones; DEBUG off, `meetings` logs at INFO; no worker"
        ),
        columns=["measure", "median ms", "p95 ms", "max ms"],
        rows=[
            [
                f"POST /bulk/ ({TARGETS} meetings) → redirect",
                fmt(ms(median(times))),
                fmt(ms(percentile(times, 95))),
                fmt(ms(max(times))),
            ],
            [
                "  of which after commit: messages sent and marked",
                fmt(ms(median(enqueue_times))),
                fmt(ms(percentile(enqueue_times, 95))),
                fmt(ms(max(enqueue_times))),
            ],
        ],
        notes=[f"SQL statements in one POST: {queries}"],
    )
    result.check(
        f"bulk POST of {TARGETS}, median ({ctx.profile} profile)",
        f"{ms(median(times)):.0f} ms",
        f"< {ms(TARGET_SECONDS):.0f} ms",
        median(times) < TARGET_SECONDS,
    )
    return result


def check(response, batch):
    """A POST that did not make the whole batch, or left a message unsent, is not a figure."""
    from django.urls import reverse

    from meetings.health import broker_queue_length

    if (
        response.status_code != 302
        or batch is None
        or response["Location"] != reverse("bulk", args=[batch.pk])
    ):
        raise BenchError(f"POST /bulk/ answered {response.status_code}, not the batch's page")
    made = batch.actions.count()
    unsent = batch.actions.filter(lease_expires_at__isnull=True).count()
    queued = broker_queue_length()
    if (batch.total, made, unsent, queued) != (TARGETS, TARGETS, 0, TARGETS):
        raise BenchError(
            f"batch {batch.pk}: total {batch.total}, {made} actions, {unsent} not marked sent, "
            f"{queued} messages in the broker (expected {TARGETS}, {TARGETS}, 0, {TARGETS})"
        )


def _purge():
    from zoomadmin.celery import app

    app.control.purge()


def _log_at_info(ctx):
    """The deployed log level for this process's `meetings` loggers, into a file (the console
    handler's stream), so that what the POST logs is part of what it costs."""
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(ctx.log_dir / "post.log", "w")  # noqa: SIM115 - closed by run()
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    root.setLevel(logging.INFO)
    return log_file
