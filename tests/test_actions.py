"""The action pipeline in one process: requests, idempotency, the audit record's rules, and
`execute` run inline against the sandbox over real HTTP (retries, Zoom's errors, confirmation,
crash recovery, secrets). The same pipeline with a real worker is in test_action_pipeline.py."""

import json
import re
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils.timezone import now

from meetings import actions
from meetings.actions import (
    backoff_delay,
    cancel_action,
    cancel_batch,
    create_batch,
    dry_run,
    execute,
    request_action,
    sweep,
)
from meetings.models import (
    Action,
    ActionKind,
    ActionSource,
    ActionState,
    Attempt,
    Meeting,
    MeetingStatus,
    PastMeeting,
    Webinar,
    ZoomAccount,
)
from meetings.models.actions import REDACTED, ActionFinishedError, LeaseLostError
from tests.fixtures.worker import purge_broker

STREAM_KEY = "sk-live-7f3a9c1e5b2d4f60"


@pytest.fixture(autouse=True)
def fast(settings):
    # No webhooks here: an end is confirmed by looks, which outlast the sandbox's status lag
    settings.ACTION_CONFIRM_EVENT_WAIT_SECONDS = 0.05
    settings.ACTION_CONFIRM_INTERVAL_SECONDS = 0.25
    settings.ACTION_CONFIRM_CHECKS = 20
    settings.ACTION_RETRY_BASE_SECONDS = 0.05
    settings.ACTION_RETRY_MAX_SECONDS = 0.2


@pytest.fixture
def account(db):
    return ZoomAccount.objects.create(name="Acme", kind="server_to_server", client_id="x")


def end_request(account, target_id=81234567890, **kwargs):
    kwargs.setdefault("source", ActionSource.DASHBOARD)
    return request_action(
        account=account, kind=ActionKind.END_MEETING, target_id=target_id, enqueue=False, **kwargs
    )


def live_meeting(zoom_sandbox, host, **kwargs):
    return zoom_sandbox.state.add_meeting(host["id"], status="started", **kwargs)


def recorded_sleep():
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(min(seconds, 2.5))

    sleep.slept = slept
    return sleep


# --- asking ------------------------------------------------------------------------------------


def test_a_request_is_recorded_with_who_when_and_from_where(account, operator):
    action, created = end_request(
        account, user=operator, client_ip="203.0.113.9", topic="All hands", source="dashboard"
    )
    assert created
    action.refresh_from_db()
    assert action.state == ActionState.QUEUED
    assert (action.kind, action.target_type, action.target_id) == (
        "end_meeting",
        "meeting",
        81234567890,
    )
    assert action.requested_by == operator
    assert action.client_ip == "203.0.113.9"
    assert action.source == "dashboard"
    assert action.topic == "All hands"
    assert action.requested_at <= now()


def test_the_topic_is_snapshotted_from_the_mirror(account):
    Meeting.objects.create(account=account, zoom_id=81234567890, topic="Board meeting")
    action, _ = end_request(account)
    assert action.topic == "Board meeting"


def test_asking_twice_while_queued_returns_the_same_action(account, operator, viewer):
    first, created = end_request(account, user=operator)
    second, created_again = end_request(account, user=viewer)
    assert created and not created_again
    assert second.pk == first.pk
    assert Action.objects.count() == 1


def test_another_kind_or_target_is_another_action(account):
    end_request(account)
    _, other_target = end_request(account, target_id=81234567891)
    _, other_kind = request_action(
        account=account, kind="stop_livestream", source="bulk", target_id=81234567890, enqueue=False
    )
    assert other_target and other_kind
    assert Action.objects.count() == 3


def test_two_syncs_of_an_account_are_one_job(account):
    # A sync has no target id (NULL): the constraint still makes it one job.
    first, _ = request_action(account=account, kind="sync", source="schedule", enqueue=False)
    second, created = request_action(
        account=account, kind="sync", source="dashboard", enqueue=False
    )
    assert not created and second.pk == first.pk
    assert first.topic == "Acme"


def test_a_finished_action_does_not_stop_a_new_request(account):
    first, _ = end_request(account)
    first.cancel()
    second, created = end_request(account)
    assert created and second.pk != first.pk


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_for_the_same_end_make_one_action():
    account = ZoomAccount.objects.create(name="Race", kind="oauth", client_id="r")
    barrier = threading.Barrier(4)
    results = []

    def click():
        try:
            barrier.wait(timeout=10)
            results.append(end_request(account))
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 4
    assert len({a.pk for a, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Action.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "explode", "target_id": 1}, "unknown action kind"),
        ({"kind": "end_meeting", "target_id": None}, "needs a meeting id"),
        ({"kind": "end_meeting", "target_id": "12abc"}, "positive whole number"),
        ({"kind": "end_meeting", "target_id": 2**63}, "below 2\\*\\*63"),
        ({"kind": "end_meeting", "target_id": 5, "target_type": "webinar"}, "acts on a meeting"),
        ({"kind": "end_meeting", "target_id": 5, "params": {"force": True}}, "no parameter"),
        ({"kind": "sync", "target_id": 5}, "whole account"),
        ({"kind": "fetch_past_meeting", "target_uuid": "no spaces please"}, "UUID"),
        ({"kind": "end_meeting", "target_id": 5, "source": "telepathy"}, "unknown source"),
        (
            {
                "kind": "update_livestream",
                "target_id": 5,
                "params": {"stream_url": "rtmp://x", "page_url": "https://x.example"},
            },
            "stream_key",
        ),
        (
            {
                "kind": "update_livestream",
                "target_id": 5,
                "params": {
                    "stream_url": "rtmp://x",
                    "stream_key": STREAM_KEY,
                    "page_url": "javascript:alert(1)",
                },
            },
            "page_url",
        ),
        (
            {"kind": "start_livestream", "target_id": 5, "params": {"display_name": "x" * 51}},
            "display_name",
        ),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_written(account, kwargs, message):
    kwargs.setdefault("source", "dashboard")
    with pytest.raises(ValueError, match=message) as refused:
        request_action(account=account, enqueue=False, **kwargs)
    assert STREAM_KEY not in str(refused.value)
    assert Action.objects.count() == 0


