"""Scheduled and automatic actions (meetings.automation), called directly: schedules claimed once
by the database's clock, late and missed runs reported, steps one after the other, triggers fired
once per instance from the event and from the sync, policies previewed and applied."""

from datetime import timedelta

import pytest
from django.utils.timezone import now

from meetings import automation, policies
from meetings.actions import execute
from meetings.models import (
    Action,
    ActionKind,
    ActionSource,
    ActionState,
    Policy,
    RuleType,
    ScheduledAction,
    Step,
    StreamPreset,
    Trigger,
    TriggerFiring,
)
from tests.dashboard_data import deliver_event, make_account, make_action, make_meeting

pytestmark = pytest.mark.django_db

STREAM_KEY = "sk-preset-7f3a9b2c1d"


@pytest.fixture
def account():
    return make_account()


@pytest.fixture
def live_meeting(account):
    return make_meeting(account, status="started", uuid="inst-1==", livestream_status="live")


def make_schedule(
    account, meeting, *, at=None, steps=(Step.STOP_STREAM, Step.END), user=None, grace=300
):
    return automation.schedule(
        account=account,
        target_type="meeting",
        target_id=meeting.zoom_id,
        topic=meeting.topic,
        steps=list(steps),
        run_at=at or now() - timedelta(seconds=1),
        user=user,
        grace_seconds=grace,
    )


def finish(action, state=ActionState.SUCCEEDED):
    """What a worker's run does at the end, then the hook it calls."""
    Action.objects.filter(pk=action.pk).update(state=state, finished_at=now())
    action.refresh_from_db()
    automation.after_action(action)


def test_a_due_schedule_runs_its_first_step_once_however_many_beats_look(
    account, live_meeting, operator
):
    # given
    sched = make_schedule(account, live_meeting, user=operator)
    # when: three beats, one after the other
    first = automation.run_schedules()
    second = automation.run_schedules()
    third = automation.run_schedules()
    # then
    assert (first["started"], second["started"], third["started"]) == (1, 0, 0)
    (action,) = Action.objects.filter(rule_type=RuleType.SCHEDULE, rule_id=sched.pk)
    assert action.kind == ActionKind.STOP_LIVESTREAM
    assert action.source == ActionSource.SCHEDULE
    assert action.requested_by == operator
    sched.refresh_from_db()
    assert sched.state == ScheduledAction.State.RUNNING
    assert sched.current_action == action


def test_the_next_step_is_asked_for_when_the_first_finishes_even_if_it_failed(
    account, live_meeting, operator
):
    sched = make_schedule(account, live_meeting, user=operator)
    automation.run_schedules()
    stop = Action.objects.get(rule_id=sched.pk, kind=ActionKind.STOP_LIVESTREAM)
    # when: the stream stop fails (Zoom said the stream was not running), the end still comes
    finish(stop, ActionState.FAILED)
    end = Action.objects.get(rule_id=sched.pk, kind=ActionKind.END_MEETING)
    assert end.source == ActionSource.SCHEDULE
    # a second beat does not ask again
    automation.run_schedules()
    assert Action.objects.filter(rule_id=sched.pk, rule_type="schedule").count() == 2
    finish(end)
    sched.refresh_from_db()
    assert sched.state == ScheduledAction.State.DONE
    assert "Stop live stream: failed" in sched.result_summary
    assert "End meeting: succeeded" in sched.result_summary


def test_the_beat_advances_a_step_finished_elsewhere(account, live_meeting):
    # An end confirmed by Zoom's event is finished by the webhook receiver, not the run.
    sched = make_schedule(account, live_meeting, steps=[Step.END, Step.STOP_STREAM])
    automation.run_schedules()
    end = Action.objects.get(rule_id=sched.pk)
    Action.objects.filter(pk=end.pk).update(state=ActionState.SUCCEEDED, finished_at=now())
    result = automation.run_schedules()
    assert result["advanced"] == 1
    assert Action.objects.filter(rule_id=sched.pk, kind=ActionKind.STOP_LIVESTREAM).exists()


