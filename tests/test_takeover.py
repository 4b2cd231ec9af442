"""A change Zoom carried out is not recorded as failed when the worker that asked for it died
before hearing Zoom's answer, and the run that took the action over asked again.

Zoom refuses the repeat with the words it has for real refusals (an ended webinar is "not found
or has expired", a recovered meeting "not deleted"), so the pipeline looks for evidence
(meetings.executors, `already_done`). The decision is unit-tested first, then each kind is taken
over inline against the sandbox, then a real worker is SIGKILLed while Zoom's answer is on its
way."""

import itertools
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils.timezone import now

from meetings import webhooks
from meetings.actions import execute, request_action
from meetings.executors import _event_since_start
from meetings.models import (
    Action,
    ActionState,
    Attempt,
    Meeting,
    MeetingStatus,
    WebhookEvent,
    Webinar,
)
from meetings.models.actions import TERMINAL_STATES
from meetings.zoom.oauth import client_for_account, ensure_access_token
from tests.waiting import wait_until

STREAM = {
    "stream_url": "rtmp://live.example/app",
    "stream_key": "sk-takeover-4e1d9a7c",
    "page_url": "https://watch.example/live",
}


@pytest.fixture(autouse=True)
def fast(settings):
    # An end is confirmed by looks here, which must outlast the sandbox's status lag (2 s)
    settings.ACTION_CONFIRM_EVENT_WAIT_SECONDS = 0.05
    settings.ACTION_CONFIRM_INTERVAL_SECONDS = 0.25
    settings.ACTION_CONFIRM_CHECKS = 20
    settings.ACTION_RETRY_BASE_SECONDS = 0.05
    settings.ACTION_RETRY_MAX_SECONDS = 0.2


def ask(account, kind, target_id, *, enqueue=False, **kwargs):
    action, created = request_action(
        account=account,
        kind=kind,
        source="dashboard",
        target_id=target_id,
        enqueue=enqueue,
        **kwargs,
    )
    assert created
    return action


def died_mid_call(action, operation):
    """What a worker SIGKILLed during a call leaves: the action claimed by its task message
    ("task-1"), the attempt written before the call, and no answer."""
    dead = Action.claim(action.pk, task_id="task-1")
    dead.start_attempt(operation)
    return dead


def lease_runs_out(action):
    """The lease of a dead run passes: only then may its redelivered message take it over."""
    Action.objects.filter(pk=action.pk).update(lease_expires_at=now() - timedelta(seconds=1))


def take_over(action):
    """The task message comes back (Celery redelivers it when its worker died) and runs, once
    the dead run's lease has run out."""
    lease_runs_out(action)
    return execute(action.pk, task_id="task-1")


def received(account, event, zoom_object, *, at):
    """A webhook delivery, stored as the receiver stores it (its processing is not run here)."""
    envelope = {
        "event": event,
        "event_ts": int(at.timestamp() * 1000),
        "payload": {"account_id": account.zoom_account_id, "object": zoom_object},
    }
    stored, created = webhooks.store_event(envelope)
    assert created
    return stored


def mirrored_live(account, webinar):
    """The mirror as webinar.started left it: live, with the running instance's UUID."""
    return Webinar.objects.create(
        account=account,
        zoom_id=webinar["id"],
        uuid=webinar["uuid"],
        topic=webinar["topic"],
        status=MeetingStatus.STARTED,
    )


def main_attempts(action, operation):
    return [
        (a.outcome, a.http_status, a.zoom_code, a.after_reclaim)
        for a in action.attempts.filter(operation=operation)
    ]


