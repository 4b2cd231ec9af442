"""Single sign-on against a real OpenID Connect provider (tests/oidc/provider.js, the npm package
oidc-provider): the Django test client plays the browser on the dashboard's side, `requests` on
the provider's. Role mapping, a role taken away, and ID tokens with the wrong issuer, audience or
nonce; the provider down."""

import re
from urllib.parse import urljoin

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from meetings.models import AccessEvent, ConnectionGrant, Role, ZoomAccount
from meetings.roles import ADMINS, OPERATORS, VIEWERS
from meetings.sso.roles import parse_role_map, roles_for

pytestmark = pytest.mark.django_db

ROLE_MAP = "zoom-admins=admin,zoom-ops=operator,staff=viewer,sales-ops=operator@Sales"


@pytest.fixture
def sso(oidc_provider, settings):
    oidc_provider.configure(settings, role_map=ROLE_MAP)
    oidc_provider.tamper()
    return oidc_provider


def sso_sign_in(client, provider, username, *, before_coming_back=None):
    """Click "Sign in with …", sign in at the provider as USERNAME, come back: the final answer.
    BEFORE_COMING_BACK() runs when the provider has sent the browser back, before it arrives."""
    answer = client.post(reverse("sso_login"), {"process": "login"})
    assert answer.status_code == 302, answer.content.decode()[:500]
    at_provider = requests.Session()
    page = at_provider.get(answer["Location"], timeout=10)
    assert page.status_code == 200, page.text[:500]
    action = re.search(r'action="([^"]+)"', page.text).group(1)
    answer = at_provider.post(
        urljoin(page.url, action), data={"login": username}, allow_redirects=False, timeout=10
    )
    while answer.is_redirect:
        location = urljoin(answer.url, answer.headers["Location"])
        if location.startswith("http://testserver/"):
            if before_coming_back is not None:
                before_coming_back()
            return client.get(location.removeprefix("http://testserver"), follow=True)
        answer = at_provider.get(location, allow_redirects=False, timeout=10)
    raise AssertionError(f"the provider did not send the browser back: {answer.status_code}")


def signed_in(client):
    return client.get(reverse("overview")).status_code == 200


def group_names(user):
    return set(user.groups.values_list("name", flat=True))


# --- the sign-in page ----------------------------------------------------------------------------


def test_the_sign_in_page_offers_the_provider_only_when_it_is_set_up(client, sso, settings):
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Test IdP" in page
    assert sso.client_secret not in page

    assert "Emergency sign-in" not in page

    settings.OIDC_ONLY = True
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Test IdP" in page
    assert "Emergency sign-in with a password (administrators only)" in page

    settings.OIDC_ENABLED = False
    settings.OIDC_ONLY = False
    assert "Sign in with" not in client.get(reverse("login")).content.decode()


def test_the_csp_lets_the_sign_in_form_go_on_to_the_provider(client, sso):
    # Browsers apply form-action to the redirect after the "Sign in with …" form's post.
    policy = client.get(reverse("login"))["Content-Security-Policy"]
    form_action = next(d for d in policy.split("; ") if d.startswith("form-action"))
    assert form_action == f"form-action 'self' {sso.issuer}"


def test_a_single_sign_on_user_is_not_asked_for_a_local_second_factor(client, sso, settings):
    # The identity provider asks for theirs; MFA_REQUIRED_ROLES is for passwords.
    settings.MFA_REQUIRED_ROLES = ["operator", "admin"]
    sso.set_groups("otto", ["zoom-ops"])

    page = sso_sign_in(client, sso, "otto")

    assert page.redirect_chain[-1][0] == reverse("overview")
    assert client.get(reverse("meetings")).status_code == 200


# --- role mapping ------------------------------------------------------------------------------


