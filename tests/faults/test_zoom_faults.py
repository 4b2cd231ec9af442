"""Faults at Zoom's end: a Zoom answering 30% of requests with server errors, and a Zoom that
cannot be reached for a whole minute.

What operations staff want from an outage (and what the defaults give): a click is not lost to
a blip. Retryable failures (5xx, refused connections, timeouts) back off exponentially from
ACTION_RETRY_BASE_SECONDS (1 s) to ACTION_RETRY_MAX_SECONDS (60 s) for ACTION_MAX_ATTEMPTS (9)
attempts, which rides out an outage of at least 91 s (at most about three minutes): an end
that lands a minute late is still the end the operator asked for. Past that, each action
fails with a plain "Could not reach Zoom … gave up after N attempts", so that nobody believes a
meeting is ending when it is not, and the operator can act another way (Zoom's own portal).
"""

import time

import pytest
from django.conf import settings

from meetings.models import ActionState, Attempt, PastMeeting

from .ledger import Ledger, wait_until
from .world import ask, live_meetings, live_webinars

pytestmark = [pytest.mark.faults, pytest.mark.worker]

STREAM = {
    "stream_url": "rtmp://live.example/app",
    "stream_key": "sk-faults-0a1b2c3d",
    "page_url": "https://watch.example/live",
}


def test_a_zoom_answering_30_percent_server_errors_is_retried_until_every_action_succeeds(
    fault_workers, sandbox_account, sandbox_host, zoom_sandbox
):
    # given 50 actions of four kinds waiting to be done
    state = zoom_sandbox.state
    meetings = live_meetings(zoom_sandbox, sandbox_account, sandbox_host, 30)
    webinars = live_webinars(zoom_sandbox, sandbox_account, sandbox_host, 10)
    streams = [
        state.add_meeting(
            sandbox_host["id"], status="started", livestream=STREAM, livestreaming=True
        )
        for _ in range(5)
    ]
    past = []
    for _ in range(5):
        meeting = state.add_meeting(sandbox_host["id"])
        past.append(state.add_past_instance(meeting["id"], participants=9))
    # a budget of 10 attempts: the chance that 30% failures take all ten is 0.3**10 (6e-6)
    workers = fault_workers(ACTION_MAX_ATTEMPTS=10)
    assert workers.processes["w1"].alive()

    # when Zoom fails 30% of its answers (API and token requests alike) while they run
    state.set_faults(error_rate=0.3, latency_ms=20)
    ledger = Ledger()
    ledger.add(*(ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in meetings))
    ledger.add(*(ask(sandbox_account, "end_webinar", target_id=w["id"]) for w in webinars))
    ledger.add(*(ask(sandbox_account, "stop_livestream", target_id=m["id"]) for m in streams))
    ledger.add(*(ask(sandbox_account, "fetch_past_meeting", target_uuid=p["uuid"]) for p in past))
    actions = ledger.wait_finished(timeout=120)

    # then each was retried as long as needed and all succeeded, exactly once
    ledger.assert_exactly_once()
    assert {a.state for a in actions} == {ActionState.SUCCEEDED}, [
        (a.pk, a.kind, a.result_summary) for a in actions if a.state != ActionState.SUCCEEDED
    ]
    assert state.counters["injected_errors"] >= 10
    retried = Attempt.objects.filter(action_id__in=ledger.ids, outcome=Attempt.Outcome.RETRY)
    assert retried.count() >= 5
    for attempt in retried:
        assert attempt.http_status in (500, 503), (attempt.http_status, attempt.message)
        assert attempt.message.startswith("Zoom"), attempt.message
        assert attempt.retry_after > 0
    # and Zoom did each thing once
    for meeting in meetings:
        assert state.get_meeting(meeting["id"])["status"] == "waiting"
        assert len(state.past_instances[meeting["id"]]) == 1
    assert all(state.webinars[w["id"]]["status"] == "ended" for w in webinars)
    assert not any(state.get_meeting(m["id"])["livestreaming"] for m in streams)
    assert PastMeeting.objects.filter(uuid__in=[p["uuid"] for p in past]).count() == 5
    assert STREAM["stream_key"] not in str([a.result_summary for a in actions])