def test_a_schedule_not_due_yet_waits(account, live_meeting):
    sched = make_schedule(account, live_meeting, at=now() + timedelta(minutes=5))
    assert automation.run_schedules()["started"] == 0
    sched.refresh_from_db()
    assert sched.state == ScheduledAction.State.PENDING
    assert not Action.objects.filter(rule_id=sched.pk).exists()


def test_a_late_run_inside_its_grace_period_runs_and_says_how_late(account, live_meeting):
    sched = make_schedule(
        account, live_meeting, at=now() - timedelta(seconds=120), steps=[Step.END], grace=300
    )
    automation.run_schedules()
    sched.refresh_from_db()
    assert sched.state == ScheduledAction.State.RUNNING
    assert 119 <= sched.late_seconds < 160
    finish(Action.objects.get(rule_id=sched.pk))
    sched.refresh_from_db()
    assert sched.state == ScheduledAction.State.DONE
    assert sched.result_summary.startswith("Ran 12") or sched.result_summary.startswith("Ran 1")
    assert "s late" in sched.result_summary


def test_a_schedule_past_its_grace_period_is_missed_and_reported(
    account, live_meeting, monkeypatch
):
    raised = []
    monkeypatch.setattr(automation, "notify", lambda kind, **kw: raised.append((kind, kw)))
    sched = make_schedule(account, live_meeting, at=now() - timedelta(seconds=400), grace=300)
    result = automation.run_schedules()
    assert result == {"missed": 1, "started": 0, "advanced": 0}
    sched.refresh_from_db()
    assert sched.state == ScheduledAction.State.MISSED
    assert "nothing was done" in sched.result_summary
    assert not Action.objects.filter(rule_id=sched.pk).exists()
    ((kind, kw),) = raised
    assert kind == "schedule_missed"
    assert kw["account"] == account
    assert "Missed" in kw["title"]
    # reported once
    automation.run_schedules()
    assert len(raised) == 1


def test_a_pending_schedule_can_be_edited_and_cancelled_but_not_once_claimed(
    account, live_meeting, operator
):
    sched = make_schedule(account, live_meeting, at=now() + timedelta(hours=1))
    later = now() + timedelta(hours=2)
    assert automation.edit_schedule(sched, run_at=later, steps=[Step.END])
    assert sched.run_at == later and sched.deadline == later + timedelta(seconds=300)
    assert automation.cancel_schedule(sched, user=operator)
    assert sched.state == ScheduledAction.State.CANCELLED
    assert f"Cancelled by {operator.username}" in sched.result_summary
    # a claimed one is neither edited nor cancelled
    running = make_schedule(account, live_meeting)
    automation.run_schedules()
    assert not automation.cancel_schedule(running)
    assert not automation.edit_schedule(running, run_at=later, steps=[Step.END])
    running.refresh_from_db()
    assert running.state == ScheduledAction.State.RUNNING


def test_a_webinar_may_only_be_scheduled_what_a_webinar_can_do(account):
    assert automation.available_steps("webinar") == [Step.END]
    with pytest.raises(ValueError, match="cannot be scheduled"):
        automation.schedule(
            account=account,
            target_type="webinar",
            target_id=123456789,
            topic="",
            steps=[Step.STOP_STREAM],
            run_at=now(),
        )


def test_a_scheduled_action_says_who_scheduled_it_for_when(account, live_meeting, operator):
    sched = make_schedule(account, live_meeting, user=operator, steps=[Step.END])
    automation.run_schedules()
    action = Action.objects.get(rule_id=sched.pk)
    assert action.rule_words.startswith(f"Scheduled by {operator.username} for ")


# --- triggers -----------------------------------------------------------------------------------


