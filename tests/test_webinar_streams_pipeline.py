"""Webinar live streams and stream presets for real (issue 16): a Celery worker process on the
real broker, the test database, and the Zoom sandbox over HTTP."""

import pytest

from meetings.actions import create_batch, request_action
from meetings.models import Action, ActionState, StreamPreset, Webinar
from meetings.models.actions import REDACTED
from meetings.presets import configure_params
from tests.test_action_pipeline import wait_finished

from .dashboard_data import make_webinar

pytestmark = [pytest.mark.worker]

KEY = "sk-webinar-pipeline-93ab71"


def ask(account, kind, **kwargs):
    action, created = request_action(account=account, kind=kind, source="dashboard", **kwargs)
    assert created
    return action


def test_a_webinar_is_streamed_from_a_preset_and_stopped_by_the_worker(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    world = zoom_sandbox.state
    live = world.add_webinar(sandbox_host["id"], topic="Investor day", status="started")
    make_webinar(sandbox_account, zoom_id=live["id"], status="started", topic="Investor day")
    preset = StreamPreset.objects.create(
        account=sandbox_account,
        name="Investor CDN",
        stream_url="rtmp://cdn.example.com/live",
        stream_key=KEY,
        page_url="https://watch.example.com/investors",
        resolution="720p",
    )

    # when the preset is applied, the stream started, then stopped
    (configured,) = wait_finished(
        [
            ask(
                sandbox_account,
                "update_webinar_livestream",
                target_id=live["id"],
                params=configure_params(preset),
                user=operator,
            ).pk
        ]
    )
    preset.delete()  # deleting it afterwards changes nothing configured
    (started,) = wait_finished(
        [
            ask(
                sandbox_account,
                "start_webinar_livestream",
                target_id=live["id"],
                params={"active_speaker_name": True, "display_name": "Investor day"},
                user=operator,
            ).pk
        ]
    )
    streaming_at_zoom = world.webinars[live["id"]]["livestreaming"]
    mirrored_live = Webinar.objects.get(zoom_id=live["id"]).livestream_status
    (stopped,) = wait_finished(
        [ask(sandbox_account, "stop_webinar_livestream", target_id=live["id"], user=operator).pk]
    )

    # then Zoom did each, the mirror says so, and the audit names the preset, never the key
    for action in (configured, started, stopped):
        assert action.state == ActionState.SUCCEEDED, action.result_summary
        assert action.secret_params == ""
        assert action.attempts.filter(operation__startswith="webinarLiveStream").exists()
        assert KEY not in str(action.params) + action.result_summary
    assert configured.params["preset_name"] == "Investor CDN"
    assert configured.params["stream_key"] == REDACTED
    assert world.webinars[live["id"]]["livestream"] == {
        "stream_url": "rtmp://cdn.example.com/live",
        "stream_key": KEY,
        "page_url": "https://watch.example.com/investors",
        "resolution": "720p",
    }
    assert streaming_at_zoom is True and mirrored_live == "live"
    assert world.webinars[live["id"]]["livestreaming"] is False
    row = Webinar.objects.get(zoom_id=live["id"])
    assert (row.livestream_status, row.stream_url, row.stream_key) == (
        "stopped",
        "rtmp://cdn.example.com/live",
        KEY,
    )


def test_a_bulk_stop_of_webinar_streams_runs_on_the_worker_and_zoom_refusals_are_reported(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    world = zoom_sandbox.state
    stream = {
        "stream_url": "rtmp://cdn.example.com/live",
        "stream_key": KEY,
        "page_url": "https://watch.example.com/",
    }
    streaming = [
        world.add_webinar(
            sandbox_host["id"], status="started", livestream=stream, livestreaming=True
        )
        for _ in range(4)
    ]
    rows = [
        make_webinar(sandbox_account, zoom_id=w["id"], status="started", livestream_status="live")
        for w in streaming
    ]
    # one of them ended at Zoom since the mirror last heard: Zoom refuses, the batch says so
    world.end_webinar(streaming[3]["id"])

    batch, plan = create_batch(
        account=sandbox_account, kind="stop_webinar_livestream", targets=rows, user=operator
    )
    done = wait_finished(batch.actions.values_list("pk", flat=True))

    assert batch.total == 4 and all(item.do for item in plan)
    states = sorted(a.state for a in done)
    assert states == ["failed", "succeeded", "succeeded", "succeeded"]
    failed = next(a for a in done if a.state == ActionState.FAILED)
    assert failed.target_id == streaming[3]["id"]
    assert "webinar not found or has expired (3001)" in failed.result_summary
    assert all(world.webinars[w["id"]]["livestreaming"] is False for w in streaming)
    assert set(
        Webinar.objects.filter(zoom_id__in=[w["id"] for w in streaming[:3]]).values_list(
            "livestream_status", flat=True
        )
    ) == {"stopped"}
    assert Action.objects.filter(batch=batch, source="bulk").count() == 4