def test_a_stream_key_is_stored_redacted_and_encrypted(account):
    action, _ = request_action(
        account=account,
        kind="update_livestream",
        source="dashboard",
        target_id=81234567890,
        params={
            "stream_url": "rtmp://live.example/app",
            "stream_key": STREAM_KEY,
            "page_url": "https://watch.example/live",
            "resolution": "1080p",
        },
        enqueue=False,
    )
    action.refresh_from_db()
    assert action.params["stream_key"] == REDACTED == "•••• (set)"
    assert action.params["resolution"] == "1080p"
    assert action.secrets == {"stream_key": STREAM_KEY}
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM meetings_action WHERE id = %s", [action.pk])
        row = cursor.fetchone()
    assert not any(STREAM_KEY in str(value) for value in row)


# --- the record's rules -------------------------------------------------------------------------


def test_a_queued_action_is_claimed_once(account):
    action, _ = end_request(account)
    claimed = Action.claim(action.pk, task_id="t-1")
    assert claimed is not None and claimed.state == ActionState.RUNNING
    assert claimed.lease_token and claimed.lease_expires_at > now()
    assert claimed.celery_task_id == "t-1"
    assert Action.claim(action.pk, task_id="t-2") is None
    # A redelivery of its own message does not take it over while its lease is fresh: the run
    # may be alive. It learns how long to wait instead.
    assert Action.claim(action.pk, task_id="t-1") is None
    assert 100 < Action.lease_remaining(action.pk, task_id="t-1") <= 120
    # Once the lease has run out (its worker died), the redelivery takes it over, counted.
    Action.objects.filter(pk=action.pk).update(lease_expires_at=now() - timedelta(seconds=1))
    again = Action.claim(action.pk, task_id="t-1")
    assert again is not None and again.lease_token != claimed.lease_token
    assert again.reclaims == 1
    with pytest.raises(LeaseLostError):
        claimed.mark_succeeded("too late: the redelivery owns it now")


def test_a_retry_message_takes_over_the_action_its_run_handed_over_uncounted(account):
    action, _ = end_request(account)
    run = Action.claim(action.pk, task_id="t-1")
    run.schedule_retry(30, "retry-1")

    # neither a redelivery of the first message nor another takes it; its retry does, at once
    assert Action.claim(action.pk, task_id="t-1") is None
    assert Action.claim(action.pk, task_id="t-2") is None
    retry = Action.claim(action.pk, task_id="retry-1")
    assert retry is not None and retry.reclaims == 0
    # and a redelivery of the retry message, while that run's lease is fresh, does not
    assert Action.claim(action.pk, task_id="retry-1") is None
    with pytest.raises(LeaseLostError):
        run.renew_lease()


def test_a_message_redelivered_while_its_run_s_lease_is_fresh_asks_again_when_it_runs_out(
    account,
):
    # given a run in progress (its worker may be alive, or just died) under message t-1
    purge_broker()
    action, _ = end_request(account)
    Action.claim(action.pk, task_id="t-1").start_attempt("meetingStatus")

    # when t-1 is delivered again
    assert execute(action.pk, task_id="t-1") is None

    # then it did not run, and sent itself again to arrive when the lease has run out
    action.refresh_from_db()
    assert action.state == ActionState.RUNNING and action.reclaims == 0
    assert action.attempts.count() == 1
    assert actions.broker_queue_length() == 1
    purge_broker()


def test_a_run_whose_retry_could_not_be_sent_keeps_the_action(account):
    action, _ = end_request(account)
    run = Action.claim(action.pk, task_id="t-1")
    run.schedule_retry(30, "retry-1")

    run.keep()  # the broker refused the retry message: this run waits and retries itself

    run.renew_lease()
    assert Action.claim(action.pk, task_id="retry-1") is None


@pytest.mark.parametrize("skew", [-300, 300], ids=["host 5 min behind", "host 5 min ahead"])
def test_leases_are_written_and_judged_by_the_database_clock_not_a_skewed_host_s(
    account, monkeypatch, skew
):
    from meetings.models import actions as action_models

    def skewed():
        return now() + timedelta(seconds=skew)

    action, _ = end_request(account)
    first = Action.claim(action.pk, task_id="t-1")
    first.start_attempt("meetingStatus")

    # when the sweeper and a redelivered message run on a host whose clock is 5 minutes off
    monkeypatch.setattr(actions, "now", skewed)
    monkeypatch.setattr(action_models, "now", skewed)
    swept = sweep()
    again = Action.claim(action.pk, task_id="t-1")

    # then the fresh lease is nobody's to take: no premature takeover ahead, none missed behind
    assert swept["reclaimed"] == 0 and again is None
    # and a lease such a host writes lasts ACTION_LEASE_SECONDS by the database's clock
    first.renew_lease()
    assert 100 < Action.lease_remaining(action.pk, task_id="t-1") <= 120


def test_an_action_whose_worker_keeps_dying_fails_after_three_stops_counting_redeliveries(
    account,
):
    # given the default limit, and an action whose run kills its worker every time
    action, _ = end_request(account)
    calls = 0
    first = Action.claim(action.pk, task_id="t-1")
    first.start_attempt("meetingStatus")
    calls += 1
    for _ in range(10):  # its message redelivered after each death (acks_late), lease run out
        Action.objects.filter(pk=action.pk).update(lease_expires_at=now() - timedelta(seconds=1))
        run = Action.claim(action.pk, task_id="t-1")
        if run is None:
            break
        run.start_attempt("meetingStatus")
        calls += 1

    # then it failed when its worker had stopped 3 times: 3 calls to Zoom, not 9 or 14
    action.refresh_from_db()
    assert action.state == ActionState.FAILED
    assert calls == 3 and action.reclaims == 3
    assert action.result_summary.startswith("Its worker stopped 3 times while running it")
    assert [a.outcome for a in action.attempts.all()] == ["interrupted"] * 3