# --- the decision: which event counts as evidence ----------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"event": "webinar.started"}, id="another event"),
        pytest.param({"object_id": 91000000099}, id="another webinar"),
        pytest.param({"zoom_account_id": "another-account"}, id="another Zoom account"),
        pytest.param({"sent": -2}, id="sent before the action started"),
    ],
)
def test_only_the_target_s_event_zoom_sent_after_the_action_started_is_evidence(
    sandbox_account, change
):
    action = ask(sandbox_account, "end_webinar", 91000000001)
    action = Action.claim(action.pk)
    started_ms = int(action.started_at.timestamp() * 1000)
    fields = {
        "event": "webinar.ended",
        "object_id": 91000000001,
        "zoom_account_id": sandbox_account.zoom_account_id,
        "sent": 1,
    }
    run = SimpleNamespace(action=action)
    keys = itertools.count()

    def store(**values):
        sent = values.pop("sent")
        return WebhookEvent.objects.create(
            event_ts=started_ms + sent * 1000, dedupe_key=f"delivery-{next(keys)}", **values
        )

    store(**{**fields, **change})
    assert _event_since_start(run, "webinar.ended") is None

    evidence = store(**fields)
    assert _event_since_start(run, "webinar.ended") == evidence


def test_an_account_without_a_zoom_account_id_has_no_events_to_go_by(sandbox_account):
    sandbox_account.zoom_account_id = ""
    sandbox_account.save(update_fields=["zoom_account_id"])
    action = Action.claim(ask(sandbox_account, "end_webinar", 91000000001).pk)
    WebhookEvent.objects.create(
        event="webinar.ended", object_id=91000000001, event_ts=2**62, dedupe_key="k"
    )

    assert _event_since_start(SimpleNamespace(action=action), "webinar.ended") is None


# --- ending a webinar, taken over inline -------------------------------------------------------


def test_a_webinar_ended_before_its_worker_died_is_recorded_ended_by_the_webinar_ended_event(
    sandbox_account, sandbox_host, zoom_sandbox
):
    # given a run that sent the end and died before Zoom's answer came back
    webinar = zoom_sandbox.state.add_webinar(sandbox_host["id"], "All hands", status="started")
    action = ask(sandbox_account, "end_webinar", webinar["id"])
    died_mid_call(action, "webinarStatus")
    ended = zoom_sandbox.state.end_webinar(webinar["id"])  # Zoom did end it
    received(sandbox_account, "webinar.ended", {"id": str(webinar["id"])}, at=now())

    # when the redelivered message takes it over (and sends the end again)
    assert take_over(action) == ActionState.SUCCEEDED

    # then the repeat was refused as for a wrong id, and the event says what happened
    action.refresh_from_db()
    assert main_attempts(action, "webinarStatus") == [
        ("interrupted", None, None, False),
        ("error", 404, 3001, True),
    ]
    assert action.attempts_count == 2
    assert action.result_summary.startswith(
        "Webinar ended (the answer to an earlier request was lost; confirmed: the webinar.ended "
        "event Zoom sent at "
    )
    assert action.result["confirmed"].endswith("UTC arrived")
    assert Webinar.objects.get(zoom_id=webinar["id"]).status == MeetingStatus.ENDED
    assert ended["status"] == "ended"
    assert len(zoom_sandbox.state.past_webinar_instances[webinar["id"]]) == 1


def test_without_the_event_zoom_s_past_instances_show_the_live_instance_ended(
    sandbox_account, sandbox_host, zoom_sandbox
):
    # given a live webinar the mirror knows (from webinar.started), no webhooks since, and a
    # run that died while Zoom ended it
    webinar = zoom_sandbox.state.add_webinar(sandbox_host["id"], "Launch", status="started")
    live_uuid = webinar["uuid"]
    mirrored_live(sandbox_account, webinar)
    action = ask(sandbox_account, "end_webinar", webinar["id"])
    died_mid_call(action, "webinarStatus")
    zoom_sandbox.state.end_webinar(webinar["id"])

    # when it is taken over
    assert take_over(action) == ActionState.SUCCEEDED

    # then Zoom's list of past instances, naming the instance that was live, confirmed it
    action.refresh_from_db()
    assert action.result_summary == (
        "Webinar ended (the answer to an earlier request was lost; confirmed: Zoom lists the "
        f"instance that was live ({live_uuid}) as past)"
    )
    assert [(a.operation, a.outcome, a.http_status) for a in action.attempts.all()] == [
        ("webinarStatus", "interrupted", None),
        ("webinarStatus", "error", 404),
        ("pastWebinars (confirm end)", "ok", 200),
    ]
    assert action.attempts_count == 2  # the look-up is a follow-up, not a try
    assert Webinar.objects.get(zoom_id=webinar["id"]).status == MeetingStatus.ENDED


