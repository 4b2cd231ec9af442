"""A sync fanned out into bounded parts (issue 13): no task outlives the broker's visibility
timeout, a part whose worker died is redone alone, and a sync that falls due while one runs
rolls over instead of piling up."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils.timezone import now

from meetings.actions import execute, request_action
from meetings.models import (
    Action,
    ActionKind,
    ActionSource,
    ActionState,
    Meeting,
    SyncPart,
    SyncRun,
)
from meetings.sync import SyncAlreadyRunning, sync_account
from meetings.tasks.actions import run_action
from meetings.tasks.mirror import sync_all_accounts, sync_part
from meetings.zoom.client import ZoomClient
from tests.waiting import wait_until

# Short parts, leases and checks, so a test sees several parts and a takeover in seconds.
FAST_PARTS = {
    "SYNC_PART_USERS": "1",
    "SYNC_PART_LEASE_SECONDS": "3",
    "SYNC_CHECK_INTERVAL_SECONDS": "0.5",
}


def world(zoom, users, meetings_each):
    """USERS more users on the sandbox with MEETINGS_EACH meetings each; their meeting ids."""
    ids = set()
    for _ in range(users):
        host = zoom.add_user()
        ids |= {zoom.add_meeting(host["id"])["id"] for _ in range(meetings_each)}
    return ids


def meeting_lists(zoom):
    """{user id: times their scheduled meetings were listed}."""
    counts = {}
    for r in zoom.requests:
        parts = r.path.split("?")[0].split("/")
        if len(parts) == 5 and parts[4] == "meetings" and r.method == "GET":
            counts[parts[3]] = counts.get(parts[3], 0) + 1
    return counts


def sync_now(account):
    action, created = request_action(
        account=account, kind=ActionKind.SYNC, source=ActionSource.DASHBOARD
    )
    assert created
    return action


def finished(action, timeout=90):
    return wait_until(
        lambda: Action.objects.filter(pk=action.pk, state__in=["succeeded", "failed"]).first(),
        timeout,
        "the sync to finish",
    )


def test_every_task_of_a_sync_ends_well_before_the_visibility_timeout():
    visibility = 3600  # the default CELERY_VISIBILITY_TIMEOUT
    # a part: a few users' lists; the action's runs plan, look and finish
    assert sync_part.time_limit == settings.SYNC_PART_TIME_LIMIT_SECONDS
    assert sync_part.soft_time_limit < sync_part.time_limit <= visibility / 10
    assert run_action.time_limit < visibility


@pytest.mark.worker
@pytest.mark.worker_env(**FAST_PARTS)
@pytest.mark.django_db(transaction=True)
def test_a_sync_fans_out_into_one_bounded_task_per_part_on_a_real_worker(
    celery_worker_process, zoom_sandbox, request
):
    # given 5 users more than the sandbox's owner, with 4 meetings each: 6 parts of one user
    account = request.getfixturevalue("sandbox_account")
    zoom = zoom_sandbox.state
    ids = world(zoom, 5, 4)

    # when an operator asks for a sync
    action = finished(sync_now(account))

    # then one action, one summary, and six parts each done once by its own task
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    assert action.result_summary.startswith("Synced 6 users: 20 meetings and 0 webinars")
    assert action.result["users_total"] == 6 and action.result["complete"] is True
    run = SyncRun.objects.get(action=action)
    assert run.state == SyncRun.State.DONE
    parts = list(run.parts.order_by("number"))
    assert [(p.state, p.runs, len(p.users)) for p in parts] == [("done", 1, 1)] * 6
    assert set(Meeting.objects.values_list("zoom_id", flat=True)) == ids
    log = celery_worker_process.log()
    done_by_tasks = log.count("Task meetings.tasks.mirror.sync_part[")
    assert done_by_tasks >= 6 * 2, log[-3000:]  # each received, then succeeded
    assert set(meeting_lists(zoom).values()) == {1}  # each user's list asked for once

    # and a second sync with nothing changed at Zoom writes no meeting again
    before = dict(Meeting.objects.values_list("zoom_id", "last_synced_at"))
    again = finished(sync_now(account))
    assert again.state == ActionState.SUCCEEDED, again.result_summary
    assert (again.result["created"], again.result["updated"], again.result["deleted"]) == (0, 0, 0)
    assert dict(Meeting.objects.values_list("zoom_id", "last_synced_at")) == before


@pytest.mark.worker
@pytest.mark.worker_env(**FAST_PARTS)
@pytest.mark.django_db(transaction=True)
def test_a_part_whose_worker_is_killed_mid_way_is_redone_alone(
    celery_worker_process, zoom_sandbox, request
):
    # given a worker with one pool process (killing an idle one too could take billiard's
    # shared queue lock with it) and no beat, and five users whose lists Zoom answers slowly,
    # one part each
    celery_worker_process.kill()
    worker = celery_worker_process.start(beat=False, concurrency=1)
    account = request.getfixturevalue("sandbox_account")
    zoom = zoom_sandbox.state
    ids = world(zoom, 4, 3)
    zoom.set_faults(latency_ms=600)
    action = sync_now(account)

    # when the worker's pool processes are killed while a part runs and another is done
    wait_until(
        lambda: (
            SyncPart.objects.filter(state="done").exists()
            and SyncPart.objects.filter(state="running").exists()
        ),
        60,
        "a part done and another running",
    )
    assert worker.kill_children()
    at_kill = {p.pk: (p.state, p.finished_at) for p in SyncPart.objects.all()}
    zoom.set_faults()

    # then the sync succeeds, the parts done before the kill were not done again, and those
    # killed mid-way were taken again once their lease ran out, one more run each
    action = finished(action, 120)
    assert action.state == ActionState.SUCCEEDED, action.result_summary
    assert set(Meeting.objects.values_list("zoom_id", flat=True)) == ids
    killed, kept = [], []
    for part in SyncPart.objects.all():
        state, finished_at = at_kill[part.pk]
        assert part.state == "done"
        if state == "done":
            assert (part.runs, part.finished_at) == (1, finished_at)
            kept.append(part)
        elif state == "running":
            assert part.runs == 2
            killed.append(part)
        else:
            assert part.runs == 1  # not started before the kill: done once, after it
    assert killed and kept
    listed = meeting_lists(zoom)
    assert {listed[p.users[0]["id"]] for p in kept} == {1}
    assert action.result["meetings"] == len(ids)  # the redone part counted once
    assert action.result_summary.startswith(f"Synced 5 users: {len(ids)} meetings")


def test_a_due_sync_rolls_over_while_one_runs_instead_of_piling_up(sandbox_account, settings):
    # given a scheduled sync that is running, fanned out, and long overdue for its successor
    settings.SYNC_INTERVAL_SECONDS = 60
    running, _ = request_action(
        account=sandbox_account, kind=ActionKind.SYNC, source=ActionSource.SCHEDULE, enqueue=False
    )
    Action.objects.filter(pk=running.pk).update(
        state=ActionState.RUNNING, requested_at=now() - timedelta(hours=2)
    )
    SyncRun.objects.create(action=running, account=sandbox_account, pass_started=now())

    # when beat asks for the syncs that are due, again and again
    asked = [sync_all_accounts() for _ in range(3)]

    # then none is created: the running one goes on alone, and no second sync can start
    assert asked == [0, 0, 0]
    assert list(Action.objects.filter(kind="sync").values_list("pk", flat=True)) == [running.pk]
    with pytest.raises(SyncAlreadyRunning):
        sync_account(sandbox_account, ZoomClient.for_account(sandbox_account))

    # and once it is done, the sync that rolled over is due at once
    Action.objects.filter(pk=running.pk).update(state=ActionState.SUCCEEDED, finished_at=now())
    assert sync_all_accounts() == 1
    assert Action.objects.filter(kind="sync", state="queued").count() == 1


def test_a_sync_run_inline_does_its_parts_in_the_same_process(
    sandbox_account, zoom_sandbox, settings
):
    settings.SYNC_PART_USERS = 2
    zoom = zoom_sandbox.state
    ids = world(zoom, 3, 2)
    action, _ = request_action(
        account=sandbox_account,
        kind=ActionKind.SYNC,
        source=ActionSource.COMMAND_LINE,
        enqueue=False,
    )

    assert execute(action.pk) == ActionState.SUCCEEDED

    action.refresh_from_db()
    assert action.result_summary.startswith("Synced 4 users: 6 meetings")
    assert list(SyncPart.objects.values_list("state", "runs")) == [("done", 1)] * 2
    assert set(Meeting.objects.values_list("zoom_id", flat=True)) == ids
    assert SyncRun.objects.get().state == SyncRun.State.DONE
