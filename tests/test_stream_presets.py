"""Stream presets and the webinar live stream panel (issue 16): admins keep presets per
connection with a write-only key; applying one is one click and one audited action that records
which preset; editing or deleting a preset never changes a stream already configured. The
webinar page configures, starts and stops like the meeting page; zoomctl and bulk do too.
Actions run inline here (`execute`) against the sandbox over HTTP; tests/test_webinar_streams_
pipeline.py runs them on a real worker."""

import pytest
from django.db import connection
from django.urls import reverse

from meetings.actions import dry_run, execute, request_action
from meetings.models import Action, ActionState, Batch, StreamPreset, Webinar
from meetings.models.actions import REDACTED
from meetings.presets import configure_params
from tests.test_zoomctl import zoomctl

from .dashboard_data import make_account, make_meeting, make_webinar

pytestmark = pytest.mark.django_db

KEY = "preset-key-4f1e9d2c7b"
OTHER_KEY = "preset-key-edited-88aa77"
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_preset(account, name="Town hall CDN", key=KEY, **extra):
    fields = {
        "stream_url": "rtmp://cdn.example.com/live",
        "page_url": "https://watch.example.com/townhall",
        "resolution": "1080p",
    }
    fields.update(extra)
    return StreamPreset.objects.create(account=account, name=name, stream_key=key, **fields)


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


# --- applying a preset from the pages ---------------------------------------------------------


def test_applying_a_preset_to_a_webinar_is_one_action_that_records_the_preset(as_operator):
    account = make_account()
    webinar = make_webinar(account, status="started", topic="Investor day")
    preset = make_preset(account)

    response = as_operator.post(
        reverse("webinar-stream-preset", args=[webinar.pk]), {"preset": preset.pk}, **HTMX
    )

    assert response.status_code == 200
    (action,) = Action.objects.all()
    assert action.kind == "update_webinar_livestream"
    assert (action.target_type, action.target_id) == ("webinar", webinar.zoom_id)
    assert action.params == {
        "stream_url": "rtmp://cdn.example.com/live",
        "stream_key": REDACTED,
        "page_url": "https://watch.example.com/townhall",
        "resolution": "1080p",
        "preset_id": preset.pk,
        "preset_name": "Town hall CDN",
    }
    assert action.secrets == {"stream_key": KEY}  # encrypted at rest, for the worker only
    html = response.content.decode()
    assert KEY not in html
    assert "Configure webinar live stream" in html or "Queued" in html
    # the encrypted column does not hold the key in clear
    with connection.cursor() as cursor:
        cursor.execute("select secret_params from meetings_action where id = %s", [action.pk])
        assert KEY not in cursor.fetchone()[0]


def test_the_picker_offers_only_the_pages_connections_presets_and_never_a_key(as_operator):
    account, other = make_account(), make_account("Other Zoom")
    meeting = make_meeting(account, status="started")
    make_preset(account, name="Ours")
    make_preset(other, name="Theirs", key="theirs-key-123456")

    html = as_operator.get(reverse("meeting", args=[meeting.pk])).content.decode()

    assert "Ours — rtmp://cdn.example.com/live" in html
    assert "Theirs" not in html
    assert KEY not in html and "theirs-key-123456" not in html


def test_a_preset_of_another_connection_or_a_live_stream_is_refused_with_a_reason(as_operator):
    account, other = make_account(), make_account("Other Zoom")
    webinar = make_webinar(account, status="started")
    streaming = make_webinar(account, status="started", livestream_status="live")
    theirs = make_preset(other, name="Theirs")
    ours = make_preset(account)

    wrong = as_operator.post(
        reverse("webinar-stream-preset", args=[webinar.pk]), {"preset": theirs.pk}, **HTMX
    )
    live = as_operator.post(
        reverse("webinar-stream-preset", args=[streaming.pk]), {"preset": ours.pk}, **HTMX
    )
    nothing = as_operator.post(
        reverse("webinar-stream-preset", args=[webinar.pk]), {"preset": "x"}, **HTMX
    )

    assert "no longer exists for this connection" in wrong.content.decode()
    assert "stop it before applying a preset" in live.content.decode()
    assert "Choose a stream preset." in nothing.content.decode()
    assert Action.objects.count() == 0


