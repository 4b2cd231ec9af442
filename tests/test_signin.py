"""Signing in with a password: failed sign-ins throttled per username and per address with one
message, OIDC_ONLY, the second factor some roles need, the sessions' idle and absolute lifetimes,
and what the access audit records of it all."""

import re
import time

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.cache import cache
from django.urls import reverse

from meetings.models import AccessEvent
from meetings.signin import ACTIVITY_HEADER, LAST_ACTIVE, SIGNED_IN_AT

pytestmark = pytest.mark.django_db

WRONG = "Please enter a correct username and password"
THROTTLED = "Too many failed sign-ins"


def sign_in(client, username, password, **extra):
    return client.post(
        reverse("login"), {"username": username, "password": password}, follow=True, **extra
    )


def signed_in(client):
    return client.get(reverse("overview")).status_code == 200


# --- throttling --------------------------------------------------------------------------------


@pytest.fixture
def limits(settings):
    """3 failures per username, 6 per address, within 15 minutes."""
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "login_failed": "6/900s/ip,3/900s/key",
    }


def test_failed_sign_ins_are_throttled_per_username_even_with_the_right_password(
    client, operator, password, limits
):
    for _ in range(3):
        assert WRONG in sign_in(client, operator.username, "wrong").content.decode()

    page = sign_in(client, operator.username, password).content.decode()

    assert THROTTLED in page and not signed_in(client)
    throttled = AccessEvent.objects.filter(kind=AccessEvent.Kind.SIGN_IN_FAILED).first()
    assert throttled.username == operator.username
    assert throttled.detail == {"reason": "too many failed sign-ins"}


def test_an_unknown_username_gets_the_same_answers_as_a_known_one(client, operator, limits):
    known = [
        sign_in(client, operator.username, "wrong", REMOTE_ADDR="192.0.2.1").content.decode()
        for _ in range(4)
    ]
    unknown = [
        sign_in(client, "nobody-here", "wrong", REMOTE_ADDR="192.0.2.2").content.decode()
        for _ in range(4)
    ]

    def messages(page):
        return re.findall(r'<ul class="errorlist nonfield" role="alert"><li>(.*?)</li>', page)

    assert [messages(p) for p in known] == [messages(p) for p in unknown]
    assert THROTTLED in known[-1]


def test_failed_sign_ins_are_throttled_per_address_across_usernames(
    client, operator, password, limits
):
    for i in range(6):
        sign_in(client, f"guess-{i}", "wrong", REMOTE_ADDR="203.0.113.9")

    page = sign_in(client, operator.username, password, REMOTE_ADDR="203.0.113.9")
    assert THROTTLED in page.content.decode()

    other = sign_in(client, operator.username, password, REMOTE_ADDR="203.0.113.10")
    assert other.redirect_chain[-1][0] == reverse("overview")


# --- the audit ---------------------------------------------------------------------------------


def test_sign_ins_and_failures_are_recorded_with_the_username_and_address_not_the_password(
    client, operator, password
):
    sign_in(client, "oscar-typo", "hunter2-wrong", REMOTE_ADDR="198.51.100.7")
    sign_in(client, operator.username, password, REMOTE_ADDR="198.51.100.7")
    client.post(reverse("logout"), REMOTE_ADDR="198.51.100.7")

    events = list(AccessEvent.objects.order_by("at", "pk"))
    assert [(e.kind, e.username, e.client_ip, e.success) for e in events] == [
        (AccessEvent.Kind.SIGN_IN_FAILED, "oscar-typo", "198.51.100.7", False),
        (AccessEvent.Kind.SIGNED_IN, operator.username, "198.51.100.7", True),
        (AccessEvent.Kind.SIGNED_OUT, operator.username, "198.51.100.7", True),
    ]
    assert events[1].user == operator
    stored = str([(e.username, e.detail) for e in events])
    assert "hunter2" not in stored and password not in stored


# --- OIDC_ONLY ---------------------------------------------------------------------------------


