"""The sandbox as strict as Zoom about grants and webhook deliveries: granular or classic scopes
and code 4711, one webhook secret token per app, retries that keep their first timestamp and
signature on Zoom's (scaled) schedule, and deliveries held back and released out of order."""

import hashlib
import hmac
import json
import time

import pytest
import requests

from meetings.zoom.sandbox import (
    ADMIN_SCOPES,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_S2S_CLIENT_ID,
    GRANULAR_ADMIN_SCOPES,
    GRANULAR_USER_SCOPES,
)
from meetings.zoom.sandbox.webhooks import ZOOM_RETRY_GAPS, WebhookSender
from tests.test_sandbox import _Receiver, api

TIMEOUT = 5


def app_token(sandbox, client_id, scopes, account_id=DEFAULT_ACCOUNT_ID):
    sandbox.state.add_app(
        client_id, f"{client_id}-secret", account_id, kind="server_to_server", scopes=scopes
    )
    answer = requests.post(
        f"{sandbox.oauth_url}/oauth/token",
        params={"grant_type": "account_credentials", "account_id": account_id},
        auth=(client_id, f"{client_id}-secret"),
        timeout=TIMEOUT,
    )
    answer.raise_for_status()
    return answer.json()


def signature(secret, headers, body):
    message = f"v0:{headers['x-zm-request-timestamp']}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@pytest.fixture
def receiver():
    receiver = _Receiver()
    yield receiver
    receiver.close()


# --- scopes ----------------------------------------------------------------------------------


def test_a_new_app_gets_granular_scopes_and_they_allow_each_operation(zoom_sandbox):
    host = zoom_sandbox.state.add_user(email="host@sandbox.example")
    meeting = zoom_sandbox.state.add_meeting(host["id"], status="started")
    token = app_token(zoom_sandbox, "new-app", None)

    listed = api(zoom_sandbox, "GET", f"/users/{host['id']}/meetings", token["access_token"])
    ended = api(
        zoom_sandbox,
        "PUT",
        f"/meetings/{meeting['id']}/status",
        token["access_token"],
        json={"action": "end"},
    )

    assert set(token["scope"].split()) == set(GRANULAR_ADMIN_SCOPES)
    assert listed.status_code == 200 and ended.status_code == 204


def test_a_granular_grant_without_an_operations_scope_answers_4711_naming_granular_scopes(
    zoom_sandbox,
):
    host = zoom_sandbox.state.add_user(email="host@sandbox.example")
    meeting = zoom_sandbox.state.add_meeting(host["id"], status="started")
    # Reading a meeting is granted, ending it is not: granular scopes are one per operation.
    token = app_token(zoom_sandbox, "read-only", ("meeting:read:meeting:admin",))["access_token"]

    read = api(zoom_sandbox, "GET", f"/meetings/{meeting['id']}", token)
    end = api(
        zoom_sandbox, "PUT", f"/meetings/{meeting['id']}/status", token, json={"action": "end"}
    )
    listing = api(zoom_sandbox, "GET", f"/users/{host['id']}/meetings", token)

    assert read.status_code == 200
    assert (end.status_code, end.json()["code"]) == (400, 4711)
    assert end.json()["message"] == (
        "Invalid access token, does not contain scopes:"
        "[meeting:update:status, meeting:update:status:admin]."
    )
    assert (listing.status_code, listing.json()["code"]) == (400, 4711)
    assert "meeting:read:list_meetings" in listing.json()["message"]
    assert zoom_sandbox.state.meetings[meeting["id"]]["status"] == "started"


def test_an_older_app_with_classic_scopes_is_answered_in_classic_names(zoom_sandbox):
    token = app_token(zoom_sandbox, "old-app", ("meeting:read:admin",))["access_token"]
    full = app_token(zoom_sandbox, "old-full", ADMIN_SCOPES)["access_token"]

    users = api(zoom_sandbox, "GET", "/users", token)

    assert (users.status_code, users.json()["code"]) == (400, 4711)
    assert users.json()["message"].endswith("scopes:[user:read:admin].")
    assert api(zoom_sandbox, "GET", "/users", full).status_code == 200


def test_granular_user_level_scopes_reach_only_the_users_own_meetings(zoom_sandbox):
    from tests.test_sandbox import authorize, exchange

    zoom_sandbox.state.add_app("user-app", "user-secret", scopes=GRANULAR_USER_SCOPES)
    member = zoom_sandbox.state.add_user("member@sandbox.example")
    owner = zoom_sandbox.state.find_user("owner@sandbox.example")
    mine = zoom_sandbox.state.add_meeting(member["id"], status="started")
    theirs = zoom_sandbox.state.add_meeting(owner["id"], status="started")
    code = authorize(zoom_sandbox, user_id=member["id"], client_id="user-app")["code"][0]
    token = exchange(zoom_sandbox, code, auth=("user-app", "user-secret")).json()["access_token"]

    own = api(zoom_sandbox, "GET", f"/meetings/{mine['id']}", token)
    other = api(zoom_sandbox, "GET", f"/meetings/{theirs['id']}", token)
    users = api(zoom_sandbox, "GET", "/users", token)

    assert own.status_code == 200
    assert (other.status_code, other.json()["code"]) == (400, 3000)
    assert (users.status_code, users.json()["code"]) == (400, 4711)


