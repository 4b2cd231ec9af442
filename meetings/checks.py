"""System checks: misconfiguration is reported at start-up, not as a crash on every page."""

from django.core.checks import Error, register
from django.db import DatabaseError


@register("zoomadmin", deploy=False)
def check_encryption_key_reads_stored_secrets(app_configs, **kwargs):
    from .fields import is_undecryptable
    from .models import ZoomAccount

    try:
        accounts = list(ZoomAccount.objects.all()[:50])
    except DatabaseError:
        return []  # no tables yet (before migrate): nothing stored to read
    unreadable = [
        a.name
        for a in accounts
        if any(is_undecryptable(v) for v in (a.client_secret, a.access_token, a.refresh_token))
    ]
    if unreadable:
        return [
            Error(
                "FIELD_ENCRYPTION_KEY cannot decrypt the stored secrets of Zoom account(s): "
                + ", ".join(unreadable),
                hint="Put back the key they were encrypted with (several keys may be listed, "
                "comma-separated, newest first), or reconnect those accounts.",
                id="zoomadmin.E001",
            )
        ]
    return []