def test_oidc_only_turns_passwords_off_except_for_superusers(
    client, operator, admin_user, password, settings
):
    settings.OIDC_ONLY = True

    page = sign_in(client, operator.username, password).content.decode()
    assert WRONG in page and not signed_in(client)
    refused = AccessEvent.objects.get(kind=AccessEvent.Kind.SIGN_IN_FAILED)
    assert refused.detail == {"reason": "password sign-in is off"}

    assert sign_in(client, admin_user.username, password).redirect_chain[-1][0] == "/"


# --- the second factor -------------------------------------------------------------------------


def totp_code(secret):
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_a_role_that_needs_a_second_factor_sets_one_up_then_signs_in_with_it(
    client, operator, password, settings, django_capture_on_commit_callbacks
):
    settings.MFA_REQUIRED_ROLES = ["operator"]

    # given: signed in with the password, the operator may open nothing but the set-up
    first = sign_in(client, operator.username, password)
    assert first.redirect_chain[-1][0] == reverse("mfa_activate_totp")
    assert "set up an authenticator app" in first.content.decode()
    assert client.get(reverse("meetings")).url == reverse("mfa_activate_totp")
    htmx = client.get(reverse("overview"), HTTP_HX_REQUEST="true")
    assert htmx["HX-Redirect"] == reverse("mfa_activate_totp")

    # when: the authenticator app is set up
    secret = client.session["mfa.totp.secret"]
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)}, follow=True)
    assert done.status_code == 200
    assert signed_in(client)
    codes_page = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    recovery_codes = re.findall(r"\b[0-9a-f]{8}\b", codes_page)
    assert recovery_codes

    # then: the next sign-in asks for a code; a wrong one is refused, a recovery code works
    client.post(reverse("logout"))
    cache.clear()
    asked = sign_in(client, operator.username, password)
    assert asked.redirect_chain[-1][0] == reverse("mfa_authenticate")
    assert not signed_in(client)
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200 and not signed_in(client)
    client.post(reverse("mfa_authenticate"), {"code": recovery_codes[0]})
    assert signed_in(client)

    events = [
        (e.detail.get("event"), e.detail.get("method"), e.success)
        for e in AccessEvent.objects.filter(kind=AccessEvent.Kind.MFA).order_by("at", "pk")
    ]
    assert ("added", "totp", True) in events
    assert ("failed", "totp", False) in events or ("failed", "", False) in events
    assert ("used", "recovery_codes", True) in events
    assert secret not in str(list(AccessEvent.objects.values_list("detail", flat=True)))


