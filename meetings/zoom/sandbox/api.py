"""
The /v2 operations the dashboard uses, answered as Zoom answers them (status codes, error codes
and bodies from the spec's responses for each operation; NOTES.md for what the spec leaves out).

Error codes the sandbox gives, by case:
- 401 code 124: no, unknown, expired or revoked bearer token.
- 400 code 4711: the token lacks the operation's scope, in either naming scheme (classic
  `meeting:write(:admin)` or granular `meeting:update:status(:admin)`); the message names the
  scopes of the scheme the token's app uses, as Zoom's does.
- 400 code 300: a body that is not JSON ("Unsupported Content Type"), an invalid JSON body or
  field ("Validation Failed." with `errors`), an invalid id, an invalid or expired
  next_page_token.
- 404 code 3001: a meeting/webinar that does not exist, was deleted, or belongs to another
  account; a single webinar (type 5) that has ended, to `GET` and to a second end alike (the
  spec's "Webinar {webinarId} not found or has expired": the same words as for a wrong id, so
  the code does not say the webinar ended); a past meeting that has not ended; a UUID that
  starts with "/" or contains "//" and was encoded only once.
- 404 code 1001: a user that does not exist in the account.
- 400 code 3003: ending a meeting/webinar you do not host with a user-level token, or one marked
  `host_locked` by anyone but its host. 400 code 3063: ending an on-premise user's meeting.
- 400 code 3000: acting on a meeting or webinar in the wrong state: ending one that has not
  started (a recurring webinar between instances too), recovering one that is not deleted,
  changing live stream settings while it streams, starting a live stream on a meeting that is
  not live or has no stream configured (a webinar's: not configured); reading a meeting of
  another user with a user-level token. The same code for all of these, so it does not say
  which. A webinar that has not started answers 400 code 200 to a stream start (the spec's
  "Webinar {0} has not started"); a webinar that does not exist (or ended) answers the
  webinar stream operations 400 code 3001, the only status their spec documents.
- Stopping a live stream that is not running answers 204 (nothing to do).
- 400 code 200: webinar live stream operations when the host has no webinar licence;
  past meeting details on a Free account ("Only available for paid account"); the
  Dashboard's live meetings on a plan below Business.
- 429: per-account, per-label rate limits (see state.check_rate_limit), and a live stream start
  within 30 s of the previous one.
"""

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote, urlsplit

from .state import SandboxError, iso

MAX_ID = 2**63


@dataclass
class Route:
    method: str
    template: str  # the spec's path template, without the /v2 server prefix
    handler: object
    label: str  # Zoom's rate-limit label
    scope: str  # the classic user-level scope; the ":admin" one satisfies it too
    # The granular user-level scope (":admin" added for the account-wide one); from
    # GRANULAR_SCOPES when not given.
    granular: str = ""

    def __post_init__(self):
        self.parts = self.template.strip("/").split("/")
        if not self.granular:
            self.granular = GRANULAR_SCOPES.get((self.method, self.template), "")

    def admin_allowed(self, scopes):
        """Whether a token's scopes reach every user's meetings (an :admin scope of either
        scheme)."""
        return f"{self.scope}:admin" in scopes or (
            bool(self.granular) and f"{self.granular}:admin" in scopes
        )

    def allowed(self, scopes):
        if self.admin_allowed(scopes):
            return True
        if self.scope in ADMIN_ONLY or self.granular in ADMIN_ONLY:
            return False
        return self.scope in scopes or (bool(self.granular) and self.granular in scopes)


