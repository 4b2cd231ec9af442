"""Times in the operator's own time zone, in Chromium: the browser's zone is used without
being asked, the page says which it is, and UTC is a hover away."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from meetings.models import Meeting, ZoomAccount

from .conftest import LAPTOP

pytestmark = [pytest.mark.browser]


def test_times_show_in_the_browser_s_zone_with_utc_on_hover(
    browser, live_server, password, viewer, screenshot
):
    account = ZoomAccount.objects.create(name="Acme Zoom", kind="server_to_server")
    start = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)
    meeting = Meeting.objects.create(
        account=account, zoom_id=85123456789, topic="Late call", start_time=start
    )
    context = browser.new_context(viewport=LAPTOP, locale="en-GB", timezone_id="Asia/Tokyo")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(viewer.get_username())
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()

        # the first page learns the browser's zone and is drawn again in it, once
        page.goto(f"{live_server.url}/meetings/{meeting.pk}/")
        expect(page.get_by_role("link", name="Times in Asia/Tokyo")).to_be_visible()
        starts = page.locator("#controls time").first
        expect(starts).to_have_text("Thu 2 Jul 2026, 07:30 JST")
        expect(starts).to_have_attribute("title", "Wed 1 Jul 2026, 22:30:00 UTC")
        screenshot(page, "tokyo")

        # choosing a zone wins over the browser's
        page.get_by_role("link", name="Times in Asia/Tokyo").click()
        page.get_by_label("Time zone").select_option("Europe/London")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Late call")
        expect(page.locator("#controls time").first).to_have_text("Wed 1 Jul 2026, 23:30 BST")
        expect(page.get_by_role("link", name="Times in Europe/London")).to_be_visible()
    finally:
        context.close()
    assert not errors, errors
