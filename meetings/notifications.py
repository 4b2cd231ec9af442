"""Notifications: what users subscribe to, and the one call that raises an event.

Callers raise an event with `notify(kind, ...)`; delivery (e-mail, chat webhooks) happens in the
background and never blocks or fails the caller. This module is the interface; delivery is being
built (issue 16): until then `notify` records nothing.
"""

from django.db import models


class EventKind(models.TextChoices):
    ACTION_FAILED = "action_failed", "An action failed"
    NEEDS_RECONNECT = "needs_reconnect", "A connection needs reconnecting"
    STREAM_STOPPED = "stream_stopped", "A live stream stopped that nobody stopped"
    APPROVAL_WAITING = "approval_waiting", "An approval waits"
    SCHEDULE_MISSED = "schedule_missed", "A scheduled action missed its time"


def notify(kind, *, title, text, account=None, url="", action=None):
    """Raise event KIND (an EventKind) about ACCOUNT (a ZoomAccount, or None for all):
    TITLE a line, TEXT a few lines, URL a dashboard path. Never raises."""
