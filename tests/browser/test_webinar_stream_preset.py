"""A webinar's live stream from a saved preset, in Chromium (issue 16): the operator picks the
connection's preset on the webinar page, applies it (one click, one audited action naming the
preset), starts the stream and stops it; a real worker calls the Zoom sandbox over HTTP and the
panel follows each job without a reload. The key is never in the page."""

import pytest
from playwright.sync_api import expect

from meetings.models import Action, StreamPreset

from .conftest import JOB_TIMEOUT_MS, open_webinar

pytestmark = [pytest.mark.browser]

KEY = "sk-browser-preset-6d5c4b3a"


def test_an_operator_streams_a_webinar_from_a_preset_and_stops_it(
    operator_page, live_server, screenshot, live_zoom
):
    # given a live webinar and two presets of its connection
    page, zoom = operator_page, live_zoom.state
    zoom_webinar, webinar = live_zoom.webinar("Investor day", status="started")
    StreamPreset.objects.create(
        account=live_zoom.account,
        name="Backup CDN",
        stream_url="rtmp://backup.example.com/live",
        stream_key="sk-backup-0000000000",
        page_url="https://watch.example.com/backup",
    )
    StreamPreset.objects.create(
        account=live_zoom.account,
        name="Investor CDN",
        stream_url="rtmp://cdn.example.com/live",
        stream_key=KEY,
        page_url="https://watch.example.com/investors",
        resolution="1080p",
    )
    open_webinar(page, live_server, webinar)
    page.evaluate("() => { window.notReloaded = true; }")
    panel = page.locator("#livestream")
    expect(panel).to_contain_text("No custom live stream is configured for this webinar.")
    start = panel.get_by_role("button", name="Start live stream")
    expect(start).to_be_disabled()

    # when the operator applies the "Investor CDN" preset
    panel.get_by_label("Stream preset").select_option(
        label="Investor CDN — rtmp://cdn.example.com/live"
    )
    panel.get_by_role("button", name="Apply preset").click()

    # then the job runs and the panel shows the stream configured from that preset
    state = page.locator("#livestream-state")
    expect(state).to_contain_text("rtmp://cdn.example.com/live", timeout=JOB_TIMEOUT_MS)
    expect(state).to_contain_text("From preset")
    expect(page.locator("#configured-preset")).to_have_text("Investor CDN", timeout=JOB_TIMEOUT_MS)
    expect(state).to_contain_text("1080p")
    expect(start).to_be_enabled(timeout=JOB_TIMEOUT_MS)
    screenshot(page, "1-configured-from-preset")

    # when the operator starts the stream with a display name
    panel.get_by_label("Display name").fill("Investor day")
    start.click()

    # then it is live at Zoom and on the page, which now offers Stop
    expect(state.locator(".badge").first).to_have_text("Live", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#started-with")).to_contain_text("Investor day")
    stop = panel.get_by_role("link", name="Stop live stream…")
    expect(stop).to_be_visible()
    assert zoom.webinars[zoom_webinar["id"]]["livestreaming"] is True
    screenshot(page, "2-streaming")

    # when the operator stops it, confirming in the dialog
    stop.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Stop the webinar's live stream?")
    dialog.get_by_role("button", name="Stop live stream").click()

    # then the stream is stopped, and nothing reloaded the page
    expect(state.locator(".badge").first).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    expect(panel.get_by_role("link", name="Stop live stream…")).to_have_count(0)
    assert zoom.webinars[zoom_webinar["id"]]["livestreaming"] is False
    assert page.evaluate("window.notReloaded === true")
    screenshot(page, "3-stopped")

    html = page.content()
    assert KEY not in html and "sk-backup-0000000000" not in html
    kinds = list(Action.objects.order_by("pk").values_list("kind", "state"))
    assert kinds == [
        ("update_webinar_livestream", "succeeded"),
        ("start_webinar_livestream", "succeeded"),
        ("stop_webinar_livestream", "succeeded"),
    ]
    configured = Action.objects.get(kind="update_webinar_livestream")
    assert configured.params["preset_name"] == "Investor CDN"
