"""Notifications: what each person subscribed to, and every delivery made for them.

A Subscription says which events (meetings.notifications.EventKind) a person wants, about which
connection (or every one they may see), and where: an e-mail to their own address, or a chat
destination (an apprise URL: Slack, Teams, Discord, a JSON webhook...). A chat URL carries the
destination's token, so it is stored encrypted and shown back only as a hint.

A Delivery is one event sent to one subscription: written by `notify` in one INSERT, sent by a
Celery task (meetings.tasks.notifications), retried with backoff and rate-limited per destination
(DestinationSlot). Its history is what the Notifications page and the admin show.
"""

import hashlib
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from ..fields import EncryptedTextField


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail to me"
    CHAT = "chat", "Chat (Slack, Teams and others)"


def destination_hint(url):
    """What a chat URL reads as on a page: its kind and host, never its tokens
    ("slack://••••", "json://hooks.example.org/••••")."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "••••"
    scheme = parts.scheme or "?"
    host = parts.hostname or ""
    # Slack, Teams, Discord... put tokens where the host would be: show a host only when it
    # looks like one (a dot, or localhost), never a token.
    if host and ("." in host or host == "localhost") and len(host) < 80:
        return f"{scheme}://{host}/••••"
    return f"{scheme}://••••"


def destination_key(channel, destination):
    """The rate limiter's name for a destination (a hash: no address or token in the table)."""
    return hashlib.sha256(f"{channel}:{destination}".encode()).hexdigest()


class Subscription(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_subscriptions",
    )
    # The EventKind values, comma-separated with a comma at each end (",action_failed,"), so
    # `notify` finds the subscriptions of a kind with one LIKE on every database.
    kinds = models.CharField(max_length=200)
    account = models.ForeignKey(
        "meetings.ZoomAccount",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="only events about this connection (empty: every connection)",
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # Chat: the apprise URL, tokens and all; never shown back (destination_hint is).
    destination = EncryptedTextField(blank=True)
    hint = models.CharField("destination", max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=now)

    class Meta:
        ordering = ["user", "created", "id"]

    def __str__(self):
        return f"{self.user} via {self.describe()}"

    def save(self, *args, **kwargs):
        if self.channel == Channel.CHAT and self.destination:
            self.hint = destination_hint(self.destination)
        super().save(*args, **kwargs)

    @property
    def kind_list(self):
        return [k for k in self.kinds.split(",") if k]

    @staticmethod
    def encode_kinds(kinds):
        return "," + ",".join(sorted(set(kinds))) + ","

    def describe(self):
        if self.channel == Channel.EMAIL:
            return f"e-mail to {self.user.email or '(no address)'}"
        return f"chat {self.hint}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One event sent to one subscription: the event's words are kept here (one INSERT per
    event, however many subscribers), so the history stands after a subscription is deleted."""

    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30)  # an EventKind value, or "test"
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    account = models.ForeignKey(
        "meetings.ZoomAccount", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.ForeignKey(
        "meetings.Action", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    hint = models.CharField("destination", max_length=200, blank=True)
    # Several subscribers of one event share it: the INSERT's rows are found again by it.
    event_id = models.CharField(max_length=32, editable=False)
    # One delivery per subscription and happening (one stop of a stream, however often Zoom
    # sends its event): empty when the caller gave none.
    dedupe_key = models.CharField(max_length=200, blank=True, editable=False)
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(default=now)
    next_attempt_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="one_delivery_per_happening",
            )
        ]
        indexes = [
            # The Notifications page: a person's deliveries, newest first.
            models.Index(fields=["user", "-created"], name="delivery_user_created_idx"),
            # The sweeper: deliveries waiting whose message may have been lost.
            models.Index(fields=["state", "next_attempt_at"], name="delivery_state_next_idx"),
            # notify: the rows of the event it has just inserted.
            models.Index(fields=["event_id"], name="delivery_event_idx"),
        ]

    def __str__(self):
        return f"{self.title} → {self.hint or self.get_channel_display()} ({self.state})"


class DestinationSlot(models.Model):
    """The per-destination rate limiter and single-flight lock (meetings.tasks.notifications):
    `next_at` is when the destination may next be sent to, `busy_until` when the send in flight
    is presumed over (a worker killed mid-send frees it by time). Epoch seconds."""

    key = models.CharField(max_length=64, unique=True)
    next_at = models.FloatField(default=0.0)
    busy_until = models.FloatField(default=0.0)

    def __str__(self):
        return self.key[:12]
