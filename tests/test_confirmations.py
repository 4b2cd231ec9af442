"""An end Zoom accepted is confirmed by Zoom's *.ended event where webhooks flow, else by a look
sent after the account's ends still waiting; Zoom's status lag is looked at again, not failed
(meetings.confirmations). The rules first, then the model and the webhook receiver, then a
real worker against the sandbox over HTTP with Zoom's events delivered to the dashboard."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.timezone import now

from meetings import confirmations, webhooks
from meetings.actions import create_batch, execute, request_action
from meetings.confirmations import after_error, after_look, ends_ahead, next_step
from meetings.models import Action, ActionState, Attempt, Meeting, MeetingStatus, Webinar
from meetings.models.actions import TERMINAL_STATES, LeaseLostError
from tests.waiting import wait_until


@pytest.fixture(autouse=True)
def confirm_settings(settings):
    settings.ACTION_CONFIRM_EVENT_WAIT_SECONDS = 5.0
    settings.ACTION_CONFIRM_INTERVAL_SECONDS = 3.0
    settings.ACTION_CONFIRM_CHECKS = 4
    settings.ACTION_MAX_ATTEMPTS = 3


# --- the rules --------------------------------------------------------------------------------


def test_the_first_look_waits_for_zoom_s_event_first():
    step, seconds, confirming = next_step(None, now=1000.0)
    assert (step, seconds) == ("wait", 5.0)
    assert confirming == {"accepted_at": 1000.0, "looks": 0, "errors": 0}


def test_the_first_look_of_a_batch_s_end_comes_back_after_the_ends_ahead():
    assert next_step(None, now=1000.0, ends_ahead=299, interval=0.035)[:2] == pytest.approx(
        ("wait", 10.465)
    )


def test_a_look_is_not_sent_before_it_is_due():
    confirming = {"accepted_at": 1000.0, "looks": 0, "errors": 0}
    assert next_step(confirming, now=1003.0)[:2] == ("wait", 2.0)


def test_a_look_that_is_due_is_sent_when_no_end_is_waiting():
    confirming = {"accepted_at": 1000.0, "looks": 0, "errors": 0}
    assert next_step(confirming, now=1005.0, ends_ahead=0, interval=0.035)[:2] == ("look", 0.0)


def test_a_look_that_is_due_waits_for_the_ends_ahead_at_the_rate_limit():
    confirming = {"accepted_at": 1000.0, "looks": 0, "errors": 0}
    step, seconds, _ = next_step(confirming, now=1005.0, ends_ahead=100, interval=0.035)
    assert step == "wait"
    assert seconds == pytest.approx(3.5)
    # many ends ahead: it counts them again after at most MAX_DEFERRAL_SECONDS
    step, seconds, _ = next_step(confirming, now=1005.0, ends_ahead=100_000, interval=0.035)
    assert (step, seconds) == ("wait", confirmations.MAX_DEFERRAL_SECONDS)


def test_ends_that_never_stop_coming_hold_a_look_back_only_so_long():
    confirming = {"accepted_at": 1000.0, "looks": 0, "errors": 0}
    late = 1005.0 + confirmations.MAX_TOTAL_DEFERRAL_SECONDS
    assert next_step(confirming, now=late, ends_ahead=5, interval=0.035)[0] == "look"


def test_a_look_that_still_says_started_is_looked_at_again_up_to_the_bound():
    confirming = {"accepted_at": 1000.0, "looks": 0, "errors": 0}
    for look in range(1, 4):
        confirming, finished = after_look(confirming, ended=False, now=1000.0 + look)
        assert not finished
        assert confirming["looks"] == look
        assert confirming["next_at"] == 1000.0 + look + 3.0
    confirming, finished = after_look(confirming, ended=False, now=1010.0)
    assert finished
    assert confirming["looks"] == 4


def test_a_look_that_finds_it_ended_finishes_at_once():
    confirming, finished = after_look({"accepted_at": 1.0, "looks": 0}, ended=True, now=7.0)
    assert finished
    assert confirming["looks"] == 1


def test_a_look_zoom_did_not_answer_is_tried_again_then_given_up():
    confirming = {"accepted_at": 1.0, "looks": 0, "errors": 0}
    confirming, give_up = after_error(confirming, now=10.0, delay=2.0)
    assert (give_up, confirming["errors"], confirming["next_at"]) == (False, 1, 12.0)
    confirming, give_up = after_error(confirming, now=12.0, delay=2.0)
    confirming, give_up = after_error(confirming, now=14.0, delay=2.0)
    assert give_up


# --- the model and the webhook receiver -----------------------------------------------------------


def ask_end(account, target_id, kind="end_meeting", **kwargs):
    action, created = request_action(
        account=account,
        kind=kind,
        source="dashboard",
        target_id=target_id,
        enqueue=False,
        **kwargs,
    )
    assert created
    return action


def waiting_for_confirmation(account, target_id, kind="end_meeting"):
    """An end whose 204 was heard and that waits for evidence, as a run leaves it."""
    action = Action.claim(ask_end(account, target_id, kind).pk, task_id="task-1")
    operation = "meetingStatus" if kind == "end_meeting" else "webinarStatus"
    attempt = action.start_attempt(operation)
    action.complete_attempt(attempt, outcome=Attempt.Outcome.OK, http_status=204)
    confirming = {"accepted_at": time.time(), "looks": 0, "errors": 0}
    action.await_confirmation(confirmations.CONFIRMING, confirming, seconds=5)
    action.schedule_retry(5, "look-1")  # handed over to the message of its look
    return action


def deliver(account, event, zoom_id, *, at):
    """A webhook delivery as the receiver stores it, then applied as the worker applies it."""
    envelope = {
        "event": event,
        "event_ts": int(at.timestamp() * 1000),
        "payload": {
            "account_id": account.zoom_account_id,
            "object": {"id": str(zoom_id), "uuid": f"uuid-{zoom_id}==", "topic": "Town hall"},
        },
    }
    stored, created = webhooks.store_event(envelope)
    assert created
    assert webhooks.process_event(stored.pk)
    stored.refresh_from_db()
    return stored


def test_a_waiting_end_reads_ended_at_zoom_confirming_on_its_page(
    sandbox_account, client, operator
):
    action = waiting_for_confirmation(sandbox_account, 81234567890)
    client.force_login(operator)

    page = client.get(reverse("action", args=[action.pk])).content.decode()

    assert "Ended at Zoom, confirming…" in page
    assert "Talking to Zoom" not in page


def test_zoom_s_meeting_ended_event_confirms_the_end_waiting_for_it(sandbox_account):
    # given an end Zoom accepted, waiting for evidence, and the meeting live in the mirror
    Meeting.objects.create(account=sandbox_account, zoom_id=81234567890, status="started")
    action = waiting_for_confirmation(sandbox_account, 81234567890)

    # when Zoom's meeting.ended comes through the webhook receiver
    event = deliver(sandbox_account, "meeting.ended", 81234567890, at=now())

    # then the action succeeded, saying it was Zoom's event, with no call made to confirm it
    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED
    assert action.result_summary.startswith(
        "Meeting ended (confirmed by Zoom's meeting.ended event, sent at "
    )
    assert action.result["confirmed_by"] == "event"
    assert "confirming" not in action.result
    assert [a.operation for a in action.attempts.all()] == ["meetingStatus"]
    assert event.error == ""
    assert Meeting.objects.get(zoom_id=81234567890).status == MeetingStatus.ENDED
    # and the run scheduled for a look finds nothing left to do
    assert execute(action.pk, task_id="task-1") is None


def test_zoom_s_webinar_ended_event_confirms_the_webinar_end_waiting_for_it(sandbox_account):
    Webinar.objects.create(account=sandbox_account, zoom_id=91234567890, status="started")
    action = waiting_for_confirmation(sandbox_account, 91234567890, kind="end_webinar")

    deliver(sandbox_account, "webinar.ended", 91234567890, at=now())

    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED
    assert action.result_summary.startswith("Webinar ended (confirmed by Zoom's webinar.ended")
    assert action.result["confirmed_by"] == "event"


def test_an_ended_event_zoom_sent_before_the_end_was_asked_for_confirms_nothing(
    sandbox_account,
):
    action = waiting_for_confirmation(sandbox_account, 81234567890)

    deliver(sandbox_account, "meeting.ended", 81234567890, at=now() - timedelta(minutes=5))

    action.refresh_from_db()
    assert action.state == ActionState.RUNNING
    assert action.result_summary == "Ended at Zoom, confirming…"


def test_the_event_leaves_an_end_whose_look_is_under_way_to_that_look(sandbox_account):
    # given a run looking at Zoom right now (its attempt written, no answer yet)
    waiting = waiting_for_confirmation(sandbox_account, 81234567890)
    action = Action.claim(waiting.pk, task_id="look-1")
    action.start_attempt("meeting (confirm end)", counts=False)

    deliver(sandbox_account, "meeting.ended", 81234567890, at=now())

    # then the event did not finish it under the run's feet: the run will, on the same event
    action.refresh_from_db()
    assert action.state == ActionState.RUNNING
    assert action.attempts.filter(outcome=Attempt.Outcome.PENDING).count() == 1


def test_a_run_that_claimed_the_end_as_the_event_finished_it_stops_without_writing(
    sandbox_account,
):
    # given the run scheduled for a look has claimed the action (a new lease)
    waiting = waiting_for_confirmation(sandbox_account, 81234567890)
    run = Action.claim(waiting.pk, task_id="look-1")

    # when the event finishes it first
    deliver(sandbox_account, "meeting.ended", 81234567890, at=now())

    # then the run's next write is refused, and the record is the event's
    with pytest.raises(LeaseLostError):
        run.start_attempt("meeting (confirm end)", counts=False)
    waiting.refresh_from_db()
    assert waiting.state == ActionState.SUCCEEDED
    assert waiting.attempts.count() == 1


def test_the_ends_ahead_of_a_look_are_those_on_their_way_to_zoom(sandbox_account):
    sent = ask_end(sandbox_account, 81000000001)
    Action.mark_sent({sent.pk: "task-sent"})
    ask_end(sandbox_account, 81000000002)  # its message never went out: not waited for
    running = Action.claim(ask_end(sandbox_account, 81000000003).pk)
    waiting_for_confirmation(sandbox_account, 81000000004)  # had its 204 already
    ask_end(sandbox_account, 81000000005, kind="recover_meeting")  # not an end

    assert ends_ahead(sandbox_account) == 2
    assert running.state == ActionState.RUNNING


# --- a real worker, the sandbox over HTTP, Zoom's events delivered to the dashboard -------------

WEBHOOK_SECRET = "confirmations-webhook-secret"
GET_MEETING = ("GET", "/meetings/{meetingId}")
END_MEETING = ("PUT", "/meetings/{meetingId}/status")


def zoom_calls(state, since=0):
    return [(r.method, r.template) for r in state.requests_since(since) if r.template]


def finished(action, timeout):
    return wait_until(
        lambda: Action.objects.filter(pk=action.pk, state__in=TERMINAL_STATES).first(),
        timeout,
        "the end to be confirmed",
    )


def live(account, zoom_sandbox, host, **kwargs):
    meeting = zoom_sandbox.state.add_meeting(host["id"], status="started", **kwargs)
    Meeting.objects.create(account=account, zoom_id=meeting["id"], status=MeetingStatus.STARTED)
    return meeting


@pytest.mark.worker
# A look would only be sent 60 s after Zoom's 204: the event must come first.
@pytest.mark.worker_env(ACTION_CONFIRM_EVENT_WAIT_SECONDS="60")
def test_an_end_is_confirmed_by_zoom_s_event_with_no_get_sent(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, live_server, settings
):
    # given Zoom's webhooks reach the dashboard, and Zoom's status lags 2 s behind its 204
    state = zoom_sandbox.state
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = WEBHOOK_SECRET
    state.set_webhook(live_server.url + "/webhooks/zoom/", secret=WEBHOOK_SECRET)
    assert state.end_status_lag == 2.0  # the sandbox's default
    meeting = live(sandbox_account, zoom_sandbox, sandbox_host)

    # when an operator ends it
    action, _ = request_action(
        account=sandbox_account, kind="end_meeting", source="dashboard", target_id=meeting["id"]
    )
    done = finished(action, 40)

    # then Zoom's meeting.ended confirmed it, and no GET was spent
    assert done.state == ActionState.SUCCEEDED, done.result_summary
    assert done.result_summary.startswith("Meeting ended (confirmed by Zoom's meeting.ended")
    assert done.result["confirmed_by"] == "event"
    assert [a.operation for a in done.attempts.all()] == ["meetingStatus"]
    assert GET_MEETING not in zoom_calls(state)
    assert zoom_calls(state).count(END_MEETING) == 1
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.ENDED


@pytest.mark.worker
def test_an_end_with_no_webhooks_flowing_is_confirmed_by_a_later_look(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given no webhooks reach the dashboard, and Zoom ends at once
    state = zoom_sandbox.state
    state.end_status_lag = 0
    meeting = live(sandbox_account, zoom_sandbox, sandbox_host)

    action, _ = request_action(
        account=sandbox_account, kind="end_meeting", source="dashboard", target_id=meeting["id"]
    )
    done = finished(action, 40)

    # then the look, sent after the event wait, confirmed it
    assert done.state == ActionState.SUCCEEDED, done.result_summary
    assert done.result_summary == "Meeting ended (confirmed: Zoom no longer shows it in progress)"
    assert done.result["confirmed_by"] == "look"
    assert done.result["looks"] == 1
    assert zoom_calls(state) == [END_MEETING, GET_MEETING]
    look = done.attempts.get(operation="meeting (confirm end)")
    end = done.attempts.get(operation="meetingStatus")
    # the look waited for Zoom's event first (ACTION_CONFIRM_EVENT_WAIT_SECONDS, 0.2 s here)
    assert look.started_at - end.started_at >= timedelta(seconds=0.2)


@pytest.mark.worker
def test_an_end_whose_first_look_still_says_started_succeeds_at_a_later_look(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given Zoom's status lags 2 s behind its 204 (the sandbox's default) and no webhooks:
    # the worker looks 0.2 s after the 204, then every 0.5 s, up to 10 times
    state = zoom_sandbox.state
    meeting = live(sandbox_account, zoom_sandbox, sandbox_host)

    action, _ = request_action(
        account=sandbox_account, kind="end_meeting", source="dashboard", target_id=meeting["id"]
    )
    # while it is confirming, its page says so in words
    wait_until(
        lambda: Action.objects.filter(pk=action.pk, result__has_key="confirming").exists(),
        20,
        "Zoom to accept the end",
    )
    assert Action.objects.get(pk=action.pk).result_summary == "Ended at Zoom, confirming…"
    done = finished(action, 40)

    # then the looks that still said started were not a failure
    assert done.state == ActionState.SUCCEEDED, done.result_summary
    assert done.result["confirmed_by"] == "look"
    assert done.result["looks"] >= 2
    calls = zoom_calls(state)
    assert calls[0] == END_MEETING
    assert calls[1:] == [GET_MEETING] * done.result["looks"]
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.ENDED


@pytest.mark.worker
# 3 Light requests a second: the batch's 12 ends take 4 s, each end's look is due after 0.2 s.
@pytest.mark.worker_env(ZOOM_RATE_LIMIT_LIGHT="3")
def test_a_batch_s_ends_are_all_sent_before_any_confirming_look(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    state = zoom_sandbox.state
    state.end_status_lag = 0
    meetings = [live(sandbox_account, zoom_sandbox, sandbox_host) for _ in range(12)]
    since = state.request_seq

    batch, _ = create_batch(
        account=sandbox_account,
        kind="end_meeting",
        targets=Meeting.objects.filter(zoom_id__in=[m["id"] for m in meetings]),
        user=operator,
    )
    wait_until(lambda: batch.progress()["finished"], 90, "the batch to say done")

    # then every end was confirmed when the batch said done
    actions = list(batch.actions.all())
    assert {a.state for a in actions} == {ActionState.SUCCEEDED}
    assert {a.result["confirmed_by"] for a in actions} == {"look"}
    assert all(state.meetings[m["id"]]["status"] == "waiting" for m in meetings)
    # and Zoom's log shows the 12 ends first, then the looks
    calls = [c for c in zoom_calls(state, since) if c in (END_MEETING, GET_MEETING)]
    assert calls[:12] == [END_MEETING] * 12
    assert set(calls[12:]) == {GET_MEETING}
    assert len(calls) == 24