@pytest.fixture
def preset(account):
    return StreamPreset.objects.create(
        account=account,
        name="Main stage",
        stream_url="rtmp://live.example/app",
        stream_key=STREAM_KEY,
        page_url="https://watch.example/live",
        resolution="720p",
    )


def test_a_trigger_fires_once_per_instance_on_meeting_started(account, preset, operator):
    meeting = make_meeting(account, status="waiting")
    trigger = Trigger.objects.create(
        account=account,
        target_type="meeting",
        target_id=meeting.zoom_id,
        preset=preset,
        display_name="Town hall",
        created_by=operator,
    )
    # when: Zoom says it started, twice (a redelivery), then the sync sees it live
    deliver_event(account, meeting, "meeting.started")
    deliver_event(account, meeting, "meeting.started")
    automation.fire_triggers_for_live(account)
    # then: one firing, one configure action with the preset's values (key redacted)
    (firing,) = TriggerFiring.objects.filter(trigger=trigger)
    assert (firing.instance_uuid, firing.seen_by) == ("inst-1==", "webhook")
    (configure,) = Action.objects.filter(rule_type=RuleType.TRIGGER, rule_id=firing.pk)
    assert configure.kind == ActionKind.UPDATE_LIVESTREAM
    assert configure.source == ActionSource.TRIGGER
    assert configure.params["preset_id"] == preset.pk
    assert configure.params["preset_name"] == "Main stage"
    assert configure.params["stream_url"] == "rtmp://live.example/app"
    assert STREAM_KEY not in str(configure.params)
    assert configure.secrets["stream_key"] == STREAM_KEY
    # the start follows the configuration, with the trigger's settings
    finish(configure)
    start = Action.objects.get(rule_id=firing.pk, kind=ActionKind.START_LIVESTREAM)
    assert start.params == {"active_speaker_name": False, "display_name": "Town hall"}
    assert "Main stage" in start.rule_words
    finish(start)
    firing.refresh_from_db()
    assert firing.state == TriggerFiring.State.DONE


def test_a_trigger_does_not_start_the_stream_when_the_configuration_failed(account, preset):
    meeting = make_meeting(account, status="waiting")
    Trigger.objects.create(account=account, target_type="meeting", preset=preset)
    deliver_event(account, meeting, "meeting.started")
    firing = TriggerFiring.objects.get()
    finish(Action.objects.get(rule_id=firing.pk))  # succeeded? no: fail it below
    # (a second firing for a new instance, whose configuration fails)
    deliver_event(account, meeting, "meeting.ended")
    meeting.refresh_from_db()
    Action.objects.filter(kind=ActionKind.START_LIVESTREAM).update(
        state=ActionState.SUCCEEDED, finished_at=now()
    )
    automation.fire_triggers(account, "meeting", meeting.zoom_id, "inst-2==", seen_by="webhook")
    second = TriggerFiring.objects.get(instance_uuid="inst-2==")
    finish(
        Action.objects.get(rule_id=second.pk, kind=ActionKind.UPDATE_LIVESTREAM), ActionState.FAILED
    )
    second.refresh_from_db()
    assert second.state == TriggerFiring.State.DONE
    assert not Action.objects.filter(rule_id=second.pk, kind=ActionKind.START_LIVESTREAM).exists()
    assert "was not done" in second.result_summary


def test_a_connection_wide_trigger_fires_from_the_sync_when_the_event_was_missed(account, preset):
    Trigger.objects.create(account=account, target_type="meeting", preset=preset)
    live = make_meeting(account, status="started", uuid="abc==")
    make_meeting(account, status="waiting")
    fired = automation.fire_triggers_for_live(account)
    assert [f.target_id for f in fired] == [live.zoom_id]
    assert fired[0].seen_by == "sync"
    assert automation.fire_triggers_for_live(account) == []  # once per instance
    assert Action.objects.filter(source=ActionSource.TRIGGER).count() == 1


