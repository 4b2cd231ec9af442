"""
What every fault scenario proves at the end, whatever broke: each requested action reached a
terminal state exactly once (first seen terminal, never changed afterwards), none is stuck,
no attempt is recorded twice or left in flight, the main Zoom call succeeded at most once per
action, no target got a second action, and the summary says what happened in plain words.
"""

from collections import Counter
from itertools import pairwise

from django.db import InterfaceError, OperationalError, connection

from meetings.executors import EXECUTORS
from meetings.models import Action, Attempt
from meetings.models.actions import TERMINAL_STATES
from tests.waiting import wait_until


class Ledger:
    """The actions a scenario asked for, and the first terminal state each was seen in."""

    def __init__(self, ids=()):
        self.ids = list(ids)
        self.first_seen = {}

    def add(self, *ids):
        self.ids.extend(ids)

    def observe(self):
        """Note actions seen terminal for the first time (call it often while things break)."""
        rows = Action.objects.filter(pk__in=self.ids, state__in=TERMINAL_STATES).values_list(
            "pk", "state", "finished_at", "result_summary", "attempts_count"
        )
        try:
            rows = list(rows)
        except (OperationalError, InterfaceError):
            # The test's own connection died with the database (the PostgreSQL scenario):
            # look again with a new one next time.
            connection.close()
            return len(self.first_seen)
        for pk, *snapshot in rows:
            self.first_seen.setdefault(pk, tuple(snapshot))
        return len(self.first_seen)

    def finished(self):
        return self.observe() == len(set(self.ids))

    def counts(self):
        return dict(Counter(Action.objects.filter(pk__in=self.ids).values_list("state", flat=True)))

    def wait_finished(self, timeout, *, on_poll=None):
        """Wait until every action is terminal; returns them, in id order."""
        wait_until(
            self.finished,
            timeout,
            f"{len(self.ids)} actions to finish (now {self.counts()})",
            interval=0.2,
            on_poll=on_poll,
        )
        return list(Action.objects.filter(pk__in=self.ids).order_by("pk"))

    def assert_exactly_once(self):
        """The invariants of every scenario; returns the actions."""
        assert len(self.ids) == len(set(self.ids)), "an action was counted twice by the test"
        actions = list(Action.objects.filter(pk__in=self.ids).order_by("pk"))
        assert len(actions) == len(self.ids)
        for action in actions:
            label = f"action {action.pk} ({action.kind} {action.target_label})"
            assert action.state in TERMINAL_STATES, f"{label} is stuck {action.state}"
            # terminal once: what it said when first seen finished is what it says now
            now = (action.state, action.finished_at, action.result_summary, action.attempts_count)
            assert self.first_seen.get(action.pk) == now, (
                f"{label} changed after it finished: {self.first_seen.get(action.pk)} -> {now}"
            )
            assert action.result_summary.strip(), f"{label} finished without a summary"
            assert "Traceback" not in action.result_summary
            assert action.secret_params == ""
            assert action.lease_token == "" and action.lease_expires_at is None
            attempts = list(action.attempts.order_by("number"))
            numbers = [a.number for a in attempts]
            assert numbers == list(range(1, len(numbers) + 1)), f"{label}: attempts {numbers}"
            assert not [a for a in attempts if a.outcome == Attempt.Outcome.PENDING], (
                f"{label} has an attempt still in flight"
            )
            main = EXECUTORS[action.kind].operation
            ok = [a for a in attempts if a.operation == main and a.outcome == Attempt.Outcome.OK]
            assert len(ok) <= 1, f"{label}: the Zoom call succeeded {len(ok)} times"
            for earlier, later in pairwise(attempts):
                if earlier.outcome == Attempt.Outcome.INTERRUPTED:
                    assert later.after_reclaim, f"{label}: attempt {later.number} not marked"
            assert action.attempts_count == sum(1 for a in attempts if a.operation == main), (
                f"{label}: attempts_count {action.attempts_count} vs {numbers}"
            )
        targets = Counter(
            Action.objects.filter(pk__in=self.ids).values_list(
                "account_id", "kind", "target_id", "target_uuid"
            )
        )
        assert max(targets.values()) == 1, "a target got two actions"
        return actions
