"""A meeting handed to another host in Zoom shows the new host's address at once (issue 11):
Zoom's meeting.updated names the host by id only."""

import time

import pytest

from meetings import webhooks
from meetings.hosts import fill_in_host_email
from meetings.models import Meeting, ZoomUser
from tests.waiting import wait_until

SECRET = "host-test-webhook-secret"
URL = "/webhooks/zoom/"


def meeting_updated(account, zoom_id, **obj):
    """meeting.updated as Zoom sends it, stored and applied as the webhook task does."""
    envelope = {
        "event": "meeting.updated",
        "event_ts": int(time.time() * 1000),
        "payload": {
            "account_id": account.zoom_account_id,
            "object": {"id": zoom_id, **obj},
        },
    }
    stored, created = webhooks.store_event(envelope)
    assert created
    assert webhooks.process_event(stored.pk)
    return stored


@pytest.fixture
def old_host_meeting(sandbox_account, zoom_sandbox):
    zoom = zoom_sandbox.state
    old = zoom.add_user(email="old-host@sandbox.example")
    meeting = zoom.add_meeting(old["id"], "Handed over")
    row = Meeting.objects.create(
        account=sandbox_account,
        zoom_id=meeting["id"],
        host_id=old["id"],
        host_email=old["email"],
        topic="Handed over",
    )
    return meeting, row


def test_a_new_host_the_mirror_knows_shows_their_address_without_asking_zoom(
    sandbox_account, zoom_sandbox, old_host_meeting
):
    zoom = zoom_sandbox.state
    meeting, row = old_host_meeting
    new = zoom.add_user(email="known-host@sandbox.example")
    ZoomUser.objects.create(account=sandbox_account, zoom_user_id=new["id"], email=new["email"])
    since = zoom.request_seq

    event = meeting_updated(sandbox_account, meeting["id"], host_id=new["id"])
    filled = fill_in_host_email(event.pk)

    row.refresh_from_db()
    assert (row.host_id, row.host_email) == (new["id"], "known-host@sandbox.example")
    assert filled == 0
    assert zoom.requests_since(since) == []


def test_a_new_host_the_mirror_does_not_know_is_fetched_from_zoom(
    sandbox_account, zoom_sandbox, old_host_meeting
):
    zoom = zoom_sandbox.state
    meeting, row = old_host_meeting
    new = zoom.add_user(email="new-host@sandbox.example")
    since = zoom.request_seq

    event = meeting_updated(sandbox_account, meeting["id"], host_id=new["id"])
    row.refresh_from_db()
    # the old host's address is not left beside the new host's id
    assert (row.host_id, row.host_email) == (new["id"], "")

    assert fill_in_host_email(event.pk) == 1

    row.refresh_from_db()
    assert row.host_email == "new-host@sandbox.example"
    asked = [(r.method, r.path) for r in zoom.requests_since(since) if r.path.startswith("/v2")]
    assert asked == [("GET", f"/v2/users/{new['id']}")]
    assert ZoomUser.objects.get(zoom_user_id=new["id"]).email == "new-host@sandbox.example"
    # known now: a second event about that host asks Zoom nothing
    since = zoom.request_seq
    assert fill_in_host_email(event.pk) == 0
    assert zoom.requests_since(since) == []


def test_a_host_zoom_cannot_find_leaves_the_address_empty_and_the_event_applied(
    sandbox_account, zoom_sandbox, old_host_meeting
):
    meeting, row = old_host_meeting

    event = meeting_updated(sandbox_account, meeting["id"], host_id="gone0000000000000000AA")

    assert fill_in_host_email(event.pk) == 0
    row.refresh_from_db()
    assert (row.host_id, row.host_email) == ("gone0000000000000000AA", "")
    event.refresh_from_db()
    assert event.error == ""


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_meeting_handed_in_zoom_to_an_unknown_host_shows_that_hosts_address(
    celery_worker_process, live_server, zoom_sandbox, request, settings
):
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = SECRET
    account = request.getfixturevalue("sandbox_account")
    zoom = zoom_sandbox.state
    zoom.set_webhook(live_server.url + URL, secret=SECRET)
    old = zoom.add_user(email="old-host@sandbox.example")
    meeting = zoom.add_meeting(old["id"], "Board prep")
    Meeting.objects.create(
        account=account,
        zoom_id=meeting["id"],
        host_id=old["id"],
        host_email=old["email"],
        topic="Board prep",
    )
    new = zoom.add_user(email="new-host@sandbox.example")

    # in Zoom's web portal the meeting is handed to the new host: meeting.updated names them
    zoom.update_meeting(meeting["id"], host_id=new["id"])

    row = wait_until(
        lambda: Meeting.objects.filter(
            zoom_id=meeting["id"], host_email="new-host@sandbox.example"
        ).first(),
        30,
        "the new host's address",
    )
    assert row.host_id == new["id"]
    assert zoom.counters["GET /users/{userId}"] == 1
