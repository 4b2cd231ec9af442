"""The demo's world: what the sandbox's seed holds, and what the dashboard shows of it after the
demo's set-up (a sync, then the sandbox announcing what only webhooks say). A reviewer found the
seeded live webinars "Waiting" and the running live streams "Stopped": the sync cannot learn
either from Zoom's lists, so a newcomer could not try ending a webinar or stopping a stream."""

import re
import time

import pytest
import requests
from django.urls import reverse

from meetings.models import LiveStreamStatus, Meeting, MeetingStatus, PastMeeting, Webinar
from meetings.sync import sync_account
from meetings.zoom.client import ZoomClient
from meetings.zoom.sandbox import Sandbox, seed_world
from meetings.zoom.sandbox.state import RECENT_END_SECONDS

WEBHOOK_SECRET = "demo-world-webhook-secret"
# A status badge in a list (the status filter's options read the same words).
BADGE = r'class="badge [^"]*"[^>]*>'


def recently_ended(state):
    """The sandbox's meetings not live now whose latest instance ended in the last day."""
    now = state.now()
    return {
        m["id"]
        for m in state.meetings.values()
        if m["status"] == "waiting"
        and state.past_instances.get(m["id"])
        and now - state.past_instances[m["id"]][-1]["end_time"] <= RECENT_END_SECONDS
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 7, 42])
def test_every_seeded_world_has_something_for_each_action_to_try(seed):
    state = Sandbox(seed=seed).state
    meetings = list(state.meetings.values())

    live = [m for m in meetings if m["status"] == "started"]
    assert len(live) >= 5
    assert any(m["livestreaming"] for m in live)  # a stream to stop
    assert any(m["livestream"] and not m["livestreaming"] for m in live)  # one to start
    assert sum(w["status"] == "started" for w in state.webinars.values()) >= 2
    assert any(m["status"] == "deleted" for m in meetings)  # a meeting to recover
    assert len(recently_ended(state)) >= 3  # ended meetings whose instance can be fetched


def test_announcing_the_world_sends_one_event_per_state_only_webhooks_carry():
    state = Sandbox(seed=1).state
    sent = []

    class Recorder:  # the unit's edge: what would go over HTTP, kept instead
        def send(self, url, secret, body, **subscription):
            sent.append(body)

    state.set_webhook("http://receiver.invalid/")
    state.webhook_sender = Recorder()

    counts = state.announce_world()

    by_event = {}
    for body in sent:
        by_event.setdefault(body["event"], set()).add(int(body["payload"]["object"]["id"]))
    assert by_event["webinar.started"] == {
        w["id"] for w in state.webinars.values() if w["status"] == "started"
    }
    assert by_event["meeting.live_streaming_started"] == {
        m["id"] for m in state.meetings.values() if m["livestreaming"]
    }
    assert by_event["meeting.deleted"] == {
        m["id"] for m in state.meetings.values() if m["status"] == "deleted"
    }
    assert by_event["meeting.ended"] == recently_ended(state)
    # every live meeting: no list shows instant and PMI ones, and Pro's shows none live
    assert by_event["meeting.started"] == {
        m["id"] for m in state.meetings.values() if m["status"] == "started"
    }
    assert any(state.meetings[i]["type"] in (1, 4) for i in by_event["meeting.started"])
    assert counts == {event: len(ids) for event, ids in by_event.items()}
    # the ended event names the instance that ended, so its details can be fetched
    for body in sent:
        if body["event"] == "meeting.ended":
            obj = body["payload"]["object"]
            assert obj["uuid"] == state.latest_instance(int(obj["id"]))["uuid"]


def wait_for(condition, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.worker
@pytest.mark.worker_env(PAST_MEETING_FETCH_DELAY_SECONDS="1")
@pytest.mark.django_db(transaction=True)
def test_after_the_demos_sync_and_announcement_the_dashboard_shows_what_the_sandbox_holds(
    celery_worker_process,
    live_server,
    zoom_sandbox,
    zoom_sandbox_session,
    operator,
    password,
    client,
    settings,
    request,
):
    # given the demo's set-up, in small: a seeded world, a connected account, its first sync
    account = request.getfixturevalue("sandbox_account")
    zoom = zoom_sandbox.state
    seed_world(zoom, seed=1, users=3, meetings=60, webinars=8)
    sync_account(account, ZoomClient(zoom_sandbox_session, zoom_sandbox.api_url, timeout=5))
    assert not Webinar.objects.filter(status=MeetingStatus.STARTED).exists()  # the bug
    assert not Meeting.objects.filter(livestream_status=LiveStreamStatus.LIVE).exists()

    # when the sandbox announces its world to the dashboard's receiver, over HTTP as the demo does
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = WEBHOOK_SECRET
    zoom.set_webhook(live_server.url + "/webhooks/zoom/", WEBHOOK_SECRET)
    answer = requests.post(f"{zoom_sandbox.url}/_sandbox/announce", timeout=5)
    answer.raise_for_status()
    sent = answer.json()["sent"]

    # then the mirror holds what the sandbox does, learnt from the events
    live_webinars = {w["id"] for w in zoom.webinars.values() if w["status"] == "started"}
    streaming = {m["id"] for m in zoom.meetings.values() if m["livestreaming"]}
    deleted = {m["id"] for m in zoom.meetings.values() if m["status"] == "deleted"}
    ended = recently_ended(zoom)
    live = {m["id"] for m in zoom.meetings.values() if m["status"] == "started"}
    assert sent == {
        "meeting.started": len(live),
        "webinar.started": len(live_webinars),
        "meeting.live_streaming_started": len(streaming),
        "meeting.deleted": len(deleted),
        "meeting.ended": len(ended),
    }

    def ids(queryset):
        return set(queryset.values_list("zoom_id", flat=True))

    wait_for(
        lambda: (
            ids(Webinar.objects.filter(status=MeetingStatus.STARTED)) == live_webinars
            and ids(Meeting.objects.filter(livestream_status=LiveStreamStatus.LIVE)) == streaming
            and ids(Meeting.objects.filter(status=MeetingStatus.DELETED)) == deleted
            and ids(Meeting.objects.filter(status=MeetingStatus.ENDED)) == ended
            and ids(Meeting.objects.filter(status=MeetingStatus.STARTED)) == live
        ),
        "the announced events applied",
    )
    assert ids(Meeting.objects.filter(livestream_status=LiveStreamStatus.LIVE)) <= ids(
        Meeting.objects.filter(status=MeetingStatus.STARTED)
    )
    # each ended meeting's instance is fetched through the pipeline, as after a real end
    wait_for(
        lambda: {p.zoom_id for p in PastMeeting.objects.all()} == ended,
        "the ended instances fetched",
    )

    # and the pages say so: live webinars on the overview, a stream running among live meetings
    assert client.login(username=operator.username, password=password)
    overview = client.get(reverse("overview")).content.decode()
    for webinar in Webinar.objects.filter(status=MeetingStatus.STARTED):
        assert webinar.topic in overview
    live_list = client.get(reverse("meetings"), {"status": "started"}).content.decode()
    assert len(re.findall(BADGE + "Streaming<", live_list)) == len(streaming)
    webinars = client.get(reverse("webinars"), {"status": "started"}).content.decode()
    assert len(re.findall(BADGE + "Live<", webinars)) == len(live_webinars)
