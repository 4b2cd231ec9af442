"""System checks: misconfiguration is reported at start-up, not as a crash on every page."""

from django.conf import settings
from django.core.checks import Warning, register
from django.db import DatabaseError


@register("zoomadmin")
def check_encryption_key_reads_stored_secrets(app_configs, **kwargs):
    """W001: FIELD_ENCRYPTION_KEY cannot decrypt the secrets already stored.

    Typical cause: the key was replaced instead of rotated (new key first, old key kept until
    `rotate_encryption_key` has run). Printed by runserver, migrate and every management
    command. A warning, not an error: an error would stop the very commands and pages that fix
    it (reconnecting, `zoom_connect`, `rotate_encryption_key --dry-run`). /healthz fails for
    those accounts, the connections page explains, and their actions fail at once saying so.
    """
    from .models import ZoomAccount

    try:
        # only(): the check also runs before `migrate` adds newer columns.
        accounts = list(
            ZoomAccount.objects.only("name", "client_secret", "access_token", "refresh_token")
        )
    except DatabaseError:
        return []  # no tables yet (before migrate): nothing stored to read
    unreadable = [a.name for a in accounts if a.secrets_unreadable]
    if unreadable:
        return [
            Warning(
                "FIELD_ENCRYPTION_KEY cannot decrypt the stored secrets of Zoom account(s): "
                + ", ".join(unreadable),
                hint="Put back the key they were encrypted with (several keys may be listed, "
                "comma-separated, newest first), or reconnect those accounts.",
                id="zoomadmin.W001",
            )
        ]
    return []


@register("zoomadmin", deploy=True)
def check_oauth_over_https(app_configs, **kwargs):
    """W002: tokens and client secrets would cross the network in clear text."""
    plain = [
        name
        for name in ("ZOOM_OAUTH_BASE_URL", "ZOOM_API_BASE_URL")
        if getattr(settings, name, "").startswith("http://")
    ]
    if plain:
        return [
            Warning(
                f"{' and '.join(plain)} use plain http: tokens and client secrets travel "
                "unencrypted. Only the local Zoom sandbox should be reached this way.",
                id="zoomadmin.W002",
            )
        ]
    return []
