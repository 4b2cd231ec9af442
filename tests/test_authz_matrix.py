"""
The authorization matrix: every URL of the URL conf x anonymous / outsider / viewer / operator /
admin, for GET and POST, answers as MATRIX says, and never with a 500.

The URLs are read from the URL conf (`get_resolver()`, recursively; the Django admin and static
files are skipped), so a new view cannot be forgotten: a URL name without an entry in MATRIX
fails `test_every_url_has_an_entry_in_the_matrix` until someone decides, here, who may use it.

Roles: anonymous (not signed in), outsider (signed in, no group), viewer ("Zoom viewers"),
operator ("Zoom operators"), admin (superuser). Expectations:
  LOGIN     302 to the sign-in page
  DENIED    403
  NOT_ALLOWED 405 (the view does not take that method)
  OK        answered: 2xx, 3xx other than to the sign-in page, or 400 (bad form input)
  REDIRECT  any 3xx (sign-out)
  HEALTH    200 or 503 (/healthz)
  401       asked to authenticate (metrics, an unsigned webhook)
Acting POSTs are sent with valid form data, so the permission check is what decides.
"""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.timezone import now

from meetings.models import (
    Action,
    ActionKind,
    ActionSource,
    ActionState,
    Approval,
    Batch,
    Channel,
    Delivery,
    Meeting,
    MeetingStatus,
    PastMeeting,
    Subscription,
    Webinar,
    ZoomAccount,
)

LOGIN = "LOGIN"
DENIED = 403
NOT_ALLOWED = 405
OK = "OK"
REDIRECT = "REDIRECT"
HEALTH = "HEALTH"
UNAUTHORIZED = 401

ROLES = ("anonymous", "outsider", "viewer", "operator", "admin")


def by_role(anonymous, outsider, viewer, operator, admin):
    return dict(zip(ROLES, (anonymous, outsider, viewer, operator, admin), strict=True))


def everyone(expectation):
    return dict.fromkeys(ROLES, expectation)


# Dashboard screens (`dashboard_view`: sign-in, then "may see the dashboard", then the method).
SCREEN = by_role(LOGIN, DENIED, OK, OK, OK)
SCREEN_WRONG_METHOD = by_role(LOGIN, DENIED, NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED)
# Doing something to Zoom (or its confirmation page): the kind's permission.
ACTS = by_role(LOGIN, DENIED, DENIED, OK, OK)
# Connection management (`login_required`, then the method, then admins only).
ADMINS = by_role(LOGIN, DENIED, DENIED, DENIED, OK)
SIGNED_IN_WRONG_METHOD = by_role(LOGIN, NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED)
SIGNED_IN = by_role(LOGIN, OK, OK, OK, OK)
# A person's own things (their subscriptions): the operator owns them here.
OWNER_ONLY = by_role(LOGIN, DENIED, 404, OK, 404)


@dataclass(frozen=True)
class Rule:
    get: dict
    post: dict
    kwargs: object = None  # objects -> URL kwargs
    query: object = None  # objects -> GET query
    data: object = None  # objects -> POST data
    zoom: bool = False  # may call Zoom: run with the sandbox
    why: str = field(default="", compare=False)


def pk_of(name):
    return lambda o: {"pk": getattr(o, name).pk}


def bulk_selection(o):
    return {"kind": ActionKind.END_MEETING.value, "ids": [o.meeting.pk]}


def stream_config(o):
    return {
        "stream_url": "rtmp://live.example.com/app",
        "stream_key": "matrix-stream-key-1",
        "page_url": "https://example.com/live",
        "resolution": "720p",
    }


