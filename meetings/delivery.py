"""Sending notifications: one Delivery at a time, by e-mail or to a chat destination.

`send_delivery(pk)` is what the task `meetings.tasks.notifications.deliver` does. Per
destination (an address, a chat URL: DestinationSlot) one send is in flight at a time and
sends are at least NOTIFY_DESTINATION_INTERVAL_SECONDS apart: a delivery that finds its
destination busy or too soon is not slept on, it is sent again with a countdown, so a destination
that hangs holds at most one worker process for NOTIFY_TIMEOUT_SECONDS, and never an action's.
A failed send is retried with exponential backoff (NOTIFY_RETRY_BASE_SECONDS doubling, capped at
NOTIFY_RETRY_MAX_SECONDS) up to NOTIFY_MAX_ATTEMPTS, each failure kept in plain words. No
address or token reaches a log line or a page: errors are scrubbed of the destination's parts.
"""

import logging
import random
import re
import smtplib
import time
from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F
from django.utils.timezone import now

from .fields import is_undecryptable
from .models import Channel, Delivery, DeliveryState, DestinationSlot
from .models.notifications import destination_key
from .notifications import APPRISE_LOG

log = logging.getLogger(__name__)


class SendError(Exception):
    """A send failed; the message is in plain words with no secret in it."""


def backoff_seconds(attempts, *, rng=random.random):
    """The wait after the ATTEMPTS-th failure: base * 2^(attempts-1), capped, half of it random."""
    base = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    wait = min(base, settings.NOTIFY_RETRY_MAX_SECONDS)
    return wait / 2 + rng() * wait / 2


def reserve(key, *, clock=time.time):
    """Take destination KEY for one send: 0 when granted, else the seconds to wait."""
    DestinationSlot.objects.bulk_create([DestinationSlot(key=key)], ignore_conflicts=True)
    with transaction.atomic():
        slot = DestinationSlot.objects.select_for_update().get(key=key)
        t = clock()
        if slot.busy_until > t:
            return max(slot.busy_until - t, 0.2)
        if slot.next_at > t:
            return max(slot.next_at - t, 0.05)
        slot.next_at = t + settings.NOTIFY_DESTINATION_INTERVAL_SECONDS
        # A worker killed mid-send frees the destination by time.
        slot.busy_until = t + settings.NOTIFY_TIMEOUT_SECONDS * 2 + 5
        slot.save(update_fields=["next_at", "busy_until"])
    return 0.0


def release(key):
    DestinationSlot.objects.filter(key=key).update(busy_until=0.0)


def send_delivery(pk, *, clock=time.time):
    """Send delivery PK if it is waiting. Returns None when done with it (sent, failed, or not
    waiting), else the seconds after which to try again (rate limit, busy, or a retry)."""
    delivery = Delivery.objects.select_related("subscription", "user").filter(pk=pk).first()
    if delivery is None or delivery.state != DeliveryState.PENDING:
        return None
    wait = (delivery.next_attempt_at - now()).total_seconds()
    if wait > 0.05:
        return wait
    subscription = delivery.subscription
    if subscription is None:
        return _give_up(delivery, "Its subscription was deleted before it could be sent.")
    try:
        destination = _destination(delivery, subscription)
    except SendError as e:
        return _give_up(delivery, str(e))
    key = destination_key(delivery.channel, destination)
    wait = reserve(key, clock=clock)
    if wait:
        return wait + random.random() * 0.1  # noqa: S311 - spreading retries, not a secret
    try:
        claimed = Delivery.objects.filter(pk=pk, state=DeliveryState.PENDING).update(
            state=DeliveryState.SENDING,
            attempts=F("attempts") + 1,
            # The sweeper's cue that a send was cut short (its worker died).
            next_attempt_at=now() + timedelta(seconds=settings.NOTIFY_TIMEOUT_SECONDS * 2 + 60),
        )
        if not claimed:
            return None
        attempts = delivery.attempts + 1
        try:
            if delivery.channel == Channel.EMAIL:
                send_email(destination, delivery)
            else:
                send_chat(destination, delivery)
        except SendError as e:
            error = str(e)
        except Exception as e:  # a destination's library failing in a way we did not foresee
            error = f"Could not send ({type(e).__name__})."
            log.warning("notification delivery %s: unexpected %s", pk, type(e).__name__)
        else:
            Delivery.objects.filter(pk=pk, state=DeliveryState.SENDING).update(
                state=DeliveryState.SENT, sent_at=now(), last_error=""
            )
            log.info("notification delivery %s sent (%s)", pk, delivery.channel)
            return None
    finally:
        release(key)
    if attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        Delivery.objects.filter(pk=pk, state=DeliveryState.SENDING).update(
            state=DeliveryState.FAILED,
            last_error=f"{error} Gave up after {attempts} attempts.",
        )
        log.warning("notification delivery %s failed after %d attempts", pk, attempts)
        return None
    later = backoff_seconds(attempts)
    Delivery.objects.filter(pk=pk, state=DeliveryState.SENDING).update(
        state=DeliveryState.PENDING,
        last_error=error,
        next_attempt_at=now() + timedelta(seconds=later),
    )
    log.info("notification delivery %s: attempt %d failed, retried in %.0f s", pk, attempts, later)
    return later