def test_an_end_nothing_confirms_fails_and_says_the_earlier_request_may_have_ended_it(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    # given no webhooks and a mirror that never saw the webinar live: nothing to go by
    settings.ACTION_CONFIRM_CHECKS = 2
    webinar = zoom_sandbox.state.add_webinar(sandbox_host["id"], status="started")
    action = ask(sandbox_account, "end_webinar", webinar["id"])
    died_mid_call(action, "webinarStatus")
    zoom_sandbox.state.end_webinar(webinar["id"])

    # when it is taken over
    assert take_over(action) == ActionState.FAILED

    # then it failed with Zoom's words, and the record does not pretend Zoom did nothing
    action.refresh_from_db()
    assert action.result_summary == (
        "Zoom: webinar not found or has expired (3001) — nothing shows that an earlier request "
        "ended it: no webinar.ended event from Zoom since the action started, and the "
        "dashboard did not know which instance was live"
    )
    assert (action.http_status, action.zoom_code) == (404, 3001)


def test_a_live_instance_zoom_does_not_list_as_past_is_no_evidence(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    # given an end refused for another reason (the webinar is locked to its host) while the
    # mirror says it is live
    settings.ACTION_CONFIRM_CHECKS = 2
    host = zoom_sandbox.state.add_user("presenter@sandbox.example")
    webinar = zoom_sandbox.state.add_webinar(host["id"], status="started", host_locked=True)
    mirrored_live(sandbox_account, webinar)
    action = ask(sandbox_account, "end_webinar", webinar["id"])
    died_mid_call(action, "webinarStatus")

    assert take_over(action) == ActionState.FAILED

    action.refresh_from_db()
    assert action.result_summary.startswith("Zoom: you are not the host of this webinar (3003)")
    assert action.result_summary.endswith(
        f"Zoom does not list the instance that was live ({webinar['uuid']}) as past"
    )
    assert action.attempts.filter(operation="pastWebinars (confirm end)").count() == 2
    assert zoom_sandbox.state.webinars[webinar["id"]]["status"] == "started"


def test_a_takeover_then_a_server_error_then_zoom_s_refusal_is_still_confirmed(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    # given a run that died while Zoom ended the webinar, and Zoom failing the next request
    settings.ACTION_CONFIRM_CHECKS = 1
    ensure_access_token(sandbox_account.pk)  # the token is not what fails here
    webinar = zoom_sandbox.state.add_webinar(sandbox_host["id"], status="started")
    action = ask(sandbox_account, "end_webinar", webinar["id"])
    died_mid_call(action, "webinarStatus")
    zoom_sandbox.state.end_webinar(webinar["id"])
    zoom_sandbox.state.set_faults(error_rate=1.0)

    def sleep(seconds):
        # while the retry waits, Zoom recovers and its webinar.ended event arrives
        zoom_sandbox.state.set_faults()
        received(sandbox_account, "webinar.ended", {"id": webinar["id"]}, at=now())
        time.sleep(seconds)

    # when it is taken over once the dead run's lease ran out, and retried inline
    lease_runs_out(action)
    assert execute(action.pk, task_id="task-1", inline=True, sleep=sleep) == (ActionState.SUCCEEDED)

    # then the refusal after the retry (not right after the takeover) was checked too
    action.refresh_from_db()
    assert main_attempts(action, "webinarStatus") == [
        ("interrupted", None, None, False),
        ("error", 500, 500, True),
        ("error", 404, 3001, False),
    ]
    assert "confirmed: the webinar.ended event" in action.result_summary


# --- recovering a meeting, taken over inline ---------------------------------------------------


def test_a_recover_whose_answer_was_lost_is_confirmed_by_zoom_answering_for_the_meeting(
    sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="deleted")
    action = ask(sandbox_account, "recover_meeting", meeting["id"])
    died_mid_call(action, "meetingStatus")
    zoom_sandbox.state.recover_meeting(meeting["id"])  # Zoom did recover it

    assert take_over(action) == ActionState.SUCCEEDED

    action.refresh_from_db()
    assert action.result_summary == (
        "Meeting recovered (the answer to an earlier request was lost; confirmed: Zoom answers "
        "for it again (waiting))"
    )
    assert [
        (a.operation, a.outcome, a.http_status, a.zoom_code) for a in action.attempts.all()
    ] == [
        ("meetingStatus", "interrupted", None, None),
        ("meetingStatus", "error", 400, 3000),
        ("meeting (confirm recover)", "ok", 200, None),
    ]
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.WAITING


def test_a_meeting_recovered_event_confirms_a_recover_without_asking_zoom(
    sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="deleted")
    action = ask(sandbox_account, "recover_meeting", meeting["id"])
    died_mid_call(action, "meetingStatus")
    zoom_sandbox.state.recover_meeting(meeting["id"])
    received(sandbox_account, "meeting.recovered", {"id": meeting["id"]}, at=now())

    assert take_over(action) == ActionState.SUCCEEDED

    action.refresh_from_db()
    assert "confirmed: the meeting.recovered event Zoom sent at " in action.result_summary
    assert not action.attempts.filter(operation="meeting (confirm recover)").exists()


def test_a_recover_zoom_did_not_carry_out_fails_with_what_the_check_found(
    sandbox_account, sandbox_host, zoom_sandbox
):
    # given a meeting deleted eight days ago (Zoom keeps deleted meetings for seven), and a run
    # that died before its recover reached Zoom
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="deleted")
    meeting["deleted_at"] = zoom_sandbox.state.now() - 8 * 86400
    action = ask(sandbox_account, "recover_meeting", meeting["id"])
    died_mid_call(action, "meetingStatus")

    assert take_over(action) == ActionState.FAILED

    action.refresh_from_db()
    assert action.result_summary == (
        "Zoom: meeting not found or has expired (3001) — it is not back: Zoom still answers "
        "404 for the meeting"
    )


# --- live streams need no check: Zoom's answer to the repeat is the truth ---------------------


def test_stopping_a_stream_again_after_a_takeover_succeeds_on_zoom_s_204(
    sandbox_account, sandbox_host, zoom_sandbox
):
    meeting = zoom_sandbox.state.add_meeting(
        sandbox_host["id"], status="started", livestream=STREAM, livestreaming=True
    )
    action = ask(sandbox_account, "stop_livestream", meeting["id"])
    died_mid_call(action, "meetingLiveStreamStatusUpdate")
    zoom_sandbox.state.stop_livestream(meeting["id"])  # Zoom did stop it

    assert take_over(action) == ActionState.SUCCEEDED

    action.refresh_from_db()
    assert action.result_summary == "Live stream stopped"
    assert main_attempts(action, "meetingLiveStreamStatusUpdate") == [
        ("interrupted", None, None, False),
        ("ok", 204, None, True),
    ]


def test_starting_a_stream_again_after_a_takeover_waits_out_zoom_s_429_and_succeeds(
    sandbox_account, sandbox_host, zoom_sandbox
):
    # given a run that died after Zoom started the stream (Zoom refuses another start for a
    # while: 30 s at Zoom, 1 s here)
    zoom_sandbox.state.livestream_start_interval = 1.0
    meeting = zoom_sandbox.state.add_meeting(
        sandbox_host["id"], status="started", livestream=STREAM
    )
    action = ask(sandbox_account, "start_livestream", meeting["id"])
    died_mid_call(action, "meetingLiveStreamStatusUpdate")
    client_for_account(sandbox_account).start_livestream(meeting["id"])  # what the dead run sent

    # when it is taken over
    lease_runs_out(action)
    assert execute(action.pk, task_id="task-1", inline=True) == ActionState.SUCCEEDED

    # then the repeat was rate-limited, waited for, and answered 204: the stream is running
    action.refresh_from_db()
    assert action.result_summary == "Live stream started"
    assert [a.http_status for a in action.attempts.all()] == [None, 429, 204]
    assert zoom_sandbox.state.get_meeting(meeting["id"])["livestreaming"] is True


# --- with a real worker, SIGKILLed while Zoom's answer is on its way ---------------------------

WEBHOOK_SECRET = "takeover-webhook-secret"


@pytest.mark.worker
# Zoom's answer is held back 4 s: the worker must still be waiting for it when it is killed.
@pytest.mark.worker_env(ZOOM_TIMEOUT_SECONDS="10")
@pytest.mark.parametrize("evidence", ["webinar.ended event", "past instances"])
def test_a_worker_killed_after_zoom_ended_the_webinar_leaves_it_succeeded_exactly_once(
    evidence, celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, request, settings
):
    # given a live webinar the mirror knows, with Zoom's webhooks reaching the dashboard or not
    state = zoom_sandbox.state
    if evidence == "webinar.ended event":
        live_server = request.getfixturevalue("live_server")
        settings.ZOOM_WEBHOOK_SECRET_TOKEN = WEBHOOK_SECRET
        state.set_webhook(live_server.url + "/webhooks/zoom/", secret=WEBHOOK_SECRET)
    webinar = state.add_webinar(sandbox_host["id"], "All hands, 3,000 attendees", status="started")
    live_uuid = webinar["uuid"]
    mirrored_live(sandbox_account, webinar)

    # when an operator ends it, Zoom ends it at once but its answer is slow to come back
    state.set_faults(answer_delay_ms=4000)
    action = ask(sandbox_account, "end_webinar", webinar["id"], enqueue=True)
    wait_until(
        lambda: (
            state.webinars[webinar["id"]]["status"] == "ended"
            and action.attempts.filter(outcome="").exists()
        ),
        30,
        "Zoom to end the webinar while the worker waits for the answer",
    )
    # and the worker is SIGKILLed before it hears the answer, then comes back
    celery_worker_process.kill()
    assert action.attempts.get().outcome == ""  # the answer was never recorded
    state.set_faults()
    celery_worker_process.start()
    first = wait_until(
        lambda: Action.objects.filter(pk=action.pk, state__in=TERMINAL_STATES).first(),
        60,
        "the action to finish after the takeover",
    )
    time.sleep(3)  # three more sweeps: nothing may finish it a second time

    # then it succeeded, once, on the evidence, and the record shows both calls truthfully
    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    assert (action.finished_at, action.result_summary) == (first.finished_at, first.result_summary)
    if evidence == "webinar.ended event":
        how = "the webinar.ended event Zoom sent at "
    else:
        how = f"Zoom lists the instance that was live ({live_uuid}) as past"
    assert action.result_summary.startswith(
        f"Webinar ended (the answer to an earlier request was lost; confirmed: {how}"
    )
    interrupted, repeated = action.attempts.filter(operation="webinarStatus")
    assert interrupted.outcome == Attempt.Outcome.INTERRUPTED
    assert interrupted.message.startswith("No answer recorded: the worker stopped")
    assert (repeated.outcome, repeated.http_status, repeated.zoom_code) == ("error", 404, 3001)
    assert repeated.after_reclaim
    assert action.attempts_count == 2
    assert not action.attempts.filter(outcome="").exists()
    # Zoom was asked twice and ended the webinar once; the mirror says it ended
    assert state.counters["PUT /webinars/{webinarId}/status"] == 2
    assert [i["uuid"] for i in state.past_webinar_instances[webinar["id"]]] == [live_uuid]
    assert Webinar.objects.get(zoom_id=webinar["id"]).status == MeetingStatus.ENDED
