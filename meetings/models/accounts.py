from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from ..fields import EncryptedTextField, is_undecryptable
from ..zoom import scopes as zoom_scopes

# Requests per second for each rate-limit label, by plan (Zoom's published table; NOTES.md).
# Resource-intensive ("resource") is published per minute: 10 a minute, 20 on Business.
RATE_LIMITS = {
    "free": {"light": 4, "medium": 2, "heavy": 1, "resource": 10 / 60},
    "pro": {"light": 30, "medium": 20, "heavy": 10, "resource": 10 / 60},
    "business": {"light": 80, "medium": 60, "heavy": 40, "resource": 20 / 60},
}

# Access tokens are replaced this long before Zoom says they expire, so a request never leaves
# with a token that dies on the way (clocks drift; Zoom's answer takes time).
TOKEN_REFRESH_MARGIN = timedelta(seconds=60)

SECRET_FIELDS = (
    "client_secret",
    "access_token",
    "refresh_token",
    "webhook_secret_token",
    "previous_webhook_secret_token",
)

# How long Zoom may retry a delivery with its first timestamp: its retries come 5, 25 and 85
# minutes after the first attempt (developers.zoom.us/blog/webhook-delays), plus 5 minutes for
# clocks that differ. The webhook receiver's window, and how long a replaced secret token still
# verifies the retries of deliveries Zoom signed with it before it was replaced.
WEBHOOK_RETRY_WINDOW = timedelta(minutes=90 + 5)


class Plan(models.TextChoices):
    FREE = "free", "Free"
    PRO = "pro", "Pro"
    BUSINESS = "business", "Business or higher"