def _give_up(delivery, reason):
    Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(
        state=DeliveryState.FAILED, last_error=reason
    )
    return None


def _destination(delivery, subscription):
    if delivery.channel == Channel.EMAIL:
        address = delivery.user.email
        if not address:
            raise SendError("Your account has no e-mail address: ask an administrator to add one.")
        return address
    url = subscription.destination
    if is_undecryptable(url) or not url:
        raise SendError(
            "The chat address can no longer be read (the encryption key changed): "
            "enter it again on the Notifications page."
        )
    return url


def dashboard_link(path):
    if not path:
        return ""
    base = settings.DASHBOARD_URL.rstrip("/")
    return f"{base}{path}" if base else path


def _body(delivery):
    link = dashboard_link(delivery.url)
    return delivery.text + (f"\n\n{link}" if link else "")


def send_email(address, delivery):
    """By Django's mail settings (EMAIL_HOST ...), with NOTIFY_TIMEOUT_SECONDS to the server."""
    message = EmailMessage(
        subject=f"[zoomadmin] {delivery.title}",
        body=_body(delivery),
        to=[address],
        connection=get_connection(timeout=settings.NOTIFY_TIMEOUT_SECONDS),
    )
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused:
        raise SendError("The mail server refused the address.") from None
    except smtplib.SMTPResponseException as e:
        detail = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else ""
        raise SendError(
            f"The mail server answered {e.smtp_code}: {_scrub(detail, address)[:200]}"
        ) from None
    except TimeoutError:
        raise SendError("The mail server did not answer in time.") from None
    except ConnectionRefusedError:
        raise SendError("The mail server refused the connection (is it running?).") from None
    except (smtplib.SMTPException, OSError) as e:
        raise SendError(f"Could not reach the mail server ({type(e).__name__}).") from None


def send_chat(url, delivery):
    """By apprise, to URL, with NOTIFY_TIMEOUT_SECONDS to connect and to read."""
    import apprise

    captured = StringIO()
    handler = logging.StreamHandler(captured)
    handler.setLevel(logging.WARNING)
    APPRISE_LOG.addHandler(handler)
    # Warnings only: its debug lines carry the whole URL, so they are never even made.
    APPRISE_LOG.setLevel(logging.WARNING)
    try:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise SendError("The chat address is not one the dashboard can send to.")
        plugin.socket_connect_timeout = settings.NOTIFY_TIMEOUT_SECONDS
        plugin.socket_read_timeout = settings.NOTIFY_TIMEOUT_SECONDS
        ok = plugin.notify(body=_body(delivery), title=delivery.title)
    finally:
        APPRISE_LOG.removeHandler(handler)
        APPRISE_LOG.setLevel(logging.CRITICAL)
    if not ok:
        said = " ".join(captured.getvalue().split())
        raise SendError(
            "The chat service did not accept the message"
            + (f": {_scrub(said, url)[:300]}" if said else ".")
        )


def _scrub(text, secret):
    """TEXT without any sizeable part of SECRET (a URL's host, path segments, tokens; an
    address's name): what an error may echo of the destination."""
    parts = set(re.split(r"[/:?&=@#.]+", secret))
    try:
        split = urlsplit(secret)
        parts |= {split.netloc, split.path, split.query, split.hostname or ""}
    except ValueError:
        pass
    parts.add(secret)
    for part in sorted((p for p in parts if len(p) >= 5), key=len, reverse=True):
        text = text.replace(part, "••••")
    return text


def sweep(*, limit=500):
    """Deliveries whose message was lost: waiting past their time by NOTIFY_SWEEP_GRACE_SECONDS
    (the broker was down, a countdown message died with its worker), or sending past their
    deadline (the worker died mid-send: sent again, it may arrive twice, which beats never).
    Returns the ids sent again."""
    from .notifications import enqueue_deliveries

    cutoff = now() - timedelta(seconds=settings.NOTIFY_SWEEP_GRACE_SECONDS)
    Delivery.objects.filter(state=DeliveryState.SENDING, next_attempt_at__lt=now()).update(
        state=DeliveryState.PENDING, last_error="The send was cut short; sending again."
    )
    ids = list(
        Delivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lt=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        # Pushed forward so the next sweep does not send them again meanwhile.
        Delivery.objects.filter(pk__in=ids, state=DeliveryState.PENDING).update(
            next_attempt_at=now()
        )
        enqueue_deliveries(ids)
    return ids