MATRIX = {
    # --- Django's sign-in pages (public or any signed-in user) -----------------------------
    "login": Rule(get=everyone(OK), post=everyone(OK)),
    "logout": Rule(get=everyone(NOT_ALLOWED), post=everyone(REDIRECT)),
    "password_change": Rule(get=SIGNED_IN, post=SIGNED_IN),
    "password_change_done": Rule(get=SIGNED_IN, post=by_role(LOGIN, *[NOT_ALLOWED] * 4)),
    "password_reset": Rule(get=everyone(OK), post=everyone(OK)),
    "password_reset_done": Rule(get=everyone(OK), post=everyone(NOT_ALLOWED)),
    "password_reset_confirm": Rule(
        get=everyone(OK),
        post=everyone(OK),
        kwargs=lambda o: {"uidb64": "MQ", "token": "not-a-valid-token"},
    ),
    "password_reset_complete": Rule(get=everyone(OK), post=everyone(NOT_ALLOWED)),
    # --- monitoring and Zoom's webhook (no session involved) --------------------------------
    "healthz": Rule(get=everyone(HEALTH), post=everyone(NOT_ALLOWED)),
    "metrics": Rule(
        get=by_role(UNAUTHORIZED, DENIED, DENIED, DENIED, OK), post=everyone(NOT_ALLOWED)
    ),
    "zoom-webhook": Rule(get=everyone(NOT_ALLOWED), post=everyone(UNAUTHORIZED)),
    # --- the dashboard's screens ---------------------------------------------------------------
    "overview": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD),
    "meetings": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD),
    "meeting-badges": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD),
    "meeting": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("meeting")),
    # The meeting page's poll of its status parts (a plain GET is sent to the page).
    "meeting-state": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("meeting")),
    "webinars": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD),
    "webinar": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("webinar")),
    # The webinar page's poll of its followed parts (a plain GET is sent to the page).
    "webinar-state": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("webinar")),
    "past-meetings": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD),
    "past-meeting": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("past_meeting")),
    "activity": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD),
    "batches": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD),
    # Each person's own preferences: anyone who may see the dashboard sets theirs.
    "preferences": Rule(get=SCREEN, post=SCREEN),
    "action": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("action")),
    "bulk": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("batch")),
    # Each person's own notifications: anyone who may see the dashboard manages theirs; another
    # person's subscription or delivery (here: the operator's) answers 404.
    "notifications": Rule(get=SCREEN, post=SCREEN),
    "subscription-test": Rule(
        get=SCREEN_WRONG_METHOD, post=OWNER_ONLY, kwargs=pk_of("subscription")
    ),
    "subscription-toggle": Rule(
        get=SCREEN_WRONG_METHOD, post=OWNER_ONLY, kwargs=pk_of("subscription")
    ),
    "subscription-delete": Rule(
        get=SCREEN_WRONG_METHOD, post=OWNER_ONLY, kwargs=pk_of("subscription")
    ),
    "delivery-status": Rule(get=OWNER_ONLY, post=SCREEN_WRONG_METHOD, kwargs=pk_of("delivery")),
    # --- acting (each needs its kind's permission; GET, where taken, is the confirmation) ---
    "account-sync": Rule(get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("account")),
    "meeting-end": Rule(get=ACTS, post=ACTS, kwargs=pk_of("meeting")),
    "meeting-recover": Rule(get=ACTS, post=ACTS, kwargs=pk_of("deleted_meeting")),
    "meeting-stream-update": Rule(
        get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("meeting"), data=stream_config
    ),
    "meeting-stream-start": Rule(
        get=SCREEN_WRONG_METHOD,
        post=ACTS,
        kwargs=pk_of("meeting"),
        data=lambda o: {"display_name": "Main hall"},
    ),
    "meeting-stream-stop": Rule(get=ACTS, post=ACTS, kwargs=pk_of("meeting")),
    "meeting-fetch-past": Rule(get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("meeting")),
    "past-meeting-participants": Rule(
        get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("past_meeting")
    ),
    "webinar-end": Rule(get=ACTS, post=ACTS, kwargs=pk_of("webinar")),
    "bulk-preview": Rule(get=ACTS, post=SCREEN_WRONG_METHOD, query=bulk_selection),
    "bulk-run": Rule(get=SCREEN_WRONG_METHOD, post=ACTS, data=bulk_selection),
    "bulk-cancel": Rule(get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("batch")),
    # --- two-person approval: anyone who sees the dashboard reads a request; deciding it takes
    # the action's permission (and is never for the requester, tests/test_approvals.py) ------
    "approval": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("approval")),
    "approval-approve": Rule(get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("approval")),
    "approval-reject": Rule(get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("approval")),
    # Only the requester withdraws; the matrix's request was made by none of its users.
    "approval-withdraw": Rule(
        get=SCREEN_WRONG_METHOD,
        post=by_role(LOGIN, DENIED, DENIED, DENIED, DENIED),
        kwargs=pk_of("approval"),
    ),
    # --- connection management: admins only ----------------------------------------------------
    "connections": Rule(get=ADMINS, post=SIGNED_IN_WRONG_METHOD),
    "connection-connect": Rule(get=ADMINS, post=ADMINS, data=lambda o: {"name": "", "plan": ""}),
    "connection-callback": Rule(get=ADMINS, post=SIGNED_IN_WRONG_METHOD, zoom=True),
    "connection": Rule(get=ADMINS, post=SIGNED_IN_WRONG_METHOD, kwargs=pk_of("account")),
    "connection-test": Rule(
        get=SIGNED_IN_WRONG_METHOD, post=ADMINS, kwargs=pk_of("account"), zoom=True
    ),
    "connection-disconnect": Rule(get=ADMINS, post=ADMINS, kwargs=pk_of("account"), zoom=True),
    "connection-reconnect": Rule(get=ADMINS, post=ADMINS, kwargs=pk_of("account"), zoom=True),
    "connection-webhook-secret": Rule(
        get=SIGNED_IN_WRONG_METHOD, post=ADMINS, kwargs=pk_of("account")
    ),
}


