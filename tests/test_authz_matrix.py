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
from django.contrib.auth import get_user_model
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
# A person's own things (their notification subscriptions): another person's answer 404.
SOMEONE_ELSES = by_role(LOGIN, DENIED, 404, 404, 404)
# One's own second factor, password and sessions (allauth): anyone signed in, for themselves.
OWN = SIGNED_IN
OWN_NOTHING_YET = by_role(LOGIN, 404, 404, 404, 404)  # e.g. remove an authenticator one lacks
OWN_WRONG_METHOD = SIGNED_IN_WRONG_METHOD
NOT_FOUND = 404


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


def a_schedule(o, target="meeting"):
    from datetime import timedelta

    from django.utils.timezone import now

    from meetings import automation

    row = o.webinar if target == "webinar" else o.meeting
    return automation.schedule(
        account=o.account,
        target_type=target,
        target_id=row.zoom_id,
        topic=row.topic,
        steps=["end"],
        run_at=now() + timedelta(hours=1),
    )


def schedule_form(o):
    from datetime import timedelta

    from django.utils.timezone import now

    at = (now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    return {"schedule-run_at": at, "schedule-steps": ["end"]}


def a_preset(o):
    from meetings.models import StreamPreset

    preset, _ = StreamPreset.objects.get_or_create(
        account=o.account,
        name="Matrix preset",
        defaults={
            "stream_url": "rtmp://live.example.com/app",
            "stream_key": "matrix-preset-key-1",
            "page_url": "https://example.com/live",
        },
    )
    return preset


def preset_choice(o):
    return {"preset": a_preset(o).pk}


def a_trigger(o):
    from meetings.models import Trigger

    return Trigger.objects.create(
        account=o.account, target_type="meeting", target_id=o.meeting.zoom_id, preset=a_preset(o)
    )


def a_policy(o):
    from meetings.models import Policy

    return Policy.objects.get_or_create(account=o.account, kind=Policy.Kind.END_OVERDUE)[0]


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
    # --- allauth: second factor, sessions, single sign-on (meetings/signin.py, meetings/sso/) ---
    # Its own address for the sign-in page and Django's sign-out view (accounts/logout/).
    "account_login": Rule(get=everyone(OK), post=everyone(OK)),
    "account_logout": Rule(get=everyone(NOT_ALLOWED), post=everyone(REDIRECT)),
    # Signing up is closed (accounts are made by admins or by a first single sign-on): the page
    # says so.
    "account_signup": Rule(get=everyone(OK), post=everyone(OK)),
    "account_inactive": Rule(get=everyone(OK), post=everyone(NOT_ALLOWED)),
    "account_email_verification_sent": Rule(get=everyone(OK), post=everyone(NOT_ALLOWED)),
    # A bad key: the page says the link is invalid (GET); posting it finds nothing.
    "account_confirm_email": Rule(
        get=everyone(OK), post=everyone(NOT_FOUND), kwargs=lambda o: {"key": "not-a-key"}
    ),
    "account_reset_password": Rule(get=everyone(OK), post=everyone(OK)),
    "account_reset_password_done": Rule(get=everyone(OK), post=everyone(NOT_ALLOWED)),
    "account_reset_password_from_key": Rule(
        get=everyone(OK),
        post=everyone(OK),
        kwargs=lambda o: {"uidb36": "1", "key": "not-a-key"},
    ),
    "account_reset_password_from_key_done": Rule(get=everyone(OK), post=everyone(NOT_ALLOWED)),
    "account_change_password": Rule(get=OWN, post=OWN),
    "account_set_password": Rule(get=OWN, post=OWN),
    "account_email": Rule(get=OWN, post=OWN),
    "account_reauthenticate": Rule(get=OWN, post=OWN),
    "account_request_reauthentication_code": Rule(get=OWN, post=OWN),
    "account_confirm_reauthentication_code": Rule(get=OWN, post=OWN),
    # Steps of a sign-in in progress: with none, back to the sign-in page (or the overview).
    "account_confirm_login_code": Rule(get=SIGNED_IN, post=SIGNED_IN),
    "mfa_authenticate": Rule(get=SIGNED_IN, post=SIGNED_IN),
    "mfa_index": Rule(get=OWN, post=OWN_WRONG_METHOD),
    "mfa_activate_totp": Rule(get=OWN, post=OWN),
    "mfa_deactivate_totp": Rule(get=OWN_NOTHING_YET, post=OWN_NOTHING_YET),
    "mfa_view_recovery_codes": Rule(get=OWN_NOTHING_YET, post=OWN_WRONG_METHOD),
    "mfa_generate_recovery_codes": Rule(get=OWN, post=OWN),
    "mfa_download_recovery_codes": Rule(get=OWN_NOTHING_YET, post=OWN_NOTHING_YET),
    "mfa_list_webauthn": Rule(get=OWN, post=OWN_WRONG_METHOD),
    "mfa_add_webauthn": Rule(get=OWN, post=OWN),
    "mfa_reauthenticate": Rule(get=OWN, post=OWN),
    "mfa_reauthenticate_webauthn": Rule(get=OWN, post=OWN),
    "mfa_edit_webauthn": Rule(
        get=OWN_NOTHING_YET, post=OWN_NOTHING_YET, kwargs=lambda o: {"pk": 999999}
    ),
    "mfa_remove_webauthn": Rule(
        get=OWN_NOTHING_YET, post=OWN_NOTHING_YET, kwargs=lambda o: {"pk": 999999}
    ),
    "usersessions_list": Rule(get=OWN, post=OWN),
    "socialaccount_connections": Rule(get=OWN, post=OWN),
    "socialaccount_login_cancelled": Rule(get=everyone(OK), post=everyone(NOT_ALLOWED)),
    # The single sign-on failure page answers 401, as allauth's does.
    "socialaccount_login_error": Rule(get=everyone(UNAUTHORIZED), post=everyone(NOT_ALLOWED)),
    "socialaccount_signup": Rule(get=everyone(LOGIN), post=everyone(LOGIN)),
    # Single sign-on is not set up in this matrix: its addresses are not there (tests/test_sso.py
    # signs in through them).
    "sso_login": Rule(get=everyone(NOT_FOUND), post=everyone(NOT_FOUND)),
    "sso_callback": Rule(get=everyone(NOT_FOUND), post=everyone(NOT_FOUND)),
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
    # person's subscription or delivery answers 404 (the owner's own: tests/test_notifications).
    "notifications": Rule(get=SCREEN, post=SCREEN),
    "subscription-test": Rule(
        get=SCREEN_WRONG_METHOD, post=SOMEONE_ELSES, kwargs=pk_of("subscription")
    ),
    "subscription-toggle": Rule(
        get=SCREEN_WRONG_METHOD, post=SOMEONE_ELSES, kwargs=pk_of("subscription")
    ),
    "subscription-delete": Rule(
        get=SCREEN_WRONG_METHOD, post=SOMEONE_ELSES, kwargs=pk_of("subscription")
    ),
    "delivery-status": Rule(get=SOMEONE_ELSES, post=SCREEN_WRONG_METHOD, kwargs=pk_of("delivery")),
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
    "meeting-stream-preset": Rule(
        get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("meeting"), data=preset_choice
    ),
    "webinar-end": Rule(get=ACTS, post=ACTS, kwargs=pk_of("webinar")),
    "webinar-stream-update": Rule(
        get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("webinar"), data=stream_config
    ),
    "webinar-stream-start": Rule(
        get=SCREEN_WRONG_METHOD,
        post=ACTS,
        kwargs=pk_of("webinar"),
        data=lambda o: {"display_name": "Main hall"},
    ),
    "webinar-stream-stop": Rule(get=ACTS, post=ACTS, kwargs=pk_of("webinar")),
    "webinar-stream-preset": Rule(
        get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=pk_of("webinar"), data=preset_choice
    ),
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
    # --- scheduled and automatic actions (issue 16) --------------------------------------------
    "meeting-automation": Rule(get=SCREEN, post=ACTS, kwargs=pk_of("meeting"), data=schedule_form),
    "webinar-automation": Rule(get=SCREEN, post=ACTS, kwargs=pk_of("webinar"), data=schedule_form),
    "schedule-edit": Rule(
        get=ACTS,
        post=ACTS,
        kwargs=lambda o: {"pk": a_schedule(o).pk},
        data=schedule_form,
    ),
    "schedule-cancel": Rule(
        get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=lambda o: {"pk": a_schedule(o).pk}
    ),
    "meeting-trigger-add": Rule(
        get=SCREEN_WRONG_METHOD,
        post=ACTS,
        kwargs=pk_of("meeting"),
        data=lambda o: {"trigger-preset": a_preset(o).pk},
    ),
    "webinar-trigger-add": Rule(
        get=SCREEN_WRONG_METHOD,
        post=ACTS,
        kwargs=pk_of("webinar"),
        data=lambda o: {"trigger-preset": a_preset(o).pk},
    ),
    "trigger-remove": Rule(
        get=SCREEN_WRONG_METHOD, post=ACTS, kwargs=lambda o: {"pk": a_trigger(o).pk}
    ),
    "connection-policies": Rule(get=SCREEN, post=SCREEN_WRONG_METHOD, kwargs=pk_of("account")),
    "policy-edit": Rule(
        get=SCREEN_WRONG_METHOD,
        post=ADMINS,
        kwargs=lambda o: {"pk": a_policy(o).pk},
        data=lambda o: {f"p{a_policy(o).pk}-enabled": "on", f"p{a_policy(o).pk}-minutes": "15"},
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


def make_objects(name, *, offset=0, **credentials):
    """A Zoom account named NAME and one of each thing a URL can point at, on it: topics start
    with NAME's first word, so a page showing another account's rows is caught by its words."""
    word = name.split()[0]
    account = ZoomAccount.objects.create(
        name=name, kind=ZoomAccount.Kind.SERVER_TO_SERVER, **credentials
    )
    meeting = Meeting.objects.create(
        account=account,
        zoom_id=85746065432 + offset,
        topic=f"{word} meeting",
        status=MeetingStatus.STARTED,
    )
    deleted = Meeting.objects.create(
        account=account,
        zoom_id=85746065433 + offset,
        topic=f"{word} deleted",
        status=MeetingStatus.DELETED,
    )
    webinar = Webinar.objects.create(
        account=account,
        zoom_id=91234567890 + offset,
        topic=f"{word} webinar",
        status=MeetingStatus.STARTED,
    )
    past = PastMeeting.objects.create(
        account=account,
        meeting=meeting,
        uuid=f"JbkqFkfqQ0e7+CZluSnc{offset}g==",
        zoom_id=meeting.zoom_id,
        topic=f"{word} past",
    )
    action = Action.objects.create(
        account=account,
        kind=ActionKind.END_MEETING,
        source=ActionSource.DASHBOARD,
        state=ActionState.SUCCEEDED,
        target_type="meeting",
        target_id=1,
        topic=f"{word} action",
        client_ip="198.51.100.7",
    )
    batch = Batch.objects.create(kind=ActionKind.END_MEETING, account=account, total=1)
    Action.objects.create(
        account=account,
        kind=ActionKind.END_MEETING,
        source=ActionSource.BULK,
        state=ActionState.QUEUED,
        target_type="meeting",
        target_id=2,
        topic=f"{word} batch",
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
    # Someone's own subscription and delivery: no one else reaches them.
    owner = get_user_model().objects.create_user(f"{word.lower()}-subscriber")
    subscription = Subscription.objects.create(
        user=owner, kinds=",action_failed,", channel=Channel.EMAIL
    )
    delivery = Delivery.objects.create(
        user=owner, subscription=subscription, kind="test", title="t", channel="email"
    )
    return Objects(
        account, meeting, deleted, webinar, past, action, batch, approval, subscription, delivery
    )


@pytest.fixture
def objects(db):
    from meetings.zoom.sandbox import (
        DEFAULT_ACCOUNT_ID,
        DEFAULT_S2S_CLIENT_ID,
        DEFAULT_S2S_CLIENT_SECRET,
    )

    return make_objects(
        "Matrix account",
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=DEFAULT_S2S_CLIENT_ID,
        client_secret=DEFAULT_S2S_CLIENT_SECRET,
    )


@pytest.fixture
def other_objects(db):
    """The same things on a second connection, which the connection-role users may not see."""
    return make_objects(
        "Bravo account",
        offset=1000,
        zoom_account_id="bravo-account",
        client_id="bravo-client",
        client_secret="bravo-client-secret-1",
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


# --- the account dimension: roles on one Zoom connection (issue 15) -----------------------------
#
# A user with no global role and a role on the matrix account only ("granted <role>"): on that
# connection every URL answers as MATRIX says for the global role of the same rank (managing
# connections stays with global admins); on another connection, every URL that names one of its
# objects answers 404 (not 403: that would say it exists), whatever the method, and nothing of it
# is in a list, a fragment, a poll, an export or the admin.

# (An admin role on a connection acts there as an operator: tests/test_access.py.)
GRANTED = ("viewer", "operator")
AS_GLOBAL = {"viewer": "viewer", "operator": "operator"}
NOT_FOUND = 404


def granted_user(role, account, **extra):
    from django.contrib.auth import get_user_model

    from meetings.models import ConnectionGrant

    user = get_user_model().objects.create_user(
        username=f"granted-{role}", password="correct horse battery staple", **extra
    )
    ConnectionGrant.objects.create(user=user, account=account, role=role)
    return user


def on_another_connection(name, expected, names_an_object):
    """What a URL naming another connection's object answers: 404 where its own connection's
    answers or refuses, the method check (405) first as everywhere. Connection management
    refuses everyone but global admins before looking anything up; a bulk selection's meetings
    are looked up among the visible ones (another connection's are "no longer there")."""
    # A connection's policies page is read by whoever sees that connection (not management).
    managing = name.startswith("connection") and name != "connection-policies"
    if not names_an_object or managing:
        return expected
    return NOT_FOUND if expected in (OK, DENIED) else expected


@pytest.mark.parametrize("granted", GRANTED)
@pytest.mark.parametrize(
    "name", sorted(name for _, name in url_names() if name in MATRIX) or ["(no urls)"]
)
def test_url_answers_a_connection_role_on_its_connection_and_404_on_another(
    name, granted, client, objects, other_objects
):
    rule = MATRIX[name]
    client.force_login(granted_user(granted, objects.account))
    login_url = reverse("login")
    others_actions = set(Action.objects.filter(account=other_objects.account).values_list("pk"))
    names_an_object = bool(rule.kwargs) and rule.kwargs(objects) != rule.kwargs(other_objects)

    problems = []
    for objs, where in ((objects, "its connection"), (other_objects, "another connection")):
        url = reverse(name, kwargs=rule.kwargs(objs) if rule.kwargs else None)
        for method, expectations, payload in (
            ("GET", rule.get, rule.query),
            ("POST", rule.post, rule.data),
        ):
            expected = expectations[AS_GLOBAL[granted]]
            if objs is other_objects:
                expected = on_another_connection(name, expected, names_an_object)
            send = client.get if method == "GET" else client.post
            answer = send(url, payload(objs) if payload else ({} if method == "POST" else None))
            if (seen := outcome(expected, answer, login_url)) is not None:
                problems.append(
                    f"{method} {url} on {where} as granted {granted}: expected {expected}, "
                    f"got {seen}"
                )

    assert not problems, "\n".join(problems)
    # Nothing was requested on the connection the user may not see.
    now_there = set(Action.objects.filter(account=other_objects.account).values_list("pk"))
    assert now_there == others_actions


def test_every_list_fragment_and_poll_shows_the_granted_connection_only(
    client, objects, other_objects
):
    client.force_login(granted_user("operator", objects.account))
    htmx = {"HTTP_HX_REQUEST": "true"}
    pages = [
        (reverse("overview"), {}, {}),
        (reverse("overview"), {"part": "accounts"}, htmx),
        (reverse("overview"), {"part": "live"}, htmx),
        (reverse("meetings"), {}, {}),
        (reverse("meetings"), {"q": "meeting"}, {**htmx, "HTTP_HX_TARGET": "results"}),
        (reverse("webinars"), {}, {}),
        (reverse("past-meetings"), {}, {}),
        (reverse("activity"), {}, {}),
        (reverse("activity"), {"account": other_objects.account.pk}, {}),
        (reverse("batches"), {}, {}),
    ]
    for url, query, headers in pages:
        html = client.get(url, query, **headers).content.decode()
        assert "Bravo" not in html, f"{url} {query} shows another connection's rows"
    # The lists do show the connection's own rows.
    assert "Matrix meeting" in client.get(reverse("meetings")).content.decode()
    assert "Matrix webinar" in client.get(reverse("webinars")).content.decode()
    assert "Matrix action" in client.get(reverse("activity")).content.decode()
    assert "Matrix account" in client.get(reverse("overview")).content.decode()

    # The badges poll answers for visible meetings only.
    badges = client.get(
        reverse("meeting-badges"), {"id": [objects.meeting.pk, other_objects.meeting.pk]}, **htmx
    ).content.decode()
    assert f'id="mstatus-{objects.meeting.pk}"' in badges
    assert f'id="mstatus-{other_objects.meeting.pk}"' not in badges

    # A meeting or webinar opened by its Zoom id: found on the granted connection only.
    ok = client.get(reverse("meeting", args=[objects.meeting.zoom_id]))
    assert ok.status_code == 302 and ok["Location"] == reverse("meeting", args=[objects.meeting.pk])
    assert client.get(reverse("meeting", args=[other_objects.meeting.zoom_id])).status_code == 404
    assert client.get(reverse("webinar", args=[other_objects.webinar.zoom_id])).status_code == 404


def test_a_viewer_of_all_and_operator_of_one_connection_acts_there_only(
    client, viewer, objects, other_objects
):
    from meetings.models import ConnectionGrant

    ConnectionGrant.objects.create(user=viewer, account=objects.account, role="operator")
    client.force_login(viewer)

    # Both connections are visible; End is offered on the granted one only.
    here = client.get(reverse("meeting", args=[objects.meeting.pk])).content.decode()
    there = client.get(reverse("meeting", args=[other_objects.meeting.pk]))
    assert there.status_code == 200
    assert "End meeting" in here
    assert "End meeting" not in there.content.decode()

    # Acting on the other one is refused with a message that names the connection.
    refused = client.post(reverse("meeting-end", args=[other_objects.meeting.pk]))
    assert refused.status_code == 403
    assert "not allowed to end meetings on the Zoom connection “Bravo account”" in (
        refused.content.decode()
    )
    done = client.post(reverse("meeting-end", args=[objects.meeting.pk]))
    assert done.status_code == 302
    assert (
        Action.objects.get(
            account=objects.account, target_id=objects.meeting.zoom_id, kind="end_meeting"
        ).requested_by
        == viewer
    )

    # A bulk selection across both ends the granted connection's meeting; the review skips
    # the other one, and the run acts on the granted connection.
    review = client.get(
        reverse("bulk-preview"),
        {"kind": "end_meeting", "ids": [other_objects.meeting.pk, objects.meeting.pk]},
    )
    assert review.status_code == 200
    # (the granted one's end was asked for above: it is already requested)
    reasons = {
        account: [item.reason for item, _ in rows] for account, rows, _ in review.context["groups"]
    }
    assert reasons[other_objects.account] == ["you may not act on this Zoom connection"]
    assert reasons[objects.account][0].startswith("already requested")


def test_the_admin_lists_and_exports_the_granted_connection_only(client, objects, other_objects):
    user = granted_user("viewer", objects.account, is_staff=True)
    client.force_login(user)

    for model, own in (
        ("meeting", "Matrix meeting"),
        ("webinar", "Matrix webinar"),
        ("pastmeeting", "Matrix past"),
        ("action", "Matrix action"),
        ("batch", "Matrix account"),
        ("zoomaccount", "Matrix account"),
    ):
        page = client.get(reverse(f"admin:meetings_{model}_changelist"))
        assert page.status_code == 200, model
        html = page.content.decode()
        assert own in html, model
        assert "Bravo" not in html, f"the admin's {model} list shows another connection"

    # Another connection's rows answer as rows that do not exist.
    for model, obj in (
        ("meeting", other_objects.meeting),
        ("webinar", other_objects.webinar),
        ("action", other_objects.action),
        ("batch", other_objects.batch),
        ("zoomaccount", other_objects.account),
    ):
        page = client.get(reverse(f"admin:meetings_{model}_change", args=[obj.pk]))
        assert page.status_code == 302 and page["Location"] == reverse("admin:index"), model
    assert (
        client.get(reverse("admin:meetings_meeting_change", args=[objects.meeting.pk])).status_code
        == 200
    )

    export = b"".join(client.get(reverse("admin:meetings_action_export")).streaming_content)
    assert b"Matrix action" in export and b"Bravo" not in export
    # A viewer does not see where the operators were.
    assert b"198.51.100.7" not in export and b"client_ip" not in export.split(b"\r\n")[0]


def test_zoomctl_acts_with_the_users_rights_on_each_connection(objects, other_objects):
    import pwd
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    def zoomctl(*args):
        err = StringIO()
        try:
            call_command("zoomctl", *args, stdout=StringIO(), stderr=err)
        except CommandError as e:
            return str(e)
        return ""

    operator = granted_user("operator", objects.account)
    meeting_id = str(objects.meeting.zoom_id)

    # The other connection is not found (its name is not even listed), as a 404.
    refused = zoomctl(
        "end-meeting", meeting_id, "--user", operator.username, "--account", "Bravo account"
    )
    assert "No Zoom account is named 'Bravo account' (accounts: Matrix account)" in refused
    # With one visible connection, it is the one acted on.
    assert zoomctl("end-meeting", meeting_id, "--user", operator.username) == ""
    action = Action.objects.get(target_id=objects.meeting.zoom_id, kind="end_meeting")
    assert (action.account, action.requested_by, action.source) == (
        objects.account,
        operator,
        "cli",
    )
    # The operating system user who ran it, beside the --user it acted as.
    assert action.os_user.startswith(pwd.getpwuid(__import__("os").getuid()).pw_name)

    viewer = granted_user("viewer", objects.account)
    refused = zoomctl("end-meeting", meeting_id, "--user", viewer.username)
    assert "may not do that on 'Matrix account'" in refused
    assert "needs the meetings.end_meeting permission" in refused
