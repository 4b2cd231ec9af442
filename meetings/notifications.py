"""Notifications: what users subscribe to, and the one call that raises an event.

Callers raise an event with `notify(kind, ...)`: it writes one Delivery per matching subscription
(meetings.models.notifications) in one INSERT, and after the commit enqueues their sending on the
"notifications" queue (meetings.tasks.notifications). Sending, retries and the per-destination
rate limit happen there, so a slow or failing destination never blocks or fails the caller:
`notify` itself never raises (a failed write is logged and the caller goes on).
"""

import logging
import uuid

from django.db import models, transaction

log = logging.getLogger(__name__)

# Apprise logs whole destination URLs (tokens and all) at debug, and hosts at warning: keep it
# out of our logs. Its warnings are captured per send (meetings.delivery), scrubbed, and kept on
# the delivery; checking an address on the Notifications page logs nothing.
APPRISE_LOG = logging.getLogger("apprise")
APPRISE_LOG.propagate = False
APPRISE_LOG.addHandler(logging.NullHandler())
APPRISE_LOG.setLevel(logging.CRITICAL)


class EventKind(models.TextChoices):
    ACTION_FAILED = "action_failed", "An action failed"
    NEEDS_RECONNECT = "needs_reconnect", "A connection needs reconnecting"
    STREAM_STOPPED = "stream_stopped", "A live stream stopped that nobody stopped"
    APPROVAL_WAITING = "approval_waiting", "An approval waits"
    SCHEDULE_MISSED = "schedule_missed", "A scheduled action missed its time"


# The kind of a delivery made by the "Send a test" button (not an event anyone subscribes to).
TEST_KIND = "test"


def may_see_connection(user, account):
    """Whether USER may see events about ACCOUNT: their role on that connection (a global role,
    or a grant on it; meetings/access.py)."""
    from .access import can_view_dashboard, sees_account

    return can_view_dashboard(user) and sees_account(user, account)


def _matching_subscriptions(kind, account_id):
    from .models import Subscription

    subscriptions = (
        Subscription.objects.filter(enabled=True, kinds__contains=f",{kind},")
        .select_related("user")
        .order_by("pk")
    )
    if account_id is not None:
        subscriptions = subscriptions.filter(
            models.Q(account__isnull=True) | models.Q(account_id=account_id)
        )
    else:
        subscriptions = subscriptions.filter(account__isnull=True)
    return list(subscriptions)


def notify(kind, *, title, text, account=None, url="", action=None, dedupe_key=""):
    """Raise event KIND (an EventKind) about ACCOUNT (a ZoomAccount, or None for all):
    TITLE a line, TEXT a few lines, URL a dashboard path. Never raises.

    DEDUPE_KEY names the happening (one stop of one stream): a second call with the same key
    delivers nothing new, however often the caller hears of it. Returns the number of deliveries
    written (0 also when the write failed)."""
    try:
        kind = EventKind(kind)
        account_id = getattr(account, "pk", account)
        # A savepoint: a failed write leaves the caller's transaction usable (PostgreSQL aborts
        # a whole transaction on an error otherwise).
        with transaction.atomic():
            return _write(
                kind,
                title=title,
                text=text,
                account_id=account_id,
                account=account if hasattr(account, "pk") else None,
                url=url,
                action_id=getattr(action, "pk", action),
                dedupe_key=dedupe_key,
            )
    except Exception:
        log.exception("notification %s could not be recorded; the caller goes on", kind)
        return 0


def _write(kind, *, title, text, account_id, account, url, action_id, dedupe_key):
    from .models import Delivery, ZoomAccount

    subscriptions = _matching_subscriptions(kind, account_id)
    if not subscriptions:
        return 0
    if account_id is not None and account is None:
        account = (
            ZoomAccount.objects.filter(pk=account_id)
            .defer("client_secret", "access_token", "refresh_token")
            .first()
        )
    event_id = uuid.uuid4().hex
    rows = [
        Delivery(
            subscription=s,
            user_id=s.user_id,
            kind=kind,
            title=title[:300],
            text=text,
            url=url[:500],
            account_id=account_id,
            action_id=action_id,
            channel=s.channel,
            hint=s.hint,
            event_id=event_id,
            dedupe_key=dedupe_key[:200],
        )
        for s in subscriptions
        if s.user.is_active and (account is None or may_see_connection(s.user, account))
    ]
    if not rows:
        return 0
    Delivery.objects.bulk_create(rows, ignore_conflicts=bool(dedupe_key))
    ids = list(Delivery.objects.filter(event_id=event_id).values_list("pk", flat=True))
    transaction.on_commit(lambda: enqueue_deliveries(ids), robust=True)
    return len(ids)


def enqueue_deliveries(ids, *, countdown=None):
    """Send the task message of each delivery. A broker that is down loses nothing: the
    deliveries wait in the database and the sweeper (`sweep_notifications`) sends them."""
    from .tasks.notifications import deliver

    for pk in ids:
        try:
            deliver.apply_async((pk,), countdown=countdown)
        except Exception:  # kombu raises many kinds; the sweeper sends it later
            log.warning("notification delivery %s could not be queued; the sweeper will", pk)
            return


# --- The events raised here ---------------------------------------------------------------------


def action_failed(action):
    """An action reached FAILED (not cancelled): its kind, target and summary, with its page."""
    from django.urls import reverse

    what = action.get_kind_display()
    target = action.topic or (
        f"{action.target_type} {action.target_id}" if action.target_id else ""
    )
    if action.batch_id is not None:
        # A bulk batch that fails, fails for many at once (Zoom down, a grant revoked): one
        # message per batch, pointing at its page, rather than one per meeting.
        notify(
            EventKind.ACTION_FAILED,
            title=f"{what} in bulk: some failed (batch #{action.batch_id})",
            text=(
                f"The first to fail: {target or 'an action'}: "
                f"{action.result_summary or 'it failed.'} The batch's page lists every result."
            ),
            account=action.account_id,
            url=reverse("bulk", args=[action.batch_id]),
            action=action.pk,
            dedupe_key=f"batch:{action.batch_id}",
        )
        return
    notify(
        EventKind.ACTION_FAILED,
        title=f"{what} failed" + (f": {target}" if target else ""),
        text=action.result_summary or "The action failed.",
        account=action.account_id,
        url=reverse("action", args=[action.pk]),
        action=action.pk,
        dedupe_key=f"action:{action.pk}",
    )


def needs_reconnect(account):
    """A connection's tokens or credentials were refused: someone must reconnect it."""
    from django.urls import reverse

    notify(
        EventKind.NEEDS_RECONNECT,
        title=f"The Zoom connection {account.name or account.pk} needs reconnecting",
        text=(
            "Zoom refused its credentials, so nothing can be done on it until an administrator "
            f"reconnects it. Zoom said: {account.last_error or 'nothing more'}"
        ),
        account=account,
        url=reverse("connection", args=[account.pk]),
        dedupe_key=f"reconnect:{account.pk}:{account.last_error_at.isoformat()}"
        if account.last_error_at
        else "",
    )
