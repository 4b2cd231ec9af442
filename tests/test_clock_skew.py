"""Workers on hosts whose clocks differ (issue 13): a worker five minutes ahead of or behind the
others, under libfaketime, changes nothing. Leases are written and judged by the database's clock,
and Retry-After dates become waits by Zoom's own Date header.

Service profile only: the database's clock must be another process's (PostgreSQL's), as it is
for workers on other hosts; with SQLite the database's clock is each worker's own."""

import pytest
from django.db import connection

from meetings.models import ActionState, Attempt
from tests.test_action_pipeline import ask, wait_finished
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="a database clock apart from the workers' is PostgreSQL's (service profile)",
    ),
]

FIVE_MINUTES = 300


@pytest.mark.worker_env(ACTION_LEASE_SECONDS="60", ZOOM_TIMEOUT_SECONDS="30")
@pytest.mark.parametrize(
    ("runner", "sweeper"),
    [(0, FIVE_MINUTES), (-FIVE_MINUTES, 0)],
    ids=["sweeper 5 min ahead", "runner 5 min behind"],
)
def test_a_running_action_is_not_taken_over_because_a_host_s_clock_is_off(
    runner, sweeper, celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given a worker without the sweeper running an end that Zoom answers slowly (12 s; its
    # lease is 60 s), on a host whose clock is RUNNER seconds off
    workers = celery_worker_process
    workers.kill("w1")
    workers.start("runner", beat=False, concurrency=1, clock_offset=runner)
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started")
    zoom_sandbox.state.set_faults(latency_ms=12_000)
    action = ask(sandbox_account, "end_meeting", target_id=meeting["id"])
    wait_until(lambda: Attempt.objects.filter(action=action, outcome="").exists(), 30, "the call")

    # when another host, whose clock is SWEEPER seconds off, sweeps every second meanwhile
    workers.start("sweeper", beat=True, concurrency=1, clock_offset=sweeper)
    (done,) = wait_finished([action.pk], timeout=90)

    # then nobody took the live run's action over: one call to Zoom, no reclaim
    assert done.state == ActionState.SUCCEEDED, done.result_summary
    assert done.reclaims == 0
    assert zoom_sandbox.state.counters["PUT /meetings/{meetingId}/status"] == 1
    assert done.attempts.filter(operation="meetingStatus").count() == 1


@pytest.mark.parametrize("skew", [FIVE_MINUTES, -FIVE_MINUTES], ids=["5 min ahead", "5 min behind"])
def test_a_worker_with_a_skewed_clock_waits_out_zoom_s_429_as_zoom_asks(
    skew, celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given Zoom allowing 2 Light requests a second while the dashboard believes Pro's 30, and
    # a worker whose clock is SKEW seconds off Zoom's
    workers = celery_worker_process
    workers.kill("w1")
    workers.start("skewed", beat=True, concurrency=2, clock_offset=skew)
    state = zoom_sandbox.state
    state.set_rate_limit("light", 2)
    meetings = [state.add_meeting(sandbox_host["id"], status="started") for _ in range(8)]

    # when eight ends are asked for at once
    done = wait_finished(
        [ask(sandbox_account, "end_meeting", target_id=m["id"]).pk for m in meetings],
        timeout=120,
    )

    # then all ended, and after each 429 the worker waited for Zoom's Retry-After (a second):
    # ahead, it read the date as already past and retried every 50 ms; behind, it would wait
    # five minutes
    assert all(a.state == ActionState.SUCCEEDED for a in done), [a.result_summary for a in done]
    assert state.counters["status_429"] <= 2 * len(meetings), state.counters["status_429"]
