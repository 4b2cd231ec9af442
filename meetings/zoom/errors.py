"""
What can go wrong when calling Zoom, as one exception hierarchy.

Every `ZoomError` carries the HTTP `status`, Zoom's own `code` and `message`, and `permanent`:
whether asking again can help. The action pipeline retries only what is not permanent and
records `describe()` (plain words for operators) in the audit trail.

Nothing here ever holds a token, a client secret or a stream key: messages come from Zoom's
error body or from our own wording, never from the request.
"""

import email.utils
import re
from datetime import UTC, datetime

from . import scopes

# Zoom's error codes in plain words (NOTES.md and the spec's response descriptions).
CODE_DESCRIPTIONS = {
    124: "the access token is invalid or has expired",
    200: "this is only available for paid Zoom accounts",
    300: "Zoom rejected the request as invalid",
    1001: "the user does not exist",
    1010: "the user does not belong to this Zoom account",
    3000: "cannot access this meeting's information",
    3001: "meeting not found or not ended",
    3003: "you are not the host of this meeting",
    3063: "cannot end an on-premise user's meeting",
    3161: "meeting hosting and scheduling are not allowed for this user",
    12702: "cannot access a meeting that ended more than a year ago",
}


class ZoomError(Exception):
    """A Zoom call failed. Subclasses name the kind; `permanent` says whether to give up."""

    permanent = True

    def __init__(
        self,
        message="",
        *,
        status=None,
        code=None,
        errors=(),
        retry_after=None,
        permanent=None,
        operation="",
    ):
        self.message = message or ""
        self.status = status
        self.code = code
        # Zoom's validation details: [{"field": ..., "message": ...}, ...]
        self.errors = list(errors)
        self.retry_after = retry_after
        self.operation = operation
        # What was asked of the operation when it has several (meetingStatus ends or recovers):
        # the same code means different things, e.g. 3000 on an end is a meeting not running.
        self.asked = ""
        if permanent is not None:
            self.permanent = permanent
        super().__init__(self.message)

    def __str__(self):
        return self.describe()

    def __repr__(self):
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, permanent={self.permanent!r})"
        )

    def describe(self):
        """Plain words for operators, e.g. "Zoom: you are not the host of this meeting (3003)"."""
        if self.code is not None:
            thing = "webinar" if "webinar" in self.operation.lower() else "meeting"
            if self.code == 3000 and self.asked == "end":
                # Zoom answers an end of a meeting that is waiting or already over with 3000,
                # "Cannot access meeting info": not a lack of access, the meeting is not running.
                return f"Zoom says this {thing} is not running ({self.code})"
            text = CODE_DESCRIPTIONS.get(self.code)
            if self.code == 3001 and self.operation and not self.operation.startswith("past"):
                # "not ended" is what a past meeting's details answer means; ending, recovering
                # or reading a meeting gets it for an id that is wrong, deleted or expired.
                text = "meeting not found or has expired"
            if text and "webinar" in self.operation.lower():
                text = text.replace("meeting", "webinar")
            if text is None or self.code == 300:
                # Code 300 covers many faults (unsupported content type, expired page token,
                # invalid field): Zoom's own message is the useful part.
                text = self.message or text or "request refused"
            return f"Zoom: {text}{self._field_errors()} ({self.code})"
        if self.message:
            return f"Zoom: {self.message}{self._field_errors()}"
        if self.status is not None:
            return f"Zoom answered HTTP {self.status}"
        return "Zoom call failed"

    def _field_errors(self):
        parts = []
        for error in self.errors[:5]:
            if isinstance(error, dict):
                field = error.get("field") or "?"
                parts.append(f"{field}: {error.get('message') or 'invalid'}")
        return (" — " + "; ".join(parts)) if parts else ""


class ZoomBadRequest(ZoomError):
    """HTTP 400 or another 4xx: the request itself is wrong for Zoom. Asking again won't help."""


class ZoomNotFound(ZoomError):
    """HTTP 404: the meeting, webinar or user does not exist (or the past meeting has not ended)."""

    def describe(self):
        if self.code is None and not self.message:
            return "Zoom: not found (HTTP 404)"
        return super().describe()


