"""A webinar's page follows Zoom while it is open, as a meeting's does: it polls its parts with
the version of each it shows, gets 204 while nothing changed, and only the parts that changed,
out of band, once a webhook, a sync or a job changed them."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import now

from meetings import mirror
from meetings.models import Action, MeetingStatus, WebhookEvent

from .dashboard_data import deliver_event, make_account, make_action, make_webinar

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
# What a poll may cost, whatever the webinar's history: the session, the user, the user's and
# the groups' permissions, the user's chosen time zone, the webinar (with its account), its
# newest actions (its End and live stream jobs among them) and Zoom events, and the names of
# its connection's stream presets (the live stream panel's picker).
POLL_QUERIES = 9
# The live stream panel's followed parts (its forms' fields are never swapped).
STREAM_PARTS = ["livestream-state", "stream-config-actions", "stream-start-actions"]
HOSTILE_TOPIC = '<img src=x onerror="alert(1)"> Investor day </title><script>x()</script>'


@pytest.fixture
def account():
    return make_account()


@pytest.fixture
def webinar(account):
    return make_webinar(account, status="started", topic="Investor day", uuid="inst-1==")


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def shown_version(html):
    """The version a page (or a poll's answer) says it shows, from its poller's URL."""
    match = re.search(r'hx-get="/webinars/\d+/state/\?v=([0-9a-f-]+)"', html)
    assert match, "no poller in the page"
    return match.group(1)


def page_version(client, webinar):
    return shown_version(client.get(reverse("webinar", args=[webinar.pk])).content.decode())


def poll(client, webinar, version):
    return client.get(reverse("webinar-state", args=[webinar.pk]), {"v": version}, **HTMX)


def swapped(html):
    """The ids of the parts an answer swaps out of band, in order."""
    return re.findall(r'<\w+ [^>]*id="([\w-]+)"[^>]*hx-swap-oob="true"', html)


def part(html, id_):
    match = re.search(rf'<(\w+) [^>]*id="{id_}"[^>]*hx-swap-oob="true".*?</\1>', html, re.S)
    return match and match.group(0)


def test_the_page_polls_every_few_seconds_and_nothing_new_is_a_204(as_operator, webinar):
    page = as_operator.get(reverse("webinar", args=[webinar.pk])).content.decode()
    poller = re.search(r'<div id="follow"[^>]*>', page).group(0)
    assert 'hx-trigger="every 5s, follow-now, action-finished from:body"' in poller
    assert 'hx-swap="none"' in poller
    assert "data-follow" in poller  # app.js pauses it while the tab is hidden or a form is out
    # the panels no longer re-fetch themselves: the poller brings what changed
    assert "?part=" not in page

    response = poll(as_operator, webinar, shown_version(page))

    assert response.status_code == 204
    assert response.content == b""


def test_a_webinar_ended_in_zoom_no_longer_offers_end_and_shows_the_event(
    as_operator, account, webinar
):
    page = as_operator.get(reverse("webinar", args=[webinar.pk])).content.decode()
    assert "End webinar…" in page

    deliver_event(account, webinar, "webinar.ended", topic="Investor day")
    html = poll(as_operator, webinar, shown_version(page)).content.decode()

    # only what changed: the status, when Zoom was last heard from, the timeline
    # the live stream panel too: Start is no longer offered once the webinar is not live
    assert swapped(html) == ["controls", "heard", *STREAM_PARTS, "timeline", "follow"]
    assert re.search(r'id="webinar-status" class="badge [^"]*">Ended<', html)
    assert "End webinar…" not in html
    assert "webinar.ended" in part(html, "timeline").replace("<wbr>", "")
    assert "Applied" in part(html, "timeline")
    assert "just now" in part(html, "heard")
    assert "<html" not in html
    assert poll(as_operator, webinar, shown_version(html)).status_code == 204


def test_a_webinar_started_in_zoom_offers_end(as_operator, account):
    webinar = make_webinar(account, status="waiting", topic="Hiring fair")
    version = page_version(as_operator, webinar)

    deliver_event(account, webinar, "webinar.started")
    html = poll(as_operator, webinar, version).content.decode()

    assert re.search(r'id="webinar-status" class="badge [^"]*">Live<', html)
    assert "End webinar…" in part(html, "controls")
    assert "Zoom does not report whether a webinar is live" not in html


def test_our_own_end_shows_its_job_then_the_webinar_ended(as_operator, account, webinar):
    version = page_version(as_operator, webinar)

    # the operator's End is running: the button holds, the job polls itself
    job = make_action(account, "end_webinar", target=webinar, state="running")
    html = poll(as_operator, webinar, version).content.decode()
    assert swapped(html) == ["controls", "timeline", "follow"]
    assert f'id="job-{job.pk}"' in html
    assert re.search(r"<button [^>]*disabled>Ending…", html)
    version = shown_version(html)

    # when the worker has ended it (its job succeeded, the mirror says ended)
    Action.objects.filter(pk=job.pk).update(state="succeeded", finished_at=now())
    mirror.record_webinar_status(account, webinar.zoom_id, MeetingStatus.ENDED)
    html = poll(as_operator, webinar, version).content.decode()

    controls = part(html, "controls")
    assert re.search(r'id="webinar-status" class="badge [^"]*">Ended<', controls)
    assert "Succeeded" in controls
    assert "Ending…" not in controls and "End webinar…" not in controls
    assert re.search(r">End webinar</a>.*?>Succeeded<", part(html, "timeline"), re.S)


def test_a_topic_changed_in_zoom_is_shown_as_text_in_the_heading_details_and_title(
    as_operator, account, webinar
):
    version = page_version(as_operator, webinar)

    deliver_event(account, webinar, "webinar.updated", topic=HOSTILE_TOPIC)
    html = poll(as_operator, webinar, version).content.decode()

    assert swapped(html) == ["heading", "details", "heard", "timeline", "follow"]
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Investor day &lt;/title&gt;"
    assert f"<h1>{escaped}&lt;script&gt;x()&lt;/script&gt;</h1>" in part(html, "heading")
    assert f"<dt>Topic</dt><dd>{escaped}" in part(html, "details")
    assert re.match(rf"\s*<title>{re.escape(escaped)}", html)
    assert "<img" not in html and "<script" not in html


def test_a_poll_costs_the_same_few_queries_however_long_the_webinars_history(
    as_operator, account, webinar, django_assert_max_num_queries
):
    version = page_version(as_operator, webinar)

    def queries_of_a_poll(version):
        with CaptureQueriesContext(connection) as queries:
            response = poll(as_operator, webinar, version)
        return response.status_code, len(queries)

    short = queries_of_a_poll(version)
    for n in range(40):
        make_action(account, "end_webinar", target=webinar, state="failed")
        WebhookEvent.objects.create(
            account=account, event="webinar.started", object_id=webinar.zoom_id, dedupe_key=f"k{n}"
        )
    changed = queries_of_a_poll(version)
    version = shown_version(poll(as_operator, webinar, version).content.decode())
    with django_assert_max_num_queries(POLL_QUERIES):
        unchanged = poll(as_operator, webinar, version)

    assert short == (204, POLL_QUERIES)
    assert changed == (200, POLL_QUERIES)
    assert unchanged.status_code == 204


def test_another_webinars_history_is_not_a_new_version(as_operator, account, webinar):
    other = make_webinar(account, status="started")
    version = page_version(as_operator, webinar)

    make_action(account, "end_webinar", target=other, state="queued")
    WebhookEvent.objects.create(
        account=account, event="webinar.ended", object_id=other.zoom_id, dedupe_key="k-other"
    )

    assert poll(as_operator, webinar, version).status_code == 204


def test_a_viewer_follows_the_webinar_but_gets_no_end(client, viewer, account, webinar):
    client.force_login(viewer)
    page = client.get(reverse("webinar", args=[webinar.pk])).content.decode()
    assert "End webinar…" not in page

    deliver_event(account, webinar, "webinar.ended")
    html = poll(client, webinar, shown_version(page)).content.decode()

    assert re.search(r'id="webinar-status" class="badge [^"]*">Ended<', html)
    assert "webinar.ended" in part(html, "timeline").replace("<wbr>", "")
    assert reverse("webinar-end", args=[webinar.pk]) not in html


def test_the_state_is_for_signed_in_users_who_may_see_the_dashboard(client, outsider, webinar):
    url = reverse("webinar-state", args=[webinar.pk])

    # An htmx poll whose session expired sends the whole page to sign in, not into a panel.
    signed_out = client.get(url, {"v": "x"}, **HTMX)
    assert signed_out.status_code == 200
    assert signed_out["HX-Redirect"].startswith(reverse("login") + "?next=")

    client.force_login(outsider)
    assert client.get(url, {"v": "x"}, **HTMX).status_code == 403


def test_a_plain_get_of_the_state_goes_to_the_webinar_page(as_operator, webinar):
    response = as_operator.get(reverse("webinar-state", args=[webinar.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("webinar", args=[webinar.pk])
    assert as_operator.get(reverse("webinar-state", args=[999999]), **HTMX).status_code == 404


def test_a_version_the_page_could_not_have_brings_every_part(as_operator, webinar):
    html = poll(as_operator, webinar, "not-a-version").content.decode()

    assert swapped(html) == [
        "heading",
        "controls",
        "details",
        "heard",
        *STREAM_PARTS,
        "timeline",
        "follow",
    ]