def test_a_viewer_cannot_apply_a_preset_and_sees_no_stream_controls(client, viewer):
    account = make_account()
    webinar = make_webinar(account, status="started")
    preset = make_preset(account)
    client.force_login(viewer)

    page = client.get(reverse("webinar", args=[webinar.pk])).content.decode()
    refused = client.post(
        reverse("webinar-stream-preset", args=[webinar.pk]), {"preset": preset.pk}
    )

    assert "Apply preset" not in page and "Start live stream" not in page
    assert refused.status_code == 403
    assert Action.objects.count() == 0


# --- the webinar page's own forms ------------------------------------------------------------


def test_the_webinar_page_configures_starts_and_stops_through_actions(as_operator):
    account = make_account()
    webinar = make_webinar(
        account,
        status="started",
        stream_url="rtmps://cdn.example.com/live",
        page_url="https://watch.example.com/w",
        stream_key=KEY,
    )

    saved = as_operator.post(
        reverse("webinar-stream-update", args=[webinar.pk]),
        {
            "stream_url": "rtmps://cdn.example.com/live",
            "stream_key": OTHER_KEY,
            "page_url": "https://watch.example.com/w",
            "resolution": "",
        },
        **HTMX,
    )
    Action.objects.update(state=ActionState.SUCCEEDED)  # (its run: tests below and the worker's)
    started = as_operator.post(
        reverse("webinar-stream-start", args=[webinar.pk]),
        {"active_speaker_name": "on", "display_name": "Investor day"},
        **HTMX,
    )
    Webinar.objects.filter(pk=webinar.pk).update(livestream_status="live")
    Action.objects.update(state=ActionState.SUCCEEDED)
    stopped = as_operator.post(reverse("webinar-stream-stop", args=[webinar.pk]), **HTMX)

    assert [r.status_code for r in (saved, started, stopped)] == [200, 200, 200]
    kinds = list(Action.objects.order_by("pk").values_list("kind", "params"))
    assert kinds[0][0] == "update_webinar_livestream" and kinds[0][1]["stream_key"] == REDACTED
    assert kinds[1] == (
        "start_webinar_livestream",
        {"active_speaker_name": True, "display_name": "Investor day"},
    )
    assert kinds[2] == ("stop_webinar_livestream", {})
    shown = saved.content.decode() + started.content.decode() + stopped.content.decode()
    assert KEY not in shown and OTHER_KEY not in shown


def test_start_is_refused_with_the_preflight_reason_for_a_webinar_not_live(as_operator):
    account = make_account()
    webinar = make_webinar(account, status="waiting", stream_url="rtmp://a.example/l")

    page = as_operator.get(reverse("webinar", args=[webinar.pk])).content.decode()
    answer = as_operator.post(reverse("webinar-stream-start", args=[webinar.pk]), {}, **HTMX)

    reason = "The webinar is not live, and Zoom streams only a webinar in progress."
    assert reason in page
    assert reason in answer.content.decode()
    assert Action.objects.count() == 0


# --- editing or deleting a preset never changes a configured stream ---------------------------


def test_the_worker_uses_the_preset_as_it_was_at_the_click(
    sandbox_account, sandbox_host, zoom_sandbox, operator
):
    world = zoom_sandbox.state
    live = world.add_webinar(sandbox_host["id"], status="started", topic="Town hall")
    make_webinar(sandbox_account, zoom_id=live["id"], status="started")
    preset = make_preset(sandbox_account)

    # when the preset is applied, then edited (another key and URL) before the worker runs
    action, _ = request_action(
        account=sandbox_account,
        kind="update_webinar_livestream",
        source="dashboard",
        target_id=live["id"],
        params=configure_params(preset),
        user=operator,
        enqueue=False,
    )
    preset.stream_key = OTHER_KEY
    preset.stream_url = "rtmp://elsewhere.example.com/live"
    preset.save()
    execute(action.pk)

    # then Zoom got the key and URL of the click, and the audit says which preset
    action.refresh_from_db()
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    assert "from the preset “Town hall CDN”" in action.result_summary
    assert world.webinars[live["id"]]["livestream"]["stream_key"] == KEY
    assert world.webinars[live["id"]]["livestream"]["stream_url"] == "rtmp://cdn.example.com/live"
    assert action.secret_params == ""  # the key copy is gone once the action finished
    assert KEY not in action.result_summary