# Zoom's granular scope for each operation, as Zoom's reference lists them ("Granular scopes",
# developers.zoom.us/docs/integrations/oauth-scopes-granular/): apps made on today's Marketplace
# (and every new Server-to-Server app) get only these, one per operation, so a token with
# `meeting:read:meeting:admin` may read a meeting but not list a user's meetings. The
# dashboard's own table (meetings/zoom/scopes.py) is written separately on purpose: the sandbox
# plays Zoom, and the tests check the dashboard's table against it.
GRANULAR_SCOPES = {
    ("PUT", "/meetings/{meetingId}/status"): "meeting:update:status",
    ("PUT", "/webinars/{webinarId}/status"): "webinar:update:status",
    ("GET", "/past_meetings/{meetingId}"): "meeting:read:past_meeting",
    ("GET", "/past_meetings/{meetingId}/participants"): "meeting:read:list_past_participants",
    ("GET", "/meetings/{meetingId}/livestream"): "meeting:read:livestream",
    ("PATCH", "/meetings/{meetingId}/livestream"): "meeting:update:livestream",
    ("PATCH", "/meetings/{meetingId}/livestream/status"): "meeting:update:livestream_status",
    ("GET", "/meetings/{meetingId}"): "meeting:read:meeting",
    ("GET", "/webinars/{webinarId}"): "webinar:read:webinar",
    ("GET", "/webinars/{webinarId}/livestream"): "webinar:read:livestream",
    ("PATCH", "/webinars/{webinarId}/livestream"): "webinar:update:livestream",
    ("PATCH", "/webinars/{webinarId}/livestream/status"): "webinar:update:livestream_status",
    ("GET", "/past_webinars/{webinarId}/instances"): "webinar:read:list_past_instances",
    ("GET", "/users"): "user:read:list_users",
    ("GET", "/users/{userId}"): "user:read:user",
    ("GET", "/users/{userId}/meetings"): "meeting:read:list_meetings",
    ("GET", "/users/{userId}/webinars"): "webinar:read:list_webinars",
    # The Dashboard API (Business and up): classic `dashboard_meetings:read:admin`.
    ("GET", "/metrics/meetings"): "dashboard:read:list_meetings",
}
# Classic scopes that exist only at account level: listing the account's users, the Dashboard.
ADMIN_ONLY = {"user:read:list_users", "dashboard_meetings:read", "dashboard:read:list_meetings"}


def _error(status, code, message, errors=None):
    return SandboxError(status, code, message, errors)


def _validation(field, message):
    return _error(400, 300, "Validation Failed.", [{"field": field, "message": message}])


class Call:
    """One authenticated API request: the grant behind the token and its parsed parts."""

    def __init__(self, state, request, grant, route, params):
        self.state = state
        self.request = request
        self.grant = grant
        self.route = route
        self.params = params
        self.account_id = grant.account_id
        self.admin = route.admin_allowed(set(grant.scopes))

    @property
    def user_id(self):
        """The user the token acts as: the consenting user, or for an account-level
        (Server-to-Server) token the account's owner, which is who Zoom means by "me"."""
        if self.grant.user_id:
            return self.grant.user_id
        owner = self.state.account_owner(self.account_id)
        return owner["id"] if owner else None

    def json_body(self):
        """The request's JSON object. Zoom answers other content types with code 300."""
        if self.request.mimetype != "application/json":
            raise _error(400, 300, "Unsupported Content Type")
        try:
            data = json.loads(self.request.get_data(as_text=True) or "null")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _error(400, 300, "Request Body should be a valid JSON object.")
        return data

    def numeric_id(self, name, label="meetingId"):
        value = self.params[name]
        if not value.isdigit() or not 0 < int(value) < MAX_ID:
            raise _error(400, 300, f"Invalid {label}.")
        return int(value)

    def meeting(self):
        meeting_id = self.numeric_id("meetingId")
        meeting = self.state.meetings.get(meeting_id)
        if (
            meeting is None
            or meeting["account_id"] != self.account_id
            or meeting["status"] in ("deleted", "ended")
            # Deleting a user deletes the meetings they host (unless moved to another user
            # first), so a meeting whose host is gone from the account is gone too.
            or meeting["host_id"] not in self.state.users
        ):
            raise _error(404, 3001, f"Meeting {meeting_id} is not found or has expired.")
        self.check_access(meeting)
        return meeting

    def check_access(self, item):
        """User-level tokens reach only their own user's meetings and webinars."""
        if not self.admin and item["host_id"] != self.user_id:
            raise _error(400, 3000, "Cannot access meeting info.")

    def user(self, value):
        if value == "me":
            user = self.state.users.get(self.user_id)
        else:
            user = self.state.find_user(value, account_id=self.account_id)
        if user is None or user["account_id"] != self.account_id:
            raise _error(404, 1001, f"User does not exist: {value}.")
        if not self.admin and user["id"] != self.user_id:
            raise _error(404, 1001, f"User does not exist: {value}.")
        return user


def _check_ended_host(call, item):
    """Who may end a meeting/webinar: its host, or an admin-level token unless host_locked."""
    is_host = item["host_id"] == call.user_id and call.grant.user_id is not None
    if (not call.admin or item.get("host_locked")) and not is_host:
        raise _error(400, 3003, "You are not the meeting host.")
    if item.get("on_premise"):
        raise _error(400, 3063, f"Can not end on-premise user's meeting: {item['id']}.")


