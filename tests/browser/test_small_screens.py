"""Roles and small screens in Chromium: a viewer is told once that the dashboard is read-only
for them; on a phone the meetings list starts on the first screen, and the timeline keeps its
Who column and breaks Zoom's event names only between words."""

import pytest
from playwright.sync_api import expect

from meetings.models import WebhookEvent

from ..dashboard_data import make_account, make_action, make_meeting
from .conftest import PHONE

pytestmark = [pytest.mark.browser]


def test_a_viewer_is_told_once_that_they_can_change_nothing(page, sign_in, viewer, operator):
    make_account()
    sign_in(page, viewer)
    note = page.locator("#read-only")
    expect(note).to_contain_text("Your account can see everything here but change nothing")
    page.goto(page.url.rstrip("/") + "/meetings/")
    expect(page.locator("#read-only")).to_have_count(0)  # once, on the overview


def test_on_a_phone_the_meetings_list_starts_on_the_first_screen(
    page, sign_in, operator, screenshot
):
    account = make_account()
    for number in range(5):
        make_meeting(account, topic=f"Standup {number}", status="started")
    page.set_viewport_size(PHONE)
    sign_in(page, operator)
    page.goto(page.url.rstrip("/") + "/meetings/")

    first_row = page.locator("#results tbody tr").first
    expect(first_row).to_be_in_viewport()
    expect(page.get_by_label("Status")).to_be_hidden()
    expect(page.locator(".bulk-controls")).to_be_hidden()
    screenshot(page, "1-folded")

    # the filters unfold on demand, and the bulk controls come with a ticked row
    page.get_by_role("button", name="Filters and sort").click()
    expect(page.get_by_label("Status")).to_be_visible()
    expect(page.get_by_role("button", name="Filters and sort")).to_have_attribute(
        "aria-expanded", "true"
    )
    first_row.get_by_role("checkbox").check()
    expect(page.locator(".bulk-controls")).to_be_visible()
    expect(page.get_by_text("1 selected")).to_be_visible()
    screenshot(page, "2-unfolded")


def test_on_a_phone_the_timeline_keeps_who_and_breaks_event_names_between_words(
    page, sign_in, operator, screenshot
):
    account = make_account()
    meeting = make_meeting(account, topic="Town hall", status="started")
    make_action(account, target=meeting, state="succeeded", requested_by=operator)
    WebhookEvent.objects.create(
        event="meeting.live_streaming_started",
        object_id=meeting.zoom_id,
        account=account,
        payload={},
        dedupe_key="phone-timeline-1",
    )
    page.set_viewport_size(PHONE)
    sign_in(page, operator)
    page.goto(page.url.rstrip("/") + f"/meetings/{meeting.pk}/")

    timeline = page.locator("#timeline")
    who = timeline.locator('td[data-label="Who"]')
    expect(who.first).to_be_visible()
    expect(who).to_have_text(["Zoom", "oscar-operator"])  # newest first: the event, the action
    name = timeline.locator(".event-name")
    expect(name).to_have_text("meeting.live_streaming_started")
    # each line of the name ends at a dot or an underscore (or the name's end): no mid-word cut
    lines = name.evaluate(
        """el => { const range = document.createRange(); const text = el.textContent;
        const lines = []; let top = null, line = "";
        for (let i = 0; i < text.length; i++) {
          range.setStart(el.firstChild.nodeType === 3 ? el.firstChild : el, 0);
          const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
          let n, seen = 0, node = null, offset = 0;
          while ((n = walker.nextNode())) {
            if (seen + n.length > i) { node = n; offset = i - seen; break; }
            seen += n.length;
          }
          range.setStart(node, offset); range.setEnd(node, offset + 1);
          const t = range.getBoundingClientRect().top;
          if (top !== null && Math.abs(t - top) > 2) { lines.push(line); line = ""; }
          top = t; line += text[i];
        }
        lines.push(line); return lines; }"""
    )
    assert all(line.endswith((".", "_")) for line in lines[:-1]), lines
    screenshot(page, "timeline")