def url_names():
    """(route, name) of every URL outside the admin and static files."""

    def walk(patterns, prefix="", namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = ":".join(x for x in (namespace, p.namespace or "") if x)
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                name = f"{namespace}:{p.name}" if namespace and p.name else p.name
                yield prefix + str(p.pattern), name

    for route, name in walk(get_resolver().url_patterns):
        if route.startswith(("admin/", "static/", "^static/")) or (name or "").startswith("admin:"):
            continue
        yield route, name


def test_every_url_has_an_entry_in_the_matrix():
    found = list(url_names())
    unnamed = [route for route, name in found if not name]
    missing = sorted({name for _, name in found if name and name not in MATRIX})
    stale = sorted(set(MATRIX) - {name for _, name in found})

    assert not unnamed, f"give these URLs a name (the matrix keys on it): {unnamed}"
    assert not missing, (
        f"add these URL names to MATRIX in tests/test_authz_matrix.py, saying who may use them: "
        f"{missing}"
    )
    assert not stale, f"these MATRIX entries name no URL any more; remove them: {stale}"


@dataclass
class Objects:
    account: ZoomAccount
    meeting: Meeting
    deleted_meeting: Meeting
    webinar: Webinar
    past_meeting: PastMeeting
    action: Action
    batch: Batch
    approval: Approval
    subscription: Subscription
    delivery: Delivery


@pytest.fixture
def fast_passwords(settings):
    # 5 users a test x 200 tests: Django's default hasher would spend minutes hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def objects(db, operator):
    from meetings.zoom.sandbox import (
        DEFAULT_ACCOUNT_ID,
        DEFAULT_S2S_CLIENT_ID,
        DEFAULT_S2S_CLIENT_SECRET,
    )

    account = ZoomAccount.objects.create(
        name="Matrix account",
        kind=ZoomAccount.Kind.SERVER_TO_SERVER,
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=DEFAULT_S2S_CLIENT_ID,
        client_secret=DEFAULT_S2S_CLIENT_SECRET,
    )
    meeting = Meeting.objects.create(
        account=account, zoom_id=85746065432, topic="Matrix meeting", status=MeetingStatus.STARTED
    )
    deleted = Meeting.objects.create(
        account=account, zoom_id=85746065433, topic="Deleted", status=MeetingStatus.DELETED
    )
    webinar = Webinar.objects.create(
        account=account, zoom_id=91234567890, topic="Matrix webinar", status=MeetingStatus.STARTED
    )
    past = PastMeeting.objects.create(
        account=account, meeting=meeting, uuid="JbkqFkfqQ0e7+CZluSnc1g==", zoom_id=meeting.zoom_id
    )
    action = Action.objects.create(
        account=account,
        kind=ActionKind.END_MEETING,
        source=ActionSource.DASHBOARD,
        state=ActionState.SUCCEEDED,
        target_type="meeting",
        target_id=1,
    )
    batch = Batch.objects.create(kind=ActionKind.END_MEETING, account=account, total=1)
    Action.objects.create(
        account=account,
        kind=ActionKind.END_MEETING,
        source=ActionSource.BULK,
        state=ActionState.QUEUED,
        target_type="meeting",
        target_id=2,
        batch=batch,
    )
    awaiting = Action.objects.create(
        account=account,
        kind=ActionKind.END_WEBINAR,
        source=ActionSource.DASHBOARD,
        state=ActionState.AWAITING,
        target_type="webinar",
        target_id=webinar.zoom_id,
    )
    approval = Approval.objects.create(
        kind=ActionKind.END_WEBINAR,
        account=account,
        action=awaiting,
        expires_at=now() + timedelta(hours=1),
    )
    subscription = Subscription.objects.create(
        user=operator, kinds=",action_failed,", channel=Channel.EMAIL
    )
    delivery = Delivery.objects.create(
        user=operator, subscription=subscription, kind="test", title="t", channel="email"
    )
    return Objects(
        account, meeting, deleted, webinar, past, action, batch, approval, subscription, delivery
    )


def outcome(expected, response, login_url):
    """None if `response` meets `expected`, else what it was."""
    status = response.status_code
    location = response.get("Location", "")
    to_login = status == 302 and location.startswith(login_url)
    if expected == HEALTH:  # 503 is /healthz saying a dependency is down, not a crash
        return None if status in (200, 503) else str(status)
    if status >= 500:
        return f"{status} (a server error)"
    if expected == LOGIN:
        met = to_login
    elif expected == OK:
        met = (200 <= status < 400 or status == 400) and not to_login
    elif expected == REDIRECT:
        met = 300 <= status < 400
    else:
        met = status == expected
    return None if met else f"{status} {location}".strip()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "name", sorted(name for _, name in url_names() if name in MATRIX) or ["(no urls)"]
)
def test_url_answers_each_role_as_the_matrix_says(
    name, role, client, objects, fast_passwords, request
):
    rule = MATRIX[name]
    if rule.zoom:
        request.getfixturevalue("zoom_sandbox")
    if role != "anonymous":
        user = request.getfixturevalue("admin_user" if role == "admin" else role)
        client.force_login(user)
    url = reverse(name, kwargs=rule.kwargs(objects) if rule.kwargs else None)
    login_url = reverse("login")

    problems = []
    get = client.get(url, rule.query(objects) if rule.query else None)
    if (seen := outcome(rule.get[role], get, login_url)) is not None:
        problems.append(f"GET {url} as {role}: expected {rule.get[role]}, got {seen}")
    post = client.post(url, rule.data(objects) if rule.data else {})
    if (seen := outcome(rule.post[role], post, login_url)) is not None:
        problems.append(f"POST {url} as {role}: expected {rule.post[role]}, got {seen}")

    assert not problems, "\n".join(problems)
