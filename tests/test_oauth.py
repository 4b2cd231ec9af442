"""Zoom connections against the sandbox over real HTTP: the consent flow, the refresh that never
races (20 workers, one token request), shared Server-to-Server tokens, needs_reconnect, disconnect.
"""

import html
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import now

from meetings.models import ZoomAccount
from meetings.views.connections import SESSION_KEY
from meetings.zoom import oauth
from meetings.zoom.errors import ZoomNeedsReconnect, ZoomServerError
from meetings.zoom.sandbox import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_S2S_CLIENT_ID,
    DEFAULT_S2S_CLIENT_SECRET,
    GRANULAR_ADMIN_SCOPES,
)
from tests.fixtures.worker import ROOT, database_url

OWNER_EMAIL = "owner@sandbox.example"
OWNER_ID = "sandboxOwner0000000000A"
REDIRECT_URI = "http://testserver/connections/callback/"
WORKERS = 20
# The connection page's inline of connection roles (meetings/admin/accounts.py), left as it is.
NO_GRANTS_CHANGED = {
    "grants-TOTAL_FORMS": "0",
    "grants-INITIAL_FORMS": "0",
    "grants-MIN_NUM_FORMS": "0",
    "grants-MAX_NUM_FORMS": "1000",
}


@pytest.fixture
def sandbox(zoom_sandbox, settings):
    settings.ZOOM_CLIENT_ID = DEFAULT_OAUTH_CLIENT_ID
    settings.ZOOM_CLIENT_SECRET = DEFAULT_OAUTH_CLIENT_SECRET
    settings.ZOOM_TIMEOUT_SECONDS = 5
    return zoom_sandbox


# The connection page's inline of connection roles (meetings/admin/accounts.py), left as it is.
NO_GRANTS_CHANGED = {
    "grants-TOTAL_FORMS": "0",
    "grants-INITIAL_FORMS": "0",
    "grants-MIN_NUM_FORMS": "0",
    "grants-MAX_NUM_FORMS": "1000",
}


def counter(sandbox, name):
    return sandbox.state.counters[name]


# --- Driving Zoom's consent page ----------------------------------------------------------


