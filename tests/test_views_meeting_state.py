"""A meeting's page follows the mirror while it is open: it polls its status parts with the
version it shows, gets 204 while nothing changed, and the parts out of band (never the forms'
fields) once a webhook, a sync or another operator changed them."""

import re
import time
from datetime import timedelta

import pytest
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import now

from meetings import webhooks
from meetings.models import Action, WebhookEvent
from meetings.models.mirror import STREAM_KEY_MASK

from .dashboard_data import deliver_event, make_account, make_action, make_meeting, make_past

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
STREAM_KEY = "sk-follow-7c1d9e2b44"
# What a poll may cost, whatever the meeting's history: the session, the user, the user's and
# the groups' permissions, the user's chosen time zone, the meeting, its latest status job and
# its latest stream job, and what the timeline and the past instances show (its newest actions,
# events, past instances), and the names of its connection's stream presets (the panel's picker).
POLL_QUERIES = 12


@pytest.fixture
def account():
    return make_account()


@pytest.fixture
def meeting(account):
    return make_meeting(
        account,
        status="started",
        topic="Town hall",
        stream_url="rtmp://live.example.com/app",
        page_url="https://example.com/watch",
        stream_key=STREAM_KEY,
    )


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def shown_version(html):
    """The version a page (or a poll's answer) says it shows, from its poller's URL."""
    match = re.search(r'hx-get="/meetings/\d+/state/\?v=([0-9a-f-]+)"', html)
    assert match, "no poller in the page"
    return match.group(1)


def poll(client, meeting, version):
    return client.get(reverse("meeting-state", args=[meeting.pk]), {"v": version}, **HTMX)


def live_streaming(key=STREAM_KEY):
    return {
        "live_streaming": {
            "service": "Custom_Live_Streaming_Service",
            "custom_live_streaming_settings": {
                "stream_url": "rtmp://live.example.com/app",
                "stream_key": key,
                "page_url": "https://example.com/watch",
                "resolution": "720p",
            },
        }
    }


def test_the_page_polls_its_status_every_few_seconds_and_nothing_new_is_a_204(as_operator, meeting):
    page = as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode()
    poller = re.search(r'<div id="follow"[^>]*>', page).group(0)
    assert 'hx-trigger="every 5s, follow-now,' in poller
    assert 'hx-swap="none"' in poller
    assert "data-follow" in poller  # app.js pauses it while the tab is hidden

    response = poll(as_operator, meeting, shown_version(page))

    assert response.status_code == 204
    assert response.content == b""


def test_a_poll_costs_the_same_few_queries_however_long_the_meetings_history(
    as_operator, account, meeting
):
    from django.db import connection

    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())

    def queries_of_a_poll(version):
        with CaptureQueriesContext(connection) as queries:
            response = poll(as_operator, meeting, version)
        return response.status_code, len(queries)

    short = queries_of_a_poll(version)
    # a long history: jobs of every kind, Zoom events, past instances
    for n in range(40):
        make_action(account, "fetch_past_meeting", target=meeting, state="succeeded")
        WebhookEvent.objects.create(
            account=account, event="meeting.started", object_id=meeting.zoom_id, dedupe_key=f"k{n}"
        )
        make_past(account, meeting)
    make_action(account, "stop_livestream", target=meeting, state="succeeded")
    make_action(account, "end_meeting", target=meeting, state="failed")

    changed = queries_of_a_poll(version)  # the two new jobs are a new version
    version = shown_version(poll(as_operator, meeting, version).content.decode())
    unchanged = queries_of_a_poll(version)

    assert short == (204, POLL_QUERIES)
    assert changed == (200, POLL_QUERIES)
    assert unchanged == (204, POLL_QUERIES)


