"""Fault: Redis (the broker, and the rate limiter's store) stops for 10 s while operators click,
and comes back empty (no persistence: every queued message is gone)."""

import time

import pytest
from django.urls import reverse

from meetings.models import Action, ActionState, Attempt, Meeting

from .ledger import Ledger, wait_until
from .world import live_meetings

pytestmark = [pytest.mark.faults, pytest.mark.worker]

OUTAGE = 10  # seconds


def test_redis_stopped_for_10_seconds_while_operators_click_loses_no_click(
    on_own_redis, fault_workers, sandbox_account, sandbox_host, zoom_sandbox, operator, client
):
    # given 24 live meetings, a Zoom answering in 200 ms, and a worker on our own Redis
    state = zoom_sandbox.state
    live = live_meetings(zoom_sandbox, sandbox_account, sandbox_host, 24)
    rows = {m.zoom_id: m for m in Meeting.objects.filter(account=sandbox_account)}
    state.set_faults(latency_ms=200)
    fault_workers()
    client.force_login(operator)
    ledger = Ledger()

    def click_end(meeting):
        """The operator's End button (a plain form POST); returns how long the page took."""
        started = time.monotonic()
        response = client.post(reverse("meeting-end", args=[rows[meeting["id"]].pk]))
        took = time.monotonic() - started
        assert response.status_code == 302, response.status_code
        action = Action.objects.get(kind="end_meeting", target_id=meeting["id"])
        ledger.add(action.pk)
        return took

    # when operators end 8 meetings, and Redis stops while those run
    for meeting in live[:8]:
        click_end(meeting)
    wait_until(
        lambda: Attempt.objects.filter(action_id__in=ledger.ids, outcome="").exists(),
        30,
        "a call in flight",
        interval=0.05,
    )
    on_own_redis.stop()
    stopped_at = time.monotonic()

    # and they end 8 more while it is down
    during = [click_end(meeting) for meeting in live[8:16]]
    clicked_during = ledger.ids[8:]
    # then each click was answered at once, recorded, and left for the sweeper (not lost)
    assert max(during) < 3, f"a click took {max(during):.1f} s while Redis was down"
    for action in Action.objects.filter(pk__in=clicked_during):
        assert action.state == ActionState.QUEUED
        assert action.requested_by == operator
        assert action.celery_task_id == "" and action.lease_expires_at is None
    # and the dashboard's pages still answer
    for url in (
        reverse("meeting", args=[rows[live[8]["id"]].pk]),
        reverse("meetings"),
        reverse("activity"),
        reverse("overview"),
    ):
        assert client.get(url).status_code == 200, url

    # when Redis comes back (empty) after 10 s, and operators end the last 8
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped_at)))
    on_own_redis.start()
    for meeting in live[16:]:
        click_end(meeting)
    actions = ledger.wait_finished(timeout=90)

    # then every click ran, once, and every meeting ended once
    ledger.assert_exactly_once()
    assert len(actions) == 24
    assert {a.state for a in actions} == {ActionState.SUCCEEDED}, [
        (a.pk, a.state, a.result_summary) for a in actions if a.state != ActionState.SUCCEEDED
    ]
    for action in actions:
        # confirmed by Zoom, even for the ends under way when Redis went (the rate limiter
        # used the database meanwhile)
        assert action.result_summary.startswith("Meeting ended (confirmed"), action.result_summary
    for meeting in live:
        assert state.get_meeting(meeting["id"])["status"] == "waiting"
        assert len(state.past_instances[meeting["id"]]) == 1
    for action in Action.objects.filter(pk__in=clicked_during):
        assert action.celery_task_id  # sent by the sweeper once the broker was back