# --- meetings --------------------------------------------------------------------------------
def meeting_status(call):
    """PUT /meetings/{meetingId}/status (meetingStatus): end a live meeting, recover a deleted
    one."""
    state = call.state
    body = call.json_body()
    action = body.get("action")
    if action not in ("end", "recover"):
        raise _validation("action", "Invalid field.")
    meeting_id = call.numeric_id("meetingId")
    meeting = state.meetings.get(meeting_id)
    if meeting is None or meeting["account_id"] != call.account_id or meeting["status"] == "ended":
        raise _error(404, 3001, f"Meeting does not exist: {meeting_id}.")
    if action == "recover":
        if meeting["status"] != "deleted":
            raise _error(400, 3000, f"Meeting {meeting_id} is not deleted: nothing to recover.")
        if meeting["deleted_at"] + 7 * 86400 < state.now():
            raise _error(404, 3001, f"Meeting does not exist: {meeting_id}.")
        call.check_access(meeting)
        state.recover_meeting(meeting_id)
        return 204, None
    if meeting["status"] == "deleted":
        raise _error(404, 3001, f"Meeting does not exist: {meeting_id}.")
    _check_ended_host(call, meeting)
    if meeting["status"] != "started":
        raise _error(400, 3000, f"Meeting {meeting_id} has not started: there is nothing to end.")
    if state.roll(state.faults.silent_end_rate):
        # The reported Zoom quirk: 204, yet the meeting goes on.
        state.counters["silent_ends"] += 1
        return 204, None
    state.end_by_api("meeting", meeting_id)
    return 204, None


def get_meeting(call):
    """GET /meetings/{meetingId} (meeting)."""
    meeting = call.meeting()
    return 200, call.state.meeting_json(meeting, full=True)


# Zoom's List meetings shows scheduled meetings only: "This API only supports scheduled meetings.
# This API does not return information about instant meetings" (the spec's description of
# `GET /users/{userId}/meetings`). Instant (1) and personal meeting ID (4) meetings are in no
# listing, whatever `type` asks, live ones included; GET /meetings/{id} answers them.
LISTED_MEETING_TYPES = (2, 3, 8)
# `type=live` lists live meetings on Business and higher plans only. On Pro (and so on Free) it
# answers an empty list, with no error to say the list is not available (zoom/api#76: "This also
# doesn't return that it's invalid or that we don't have access when accessing with a pro
# account"). The worst case for a client: an empty list looks like "nothing is live".
LIVE_LIST_PLANS = ("business",)


def list_meetings(call):
    """GET /users/{userId}/meetings (meetings): scheduled meetings only (LISTED_MEETING_TYPES);
    `type=live` is empty below Business (LIVE_LIST_PLANS)."""
    state = call.state
    user = call.user(call.params["userId"])
    kind = call.request.args.get("type", "scheduled")
    if kind not in ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings"):
        raise _validation("type", "Invalid field.")
    plan = state.accounts.get(call.account_id, {}).get("plan")

    def items():
        now = state.now()
        ids = []
        if kind == "live" and plan not in LIVE_LIST_PLANS:
            return ids
        for meeting_id in state.meetings_by_host.get(user["id"], ()):
            m = state.meetings[meeting_id]
            if m["status"] in ("deleted", "ended") or m["type"] not in LISTED_MEETING_TYPES:
                continue
            if kind == "live":
                keep = m["status"] == "started"
            elif kind == "scheduled":
                keep = True
            elif kind in ("upcoming", "upcoming_meetings"):
                keep = m["start_time"] is not None and m["start_time"] >= now
            else:
                keep = m["start_time"] is not None and m["start_time"] < now
            if keep:
                ids.append(meeting_id)
        return ids

    return 200, _page(call, items, "meetings", lambda i: state.meeting_json(state.meetings[i]))


# --- the Dashboard ---------------------------------------------------------------------------
# Zoom's Dashboard (metrics) API needs a Business or higher plan (the spec's prerequisites for
# dashboardMeetings: "Business or a higher plan"). The spec documents no error for a smaller
# plan. Zoom's answer to a feature the plan lacks is HTTP 400 with code 200 elsewhere (webinars:
# "Cannot use webinar API, you need to subscribe webinar plan"; past meetings: "Only available
# for paid account"), so the sandbox answers that: the worst case, a refusal that reads like any
# other 400 and that no retry cures.
DASHBOARD_PLANS = ("business",)
# "The month should fall within the last six months" and "the date range ... should only be one
# month" (the spec's from/to); both refused with code 300 like any invalid field.
DASHBOARD_MAX_AGE_DAYS = 183
DASHBOARD_MAX_RANGE_DAYS = 31


