"""
The scopes Zoom asks for, one table: each operation the client performs, in plain words, and the
scope names that allow it in both of Zoom's naming schemes.

Zoom has two schemes (developers.zoom.us, "OAuth scopes"): apps made before 2024 have classic
scopes (`meeting:write:admin` covers ending, recovering and live streams alike); apps made on
today's Marketplace, every new Server-to-Server app among them, have granular ones, one per
operation (`meeting:update:status:admin`). Either satisfies a need. The `:admin` names reach every
user of the account; the plain ones only the user who granted an OAuth app. A call outside the
grant answers HTTP 400, code 4711 ("Invalid access token, does not contain scopes: [...]").

Nothing here imports Django: the client's errors, the account model and the views all read it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ScopeNeed:
    """What one Zoom operation needs granted.

    `operation_id` is Zoom's (client.OPERATIONS); `what` says what the dashboard cannot do
    without it, for operators; `classic` and `granular` are the scope names that allow it, the
    account-wide (`:admin`) one first.
    """

    operation_id: str
    what: str
    classic: tuple
    granular: tuple

    @property
    def names(self):
        return (*self.classic, *self.granular)

    def granted_as(self, granted):
        """The granted scope that allows this operation, or ""."""
        return next((name for name in self.names if name in granted), "")

    def advice(self):
        """Plain words naming the scope to add, in both schemes."""
        return (
            f"the Zoom app lacks the permission to {self.what}: add the scope "
            f"{self.granular[0]} (apps with granular scopes) or {self.classic[0]} "
            "(apps with classic scopes) to the app in Zoom's App Marketplace, then test the "
            "connection"
        )


def _need(operation_id, what, classic, granular, *, admin_only=False):
    """Both schemes' names for an operation: the :admin scope first, then (unless only an
    account-wide scope exists) the user-level one."""
    classic_names = (f"{classic}:admin",) if admin_only else (f"{classic}:admin", classic)
    granular_names = (f"{granular}:admin",) if admin_only else (f"{granular}:admin", granular)
    return ScopeNeed(operation_id, what, classic_names, granular_names)


# The one table. Sources: the spec's "Scopes:" line of each operation for the classic names
# (meetings/zoom/spec/), Zoom's "Granular scopes" reference for the granular ones.
SCOPE_NEEDS = {
    need.operation_id: need
    for need in (
        _need(
            "meetingStatus",
            "end and recover meetings",
            "meeting:write",
            "meeting:update:status",
        ),
        _need(
            "meeting",
            "read a meeting's status and settings",
            "meeting:read",
            "meeting:read:meeting",
        ),
        _need(
            "meetings",
            "list each user's meetings (the sync)",
            "meeting:read",
            "meeting:read:list_meetings",
        ),
        _need(
            "pastMeetingDetails",
            "read an ended meeting's details",
            "meeting:read",
            "meeting:read:past_meeting",
        ),
        _need(
            "pastMeetingParticipants",
            "list who joined an ended meeting",
            "meeting:read",
            "meeting:read:list_past_participants",
        ),
        _need(
            "getMeetingLiveStreamDetails",
            "read a meeting's live stream settings",
            "meeting:read",
            "meeting:read:livestream",
        ),
        _need(
            "meetingLiveStreamUpdate",
            "configure a meeting's live stream",
            "meeting:write",
            "meeting:update:livestream",
        ),
        _need(
            "meetingLiveStreamStatusUpdate",
            "start and stop live streams",
            "meeting:write",
            "meeting:update:livestream_status",
        ),
        _need("webinarStatus", "end webinars", "webinar:write", "webinar:update:status"),
        _need(
            "webinar",
            "read a webinar's status and settings",
            "webinar:read",
            "webinar:read:webinar",
        ),
        _need(
            "webinars",
            "list each user's webinars (the sync)",
            "webinar:read",
            "webinar:read:list_webinars",
        ),
        _need(
            "pastWebinars",
            "read an ended webinar's instances",
            "webinar:read",
            "webinar:read:list_past_instances",
        ),
        _need(
            "getWebinarLiveStreamDetails",
            "read a webinar's live stream settings",
            "webinar:read",
            "webinar:read:livestream",
        ),
        _need(
            "webinarLiveStreamUpdate",
            "configure a webinar's live stream",
            "webinar:write",
            "webinar:update:livestream",
        ),
        _need(
            "webinarLiveStreamStatusUpdate",
            "start and stop webinars' live streams",
            "webinar:write",
            "webinar:update:livestream_status",
        ),
        _need(
            "users",
            "list the account's users (the sync)",
            "user:read",
            "user:read:list_users",
            admin_only=True,
        ),
        _need("user", "read a user (the connection test)", "user:read", "user:read:user"),
        # The Dashboard API's live meetings (Business and up).
        _need(
            "dashboardMeetings",
            "list the account's live meetings from the Dashboard (Business plans and up)",
            "dashboard_meetings:read",
            "dashboard:read:list_meetings",
            admin_only=True,
        ),
    )
}

# Operations the dashboard cannot do without; the Dashboard API is an extra where the plan has
# it, so a grant without it is not reported as missing.
OPTIONAL = frozenset({"dashboardMeetings"})


def need_for(operation_id):
    return SCOPE_NEEDS.get(operation_id)


def report(granted):
    """[(ScopeNeed, granted as or "")] for every operation, in table order."""
    granted = set(granted)
    return [(need, need.granted_as(granted)) for need in SCOPE_NEEDS.values()]


def missing(granted):
    """The needs (not optional) that no granted scope satisfies."""
    return [
        need
        for need, granted_as in report(granted)
        if not granted_as and need.operation_id not in OPTIONAL
    ]
