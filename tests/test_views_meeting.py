"""A meeting's page: End / Recover behind a confirmation, the live stream forms (validated like
Zoom, typed values kept, the key never shown), the job poll, past instances and the timeline."""

import re

import pytest
from django.urls import reverse

from meetings.models import Action, WebhookEvent

from .dashboard_data import make_account, make_action, make_meeting, make_past

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
GOOD_CONFIG = {
    "stream_url": "rtmps://live.example.com:443/app",
    "stream_key": "sk-live-7f3a9c2e",
    "page_url": "https://example.com/watch/town-hall",
    "resolution": "1080p",
}


@pytest.fixture
def account():
    return make_account()


@pytest.fixture
def live(account):
    return make_meeting(
        account, status="started", topic="Town hall <b>live</b>", host_email="ceo@example.com"
    )


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def test_the_page_shows_the_mirror_fields_escaped(as_operator, live):
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    assert "Town hall &lt;b&gt;live&lt;/b&gt;" in page
    assert "<b>live</b>" not in page
    assert str(live.zoom_id) in page
    assert "ceo@example.com" in page


def test_end_is_behind_a_dialog_naming_the_meeting_and_its_host(as_operator, live):
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    dialog = re.search(r'<dialog id="confirm-end".*?</dialog>', page, re.S).group(0)
    assert "Town hall &lt;b&gt;live&lt;/b&gt;" in dialog
    assert "ceo@example.com" in dialog
    assert f'action="{reverse("meeting-end", args=[live.pk])}"' in dialog
    assert "csrfmiddlewaretoken" in dialog
    # The opener is a real link to a confirmation page, for browsers without JavaScript.
    assert f'href="{reverse("meeting-end", args=[live.pk])}" data-confirm="confirm-end"' in page
    confirm = as_operator.get(reverse("meeting-end", args=[live.pk])).content.decode()
    assert "End this meeting for everyone?" in confirm
    assert "ceo@example.com" in confirm
    assert Action.objects.count() == 0