def _date_arg(call, name):
    value = call.request.args.get(name)
    if not value:
        raise _validation(name, f"{name} is required.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _validation(name, f"{name} must be a date, yyyy-mm-dd.") from None


def _duration_text(seconds):
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def dashboard_meetings(call):
    """GET /metrics/meetings (dashboardMeetings), `type=live`: every live meeting of the account
    (instant and personal meeting ID meetings too), paged by next_page_token. A meeting is
    listed when its running instance started within [from, to] (UTC dates): the spec says the
    report covers that range and says nothing about live meetings that began before it, so the
    sandbox leaves them out (the worst case: a client must ask from far enough back)."""
    state = call.state
    if not call.admin:
        raise _scope_error(call.route, call.grant)
    plan = state.accounts.get(call.account_id, {}).get("plan")
    if plan not in DASHBOARD_PLANS:
        raise _error(400, 200, "Dashboard is only available for Business or higher plan accounts.")
    kind = call.request.args.get("type", "live")
    if kind not in ("past", "pastOne", "live"):
        raise _validation("type", "Invalid field.")
    if kind != "live":
        raise _validation("type", "Only type=live is emulated by the sandbox.")
    start, end = _date_arg(call, "from"), _date_arg(call, "to")
    today = datetime.fromtimestamp(state.now(), UTC).date()
    if end < start or (end - start).days > DASHBOARD_MAX_RANGE_DAYS:
        raise _validation("to", "The date range must be one month at most, from before to.")
    if (today - start).days > DASHBOARD_MAX_AGE_DAYS:
        raise _validation("from", "The date range must fall within the last six months.")
    first = datetime.combine(start, datetime.min.time(), UTC).timestamp()
    last = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).timestamp()

    def items():
        return [
            m["id"]
            for m in state.meetings.values()
            if m["account_id"] == call.account_id
            and m["status"] == "started"
            and first <= (m["instance_started_at"] or 0) < last
        ]

    def render(meeting_id):
        m = state.meetings[meeting_id]
        host = state.users.get(m["host_id"], {})
        started = m["instance_started_at"]
        return {
            "uuid": m["uuid"],
            "id": m["id"],
            "topic": m["topic"],
            "host": f"{host.get('first_name', '')} {host.get('last_name', '')}".strip(),
            "email": host.get("email", ""),
            "user_type": "Licensed",
            "start_time": iso(started),
            "duration": _duration_text(state.now() - started),
            "participants": m["participants"],
            "dept": host.get("dept", ""),
            "has_pstn": False,
            "has_voip": True,
            "has_3rd_party_audio": False,
            "has_video": True,
            "has_screen_share": False,
            "has_recording": False,
            "has_sip": False,
        }

    answer = _page(call, items, "meetings", render)
    return 200, {"from": start.isoformat(), "to": end.isoformat(), **answer}


# --- webinars --------------------------------------------------------------------------------
def _webinar(call):
    webinar_id = call.numeric_id("webinarId", "webinarId")
    webinar = call.state.webinars.get(webinar_id)
    if (
        webinar is None
        or webinar["account_id"] != call.account_id
        or webinar["status"] in ("deleted", "ended")
    ):
        raise _error(404, 3001, f"Webinar {webinar_id} not found or has expired.")
    return webinar


def webinar_status(call):
    """PUT /webinars/{webinarId}/status (webinarStatus): end a live webinar."""
    body = call.json_body()
    if body.get("action") != "end":
        raise _validation("action", "Invalid field.")
    webinar = _webinar(call)
    _check_ended_host(call, webinar)
    if webinar["status"] != "started":
        raise _error(400, 3000, f"Webinar {webinar['id']} has not started: nothing to end.")
    call.state.end_by_api("webinar", webinar["id"])
    return 204, None


def past_webinars(call):
    """GET /past_webinars/{webinarId}/instances (pastWebinars): the webinar's ended instances
    (uuid, start_time), oldest first. A single webinar that ended is found here although
    `GET /webinars/{id}` and a second end answer 3001 for it."""
    webinar_id = call.numeric_id("webinarId", "webinarId")
    webinar = call.state.webinars.get(webinar_id)
    if (
        webinar is None
        or webinar["account_id"] != call.account_id
        or webinar["status"] == "deleted"
    ):
        raise _error(404, 3001, f"Webinar {webinar_id} not found or has expired.")
    call.check_access(webinar)
    instances = call.state.past_webinar_instances.get(webinar_id, ())
    return 200, {
        "webinars": [{"uuid": i["uuid"], "start_time": iso(i["start_time"])} for i in instances]
    }


def get_webinar(call):
    """GET /webinars/{webinarId} (webinar)."""
    webinar = _webinar(call)
    call.check_access(webinar)
    return 200, call.state.webinar_json(webinar, full=True)


