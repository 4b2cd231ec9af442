"""The idle sign-out counts what a person does, not the dashboard's own refreshes: in Chromium,
the overview's poll goes out unmarked, typing a search goes out marked as activity
(static/meetings/app.js; meetings/signin.py decides with it)."""

import pytest

from meetings.signin import ACTIVITY_HEADER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_polls_are_not_activity_and_typing_is(operator_page, live_server):
    page = operator_page
    sent = []
    page.on(
        "request",
        lambda r: (
            sent.append((r.url, r.headers.get(ACTIVITY_HEADER.lower())))
            if r.headers.get("hx-request")
            else None
        ),
    )

    # The overview polls its live part every 5 s by itself.
    page.goto(f"{live_server.url}/")
    with page.expect_request(lambda r: "part=live" in r.url, timeout=15_000):
        pass
    polls = [marked for url, marked in sent if "part=live" in url]
    assert polls and all(marked is None for marked in polls)

    # Typing in the meetings list's search is a person at work.
    page.goto(f"{live_server.url}/meetings/")
    with page.expect_request(lambda r: "q=standup" in r.url and r.headers.get("hx-request")):
        page.get_by_role("searchbox").fill("standup")
    typed = [marked for url, marked in sent if "q=standup" in url]
    assert typed == ["1"]
