"""Fault: one worker loses Redis while the others keep it (a partition, a firewall rule, a
network card), during a batch of ends. The broker still reaches that worker (here: its broker
connection goes straight to Redis, its rate limiter's through a relay that the test cuts), so it
goes on running ends, booking its Zoom calls in the database's bucket while the others book
theirs in Redis's.

Issue 13: at the full share in each bucket a partial outage doubled the rate. The worker that
lost Redis books only half of what the others leave (1 - ZOOM_RATE_LIMIT_HEADROOM of the limit,
meetings.ratelimit.fallback_factor), so Zoom's limit holds in every sliding second: the
sandbox, set to exactly the limit the dashboard believes, answers no 429."""

import re

import pytest

from meetings.actions import create_batch
from meetings.models import ActionState, Meeting
from meetings.zoom.sandbox import api

from .ledger import Ledger, wait_until
from .services import TcpProxy
from .world import live_meetings

pytestmark = [pytest.mark.faults, pytest.mark.worker]

MEETINGS = 48
LIGHT = 8  # requests/s: Zoom's Light limit here, and what the dashboard believes it is
# Three quarters of the limit booked in Redis leaves a quarter for a worker cut off from it
# (production's 0.96 leaves it 4%: correct, but slow to watch).
HEADROOM = "0.75"


def light_request_times(state, since):
    """When the sandbox answered each of its Light requests after request number SINCE."""
    labels = {(route.method, route.template): route.label for route in api.ROUTES}
    return [
        r.time for r in state.requests_since(since) if labels.get((r.method, r.template)) == "light"
    ]


def busiest_second(times):
    """The most requests in any window [t, t + 1 s): what Zoom's sliding window looks at."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_a_worker_cut_off_from_redis_keeps_the_account_under_zoom_s_limit(
    on_own_redis, fault_workers, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    # given 48 live meetings, Zoom's Light limit of 8 requests a second (the sandbox refuses
    # the 9th in any sliding second), and three workers: two on Redis, one whose rate limiter
    # reaches Redis through a relay
    state = zoom_sandbox.state
    live = live_meetings(zoom_sandbox, sandbox_account, sandbox_host, MEETINGS)
    state.set_rate_limit("light", LIGHT)
    state.end_status_lag = 0  # one look confirms each end: fewer requests, a shorter test
    limits = {"ZOOM_RATE_LIMIT_LIGHT": str(LIGHT), "ZOOM_RATE_LIMIT_HEADROOM": HEADROOM}
    workers = fault_workers(**limits)
    workers.start("w2", beat=False)
    relay = TcpProxy(on_own_redis.port)
    try:
        workers.start(
            "cut",
            beat=False,
            env={"REDIS_URL": relay.url(), "CELERY_BROKER_URL": on_own_redis.url},
        )
        first = state.request_seq

        # when an operator ends them all in one batch, and the relay is cut once a few ended
        batch, _ = create_batch(
            account=sandbox_account,
            kind="end_meeting",
            targets=list(Meeting.objects.filter(account=sandbox_account)),
            user=operator,
        )
        ledger = Ledger(batch.actions.values_list("pk", flat=True))
        wait_until(lambda: ledger.observe() >= 8, 60, "the first ends", on_poll=ledger.observe)
        relay.stop()
        actions = ledger.wait_finished(timeout=150)
    finally:
        relay.stop()

    # then every meeting ended once
    ledger.assert_exactly_once()
    assert [a.state for a in actions] == [ActionState.SUCCEEDED] * MEETINGS, ledger.counts()
    for meeting in live:
        assert len(state.past_instances[meeting["id"]]) == 1
    # and the worker that lost Redis took part, on the database's bucket
    cut_log = workers.processes["cut"].log()
    assert "rate limiter: Redis unreachable" in cut_log, cut_log[-3000:]
    after_cut = cut_log.split("rate limiter: Redis unreachable", 1)[1]
    # How many of the 40 left it ends varies from run to run (1 in a CI run on a busy machine,
    # 3 and 39 in two runs on a calm one: whose prefetched messages wait behind which bucket):
    # one shows the path; the limit held whatever the share (below).
    ran = re.findall(r"run_action\[[^\]]+\] succeeded", after_cut)
    assert ran, "the cut-off worker ended no meeting after losing Redis:\n" + after_cut[-3000:]
    # and Zoom's limit held throughout: no 429, and no sliding second over the limit
    light = light_request_times(state, first)
    assert len(light) >= MEETINGS
    assert state.counters["status_429"] == 0, state.counters["status_429"]
    assert busiest_second(light) <= LIGHT, busiest_second(light)