def list_webinars(call):
    """GET /users/{userId}/webinars (webinars). A user without a webinar licence is refused
    with code 200, and the list pages by page_number, not next_page_token (see below)."""
    state = call.state
    user = call.user(call.params["userId"])
    kind = call.request.args.get("type", "scheduled")
    if kind not in ("scheduled", "upcoming"):
        raise _validation("type", "Invalid field.")
    if not user.get("webinar_licence", True):
        # The spec's prerequisite for this operation (GET /users/{userId}/webinars in
        # meetings/zoom/spec/zoom-meetings-api.json): "A Pro or higher plan with the Webinar
        # add-on". Its responses list only 200 and 404 (1001); what Zoom answers a user without
        # the add-on is HTTP 400, code 200, with these words (NOTES.md, "Webinars need a licence
        # per user"; code 200 is also Zoom's "paid account only"). The contract checker allows
        # Zoom's 400 error body on every operation.
        raise _error(400, 200, "Cannot use webinar API, you need to subscribe webinar plan")

    def items():
        now = state.now()
        ids = []
        for webinar_id in state.webinars_by_host.get(user["id"], ()):
            w = state.webinars[webinar_id]
            if w["status"] in ("deleted", "ended"):
                continue
            if kind == "upcoming" and w["start_time"] < now:
                continue
            ids.append(webinar_id)
        return ids

    return 200, _page_by_number(
        call, items(), "webinars", lambda i: state.webinar_json(state.webinars[i])
    )


# --- users -----------------------------------------------------------------------------------
def list_users(call):
    """GET /users (users)."""
    state = call.state
    if not call.admin:
        raise _scope_error(call.route, call.grant)
    status = call.request.args.get("status", "active")
    if status not in ("active", "inactive", "pending"):
        raise _validation("status", "Invalid field.")

    def items():
        return [
            u["id"]
            for u in state.users.values()
            if u["account_id"] == call.account_id and u["status"] == status
        ]

    return 200, _page(call, items, "users", lambda i: state.user_json(state.users[i]))


def get_user(call):
    """GET /users/{userId} (user), including /users/me."""
    return 200, call.state.user_json(call.user(call.params["userId"]))


# --- past meetings ---------------------------------------------------------------------------
def _past_instance(call):
    """The ended instance a past_meetings path names: a numeric id gives the latest ended
    instance, a UUID that instance. Paid accounts only; a user token sees its own meetings."""
    state = call.state
    account = state.accounts.get(call.account_id, {})
    if account.get("plan") == "free":
        raise _error(400, 200, f"Only available for paid account: {call.account_id}")
    value = call.params["meetingId"]
    if value.isdigit():
        meeting_id = int(value)
        if not 0 < meeting_id < MAX_ID:
            raise _error(400, 300, "Invalid meetingId.")
        meeting = state.meetings.get(meeting_id)
        instance = state.latest_instance(meeting_id) if meeting else None
        if instance is None or meeting["account_id"] != call.account_id:
            raise _error(404, 3001, "The meeting ID is invalid or the meeting has not ended.")
    else:
        instance = state.instances_by_uuid.get(value)
        meeting = state.meetings.get(instance["id"]) if instance else None
        if instance is None or meeting is None or meeting["account_id"] != call.account_id:
            raise _error(404, 3001, "This meeting is not available or the meeting ID is invalid.")
    if not call.admin and instance["host_id"] != call.user_id:
        raise _error(400, 300, "Cannot access meeting information.")
    return instance


def past_meeting(call):
    """GET /past_meetings/{meetingId} (pastMeetingDetails): a numeric id gives the latest ended
    instance, a UUID that instance."""
    instance = _past_instance(call)
    data = dict(instance)
    data["start_time"] = iso(instance["start_time"])
    data["end_time"] = iso(instance["end_time"])
    return 200, data


def past_meeting_participants(call):
    """GET /past_meetings/{meetingId}/participants (pastMeetingParticipants), paged like every
    listing. As the spec notes, Zoom lists nobody when an instance had a single participant."""
    state = call.state
    instance = _past_instance(call)
    people = state.past_participants(instance["uuid"])
    listed = people if len(people) > 1 else []
    return 200, _page(call, lambda: list(range(len(listed))), "participants", lambda i: listed[i])


# --- live streams ----------------------------------------------------------------------------
def get_livestream(call):
    """GET /meetings/{meetingId}/livestream (getMeetingLiveStreamDetails)."""
    meeting = call.meeting()
    config = meeting["livestream"] or {"stream_url": "", "stream_key": "", "page_url": ""}
    return 200, dict(config)


_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#]+[^\s]*$")