class ZoomNotHost(ZoomBadRequest):
    """Code 3003: the connected user is not the host of this meeting or webinar."""


class ZoomScopeMissing(ZoomBadRequest):
    """Code 4711: the app's token lacks the scope this operation needs. Permanent until an admin
    adds the scope to the Zoom app (and a new token carries it); the connection is unhealthy
    until then (`scope_need` names what to add, in both of Zoom's naming schemes)."""

    @property
    def scope_need(self):
        return scopes.need_for(self.operation)

    def describe(self):
        need = self.scope_need
        if need is None:
            return f"Zoom: the Zoom app lacks a permission (scope) this needs: {self.message}"
        return f"Zoom: {need.advice()} ({self.code})"


class ZoomPageTokenExpired(ZoomBadRequest):
    """A follow-up page was refused: Zoom's next_page_token lives 15 minutes.

    Asking again with the same token won't help; start the listing again from the first page.
    """

    def describe(self):
        return "Zoom: the listing took too long and its page token expired; start it again"


class ZoomAuthError(ZoomError):
    """HTTP 401. `token_invalid` (code 124) means the access token is invalid or expired."""

    @property
    def token_invalid(self):
        return self.code == 124

    def describe(self):
        if self.code is None:
            return "Zoom refused the credentials (HTTP 401)"
        return super().describe()


class ZoomRateLimited(ZoomError):
    """HTTP 429: Zoom's rate limit for this account and label is used up. Retry after a pause.

    `retry_after` is in seconds (from the Retry-After header, an ISO 8601 date-time or a number
    of seconds; None when Zoom sent neither); `category` ("Light", ...), `limit_type` ("QPS" or
    "Daily-limit"), `limit` and `remaining` come from X-RateLimit-* headers when present.
    """

    permanent = False

    def __init__(
        self, message="", *, category=None, limit_type=None, limit=None, remaining=None, **kwargs
    ):
        super().__init__(message, **kwargs)
        self.category = category
        self.limit_type = limit_type
        self.limit = limit
        self.remaining = remaining

    def describe(self):
        if self.limit_type and self.limit_type.lower().startswith("daily"):
            text = "Zoom's daily request limit for this account is used up"
        else:
            text = "Zoom is rate limiting this account"
        if self.retry_after is None:
            return f"{text}; retrying later"
        return f"{text}; retrying after {_duration(self.retry_after)}"


class ZoomServerError(ZoomError):
    """HTTP 5xx: Zoom failed. It may work later."""

    permanent = False

    def describe(self):
        text = f"Zoom had a server error (HTTP {self.status})"
        if self.message:
            text += f": {self.message}"
        if self.code is not None:
            text += f" ({self.code})"
        return text


class ZoomConnectionError(ZoomError):
    """Zoom could not be reached (DNS, refused, reset, TLS). It may work later.

    `may_have_reached_zoom` is True when the connection broke after the request was sent: an
    `end` may then have been applied, so confirm before calling it failed.
    """

    permanent = False

    def __init__(self, message="", *, may_have_reached_zoom=False, **kwargs):
        super().__init__(message, **kwargs)
        self.may_have_reached_zoom = may_have_reached_zoom

    def describe(self):
        return f"Could not reach Zoom: {self.message or 'connection failed'}"


class ZoomTimeout(ZoomConnectionError):
    """Zoom did not answer in time. It may work later (and, after a read timeout, it may have
    done what was asked: `may_have_reached_zoom`)."""

    def describe(self):
        return f"Zoom did not answer in time: {self.message or 'timed out'}"


class ZoomBadResponse(ZoomError):
    """Zoom's answer could not be understood: wrong content type, not JSON, missing fields.

    Not permanent when the status is 5xx-ish (a proxy's HTML error page), permanent otherwise.
    """

    def __init__(self, message="", *, status=None, **kwargs):
        kwargs.setdefault("permanent", not (status is not None and status >= 500))
        super().__init__(message, status=status, **kwargs)

    def describe(self):
        return f"Zoom sent an answer we could not read: {self.message or 'unexpected content'}"