def test_a_first_sign_in_creates_the_user_with_the_roles_their_groups_map_to(client, sso):
    sales = ZoomAccount.objects.create(name="Sales")
    sso.set_groups("sam", ["staff", "sales-ops", "unrelated"])

    page = sso_sign_in(client, sso, "sam")

    assert page.redirect_chain[-1][0] == reverse("overview")
    assert signed_in(client)
    sam = get_user_model().objects.get(username="sam")
    assert group_names(sam) == {VIEWERS}
    assert not sam.is_staff and not sam.is_superuser
    assert not sam.has_usable_password()
    grant = ConnectionGrant.objects.get(user=sam)
    assert (grant.account, grant.role, grant.source) == (sales, Role.OPERATOR, "oidc")
    kinds = list(AccessEvent.objects.filter(user=sam).values_list("kind", "detail"))
    assert (AccessEvent.Kind.SSO, {"provider": "Test IdP"}) in kinds
    assert any(
        k == AccessEvent.Kind.ROLE_CHANGED and d["role"] == "viewer" and d["previous"] == "none"
        for k, d in kinds
    )
    assert any(
        k == AccessEvent.Kind.CONNECTION_GRANTED
        and d
        == {"provider": "Test IdP", "connection": "Sales", "previous": "none", "role": "operator"}
        for k, d in kinds
    )
    assert sso.client_secret not in str(list(AccessEvent.objects.values_list("detail", flat=True)))


def test_admin_by_single_sign_on_is_staff_in_the_admins_group_never_superuser(client, sso):
    sso.set_groups("ada", ["zoom-admins"])

    sso_sign_in(client, sso, "ada")

    ada = get_user_model().objects.get(username="ada")
    assert group_names(ada) == {ADMINS}
    assert ada.is_staff and not ada.is_superuser
    assert ada.has_perm("meetings.manage_connections")
    assert client.get(reverse("connections")).status_code == 200


def test_roles_are_applied_again_at_every_sign_in_and_admin_grants_are_left_alone(client, sso):
    sales = ZoomAccount.objects.create(name="Sales")
    support = ZoomAccount.objects.create(name="Support")
    sso.set_groups("olga", ["zoom-ops"])
    sso_sign_in(client, sso, "olga")
    olga = get_user_model().objects.get(username="olga")
    ConnectionGrant.objects.create(user=olga, account=support, role=Role.OPERATOR)  # an admin's
    assert group_names(olga) == {OPERATORS}

    client.logout()
    sso.set_groups("olga", ["staff", "sales-ops"])
    sso_sign_in(client, sso, "olga")

    assert group_names(olga) == {VIEWERS}
    grants = {g.account: (g.role, g.source) for g in ConnectionGrant.objects.filter(user=olga)}
    assert grants == {sales: (Role.OPERATOR, "oidc"), support: (Role.OPERATOR, "admin")}
    changed = AccessEvent.objects.filter(user=olga, kind=AccessEvent.Kind.ROLE_CHANGED).first()
    assert changed.detail["previous"] == "operator" and changed.detail["role"] == "viewer"

    client.logout()
    sso.set_groups("olga", ["staff"])
    sso_sign_in(client, sso, "olga")
    grants = {g.account: g.source for g in ConnectionGrant.objects.filter(user=olga)}
    assert grants == {support: "admin"}  # the single sign-on grant went, the admin's stayed
    removed = AccessEvent.objects.filter(user=olga, kind=AccessEvent.Kind.CONNECTION_GRANTED)
    assert removed.first().detail == {
        "provider": "Test IdP",
        "connection": "Sales",
        "previous": "operator",
        "role": "none",
    }


def test_a_role_taken_away_refuses_the_sign_in_and_ends_the_open_sessions(client, sso):
    sso.set_groups("rob", ["zoom-ops"])
    elsewhere = Client()
    sso_sign_in(elsewhere, sso, "rob")
    assert signed_in(elsewhere)

    sso.set_groups("rob", ["left-the-team"])
    page = sso_sign_in(client, sso, "rob")

    assert page.status_code == 403
    text = page.content.decode()
    assert "Sign-in refused" in text and "no group that may use this dashboard" in text
    assert not signed_in(client)
    assert not signed_in(elsewhere)  # the other session ended
    rob = get_user_model().objects.get(username="rob")
    assert group_names(rob) == set()
    refused = AccessEvent.objects.filter(kind=AccessEvent.Kind.SIGN_IN_FAILED, user=rob).get()
    assert refused.detail["reason"] == "no group of the user gives a role"
    assert refused.detail["sessions_ended"] >= 1


def test_a_new_user_in_no_mapped_group_is_refused_and_not_created(client, sso):
    sso.set_groups("nina", ["somebody-else"])

    page = sso_sign_in(client, sso, "nina")

    assert page.status_code == 403
    assert not get_user_model().objects.filter(username="nina").exists()
    assert AccessEvent.objects.filter(kind=AccessEvent.Kind.SIGN_IN_FAILED, username="nina")


