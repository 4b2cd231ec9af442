"""
The one place that speaks HTTP to Zoom's REST API v2: one method per operation the dashboard
uses, each named after Zoom's operationId in its docstring.

What it guarantees (NOTES.md has the reasons):
- bodies are JSON and every request says `Accept: application/json` (without it Zoom answers some
  errors in XML; form bodies get code 300 "Unsupported Content Type");
- every request has a timeout and goes through `throttle(label)` first, with Zoom's rate-limit
  label for the operation ("light", "medium", "heavy", "resource");
- meeting and webinar ids are validated as 64-bit ids before anything is sent (`ValueError`);
- meeting UUIDs are encoded once, and twice when they start with `/` or contain `//`;
- answers are parsed into the typed objects of `types.py`; failures raise `errors.ZoomError`
  subclasses (never a bare requests or JSON exception), whose `permanent` says whether to retry.

The client never retries and never logs a header: the action pipeline decides what to retry and
records every attempt through `on_response`.
"""

import json
import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import requests

from .errors import (
    ZoomBadRequest,
    ZoomBadResponse,
    ZoomConnectionError,
    ZoomError,
    ZoomNotHost,
    ZoomPageTokenExpired,
    ZoomServerErrorPage,
    ZoomTimeout,
    error_from_response,
)
from .types import (
    DashboardMeeting,
    LiveStream,
    Page,
    PastMeetingDetails,
    PastParticipant,
    PastWebinarInstance,
    ZoomMeeting,
    ZoomUser,
    ZoomWebinar,
)

logger = logging.getLogger(__name__)

MAX_ID = 2**63  # Zoom ids are signed 64-bit integers: 1 .. 2**63 - 1
PAGE_SIZE = 300  # the largest page Zoom's list operations allow
# A sync of the biggest account is a few hundred pages; a listing that goes on for this many
# pages means Zoom (or a proxy) is looping, and a sync must not spin forever.
MAX_PAGES = 10_000

USER_STATUSES = ("active", "inactive", "pending")
MEETING_LIST_TYPES = ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings")
RESOLUTIONS = ("720p", "1080p")
STREAM_URL_MAX = 1024
STREAM_KEY_MAX = 512
PAGE_URL_MAX = 1024
DISPLAY_NAME_MAX = 50

# The UUID alphabet is base64's (`+`, `/`, `=`), with the URL-safe variant's `-` and `_` for
# good measure. Anything else (spaces, `?`, `#`, `%`) is not a Zoom UUID.
_UUID_RE = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")
_SIGNED_DIGITS_RE = re.compile(r"[+-]?[0-9]+")
_USER_ID_RE = re.compile(r"[^\s/?#%]{1,254}")


@dataclass(frozen=True)
class Operation:
    """One Zoom operation: its operationId in the spec, method, path template and rate label."""

    operation_id: str
    method: str
    path: str
    label: str


