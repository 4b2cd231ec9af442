"""
Topics, host emails and names, display names and everything else Zoom or a user can type are
shown escaped everywhere (issue 7): dashboard pages, their htmx fragments, the Django admin's
change lists and change pages, the sign-in page, error pages, and the CSV export.

Every row below carries HTML and JavaScript (`<script>alert(1)</script>`,
`"><img src=x onerror=alert(1)>`) and a template expression (`{{7*7}}`). Each page is parsed as a
browser would: no script but our static one, no `<img src=x>`, no event-handler attribute, no
`javascript:` URL, and the hostile text is there as text (so the test cannot pass by not showing
it), intact (`{{7*7}}` was not evaluated).
"""

import csv
import io
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import escape
from django.utils.timezone import now

from meetings.models import (
    Action,
    Attempt,
    Batch,
    WebhookEvent,
    ZoomAccount,
)

from .dashboard_data import make_account, make_action, make_meeting, make_past, make_webinar

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{7*7}}"
PAYLOAD = SCRIPT + IMG + TEMPLATE


def hostile(label):
    return f"{label} {PAYLOAD}"


# Display names are 1..50 characters (Zoom's limit): two of them carry the payload between them.
DISPLAY_IMG = IMG + TEMPLATE
DISPLAY_SCRIPT = SCRIPT + TEMPLATE
HTMX = {"HX-Request": "true"}
RESULTS = {"HX-Request": "true", "HX-Target": "results"}


