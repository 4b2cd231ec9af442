"""Acting on a whole list, longer than its page, in Chromium: typed search, "Review all N in this
list", the review naming each meeting, the run."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser]


def test_an_operator_ends_every_meeting_a_search_finds_across_pages(
    page, live_server, sign_in, screenshot, operator, transactional_db
):
    from meetings.models import Batch
    from tests.dashboard_data import make_account, make_meeting

    # given 55 live breakout rooms (more than a page) among other meetings
    account = make_account()
    rooms = [make_meeting(account, status="started", topic=f"Breakout {n}") for n in range(55)]
    make_meeting(account, status="started", topic="Plenary")
    sign_in(page, operator)
    page.goto(f"{live_server.url}/meetings/")

    # when the operator searches for them: the list answers in place
    page.get_by_label("Search").fill("Breakout")
    results = page.locator("#results")
    expect(results).to_contain_text("55 meetings match")
    review_all = results.get_by_role("button", name="Review all 55 in this list…")
    expect(review_all).to_be_visible()
    screenshot(page, "1-list-longer-than-its-page")

    # and reviews all of them: nothing is done yet, each is named
    review_all.click()
    expect(page.get_by_role("heading", level=2)).to_contain_text("55 will be done")
    expect(page.locator("table tbody tr")).to_have_count(55)
    expect(page.get_by_text("Plenary")).to_have_count(0)
    assert Batch.objects.count() == 0
    screenshot(page, "2-review-of-all")

    # then running it makes one batch of the 55
    page.get_by_role("button", name="End 55 meetings").click()
    page.wait_for_url(f"{live_server.url}/bulk/*/")
    batch = Batch.objects.get()
    assert sorted(a.target_id for a in batch.actions.all()) == sorted(r.zoom_id for r in rooms)
