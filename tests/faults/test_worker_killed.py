"""Fault: the worker process is SIGKILLed (an OOM kill, a node lost) mid-action, again and
again, while a bulk end of 50 meetings runs against a Zoom that answers slowly."""

import random
import time

import pytest

from meetings.actions import create_batch
from meetings.models import Action, ActionState, Attempt, Meeting, MeetingStatus

from .ledger import Ledger, wait_until
from .world import live_meetings

pytestmark = [pytest.mark.faults, pytest.mark.worker]

MEETINGS = 50
KILLS = 5


def test_a_worker_killed_five_times_during_a_bulk_end_of_50_meetings_ends_each_once(
    fault_workers, sandbox_account, sandbox_host, zoom_sandbox, operator
):
    # given 50 live meetings, a Zoom answering each request in 300 ms, and a worker
    state = zoom_sandbox.state
    live = live_meetings(zoom_sandbox, sandbox_account, sandbox_host, MEETINGS)
    state.set_faults(latency_ms=300)
    workers = fault_workers(ACTION_MAX_RECLAIMS=10)
    rng = random.Random(7)

    # when an operator ends them all in one batch
    batch, plan = create_batch(
        account=sandbox_account,
        kind="end_meeting",
        targets=list(Meeting.objects.filter(account=sandbox_account)),
        user=operator,
    )
    assert batch.total == MEETINGS and all(item.do for item in plan)
    ledger = Ledger(batch.actions.values_list("pk", flat=True))

    # and the worker is SIGKILLed five times, each time with a call to Zoom in flight
    kills = 0
    done_at_last_kill = 0
    while kills < KILLS:
        wait_until(
            lambda last=done_at_last_kill: (
                ledger.observe() >= min(last + 3, MEETINGS - 1)
                and Attempt.objects.filter(action_id__in=ledger.ids, outcome="").exists()
            ),
            90,
            f"progress and a call in flight before kill {kills + 1}",
            on_poll=ledger.observe,
        )
        time.sleep(rng.uniform(0, 0.25))
        workers.kill()
        kills += 1
        done_at_last_kill = ledger.observe()
        workers.start()
    state.set_faults(latency_ms=50)
    actions = ledger.wait_finished(timeout=150)

    # then every action finished exactly once, and succeeded
    ledger.assert_exactly_once()
    assert kills == KILLS
    assert [a.state for a in actions] == [ActionState.SUCCEEDED] * MEETINGS, ledger.counts()
    for action in actions:
        assert action.result_summary.startswith("Meeting ended"), action.result_summary
    # the record shows the calls the kills cut short, and that their actions were taken over
    interrupted = Attempt.objects.filter(
        action_id__in=ledger.ids, outcome=Attempt.Outcome.INTERRUPTED
    )
    assert interrupted.exists()
    assert all(a.message.startswith("No answer recorded: the worker stopped") for a in interrupted)
    assert Action.objects.filter(pk__in=ledger.ids, reclaims__gt=0).exists()
    # and Zoom ended each meeting exactly once
    for meeting in live:
        assert state.get_meeting(meeting["id"])["status"] == "waiting"
        assert len(state.past_instances[meeting["id"]]) == 1
    assert Meeting.objects.filter(account=sandbox_account, status=MeetingStatus.ENDED).count() == (
        MEETINGS
    )
    progress = batch.progress()
    assert (progress["succeeded"], progress["finished"]) == (MEETINGS, True)
