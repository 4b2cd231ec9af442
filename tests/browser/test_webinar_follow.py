"""An open webinar page follows Zoom in Chromium, without a reload, like a meeting's page: the
sandbox sends signed webhooks to the live server, a real worker applies them to the mirror and
ends webinars through Zoom, and the page's poll brings in only what changed."""

import pytest
from playwright.sync_api import expect

from meetings.models import Action, WebhookEvent

from .conftest import JOB_TIMEOUT_MS, open_webinar

pytestmark = [pytest.mark.browser]


def test_a_webinar_started_then_ended_in_zoom_shows_on_the_open_page(
    operator_page, live_server, screenshot, zoom_webhooks
):
    # given a scheduled webinar whose Zoom webhooks reach this dashboard, its page open
    page, zoom = operator_page, zoom_webhooks.state
    zoom_webinar, webinar = zoom_webhooks.webinar("Investor day")
    open_webinar(page, live_server, webinar)
    page.evaluate("() => { window.notReloaded = true; }")
    status = page.locator("#webinar-status")
    expect(status).to_have_text("Waiting")
    expect(page.locator("#timeline")).to_contain_text("Nothing has happened to this webinar")
    # nothing changed yet: the poll is answered 204 and the page is left as it is
    page.evaluate("() => { window.detailsBefore = document.getElementById('details'); }")
    with page.expect_response(lambda r: "/state/" in r.url, timeout=10_000) as answer:
        pass
    assert answer.value.status == 204
    assert page.evaluate("window.detailsBefore === document.getElementById('details')")

    # when the host starts it in Zoom
    zoom.start_webinar(zoom_webinar["id"])

    # then the page says it is live, offers End, and lists Zoom's event
    expect(status).to_have_text("Live", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("link", name="End webinar…")).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text("webinar.started")
    expect(page.locator("#heard")).to_contain_text("Last eventjust now")
    screenshot(page, "1-started-in-zoom")

    # when it ends in Zoom, while the operator has the End confirmation open
    page.get_by_role("link", name="End webinar…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    zoom.end_webinar(zoom_webinar["id"])

    # then the page says it ended behind the dialog, which stays open until the operator closes
    # it; End is no longer offered
    expect(status).to_have_text("Ended", timeout=JOB_TIMEOUT_MS)
    expect(dialog).to_be_visible()
    screenshot(page, "2-ended-in-zoom-dialog-open")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("link", name="End webinar…")).to_have_count(0)
    expect(page.locator("#timeline tbody tr").first).to_contain_text("webinar.ended")
    # the details did not change, so they were never swapped
    assert page.evaluate("window.detailsBefore === document.getElementById('details')")
    screenshot(page, "3-ended-in-zoom")

    assert page.evaluate("window.notReloaded === true")
    assert Action.objects.count() == 0
    assert sorted(
        WebhookEvent.objects.filter(object_id=webinar.zoom_id).values_list("event", "error")
    ) == [("webinar.ended", ""), ("webinar.started", "")]


def test_the_operator_s_end_shows_its_job_then_the_webinar_ended_without_a_reload(
    operator_page, live_server, screenshot, operator, zoom_webhooks
):
    # given a live webinar; Zoom is slowed down so the job is seen running
    page, zoom = operator_page, zoom_webhooks.state
    zoom_webinar, webinar = zoom_webhooks.webinar("Hiring fair", status="started")
    open_webinar(page, live_server, webinar)
    page.evaluate("() => { window.notReloaded = true; }")
    controls = page.locator("#controls")
    expect(controls.locator("#webinar-status")).to_have_text("Live")

    # when the operator ends it
    page.get_by_role("link", name="End webinar…").click()
    zoom.set_faults(latency_ms=1500)
    page.get_by_role("dialog").get_by_role("button", name="End webinar").click()

    # then the job shows in place and holds the button, then succeeds, and the status, the
    # timeline (the job and Zoom's webinar.ended) follow without a reload
    expect(controls.get_by_role("button", name="Ending…")).to_be_disabled()
    expect(controls.locator(".job")).to_contain_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(controls.locator("#webinar-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("link", name="End webinar…")).to_have_count(0)
    timeline = page.locator("#timeline")
    expect(timeline.locator("tr", has_text="End webinar")).to_contain_text(
        "Succeeded", timeout=JOB_TIMEOUT_MS
    )
    expect(timeline).to_contain_text("webinar.ended", timeout=JOB_TIMEOUT_MS)
    screenshot(page, "ended-by-the-operator")

    assert page.evaluate("window.notReloaded === true")
    action = Action.objects.get(kind="end_webinar")
    assert (action.state, action.requested_by) == ("succeeded", operator)
    assert zoom.webinars[zoom_webinar["id"]]["status"] == "ended"