OPERATIONS = {
    op.operation_id: op
    for op in (
        Operation("meetingStatus", "PUT", "/meetings/{meetingId}/status", "light"),
        Operation("webinarStatus", "PUT", "/webinars/{webinarId}/status", "light"),
        Operation("pastMeetingDetails", "GET", "/past_meetings/{meetingId}", "light"),
        Operation(
            "pastMeetingParticipants", "GET", "/past_meetings/{meetingId}/participants", "medium"
        ),
        Operation(
            "getMeetingLiveStreamDetails", "GET", "/meetings/{meetingId}/livestream", "light"
        ),
        Operation("meetingLiveStreamUpdate", "PATCH", "/meetings/{meetingId}/livestream", "light"),
        Operation(
            "meetingLiveStreamStatusUpdate",
            "PATCH",
            "/meetings/{meetingId}/livestream/status",
            "light",
        ),
        Operation(
            "getWebinarLiveStreamDetails", "GET", "/webinars/{webinarId}/livestream", "light"
        ),
        Operation("webinarLiveStreamUpdate", "PATCH", "/webinars/{webinarId}/livestream", "light"),
        Operation(
            "webinarLiveStreamStatusUpdate",
            "PATCH",
            "/webinars/{webinarId}/livestream/status",
            "light",
        ),
        Operation("meeting", "GET", "/meetings/{meetingId}", "light"),
        Operation("webinar", "GET", "/webinars/{webinarId}", "light"),
        Operation("pastWebinars", "GET", "/past_webinars/{webinarId}/instances", "light"),
        Operation("user", "GET", "/users/{userId}", "light"),
        Operation("users", "GET", "/users", "medium"),
        Operation("meetings", "GET", "/users/{userId}/meetings", "medium"),
        Operation("webinars", "GET", "/users/{userId}/webinars", "medium"),
        # The spec labels it Resource-intensive (issue 11 says Heavy): the stricter one, a few
        # requests a minute, is booked.
        Operation("dashboardMeetings", "GET", "/metrics/meetings", "resource"),
    )
}
# How far back the Dashboard's live list is asked for: a meeting may run for 30 hours, and the
# Dashboard reports by date (UTC) of the instance's start, so a live meeting that began
# yesterday must still be in the range (and the machines' clocks may differ).
DASHBOARD_LIVE_DAYS_BACK = 2


# --- Input validation (before anything is sent) ------------------------------------------------


