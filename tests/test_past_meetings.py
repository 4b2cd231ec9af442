"""Past meeting details: fetched from Zoom (the sandbox, over HTTP), stored once per instance."""

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from meetings.mirror import fetch_past_meeting, store_past_meeting
from meetings.models import Meeting, PastMeeting, ZoomAccount
from meetings.zoom.client import ZoomClient
from meetings.zoom.errors import ZoomBadRequest, ZoomNotFound
from meetings.zoom.sandbox import DEFAULT_ACCOUNT_ID
from meetings.zoom.types import PastMeetingDetails

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return ZoomAccount.objects.create(
        name="Sandbox", kind="server_to_server", client_id="cid", zoom_account_id=DEFAULT_ACCOUNT_ID
    )


@pytest.fixture
def zoom(zoom_sandbox):
    return zoom_sandbox.state


@pytest.fixture
def client(zoom_sandbox, zoom_sandbox_session):
    return ZoomClient(zoom_sandbox_session, zoom_sandbox.api_url, timeout=5)


@pytest.fixture
def host(zoom):
    return zoom.add_user(email="host@sandbox.example", first_name="Hana", last_name="Host")


def past_requests(zoom):
    return [r for r in zoom.requests if r.template == "/past_meetings/{meetingId}"]


def test_the_latest_instance_is_fetched_by_meeting_id_with_all_fourteen_fields(
    account, zoom, client, host
):
    meeting = zoom.add_meeting(host["id"], "Board meeting")
    end = datetime(2026, 11, 2, 11, 0, tzinfo=UTC).timestamp()
    zoom.add_past_instance(meeting["id"], start_time=end - 3600, end_time=end - 1800)
    latest = zoom.add_past_instance(
        meeting["id"], start_time=end - 1200, end_time=end, participants=12
    )
    mirrored = Meeting.objects.create(account=account, zoom_id=meeting["id"], topic="Board")

    past = fetch_past_meeting(account, client, meeting_id=meeting["id"])

    assert past.uuid == latest["uuid"]
    assert past.meeting == mirrored
    assert past.account == account
    assert past.zoom_id == meeting["id"]
    assert past.host_id == host["id"]
    assert past.type == 2
    assert past.topic == "Board meeting"
    assert past.user_name == "Hana Host"
    assert past.user_email == "host@sandbox.example"
    assert past.start_time == datetime(2026, 11, 2, 10, 40, tzinfo=UTC)
    assert past.end_time == datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    assert past.duration == 20
    assert past.total_minutes == 20 * 12
    assert past.participants_count == 12
    assert past.dept == "Operations"
    assert past.source == "Zoom"
    assert past.fetched_at is not None
    assert list(mirrored.past_instances.all()) == [past]


def test_an_instance_is_fetched_by_its_uuid(account, zoom, client, host):
    meeting = zoom.add_meeting(host["id"])
    # A plain UUID (a random one may start with "/" or hold "//": those have their own test).
    older = zoom.add_past_instance(
        meeting["id"], uuid="JbkqFkfqQ0e7+CZluSnc1g==", end_time=zoom.now() - 86400
    )
    zoom.add_past_instance(meeting["id"])

    past = fetch_past_meeting(account, client, uuid=older["uuid"])

    assert past.uuid == older["uuid"]
    assert past.meeting is None  # the mirror has not seen that meeting yet
    # "+", "/" and "=" are in a UUID's alphabet: encoded once in the path
    assert past_requests(zoom)[-1].path == "/v2/past_meetings/" + quote(older["uuid"], safe="")


@pytest.mark.parametrize("slash", ["leading", "double"])
def test_a_uuid_with_a_leading_or_double_slash_is_found_by_double_encoding(
    account, zoom, client, host, slash
):
    meeting = zoom.add_meeting(host["id"])
    instance = zoom.add_past_instance(meeting["id"], slash=slash)
    assert instance["uuid"].startswith("/") or "//" in instance["uuid"]

    past = fetch_past_meeting(account, client, uuid=instance["uuid"])

    assert past.uuid == instance["uuid"]
    assert (
        PastMeeting.objects.get(uuid=instance["uuid"]).participants_count
        == (instance["participants_count"])
    )
    sent = past_requests(zoom)[-1]
    assert sent.status == 200
    assert sent.path == "/v2/past_meetings/" + quote(quote(instance["uuid"], safe=""), safe="")


