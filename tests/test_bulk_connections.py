"""One bulk batch over meetings of two Zoom connections, run by a real worker against two accounts
of the sandbox: each connection's actions at its own rate limit, side by side; cancel as for a
batch on one connection."""

import re
import time

import pytest

from meetings.actions import cancel_batch, create_batch
from meetings.models import ActionState, Meeting, ZoomAccount
from meetings.zoom.sandbox.state import ADMIN_SCOPES
from tests.test_action_pipeline import wait_finished

pytestmark = pytest.mark.worker

SECOND_ACCOUNT_ID = "sandbox-account-2"
MEETING_PATH = re.compile(r"/meetings/(\d+)")


@pytest.fixture
def second_account(zoom_sandbox, db):
    """A second connection: another Zoom account of the sandbox, with its own app."""
    state = zoom_sandbox.state
    state.add_account(SECOND_ACCOUNT_ID)
    state.add_app(
        "second-s2s-client",
        "second-s2s-secret-value",
        account_id=SECOND_ACCOUNT_ID,
        kind="server_to_server",
        scopes=ADMIN_SCOPES,
    )
    host = state.add_user(email="host2@second.example", account_id=SECOND_ACCOUNT_ID)
    account = ZoomAccount.objects.create(
        name="Second",
        kind=ZoomAccount.Kind.SERVER_TO_SERVER,
        zoom_account_id=SECOND_ACCOUNT_ID,
        client_id="second-s2s-client",
        client_secret="second-s2s-secret-value",
        scopes="meeting:read:admin meeting:write:admin webinar:read:admin "
        "webinar:write:admin user:read:admin",
    )
    return account, host


def live_meetings(state, account, host, count):
    """COUNT live meetings at the sandbox, mirrored as the sync would have."""
    rows = []
    for n in range(count):
        zoom = state.add_meeting(
            host["id"], topic=f"{account.name} town hall {n}", status="started"
        )
        rows.append(
            Meeting.objects.create(
                account=account,
                zoom_id=zoom["id"],
                topic=zoom["topic"],
                host_id=host["id"],
                host_email=host["email"],
                status="started",
            )
        )
    return rows


# Two a second per connection (booked at 80%): each connection's ends take their time, and
# only running side by side do both finish in the time of one.
@pytest.mark.worker_env(ZOOM_RATE_LIMIT_LIGHT="2", ZOOM_RATE_LIMIT_HEADROOM="0.8")
def test_a_batch_over_two_connections_runs_each_at_its_own_limit_side_by_side(
    celery_worker_process, sandbox_account, sandbox_host, second_account, zoom_sandbox, operator
):
    # given Zoom's Light limit at 2 a second for each of two accounts, and 5 live meetings each
    state = zoom_sandbox.state
    state.set_rate_limit("light", 2)
    other, other_host = second_account
    ours = live_meetings(state, sandbox_account, sandbox_host, 5)
    theirs = live_meetings(state, other, other_host, 5)
    account_of = {m.zoom_id: m.account_id for m in [*ours, *theirs]}
    seq = state.request_seq

    # when one batch ends all ten
    started = time.monotonic()
    batch, _plan = create_batch(
        account=None, kind="end_meeting", targets=[*ours, *theirs], user=operator
    )
    assert batch.account is None and batch.total == 10
    done = wait_finished((a.pk for a in batch.actions.all()), timeout=90)
    elapsed = time.monotonic() - started

    # then every meeting ended, each with its own connection
    assert [a.state for a in done] == [ActionState.SUCCEEDED] * 10, [a.result_summary for a in done]
    assert {(a.account_id, a.target_id) for a in done} == {
        (m.account_id, m.zoom_id) for m in [*ours, *theirs]
    }
    # Zoom never had to refuse one: each account stayed under its own limit
    assert state.counters["status_429"] == 0
    calls = {sandbox_account.pk: [], other.pk: []}
    for r in state.requests_since(seq):
        match = MEETING_PATH.search(r.path)
        if r.template and match and int(match.group(1)) in account_of:
            calls[account_of[int(match.group(1))]].append(r.time)
    for account_id, times in calls.items():
        assert len(times) >= 5, (account_id, len(times))
        times.sort()
        # never more than 2 in any second, per account
        for i in range(len(times) - 2):
            assert times[i + 2] - times[i] >= 1.0 - 0.05, (account_id, times)
    # and the two connections ran side by side: their calls overlap in time, and the whole
    # took less than the two one after the other at one limit would have
    first, second = calls.values()
    assert min(second) < max(first) and min(first) < max(second)
    one_after_the_other = (len(first) + len(second)) / (2 * 0.8)
    assert elapsed < one_after_the_other, (elapsed, one_after_the_other)


@pytest.mark.worker_env(ZOOM_RATE_LIMIT_LIGHT="1", ZOOM_RATE_LIMIT_HEADROOM="0.5")
def test_cancelling_a_batch_over_two_connections_stops_what_has_not_started_on_both(
    celery_worker_process, sandbox_account, sandbox_host, second_account, zoom_sandbox, operator
):
    state = zoom_sandbox.state
    other, other_host = second_account
    ours = live_meetings(state, sandbox_account, sandbox_host, 4)
    theirs = live_meetings(state, other, other_host, 4)
    batch, _ = create_batch(
        account=None, kind="end_meeting", targets=[*ours, *theirs], user=operator
    )
    cancelled = cancel_batch(batch, user=operator)
    done = wait_finished((a.pk for a in batch.actions.all()), timeout=60)
    assert cancelled >= 4  # a request every 2 s per connection: most had not started
    by_account = {}
    for a in done:
        by_account.setdefault(a.account_id, set()).add(a.state)
    assert ActionState.CANCELLED in by_account[sandbox_account.pk]
    assert ActionState.CANCELLED in by_account[other.pk]
    progress = batch.progress()
    assert progress["finished"] and progress["cancelled"] == cancelled
    assert {name: total for name, _, total in batch.connection_progress()} == {
        "Sandbox": 4,
        "Second": 4,
    }