class ZoomServerErrorPage(ZoomServerError, ZoomBadResponse):
    """A 5xx whose body is not Zoom's JSON: a load balancer's or proxy's HTML page. Both a
    server error (it may pass: not permanent) and an answer we could not read."""

    permanent = False

    def describe(self):
        return f"Zoom had a server error (HTTP {self.status}; {self.message})"


class ZoomNeedsReconnect(ZoomError):
    """The account's credentials were revoked or refused (invalid_grant): an admin must
    reconnect it. Raised by the OAuth layer, before any API request."""

    def __init__(self, message="Zoom connection needs to be reconnected", **kwargs):
        super().__init__(message, **kwargs)

    def describe(self):
        return self.message


def _duration(seconds):
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


# --- Parsing Zoom's error answers --------------------------------------------------------------

_RETRY_AFTER_IN_MESSAGE = re.compile(r"after (\d{1,5}) ?(?:s\b|sec|second)", re.IGNORECASE)


def parse_retry_after(value, *, now=None):
    """Seconds to wait from a Retry-After header, or None when it is missing or unreadable.

    Zoom sends an ISO 8601 date-time (`2020-05-31T00:00:00Z`, NOTES.md); HTTP allows a number of
    seconds or an HTTP-date: all three are understood. A time in the past gives 0. `now` is the
    current aware datetime (injectable so tests control the clock).
    """
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if re.fullmatch(r"\d{1,9}(\.\d+)?", value):
        return float(value)
    when = None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def zoom_now(headers, fallback=None):
    """The time by Zoom's clock when it answered: its `Date` header, else FALLBACK (ours).

    A Retry-After date is a moment on Zoom's clock; turned into a wait by a worker's clock it is
    off by that worker's skew: one 1.5 s ahead read a 1 s Retry-After as "now" and retried every
    50 ms (issue 13). Measured against the Date header of the same answer, the wait is Zoom's
    own; Date has one-second resolution, so the wait may be up to a second long, never short.
    """
    value = (headers.get("Date") or "").strip()
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return fallback


def _int_header(headers, name):
    value = (headers.get(name) or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def error_from_response(status, body, headers, *, now=None, operation=""):
    """The ZoomError for an HTTP error answer.

    `body` is Zoom's parsed JSON error object (or None when there was none); `headers` a
    case-insensitive mapping. Dispatch is on the HTTP status first, which Zoom documents as the
    signal, then on Zoom's code (3003 "not the host" arrives as a 400).
    """
    body = body if isinstance(body, dict) else {}
    code = body.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    message = body.get("message")
    message = message.strip() if isinstance(message, str) else ""
    errors = body.get("errors")
    errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    common = {"status": status, "code": code, "errors": errors, "operation": operation}

    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"), now=zoom_now(headers, now))
        if retry_after is None and message:
            # Starting a live stream too often: "retry making a new request after 30 seconds".
            found = _RETRY_AFTER_IN_MESSAGE.search(message)
            retry_after = float(found.group(1)) if found else None
        return ZoomRateLimited(
            message,
            retry_after=retry_after,
            category=headers.get("X-RateLimit-Category") or None,
            limit_type=headers.get("X-RateLimit-Type") or None,
            limit=_int_header(headers, "X-RateLimit-Limit"),
            remaining=_int_header(headers, "X-RateLimit-Remaining"),
            **common,
        )
    if status == 401:
        return ZoomAuthError(message, **common)
    if code == 4711 or (code == 4700 and "does not contain scopes" in message):
        # 4711 is what Zoom documents; the same words have come with 4700 (devforum.zoom.us,
        # "Admin can't see Scopes", 2023).
        return ZoomScopeMissing(message, **common)
    if code == 3003:
        return ZoomNotHost(message, **common)
    if status == 404:
        return ZoomNotFound(message, **common)
    if status == 408:
        return ZoomTimeout(message or "the request was not read in time (HTTP 408)", **common)
    if status >= 500:
        return ZoomServerError(message, **common)
    return ZoomBadRequest(message or f"request refused (HTTP {status})", **common)