def test_an_instance_stored_before_its_meeting_is_linked_when_the_meeting_arrives(
    account, zoom, client, host
):
    from meetings.mirror import record_meeting_status
    from meetings.sync import sync_account

    synced = zoom.add_meeting(host["id"])
    by_event = zoom.add_meeting(host["id"])
    for meeting in (synced, by_event):
        zoom.add_past_instance(meeting["id"])
        fetch_past_meeting(account, client, meeting_id=meeting["id"])
    assert not PastMeeting.objects.filter(meeting__isnull=False).exists()

    sync_account(account, client)
    record_meeting_status(account, by_event["id"], "started")

    for meeting in (synced, by_event):
        past = PastMeeting.objects.get(zoom_id=meeting["id"])
        assert past.meeting == Meeting.objects.get(zoom_id=meeting["id"])


def test_fetching_an_instance_again_updates_it_in_place(account, zoom, client, host):
    meeting = zoom.add_meeting(host["id"])
    instance = zoom.add_past_instance(meeting["id"], participants=5)
    first = fetch_past_meeting(account, client, meeting_id=meeting["id"])
    # Zoom's totals settle a while after the meeting ends.
    instance["participants_count"] = 6

    again = fetch_past_meeting(account, client, uuid=instance["uuid"])

    assert again.pk == first.pk
    assert PastMeeting.objects.count() == 1
    assert again.participants_count == 6
    assert again.fetched_at >= first.fetched_at


def test_a_meeting_not_ended_is_said_in_plain_words_and_nothing_is_stored(
    account, zoom, client, host
):
    meeting = zoom.add_meeting(host["id"], status="started")

    with pytest.raises(ZoomNotFound) as failure:
        fetch_past_meeting(account, client, meeting_id=meeting["id"])

    assert failure.value.code == 3001
    assert failure.value.describe() == "Zoom: meeting not found or not ended (3001)"
    assert not PastMeeting.objects.exists()


def test_an_unknown_uuid_is_said_in_plain_words(account, client):
    with pytest.raises(ZoomNotFound) as failure:
        fetch_past_meeting(account, client, uuid="AAAAAAAAAAAAAAAAAAAAAA==")

    assert failure.value.describe() == "Zoom: meeting not found or not ended (3001)"


def test_a_free_account_is_told_past_meetings_are_for_paid_accounts(account, zoom, client, host):
    zoom.set_plan("free")
    meeting = zoom.add_meeting(host["id"])
    zoom.add_past_instance(meeting["id"])

    with pytest.raises(ZoomBadRequest) as failure:
        fetch_past_meeting(account, client, meeting_id=meeting["id"])

    assert failure.value.code == 200
    assert failure.value.describe() == "Zoom: this is only available for paid Zoom accounts (200)"
    assert not PastMeeting.objects.exists()


def test_a_fetch_needs_a_meeting_id_or_a_uuid(account, client):
    with pytest.raises(ValueError, match="meeting id or by instance UUID"):
        fetch_past_meeting(account, client)


def test_storing_is_idempotent_and_clips_what_does_not_fit(account):
    details = PastMeetingDetails(
        uuid="JbkqFkfqQ0e7+CZluSnc1g==",
        id=85746065432,
        host_id="h1",
        type=2,
        topic="T" * 500,  # Zoom allows 200; a column overflow must not lose the record
        user_name="Ann",
        user_email="ann@example.com",
        start_time=datetime(2026, 1, 1, 9, tzinfo=UTC),
        end_time=datetime(2026, 1, 1, 10, tzinfo=UTC),
        duration=60,
        total_minutes=-1,  # nonsense from upstream is "unknown", not a crash
        participants_count=3,
        dept="",
        source="Zoom",
    )

    first = store_past_meeting(account, details)
    second = store_past_meeting(account, details)

    assert first.pk == second.pk
    assert PastMeeting.objects.count() == 1
    assert len(second.topic) == 300
    assert second.total_minutes is None


# --- Through the action pipeline (what the meeting page's button and meeting.ended use) ---------