def test_a_live_stream_started_in_zoom_is_answered_out_of_band_without_the_forms(
    as_operator, account, meeting
):
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())

    deliver_event(account, meeting, "meeting.live_streaming_started", **live_streaming())
    response = poll(as_operator, meeting, version)

    assert response.status_code == 200
    html = response.content.decode()
    swapped = re.findall(r'<(\w+) [^>]*id="([\w-]+)"[^>]*hx-swap-oob="true"', html)
    # Only the parts that changed: the status panel's live stream badge, when Zoom was last
    # heard from, the live stream, the timeline; not the details or the past instances.
    assert [id_ for _, id_ in swapped] == [
        "controls",
        "heard",
        "livestream-state",
        "stream-config-actions",
        "stream-start-actions",
        "timeline",
        "follow",
    ]
    # The live stream forms and their fields are not in the answer: what the operator typed
    # stays. (The past instances' Fetch and Refresh forms are buttons, nothing to type.)
    for form in ("meeting-stream-update", "meeting-stream-start"):
        assert f'action="{reverse(form, args=[meeting.pk])}"' not in html
    assert not re.search(r'<input [^>]*name="(stream_url|stream_key|page_url|display_name)"', html)
    assert "<textarea" not in html and "<select" not in html
    assert "<html" not in html
    # The timeline says what Zoom sent.
    assert "meeting.live_streaming_started" in html.replace("<wbr>", "")
    # What Zoom says now, and what it allows.
    assert re.search(r'id="livestream-title">Live stream <span class="badge [^"]*">Live<', html)
    assert "Start is unavailable: The stream is already live." in html
    assert re.search(r"<button type=\"submit\" class=\"btn btn-primary\" disabled", html)
    assert re.search(r'<button type="submit" class="btn" disabled[^>]*>Save settings', html)
    assert "Stop live stream…" in html
    new_version = shown_version(html)
    assert new_version != version
    assert poll(as_operator, meeting, new_version).status_code == 204


def test_a_meeting_ended_in_zoom_no_longer_offers_end(as_operator, account, meeting):
    page = as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert "End meeting…" in page

    deliver_event(account, meeting, "meeting.ended", topic="Town hall")
    html = poll(as_operator, meeting, shown_version(page)).content.decode()

    assert re.search(r'id="meeting-status" class="badge [^"]*">Ended<', html)
    assert "End meeting…" not in html
    assert "The meeting is not live" in html  # Start's preflight follows too


def test_another_operators_job_shows_and_holds_the_buttons(as_operator, account, meeting):
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())

    job = make_action(account, "start_livestream", target=meeting, state="running")
    html = poll(as_operator, meeting, version).content.decode()

    assert f'id="job-{job.pk}"' in html
    assert f'hx-get="{reverse("action", args=[job.pk])}" hx-trigger="every 1s"' in html
    assert re.search(r'class="btn btn-primary" disabled[^>]*>Working…', html)
    assert re.search(r'<button type="submit" class="btn" disabled[^>]*>Save settings', html)


def test_a_viewer_follows_the_status_but_gets_no_controls(client, viewer, account, meeting):
    client.force_login(viewer)
    page = client.get(reverse("meeting", args=[meeting.pk])).content.decode()

    deliver_event(account, meeting, "meeting.live_streaming_started", **live_streaming())
    html = poll(client, meeting, shown_version(page)).content.decode()

    assert re.search(r'<div id="livestream-state" [^>]*hx-swap-oob="true"', html)
    # A viewer's page has no live stream forms: nothing may be swapped into them.
    assert "stream-config-actions" not in html
    assert "stream-start-actions" not in html
    assert "End meeting…" not in html
    assert "Stop live stream…" not in html


def test_the_stream_key_is_never_in_a_polled_answer(as_operator, account, meeting):
    # a key Zoom sends in a live streaming event, and the one stored (encrypted) on the meeting
    deliver_event(
        account, meeting, "meeting.live_streaming_started", **live_streaming("sk-in-event-5a")
    )

    html = poll(as_operator, meeting, "not-a-version").content.decode()

    assert STREAM_KEY not in html
    assert "sk-in-event-5a" not in html
    assert STREAM_KEY_MASK in html  # the masked key: what the page shows of it, none of it
    assert STREAM_KEY[-4:] not in html  # not even its last characters


def test_the_state_is_for_signed_in_users_who_may_see_the_dashboard(client, outsider, meeting):
    url = reverse("meeting-state", args=[meeting.pk])

    # An htmx poll whose session expired sends the whole page to sign in, not into a panel.
    signed_out = client.get(url, {"v": "x"}, **HTMX)
    assert signed_out.status_code == 200
    assert signed_out["HX-Redirect"].startswith(reverse("login") + "?next=")

    client.force_login(outsider)
    assert client.get(url, {"v": "x"}, **HTMX).status_code == 403
    assert client.get(reverse("meeting-state", args=[999999]), **HTMX).status_code == 403


