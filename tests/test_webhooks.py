"""Zoom's webhooks: signed exactly as Zoom signs, stored once, applied in order, queued fast."""

import hashlib
import hmac
import json
import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.urls import reverse

from meetings import webhooks
from meetings.models import (
    LiveStreamStatus,
    Meeting,
    MeetingStatus,
    WebhookEvent,
    Webinar,
    ZoomAccount,
)
from meetings.tasks.mirror import process_pending_webhook_events, process_webhook_event

SECRET = "test-webhook-secret"
ZOOM_ACCOUNT_ID = "acct-1"
URL = "/webhooks/zoom/"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def webhook_secret(settings):
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = SECRET


@pytest.fixture
def account():
    return ZoomAccount.objects.create(
        name="Acme", kind="server_to_server", client_id="cid", zoom_account_id=ZOOM_ACCOUNT_ID
    )


def zoom_signature(secret, timestamp, body):
    """Computed here from Zoom's documentation, independently of meetings.webhooks.sign."""
    message = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def deliver(client, envelope, *, secret=SECRET, timestamp=None, signature=None, body=None):
    body = body if body is not None else json.dumps(envelope).encode()
    timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
    headers = {"HTTP_X_ZM_REQUEST_TIMESTAMP": timestamp}
    signature = signature if signature is not None else zoom_signature(secret, timestamp, body)
    if signature:
        headers["HTTP_X_ZM_SIGNATURE"] = signature
    return client.post(URL, data=body, content_type="application/json", **headers)


def event(name, meeting_id=85746065432, *, ts=None, uuid="4444AAAiAAAAAiAiAiiAii==", **extra):
    obj = {
        "id": meeting_id,
        "uuid": uuid,
        "host_id": "z8yCxjabcdEFGHfp8uQ",
        "topic": "Quarterly all-hands",
        "type": 2,
        "start_time": "2026-11-20T10:00:00Z",
        "timezone": "Europe/London",
        "duration": 60,
        **extra,
    }
    return {
        "event": name,
        "event_ts": ts if ts is not None else int(time.time() * 1000),
        "payload": {"account_id": ZOOM_ACCOUNT_ID, "object": obj},
    }


