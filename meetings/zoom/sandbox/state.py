"""
The sandbox's in-memory Zoom: accounts, apps, tokens, users, meetings, webinars, past instances,
live streams, rate-limit windows, faults, and what the tests read back (request log, counters,
webhook deliveries, contract violations).

Everything is guarded by one re-entrant lock (`state.lock`): handlers hold it while they read
and change the world, never while they sleep. Time comes from `state.now()` (wall clock plus an
offset) so tests can jump ahead with `advance_clock(seconds)` instead of sleeping through token
expiry, authorization-code expiry or next_page_token expiry.

Meetings, webinars, users and past instances are plain dicts (what `add_meeting` returns and
`state.meetings[id]` holds), with some keys Zoom never shows (host_locked, livestreaming, ...):
`meeting_json()` and friends render what Zoom sends.

Meeting status: "waiting" (scheduled, not running), "started" (live), "deleted" (recoverable for
7 days, as in Zoom's web portal), "ended" (an instant meeting that ended: gone for good). Zoom's
GET /meetings/{id} only ever says waiting or started; the others answer 404 code 3001.
"""

import base64
import collections
import gc
import math
import random
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEFAULT_ACCOUNT_ID = "sandbox-account"
DEFAULT_OAUTH_CLIENT_ID = "sandbox-oauth-client"
DEFAULT_OAUTH_CLIENT_SECRET = "sandbox-oauth-secret"
DEFAULT_S2S_CLIENT_ID = "sandbox-s2s-client"
DEFAULT_S2S_CLIENT_SECRET = "sandbox-s2s-secret"
DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"

# Classic scopes: what apps made before granular scopes (2024) were granted.
ADMIN_SCOPES = (
    "meeting:read:admin",
    "meeting:write:admin",
    "webinar:read:admin",
    "webinar:write:admin",
    "user:read:admin",
    # The Dashboard's live meetings (GET /metrics/meetings), which a sync on Business uses.
    "dashboard_meetings:read:admin",
)
CLASSIC_ADMIN_SCOPES = ADMIN_SCOPES
USER_SCOPES = ("meeting:read", "meeting:write", "webinar:read", "webinar:write", "user:read")
# Granular scopes, one per operation: what an app made on today's Marketplace gets (every new
# Server-to-Server app among them; Zoom's "OAuth scopes" overview). The sandbox's default apps
# have these; `add_app(scopes=ADMIN_SCOPES)` makes an older app.
GRANULAR_ADMIN_SCOPES = (
    "meeting:update:status:admin",
    "meeting:read:meeting:admin",
    "meeting:read:list_meetings:admin",
    "meeting:read:past_meeting:admin",
    "meeting:read:list_past_participants:admin",
    "meeting:read:livestream:admin",
    "meeting:update:livestream:admin",
    "meeting:update:livestream_status:admin",
    "webinar:update:status:admin",
    "webinar:read:webinar:admin",
    "webinar:read:list_webinars:admin",
    "webinar:read:list_past_instances:admin",
    "webinar:read:livestream:admin",
    "webinar:update:livestream:admin",
    "webinar:update:livestream_status:admin",
    "user:read:list_users:admin",
    "user:read:user:admin",
    "dashboard:read:list_meetings:admin",
)
GRANULAR_USER_SCOPES = tuple(
    s.removesuffix(":admin")
    for s in GRANULAR_ADMIN_SCOPES
    if s not in ("user:read:list_users:admin", "dashboard:read:list_meetings:admin")
)

# Requests per window for each rate-limit label, by plan (Zoom's published table, NOTES.md); the
# per-day figures are DAILY_LIMITS below (None here). The window is a second, except for
# "resource" (Zoom's Resource-intensive label, the Dashboard's), which Zoom counts per minute
# (LABEL_WINDOWS).
RATE_LIMITS = {
    "free": {"light": (4, None), "medium": (2, None), "heavy": (1, None), "resource": (10, None)},
    "pro": {"light": (30, None), "medium": (20, None), "heavy": (10, None), "resource": (10, None)},
    "business": {
        "light": (80, None),
        "medium": (60, None),
        "heavy": (40, None),
        "resource": (20, None),
    },
}
LABEL_NAMES = {
    "light": "Light",
    "medium": "Medium",
    "heavy": "Heavy",
    "resource": "Resource-intensive",
}
LABEL_WINDOWS = {"resource": 60.0}
# The daily caps of the plans that have them, requests per label and UTC day: "the figures
# commonly quoted" (issue 11; NOTES.md's table). A setting of the sandbox (`daily_limits=`,
# `set_daily_limit`, POST /_sandbox/rate_limits {label, per_day}), so a test can run a Free
# account's whole day in seconds with small caps.
DAILY_LIMITS = {"free": {"light": 6000, "medium": 2000, "heavy": 1000, "resource": 30000}}

ACCESS_CODE_TTL = 300  # Zoom's authorization codes live five minutes.
PAGE_TOKEN_TTL = 15 * 60  # next_page_token expires after 15 minutes (Zoom's List meetings docs).
RECOVER_WINDOW = 7 * 24 * 3600  # Deleted meetings can be recovered for seven days.
LIVESTREAM_START_INTERVAL = 30.0  # "retry making a new request after 30 seconds" (spec, 429).
# After the 204 to an end by the API, Zoom may still show the meeting (or webinar) started for
# some seconds before it ends and its *.ended event is sent (NOTES.md, "Status lags": "do not call
# an end failed because the first look disagrees"). Zoom documents no figure: the default is long
# enough that a client's first look, made at once, always disagrees. 0 ends at once.
END_STATUS_LAG_SECONDS = 2.0
# announce_world() reports a meeting as just ended when its last instance ended this recently.
RECENT_END_SECONDS = 24 * 3600
REQUEST_LOG_LIMIT = 50_000