def test_a_disabled_trigger_or_a_live_stream_fires_nothing(account, preset):
    Trigger.objects.create(account=account, target_type="meeting", preset=preset, enabled=False)
    make_meeting(account, status="started", uuid="x==")
    assert automation.fire_triggers_for_live(account) == []
    Trigger.objects.update(enabled=True)
    make_meeting(account, status="started", uuid="y==", livestream_status="live")
    fired = automation.fire_triggers_for_live(account)
    assert len(fired) == 2
    assert Action.objects.filter(source=ActionSource.TRIGGER).count() == 1
    already = next(f for f in fired if f.instance_uuid == "y==")
    already.refresh_from_db()
    assert already.state == TriggerFiring.State.DONE
    assert "already live" in already.result_summary


# --- policies -----------------------------------------------------------------------------------


def test_the_end_policy_previews_and_ends_only_meetings_past_their_end_plus_n_minutes(account):
    over = make_meeting(
        account, status="started", start_time=now() - timedelta(minutes=90), duration=60
    )
    make_meeting(  # 10 minutes over: within N = 15
        account, status="started", start_time=now() - timedelta(minutes=70), duration=60
    )
    make_meeting(  # instant: no scheduled end
        account, status="started", type=1, start_time=now() - timedelta(hours=5), duration=60
    )
    busy = make_meeting(
        account, status="started", start_time=now() - timedelta(minutes=120), duration=60
    )
    make_action(account, "end_meeting", target=busy)  # an operator's end is queued
    policy = Policy.objects.create(account=account, kind=Policy.Kind.END_OVERDUE, minutes=15)
    plan = policies.plan_policy(policy)
    assert [(i["meeting"].zoom_id, i["do"]) for i in plan] == [
        (busy.zoom_id, False),
        (over.zoom_id, True),
    ]
    assert "already requested" in plan[0]["reason"]
    assert "30 minutes after its scheduled end" in plan[1]["reason"]
    # the preview made nothing; applying makes one action, source policy
    assert not Action.objects.filter(source=ActionSource.POLICY).exists()
    (made,) = policies.apply_policy(policy)
    assert (made.kind, made.target_id, made.source) == ("end_meeting", over.zoom_id, "policy")
    assert made.rule_words.startswith("Policy: End meetings still live 15 minutes")
    # not again while it runs, nor soon after it failed
    assert policies.apply_policy(policy) == []
    finish(made, ActionState.FAILED)
    assert policies.apply_policy(policy) == []


def test_a_disabled_policy_does_nothing_and_an_enabled_one_is_capped(account, settings):
    settings.POLICY_MAX_ACTIONS_PER_RUN = 2
    for _ in range(3):
        make_meeting(account, status="ended", livestream_status="live")
    policy = Policy.objects.create(account=account, kind=Policy.Kind.STOP_ENDED_STREAMS)
    assert policies.apply_policies() == 0
    Policy.objects.update(enabled=True)
    assert policies.apply_policies() == 2
    policy.refresh_from_db()
    assert policy.last_run_summary == "2 actions asked for; 1 left for the next run"
    assert policies.apply_policies() == 1


def test_a_step_action_finished_by_a_worker_asks_for_the_next_step(
    account, live_meeting, zoom_sandbox, sandbox_account, sandbox_host
):
    """execute() (what the worker runs) calls the hook: the end follows the stop at once."""
    state = zoom_sandbox.state
    zoom = state.add_meeting(sandbox_host["id"], topic="Streamed", status="started")
    meeting = make_meeting(sandbox_account, zoom_id=zoom["id"], status="started")
    sched = make_schedule(sandbox_account, meeting, steps=[Step.STOP_STREAM, Step.END])
    automation.run_schedules()
    stop = Action.objects.get(rule_id=sched.pk)
    execute(stop.pk, inline=True)
    stop.refresh_from_db()
    assert stop.is_terminal
    assert Action.objects.filter(rule_id=sched.pk, kind=ActionKind.END_MEETING).exists()