class Page(HTMLParser):
    """A page as a browser parses it: its text and attribute values, and anything injected."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.texts = []
        self.injected = []
        self.glue = False
        self.feed(html)
        self.close()
        self.text = "\n".join(self.texts)

    def handle_starttag(self, tag, attrs):
        if tag == "wbr":
            # A line-break opportunity inside a word (an email before its "@"): a browser shows
            # and copies the text on both sides as one, so it is read as one here too.
            self.glue = True
            return
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.injected.append(f"<{tag} {name}=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.injected.append(f"<{tag} {name}={value[:30]}>")
            if value:
                self.texts.append(value)
        # Our scripts and the admin's are same-origin files; JSON data blocks do not run.
        runs = values.get("type") not in ("application/json", "application/ld+json")
        src = values.get("src") or ""
        if tag == "script" and runs and not (src.startswith("/") and not src.startswith("//")):
            self.injected.append("<script> that is not a same-origin file")
        if tag == "img" and values.get("src") == "x":
            self.injected.append("<img src=x>")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        if self.glue and self.texts:
            self.texts[-1] += data
        else:
            self.texts.append(data)
        self.glue = False


def assert_escaped(response, *shown):
    """The response is HTML with nothing injected, and shows each of `shown` as text."""
    assert response.status_code in (200, 286, 400), (response.status_code, response.request)
    html = response.content.decode()
    page = Page(html)
    assert page.injected == [], page.injected
    assert SCRIPT not in html and IMG not in html
    for value in shown:
        assert value in page.text, f"{value!r} is not shown"
    return page


@pytest.mark.parametrize(
    "html",
    [
        f"<p>{SCRIPT}</p>",
        f'<input value="{IMG}">',
        '<a href="javascript:alert(1)">x</a>',
        '<script src="https://evil.example/x.js"></script>',
        "<svg onload=alert(1)>",
    ],
)
def test_the_inspector_sees_what_an_unescaped_value_would_inject(html):
    assert Page(html).injected


def test_an_email_with_a_line_break_opportunity_is_still_one_piece_of_text():
    from meetings.templatetags.dashboard import email_breaks

    html = f"<td>{email_breaks(hostile('Host') + '@evil.example')}</td>"
    assert "<wbr>@evil.example" in html
    page = Page(html)
    assert page.injected == []
    assert hostile("Host") + "@evil.example" in page.text


def test_the_inspector_reads_escaped_text_back_as_the_text():
    page = Page(f'<p>{escape(PAYLOAD)}</p><input value="{escape(PAYLOAD)}">')
    assert page.injected == []
    assert page.texts.count(PAYLOAD) == 2


@pytest.fixture
def hostile_user(django_user_model):
    return django_user_model.objects.create_user(username=hostile("User"))


@pytest.fixture
def world(hostile_user):
    """One of everything, every text field hostile."""
    account = make_account(
        hostile("Account"),
        zoom_account_id=hostile("ZoomAcct"),
        client_id=hostile("Client"),
        connected_as=hostile("Zoom user"),
        last_error=hostile("Error"),
        last_error_at=now(),
    )
    broken = make_account(hostile("Broken"), status=ZoomAccount.Status.NEEDS_RECONNECT)
    gone = make_account(hostile("Gone"), status=ZoomAccount.Status.DISCONNECTED, client_secret="")
    meeting = make_meeting(
        account,
        topic=hostile("Topic"),
        host_email=hostile("Host") + "@evil.example",
        host_id=hostile("HostId"),
        uuid=hostile("Uuid")[:100],
        timezone=PAYLOAD,
        join_url="https://zoom.example/j/1?" + PAYLOAD,
        status="started",
        stream_url="rtmp://live.example/" + PAYLOAD,
        stream_key="sk-escaping-0001",
        page_url="https://watch.example/" + PAYLOAD,
    )
    deleted = make_meeting(account, topic=hostile("Deleted topic"), status="deleted")
    webinar = make_webinar(
        account,
        topic=hostile("Webinar"),
        host_email=hostile("WHost") + "@evil.example",
        host_id=hostile("WHostId"),
        join_url="https://zoom.example/w/1?" + PAYLOAD,
        status="started",
    )
    past = make_past(
        account,
        meeting,
        uuid=hostile("PastUuid")[:100],
        topic=hostile("Past topic"),
        user_name=hostile("Past host"),
        user_email=hostile("PastEmail") + "@evil.example",
        dept=hostile("Dept"),
        source=hostile("Src")[:100],
    )
    failed = make_action(
        account,
        "end_meeting",
        target=meeting,
        state="failed",
        requested_by=hostile_user,
        result_summary=hostile("Zoom said"),
        target_uuid=hostile("TUuid")[:100],
        http_status=400,
        zoom_code=300,
    )
    Attempt.objects.create(action=failed, number=1, operation="end", message=hostile("Attempt"))
    batch = Batch.objects.create(kind="end_meeting", account=account, requested_by=hostile_user)
    in_batch = make_action(
        account, "end_meeting", target=deleted, state="succeeded", batch=batch, topic=hostile("B")
    )
    Batch.objects.filter(pk=batch.pk).update(total=1)
    stream = make_action(
        account,
        "start_livestream",
        target=webinar,
        state="succeeded",
        params={"active_speaker_name": True, "display_name": DISPLAY_SCRIPT},
    )
    event = WebhookEvent.objects.create(
        account=account,
        event=hostile("meeting.evil")[:100],
        zoom_account_id=account.zoom_account_id[:100],
        object_id=meeting.zoom_id,
        object_uuid=hostile("EvUuid")[:100],
        payload={"event": "meeting.started", "payload": {"object": {"topic": hostile("Event")}}},
        dedupe_key="e" * 64,
        received_at=now() - timedelta(minutes=1),
        error=hostile("Ignored"),
    )
    LogEntry.objects.log_actions(
        user_id=hostile_user.pk,
        queryset=[account],
        action_flag=CHANGE,
        change_message=hostile("Changed"),
        single_object=True,
    )
    return {
        "account": account,
        "broken": broken,
        "gone": gone,
        "meeting": meeting,
        "deleted": deleted,
        "webinar": webinar,
        "past": past,
        "failed": failed,
        "batch": batch,
        "in_batch": in_batch,
        "stream": stream,
        "event": event,
    }


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


# --- The dashboard ---------------------------------------------------------------------------


def test_the_overview_and_its_fragments(admin, world):
    assert_escaped(
        admin.get("/"),
        hostile("Account"),
        hostile("Broken"),  # the reconnect banner, on every page
        hostile("Topic"),
        hostile("Zoom said"),
        hostile("Webinar"),
    )
    assert_escaped(admin.get("/?part=accounts", headers=HTMX), hostile("Account"))
    assert_escaped(admin.get("/?part=live", headers=HTMX), hostile("Topic"), hostile("Webinar"))


def test_the_meetings_list_its_results_fragment_and_the_search_box(admin, world):
    shown = (hostile("Topic"), hostile("Host") + "@evil.example", hostile("Account"))
    assert_escaped(admin.get("/meetings/"), *shown)
    assert_escaped(admin.get("/meetings/?q=script", headers=RESULTS), *shown)
    page = assert_escaped(admin.get("/meetings/", {"q": PAYLOAD, "sort": PAYLOAD}))
    assert PAYLOAD in page.text  # the search box keeps what was typed, as text
    assert_escaped(admin.get("/meetings/badges/", {"id": [world["meeting"].pk]}, headers=HTMX))


def test_a_meetings_page_and_each_of_its_panels(admin, world):
    meeting = world["meeting"]
    url = reverse("meeting", args=[meeting.pk])
    assert_escaped(
        admin.get(url),
        hostile("Topic"),
        hostile("Host") + "@evil.example",
        hostile("HostId"),
        "https://zoom.example/j/1?" + PAYLOAD,
        "rtmp://live.example/" + PAYLOAD,
        "https://watch.example/" + PAYLOAD,
        hostile("meeting.evil")[:100],
        hostile("Zoom said"),
    )
    for part in ("controls", "livestream", "past", "timeline"):
        assert_escaped(admin.get(url, {"part": part}, headers=HTMX))
    # the follow's answer with every part (a version the page could not have)
    assert_escaped(
        admin.get(reverse("meeting-state", args=[meeting.pk]), {"v": "x"}, headers=HTMX),
        hostile("Topic"),
        hostile("Host") + "@evil.example",
        "https://zoom.example/j/1?" + PAYLOAD,
    )
    assert_escaped(admin.get(reverse("meeting-end", args=[meeting.pk])), hostile("Topic"))
    assert_escaped(
        admin.get(reverse("meeting-stream-stop", args=[meeting.pk])),
        "https://watch.example/" + PAYLOAD,
    )
    assert_escaped(
        admin.get(reverse("meeting-recover", args=[world["deleted"].pk])),
        hostile("Deleted topic"),
    )


def test_a_display_name_is_escaped_in_the_form_that_refuses_it_and_on_the_job_it_makes(
    admin, world
):
    url = reverse("meeting-stream-start", args=[world["meeting"].pk])

    # too long (62 > 50): the form comes back with what was typed, as text
    assert_escaped(admin.post(url, {"display_name": PAYLOAD}), PAYLOAD)
    assert_escaped(admin.post(url, {"display_name": PAYLOAD}, headers=HTMX), PAYLOAD)
    # valid: the job is made, and its page shows the name
    admin.post(url, {"display_name": DISPLAY_IMG, "active_speaker_name": "on"})
    action = Action.objects.get(kind="start_livestream", target_id=world["meeting"].zoom_id)
    assert action.params["display_name"] == DISPLAY_IMG
    assert_escaped(admin.get(reverse("action", args=[action.pk])), DISPLAY_IMG)
    assert_escaped(admin.get(reverse("action", args=[world["stream"].pk])), DISPLAY_SCRIPT)


def test_a_refused_stream_configuration_is_shown_back_escaped(admin, world):
    meeting = make_meeting(world["account"], topic=hostile("Stopped"), status="waiting")
    typed = {
        "stream_url": "rtmp://live.example/" + PAYLOAD,  # a space: not a URL
        "stream_key": "sk-escaping-0002",
        "page_url": "https://watch.example/" + PAYLOAD,
    }
    url = reverse("meeting-stream-update", args=[meeting.pk])

    for headers in ({}, HTMX):
        page = assert_escaped(admin.post(url, typed, headers=headers), typed["stream_url"])
        assert "sk-escaping-0002" not in page.text
    assert not Action.objects.filter(kind="update_livestream").exists()


def test_webinars_list_page_panel_and_confirmation(admin, world):
    webinar = world["webinar"]
    shown = (hostile("Webinar"), hostile("WHost") + "@evil.example")
    assert_escaped(admin.get("/webinars/"), *shown)
    assert_escaped(admin.get("/webinars/", {"q": PAYLOAD}, headers=RESULTS), PAYLOAD)
    url = reverse("webinar", args=[webinar.pk])
    assert_escaped(admin.get(url), *shown, "https://zoom.example/w/1?" + PAYLOAD)
    assert_escaped(admin.get(url, {"part": "controls"}, headers=HTMX))
    assert_escaped(
        admin.get(reverse("webinar-state", args=[webinar.pk]), {"v": "x"}, headers=HTMX),
        *shown,
        "https://zoom.example/w/1?" + PAYLOAD,
    )
    assert_escaped(admin.get(reverse("webinar-end", args=[webinar.pk])), hostile("Webinar"))


def test_past_meetings_list_and_page(admin, world):
    assert_escaped(admin.get("/past-meetings/"), hostile("Past topic"))
    assert_escaped(admin.get("/past-meetings/", {"q": PAYLOAD}, headers=RESULTS), PAYLOAD)
    assert_escaped(
        admin.get(reverse("past-meeting", args=[world["past"].pk])),
        hostile("Past topic"),
        hostile("Past host"),
        hostile("PastEmail") + "@evil.example",
        hostile("PastUuid")[:100],
        hostile("Dept"),
    )


def test_the_activity_list_its_filters_and_each_actions_page_and_job_fragment(admin, world):
    shown = (hostile("Topic"), hostile("User"), hostile("Zoom said"))
    assert_escaped(admin.get("/activity/"), *shown)
    assert_escaped(admin.get("/activity/", {"q": "script"}, headers=RESULTS), *shown)
    filtered = assert_escaped(admin.get("/activity/", {"user": PAYLOAD, "q": PAYLOAD}))
    assert PAYLOAD in filtered.text
    for action in (world["failed"], world["stream"], world["in_batch"]):
        assert_escaped(admin.get(reverse("action", args=[action.pk])), action.topic)
        assert_escaped(admin.get(reverse("action", args=[action.pk]), headers=HTMX))
    assert_escaped(
        admin.get(reverse("action", args=[world["failed"].pk])),
        hostile("Attempt"),
        hostile("TUuid")[:100],
    )


def test_bulk_dry_run_and_batch_progress(admin, world):
    ids = [world["meeting"].pk, world["deleted"].pk]
    assert_escaped(
        admin.get("/bulk/preview/", {"kind": "end_meeting", "ids": ids}),
        hostile("Topic"),
        hostile("Host") + "@evil.example",
    )
    url = reverse("bulk", args=[world["batch"].pk])
    assert_escaped(admin.get(url), hostile("B"))
    assert_escaped(admin.get(url, headers=HTMX), hostile("B"))


def test_connections_pages_and_the_message_naming_an_account(admin, world):
    account = world["account"]
    assert_escaped(admin.get("/connections/"), hostile("Account"), hostile("Zoom user"))
    for name in ("connection", "connection-reconnect", "connection-disconnect"):
        assert_escaped(admin.get(reverse(name, args=[account.pk])), hostile("Account"))
    assert_escaped(admin.get(reverse("connection", args=[account.pk])), hostile("Error"))
    # "“<name>” was already disconnected." as a message on the next page
    answer = admin.post(reverse("connection-disconnect", args=[world["gone"].pk]), follow=True)
    assert_escaped(answer, f"“{hostile('Gone')}” was already disconnected.")


def test_sign_in_page_with_a_hostile_next_and_a_not_found_page_with_a_hostile_path(client, db):
    assert_escaped(client.get("/accounts/login/", {"next": PAYLOAD}))
    response = client.get("/meetings/" + quote(PAYLOAD) + "/")
    assert response.status_code == 404
    assert SCRIPT not in response.content.decode() and IMG not in response.content.decode()
    assert Page(response.content.decode()).injected == []


# --- The Django admin ------------------------------------------------------------------------

ADMIN_MODELS = ("action", "meeting", "webinar", "pastmeeting", "webhookevent", "zoomaccount")


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ("action", (hostile("User"), hostile("Topic"))),
        ("meeting", (hostile("Topic"), hostile("Host") + "@evil.example")),
        ("webinar", (hostile("Webinar"),)),
        ("pastmeeting", (hostile("Past topic"), hostile("PastEmail") + "@evil.example")),
        ("webhookevent", (hostile("meeting.evil")[:100], hostile("Ignored"))),
        ("zoomaccount", (hostile("Account"), hostile("Broken"))),
        ("batch", (hostile("Account"),)),
    ],
)
def test_admin_change_lists_and_their_search(admin, world, model, shown):
    url = f"/admin/meetings/{model}/"
    assert_escaped(admin.get(url), *shown)
    assert_escaped(admin.get(url, {"q": PAYLOAD}), PAYLOAD)


@pytest.mark.parametrize(
    ("model", "row", "shown"),
    [
        ("action", "failed", (hostile("Zoom said"), hostile("Attempt"), hostile("User"))),
        ("action", "stream", (DISPLAY_SCRIPT,)),
        ("meeting", "meeting", (hostile("Topic"), "rtmp://live.example/" + PAYLOAD)),
        ("webinar", "webinar", (hostile("Webinar"), hostile("WHostId"))),
        ("pastmeeting", "past", (hostile("Past host"), hostile("Dept"))),
        ("webhookevent", "event", (hostile("EvUuid")[:100], hostile("Ignored"))),
        ("zoomaccount", "account", (hostile("Account"), hostile("Zoom user"), hostile("Error"))),
        ("batch", "batch", (hostile("B"),)),
    ],
)
def test_admin_change_pages(admin, world, model, row, shown):
    page = assert_escaped(admin.get(f"/admin/meetings/{model}/{world[row].pk}/change/"), *shown)
    assert "sk-escaping-0001" not in page.text


def test_admin_history_and_recent_actions(admin, admin_user, world):
    account = world["account"]
    LogEntry.objects.log_actions(  # the index lists the signed-in admin's own recent actions
        user_id=admin_user.pk, queryset=[account], action_flag=CHANGE, single_object=True
    )
    assert_escaped(
        admin.get(f"/admin/meetings/zoomaccount/{account.pk}/history/"),
        hostile("Changed"),
        hostile("User"),
    )
    assert_escaped(admin.get("/admin/"), hostile("Account"))


def test_the_admin_user_list_shows_a_hostile_username_escaped(admin, world):
    assert_escaped(admin.get("/admin/auth/user/"), hostile("User"))


# --- The CSV export --------------------------------------------------------------------------


def test_the_csv_export_is_an_attachment_that_keeps_text_as_text_and_defuses_formulas(
    admin, world, hostile_user
):
    formulas = ['=HYPERLINK("https://evil.example","x")', "+1+1", "-1+1", "@SUM(A1)", "\t=1"]
    for topic in formulas:
        make_action(world["account"], "end_meeting", state="failed", topic=topic)
    get_user_model().objects.filter(pk=hostile_user.pk).update(username="=cmd|' /C calc'!A0")

    response = admin.get("/admin/meetings/action/export.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    topics = {row["topic"] for row in rows}
    assert hostile("Topic") in topics  # text stays text: CSV is not HTML
    for topic in formulas:
        assert f"'{topic}" in topics and topic not in topics
    assert "'=cmd|' /C calc'!A0" in {row["requested_by"] for row in rows}
    assert not any(cell[:1] in "=+-@\t" for row in rows for cell in row.values() if cell)


def test_a_long_email_is_cut_into_escaped_pieces_that_read_back_as_the_address():
    from meetings.templatetags.dashboard import EMAIL_RUN, email_breaks

    address = "<b>&" * 20 + "@example.com"
    html = f"<td>{email_breaks(address)}</td>"
    page = Page(html)
    assert page.injected == []
    assert address in page.text
    assert email_breaks("host@example.com") == "host<wbr>@example.com"
    # 80 characters before the @: a break between each EMAIL_RUN characters, one before the @.
    pieces = -(-80 // EMAIL_RUN)
    assert html.count("<wbr>") == (pieces - 1) + 1