def test_end_as_a_plain_post_redirects_with_a_message_and_queues_one_job(as_operator, live):
    response = as_operator.post(reverse("meeting-end", args=[live.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("meeting", args=[live.pk])
    page = response.content.decode()
    assert "End meeting requested" in page
    action = Action.objects.get()
    assert (action.kind, action.target_id, action.state) == ("end_meeting", live.zoom_id, "queued")
    # The button is disabled while the job is in flight, and the job polls its state.
    assert "Ending…" in page
    assert f'hx-get="{reverse("action", args=[action.pk])}" hx-trigger="every 1s"' in page


def test_a_double_click_makes_one_job(as_operator, live):
    url = reverse("meeting-end", args=[live.pk])
    first = as_operator.post(url, **HTMX)
    second = as_operator.post(url, follow=True)
    assert first.status_code == 200
    assert Action.objects.count() == 1
    assert "already requested by oscar-operator" in second.content.decode()


def test_an_htmx_end_answers_the_status_panel_with_the_job(as_operator, live):
    response = as_operator.post(reverse("meeting-end", args=[live.pk]), **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="controls"')
    assert "Waiting for a worker" in html
    assert "<html" not in html


def test_end_is_offered_only_while_live_and_recover_only_when_deleted(as_operator, account):
    waiting = make_meeting(account, status="waiting")
    deleted = make_meeting(account, status="deleted")
    page = as_operator.get(reverse("meeting", args=[waiting.pk])).content.decode()
    assert "End meeting…" not in page
    assert "End is offered while the meeting is live" in page
    page = as_operator.get(reverse("meeting", args=[deleted.pk])).content.decode()
    assert "Recover meeting…" in page
    assert "End meeting…" not in page
    response = as_operator.post(reverse("meeting-end", args=[deleted.pk]), follow=True)
    assert "recover it first" in response.content.decode()
    response = as_operator.post(reverse("meeting-recover", args=[waiting.pk]), **HTMX)
    assert "Only a deleted meeting can be recovered" in response.content.decode()
    as_operator.post(reverse("meeting-recover", args=[deleted.pk]))
    assert list(Action.objects.values_list("kind", flat=True)) == ["recover_meeting"]


def test_the_job_poll_stops_with_286_and_announces_the_end_of_the_job(as_operator, live, account):
    running = make_action(account, target=live, state="running")
    response = as_operator.get(reverse("action", args=[running.pk]), **HTMX)
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in response.content.decode()

    failed = make_action(
        account,
        "recover_meeting",
        target=live,
        state="failed",
        http_status=400,
        zoom_code=3003,
        result_summary="Zoom: you are not the host of this meeting (3003)",
    )
    response = as_operator.get(reverse("action", args=[failed.pk]), **HTMX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "hx-trigger" not in html
    assert "you are not the host of this meeting (3003)" in html
    assert "action-finished" in response["HX-Trigger"]
    assert "controls-job-finished" in response["HX-Trigger"]


def test_the_live_stream_settings_are_saved_through_the_pipeline_with_the_key_hidden(
    as_operator, live
):
    response = as_operator.post(
        reverse("meeting-stream-update", args=[live.pk]), GOOD_CONFIG, **HTMX
    )
    assert response.status_code == 200
    action = Action.objects.get()
    assert action.kind == "update_livestream"
    assert action.params["stream_url"] == GOOD_CONFIG["stream_url"]
    assert GOOD_CONFIG["stream_key"] not in str(action.params)
    assert GOOD_CONFIG["stream_key"] not in response.content.decode()
    page = as_operator.get(reverse("action", args=[action.pk])).content.decode()
    assert GOOD_CONFIG["stream_key"] not in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stream_url", "ftp://live.example.com/app", "rtmp://, rtmps://, http:// or https://"),
        ("stream_url", "rtmp://" + "a" * 1020 + ".com", "at most 1024 characters"),
        ("stream_url", "", "This field is required"),
        ("stream_key", "k" * 513, "at most 512 characters"),
        ("page_url", "javascript:alert(1)", "http:// or https://"),
        ("page_url", "rtmp://live.example.com/app", "http:// or https://"),
        ("resolution", "4k", "Select a valid choice"),
    ],
)
def test_bad_live_stream_settings_get_an_inline_error_and_keep_what_was_typed(
    as_operator, live, field, value, message
):
    data = {**GOOD_CONFIG, field: value}
    response = as_operator.post(reverse("meeting-stream-update", args=[live.pk]), data, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert 'aria-invalid="true"' in html
    for kept in ("stream_url", "page_url"):
        if kept != field and data[kept]:
            assert f'value="{data[kept]}"' in html
    # The key is never rendered back, valid or not.
    assert GOOD_CONFIG["stream_key"] not in html
    assert "k" * 513 not in html
    assert Action.objects.count() == 0


def test_an_empty_key_keeps_the_configured_one_and_is_required_when_there_is_none(
    as_operator, live
):
    data = {**GOOD_CONFIG, "stream_key": ""}
    response = as_operator.post(reverse("meeting-stream-update", args=[live.pk]), data, **HTMX)
    assert "Enter the stream key" in response.content.decode()
    assert Action.objects.count() == 0

    live.stream_url, live.page_url, live.stream_key = (
        "rtmp://a.example/x",
        "https://a.example",
        "old-key-99",
    )
    live.save()
    response = as_operator.post(reverse("meeting-stream-update", args=[live.pk]), data, **HTMX)
    assert Action.objects.filter(kind="update_livestream").count() == 1
    html = response.content.decode()
    assert "old-key-99" not in html
    assert "A key is configured (not shown)" in html
    assert "••" in html  # the masked key


def test_settings_are_not_editable_while_the_stream_is_live(as_operator, live):
    live.stream_url, live.page_url, live.stream_key = (
        "rtmp://a.example/x",
        "https://a.example",
        "key-1",
    )
    live.livestream_status = "live"
    live.save()
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    assert "Settings can be changed only while the stream is stopped" in page
    assert re.search(r"<fieldset disabled>\s*<legend class=\"sr-only\">Live stream settings", page)
    response = as_operator.post(
        reverse("meeting-stream-update", args=[live.pk]), GOOD_CONFIG, **HTMX
    )
    assert "stop it before changing its settings" in response.content.decode()
    assert Action.objects.count() == 0


def test_the_preflight_says_why_start_is_unavailable(as_operator, account, live):
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    assert "Start is unavailable: No stream is configured" in page
    response = as_operator.post(reverse("meeting-stream-start", args=[live.pk]), {}, **HTMX)
    assert "No stream is configured" in response.content.decode()

    live.stream_url, live.page_url, live.stream_key = (
        "rtmp://a.example/x",
        "https://a.example",
        "key-1",
    )
    live.livestream_status = "live"
    live.save()
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    assert "Start is unavailable: The stream is already live." in page
    assert "Stop live stream…" in page

    waiting = make_meeting(
        account,
        status="waiting",
        stream_url="rtmp://a.example/x",
        page_url="https://a.example",
        stream_key="key-2",
    )
    page = as_operator.get(reverse("meeting", args=[waiting.pk])).content.decode()
    assert "The meeting is not live" in page
    assert Action.objects.count() == 0


def test_start_with_settings_and_an_invalid_display_name(as_operator, live):
    live.stream_url, live.page_url, live.stream_key = (
        "rtmp://a.example/x",
        "https://a.example",
        "key-1",
    )
    live.save()
    url = reverse("meeting-stream-start", args=[live.pk])
    too_long = "Quarterly all-hands live from the main auditorium!!"  # 51 characters
    response = as_operator.post(url, {"display_name": too_long}, **HTMX)
    html = response.content.decode()
    assert "at most 50 characters (it has 51)" in html
    assert f'value="{too_long}"' in html
    assert 'id="id_active_speaker_name" checked' not in html  # unticked stays unticked
    assert Action.objects.count() == 0

    as_operator.post(url, {"display_name": "Town hall", "active_speaker_name": "on"}, **HTMX)
    action = Action.objects.get()
    assert action.kind == "start_livestream"
    assert action.params == {"active_speaker_name": True, "display_name": "Town hall"}


def test_stop_is_confirmed_and_requested(as_operator, live):
    live.stream_url, live.page_url, live.stream_key = (
        "rtmp://a.example/x",
        "https://a.example",
        "key-1",
    )
    live.livestream_status = "live"
    live.save()
    confirm = as_operator.get(reverse("meeting-stream-stop", args=[live.pk])).content.decode()
    assert "Stop the live stream?" in confirm
    as_operator.post(reverse("meeting-stream-stop", args=[live.pk]))
    assert Action.objects.get().kind == "stop_livestream"


def test_past_instances_are_listed_and_fetched_on_demand(as_operator, account, live):
    past = make_past(account, live, uuid="/abc//def==")
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    assert "/abc//def==" in page
    assert reverse("past-meeting", args=[past.pk]) in page

    as_operator.post(reverse("meeting-fetch-past", args=[live.pk]), **HTMX)
    as_operator.post(reverse("meeting-fetch-past", args=[live.pk]), {"uuid": past.uuid}, **HTMX)
    response = as_operator.post(
        reverse("meeting-fetch-past", args=[live.pk]), {"uuid": "someone-elses=="}, **HTMX
    )
    assert "not one of this meeting&#x27;s" in response.content.decode()
    fetched = Action.objects.filter(kind="fetch_past_meeting").order_by("id")
    assert [(a.target_id, a.target_uuid) for a in fetched] == [
        (live.zoom_id, ""),
        (live.zoom_id, past.uuid),
    ]

    details = as_operator.get(reverse("past-meeting", args=[past.pk])).content.decode()
    for text in ("/abc//def==", "Host Person", "300", "12", "45 minutes"):
        assert text in details


def test_the_timeline_merges_actions_and_webhook_events(as_operator, account, live):
    make_action(account, target=live, state="succeeded", result_summary="Ended")
    WebhookEvent.objects.create(
        account=account, event="meeting.ended", object_id=live.zoom_id, dedupe_key="k1"
    )
    page = as_operator.get(
        reverse("meeting", args=[live.pk]) + "?part=timeline", **HTMX
    ).content.decode()
    assert page.lstrip().startswith('<section class="card" id="timeline"')
    assert "meeting.ended" in page
    assert "End meeting" in page


def test_a_refused_request_is_said_in_the_panel_not_as_an_error_page(
    as_operator, live, monkeypatch
):
    from meetings import actions

    def refuse(**kwargs):
        raise ValueError("End meeting needs a meeting id")

    monkeypatch.setattr(actions, "request_action", refuse)
    response = as_operator.post(reverse("meeting-end", args=[live.pk]), **HTMX)
    assert response.status_code == 200
    assert "End meeting needs a meeting id" in response.content.decode()
    response = as_operator.post(reverse("meeting-end", args=[live.pk]), follow=True)
    assert "End meeting needs a meeting id" in response.content.decode()


def test_unknown_meetings_are_a_friendly_404(as_operator):
    response = as_operator.get(reverse("meeting", args=[999999]))
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
    assert as_operator.post(reverse("meeting-end", args=[999999])).status_code == 404