def validate_zoom_id(value, name="meeting_id"):
    """A meeting or webinar id as an int: a positive integer below 2**63, given as an int or a
    string of ASCII digits. Anything else (bools, floats, signs, spaces, other digits) is a
    ValueError naming `name`."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_ID:
        raise ValueError(f"{name} must be a Zoom id: a positive whole number below 2**63")
    return value


def encode_uuid(uuid):
    """A meeting instance UUID as a path segment.

    Always encoded once (`+`, `/` and `=` are in its alphabet); encoded twice when it starts with
    `/` or contains `//`, which Zoom otherwise answers with 404 code 3001 (NOTES.md).
    """
    if not isinstance(uuid, str) or not _UUID_RE.fullmatch(uuid):
        raise ValueError("meeting UUID must be 1-128 characters of letters, digits, + / = - _")
    encoded = quote(uuid, safe="")
    if uuid.startswith("/") or "//" in uuid:
        encoded = quote(encoded, safe="")
    return encoded


def _user_id(user_id):
    if not isinstance(user_id, str) or not _USER_ID_RE.fullmatch(user_id):
        raise ValueError("user_id must be a Zoom user id, an email address or 'me'")
    return quote(user_id, safe="@")


def _text(value, name, *, max_length, min_length=1):
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    if len(value) < min_length:
        raise ValueError(f"{name} is required" if min_length == 1 else f"{name} is too short")
    if len(value) > max_length:
        raise ValueError(f"{name} must be at most {max_length} characters")
    return value


def _web_url(value, name, *, max_length):
    _text(value, name, max_length=max_length)
    scheme, sep, rest = value.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if (
        scheme.lower() not in ("http", "https")
        or not sep
        or not host
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        # The value is not echoed: it may carry a credential (people paste URLs with keys).
        raise ValueError(f"{name} must be an http:// or https:// address")
    return value


def livestream_body(*, stream_url, stream_key, page_url, resolution=None):
    """The JSON body of `meetingLiveStreamUpdate`, validated as Zoom validates it.

    ValueErrors name the field and the rule, never the value (the stream key is a secret).
    `resolution` "" is taken as None: Zoom's default.
    """
    body = {
        "stream_url": _text(stream_url, "stream_url", max_length=STREAM_URL_MAX),
        "stream_key": _text(stream_key, "stream_key", max_length=STREAM_KEY_MAX),
        "page_url": _web_url(page_url, "page_url", max_length=PAGE_URL_MAX),
    }
    if resolution not in (None, "", *RESOLUTIONS):
        raise ValueError("resolution must be 720p or 1080p, or empty for Zoom's default")
    if resolution:
        body["resolution"] = resolution
    return body


def livestream_status_body(action, *, active_speaker_name=None, display_name=None):
    """The JSON body of `meetingLiveStreamStatusUpdate`; settings only when given."""
    body = {"action": action}
    settings = {}
    if active_speaker_name is not None:
        if not isinstance(active_speaker_name, bool):
            raise ValueError("active_speaker_name must be true or false")
        settings["active_speaker_name"] = active_speaker_name
    if display_name is not None:
        settings["display_name"] = _text(display_name, "display_name", max_length=DISPLAY_NAME_MAX)
    if settings:
        body["settings"] = settings
    return body


def _settings(name):
    from django.conf import settings

    return getattr(settings, name)


# --- The client -----------------------------------------------------------------------------


class ZoomClient:
    """Zoom's REST API v2 over a `requests.Session` (for a connected account, the OAuth layer's
    session that adds and refreshes its bearer token: see `for_account`).

    `throttle(label)` is called before every request with the operation's rate-limit label and
    may block; `on_response(method, path_template, status, duration_ms, error)` after every
    request (status None when no answer came; error the ZoomError raised, or None). `clock()`
    returns the current aware datetime, for Retry-After dates; tests inject it.
    """

    page_size = PAGE_SIZE

    def __init__(
        self,
        session,
        base_url=None,
        *,
        timeout=None,
        throttle=None,
        on_response=None,
        clock=None,
    ):
        self.session = session
        self.base_url = (base_url or _settings("ZOOM_API_BASE_URL")).rstrip("/")
        self.timeout = timeout if timeout is not None else _settings("ZOOM_TIMEOUT_SECONDS")
        self.throttle = throttle
        self.on_response = on_response
        self.clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def for_account(cls, account, **kwargs):
        """A client acting as a connected ZoomAccount (token added and refreshed for it)."""
        from .oauth import client_for_account

        return client_for_account(account, **kwargs)

    def __repr__(self):
        return f"<ZoomClient {self.base_url}>"

    # --- Meetings and webinars: actions ---------------------------------------------------

    def end_meeting(self, meeting_id):
        """End a live meeting. Zoom: meetingStatus (`PUT /meetings/{meetingId}/status`, end).

        Zoom has answered 204 without ending the meeting: confirm with `get_meeting`.
        """
        meeting_id = validate_zoom_id(meeting_id, "meeting_id")
        with _asking("end"):
            self._call("meetingStatus", meetingId=meeting_id, body={"action": "end"}, expect=None)

    def recover_meeting(self, meeting_id):
        """Recover a deleted meeting. Zoom: meetingStatus (`PUT /meetings/{meetingId}/status`,
        recover)."""
        meeting_id = validate_zoom_id(meeting_id, "meeting_id")
        self._call("meetingStatus", meetingId=meeting_id, body={"action": "recover"}, expect=None)

    def end_webinar(self, webinar_id):
        """End a live webinar. Zoom: webinarStatus (`PUT /webinars/{webinarId}/status`, end)."""
        webinar_id = validate_zoom_id(webinar_id, "webinar_id")
        with _asking("end"):
            self._call("webinarStatus", webinarId=webinar_id, body={"action": "end"}, expect=None)

    # --- Meetings and webinars: reading -----------------------------------------------------

    def get_meeting(self, meeting_id) -> ZoomMeeting:
        """A meeting, with its status ("waiting" or "started"). Zoom: meeting
        (`GET /meetings/{meetingId}`)."""
        meeting_id = validate_zoom_id(meeting_id, "meeting_id")
        return self._parse(ZoomMeeting, self._call("meeting", meetingId=meeting_id), "meeting")

    def get_webinar(self, webinar_id) -> ZoomWebinar:
        """A webinar. Zoom: webinar (`GET /webinars/{webinarId}`)."""
        webinar_id = validate_zoom_id(webinar_id, "webinar_id")
        return self._parse(ZoomWebinar, self._call("webinar", webinarId=webinar_id), "webinar")

    def list_past_webinar_instances(self, webinar_id) -> tuple[PastWebinarInstance, ...]:
        """The webinar's ended instances. Zoom: pastWebinars
        (`GET /past_webinars/{webinarId}/instances`).

        Zoom's webinar API has no status: an instance listed here is one that has ended.
        """
        webinar_id = validate_zoom_id(webinar_id, "webinar_id")
        data = self._call("pastWebinars", webinarId=webinar_id)
        if not isinstance(data, dict) or not isinstance(data.get("webinars") or [], list):
            raise ZoomBadResponse("pastWebinars: `webinars` is not a list", status=200)
        return tuple(
            self._parse(PastWebinarInstance, item, "pastWebinars")
            for item in data.get("webinars") or []
        )

    def get_past_meeting(self, meeting_id_or_uuid) -> PastMeetingDetails:
        """An ended meeting instance: by meeting id (the latest instance) or by instance UUID.
        Zoom: pastMeetingDetails (`GET /past_meetings/{meetingId}`).

        404 code 3001 means no such instance, or the meeting has not ended yet.
        """
        segment = self._past_meeting_segment(meeting_id_or_uuid)
        data = self._call("pastMeetingDetails", meetingId=segment, encoded=True)
        return self._parse(PastMeetingDetails, data, "pastMeetingDetails")

    def list_past_participants(self, meeting_id_or_uuid, *, on_page=None):
        """Who took part in an ended instance (by instance UUID, or the latest instance by
        meeting id), following next_page_token. Zoom: pastMeetingParticipants
        (`GET /past_meetings/{meetingId}/participants`). An iterator of PastParticipant.

        Zoom lists nobody for an instance with a single participant (the spec's own note), and
        answers 404 code 3001 for an instance that has not ended or does not exist.
        """
        segment = self._past_meeting_segment(meeting_id_or_uuid)
        pages = self._pages(
            "pastMeetingParticipants",
            "participants",
            PastParticipant,
            params={},
            meetingId=segment,
        )
        return self._items(pages, on_page)

    @staticmethod
    def _past_meeting_segment(value):
        """A past meeting's path segment: a meeting id, or an instance UUID double-encoded when
        Zoom's gateway needs it (see encode_uuid)."""
        if isinstance(value, int) or (
            isinstance(value, str) and _SIGNED_DIGITS_RE.fullmatch(value)
        ):
            return str(validate_zoom_id(value, "meeting_id"))
        return encode_uuid(value)

    # --- Live streams -------------------------------------------------------------------------

    def get_livestream(self, meeting_id) -> LiveStream:
        """A meeting's custom live stream settings (the stream key included: keep it secret).
        Zoom: getMeetingLiveStreamDetails (`GET /meetings/{meetingId}/livestream`)."""
        meeting_id = validate_zoom_id(meeting_id, "meeting_id")
        data = self._call("getMeetingLiveStreamDetails", meetingId=meeting_id)
        return self._parse(LiveStream, data, "getMeetingLiveStreamDetails")

    def update_livestream(self, meeting_id, *, stream_url, stream_key, page_url, resolution=None):
        """Configure a meeting's custom live stream. Zoom: meetingLiveStreamUpdate
        (`PATCH /meetings/{meetingId}/livestream`). Refused by Zoom while the stream is live."""
        meeting_id = validate_zoom_id(meeting_id, "meeting_id")
        body = livestream_body(
            stream_url=stream_url, stream_key=stream_key, page_url=page_url, resolution=resolution
        )
        self._call("meetingLiveStreamUpdate", meetingId=meeting_id, body=body, expect=None)

    def start_livestream(self, meeting_id, *, active_speaker_name=None, display_name=None):
        """Start a meeting's configured live stream. Zoom: meetingLiveStreamStatusUpdate
        (`PATCH /meetings/{meetingId}/livestream/status`, start).

        Starting too often answers 429 "retry after 30 seconds" (ZoomRateLimited.retry_after).
        """
        meeting_id = validate_zoom_id(meeting_id, "meeting_id")
        body = livestream_status_body(
            "start", active_speaker_name=active_speaker_name, display_name=display_name
        )
        self._call("meetingLiveStreamStatusUpdate", meetingId=meeting_id, body=body, expect=None)

    def stop_livestream(self, meeting_id):
        """Stop a meeting's live stream. Zoom: meetingLiveStreamStatusUpdate
        (`PATCH /meetings/{meetingId}/livestream/status`, stop)."""
        meeting_id = validate_zoom_id(meeting_id, "meeting_id")
        body = livestream_status_body("stop")
        self._call("meetingLiveStreamStatusUpdate", meetingId=meeting_id, body=body, expect=None)

    # Webinars: the same bodies and rules as meetings' (the spec's webinarLiveStreamUpdate and
    # webinarLiveStreamStatusUpdate schemas are the meeting ones, word for word).

    def get_webinar_livestream(self, webinar_id) -> LiveStream:
        """A webinar's custom live stream settings (the stream key included: keep it secret).
        Zoom: getWebinarLiveStreamDetails (`GET /webinars/{webinarId}/livestream`)."""
        webinar_id = validate_zoom_id(webinar_id, "webinar_id")
        data = self._call("getWebinarLiveStreamDetails", webinarId=webinar_id)
        return self._parse(LiveStream, data, "getWebinarLiveStreamDetails")

    def update_webinar_livestream(
        self, webinar_id, *, stream_url, stream_key, page_url, resolution=None
    ):
        """Configure a webinar's custom live stream. Zoom: webinarLiveStreamUpdate
        (`PATCH /webinars/{webinarId}/livestream`). Refused by Zoom while the stream is live."""
        webinar_id = validate_zoom_id(webinar_id, "webinar_id")
        body = livestream_body(
            stream_url=stream_url, stream_key=stream_key, page_url=page_url, resolution=resolution
        )
        self._call("webinarLiveStreamUpdate", webinarId=webinar_id, body=body, expect=None)

    def start_webinar_livestream(self, webinar_id, *, active_speaker_name=None, display_name=None):
        """Start a webinar's configured live stream. Zoom: webinarLiveStreamStatusUpdate
        (`PATCH /webinars/{webinarId}/livestream/status`, start). Zoom refuses it for a webinar
        that has not started (code 200) or has no custom stream configured (code 3000)."""
        webinar_id = validate_zoom_id(webinar_id, "webinar_id")
        body = livestream_status_body(
            "start", active_speaker_name=active_speaker_name, display_name=display_name
        )
        self._call("webinarLiveStreamStatusUpdate", webinarId=webinar_id, body=body, expect=None)

    def stop_webinar_livestream(self, webinar_id):
        """Stop a webinar's live stream. Zoom: webinarLiveStreamStatusUpdate
        (`PATCH /webinars/{webinarId}/livestream/status`, stop)."""
        webinar_id = validate_zoom_id(webinar_id, "webinar_id")
        body = livestream_status_body("stop")
        self._call("webinarLiveStreamStatusUpdate", webinarId=webinar_id, body=body, expect=None)

    # --- Users and lists ------------------------------------------------------------------------

    def get_me(self) -> ZoomUser:
        """The user whose credentials the client acts with. Zoom: user (`GET /users/me`)."""
        return self._parse(ZoomUser, self._call("user", userId="me"), "user")

    def get_user(self, user_id) -> ZoomUser:
        """One user of the account, by id or email. Zoom: user (`GET /users/{userId}`, Light)."""
        segment = _user_id(user_id)
        return self._parse(ZoomUser, self._call("user", userId=segment, encoded=True), "user")

    def list_users(self, status="active", *, on_page=None):
        """Every user of the account, following next_page_token. Zoom: users (`GET /users`).

        An iterator of ZoomUser; `on_page(page)` is called with each `types.Page` as it
        arrives (before its items are yielded), for progress reports. `iter_pages_users` gives
        the pages themselves.
        """
        return self._items(self.iter_pages_users(status), on_page)

    def iter_pages_users(self, status="active"):
        """The pages of `list_users`, as `types.Page` objects of ZoomUser."""
        if status not in USER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(USER_STATUSES)}")
        return self._pages("users", "users", ZoomUser, params={"status": status})

    def list_meetings(self, user_id, type="scheduled", *, on_page=None):
        """A user's meetings, following next_page_token. Zoom: meetings
        (`GET /users/{userId}/meetings`). Instant meetings are not listed by Zoom.

        An iterator of ZoomMeeting; `on_page` as in `list_users`; pages via
        `iter_pages_meetings`.
        """
        return self._items(self.iter_pages_meetings(user_id, type), on_page)

    def iter_pages_meetings(self, user_id, type="scheduled"):
        """The pages of `list_meetings`, as `types.Page` objects of ZoomMeeting."""
        if type not in MEETING_LIST_TYPES:
            raise ValueError(f"type must be one of {', '.join(MEETING_LIST_TYPES)}")
        segment = _user_id(user_id)
        return self._pages(
            "meetings", "meetings", ZoomMeeting, params={"type": type}, userId=segment
        )

    def list_webinars(self, user_id, *, on_page=None):
        """A user's webinars, page by page_number. Zoom: webinars
        (`GET /users/{userId}/webinars`). An iterator of ZoomWebinar; `on_page` as in
        `list_users`; pages via `iter_pages_webinars`."""
        return self._items(self.iter_pages_webinars(user_id), on_page)

    def iter_pages_webinars(self, user_id):
        """The pages of `list_webinars`, as `types.Page` objects of ZoomWebinar. A user without
        a webinar licence is refused with ZoomBadRequest code 200."""
        segment = _user_id(user_id)
        return self._pages_by_number("webinars", "webinars", ZoomWebinar, params={}, userId=segment)

    def iter_pages_dashboard_live_meetings(self):
        """Every live meeting of the account (instant and personal meeting ID ones too), as
        `types.Page` objects of DashboardMeeting. Zoom: dashboardMeetings
        (`GET /metrics/meetings`, type=live; scope dashboard_meetings:read:admin).

        Business or higher plans only: below that Zoom refuses it (400, code 200). `from` and
        `to` are required by the spec; `to` is today (UTC, by `clock`)."""
        today = self.clock().astimezone(UTC).date()
        params = {
            "type": "live",
            "from": (today - timedelta(days=DASHBOARD_LIVE_DAYS_BACK)).isoformat(),
            "to": today.isoformat(),
        }
        return self._pages("dashboardMeetings", "meetings", DashboardMeeting, params=params)

    # --- Machinery -------------------------------------------------------------------------------

    @staticmethod
    def _items(pages, on_page):
        for page in pages:
            if on_page is not None:
                on_page(page)
            yield from page.items

    def _pages(self, operation_id, key, item_type, *, params, **path_args):
        # A generator: nothing is sent until the first page is asked for. Validation happened in
        # the caller, so bad arguments fail at the call, not at the first next().
        token = ""
        seen = set()
        for number in range(1, MAX_PAGES + 1):
            query = {**params, "page_size": self.page_size}
            if token:
                query["next_page_token"] = token
            try:
                data = self._call(operation_id, params=query, encoded=True, **path_args)
            except ZoomBadRequest as e:
                if token and _looks_like_page_token_error(e):
                    raise ZoomPageTokenExpired(
                        e.message, status=e.status, code=e.code, operation=operation_id
                    ) from e
                raise
            if not isinstance(data, dict) or not isinstance(data.get(key) or [], list):
                raise ZoomBadResponse(f"{operation_id}: `{key}` is not a list", status=200)
            items = tuple(
                self._parse(item_type, item, operation_id) for item in data.get(key) or []
            )
            token = data.get("next_page_token") or ""
            if not isinstance(token, str):
                raise ZoomBadResponse(f"{operation_id}: next_page_token is not text", status=200)
            total = data.get("total_records")
            yield Page(
                items=items,
                number=number,
                next_page_token=token,
                total_records=total if isinstance(total, int) else None,
                page_size=data.get("page_size") if isinstance(data.get("page_size"), int) else None,
            )
            if not token:
                return
            if token in seen:
                raise ZoomBadResponse(
                    f"{operation_id}: Zoom sent the same next_page_token twice", status=200
                )
            seen.add(token)
        raise ZoomBadResponse(f"{operation_id}: more than {MAX_PAGES} pages", status=200)

    def _pages_by_number(self, operation_id, key, item_type, *, params, **path_args):
        """Pages asked for by page_number, for the listings whose spec takes no next_page_token
        (`webinars`: see the sandbox's api._page_by_number); a token Zoom may send anyway is not
        followed. Ends at Zoom's page_count, or at a short or empty page when it gives none."""
        total_pages = None
        for number in range(1, MAX_PAGES + 1):
            query = {**params, "page_size": self.page_size, "page_number": number}
            data = self._call(operation_id, params=query, encoded=True, **path_args)
            if not isinstance(data, dict) or not isinstance(data.get(key) or [], list):
                raise ZoomBadResponse(f"{operation_id}: `{key}` is not a list", status=200)
            raw = data.get(key) or []
            items = tuple(self._parse(item_type, item, operation_id) for item in raw)
            total = data.get("total_records")
            count = data.get("page_count")
            if isinstance(count, int) and not isinstance(count, bool) and total_pages is None:
                total_pages = count
            size = data.get("page_size") if isinstance(data.get("page_size"), int) else None
            last = (
                number >= total_pages
                if total_pages is not None
                else len(raw) < (size or self.page_size)
            )
            yield Page(
                items=items,
                number=number,
                next_page_token="" if last else str(number + 1),
                total_records=total if isinstance(total, int) else None,
                page_size=size,
            )
            if last or not raw:
                return
        raise ZoomBadResponse(f"{operation_id}: more than {MAX_PAGES} pages", status=200)

    @staticmethod
    def _parse(cls, data, operation_id):
        try:
            return cls.from_json(data)
        except (ValueError, TypeError) as e:
            # from_json names the field, never its value.
            raise ZoomBadResponse(
                f"{operation_id}: {e}", status=200, operation=operation_id
            ) from None

    def _call(self, operation_id, *, body=None, params=None, expect="json", encoded=False, **args):
        """Send one request and return its decoded JSON (expect="json") or None (expect=None).

        `args` fill the path template; they are already-validated ids, or (encoded=True)
        already-encoded path segments.
        """
        op = OPERATIONS[operation_id]
        segments = {k: (v if encoded else quote(str(v), safe="")) for k, v in args.items()}
        url = self.base_url + op.path.format(**segments)
        if self.throttle is not None:
            # Connect first, then book the slot: only the wait separates slot and request.
            warm = getattr(self.session, "warm", None)
            if warm is not None:
                warm()
            self.throttle(op.label)
        started = time.monotonic()
        status = None
        error = None
        try:
            try:
                response = self.session.request(
                    op.method,
                    url,
                    params=params,
                    json=body,
                    headers={"Accept": "application/json"},
                    timeout=self.timeout,
                    # An API never redirects; following one would turn a PATCH into a GET.
                    allow_redirects=False,
                )
            except requests.exceptions.RequestException as e:
                raise _transport_error(e, self.timeout, operation_id) from e
            status = response.status_code
            return self._read(response, op, expect)
        except ZoomError as e:
            error = e
            raise
        finally:
            duration_ms = (time.monotonic() - started) * 1000
            logger.debug(
                "zoom %s %s -> %s in %.0f ms%s",
                op.method,
                op.path,
                status,
                duration_ms,
                f" ({type(error).__name__})" if error else "",
            )
            # Every request to Zoom is measured for /metrics, whoever built the client.
            from ..metrics import observe_zoom_response

            observe_zoom_response(op.method, op.path, status, duration_ms, error)
            if self.on_response is not None:
                try:
                    self.on_response(op.method, op.path, status, duration_ms, error)
                except Exception:
                    # A metrics or audit hook must not turn Zoom's answer into a failure.
                    logger.exception("on_response hook failed for %s %s", op.method, op.path)

    def _read(self, response, op, expect):
        status = response.status_code
        content = response.content or b""
        if 200 <= status < 300:
            if expect is None:
                if status != 204 and content.strip():
                    data = _decode(response, op)
                    # webinarStatus documents a 200 "Webinar plan subscription is missing":
                    # an error dressed as success. Anything with Zoom's error shape is one.
                    if isinstance(data, dict) and "code" in data and "message" in data:
                        raise error_from_response(
                            status, data, response.headers, operation=op.operation_id
                        )
                return None
            if status == 204 or not content.strip():
                raise ZoomBadResponse(
                    f"{op.operation_id} answered HTTP {status} with no body",
                    status=status,
                    operation=op.operation_id,
                )
            return _decode(response, op)
        if status == 429:
            # The headers carry what matters; the body is a bonus (and sometimes missing).
            try:
                data = _decode(response, op) if content.strip() else None
            except ZoomBadResponse:
                data = None
        elif content.strip():
            try:
                data = _decode(response, op)
            except ZoomBadResponse:
                if status < 500:
                    raise
                mime = _mime(response)
                raise ZoomServerErrorPage(
                    "its answer was not valid JSON"
                    if _is_json(mime)
                    else f"its answer was {mime or 'untyped'}, not JSON",
                    status=status,
                    operation=op.operation_id,
                ) from None
        else:
            data = None
        raise error_from_response(
            status, data, response.headers, now=self.clock(), operation=op.operation_id
        )