# --- webhooks --------------------------------------------------------------------------------


def test_two_apps_of_an_account_each_get_its_events_signed_with_its_own_secret(
    zoom_sandbox, receiver
):
    state = zoom_sandbox.state
    state.set_webhook(receiver.url, "secret-of-app-one")
    state.add_app("app-two", "x", webhook_url=receiver.url, webhook_secret="secret-of-app-two")
    host = state.add_user(email="host@sandbox.example")

    state.add_meeting(host["id"], status="started", emit=True)
    assert zoom_sandbox.webhooks.wait_idle(5)

    assert len(receiver.received) == 4  # meeting.created and meeting.started, to each app
    by_app = {d["client_id"] for d in state.webhook_deliveries}
    assert by_app == {DEFAULT_S2S_CLIENT_ID, "app-two"}
    secrets_used = set()
    for headers, body in receiver.received:
        for secret in ("secret-of-app-one", "secret-of-app-two"):
            if headers["x-zm-signature"] == signature(secret, headers, body):
                secrets_used.add(secret)
    assert secrets_used == {"secret-of-app-one", "secret-of-app-two"}


def test_a_retry_keeps_the_first_attempts_timestamp_and_signature(zoom_sandbox):
    flaky = _Receiver(fail_first=2)
    try:
        state = zoom_sandbox.state
        state.set_webhook(flaky.url, "s")
        meeting = state.add_meeting(state.find_user("owner@sandbox.example")["id"])
        state.advance_clock(-1800)  # the first attempt, as Zoom's clock had it, half an hour ago
        state.start_meeting(meeting["id"])
        assert zoom_sandbox.webhooks.wait_idle(5)
    finally:
        flaky.close()

    (delivery,) = state.webhook_deliveries
    assert (delivery["ok"], delivery["attempts"]) == (True, 3)
    sent = [(h["x-zm-request-timestamp"], h["x-zm-signature"], b) for h, b in flaky.received]
    assert len(set(sent)) == 1  # three identical signed requests
    assert time.time() - int(sent[0][0]) >= 1800


def test_zooms_retry_schedule_is_scaled_down_and_configurable(zoom_sandbox):
    sender = WebhookSender(zoom_sandbox.state)
    assert ZOOM_RETRY_GAPS == (300.0, 1200.0, 3600.0)  # 5, then 20, then 60 minutes
    assert sender.retry_delays == pytest.approx((0.25, 1.0, 3.0))

    sender.retry_scale = 1
    assert sender.retry_delays == ZOOM_RETRY_GAPS  # Zoom's own


def test_a_retried_delivery_does_not_hold_back_later_events(zoom_sandbox):
    flaky = _Receiver(fail_first=1)
    try:
        state = zoom_sandbox.state
        state.set_webhook(flaky.url, "s")
        owner = state.find_user("owner@sandbox.example")
        first = state.add_meeting(owner["id"])
        second = state.add_meeting(owner["id"])
        zoom_sandbox.webhooks.hold()  # both queued before the first attempt, whatever the load
        state.start_meeting(first["id"])
        state.start_meeting(second["id"])
        zoom_sandbox.webhooks.release()
        assert zoom_sandbox.webhooks.wait_idle(5)
    finally:
        flaky.close()

    ids = [json.loads(body)["payload"]["object"]["id"] for _, body in flaky.received]
    # first (refused), second, then first again: out of order, as Zoom's retries arrive
    assert ids == [str(first["id"]), str(second["id"]), str(first["id"])]


def test_held_deliveries_arrive_late_and_in_the_order_asked(zoom_sandbox, receiver):
    state = zoom_sandbox.state
    state.set_webhook(receiver.url, "s")
    owner = state.find_user("owner@sandbox.example")
    meeting = state.add_meeting(owner["id"])
    control = f"{zoom_sandbox.url}/_sandbox/webhook"
    requests.post(control + "/hold", timeout=TIMEOUT).raise_for_status()

    state.start_meeting(meeting["id"])
    state.advance_clock(1)
    state.end_meeting(meeting["id"])
    time.sleep(0.3)
    assert receiver.received == []  # held
    released = requests.post(control + "/release", json={"order": "reverse"}, timeout=TIMEOUT)
    assert zoom_sandbox.webhooks.wait_idle(5)

    assert released.json() == {"released": 2}
    events = [json.loads(body) for _, body in receiver.received]
    assert [e["event"] for e in events] == ["meeting.ended", "meeting.started"]
    assert events[0]["event_ts"] > events[1]["event_ts"]


def test_a_lost_answer_makes_zoom_send_the_same_request_again(zoom_sandbox, receiver):
    state = zoom_sandbox.state
    state.set_webhook(receiver.url, "s")
    control = f"{zoom_sandbox.url}/_sandbox/webhook/faults"
    requests.post(control, json={"lose_answers": 1}, timeout=TIMEOUT).raise_for_status()

    state.start_meeting(state.add_meeting(state.find_user("owner@sandbox.example")["id"])["id"])
    assert zoom_sandbox.webhooks.wait_idle(5)

    signed = [
        (h["x-zm-request-timestamp"], h["x-zm-signature"], body) for h, body in receiver.received
    ]
    assert len(signed) == 2 and signed[0] == signed[1]
    assert state.webhook_deliveries[0]["ok"] is True
