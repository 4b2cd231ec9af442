"""Operators clicking through the dashboard in Chromium, against the live server, a real Celery
worker and the Zoom sandbox over HTTP."""

import re
from datetime import timedelta

import pytest
from django.utils.timezone import now
from playwright.sync_api import expect

from meetings.models import Action

from .conftest import JOB_TIMEOUT_MS, PHONE, open_meeting

pytestmark = [pytest.mark.browser]


OVERFLOWING_ELEMENTS = """() => {
  const width = document.documentElement.clientWidth;
  const inScrollBox = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (style.overflowX === "auto" || style.overflowX === "scroll") return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > width + 1 &&
                    (!inScrollBox(el) || getComputedStyle(el).position === "absolute"))
    .slice(0, 8)
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
         (el.className ? "." + String(el.className).split(" ").join(".") : ""));
}"""


def test_operator_ends_a_live_meeting_and_sees_it_succeed(
    operator_page, live_server, screenshot, operator, live_zoom
):
    # given a live meeting at Zoom and in the mirror
    page = operator_page
    zoom_meeting, meeting = live_zoom.meeting("All-hands: Q3 results", status="started")
    open_meeting(page, live_server, meeting)
    controls = page.locator("#controls")
    expect(controls.locator("#meeting-status")).to_have_text("Live")

    # when the operator ends it, confirming in the dialog that names the meeting and its host
    page.get_by_role("link", name="End meeting…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("All-hands: Q3 results")
    expect(dialog).to_contain_text(live_zoom.host["email"])
    screenshot(page, "1-confirm")
    live_zoom.state.set_faults(latency_ms=1500)
    dialog.get_by_role("button", name="End meeting").click()

    # then the job shows in place, then succeeds, and the status follows
    expect(dialog).to_be_hidden()
    # while the job is in flight (Zoom is slowed down), the button is disabled
    expect(controls.get_by_role("button", name="Ending…")).to_be_disabled()
    expect(controls.locator(".job")).to_be_visible()
    expect(controls.locator(".job")).to_contain_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(controls.locator("#meeting-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS)
    screenshot(page, "2-ended")

    action = Action.objects.get(kind="end_meeting")
    assert action.state == "succeeded"
    assert action.requested_by == operator and action.source == "dashboard"
    assert action.client_ip == "127.0.0.1"
    assert live_zoom.state.meetings[zoom_meeting["id"]]["status"] != "started"
    # the poll stopped: no element on the page still polls the finished job
    assert page.locator(f'[hx-get="/activity/{action.pk}/"]').count() == 0


def test_a_failing_end_shows_zooms_reason(
    operator_page, live_server, screenshot, operator, live_zoom
):
    # Zoom refuses to end this one: the dashboard's account is not its host (3003).
    page = operator_page
    _, meeting = live_zoom.meeting("Locked board meeting", status="started", host_locked=True)
    open_meeting(page, live_server, meeting)
    page.get_by_role("link", name="End meeting…").click()
    page.get_by_role("dialog").get_by_role("button", name="End meeting").click()

    job = page.locator("#controls .job")
    expect(job).to_contain_text("Failed", timeout=JOB_TIMEOUT_MS)
    expect(job).to_contain_text("not the host")
    expect(job).to_contain_text("3003")
    screenshot(page, "failed")
    # The meeting is still live, and End is offered again.
    expect(page.locator("#meeting-status")).to_have_text("Live")
    expect(page.get_by_role("link", name="End meeting…")).to_be_visible()
    assert Action.objects.get().state == "failed"


def test_operator_configures_starts_and_stops_a_live_stream(
    operator_page, live_server, screenshot, operator, live_zoom
):
    page = operator_page
    zoom_meeting, meeting = live_zoom.meeting("Product launch", status="started")
    open_meeting(page, live_server, meeting)
    panel = page.locator("#livestream")
    expect(panel).to_contain_text("Start is unavailable: No stream is configured")
    expect(panel.get_by_role("button", name="Start live stream")).to_be_disabled()

    # configure
    panel.get_by_label("Stream URL").fill("rtmps://live.example.com:443/launch")
    panel.get_by_label("Stream key").fill("sk-launch-5d1e")
    panel.get_by_label("Live stream page URL").fill("https://example.com/launch")
    panel.get_by_label("Resolution").select_option("1080p")
    screenshot(page, "1-config-typed")
    panel.get_by_role("button", name="Save settings").click()
    expect(panel.locator(".job")).to_contain_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(panel).to_contain_text("rtmps://live.example.com:443/launch")
    expect(panel).not_to_contain_text("sk-launch-5d1e")
    # the form shows what was saved, the key as configured but not shown
    expect(panel.get_by_label("Stream URL")).to_have_value("rtmps://live.example.com:443/launch")
    expect(panel.get_by_label("Resolution")).to_have_value("1080p")
    expect(panel.get_by_label("Stream key")).to_have_value("")
    assert live_zoom.state.meetings[zoom_meeting["id"]]["livestream"]["stream_key"] == (
        "sk-launch-5d1e"
    )

    # start, with settings
    expect(panel.get_by_role("button", name="Start live stream")).to_be_enabled()
    panel.get_by_label("Display name").fill("Launch day")
    panel.get_by_role("button", name="Start live stream").click()
    expect(panel.locator(".job")).to_contain_text("Start live stream", timeout=JOB_TIMEOUT_MS)
    expect(panel.locator(".job")).to_contain_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(panel.locator("h2 .badge")).to_have_text("Live", timeout=JOB_TIMEOUT_MS)
    expect(panel).to_contain_text("Settings can be changed only while the stream is stopped")
    screenshot(page, "2-streaming")
    assert live_zoom.state.meetings[zoom_meeting["id"]]["livestreaming"] is True

    # stop, confirmed
    panel.get_by_role("link", name="Stop live stream…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Stop the live stream?")
    dialog.get_by_role("button", name="Stop live stream").click()
    expect(panel.locator(".job")).to_contain_text("Stop live stream", timeout=JOB_TIMEOUT_MS)
    expect(panel.locator(".job")).to_contain_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(panel.locator("h2 .badge")).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    screenshot(page, "3-stopped")
    assert live_zoom.state.meetings[zoom_meeting["id"]]["livestreaming"] is False
    kinds = list(Action.objects.order_by("id").values_list("kind", "state"))
    assert kinds == [
        ("update_livestream", "succeeded"),
        ("start_livestream", "succeeded"),
        ("stop_livestream", "succeeded"),
    ]


def test_an_invalid_display_name_shows_an_inline_error_and_keeps_what_was_typed(
    operator_page, live_server, screenshot, transactional_db
):
    from tests.dashboard_data import make_account, make_meeting

    page = operator_page
    meeting = make_meeting(
        make_account(),
        topic="Streamed keynote",
        status="started",
        stream_url="rtmp://live.example.com/app",
        page_url="https://example.com/keynote",
        stream_key="sk-keynote-1",
    )
    open_meeting(page, live_server, meeting)
    panel = page.locator("#livestream")
    too_long = "The annual keynote, live from the main hall in London"  # 53 characters
    panel.get_by_label("Show the active speaker's name").uncheck()
    panel.get_by_label("Display name").fill(too_long)
    panel.get_by_role("button", name="Start live stream").click()

    expect(panel.get_by_role("alert")).to_contain_text("at most 50 characters (it has 53)")
    expect(panel.get_by_label("Display name")).to_have_value(too_long)
    expect(panel.get_by_label("Display name")).to_have_attribute("aria-invalid", "true")
    expect(panel.get_by_label("Show the active speaker's name")).not_to_be_checked()
    screenshot(page, "error")
    assert Action.objects.count() == 0


def test_a_viewer_sees_no_action_controls(
    page, live_server, sign_in, screenshot, viewer, transactional_db
):
    from tests.dashboard_data import make_account, make_meeting

    account = make_account()
    meeting = make_meeting(
        account,
        topic="Live and watched",
        status="started",
        stream_url="rtmp://a.example/x",
        page_url="https://a.example",
        stream_key="k-123456",
        livestream_status="live",
    )
    sign_in(page, viewer)
    open_meeting(page, live_server, meeting)
    screenshot(page, "meeting")
    expect(page.locator("#controls #meeting-status")).to_have_text("Live")
    assert page.get_by_role("button").filter(has_not_text="Sign out").count() == 0
    assert page.locator("main form").count() == 0
    assert page.locator("dialog").count() == 0
    assert page.locator("[data-confirm]").count() == 0

    page.goto(f"{live_server.url}/meetings/")
    expect(page.get_by_role("link", name="Live and watched")).to_be_visible()
    assert page.locator('input[name="ids"]').count() == 0
    screenshot(page, "list")
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert page.get_by_role("button", name="Sync now").count() == 0


def test_a_bulk_end_with_a_dry_run_and_progress(
    operator_page, live_server, screenshot, operator, live_zoom
):
    page = operator_page
    live = [live_zoom.meeting(f"Breakout room {n + 1}", status="started")[1] for n in range(4)]
    waiting, _ = live_zoom.meeting("Tomorrow's standup")
    # Slow Zoom down a little so the progress is visible between polls.
    live_zoom.state.set_faults(latency_ms=400)

    page.goto(f"{live_server.url}/meetings/?q=Breakout")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(4)
    page.get_by_label("Select all meetings on this page").check()
    expect(page.locator("[data-selected-count]")).to_have_text("4 selected")
    page.get_by_label("Bulk action").select_option("end_meeting")
    screenshot(page, "1-selected")
    page.get_by_role("button", name="Review…").click()

    # the dry run: nothing done yet
    expect(page.get_by_role("heading", level=2)).to_contain_text("4 will be done")
    assert Action.objects.count() == 0
    screenshot(page, "2-dry-run")
    page.get_by_role("button", name="End 4 meetings").click()

    # progress, then per-row results
    expect(page.get_by_role("heading", level=1)).to_contain_text("End meeting in bulk")
    progress = page.locator("#progress")
    expect(progress.locator("progress")).to_be_visible()
    screenshot(page, "3-progress")
    expect(progress).to_contain_text("4 of 4 finished", timeout=JOB_TIMEOUT_MS * 2)
    # headed with what happened, not "Done"
    expect(progress.get_by_role("heading", level=2)).to_contain_text("4 ended")
    expect(progress).to_contain_text("4 succeeded")
    expect(progress.locator("tbody tr .badge-ok")).to_have_count(4)
    screenshot(page, "4-done")
    assert sorted(Action.objects.values_list("state", flat=True)) == ["succeeded"] * 4
    assert set(Action.objects.values_list("source", flat=True)) == {"bulk"}
    for m in live:
        assert live_zoom.state.meetings[m.zoom_id]["status"] != "started"
    assert live_zoom.state.meetings[waiting["id"]]["status"] == "waiting"


@pytest.mark.parametrize("viewport", ["laptop", "phone"])
def test_the_pages_fit_the_screen_on_a_laptop_and_a_phone(
    operator_page, live_server, screenshot, transactional_db, viewport
):
    from tests.dashboard_data import (
        make_account,
        make_action,
        make_meeting,
        make_past,
        make_webinar,
    )

    page = operator_page
    account = make_account()
    webinar = make_webinar(
        account,
        topic="Investor day webinar with a rather long topic to see how it wraps on a phone",
        status="started",
        join_url="https://sandbox.zoom.example/w/83496869172?pwd=aVeryLongPasswordToken1234567",
    )
    meeting = make_meeting(
        account,
        topic="Global town hall with a rather long topic to see how it wraps on a phone",
        status="started",
        host_email="someone.with.a.long.address@example.com",
    )
    make_past(account, meeting)
    make_action(
        account,
        target=meeting,
        state="failed",
        result_summary="Zoom: you are not the host of this meeting (3003)",
    )
    for n in range(5):
        make_meeting(account, topic=f"Team sync {n}")
    if viewport == "phone":
        page.set_viewport_size(PHONE)
    for label, path in (
        ("overview", "/"),
        ("meetings", "/meetings/"),
        ("meeting", f"/meetings/{meeting.pk}/"),
        ("activity", "/activity/"),
        ("webinars", "/webinars/"),
        ("webinar", f"/webinars/{webinar.pk}/"),
    ):
        page.goto(f"{live_server.url}{path}")
        screenshot(page, f"{viewport}-{label}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 1:
            # Name the culprits: elements reaching past the right edge outside a scroll box.
            culprits = page.evaluate(OVERFLOWING_ELEMENTS)
            pytest.fail(f"{label} scrolls sideways by {overflow}px at {viewport}: {culprits}")


def test_the_confirmation_dialog_is_keyboard_usable(operator_page, live_server, transactional_db):
    from tests.dashboard_data import make_account, make_meeting

    page = operator_page
    meeting = make_meeting(make_account(), topic="Keyboard check", status="started")
    open_meeting(page, live_server, meeting)
    page.get_by_role("link", name="End meeting…").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    # Focus starts on the harmless choice; Escape closes without doing anything.
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert Action.objects.count() == 0
    assert re.search(r"/meetings/\d+/$", page.url)
    # Confirmed from the keyboard, focus lands on the job the answer shows, not on <body>: the
    # link that opened the dialog is gone, replaced by the panel with the job in it.
    page.get_by_role("link", name="End meeting…").focus()
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="End meeting")).to_be_focused()
    page.keyboard.press("Enter")
    action = page.locator("#controls .job")
    expect(action).to_contain_text("End meeting")
    expect(action).to_be_focused()
    assert Action.objects.filter(kind="end_meeting").count() == 1


def test_a_bulk_review_on_a_phone_shows_each_meeting_s_host_and_status(
    operator_page, live_server, screenshot, transactional_db
):
    from tests.dashboard_data import make_account, make_meeting

    page = operator_page
    account = make_account()
    meetings = [
        make_meeting(
            account,
            topic=f"Regional town hall {n}",
            status="started",
            host_email=f"regional.host.{n}@example.com",
        )
        for n in range(3)
    ]
    page.set_viewport_size(PHONE)
    # Every main navigation link is on screen: a sideways-scrolling bar hid the last ones.
    width = PHONE["width"]
    for link in page.get_by_role("navigation", name="Main").get_by_role("link").all():
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, link.inner_text()

    ids = "&".join(f"ids={m.pk}" for m in meetings)
    page.goto(f"{live_server.url}/bulk/preview/?kind=end_meeting&{ids}")
    screenshot(page, "phone-review")
    # Which host each end will hit is in sight on a phone, not in a column scrolled away.
    for n in range(3):
        host = page.get_by_text(f"regional.host.{n}@example.com")
        expect(host).to_be_visible()
        box = host.bounding_box()
        assert box["x"] + box["width"] <= width
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    assert page.locator(".table-wrap").evaluate("el => el.scrollWidth <= el.clientWidth")


def test_a_plain_form_post_shows_it_is_on_its_way_and_sends_once(
    operator_page, live_server, transactional_db
):
    from tests.dashboard_data import make_account, make_meeting

    page = operator_page
    meeting = make_meeting(make_account(), topic="Slow answer", status="started")
    page.goto(f"{live_server.url}/bulk/preview/?kind=end_meeting&ids={meeting.pk}")
    # The browser answers the POST itself with 204 (no navigation), so the page stays as it is
    # while the server would be working: what the operator sees meanwhile can be looked at.
    posts = []

    def no_content(route):
        posts.append(route.request.method)
        route.fulfill(status=204)

    page.route("**/bulk/", no_content)
    button = page.get_by_role("button", name="End 1 meeting")
    button.click()
    form = page.locator("form", has=button)
    expect(form).to_have_class(re.compile(r"\bis-submitting\b"))
    expect(form).to_have_attribute("aria-busy", "true")
    # A second, impatient click (through the spinner's pointer-events: none) sends nothing.
    button.dispatch_event("click")
    page.wait_for_timeout(300)
    assert posts == ["POST"]
    page.unroute("**/bulk/")

    # For real this time: one batch, one action.
    page.reload()
    page.get_by_role("button", name="End 1 meeting").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("End meeting in bulk")
    assert Action.objects.filter(kind="end_meeting").count() == 1


def test_the_activity_on_a_phone_shows_each_action_s_state_and_zoom_s_answer(
    operator_page, live_server, screenshot, operator, transactional_db
):
    from tests.dashboard_data import make_account, make_action, make_meeting

    page = operator_page
    account = make_account()
    meeting = make_meeting(account, topic="Quarterly all hands", status="started")
    make_action(
        account,
        target=meeting,
        state="failed",
        requested_by=operator,
        result_summary="Zoom: you are not the host of this meeting (3003)",
    )
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/activity/")
    screenshot(page, "phone-activity")
    # The state and Zoom's answer were columns scrolled out of sight, in rows made tall by
    # the squeezed answer; each action is now a block of labelled lines.
    for text in ("Failed", "Zoom: you are not the host of this meeting (3003)"):
        shown = page.locator("#results tbody").get_by_text(text)
        expect(shown).to_be_visible()
        box = shown.bounding_box()
        assert box["x"] + box["width"] <= PHONE["width"], text
    assert page.locator(".table-wrap").evaluate("el => el.scrollWidth <= el.clientWidth")
    # A column hidden on phones stays hidden in the blocks (it showed as an unlabelled line).
    expect(page.locator("#results tbody td.hide-phone").first).to_be_hidden()

    # The same on the overview (accounts, recent failures) and the meeting's timeline.
    for label, path in (("overview", "/"), ("meeting", f"/meetings/{meeting.pk}/")):
        page.goto(f"{live_server.url}{path}")
        screenshot(page, f"phone-{label}")
        expect(page.get_by_text("you are not the host of this meeting").first).to_be_visible()
        stacked = page.locator(".table-wrap:has(.table-stack)")
        assert stacked.count() >= 1, label
        for box in stacked.all():
            assert box.evaluate("el => el.scrollWidth <= el.clientWidth"), label


def test_the_meetings_list_on_a_phone_is_labelled_lines_that_fit_and_still_follow_zoom(
    operator_page, live_server, screenshot, transactional_db
):
    from meetings import mirror
    from tests.dashboard_data import make_account, make_meeting

    page = operator_page
    account = make_account()
    streaming = make_meeting(
        account,
        topic="Regional town hall with a rather long topic to see how it wraps on a phone",
        status="started",
        livestream_status="live",
        host_email="someone.with.a.long.address@example.com",
    )
    waiting = make_meeting(account, topic="Board prep", host_email="chair@example.com")
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/meetings/")
    screenshot(page, "phone-meetings")

    # The list scrolled sideways, the start time and host past the edge: no more.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator(".table-wrap").evaluate("el => el.scrollWidth <= el.clientWidth")
    row = page.locator("#results tbody tr", has_text="Regional town hall")
    for shown in (
        row.get_by_text("Streaming"),
        row.get_by_text("someone.with.a.long.address@example.com"),
        row.get_by_text(str(streaming.zoom_id)),
        row.get_by_role("checkbox"),
        page.get_by_role("checkbox", name="Select all meetings on this page"),
    ):
        expect(shown).to_be_visible()
        box = shown.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # Each value is named: the column headings are out of sight on a phone.
    assert row.locator("td[data-label='Host']").count() == 1

    # The live badges still follow Zoom (the list polls for this page's rows).
    mirror.record_meeting_status(account, waiting.zoom_id, "started")
    expect(page.locator(f"#mstatus-{waiting.pk}")).to_contain_text("Live", timeout=10_000)

    # On a laptop it is the table it was: headings in sight, one line a meeting.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.reload()
    screenshot(page, "laptop-meetings")
    expect(page.get_by_role("columnheader", name="Host")).to_be_visible()
    assert (
        page.locator("#results tbody tr").first.evaluate("el => getComputedStyle(el).display")
        == "table-row"
    )


def test_a_very_long_host_email_keeps_every_column_and_the_dialog_in_sight(
    page, live_server, sign_in, screenshot, operator, transactional_db
):
    # Zoom allows 128-character addresses. One unbreakable 100-character host pushed the start
    # time and type of every row out of the list's box, behind a sideways scroll, and ran past the
    # edge of the end meeting dialog.
    from tests.dashboard_data import make_account, make_meeting

    long_host = "verylonghostname" * 6 + "@averyveryverylongdomainname-for-testing.example"
    # Live since yesterday: its start shows with its date ("Mon 7 Dec, 23:49"), the widest
    # the overview's "Since" column gets (a start today is only its time).
    meeting = make_meeting(
        make_account(),
        topic="Long host",
        status="started",
        host_email=long_host,
        start_time=now() - timedelta(days=1),
    )
    sign_in(page, operator)
    page.set_viewport_size({"width": 1280, "height": 900})
    for path in ("/meetings/", "/"):
        page.goto(f"{live_server.url}{path}")
        screenshot(page, path.strip("/") or "overview")
        for wrap in page.locator(".table-wrap").all():
            assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), path
    page.goto(f"{live_server.url}/meetings/")
    expect(page.get_by_role("columnheader", name="Type")).to_be_in_viewport()

    page.goto(f"{live_server.url}/meetings/{meeting.pk}/")
    page.get_by_role("link", name="End meeting…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(long_host)
    screenshot(page, "dialog")
    assert dialog.evaluate("el => el.scrollWidth <= el.clientWidth")
    right = dialog.bounding_box()["x"] + dialog.bounding_box()["width"]
    for strong in dialog.locator("strong").all():
        box = strong.bounding_box()
        assert box["x"] + box["width"] <= right


def test_the_connections_list_on_a_phone_shows_each_account_s_status_in_sight(
    page, live_server, sign_in, screenshot, admin_user, transactional_db
):
    # As a table the list scrolled sideways on a phone: "Needs recon" cut at the edge, the token,
    # scopes and last error out of sight.
    from tests.dashboard_data import make_account

    account = make_account("Sandbox (demo)", connected_as="owner@sandbox.example")
    account.mark_needs_reconnect("Zoom refused the credentials: Invalid client_secret (124)")
    page.set_viewport_size(PHONE)
    sign_in(page, admin_user)
    page.goto(f"{live_server.url}/connections/")
    screenshot(page, "phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator(".table-wrap").evaluate("el => el.scrollWidth <= el.clientWidth")
    row = page.locator("tbody tr").first
    for shown in (
        row.get_by_text("Needs reconnecting"),
        row.get_by_text("Invalid client_secret (124)"),
        row.get_by_text("Server-to-Server"),
    ):
        expect(shown).to_be_visible()
        box = shown.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_the_webinars_and_past_meetings_lists_on_a_phone_keep_every_value_in_sight(
    page, live_server, sign_in, screenshot, operator, transactional_db
):
    # Both were plain tables: on a phone the webinar id, host and start time (the past meeting's
    # id, host, minutes and participants) were past the edge, behind a sideways scroll.
    from tests.dashboard_data import make_account, make_meeting, make_past, make_webinar

    account = make_account()
    webinar = make_webinar(account, topic="Product launch", host_email="cfo@example.com")
    meeting = make_meeting(account, topic="Board prep", host_email="chair@example.com")
    make_past(account, meeting, participants_count=37)
    page.set_viewport_size(PHONE)
    sign_in(page, operator)
    for path, values in (
        ("/webinars/", [str(webinar.zoom_id), "cfo@example.com", "Product launch"]),
        ("/past-meetings/", [str(meeting.zoom_id), "chair@example.com", "37"]),
    ):
        page.goto(f"{live_server.url}{path}")
        screenshot(page, path.strip("/"))
        assert page.locator(".table-wrap").evaluate("el => el.scrollWidth <= el.clientWidth")
        row = page.locator("tbody tr").first
        for value in values:
            shown = row.get_by_text(value, exact=True)
            expect(shown).to_be_visible()
            box = shown.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (path, value)
        assert row.locator("td[data-label='Host']").count() == 1
