"""Single sign-on in Chromium against a real OpenID provider (tests/oidc/provider.js): sign in,
the provider's groups mapped to roles, a role taken away (sign-in refused, the other open session
ended), sign out."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from meetings.models import AccessEvent
from meetings.roles import OPERATORS
from tests.browser.conftest import LAPTOP
from tests.fixtures.oidc import OIDCProvider, scan_for_the_client_secret

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider(live_server, settings, tmp_path, request):
    scan_for_the_client_secret(request.config)
    provider = OIDCProvider([f"{live_server.url}/accounts/sso/login/callback/"], tmp_path)
    provider.configure(settings, role_map="zoom-admins=admin,zoom-ops=operator,staff=viewer")
    yield provider
    provider.stop()


def sso_sign_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Sign in with Test IdP").click()
    # The provider's own page (unless it still remembers this browser's sign-in).
    page.wait_for_url(lambda url: "/interaction/" in url or url.startswith(live_server.url))
    if "/interaction/" in page.url:
        page.get_by_label("Provider username").fill(username)
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(lambda url: url.startswith(live_server.url))


def test_single_sign_on_maps_roles_and_a_role_taken_away_ends_every_session(
    browser, page, live_server, provider, screenshot
):
    provider.set_groups("bea", ["zoom-ops"])

    # Sign in through the provider: the operator's dashboard opens.
    sso_sign_in(page, live_server, "bea")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator(".who")).to_have_text("bea")
    expect(page.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    bea = get_user_model().objects.get(username="bea")
    assert set(bea.groups.values_list("name", flat=True)) == {OPERATORS}
    screenshot(page, "signed-in")

    # A second browser signed in as bea too.
    other = browser.new_context(viewport=LAPTOP, locale="en-GB")
    try:
        elsewhere = other.new_page()
        sso_sign_in(elsewhere, live_server, "bea")
        elsewhere.wait_for_url(f"{live_server.url}/")

        # Sign out: back to the sign-in page.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{live_server.url}/accounts/login/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

        # bea leaves the group at the provider, then signs in again: refused, and the other
        # browser's session is over.
        provider.set_groups("bea", ["former-staff"])
        sso_sign_in(page, live_server, "bea")
        expect(page.get_by_role("heading", name="Sign-in refused")).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("no group that may use this dashboard")
        screenshot(page, "refused")

        elsewhere.goto(f"{live_server.url}/meetings/")
        assert elsewhere.url.startswith(f"{live_server.url}/accounts/login/")
    finally:
        other.close()

    assert not bea.groups.exists()
    kinds = set(AccessEvent.objects.filter(user=bea).values_list("kind", flat=True))
    assert {
        AccessEvent.Kind.SSO,
        AccessEvent.Kind.SIGNED_OUT,
        AccessEvent.Kind.SIGN_IN_FAILED,
    } <= kinds
