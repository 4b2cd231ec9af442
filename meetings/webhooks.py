"""
Zoom's webhooks: `POST /webhooks/zoom/` receives them, `apply_event` applies them to the mirror.

The receiver does as little as it can in the request, so Zoom gets its answer in milliseconds:
verify the signature, store the event (stream keys removed), enqueue its processing after the
commit. Each Zoom app signs with its own secret token, so an event is verified with the token of
the connection whose Zoom account id the event names (`payload.account_id`); the server's
ZOOM_WEBHOOK_SECRET_TOKEN is the token of a connection that has none of its own. Zoom delivers
at least once, so a delivery is stored under a dedupe key and a second copy is answered 200 and
dropped. Events are applied in the order Zoom says they happened
(`event_ts`): the mirror's writers ignore a report older than the last one applied to a row.
"""

import hashlib
import hmac
import json
import logging
import re
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import JsonResponse
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import mirror
from .models import (
    ActionState,
    LiveStreamStatus,
    Meeting,
    MeetingStatus,
    WebhookEvent,
    Webinar,
    ZoomAccount,
)
from .models.accounts import WEBHOOK_RETRY_WINDOW

log = logging.getLogger(__name__)

# How old a signed request time may be. Zoom retries a delivery that was not answered 2xx 5, 25
# and 85 minutes after the first attempt (developers.zoom.us/blog/webhook-delays), and nothing
# says it signs a retry afresh: assume it keeps the first timestamp, as NangoHQ/nango#7484 did
# when it widened its window to 90 minutes. 90 minutes plus 5 for clocks that differ, so the last
# retry is never refused; a replay inside the window stays harmless, because deliveries are
# stored once (dedupe_key) and applied in Zoom's event_ts order.
TIMESTAMP_MAX_AGE_SECONDS = int(WEBHOOK_RETRY_WINDOW.total_seconds())
# A request time ahead of ours: only clock skew explains it.
TIMESTAMP_MAX_AHEAD_SECONDS = 300
# Zoom's events are a few kilobytes; anything far larger is not Zoom.
MAX_BODY_BYTES = 256 * 1024

MEETING_EVENTS = {
    "meeting.started": MeetingStatus.STARTED,
    "meeting.ended": MeetingStatus.ENDED,
    "meeting.deleted": MeetingStatus.DELETED,
    "meeting.recovered": MeetingStatus.WAITING,
}
LIVESTREAM_EVENTS = {
    "meeting.live_streaming_started": LiveStreamStatus.LIVE,
    "meeting.live_streaming_stopped": LiveStreamStatus.STOPPED,
}
WEBINAR_EVENTS = {
    "webinar.started": MeetingStatus.STARTED,
    "webinar.ended": MeetingStatus.ENDED,
    "webinar.deleted": MeetingStatus.DELETED,
    "webinar.recovered": MeetingStatus.WAITING,
}
# A change of settings (topic, schedule, host) made in Zoom: the object carries what changed.
UPDATE_EVENTS = {
    "meeting.updated": Meeting,
    "webinar.updated": Webinar,
}
# A meeting or webinar scheduled in Zoom: the object carries all of its settings, so the mirror
# shows it at once rather than at the next sync.
CREATE_EVENTS = {
    "meeting.created": Meeting,
    "webinar.created": Webinar,
}
HANDLED_EVENTS = {
    *MEETING_EVENTS,
    *LIVESTREAM_EVENTS,
    *WEBINAR_EVENTS,
    *UPDATE_EVENTS,
    *CREATE_EVENTS,
}


# --- Signatures ---------------------------------------------------------------------------------


def sign(secret, timestamp, body):
    """Zoom's signature of a delivery: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}`."""
    message = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_timestamp(timestamp, signature, *, at=None):
    """None when the signed request time is one Zoom could send now, else why not.

    Refuses missing headers, a timestamp that is not a number of seconds, one older than
    TIMESTAMP_MAX_AGE_SECONDS (Zoom's last retry, plus skew) or more than
    TIMESTAMP_MAX_AHEAD_SECONDS ahead of `at` (default now).
    """
    if not timestamp or not signature:
        return "signature headers missing"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "timestamp is not a number of seconds"
    at = time.time() if at is None else at
    age = at - int(timestamp)
    if age > TIMESTAMP_MAX_AGE_SECONDS or -age > TIMESTAMP_MAX_AHEAD_SECONDS:
        return "timestamp outside Zoom's retry window (95 minutes old to 5 minutes ahead)"
    return None