def test_the_second_factor_page_says_in_plain_words_what_is_set_up(
    client, operator, password, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    before = client.get(reverse("mfa_index")).content.decode()
    assert "<title>Second factor" in before
    for heading in ("Authenticator app", "Security keys", "Recovery codes"):
        assert f"<h2>{heading}</h2>" in before
    assert "Two-Factor" not in before
    assert "Not set up." in before
    assert f'href="{reverse("mfa_activate_totp")}"' in before

    client.get(reverse("mfa_activate_totp"))
    secret = client.session["mfa.totp.secret"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    after = client.get(reverse("mfa_index")).content.decode()
    assert "On: you sign in with the 6-digit codes your app shows." in after
    assert "10 of 10 unused." in after
    assert f'href="{reverse("mfa_deactivate_totp")}"' in after


def test_roles_not_listed_need_no_second_factor(client, viewer, password, settings):
    settings.MFA_REQUIRED_ROLES = ["operator", "admin"]

    assert sign_in(client, viewer.username, password).redirect_chain[-1][0] == "/"


# --- session lifetimes -------------------------------------------------------------------------


def age_session(client, **seconds_ago):
    session = client.session
    for key, ago in seconds_ago.items():
        session[key] = time.time() - ago
    session.save()


def test_an_idle_session_ends_and_says_why(client, operator, password, settings):
    settings.SESSION_IDLE_MINUTES = 30
    sign_in(client, operator.username, password)
    age_session(client, **{LAST_ACTIVE: 31 * 60, SIGNED_IN_AT: 31 * 60})

    page = client.get(reverse("meetings"), follow=True)

    assert page.redirect_chain[-1][0].startswith(reverse("login") + "?next=")
    assert "after 30 minutes without activity" in page.content.decode()
    assert not signed_in(client)
    ended = AccessEvent.objects.filter(kind=AccessEvent.Kind.SIGNED_OUT).get()
    assert ended.detail == {"reason": "idle"}


def test_the_dashboards_own_polls_do_not_keep_a_session_alive_but_clicks_do(
    client, operator, password, settings
):
    settings.SESSION_IDLE_MINUTES = 30
    sign_in(client, operator.username, password)

    # A poll (htmx, not marked by app.js as something the user did) leaves the clock alone...
    age_session(client, **{LAST_ACTIVE: 20 * 60})
    before = client.session[LAST_ACTIVE]
    assert client.get(reverse("overview") + "?part=live", HTTP_HX_REQUEST="true").status_code == 200
    assert client.session[LAST_ACTIVE] == before
    # ...so polling for 11 more minutes ends the session, with the page sent to sign in.
    age_session(client, **{LAST_ACTIVE: 31 * 60})
    poll = client.get(
        reverse("overview") + "?part=live",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/meetings/",
    )
    assert poll["HX-Redirect"] == reverse("login") + "?next=/meetings/"
    assert not signed_in(client)

    # A click in the page (an htmx request app.js marks) and a page load count.
    sign_in(client, operator.username, password)
    age_session(client, **{LAST_ACTIVE: 20 * 60})
    client.get(
        reverse("meetings"),
        HTTP_HX_REQUEST="true",
        **{"HTTP_" + ACTIVITY_HEADER.upper().replace("-", "_"): "1"},
    )
    assert time.time() - client.session[LAST_ACTIVE] < 5
    age_session(client, **{LAST_ACTIVE: 20 * 60})
    client.get(reverse("meetings"))
    assert time.time() - client.session[LAST_ACTIVE] < 5


def test_a_session_ends_after_its_maximum_lifetime_however_active(
    client, operator, password, settings
):
    settings.SESSION_MAX_HOURS = 12
    sign_in(client, operator.username, password)
    age_session(client, **{SIGNED_IN_AT: 12 * 3600 + 60, LAST_ACTIVE: 1})

    page = client.get(reverse("overview"), follow=True)

    assert "sessions last 12 hours at most" in page.content.decode()
    assert not signed_in(client)


def test_app_js_marks_only_what_a_person_triggered():
    # The browser half of the rule above (tests/browser/test_sso.py drives it in Chromium).
    from pathlib import Path

    js = (Path(__file__).resolve().parent.parent / "static/meetings/app.js").read_text()
    assert "htmx:configRequest" in js and "isTrusted" in js and ACTIVITY_HEADER in js


def test_the_admin_sites_own_sign_in_page_sends_to_the_dashboards(client):
    # Its own form would skip the throttling and the second factor.
    answer = client.get("/admin/login/?next=/admin/")

    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("login"))


def test_a_code_typed_as_its_step_turned_is_accepted_an_older_one_is_not():
    # RFC 6238 section 5.2: one step back, for the seconds between reading a code and it
    # arriving (settings.MFA_TOTP_TOLERANCE); two steps back is a code from a minute ago.
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        generate_totp_secret,
        hotp_value,
        validate_totp_code,
    )

    secret = generate_totp_secret()
    if time.time() % 30 > 27:  # not while the step turns under the assertions
        time.sleep(30 - time.time() % 30 + 0.1)
    step = int(time.time()) // 30

    def code(counter):
        return format_hotp_value(hotp_value(secret, counter))

    assert validate_totp_code(secret, code(step))
    assert validate_totp_code(secret, code(step - 1))
    assert not validate_totp_code(secret, code(step - 3))
