"""The other screens: sign in and out, the overview, webinars, past meetings, activity, an
action's page, and the error pages (no debug page, no stack trace, ever)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from meetings.models import Action, Attempt, Webinar

from .dashboard_data import (
    make_account,
    make_action,
    make_meeting,
    make_past,
    make_webinar,
)

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


# --- sign in / out -----------------------------------------------------------------------------


def test_signing_in_with_the_form_lands_on_the_overview(client, operator, password):
    page = client.get(reverse("login")).content.decode()
    assert 'name="username"' in page and 'name="password"' in page
    response = client.post(
        reverse("login"), {"username": operator.username, "password": password}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("overview")
    assert "Overview" in response.content.decode()


def test_a_wrong_password_says_so_and_keeps_the_username(client, operator):
    response = client.post(reverse("login"), {"username": operator.username, "password": "nope"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Please enter a correct username and password" in page
    assert f'value="{operator.username}"' in page
    assert "nope" not in page


def test_after_a_wrong_password_the_cursor_is_in_the_password_box(client, operator):
    page = client.get(reverse("login")).content.decode()
    assert "Username:" not in page and ">Username</label>" in page
    assert "autofocus" in page.split('name="username"')[1].split(">")[0]
    response = client.post(reverse("login"), {"username": operator.username, "password": "nope"})
    page = response.content.decode()
    assert "autofocus" not in page.split('name="username"')[1].split(">")[0]
    assert "autofocus" in page.split('name="password"')[1].split(">")[0]


def test_signing_out_is_a_post_and_returns_to_sign_in(client, operator):
    client.force_login(operator)
    page = client.get(reverse("overview")).content.decode()
    assert f'action="{reverse("logout")}"' in page
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("overview")).status_code == 302


def test_the_sign_in_page_then_the_page_asked_for(client, viewer, password):
    url = reverse("meetings") + "?status=started"
    response = client.get(url)
    assert response.status_code == 302
    response = client.post(
        response["Location"], {"username": viewer.username, "password": password, "next": url}
    )
    assert response["Location"] == url


# --- overview ----------------------------------------------------------------------------------


def test_overview_shows_accounts_health_live_meetings_jobs_and_failures(client, viewer):
    account = make_account(
        last_sync_at=now() - timedelta(minutes=3), last_error="Zoom is rate limiting this account"
    )
    make_account("Broken", status="needs_reconnect")
    live = make_meeting(account, status="started", topic="Town hall")
    make_meeting(account, status="waiting", topic="Tomorrow")
    make_action(account, target=live, state="running")
    make_action(
        account,
        "recover_meeting",
        target=live,
        state="failed",
        result_summary="Zoom: meeting not found or not ended (3001)",
    )
    make_action(
        account,
        "fetch_past_meeting",
        target=live,
        state="failed",
        requested_at=now() - timedelta(days=3),
        result_summary="Too old to show",
    )
    client.force_login(viewer)
    page = client.get(reverse("overview")).content.decode()
    assert "Acme Zoom" in page and "Connected" in page
    assert "3\xa0minutes ago" in page
    assert "Zoom is rate limiting this account" in page
    assert "Needs reconnecting" in page
    assert "Town hall" in page and "Tomorrow" not in page
    assert "1 meeting" in page
    assert "1 job" in page
    assert "meeting not found or not ended (3001)" in page
    assert "Too old to show" not in page
    # The live parts refresh themselves.
    assert 'hx-trigger="every 5s"' in page


def test_overview_gives_the_day_of_a_time_not_today_and_lists_live_webinars_as_a_table(
    client, viewer
):
    account = make_account()
    today = now().replace(hour=9, minute=5, second=0, microsecond=0)
    make_meeting(account, status="started", topic="Since this morning", start_time=today)
    yesterday = today - timedelta(days=1)
    make_meeting(account, status="started", topic="Since yesterday", start_time=yesterday)
    make_webinar(account, status="started", topic="Launch webinar", start_time=yesterday)
    client.force_login(viewer)

    page = client.get(reverse("overview")).content.decode()

    assert re.search(r'title="[^"]+">09:05</time>', page)
    day = f"{yesterday:%a} {yesterday.day} {yesterday:%b}, 09:05"
    assert page.count(f">{day}</time>") == 2  # the meeting's and the webinar's
    webinars = page.split("Webinars live")[1]
    assert "<table" in webinars.split("</section>")[0]
    assert "Launch webinar" in webinars and "<li>" not in webinars.split("</section>")[0]


def test_overview_fragments_for_htmx(client, viewer):
    make_account()
    client.force_login(viewer)
    live = client.get(reverse("overview") + "?part=live", **HTMX).content.decode()
    assert live.lstrip().startswith('<div id="live"')
    accounts = client.get(reverse("overview") + "?part=accounts", **HTMX).content.decode()
    assert accounts.lstrip().startswith('<section class="card" id="accounts"')


def test_sync_now_asks_the_pipeline_once_and_shows_the_job(client, operator):
    account = make_account()
    client.force_login(operator)
    response = client.post(reverse("account-sync", args=[account.pk]), **HTMX)
    html = response.content.decode()
    assert "Syncing…" in html
    assert 'hx-trigger="sync-job-finished from:body"' in html  # no periodic refresh meanwhile
    client.post(reverse("account-sync", args=[account.pk]), **HTMX)
    action = Action.objects.get()
    assert (action.kind, action.target_type, action.source) == ("sync", "account", "dashboard")


def test_sync_now_says_why_it_is_unavailable_for_an_account_needing_reconnection(client, operator):
    account = make_account()
    account.status = account.Status.NEEDS_RECONNECT
    account.save(update_fields=["status"])
    client.force_login(operator)

    html = client.get(reverse("overview")).content.decode()

    button = re.search(r"<button[^>]*>Sync now</button>", html).group(0)
    assert "disabled" in button
    assert f'aria-describedby="sync-why-{account.pk}"' in button
    assert f'id="sync-why-{account.pk}">Reconnect the account to sync it<' in html


# --- webinars ----------------------------------------------------------------------------------


def test_webinars_list_search_and_page(client, viewer):
    account = make_account()
    webinar = make_webinar(account, topic="Investor day", status="started")
    make_webinar(account, topic="Hiring fair")
    client.force_login(viewer)
    listing = client.get(reverse("webinars"), {"q": "investor"})
    assert [w.pk for w in listing.context["page"].rows] == [webinar.pk]
    assert [
        w.topic for w in client.get(reverse("webinars"), {"status": "started"}).context["page"].rows
    ] == ["Investor day"]
    page = client.get(reverse("webinar", args=[webinar.pk])).content.decode()
    assert "Investor day" in page and "cfo@example.com" in page


def test_ending_a_webinar_is_confirmed_and_requested(client, operator):
    webinar = make_webinar(make_account(), topic="Investor day", status="started")
    client.force_login(operator)
    page = client.get(reverse("webinar", args=[webinar.pk])).content.decode()
    assert 'data-confirm="confirm-end"' in page
    assert "End this webinar for everyone?" in page
    confirm = client.get(reverse("webinar-end", args=[webinar.pk])).content.decode()
    assert "Panelists and every attendee are disconnected" in confirm
    response = client.post(reverse("webinar-end", args=[webinar.pk]), **HTMX)
    assert "Ending…" in response.content.decode()
    action = Action.objects.get()
    assert (action.kind, action.target_type, action.target_id) == (
        "end_webinar",
        "webinar",
        webinar.zoom_id,
    )


def test_a_webinar_s_timeline_follows_when_a_job_finishes(client, operator):
    # The list stayed "No actions on this webinar yet." after an end had succeeded, until a
    # reload: the page's poller now asks as soon as a job finishes, and the answer brings the
    # timeline (tests/test_views_webinar_state.py has the rest of the follow).
    account = make_account()
    webinar = make_webinar(account, topic="Investor day", status="started")
    client.force_login(operator)
    page = client.get(reverse("webinar", args=[webinar.pk])).content.decode()
    assert "Nothing has happened to this webinar through the dashboard yet." in page
    poller = re.search(r'<div id="follow"[^>]*>', page).group(0)
    assert "action-finished from:body" in poller
    version = re.search(r"\?v=([0-9a-f-]+)", poller).group(1)
    make_action(account, "end_webinar", target=webinar, state="succeeded")
    answer = client.get(reverse("webinar-state", args=[webinar.pk]), {"v": version}, **HTMX)
    html = answer.content.decode()
    assert re.search(r'<section [^>]*id="timeline"[^>]*hx-swap-oob="true"', html)
    assert "End webinar" in html and "Succeeded" in html
    assert "Nothing has happened to this webinar" not in html
    assert "<html" not in html
    fragment = client.get(reverse("webinar", args=[webinar.pk]), {"part": "timeline"}, **HTMX)
    assert 'id="timeline"' in fragment.content.decode()


# --- past meetings -----------------------------------------------------------------------------


def test_past_meetings_list_and_search(client, viewer):
    account = make_account()
    meeting = make_meeting(account, topic="Budget review", zoom_id=81234567890)
    past = make_past(account, meeting, uuid="/start//slash==")
    make_past(account, make_meeting(account, topic="Other"))
    client.force_login(viewer)
    for q in ("budget", "812 3456 7890", "/start//slash==", "host@example"):
        rows = client.get(reverse("past-meetings"), {"q": q}).context["page"].rows
        assert past in rows, q
    page = client.get(reverse("past-meeting", args=[past.pk])).content.decode()
    assert reverse("meeting", args=[meeting.pk]) in page
    # It names the meeting page's button as the button says it.
    listing = client.get(reverse("past-meetings")).content.decode()
    assert "with “Fetch details of the latest instance” on a meeting's page" in listing


# --- activity ----------------------------------------------------------------------------------


def test_activity_lists_and_filters_the_audit_trail(client, viewer, operator):
    account = make_account()
    meeting = make_meeting(account, topic="Board", zoom_id=84444444444)
    ended = make_action(
        account,
        target=meeting,
        state="succeeded",
        requested_by=operator,
        result_summary="Meeting ended",
    )
    failed = make_action(
        account,
        "start_livestream",
        target=meeting,
        state="failed",
        result_summary="Zoom: no live stream configured (3000)",
    )
    client.force_login(viewer)
    page = client.get(reverse("activity")).content.decode()
    assert "Meeting ended" in page and "no live stream configured (3000)" in page

    def rows(**params):
        return [a.pk for a in client.get(reverse("activity"), params).context["page"].rows]

    assert rows(state="failed") == [failed.pk]
    assert rows(kind="end_meeting") == [ended.pk]
    assert rows(user="OSCAR-operator") == [ended.pk]
    assert rows(q="8444 4444 444") == [failed.pk, ended.pk]
    assert rows(source="bulk") == []
    assert rows(state="nonsense") == [failed.pk, ended.pk]


def test_activity_s_user_box_takes_a_long_paste_whole_and_says_it_is_too_long(client, viewer):
    client.force_login(viewer)
    html = client.get(reverse("activity")).content.decode()
    assert "maxlength" not in html.split('id="id_user"')[1].split(">")[0]
    html = client.get(reverse("activity"), {"user": "u" * 200}).content.decode()
    assert "User: Ensure this value has at most 150 characters (it has 200)." in html
    user_box = html.split('id="id_user"')[1].split(">")[0]
    assert 'value="' + "u" * 200 + '"' in user_box
    assert 'aria-invalid="true"' in user_box


def test_an_action_page_shows_who_what_when_and_every_call_to_zoom(
    client, viewer, operator, admin_user
):
    account = make_account()
    meeting = make_meeting(account)
    action = make_action(
        account,
        "update_livestream",
        target=meeting,
        state="failed",
        requested_by=operator,
        client_ip="198.51.100.4",
        http_status=400,
        zoom_code=3000,
        result_summary="Zoom: cannot change a live stream while it streams (3000)",
        params={
            "stream_url": "rtmp://x.example/app",
            "stream_key": "•••• (set)",
            "page_url": "https://x.example",
        },
    )
    Attempt.objects.create(
        action=action,
        number=1,
        http_status=400,
        zoom_code=3000,
        duration_ms=87,
        message="cannot change",
    )
    client.force_login(viewer)
    page = client.get(reverse("action", args=[action.pk])).content.decode()
    # Where the operator was is not the viewers' business (issue 15): admins see it.
    assert "198.51.100.4" not in page
    client.force_login(admin_user)
    assert "198.51.100.4" in client.get(reverse("action", args=[action.pk])).content.decode()
    client.force_login(viewer)
    for text in (
        "oscar-operator",
        "87 ms",
        "3000",
        "rtmp://x.example/app",
        "<dt>Stream key</dt><dd>(hidden)</dd>",
        "<dt>Live stream page URL</dt><dd>https://x.example</dd>",
    ):
        assert text in page, text


def test_an_action_page_names_its_calls_and_parameters_in_plain_words(client, viewer, operator):
    account = make_account()
    meeting = make_meeting(account, status="started")
    action = make_action(
        account,
        "start_livestream",
        target=meeting,
        state="succeeded",
        attempts_count=1,
        params={"active_speaker_name": True, "display_name": ""},
    )
    Attempt.objects.create(action=action, number=1, operation="meetingLiveStreamStatusUpdate")
    ending = make_action(
        account, "end_meeting", target=meeting, state="succeeded", attempts_count=1
    )
    Attempt.objects.create(action=ending, number=1, operation="meetingStatus", http_status=204)
    Attempt.objects.create(action=ending, number=2, operation="meeting (confirm end)")
    client.force_login(viewer)

    page = client.get(reverse("action", args=[action.pk])).content.decode()
    ended = client.get(reverse("action", args=[ending.pk])).content.decode()

    assert "<dt>Show the active speaker&#x27;s name</dt><dd>yes</dd>" in page
    assert "active_speaker_name" not in page
    assert "<td>Start the live stream</td>" in page
    assert "meetingLiveStreamStatusUpdate" not in page
    # every call is counted, the check after the end too
    assert "<dt>Calls to Zoom</dt><dd>2</dd>" in ended
    assert "<td>End the meeting</td>" in ended
    assert "<td>Check that Zoom ended the meeting</td>" in ended
    # no link from the page to itself; the target links to the meeting
    assert f'href="{reverse("action", args=[ending.pk])}"' not in ended
    assert f'href="{reverse("meeting", args=[meeting.pk])}"' in ended


# --- errors ------------------------------------------------------------------------------------


def test_a_zoom_id_in_the_address_opens_its_meeting_or_webinar(client, viewer):
    account, other = make_account(), make_account("Other")
    meeting = make_meeting(account, zoom_id=85123456789)
    webinar = Webinar.objects.create(account=account, zoom_id=91234567890, topic="Launch")
    make_meeting(account, zoom_id=86000000001)
    make_meeting(other, zoom_id=86000000001)
    client.force_login(viewer)

    assert client.get("/meetings/85123456789/").url == f"/meetings/{meeting.pk}/"
    assert client.get("/webinars/91234567890/").url == f"/webinars/{webinar.pk}/"
    # two accounts have it: the list, searched for it
    assert client.get("/meetings/86000000001/").url == "/meetings/?q=86000000001"
    assert client.get("/meetings/86000000002/").status_code == 404


def test_unknown_pages_get_the_friendly_404(client, viewer):
    client.force_login(viewer)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Not found" in page and "Traceback" not in page


def test_a_page_an_operator_may_not_open_says_why_and_not_that_an_action_was_refused(
    client, operator
):
    # An operator following a link to Zoom connections was told "not take this action".
    client.force_login(operator)
    response = client.get(reverse("connections"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "Only administrators manage Zoom connections." in page
    assert "not open this page" in page and "take this action" not in page


def test_a_refused_action_still_says_the_action_was_refused(client, viewer):
    meeting = make_meeting(make_account(), status="started")
    client.force_login(viewer)
    response = client.post(reverse("meeting-end", args=[meeting.pk]))
    assert response.status_code == 403
    page = response.content.decode()
    assert "You are not allowed to end meetings." in page
    assert "not take this action" in page


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("/meetings/999999/", "There is no meeting at this address"),
        ("/webinars/999999/", "There is no webinar at this address"),
        ("/past-meetings/999999/", "There is no past meeting at this address"),
        ("/activity/999999/", "There is no action with this number"),
        ("/bulk/999999/", "There is no batch with this number"),
        ("/no/such/page/", "There is nothing at this address"),
    ],
)
def test_a_404_says_what_was_not_found(client, admin_user, address, says):
    # Every 404 used to blame a meeting "removed from the mirror", on a batch's address too.
    client.force_login(admin_user)
    response = client.get(address)
    assert response.status_code == 404
    page = response.content.decode()
    assert says in page
    assert "removed from the mirror" not in page


def test_a_crash_shows_the_calm_500_page_without_details(client, viewer, monkeypatch):
    from meetings.views import meetings_list

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals: token=abc123")

    monkeypatch.setattr(meetings_list, "filtered_meetings", explode)
    client.force_login(viewer)
    client.raise_request_exception = False
    response = client.get(reverse("meetings"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "secret internals" not in page and "Traceback" not in page


def test_a_post_without_a_csrf_token_is_refused_with_a_plain_explanation(operator):
    meeting = make_meeting(make_account(), status="started")
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(reverse("meeting-end", args=[meeting.pk]))
    assert response.status_code == 403
    assert "That form had expired" in response.content.decode()
    assert Action.objects.count() == 0


def test_htmx_requests_send_the_csrf_token_from_the_body(client, operator):
    client.force_login(operator)
    page = client.get(reverse("overview")).content.decode()
    assert 'hx-headers=\'{"x-csrftoken": "' in page


def test_a_running_sync_shows_its_progress(client, viewer):
    account = make_account()
    sync = make_action(
        account,
        "sync",
        state="running",
        result={
            "progress": {
                "users_total": 5,
                "users_done": 2,
                "pages": 7,
                "meetings": 140,
                "webinars": 3,
            }
        },
    )
    client.force_login(viewer)
    html = client.get(reverse("action", args=[sync.pk]), **HTMX).content.decode()
    assert "Users 2 of 5 · 7 pages · 140 meetings · 3 webinars" in html
    assert '<progress max="5" value="2"' in html
    overview = client.get(reverse("overview")).content.decode()
    assert "Users 2 of 5" in overview


def test_no_template_syntax_leaks_into_any_page(client, operator):
    # Django's {# #} comments are one line only: a multi-line one is printed into the page.
    account = make_account()
    meeting = make_meeting(account, status="started")
    client.force_login(operator)
    for url in (
        reverse("login"),
        reverse("overview"),
        reverse("meetings"),
        reverse("meeting", args=[meeting.pk]),
        reverse("webinars"),
        reverse("past-meetings"),
        reverse("activity"),
    ):
        page = client.get(url).content.decode()
        for token in ("{#", "#}", "{%", "%}", "{{", "}}"):
            assert token not in page, (url, token)


def test_relative_times_carry_what_the_browser_needs_to_keep_them_true(settings):
    from datetime import UTC, datetime

    from meetings.templatetags.dashboard import ago_time

    settings.TIME_ZONE = "UTC"
    at = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    html = ago_time(at)

    # the moment itself, the full time on hover, when the server said it, and what it said
    assert html.startswith('<time datetime="2026-12-06T09:00:00+00:00" ')
    assert 'title="2026-12-06 09:00:00 UTC"' in html
    rendered = re.search(r'data-now="([^"]+)"', html).group(1)
    assert abs((datetime.fromisoformat(rendered) - now()).total_seconds()) < 5
    assert re.search(r"data-ago[ >].*> *\d.* ago</time>$", html)
    assert ago_time(None) == ""


def test_no_form_label_ends_in_a_colon(client, admin_user):
    # The dashboard's labels stand apart by their style (DashboardForm's label_suffix), not
    # Django's default colon: every form of these pages says so.
    account = make_account()
    meeting = make_meeting(account, status="started")
    client.force_login(admin_user)
    pages = [
        reverse("notifications"),
        reverse("meeting", args=[meeting.pk]),
        reverse("connection-policies", args=[account.pk]),
        reverse("preferences"),
        reverse("meetings"),
        reverse("mfa_activate_totp"),
    ]
    for url in pages:
        page = client.get(url).content.decode()
        assert "<label" in page, url
        assert not re.search(r":\s*</label>", page), (
            url,
            re.findall(r"<label[^>]*>[^<]*:\s*<", page),
        )