def stored_and_applied(client, django_capture_on_commit_callbacks, envelope):
    """Deliver, check it was accepted, and run the queued processing as the worker would."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = deliver(client, envelope)
    assert response.status_code == 200, response.content
    assert len(callbacks) == 1  # exactly one processing task queued, after the commit
    stored = WebhookEvent.objects.latest("pk")
    assert process_webhook_event(stored.pk) is True
    stored.refresh_from_db()
    return stored


# --- The endpoint and its signature -----------------------------------------------------------


def test_the_endpoint_is_routed_by_name():
    assert reverse("zoom-webhook") == URL


def test_url_validation_is_answered_with_the_hmac_of_the_plain_token(client):
    envelope = {
        "event": "endpoint.url_validation",
        "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
    }

    response = deliver(client, envelope)

    assert response.status_code == 200
    expected = hmac.new(SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert response.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
    assert not WebhookEvent.objects.exists()


def test_a_signed_event_is_stored_and_answered_in_milliseconds(client, account):
    # Warm up the URL resolver and the database connection, as a running server would be.
    deliver(client, event("meeting.started", 1))
    started = time.perf_counter()

    response = deliver(client, event("meeting.started", 2))

    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    stored = WebhookEvent.objects.get(object_id=2)
    assert stored.event == "meeting.started"
    assert stored.account == account
    assert stored.processed_at is None  # queued, not done in the request
    # Generous for a shared 2-core machine; the work itself is one INSERT.
    assert elapsed < 0.25, f"took {elapsed * 1000:.0f} ms"


def test_a_wrong_signature_is_refused_and_nothing_is_stored(client, account):
    response = deliver(client, event("meeting.started"), signature="v0=" + "0" * 64)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_signature_made_with_another_secret_is_refused(client, account):
    response = deliver(client, event("meeting.started"), secret="not-the-secret")

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_body_changed_after_signing_is_refused(client, account):
    timestamp = str(int(time.time()))
    signed = json.dumps(event("meeting.started", 1)).encode()
    tampered = json.dumps(event("meeting.deleted", 1)).encode()

    response = deliver(
        client,
        None,
        body=tampered,
        timestamp=timestamp,
        signature=zoom_signature(SECRET, timestamp, signed),
    )

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("missing", ["signature", "timestamp", "both"])
def test_missing_signature_headers_are_refused(client, account, missing):
    body = json.dumps(event("meeting.started")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "HTTP_X_ZM_REQUEST_TIMESTAMP": timestamp,
        "HTTP_X_ZM_SIGNATURE": zoom_signature(SECRET, timestamp, body),
    }
    if missing in ("signature", "both"):
        del headers["HTTP_X_ZM_SIGNATURE"]
    if missing in ("timestamp", "both"):
        del headers["HTTP_X_ZM_REQUEST_TIMESTAMP"]

    response = client.post(URL, data=body, content_type="application/json", **headers)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("offset", [-95 * 60 - 10, -6 * 3600, 301, 86400])
def test_a_timestamp_older_than_zooms_retries_or_ahead_of_our_clock_is_refused(
    client, account, offset
):
    # Correctly signed, but older than Zoom's last retry (85 min) plus skew, or from the future.
    # Rounded up, not down: int() took up to a second off, and 301 s ahead became 300 (allowed)
    # when the request reached the view in the next second (a run on a busy machine).
    response = deliver(client, event("meeting.started"), timestamp=math.ceil(time.time()) + offset)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("offset", [-290, 290, -3600, -85 * 60, -95 * 60 + 10])
def test_a_timestamp_within_zooms_retry_schedule_is_accepted(client, account, offset):
    response = deliver(client, event("meeting.started"), timestamp=int(time.time()) + offset)

    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 1


@pytest.mark.parametrize("timestamp", ["abc", "1e9", "-5", " 1700000000", "9" * 40])
def test_a_timestamp_that_is_not_a_number_is_refused(client, account, timestamp):
    response = deliver(client, event("meeting.started"), timestamp=timestamp)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_without_a_secret_every_event_is_refused(client, account, settings):
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = ""
    # Signed with an empty key, the way a careless receiver would accept it.
    response = deliver(client, event("meeting.started"), secret="")
    validation = deliver(
        client, {"event": "endpoint.url_validation", "payload": {"plainToken": "abc"}}, secret=""
    )

    assert response.status_code == 401
    assert validation.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


@pytest.mark.parametrize(
    "body", [b"not json", b"\xff\xfe", b"[1, 2]", b'{"payload": {}}', b'{"event": 5}']
)
def test_a_signed_body_that_is_not_a_zoom_event_is_a_clear_400(client, account, body):
    response = deliver(client, None, body=body)

    assert response.status_code == 400
    assert "error" in response.json()
    assert not WebhookEvent.objects.exists()


def test_a_signed_but_absurdly_nested_body_is_a_clear_400(client, account):
    body = b"[" * 100_000 + b"]" * 100_000

    response = deliver(client, None, body=body)

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_an_oversized_body_is_refused_before_anything_is_stored(client, account):
    envelope = event("meeting.started", padding="x" * (webhooks.MAX_BODY_BYTES + 1))

    response = deliver(client, envelope)

    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


def test_url_validation_without_a_plain_token_is_a_clear_400(client):
    response = deliver(client, {"event": "endpoint.url_validation", "payload": {}})

    assert response.status_code == 400


# --- Storing ------------------------------------------------------------------------------------


def test_the_same_delivery_twice_is_stored_once_and_queued_once(
    client, account, django_capture_on_commit_callbacks
):
    envelope = event("meeting.started")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = deliver(client, envelope, timestamp=int(time.time()) - 10)
        # Zoom's retry: the same event, signed again at a later time.
        again = deliver(client, envelope)

    assert first.json() == {"status": "accepted"}
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert WebhookEvent.objects.count() == 1
    assert len(callbacks) == 1


def test_the_stream_key_is_removed_from_the_stored_payload(client, account):
    envelope = event(
        "meeting.live_streaming_started",
        live_streaming={
            "service": "Custom_Live_Streaming_Service",
            "custom_live_streaming_settings": {
                "stream_url": "rtmp://live.example.com/app",
                "stream_key": "sk-very-secret-123",
                "page_url": "https://example.com/live",
                "resolution": "720p",
            },
            "date_time": "2026-11-20T10:01:00Z",
        },
    )

    deliver(client, envelope)

    stored = WebhookEvent.objects.get()
    settings = stored.payload["payload"]["object"]["live_streaming"][
        "custom_live_streaming_settings"
    ]
    assert "stream_key" not in settings
    assert settings["stream_url"] == "rtmp://live.example.com/app"
    assert "sk-very-secret-123" not in json.dumps(stored.payload)


@pytest.mark.parametrize("given", [85746065432, "85746065432"])
def test_ids_as_numbers_or_strings_are_stored_as_numbers(client, account, given):
    deliver(client, event("meeting.started", given))

    assert WebhookEvent.objects.get().object_id == 85746065432


def test_a_64_bit_id_survives(client, account, django_capture_on_commit_callbacks):
    big = 2**63 - 1
    stored = stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.started", str(big))
    )

    assert stored.object_id == big
    assert Meeting.objects.get(zoom_id=big).status == MeetingStatus.STARTED


def test_an_event_from_an_unknown_zoom_account_is_stored_and_noted(
    client, django_capture_on_commit_callbacks
):
    stored = stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.started")
    )

    assert stored.account is None
    assert stored.processed_at is not None
    assert "no connected Zoom account" in stored.error
    assert not Meeting.objects.exists()


def test_an_event_type_the_mirror_does_not_follow_is_kept_and_noted(
    client, account, django_capture_on_commit_callbacks
):
    stored = stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.participant_joined")
    )

    assert stored.processed_at is not None
    assert "not one the mirror follows" in stored.error
    assert not Meeting.objects.exists()


# --- Applying -------------------------------------------------------------------------------------


def test_an_event_for_an_unknown_meeting_creates_it(
    client, account, django_capture_on_commit_callbacks
):
    stored_and_applied(client, django_capture_on_commit_callbacks, event("meeting.started"))

    meeting = Meeting.objects.get(account=account, zoom_id=85746065432)
    assert meeting.status == MeetingStatus.STARTED
    assert meeting.uuid == "4444AAAiAAAAAiAiAiiAii=="
    assert meeting.topic == "Quarterly all-hands"
    assert meeting.host_id == "z8yCxjabcdEFGHfp8uQ"
    assert meeting.start_time == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert meeting.timezone == "Europe/London"
    assert meeting.duration == 60


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("meeting.started", MeetingStatus.STARTED),
        ("meeting.ended", MeetingStatus.ENDED),
        ("meeting.deleted", MeetingStatus.DELETED),
        ("meeting.recovered", MeetingStatus.WAITING),
    ],
)
def test_meeting_events_set_the_meeting_status(
    client, account, django_capture_on_commit_callbacks, monkeypatch, name, status
):
    monkeypatch.setattr(webhooks, "_request_past_meeting_fetch", lambda *a: None)
    Meeting.objects.create(account=account, zoom_id=85746065432, topic="Existing")

    stored_and_applied(client, django_capture_on_commit_callbacks, event(name))

    meeting = Meeting.objects.get()
    assert meeting.status == status
    assert meeting.topic == "Quarterly all-hands"  # the event carries Zoom's current topic


def test_deleting_one_occurrence_does_not_delete_the_meeting(
    client, account, django_capture_on_commit_callbacks
):
    Meeting.objects.create(account=account, zoom_id=85746065432, type=8)

    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event("meeting.deleted", occurrences=[{"occurrence_id": "1648194360000"}]),
    )

    assert Meeting.objects.get().status == MeetingStatus.WAITING


def test_live_streaming_events_set_the_live_stream_status_and_its_settings(
    client, account, django_capture_on_commit_callbacks
):
    Meeting.objects.create(account=account, zoom_id=85746065432, status=MeetingStatus.STARTED)
    live = {
        "service": "Custom_Live_Streaming_Service",
        "custom_live_streaming_settings": {
            "stream_url": "rtmp://live.example.com/app",
            "stream_key": "sk-very-secret-123",
            "page_url": "https://example.com/live",
            "resolution": "1080p",
        },
    }
    now_ms = int(time.time() * 1000)

    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event("meeting.live_streaming_started", ts=now_ms, live_streaming=live),
    )
    meeting = Meeting.objects.get()
    assert meeting.livestream_status == LiveStreamStatus.LIVE
    assert meeting.stream_url == "rtmp://live.example.com/app"
    assert meeting.page_url == "https://example.com/live"
    assert meeting.resolution == "1080p"
    assert meeting.stream_key == ""  # the key never comes from a webhook

    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event("meeting.live_streaming_stopped", ts=now_ms + 1000, live_streaming=live),
    )
    meeting.refresh_from_db()
    assert meeting.livestream_status == LiveStreamStatus.STOPPED
    assert meeting.status == MeetingStatus.STARTED


def test_a_late_live_stream_event_brings_back_neither_its_status_nor_its_settings(account):
    from meetings import mirror

    meeting = Meeting.objects.create(account=account, zoom_id=1, status=MeetingStatus.STARTED)
    now = datetime.now(UTC)
    mirror.record_livestream(meeting, config={"stream_url": "rtmp://new/app"}, at=now)
    mirror.record_livestream(meeting, status="stopped", at=now)

    mirror.record_livestream(
        meeting, status="live", config={"stream_url": "rtmp://old/app"}, at=now - timedelta(1)
    )

    meeting.refresh_from_db()
    assert (meeting.livestream_status, meeting.stream_url) == ("stopped", "rtmp://new/app")


def test_a_live_stream_event_for_an_unknown_meeting_creates_it_live(
    client, account, django_capture_on_commit_callbacks
):
    stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.live_streaming_started")
    )

    meeting = Meeting.objects.get()
    assert meeting.status == MeetingStatus.STARTED
    assert meeting.livestream_status == LiveStreamStatus.LIVE


def test_a_meeting_that_ends_stops_its_live_stream(
    client, account, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(webhooks, "_request_past_meeting_fetch", lambda *a: None)
    Meeting.objects.create(
        account=account,
        zoom_id=85746065432,
        status=MeetingStatus.STARTED,
        livestream_status=LiveStreamStatus.LIVE,
    )

    stored_and_applied(client, django_capture_on_commit_callbacks, event("meeting.ended"))

    meeting = Meeting.objects.get()
    assert (meeting.status, meeting.livestream_status) == ("ended", "stopped")


@pytest.mark.parametrize(
    ("name", "status"),
    [("webinar.started", MeetingStatus.STARTED), ("webinar.ended", MeetingStatus.ENDED)],
)
def test_webinar_events_set_the_webinar_status(
    client, account, django_capture_on_commit_callbacks, name, status
):
    stored_and_applied(client, django_capture_on_commit_callbacks, event(name, "94567123456"))

    webinar = Webinar.objects.get(account=account, zoom_id=94567123456)
    assert webinar.status == status
    assert not Meeting.objects.exists()


def updated(name, zoom_id, *, ts=None, old=None, **changed):
    """A settings update as Zoom sends it: the object has the id, uuid and what changed."""
    return {
        "event": name,
        "event_ts": ts if ts is not None else int(time.time() * 1000),
        "payload": {
            "account_id": ZOOM_ACCOUNT_ID,
            "operator": "host@example.com",
            "operation": "all",
            "object": {"id": zoom_id, "uuid": "4444AAAiAAAAAiAiAiiAii==", **changed},
            "old_object": {"id": zoom_id, "uuid": "4444AAAiAAAAAiAiAiiAii==", **(old or {})},
        },
    }


def test_a_meeting_updated_in_zoom_gets_its_new_topic_and_schedule_and_keeps_its_status(
    client, account, django_capture_on_commit_callbacks
):
    started = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    heard = datetime(2026, 11, 20, 10, 1, tzinfo=UTC)
    Meeting.objects.create(
        account=account,
        zoom_id=85746065432,
        topic="Board meeting",
        status=MeetingStatus.STARTED,
        start_time=started,
        duration=60,
        last_event_at=heard,
    )

    stored = stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        updated(
            "meeting.updated",
            85746065432,
            topic="Board meeting (moved)",
            start_time="2026-11-21T15:30:00Z",
            duration=90,
            old={"topic": "Board meeting", "start_time": "2026-11-20T10:00:00Z", "duration": 60},
        ),
    )

    assert stored.error == ""
    meeting = Meeting.objects.get()
    assert meeting.topic == "Board meeting (moved)"
    # an update's start_time is the new schedule (a status event's is when the instance began)
    assert meeting.start_time == datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
    assert meeting.duration == 90
    assert meeting.status == MeetingStatus.STARTED
    # status reports stay ordered among themselves: a meeting.started sent before the update
    # but delivered after it is not taken for a stale one
    assert meeting.last_event_at == heard


def test_a_webinar_updated_in_zoom_gets_its_new_topic(
    client, account, django_capture_on_commit_callbacks
):
    Webinar.objects.create(account=account, zoom_id=94567123456, topic="Investor day")

    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        updated("webinar.updated", "94567123456", topic="Investor day 2026"),
    )

    assert Webinar.objects.get().topic == "Investor day 2026"
    assert not Meeting.objects.exists()


def test_an_update_sent_before_the_one_applied_changes_nothing(
    client, account, django_capture_on_commit_callbacks
):
    Meeting.objects.create(account=account, zoom_id=85746065432, topic="Weekly")
    now_ms = int(time.time() * 1000)
    # Zoom sent two renames a minute apart; the second arrives first.
    newer = stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        updated("meeting.updated", 85746065432, ts=now_ms, topic="Weekly (final name)"),
    )
    older = stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        updated("meeting.updated", 85746065432, ts=now_ms - 60_000, topic="Weekly (draft)"),
    )

    assert newer.error == ""
    assert "before the one already applied" in older.error
    meeting = Meeting.objects.get()
    assert meeting.topic == "Weekly (final name)"
    assert meeting.details_event_at == datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    # and a later update still applies
    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        updated("meeting.updated", 85746065432, ts=now_ms + 1_000, topic="Weekly (renamed again)"),
    )
    assert Meeting.objects.get().topic == "Weekly (renamed again)"


def test_a_meeting_scheduled_in_zoom_is_mirrored_at_once_with_its_settings(
    client, account, django_capture_on_commit_callbacks
):
    sent_ms = int(time.time() * 1000)

    stored = stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event(
            "meeting.created",
            85746065777,
            ts=sent_ms,
            topic="Budget review",
            start_time="2026-12-10T14:00:00Z",
            duration=45,
            join_url="https://example.zoom.us/j/85746065777",
        ),
    )

    assert stored.error == ""
    meeting = Meeting.objects.get(account=account, zoom_id=85746065777)
    sent = datetime.fromtimestamp(sent_ms / 1000, tz=UTC)
    assert (meeting.topic, meeting.status, meeting.duration) == ("Budget review", "waiting", 45)
    assert meeting.start_time == datetime(2026, 12, 10, 14, 0, tzinfo=UTC)
    assert meeting.timezone == "Europe/London"
    assert meeting.join_url == "https://example.zoom.us/j/85746065777"
    assert meeting.last_event_at == meeting.details_event_at == sent
    # Zoom's event names the host by id; the mirror knows nobody by that id yet
    assert (meeting.host_id, meeting.host_email) == ("z8yCxjabcdEFGHfp8uQ", "")


def test_a_meeting_an_event_brings_shows_its_host_s_address_when_the_mirror_knows_it(
    client, account, django_capture_on_commit_callbacks
):
    Webinar.objects.create(
        account=account, zoom_id=94567123456, host_id="z8yCxjabcdEFGHfp8uQ", host_email="h@x.org"
    )

    stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.created", 85746065777)
    )
    stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.started", 85746065778)
    )

    assert list(Meeting.objects.order_by("zoom_id").values_list("host_email", flat=True)) == [
        "h@x.org",
        "h@x.org",
    ]


def test_a_created_event_after_a_sync_brought_the_meeting_changes_its_settings_not_its_status(
    client, account, django_capture_on_commit_callbacks
):
    Meeting.objects.create(
        account=account, zoom_id=85746065777, topic="Budget", status=MeetingStatus.STARTED
    )

    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event("meeting.created", 85746065777, topic="Budget review"),
    )

    meeting = Meeting.objects.get()
    assert (meeting.topic, meeting.status) == ("Budget review", MeetingStatus.STARTED)


def test_a_webinar_scheduled_deleted_and_recovered_in_zoom_is_followed(
    client, account, django_capture_on_commit_callbacks
):
    sent_ms = int(time.time() * 1000)
    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event("webinar.created", 94567123999, ts=sent_ms - 3000, topic="Launch", type=5),
    )
    webinar = Webinar.objects.get(account=account, zoom_id=94567123999)
    assert (webinar.topic, webinar.type, webinar.status) == ("Launch", 5, "waiting")
    assert not Meeting.objects.exists()

    # deleting one occurrence of it is not deleting it
    one = stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event(
            "webinar.deleted",
            94567123999,
            ts=sent_ms - 2000,
            occurrences=[{"occurrence_id": "1648194360000"}],
        ),
    )
    assert Webinar.objects.get().status == "waiting", one.error
    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event("webinar.deleted", 94567123999, ts=sent_ms - 1000),
    )
    assert Webinar.objects.get().status == MeetingStatus.DELETED
    stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        event("webinar.recovered", 94567123999, ts=sent_ms),
    )
    assert Webinar.objects.get().status == MeetingStatus.WAITING


def test_an_update_of_an_unknown_meeting_or_of_one_occurrence_is_noted_not_applied(
    client, account, django_capture_on_commit_callbacks
):
    unknown = stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        updated("meeting.updated", 85746065499, topic="Never synced"),
    )
    Meeting.objects.create(account=account, zoom_id=85746065432, topic="Weekly", type=8)
    occurrence = stored_and_applied(
        client,
        django_capture_on_commit_callbacks,
        updated(
            "meeting.updated",
            85746065432,
            topic="Weekly (this week only)",
            occurrences=[{"occurrence_id": "1648194360000"}],
        ),
    )

    # an update carries only what changed: an unknown meeting is left to the next sync
    assert "not in the mirror yet" in unknown.error
    assert not Meeting.objects.filter(zoom_id=85746065499).exists()
    assert "one occurrence" in occurrence.error
    assert Meeting.objects.get().topic == "Weekly"


def test_an_older_event_arriving_late_does_not_overwrite_a_newer_state(
    client, account, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(webhooks, "_request_past_meeting_fetch", lambda *a: None)
    now_ms = int(time.time() * 1000)
    # Zoom sent started then ended; the ended one arrives first.
    stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.ended", ts=now_ms)
    )
    stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.started", ts=now_ms - 60_000)
    )

    meeting = Meeting.objects.get()
    assert meeting.status == MeetingStatus.ENDED
    assert meeting.last_event_at == datetime.fromtimestamp(now_ms / 1000, tz=UTC)


def test_the_same_event_processed_twice_changes_the_mirror_once(
    client, account, django_capture_on_commit_callbacks, django_assert_num_queries
):
    stored = stored_and_applied(
        client, django_capture_on_commit_callbacks, event("meeting.started")
    )
    first_processed_at = stored.processed_at

    # A redelivered task message (acks_late after a worker died): one SELECT, nothing written.
    with django_assert_num_queries(3):  # savepoint, SELECT ... FOR UPDATE, release
        assert process_webhook_event(stored.pk) is False

    stored.refresh_from_db()
    assert stored.processed_at == first_processed_at
    assert Meeting.objects.count() == 1


def test_processing_a_vanished_event_does_nothing():
    assert process_webhook_event(987654) is False


def test_meeting_ended_asks_the_pipeline_to_fetch_that_instances_details_a_little_later(
    client, account, django_capture_on_commit_callbacks, monkeypatch, settings
):
    from meetings.models import Action

    settings.PAST_MEETING_FETCH_DELAY_SECONDS = 20
    asked, sent = [], []

    def request_action(**kwargs):
        asked.append(kwargs)
        return Action(pk=4242), True

    monkeypatch.setattr("meetings.actions.request_action", request_action)
    monkeypatch.setattr(
        "meetings.actions.enqueue_actions", lambda ids, countdown: sent.append((ids, countdown))
    )
    with django_capture_on_commit_callbacks(execute=False):
        deliver(client, event("meeting.ended"))
    stored = WebhookEvent.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        assert process_webhook_event(stored.pk)

    # sent after the commit, with a countdown: Zoom says "not ended" (3001) for a while
    assert sent == [([4242], 20)]
    assert len(asked) == 1
    assert asked[0]["enqueue"] is False
    assert asked[0]["account"] == account
    assert asked[0]["kind"] == "fetch_past_meeting"
    assert asked[0]["source"] == "webhook"
    assert asked[0]["target_id"] == 85746065432
    assert asked[0]["target_uuid"] == "4444AAAiAAAAAiAiAiiAii=="


def test_a_failed_application_is_recorded_rolled_back_and_retried_by_the_sweeper(
    client, account, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("pipeline unavailable")

    monkeypatch.setattr("meetings.actions.request_action", broken)
    with django_capture_on_commit_callbacks(execute=False):
        deliver(client, event("meeting.ended"))
    stored = WebhookEvent.objects.get()

    assert process_webhook_event(stored.pk) is False

    stored.refresh_from_db()
    assert stored.processed_at is None
    assert stored.attempts == 1
    assert "pipeline unavailable" in stored.error
    assert not Meeting.objects.exists()  # all or nothing: the status change was rolled back

    # Later the pipeline is back and the sweeper picks the event up.
    monkeypatch.setattr("meetings.actions.request_action", lambda **kwargs: (None, True))
    WebhookEvent.objects.filter(pk=stored.pk).update(
        received_at=stored.received_at - timedelta(minutes=1)
    )
    assert process_pending_webhook_events() == 1
    stored.refresh_from_db()
    assert stored.processed_at is not None
    assert stored.error == ""
    assert Meeting.objects.get().status == MeetingStatus.ENDED


def test_the_sweeper_processes_events_whose_task_was_never_queued(
    client, account, django_capture_on_commit_callbacks
):
    # The broker was down: the event was stored, its task message lost.
    with django_capture_on_commit_callbacks(execute=False):
        deliver(client, event("meeting.started", 1))
        deliver(client, event("meeting.started", 2))
    WebhookEvent.objects.filter(object_id=1).update(
        received_at=datetime.now(UTC) - timedelta(minutes=2)
    )

    # The young one is still on its way through the broker: not the sweeper's yet.
    assert process_pending_webhook_events() == 1

    assert list(Meeting.objects.values_list("zoom_id", flat=True)) == [1]


def test_an_event_that_keeps_failing_is_given_up_after_a_few_attempts(account):
    stored = WebhookEvent.objects.create(
        account=account,
        event="meeting.started",
        zoom_account_id=ZOOM_ACCOUNT_ID,
        dedupe_key="k",
        payload={},
        attempts=5,
        received_at=datetime.now(UTC) - timedelta(hours=1),
    )

    assert process_pending_webhook_events() == 0
    stored.refresh_from_db()
    assert stored.processed_at is None


def test_a_broker_that_is_down_does_not_fail_the_delivery(client, account, monkeypatch):
    def down(*args, **kwargs):
        raise OSError("Connection refused")

    monkeypatch.setattr(process_webhook_event, "delay", down)

    response = deliver(client, event("meeting.started"))

    assert response.status_code == 200
    assert WebhookEvent.objects.get().processed_at is None  # the sweeper's, later


@override_settings(ZOOM_WEBHOOK_SECRET_TOKEN=SECRET)
def test_verify_signature_says_why_without_the_secret():
    body = b"{}"
    reason = webhooks.verify_signature(SECRET, "1700000000", "v0=bad", body, at=1700000000)

    assert reason == "signature does not match"
    assert SECRET not in reason


# --- End to end: the sandbox's own webhooks → this endpoint → a real worker → the mirror ------


def wait_for(condition, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.worker
@pytest.mark.worker_env(PAST_MEETING_FETCH_DELAY_SECONDS="1")
@pytest.mark.django_db(transaction=True)
def test_the_sandboxs_signed_webhooks_drive_the_mirror_end_to_end(
    celery_worker_process, live_server, zoom_sandbox, request
):
    from meetings.models import Action, PastMeeting

    account = request.getfixturevalue("sandbox_account")
    zoom = zoom_sandbox.state
    zoom.set_webhook(live_server.url + URL, secret=SECRET)
    host = zoom.add_user(email="host@sandbox.example")
    meeting = zoom.add_meeting(
        host["id"],
        "Town hall",
        livestream={
            "stream_url": "rtmp://live.example.com/app",
            "stream_key": "sk-e2e-secret-key",
            "page_url": "https://example.com/live",
        },
    )
    zoom_id = meeting["id"]

    def row():
        return Meeting.objects.filter(account=account, zoom_id=zoom_id).first()

    # the host starts the meeting: unknown to the mirror until the event creates it
    zoom.start_meeting(zoom_id)
    wait_for(lambda: row() and row().status == MeetingStatus.STARTED, "meeting.started")
    assert row().topic == "Town hall"
    assert row().uuid == meeting["uuid"]

    zoom.start_livestream(zoom_id)
    wait_for(lambda: row().livestream_status == LiveStreamStatus.LIVE, "live streaming started")
    assert row().stream_url == "rtmp://live.example.com/app"

    # it ends: the stream stops, and the instance's details are fetched through the pipeline
    instance = zoom.end_meeting(zoom_id)
    wait_for(lambda: row().status == MeetingStatus.ENDED, "meeting.ended")
    assert row().livestream_status == LiveStreamStatus.STOPPED
    wait_for(
        lambda: Action.objects.filter(
            kind="fetch_past_meeting", state__in=["succeeded", "failed"]
        ).exists(),
        "past meeting fetch",
    )
    fetch = Action.objects.get(kind="fetch_past_meeting")
    assert (fetch.source, fetch.state, fetch.target_uuid) == (
        "webhook",
        "succeeded",
        instance["uuid"],
    )
    assert PastMeeting.objects.get(uuid=instance["uuid"]).meeting == row()

    zoom.delete_meeting(zoom_id)
    wait_for(lambda: row().status == MeetingStatus.DELETED, "meeting.deleted")
    zoom.recover_meeting(zoom_id)
    wait_for(lambda: row().status == MeetingStatus.WAITING, "meeting.recovered")

    webinar = zoom.add_webinar(host["id"], "Launch")
    zoom.start_webinar(webinar["id"])
    wait_for(
        lambda: Webinar.objects.filter(zoom_id=webinar["id"], status="started").exists(),
        "webinar.started",
    )
    zoom.end_webinar(webinar["id"])
    wait_for(
        lambda: Webinar.objects.filter(zoom_id=webinar["id"], status="ended").exists(),
        "webinar.ended",
    )

    zoom_sandbox.webhooks.wait_idle(timeout=5)
    assert zoom.webhook_deliveries and all(d["ok"] for d in zoom.webhook_deliveries)
    events = WebhookEvent.objects.all()
    assert events.count() == len(zoom.webhook_deliveries) == 8
    wait_for(lambda: not events.filter(processed_at__isnull=True).exists(), "all processed")
    assert not events.exclude(error="").exists()
    assert all("sk-e2e-secret-key" not in json.dumps(e.payload) for e in events)
