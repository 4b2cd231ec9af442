"""
The address of a host Zoom's events name by id only.

`meeting.updated` (a meeting handed to another user), `meeting.created`, `meeting.started` ...
carry `host_id` and no email. The mirror shows the address it knows for that id (ZoomUser, or
another row of the host: mirror.known_host_email); when it knows none, the webhook task calls
`fill_in_host_email` after applying the event, which asks Zoom (`GET /users/{userId}`, Light,
booked with the account's rate limiter), remembers the user and fills in the rows. Without it a
row would show an empty host until the next sync, an hour or more away on a small plan.
"""

import logging

from django.utils.timezone import now

from .mirror import clip
from .models import Meeting, WebhookEvent, Webinar, ZoomAccount, ZoomUser

log = logging.getLogger(__name__)


def _host_id(event):
    """The host id the stored event's object names (its `payload` is Zoom's whole envelope)."""
    envelope = event.payload if isinstance(event.payload, dict) else {}
    payload = envelope.get("payload") if isinstance(envelope.get("payload"), dict) else {}
    obj = payload.get("object") if isinstance(payload.get("object"), dict) else {}
    host_id = obj.get("host_id")
    return host_id if isinstance(host_id, str) and host_id.strip() else None


def _rows_without_email(account, host_id):
    return [
        model.objects.filter(account=account, host_id=host_id, host_email="")
        for model in (Meeting, Webinar)
    ]


def fill_in_host_email(event_id, *, client_for=None):
    """After event `event_id` was applied: give the rows of the host it names the host's
    address, asking Zoom when nobody knows it. Returns the number of rows filled in. A Zoom
    failure is logged and left to the next sync (the event itself was applied)."""
    event = WebhookEvent.objects.filter(pk=event_id).first()
    host_id = _host_id(event) if event is not None else None
    if host_id is None or not event.zoom_account_id:
        return 0
    filled = 0
    accounts = ZoomAccount.objects.filter(
        zoom_account_id=event.zoom_account_id, status=ZoomAccount.Status.CONNECTED
    )
    for account in accounts:
        rows = _rows_without_email(account, host_id)
        if not any(qs.exists() for qs in rows):
            continue
        email = _known_email(account, host_id) or _fetch_email(account, host_id, client_for)
        if email:
            filled += sum(qs.update(host_email=clip(Meeting, "host_email", email)) for qs in rows)
    return filled


def _known_email(account, host_id):
    from .mirror import known_host_email

    return known_host_email(account, host_id)


def _fetch_email(account, host_id, client_for=None):
    from .ratelimit import ThrottleWaitError, throttle_for
    from .zoom.client import ZoomClient
    from .zoom.errors import ZoomError

    throttle = throttle_for(account)

    def on_response(method, path, status, duration_ms, error):
        if status == 429:
            throttle.after_429(error)

    build = client_for or ZoomClient.for_account
    try:
        client = build(account, throttle=throttle, on_response=on_response)
        user = client.get_user(host_id)
    except (ZoomError, ThrottleWaitError, ValueError) as e:
        log.warning(
            "host %s of account %s: its address could not be fetched: %s", host_id, account, e
        )
        return ""
    email = clip(ZoomUser, "email", user.email or "")
    if email:
        ZoomUser.objects.update_or_create(
            account=account,
            zoom_user_id=host_id,
            defaults={"email": email, "updated": now()},
        )
    return email
