"""Two-person approval in Chromium: operator A asks to end a webinar, which waits; operator B,
in another browser, sees it on the overview, reads what it will do and approves it; a real
worker ends the webinar at the sandbox and A's open page follows without a reload."""

import pytest
from playwright.sync_api import expect

import zoomadmin.settings as shipped
from meetings.models import AccessEvent, Action, Approval
from tests.conftest import _user

from .conftest import JOB_TIMEOUT_MS, LAPTOP, open_webinar
from .test_accessibility import violations

pytestmark = [pytest.mark.browser]


@pytest.fixture
def second_operator(django_user_model, password):
    return _user(django_user_model, "olga-operator", password, groups=["Zoom operators"])


def test_operator_a_asks_operator_b_approves_on_the_overview_and_the_webinar_ends(
    browser,
    operator_page,
    sign_in,
    live_server,
    screenshot,
    operator,
    second_operator,
    zoom_webhooks,
    settings,
):
    settings.APPROVAL_DEFAULTS = shipped.APPROVAL_DEFAULTS
    # given a live webinar, its page open for operator A
    page, zoom = operator_page, zoom_webhooks.state
    zoom_webinar, webinar = zoom_webhooks.webinar("Shareholder meeting", status="started")
    open_webinar(page, live_server, webinar)
    page.evaluate("() => { window.notReloaded = true; }")
    controls = page.locator("#controls")

    # when A ends it, it waits for another operator and nothing reaches Zoom
    page.get_by_role("link", name="End webinar…").click()
    page.get_by_role("dialog").get_by_role("button", name="End webinar").click()
    expect(controls.get_by_role("button", name="Awaiting approval")).to_be_disabled()
    expect(controls.locator(".job")).to_contain_text("Awaiting approval by another operator")
    screenshot(page, "1-a-asked")
    approval = Approval.objects.get()
    # A may look at the request, but is not offered Approve
    page.goto(f"{live_server.url}/approvals/{approval.pk}/")
    expect(page.locator("#awaiting-approval")).to_contain_text("another operator must approve")
    expect(
        page.get_by_role("button", name="Approve: End webinar: Shareholder meeting")
    ).to_have_count(0)
    open_webinar(page, live_server, webinar)
    page.evaluate("() => { window.notReloaded = true; }")
    assert zoom.webinars[zoom_webinar["id"]]["status"] == "started"

    # when B, in a browser of their own, opens the overview
    context_b = browser.new_context(viewport=LAPTOP, locale="en-GB")
    page_b = sign_in(context_b.new_page(), second_operator)
    waiting = page_b.locator("#waiting-for-you")
    expect(waiting).to_contain_text("End webinar: Shareholder meeting")
    expect(waiting).to_contain_text("asked by oscar-operator")
    screenshot(page_b, "2-b-overview")
    assert violations(page_b) == []
    waiting.get_by_role("link", name="End webinar: Shareholder meeting").click()
    # the request says what will happen (the dry run): the webinar, its id, host and status
    plan = page_b.locator("table")
    expect(plan).to_contain_text("Shareholder meeting")
    expect(plan).to_contain_text(str(webinar.zoom_id))
    expect(plan).to_contain_text(webinar.host_email)
    screenshot(page_b, "3-b-request")
    assert violations(page_b) == []
    page_b.get_by_role("button", name="Approve: End webinar: Shareholder meeting").click()

    # then B lands on the webinar, which ends at Zoom; both pages say so
    expect(page_b.locator(".message")).to_contain_text("Approved: End webinar")
    expect(page_b.locator("#webinar-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS)
    expect(controls.locator(".job")).to_contain_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(controls.locator("#webinar-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS)
    screenshot(page, "4-a-ended")
    assert page.evaluate("window.notReloaded === true")
    context_b.close()

    action = Action.objects.get(kind="end_webinar")
    assert (action.state, action.requested_by) == ("succeeded", operator)
    approval.refresh_from_db()
    assert (approval.state, approval.decided_by) == ("approved", second_operator)
    assert zoom.webinars[zoom_webinar["id"]]["status"] == "ended"
    event = AccessEvent.objects.get(kind="approved")
    assert (event.user, event.actor) == (operator, second_operator)