class ZoomAccount(models.Model):
    """One connected Zoom account, and the credentials the dashboard acts on it with.

    Secrets and tokens are EncryptedTextFields: Fernet tokens in the database, never shown in a
    page, admin form, log line or audit record.

    Status moves connected → needs_reconnect (Zoom refused the refresh token or the client
    credentials: only an admin can fix it) → connected (reconnected), and to disconnected when an
    admin disconnects it (tokens revoked and wiped; the row stays for the audit trail). Tokens
    themselves are only changed under the row lock taken by `meetings.zoom.oauth`.
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
    # Operations Zoom refused for want of a scope (code 4711): {operationId: when, ISO 8601}.
    # Cleared when that operation succeeds or a new token's scopes allow it.
    scope_refusals = models.JSONField(default=dict, blank=True)
    # The Zoom app's own secret token for its event subscription (each app has one); empty:
    # settings.ZOOM_WEBHOOK_SECRET_TOKEN, the default for a single app.
    webhook_secret_token = EncryptedTextField(blank=True)
    # The token it replaced, and when: Zoom's retries of deliveries it signed before the token was
    # regenerated still carry its signature (webhook_secrets()).
    previous_webhook_secret_token = EncryptedTextField(blank=True)
    webhook_secret_rotated_at = models.DateTimeField(null=True, blank=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.PRO)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
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

    def save(self, *args, **kwargs):
        """Save, leaving alone any secret that no configured key can decrypt.

        Such a secret reads as an empty UndecryptableSecret; writing it back would destroy the
        ciphertext that the right FIELD_ENCRYPTION_KEY could still read. So an unrelated change
        (a new display name, a status) saves every other field and keeps the stored ciphertext.
        """
        deferred = self.get_deferred_fields()
        unreadable = [
            f for f in SECRET_FIELDS if f not in deferred and is_undecryptable(getattr(self, f))
        ]
        if unreadable and self.pk and not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None:
                update_fields = [
                    f.name
                    for f in self._meta.concrete_fields
                    if not f.primary_key and f.name not in unreadable
                ]
            else:
                update_fields = [f for f in update_fields if f not in unreadable]
            kwargs["update_fields"] = update_fields
        super().save(*args, **kwargs)

    # --- what the health view shows -------------------------------------------------------

    @property
    def is_oauth(self):
        return self.kind == self.Kind.OAUTH

    @property
    def is_server_to_server(self):
        return self.kind == self.Kind.SERVER_TO_SERVER

    @property
    def is_usable(self):
        return self.status == self.Status.CONNECTED

    @property
    def secrets_unreadable(self):
        """True when FIELD_ENCRYPTION_KEY cannot decrypt a stored secret of this account."""
        # Only the loaded fields: a check that ran before `migrate` loads the older ones only.
        deferred = self.get_deferred_fields()
        return any(is_undecryptable(getattr(self, f)) for f in SECRET_FIELDS if f not in deferred)

    @property
    def token_state(self):
        """ "unreadable", "none", "expired", "expiring" (within the refresh margin) or "valid"."""
        if is_undecryptable(self.access_token) or is_undecryptable(self.refresh_token):
            return "unreadable"
        if not self.access_token:
            return "none"
        if self.token_expires_at is None or self.token_expires_at <= now():
            return "expired"
        if self.token_expires_at <= now() + TOKEN_REFRESH_MARGIN:
            return "expiring"
        return "valid"

    @property
    def granted_scopes(self):
        return set(self.scopes.split())

    @property
    def scope_report(self):
        """[(ScopeNeed, the granted scope that allows it or "")] for every operation the
        dashboard performs, in the table's order (meetings/zoom/scopes.py)."""
        return zoom_scopes.report(self.granted_scopes)

    @property
    def missing_scopes(self):
        """The needs no granted scope satisfies (as the token's answer listed them)."""
        return zoom_scopes.missing(self.granted_scopes)

    @property
    def refused_scopes(self):
        """[(ScopeNeed, refused at)] for each operation Zoom refused with code 4711."""
        refusals = self.scope_refusals if isinstance(self.scope_refusals, dict) else {}
        found = []
        for operation_id, at in sorted(refusals.items()):
            need = zoom_scopes.need_for(operation_id)
            if need is not None:
                found.append((need, at))
        return found

    @property
    def webhook_secret_configured(self):
        """Whether this connection has a webhook secret token of its own (never the token)."""
        return bool(self.webhook_secret_token) or is_undecryptable(self.webhook_secret_token)

    def webhook_secret(self):
        """The secret token this connection's events are verified with: its own, else
        settings.ZOOM_WEBHOOK_SECRET_TOKEN (the single app's default). "" when neither can
        be used (an undecryptable one is not replaced by the default: that would accept
        events signed by another app)."""
        if is_undecryptable(self.webhook_secret_token):
            return ""
        return self.webhook_secret_token or settings.ZOOM_WEBHOOK_SECRET_TOKEN or ""

    def webhook_secrets(self, *, at=None):
        """[(secret token, latest request time it may sign or None)]: the current token, and
        for WEBHOOK_RETRY_WINDOW after a rotation the replaced one, for requests Zoom signed
        before the rotation (plus clock skew) and retries with their first timestamp."""
        found = []
        current = self.webhook_secret()
        if current:
            found.append((current, None))
        previous = self.previous_webhook_secret_token
        rotated = self.webhook_secret_rotated_at
        at = at or now()
        if (
            previous
            and not is_undecryptable(previous)
            and rotated is not None
            and at - rotated <= WEBHOOK_RETRY_WINDOW
            and previous != current
        ):
            found.append((previous, (rotated + timedelta(minutes=5)).timestamp()))
        return found

    def set_webhook_secret_token(self, token, *, at=None):
        """Replace the connection's own webhook secret token (not saved here). The token it
        replaces is kept for WEBHOOK_RETRY_WINDOW: Zoom keeps retrying, with the old
        signature, what it sent before the token was regenerated."""
        current = self.webhook_secret_token
        if token == current:
            return
        if current and not is_undecryptable(current):
            self.previous_webhook_secret_token = current
            self.webhook_secret_rotated_at = at or now()
        self.webhook_secret_token = token

    WEBHOOK_SECRET_FIELDS = (
        "webhook_secret_token",
        "previous_webhook_secret_token",
        "webhook_secret_rotated_at",
    )

    # --- state transitions ------------------------------------------------------------------

    def store_token(self, token, *, at=None):
        """Keep a token answer from Zoom's /oauth/token and mark the account connected.

        `token` is the parsed answer: access_token, expires_in (seconds), and for the
        authorization-code app a refresh_token (Zoom rotates it on every refresh, so the new one
        must be saved in the same transaction as the access token) and scope. Callers hold the
        row lock (meetings.zoom.oauth) or own a row nobody else can see yet.
        """
        at = at or now()
        self.access_token = token["access_token"]
        if token.get("refresh_token"):
            self.refresh_token = token["refresh_token"]
        self.token_expires_at = at + timedelta(seconds=int(token.get("expires_in") or 3600))
        scope = token.get("scope")
        if scope:
            self.scopes = " ".join(scope) if isinstance(scope, list | tuple | set) else str(scope)
            # A refusal the new grant answers is over (an admin added the scope); one it does
            # not answer stays until that operation succeeds.
            granted = self.granted_scopes
            refusals = self.scope_refusals if isinstance(self.scope_refusals, dict) else {}
            self.scope_refusals = {
                op: when
                for op, when in refusals.items()
                if not (zoom_scopes.need_for(op) and zoom_scopes.need_for(op).granted_as(granted))
            }
        self.last_refreshed_at = at
        self.status = self.Status.CONNECTED
        if self.pk:
            self.save(
                update_fields=[
                    "access_token",
                    "refresh_token",
                    "token_expires_at",
                    "scopes",
                    "scope_refusals",
                    "last_refreshed_at",
                    "status",
                ]
            )

    def mark_needs_reconnect(self, reason):
        """Zoom refused the refresh token or the client credentials: stop using the account.

        Every action on it then fails at once with "Zoom connection needs to be reconnected" and
        every page shows the reconnect banner, until an admin reconnects or disconnects it. The
        tokens are wiped (they are refused anyway); the client secret stays so a Server-to-Server
        app whose secret was merely rotated can be reconnected with the new one.
        """
        newly = self.status != self.Status.NEEDS_RECONNECT
        self.status = self.Status.NEEDS_RECONNECT
        self.access_token = ""
        self.refresh_token = ""
        self.token_expires_at = None
        self.last_error = reason
        self.last_error_at = now()
        self.save(
            update_fields=[
                "status",
                "access_token",
                "refresh_token",
                "token_expires_at",
                "last_error",
                "last_error_at",
            ]
        )
        if newly:
            from ..notifications import needs_reconnect

            needs_reconnect(self)

    def mark_disconnected(self):
        """An admin disconnected the account: forget every credential, keep the row.

        Tokens are revoked at Zoom by the caller first (meetings.zoom.oauth.disconnect). The row
        and its actions stay: they are the audit trail of what was done with this connection.
        """
        self.status = self.Status.DISCONNECTED
        self.access_token = ""
        self.refresh_token = ""
        self.client_secret = ""
        self.webhook_secret_token = ""
        self.previous_webhook_secret_token = ""
        self.token_expires_at = None
        self.save(
            update_fields=[
                "status",
                "access_token",
                "refresh_token",
                "client_secret",
                "webhook_secret_token",
                "previous_webhook_secret_token",
                "token_expires_at",
            ]
        )

    def rate_limit(self, label):
        """Requests per second for a rate-limit label: the settings' override, else the plan's."""
        override = getattr(settings, f"ZOOM_RATE_LIMIT_{label.upper()}", 0)
        return override or RATE_LIMITS[self.plan][label]
