"""System checks: misconfiguration is reported at start-up, not as a crash on every page."""

from django.conf import settings
from django.core.checks import Error, Warning, register
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


def tasks_outliving_the_visibility_timeout():
    """[(task name, its hard time limit or None)] for every task that could still be running
    when the Redis broker hands its unacknowledged message to another worker.

    Our tasks are acks_late: the message stays unacknowledged while the task runs, and Redis
    redelivers it once CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] has passed. A task
    allowed to run longer is taken over mid-run by a second worker while the first is alive
    (issue 13: a 30-minute action limit under a 600 s timeout). The relation that must hold:
    every task's hard time limit < visibility timeout. Only the Redis transport has this
    timeout; the embedded filesystem broker redelivers nothing by itself.
    """
    from zoomadmin.celery import app

    from . import tasks  # noqa: F401  (registers every task of ours with the app)

    if not settings.CELERY_BROKER_URL.startswith(("redis", "rediss")):
        return []
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    found = []
    for name, task in sorted(app.tasks.items()):
        if not name.startswith(("meetings.", "zoomadmin.")):
            continue  # Celery's own (chord, backend cleanup), a test's: none is ours to bound
        limit = task.time_limit if task.time_limit is not None else app.conf.task_time_limit
        if limit is None or limit >= visibility:
            found.append((name, limit))
    return found


@register("zoomadmin")
def check_tasks_end_before_the_broker_redelivers_them(app_configs, **kwargs):
    """E003: a task's time limit is not below the broker's visibility timeout.

    A worker refuses to start on it (zoomadmin/celery.py), before it takes a message."""
    found = tasks_outliving_the_visibility_timeout()
    if not found:
        return []
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    listed = ", ".join(f"{name} ({limit or 'no'} s limit)" for name, limit in found)
    return [
        Error(
            f"These tasks may run longer than CELERY_VISIBILITY_TIMEOUT ({visibility} s), after "
            f"which Redis gives their message to another worker while they still run: {listed}.",
            hint="Raise CELERY_VISIBILITY_TIMEOUT above the longest task time limit.",
            id="zoomadmin.E003",
        )
    ]
