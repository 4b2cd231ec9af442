"""When a request leaves relative to its rate-limit slot.

Zoom counts arrivals per second, so requests must leave at their slots: a database write between
the slot and the request delays each one by a different amount and bunches them at Zoom
(bench/bulk_end.py measured 429s at 97 % of the limit that way). The pipeline therefore writes
the attempt row first, then books the slot and sends at it; while the account is paused after a
429 for longer than a worker waits, it writes nothing and hands the action back.
"""

import time

import pytest

from meetings.actions import Run, execute, request_action
from meetings.models import Action, ActionKind, ActionSource, ActionState, ZoomAccount
from meetings.ratelimit import ThrottleWaitError, backend, throttle_for


@pytest.fixture
def account(db):
    account = ZoomAccount.objects.create(name="Acme", kind="server_to_server", client_id="x")
    backend().reset(account.pk)
    yield account
    backend().reset(account.pk)


def test_reserving_books_the_slot_without_sleeping(account, settings):
    settings.ZOOM_RATE_LIMIT_LIGHT = 4
    settings.ZOOM_RATE_LIMIT_HEADROOM = 1.0
    slept = []
    throttle = throttle_for(account, sleep=slept.append)

    waits = [throttle.reserve("light") for _ in range(3)]

    assert waits == pytest.approx([0.0, 0.25, 0.5], abs=0.05)
    assert slept == []


def test_reserving_a_slot_too_far_out_books_nothing(account, settings):
    settings.ZOOM_RATE_LIMIT_HEAVY = 1
    settings.ZOOM_RATE_LIMIT_HEADROOM = 1.0
    throttle = throttle_for(account, sleep=lambda s: None, max_wait=1.5)
    throttle.reserve("heavy")
    throttle.reserve("heavy")

    with pytest.raises(ThrottleWaitError) as refused:
        throttle.reserve("heavy")

    assert refused.value.seconds == pytest.approx(2.0, abs=0.1)
    patient = throttle_for(account, sleep=lambda s: None, max_wait=10)
    assert patient.reserve("heavy") == pytest.approx(2.0, abs=0.1)  # still the next slot


@pytest.mark.django_db(transaction=True)
def test_the_attempt_is_written_before_the_slot_and_the_request_leaves_at_it(
    sandbox_account, sandbox_host, zoom_sandbox, settings
):
    # given: a Light limit of 2/s whose current slot another request just took
    settings.ZOOM_RATE_LIMIT_LIGHT = 2
    settings.ZOOM_RATE_LIMIT_HEADROOM = 1.0
    backend().reset(sandbox_account.pk)
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started")
    action, _ = request_action(
        account=sandbox_account,
        kind=ActionKind.END_MEETING,
        source=ActionSource.DASHBOARD,
        target_id=meeting["id"],
        enqueue=False,
    )
    throttle_for(sandbox_account)("light")
    asked = time.time()

    # when the end runs
    assert execute(action.pk) == ActionState.SUCCEEDED

    # then its attempt row was written at once, and the request left half a second later
    attempt = action.attempts.get(number=1)
    put = next(r for r in zoom_sandbox.state.requests if r.method == "PUT")
    arrived = put.time - put.duration_ms / 1000
    assert attempt.started_at.timestamp() - asked < 0.3
    assert arrived - asked >= 0.45
    # and the attempt's duration is Zoom's answer, not the wait for the slot
    assert attempt.duration_ms < 300
    backend().reset(sandbox_account.pk)


def test_while_the_account_is_paused_no_attempt_is_written_and_the_action_waits(account, settings):
    # given an account Zoom answered 429 with a 30 s Retry-After
    settings.ZOOM_RATE_LIMIT_MAX_WAIT_SECONDS = 5
    throttle_for(account).back_off(30)
    action, _ = request_action(
        account=account,
        kind=ActionKind.END_MEETING,
        source=ActionSource.DASHBOARD,
        target_id=81234567890,
        enqueue=False,
    )
    run = Run(Action.claim(action.pk), sleep=lambda s: None)
    run._pending = ("meetingStatus", True)

    # when its end is about to be sent
    with pytest.raises(ThrottleWaitError) as paused:
        run._throttle("light")

    # then nothing says a call was made, and the action knows how long to wait
    assert paused.value.seconds == pytest.approx(30, abs=1)
    assert action.attempts.count() == 0
    action.refresh_from_db()
    assert action.attempts_count == 0


class LateWaker:
    """A sleep that wakes each time OVERSLEEP seconds after it should (a busy machine), on a
    clock of its own."""

    def __init__(self, *oversleeps):
        self.now = 0.0
        self.oversleeps = list(oversleeps)

    def sleep(self, seconds):
        self.now += seconds + (self.oversleeps.pop(0) if self.oversleeps else 0.0)

    def clock(self):
        return self.now


@pytest.mark.parametrize(
    ("oversleep", "moved", "next_slot"),
    [
        (0.003, 0, 0.2),  # within ZOOM_RATE_LIMIT_LATE_SECONDS: left to the headroom
        (0.05, 1, 0.25),  # 50 ms late: the slots after it move back 50 ms
        (0.3, 1, 0.5),  # later than an interval: the next slot is one interval after it left
    ],
)
def test_a_worker_waking_late_for_its_slot_moves_the_later_slots_back_by_as_much(
    account, settings, oversleep, moved, next_slot
):
    # given 10 Light requests a second, and the current slot taken by another request
    settings.ZOOM_RATE_LIMIT_LIGHT = 10
    settings.ZOOM_RATE_LIMIT_HEADROOM = 1.0
    settings.ZOOM_RATE_LIMIT_LATE_SECONDS = 0.005
    throttle_for(account, sleep=lambda s: None)("light")
    waker = LateWaker(oversleep)
    throttle = throttle_for(account, sleep=waker.sleep, clock=waker.clock)

    # when this worker waits for its slot (0.1 s out) and wakes late
    waited = throttle("light")

    # then it went at once (no second wait), and the next request's slot keeps its distance
    assert waited == pytest.approx(0.1, abs=0.03)
    assert throttle.late_slots == moved
    assert throttle.reserve("light") == pytest.approx(next_slot, abs=0.03)