def test_a_finished_action_never_changes_again(account):
    action, _ = end_request(account)
    run = Action.claim(action.pk)
    run.mark_failed("Zoom: you are not the host of this meeting (3003)", zoom_code=3003)
    with pytest.raises(LeaseLostError):
        run.mark_succeeded("rewriting history")
    stale = Action.objects.get(pk=action.pk)
    stale.result_summary = "edited"
    with pytest.raises(ActionFinishedError):
        stale.save()
    with pytest.raises(ActionFinishedError):
        stale.delete()
    with pytest.raises(ActionFinishedError):
        Action.objects.filter(pk=action.pk).delete()
    assert not stale.cancel()
    assert Action.claim(action.pk) is None
    action.refresh_from_db()
    assert action.state == ActionState.FAILED
    assert action.result_summary == "Zoom: you are not the host of this meeting (3003)"


def test_only_a_queued_action_can_be_cancelled(account, operator):
    queued, _ = end_request(account)
    assert cancel_action(queued, user=operator)
    assert queued.state == ActionState.CANCELLED
    assert queued.result_summary == "Cancelled by oscar-operator before it ran"
    running, _ = end_request(account, target_id=81234567891)
    Action.claim(running.pk)
    assert not cancel_action(running, user=operator)


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.ACTION_RETRY_BASE_SECONDS = 1
    settings.ACTION_RETRY_MAX_SECONDS = 10
    assert backoff_delay(1, rng=lambda: 0.0) == 0.5
    assert backoff_delay(1, rng=lambda: 1.0) == 1.0
    assert backoff_delay(3, rng=lambda: 0.0) == 2.0
    assert backoff_delay(3, rng=lambda: 1.0) == 4.0
    assert backoff_delay(10, rng=lambda: 1.0) == 10.0


# --- running it against the sandbox (inline) -----------------------------------------------------


def test_ending_a_meeting_is_confirmed_before_the_mirror_says_ended(
    sandbox_account, sandbox_host, zoom_sandbox, operator
):
    # Zoom's status lag (the sandbox's default) is the test after the next
    zoom_sandbox.state.end_status_lag = 0
    meeting = live_meeting(zoom_sandbox, sandbox_host, topic="Town hall")
    Meeting.objects.create(
        account=sandbox_account, zoom_id=meeting["id"], status=MeetingStatus.STARTED
    )
    action, _ = end_request(sandbox_account, target_id=meeting["id"], user=operator)

    assert execute(action.pk) == ActionState.SUCCEEDED

    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED
    # In words an operator reads: not Zoom's "waiting", which sounds like the opposite of ended.
    assert action.result_summary == "Meeting ended (confirmed: Zoom no longer shows it in progress)"
    assert action.http_status == 200  # the confirming GET was the last answer
    assert action.attempts_count == 1
    attempts = list(action.attempts.all())
    assert [(a.operation, a.outcome, a.http_status) for a in attempts] == [
        ("meetingStatus", "ok", 204),
        ("meeting (confirm end)", "ok", 200),
    ]
    assert all(a.duration_ms is not None for a in attempts)
    assert zoom_sandbox.state.get_meeting(meeting["id"])["status"] == "waiting"
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.ENDED


