"""Cancelling a batch in Chromium while its progress panel polls every second: the cancel on its
way keeps its spinner, and its answer is what the panel shows."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser]


def test_the_cancel_keeps_its_spinner_while_the_progress_polls_and_its_answer_lands(
    page, live_server, sign_in, screenshot, operator, transactional_db
):
    from meetings.actions import create_batch
    from meetings.models import Batch
    from tests.dashboard_data import make_account, make_meeting

    # given a batch whose actions wait for a worker (there is none): its panel keeps polling
    account = make_account()
    rooms = [make_meeting(account, status="started", topic=f"Room {n}") for n in range(3)]
    batch, _ = create_batch(account=account, kind="end_meeting", targets=rooms, user=operator)
    sign_in(page, operator)
    # The browser holds the cancel POST until the test lets it go: a slow server, for as long
    # as it takes to watch several polls' ticks pass.
    held = []
    page.route("**/bulk/*/cancel/", lambda route: held.append(route))
    page.goto(f"{live_server.url}/bulk/{batch.pk}/")
    progress = page.locator("#progress")
    expect(progress.get_by_role("heading", level=2)).to_contain_text("Running…")
    with page.expect_response(lambda r: r.url.endswith(f"/bulk/{batch.pk}/")):
        pass  # the panel polls
    page.evaluate("() => { window.panelBefore = document.getElementById('progress'); }")

    # when the operator cancels, and the answer takes a while
    progress.get_by_role("button", name="Cancel what has not started").click()
    page.wait_for_function("() => document.querySelector('#progress form.htmx-request')")
    assert len(held) == 1
    polls = []
    page.on(
        "request",
        lambda r: polls.append(r.url) if r.url.endswith(f"/bulk/{batch.pk}/") else None,
    )
    page.wait_for_timeout(3_000)  # three of the panel's ticks

    # then the panel was not swapped under the button: it still shows the spinner
    assert polls == []  # the ticks wait behind the cancel
    assert page.evaluate("window.panelBefore === document.getElementById('progress')")
    form = progress.locator(
        "form", has=page.get_by_role("button", name="Cancel what has not started")
    )
    expect(form).to_have_class(re.compile(r"\bhtmx-request\b"))
    screenshot(page, "1-cancel-on-its-way")

    # when the answer comes, it is what the panel shows
    held[0].continue_()
    # headed with what happened: nothing had started, so all three are cancelled
    expect(progress.get_by_role("heading", level=2)).to_contain_text("3 cancelled")
    expect(progress).to_contain_text("Batch cancelled")
    expect(progress.get_by_role("button", name="Cancel what has not started")).to_have_count(0)
    screenshot(page, "2-cancelled")
    batch.refresh_from_db()
    assert batch.is_cancelled
    assert Batch.objects.get(pk=batch.pk).actions.filter(state="cancelled").count() == 3
