"""What the dashboard says to operators, in Chromium: the words must match what is true (the
reason a button is unavailable, what a job is waiting for, what Zoom's refusal means)."""

import pytest
from playwright.sync_api import expect

from meetings.models import Action

from .conftest import JOB_TIMEOUT_MS, open_meeting

pytestmark = [pytest.mark.browser]


def test_ending_a_meeting_shown_waiting_asks_zoom_and_says_zoom_finds_it_not_running(
    operator_page, live_server, screenshot, live_zoom
):
    # given a meeting the dashboard (and Zoom) show waiting
    page = operator_page
    _, meeting = live_zoom.meeting("Board prep", status="waiting")
    open_meeting(page, live_server, meeting)
    controls = page.locator("#controls")
    expect(controls).to_contain_text("End still asks Zoom")
    screenshot(page, "1-waiting")

    # when the operator asks Zoom to end it anyway
    controls.get_by_role("link", name="Ask Zoom to end it…").click()
    page.get_by_role("dialog").get_by_role("button", name="End meeting").click()

    # then the job fails with Zoom's answer in plain words, not as a lack of access
    job = controls.locator(".job")
    expect(job).to_contain_text("Failed", timeout=JOB_TIMEOUT_MS)
    expect(job).to_contain_text("Zoom says this meeting is not running (3000)")
    expect(job).not_to_contain_text("cannot access")
    screenshot(page, "2-refused")
    assert Action.objects.get(kind="end_meeting").zoom_code == 3000


def test_the_stream_panel_gives_the_first_reason_start_is_unavailable(
    operator_page, live_server, screenshot, live_zoom
):
    # Zoom's portal may hold a stream URL and page without a key (the demo's presets do).
    keyless = {"stream_url": "rtmp://live.example.com/app", "page_url": "https://example.com/w"}
    _, ended = live_zoom.meeting(
        "Ended one", status="waiting", mirrored={"status": "ended", **keyless}
    )
    _, live = live_zoom.meeting("Live one", status="started", mirrored=keyless)
    page = operator_page

    open_meeting(page, live_server, ended)
    preflight = page.locator("#start-preflight")
    expect(preflight).to_have_text(
        "Start is unavailable: The meeting is not live, "
        "and Zoom streams only a meeting in progress."
    )
    open_meeting(page, live_server, live)
    expect(page.locator("#livestream dl")).to_contain_text("rtmp://live.example.com/app")
    expect(preflight).to_contain_text("The stream has no key.")
    expect(page.locator("#livestream")).not_to_contain_text("No stream is configured")
    screenshot(page, "keyless")