def _livestream_config(call):
    """The validated body of a live stream update (meetings' and webinars' schemas are alike):
    stream_url <= 1024, stream_key <= 512, page_url a URI <= 1024, all required; resolution
    720p or 1080p when given."""
    body = call.json_body()
    limits = {"stream_url": 1024, "stream_key": 512, "page_url": 1024}
    for name, limit in limits.items():
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise _validation(name, f"{name} is required.")
        if len(value) > limit:
            raise _validation(name, f"{name} must be at most {limit} characters.")
    if not _URI.match(body["page_url"]):
        raise _validation("page_url", "page_url must be a URL.")
    resolution = body.get("resolution")
    if resolution is not None and resolution not in ("720p", "1080p"):
        raise _validation("resolution", "resolution must be 720p or 1080p.")
    return body


def _livestream_status_body(call):
    """(action, settings) of a live stream status update, validated (meetings' and webinars'
    schemas are alike): action start | stop; settings.active_speaker_name a boolean,
    settings.display_name 1..50 characters."""
    body = call.json_body()
    action = body.get("action")
    if action not in ("start", "stop"):
        raise _validation("action", "Invalid field.")
    settings = body.get("settings")
    if settings is not None:
        if not isinstance(settings, dict):
            raise _validation("settings", "Invalid field.")
        speaker = settings.get("active_speaker_name")
        if speaker is not None and not isinstance(speaker, bool):
            raise _validation("settings.active_speaker_name", "Must be true or false.")
        name = settings.get("display_name")
        if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 50):
            raise _validation("settings.display_name", "Must be 1 to 50 characters.")
    return action, settings


def _check_livestream_start_rate(state, key, what, item_id):
    """Zoom's 429 for a start within 30 s of the previous one ("retry after 30 seconds")."""
    now = state.now()
    last = state.livestream_starts.get(key)
    if last is not None and now - last < state.livestream_start_interval:
        retry_at = last + state.livestream_start_interval
        raise SandboxError(
            429,
            429,
            f"Too many requests submitted to start the livestream of this {what}: "
            f"{item_id}. If the livestream has not already started, retry making a new "
            f"request after 30 seconds.",
            headers={"Retry-After": iso(math.ceil(retry_at))},
        )
    state.livestream_starts[key] = now


def update_livestream(call):
    """PATCH /meetings/{meetingId}/livestream (meetingLiveStreamUpdate)."""
    body = _livestream_config(call)
    resolution = body.get("resolution")
    meeting = call.meeting()
    if meeting["livestreaming"]:
        raise _error(
            400, 3000, "The live stream settings cannot be changed while the meeting is streaming."
        )
    call.state.configure_livestream(
        meeting["id"],
        stream_url=body["stream_url"],
        stream_key=body["stream_key"],
        page_url=body["page_url"],
        resolution=resolution,
    )
    return 204, None


def livestream_status(call):
    """PATCH /meetings/{meetingId}/livestream/status (meetingLiveStreamStatusUpdate)."""
    state = call.state
    action, settings = _livestream_status_body(call)
    meeting = call.meeting()
    if action == "stop":
        if meeting["livestreaming"]:
            state.stop_livestream(meeting["id"])
        return 204, None
    if meeting["status"] != "started":
        raise _error(400, 3000, f"Meeting {meeting['id']} has not started: it cannot stream.")
    if not meeting["livestream"]:
        raise _error(400, 3000, f"No live stream is configured for meeting {meeting['id']}.")
    _check_livestream_start_rate(state, meeting["id"], "meeting", meeting["id"])
    if not meeting["livestreaming"]:
        state.start_livestream(meeting["id"], settings)
    return 204, None


def _streamable_webinar(call):
    """The webinar of a live stream operation: one that exists (else the spec's answer for
    these operations, which document no 404: HTTP 400, code 3001 "Webinar does not exist"),
    reachable by the token, and its host licensed for webinars (the spec's code 200, "Webinar
    plan is missing")."""
    try:
        webinar = _webinar(call)
    except SandboxError as e:
        if e.status != 404:
            raise
        webinar_id = call.params["webinarId"]
        raise _error(400, 3001, f"Webinar does not exist: {webinar_id}.") from None
    call.check_access(webinar)
    host = call.state.users.get(webinar["host_id"], {})
    if not host.get("webinar_licence", True):
        raise _error(
            400,
            200,
            "Webinar plan is missing. You must subscribe to the webinar plan and enable "
            f"webinars for this user in order to perform this action: {webinar['host_id']}.",
        )
    return webinar


def get_webinar_livestream(call):
    """GET /webinars/{webinarId}/livestream (getWebinarLiveStreamDetails)."""
    webinar = _streamable_webinar(call)
    config = webinar["livestream"] or {"stream_url": "", "stream_key": "", "page_url": ""}
    return 200, dict(config)


