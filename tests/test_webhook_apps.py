"""Webhooks for several Zoom apps, delivered by the sandbox over HTTP to /webhooks/zoom/: each
connection's events are verified with its own secret token, another app's signature is refused,
a retry an hour after its signed timestamp lands once, and events that arrive out of order are
applied in Zoom's event_ts order."""

import json
import time
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils.timezone import now

from meetings import webhooks
from meetings.models import Meeting, MeetingStatus, WebhookEvent, ZoomAccount
from meetings.views.connections import SESSION_KEY
from meetings.zoom import oauth
from meetings.zoom.sandbox import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_S2S_CLIENT_ID,
    DEFAULT_S2S_CLIENT_SECRET,
)

URL = "/webhooks/zoom/"
SECRET_A = "app-a-webhook-secret-token"
SECRET_B = "app-b-webhook-secret-token"
ACCOUNT_B = "second-zoom-account"


def wait_for(condition, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def two_apps(zoom_sandbox, live_server, settings):
    """Two Server-to-Server apps on two Zoom accounts, each subscribed to events with its own
    secret token, connected here with those tokens (no server-wide default token)."""
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = ""
    state = zoom_sandbox.state
    endpoint = live_server.url + URL
    state.set_webhook(endpoint, SECRET_A)
    state.add_app(
        "s2s-b",
        "s2s-b-client-secret",
        ACCOUNT_B,
        kind="server_to_server",
        webhook_url=endpoint,
        webhook_secret=SECRET_B,
    )
    state.add_user(email="owner-b@sandbox.example", account_id=ACCOUNT_B, role_name="Owner")
    a, _ = oauth.connect_server_to_server(
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=DEFAULT_S2S_CLIENT_ID,
        client_secret=DEFAULT_S2S_CLIENT_SECRET,
        name="Org A",
        webhook_secret_token=SECRET_A,
    )
    b, _ = oauth.connect_server_to_server(
        zoom_account_id=ACCOUNT_B,
        client_id="s2s-b",
        client_secret="s2s-b-client-secret",
        name="Org B",
        webhook_secret_token=SECRET_B,
    )
    return a, b


def host_in(state, account_id, email):
    return state.add_user(email=email, account_id=account_id)


@pytest.mark.django_db(transaction=True)
def test_two_server_to_server_connections_receive_their_own_signed_events_and_refuse_each_others(
    zoom_sandbox, two_apps
):
    a, b = two_apps
    state = zoom_sandbox.state
    meeting_a = state.add_meeting(host_in(state, DEFAULT_ACCOUNT_ID, "ha@a.example")["id"], "A")
    meeting_b = state.add_meeting(host_in(state, ACCOUNT_B, "hb@b.example")["id"], "B")

    state.start_meeting(meeting_a["id"])
    state.start_meeting(meeting_b["id"])
    assert zoom_sandbox.webhooks.wait_idle(10)

    delivered = state.webhook_deliveries
    assert [(d["client_id"], d["ok"], d["status"]) for d in delivered] == [
        (DEFAULT_S2S_CLIENT_ID, True, 200),
        ("s2s-b", True, 200),
    ]
    events = {e.zoom_account_id: e for e in WebhookEvent.objects.all()}
    assert events[DEFAULT_ACCOUNT_ID].account == a
    assert events[ACCOUNT_B].account == b
    for event in events.values():
        webhooks.process_event(event.pk)
    assert Meeting.objects.get(account=a, zoom_id=meeting_a["id"]).status == MeetingStatus.STARTED
    assert Meeting.objects.get(account=b, zoom_id=meeting_b["id"]).status == MeetingStatus.STARTED

    # App B now signs with app A's secret token: its events are refused, nothing is stored.
    state.set_webhook(state.apps["s2s-b"].webhook_url, SECRET_A, client_id="s2s-b")
    state.end_meeting(meeting_b["id"])
    assert zoom_sandbox.webhooks.wait_idle(10)

    refused = state.webhook_deliveries[-1]
    assert (refused["client_id"], refused["ok"], refused["status"]) == ("s2s-b", False, 401)
    assert refused["attempts"] == 1 + len(zoom_sandbox.webhooks.retry_delays)
    assert WebhookEvent.objects.count() == 2
    assert Meeting.objects.get(account=b, zoom_id=meeting_b["id"]).status == MeetingStatus.STARTED


@pytest.mark.django_db(transaction=True)
def test_url_validation_is_answered_with_the_secret_token_of_the_app_that_asks(
    zoom_sandbox, two_apps, live_server
):
    control = f"{zoom_sandbox.url}/_sandbox/webhook"
    endpoint = live_server.url + URL

    answers = [
        requests.post(
            control, json={"url": endpoint, "client_id": app, "validate": True}, timeout=10
        ).json()["validated"]
        for app in (DEFAULT_S2S_CLIENT_ID, "s2s-b")
    ]
    stranger = requests.post(
        control,
        json={"url": endpoint, "client_id": "s2s-b", "secret": "not-connected", "validate": True},
        timeout=10,
    ).json()["validated"]

    assert answers == [True, True]
    assert stranger is False


@pytest.mark.django_db
def test_each_connection_page_shows_the_webhook_url_and_the_events_but_never_the_token(
    client, admin_user, zoom_sandbox, two_apps
):
    client.force_login(admin_user)
    for account in two_apps:
        page = client.get(reverse("connection", args=[account.pk])).content.decode()
        assert "http://testserver/webhooks/zoom/" in page
        assert "meeting.ended" in page and "webinar.started" in page
        assert "set for this connection" in page
        assert SECRET_A not in page and SECRET_B not in page


@pytest.mark.django_db
def test_the_webhook_secret_token_is_rotated_from_the_connection_page_and_stored_encrypted(
    client, admin_user, zoom_sandbox, two_apps
):
    a, _ = two_apps
    client.force_login(admin_user)

    empty = client.post(reverse("connection-webhook-secret", args=[a.pk]), {})
    saved = client.post(
        reverse("connection-webhook-secret", args=[a.pk]),
        {"webhook_secret_token": "regenerated-in-the-marketplace"},
    )

    assert empty.status_code == 400
    assert saved.status_code == 302
    a.refresh_from_db()
    assert a.webhook_secret() == "regenerated-in-the-marketplace"
    with connection.cursor() as cursor:
        table = ZoomAccount._meta.db_table
        cursor.execute(f"SELECT webhook_secret_token FROM {table} WHERE id = %s", [a.pk])  # noqa: S608
        (raw,) = cursor.fetchone()
    assert raw and "regenerated" not in raw  # a Fernet token, as the client secret is
    page = client.get(saved["Location"]).content.decode()
    assert "regenerated-in-the-marketplace" not in page


@pytest.mark.django_db(transaction=True)
def test_a_retry_an_hour_after_its_signed_timestamp_lands_once(zoom_sandbox, two_apps):
    a, _ = two_apps
    state = zoom_sandbox.state
    meeting = state.add_meeting(host_in(state, DEFAULT_ACCOUNT_ID, "ha@a.example")["id"], "A")
    # Zoom's first attempt was an hour ago, and its answer never got back to Zoom: the retry
    # comes now with the first attempt's timestamp and signature.
    state.advance_clock(-3600)
    zoom_sandbox.webhooks.lose_answers = 1

    state.start_meeting(meeting["id"])
    assert zoom_sandbox.webhooks.wait_idle(10)

    (delivery,) = state.webhook_deliveries
    assert (delivery["ok"], delivery["attempts"]) == (True, 2)
    first, retry = delivery["timestamps"]
    assert first == retry and time.time() - int(retry) >= 3600
    (event,) = WebhookEvent.objects.all()
    assert webhooks.process_event(event.pk) is True
    assert Meeting.objects.get(account=a, zoom_id=meeting["id"]).status == MeetingStatus.STARTED


@pytest.mark.django_db(transaction=True)
def test_a_delivery_older_than_zooms_retry_schedule_is_refused(zoom_sandbox, two_apps):
    state = zoom_sandbox.state
    meeting = state.add_meeting(host_in(state, DEFAULT_ACCOUNT_ID, "ha@a.example")["id"], "A")
    state.advance_clock(-2 * 3600)  # signed two hours ago: past Zoom's last retry

    state.start_meeting(meeting["id"])
    assert zoom_sandbox.webhooks.wait_idle(10)

    (delivery,) = state.webhook_deliveries
    assert (delivery["ok"], delivery["status"]) == (False, 401)
    assert not WebhookEvent.objects.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_out_of_order_pair_applies_in_event_ts_order(
    celery_worker_process, zoom_sandbox, two_apps
):
    a, _ = two_apps
    state = zoom_sandbox.state
    meeting = state.add_meeting(host_in(state, DEFAULT_ACCOUNT_ID, "ha@a.example")["id"], "A")
    sender = zoom_sandbox.webhooks
    sender.hold()
    state.start_meeting(meeting["id"])
    state.advance_clock(2)  # Zoom's event_ts are milliseconds: two distinct moments
    state.end_meeting(meeting["id"])

    assert sender.release(order="reverse") == 2
    assert sender.wait_idle(10)

    arrived = [d["event"] for d in state.webhook_deliveries]
    assert arrived == ["meeting.ended", "meeting.started"]
    assert all(d["ok"] for d in state.webhook_deliveries)
    events = WebhookEvent.objects.filter(account=a)
    wait_for(lambda: not events.filter(processed_at__isnull=True).exists(), "both processed")
    assert events.count() == 2
    assert Meeting.objects.get(account=a, zoom_id=meeting["id"]).status == MeetingStatus.ENDED


# --- setting the token: the connect form, zoom_connect ------------------------------------------


@pytest.mark.django_db
def test_the_connect_form_takes_the_apps_webhook_secret_token_and_keeps_it_out_of_the_session(
    client, admin_user, zoom_sandbox, settings
):
    from tests.test_oauth import consent

    settings.ZOOM_CLIENT_ID = DEFAULT_OAUTH_CLIENT_ID
    settings.ZOOM_CLIENT_SECRET = DEFAULT_OAUTH_CLIENT_SECRET
    client.force_login(admin_user)
    form = client.get(reverse("connection-connect")).content.decode()
    assert 'name="webhook_secret_token"' in form and 'type="password"' in form

    start = client.post(
        reverse("connection-connect"), {"plan": "pro", "webhook_secret_token": "oauth-app-token"}
    )
    pending = client.session[SESSION_KEY]
    assert "oauth-app-token" not in json.dumps(pending)
    back = client.get(consent(start["Location"]))

    account = ZoomAccount.objects.get()
    assert back.status_code == 302
    assert account.webhook_secret() == "oauth-app-token"
    assert "oauth-app-token" not in client.get(back["Location"]).content.decode()


def s2s_command(*extra):
    return [
        "zoom_connect",
        "--server-to-server",
        f"--account-id={DEFAULT_ACCOUNT_ID}",
        f"--client-id={DEFAULT_S2S_CLIENT_ID}",
        f"--client-secret={DEFAULT_S2S_CLIENT_SECRET}",
        *extra,
    ]


@pytest.mark.django_db
def test_zoom_connect_takes_the_webhook_secret_token_from_its_option_its_environment_or_a_file(
    zoom_sandbox, monkeypatch, tmp_path, capsys
):
    monkeypatch.delenv("ZOOM_WEBHOOK_SECRET_TOKEN", raising=False)
    monkeypatch.delenv("ZOOM_WEBHOOK_SECRET_TOKEN_FILE", raising=False)
    call_command(*s2s_command("--webhook-secret-token=from-the-option"))
    account = ZoomAccount.objects.get()
    assert account.webhook_secret() == "from-the-option"

    monkeypatch.setenv("ZOOM_WEBHOOK_SECRET_TOKEN", "from-the-environment")
    call_command(*s2s_command())
    account.refresh_from_db()
    assert account.webhook_secret() == "from-the-environment"

    token_file = tmp_path / "webhook-secret"
    token_file.write_text("from-a-file\n")
    monkeypatch.setenv("ZOOM_WEBHOOK_SECRET_TOKEN_FILE", str(token_file))
    call_command(*s2s_command())
    account.refresh_from_db()
    assert account.webhook_secret() == "from-a-file"

    monkeypatch.delenv("ZOOM_WEBHOOK_SECRET_TOKEN")
    monkeypatch.delenv("ZOOM_WEBHOOK_SECRET_TOKEN_FILE")
    call_command(*s2s_command())  # none given: the stored token stays
    account.refresh_from_db()
    assert account.webhook_secret() == "from-a-file"
    out = capsys.readouterr().out
    assert "this connection's own" in out
    assert not any(t in out for t in ("from-the-option", "from-the-environment", "from-a-file"))


@pytest.mark.django_db
def test_the_admin_sets_a_server_to_server_apps_webhook_secret_token_write_only(
    client, admin_user, zoom_sandbox
):
    client.force_login(admin_user)
    added = client.post(
        "/admin/meetings/zoomaccount/add/",
        {
            "name": "From the admin",
            "zoom_account_id": DEFAULT_ACCOUNT_ID,
            "client_id": DEFAULT_S2S_CLIENT_ID,
            "plan": "pro",
            "new_client_secret": DEFAULT_S2S_CLIENT_SECRET,
            "new_webhook_secret_token": "typed-in-the-admin",
        },
    )

    assert added.status_code == 302
    account = ZoomAccount.objects.get()
    assert account.webhook_secret() == "typed-in-the-admin"
    change = client.get(f"/admin/meetings/zoomaccount/{account.pk}/change/").content.decode()
    assert 'name="new_webhook_secret_token"' in change
    assert "typed-in-the-admin" not in change


@pytest.mark.django_db(transaction=True)
def test_after_a_rotation_retries_signed_with_the_old_token_land_but_new_requests_need_the_new(
    client, admin_user, zoom_sandbox, two_apps
):
    a, _ = two_apps
    state = zoom_sandbox.state
    host = host_in(state, DEFAULT_ACCOUNT_ID, "ha@a.example")
    first, second, third = (state.add_meeting(host["id"], t) for t in ("One", "Two", "Three"))
    client.force_login(admin_user)
    rotated = client.post(
        reverse("connection-webhook-secret", args=[a.pk]),
        {"webhook_secret_token": "regenerated-token"},
    )
    assert rotated.status_code == 302
    # The admin saved the regenerated token ten minutes ago.
    ZoomAccount.objects.filter(pk=a.pk).update(
        webhook_secret_rotated_at=now() - timedelta(minutes=10)
    )

    # Zoom first sent this twenty minutes ago, signed with the token as it was then: its retry
    # comes now with that signature.
    state.advance_clock(-1200)
    state.start_meeting(first["id"])
    assert zoom_sandbox.webhooks.wait_idle(10)
    # Signed with the old token now, well after the rotation: not Zoom (any more).
    state.advance_clock(1200)
    state.start_meeting(second["id"])
    assert zoom_sandbox.webhooks.wait_idle(10)
    # The app's new token, as Zoom uses it from the rotation on.
    state.set_webhook(state.webhook_url, "regenerated-token")
    state.start_meeting(third["id"])
    assert zoom_sandbox.webhooks.wait_idle(10)

    statuses = [(d["object_id"], d["status"]) for d in state.webhook_deliveries]
    assert statuses == [(str(first["id"]), 200), (str(second["id"]), 401), (str(third["id"]), 200)]
    assert sorted(WebhookEvent.objects.values_list("object_id", flat=True)) == sorted(
        [first["id"], third["id"]]
    )
