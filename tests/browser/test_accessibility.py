"""Accessibility checked by a tool: axe-core (carried in tests/browser/fixtures/axe-core/) runs
on every dashboard page and confirmation dialog, as each role sees them, at laptop and phone
width. A serious or critical violation fails the test, naming the rule and the elements."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils.timezone import now
from playwright.sync_api import expect

from meetings.models import Action, Batch, PastParticipant

from ..dashboard_data import make_account, make_action, make_meeting, make_past, make_webinar
from .conftest import LAPTOP, PHONE

pytestmark = [pytest.mark.browser]

AXE = (Path(__file__).parent / "fixtures" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
FAILING_IMPACTS = ("serious", "critical")

# Injected through the DevTools protocol (page.evaluate), not a <script>: the dashboard's
# Content-Security-Policy rightly refuses inline scripts, and the check must see the page as
# served, CSP included.
RUN_AXE = """async (selector) => {
  const results = await axe.run(selector ? document.querySelector(selector) : document, {
    resultTypes: ["violations"],
  });
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
  }));
}"""


def violations(page, selector=None):
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)
    found = page.evaluate(RUN_AXE, selector)
    return [v for v in found if v["impact"] in FAILING_IMPACTS]


@pytest.fixture
def dashboard(operator, admin_user):
    """A dashboard with something on every page: a live meeting streaming, a waiting one, a
    deleted one, a live webinar, a past instance with participants, jobs, a batch."""
    account = make_account()
    live = make_meeting(
        account,
        topic="Town hall",
        status="started",
        start_time=now() - timedelta(minutes=20),
        stream_url="rtmp://live.example.com/app",
        stream_key="sk-axe-123456",
        page_url="https://example.com/live",
        livestream_status="live",
    )
    waiting = make_meeting(account, topic="Board prep")
    make_meeting(account, topic="Old sync", status="deleted")
    webinar = make_webinar(account, status="started", start_time=now() - timedelta(minutes=5))
    past = make_past(account, live, participants_count=3)
    PastParticipant.objects.bulk_create(
        PastParticipant(past_meeting=past, position=i, name=f"Person {i}") for i in range(3)
    )
    make_action(account, "fetch_past_meeting", target=live, state="running", requested_by=operator)
    failed = make_action(
        account,
        "recover_meeting",
        target=waiting,
        state="failed",
        requested_by=operator,
        result_summary="Zoom: meeting not found or has expired (3001)",
    )
    batch = Batch.objects.create(
        kind="end_meeting", account=account, requested_by=operator, total=1
    )
    Action.objects.filter(pk=failed.pk).update(batch=batch)
    return {
        "account": account,
        "live": live,
        "waiting": waiting,
        "webinar": webinar,
        "past": past,
        "action": failed,
        "batch": batch,
    }


def pages_for(role, d):
    pages = [
        "/",
        "/meetings/",
        f"/meetings/{d['live'].pk}/",
        f"/meetings/{d['waiting'].pk}/",
        "/webinars/",
        f"/webinars/{d['webinar'].pk}/",
        "/past-meetings/",
        f"/past-meetings/{d['past'].pk}/",
        "/activity/",
        f"/activity/{d['action'].pk}/",
        "/bulk/batches/",
        f"/bulk/{d['batch'].pk}/",
        "/preferences/",
        "/notifications/",
    ]
    if role != "viewer":
        pages += [
            f"/meetings/{d['live'].pk}/end/",  # the confirmation as a page (no JavaScript)
            f"/bulk/preview/?kind=end_meeting&ids={d['live'].pk}",
        ]
    if role == "admin":
        pages += ["/connections/", f"/connections/{d['account'].pk}/"]
    return pages


# Each confirmation <dialog>, opened as an operator opens it: (page, the link that opens it).
DIALOGS = [
    ("live", "End meeting…"),
    ("live", "Stop live stream…"),
    ("waiting", "Ask Zoom to end it…"),
    ("webinar", "End webinar…"),
]


def test_the_check_finds_a_serious_violation_when_there_is_one(operator_page, live_server):
    # An image without a text alternative, on a dashboard page: axe must name it.
    page = operator_page
    page.goto(f"{live_server.url}/meetings/")
    page.evaluate(
        "() => { const img = document.createElement('img'); img.src = 'data:,';"
        " document.querySelector('main').append(img); }"
    )

    assert "image-alt" in {v["id"] for v in violations(page)}


@pytest.mark.parametrize("width", ["laptop", "phone"])
@pytest.mark.parametrize("role", ["operator", "viewer", "admin"])
def test_every_page_has_no_serious_accessibility_violation(
    browser, live_server, password, dashboard, role, width, request
):
    user = request.getfixturevalue({"admin": "admin_user"}.get(role, role))
    context = browser.new_context(viewport=LAPTOP if width == "laptop" else PHONE, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        assert violations(page) == [], "/accounts/login/"
        page.get_by_label("Username").fill(user.get_username())
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
        found = {}
        for path in pages_for(role, dashboard):
            page.goto(f"{live_server.url}{path}")
            problems = violations(page)
            if problems:
                found[path] = problems
        assert found == {}, found
    finally:
        context.close()


@pytest.mark.parametrize("width", ["laptop", "phone"])
def test_every_confirmation_dialog_has_no_serious_accessibility_violation(
    operator_page, live_server, dashboard, width
):
    page = operator_page
    page.set_viewport_size(LAPTOP if width == "laptop" else PHONE)
    found = {}
    for name, link in DIALOGS:
        target = dashboard[name]
        kind = "webinars" if name == "webinar" else "meetings"
        page.goto(f"{live_server.url}/{kind}/{target.pk}/")
        page.get_by_role("link", name=link).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        problems = violations(page, "dialog[open]")
        if problems:
            found[link] = problems
        dialog.get_by_role("button", name="Cancel").click()
    assert found == {}, found


@pytest.mark.parametrize("width", ["laptop", "phone"])
def test_the_account_pages_have_no_serious_accessibility_violation(
    operator_page, live_server, width, screenshot
):
    # allauth's pages in the dashboard's clothes: second factor, its set-up, open sessions.
    page = operator_page
    page.set_viewport_size(LAPTOP if width == "laptop" else PHONE)
    found = {}
    for path in ("/accounts/2fa/", "/accounts/2fa/totp/activate/", "/accounts/sessions/"):
        page.goto(f"{live_server.url}{path}")
        assert page.locator(".card.allauth").count() == 1, path
        if problems := violations(page):
            found[path] = problems
    screenshot(page, "sessions")
    page.goto(f"{live_server.url}/accounts/2fa/totp/activate/")
    screenshot(page, "totp")
    assert found == {}, found
