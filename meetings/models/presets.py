"""Saved live-stream destinations per connection.

Applying a preset copies its values into the action's parameters (the key redacted there, as
every stream key is), so editing or deleting a preset never changes a stream already configured.
"""

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from ..fields import EncryptedTextField


class StreamPreset(models.Model):
    class Resolution(models.TextChoices):
        DEFAULT = "", "Zoom's default"
        P720 = "720p", "720p"
        P1080 = "1080p", "1080p"

    account = models.ForeignKey(
        "meetings.ZoomAccount", on_delete=models.CASCADE, related_name="stream_presets"
    )
    name = models.CharField(max_length=100)
    stream_url = models.CharField("stream URL", max_length=1024)
    stream_key = EncryptedTextField()  # never shown again once saved
    page_url = models.URLField("page URL", max_length=1024)
    resolution = models.CharField(max_length=5, choices=Resolution.choices, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account", "name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="one_preset_name_per_account")
        ]

    def __str__(self):
        return f"{self.name} ({self.account})"