# --- tokens that are not for us ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://impostor.example.com"}, "Invalid id_token"),
        ({"aud": "some-other-client"}, "Invalid id_token"),
        ({"nonce": "a-nonce-from-another-sign-in"}, "nonce is not the one this sign-in sent"),
    ],
    ids=["wrong issuer", "wrong audience", "wrong nonce"],
)
def test_an_id_token_not_meant_for_this_sign_in_is_refused(client, sso, claims, reason):
    sso.set_groups("eve", ["zoom-admins"])
    sso.tamper(**claims)

    page = sso_sign_in(client, sso, "eve")

    assert page.status_code in (401, 403)
    assert "Sign-in failed" in page.content.decode() or "Sign-in refused" in page.content.decode()
    assert not signed_in(client)
    assert not get_user_model().objects.filter(username="eve").exists()
    failed = AccessEvent.objects.get(kind=AccessEvent.Kind.SIGN_IN_FAILED, success=False)
    assert reason in str(failed.detail)


def test_the_same_token_untampered_signs_in(client, sso):
    # The control for the test above: only the tampered claim made the difference.
    sso.set_groups("eve", ["zoom-admins"])
    assert sso_sign_in(client, sso, "eve").status_code == 200
    assert signed_in(client)


def test_the_provider_down_says_so_instead_of_failing(client, settings, oidc_provider):
    oidc_provider.configure(settings, role_map=ROLE_MAP)
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings.SOCIALACCOUNT_PROVIDERS["sso"]["APPS"][0]["settings"]["server_url"] = (
        f"http://127.0.0.1:{closed}"
    )

    answer = client.post(reverse("sso_login"), {"process": "login"})

    assert answer.status_code == 503
    assert "Test IdP cannot be reached" in answer.content.decode()


def test_the_provider_gone_before_the_code_is_exchanged_says_so(client, settings, tmp_path):
    from tests.fixtures.oidc import OIDCProvider

    provider = OIDCProvider(["http://testserver/accounts/sso/login/callback/"], tmp_path)
    try:
        provider.configure(settings, role_map=ROLE_MAP)
        provider.set_groups("gus", ["zoom-ops"])

        page = sso_sign_in(client, provider, "gus", before_coming_back=provider.stop)
    finally:
        provider.stop()

    assert page.status_code == 503
    assert "Test IdP cannot be reached" in page.content.decode()
    assert not signed_in(client)
    failed = AccessEvent.objects.get(kind=AccessEvent.Kind.SIGN_IN_FAILED)
    assert failed.detail["error"] == "ConnectionError"
    assert failed.detail["reason"] == "the identity provider could not be reached"


# --- OIDC_ROLE_MAP -----------------------------------------------------------------------------


def test_the_role_map_reads_global_and_connection_roles():
    mappings = parse_role_map(ROLE_MAP)
    assert roles_for(["zoom-ops", "staff"], mappings) == (Role.OPERATOR, {})
    assert roles_for(["staff", "sales-ops"], mappings) == (Role.VIEWER, {"Sales": Role.OPERATOR})
    assert roles_for(["zoom-ops", "sales-ops"], mappings) == (Role.OPERATOR, {})
    assert roles_for(["nobody"], mappings) == (None, {})


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("zoom-ops", "is not group=role"),
        ("zoom-ops=boss", "must be admin, operator or viewer"),
        ("sales=operator@", "name the connection after the @"),
        ("root=admin@Sales", "admin is a role on the whole dashboard"),
    ],
)
def test_a_malformed_role_map_stops_start_up_with_a_clear_error(settings, value, says, capsys):
    settings.OIDC_ROLE_MAP = value
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError) as error:
        call_command("check")
    assert "OIDC_ROLE_MAP" in str(error.value) and says in str(error.value)


def test_check_deploy_stays_clean_with_single_sign_on_set_up(tmp_path):
    import subprocess
    import sys

    from tests.test_security import ROOT, production_env

    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text("a-client-secret-from-a-file\n")
    env = production_env(
        tmp_path,
        OIDC_SERVER_URL="https://sso.example.com/realms/example",
        OIDC_CLIENT_ID="zoomadmin",
        OIDC_CLIENT_SECRET_FILE=str(secret_file),
        OIDC_ROLE_MAP=ROLE_MAP,
        OIDC_ONLY="true",
    )
    check = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]

    clean = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    env["OIDC_ROLE_MAP"] = "zoom-ops=boss"
    bad = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    assert "zoomadmin.E010" in bad.stderr and "OIDC_ROLE_MAP" in bad.stderr