def consent(authorize_url, *, decision="approve"):
    """Open the sandbox's consent page like a browser, choose the first user and decide;
    return Zoom's redirect back to the dashboard (path and query)."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(
            r"<input type='hidden' name='([^']+)' value='([^']*)'>", page.text
        )
    }
    fields["user_id"] = html.unescape(re.search(r"<option value='([^']+)'", page.text).group(1))
    fields["decision"] = decision
    answer = requests.post(
        f"{authorize_url.split('/oauth/')[0]}/oauth/authorize",
        data=fields,
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT_URI
    return f"{back.path}?{back.query}"


def connect_through_zoom(client, *, decision="approve", **form):
    start = client.post(reverse("connection-connect"), {"plan": "pro", **form})
    assert start.status_code == 302
    return client.get(consent(start["Location"], decision=decision))


def oauth_account(sandbox, name="Acme", *, expires_in=timedelta(hours=1)):
    """An OAuth connection with real sandbox tokens: the consent is given in the sandbox's state,
    the code exchanged over HTTP."""
    code = sandbox.state.create_authorization_code(DEFAULT_OAUTH_CLIENT_ID, OWNER_ID, REDIRECT_URI)
    token = oauth.exchange_code(
        client_id=DEFAULT_OAUTH_CLIENT_ID,
        client_secret=DEFAULT_OAUTH_CLIENT_SECRET,
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=None,
    )
    return ZoomAccount.objects.create(
        name=name,
        kind=ZoomAccount.Kind.OAUTH,
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=DEFAULT_OAUTH_CLIENT_ID,
        client_secret=DEFAULT_OAUTH_CLIENT_SECRET,
        access_token=token["access_token"],
        refresh_token=token["refresh_token"],
        token_expires_at=now() + expires_in,
        scopes=token["scope"],
    )


def s2s_account(name="Acme S2S", **fields):
    values = {
        "kind": ZoomAccount.Kind.SERVER_TO_SERVER,
        "zoom_account_id": DEFAULT_ACCOUNT_ID,
        "client_id": DEFAULT_S2S_CLIENT_ID,
        "client_secret": DEFAULT_S2S_CLIENT_SECRET,
    }
    return ZoomAccount.objects.create(name=name, **(values | fields))


# --- Connecting with OAuth ---------------------------------------------------------------


def test_an_admin_connects_a_zoom_account_through_zoom_consent(client, admin_user, sandbox):
    client.force_login(admin_user)

    result = connect_through_zoom(client, name="Ops account", plan="business")

    account = ZoomAccount.objects.get()
    assert result.status_code == 302
    assert result["Location"] == reverse("connection", args=[account.pk])
    assert account.name == "Ops account"
    assert account.kind == ZoomAccount.Kind.OAUTH
    assert account.status == ZoomAccount.Status.CONNECTED
    assert account.plan == "business"
    assert account.zoom_account_id == DEFAULT_ACCOUNT_ID
    assert account.connected_as == OWNER_EMAIL
    assert account.connected_by == admin_user
    assert account.access_token.startswith("sbx_at_")
    assert account.refresh_token.startswith("sbx_rt_")
    assert set(account.scopes.split()) == set(GRANULAR_ADMIN_SCOPES)  # a new app: granular scopes
    assert account.missing_scopes == []
    assert timedelta(minutes=59) < account.token_expires_at - now() <= timedelta(hours=1)
    assert counter(sandbox, "token_requests:authorization_code") == 1
    assert SESSION_KEY not in client.session
    page = client.get(result["Location"])
    assert f"Connected the Zoom account “Ops account” as {OWNER_EMAIL}" in page.text
    assert LogEntry.objects.filter(object_id=str(account.pk)).exists()


def test_the_code_exchange_proves_pkce_and_sends_the_client_in_basic_auth(
    client, admin_user, sandbox
):
    client.force_login(admin_user)
    start = client.post(reverse("connection-connect"), {"plan": "pro"})
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    # given a verifier that doesn't match the challenge, Zoom refuses the code
    pending = client.session[SESSION_KEY]
    pending["code_verifier"] = "x" * 64
    session = client.session
    session[SESSION_KEY] = pending
    session.save()

    response = client.get(consent(start["Location"]))

    assert response.status_code == 400
    assert "Zoom refused the authorization code" in response.text
    assert ZoomAccount.objects.count() == 0


def test_a_name_is_derived_from_zoom_when_none_is_given(client, admin_user, sandbox):
    client.force_login(admin_user)
    connect_through_zoom(client)
    assert ZoomAccount.objects.get().name == f"Olivia Owner ({OWNER_EMAIL})"


def test_denying_at_zoom_stores_nothing(client, admin_user, sandbox):
    client.force_login(admin_user)
    response = connect_through_zoom(client, decision="deny")
    assert response.status_code == 400
    assert "Zoom access was not granted" in response.text
    assert ZoomAccount.objects.count() == 0
    assert counter(sandbox, "token_requests") == 0


def test_a_code_zoom_refuses_stores_nothing(client, admin_user, sandbox):
    client.force_login(admin_user)
    client.post(reverse("connection-connect"), {"plan": "pro"})
    state = client.session[SESSION_KEY]["state"]

    response = client.get(reverse("connection-callback"), {"code": "made-up", "state": state})

    assert response.status_code == 400
    assert "Zoom refused the authorization code" in response.text
    assert "invalid_grant" in response.text
    assert ZoomAccount.objects.count() == 0


def test_a_replayed_callback_is_refused_and_changes_nothing(client, admin_user, sandbox):
    client.force_login(admin_user)
    start = client.post(reverse("connection-connect"), {"plan": "pro"})
    back = consent(start["Location"])
    assert client.get(back).status_code == 302
    before = ZoomAccount.objects.get()

    replay = client.get(back)

    assert replay.status_code == 400
    assert "unknown, used or expired" in replay.text
    after = ZoomAccount.objects.get()
    assert (after.access_token, after.refresh_token) == (before.access_token, before.refresh_token)


def test_a_used_code_with_a_fresh_state_is_refused_by_zoom(client, admin_user, sandbox):
    client.force_login(admin_user)
    start = client.post(reverse("connection-connect"), {"plan": "pro"})
    back = consent(start["Location"])
    client.get(back)
    used_code = parse_qs(urlsplit(back).query)["code"][0]
    client.post(reverse("connection-connect"), {"plan": "pro"})
    state = client.session[SESSION_KEY]["state"]

    response = client.get(reverse("connection-callback"), {"code": used_code, "state": state})

    assert response.status_code == 400
    assert "Zoom refused the authorization code" in response.text
    assert ZoomAccount.objects.count() == 1


def test_connecting_the_same_zoom_account_again_updates_it(client, admin_user, sandbox):
    client.force_login(admin_user)
    connect_through_zoom(client, name="First")
    connect_through_zoom(client, name="")
    account = ZoomAccount.objects.get()
    assert account.name == "First"
    assert counter(sandbox, "token_requests:authorization_code") == 2


def test_reconnecting_after_a_revoke_restores_the_same_account(client, admin_user, sandbox):
    # given a connected account whose grant Zoom revoked
    client.force_login(admin_user)
    connect_through_zoom(client, name="Acme")
    account = ZoomAccount.objects.get()
    sandbox.state.revoke_tokens()
    with pytest.raises(ZoomNeedsReconnect):
        oauth.client_for_account(account).get_me()
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.NEEDS_RECONNECT

    # when the admin reconnects through Zoom
    start = client.post(reverse("connection-reconnect", args=[account.pk]))
    result = client.get(consent(start["Location"]))

    # then it is the same row, connected again, and it works
    assert result.status_code == 302
    assert ZoomAccount.objects.count() == 1
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED
    assert oauth.client_for_account(account).get_me().email == OWNER_EMAIL


def test_reconnecting_into_another_zoom_account_is_refused(client, admin_user, sandbox):
    client.force_login(admin_user)
    other = ZoomAccount.objects.create(
        name="Other", kind=ZoomAccount.Kind.OAUTH, zoom_account_id="another-account", client_id="x"
    )
    other.status = ZoomAccount.Status.NEEDS_RECONNECT
    other.save()
    start = client.post(reverse("connection-reconnect", args=[other.pk]))

    response = client.get(consent(start["Location"]))

    assert response.status_code == 400
    assert "different Zoom account" in response.text
    other.refresh_from_db()
    assert other.status == ZoomAccount.Status.NEEDS_RECONNECT
    assert other.access_token == ""
    assert counter(sandbox, "revoke_requests") == 1  # the unused token was handed back


# --- Tokens: refresh, rotation, 401 ------------------------------------------------------


def test_an_expired_token_is_refreshed_and_the_rotated_refresh_token_saved(db, sandbox):
    account = oauth_account(sandbox, expires_in=-timedelta(minutes=5))
    old_refresh = account.refresh_token

    me = oauth.client_for_account(account).get_me()

    assert me.email == OWNER_EMAIL
    account.refresh_from_db()
    assert counter(sandbox, "token_requests:refresh_token") == 1
    assert account.refresh_token != old_refresh
    assert account.token_expires_at > now() + timedelta(minutes=59)
    assert account.last_refreshed_at is not None
    # Zoom rotated it: the old refresh token is dead
    with pytest.raises(oauth.OAuthRefused) as refused:
        oauth.refresh_grant(
            client_id=DEFAULT_OAUTH_CLIENT_ID,
            client_secret=DEFAULT_OAUTH_CLIENT_SECRET,
            refresh_token=old_refresh,
        )
    assert refused.value.error == "invalid_grant"


def test_a_token_within_a_minute_of_expiry_is_renewed_before_the_request(db, sandbox):
    account = oauth_account(sandbox, expires_in=timedelta(seconds=30))
    oauth.client_for_account(account).get_me()
    assert counter(sandbox, "token_requests:refresh_token") == 1
    assert counter(sandbox, "status_401") == 0


def test_a_valid_token_is_used_without_asking_zoom(db, sandbox):
    account = oauth_account(sandbox)
    client = oauth.client_for_account(account)
    client.get_me()
    client.get_me()
    assert counter(sandbox, "token_requests") == 1  # the exchange that made the account


def test_a_401_code_124_renews_the_token_once_and_retries(db, sandbox):
    # given a token the database thinks valid but Zoom has expired
    account = oauth_account(sandbox)
    sandbox.state.expire_access_tokens()

    me = oauth.client_for_account(account).get_me()

    assert me.email == OWNER_EMAIL
    assert counter(sandbox, "status_401") == 1
    assert counter(sandbox, "token_requests:refresh_token") == 1


def run_concurrently(account_pk, work, count=WORKERS):
    """Run work(account) in `count` threads, each with its own database connection, released
    together; return (results, errors)."""
    barrier = threading.Barrier(count)
    results, errors = [], []
    lock = threading.Lock()

    def worker():
        try:
            account = ZoomAccount.objects.get(pk=account_pk)
            barrier.wait(timeout=30)
            value = work(account)
            with lock:
                results.append(value)
        except Exception as e:  # collected and asserted on below
            with lock:
                errors.append(repr(e))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return results, errors


@pytest.mark.parametrize("expired_where", ["in the database", "at Zoom only"])
def test_twenty_workers_holding_an_expired_token_make_exactly_one_token_request(
    transactional_db, sandbox, expired_where
):
    # given an OAuth account whose access token has expired
    if expired_where == "in the database":
        account = oauth_account(sandbox, expires_in=-timedelta(minutes=1))
    else:
        account = oauth_account(sandbox)
        sandbox.state.expire_access_tokens()
    requests_before = counter(sandbox, "token_requests")
    old_refresh = account.refresh_token

    # when 20 workers call Zoom at once
    results, errors = run_concurrently(
        account.pk, lambda a: oauth.client_for_account(a).get_me().email
    )

    # then one token request, no invalid_grant, every call succeeded
    assert errors == []
    assert results == [OWNER_EMAIL] * WORKERS
    assert counter(sandbox, "token_requests") - requests_before == 1
    assert counter(sandbox, "token_requests:refresh_token") == 1
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED
    assert account.refresh_token != old_refresh
    assert account.last_error == ""
    # and the saved refresh token is the live one
    assert oauth.refresh_grant(
        client_id=DEFAULT_OAUTH_CLIENT_ID,
        client_secret=DEFAULT_OAUTH_CLIENT_SECRET,
        refresh_token=account.refresh_token,
    )["access_token"]


def test_server_to_server_workers_share_one_token(transactional_db, sandbox):
    account = s2s_account()

    results, errors = run_concurrently(
        account.pk, lambda a: oauth.client_for_account(a).get_me().email
    )

    assert errors == []
    assert results == [OWNER_EMAIL] * WORKERS
    assert counter(sandbox, "token_requests:account_credentials") == 1
    assert counter(sandbox, "status_401") == 0


def test_a_server_to_server_token_replaced_elsewhere_is_renewed_once(db, sandbox):
    # given our stored token, then another fetch with the same credentials (which kills ours)
    account = s2s_account()
    client = oauth.client_for_account(account)
    client.get_me()
    oauth.account_credentials_grant(
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=DEFAULT_S2S_CLIENT_ID,
        client_secret=DEFAULT_S2S_CLIENT_SECRET,
    )

    # when we call again
    assert client.get_me().email == OWNER_EMAIL

    # then one 401, one new token, and it is shared through the row
    assert counter(sandbox, "status_401") == 1
    assert counter(sandbox, "token_requests:account_credentials") == 3
    assert oauth.client_for_account(ZoomAccount.objects.get()).get_me().email == OWNER_EMAIL
    assert counter(sandbox, "token_requests:account_credentials") == 3


# --- needs_reconnect -----------------------------------------------------------------------


def test_a_revoked_grant_marks_the_account_needs_reconnect(client, admin_user, db, sandbox):
    # given a connected account, then the admin removes the app at Zoom
    account = oauth_account(sandbox)
    sandbox.state.revoke_tokens()

    # when the dashboard acts on it
    with pytest.raises(ZoomNeedsReconnect) as caught:
        oauth.client_for_account(account).get_me()

    # then it fails with plain words and the account is marked
    assert caught.value.describe() == "Zoom connection needs to be reconnected"
    assert caught.value.permanent
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.NEEDS_RECONNECT
    assert "invalid_grant" in account.last_error
    assert account.access_token == "" and account.refresh_token == ""
    # and every later action fails at once, without asking Zoom
    seen = counter(sandbox, "requests")
    with pytest.raises(ZoomNeedsReconnect):
        oauth.client_for_account(account)
    with pytest.raises(ZoomNeedsReconnect):
        oauth.ensure_access_token(account.pk)
    assert counter(sandbox, "requests") == seen
    # and the banner says so
    client.force_login(admin_user)
    assert "“Acme” needs to be reconnected" in client.get(reverse("connections")).text


def test_a_refresh_token_spent_elsewhere_marks_needs_reconnect(db, sandbox):
    # given someone refreshed outside the lock (an old deployment sharing the credentials)
    account = oauth_account(sandbox, expires_in=-timedelta(minutes=1))
    oauth.refresh_grant(
        client_id=DEFAULT_OAUTH_CLIENT_ID,
        client_secret=DEFAULT_OAUTH_CLIENT_SECRET,
        refresh_token=account.refresh_token,
    )

    with pytest.raises(ZoomNeedsReconnect):
        oauth.client_for_account(account).get_me()

    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.NEEDS_RECONNECT


def test_zoom_being_down_during_a_refresh_is_retryable_and_keeps_the_connection(db, sandbox):
    account = oauth_account(sandbox, expires_in=-timedelta(minutes=1))
    refresh = account.refresh_token
    sandbox.state.set_faults(error_rate=1.0)

    with pytest.raises(ZoomServerError) as caught:
        oauth.client_for_account(account).get_me()

    assert not caught.value.permanent
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED
    assert account.refresh_token == refresh
    assert account.last_error


# --- Server-to-Server: command, admin, reconnect --------------------------------------------


def s2s_args(**overrides):
    values = {
        "name": "Acme S2S",
        "account_id": DEFAULT_ACCOUNT_ID,
        "client_id": DEFAULT_S2S_CLIENT_ID,
        "client_secret": DEFAULT_S2S_CLIENT_SECRET,
        "plan": "business",
    } | overrides
    return ["--server-to-server"] + [
        f"--{k.replace('_', '-')}={v}" for k, v in values.items() if v is not None
    ]


def test_zoom_connect_creates_then_updates_a_server_to_server_account(db, sandbox, capsys):
    call_command("zoom_connect", *s2s_args())
    call_command("zoom_connect", *s2s_args(plan="free"))

    account = ZoomAccount.objects.get()
    assert account.kind == ZoomAccount.Kind.SERVER_TO_SERVER
    assert account.plan == "free"
    assert account.status == ZoomAccount.Status.CONNECTED
    assert account.connected_as == OWNER_EMAIL
    assert account.client_secret == DEFAULT_S2S_CLIENT_SECRET
    assert account.access_token.startswith("sbx_at_")
    assert account.refresh_token == ""
    out = capsys.readouterr().out
    assert "Connected “Acme S2S”" in out and "Updated “Acme S2S”" in out
    assert DEFAULT_S2S_CLIENT_SECRET not in out and "sbx_" not in out


def test_zoom_connect_reads_the_settings(db, sandbox, settings):
    settings.ZOOM_ACCOUNT_ID = DEFAULT_ACCOUNT_ID
    settings.ZOOM_CLIENT_ID = DEFAULT_S2S_CLIENT_ID
    settings.ZOOM_CLIENT_SECRET = DEFAULT_S2S_CLIENT_SECRET
    call_command("zoom_connect", "--server-to-server")
    assert ZoomAccount.objects.get().name == f"Zoom account {DEFAULT_ACCOUNT_ID}"


def test_zoom_connect_with_a_secret_zoom_rejects_stores_nothing(db, sandbox):
    with pytest.raises(CommandError, match="client id or client secret is wrong") as caught:
        call_command("zoom_connect", *s2s_args(client_secret="wrong-secret"))
    assert "wrong-secret" not in str(caught.value)
    assert ZoomAccount.objects.count() == 0


def test_zoom_connect_with_a_wrong_secret_leaves_an_existing_account_alone(db, sandbox):
    call_command("zoom_connect", *s2s_args())
    before = ZoomAccount.objects.get()
    with pytest.raises(CommandError):
        call_command("zoom_connect", *s2s_args(client_secret="wrong-secret"))
    after = ZoomAccount.objects.get()
    assert after.client_secret == DEFAULT_S2S_CLIENT_SECRET
    assert after.access_token == before.access_token


def test_zoom_connect_names_what_is_missing(db, sandbox, settings):
    settings.ZOOM_SANDBOX = False
    settings.ZOOM_ACCOUNT_ID = settings.ZOOM_CLIENT_ID = settings.ZOOM_CLIENT_SECRET = ""
    with pytest.raises(CommandError, match="ZOOM_ACCOUNT_ID"):
        call_command("zoom_connect", "--server-to-server")


def test_the_admin_adds_a_server_to_server_account_after_zoom_accepts_the_secret(
    client, admin_user, sandbox
):
    client.force_login(admin_user)
    form = {
        "name": "From the admin",
        "zoom_account_id": DEFAULT_ACCOUNT_ID,
        "client_id": DEFAULT_S2S_CLIENT_ID,
        "plan": "pro",
    }
    refused = client.post(
        "/admin/meetings/zoomaccount/add/", form | {"new_client_secret": "wrong-secret"}
    )
    assert refused.status_code == 200
    assert "client id or client secret is wrong" in refused.text
    assert "wrong-secret" not in refused.text
    assert ZoomAccount.objects.count() == 0

    added = client.post(
        "/admin/meetings/zoomaccount/add/",
        form | {"new_client_secret": DEFAULT_S2S_CLIENT_SECRET},
    )

    assert added.status_code == 302
    account = ZoomAccount.objects.get()
    assert account.kind == ZoomAccount.Kind.SERVER_TO_SERVER
    assert account.status == ZoomAccount.Status.CONNECTED
    assert account.client_secret == DEFAULT_S2S_CLIENT_SECRET
    assert account.access_token.startswith("sbx_at_")
    assert oauth.client_for_account(account).get_me().email == OWNER_EMAIL


def test_the_admin_changes_a_name_without_touching_the_credentials(client, admin_user, sandbox):
    account = s2s_account(access_token="kept-token-0001", token_expires_at=now())
    client.force_login(admin_user)
    response = client.post(
        f"/admin/meetings/zoomaccount/{account.pk}/change/",
        {
            "name": "Renamed",
            "zoom_account_id": DEFAULT_ACCOUNT_ID,
            "client_id": DEFAULT_S2S_CLIENT_ID,
            "plan": "pro",
            "new_client_secret": "",
            **NO_GRANTS_CHANGED,
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert account.client_secret == DEFAULT_S2S_CLIENT_SECRET
    assert account.access_token == "kept-token-0001"
    assert counter(sandbox, "token_requests") == 0


def test_a_server_to_server_account_is_reconnected_with_a_new_secret(client, admin_user, sandbox):
    # given Zoom stopped accepting the stored secret (it was regenerated)
    account = s2s_account(client_secret="regenerated-away")
    with pytest.raises(ZoomNeedsReconnect):
        oauth.client_for_account(account).get_me()
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.NEEDS_RECONNECT
    client.force_login(admin_user)
    url = reverse("connection-reconnect", args=[account.pk])

    # when a wrong secret is tried, then the right one
    wrong = client.post(url, {"client_secret": "still-wrong"})
    right = client.post(url, {"client_secret": DEFAULT_S2S_CLIENT_SECRET})

    assert wrong.status_code == 200
    assert "client id or client secret is wrong" in wrong.text
    assert "still-wrong" not in wrong.text
    assert right.status_code == 302
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED
    assert account.client_secret == DEFAULT_S2S_CLIENT_SECRET


# --- Disconnect, test connection, health -----------------------------------------------------


def test_disconnect_revokes_at_zoom_wipes_the_tokens_and_keeps_the_row(
    client, admin_user, db, sandbox
):
    account = oauth_account(sandbox)
    token = account.access_token
    client.force_login(admin_user)

    response = client.post(reverse("connection-disconnect", args=[account.pk]))

    assert response.status_code == 302
    assert counter(sandbox, "revoke_requests") == 1
    gone = requests.get(
        f"{sandbox.api_url}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert gone.status_code == 401
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.DISCONNECTED
    assert (account.access_token, account.refresh_token, account.client_secret) == ("", "", "")
    with pytest.raises(ZoomNeedsReconnect, match="disconnected"):
        oauth.client_for_account(account)
    assert LogEntry.objects.filter(
        object_id=str(account.pk), change_message__startswith="Disconnected"
    ).exists()


def test_disconnect_still_wipes_the_tokens_when_zoom_cannot_be_told(
    client, admin_user, db, sandbox
):
    account = oauth_account(sandbox)
    sandbox.state.set_faults(down=True, down_mode="503")
    client.force_login(admin_user)

    response = client.post(reverse("connection-disconnect", args=[account.pk]), follow=True)

    assert "Zoom could not be told" in response.text
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.DISCONNECTED
    assert account.access_token == ""


def test_the_test_button_calls_zoom_and_records_the_success(client, admin_user, db, sandbox):
    account = oauth_account(sandbox)
    client.force_login(admin_user)

    plain = client.post(reverse("connection-test", args=[account.pk]), follow=True)
    fragment = client.post(
        reverse("connection-test", args=[account.pk]), headers={"HX-Request": "true"}
    )

    assert f"Zoom answered: signed in as {OWNER_EMAIL}" in plain.text
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="health"')
    assert "signed in as" in fragment.text
    account.refresh_from_db()
    assert account.last_success_at is not None


def test_the_test_button_shows_why_it_failed(client, admin_user, db, sandbox):
    account = oauth_account(sandbox)
    sandbox.state.set_faults(error_rate=1.0)
    client.force_login(admin_user)
    response = client.post(reverse("connection-test", args=[account.pk]), follow=True)
    assert "Test failed: Zoom had a server error" in response.text
    account.refresh_from_db()
    assert account.last_error.startswith("Zoom had a server error")


def test_successful_calls_note_the_account_at_most_once_a_minute(db, sandbox):
    account = oauth_account(sandbox)
    client = oauth.client_for_account(account)
    client.get_me()  # the first success is written
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            client.get_me()
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    account.refresh_from_db()
    assert account.last_success_at is not None


def test_a_new_secret_entered_in_the_admin_is_checked_and_the_next_call_gets_a_fresh_token(
    client, admin_user, sandbox
):
    # given a Server-to-Server account Zoom refused
    account = s2s_account(client_secret="regenerated-away")
    with pytest.raises(ZoomNeedsReconnect):
        oauth.client_for_account(account).get_me()
    client.force_login(admin_user)

    response = client.post(
        f"/admin/meetings/zoomaccount/{account.pk}/change/",
        {
            "name": account.name,
            "zoom_account_id": DEFAULT_ACCOUNT_ID,
            "client_id": DEFAULT_S2S_CLIENT_ID,
            "plan": "pro",
            "new_client_secret": DEFAULT_S2S_CLIENT_SECRET,
            **NO_GRANTS_CHANGED,
        },
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED
    assert account.access_token == ""
    assert oauth.client_for_account(account).get_me().email == OWNER_EMAIL
    assert counter(sandbox, "token_requests:account_credentials") == 2  # the check, then ours


def test_deleting_an_account_in_the_admin_revokes_its_token_first(client, admin_user, db, sandbox):
    account = oauth_account(sandbox)
    token = account.access_token
    client.force_login(admin_user)

    response = client.post(
        f"/admin/meetings/zoomaccount/{account.pk}/delete/", {"post": "yes"}, follow=True
    )

    assert response.status_code == 200
    assert not ZoomAccount.objects.filter(pk=account.pk).exists()
    assert counter(sandbox, "revoke_requests") == 1
    gone = requests.get(
        f"{sandbox.api_url}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert gone.status_code == 401


# --- Across processes: the lock is the database's, not Python's -----------------------------

PROCESS_SCRIPT = """
import json, os, sys, threading, time
import django