def test_actions_asked_for_while_zoom_is_down_for_a_minute_succeed_when_it_is_back(
    fault_workers, sandbox_account, sandbox_host, zoom_sandbox
):
    # given the production retry schedule and budget (see the module's docstring)
    state = zoom_sandbox.state
    meetings = live_meetings(zoom_sandbox, sandbox_account, sandbox_host, 10)
    fault_workers(
        ACTION_MAX_ATTEMPTS=settings.ACTION_MAX_ATTEMPTS,
        ACTION_RETRY_BASE_SECONDS=1,
        ACTION_RETRY_MAX_SECONDS=60,
    )
    assert settings.ACTION_MAX_ATTEMPTS >= 9

    # when Zoom refuses every connection for 60 s, and ten ends are asked for meanwhile
    state.set_faults(down=True, down_for=60)
    down_at = time.monotonic()
    ledger = Ledger(ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in meetings)
    # they are tried, fail to connect and wait; none gives up while Zoom is away
    wait_until(
        lambda: (
            Attempt.objects.filter(action_id__in=ledger.ids, outcome=Attempt.Outcome.RETRY).count()
            >= 3 * len(meetings)
        ),
        40,
        "each action to have been refused three times",
        on_poll=ledger.observe,
    )
    wait_until(
        lambda: zoom_sandbox.is_listening,
        70,
        "Zoom to be back",
        interval=0.5,
        on_poll=ledger.observe,
    )
    assert ledger.observe() == 0, f"an action finished while Zoom was down: {ledger.counts()}"
    back_after = time.monotonic() - down_at
    actions = ledger.wait_finished(timeout=90)

    # then every action succeeded, once, after the outage, and the record says why it waited
    ledger.assert_exactly_once()
    assert back_after >= 59
    assert {a.state for a in actions} == {ActionState.SUCCEEDED}, ledger.counts()
    for action in actions:
        attempts = list(action.attempts.filter(operation="meetingStatus"))
        assert [a.outcome for a in attempts[:-1]] == [Attempt.Outcome.RETRY] * (len(attempts) - 1)
        assert attempts[-1].outcome == Attempt.Outcome.OK
        assert len(attempts) >= 4
        assert all(a.message.startswith("Could not reach Zoom") for a in attempts[:-1]), [
            a.message for a in attempts
        ]
    assert all(state.get_meeting(m["id"])["status"] == "waiting" for m in meetings)


def test_actions_that_outlast_their_retry_budget_fail_with_plain_words(
    fault_workers, sandbox_account, sandbox_host, zoom_sandbox
):
    # given a budget of three attempts and a Zoom that stays unreachable
    state = zoom_sandbox.state
    meetings = live_meetings(zoom_sandbox, sandbox_account, sandbox_host, 4)
    fault_workers(ACTION_MAX_ATTEMPTS=3)
    state.set_faults(down=True)
    seen = state.counters["requests"]

    # when ends are asked for
    ledger = Ledger(ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in meetings)
    actions = ledger.wait_finished(timeout=60)

    # then each fails once, saying what happened, and is not retried further
    ledger.assert_exactly_once()
    for action in actions:
        assert action.state == ActionState.FAILED
        assert action.result_summary.startswith("Could not reach Zoom"), action.result_summary
        assert action.result_summary.endswith("— gave up after 3 attempts")
        assert action.attempts_count == 3
    time.sleep(2 * settings.ACTION_RETRY_MAX_SECONDS + 1)
    assert [a.attempts.count() for a in actions] == [3] * len(meetings)
    assert state.counters["requests"] == seen  # nothing reached Zoom
    assert all(state.get_meeting(m["id"])["status"] == "started" for m in meetings)
