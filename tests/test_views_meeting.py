"""A meeting's page: End / Recover behind a confirmation, the live stream forms (validated like
Zoom, typed values kept, the key never shown), the job poll, past instances and the timeline."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.timezone import localtime, now

from meetings.models import Action, Attempt, WebhookEvent

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


def test_an_instance_ended_from_here_and_confirmed_offers_no_second_end_but_a_new_one_would(
    as_operator, account
):
    meeting = make_meeting(account, status="ended", uuid="instance-one==")
    make_action(
        account, "end_meeting", target=meeting, state="succeeded", target_uuid="instance-one=="
    )
    page = as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert "Ask Zoom to end it…" not in page
    assert "Succeeded" in page
    # The mirror lags a new instance (another UUID): asking Zoom is offered again.
    meeting.uuid = "instance-two=="
    meeting.save(update_fields=["uuid"])
    page = as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert "Ask Zoom to end it…" in page


def test_end_of_a_meeting_not_shown_live_says_it_still_asks_zoom_and_recover_needs_deleted(
    as_operator, account
):
    waiting = make_meeting(account, status="waiting")
    deleted = make_meeting(account, status="deleted")
    page = as_operator.get(reverse("meeting", args=[waiting.pk])).content.decode()
    assert "End meeting…" not in page
    assert "End still asks Zoom; if the meeting is not running, Zoom says so" in page
    assert "Ask Zoom to end it…" in page
    assert "End is offered while the meeting is live" not in page
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


def test_a_job_retrying_says_what_zoom_answered_last_time(as_operator, live, account):
    # given an end whose first call got a 503 and waits to try again
    running = make_action(account, target=live, state="running", attempts_count=2)
    Attempt.objects.create(
        action=running,
        number=1,
        operation="meetingStatus",
        outcome=Attempt.Outcome.RETRY,
        http_status=503,
        message="Zoom had a server error (HTTP 503): Service is temporarily unavailable.",
    )
    Attempt.objects.create(action=running, number=2, operation="meetingStatus")
    # when the page polls the job
    html = as_operator.get(reverse("action", args=[running.pk]), **HTMX).content.decode()
    # then it says it is retrying, and why
    assert "Trying again (attempt 2)" in html
    assert "Zoom had a server error (HTTP 503)" in html
    assert 'hx-trigger="every 1s"' in html


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


def test_the_answer_to_a_save_shows_what_was_saved_but_never_the_key(as_operator, live):
    response = as_operator.post(
        reverse("meeting-stream-update", args=[live.pk]), GOOD_CONFIG, **HTMX
    )

    html = response.content.decode()
    # The job's end refreshes the panel's state only, so the form must already say this.
    assert f'value="{GOOD_CONFIG["stream_url"]}"' in html
    assert f'value="{GOOD_CONFIG["page_url"]}"' in html
    assert '<option value="1080p" selected>' in html
    assert GOOD_CONFIG["stream_key"] not in html


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


def test_stream_fields_have_no_maxlength_so_a_long_paste_is_refused_not_silently_cut(
    as_operator, live
):
    # A browser cuts a pasted value at maxlength without a word, and a stream URL missing its
    # tail would pass validation and go to Zoom; the form's own limit says how long it was.
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    for name in ("stream_url", "stream_key", "page_url"):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
        assert "maxlength" not in tag
    long_url = "rtmp://live.example.com/" + "a" * 1100
    data = {**GOOD_CONFIG, "stream_url": long_url}
    response = as_operator.post(reverse("meeting-stream-update", args=[live.pk]), data, **HTMX)
    html = response.content.decode()
    assert f"at most 1024 characters (it has {len(long_url)})" in html
    assert f'value="{long_url}"' in html
    assert Action.objects.count() == 0


def test_a_typed_key_that_is_not_kept_after_an_error_is_asked_for_again(as_operator, live):
    data = {**GOOD_CONFIG, "page_url": "not a url"}
    response = as_operator.post(reverse("meeting-stream-update", args=[live.pk]), data, **HTMX)
    html = response.content.decode()
    assert GOOD_CONFIG["stream_key"] not in html
    assert "The key you typed was not kept" in html
    # Without a typed key there is nothing to say about it.
    data = {**GOOD_CONFIG, "page_url": "not a url", "stream_key": ""}
    response = as_operator.post(reverse("meeting-stream-update", args=[live.pk]), data, **HTMX)
    assert "The key you typed was not kept" not in response.content.decode()


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


def test_settings_cannot_be_saved_while_the_stream_is_live(as_operator, live):
    live.stream_url, live.page_url, live.stream_key = (
        "rtmp://a.example/x",
        "https://a.example",
        "key-1",
    )
    live.livestream_status = "live"
    live.save()
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    assert "Settings can be changed only while the stream is stopped" in page
    # The button says so, not the fields: they stay as typed when the state changes under them.
    assert re.search(r'<button type="submit" class="btn" disabled[^>]*>Save settings', page)
    response = as_operator.post(
        reverse("meeting-stream-update", args=[live.pk]), GOOD_CONFIG, **HTMX
    )
    assert "stop it before changing its settings" in response.content.decode()
    assert Action.objects.count() == 0


def test_the_preflight_says_why_start_is_unavailable(as_operator, account, live):
    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()
    # One sentence each, no "unavailable: No stream is configured: save …" chain of colons.
    assert (
        "Start is unavailable: No stream is configured yet. Save a stream URL, key and page URL "
        "first." in page
    )
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


def test_the_preflight_gives_the_first_reason_that_applies(as_operator, account):
    # Zoom's web portal may hold a stream URL and page without a key (the sandbox's presets do).
    keyless = {"stream_url": "rtmp://a.example/x", "page_url": "https://a.example"}
    ended = make_meeting(account, status="ended", **keyless)
    live = make_meeting(account, status="started", **keyless)

    ended_page = as_operator.get(reverse("meeting", args=[ended.pk])).content.decode()
    live_page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()

    assert "Start is unavailable: The meeting is not live" in ended_page
    assert "No stream is configured" not in ended_page
    assert "Start is unavailable: The stream has no key." in live_page
    assert "No stream is configured" not in live_page


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


def test_a_live_stream_shows_the_settings_it_was_started_with(as_operator, live, operator):
    live.stream_url, live.page_url, live.stream_key = ("rtmp://a.example/x", "https://a", "k-1")
    live.livestream_status = "live"
    live.save()
    make_action(
        live.account,
        "start_livestream",
        target=live,
        state="succeeded",
        requested_by=operator,
        params={"active_speaker_name": False, "display_name": "Board, live"},
    )

    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()

    started = page.split('id="started-with"')[1].split("</dl>")[0]
    assert "from the dashboard by oscar-operator" in started
    assert "<dt>Speaker's name</dt><dd>Not shown</dd>" in started
    assert "<dt>Display name</dt><dd>Board, live</dd>" in started


def test_the_stream_panel_says_settings_are_being_saved_not_that_none_are_configured(
    as_operator, live
):
    make_action(live.account, "update_livestream", target=live, state="running")

    page = as_operator.get(reverse("meeting", args=[live.pk])).content.decode()

    assert "Saving the stream settings at Zoom…" in page
    assert "No custom live stream is configured" not in page


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
    assert "meeting.ended" in page.replace("<wbr>", "")  # the name may break after "."
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


def test_end_opened_directly_for_a_meeting_not_live_says_what_was_last_seen_and_may_ask_zoom(
    as_operator, account
):
    # given a meeting the mirror last heard of as waiting, an hour ago
    heard = now() - timedelta(hours=1)
    waiting = make_meeting(account, status="waiting", last_synced_at=heard)

    page = as_operator.get(reverse("meeting-end", args=[waiting.pk])).content.decode()

    # then the page says so plainly, and when; the mirror may be stale, so Zoom may be asked
    seen = re.search(r'<p [^>]*id="last-seen".*?</p>', page, re.S).group(0)
    assert "last saw this meeting as <strong>waiting (not started)</strong>" in seen
    assert f'datetime="{localtime(heard).isoformat()}"' in seen
    assert "Zoom may know better" in seen
    assert re.search(r'<button type="submit" [^>]*>Ask Zoom to end it</button>', page)
    assert ">End meeting</button>" not in page
    assert Action.objects.count() == 0


def test_end_opened_directly_for_a_live_meeting_is_the_plain_confirmation(as_operator, live):
    page = as_operator.get(reverse("meeting-end", args=[live.pk])).content.decode()

    assert 'id="last-seen"' not in page
    assert re.search(r'<button type="submit" [^>]*>End meeting</button>', page)


def test_end_opened_for_a_deleted_meeting_and_recover_for_one_not_deleted_offer_no_button(
    as_operator, account
):
    deleted = make_meeting(account, status="deleted", last_event_at=now())
    live = make_meeting(account, status="started")  # added by hand: never synced since

    end = as_operator.get(reverse("meeting-end", args=[deleted.pk])).content.decode()
    recover = as_operator.get(reverse("meeting-recover", args=[live.pk])).content.decode()

    # The POSTs refuse these, so the pages say why instead of offering a button.
    assert "This meeting was deleted at Zoom: recover it first." in end
    assert "last saw this meeting as <strong>deleted</strong>" in end
    assert "Only a deleted meeting can be recovered." in recover
    assert "last saw this meeting as <strong>live</strong>" in recover
    assert "<time datetime=" in end
    assert "has heard nothing from Zoom about it since it was added" in recover
    for page in (end, recover):
        card = re.search(r'<div class="card confirm-page">.*?</form>', page, re.S).group(0)
        assert "<button" not in card
        assert ">Back to the meeting</a>" in page
    # A deleted meeting's recover page is the plain confirmation.
    page = as_operator.get(reverse("meeting-recover", args=[deleted.pk])).content.decode()
    assert 'id="last-seen"' not in page
    assert re.search(r'<button type="submit" [^>]*>Recover meeting</button>', page)
