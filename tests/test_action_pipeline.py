"""The action pipeline for real: a Celery worker process (prefork, with beat running the sweeper)
on the real broker (embedded filesystem broker, or Redis), the test database, and the Zoom
sandbox over HTTP. What issue 5 asks to be proven, one test each."""

import contextlib
import itertools
import threading
import time

import pytest
from django.db import connection
from django.utils.timezone import now

from meetings.actions import create_batch, request_action
from meetings.models import (
    Action,
    ActionState,
    Attempt,
    Meeting,
    MeetingStatus,
    PastMeeting,
    Webinar,
)
from meetings.models.actions import TERMINAL_STATES
from tests.waiting import wait_until

pytestmark = [pytest.mark.worker]

STREAM_KEY = "sk-pipeline-1b2c3d4e5f"


def wait_finished(ids, timeout=60):
    ids = list(ids)
    wait_until(
        lambda: Action.objects.filter(pk__in=ids, state__in=TERMINAL_STATES).count() == len(ids),
        timeout,
        f"actions {ids} to finish: "
        + str(list(Action.objects.filter(pk__in=ids).values_list("pk", "state"))),
    )
    return list(Action.objects.filter(pk__in=ids).order_by("pk"))


def ask(account, kind, **kwargs):
    kwargs.setdefault("source", "dashboard")
    action, created = request_action(account=account, kind=kind, **kwargs)
    assert created
    return action


def summaries(finished):
    return {a.pk: (a.kind, a.state, a.result_summary) for a in finished}


