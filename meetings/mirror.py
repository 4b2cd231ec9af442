"""
The mirror's writers: how what Zoom tells us (an answer, a webhook event) reaches the local
copy of meetings, webinars and past meetings that the dashboard reads.

Executors call these after Zoom answers; the webhook task calls them for each event; the sync
(`meetings.sync`) writes in bulk on its own but follows the same rules:

- Reports are ordered by when Zoom said them (`at`, a webhook's `event_ts`, else the
  database's clock now: `db_now`, never a worker's own clock, which may be minutes off the
  others' and Zoom's). A report older than the last one applied to a row (`last_event_at`)
  changes nothing, so an event that arrives late never puts back an older state.
- Unknown meetings and webinars are created from what the report carries.
- A row is written only when something in it changes.
"""

from datetime import UTC, datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils.timezone import now

from .models import (
    LiveStreamStatus,
    Meeting,
    MeetingStatus,
    PastMeeting,
    PastParticipant,
    Webinar,
)
from .timefmt import in_words
from .zoom.types import parse_datetime
from .zoom.types import zoom_id as _zoom_id_field

# What a webhook's object (or a ZoomMeeting / ZoomWebinar) may fill in on a mirrored row: a
# meeting's or webinar's settings, which a sync also compares and writes (sync.DATA_FIELDS).
DETAIL_FIELDS = (
    "host_id",
    "host_email",
    "topic",
    "type",
    "start_time",
    "duration",
    "timezone",
    "join_url",
)
# The columns' ranges (PositiveSmallIntegerField, PositiveIntegerField): a larger number from
# Zoom is "unknown", not a row PostgreSQL refuses.
INTEGER_LIMITS = {"type": 2**15 - 1, "duration": 2**31 - 1}


def normalize_zoom_id(value):
    """A 64-bit Zoom id from a number or a numeric string (webhooks send both), else None."""
    try:
        return _zoom_id_field({"id": value}, "id", required=False)
    except ValueError:
        return None


