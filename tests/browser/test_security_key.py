"""A security key (WebAuthn) as the second factor, in Chromium with its virtual authenticator
(driven through the DevTools protocol): an admin whose role needs a second factor adds a key on
the second-factor page at their first sign-in, then completes the next sign-in with it.

The live server answers at http://localhost:<port>, a secure context for Chromium, and allauth
takes the relying party id from the request's host ("localhost"), so the ceremony runs as it
would behind https. The origin is checked as in production (MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN
off, though DEBUG turns it on for development): python-fido2 accepts http://localhost only."""

import re

import pytest
from allauth.mfa.models import Authenticator
from playwright.sync_api import expect

from meetings.models import AccessEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A USB key with a PIN (user verification) that is always "touched" and "unlocked".
SECURITY_KEY = {
    "protocol": "ctap2",
    "transport": "usb",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}


def plug_in_security_key(page):
    """A virtual authenticator in PAGE's browser tab: (the DevTools session, its id)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    key = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": SECURITY_KEY})
    return cdp, key["authenticatorId"]


def sign_in_with_password(page, live_server, user, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_an_admin_adds_a_security_key_then_signs_in_with_it(
    page, live_server, admin_user, password, settings, screenshot
):
    settings.MFA_REQUIRED_ROLES = ["admin"]
    settings.MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = False  # production's value
    cdp, key = plug_in_security_key(page)

    # given: the first sign-in, which sends the admin to set up a second factor
    sign_in_with_password(page, live_server, admin_user, password)
    page.wait_for_url(f"{live_server.url}/accounts/2fa/totp/activate/")
    expect(page.locator("#messages")).to_contain_text("Your role needs a second factor")

    # when: they add a security key instead of an authenticator app
    page.get_by_role("link", name="Second factor").click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/")
    expect(page.get_by_text("None added. A security key is")).to_be_visible()
    page.get_by_role("link", name="Add", exact=True).click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/webauthn/add/")
    page.get_by_label("Name").fill("Desk key")
    screenshot(page, "add")
    page.get_by_role("button", name="Add", exact=True).click()
    # The first second factor comes with recovery codes, shown once set up.
    page.wait_for_url(f"{live_server.url}/accounts/2fa/recovery-codes/")
    expect(page.locator("#messages")).to_contain_text("Security key added.")
    screenshot(page, "recovery-codes")

    # then: the key holds one credential for this site, the dashboard has it, and the dashboard
    # no longer sends the admin to a set-up
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": key})["credentials"]
    assert [c["rpId"] for c in credentials] == ["localhost"]
    keys = Authenticator.objects.filter(user=admin_user, type=Authenticator.Type.WEBAUTHN)
    assert [k.wrap().name for k in keys] == ["Desk key"]
    page.goto(f"{live_server.url}/")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator(".who")).to_have_text(admin_user.username)

    # when: they sign out and in again: the password, then the key
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    sign_in_with_password(page, live_server, admin_user, password)
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/$"))
    expect(page.locator(".who")).to_have_count(0)  # not signed in yet on the password alone
    screenshot(page, "second-factor")
    page.get_by_role("button", name="Use a security key").click()

    # then: the dashboard, signed in; the key signed once more (its counter went up)
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator(".who")).to_have_text(admin_user.username)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    after = cdp.send("WebAuthn.getCredentials", {"authenticatorId": key})["credentials"]
    assert [c["credentialId"] for c in after] == [c["credentialId"] for c in credentials]
    assert after[0]["signCount"] > credentials[0]["signCount"]

    # and the access audit has the key added and used, and both sign-ins
    mfa_events = [
        (e.detail.get("event"), e.detail.get("method"), e.success)
        for e in AccessEvent.objects.filter(kind=AccessEvent.Kind.MFA, user=admin_user).order_by(
            "at", "pk"
        )
    ]
    assert ("added", "webauthn", True) in mfa_events
    assert ("used", "webauthn", True) in mfa_events
    assert not [e for e in mfa_events if e[0] == "failed"]
    assert AccessEvent.objects.filter(kind=AccessEvent.Kind.SIGNED_IN, user=admin_user).count() == 2
