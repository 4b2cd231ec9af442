"""Roles per Zoom connection.

A user's role on a connection is the higher of their global role (the "Zoom viewers" /
"Zoom operators" groups, superusers as admins) and their grant on that connection, if any. A user
with no global role sees only the connections they hold a grant on; any other connection's pages
answer 404. Grants made by single sign-on (`source="oidc"`) are replaced at every sign-in; grants
made by an admin are left alone by it.
"""

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


# Higher acts on more: a role includes every lower one.
ROLE_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class ConnectionGrant(models.Model):
    class Source(models.TextChoices):
        ADMIN = "admin", "Granted by an admin"
        OIDC = "oidc", "Single sign-on"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="connection_grants"
    )
    account = models.ForeignKey(
        "meetings.ZoomAccount", on_delete=models.CASCADE, related_name="grants"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ADMIN)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    granted_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name = "connection role"
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="one_grant_per_connection")
        ]

    def __str__(self):
        return f"{self.user} is {self.get_role_display().lower()} of {self.account}"


class AccessEvent(models.Model):
    """Who signed in, failed to, was given or lost a role, approved or rejected: the access half
    of the audit trail (the actions are the other half). Written once, never edited."""

    class Kind(models.TextChoices):
        SIGNED_IN = "signed_in", "Signed in"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        SIGNED_OUT = "signed_out", "Signed out"
        MFA = "mfa", "Second factor"
        SSO = "sso", "Single sign-on"
        ROLE_CHANGED = "role_changed", "Role changed"
        CONNECTION_GRANTED = "connection_granted", "Connection role granted or removed"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    at = models.DateTimeField(default=now, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The user concerned, and the name typed or asserted (kept when no such user exists).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    username = models.CharField(max_length=254, blank=True)
    # Who did it, when someone other than the user did (an admin granting a role, an approver).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    client_ip = models.GenericIPAddressField("client IP address", null=True, blank=True)
    success = models.BooleanField(default=True)
    detail = models.JSONField(default=dict, blank=True)  # never a secret

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return (
            f"{self.get_kind_display()}: {self.username or self.user} at {self.at:%Y-%m-%d %H:%M}"
        )


def record_access(
    kind, *, user=None, username="", actor=None, client_ip=None, success=True, **detail
):
    """Record an AccessEvent of KIND (AccessEvent.Kind); DETAIL is stored as JSON (no secrets)."""
    return AccessEvent.objects.create(
        kind=kind,
        user=user,
        username=username or (user.get_username() if user is not None else ""),
        actor=actor,
        client_ip=client_ip,
        success=success,
        detail=detail,
    )