def db_now():
    """Now by the database's clock (PostgreSQL: the one clock every host shares), as an aware
    datetime; with SQLite (one file on one machine) this machine's.

    A report without Zoom's own time (an answer to our request) is dated by it: a worker five
    minutes ahead would date its report after Zoom's next event and hide that event; one five
    minutes behind would have its report ignored as older than an event applied before it
    (issue 13, tests/test_clock_skew.py)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0].astimezone(UTC)
    return now()


def event_time(event_ts):
    """The aware datetime of a webhook's `event_ts` (milliseconds since the epoch), or None."""
    if isinstance(event_ts, bool) or not isinstance(event_ts, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(event_ts / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def clip(model, field_name, value):
    """`value` cut to the column's max_length: Zoom's text never overflows a column (PostgreSQL
    would refuse the whole row)."""
    if isinstance(value, str):
        max_length = model._meta.get_field(field_name).max_length
        if max_length and len(value) > max_length:
            return value[:max_length]
    return value


def _details(model, details):
    """The mirrored fields a report carries, as {field: value}, from a dict or a typed object."""
    if details is None:
        return {}
    get = details.get if isinstance(details, dict) else lambda name: getattr(details, name, None)
    values = {}
    for name in DETAIL_FIELDS:
        value = get(name)
        if value is None or value == "":
            continue
        if name == "start_time" and isinstance(value, str):
            try:
                # In UTC: an offset PostgreSQL refuses (over 15:59), or a time at the end of
                # the calendar, made the event's processing fail (tests/test_hostile_input.py).
                value = parse_datetime(value).astimezone(UTC)
            except (ValueError, OverflowError):
                continue
        elif name in ("type", "duration"):
            if isinstance(value, str) and value.isascii() and value.isdigit():  # not "²"
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                continue
            if not 0 <= value <= INTEGER_LIMITS[name]:
                continue
        elif not isinstance(value, (str, datetime)):
            continue
        values[name] = clip(model, name, value)
    return values


def _record_status(
    model, account, zoom_id, status, *, uuid=None, at=None, details=None, extra=None
):
    """Apply one status report to a meeting or webinar row, creating it when unknown.

    Returns (row, changed). A report older than the row's last applied one changes nothing.
    """
    zoom_id = normalize_zoom_id(zoom_id)
    if zoom_id is None:
        raise ValueError("not a Zoom meeting or webinar id")
    if status not in MeetingStatus.values:
        raise ValueError(f"unknown status {status!r}")
    at = at or db_now()
    fields = _details(model, details)
    uuid = clip(model, "uuid", uuid or "")
    with transaction.atomic():
        row = model.objects.select_for_update().filter(account=account, zoom_id=zoom_id).first()
        if row is None:
            if fields.get("host_id") and not fields.get("host_email"):
                fields["host_email"] = known_host_email(account, fields["host_id"])
            try:
                with transaction.atomic():
                    row = model.objects.create(
                        account=account,
                        zoom_id=zoom_id,
                        uuid=uuid,
                        status=status,
                        last_event_at=at,
                        **fields,
                        **(extra or {}),
                    )
                if model is Meeting:
                    link_past_meetings(account, [zoom_id])
                return row, True
            except IntegrityError:
                # Created meanwhile by a sync or another event: apply the report to that row.
                row = model.objects.select_for_update().get(account=account, zoom_id=zoom_id)
        if row.last_event_at and at < row.last_event_at:
            return row, False
        changes = {"status": status, **(extra or {})}
        if uuid:
            changes["uuid"] = uuid
        for name, value in fields.items():
            # The report is Zoom's word at `at`, newer than the row's; but an event's start_time
            # is when this instance began, and the scheduled start time stays the sync's.
            if name == "start_time" and row.start_time:
                continue
            changes[name] = value
        changed = [name for name, value in changes.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, changes[name])
        row.last_event_at = at
        row.save(update_fields=[*changed, "last_event_at"])
        return row, bool(changed)


def live_webinar_uuid(account, zoom_id):
    """The UUID of the webinar's instance the mirror has live (from webinar.started, or from a
    sync while it ran), or None: what an end looks for among Zoom's past instances."""
    return (
        Webinar.objects.filter(account=account, zoom_id=zoom_id, status=MeetingStatus.STARTED)
        .exclude(uuid="")
        .values_list("uuid", flat=True)
        .first()
    )


def known_host_email(account, host_id):
    """The email the mirror shows for Zoom user `host_id` on another meeting or webinar, or "".

    Zoom's events name a host by id only; a row they create would show the id where every
    other row of that host shows the address (the sync fills it in from Zoom's users)."""
    from .models import ZoomUser

    email = (
        ZoomUser.objects.filter(account=account, zoom_user_id=host_id)
        .exclude(email="")
        .values_list("email", flat=True)
        .first()
    )
    if email:
        return email
    for model in (Meeting, Webinar):
        email = (
            model.objects.filter(account=account, host_id=host_id)
            .exclude(host_email="")
            .order_by()
            .values_list("host_email", flat=True)
            .first()
        )
        if email:
            return email
    return ""


def record_meeting_status(account, zoom_id, status, *, uuid=None, at=None, details=None):
    """Record that Zoom reported meeting `zoom_id` in `status` (a MeetingStatus value).

    `uuid` is the current instance's UUID when known; `at` when Zoom said it (default now);
    `details` (a dict such as a webhook's object, or a ZoomMeeting) fills in topic, host and
    schedule for a meeting we did not know. Ending or deleting a meeting stops its live stream.
    The executors call this once Zoom has confirmed a change (e.g. `GET /meetings/{id}` after
    an end), the webhook task for each event. Returns the Meeting.
    """
    extra = {}
    if status in (MeetingStatus.ENDED, MeetingStatus.DELETED, MeetingStatus.WAITING):
        extra["livestream_status"] = LiveStreamStatus.STOPPED
    meeting, _ = _record_status(
        Meeting, account, zoom_id, status, uuid=uuid, at=at, details=details, extra=extra
    )
    return meeting


def record_webinar_status(account, zoom_id, status, *, uuid=None, at=None, details=None):
    """Record that Zoom reported webinar `zoom_id` in `status`. Zoom's webinar API has no
    status, so this comes from webhook events (and the end action). Returns the Webinar."""
    extra = {}
    if status in (MeetingStatus.ENDED, MeetingStatus.DELETED, MeetingStatus.WAITING):
        # The stream ends with the webinar; Zoom sends no event saying so for webinars.
        extra["livestream_status"] = LiveStreamStatus.STOPPED
    webinar, _ = _record_status(
        Webinar, account, zoom_id, status, uuid=uuid, at=at, details=details, extra=extra
    )
    return webinar


class StaleUpdate(Exception):
    """A settings update older than the one already applied to the row."""


def record_details(model, account, zoom_id, details, *, at=None):
    """Apply what Zoom says changed in a meeting's or webinar's settings (`meeting.updated`,
    `webinar.updated`: topic, schedule, host, ...) to its row. Returns the row, or None when the
    mirror does not have it (an update carries only what changed: the next sync brings the
    rest). The status is not touched, and here a start_time is the new schedule.

    Updates are ordered among themselves by when Zoom sent them (`at`, kept in
    `details_event_at`): one sent before the update already applied raises StaleUpdate and
    changes nothing. They are not checked against `last_event_at` nor move it: that orders
    status reports, and an update (the host renaming a meeting while it runs) that moved it would
    make a `meeting.started` sent before it but delivered after it look stale, and leave a live
    meeting shown waiting.
    """
    zoom_id = normalize_zoom_id(zoom_id)
    fields = _details(model, details)
    with transaction.atomic():
        row = model.objects.select_for_update().filter(account=account, zoom_id=zoom_id).first()
        if row is None:
            return None
        if at is not None and row.details_event_at is not None and at < row.details_event_at:
            raise StaleUpdate(
                f"Zoom sent this update at {in_words(at, seconds=True)}, before the one already "
                f"applied ({in_words(row.details_event_at, seconds=True)}): nothing changed"
            )
        if fields.get("host_id") and fields["host_id"] != row.host_id:
            # Handed to another host: the event names the new host by id only; the old host's
            # address must not stay beside it. Known, it is shown at once; else the webhook
            # task fetches it (meetings.hosts).
            fields.setdefault("host_email", known_host_email(account, fields["host_id"]))
        changed = [name for name, value in fields.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, fields[name])
        if at is not None and row.details_event_at != at:
            row.details_event_at = at
            changed.append("details_event_at")
        if changed:
            row.save(update_fields=changed)
        return row


def record_created(model, account, zoom_id, details, *, uuid=None, at=None):
    """A meeting or webinar scheduled in Zoom (`meeting.created`, `webinar.created`): a new row,
    waiting, with the settings the event carries. A row the mirror already has (a sync was
    quicker) takes them as an update would, its status untouched. Returns the row."""
    zoom_id = normalize_zoom_id(zoom_id)
    if zoom_id is None:
        raise ValueError("not a Zoom meeting or webinar id")
    if model.objects.filter(account=account, zoom_id=zoom_id).exists():
        return record_details(model, account, zoom_id, details, at=at)
    at = at or db_now()
    row, _ = _record_status(
        model,
        account,
        zoom_id,
        MeetingStatus.WAITING,
        uuid=uuid,
        at=at,
        details=details,
        extra={"details_event_at": at},
    )
    return row


def record_livestream(meeting, *, status=None, config=None, at=None):
    """Record a meeting's (or webinar's) live stream status ("live" / "stopped") and/or
    configuration.

    `config` is a LiveStream (or a dict) as Zoom holds it after `GET`/`PATCH .../livestream`;
    the stream key is stored encrypted and never shown in clear. A live stream runs only in a
    started meeting, so "live" also marks the meeting started. A report older than the
    meeting's last applied report (`at`, default now) changes nothing. Returns the row.
    """
    at = at or db_now()
    model = type(meeting)
    with transaction.atomic():
        meeting = model.objects.select_for_update().get(pk=meeting.pk)
        stale = bool(meeting.last_event_at and at < meeting.last_event_at)
        changes = {}
        if config is not None and not stale:
            get = config.get if isinstance(config, dict) else lambda n: getattr(config, n, None)
            for name in ("stream_url", "stream_key", "page_url", "resolution"):
                value = get(name)
                if value is not None:
                    changes[name] = clip(model, name, value)
        if status is not None and not stale:
            if status not in LiveStreamStatus.values:
                raise ValueError(f"unknown live stream status {status!r}")
            changes["livestream_status"] = status
            if status == LiveStreamStatus.LIVE:
                changes["status"] = MeetingStatus.STARTED
        changed = [name for name, value in changes.items() if getattr(meeting, name) != value]
        for name in changed:
            setattr(meeting, name, changes[name])
        update_fields = list(changed)
        if status is not None and not stale:
            meeting.last_event_at = at
            update_fields.append("last_event_at")
        if update_fields:
            meeting.save(update_fields=update_fields)
        return meeting


PAST_MEETING_FIELDS = (
    "zoom_id",
    "host_id",
    "type",
    "topic",
    "user_name",
    "user_email",
    "start_time",
    "end_time",
    "duration",
    "total_minutes",
    "participants_count",
    "dept",
    "source",
)


def link_past_meetings(account, zoom_ids):
    """Link stored instances to their meeting once the mirror knows it (an instance fetched by
    UUID may arrive before the meeting does). One UPDATE; nothing when nothing is unlinked."""
    if not zoom_ids:
        return 0
    meeting = Meeting.objects.filter(account=account, zoom_id=OuterRef("zoom_id")).values("pk")
    return PastMeeting.objects.filter(
        account=account, meeting__isnull=True, zoom_id__in=list(zoom_ids)
    ).update(meeting=Subquery(meeting[:1]))


def store_past_meeting(account, details):
    """Store one ended instance (a PastMeetingDetails), idempotently by its UUID, linked to its
    meeting when the mirror knows it. Fetching the same instance again updates it in place.
    Returns the PastMeeting."""
    values = {name: getattr(details, name) for name in PAST_MEETING_FIELDS if name != "zoom_id"}
    values["zoom_id"] = details.id
    for name in ("duration", "total_minutes", "participants_count", "type"):
        if values[name] is not None and values[name] < 0:
            values[name] = None  # PositiveIntegerField: a nonsense negative is "unknown"
    for name in ("host_id", "topic", "user_name", "user_email", "dept", "source"):
        values[name] = clip(PastMeeting, name, values[name] or "")
    values["account"] = account
    values["meeting"] = Meeting.objects.filter(account=account, zoom_id=details.id).first()
    values["fetched_at"] = now()
    uuid = clip(PastMeeting, "uuid", details.uuid)
    with transaction.atomic():
        try:
            with transaction.atomic():
                past, _ = PastMeeting.objects.update_or_create(uuid=uuid, defaults=values)
        except IntegrityError:
            # Two fetches of the same instance at once: the other one inserted it first.
            past, _ = PastMeeting.objects.update_or_create(uuid=uuid, defaults=values)
    return past


def fetch_meeting(account, client, zoom_id):
    """Ask Zoom for a meeting the mirror learnt of from an event alone (an instant or personal
    meeting ID meeting's `meeting.started`: no list shows those) and fill in its settings: host
    and host email, topic, type, join URL. The status stays the events' (Zoom's answer may lag
    an end). Returns the row, or None when the mirror has no such row. Raises the client's
    ZoomError (ZoomNotFound: the meeting has ended and is gone)."""
    answer = client.get_meeting(zoom_id)
    return record_details(Meeting, account, answer.id, answer)


def store_past_participants(account, uuid, people):
    """Replace the stored participants of the instance UUID with PEOPLE (PastParticipant from
    the client, in Zoom's order), clipped to the columns. Returns the PastMeeting, or None when
    its details were never fetched (there is no page to show them on)."""
    with transaction.atomic():
        past = PastMeeting.objects.select_for_update().filter(account=account, uuid=uuid).first()
        if past is None:
            return None
        past.participants.all().delete()
        PastParticipant.objects.bulk_create(
            PastParticipant(
                past_meeting=past,
                position=number,
                zoom_user_id=person.id[:100],
                name=person.name[:300],
                user_email=person.user_email[:254],
            )
            for number, person in enumerate(people)
        )
        past.participants_fetched_at = now()
        past.save(update_fields=["participants_fetched_at"])
    return past


def fetch_past_meeting(account, client, *, meeting_id=None, uuid=""):
    """Ask Zoom for an ended instance (by UUID, or by meeting id for its latest instance) and
    store it. Raises the client's ZoomError (e.g. ZoomNotFound code 3001: not found or not
    ended; code 200: paid accounts only), whose `describe()` says so in plain words."""
    if not uuid and meeting_id is None:
        raise ValueError("a past meeting is fetched by meeting id or by instance UUID")
    details = client.get_past_meeting(uuid or meeting_id)
    return store_past_meeting(account, details)