def signature_matches(secret, timestamp, signature, body):
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def verify_signature(secret, timestamp, signature, body, *, at=None):
    """None when the delivery was signed with `secret`, else why not (for the log; never the
    secret). Refuses a missing secret (fail closed), what `check_timestamp` refuses, and a
    missing or wrong signature (compared in constant time)."""
    if not secret:
        return "no webhook secret token is configured"
    refused = check_timestamp(timestamp, signature, at=at)
    if refused:
        return refused
    if not signature_matches(secret, timestamp, signature, body):
        return "signature does not match"
    return None


def secrets_for(envelope):
    """The secret tokens that may have signed this event, as [(secret, latest request time it
    may sign or None)].

    An event naming a Zoom account connected here: the secrets of each connection to that
    account (its own, else the server's default; and for a while after a rotation the token it
    replaced), so another app's secret is refused. One naming no account
    (`endpoint.url_validation`, or a body that is not an event): every connection's and the
    default, and the signature tells which app sent it. One naming an account not connected
    here: the default only (it is stored and ignored).
    """
    default = settings.ZOOM_WEBHOOK_SECRET_TOKEN or ""
    account_id = None
    if isinstance(envelope, dict) and envelope.get("event") != "endpoint.url_validation":
        payload, _ = _object(envelope)
        account_id = _account_id(payload)
        account_id = account_id or None
    accounts = ZoomAccount.objects.only(
        "pk", "name", "zoom_account_id", *ZoomAccount.WEBHOOK_SECRET_FIELDS
    )
    if account_id is not None:
        connections = list(accounts.filter(zoom_account_id=account_id))
        if not connections:
            return [(default, None)] if default else []
    else:
        connections = list(accounts)
    found, seen = [], set()
    for connection in connections:
        for secret, not_after in connection.webhook_secrets():
            if secret not in seen:
                seen.add(secret)
                found.append((secret, not_after))
    if account_id is None and default and default not in seen:
        found.append((default, None))
    return found


def _verified_with(candidates, timestamp, signature, body):
    """The candidate secret that signed this request, or None."""
    for secret, not_after in candidates:
        if not_after is not None and int(timestamp) > not_after:
            continue  # a replaced token signs nothing sent after its replacement
        if signature_matches(secret, timestamp, signature, body):
            return secret
    return None


def url_validation_answer(secret, plain_token):
    """What Zoom expects back for `endpoint.url_validation`."""
    encrypted = hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
    return {"plainToken": plain_token, "encryptedToken": encrypted}


# --- Storing ------------------------------------------------------------------------------------

SECRET_KEYS = {"stream_key", "streamkey", "stream_key_secret"}


