"""Scheduled and automatic actions for real: Celery workers with embedded beats on the real broker,
the test database and the Zoom sandbox over HTTP. What Zoom was asked is counted from the
sandbox's request log."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils.timezone import now

from meetings import automation, policies, webhooks
from meetings.actions import request_action
from meetings.models import (
    Action,
    ActionSource,
    ActionState,
    Policy,
    ScheduledAction,
    Step,
    StreamPreset,
    Trigger,
    TriggerFiring,
)
from tests.dashboard_data import make_meeting
from tests.waiting import wait_until

# A beat tick for schedules every second (the fixture's default keeps them out of other tests).
pytestmark = [pytest.mark.worker, pytest.mark.worker_env(AUTOMATION_INTERVAL_SECONDS="1")]

PRESET_KEY = "sk-preset-integration-4d5e6f"


def zoom_calls(state, zoom_id, method, suffix):
    path = f"/v2/meetings/{zoom_id}{suffix}"
    return [r for r in state.requests_since(0) if r.method == method and r.path.endswith(path)]


def live_with_stream(state, host, topic):
    zoom = state.add_meeting(host["id"], topic=topic, status="started")
    state.configure_livestream(
        zoom["id"],
        stream_url="rtmp://a.example/app",
        stream_key="k1",
        page_url="https://a.example/",
    )
    state.start_livestream(zoom["id"])
    return zoom


def mirror(account, zoom, **extra):
    fields = {"status": "started", "topic": zoom["topic"], "uuid": zoom.get("uuid", "")}
    fields.update(extra)
    return make_meeting(account, zoom_id=zoom["id"], **fields)


def wait_schedule(sched, states, timeout=60):
    wait_until(
        lambda: ScheduledAction.objects.get(pk=sched.pk).state in states,
        timeout,
        f"schedule {sched.pk} to reach {states}",
    )
    sched.refresh_from_db()
    return sched


def test_a_schedule_runs_once_with_two_workers_two_beats_and_the_web_racing(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    state = zoom_sandbox.state
    zoom = live_with_stream(state, sandbox_host, "Town hall")
    mirror(sandbox_account, zoom, livestream_status="live")
    celery_worker_process.start("w2", beat=True)  # a second beat: two ticks every second
    # given: "stop the stream and end the meeting", due in two seconds
    sched = automation.schedule(
        account=sandbox_account,
        target_type="meeting",
        target_id=zoom["id"],
        topic="Town hall",
        steps=[Step.STOP_STREAM, Step.END],
        run_at=now() + timedelta(seconds=2),
        user=operator,
    )
    # and this process ticks too, as fast as it can, meanwhile
    stop = threading.Event()

    def tick():
        try:
            while not stop.is_set():
                automation.run_schedules()
                time.sleep(0.05)
        finally:
            connection.close()

    racer = threading.Thread(target=tick)
    racer.start()
    try:
        sched = wait_schedule(sched, {ScheduledAction.State.DONE})
    finally:
        stop.set()
        racer.join()
    # then: one action per step, each a schedule's, and Zoom asked once for each
    actions = list(Action.objects.filter(rule_type="schedule", rule_id=sched.pk).order_by("pk"))
    assert [(a.kind, a.state, a.source) for a in actions] == [
        ("stop_livestream", "succeeded", "schedule"),
        ("end_meeting", "succeeded", "schedule"),
    ], [a.result_summary for a in actions]
    assert actions[0].requested_by == operator
    assert len(zoom_calls(state, zoom["id"], "PATCH", "/livestream/status")) == 1
    assert len(zoom_calls(state, zoom["id"], "PUT", "/status")) == 1
    assert state.get_meeting(zoom["id"])["livestreaming"] is False
    assert state.get_meeting(zoom["id"])["status"] == "waiting"
    assert sched.late_seconds is not None and sched.late_seconds < 10
    assert "Stop live stream: succeeded; End meeting: succeeded" in sched.result_summary


@pytest.mark.worker_env(AUTOMATION_INTERVAL_SECONDS="1", SCHEDULE_LATE_SECONDS="5")
def test_a_late_schedule_inside_its_grace_runs_and_says_so_one_past_it_is_missed(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    state = zoom_sandbox.state
    late_zoom = state.add_meeting(sandbox_host["id"], topic="Late", status="started")
    missed_zoom = state.add_meeting(sandbox_host["id"], topic="Missed", status="started")
    mirror(sandbox_account, late_zoom)
    mirror(sandbox_account, missed_zoom)
    # given: the beat was down: one schedule is 60 s past its time (grace 300 s), one 400 s
    late = automation.schedule(
        account=sandbox_account,
        target_type="meeting",
        target_id=late_zoom["id"],
        topic="Late",
        steps=[Step.END],
        run_at=now() - timedelta(seconds=60),
        grace_seconds=300,
        user=operator,
    )
    missed = automation.schedule(
        account=sandbox_account,
        target_type="meeting",
        target_id=missed_zoom["id"],
        topic="Missed",
        steps=[Step.END],
        run_at=now() - timedelta(seconds=400),
        grace_seconds=300,
        user=operator,
    )
    late = wait_schedule(late, {ScheduledAction.State.DONE})
    missed = wait_schedule(missed, {ScheduledAction.State.MISSED})
    # then: the late one ran, once, and says how late
    assert 60 <= late.late_seconds < 90
    assert late.result_summary.startswith("Ran 6") or late.result_summary.startswith("Ran 7")
    assert "End meeting: succeeded" in late.result_summary
    assert state.get_meeting(late_zoom["id"])["status"] == "waiting"
    # the missed one did nothing, and said so (state, summary, the worker's log)
    assert "nothing was done" in missed.result_summary
    assert not Action.objects.filter(rule_type="schedule", rule_id=missed.pk).exists()
    assert zoom_calls(state, missed_zoom["id"], "PUT", "/status") == []
    assert state.get_meeting(missed_zoom["id"])["status"] == "started"
    wait_until(
        lambda: f"schedule {missed.pk} missed its time" in celery_worker_process.log(),
        10,
        "the missed schedule in the worker's log",
    )


@pytest.fixture
def preset(sandbox_account):
    return StreamPreset.objects.create(
        account=sandbox_account,
        name="Main stage",
        stream_url="rtmp://live.example/app",
        stream_key=PRESET_KEY,
        page_url="https://watch.example/live",
        resolution="720p",
    )


def assert_streaming_with_preset(state, zoom_id):
    meeting = state.get_meeting(zoom_id)
    assert meeting["livestreaming"] is True
    assert meeting["livestream"]["stream_key"] == PRESET_KEY
    assert meeting["livestream"]["stream_url"] == "rtmp://live.example/app"


def test_a_trigger_starts_the_stream_with_its_preset_on_meeting_started(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, preset, operator
):
    state = zoom_sandbox.state
    zoom = state.add_meeting(sandbox_host["id"], topic="Webcast")
    row = mirror(sandbox_account, zoom, status="waiting")
    Trigger.objects.create(
        account=sandbox_account,
        target_type="meeting",
        target_id=row.zoom_id,
        preset=preset,
        display_name="Webcast",
        created_by=operator,
    )
    state.start_meeting(zoom["id"])
    envelope = {
        "event": "meeting.started",
        "event_ts": int(time.time() * 1000),
        "payload": {
            "account_id": sandbox_account.zoom_account_id,
            "object": {"id": str(zoom["id"]), "uuid": "inst-live-1==", "topic": "Webcast"},
        },
    }
    # when: Zoom's event arrives (twice: Zoom retries a delivery it thinks failed)
    for _ in range(2):
        event, _ = webhooks.store_event({**envelope})
        webhooks.enqueue(event.pk)
    wait_until(
        lambda: TriggerFiring.objects.filter(state="done").exists(),
        60,
        "the trigger's firing to finish",
    )
    firing = TriggerFiring.objects.get()
    assert (firing.seen_by, firing.instance_uuid) == ("webhook", "inst-live-1==")
    actions = list(Action.objects.filter(rule_type="trigger").order_by("pk"))
    assert [(a.kind, a.state, a.source) for a in actions] == [
        ("update_livestream", "succeeded", "trigger"),
        ("start_livestream", "succeeded", "trigger"),
    ], [a.result_summary for a in actions]
    assert actions[0].params["preset_name"] == "Main stage"
    assert_streaming_with_preset(state, zoom["id"])
    assert len(zoom_calls(state, zoom["id"], "PATCH", "/livestream/status")) == 1


def test_a_trigger_fires_from_the_sync_when_the_event_was_missed(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, preset
):
    state = zoom_sandbox.state
    # Business: the sync knows what is live (the Dashboard); below it, only events say so
    state.set_plan("business")
    sandbox_account.plan = "business"
    sandbox_account.save(update_fields=["plan"])
    zoom = state.add_meeting(sandbox_host["id"], topic="Missed event", status="started")
    # a connection-wide trigger; no meeting.started ever reaches the dashboard
    Trigger.objects.create(account=sandbox_account, target_type="meeting", preset=preset)
    sync, _ = request_action(account=sandbox_account, kind="sync", source="dashboard")
    wait_until(
        lambda: TriggerFiring.objects.filter(state="done").exists(),
        90,
        "the trigger to fire after the sync",
    )
    firing = TriggerFiring.objects.get()
    assert (firing.seen_by, firing.target_id) == ("sync", zoom["id"])
    assert Action.objects.get(pk=sync.pk).state == ActionState.SUCCEEDED
    assert_streaming_with_preset(state, zoom["id"])
    # a second sync does not fire it again for the same instance
    again, _ = request_action(account=sandbox_account, kind="sync", source="dashboard")
    wait_until(
        lambda: Action.objects.get(pk=again.pk).state == ActionState.SUCCEEDED, 60, "a 2nd sync"
    )
    assert TriggerFiring.objects.count() == 1


@pytest.mark.worker_env(AUTOMATION_INTERVAL_SECONDS="1", POLICY_INTERVAL_SECONDS="1")
def test_an_enabled_policy_ends_what_its_preview_showed(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, admin_user
):
    state = zoom_sandbox.state
    over = state.add_meeting(sandbox_host["id"], topic="Overrun", status="started")
    fine = state.add_meeting(sandbox_host["id"], topic="On time", status="started")
    mirror(sandbox_account, over, start_time=now() - timedelta(minutes=90), duration=60)
    mirror(sandbox_account, fine, start_time=now() - timedelta(minutes=30), duration=60)
    policy = Policy.objects.create(
        account=sandbox_account, kind=Policy.Kind.END_OVERDUE, minutes=15, updated_by=admin_user
    )
    # the preview, while off: the overrunning meeting only, and nothing done
    preview = policies.plan_policy(policy)
    assert [(i["meeting"].zoom_id, i["do"]) for i in preview] == [(over["id"], True)]
    time.sleep(2.5)  # two policy ticks of the worker's beat
    assert not Action.objects.exists()
    # when: turned on
    Policy.objects.filter(pk=policy.pk).update(enabled=True)
    wait_until(
        lambda: Action.objects.filter(source=ActionSource.POLICY, state="succeeded").exists(),
        60,
        "the policy's end",
    )
    (action,) = Action.objects.all()
    assert (action.kind, action.target_id, action.rule_id) == ("end_meeting", over["id"], policy.pk)
    assert state.get_meeting(over["id"])["status"] == "waiting"
    assert state.get_meeting(fine["id"])["status"] == "started"
    time.sleep(2.5)  # more ticks: nothing asked twice
    assert Action.objects.count() == 1
    assert len(zoom_calls(state, over["id"], "PUT", "/status")) == 1
