"""Fault: PostgreSQL restarts under load (a minor-version upgrade, a failover, a crash), twice,
while operators click End and a worker runs the ends. Every database connection of the web
process and of the workers is dropped each time."""

import pytest
from django.contrib.auth.models import Group
from django.db import close_old_connections
from django.urls import reverse

from meetings.models import Action, ActionState, Attempt, Meeting, ZoomAccount
from meetings.zoom.sandbox import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_S2S_CLIENT_ID,
    DEFAULT_S2S_CLIENT_SECRET,
)

from .ledger import Ledger, wait_until
from .world import live_meetings

pytestmark = [pytest.mark.faults, pytest.mark.worker]

MEETINGS = 36


def test_postgresql_restarted_twice_under_load_loses_no_click_and_nothing_reconnects_by_hand(
    on_own_postgres, fault_workers, zoom_sandbox, client, django_user_model, password
):
    # given the dashboard on our own PostgreSQL (so we may restart it), 36 live meetings, a
    # Zoom answering in 150 ms, and a worker
    cluster = on_own_postgres
    account = ZoomAccount.objects.create(
        name="Sandbox",
        kind=ZoomAccount.Kind.SERVER_TO_SERVER,
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=DEFAULT_S2S_CLIENT_ID,
        client_secret=DEFAULT_S2S_CLIENT_SECRET,
    )
    operator = django_user_model.objects.create_user("oscar-operator", password=password)
    operator.groups.add(Group.objects.get(name="Zoom operators"))
    state = zoom_sandbox.state
    host = state.add_user(email="host@sandbox.example")
    live = live_meetings(zoom_sandbox, account, host, MEETINGS)
    rows = {m.zoom_id: m.pk for m in Meeting.objects.filter(account=account)}
    state.set_faults(latency_ms=1500)
    # with production's lease and dispatch timeout: a run the restart broke must be taken
    # over at once, not after the sweeper's two or ten minutes
    fault_workers(ACTION_LEASE_SECONDS=120, ACTION_DISPATCH_TIMEOUT_SECONDS=600)
    client.force_login(operator)
    client.raise_request_exception = False
    ledger = Ledger()

    def click_end(meeting):
        # What Django does when each request starts: drop connections that are too old or
        # broken. A web process must not serve a 500 because the database restarted.
        close_old_connections()
        response = client.post(reverse("meeting-end", args=[rows[meeting["id"]]]))
        assert response.status_code == 302, f"the End click answered {response.status_code}"
        ledger.add(Action.objects.get(kind="end_meeting", target_id=meeting["id"]).pk)

    def under_way(done):
        return lambda: (
            ledger.observe() >= done
            and Attempt.objects.filter(action_id__in=ledger.ids, outcome="").exists()
        )

    # when operators click End on 12, and PostgreSQL restarts while those run
    for meeting in live[:12]:
        click_end(meeting)
    wait_until(under_way(2), 60, "two ends done and one in flight", interval=0.05)
    cluster.restart("fast")  # every connection terminated, clean shutdown
    # and they click 12 more, then PostgreSQL crashes and restarts while those run
    for meeting in live[12:24]:
        click_end(meeting)
    wait_until(under_way(4), 90, "fourteen ends done and one in flight", interval=0.05)
    cluster.restart("immediate")  # a crash: recovery from the WAL at start
    for meeting in live[24:]:
        click_end(meeting)
    state.set_faults(latency_ms=100)
    actions = ledger.wait_finished(timeout=90, on_poll=close_old_connections)

    # then every click ran exactly once, and succeeded
    ledger.assert_exactly_once()
    assert len(actions) == MEETINGS
    assert {a.state for a in actions} == {ActionState.SUCCEEDED}, [
        (a.pk, a.state, a.result_summary) for a in actions if a.state != ActionState.SUCCEEDED
    ]
    for action in actions:
        assert action.result_summary.startswith("Meeting ended"), action.result_summary
        assert action.requested_by == operator
    for meeting in live:
        assert state.get_meeting(meeting["id"])["status"] == "waiting"
        assert len(state.past_instances[meeting["id"]]) == 1
