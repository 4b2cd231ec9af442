"""Scheduling a stream stop in Chromium: the operator types a time in their own time zone, the
panel lists it with Edit and Cancel, the beat of a real worker runs it against the sandbox and
the open page's timeline says which schedule did it."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils.timezone import now
from playwright.sync_api import expect

from meetings.models import Action, ScheduledAction, UserPreferences

from .conftest import JOB_TIMEOUT_MS, open_meeting

pytestmark = [pytest.mark.browser, pytest.mark.worker_env(AUTOMATION_INTERVAL_SECONDS="1")]

ZONE = "America/New_York"


def typed(moment):
    return moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


def test_an_operator_schedules_a_stream_stop_and_it_runs_once(
    operator_page, operator, live_server, live_zoom, screenshot
):
    UserPreferences.objects.update_or_create(user=operator, defaults={"time_zone": ZONE})
    page = operator_page
    stream = {
        "stream_url": "rtmps://live.example.com:443/hall",
        "stream_key": "sk-browser-schedule-5c2d",
        "page_url": "https://example.com/hall",
    }
    zoom_meeting, meeting = live_zoom.meeting(
        "All-hands",
        status="started",
        livestream=stream,
        livestreaming=True,
        mirrored={**stream, "livestream_status": "live"},
    )
    open_meeting(page, live_server, meeting)
    panel = page.locator("#automation")
    expect(panel).to_contain_text("Nothing is scheduled for this meeting.")
    expect(panel).to_contain_text(f"In your time zone, {ZONE}.")

    # a stop an hour ahead, then cancelled
    panel.get_by_label("When").fill(typed(now() + timedelta(hours=1)))
    panel.get_by_label("Stop the live stream").check()
    panel.get_by_role("button", name="Schedule").click()
    expect(page.locator("#automation-notice")).to_have_text("Scheduled: Stop the live stream.")
    waiting = page.locator("#schedules-waiting")
    expect(waiting).to_contain_text("Stop the live stream")
    expect(waiting.get_by_role("link", name="Edit…")).to_be_visible()
    screenshot(page, "scheduled")
    waiting.get_by_role("button", name="Cancel").click()
    expect(page.locator("#automation-notice")).to_have_text("Cancelled: Stop the live stream.")
    expect(page.locator("#schedules-recent")).to_contain_text("Cancelled")

    # a stop now (this minute, in New York time): the beat runs it
    page.locator("#automation").get_by_label("When").fill(typed(now()))
    page.locator("#automation").get_by_label("Stop the live stream").check()
    page.locator("#automation").get_by_role("button", name="Schedule").click()
    expect(page.locator("#automation-notice")).to_have_text("Scheduled: Stop the live stream.")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text(
        f"Schedule: Scheduled by {operator.username} for", timeout=JOB_TIMEOUT_MS
    )
    expect(page.locator("#livestream-title .badge")).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    screenshot(page, "ran")
    assert live_zoom.state.get_meeting(zoom_meeting["id"])["livestreaming"] is False
    ran = ScheduledAction.objects.get(state=ScheduledAction.State.DONE)
    (action,) = Action.objects.filter(rule_type="schedule", rule_id=ran.pk)
    assert (action.kind, action.state, action.requested_by) == (
        "stop_livestream",
        "succeeded",
        operator,
    )
    stops = [
        r
        for r in live_zoom.state.requests_since(0)
        if r.method == "PATCH"
        and r.path.endswith(f"/meetings/{zoom_meeting['id']}/livestream/status")
    ]
    assert len(stops) == 1