def test_a_plain_get_of_the_state_goes_to_the_meeting_page(as_operator, meeting):
    response = as_operator.get(reverse("meeting-state", args=[meeting.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("meeting", args=[meeting.pk])
    assert as_operator.get(reverse("meeting-state", args=[999999]), **HTMX).status_code == 404


def swapped_part(html, id_):
    """The out-of-band part `id_` of a poll's answer (a <section>), or None."""
    match = re.search(rf'<section [^>]*id="{id_}"[^>]*hx-swap-oob="true".*?</section>', html, re.S)
    return match and match.group(0)


def test_the_fetch_zoom_s_meeting_ended_queues_shows_in_the_timeline_and_past_panel(
    as_operator, account, meeting, settings
):
    settings.PAST_MEETING_FETCH_DELAY_SECONDS = 30
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())

    # when Zoom says the meeting ended: the receiver queues the ended instance's fetch
    deliver_event(account, meeting, "meeting.ended", topic="Town hall")
    html = poll(as_operator, meeting, version).content.decode()

    timeline = swapped_part(html, "timeline")
    assert "meeting.ended" in timeline.replace("<wbr>", "")
    assert re.search(r">Fetch past meeting details</a>.*?>Queued<", timeline, re.S)
    past = swapped_part(html, "past")
    fetch = Action.objects.get(kind="fetch_past_meeting")
    assert f'id="job-{fetch.pk}"' in past  # the job, polling itself until it finishes
    # It waits on purpose (Zoom publishes the details a while after the end), not for a worker.
    assert "Waiting for Zoom to publish the details (about 30 s)" in past
    assert "Waiting for a worker" not in past

    # once that wait is over, a job still queued is waiting for a worker
    Action.objects.filter(pk=fetch.pk).update(requested_at=now() - timedelta(seconds=31))
    html = as_operator.get(reverse("action", args=[fetch.pk]), HTTP_HX_REQUEST="true")
    assert "Waiting for a worker" in html.content.decode()


def test_a_fetched_past_instance_appears_in_the_past_panel(as_operator, account, meeting):
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())
    assert poll(as_operator, meeting, version).status_code == 204

    instance = make_past(account, meeting, participants_count=87)
    html = poll(as_operator, meeting, version).content.decode()

    past = swapped_part(html, "past")
    assert reverse("past-meeting", args=[instance.pk]) in past
    assert ">87<" in past
    assert poll(as_operator, meeting, shown_version(html)).status_code == 204


def test_an_older_job_finishing_or_an_event_being_applied_is_a_new_version(
    as_operator, account, meeting
):
    # given a running job and an event not applied yet, with newer rows above them
    older = make_action(account, "fetch_past_meeting", target=meeting, state="running")
    event = WebhookEvent.objects.create(
        account=account, event="meeting.started", object_id=meeting.zoom_id, dedupe_key="k-old"
    )
    make_action(account, "stop_livestream", target=meeting, state="succeeded")
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())

    # when the job below the newest one finishes
    Action.objects.filter(pk=older.pk).update(state="succeeded", finished_at=now())
    html = poll(as_operator, meeting, version).content.decode()

    # then the timeline shows it finished
    assert re.search(
        rf'href="{reverse("action", args=[older.pk])}">[^<]*</a>.*?>Succeeded<',
        swapped_part(html, "timeline"),
        re.S,
    )
    version = shown_version(html)

    # when the worker applies the event
    WebhookEvent.objects.filter(pk=event.pk).update(processed_at=now())
    html = poll(as_operator, meeting, version).content.decode()

    assert "Applied" in swapped_part(html, "timeline")


def test_another_meetings_history_is_not_a_new_version(as_operator, account, meeting):
    other = make_meeting(account, status="started")
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())

    make_action(account, "end_meeting", target=other, state="queued")
    make_past(account, other)
    WebhookEvent.objects.create(
        account=account, event="meeting.ended", object_id=other.zoom_id, dedupe_key="k-other"
    )

    assert poll(as_operator, meeting, version).status_code == 204