def test_each_kind_of_action_runs_end_to_end(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    state = zoom_sandbox.state
    to_end = state.add_meeting(sandbox_host["id"], topic="To end", status="started")
    deleted = state.add_meeting(sandbox_host["id"], topic="Deleted", status="deleted")
    streamed = state.add_meeting(sandbox_host["id"], topic="Streamed", status="started")
    webinar = state.add_webinar(sandbox_host["id"], topic="Webinar", status="started")
    past = state.add_past_instance(to_end["id"], participants=12)

    # A sync fills the mirror first (and is itself an action).
    (sync,) = wait_finished([ask(sandbox_account, "sync", user=operator).pk])
    assert sync.state == ActionState.SUCCEEDED, sync.result_summary
    assert sync.result["complete"] is True
    assert Meeting.objects.filter(account=sandbox_account).count() == 2  # deleted: not listed

    first = [
        ask(sandbox_account, "end_meeting", target_id=to_end["id"], user=operator),
        ask(sandbox_account, "recover_meeting", target_id=deleted["id"], user=operator),
        ask(sandbox_account, "end_webinar", target_id=webinar["id"], user=operator),
        ask(sandbox_account, "fetch_past_meeting", target_uuid=past["uuid"], user=operator),
        ask(
            sandbox_account,
            "update_livestream",
            target_id=streamed["id"],
            user=operator,
            params={
                "stream_url": "rtmp://live.example/app",
                "stream_key": STREAM_KEY,
                "page_url": "https://watch.example/live",
                "resolution": "720p",
            },
        ),
    ]
    done = wait_finished(a.pk for a in first)
    assert all(a.state == ActionState.SUCCEEDED for a in done), summaries(done)
    start = ask(
        sandbox_account,
        "start_livestream",
        target_id=streamed["id"],
        user=operator,
        params={"active_speaker_name": True, "display_name": "Town hall"},
    )
    (started,) = wait_finished([start.pk])
    assert started.state == ActionState.SUCCEEDED, started.result_summary
    assert state.get_meeting(streamed["id"])["livestreaming"] is True
    assert Meeting.objects.get(zoom_id=streamed["id"]).livestream_status == "live"
    (stopped,) = wait_finished(
        [ask(sandbox_account, "stop_livestream", target_id=streamed["id"]).pk]
    )
    assert stopped.state == ActionState.SUCCEEDED, stopped.result_summary

    # Zoom did each thing, and the mirror says so.
    assert state.get_meeting(to_end["id"])["status"] == "waiting"
    assert Meeting.objects.get(zoom_id=to_end["id"]).status == MeetingStatus.ENDED
    assert state.get_meeting(deleted["id"])["status"] == "waiting"
    assert Meeting.objects.get(zoom_id=deleted["id"]).status == MeetingStatus.WAITING
    assert state.webinars[webinar["id"]]["status"] == "ended"
    assert Webinar.objects.get(zoom_id=webinar["id"]).status == MeetingStatus.ENDED
    assert PastMeeting.objects.get(uuid=past["uuid"]).participants_count == 12
    assert state.get_meeting(streamed["id"])["livestream"]["stream_key"] == STREAM_KEY
    assert state.get_meeting(streamed["id"])["livestreaming"] is False
    row = Meeting.objects.get(zoom_id=streamed["id"])
    assert (row.stream_url, row.livestream_status) == ("rtmp://live.example/app", "stopped")
    # Every action: who, a Celery task id, one successful main attempt, no secret left.
    for action in Action.objects.all():
        assert action.requested_by in (operator, None)
        assert action.celery_task_id
        assert action.started_at <= action.finished_at
        assert action.secret_params == ""
        assert action.attempts.filter(outcome=Attempt.Outcome.OK).exists()
        assert STREAM_KEY not in str(action.params) + action.result_summary


@pytest.mark.worker_env(ACTION_MAX_RATE_LIMITED_ATTEMPTS="40")
def test_a_429_storm_is_waited_out_and_every_action_succeeds(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given Zoom allowing 2 Light requests a second where the plan says 30
    state = zoom_sandbox.state
    state.set_rate_limit("light", 2)
    live = [state.add_meeting(sandbox_host["id"], status="started") for _ in range(6)]

    # when six ends are asked for at once
    actions = [ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in live]
    done = wait_finished((a.pk for a in actions), timeout=90)

    # then all succeed, after Zoom's 429s were waited out as Retry-After said
    assert all(a.state == ActionState.SUCCEEDED for a in done), summaries(done)
    assert all(state.get_meeting(m["id"])["status"] == "waiting" for m in live)
    assert state.counters["status_429"] > 0
    limited = Attempt.objects.filter(action__in=done, http_status=429)
    assert limited.exists()
    for attempt in limited:
        assert attempt.message.startswith("Zoom is rate limiting this account")
        if attempt.operation == "meetingStatus":
            assert attempt.outcome == Attempt.Outcome.RETRY
            assert 0 < attempt.retry_after <= 60
    # and the waits were countdowns on new task messages, not a worker asleep
    if limited.filter(operation="meetingStatus").exists():
        assert ": retry in " in celery_worker_process.log()


@pytest.mark.worker_env(ACTION_MAX_ATTEMPTS="12")
def test_server_errors_are_retried_until_they_succeed(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    state = zoom_sandbox.state
    live = [state.add_meeting(sandbox_host["id"], status="started") for _ in range(4)]
    # Every end's first try gets a 5xx (so each action must retry, in whatever order the
    # worker's processes send them), and a third of all the other requests too.
    state.set_faults(error_rate=0.3, first_try_errors=True)

    actions = [ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in live]
    done = wait_finished((a.pk for a in actions), timeout=90)

    assert all(a.state == ActionState.SUCCEEDED for a in done), summaries(done)
    assert state.counters["injected_errors"] >= 4
    for action in done:
        retried = action.attempts.filter(operation="meetingStatus", outcome=Attempt.Outcome.RETRY)
        assert retried.exists(), summaries([action])
        assert {a.http_status for a in retried} <= {500, 503}
        assert all(a.retry_after > 0 for a in retried)
        # Exactly one end went through per action; the others are the recorded failures.
        assert action.attempts.filter(operation="meetingStatus", outcome="ok").count() == 1


def test_a_4xx_fails_once_with_zoom_s_message(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started", host_locked=True)

    (action,) = wait_finished([ask(sandbox_account, "end_meeting", target_id=meeting["id"]).pk])

    assert action.state == ActionState.FAILED
    assert action.result_summary == "Zoom: you are not the host of this meeting (3003)"
    assert (action.http_status, action.zoom_code, action.attempts.count()) == (400, 3003, 1)
    assert zoom_sandbox.state.counters["PUT /meetings/{meetingId}/status"] == 1


@pytest.mark.worker_env(ACTION_MAX_RECLAIMS="10")
def test_a_worker_killed_mid_action_again_and_again_finishes_each_action_once(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given slow answers from Zoom, so that calls are in flight when the worker dies
    state = zoom_sandbox.state
    live = [state.add_meeting(sandbox_host["id"], status="started") for _ in range(5)]
    state.set_faults(latency_ms=1500)
    actions = [ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in live]
    ids = [a.pk for a in actions]
    first_seen = {}

    def note_finished():
        for a in Action.objects.filter(pk__in=ids, state__in=TERMINAL_STATES):
            first_seen.setdefault(a.pk, (a.state, a.finished_at, a.result_summary))

    # when the worker is SIGKILLed three times while a call is in flight
    kills = 0
    since = now()
    for _ in range(3):
        # a call made by the current worker (not a dead one's) is in flight, or all are done
        wait_until(
            lambda since=since: (
                Attempt.objects.filter(action_id__in=ids, outcome="", started_at__gt=since).exists()
                or Action.objects.filter(pk__in=ids, state__in=TERMINAL_STATES).count() == len(ids)
            ),
            60,
            "a call in flight",
        )
        note_finished()
        if len(first_seen) == len(ids):
            break
        celery_worker_process.kill()
        kills += 1
        note_finished()
        since = now()
        celery_worker_process.start()
    state.set_faults()
    done = wait_finished(ids, timeout=90)
    note_finished()

    # then every action finished exactly once, and the record shows what happened
    assert kills >= 2
    assert all(a.state == ActionState.SUCCEEDED for a in done), summaries(done)
    for action in done:
        assert first_seen[action.pk] == (action.state, action.finished_at, action.result_summary)
        attempts = list(action.attempts.filter(operation="meetingStatus"))
        numbers = [a.number for a in action.attempts.all()]
        assert len(numbers) == len(set(numbers))
        assert not action.attempts.filter(outcome="").exists()
        for earlier, later in itertools.pairwise(attempts):
            if earlier.outcome == Attempt.Outcome.INTERRUPTED:
                assert later.after_reclaim
        assert sum(a.outcome == Attempt.Outcome.OK for a in attempts) <= 1
    interrupted = Attempt.objects.filter(action_id__in=ids, outcome=Attempt.Outcome.INTERRUPTED)
    assert interrupted.count() >= 1
    assert all(state.get_meeting(m["id"])["status"] == "waiting" for m in live)


def test_a_pool_process_killed_mid_call_is_redelivered_and_taken_over_when_its_lease_ends(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given a worker without the sweeper (only Celery's redelivery can save the action), with
    # one pool process: killing an idle one too could take billiard's shared queue lock with it
    celery_worker_process.kill()
    worker = celery_worker_process.start(beat=False, concurrency=1)
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started")
    zoom_sandbox.state.set_faults(latency_ms=1000)
    action = ask(sandbox_account, "end_meeting", target_id=meeting["id"])
    wait_until(lambda: Attempt.objects.filter(action=action, outcome="").exists(), 30, "the call")
    task_id = Action.objects.get(pk=action.pk).celery_task_id

    # when the pool process running it is SIGKILLed (acks_late + reject_on_worker_lost)
    assert worker.kill_children()
    zoom_sandbox.state.set_faults()
    (done,) = wait_finished([action.pk], timeout=60)

    # then the same message came back (Celery notices the lost process after its
    # lost-worker timeout, here longer than the 6 s lease) and took the action over, counted
    # as a takeover: no sweeper ran
    assert done.state == ActionState.SUCCEEDED, done.result_summary
    assert done.reclaims == 1
    # (the action's last message is the one that came back to confirm the end: a new one)
    # (received again when Celery noticed the lost process, and once more if that was while
    # the dead run's lease still ran: it then asked again when the lease had run out)
    assert worker.log().count(f"run_action[{task_id}] received") in (2, 3)
    first, second = done.attempts.filter(operation="meetingStatus")
    assert first.outcome == Attempt.Outcome.INTERRUPTED
    assert second.after_reclaim
    assert "WorkerLostError" in worker.log()


@contextlib.contextmanager
def broker_unreachable():
    """This process cannot reach the broker: every send fails (connection refused)."""
    from zoomadmin.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def reset_pools():
        # The next send builds its connection from app.conf again.
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport_options = {}
    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        reset_pools()


def test_actions_asked_for_while_the_broker_is_down_run_when_it_is_back(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given no worker, and a broker this process cannot reach
    celery_worker_process.kill()
    live = [zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started") for _ in range(3)]
    with broker_unreachable():
        actions = [ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in live]
        # the clicks are recorded, but no message went out
        for action in actions:
            action.refresh_from_db()
            assert action.state == ActionState.QUEUED
            assert action.celery_task_id == "" and action.lease_expires_at is None

    # when the broker and the worker (with its sweeper) are back
    celery_worker_process.start()
    done = wait_finished((a.pk for a in actions), timeout=60)

    # then the sweeper sent them, and each ran once
    assert all(a.state == ActionState.SUCCEEDED for a in done), summaries(done)
    for action in done:
        assert action.celery_task_id
        assert action.attempts.filter(operation="meetingStatus").count() == 1


def mirrored_live_meetings(zoom_sandbox, account, host, count):
    """COUNT live meetings in the sandbox, and in the mirror as a sync would have left them."""
    live = [zoom_sandbox.state.add_meeting(host["id"], status="started") for _ in range(count)]
    return [
        Meeting.objects.create(
            account=account, zoom_id=m["id"], topic=m["topic"], status=MeetingStatus.STARTED
        )
        for m in live
    ]


def test_a_batch_s_messages_reach_the_worker_and_end_every_meeting_once(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    # given ten live meetings selected on the bulk screen
    targets = mirrored_live_meetings(zoom_sandbox, sandbox_account, sandbox_host, 10)

    # when the batch is made (its messages go out through one producer after the commit)
    batch, _ = create_batch(
        account=sandbox_account, kind="end_meeting", targets=targets, user=operator
    )

    # then each action got its own message, and each meeting was ended once
    done = wait_finished(batch.actions.values_list("pk", flat=True))
    assert len(done) == batch.total == 10
    assert all(a.state == ActionState.SUCCEEDED for a in done), summaries(done)
    assert len({a.celery_task_id for a in done}) == 10
    assert zoom_sandbox.state.counters["PUT /meetings/{meetingId}/status"] == 10
    for action in done:
        assert action.attempts.filter(operation="meetingStatus").count() == 1


def test_a_batch_made_while_the_broker_is_down_runs_when_it_is_back(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    # given no worker, and a broker this process cannot reach
    celery_worker_process.kill()
    targets = mirrored_live_meetings(zoom_sandbox, sandbox_account, sandbox_host, 3)
    with broker_unreachable():
        batch, _ = create_batch(
            account=sandbox_account, kind="end_meeting", targets=targets, user=operator
        )
        # the batch is recorded, but no message went out
        assert batch.total == 3
        assert (
            list(batch.actions.values_list("state", "celery_task_id", "lease_expires_at"))
            == [(ActionState.QUEUED, "", None)] * 3
        )

    # when the broker and the worker (with its sweeper) are back
    celery_worker_process.start()
    done = wait_finished(batch.actions.values_list("pk", flat=True), timeout=60)

    # then the sweeper sent them, and each ran once
    assert all(a.state == ActionState.SUCCEEDED for a in done), summaries(done)
    assert zoom_sandbox.state.counters["PUT /meetings/{meetingId}/status"] == 3


def test_two_operators_ending_the_same_meeting_at_once_make_one_action(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator, admin_user
):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started")
    barrier = threading.Barrier(2)
    results = []

    def click(user):
        try:
            barrier.wait(timeout=10)
            results.append(
                request_action(
                    account=sandbox_account,
                    kind="end_meeting",
                    source="dashboard",
                    target_id=meeting["id"],
                    user=user,
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(u,)) for u in (operator, admin_user)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert len(results) == 2
    assert results[0][0].pk == results[1][0].pk
    assert sorted(created for _, created in results) == [False, True]
    (action,) = wait_finished([results[0][0].pk])
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    assert Action.objects.count() == 1
    assert zoom_sandbox.state.counters["PUT /meetings/{meetingId}/status"] == 1


# The headroom is pinned at 0.8 here: this test proves the limit is shared by two processes, and
# CI runs it on a loaded machine where the default's 42 ms of jitter tolerance is not always there
# (the default's own figure is measured by `make bench` on a calm machine).
@pytest.mark.worker_env(ZOOM_RATE_LIMIT_LIGHT="5", ZOOM_RATE_LIMIT_HEADROOM="0.8")
def test_the_rate_limit_holds_across_two_worker_processes(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given Zoom's Light limit at 5 a second, configured as such, and two workers
    state = zoom_sandbox.state
    state.set_rate_limit("light", 5)
    celery_worker_process.start("w2", beat=False)
    live = [state.add_meeting(sandbox_host["id"], status="started") for _ in range(12)]
    seq = state.request_seq

    # when 12 ends (24 Light requests with their confirmations) are asked for at once
    started = time.monotonic()
    actions = [ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in live]
    done = wait_finished((a.pk for a in actions), timeout=90)
    elapsed = time.monotonic() - started

    # then Zoom never had to refuse one, and the work went at the limit, not far below it
    assert all(a.state == ActionState.SUCCEEDED for a in done), summaries(done)
    assert state.counters["status_429"] == 0
    light = [r for r in state.requests_since(seq) if r.template]
    assert len(light) >= 24
    assert elapsed < 24 / (5 * 0.8) + 8  # the limit at this headroom, and start-up
    # and both workers did part of it
    for name in ("w1", "w2"):
        log = celery_worker_process.processes[name].log()
        assert "run_action" in log and "succeeded" in log, f"{name} ran nothing"
