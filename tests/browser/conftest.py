"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

A missing browser is a failure, not a skip: CI must not go green without having clicked through
the dashboard. Each test saves screenshots under var/screenshots/ (gitignored) to look at.
"""

import os
import re
from pathlib import Path

import pytest

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