django.setup()
from django.db import connection
from meetings.models import ZoomAccount
from meetings.zoom.oauth import client_for_account

pk, go_file, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
results = []

def work():
    try:
        account = ZoomAccount.objects.get(pk=pk)
        while not os.path.exists(go_file):
            time.sleep(0.01)
        results.append(client_for_account(account).get_me().email)
    except Exception as e:
        results.append(repr(e))
    finally:
        connection.close()

pool = [threading.Thread(target=work) for _ in range(threads)]
for t in pool:
    t.start()
print("ready", flush=True)
for t in pool:
    t.join(60)
print(json.dumps(results), flush=True)
"""


@pytest.mark.parametrize("kind", ["oauth", "server_to_server"])
def test_worker_processes_share_one_refresh(transactional_db, sandbox, tmp_path, kind):
    """4 processes x 5 threads, each with its own database connection, holding an expired
    token: one token request between them (the row lock works across processes)."""
    if kind == "oauth":
        account = oauth_account(sandbox, expires_in=-timedelta(minutes=1))
    else:
        account = s2s_account()
    before = counter(sandbox, "token_requests")
    go = tmp_path / "go"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "zoomadmin.settings",
        "DATABASE_URL": database_url(),
        "ZOOM_API_BASE_URL": sandbox.api_url,
        "ZOOM_OAUTH_BASE_URL": sandbox.oauth_url,
        "LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS_SCRIPT, str(account.pk), str(go), "5"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        deadline = time.monotonic() + 90  # four cold Django start-ups on a busy 2-core box
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
            assert time.monotonic() < deadline
        go.touch()
        outputs = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    emails = []
    for out, err in outputs:
        assert out.strip(), err
        emails.extend(json.loads(out.strip().splitlines()[-1]))
    assert emails == [OWNER_EMAIL] * 20
    assert counter(sandbox, "token_requests") - before == 1
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED


def test_a_refusal_is_described_in_plain_words_without_echoing_what_was_sent():
    sent = "sbx_rt_the-refresh-token-we-sent"
    refused = oauth.OAuthRefused(
        "invalid_grant", oauth._scrub(f"Invalid Token! {sent}", [sent]), status=400
    )
    assert refused.permanent and refused.credentials_refused
    assert sent not in refused.describe()
    assert refused.describe().startswith(
        "Zoom refused the credentials: the authorization code or refresh token is invalid"
    )
    assert not oauth.OAuthRefused("invalid_request", "Redirect URI mismatch.").credentials_refused


# --- Connections ---------------------------------------------------------------------------


def api_traffic():
    """(connections opened, requests sent) by this process's pools to Zoom's API host."""
    from django.conf import settings

    api = urlsplit(settings.ZOOM_API_BASE_URL)
    pools = oauth.shared_adapter().poolmanager.pools
    keys = pools.keys()  # urllib3's container refuses plain iteration
    mine = [pools[key] for key in keys if (key.key_host, key.key_port) == (api.hostname, api.port)]
    return sum(p.num_connections for p in mine), sum(p.num_requests for p in mine)


def test_the_clients_made_one_per_action_reuse_one_connection_to_zoom(db, sandbox):
    # given an account, and what this process has sent to Zoom so far
    account = oauth_account(sandbox)
    connections, sent = api_traffic()

    # when five actions one after the other each make their client and call Zoom
    for _ in range(5):
        oauth.client_for_account(account).get_me()

    # then five requests went over at most one new connection (none if one was open already)
    now_connections, now_sent = api_traffic()
    assert now_sent - sent == 5
    assert now_connections - connections <= 1


def test_closing_one_client_leaves_the_others_connections_open(db, sandbox):
    account = oauth_account(sandbox)
    first = oauth.client_for_account(account)
    first.get_me()
    connections, sent = api_traffic()

    first.session.close()
    oauth.client_for_account(account).get_me()

    assert api_traffic() == (connections, sent + 1)


def test_a_forked_process_opens_connections_of_its_own():
    # Celery's prefork pool forks its processes: sharing the parent's sockets would interleave
    # two processes' requests on one connection.
    parent = oauth.shared_adapter()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, without running pytest's teardown
        own = oauth._shared_adapter is None and oauth.shared_adapter() is not parent
        os.write(write, b"own" if own else b"shared")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"own"
    assert oauth.shared_adapter() is parent


def test_a_throttled_request_is_connected_before_its_rate_limit_slot_is_booked(db, sandbox):
    # given a process with no open connection to Zoom (a fresh worker, or Zoom closed it idle)
    account = oauth_account(sandbox)
    oauth.shared_adapter().poolmanager.clear()
    seen_at_slot = []

    def throttle(label):  # what the connection pool holds when the slot is booked
        seen_at_slot.append(api_traffic())

    # when a throttled client makes its first request
    oauth.client_for_account(account, throttle=throttle).get_me()

    # then the connection was opened before the slot, and the request went over it
    (connections_at_slot, sent_at_slot), after = seen_at_slot[0], api_traffic()
    assert (connections_at_slot, sent_at_slot) == (1, 0)
    assert after == (1, 1)


def test_warming_a_connection_to_a_zoom_that_is_down_is_left_to_the_request(db, sandbox):
    from meetings.zoom.errors import ZoomConnectionError

    account = oauth_account(sandbox)
    oauth.shared_adapter().poolmanager.clear()
    client = oauth.client_for_account(account, throttle=lambda label: None)
    sandbox.state.set_faults(down=True)  # the sandbox closes its listening socket

    with pytest.raises(ZoomConnectionError) as caught:
        client.get_me()  # the warm-up's failure is quiet; the request's is reported

    assert caught.value.describe() == "Could not reach Zoom: connection refused"
