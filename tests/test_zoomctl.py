"""`manage.py zoomctl`: the same pipeline from a shell, recorded as "cli" with who asked."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from meetings.management.commands.zoomctl import system_user
from meetings.models import Action, ActionState, Meeting, PastMeeting
from tests.fixtures.worker import purge_broker

ROOT = Path(__file__).resolve().parent.parent
STREAM_KEY = "sk-cli-5e4d3c2b1a"


def zoomctl(*args, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        call_command("zoomctl", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as e:
        err.write(str(e))
        code = e.returncode
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def fast(settings):
    # An end is confirmed by looks here, which must outlast the sandbox's status lag (2 s)
    settings.ACTION_CONFIRM_EVENT_WAIT_SECONDS = 0.05
    settings.ACTION_CONFIRM_INTERVAL_SECONDS = 0.25
    settings.ACTION_CONFIRM_CHECKS = 20


def test_the_user_is_required_and_must_hold_the_permission(sandbox_account, viewer):
    code, _, err = zoomctl("end-meeting", "81234567890")
    assert code == 1 and "--user USERNAME is required" in err
    code, _, err = zoomctl("end-meeting", "81234567890", "--user", "nobody")
    assert code == 1 and "No active user is named 'nobody'" in err
    code, _, err = zoomctl("end-meeting", "81234567890", "--user", viewer.username)
    assert code == 1 and "needs the meetings.end_meeting permission" in err
    assert Action.objects.count() == 0


def test_an_unknown_account_is_named_in_the_error(sandbox_account, operator):
    code, _, err = zoomctl("end-meeting", "1", "--user", operator.username, "--account", "Nope")
    assert code == 1 and "No Zoom account is named 'Nope' (accounts: Sandbox)" in err


def test_ending_meetings_inline_prints_outcomes_and_exits_zero(
    sandbox_account, sandbox_host, zoom_sandbox, operator
):
    first = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started", topic="One")
    second = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started", topic="Two")

    code, out, err = zoomctl(
        "end-meeting",
        str(first["id"]),
        str(second["id"]),
        "--user",
        operator.username,
        "--account",
        "Sandbox",
        "--inline",
    )

    assert (code, err) == (0, "")
    assert out.count(": queued") == 2
    assert out.count(": succeeded — Meeting ended (confirmed:") == 2
    for action in Action.objects.all():
        assert (action.source, action.requested_by, action.state) == (
            "cli",
            operator,
            ActionState.SUCCEEDED,
        )
        # who ran it on the server, beside the --user it acted as (issue 15)
        assert action.os_user == system_user() != ""
    assert zoom_sandbox.state.get_meeting(first["id"])["status"] == "waiting"


def test_a_failure_is_printed_and_the_exit_status_says_so(
    sandbox_account, sandbox_host, zoom_sandbox, operator
):
    locked = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started", host_locked=True)
    code, _, err = zoomctl("end-webinar", "91234567890", "--user", operator.username, "--inline")
    assert code == 1
    assert "failed — Zoom: webinar not found or has expired (3001)" in err
    code, _, err = zoomctl(
        "end-meeting", str(locked["id"]), "--user", operator.username, "--inline"
    )
    assert code == 1
    assert "failed — Zoom: you are not the host of this meeting (3003)" in err


def test_a_bad_id_is_refused_without_recording_anything(sandbox_account, operator):
    code, _, err = zoomctl("end-meeting", "12x", "--user", operator.username)
    assert code == 1
    assert "12x: refused: meeting id must be a Zoom id" in err
    assert Action.objects.count() == 0


def test_a_stream_key_read_from_stdin_reaches_zoom_and_is_never_printed(
    sandbox_account, sandbox_host, zoom_sandbox, operator
):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"])
    Meeting.objects.create(account=sandbox_account, zoom_id=meeting["id"])

    code, out, err = zoomctl(
        "update-livestream",
        str(meeting["id"]),
        "--stream-url",
        "rtmp://live.example/app",
        "--stream-key",
        "-",
        "--page-url",
        "https://watch.example/",
        "--resolution",
        "1080p",
        "--user",
        operator.username,
        "--inline",
        stdin=STREAM_KEY + "\n",
    )

    assert code == 0, err
    assert STREAM_KEY not in out + err
    configured = zoom_sandbox.state.get_meeting(meeting["id"])["livestream"]
    assert configured["stream_key"] == STREAM_KEY
    assert configured["resolution"] == "1080p"
    assert Action.objects.get().params["stream_key"] == "•••• (set)"


def test_starting_a_live_stream_takes_its_settings(
    sandbox_account, sandbox_host, zoom_sandbox, operator
):
    meeting = zoom_sandbox.state.add_meeting(
        sandbox_host["id"],
        status="started",
        livestream={
            "stream_url": "rtmp://live.example/app",
            "stream_key": STREAM_KEY,
            "page_url": "https://watch.example/",
        },
    )
    code, out, err = zoomctl(
        "start-livestream",
        str(meeting["id"]),
        "--no-active-speaker-name",
        "--display-name",
        "Launch",
        "--user",
        operator.username,
        "--inline",
    )
    assert code == 0, err
    action = Action.objects.get()
    assert action.params == {"active_speaker_name": False, "display_name": "Launch"}
    assert zoom_sandbox.state.get_meeting(meeting["id"])["livestreaming"] is True
    code, out, err = zoomctl(
        "stop-livestream", str(meeting["id"]), "--user", operator.username, "--inline"
    )
    assert code == 0 and "Live stream stopped" in out


def test_a_past_meeting_by_uuid(sandbox_account, sandbox_host, zoom_sandbox, operator):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"])
    instance = zoom_sandbox.state.add_past_instance(meeting["id"], slash="leading")
    code, _, err = zoomctl(
        "past-meeting", instance["uuid"], "--user", operator.username, "--inline"
    )
    assert code == 0, err
    assert PastMeeting.objects.filter(uuid=instance["uuid"]).exists()
    assert Action.objects.get().target_uuid == instance["uuid"]


def test_recovering_a_meeting(sandbox_account, sandbox_host, zoom_sandbox, operator):
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="deleted")
    code, out, _ = zoomctl(
        "recover-meeting", str(meeting["id"]), "--user", operator.username, "--inline"
    )
    assert code == 0 and "Meeting recovered" in out


@pytest.mark.django_db(transaction=True)
def test_without_wait_it_queues_for_the_workers_and_returns(sandbox_account, operator):
    code, out, _ = zoomctl("end-meeting", "81234567890", "--user", operator.username)
    assert code == 0
    action = Action.objects.get()
    assert out.strip() == f"#{action.pk} End meeting meeting 81234567890: queued"
    assert action.state == ActionState.QUEUED and action.celery_task_id  # sent to the broker
    # asking again while it waits makes no second action
    code, out, _ = zoomctl("end-meeting", "81234567890", "--user", operator.username)
    assert code == 0 and "already queued (no second action made)" in out
    assert Action.objects.count() == 1
    purge_broker()


@pytest.mark.django_db(transaction=True)
def test_wait_gives_up_after_its_timeout_with_its_own_exit_status(sandbox_account, operator):
    code, _, err = zoomctl(
        "end-meeting", "81234567890", "--user", operator.username, "--wait", "--timeout", "0.3"
    )
    assert code == 3
    assert "1 action(s) not finished after 0.3 s" in err
    purge_broker()


@pytest.mark.worker
def test_the_command_line_through_a_real_worker_exits_by_the_outcome(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    live = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started")
    locked = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started", host_locked=True)
    env = {**celery_worker_process.env}

    def run(*ids):
        return subprocess.run(
            [
                sys.executable,
                "manage.py",
                "zoomctl",
                "end-meeting",
                *map(str, ids),
                *("--user", operator.username, "--wait", "--timeout", "60"),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = run(live["id"])
    assert ok.returncode == 0, ok.stderr
    assert "succeeded — Meeting ended" in ok.stdout
    mixed = run(locked["id"])
    assert mixed.returncode == 1
    assert "Zoom: you are not the host of this meeting (3003)" in mixed.stderr
    assert {a.source for a in Action.objects.all()} == {"cli"}
