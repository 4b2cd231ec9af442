"""Workers on hosts whose clocks differ (issue 13): a worker five minutes ahead of or behind the
others, under libfaketime, changes nothing. Leases are written and judged by the database's clock,
and Retry-After dates become waits by Zoom's own Date header.

Zoom's events are judged by Zoom's clock (event_ts) against the database's: whether an event is
evidence of an end (sent after the action started) and whether a report is newer than the last
one applied to a mirrored row.

Service profile only: the database's clock must be another process's (PostgreSQL's), as it is
for workers on other hosts; with SQLite the database's clock is each worker's own."""

import time

import pytest
from django.db import connection

from meetings.models import Action, ActionState, Attempt, Meeting, MeetingStatus, WebhookEvent
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


# --- Zoom's events and the mirror: Zoom's clock (event_ts) against the database's ------------


def zoom_event(account, name, meeting, *, ts):
    """Zoom's NAME event about MEETING sent at TS (epoch ms), stored as the receiver stores a
    verified delivery (its processing is queued for the workers, as a delivery's is)."""
    from meetings import webhooks

    envelope = {
        "event": name,
        "event_ts": ts,
        "payload": {
            "account_id": account.zoom_account_id,
            "object": {
                "id": meeting["id"],
                "uuid": meeting["uuid"],
                "host_id": meeting["host_id"],
                "topic": meeting["topic"],
                "type": 2,
            },
        },
    }
    event, created = webhooks.store_event(envelope)
    assert created
    return event


def zoom_now_ms(offset=0.0):
    """Zoom's clock (the machine's: the sandbox runs on it), in epoch milliseconds."""
    return int((time.time() + offset) * 1000)


@pytest.mark.worker_env(ACTION_CONFIRM_CHECKS="60")
def test_a_worker_five_minutes_ahead_takes_zoom_s_event_as_evidence_and_misorders_nothing(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given a live meeting whose end Zoom shows only 60 s later (its status lags), so only
    # Zoom's meeting.ended event can confirm it soon, and a worker five minutes ahead
    state = zoom_sandbox.state
    state.end_status_lag = 60
    workers = celery_worker_process
    workers.kill("w1")
    workers.start("ahead", beat=True, concurrency=2, clock_offset=FIVE_MINUTES)
    meeting = state.add_meeting(sandbox_host["id"], status="started")
    zoom_event(sandbox_account, "meeting.started", meeting, ts=zoom_now_ms(-60))
    wait_until(
        lambda: Meeting.objects.filter(zoom_id=meeting["id"], status="started").exists(),
        30,
        "the meeting.started event applied",
    )

    # when an operator ends it, and Zoom's meeting.ended comes once Zoom accepted the end
    action = ask(sandbox_account, "end_meeting", target_id=meeting["id"])
    wait_until(lambda: "confirming" in Action.objects.get(pk=action.pk).result, 30, "Zoom's 204")
    zoom_event(sandbox_account, "meeting.ended", meeting, ts=zoom_now_ms())
    (done,) = wait_finished([action.pk], timeout=30)

    # then the event confirmed the end: sent after the action started by the database's clock
    # (on the worker's, started "five minutes later", it was taken for an earlier end's)
    assert done.state == ActionState.SUCCEEDED, done.result_summary
    assert done.result_summary.startswith("Meeting ended (confirmed by Zoom's meeting.ended"), (
        done.result_summary
    )
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.ENDED

    # when the host starts the meeting again a second later, and Zoom says so
    time.sleep(1)
    zoom_event(sandbox_account, "meeting.started", meeting, ts=zoom_now_ms())

    # then the mirror shows it live: the end was not dated five minutes ahead, after this event
    wait_until(
        lambda: Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.STARTED,
        30,
        "the second meeting.started applied",
    )


def test_a_worker_five_minutes_behind_records_its_end_after_zoom_s_earlier_events(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given a meeting Zoom said started a minute ago, an end of its previous session whose
    # meeting.ended (two minutes old) arrives only now, and a worker five minutes behind
    state = zoom_sandbox.state
    workers = celery_worker_process
    workers.kill("w1")
    workers.start("behind", beat=True, concurrency=2, clock_offset=-FIVE_MINUTES)
    meeting = state.add_meeting(sandbox_host["id"], status="started")
    zoom_event(sandbox_account, "meeting.started", meeting, ts=zoom_now_ms(-60))
    zoom_event(sandbox_account, "meeting.ended", meeting, ts=zoom_now_ms(-120))
    wait_until(
        lambda: not WebhookEvent.objects.filter(processed_at=None).exists(),
        30,
        "both events applied",
    )
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.STARTED

    # when an operator ends it
    (done,) = wait_finished([ask(sandbox_account, "end_meeting", target_id=meeting["id"]).pk])

    # then the old event was not taken as evidence (it was sent before this action started by
    # the database's clock; by the worker's, three minutes after), Zoom was looked at instead
    assert done.state == ActionState.SUCCEEDED, done.result_summary
    assert done.result_summary.startswith("Meeting ended (confirmed: Zoom no longer shows"), (
        done.result_summary
    )
    # and the mirror shows the end: dated by the database, not five minutes back, before the
    # meeting.started of a minute ago
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.ENDED


# --- Countdowns: a date made by one host's clock, a wait by another's ---------------------------


def test_countdowns_are_dated_and_waited_for_by_the_database_s_clock(db, monkeypatch):
    # given a host whose clock is five minutes ahead of the database's
    from datetime import UTC, datetime

    from kombu.asynchronous import timer

    from zoomadmin import clock
    from zoomadmin.celery import app

    real = time.time
    monkeypatch.setattr(clock.time, "time", lambda: real() + FIVE_MINUTES)
    monkeypatch.setitem(clock._measured, "at", None)
    monkeypatch.setitem(clock._measured, "frozen", False)

    # then its offset is measured, and Celery dates a countdown's ETA (sending) and turns an ETA
    # into a wait (receiving, kombu's timer) by the database's clock, not five minutes ahead
    assert clock.offset() == pytest.approx(-FIVE_MINUTES, abs=1)
    assert abs((app.now() - datetime.now(UTC)).total_seconds()) < 1
    assert timer._time is clock.epoch
    assert clock.epoch() == pytest.approx(real(), abs=1)
