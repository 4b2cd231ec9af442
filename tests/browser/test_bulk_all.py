"""Acting on a whole list, longer than its page, in Chromium: typed search, "Review all N in this
list", the review naming each meeting, the run."""

import pytest
from playwright.sync_api import expect

from .conftest import PHONE

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


def test_on_a_phone_review_all_and_select_all_are_in_sight_before_any_row_is_ticked(
    page, live_server, sign_in, screenshot, operator, transactional_db
):
    # On a phone the bulk controls wait for a ticked row, and "Review all N" waited with them:
    # an operator who wanted the whole list had to tick a row first. The select-all box was a
    # lone box with no words beside it.
    from tests.dashboard_data import make_account, make_meeting

    account = make_account()
    for n in range(55):
        make_meeting(account, status="started", topic=f"Breakout {n}")
    sign_in(page, operator)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/meetings/?q=Breakout")
    results = page.locator("#results")
    screenshot(page, "phone-list-longer-than-its-page")

    expect(results.get_by_role("button", name="Review all 55 in this list…")).to_be_visible()
    expect(results.get_by_label("Bulk action")).to_be_visible()
    expect(results.get_by_text("Select all on this page")).to_be_visible()
    # What needs a ticked row still waits for one.
    expect(results.get_by_role("button", name="Review…", exact=True)).to_be_hidden()
    expect(results.get_by_text("None selected")).to_be_hidden()
    results.get_by_role("checkbox").nth(1).check()
    expect(results.get_by_role("button", name="Review…", exact=True)).to_be_visible()
    expect(results.get_by_text("1 selected")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # On a laptop the words beside the select-all box are not there (the column is a box wide).
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(results.get_by_text("Select all on this page")).to_be_hidden()
