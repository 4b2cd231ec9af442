"""The pages of scheduled and automatic actions: schedule, edit and cancel on a meeting's page (in
the person's time zone), "when it starts" with a preset, a connection's policies (preview for
operators, switches for admins), and who may do what."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils.timezone import now

from meetings import automation, policies
from meetings.models import (
    Action,
    Policy,
    ScheduledAction,
    Step,
    StreamPreset,
    Trigger,
    UserPreferences,
)
from tests.dashboard_data import make_account, make_meeting, make_webinar

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return make_account()


@pytest.fixture
def meeting(account):
    return make_meeting(account, status="started", livestream_status="live")


def typed(moment, zone):
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def test_an_operator_schedules_a_stream_stop_in_their_own_time_zone(client, operator, meeting):
    UserPreferences.objects.update_or_create(user=operator, defaults={"time_zone": "Asia/Tokyo"})
    client.force_login(operator)
    at = (now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    response = client.post(
        reverse("meeting-automation", args=[meeting.pk]),
        {"schedule-run_at": typed(at, "Asia/Tokyo"), "schedule-steps": ["end", "stop_stream"]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    sched = ScheduledAction.objects.get()
    assert sched.run_at == at
    assert [s["step"] for s in sched.steps] == ["stop_stream", "end"]
    assert sched.created_by == operator
    assert "Scheduled: Stop the live stream, then end" in response.content.decode()
    page = client.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert "Stop the live stream, then end" in page
    assert 'href="/schedules/' in page


def test_a_time_past_or_garbled_is_refused_with_a_clear_message(client, operator, meeting):
    client.force_login(operator)
    url = reverse("meeting-automation", args=[meeting.pk])
    past = client.post(
        url,
        {"schedule-run_at": typed(now() - timedelta(hours=1), "UTC"), "schedule-steps": ["end"]},
        HTTP_HX_REQUEST="true",
    )
    assert past.status_code == 400
    assert "That time has passed" in past.content.decode()
    garbled = client.post(
        url, {"schedule-run_at": "17h30\x00", "schedule-steps": []}, HTTP_HX_REQUEST="true"
    )
    assert garbled.status_code == 400
    assert "Enter a date and time" in garbled.content.decode()
    assert "Choose at least one thing to do" in garbled.content.decode()
    assert not ScheduledAction.objects.exists()


def test_a_viewer_sees_the_schedules_but_cannot_make_or_cancel_one(
    client, viewer, operator, meeting, account
):
    sched = automation.schedule(
        account=account,
        target_type="meeting",
        target_id=meeting.zoom_id,
        topic=meeting.topic,
        steps=[Step.END],
        run_at=now() + timedelta(hours=1),
        user=operator,
    )
    client.force_login(viewer)
    page = client.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert "End" in page and 'id="schedule-form"' not in page
    denied = client.post(
        reverse("meeting-automation", args=[meeting.pk]),
        {"schedule-run_at": typed(now() + timedelta(hours=1), "UTC"), "schedule-steps": ["end"]},
    )
    assert denied.status_code == 403
    assert client.post(reverse("schedule-cancel", args=[sched.pk])).status_code == 403
    sched.refresh_from_db()
    assert sched.state == ScheduledAction.State.PENDING


def test_a_pending_schedule_is_edited_and_cancelled_from_the_page(
    client, operator, meeting, account
):
    sched = automation.schedule(
        account=account,
        target_type="meeting",
        target_id=meeting.zoom_id,
        topic=meeting.topic,
        steps=[Step.END],
        run_at=now() + timedelta(hours=1),
        user=operator,
    )
    client.force_login(operator)
    form = client.get(reverse("schedule-edit", args=[sched.pk]))
    assert form.status_code == 200
    later = (now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    saved = client.post(
        reverse("schedule-edit", args=[sched.pk]),
        {"schedule-run_at": typed(later, "UTC"), "schedule-steps": ["stop_stream"]},
    )
    assert saved.status_code == 302
    sched.refresh_from_db()
    assert (sched.run_at, sched.steps_words()) == (later, "Stop the live stream")
    cancelled = client.post(reverse("schedule-cancel", args=[sched.pk]), HTTP_HX_REQUEST="true")
    assert "Cancelled: Stop the live stream" in cancelled.content.decode()
    sched.refresh_from_db()
    assert sched.state == ScheduledAction.State.CANCELLED
    # once cancelled, nothing more
    again = client.post(reverse("schedule-cancel", args=[sched.pk]), HTTP_HX_REQUEST="true")
    assert "can no longer be cancelled" in again.content.decode()


def test_a_webinar_offers_what_a_webinar_can_do(client, operator, account):
    webinar = make_webinar(account, status="started")
    client.force_login(operator)
    page = client.get(reverse("webinar", args=[webinar.pk])).content.decode()
    assert "End the webinar" in page
    assert "Stop the live stream" not in page
    refused = client.post(
        reverse("webinar-automation", args=[webinar.pk]),
        {
            "schedule-run_at": typed(now() + timedelta(hours=1), "UTC"),
            "schedule-steps": ["stop_stream"],
        },
        HTTP_HX_REQUEST="true",
    )
    assert refused.status_code == 400
    assert not ScheduledAction.objects.exists()


def test_when_it_starts_with_a_preset_from_the_page(client, operator, meeting, account):
    preset = StreamPreset.objects.create(
        account=account,
        name="Main stage",
        stream_url="rtmp://live.example/app",
        stream_key="sk-secret-preset-key",
        page_url="https://watch.example/",
    )
    other = StreamPreset.objects.create(
        account=make_account("Other"),
        name="Elsewhere",
        stream_url="rtmp://x.example/app",
        stream_key="k",
        page_url="https://x.example/",
    )
    client.force_login(operator)
    url = reverse("meeting-trigger-add", args=[meeting.pk])
    wrong = client.post(url, {"trigger-preset": other.pk}, HTTP_HX_REQUEST="true")
    assert wrong.status_code == 400
    assert "Choose one of this connection" in wrong.content.decode()
    made = client.post(
        url,
        {"trigger-preset": preset.pk, "trigger-display_name": "Town hall"},
        HTTP_HX_REQUEST="true",
    )
    body = made.content.decode()
    assert "its stream starts with “Main stage”" in body
    assert "sk-secret-preset-key" not in body
    trigger = Trigger.objects.get()
    assert (trigger.target_id, trigger.preset, trigger.display_name) == (
        meeting.zoom_id,
        preset,
        "Town hall",
    )
    client.post(reverse("trigger-remove", args=[trigger.pk]))
    trigger.refresh_from_db()
    assert trigger.enabled is False


def test_operators_see_a_policy_preview_and_only_admins_switch_it(
    client, operator, admin_user, account
):
    overdue = make_meeting(
        account,
        status="started",
        topic="Overrunning stand-up",
        start_time=now() - timedelta(hours=2),
        duration=30,
    )
    client.force_login(operator)
    page = client.get(reverse("connection-policies", args=[account.pk])).content.decode()
    assert "Overrunning stand-up" in page and "End it" in page
    assert "Only administrators turn policies on" in page
    policy = Policy.objects.get(account=account, kind=Policy.Kind.END_OVERDUE)
    form = {f"p{policy.pk}-enabled": "on", f"p{policy.pk}-minutes": "20"}
    assert client.post(reverse("policy-edit", args=[policy.pk]), form).status_code == 403
    assert not Action.objects.exists()  # a preview does nothing
    client.force_login(admin_user)
    bad = {f"p{policy.pk}-enabled": "on", f"p{policy.pk}-minutes": "0"}
    client.post(reverse("policy-edit", args=[policy.pk]), bad)
    policy.refresh_from_db()
    assert policy.enabled is False
    assert client.post(reverse("policy-edit", args=[policy.pk]), form).status_code == 302
    policy.refresh_from_db()
    assert (policy.enabled, policy.minutes, policy.updated_by) == (True, 20, admin_user)
    assert overdue.zoom_id in [i["meeting"].zoom_id for i in policies.plan_policy(policy)]


def test_an_automatic_action_says_its_rule_on_the_timeline_activity_and_admin(
    client, admin_user, operator, meeting, account
):
    sched = automation.schedule(
        account=account,
        target_type="meeting",
        target_id=meeting.zoom_id,
        topic=meeting.topic,
        steps=[Step.STOP_STREAM],
        run_at=now(),
        user=operator,
    )
    automation.run_schedules()
    action = Action.objects.get()
    client.force_login(admin_user)
    words = f"Scheduled by {operator.username} for"
    assert words in client.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert words in client.get(reverse("activity")).content.decode()
    assert words in client.get(reverse("action", args=[action.pk])).content.decode()
    admin_list = client.get(reverse("admin:meetings_action_changelist")).content.decode()
    assert words in admin_list
    assert (
        words
        in client.get(reverse("admin:meetings_action_change", args=[action.pk])).content.decode()
    )
    assert sched.pk