def redact(value):
    """A copy of a payload without any stream key, at any depth (Zoom's live streaming events
    carry the custom stream's settings, key included)."""
    if isinstance(value, dict):
        return {
            k: redact(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.lower().replace("-", "_") in SECRET_KEYS)
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def dedupe_key(envelope):
    """The same delivery twice gives the same key: a hash of the event's canonical JSON (Zoom
    re-sends the same event with a new timestamp header, so the headers are left out)."""
    canonical = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _object(envelope):
    payload = envelope.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    obj = payload.get("object")
    return payload, (obj if isinstance(obj, dict) else {})


def _account_id(payload):
    """The event's Zoom account id as text a query can hold ("" when it is not text): Zoom's
    ids are letters, digits, "-" and "_"; a NUL byte, which PostgreSQL cannot store or compare,
    is no part of one."""
    value = payload.get("account_id")
    return value.replace("\x00", "") if isinstance(value, str) else ""


def store_event(envelope):
    """Store an accepted event and enqueue its processing after commit.

    Returns (event, created); a duplicate delivery returns the stored one with created=False.
    """
    payload, obj = _object(envelope)
    zoom_account_id = _account_id(payload)
    event_ts = envelope.get("event_ts")
    event_ts = event_ts if isinstance(event_ts, int) and not isinstance(event_ts, bool) else None
    if event_ts is not None and not -(2**63) < event_ts < 2**63:
        event_ts = None
    uuid = obj.get("uuid")
    key = dedupe_key(envelope)
    account = None
    if zoom_account_id:
        account = ZoomAccount.objects.filter(zoom_account_id=zoom_account_id).first()
    fields = {
        "account": account,
        "event": str(envelope.get("event"))[:100],
        "event_ts": event_ts,
        "zoom_account_id": zoom_account_id[:100],
        "object_id": mirror.normalize_zoom_id(obj.get("id")),
        "object_uuid": uuid[:100] if isinstance(uuid, str) else "",
        "payload": redact(envelope),
    }
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(dedupe_key=key, **fields)
            transaction.on_commit(lambda: enqueue(event.pk))
    except IntegrityError:
        return WebhookEvent.objects.get(dedupe_key=key), False
    return event, True


def enqueue(event_id):
    """Queue an event's processing; a broker that is down loses nothing (the sweeper, every
    minute, processes what is still unprocessed)."""
    from .tasks.mirror import process_webhook_event

    try:
        process_webhook_event.delay(event_id)
    except Exception:  # kombu raises many kinds (OperationalError, OSError, ...)
        log.warning("webhook event %s stored but not queued; the sweeper will process it", event_id)


# --- The receiver -------------------------------------------------------------------------------

# Zoom's events are a few levels deep; this is far more than any of them has.
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_json(constant):
    """json.loads's hook for NaN and Infinity: not JSON (and PostgreSQL's jsonb refuses them)."""
    raise ValueError(f"{constant} is not JSON")


def _storable(envelope):
    """Whether a parsed body is one Zoom could have sent and the database can store: nested at
    most MAX_DEPTH deep, no text with NUL or a lone surrogate (PostgreSQL refuses both, and a
    surrogate cannot even be encoded: each was a 500, found by tests/test_hostile_input.py)."""
    stack = [(envelope, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(value, str):
            if "\x00" in value or _SURROGATE.search(value):
                return False
        elif isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return True


def subscription_events():
    """The events to subscribe a Zoom app to, grouped as the Marketplace lists them."""
    return [
        ("Meeting", sorted(e for e in HANDLED_EVENTS if e.startswith("meeting."))),
        ("Webinar", sorted(e for e in HANDLED_EVENTS if e.startswith("webinar."))),
    ]


@csrf_exempt
@require_POST
def zoom_webhook(request):
    """Zoom's webhook endpoint. 401 and nothing stored unless signed with the secret token of
    the connection the event is for, at a time inside Zoom's retry window."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        # Django would fail reading the body (a 500); gunicorn refuses such a request itself.
        return JsonResponse({"error": "bad Content-Length"}, status=400)
    if length > MAX_BODY_BYTES:
        return JsonResponse({"error": "request body too large"}, status=413)
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return JsonResponse({"error": "request body too large"}, status=413)
    timestamp = request.headers.get("x-zm-request-timestamp", "")
    signature = request.headers.get("x-zm-signature", "")
    refused = check_timestamp(timestamp, signature)
    if refused:
        log.warning("webhook refused: %s", refused)
        return JsonResponse({"error": "invalid signature"}, status=401)
    try:
        envelope = json.loads(body, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError, RecursionError):
        envelope = None  # refused below; 401 first unless it was signed
    candidates = secrets_for(envelope)
    secret = _verified_with(candidates, timestamp, signature, body)
    if secret is None:
        log.warning(
            "webhook refused: %s",
            "signature does not match"
            if candidates
            else "no webhook secret token is configured for the account it names",
        )
        return JsonResponse({"error": "invalid signature"}, status=401)
    if envelope is None:
        return JsonResponse({"error": "body is not JSON"}, status=400)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("event"), str):
        return JsonResponse({"error": "not a Zoom event"}, status=400)
    if not _storable(envelope):
        return JsonResponse({"error": "not a Zoom event"}, status=400)

    if envelope["event"] == "endpoint.url_validation":
        payload, _ = _object(envelope)
        plain_token = payload.get("plainToken")
        if not isinstance(plain_token, str) or not plain_token or len(plain_token) > 1000:
            return JsonResponse({"error": "plainToken missing"}, status=400)
        return JsonResponse(url_validation_answer(secret, plain_token))

    event, created = store_event(envelope)
    if not created:
        log.info("duplicate webhook delivery of event %s dropped", event.pk)
    return JsonResponse({"status": "accepted" if created else "duplicate"})


# --- Applying -----------------------------------------------------------------------------------


class Ignored(Exception):
    """The event is well formed but there is nothing to apply (said in WebhookEvent.error)."""


def apply_event(event):
    """Apply a stored event to the mirror. Raises Ignored when there is nothing to do.

    Runs inside the caller's transaction; `meeting.ended` also asks the action pipeline to
    fetch that instance's past-meeting details (the action is enqueued after commit).
    """
    if event.event not in HANDLED_EVENTS:
        raise Ignored(f"event {event.event!r} is not one the mirror follows")
    _, obj = _object(event.payload)
    zoom_id = event.object_id or mirror.normalize_zoom_id(obj.get("id"))
    if zoom_id is None:
        raise Ignored("the event names no meeting or webinar id")
    accounts = list(ZoomAccount.objects.filter(zoom_account_id=event.zoom_account_id))
    if not event.zoom_account_id or not accounts:
        raise Ignored(f"no connected Zoom account has id {event.zoom_account_id!r}")
    at = mirror.event_time(event.event_ts) or event.received_at
    uuid = event.object_uuid or None

    if event.event in CREATE_EVENTS:
        model = CREATE_EVENTS[event.event]
        try:
            for account in accounts:
                mirror.record_created(model, account, zoom_id, obj, uuid=uuid, at=at)
        except mirror.StaleUpdate as exc:
            raise Ignored(str(exc)) from None
        return

    if event.event in UPDATE_EVENTS:
        if obj.get("occurrences"):
            # One occurrence of a recurring meeting was changed, not the meeting.
            raise Ignored("the update is of one occurrence, which the mirror does not keep")
        model = UPDATE_EVENTS[event.event]
        try:
            updated = [mirror.record_details(model, a, zoom_id, obj, at=at) for a in accounts]
        except mirror.StaleUpdate as exc:
            raise Ignored(str(exc)) from None
        if not any(updated):
            raise Ignored(
                f"{model._meta.verbose_name} {zoom_id} is not in the mirror yet; "
                "the next sync brings it"
            )
        return

    for account in accounts:
        if event.event in MEETING_EVENTS:
            status = MEETING_EVENTS[event.event]
            if event.event == "meeting.deleted" and obj.get("occurrences"):
                # One occurrence of a recurring meeting was deleted, not the meeting.
                continue
            # Known from events alone (or not at all): no list or fetch has filled in its host's
            # email and join URL (an event carries neither, or only the URL).
            partial = not (
                Meeting.objects.filter(account=account, zoom_id=zoom_id)
                .exclude(host_email="")
                .exclude(join_url="")
                .exists()
            )
            mirror.record_meeting_status(account, zoom_id, status, uuid=uuid, at=at, details=obj)
            if event.event == "meeting.started" and partial:
                _request_meeting_fetch(account, zoom_id)
        elif event.event in LIVESTREAM_EVENTS:
            meeting = Meeting.objects.filter(account=account, zoom_id=zoom_id).first()
            if meeting is None:
                meeting = mirror.record_meeting_status(
                    account, zoom_id, MeetingStatus.STARTED, uuid=uuid, at=at, details=obj
                )
            config = _livestream_config(obj)
            was = meeting.livestream_status
            stale = bool(meeting.last_event_at and at < meeting.last_event_at)
            meeting = mirror.record_livestream(
                meeting, status=LIVESTREAM_EVENTS[event.event], config=config, at=at
            )
            if event.event == "meeting.live_streaming_stopped" and not stale:
                _notify_unexplained_stop(account, meeting, was, at)
        else:
            status = WEBINAR_EVENTS[event.event]
            if event.event == "webinar.deleted" and obj.get("occurrences"):
                # One occurrence of a recurring webinar was deleted, not the webinar.
                continue
            mirror.record_webinar_status(account, zoom_id, status, uuid=uuid, at=at, details=obj)

    if event.event in ("meeting.started", "webinar.started"):
        _fire_triggers(event, accounts, zoom_id, uuid)
    if event.event in ("meeting.ended", "webinar.ended"):
        _confirm_waiting_ends(event, accounts, zoom_id)
    if event.event == "meeting.ended" and uuid:
        _request_past_meeting_fetch(accounts, zoom_id, uuid, obj.get("topic"))


def _notify_unexplained_stop(account, meeting, was, at):
    """A live stream stopped and no action of ours stopped it: tell those who subscribed.

    Zoom delivers an event more than once and not always in order, so: a stop older than the
    meeting's last applied event changes nothing and says nothing (the caller checks); a stop of
    a stream the mirror already had stopped (our own stop, or a second stop event) says
    nothing; a stop or end of ours of that meeting requested in NOTIFY_OWN_STOP_WINDOW_SECONDS
    before Zoom's event time (or still running) explains it. The happening's key (meeting and
    Zoom's event time) makes a retried delivery of the same event notify once.
    """
    from datetime import timedelta

    from django.urls import reverse

    from .models import Action, ActionKind
    from .notifications import EventKind, notify

    if was != LiveStreamStatus.LIVE:
        return
    window = timedelta(seconds=settings.NOTIFY_OWN_STOP_WINDOW_SECONDS)
    ours = Action.objects.filter(
        account=account,
        target_id=meeting.zoom_id,
        kind__in=[ActionKind.STOP_LIVESTREAM, ActionKind.END_MEETING],
        requested_at__gte=at - window,
        requested_at__lte=at + timedelta(seconds=TIMESTAMP_MAX_AHEAD_SECONDS),
    ).exclude(state=ActionState.CANCELLED)
    if ours.exists():
        return
    notify(
        EventKind.STREAM_STOPPED,
        title=f"The live stream of {meeting.topic or meeting.zoom_id} stopped",
        text=(
            "Zoom says the meeting's live stream stopped, and no one stopped it from the "
            "dashboard (the host may have stopped it in Zoom, or the streaming service dropped "
            "it). Start it again from the meeting's page if it should be running."
        ),
        account=account,
        url=reverse("meeting", args=[meeting.pk]),
        dedupe_key=f"stream_stopped:{account.pk}:{meeting.zoom_id}:{at.isoformat()}",
    )


def _request_meeting_fetch(account, zoom_id):
    """A meeting started that the mirror did not know, or knew from events alone: an instant or
    personal meeting ID meeting, which no list of Zoom's shows, or one scheduled since the last
    sync. Events name the host by id only; `GET /meetings/{id}` (after commit, in a task)
    brings the rest."""
    from .tasks.mirror import fetch_meeting

    if account.status != ZoomAccount.Status.CONNECTED:
        return

    def enqueue_fetch():
        try:
            fetch_meeting.delay(account.pk, zoom_id)
        except Exception:  # kombu raises many kinds; the meeting is mirrored already
            log.warning("meeting %s: its details fetch could not be queued", zoom_id)

    transaction.on_commit(enqueue_fetch)


def _fire_triggers(event, accounts, zoom_id, uuid):
    """The "when it starts" triggers of the meeting (webinar) and its connection, once per
    instance. A trigger that cannot fire never stops the event from being applied."""
    from .automation import fire_triggers

    target_type = "webinar" if event.event.startswith("webinar.") else "meeting"
    for account in accounts:
        if account.status != ZoomAccount.Status.CONNECTED:
            continue
        try:
            with transaction.atomic():
                fire_triggers(account, target_type, zoom_id, uuid, seen_by="webhook")
        except Exception:
            log.exception(
                "event %s: the triggers of %s %s could not fire", event.pk, target_type, zoom_id
            )


def _confirm_waiting_ends(event, accounts, zoom_id):
    """Zoom's *.ended event is the evidence an end action waits for after Zoom's 204: finish
    those waiting for it now, so no `GET` is spent confirming them (meetings.confirmations)."""
    from .confirmations import confirm_by_event

    confirm_by_event(event, accounts, zoom_id)


def _livestream_config(obj):
    """The stream URL, page URL and resolution a live streaming event carries (its key was
    removed before the event was stored)."""
    live = obj.get("live_streaming")
    live = live if isinstance(live, dict) else {}
    custom = live.get("custom_live_streaming_settings")
    if not isinstance(custom, dict):
        return None
    config = {}
    for name in ("stream_url", "page_url", "resolution"):
        value = custom.get(name)
        if isinstance(value, str):
            config[name] = value
    if config.get("resolution") not in (None, "720p", "1080p"):
        del config["resolution"]
    return config or None


def _request_past_meeting_fetch(accounts, zoom_id, uuid, topic):
    """Ask the pipeline for the ended instance's details, sent after commit with a countdown:
    Zoom answers 3001 "not ended" for a while after meeting.ended."""
    from .actions import enqueue_actions, request_action
    from .models import ActionKind

    connected = [a for a in accounts if a.status == ZoomAccount.Status.CONNECTED]
    if not connected:
        return
    action, created = request_action(
        account=connected[0],
        kind=ActionKind.FETCH_PAST_MEETING,
        source="webhook",
        target_type="meeting",
        target_id=zoom_id,
        target_uuid=uuid,
        topic=topic if isinstance(topic, str) else "",
        enqueue=False,
    )
    if created:
        delay = settings.PAST_MEETING_FETCH_DELAY_SECONDS
        transaction.on_commit(
            lambda: enqueue_actions([action.pk], countdown=delay or None), robust=True
        )


def process_event(event_id):
    """Apply one stored event exactly once. Returns False when it was already processed."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.processed_at is not None:
            return False
        try:
            with transaction.atomic():
                apply_event(event)
            event.error = ""
        except Ignored as e:
            event.error = str(e)[:1000]
        event.processed_at = now()
        event.attempts += 1
        event.save(update_fields=["processed_at", "error", "attempts"])
    return True


def record_failure(event_id, error):
    """Note a failed processing attempt (the sweeper tries again a few times)."""
    WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(
        error=f"{type(error).__name__}: {error}"[:1000], attempts=F("attempts") + 1
    )