def test_an_end_zoom_accepts_but_does_not_carry_out_is_reported_as_such(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    settings.ACTION_CONFIRM_CHECKS = 2
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    Meeting.objects.create(
        account=sandbox_account, zoom_id=meeting["id"], status=MeetingStatus.STARTED
    )
    zoom_sandbox.state.set_faults(silent_end_rate=1.0)
    action, _ = end_request(sandbox_account, target_id=meeting["id"])

    execute(action.pk)

    action.refresh_from_db()
    assert action.state == ActionState.FAILED
    assert re.fullmatch(
        r"Zoom accepted the end but still shows the meeting in progress \(looked 2 times, "
        r"the last \d+ s after Zoom's answer\)",
        action.result_summary,
    )
    assert action.result["confirmed_by"] is None
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.STARTED


def test_an_end_zoom_still_shows_in_progress_at_the_first_look_succeeds_at_a_later_one(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    # given Zoom's status lags 2 s behind its 204, and the dashboard looks after 0.05 s, then
    # every 0.5 s, up to 8 times
    zoom_sandbox.state.end_status_lag = 2.0
    settings.ACTION_CONFIRM_INTERVAL_SECONDS = 0.5
    settings.ACTION_CONFIRM_CHECKS = 8
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    Meeting.objects.create(
        account=sandbox_account, zoom_id=meeting["id"], status=MeetingStatus.STARTED
    )
    action, _ = end_request(sandbox_account, target_id=meeting["id"])

    # when it is run
    assert execute(action.pk) == ActionState.SUCCEEDED

    # then the looks while Zoom still said started were not failures: a later one confirmed it
    action.refresh_from_db()
    assert action.result_summary == "Meeting ended (confirmed: Zoom no longer shows it in progress)"
    assert action.result["confirmed_by"] == "look"
    assert action.result["looks"] >= 3  # 2 s of lag: at least the looks at 0.05, 0.55 and 1.05 s
    looks = action.attempts.filter(operation="meeting (confirm end)")
    assert looks.count() == action.result["looks"]
    assert set(looks.values_list("outcome", "http_status")) == {("ok", 200)}
    assert action.attempts_count == 1  # one end sent
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.ENDED


def test_a_4xx_fails_at_once_with_zoom_s_code_and_message(
    sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = live_meeting(zoom_sandbox, sandbox_host, host_locked=True)
    action, _ = end_request(sandbox_account, target_id=meeting["id"])

    execute(action.pk)

    action.refresh_from_db()
    assert action.state == ActionState.FAILED
    assert action.result_summary == "Zoom: you are not the host of this meeting (3003)"
    assert (action.http_status, action.zoom_code, action.attempts_count) == (400, 3003, 1)
    (attempt,) = action.attempts.all()
    assert (attempt.outcome, attempt.http_status, attempt.zoom_code) == ("error", 400, 3003)
    assert zoom_sandbox.state.get_meeting(meeting["id"])["status"] == "started"


def test_a_server_error_is_retried_then_succeeds(sandbox_account, sandbox_host, zoom_sandbox):
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    zoom_sandbox.state.set_faults(error_rate=1.0)
    action, _ = end_request(sandbox_account, target_id=meeting["id"])
    slept = []

    def sleep(seconds):
        # Zoom recovers while we wait.
        slept.append(seconds)
        zoom_sandbox.state.set_faults()

    execute(action.pk, sleep=sleep)

    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED
    first, second = action.attempts.filter(operation="meetingStatus")
    assert first.outcome == Attempt.Outcome.RETRY and first.http_status in (500, 503)
    assert first.retry_after == slept[0] > 0
    assert second.outcome == Attempt.Outcome.OK and second.http_status == 204
    assert action.attempts_count == 2


def test_a_policy_s_end_waits_behind_the_slots_operators_booked_and_spends_no_retry(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    from meetings.ratelimit import throttle_for

    zoom_sandbox.state.end_status_lag = 0
    settings.ZOOM_RATE_LIMIT_LIGHT = 4
    settings.ZOOM_RATE_LIMIT_HEADROOM = 1.0
    settings.ZOOM_RATE_LIMIT_AUTOMATIC_MAX_WAIT_SECONDS = 0.3
    clicks = throttle_for(sandbox_account, sleep=lambda s: None)

    def operators_book_the_next_seconds():
        return max(clicks.reserve("light") for _ in range(6))  # 1.5 s of the account's slots

    # A policy's end: it does not book behind the operators' slots but tries again after them,
    # and waiting so spends none of its retries.
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    policy_end, _ = end_request(sandbox_account, target_id=meeting["id"], source="policy")
    started, booked = time.monotonic(), operators_book_the_next_seconds()
    assert execute(policy_end.pk, inline=True) == ActionState.SUCCEEDED
    assert time.monotonic() - started >= booked - 0.1
    policy_end.refresh_from_db()
    outcomes = [a.outcome for a in policy_end.attempts.filter(operation="meetingStatus")]
    assert outcomes[0] == "retry" and outcomes[-1] == "ok"
    assert policy_end.attempts_count == 1

    # An operator's click in the same place books the next slot at once and waits for it.
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    click_end, _ = end_request(sandbox_account, target_id=meeting["id"])
    operators_book_the_next_seconds()
    assert execute(click_end.pk, inline=True) == ActionState.SUCCEEDED
    click_end.refresh_from_db()
    assert [a.outcome for a in click_end.attempts.filter(operation="meetingStatus")] == ["ok"]
    assert click_end.attempts_count == 1


def test_retries_stop_after_the_configured_attempts(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    settings.ACTION_MAX_ATTEMPTS = 3
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    zoom_sandbox.state.set_faults(error_rate=1.0)
    action, _ = end_request(sandbox_account, target_id=meeting["id"])

    execute(action.pk, sleep=lambda s: None)

    action.refresh_from_db()
    assert action.state == ActionState.FAILED
    assert action.attempts_count == 3
    assert action.result_summary.endswith("— gave up after 3 attempts")
    assert [a.outcome for a in action.attempts.all()] == ["retry", "retry", "error"]


def test_a_429_waits_for_retry_after_and_the_account_backs_off(
    sandbox_account, sandbox_host, zoom_sandbox, zoom_sandbox_session
):
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    zoom_sandbox.state.set_rate_limit("light", 1)
    # Another app of the account used this second's only Light request.
    zoom_sandbox_session.get(f"{zoom_sandbox.api_url}/meetings/{meeting['id']}", timeout=5)
    action, _ = end_request(sandbox_account, target_id=meeting["id"])
    sleep = recorded_sleep()

    execute(action.pk, sleep=sleep)

    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    limited = action.attempts.get(number=1)
    assert (limited.outcome, limited.http_status) == ("retry", 429)
    assert limited.message.startswith("Zoom is rate limiting this account; retrying after")
    assert 0 < limited.retry_after <= 2.5
    assert action.attempts.filter(operation="meetingStatus", outcome="ok").count() == 1


def test_a_connection_needing_reconnect_fails_at_once_without_calling_zoom(
    sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    sandbox_account.status = ZoomAccount.Status.NEEDS_RECONNECT
    sandbox_account.save()
    action, _ = end_request(sandbox_account, target_id=meeting["id"])
    before = zoom_sandbox.state.counters["requests"]

    execute(action.pk)

    action.refresh_from_db()
    assert action.state == ActionState.FAILED
    assert action.result_summary == "Zoom connection needs to be reconnected"
    assert action.attempts.get().message == "Zoom connection needs to be reconnected"
    assert zoom_sandbox.state.counters["requests"] == before


def test_a_live_stream_key_reaches_zoom_but_never_the_record(
    sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"])
    row = Meeting.objects.create(account=sandbox_account, zoom_id=meeting["id"])
    action, _ = request_action(
        account=sandbox_account,
        kind="update_livestream",
        source="dashboard",
        target_id=meeting["id"],
        params={
            "stream_url": "rtmp://live.example/app",
            "stream_key": STREAM_KEY,
            "page_url": "https://watch.example/live",
        },
        enqueue=False,
    )

    execute(action.pk)

    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    assert zoom_sandbox.state.get_meeting(meeting["id"])["livestream"]["stream_key"] == STREAM_KEY
    assert action.secret_params == "" and action.secrets == {}
    assert STREAM_KEY not in json.dumps([action.params, action.result, action.result_summary])
    assert all(STREAM_KEY not in a.message for a in action.attempts.all())
    row.refresh_from_db()
    assert row.stream_key == STREAM_KEY  # the mirror keeps it, encrypted
    assert row.stream_url == "rtmp://live.example/app"


def test_a_past_meeting_with_a_slashed_uuid_is_fetched_and_stored(
    sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"])
    instance = zoom_sandbox.state.add_past_instance(meeting["id"], slash="double", participants=7)
    action, _ = request_action(
        account=sandbox_account,
        kind="fetch_past_meeting",
        source="webhook",
        target_uuid=instance["uuid"],
        enqueue=False,
    )

    execute(action.pk)

    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    assert "7 participants" in action.result_summary
    past = PastMeeting.objects.get(uuid=instance["uuid"])
    assert past.participants_count == 7
    assert action.result["past_meeting_id"] == past.pk


def test_a_run_killed_mid_call_is_taken_over_and_finishes_once(
    sandbox_account, sandbox_host, zoom_sandbox
):
    # given a run that wrote its attempt, sent the end, and died before hearing back
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    action, _ = end_request(sandbox_account, target_id=meeting["id"])
    dead = Action.claim(action.pk, task_id="task-1")
    dead.start_attempt("meetingStatus")
    zoom_sandbox.state.end_meeting(meeting["id"])  # Zoom did end it
    Action.objects.filter(pk=action.pk).update(lease_expires_at=now() - timedelta(seconds=1))

    # when the sweeper reclaims it and a new run takes it
    swept = sweep()
    assert swept["reclaimed"] == 1
    assert execute(action.pk) == ActionState.SUCCEEDED

    # then the record says: interrupted, then a retry after the reclaim that Zoom refused
    # (nothing left to end) and the check that found the meeting ended
    action.refresh_from_db()
    assert action.reclaims == 1
    first, second = action.attempts.filter(operation="meetingStatus")
    assert first.outcome == Attempt.Outcome.INTERRUPTED
    assert "worker stopped" in first.message
    assert second.after_reclaim and second.zoom_code == 3000
    assert action.result_summary.startswith("Meeting ended (an earlier request went through")
    assert dead.cancel() is False
    with pytest.raises(LeaseLostError):
        dead.mark_failed("the dead run wakes up")
    purge_broker()


def test_an_end_whose_answer_timed_out_is_confirmed_rather_than_sent_again(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    # given Zoom slower than our timeout: it ends the meeting, but we never hear it say so
    from meetings.zoom.oauth import ensure_access_token

    settings.ZOOM_TIMEOUT_SECONDS = 0.3
    meeting = live_meeting(zoom_sandbox, sandbox_host)
    ensure_access_token(sandbox_account.pk)  # the token is not what times out here
    zoom_sandbox.state.set_faults(latency_ms=700)
    action, _ = end_request(sandbox_account, target_id=meeting["id"])

    def sleep(seconds):
        zoom_sandbox.state.set_faults()  # Zoom is quick again by the next check
        time.sleep(0.8)

    execute(action.pk, sleep=sleep)

    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    assert action.result_summary.startswith("Meeting ended (an earlier request went through")
    (end,) = action.attempts.filter(operation="meetingStatus")
    assert end.message.startswith("Zoom did not answer in time")
    assert zoom_sandbox.state.counters["PUT /meetings/{meetingId}/status"] == 1


def test_a_run_that_died_after_zoom_accepted_does_not_call_again(
    sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="deleted")
    action, _ = request_action(
        account=sandbox_account,
        kind="recover_meeting",
        source="dashboard",
        target_id=meeting["id"],
        enqueue=False,
    )
    dead = Action.claim(action.pk, task_id="task-1")
    attempt = dead.start_attempt("meetingStatus")
    zoom_sandbox.state.recover_meeting(meeting["id"])
    dead.complete_attempt(attempt, outcome="ok", http_status=204, message="OK (HTTP 204)")
    before = zoom_sandbox.state.counters["requests"]

    # the redelivered message takes it over once the dead run's lease has run out
    Action.objects.filter(pk=action.pk).update(lease_expires_at=now() - timedelta(seconds=1))
    assert execute(action.pk, task_id="task-1") == ActionState.SUCCEEDED

    action.refresh_from_db()
    assert action.result_summary == "Meeting recovered"
    assert action.attempts.count() == 1
    assert zoom_sandbox.state.counters["requests"] == before


def test_a_worker_that_keeps_dying_fails_the_action_in_the_end(account, settings):
    settings.ACTION_MAX_RECLAIMS = 2
    action, _ = end_request(account)
    for _ in range(2):
        run = Action.claim(action.pk)
        run.start_attempt("meetingStatus")
        Action.objects.filter(pk=action.pk).update(lease_expires_at=now() - timedelta(seconds=1))
        sweep()
    action.refresh_from_db()
    assert action.state == ActionState.FAILED
    assert action.result_summary.startswith("Its worker stopped 2 times while running it")
    assert [a.outcome for a in action.attempts.all()] == ["interrupted", "interrupted"]
    purge_broker()


def test_the_sweeper_sends_what_the_broker_never_got(account, settings):
    settings.ACTION_REQUEUE_AFTER_SECONDS = 1
    action, _ = end_request(account)  # enqueue=False: as if the broker was down
    Action.objects.filter(pk=action.pk).update(requested_at=now() - timedelta(seconds=5))
    fresh, _ = end_request(account, target_id=81234567899)

    counts = sweep()

    assert counts["sent"] == 1
    action.refresh_from_db()
    fresh.refresh_from_db()
    assert action.celery_task_id and action.lease_expires_at > now()
    assert fresh.celery_task_id == "" and fresh.lease_expires_at is None  # within its grace
    purge_broker()


def test_a_sent_message_nobody_claimed_is_sent_again(account):
    action, _ = end_request(account)
    Action.objects.filter(pk=action.pk).update(
        celery_task_id="lost", lease_expires_at=now() - timedelta(seconds=1)
    )
    assert sweep()["sent"] == 1
    action.refresh_from_db()
    assert action.celery_task_id != "lost"
    purge_broker()


def queued_backlog(account, size):
    """SIZE queued end actions, their messages sent (as a bulk end leaves them)."""
    Action.objects.bulk_create(
        Action(
            account=account,
            kind=ActionKind.END_MEETING,
            target_type="meeting",
            target_id=82000000000 + n,
            source=ActionSource.BULK,
        )
        for n in range(size)
    )
    pks = list(Action.objects.filter(state=ActionState.QUEUED).values_list("pk", flat=True))
    assert actions.enqueue_actions(pks) == size
    return pks


def test_the_sweeper_does_not_copy_a_slowly_draining_backlog_into_the_queue(account):
    # given 2,000 actions whose messages wait in the broker behind a slow worker, all past
    # their dispatch deadline
    purge_broker()
    queued_backlog(account, 2000)
    Action.objects.update(lease_expires_at=now() - timedelta(seconds=1))
    assert actions.broker_queue_length() == 2000

    # when the sweeper runs again and again
    sent = [sweep()["sent"] for _ in range(5)]

    # then it sends nothing: no message was lost, the queue holds the backlog and no more
    assert sent == [0] * 5
    assert actions.broker_queue_length() == 2000
    purge_broker()


def test_the_sweeper_sends_again_what_the_broker_lost_and_only_that(account):
    # given a backlog of 300 overdue actions whose broker lost 120 of their messages
    purge_broker()
    pks = queued_backlog(account, 300)
    Action.objects.update(lease_expires_at=now() - timedelta(seconds=1))
    purge_broker()
    actions.enqueue_actions(pks[:180])
    Action.objects.update(lease_expires_at=now() - timedelta(seconds=1))

    # when the sweeper runs twice
    first, second = sweep()["sent"], sweep()["sent"]

    # then the 120 lost are sent once, and the queue again holds one message per action
    assert (first, second) == (120, 0)
    assert actions.broker_queue_length() == 300
    purge_broker()


def test_an_overdue_action_overtaken_by_a_newer_claimed_one_is_sent_again(account):
    # given an action whose message the broker lost, a newer one a worker took 10 s ago, and a
    # queue kept long by other messages (a retry's countdown message)
    purge_broker()
    older, _ = end_request(account, target_id=81234567001)
    newer, _ = end_request(account, target_id=81234567002)
    Action.mark_sent({older.pk: "lost-message"})
    Action.objects.filter(pk=older.pk).update(lease_expires_at=now() - timedelta(seconds=1))
    Action.claim(newer.pk, task_id="its-message")
    Action.objects.filter(pk=newer.pk).update(started_at=now() - timedelta(seconds=10))
    actions._send(newer.pk, task_id="a-retry", countdown=60)
    assert actions.broker_queue_length() == 1

    # when the sweeper runs: then the overtaken action's message is sent again, once
    assert sweep()["sent"] == 1
    older.refresh_from_db()
    assert older.celery_task_id not in ("", "lost-message")
    purge_broker()


def test_when_the_broker_cannot_say_what_it_holds_every_overdue_action_is_sent_again(
    account, monkeypatch
):
    purge_broker()
    queued_backlog(account, 3)
    Action.objects.update(lease_expires_at=now() - timedelta(seconds=1))
    monkeypatch.setattr(actions, "broker_queue_length", lambda: None)

    assert sweep()["sent"] == 3  # a duplicate message is harmless, a lost click is not
    purge_broker()


def test_a_message_that_cannot_be_sent_leaves_the_action_for_the_sweeper(account, monkeypatch):
    from meetings.tasks.actions import run_action

    def broker_down(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(run_action, "apply_async", broker_down)
    action, _ = end_request(account)
    assert actions.enqueue_actions([action.pk]) == 0
    action.refresh_from_db()
    assert action.state == ActionState.QUEUED and action.lease_expires_at is None


# --- bulk ----------------------------------------------------------------------------------------


@pytest.fixture
def meetings(account):
    rows = {
        "live": Meeting.objects.create(
            account=account, zoom_id=81000000001, topic="Live one", status="started"
        ),
        "live2": Meeting.objects.create(
            account=account, zoom_id=81000000002, topic="Live two", status="started"
        ),
        "waiting": Meeting.objects.create(
            account=account, zoom_id=81000000003, topic="Tomorrow", status="waiting"
        ),
        "streaming": Meeting.objects.create(
            account=account,
            zoom_id=81000000004,
            topic="Streamed",
            status="started",
            livestream_status="live",
        ),
    }
    return rows


def test_a_dry_run_says_what_a_batch_would_do_and_why_not(account, meetings):
    end_request(account, target_id=meetings["live2"].zoom_id)  # already being ended
    plan = dry_run(
        "end_meeting",
        [meetings["live"], meetings["live2"], meetings["waiting"], meetings["live"], 81999999999],
        account=account,
    )
    assert [(p.target_id, p.do) for p in plan] == [
        (81000000001, True),
        (81000000002, False),
        (81000000003, False),
        (81000000001, False),
        (81999999999, True),
    ]
    assert plan[1].reason.startswith("already requested (action #")
    assert plan[2].reason == "not live (waiting)"
    assert plan[3].reason == "listed twice"
    assert "not in the dashboard's copy" in plan[4].reason
    assert plan[0].as_dict()["topic"] == "Live one"
    assert Action.objects.count() == 1  # the dry run did nothing


def test_a_dry_run_of_stopping_streams_looks_at_the_stream(meetings, account):
    plan = dry_run("stop_livestream", [meetings["streaming"], meetings["live"]])
    assert [p.do for p in plan] == [True, False]
    assert plan[1].reason == "its live stream is not running"


def test_a_kind_that_is_not_for_bulk_is_refused(meetings):
    with pytest.raises(ValueError, match="cannot be done in bulk"):
        dry_run("update_livestream", [meetings["live"]])


def test_a_batch_makes_one_action_per_target_and_can_be_cancelled(
    account, meetings, operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        batch, _ = create_batch(
            account=account,
            kind="end_meeting",
            targets=[meetings["live"], meetings["live2"], meetings["waiting"]],
            user=operator,
            client_ip="198.51.100.4",
        )
    assert len(callbacks) == 1  # one send for the whole batch, after commit
    assert batch.total == 2
    items = list(batch.actions.order_by("target_id"))
    assert [a.target_id for a in items] == [81000000001, 81000000002]
    assert {(a.source, a.requested_by_id, a.client_ip) for a in items} == {
        ("bulk", operator.pk, "198.51.100.4")
    }
    Action.claim(items[0].pk)  # one has started

    assert cancel_batch(batch, user=operator) == 1

    progress = batch.progress()
    assert (progress["running"], progress["cancelled"], progress["done"]) == (1, 1, 1)
    assert not progress["finished"]
    assert batch.cancelled_at is not None
    items[1].refresh_from_db()
    assert items[1].result_summary == "Batch cancelled by oscar-operator before this action ran"


def test_a_batch_with_nothing_to_do_is_refused(account, meetings):
    with pytest.raises(ValueError, match="Nothing to do: not live"):
        create_batch(account=account, kind="end_meeting", targets=[meetings["waiting"]])


def test_ending_webinars_in_bulk_reads_the_webinar_mirror(account):
    live = Webinar.objects.create(account=account, zoom_id=91000000001, status="started")
    plan = dry_run("end_webinar", [live, 91000000002], account=account)
    assert [p.target_type for p in plan] == ["webinar", "webinar"]
    assert plan[0].do


def live_meetings(account, count, first=81500000000):
    return Meeting.objects.bulk_create(
        Meeting(account=account, zoom_id=first + n, topic=f"Live {n}", status="started")
        for n in range(count)
    )


def test_a_target_requested_between_the_dry_run_and_the_batch_is_reported_not_made_twice(
    account, meetings, operator, monkeypatch
):
    # given another operator's End for "live2" lands just after this batch's dry run
    real_dry_run = actions.dry_run
    other = {}

    def dry_run_then_a_click(*args, **kwargs):
        plan = real_dry_run(*args, **kwargs)
        other["action"], _ = end_request(account, target_id=meetings["live2"].zoom_id)
        return plan

    monkeypatch.setattr(actions, "dry_run", dry_run_then_a_click)

    # when the batch is made
    batch, plan = create_batch(
        account=account,
        kind="end_meeting",
        targets=[meetings["live"], meetings["live2"]],
        user=operator,
    )

    # then the constraint kept one action for live2, and the plan says whose it is
    theirs = other["action"]
    assert [(p.target_id, p.do) for p in plan] == [(81000000001, True), (81000000002, False)]
    assert plan[1].reason == f"already requested (action #{theirs.pk}, queued)"
    assert plan[1].existing_action_id == theirs.pk
    assert batch.total == 1
    assert list(batch.actions.values_list("target_id", flat=True)) == [81000000001]
    assert Action.objects.filter(target_id=81000000002).count() == 1


def test_a_batch_costs_a_few_queries_not_some_per_target(
    account, operator, django_capture_on_commit_callbacks
):
    from django.test.utils import CaptureQueriesContext

    counts = []
    for size, first in ((3, 81500000000), (60, 81600000000)):
        targets = live_meetings(account, size, first)
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=True),
        ):
            batch, _ = create_batch(
                account=account, kind="end_meeting", targets=targets, user=operator
            )
        assert batch.total == size
        assert not batch.actions.filter(lease_expires_at__isnull=True).exists()  # all sent
        counts.append(len(queries))
    purge_broker()
    # No statement per target: the dry run, the INSERT, a SELECT of the new ids, one UPDATE
    # marking the messages sent, and the batch row with its transaction. The one more for 60
    # targets is SQLite's: Django splits an INSERT at 999 parameters (39 actions).
    assert counts[0] <= 10 and counts[1] <= counts[0] + 1, counts


@pytest.mark.django_db(transaction=True)
# In the opposite order too: two operators' selections of the same meetings sorted differently
# must not deadlock in PostgreSQL (each would wait for a row the other inserted first).
@pytest.mark.parametrize("order", ["same order", "opposite order"])
def test_the_same_batch_submitted_twice_at_once_makes_one_action_per_target(monkeypatch, order):
    account = ZoomAccount.objects.create(name="Race", kind="oauth", client_id="r")
    targets = live_meetings(account, 300)  # enough that the two INSERTs overlap in time
    selections = [targets, targets[::-1] if order == "opposite order" else targets]
    # Both submits pass their dry run before either writes: only the constraint can decide.
    both_planned = threading.Barrier(2)
    real_dry_run = actions.dry_run

    def dry_run_then_wait(*args, **kwargs):
        plan = real_dry_run(*args, **kwargs)
        both_planned.wait(timeout=10)
        return plan

    monkeypatch.setattr(actions, "dry_run", dry_run_then_wait)
    results, errors = [], []

    def submit(selection):
        try:
            results.append(create_batch(account=account, kind="end_meeting", targets=selection))
        except Exception as e:
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(s,)) for s in selections]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    purge_broker()

    assert errors == [] and len(results) == 2
    made = {a.target_id: a for a in Action.objects.all()}
    assert sorted(made) == sorted(m.zoom_id for m in targets)
    assert Action.objects.count() == len(targets)
    assert sum(batch.total for batch, _ in results) == len(targets)
    plans = [{item.target_id: item for item in plan} for _, plan in results]
    for target in targets:
        items = [plan[target.zoom_id] for plan in plans]
        done = [item for item in items if item.do]
        skipped = [item for item in items if not item.do]
        assert len(done) == len(skipped) == 1
        action = made[target.zoom_id]
        assert skipped[0].reason == f"already requested (action #{action.pk}, queued)"
    # every action that was made had its message sent once its batch committed
    assert not Action.objects.filter(lease_expires_at__isnull=True).exists()


def test_messages_sent_before_the_broker_failed_are_marked_and_the_rest_left_for_the_sweeper(
    account, monkeypatch, settings
):
    from meetings.tasks.actions import run_action

    settings.ACTION_REQUEUE_AFTER_SECONDS = 1
    queued = [end_request(account, target_id=81234567000 + n)[0] for n in range(5)]
    real_apply_async = run_action.apply_async
    producers = []

    def broker_dies_at_the_third(*args, **kwargs):
        producers.append(kwargs.get("producer"))
        if len(producers) == 3:
            raise OSError("connection reset by peer")
        return real_apply_async(*args, **kwargs)

    monkeypatch.setattr(run_action, "apply_async", broker_dies_at_the_third)

    assert actions.enqueue_actions([a.pk for a in queued]) == 2

    # one connection for the lot, and no try after the failure
    assert len(producers) == 3 and producers[0] is not None
    assert producers[0] is producers[1] is producers[2]
    for action in queued:
        action.refresh_from_db()
    sent, unsent = queued[:2], queued[2:]
    assert all(a.celery_task_id and a.lease_expires_at > now() for a in sent)
    assert sent[0].celery_task_id != sent[1].celery_task_id
    assert all(a.celery_task_id == "" and a.lease_expires_at is None for a in unsent)

    # and the sweeper sends the rest once the broker is back
    monkeypatch.setattr(run_action, "apply_async", real_apply_async)
    Action.objects.filter(pk__in=[a.pk for a in unsent]).update(
        requested_at=now() - timedelta(seconds=5)
    )
    assert sweep()["sent"] == 3
    assert not Action.objects.filter(lease_expires_at__isnull=True).exists()
    purge_broker()


def test_marking_messages_sent_leaves_an_action_a_worker_has_already_claimed(account):
    waiting, _ = end_request(account, target_id=81234567001)
    claimed, _ = end_request(account, target_id=81234567002)
    Action.claim(claimed.pk, task_id="its-own-message")

    assert Action.mark_sent({waiting.pk: "message-1", claimed.pk: "message-2"}) == 1

    waiting.refresh_from_db()
    claimed.refresh_from_db()
    assert waiting.celery_task_id == "message-1" and waiting.lease_expires_at > now()
    assert claimed.celery_task_id == "its-own-message"
    assert claimed.state == ActionState.RUNNING


# --- retention ------------------------------------------------------------------------------------


def test_only_the_retention_command_deletes_and_only_old_finished_actions(account, capsys):
    from django.core.management import call_command

    from meetings.models import Batch

    old, _ = end_request(account, target_id=81000000001)
    run = Action.claim(old.pk)
    run.start_attempt("meetingStatus")
    run.mark_failed("Zoom: meeting not found or not ended (3001)")
    recent, _ = end_request(account, target_id=81000000002)
    recent.cancel()
    active, _ = end_request(account, target_id=81000000003)
    Action.objects.filter(pk=active.pk).update(requested_at=now() - timedelta(days=900))
    empty_batch = Batch.objects.create(kind="end_meeting", account=account)
    Batch.objects.filter(pk=empty_batch.pk).update(created=now() - timedelta(days=900))
    Action.objects.filter(pk=old.pk).update(finished_at=now() - timedelta(days=800))

    call_command("prune_actions", "--older-than", "730", "--dry-run")
    assert "Would delete 1 actions" in capsys.readouterr().out
    assert Action.objects.count() == 3

    call_command("prune_actions", "--older-than", "730")

    assert "Deleted 1 actions" in capsys.readouterr().out
    assert set(Action.objects.values_list("pk", flat=True)) == {recent.pk, active.pk}
    assert not Attempt.objects.filter(action_id=old.pk).exists()
    assert not Batch.objects.filter(pk=empty_batch.pk).exists()


def test_the_retention_period_cannot_be_zero(account):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("prune_actions", "--older-than", "0")


# --- the embedded broker -----------------------------------------------------------------------


def test_the_embedded_broker_never_shows_a_half_written_message(tmp_path, monkeypatch):
    import os
    from queue import Empty

    from kombu import Connection

    from zoomadmin.broker import Channel

    folder = str(tmp_path)
    with Connection(
        "filesystem://", transport_options={"data_folder_in": folder, "data_folder_out": folder}
    ) as conn:
        channel = conn.default_channel
        assert isinstance(channel, Channel)
        real_replace = os.replace
        checked = []

        def replace(src, dst):
            # Written, not yet renamed: a consumer in another process finds nothing to read.
            with pytest.raises(Empty):
                channel._get("celery")
            checked.append(dst)
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        channel._put("celery", {"body": "whole"})
        assert checked
        assert channel._get("celery") == {"body": "whole"}