def update_webinar_livestream(call):
    """PATCH /webinars/{webinarId}/livestream (webinarLiveStreamUpdate): as for a meeting."""
    body = _livestream_config(call)
    webinar = _streamable_webinar(call)
    if webinar["livestreaming"]:
        raise _error(
            400, 3000, "The live stream settings cannot be changed while the webinar is streaming."
        )
    call.state.configure_webinar_livestream(
        webinar["id"],
        stream_url=body["stream_url"],
        stream_key=body["stream_key"],
        page_url=body["page_url"],
        resolution=body.get("resolution"),
    )
    return 204, None


def webinar_livestream_status(call):
    """PATCH /webinars/{webinarId}/livestream/status (webinarLiveStreamStatusUpdate). The spec's
    refusals: "Webinar {0} has not started" (code 200) and "The current webinar is not
    configured with a custom streaming service" (code 3000)."""
    state = call.state
    action, _settings = _livestream_status_body(call)
    webinar = _streamable_webinar(call)
    if action == "stop":
        if webinar["livestreaming"]:
            state.set_webinar_livestreaming(webinar["id"], False)
        return 204, None
    if webinar["status"] != "started":
        raise _error(400, 200, f"Webinar {webinar['id']} has not started.")
    if not webinar["livestream"]:
        raise _error(
            400, 3000, "The current webinar is not configured with a custom streaming service."
        )
    _check_livestream_start_rate(state, ("webinar", webinar["id"]), "webinar", webinar["id"])
    if not webinar["livestreaming"]:
        state.set_webinar_livestreaming(webinar["id"], True)
    return 204, None


# --- paging ----------------------------------------------------------------------------------
def _page(call, items_fn, key, render):
    """One page of a listing, Zoom style: page_size (default 30, at most 300) and a
    next_page_token that is "" on the last page and expires after 15 minutes."""
    state = call.state
    args = call.request.args
    raw_size = args.get("page_size", "30")
    try:
        page_size = int(raw_size)
    except ValueError:
        raise _validation("page_size", "Invalid field.") from None
    page_size = max(1, min(page_size, 300))
    token = args.get("next_page_token", "")
    if token:
        entry = state.take_page_token(token)
        if entry is None:
            raise _error(400, 300, "The next page token is invalid or expired.")
        items, offset = entry["items"], entry["offset"]
    else:
        items, offset = items_fn(), 0
    chunk = items[offset : offset + page_size]
    end = offset + page_size
    next_token = state.new_page_token(items, end) if end < len(items) else ""
    return {
        "page_count": max(1, math.ceil(len(items) / page_size)),
        "page_size": page_size,
        "total_records": len(items),
        "next_page_token": next_token,
        key: [render(i) for i in chunk],
    }


def _page_by_number(call, items, key, render):
    """One page of a listing that pages by page_number (the webinar list).

    The spec's `webinars` operation takes `page_size` and `page_number` and no
    `next_page_token` parameter (meetings/zoom/spec/zoom-meetings-api.json, GET
    /users/{userId}/webinars: page_number is marked deprecated, yet it is the only way to ask
    for a page after the first), although its answer's schema names a next_page_token. Worst
    case, as Zoom's gateway does with query parameters an operation does not take: a
    next_page_token sent is ignored (the first page again) and none is given, so a client that
    follows tokens sees one page and stops; page_count and page_number say where it is."""
    args = call.request.args
    try:
        page_size = int(args.get("page_size", "30"))
    except ValueError:
        raise _validation("page_size", "Invalid field.") from None
    page_size = max(1, min(page_size, 300))
    try:
        page_number = int(args.get("page_number", "1"))
    except ValueError:
        raise _validation("page_number", "Invalid field.") from None
    page_number = max(1, page_number)
    offset = (page_number - 1) * page_size
    return {
        "page_count": max(1, math.ceil(len(items) / page_size)),
        "page_number": page_number,
        "page_size": page_size,
        "total_records": len(items),
        key: [render(i) for i in items[offset : offset + page_size]],
    }


def is_granular(scopes):
    """Whether a grant's scopes are granular ones (service:action:data[:admin]): Zoom's 4711
    message names the scopes of the scheme the app uses."""
    return any(
        (s.count(":") >= 2 and not s.endswith(":admin")) or s.count(":") >= 3 for s in scopes
    )


def _scope_error(route, grant):
    """Zoom's answer to a token without the operation's scope: HTTP 400, code 4711."""
    base = route.granular if is_granular(grant.scopes) and route.granular else route.scope
    if route.handler in (list_users, dashboard_meetings) or base in ADMIN_ONLY:
        names = f"{base}:admin"
    else:
        names = f"{base}, {base}:admin"
    return _error(400, 4711, f"Invalid access token, does not contain scopes:[{names}].")