def test_a_viewer_follows_the_timeline_and_past_instances_without_fetch_buttons(
    client, viewer, account, meeting
):
    client.force_login(viewer)
    version = shown_version(client.get(reverse("meeting", args=[meeting.pk])).content.decode())

    make_past(account, meeting)
    make_action(account, "fetch_past_meeting", target=meeting, state="succeeded")
    html = poll(client, meeting, version).content.decode()

    assert swapped_part(html, "timeline")
    past = swapped_part(html, "past")
    assert "uuid-" in past
    assert reverse("meeting-fetch-past", args=[meeting.pk]) not in html
    assert "Refresh</button>" not in html


def swapped_ids(html):
    return re.findall(r'<\w+ [^>]*id="([\w-]+)"[^>]*hx-swap-oob="true"', html)


def swapped_element(html, id_):
    match = re.search(rf'<(\w+) [^>]*id="{id_}"[^>]*hx-swap-oob="true".*?</\1>', html, re.S)
    return match and match.group(0)


def test_a_topic_and_time_changed_in_zoom_show_in_the_heading_details_and_status(
    as_operator, account, meeting
):
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())

    # when the host renames and reschedules the meeting in Zoom's web portal
    event = {
        "event": "meeting.updated",
        "event_ts": int(time.time() * 1000),
        "payload": {
            "account_id": account.zoom_account_id,
            "operation": "all",
            "object": {
                "id": meeting.zoom_id,
                "topic": "Town hall <b>moved</b>",
                "start_time": "2031-03-04T15:30:00Z",
                "duration": 90,
            },
            "old_object": {"id": meeting.zoom_id, "topic": "Town hall"},
        },
    }
    stored, _ = webhooks.store_event(event)
    webhooks.process_event(stored.pk)
    html = poll(as_operator, meeting, version).content.decode()

    # then the heading, the status panel's time, the details, when Zoom was last heard from and
    # the timeline come, as text; not the live stream or the past instances (nothing of theirs
    # changed)
    assert swapped_ids(html) == ["heading", "controls", "details", "heard", "timeline", "follow"]
    assert re.search(r"<dt>Last event</dt><dd><time [^>]*>just now<", html)
    topic = "Town hall &lt;b&gt;moved&lt;/b&gt;"
    assert f"<h1>{topic}</h1>" in swapped_element(html, "heading")
    assert f"<dt>Topic</dt><dd>{topic}</dd>" in swapped_element(html, "details")
    assert re.match(rf"\s*<title>{re.escape(topic)} · zoomadmin</title>", html)
    controls = swapped_element(html, "controls")
    assert 'datetime="2031-03-04T15:30:00+00:00"' in controls
    assert "90 minutes" in controls
    assert "<b>" not in html
    assert poll(as_operator, meeting, shown_version(html)).status_code == 204


def test_a_sync_that_changed_nothing_shown_but_when_it_ran_swaps_only_the_last_heard_line(
    as_operator, meeting
):
    from datetime import timedelta

    from meetings.models import Meeting

    Meeting.objects.filter(pk=meeting.pk).update(last_synced_at=now() - timedelta(minutes=7))
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())

    Meeting.objects.filter(pk=meeting.pk).update(last_synced_at=now())
    html = poll(as_operator, meeting, version).content.decode()

    # the details (a join URL being copied) stay as they are
    assert swapped_ids(html) == ["heard", "follow"]
    assert re.search(r"<dt>Last synced</dt><dd><time [^>]*>just now<", html)


def test_the_last_heard_line_is_sent_again_when_its_time_would_read_differently(
    as_operator, meeting
):
    from datetime import timedelta

    from meetings.models import Meeting

    Meeting.objects.filter(pk=meeting.pk).update(last_event_at=now() - timedelta(seconds=50))
    version = shown_version(as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode())
    assert poll(as_operator, meeting, version).status_code == 204  # still "just now"

    # a minute on, "just now" would be wrong: nothing in the mirror changed, the text did
    Meeting.objects.filter(pk=meeting.pk).update(last_event_at=now() - timedelta(seconds=70))
    html = poll(as_operator, meeting, version).content.decode()

    assert swapped_ids(html) == ["heard", "follow"]
    assert re.search(r"<dt>Last event</dt><dd><time [^>]*>1\xa0minute ago<", html)
