"""Finding things in Chromium: the pager brings the next page to its top and says which rows
show; the lists lead with what is live."""

from datetime import timedelta

import pytest
from django.utils.timezone import now
from playwright.sync_api import expect

from meetings.models import Meeting, ZoomAccount

pytestmark = [pytest.mark.browser]


def test_next_shows_the_next_page_from_its_top_and_says_which_rows_show(
    operator_page, live_server, screenshot
):
    account = ZoomAccount.objects.create(name="Acme Zoom", kind="server_to_server")
    start = now()
    Meeting.objects.bulk_create(
        Meeting(
            account=account,
            zoom_id=90_000_000_000 + i,
            topic=f"Meeting number {i:03d}",
            status="started" if i in (70, 71) else "waiting",
            start_time=start - timedelta(hours=i),
        )
        for i in range(120)
    )
    page = operator_page
    page.goto(f"{live_server.url}/meetings/")
    pager = page.locator("#results nav.pager")
    expect(pager).to_contain_text("1–50 of 120")
    # live first: the two live meetings lead, though they started 70 hours ago
    expect(page.locator("#results tbody tr").nth(0)).to_contain_text("Meeting number 070")
    expect(page.locator("#results tbody tr").nth(1)).to_contain_text("Meeting number 071")

    # when the operator scrolls to the pager at the bottom and clicks Next
    pager.get_by_role("link", name="Next ›").scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 500
    pager.get_by_role("link", name="Next ›").click()

    # then the next page shows from its top, and the pager says which rows these are
    expect(pager).to_contain_text("51–100 of 120")
    page.wait_for_function(
        "() => { const r = document.getElementById('results').getBoundingClientRect();"
        " return r.top >= -1 && r.top < window.innerHeight / 2; }"
    )
    assert "after=" in page.url
    screenshot(page, "page-2")
