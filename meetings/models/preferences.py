from django.conf import settings
from django.db import models


class UserPreferences(models.Model):
    """What one person chose for how the dashboard shows things to them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboard_preferences"
    )
    # An IANA zone name ("Europe/Berlin"); blank: the browser's own zone (meetings/timezones.py).
    time_zone = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "user preferences"

    def __str__(self):
        return f"{self.user} ({self.time_zone or 'browser time zone'})"
