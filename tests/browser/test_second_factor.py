"""The second factor in Chromium: an admin whose role needs one sets up an authenticator app at
their first sign-in, then gives its code at the next (the steps test_production.py takes with
production's defaults)."""

import re
import time

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.cache import cache
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code(secret, step=0):
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 + step))


def test_an_admin_sets_up_an_authenticator_app_then_signs_in_with_it(
    page, live_server, admin_user, password, settings, screenshot
):
    settings.MFA_REQUIRED_ROLES = ["admin"]

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/totp/activate/")
    expect(page.locator("#messages")).to_contain_text("set up an authenticator app")
    screenshot(page, "set-up")

    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").fill(code(secret))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url(lambda u: "/accounts/2fa/" in u and "activate" not in u)
    page.goto(f"{live_server.url}/")
    page.wait_for_url(f"{live_server.url}/")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    cache.clear()  # the code used at set-up may not be used twice
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/$"))
    screenshot(page, "code")
    page.get_by_label("Code").fill(code(secret))
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator(".who")).to_have_text(admin_user.username)
