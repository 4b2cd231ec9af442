"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

A missing browser is a failure, not a skip: CI must not go green without having clicked through
the dashboard. Each test saves screenshots under var/screenshots/ (gitignored) to look at.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "var" / "screenshots"
# How long the page may take to show a job's outcome: a worker picks it up (the embedded broker
# polls), calls the sandbox, confirms the end; generous for a loaded 2-core CI machine.
JOB_TIMEOUT_MS = 30_000

# Playwright's sync API runs an asyncio loop in this thread, and Django refuses database access
# from a thread with a running loop. The test process's own ORM use (fixtures, assertions) is
# ordinary synchronous code between browser calls, so the guard is lifted for browser tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); "
            "browser tests do not skip",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport=LAPTOP, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Console errors include Content-Security-Policy refusals (an inline style or script that
    # slipped in) and failed loads; a 403/4xx answer the test provokes on purpose is expected.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "status of 4" not in message.text
            else None
        ),
    )
    page.js_errors = errors
    yield page
    context.close()
    assert not errors, f"JavaScript or console errors on the page: {errors}"


@pytest.fixture
def screenshot(request):
    """screenshot(page, label): save var/screenshots/<test>-<label>.png (full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)

    def take(page, label="page"):
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def sign_in(live_server, password):
    """sign_in(page, user): through the real sign-in form."""

    def go(page, user):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.get_username())
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
        return page

    return go


# --- Shared set-up: a signed-in operator, the sandbox with a real worker, pages to open ----------

# The secret the sandbox signs its webhooks with, and the dashboard checks them against.
WEBHOOK_SECRET = "browser-follow-webhook-secret"


@pytest.fixture
def operator_page(page, sign_in, operator):
    """The browser page, signed in as the operator through the real sign-in form."""
    return sign_in(page, operator)


def open_meeting(page, live_server, meeting):
    page.goto(f"{live_server.url}/meetings/{meeting.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(meeting.topic)


def open_webinar(page, live_server, webinar):
    page.goto(f"{live_server.url}/webinars/{webinar.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(webinar.topic)


class LiveZoom:
    """The Zoom sandbox over HTTP with a real Celery worker, the dashboard's account on it and a
    host: `state` is the sandbox's world; `meeting()` and `webinar()` add one to it and to the
    dashboard's mirror (what a sync would have written)."""

    def __init__(self, sandbox, account, host, live_server, settings):
        self.sandbox = sandbox
        self.state = sandbox.state
        self.account = account
        self.host = host
        self.live_server = live_server
        self.settings = settings

    def meeting(self, topic, *, mirrored=None, **in_zoom):
        """(the sandbox's meeting, its Meeting row). `in_zoom`: add_meeting's options;
        `mirrored`: fields of the row that differ from what a sync would write."""
        from meetings.models import Meeting

        zoom_meeting = self.state.add_meeting(self.host["id"], topic, **in_zoom)
        fields = {
            "zoom_id": zoom_meeting["id"],
            "uuid": zoom_meeting["uuid"],
            "host_id": self.host["id"],
            "host_email": self.host["email"],
            "topic": zoom_meeting["topic"],
            "type": zoom_meeting["type"],
            "status": zoom_meeting["status"],
            "duration": 60,
            **(mirrored or {}),
        }
        return zoom_meeting, Meeting.objects.create(account=self.account, **fields)

    def webinar(self, topic, **in_zoom):
        """(the sandbox's webinar, its Webinar row)."""
        from datetime import UTC, datetime

        from meetings.models import Webinar

        zoom_webinar = self.state.add_webinar(self.host["id"], topic, **in_zoom)
        webinar = Webinar.objects.create(
            account=self.account,
            zoom_id=zoom_webinar["id"],
            uuid=zoom_webinar["uuid"],
            host_id=self.host["id"],
            host_email=self.host["email"],
            topic=zoom_webinar["topic"],
            type=zoom_webinar["type"],
            status=zoom_webinar["status"],
            duration=zoom_webinar["duration"],
            timezone=zoom_webinar["timezone"],
            start_time=datetime.fromtimestamp(zoom_webinar["start_time"], tz=UTC),
            join_url=zoom_webinar["join_url"],
        )
        return zoom_webinar, webinar

    def send_webhooks_here(self):
        """Point Zoom's webhooks at the live server, signed with the secret it expects."""
        self.settings.ZOOM_WEBHOOK_SECRET_TOKEN = WEBHOOK_SECRET
        self.state.set_webhook(f"{self.live_server.url}/webhooks/zoom/", secret=WEBHOOK_SECRET)


@pytest.fixture
def live_zoom(
    live_server, sandbox_account, sandbox_host, zoom_sandbox, celery_worker_process, settings
):
    return LiveZoom(zoom_sandbox, sandbox_account, sandbox_host, live_server, settings)


@pytest.fixture
def zoom_webhooks(live_zoom):
    """live_zoom, whose events reach the dashboard as Zoom's signed webhooks."""
    live_zoom.send_webhooks_here()
    return live_zoom
