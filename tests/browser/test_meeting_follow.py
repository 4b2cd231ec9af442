"""An open meeting page follows Zoom in Chromium, without a reload: the sandbox sends signed
webhooks to the live server, a real worker applies them to the mirror, and the page's poll
brings the new state in while what the operator was typing stays where it was."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from meetings.models import Action, Meeting, WebhookEvent

from .conftest import JOB_TIMEOUT_MS, open_meeting

pytestmark = [pytest.mark.browser]

STREAM_KEY = "sk-follow-browser-3e8a71"

# Playwright cannot put a headless page in a background tab, so the page is told it is hidden
# the way the browser tells it: document.hidden / visibilityState and a visibilitychange event.
SET_VISIBILITY = """(hidden) => {
  Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
  Object.defineProperty(document, "visibilityState",
                        {configurable: true, get: () => (hidden ? "hidden" : "visible")});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
# Counts the poller's ticks, the ones app.js lets through and the ones it holds back alike.
COUNT_TICKS = """() => {
  window.followTicks = 0;
  document.addEventListener("htmx:confirm", (event) => {
    if (event.detail.elt.id === "follow") window.followTicks += 1;
  });
}"""


def is_state_poll(request):
    return "/state/" in request.url


def test_a_live_stream_started_then_the_meeting_ended_in_zoom_show_on_the_open_page(
    operator_page, live_server, screenshot, zoom_webhooks
):
    # given a live meeting with a custom live stream configured, and Zoom's webhooks pointed at
    # this dashboard, signed with the secret it expects
    page, zoom = operator_page, zoom_webhooks.state
    stream = {
        "stream_url": "rtmps://live.example.com:443/board",
        "stream_key": STREAM_KEY,
        "page_url": "https://example.com/board",
    }
    zoom_meeting, meeting = zoom_webhooks.meeting(
        "Board meeting", status="started", livestream=stream, mirrored=stream
    )
    open_meeting(page, live_server, meeting)
    panel = page.locator("#livestream")
    expect(panel.locator("#livestream-title .badge")).to_have_text("Stopped")
    expect(panel.get_by_role("button", name="Start live stream")).to_be_enabled()

    # the operator is half-way through changing the settings and naming the stream
    panel.get_by_label("Stream URL").fill("rtmps://backup.example.com:443/board")
    panel.get_by_label("Display name").fill("Board, live")
    page.evaluate(
        """() => {
      window.notReloaded = true;
      window.typedInto = document.getElementById("id_stream_url");
      window.controlsBefore = document.getElementById("controls");
    }"""
    )
    # nothing changed yet: the poll is answered 204 and the page is left as it is
    with page.expect_response(lambda r: is_state_poll(r.request), timeout=10_000) as answer:
        pass
    assert answer.value.status == 204
    assert page.evaluate('window.controlsBefore === document.getElementById("controls")')

    # when someone starts the live stream in Zoom
    zoom.start_livestream(zoom_meeting["id"])

    # then the page says so, offers Stop instead of Start, and keeps what was typed
    expect(panel.locator("#livestream-title .badge")).to_have_text("Live", timeout=JOB_TIMEOUT_MS)
    expect(panel.get_by_role("button", name="Start live stream")).to_be_disabled()
    expect(panel.locator("#start-preflight")).to_have_text(
        "Start is unavailable: The stream is already live."
    )
    expect(panel.get_by_role("link", name="Stop live stream…")).to_be_visible()
    expect(panel.get_by_role("button", name="Save settings")).to_be_disabled()
    expect(page.locator("#controls .facts .badge")).to_have_text("Live")
    expect(panel.get_by_label("Stream URL")).to_have_value("rtmps://backup.example.com:443/board")
    expect(panel.get_by_label("Display name")).to_have_value("Board, live")
    assert page.evaluate('window.typedInto === document.getElementById("id_stream_url")')
    screenshot(page, "1-streaming-started-in-zoom")

    # when the meeting ends in Zoom (which stops its stream)
    zoom.end_meeting(zoom_meeting["id"])

    # then End is gone, the stream is stopped, and Start says why it is unavailable
    expect(page.locator("#meeting-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("link", name="End meeting…")).to_have_count(0)
    expect(page.locator("#controls")).to_contain_text("End still asks Zoom")
    expect(panel.locator("#livestream-title .badge")).to_have_text("Stopped")
    expect(panel.locator("#start-preflight")).to_contain_text("The meeting is not live")
    expect(panel.get_by_role("link", name="Stop live stream…")).to_have_count(0)
    expect(panel.get_by_label("Stream URL")).to_have_value("rtmps://backup.example.com:443/board")
    screenshot(page, "2-meeting-ended-in-zoom")

    assert page.evaluate("window.notReloaded === true")
    assert STREAM_KEY not in page.content()
    events = WebhookEvent.objects.filter(object_id=meeting.zoom_id)
    assert sorted(events.values_list("event", "error")) == [
        ("meeting.ended", ""),
        ("meeting.live_streaming_started", ""),
        ("meeting.live_streaming_stopped", ""),
    ]


def test_a_hidden_tab_does_not_poll_and_catches_up_as_soon_as_it_is_shown(
    operator_page, live_server, screenshot, transactional_db
):
    from tests.dashboard_data import make_account, make_meeting

    page = operator_page
    meeting = make_meeting(make_account(), topic="Watched from a background tab", status="started")
    open_meeting(page, live_server, meeting)
    page.evaluate(COUNT_TICKS)
    polls = []
    page.on("request", lambda r: polls.append(r.url) if is_state_poll(r) else None)

    # given the tab is hidden (a poll already on its way when it was hidden may still land)
    page.evaluate(SET_VISIBILITY, True)
    page.wait_for_timeout(500)
    polls.clear()
    ticks = page.evaluate("window.followTicks")
    # when the meeting ends meanwhile, and the poller's clock ticks
    Meeting.objects.filter(pk=meeting.pk).update(status="ended")
    page.wait_for_function("(ticks) => window.followTicks > ticks", arg=ticks, timeout=10_000)

    # then it asked nothing, and shows what it showed
    assert polls == []
    expect(page.locator("#meeting-status")).to_have_text("Live")

    # when the tab is shown just after a held-back tick (the next is 5 s away)
    with page.expect_request(is_state_poll, timeout=1_500):
        page.evaluate(SET_VISIBILITY, False)

    # then the page has asked at once, and shows the meeting ended
    expect(page.locator("#meeting-status")).to_have_text("Ended", timeout=1_500)
    expect(page.get_by_role("link", name="End meeting…")).to_have_count(0)
    screenshot(page, "shown-again")


@pytest.mark.worker_env(PAST_MEETING_FETCH_DELAY_SECONDS="1")
def test_after_an_end_the_instance_zoom_s_event_has_fetched_appears_without_a_reload(
    operator_page, live_server, screenshot, zoom_webhooks, settings
):
    # given a live meeting whose Zoom webhooks reach this dashboard, and no past instance yet
    settings.PAST_MEETING_FETCH_DELAY_SECONDS = 1
    page = operator_page
    zoom_meeting, meeting = zoom_webhooks.meeting("Quarterly review", status="started")
    instance_uuid = zoom_meeting["uuid"]
    open_meeting(page, live_server, meeting)
    page.evaluate("() => { window.notReloaded = true; }")
    past = page.locator("#past")
    expect(past).to_contain_text("No past instances fetched yet.")

    # when the operator ends it
    page.get_by_role("link", name="End meeting…").click()
    page.get_by_role("dialog").get_by_role("button", name="End meeting").click()

    # then Zoom's meeting.ended shows in the timeline, the fetch it queued follows it there, and
    # the fetched instance appears among the past instances, all without a reload
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("meeting.ended", timeout=JOB_TIMEOUT_MS)
    fetch_row = timeline.locator("tr", has_text="Fetch past meeting details")
    expect(fetch_row).to_contain_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(past.locator("tbody tr")).to_have_count(1, timeout=JOB_TIMEOUT_MS)
    expect(past.locator("tbody tr")).to_contain_text(instance_uuid)
    expect(past).not_to_contain_text("No past instances fetched yet.")
    expect(page.locator("#meeting-status")).to_have_text("Ended")
    screenshot(page, "instance-fetched")

    assert page.evaluate("window.notReloaded === true")
    fetch = Action.objects.get(kind="fetch_past_meeting")
    assert (fetch.source, fetch.state, fetch.target_uuid) == ("webhook", "succeeded", instance_uuid)


def test_the_page_does_not_poll_while_one_of_its_forms_is_on_its_way(
    operator_page, live_server, screenshot, transactional_db
):
    from tests.dashboard_data import make_account, make_meeting, make_past

    page = operator_page
    account = make_account()
    meeting = make_meeting(account, topic="Fetched while followed", status="ended")
    # The browser holds the fetch's POST until the test lets it go: a slow server.
    held = []
    page.route("**/past/fetch/", lambda route: held.append(route))
    open_meeting(page, live_server, meeting)
    page.evaluate("() => { window.pastBefore = document.getElementById('past'); }")
    polls = []
    page.on("request", lambda r: polls.append(r.url) if is_state_poll(r) else None)

    # given the operator's fetch is on its way
    past = page.locator("#past")
    past.get_by_role("button", name="Fetch details of the latest instance").click()
    page.wait_for_function("() => document.querySelector('#past form.htmx-request')")
    # when something the poll would swap changes, and the poller is asked at once
    make_past(account, meeting)
    page.evaluate("() => htmx.trigger('#follow', 'follow-now')")
    page.wait_for_timeout(500)

    # then it asked nothing: the panel the form answers into stays, with the form's spinner
    assert polls == []
    assert page.evaluate("window.pastBefore === document.getElementById('past')")
    expect(past.locator("form.htmx-request")).to_have_count(1)

    # when the answer comes, it lands, and the poll catches up afterwards
    held[0].continue_()
    expect(past.locator(".job")).to_contain_text("Fetch past meeting details")
    page.evaluate("() => htmx.trigger('#follow', 'follow-now')")
    expect(past.locator("tbody tr")).to_have_count(1)
    expect(page.locator("#timeline")).to_contain_text("Fetch past meeting details")
    screenshot(page, "caught-up")
    assert polls


def test_a_topic_and_time_changed_in_zoom_show_in_the_details_without_a_reload(
    operator_page, live_server, screenshot, zoom_webhooks
):
    # given a scheduled meeting whose Zoom webhooks reach this dashboard, its page open, and the
    # operator half-way through typing a stream URL
    page, zoom = operator_page, zoom_webhooks.state
    zoom_meeting, meeting = zoom_webhooks.meeting(
        "Board meeting", mirrored={"start_time": datetime(2031, 3, 4, 10, 0, tzinfo=UTC)}
    )
    open_meeting(page, live_server, meeting)
    details = page.locator("#details")
    expect(details.locator("dd").first).to_have_text("Board meeting")
    expect(page.locator("#heard")).to_contain_text("Last event—")
    page.get_by_label("Stream URL").fill("rtmps://live.example.com:443/board")
    page.evaluate("() => { window.notReloaded = true; }")
    screenshot(page, "1-before")

    # when the host renames and reschedules it in Zoom's web portal (HTML in the new topic)
    new_topic = "Board meeting <b>(moved)</b>"
    zoom.update_meeting(
        zoom_meeting["id"],
        topic=new_topic,
        start_time=datetime(2031, 3, 5, 15, 30, tzinfo=UTC).timestamp(),
        duration=90,
    )

    # then the Details panel, the heading, the tab's title and the status panel's time say so,
    # the topic as text, and what was typed stays
    expect(details.locator("dd").first).to_have_text(new_topic, timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("heading", level=1)).to_have_text(new_topic)
    expect(page).to_have_title(f"{new_topic} · zoomadmin")
    expect(page.locator("#controls time")).to_have_attribute(
        "datetime", "2031-03-05T15:30:00+00:00"
    )
    expect(page.locator("#controls")).to_contain_text("90 minutes")
    expect(page.locator("#timeline")).to_contain_text("meeting.updated")
    expect(page.locator("#heard")).to_contain_text("Last eventjust now")
    expect(page.get_by_label("Stream URL")).to_have_value("rtmps://live.example.com:443/board")
    assert page.locator("#details b").count() == 0
    screenshot(page, "2-updated-in-zoom")

    assert page.evaluate("window.notReloaded === true")
    meeting.refresh_from_db()
    assert (meeting.topic, meeting.duration, meeting.status) == (new_topic, 90, "waiting")


def test_last_heard_keeps_telling_the_time_while_nothing_changes(
    operator_page, live_server, screenshot
):
    # given a meeting Zoom last reported on 30 seconds ago, open in a browser whose clock the
    # test moves (the server's does not move: every poll answers "nothing changed")
    from datetime import timedelta

    from django.utils.timezone import now

    from tests.dashboard_data import make_account, make_meeting

    page = operator_page
    meeting = make_meeting(make_account(), last_event_at=now() - timedelta(seconds=30))
    page.clock.install()
    open_meeting(page, live_server, meeting)
    last_event = page.locator("#heard time").last
    expect(last_event).to_have_text("just now")

    # when the page stays open for 2 hours and 5 minutes
    polls = []
    page.on("request", lambda request: polls.append(request) if is_state_poll(request) else None)
    page.clock.run_for("02:05:00")

    # then it says how long ago, as the server would (no line break inside "5 minutes"),
    # though every poll it made was answered 204
    expect(last_event).to_have_text("2\u00a0hours, 5\u00a0minutes ago")
    assert polls
    screenshot(page, "two-hours-later")
