from django.conf import settings
from django.db import models
from django.utils.timezone import now

from ..fields import EncryptedTextField

# Requests per second for each rate-limit label, by plan (Zoom's published table; NOTES.md).
RATE_LIMITS = {
    "free": {"light": 4, "medium": 2, "heavy": 1},
    "pro": {"light": 30, "medium": 20, "heavy": 10},
    "business": {"light": 80, "medium": 60, "heavy": 40},
}

# What the dashboard needs granted; either the user-level or the :admin scope satisfies each.
REQUIRED_SCOPES = ("meeting:read", "meeting:write", "webinar:read", "webinar:write", "user:read")


class Plan(models.TextChoices):
    FREE = "free", "Free"
    PRO = "pro", "Pro"
    BUSINESS = "business", "Business or higher"


class ZoomAccount(models.Model):
    """One connected Zoom account, and the credentials the dashboard acts on it with.

    Secrets and tokens are EncryptedTextFields: Fernet tokens in the database, never shown in a
    page, admin form, log line or audit record.
    """

    class Kind(models.TextChoices):
        OAUTH = "oauth", "OAuth app (authorization code)"
        SERVER_TO_SERVER = "server_to_server", "Server-to-Server OAuth"

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        NEEDS_RECONNECT = "needs_reconnect", "Needs reconnecting"
        DISCONNECTED = "disconnected", "Disconnected"

    name = models.CharField("display name", max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    zoom_account_id = models.CharField("Zoom account id", max_length=100, blank=True)
    client_id = models.CharField(max_length=200)
    client_secret = EncryptedTextField(blank=True)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.TextField("granted scopes", blank=True, help_text="space-separated")
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.PRO)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    last_error = models.TextField(blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField("last successful call", null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    connected_as = models.CharField(
        max_length=200, blank=True, help_text="the Zoom user (email) who granted access"
    )
    created = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_connections", "Can connect and disconnect Zoom accounts")]

    def __str__(self):
        return self.name

    @property
    def granted_scopes(self):
        return set(self.scopes.split())

    @property
    def missing_scopes(self):
        granted = self.granted_scopes
        return [s for s in REQUIRED_SCOPES if s not in granted and f"{s}:admin" not in granted]

    def rate_limit(self, label):
        """Requests per second for a rate-limit label: the settings' override, else the plan's."""
        override = getattr(settings, f"ZOOM_RATE_LIMIT_{label.upper()}", 0)
        return override or RATE_LIMITS[self.plan][label]