def test_deleting_or_editing_a_preset_leaves_a_configured_stream_as_it_is(
    sandbox_account, sandbox_host, zoom_sandbox, operator
):
    world = zoom_sandbox.state
    live = world.add_webinar(sandbox_host["id"], status="started")
    make_webinar(sandbox_account, zoom_id=live["id"], status="started")
    preset = make_preset(sandbox_account)
    action, _ = request_action(
        account=sandbox_account,
        kind="update_webinar_livestream",
        source="dashboard",
        target_id=live["id"],
        params=configure_params(preset),
        user=operator,
        enqueue=False,
    )
    execute(action.pk)

    preset.stream_key = OTHER_KEY
    preset.page_url = "https://elsewhere.example.com/"
    preset.save()
    preset.delete()

    row = Webinar.objects.get(zoom_id=live["id"])
    assert (row.stream_url, row.stream_key, row.page_url) == (
        "rtmp://cdn.example.com/live",
        KEY,
        "https://watch.example.com/townhall",
    )
    assert world.webinars[live["id"]]["livestream"]["stream_key"] == KEY
    action.refresh_from_db()
    assert action.params["preset_name"] == "Town hall CDN"  # the record outlives the preset


def test_preset_parameters_are_validated_like_any_configuration(sandbox_account):
    params = {
        "stream_url": "rtmp://a.example/l",
        "stream_key": "k",
        "page_url": "https://p.example/",
    }
    for bad in ({"preset_id": "1", "preset_name": "x"}, {"preset_id": 1}, {"preset_name": "x"}):
        with pytest.raises(ValueError):
            request_action(
                account=sandbox_account,
                kind="update_livestream",
                source="dashboard",
                target_id=81234567890,
                params={**params, **bad},
            )
    assert Action.objects.count() == 0


# --- the admin: the key is write-only ---------------------------------------------------------