def iso(ts):
    """Zoom's date-time format: whole seconds, UTC, a Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uuid(rng, *, slash=None):
    """A meeting-instance UUID as Zoom makes them: 16 random bytes in standard base64.

    slash="leading" or "double" forces the awkward cases Zoom's docs single out (a UUID that
    starts with "/" or contains "//" must be double-encoded in a path).
    """
    text = base64.b64encode(rng.randbytes(16)).decode()
    if slash == "leading":
        text = "/" + text[1:]
    elif slash == "double":
        text = text[:5] + "//" + text[7:]
    return text


def new_user_id(rng):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(rng.choice(alphabet) for _ in range(22))


@dataclass
class LoggedRequest:
    """One request the sandbox answered. Iterates as (method, path, status, time, headers).

    `path` is the raw request path as sent (still percent-encoded, so tests can see double
    encoding); `headers` never includes Authorization; `json` is the parsed JSON body with any
    stream_key masked, or None; OAuth form bodies are not kept at all (they carry secrets).
    """

    method: str
    path: str
    status: int
    time: float
    headers: dict
    query: dict = field(default_factory=dict)
    json: object = None
    content_type: str = ""
    seq: int = 0
    template: str = ""
    duration_ms: float = 0.0

    def __iter__(self):
        return iter((self.method, self.path, self.status, self.time, self.headers))

    def __getitem__(self, index):
        return (self.method, self.path, self.status, self.time, self.headers)[index]

    def as_json(self):
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "template": self.template,
            "status": self.status,
            "time": self.time,
            "headers": self.headers,
            "query": self.query,
            "json": self.json,
            "content_type": self.content_type,
            "duration_ms": round(self.duration_ms, 2),
        }


@dataclass
class App:
    client_id: str
    client_secret: str
    account_id: str
    kind: str  # "oauth" | "server_to_server"
    redirect_uris: list | None
    scopes: tuple
    name: str = "Sandbox app"
    # The app's event subscription: where its events go, and the secret token it signs them
    # with. Each Zoom app has its own secret token (Marketplace → Feature → Event
    # subscriptions), so an organisation with two apps gets each app's events signed with that
    # app's token.
    webhook_url: str | None = None
    webhook_secret: str = ""


@dataclass
class Grant:
    """One user's consent to an OAuth app (or an S2S app's credentials): what tokens hang off."""

    id: int
    client_id: str
    account_id: str
    user_id: str | None
    scopes: tuple
    kind: str
    refresh_token: str | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    grant_id: int
    expires_at: float


@dataclass
class Faults:
    error_rate: float = 0.0
    latency_ms: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 3000.0
    # Delay after an API request was carried out, before its answer leaves: Zoom has done it,
    # the client does not know yet (a worker killed then, or a client timing out then).
    answer_delay_ms: float = 0.0
    down: bool = False
    down_mode: str = "refuse"  # "refuse": connections refused; "503": every answer a 503 page
    down_until: float | None = None
    # Zoom has been reported to answer 204 to "end" without ending the meeting (NOTES.md).
    silent_end_rate: float = 0.0
    # Injected 5xx answers as a load balancer's HTML page instead of Zoom's JSON error.
    html_errors: bool = False
    # The first /v2 request for each method and path gets a server error, its repeats go
    # through: every client path must retry, whatever order concurrent requests arrive in.
    first_try_errors: bool = False

    def as_json(self):
        return {
            "error_rate": self.error_rate,
            "html_errors": self.html_errors,
            "latency_ms": self.latency_ms,
            "slow_rate": self.slow_rate,
            "slow_ms": self.slow_ms,
            "answer_delay_ms": self.answer_delay_ms,
            "down": self.down,
            "down_mode": self.down_mode,
            "silent_end_rate": self.silent_end_rate,
            "first_try_errors": self.first_try_errors,
        }


class SandboxError(Exception):
    """A Zoom error answer: HTTP status, Zoom's code and message, optional field errors."""

    def __init__(self, status, code, message, errors=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self):
        body = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class SandboxState:
    """The whole emulated Zoom. Construct, then `reset()` to get the default apps and account."""

    def __init__(
        self, *, seed=None, plan="pro", token_ttl=3600, latency_ms=0, clock=None, daily_limits=None
    ):
        self.lock = threading.RLock()
        # The wall clock the sandbox's time runs on (time.time unless a test injects one);
        # `advance_clock` moves it on from there.
        self.clock = clock or time.time
        self.clock_offset = 0.0
        self.configured_daily_limits = {
            plan_name: dict(caps) for plan_name, caps in (daily_limits or DAILY_LIMITS).items()
        }
        self.default_plan = plan
        self.token_ttl = token_ttl
        self.base_latency_ms = latency_ms
        self.seed = seed
        self.contract_checking = False
        self.contract_violations = []
        self.webhook_deliveries = []
        self.webhook_sender = None  # set by Sandbox: has .send(url, secret, body_dict)
        self.on_down_change = None  # set by Sandbox: called with (down, mode, down_for)
        self.reset(seed=seed)

    # --- time ------------------------------------------------------------------------------
    def now(self):
        return self.clock() + self.clock_offset

    def advance_clock(self, seconds):
        """Jump the sandbox's clock forward: tokens, codes and page tokens age without sleeping."""
        with self.lock:
            self.clock_offset += seconds

    # --- lifecycle -------------------------------------------------------------------------
    def reset(self, *, seed=None, plan=None, token_ttl=None):
        """Forget everything but configuration; register the default account and apps (the
        default Server-to-Server app keeps its event subscription)."""
        if gc.get_freeze_count():
            gc.unfreeze()  # the world seed.settle_heap froze is about to be dropped
        with self.lock:
            default_app = getattr(self, "apps", {}).get(DEFAULT_S2S_CLIENT_ID)
            subscription = (
                (default_app.webhook_url, default_app.webhook_secret) if default_app else None
            )
            self.rng = random.Random(seed)
            self.seed = seed
            if plan is not None:
                self.default_plan = plan
            if token_ttl is not None:
                self.token_ttl = token_ttl
            self.clock_offset = 0.0
            self.accounts = {}
            self.apps = {}
            self.grants = {}
            self.access_tokens = {}
            self.refresh_tokens = {}
            self.auth_codes = {}
            self.s2s_tokens = {}
            self.users = {}
            self.users_by_email = {}
            self.meetings = {}
            self.meetings_by_host = collections.defaultdict(dict)
            self.webinars = {}
            self.webinars_by_host = collections.defaultdict(dict)
            self.past_webinar_instances = collections.defaultdict(list)
            self.past_instances = collections.defaultdict(list)
            self.instances_by_uuid = {}
            self.page_tokens = {}
            self.page_token_ttl = PAGE_TOKEN_TTL
            self.rate_windows = collections.defaultdict(deque)
            self.daily_counts = Counter()
            self.rate_overrides = {}
            self.daily_limits = {p: dict(c) for p, c in self.configured_daily_limits.items()}
            self.livestream_start_interval = LIVESTREAM_START_INTERVAL
            self.livestream_starts = {}
            self.end_status_lag = END_STATUS_LAG_SECONDS
            self.pending_ends = {}  # (kind, id) -> when the API's end takes effect
            self.faults = Faults()
            self.first_tries = set()
            self.fault_rng = random.Random(seed)
            self.requests = deque(maxlen=REQUEST_LOG_LIMIT)
            self.request_seq = 0
            self.counters = Counter()
            self.contract_violations = []
            self.webhook_deliveries = []
            self._grant_seq = 0
            self._used_ids = set()
            self.add_account(DEFAULT_ACCOUNT_ID, plan=self.default_plan)
            self.add_app(
                DEFAULT_OAUTH_CLIENT_ID,
                DEFAULT_OAUTH_CLIENT_SECRET,
                DEFAULT_ACCOUNT_ID,
                kind="oauth",
                name="zoomadmin (sandbox OAuth app)",
            )
            self.add_app(
                DEFAULT_S2S_CLIENT_ID,
                DEFAULT_S2S_CLIENT_SECRET,
                DEFAULT_ACCOUNT_ID,
                kind="server_to_server",
                name="zoomadmin (sandbox Server-to-Server app)",
                webhook_secret=DEFAULT_WEBHOOK_SECRET,
            )
            if subscription is not None:
                self.apps[DEFAULT_S2S_CLIENT_ID].webhook_url = subscription[0]
                self.apps[DEFAULT_S2S_CLIENT_ID].webhook_secret = subscription[1]
            # Zoom has no account without its owner: the S2S "me" and the consent page need one.
            self.add_user(
                email="owner@sandbox.example",
                first_name="Olivia",
                last_name="Owner",
                role_name="Owner",
                user_id="sandboxOwner0000000000A",
            )
        if self.webhook_sender is not None:
            self.webhook_sender.clear()

    # --- accounts and apps -----------------------------------------------------------------
    def add_account(self, account_id, *, plan=None):
        with self.lock:
            account = {"id": account_id, "plan": plan or self.default_plan}
            self.accounts[account_id] = account
            return account

    def set_plan(self, plan, account_id=DEFAULT_ACCOUNT_ID):
        if plan not in RATE_LIMITS:
            raise ValueError(f"plan must be one of {sorted(RATE_LIMITS)}, not {plan!r}")
        with self.lock:
            self.accounts[account_id]["plan"] = plan

    def add_app(
        self,
        client_id,
        client_secret,
        account_id=DEFAULT_ACCOUNT_ID,
        kind="oauth",
        redirect_uris=None,
        scopes=None,
        name="Sandbox app",
        webhook_url=None,
        webhook_secret=None,
    ):
        """Register an OAuth or Server-to-Server app. redirect_uris=None accepts any http(s) URI
        (the demo's callback port varies); a list is Zoom's exact-match allow list. `scopes`:
        granular ones by default (today's Marketplace), or e.g. ADMIN_SCOPES for an older app.
        `webhook_secret`: the app's own secret token (a random one by default)."""
        if kind not in ("oauth", "server_to_server"):
            raise ValueError("kind must be 'oauth' or 'server_to_server'")
        with self.lock:
            if account_id not in self.accounts:
                self.add_account(account_id)
            if scopes is None:
                scopes = GRANULAR_ADMIN_SCOPES
            if isinstance(scopes, str):
                scopes = tuple(scopes.split())
            app = App(
                client_id,
                client_secret,
                account_id,
                kind,
                redirect_uris,
                tuple(scopes),
                name,
                webhook_url=webhook_url or None,
                webhook_secret=webhook_secret or "sbx_whs_" + secrets.token_urlsafe(16),
            )
            self.apps[client_id] = app
            return app

    def remove_app(self, client_id):
        """Delete an app (as deactivating it in the Marketplace): its tokens stop working and
        its credentials answer invalid_client."""
        with self.lock:
            self.apps.pop(client_id, None)
            self.revoke_tokens(client_id=client_id)

    # --- tokens ----------------------------------------------------------------------------
    def _new_grant(self, app, user_id, scopes):
        self._grant_seq += 1
        grant = Grant(self._grant_seq, app.client_id, app.account_id, user_id, scopes, app.kind)
        self.grants[grant.id] = grant
        return grant

    def _issue_access_token(self, grant):
        token = "sbx_at_" + secrets.token_urlsafe(32)
        self.access_tokens[token] = AccessToken(grant.id, self.now() + self.token_ttl)
        return token

    def _issue_refresh_token(self, grant):
        if grant.refresh_token:
            self.refresh_tokens.pop(grant.refresh_token, None)
        token = "sbx_rt_" + secrets.token_urlsafe(32)
        grant.refresh_token = token
        self.refresh_tokens[token] = grant.id
        return token

    def create_authorization_code(self, client_id, user_id, redirect_uri, code_challenge=None):
        with self.lock:
            code = secrets.token_urlsafe(24)
            self.auth_codes[code] = {
                "client_id": client_id,
                "user_id": user_id,
                "redirect_uri": redirect_uri,
                "code_challenge": code_challenge,
                "expires_at": self.now() + ACCESS_CODE_TTL,
            }
            return code

    def exchange_code(self, app, code, redirect_uri, code_verifier):
        """authorization_code grant: single-use code, same redirect_uri, PKCE verifier if a
        challenge was given. Returns the token answer or raises OAuthError."""
        from .oauth import OAuthError, pkce_challenge

        with self.lock:
            entry = self.auth_codes.pop(code, None)
            if entry is None or entry["client_id"] != app.client_id:
                raise OAuthError("invalid_grant", "Invalid authorization code")
            if entry["expires_at"] < self.now():
                raise OAuthError("invalid_grant", "Authorization code has expired")
            if entry["redirect_uri"] != redirect_uri:
                raise OAuthError("invalid_request", "Redirect URI mismatch.")
            challenge = entry["code_challenge"]
            if challenge and (not code_verifier or pkce_challenge(code_verifier) != challenge):
                raise OAuthError("invalid_grant", "Invalid code_verifier")
            grant = self._new_grant(app, entry["user_id"], app.scopes)
            return self._token_answer(grant, refresh=True)

    def refresh(self, app, refresh_token):
        """refresh_token grant. Zoom rotates refresh tokens: the one just used stops working."""
        from .oauth import OAuthError

        with self.lock:
            grant_id = self.refresh_tokens.get(refresh_token)
            grant = self.grants.get(grant_id)
            if grant is None or grant.revoked or grant.client_id != app.client_id:
                raise OAuthError("invalid_grant", "Invalid Token!")
            return self._token_answer(grant, refresh=True)

    def account_credentials(self, app, account_id):
        """account_credentials grant (Server-to-Server OAuth). A new token invalidates the
        previous one for the same credentials, as Zoom has been seen to do."""
        from .oauth import OAuthError

        with self.lock:
            if app.kind != "server_to_server":
                raise OAuthError("unsupported_grant_type", "Unsupported grant type")
            if account_id != app.account_id:
                raise OAuthError("invalid_request", "Invalid account_id")
            previous = self.s2s_tokens.pop(app.client_id, None)
            if previous is not None:
                self.access_tokens.pop(previous, None)
            grant = self._new_grant(app, None, app.scopes)
            answer = self._token_answer(grant, refresh=False)
            self.s2s_tokens[app.client_id] = answer["access_token"]
            return answer

    def _token_answer(self, grant, *, refresh):
        answer = {
            "access_token": self._issue_access_token(grant),
            "token_type": "bearer",
            "expires_in": int(self.token_ttl),
            "scope": " ".join(grant.scopes),
        }
        if refresh:
            answer["refresh_token"] = self._issue_refresh_token(grant)
        return answer

    def revoke_token(self, app, token):
        """/oauth/revoke: revoking either token of a grant ends the whole grant."""
        with self.lock:
            grant_id = self.refresh_tokens.get(token)
            if grant_id is None and token in self.access_tokens:
                grant_id = self.access_tokens[token].grant_id
            grant = self.grants.get(grant_id)
            if grant is None or grant.client_id != app.client_id:
                return False
            self._revoke_grant(grant)
            return True

    def _revoke_grant(self, grant):
        grant.revoked = True
        if grant.refresh_token:
            self.refresh_tokens.pop(grant.refresh_token, None)
        for token, entry in list(self.access_tokens.items()):
            if entry.grant_id == grant.id:
                del self.access_tokens[token]

    def revoke_tokens(self, *, account_id=None, client_id=None, user_id=None):
        """Revoke every grant matching all the given filters (none given: every grant), as a
        user removing the app or an admin deauthorising it. Returns how many were revoked."""
        with self.lock:
            count = 0
            for grant in list(self.grants.values()):
                if grant.revoked:
                    continue
                if account_id is not None and grant.account_id != account_id:
                    continue
                if client_id is not None and grant.client_id != client_id:
                    continue
                if user_id is not None and grant.user_id != user_id:
                    continue
                self._revoke_grant(grant)
                count += 1
            return count

    def expire_access_tokens(self):
        """Make every access token expired now (refresh tokens keep working)."""
        with self.lock:
            now = self.now()
            for entry in self.access_tokens.values():
                entry.expires_at = min(entry.expires_at, now - 1)

    def token_grant(self, token):
        """The grant behind a bearer token, or a SandboxError 401 code 124."""
        with self.lock:
            entry = self.access_tokens.get(token) if token else None
            if entry is None:
                raise SandboxError(401, 124, "Invalid access token.")
            if entry.expires_at <= self.now():
                raise SandboxError(401, 124, "Access token is expired.")
            grant = self.grants[entry.grant_id]
            if grant.revoked:
                raise SandboxError(401, 124, "Invalid access token.")
            return grant

    # --- users -----------------------------------------------------------------------------
    def add_user(
        self,
        email=None,
        first_name="Sam",
        last_name="Sandbox",
        *,
        account_id=DEFAULT_ACCOUNT_ID,
        role_name="Member",
        type=2,
        status="active",
        dept="Operations",
        timezone="Europe/London",
        user_id=None,
        webinar_licence=True,
    ):
        """A user of the account. `webinar_licence`: whether a Webinar add-on licence is
        assigned to them; without one Zoom refuses their webinar list (api.list_webinars)."""
        with self.lock:
            user_id = user_id or new_user_id(self.rng)
            email = email or f"user{len(self.users) + 1}@sandbox.example"
            user = {
                "id": user_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "type": type,
                "status": status,
                "role_name": role_name,
                "account_id": account_id,
                "dept": dept,
                "timezone": timezone,
                "created_at": self.now() - 86400 * 30,
                "pmi": self._new_id(),
                "verified": 1,
                "webinar_licence": bool(webinar_licence),
            }
            self.users[user_id] = user
            self.users_by_email[email.lower()] = user_id
            return user

    def find_user(self, id_or_email, account_id=None):
        with self.lock:
            user = self.users.get(id_or_email)
            if user is None:
                user_id = self.users_by_email.get(str(id_or_email).lower())
                user = self.users.get(user_id)
            if user is None or (account_id is not None and user["account_id"] != account_id):
                return None
            return user

    def account_owner(self, account_id):
        with self.lock:
            for user in self.users.values():
                if user["account_id"] == account_id and user["role_name"] == "Owner":
                    return user
            return None

    def user_json(self, user):
        return {
            "id": user["id"],
            "email": user["email"],
            "first_name": user["first_name"],
            "last_name": user["last_name"],
            "type": user["type"],
            "status": user["status"],
            "role_name": user["role_name"],
            "account_id": user["account_id"],
            "dept": user["dept"],
            "timezone": user["timezone"],
            "created_at": iso(user["created_at"]),
            "pmi": user["pmi"],
            "verified": user["verified"],
        }

    # --- meetings --------------------------------------------------------------------------
    def _new_id(self):
        """An 11-digit meeting/webinar number, unique in this sandbox (Zoom's exceed 10 digits)."""
        while True:
            number = 81_000_000_000 + int(self.rng.random() * 18_999_999_999)
            if number not in self._used_ids:
                self._used_ids.add(number)
                return number

    def _host(self, user_id):
        user = self.find_user(user_id)
        if user is None:
            raise KeyError(f"no sandbox user {user_id!r}")
        return user

    def add_meeting(
        self,
        user_id,
        topic=None,
        *,
        type=2,
        status="waiting",
        start_time=None,
        duration=60,
        timezone="Europe/London",
        meeting_id=None,
        uuid=None,
        host_locked=False,
        on_premise=False,
        livestream=None,
        livestreaming=False,
        agenda="",
        emit=False,
    ):
        """Add a meeting hosted by `user_id` (an id or email) and return its dict.

        status="started" makes it live now. host_locked=True makes "end" answer 3003 for anyone
        but the host, even an admin token (what the dashboard's "not the host" test needs);
        on_premise=True makes "end" answer 3063. livestream={stream_url, stream_key, page_url,
        resolution} configures a custom live stream; livestreaming=True has it streaming.
        emit=True sends meeting.created (as Zoom does for a meeting scheduled in its portal or
        app), then meeting.started if it starts live.
        """
        with self.lock:
            host = self._host(user_id)
            now = self.now()
            meeting_id = meeting_id or self._new_id()
            self._used_ids.add(meeting_id)
            if start_time is None and type != 3:
                start_time = now if status == "started" else now + 86400
            meeting = {
                "id": meeting_id,
                "uuid": uuid or new_uuid(self.rng),
                "host_id": host["id"],
                "account_id": host["account_id"],
                "topic": topic or f"Meeting {meeting_id}",
                "type": type,
                "status": "waiting",
                "start_time": start_time,
                "duration": duration,
                "timezone": timezone,
                "created_at": now - 3600,
                "agenda": agenda,
                "join_url": f"https://sandbox.zoom.example/j/{meeting_id}",
                "host_locked": host_locked,
                "on_premise": on_premise,
                "livestream": dict(livestream) if livestream else None,
                "livestreaming": False,
                "instance_started_at": None,
                "deleted_at": None,
                "participants": 0,
            }
            self.meetings[meeting_id] = meeting
            self.meetings_by_host[host["id"]][meeting_id] = None
            if emit:
                created = self._meeting_event_object(meeting)
                self.emit("meeting.created", {**created, "join_url": meeting["join_url"]})
            if status == "started":
                self._start_meeting(meeting, emit=emit)
                if livestreaming and meeting["livestream"]:
                    meeting["livestreaming"] = True
            elif status in ("deleted", "ended"):
                meeting["status"] = status
                meeting["deleted_at"] = now
            return meeting

    def get_meeting(self, meeting_id):
        with self.lock:
            return self.meetings[int(meeting_id)]

    def _start_meeting(self, meeting, *, emit=True):
        meeting["status"] = "started"
        meeting["instance_started_at"] = self.now()
        meeting["participants"] = self.rng.randint(2, 40)
        if emit:
            self.emit("meeting.started", self._meeting_event_object(meeting, id_as_string=True))

    def start_meeting(self, meeting_id):
        """The host starts the meeting in the Zoom client: live now, meeting.started webhook."""
        with self.lock:
            meeting = self.meetings[int(meeting_id)]
            if meeting["status"] in ("deleted", "ended"):
                raise ValueError(f"meeting {meeting_id} is {meeting['status']}")
            if meeting["status"] != "started":
                self._start_meeting(meeting)
            return meeting

    def end_meeting(self, meeting_id):
        """The meeting ends (host left, or the API ended it): a past instance is recorded under
        the running instance's UUID, the meeting gets a fresh UUID for its next instance, any
        live stream stops, and meeting.ended is sent. Instant meetings are then gone."""
        with self.lock:
            meeting = self.meetings[int(meeting_id)]
            if meeting["status"] != "started":
                raise ValueError(f"meeting {meeting_id} is not started")
            self.pending_ends.pop(("meeting", meeting["id"]), None)
            if meeting["livestreaming"]:
                self._stop_livestream(meeting)
            now = self.now()
            started = meeting["instance_started_at"] or now
            instance = self._record_instance(meeting, started, now)
            event = self._meeting_event_object(meeting, id_as_string=True)
            event["end_time"] = iso(now)
            meeting["uuid"] = new_uuid(self.rng)
            meeting["instance_started_at"] = None
            meeting["status"] = "ended" if meeting["type"] == 1 else "waiting"
            self.emit("meeting.ended", event)
            return instance

    # --- ends by the API, and Zoom's status lag ---------------------------------------------
    def end_by_api(self, kind, item_id):
        """The 204 to an end by the API (KIND "meeting" or "webinar"): the meeting or webinar
        goes on showing started for `end_status_lag` seconds, then ends as `end_meeting` /
        `end_webinar` do (its *.ended event is sent then, not before). An end asked again while
        one is pending changes nothing: the first one's time stands."""
        with self.lock:
            key = (kind, int(item_id))
            if key in self.pending_ends:
                return
            if self.end_status_lag <= 0:
                self._finish_end(key)
                return
            self.pending_ends[key] = self.now() + self.end_status_lag
            timer = threading.Timer(self.end_status_lag, self.settle_ends)
            timer.daemon = True
            timer.start()

    def settle_ends(self):
        """End what an API end made due (its lag has passed). Called by the timer each end sets,
        and before every API and control request, so a clock moved forward counts too."""
        with self.lock:
            if not self.pending_ends:
                return
            now = self.now()
            for key, due in list(self.pending_ends.items()):
                if due <= now:
                    self._finish_end(key)

    def _finish_end(self, key):
        self.pending_ends.pop(key, None)
        kind, item_id = key
        item = (self.meetings if kind == "meeting" else self.webinars).get(item_id)
        if item is None or item["status"] != "started":
            return  # it ended meanwhile (the host left, or it was deleted), or a reset
        if kind == "meeting":
            self.end_meeting(item_id)
        else:
            self.end_webinar(item_id)

    def update_meeting(self, meeting_id, **changes):
        """Change a meeting's settings as its host does in Zoom's web portal (topic, start_time
        as epoch seconds, duration, timezone, agenda): meeting.updated is sent, its object the
        changed fields (with id and uuid), old_object what they were. `host_id` hands the
        meeting to another user of the account (Zoom's "schedule for"/transfer): the event
        names the new host by id only, as Zoom's events do."""
        allowed = {"topic", "start_time", "duration", "timezone", "agenda", "host_id"}
        if not set(changes) <= allowed:
            raise ValueError(f"cannot update {sorted(set(changes) - allowed)}")
        with self.lock:
            meeting = self.meetings[int(meeting_id)]
            old = {name: meeting[name] for name in changes}
            if "host_id" in changes and changes["host_id"] != meeting["host_id"]:
                self._move_meeting(meeting, self._host(changes["host_id"]))
            meeting.update(changes)

            def shown(values):
                values = {k: iso(v) if k == "start_time" else v for k, v in values.items()}
                return {"id": meeting["id"], "uuid": meeting["uuid"], **values}

            self.emit(
                "meeting.updated",
                {"account_id": meeting["account_id"], **shown(changes)},
                payload={
                    "operator": self.users.get(meeting["host_id"], {}).get("email", ""),
                    "operator_id": meeting["host_id"],
                    "operation": "all",
                    "old_object": shown(old),
                    "time_stamp": int(self.now() * 1000),
                },
            )
            return meeting

    def _move_meeting(self, meeting, new_host):
        if new_host["account_id"] != meeting["account_id"]:
            raise ValueError("the new host must be a user of the meeting's account")
        self.meetings_by_host[meeting["host_id"]].pop(meeting["id"], None)
        self.meetings_by_host[new_host["id"]][meeting["id"]] = None

    def delete_meeting(self, meeting_id):
        """Deleted in the web portal: recoverable for 7 days; meeting.deleted is sent."""
        with self.lock:
            meeting = self.meetings[int(meeting_id)]
            if meeting["status"] == "started":
                self.end_meeting(meeting_id)
            meeting["status"] = "deleted"
            meeting["deleted_at"] = self.now()
            self.emit("meeting.deleted", self._meeting_event_object(meeting))
            return meeting

    def recover_meeting(self, meeting_id):
        with self.lock:
            meeting = self.meetings[int(meeting_id)]
            meeting["status"] = "waiting"
            meeting["deleted_at"] = None
            self.emit("meeting.recovered", self._meeting_event_object(meeting))
            return meeting

    def _record_instance(self, meeting, started, ended, *, uuid=None, participants=None):
        host = self.users.get(meeting["host_id"], {})
        minutes = max(1, math.ceil((ended - started) / 60))
        participants = participants if participants is not None else meeting["participants"]
        participants = max(1, participants or 1)
        instance = {
            "uuid": uuid or meeting["uuid"],
            "id": meeting["id"],
            "host_id": meeting["host_id"],
            "type": meeting["type"],
            "topic": meeting["topic"],
            "user_name": f"{host.get('first_name', '')} {host.get('last_name', '')}".strip(),
            "user_email": host.get("email", ""),
            "start_time": started,
            "end_time": ended,
            "duration": minutes,
            "total_minutes": minutes * participants,
            "participants_count": participants,
            "dept": host.get("dept", ""),
            "source": "Zoom",
        }
        self.past_instances[meeting["id"]].append(instance)
        self.instances_by_uuid[instance["uuid"]] = instance
        return instance

    def add_past_instance(
        self,
        meeting_id,
        uuid=None,
        *,
        start_time=None,
        end_time=None,
        participants=None,
        slash=None,
    ):
        """Record an ended instance of a meeting (the latest one unless its end_time is older).
        slash="leading"|"double" makes a UUID that starts with "/" or contains "//"."""
        with self.lock:
            meeting = self.meetings[int(meeting_id)]
            now = self.now()
            end_time = end_time or now - 3600
            start_time = start_time or end_time - 45 * 60
            uuid = uuid or new_uuid(self.rng, slash=slash)
            instance = self._record_instance(
                meeting,
                start_time,
                end_time,
                uuid=uuid,
                participants=participants or self.rng.randint(2, 60),
            )
            self.past_instances[meeting["id"]].sort(key=lambda i: i["end_time"])
            return instance

    def past_participants(self, uuid):
        """Who took part in an ended instance, as Zoom lists them: the host, people of the
        account (with their email), and guests who joined without signing in (no id, no email:
        Zoom's email display rules). The same people each time it is asked."""
        with self.lock:
            instance = self.instances_by_uuid[uuid]
            rng = random.Random(uuid)
            host = self.users.get(instance["host_id"], {})
            colleagues = [
                u
                for u in self.users.values()
                if u["account_id"] == host.get("account_id") and u["id"] != host.get("id")
            ]
            people = [
                {
                    "id": host.get("id", ""),
                    "name": f"{host.get('first_name', '')} {host.get('last_name', '')}".strip(),
                    "user_email": host.get("email", ""),
                }
            ]
            for number in range(1, instance["participants_count"]):
                if colleagues and rng.random() < 0.5:
                    user = rng.choice(colleagues)
                    people.append(
                        {
                            "id": user["id"],
                            "name": f"{user['first_name']} {user['last_name']}".strip(),
                            "user_email": user["email"],
                        }
                    )
                else:
                    people.append({"id": "", "name": f"Guest {number}", "user_email": ""})
            return people

    def latest_instance(self, meeting_id):
        with self.lock:
            instances = self.past_instances.get(int(meeting_id))
            return instances[-1] if instances else None

    def meeting_json(self, meeting, *, full=False):
        """The meeting as Zoom shows it: in a list (full=False) or from GET /meetings/{id}."""
        data = {
            "uuid": meeting["uuid"],
            "id": meeting["id"],
            "host_id": meeting["host_id"],
            "topic": meeting["topic"],
            "type": meeting["type"],
            "duration": meeting["duration"],
            "timezone": meeting["timezone"],
            "created_at": iso(meeting["created_at"]),
            "join_url": meeting["join_url"],
        }
        if meeting["start_time"] is not None:
            data["start_time"] = iso(meeting["start_time"])
        if meeting["agenda"]:
            data["agenda"] = meeting["agenda"]
        if full:
            host = self.users.get(meeting["host_id"], {})
            data["host_email"] = host.get("email", "")
            data["status"] = "started" if meeting["status"] == "started" else "waiting"
            data["settings"] = {"host_video": True, "participant_video": False}
        return data

    def _meeting_event_object(self, meeting, *, id_as_string=False):
        # Zoom sends object.id as a string in meeting.started/ended and as a number in others.
        data = {
            "account_id": meeting["account_id"],
            "id": str(meeting["id"]) if id_as_string else meeting["id"],
            "uuid": meeting["uuid"],
            "host_id": meeting["host_id"],
            "topic": meeting["topic"],
            "type": meeting["type"],
            "duration": meeting["duration"],
            "timezone": meeting["timezone"],
        }
        if meeting["start_time"] is not None:
            data["start_time"] = iso(meeting["instance_started_at"] or meeting["start_time"])
        return data

    # --- live streams ----------------------------------------------------------------------
    def configure_livestream(
        self, meeting_id, *, stream_url, stream_key, page_url, resolution=None
    ):
        with self.lock:
            meeting = self.meetings[int(meeting_id)]
            meeting["livestream"] = {
                "stream_url": stream_url,
                "stream_key": stream_key,
                "page_url": page_url,
            }
            if resolution:
                meeting["livestream"]["resolution"] = resolution
            return meeting

    def start_livestream(self, meeting_id, settings=None):
        with self.lock:
            meeting = self.meetings[int(meeting_id)]
            meeting["livestreaming"] = True
            self.emit("meeting.live_streaming_started", self._livestream_event_object(meeting))

    def _stop_livestream(self, meeting):
        meeting["livestreaming"] = False
        self.emit("meeting.live_streaming_stopped", self._livestream_event_object(meeting))

    def stop_livestream(self, meeting_id):
        with self.lock:
            self._stop_livestream(self.meetings[int(meeting_id)])

    def _livestream_event_object(self, meeting):
        data = self._meeting_event_object(meeting)
        config = meeting["livestream"] or {}
        # Zoom's payload really carries the stream key: the receiver must not store or log it.
        data["live_streaming"] = {
            "service": "Custom_Live_Streaming_Service",
            "custom_live_streaming_settings": {
                "stream_url": config.get("stream_url", ""),
                "stream_key": config.get("stream_key", ""),
                "page_url": config.get("page_url", ""),
                "resolution": config.get("resolution", "720p"),
            },
            "date_time": iso(self.now()),
        }
        return data

    def configure_webinar_livestream(
        self, webinar_id, *, stream_url, stream_key, page_url, resolution=None
    ):
        with self.lock:
            webinar = self.webinars[int(webinar_id)]
            webinar["livestream"] = {
                "stream_url": stream_url,
                "stream_key": stream_key,
                "page_url": page_url,
            }
            if resolution:
                webinar["livestream"]["resolution"] = resolution
            return webinar

    def set_webinar_livestreaming(self, webinar_id, streaming):
        """A webinar's stream starts or stops. Zoom documents no webhook event for it (NOTES.md
        lists meeting.live_streaming_* only), so none is sent."""
        with self.lock:
            self.webinars[int(webinar_id)]["livestreaming"] = bool(streaming)

    # --- webinars --------------------------------------------------------------------------
    def add_webinar(
        self,
        user_id,
        topic=None,
        *,
        type=5,
        status="waiting",
        start_time=None,
        duration=90,
        timezone="Europe/London",
        webinar_id=None,
        host_locked=False,
        livestream=None,
        livestreaming=False,
        emit=False,
    ):
        """livestream={stream_url, stream_key, page_url, resolution} configures a custom live
        stream; livestreaming=True has it streaming (a started webinar only)."""
        with self.lock:
            host = self._host(user_id)
            now = self.now()
            webinar_id = webinar_id or self._new_id()
            self._used_ids.add(webinar_id)
            webinar = {
                "id": webinar_id,
                "uuid": new_uuid(self.rng),
                "host_id": host["id"],
                "account_id": host["account_id"],
                "topic": topic or f"Webinar {webinar_id}",
                "type": type,
                "status": "waiting",
                "start_time": start_time or (now if status == "started" else now + 2 * 86400),
                "duration": duration,
                "timezone": timezone,
                "created_at": now - 7200,
                "agenda": "",
                "join_url": f"https://sandbox.zoom.example/w/{webinar_id}",
                "host_locked": host_locked,
                "instance_started_at": None,
                "livestream": dict(livestream) if livestream else None,
                "livestreaming": False,
            }
            self.webinars[webinar_id] = webinar
            self.webinars_by_host[host["id"]][webinar_id] = None
            if emit:
                created = self._webinar_event_object(webinar)
                self.emit("webinar.created", {**created, "join_url": webinar["join_url"]})
            if status == "started":
                self._start_webinar(webinar, emit=emit)
                webinar["livestreaming"] = bool(livestreaming and webinar["livestream"])
            elif status in ("deleted", "ended"):
                webinar["status"] = status
            return webinar

    def _start_webinar(self, webinar, *, emit=True):
        webinar["status"] = "started"
        webinar["instance_started_at"] = self.now()
        if emit:
            self.emit("webinar.started", self._webinar_event_object(webinar))

    def start_webinar(self, webinar_id):
        with self.lock:
            webinar = self.webinars[int(webinar_id)]
            if webinar["status"] != "started":
                self._start_webinar(webinar)
            return webinar

    def end_webinar(self, webinar_id):
        """The webinar ends (the host, or the API): the running instance joins the webinar's
        past instances (pastWebinars lists it), the webinar gets a fresh UUID for its next
        instance, and webinar.ended is sent. A single webinar (type 5) is then gone."""
        with self.lock:
            webinar = self.webinars[int(webinar_id)]
            if webinar["status"] != "started":
                raise ValueError(f"webinar {webinar_id} is not started")
            self.pending_ends.pop(("webinar", webinar["id"]), None)
            now = self.now()
            self.past_webinar_instances[webinar["id"]].append(
                {
                    "uuid": webinar["uuid"],
                    "start_time": webinar["instance_started_at"] or now,
                    "end_time": now,
                }
            )
            event = self._webinar_event_object(webinar)
            event["end_time"] = iso(now)
            webinar["status"] = "ended" if webinar["type"] == 5 else "waiting"
            # The stream ends with the webinar (Zoom sends no webinar stream event).
            webinar["livestreaming"] = False
            webinar["uuid"] = new_uuid(self.rng)
            webinar["instance_started_at"] = None
            self.emit("webinar.ended", event)
            return webinar

    def webinar_json(self, webinar, *, full=False):
        data = {
            "uuid": webinar["uuid"],
            "id": webinar["id"],
            "host_id": webinar["host_id"],
            "topic": webinar["topic"],
            "type": webinar["type"],
            "start_time": iso(webinar["start_time"]),
            "duration": webinar["duration"],
            "timezone": webinar["timezone"],
            "created_at": iso(webinar["created_at"]),
            "join_url": webinar["join_url"],
        }
        if full:
            host = self.users.get(webinar["host_id"], {})
            data["host_email"] = host.get("email", "")
            # Not in the 2023 spec's Get a webinar schema, but the dashboard needs to know a
            # webinar is live; the sandbox reports it the way Get a meeting does.
            data["status"] = "started" if webinar["status"] == "started" else "waiting"
        return data

    def _webinar_event_object(self, webinar):
        return {
            "account_id": webinar["account_id"],
            "id": str(webinar["id"]),
            "uuid": webinar["uuid"],
            "host_id": webinar["host_id"],
            "topic": webinar["topic"],
            "type": webinar["type"],
            "start_time": iso(webinar["instance_started_at"] or webinar["start_time"]),
            "duration": webinar["duration"],
            "timezone": webinar["timezone"],
        }

    # --- paging ----------------------------------------------------------------------------
    def new_page_token(self, items, offset):
        """Keep the rest of a listing under a token: later pages are slices of one snapshot, so
        paging through 100,000 meetings costs O(n) in all, not O(n) per page."""
        token = secrets.token_urlsafe(24)
        self.page_tokens[token] = {"items": items, "offset": offset, "created": self.now()}
        return token

    def take_page_token(self, token):
        entry = self.page_tokens.get(token)
        if entry is None or entry["created"] + self.page_token_ttl < self.now():
            self.page_tokens.pop(token, None)
            return None
        return entry

    def expire_page_tokens(self):
        """Every next_page_token handed out so far stops working (as after 15 minutes)."""
        with self.lock:
            count = len(self.page_tokens)
            self.page_tokens.clear()
            return count

    # --- rate limits -----------------------------------------------------------------------
    def set_rate_limit(self, label, per_second, account_id=None):
        """Override a label's limit per window (a second; a minute for "resource"), for every
        account or one. None: the plan's."""
        label = label.lower()
        if label not in LABEL_NAMES:
            raise ValueError(f"label must be one of {sorted(LABEL_NAMES)}, not {label!r}")
        with self.lock:
            key = (account_id, label)
            if per_second is None:
                self.rate_overrides.pop(key, None)
            else:
                self.rate_overrides[key] = float(per_second)

    def set_daily_limit(self, label, per_day, plan="free"):
        """Set a plan's daily cap for a label (requests per UTC day; None: no cap)."""
        label = label.lower()
        if label not in LABEL_NAMES:
            raise ValueError(f"label must be one of {sorted(LABEL_NAMES)}, not {label!r}")
        if plan not in RATE_LIMITS:
            raise ValueError(f"plan must be one of {sorted(RATE_LIMITS)}, not {plan!r}")
        if per_day is not None and (int(per_day) != per_day or per_day < 0):
            raise ValueError("per_day must be a whole number of requests, 0 or more")
        with self.lock:
            caps = self.daily_limits.setdefault(plan, {})
            if per_day is None:
                caps.pop(label, None)
            else:
                caps[label] = int(per_day)

    def daily_count(self, account_id, label, at=None):
        """Requests of `label` the account made on the UTC day of `at` (default: now)."""
        with self.lock:
            day = int((self.now() if at is None else at) // 86400)
            return self.daily_counts[(account_id, label, day)]

    def rate_limit_for(self, account_id, label):
        account = self.accounts.get(account_id) or {"plan": self.default_plan}
        per_second, per_day = RATE_LIMITS[account["plan"]][label]
        per_day = self.daily_limits.get(account["plan"], {}).get(label, per_day)
        override = self.rate_overrides.get(
            (account_id, label), self.rate_overrides.get((None, label))
        )
        if override is not None:
            per_second = override
        return per_second, per_day

    def check_rate_limit(self, account_id, label):
        """Count one request against the account's label in a sliding window of one second (a
        minute for Resource-intensive) and the day, on the Free plan. Raises SandboxError 429
        with Zoom's headers when over."""
        with self.lock:
            now = self.now()
            span = LABEL_WINDOWS.get(label, 1.0)
            per_second, per_day = self.rate_limit_for(account_id, label)
            category = LABEL_NAMES[label]
            day = int(now // 86400)
            if per_day is not None and self.daily_counts[(account_id, label, day)] >= per_day:
                reset = (day + 1) * 86400
                raise self._too_many(
                    "You have reached the maximum daily rate limit for this API. "
                    "Refer to the response header for details on when you can make another "
                    "request.",
                    category,
                    "Daily-limit",
                    per_day,
                    reset,
                )
            window = self.rate_windows[(account_id, label)]
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= per_second:
                raise self._too_many(
                    "You have reached the maximum per-second rate limit for this API. "
                    "Try again later.",
                    category,
                    "QPS",
                    per_second,
                    window[0] + span,
                )
            window.append(now)
            if per_day is not None:
                self.daily_counts[(account_id, label, day)] += 1

    def _too_many(self, message, category, limit_type, limit, retry_at):
        limit_text = str(int(limit)) if float(limit).is_integer() else str(limit)
        headers = {
            # Zoom gives Retry-After as an ISO 8601 date-time, not seconds; whole seconds, so
            # round up or a client would retry before the window has moved.
            "Retry-After": iso(math.ceil(retry_at)),
            "X-RateLimit-Category": category,
            "X-RateLimit-Type": limit_type,
            "X-RateLimit-Limit": limit_text,
            "X-RateLimit-Remaining": "0",
        }
        return SandboxError(429, 429, message, headers=headers)

    # --- faults ----------------------------------------------------------------------------
    def set_faults(
        self,
        error_rate=0.0,
        latency_ms=0,
        slow_rate=0.0,
        down=False,
        *,
        slow_ms=3000,
        down_mode="refuse",
        down_for=None,
        silent_end_rate=0.0,
        html_errors=False,
        answer_delay_ms=0,
        first_try_errors=False,
    ):
        """Replace the injected faults (call with no arguments to clear them).

        - error_rate: share of /v2 and /oauth/token answers that are Zoom's JSON server errors,
          500 and 503 in turn; html_errors=True gives a load balancer's HTML 502/503 page
          instead, which a client must not choke on.
        - latency_ms: extra delay on every request, on top of the sandbox's base latency;
          slow_rate: share of requests delayed by slow_ms more. Both come before the request
          is carried out.
        - answer_delay_ms: delay on every /v2 answer after the request was carried out: the
          change is made at once, the client hears of it that much later.
        - down=True: the sandbox goes down. down_mode "refuse" closes the listening socket
          (connections refused, open keep-alive connections dropped); "503" answers every
          API/OAuth request with a 503 page. down_for=N seconds brings it back by itself.
        - silent_end_rate: share of "end" calls answered 204 without ending the meeting.
        - first_try_errors=True: the first /v2 request for each method and path is answered
          with a server error (as error_rate's), its repeats are not: a deterministic way to
          see every request retried, whatever order concurrent clients send them in.
        """
        for name, rate in (
            ("error_rate", error_rate),
            ("slow_rate", slow_rate),
            ("silent_end_rate", silent_end_rate),
        ):
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if down_mode not in ("refuse", "503"):
            raise ValueError("down_mode must be 'refuse' or '503'")
        with self.lock:
            was_down = self.faults.down
            self.faults = Faults(
                error_rate=float(error_rate),
                latency_ms=float(latency_ms),
                slow_rate=float(slow_rate),
                slow_ms=float(slow_ms),
                down=bool(down),
                down_mode=down_mode,
                down_until=(time.monotonic() + down_for) if (down and down_for) else None,
                silent_end_rate=float(silent_end_rate),
                html_errors=bool(html_errors),
                answer_delay_ms=float(answer_delay_ms),
                first_try_errors=bool(first_try_errors),
            )
            self.first_tries = set()
        if (down or was_down) and self.on_down_change is not None:
            self.on_down_change(bool(down), down_mode, down_for)
        return self.faults

    def come_back_up(self):
        """End a "down" fault (what down_for does by itself)."""
        with self.lock:
            self.faults.down = False
            self.faults.down_until = None

    def first_try(self, method, path):
        """True the first time METHOD PATH is seen since the faults were last set."""
        key = (method, path)
        with self.lock:
            if key in self.first_tries:
                return False
            self.first_tries.add(key)
            return True

    def roll(self, rate):
        """True with probability `rate`, from the sandbox's own (seeded) generator."""
        if rate <= 0:
            return False
        with self.lock:
            return self.fault_rng.random() < rate

    # --- webhooks --------------------------------------------------------------------------
    @property
    def webhook_url(self):
        """The default Server-to-Server app's event subscription URL (None: not subscribed)."""
        app = self.apps.get(DEFAULT_S2S_CLIENT_ID)
        return app.webhook_url if app else None

    @property
    def webhook_secret(self):
        app = self.apps.get(DEFAULT_S2S_CLIENT_ID)
        return app.webhook_secret if app else DEFAULT_WEBHOOK_SECRET

    def set_webhook(self, url, secret=None, client_id=DEFAULT_S2S_CLIENT_ID):
        """Subscribe an app (the default Server-to-Server app unless `client_id` says) to events:
        its account's events are sent to `url`, signed with its secret token (`secret` replaces
        it, as regenerating the token in the Marketplace does)."""
        with self.lock:
            app = self.apps[client_id]
            app.webhook_url = url or None
            if secret:
                app.webhook_secret = secret

    def emit(self, event, obj, payload=None):
        """Queue a webhook event to every app of the account subscribed to events, each copy
        signed with that app's secret token (a no-op when none is). Sent in the background,
        after the state change that caused it. `payload`: more of the payload beside
        account_id and object (e.g. an update's old_object)."""
        with self.lock:
            self.counters[f"event:{event}"] += 1
            obj = dict(obj)
            if self.webhook_sender is None:
                return
            now = self.now()
            account_id = obj.pop("account_id", None) or DEFAULT_ACCOUNT_ID
            body = {
                "event": event,
                "event_ts": int(now * 1000),
                "payload": {"account_id": account_id, "object": obj, **(payload or {})},
            }
            for app in self.apps.values():
                if app.account_id == account_id and app.webhook_url:
                    self.webhook_sender.send(
                        app.webhook_url, app.webhook_secret, body, client_id=app.client_id
                    )

    def announce_world(self, *, ended_within=RECENT_END_SECONDS):
        """Send the events a receiver subscribed all along would have had for the world as it
        is now: meeting.started for each live meeting, meeting.deleted for each deleted
        meeting, meeting.ended for each meeting (not
        live again) whose latest instance ended in the last `ended_within` seconds,
        webinar.started for each live webinar, meeting.live_streaming_started for each
        streaming meeting. Returns {event: count}.

        Zoom has no such call. The sandbox's seed sends no webhooks (nobody listens while it is
        built), and a dashboard that connects to a world already running learns these states
        only from events: Zoom's lists never show deleted meetings, its webinar API has no
        status, and no list says a live stream is running. The demo calls this once its
        dashboard is up, so what the seed made live shows live. Live meetings get
        meeting.started too: below Business no list shows them live (zoom/api#76), and no list
        at all shows instant and personal meeting ID meetings."""
        sent = Counter()
        with self.lock:
            now = self.now()
            for meeting in self.meetings.values():
                if meeting["status"] == "started":
                    self.emit(
                        "meeting.started", self._meeting_event_object(meeting, id_as_string=True)
                    )
                    sent["meeting.started"] += 1
                if meeting["status"] == "deleted":
                    self.emit("meeting.deleted", self._meeting_event_object(meeting))
                    sent["meeting.deleted"] += 1
                    continue
                latest = (self.past_instances.get(meeting["id"]) or [None])[-1]
                if (
                    meeting["status"] == "waiting"
                    and latest is not None
                    and now - latest["end_time"] <= ended_within
                ):
                    event = self._meeting_event_object(meeting, id_as_string=True)
                    event.update(
                        uuid=latest["uuid"],
                        start_time=iso(latest["start_time"]),
                        end_time=iso(latest["end_time"]),
                    )
                    self.emit("meeting.ended", event)
                    sent["meeting.ended"] += 1
            for webinar in self.webinars.values():
                if webinar["status"] == "started":
                    self.emit("webinar.started", self._webinar_event_object(webinar))
                    sent["webinar.started"] += 1
            for meeting in self.meetings.values():
                if meeting["status"] == "started" and meeting["livestreaming"]:
                    self.emit(
                        "meeting.live_streaming_started", self._livestream_event_object(meeting)
                    )
                    sent["meeting.live_streaming_started"] += 1
        return dict(sent)

    def record_delivery(self, delivery):
        with self.lock:
            self.webhook_deliveries.append(delivery)
            self.counters["webhooks_delivered" if delivery["ok"] else "webhooks_failed"] += 1

    # --- the request log -------------------------------------------------------------------
    def log_request(self, entry):
        with self.lock:
            self.request_seq += 1
            entry.seq = self.request_seq
            self.requests.append(entry)
            self.counters["requests"] += 1
            self.counters[f"status_{entry.status}"] += 1
            if entry.template:
                self.counters[f"{entry.method} {entry.template}"] += 1

    def requests_since(self, seq=0):
        with self.lock:
            return [r for r in self.requests if r.seq > seq]

    def summary(self):
        with self.lock:
            statuses = Counter(m["status"] for m in self.meetings.values())
            return {
                "seed": self.seed,
                "accounts": {k: dict(v) for k, v in self.accounts.items()},
                "users": len(self.users),
                "meetings": len(self.meetings),
                "meetings_by_status": dict(statuses),
                "livestreaming": sum(1 for m in self.meetings.values() if m["livestreaming"]),
                "webinars": len(self.webinars),
                "webinars_started": sum(
                    1 for w in self.webinars.values() if w["status"] == "started"
                ),
                "past_instances": len(self.instances_by_uuid),
                "faults": self.faults.as_json(),
                "webhook_url": self.webhook_url,
                "token_ttl": self.token_ttl,
                "clock_offset": self.clock_offset,
                "daily_limits": {p: dict(c) for p, c in self.daily_limits.items()},
            }