def test_a_meeting_ended_event_fetches_that_instance_through_the_pipeline(
    sandbox_account,
    sandbox_host,
    zoom_sandbox,
    client,
    django_capture_on_commit_callbacks,
    settings,
):
    import json
    import time

    from django.test import Client

    from meetings.actions import execute
    from meetings.models import Action, ActionState, WebhookEvent
    from meetings.tasks.mirror import process_webhook_event
    from meetings.webhooks import sign

    zoom = zoom_sandbox.state
    meeting = zoom.add_meeting(sandbox_host["id"], "All hands", status="started")
    instance = zoom.end_meeting(meeting["id"])
    body = json.dumps(
        {
            "event": "meeting.ended",
            "event_ts": int(time.time() * 1000),
            "payload": {
                "account_id": DEFAULT_ACCOUNT_ID,
                "object": {
                    "id": str(meeting["id"]),
                    "uuid": instance["uuid"],
                    "topic": "All hands",
                },
            },
        }
    ).encode()
    timestamp = str(int(time.time()))
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = "s3cret"
    with django_capture_on_commit_callbacks(execute=False):
        response = Client().post(
            "/webhooks/zoom/",
            data=body,
            content_type="application/json",
            HTTP_X_ZM_REQUEST_TIMESTAMP=timestamp,
            HTTP_X_ZM_SIGNATURE=sign("s3cret", timestamp, body),
        )
    assert response.status_code == 200
    with django_capture_on_commit_callbacks(execute=False):
        process_webhook_event(WebhookEvent.objects.get().pk)

    action = Action.objects.get(kind="fetch_past_meeting")
    assert (action.source, action.target_id, action.target_uuid) == (
        "webhook",
        meeting["id"],
        instance["uuid"],
    )
    assert execute(action.pk) == ActionState.SUCCEEDED
    past = PastMeeting.objects.get(uuid=instance["uuid"])
    assert past.meeting == Meeting.objects.get(zoom_id=meeting["id"])
    assert past.topic == "All hands"
    # the summary says the time as the pages do ("Sun 6 Dec 2026, 22:58"), not in ISO
    action.refresh_from_db()
    when = past.start_time.astimezone(UTC)
    assert action.result_summary.startswith(
        f"Past meeting of {when:%a} {when.day} {when:%b %Y, %H:%M} UTC fetched"
    )


@pytest.mark.parametrize(
    ("plan", "started", "words"),
    [
        ("pro", True, "Zoom: meeting not found or not ended (3001)"),
        ("free", False, "Zoom: this is only available for paid Zoom accounts (200)"),
    ],
)
def test_a_refused_fetch_is_recorded_in_plain_words(
    sandbox_account, sandbox_host, zoom_sandbox, plan, started, words
):
    from meetings.actions import execute, request_action
    from meetings.models import ActionState

    zoom = zoom_sandbox.state
    zoom.set_plan(plan)
    meeting = zoom.add_meeting(sandbox_host["id"], status="started" if started else "waiting")
    if not started:
        zoom.add_past_instance(meeting["id"])
    action, _ = request_action(
        account=sandbox_account,
        kind="fetch_past_meeting",
        source="dashboard",
        target_id=meeting["id"],
        enqueue=False,
    )

    assert execute(action.pk) == ActionState.FAILED

    action.refresh_from_db()
    assert action.result_summary == words
    assert action.attempts_count == 1  # a 4xx is not retried
    assert not PastMeeting.objects.exists()


# --- participants, on demand ------------------------------------------------------------------


def test_participants_are_fetched_on_demand_as_an_audited_action_and_shown_paged(
    sandbox_account, sandbox_host, zoom_sandbox, operator, settings
):
    from django.test import Client
    from django.urls import reverse

    from meetings.actions import execute
    from meetings.models import Action, ActionState

    zoom = zoom_sandbox.state
    meeting = zoom.add_meeting(sandbox_host["id"], "All hands")
    instance = zoom.add_past_instance(meeting["id"], participants=55)
    store_past_meeting(
        sandbox_account,
        PastMeetingDetails.from_json(
            {**instance, "start_time": None, "end_time": None, "id": meeting["id"]}
        ),
    )
    past = PastMeeting.objects.get(uuid=instance["uuid"])
    browser = Client()
    browser.force_login(operator)
    assert (
        "Not fetched yet" in browser.get(reverse("past-meeting", args=[past.pk])).content.decode()
    )

    # when the operator asks for them
    browser.post(reverse("past-meeting-participants", args=[past.pk]))

    # then it is an Action, like the details, and its run stores Zoom's list
    action = Action.objects.get(kind="fetch_participants")
    assert (action.requested_by, action.target_uuid) == (operator, instance["uuid"])
    assert execute(action.pk) == ActionState.SUCCEEDED
    action.refresh_from_db()
    assert action.result_summary == "55 participants fetched"
    assert action.attempts.get().operation == "pastMeetingParticipants"
    assert past.participants.count() == 55

    page = browser.get(reverse("past-meeting", args=[past.pk])).content.decode()
    assert "1–50 of 55" in page
    assert sandbox_host["email"].split("@")[0] in page  # the host, first in Zoom's list
    assert "joined without signing in" in page
    assert "Fetch the participants again" in page
    assert zoom_sandbox.take_contract_violations() == []


def test_participants_of_a_one_person_meeting_say_zoom_lists_none(account, zoom, client, host):
    meeting = zoom.add_meeting(host["id"])
    instance = zoom.add_past_instance(meeting["id"], participants=1)
    past = fetch_past_meeting(account, client, uuid=instance["uuid"])

    people = list(client.list_past_participants(instance["uuid"]))
    from meetings.mirror import store_past_participants

    store_past_participants(account, instance["uuid"], people)

    past.refresh_from_db()
    assert past.participants_fetched_at is not None
    assert past.participants.count() == 0