def _decode(response, op):
    """Zoom's JSON answer, or ZoomBadResponse for another content type or a broken body.

    The body itself is never quoted in the message: a proxy's error page may echo request
    headers, and those carry the bearer token.
    """
    status = response.status_code
    mime = _mime(response)
    if not _is_json(mime):
        raise ZoomBadResponse(
            f"{op.operation_id} answered HTTP {status} with {mime or 'no content type'} "
            "instead of JSON",
            status=status,
            operation=op.operation_id,
        )
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise ZoomBadResponse(
            f"{op.operation_id} answered HTTP {status} with a body that is not valid JSON",
            status=status,
            operation=op.operation_id,
        ) from None


def _mime(response):
    return (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _is_json(mime):
    return mime == "application/json" or mime.endswith("+json")


def _looks_like_page_token_error(error):
    if error.status != 400 or isinstance(error, ZoomNotHost):
        return False
    return error.code in (None, 300) or "token" in error.message.lower()


@contextmanager
def _asking(what):
    """Name what was asked on the ZoomError an operation with several uses raises (see
    ZoomError.asked): describe() words Zoom's codes for it."""
    try:
        yield
    except ZoomError as e:
        e.asked = what
        raise


def _transport_error(exc, timeout, operation_id):
    """The ZoomError for a requests exception: what failed, in words, without the URL's query."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ZoomTimeout(
            f"no connection within {timeout} s", may_have_reached_zoom=False, operation=operation_id
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return ZoomTimeout(
            f"no answer within {timeout} s", may_have_reached_zoom=True, operation=operation_id
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return ZoomConnectionError("TLS handshake failed", operation=operation_id)
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Connection refused" in text or "NewConnectionError" in text:
            return ZoomConnectionError("connection refused", operation=operation_id)
        if "NameResolutionError" in text or "Name or service not known" in text:
            return ZoomConnectionError("host name not found", operation=operation_id)
        # Reset or closed after the request went out: it may have been applied.
        return ZoomConnectionError(
            "the connection broke before Zoom answered",
            may_have_reached_zoom=True,
            operation=operation_id,
        )
    return ZoomConnectionError(
        f"the request could not be sent ({type(exc).__name__})",
        permanent=True,
        operation=operation_id,
    )
