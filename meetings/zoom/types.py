"""
The small typed objects Zoom's answers are parsed into.

`from_json` takes Zoom's decoded JSON object and raises ValueError (naming the field, never its
value) when a field has the wrong shape; the client turns that into ZoomBadResponse. Unknown
fields are ignored and missing optional ones become None, as Zoom adds and omits fields freely.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime


def _object(data, what):
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def zoom_id(data, name, *, required=True):
    """A 64-bit Zoom id from a number or a numeric string (webhooks send both, NOTES.md)."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ValueError(f"{name}: missing")
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}: not an id")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 0 < value < 2**63:
        raise ValueError(f"{name}: not a 64-bit id")
    return value


def _int(data, name):
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}: not a whole number")
    if isinstance(value, str) and value.lstrip("-").isascii() and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{name}: not a whole number")


def _str(data, name):
    value = data.get(name)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name}: not a string")
    return value


def parse_datetime(value, name="date-time"):
    """An aware datetime from Zoom's ISO 8601 text (`2021-07-13T21:44:51Z`); None when empty.

    Zoom writes UTC with a `Z`; a time without an offset is taken as UTC too.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: not a date-time")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name}: not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def _datetime(data, name):
    return parse_datetime(data.get(name), name)


@dataclass(frozen=True)
class ZoomUser:
    id: str
    email: str
    first_name: str
    last_name: str
    type: int | None
    status: str
    account_id: str

    @classmethod
    def from_json(cls, data):
        data = _object(data, "user")
        user_id = _str(data, "id")
        if not user_id:
            raise ValueError("id: missing")
        return cls(
            id=user_id,
            email=_str(data, "email"),
            first_name=_str(data, "first_name"),
            last_name=_str(data, "last_name"),
            type=_int(data, "type"),
            status=_str(data, "status"),
            account_id=_str(data, "account_id"),
        )

    @property
    def name(self):
        return f"{self.first_name} {self.last_name}".strip() or self.email


@dataclass(frozen=True)
class _Scheduled:
    """What meetings and webinars share.

    `status` ("waiting" or "started") and `host_email` come only from the single-item answers
    (`GET /meetings/{id}`, `GET /webinars/{id}`); list items leave them empty.
    """

    id: int
    uuid: str
    host_id: str
    host_email: str
    topic: str
    type: int | None
    status: str
    start_time: datetime | None
    duration: int | None
    timezone: str
    join_url: str
    created_at: datetime | None

    @classmethod
    def from_json(cls, data):
        data = _object(data, cls.__name__)
        return cls(
            id=zoom_id(data, "id"),
            uuid=_str(data, "uuid"),
            host_id=_str(data, "host_id"),
            host_email=_str(data, "host_email"),
            topic=_str(data, "topic"),
            type=_int(data, "type"),
            status=_str(data, "status"),
            start_time=_datetime(data, "start_time"),
            duration=_int(data, "duration"),
            timezone=_str(data, "timezone"),
            join_url=_str(data, "join_url"),
            created_at=_datetime(data, "created_at"),
        )


@dataclass(frozen=True)
class ZoomMeeting(_Scheduled):
    """A meeting from `GET /meetings/{id}` or a user's meeting list."""


@dataclass(frozen=True)
class ZoomWebinar(_Scheduled):
    """A webinar from `GET /webinars/{id}` or a user's webinar list: the same fields."""


@dataclass(frozen=True)
class DashboardMeeting:
    """A live meeting as the Dashboard lists it (`GET /metrics/meetings?type=live`): the
    Dashboard names the host by display name and email, not by id, and gives no meeting type."""

    id: int
    uuid: str
    topic: str
    host: str
    email: str
    start_time: datetime | None

    @classmethod
    def from_json(cls, data):
        data = _object(data, "dashboard meeting")
        return cls(
            id=zoom_id(data, "id"),
            uuid=_str(data, "uuid"),
            topic=_str(data, "topic"),
            host=_str(data, "host"),
            email=_str(data, "email"),
            start_time=_datetime(data, "start_time"),
        )


@dataclass(frozen=True)
class PastWebinarInstance:
    """One ended instance of a webinar, as `GET /past_webinars/{webinarId}/instances` lists it:
    its UUID and when it started (Zoom gives nothing more)."""

    uuid: str
    start_time: datetime | None

    @classmethod
    def from_json(cls, data):
        data = _object(data, "past webinar instance")
        uuid = _str(data, "uuid")
        if not uuid:
            raise ValueError("uuid: missing")
        return cls(uuid=uuid, start_time=_datetime(data, "start_time"))


@dataclass(frozen=True)
class PastMeetingDetails:
    """`GET /past_meetings/{meetingId}`: one ended instance of a meeting (all 14 spec fields)."""

    uuid: str
    id: int
    host_id: str
    type: int | None
    topic: str
    user_name: str
    user_email: str
    start_time: datetime | None
    end_time: datetime | None
    duration: int | None
    total_minutes: int | None
    participants_count: int | None
    dept: str
    source: str

    @classmethod
    def from_json(cls, data):
        data = _object(data, "past meeting")
        uuid = _str(data, "uuid")
        if not uuid:
            raise ValueError("uuid: missing")
        return cls(
            uuid=uuid,
            id=zoom_id(data, "id"),
            host_id=_str(data, "host_id"),
            type=_int(data, "type"),
            topic=_str(data, "topic"),
            user_name=_str(data, "user_name"),
            user_email=_str(data, "user_email"),
            start_time=_datetime(data, "start_time"),
            end_time=_datetime(data, "end_time"),
            duration=_int(data, "duration"),
            total_minutes=_int(data, "total_minutes"),
            participants_count=_int(data, "participants_count"),
            dept=_str(data, "dept"),
            source=_str(data, "source"),
        )


@dataclass(frozen=True)
class PastParticipant:
    """One participant of an ended instance (`GET /past_meetings/{meetingId}/participants`).

    `id` is the participant's Zoom user id, blank for someone who joined without signing in;
    `user_email` is blank for someone outside the host's account (Zoom's email display rules).
    """

    id: str
    name: str
    user_email: str

    @classmethod
    def from_json(cls, data):
        data = _object(data, "participant")
        return cls(
            id=_str(data, "id"), name=_str(data, "name"), user_email=_str(data, "user_email")
        )


@dataclass(frozen=True)
class LiveStream:
    """A meeting's custom live stream configuration. The stream key is a secret: `repr` hides it
    and nothing here puts it in a message."""

    stream_url: str
    stream_key: str = field(repr=False)
    page_url: str
    resolution: str

    def __repr__(self):
        key = "<hidden>" if self.stream_key else "''"
        return (
            f"LiveStream(stream_url={self.stream_url!r}, stream_key={key}, "
            f"page_url={self.page_url!r}, resolution={self.resolution!r})"
        )

    __str__ = __repr__

    @property
    def configured(self):
        return bool(self.stream_url and self.stream_key)

    @classmethod
    def from_json(cls, data):
        data = _object(data, "live stream")
        return cls(
            stream_url=_str(data, "stream_url"),
            stream_key=_str(data, "stream_key"),
            page_url=_str(data, "page_url"),
            resolution=_str(data, "resolution"),
        )


@dataclass(frozen=True)
class Page:
    """One page of a Zoom list: its parsed `items`, its `number` (1-based, counted by us),
    Zoom's `total_records` (None when absent) and the `next_page_token` ("" on the last page)."""

    items: tuple
    number: int
    next_page_token: str
    total_records: int | None
    page_size: int | None = None

    @property
    def is_last(self):
        return not self.next_page_token