ROUTES = [
    Route("PUT", "/meetings/{meetingId}/status", meeting_status, "light", "meeting:write"),
    Route("PUT", "/webinars/{webinarId}/status", webinar_status, "light", "webinar:write"),
    Route("GET", "/past_meetings/{meetingId}", past_meeting, "light", "meeting:read"),
    Route(
        "GET",
        "/past_meetings/{meetingId}/participants",
        past_meeting_participants,
        "medium",
        "meeting:read",
    ),
    Route("GET", "/meetings/{meetingId}/livestream", get_livestream, "light", "meeting:read"),
    Route("PATCH", "/meetings/{meetingId}/livestream", update_livestream, "light", "meeting:write"),
    Route(
        "PATCH",
        "/meetings/{meetingId}/livestream/status",
        livestream_status,
        "light",
        "meeting:write",
    ),
    Route("GET", "/meetings/{meetingId}", get_meeting, "light", "meeting:read"),
    Route("GET", "/webinars/{webinarId}", get_webinar, "light", "webinar:read"),
    Route(
        "GET", "/webinars/{webinarId}/livestream", get_webinar_livestream, "light", "webinar:read"
    ),
    Route(
        "PATCH",
        "/webinars/{webinarId}/livestream",
        update_webinar_livestream,
        "light",
        "webinar:write",
    ),
    Route(
        "PATCH",
        "/webinars/{webinarId}/livestream/status",
        webinar_livestream_status,
        "light",
        "webinar:write",
    ),
    Route("GET", "/past_webinars/{webinarId}/instances", past_webinars, "light", "webinar:read"),
    Route("GET", "/users", list_users, "medium", "user:read"),
    Route("GET", "/users/{userId}", get_user, "light", "user:read"),
    Route("GET", "/users/{userId}/meetings", list_meetings, "medium", "meeting:read"),
    Route("GET", "/users/{userId}/webinars", list_webinars, "medium", "webinar:read"),
    # The spec labels dashboardMeetings Resource-intensive; issue 11 calls it Heavy. The
    # stricter one is booked: Resource-intensive is counted per minute (NOTES.md's table).
    Route("GET", "/metrics/meetings", dashboard_meetings, "resource", "dashboard_meetings:read"),
]


def match(method, raw_path):
    """(route, params) for a raw /v2 path, or (None, reason) where reason is "method" when the
    path exists for another method. Segments are split before decoding (so an encoded "/" stays
    inside its segment) and decoded once; see _decode_meeting_ref for past meeting UUIDs."""
    path = raw_path[len("/v2") :]
    segments = path.strip("/").split("/") if path.strip("/") else []
    if path.endswith("/") and len(path) > 1:
        segments.append("")
    found_path = False
    for route in ROUTES:
        if len(route.parts) != len(segments):
            continue
        params = {}
        for part, segment in zip(route.parts, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    break
                params[part[1:-1]] = unquote(segment)
            elif part != segment:
                break
        else:
            found_path = True
            if route.method == method:
                return route, params
    return None, ("method" if found_path else "path")


def decode_meeting_ref(value):
    """Zoom's rule for a meeting UUID in a path, as its gateway behaves: the path is decoded
    once before routing, so a UUID starting with "/" or containing "//" that was encoded only
    once arrives broken (404, code 3001); encoded twice, it survives and is decoded again."""
    if value.startswith("/") or "//" in value:
        return None
    if "%" in value:
        value = unquote(value)
    return value


def handle(state, request, raw_path, grant_for):
    """Answer one /v2 request: returns (status, body or None, headers, template or "")."""
    route, params = match(request.method, raw_path)
    if route is None:
        if raw_path.startswith("/v2/past_meetings/"):
            raise _error(404, 3001, "This meeting is not available or the meeting ID is invalid.")
        if params == "method":
            raise SandboxError(405, 405, f"Method {request.method} is not allowed here.")
        raise SandboxError(404, 404, "This API does not exist.")
    grant = grant_for(request)
    call = Call(state, request, grant, route, params)
    if not route.allowed(set(grant.scopes)):
        raise _scope_error(route, grant)
    state.check_rate_limit(grant.account_id, route.label)
    if route.handler in (past_meeting, past_meeting_participants):
        decoded = decode_meeting_ref(params["meetingId"])
        if decoded is None:
            raise _error(404, 3001, "This meeting is not available or the meeting ID is invalid.")
        params["meetingId"] = decoded
    with state.lock:
        state.settle_ends()
        status, body = route.handler(call)
    return status, body, route.template


def template_for(method, raw_path):
    route, _ = match(method, raw_path)
    return route.template if route else ""


def raw_path_of(environ):
    """The path exactly as the client sent it (percent-encoding intact)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        from urllib.parse import quote

        return quote(environ.get("PATH_INFO", ""))
    return urlsplit(raw).path