def test_an_admin_adds_a_preset_whose_key_is_never_shown_again(as_admin):
    account = make_account()
    add = reverse("admin:meetings_streampreset_add")
    response = as_admin.post(
        add,
        {
            "account": account.pk,
            "name": "Main stage",
            "stream_url": "rtmp://cdn.example.com/live",
            "new_stream_key": KEY,
            "page_url": "https://watch.example.com/main",
            "resolution": "720p",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    preset = StreamPreset.objects.get(name="Main stage")
    change = reverse("admin:meetings_streampreset_change", args=[preset.pk])

    page = as_admin.get(change).content.decode()
    kept = as_admin.post(
        change,
        {
            "account": account.pk,
            "name": "Main stage",
            "stream_url": "rtmps://cdn.example.com/live",
            "new_stream_key": "",
            "page_url": "https://watch.example.com/main",
            "resolution": "720p",
        },
    )
    preset.refresh_from_db()
    key_after_blank = preset.stream_key
    as_admin.post(
        change,
        {
            "account": account.pk,
            "name": "Main stage",
            "stream_url": "rtmps://cdn.example.com/live",
            "new_stream_key": OTHER_KEY,
            "page_url": "https://watch.example.com/main",
            "resolution": "720p",
        },
    )
    preset.refresh_from_db()
    listing = as_admin.get(reverse("admin:meetings_streampreset_changelist")).content.decode()

    assert preset.created_by is not None
    assert KEY not in page and "A key is stored (never shown)" in page
    assert kept.status_code == 302
    assert key_after_blank == KEY and preset.stream_url == "rtmps://cdn.example.com/live"
    assert preset.stream_key == OTHER_KEY
    assert KEY not in listing and OTHER_KEY not in listing
    with connection.cursor() as cursor:
        cursor.execute("select stream_key from meetings_streampreset where id = %s", [preset.pk])
        assert OTHER_KEY not in cursor.fetchone()[0]


def test_the_admin_refuses_a_preset_zoom_would_refuse_and_a_new_one_without_key(as_admin):
    account = make_account()
    response = as_admin.post(
        reverse("admin:meetings_streampreset_add"),
        {
            "account": account.pk,
            "name": "Broken",
            "stream_url": "ftp://cdn.example.com/live",
            "new_stream_key": "",
            "page_url": "not a page",
            "resolution": "",
        },
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Enter the stream key." in html
    assert "rtmp://" in html  # the stream URL's rule, in the operator's words
    assert StreamPreset.objects.count() == 0


# --- bulk on webinars -------------------------------------------------------------------------


def test_a_webinar_bulk_dry_run_says_what_it_would_start_and_why_not(as_operator):
    account = make_account()
    ready = make_webinar(
        account,
        status="started",
        stream_url="rtmp://a.example/l",
        page_url="https://p.example/",
        stream_key=KEY,
    )
    unconfigured = make_webinar(account, status="started")
    streaming = make_webinar(
        account,
        status="started",
        livestream_status="live",
        stream_url="rtmp://a.example/l",
        page_url="https://p.example/",
        stream_key=KEY,
    )
    waiting = make_webinar(account, status="waiting")

    plan = dry_run("start_webinar_livestream", [ready, unconfigured, streaming, waiting])
    stop_plan = dry_run("stop_webinar_livestream", [ready, streaming])
    page = as_operator.get(
        reverse("bulk-preview"),
        {
            "kind": "start_webinar_livestream",
            "ids": [ready.pk, unconfigured.pk, streaming.pk, waiting.pk],
        },
    ).content.decode()

    assert [(p.do, p.reason) for p in plan] == [
        (True, ""),
        (False, "no live stream is configured for it"),
        (False, "its live stream is already running"),
        (False, "not live (waiting)"),
    ]
    assert [p.do for p in stop_plan] == [False, True]
    assert "Start 1 live stream" in page and "Webinar id" in page
    assert KEY not in page


def test_a_webinar_bulk_stop_makes_a_batch_that_can_be_cancelled(as_operator):
    account = make_account()
    streams = [make_webinar(account, status="started", livestream_status="live") for _ in range(3)]

    response = as_operator.post(
        reverse("bulk-run"),
        {"kind": "stop_webinar_livestream", "ids": [w.pk for w in streams], "back": "q=x"},
    )
    batch = Batch.objects.get()
    cancelled = as_operator.post(reverse("bulk-cancel", args=[batch.pk]), **HTMX)

    assert response.status_code == 302 and response["Location"] == reverse("bulk", args=[batch.pk])
    assert batch.kind == "stop_webinar_livestream" and batch.total == 3
    assert set(batch.actions.values_list("target_type", flat=True)) == {"webinar"}
    assert "Batch cancelled" in cancelled.content.decode()
    assert set(batch.actions.values_list("state", flat=True)) == {"cancelled"}


def test_the_webinars_list_offers_bulk_to_those_allowed_and_comes_back_to_itself(
    as_operator, client, viewer
):
    account = make_account()
    make_webinar(account, status="started")

    html = as_operator.get(reverse("webinars")).content.decode()
    refused = as_operator.get(
        reverse("bulk-preview"), {"kind": "end_webinar", "ids": [], "back": "status=started"}
    )
    client.force_login(viewer)
    as_viewer = client.get(reverse("webinars")).content.decode()

    assert 'value="start_webinar_livestream"' in html and 'value="end_webinar"' in html
    assert refused.status_code == 302 and refused["Location"] == "/webinars/?status=started"
    assert 'name="ids"' not in as_viewer


# --- zoomctl ----------------------------------------------------------------------------------


def test_zoomctl_configures_a_webinar_from_a_preset_and_starts_and_stops_it(
    sandbox_account, sandbox_host, zoom_sandbox, operator
):
    world = zoom_sandbox.state
    live = world.add_webinar(sandbox_host["id"], status="started")
    make_preset(sandbox_account, name="Main stage")
    user = ("--user", operator.username, "--inline")

    configured = zoomctl(
        "update-webinar-livestream", str(live["id"]), "--preset", "Main stage", *user
    )
    started = zoomctl(
        "start-webinar-livestream", str(live["id"]), "--display-name", "Main stage", *user
    )
    streaming = world.webinars[live["id"]]["livestreaming"]
    stopped = zoomctl("stop-webinar-livestream", str(live["id"]), *user)
    unknown = zoomctl("update-webinar-livestream", str(live["id"]), "--preset", "Nope", *user)

    assert [c[0] for c in (configured, started, stopped)] == [0, 0, 0], (configured, started)
    assert "from the preset “Main stage”" in configured[1]
    assert streaming is True and world.webinars[live["id"]]["livestreaming"] is False
    assert unknown[0] == 1 and "no stream preset named 'Nope' (presets: Main stage)" in unknown[2]
    assert all(KEY not in out + err for _, out, err in (configured, started, stopped))


def test_the_webinar_admin_shows_a_streams_key_masked_only(as_admin):
    from meetings.models.mirror import STREAM_KEY_MASK

    account = make_account()
    webinar = make_webinar(
        account, stream_url="rtmp://a.example/l", page_url="https://p.example/", stream_key=KEY
    )

    page = as_admin.get(reverse("admin:meetings_webinar_change", args=[webinar.pk])).content
    listing = as_admin.get(reverse("admin:meetings_webinar_changelist")).content

    assert KEY.encode() not in page + listing
    # The masked form says a key is set and shows nothing of it (issue 15): no last characters.
    assert STREAM_KEY_MASK.encode() in page
    assert f"{STREAM_KEY_MASK}{KEY[-2:]}".encode() not in page + listing


def test_a_webinar_that_ends_stops_its_mirrored_stream():
    # Zoom sends no webinar stream event: the end of the webinar is what says the stream stopped
    from meetings import mirror

    account = make_account()
    webinar = make_webinar(account, status="started", livestream_status="live")

    mirror.record_webinar_status(account, webinar.zoom_id, "ended")

    webinar.refresh_from_db()
    assert (webinar.status, webinar.livestream_status) == ("ended", "stopped")


def test_the_connection_page_lists_its_presets_for_admins_without_keys(as_admin):
    account = make_account()
    make_preset(account, name="Main stage")
    make_preset(make_account("Other Zoom"), name="Elsewhere", key="elsewhere-key-99")

    html = as_admin.get(reverse("connection", args=[account.pk])).content.decode()

    assert "Main stage" in html and "Elsewhere" not in html
    assert KEY not in html
    assert f"/admin/meetings/streampreset/add/?account={account.pk}" in html


def test_a_webinar_bulk_end_is_reviewed_then_run_as_one_batch(as_operator):
    account = make_account()
    live = [make_webinar(account, status="started") for _ in range(2)]
    ended = make_webinar(account, status="ended")
    ids = [w.pk for w in (*live, ended)]

    review = as_operator.get(reverse("bulk-preview"), {"kind": "end_webinar", "ids": ids})
    run = as_operator.post(reverse("bulk-run"), {"kind": "end_webinar", "ids": ids})

    html = review.content.decode()
    assert "End 2 webinars" in html and "not live (ended)" in html
    assert f'href="/webinars/{live[0].pk}/"' in html
    batch = Batch.objects.get()
    assert run["Location"] == reverse("bulk", args=[batch.pk])
    assert (batch.kind, batch.total) == ("end_webinar", 2)
    page = as_operator.get(reverse("bulk", args=[batch.pk])).content.decode()
    assert "Webinar id" in page
