from django.db import models
from django.utils.timezone import now


class WebhookEvent(models.Model):
    """One accepted Zoom webhook delivery. The payload is stored with any stream key removed."""

    account = models.ForeignKey(
        "meetings.ZoomAccount", null=True, blank=True, on_delete=models.SET_NULL
    )
    event = models.CharField(max_length=100)
    event_ts = models.BigIntegerField(null=True, blank=True)
    zoom_account_id = models.CharField(max_length=100, blank=True)
    object_id = models.BigIntegerField(null=True, blank=True)
    object_uuid = models.CharField(max_length=100, blank=True)
    payload = models.JSONField(default=dict)
    # Zoom delivers at least once: the same delivery twice has the same key and is stored once.
    dedupe_key = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(default=now)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Processing attempts: the sweeper retries an unprocessed event a few times, then gives up.
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            # A meeting's timeline: its webhook events, newest first.
            models.Index(fields=["object_id", "-received_at"], name="webhook_object_idx"),
            # The sweeper: events still waiting to be processed, oldest first.
            models.Index(
                fields=["received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="webhook_unprocessed_idx",
            ),
        ]

    def __str__(self):
        return f"{self.event} {self.object_id or ''}"
