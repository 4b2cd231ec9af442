"""
zoomadmin settings: one file, every knob an environment variable with a safe default.

With nothing set it runs on a SQLite file and an embedded (filesystem) Celery broker against the
built-in Zoom sandbox. DATABASE_URL and REDIS_URL switch to real servers. Bad values stop start-up
with ImproperlyConfigured naming the variable; production (DEBUG off) refuses default secrets.
"""

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ZOOMADMIN_VAR_DIR", BASE_DIR / "var"))


def env(name, default=""):
    """A string from NAME, or from the file named by NAME_FILE (for Docker/Kubernetes secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as e:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_name}: {e}") from e
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = env(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name, default, minimum=None):
    value = env(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_float(name, default, minimum=0.0):
    value = env(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_url(name, default, schemes):
    value = env(name, default).strip().rstrip("/")
    if not value.startswith(tuple(f"{s}://" for s in schemes)):
        raise ImproperlyConfigured(f"{name} must be a {' or '.join(schemes)} URL, not {value!r}")
    return value


# Off unless set: a deployment that forgets DEBUG gets production behaviour (secure cookies, no
# public default secret), never the demo's. `make demo`, `make test` and `make bench` set it.
DEBUG = env_bool("DEBUG", default=False)
TESTING = env_bool("ZOOMADMIN_TESTING", default=False)

# Development defaults. Production (DEBUG off) refuses them, below.
_DEFAULT_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105
# A valid Fernet key, public on purpose: it only protects a developer's demo data.
_DEFAULT_FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktaW5zZWN1cmUtZmVybmV0LWtleS0wMDA="
_DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"  # noqa: S105

SECRET_KEY = env("SECRET_KEY", _DEFAULT_SECRET_KEY)
FIELD_ENCRYPTION_KEYS = [k.strip() for k in env("FIELD_ENCRYPTION_KEY", "").split(",") if k.strip()]
if not FIELD_ENCRYPTION_KEYS:
    FIELD_ENCRYPTION_KEYS = [_DEFAULT_FIELD_ENCRYPTION_KEY]

_fernet_errors = []
for _key in FIELD_ENCRYPTION_KEYS:
    try:
        from cryptography.fernet import Fernet

        Fernet(_key)
    except ValueError:
        _fernet_errors.append(_key[:4] + "…")
if _fernet_errors:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY must be a comma-separated list of Fernet keys (32 url-safe base64 "
        "bytes each, e.g. from `python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`); these are not: " + ", ".join(_fernet_errors)
    )

ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "").split(",") if h.strip()]
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # allauth's list of open sessions
    "django_htmx",
    "template_partials",
    "meetings",
    # Sign-in: passwords with a second factor (TOTP, recovery codes, WebAuthn), single sign-on
    # with the organisation's OpenID Connect provider (meetings.sso), failed-sign-in throttling
    # and each user's list of open sessions (ended when single sign-on takes a role away).
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
    "allauth.usersessions",
    "meetings.sso",
]

MIDDLEWARE = [
    # First: it drops X-Forwarded-* headers a client sent past the proxies (see "Behind a proxy").
    "meetings.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (hashed, compressed, cached for a year) from one gunicorn: no other server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "meetings.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After authentication, messages and htmx: ends idle and too-old sessions, then sends a user
    # whose role needs a second factor and who has none to set one up (meetings/signin.py).
    "meetings.signin.SessionLifetimeMiddleware",
    "meetings.signin.MfaRequiredMiddleware",
    "meetings.middleware.KeyRingMiddleware",
]

ROOT_URLCONF = "zoomadmin.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "meetings.context_processors.zoom_connections",
            ],
        },
    },
]

WSGI_APPLICATION = "zoomadmin.wsgi.application"

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", "").strip()
if DATABASE_URL:
    try:
        # Persistent connections, checked before their first use in each request: after a
        # database restart or failover the first request reconnects instead of failing with a
        # 500 on the dead connection (tests/faults/test_postgres_restarted.py).
        _db = dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    except Exception as e:  # dj_database_url raises bare ValueErrors and KeyErrors
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL I understand: {e}") from e
    if not _db.get("ENGINE"):
        raise ImproperlyConfigured("DATABASE_URL names no database engine")
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "zoomadmin.sqlite3"}

if _db["ENGINE"] == "django.db.backends.sqlite3":
    # A SQLite connection costs nothing to open: keep none open between requests or tasks, so no
    # idle process holds the file's locks (and none is inherited by a forked Celery child).
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        # Web, worker, beat and sandbox share one file: WAL lets readers run beside the writer,
        # IMMEDIATE takes the write lock at BEGIN so two writers queue instead of deadlocking,
        # and the busy timeout makes them wait for it rather than fail with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests that run a worker in another process need a database file both can open.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test-zoomadmin.sqlite3")}
DATABASES = {"default": _db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery -------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", "").strip()
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must be a redis:// or rediss:// URL, not {REDIS_URL!r}")

# The cache holds the failed-sign-in counts: in Redis when there is one, so that every web process
# counts the same failures; else in each process's memory (the embedded profile's one process).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "zoomadmin",
        }
    }

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "").strip() or REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL == "filesystem://":
    # The embedded broker: messages are files in var/broker, so a real worker process runs with
    # no servers at all. It polls; 0.05 s keeps a click's latency low at negligible CPU.
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "polling_interval": 0.05,
        # Broadcast (remote control) files; kombu's default is ./control in the working dir.
        "control_folder": str(BROKER_DIR / "control"),
    }
elif CELERY_BROKER_URL.startswith(("redis", "rediss")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # acks_late tasks whose whole worker vanished come back after this; the action sweeper
        # reclaims them sooner through the action's lease, so this is only the broker's backstop.
        # It must exceed every task's hard time limit (the longest: an action, 31 min), or Redis
        # hands a running task's message to a second worker: system check zoomadmin.E003, which
        # a worker checks at start-up (zoomadmin/celery.py) and refuses to start on.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=30),
    }
# The Action row is the result: no result backend to fill or expire.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# How often beat asks whether a sync is due, and the shortest interval between an account's
# scheduled syncs; the budget (meetings.budget) makes it longer for an account with daily caps.
SYNC_INTERVAL_SECONDS = env_int("SYNC_INTERVAL_SECONDS", 300, minimum=10)
# The share of a daily cap the scheduled syncs may spend; the rest is for ends, live streams,
# Sync now and other apps of the account, which Zoom counts against the same caps.
SYNC_DAILY_BUDGET_SHARE = env_float("SYNC_DAILY_BUDGET_SHARE", 0.5, minimum=0.01)
if SYNC_DAILY_BUDGET_SHARE > 1:
    raise ImproperlyConfigured("SYNC_DAILY_BUDGET_SHARE must be at most 1")
# While webhooks flow (an event of the account received within SYNC_WEBHOOKS_FLOWING_SECONDS),
# the mirror is kept current by them and full syncs only catch what they missed: at most this
# often.
SYNC_INTERVAL_WITH_WEBHOOKS_SECONDS = env_int(
    "SYNC_INTERVAL_WITH_WEBHOOKS_SECONDS", 3600, minimum=10
)
SYNC_WEBHOOKS_FLOWING_SECONDS = env_int("SYNC_WEBHOOKS_FLOWING_SECONDS", 3600, minimum=60)
# A sync fans out into parts (meetings.sync_runs), each a bounded task of this many users' lists
# (at most 2 Medium requests a user on Pro, 3 on Business: 50 users are 5 to 8 s of the whole
# Medium limit, and a few times that while parts share it). Each part has a time limit of its
# own, and so has the action's run that plans and finishes the sync (RUN_TIME_LIMIT). The
# relation that must hold: every task's hard time limit < CELERY_VISIBILITY_TIMEOUT, or Redis
# hands a still running task to a second worker; a worker refuses to start when it does not
# (system check zoomadmin.E003, zoomadmin/celery.py).
SYNC_PART_USERS = env_int("SYNC_PART_USERS", 50, minimum=1)
SYNC_PART_SOFT_TIME_LIMIT_SECONDS = env_int("SYNC_PART_SOFT_TIME_LIMIT_SECONDS", 240, minimum=10)
SYNC_PART_TIME_LIMIT_SECONDS = SYNC_PART_SOFT_TIME_LIMIT_SECONDS + 30
# A part renews its lease (the database's clock) while it works; a part whose lease ran out
# (its worker died) is sent again alone, at most SYNC_PART_MAX_RUNS times in all.
SYNC_PART_LEASE_SECONDS = env_int("SYNC_PART_LEASE_SECONDS", 60, minimum=2)
SYNC_PART_MAX_RUNS = env_int("SYNC_PART_MAX_RUNS", 4, minimum=1)
# How often the sync's action looks at its parts while they run (no worker waits meanwhile);
# the last part to finish wakes it at once.
SYNC_CHECK_INTERVAL_SECONDS = env_float("SYNC_CHECK_INTERVAL_SECONDS", 10.0, minimum=0.1)
# After meeting.ended, Zoom's past-meeting details answer "not found or not ended" (3001) for a
# while: the automatic fetch of the instance waits this long before asking.
PAST_MEETING_FETCH_DELAY_SECONDS = env_int("PAST_MEETING_FETCH_DELAY_SECONDS", 30, minimum=0)
ACTION_SWEEP_INTERVAL_SECONDS = env_int("ACTION_SWEEP_INTERVAL_SECONDS", 15, minimum=1)
ACTION_LEASE_SECONDS = env_int("ACTION_LEASE_SECONDS", 120, minimum=5)
# Retryable failures (5xx, timeouts, Zoom unreachable) back off 1, 2, 4 ... 60 s (half of each
# wait random): 9 attempts ride out an outage of 1.5 to 3 minutes, so a blip costs no click,
# and past that the action fails saying so (tests/faults/test_zoom_faults.py).
ACTION_MAX_ATTEMPTS = env_int("ACTION_MAX_ATTEMPTS", 9, minimum=1)
ACTION_RETRY_BASE_SECONDS = env_float("ACTION_RETRY_BASE_SECONDS", 1.0)
ACTION_RETRY_MAX_SECONDS = env_float("ACTION_RETRY_MAX_SECONDS", 60.0)
# A 429's Retry-After longer than this (Zoom's daily limit: "retry tomorrow") fails the action
# with Zoom's message instead of holding it for hours; rate-limited retries have their own budget.
ACTION_MAX_RETRY_AFTER_SECONDS = env_float("ACTION_MAX_RETRY_AFTER_SECONDS", 300.0)
ACTION_MAX_RATE_LIMITED_ATTEMPTS = env_int("ACTION_MAX_RATE_LIMITED_ATTEMPTS", 30, minimum=1)
# A queued action whose task message was never sent (broker down) is sent again by the sweeper
# after this grace; one sent but not claimed by a worker in the dispatch timeout is sent again.
ACTION_REQUEUE_AFTER_SECONDS = env_int("ACTION_REQUEUE_AFTER_SECONDS", 10, minimum=1)
ACTION_DISPATCH_TIMEOUT_SECONDS = env_int("ACTION_DISPATCH_TIMEOUT_SECONDS", 120, minimum=5)
# An action whose worker stopped this many times while running it is failed rather than handed
# to the next worker: each takeover may repeat its call to Zoom (3: at most 3 calls), and an
# action that kills its worker must not take every worker down in turn.
ACTION_MAX_RECLAIMS = env_int("ACTION_MAX_RECLAIMS", 3, minimum=1)
# Confirming an end (meetings.confirmations; NOTES.md: a 204 to end has been seen without the
# meeting ending, and Zoom's status lags behind a real end). Zoom's *.ended event confirms it
# where webhooks flow; when none came this long after the 204, the dashboard looks itself
# (GET /meetings/{id}), up to ACTION_CONFIRM_CHECKS times this far apart, before it says Zoom
# still shows the meeting in progress. Zoom publishes no figure for the lag: by default the
# last look is 20 s after the 204.
ACTION_CONFIRM_EVENT_WAIT_SECONDS = env_float("ACTION_CONFIRM_EVENT_WAIT_SECONDS", 5.0)
ACTION_CONFIRM_CHECKS = env_int("ACTION_CONFIRM_CHECKS", 4, minimum=1)
ACTION_CONFIRM_INTERVAL_SECONDS = env_float("ACTION_CONFIRM_INTERVAL_SECONDS", 5.0)
# Retention of the audit trail, for `manage.py prune_actions` (the only thing that deletes it).
ACTION_RETENTION_DAYS = env_int("ACTION_RETENTION_DAYS", 730, minimum=1)
# Two-person approval (meetings.approvals): a request that waits for a second person is
# cancelled when nobody approved it this long after it was made, by the database's clock.
APPROVAL_EXPIRY_MINUTES = env_int("APPROVAL_EXPIRY_MINUTES", 60, minimum=1)
# Which actions wait for a second person until an administrator saves a choice of their own in
# the admin (Two-person approval → Approval settings): ends of webinars, recoveries of meetings,
# and bulk batches of more than 20.
APPROVAL_DEFAULTS = {
    "kinds": ["end_webinar", "recover_meeting"],
    "bulk_enabled": True,
    "bulk_threshold": 20,
}
# The dashboard's address as operators reach it (e.g. https://zoom-admin.example.org), for the
# links the command line prints; empty prints the path alone.
DASHBOARD_URL = env("DASHBOARD_URL", "").strip().rstrip("/")
# Per-label overrides of the plan's Zoom rate limits, requests per second ("" = the plan's).
ZOOM_RATE_LIMIT_LIGHT = env_float("ZOOM_RATE_LIMIT_LIGHT", 0.0)
ZOOM_RATE_LIMIT_MEDIUM = env_float("ZOOM_RATE_LIMIT_MEDIUM", 0.0)
ZOOM_RATE_LIMIT_HEAVY = env_float("ZOOM_RATE_LIMIT_HEAVY", 0.0)
# A Free account's daily caps, requests per label and UTC day (the figures commonly quoted;
# Zoom answers 429 with X-RateLimit-Type: Daily-limit past them). The sync's budget reads them.
ZOOM_DAILY_LIMIT_LIGHT = env_int("ZOOM_DAILY_LIMIT_LIGHT", 6000, minimum=1)
ZOOM_DAILY_LIMIT_MEDIUM = env_int("ZOOM_DAILY_LIMIT_MEDIUM", 2000, minimum=1)
ZOOM_DAILY_LIMIT_HEAVY = env_int("ZOOM_DAILY_LIMIT_HEAVY", 1000, minimum=1)
# The share of the limit the dashboard books. Requests sent evenly spaced arrive bunched by
# network and scheduling jitter: at a share h, a request may arrive up to 1/h - 1 seconds later
# than the one Zoom's limit counts it against (42 ms at 0.96, 250 ms at 0.8) without two landing
# in one of Zoom's seconds. 0.96 reaches >= 95 % of the limit with no 429 on a calm machine
# (BENCHMARKS.md, section 1); lower it when another app of the account uses the same limit.
ZOOM_RATE_LIMIT_HEADROOM = env_float("ZOOM_RATE_LIMIT_HEADROOM", 0.96, minimum=0.05)
# After a 429 the account books this share instead, for ZOOM_RATE_LIMIT_CAUTION_SECONDS: the room
# the headroom counted on was not there (meetings.ratelimit).
ZOOM_RATE_LIMIT_HEADROOM_AFTER_429 = env_float(
    "ZOOM_RATE_LIMIT_HEADROOM_AFTER_429", 0.8, minimum=0.05
)
ZOOM_RATE_LIMIT_CAUTION_SECONDS = env_float("ZOOM_RATE_LIMIT_CAUTION_SECONDS", 600.0)
# A worker waking this long after its slot moves the slots not yet booked back by its lateness
# (meetings.ratelimit.Throttle): a smaller lateness is left to the headroom's tolerance.
ZOOM_RATE_LIMIT_LATE_SECONDS = env_float("ZOOM_RATE_LIMIT_LATE_SECONDS", 0.005)
# The requests granted at once before the limiter spaces them out.
ZOOM_RATE_LIMIT_BURST = env_int("ZOOM_RATE_LIMIT_BURST", 1, minimum=1)
# A rate-limiter wait longer than this is not slept in the worker: the action is re-enqueued
# with a countdown instead. And after a 429, the whole account pauses at most this long.
ZOOM_RATE_LIMIT_MAX_WAIT_SECONDS = env_float("ZOOM_RATE_LIMIT_MAX_WAIT_SECONDS", 5.0)
# A policy's action (meetings.policies) books a Zoom slot only when the account's queue for the
# label is at most this long: behind operators' clicks, it is handed back to try again later.
ZOOM_RATE_LIMIT_AUTOMATIC_MAX_WAIT_SECONDS = env_float(
    "ZOOM_RATE_LIMIT_AUTOMATIC_MAX_WAIT_SECONDS", 0.5
)
ZOOM_RATE_LIMIT_MAX_BACKOFF_SECONDS = env_float("ZOOM_RATE_LIMIT_MAX_BACKOFF_SECONDS", 60.0)

# Scheduled and automatic actions (meetings.automation): how often the beat looks for due
# schedules (and steps to advance), how late a schedule may still run by default, from what
# lateness a run is reported late, how many schedules one beat starts.
AUTOMATION_INTERVAL_SECONDS = env_int("AUTOMATION_INTERVAL_SECONDS", 10, minimum=1)
SCHEDULE_GRACE_SECONDS = env_int("SCHEDULE_GRACE_SECONDS", 300, minimum=0)
SCHEDULE_LATE_SECONDS = env_int("SCHEDULE_LATE_SECONDS", 30, minimum=1)
SCHEDULE_BATCH = env_int("SCHEDULE_BATCH", 1000, minimum=1)
# Policies: how often they run, the most actions one asks for per run and connection (so that
# they do not crowd operators' clicks out of the rate limit, which has no priorities), and how
# long before a policy tries a meeting again after its action on it.
POLICY_INTERVAL_SECONDS = env_int("POLICY_INTERVAL_SECONDS", 60, minimum=1)
POLICY_MAX_ACTIONS_PER_RUN = env_int("POLICY_MAX_ACTIONS_PER_RUN", 20, minimum=1)
POLICY_RETRY_AFTER_SECONDS = env_int("POLICY_RETRY_AFTER_SECONDS", 3600, minimum=60)

# Celery beat's periodic tasks; each area adds its own entries.
CELERY_BEAT_SCHEDULE = {
    # A sync action per connected account (the mirror; webhooks keep it current in between).
    "sync-all-accounts": {
        "task": "meetings.tasks.mirror.sync_all_accounts",
        "schedule": SYNC_INTERVAL_SECONDS,
    },
    # Webhook events stored while the broker was down, or whose processing failed.
    "process-pending-webhook-events": {
        "task": "meetings.tasks.mirror.process_pending_webhook_events",
        "schedule": 60,
    },
    # Actions whose task message never reached the broker, or whose worker died (lease expired).
    "sweep-actions": {
        "task": "meetings.tasks.actions.sweep_actions",
        "schedule": ACTION_SWEEP_INTERVAL_SECONDS,
        # A sweep not started within one interval is superseded by the next one.
        "options": {"expires": ACTION_SWEEP_INTERVAL_SECONDS},
    },
    # Requests for approval that nobody approved within APPROVAL_EXPIRY_MINUTES are cancelled.
    "expire-approvals": {
        "task": "meetings.tasks.actions.expire_approvals",
        "schedule": ACTION_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": ACTION_SWEEP_INTERVAL_SECONDS},
    },
    # Due schedules (claimed once, by the database's clock), and the next steps of running ones.
    "run-schedules": {
        "task": "meetings.tasks.automation.run_schedules",
        "schedule": AUTOMATION_INTERVAL_SECONDS,
        # Superseded by the next tick: a schedule waits at most one interval more (never lost).
        "options": {"expires": AUTOMATION_INTERVAL_SECONDS},
    },
    # The enabled policies of each connection.
    "apply-policies": {
        "task": "meetings.tasks.automation.apply_policies",
        "schedule": POLICY_INTERVAL_SECONDS,
        "options": {"expires": POLICY_INTERVAL_SECONDS},
    },
}

# --- Notifications (meetings.notifications, meetings.delivery) ------------------------------
# Sent on their own queue, so a flood of them never waits in front of an action's message; run a
# worker that consumes both (`-Q celery,notifications`) or one for each.
# Both queues are declared, so a worker started without -Q consumes both.
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Each its own routing key: a queue declared without one is bound with the default ("celery")
# and would receive a copy of every action's message.
CELERY_TASK_QUEUES = (
    Queue("celery", routing_key="celery"),
    Queue("notifications", routing_key="notifications"),
)
CELERY_TASK_ROUTES = {
    "meetings.tasks.notifications.*": {"queue": "notifications"},
}
CELERY_BEAT_SCHEDULE["sweep-notifications"] = {
    "task": "meetings.tasks.notifications.sweep_notifications",
    "schedule": 60,
    "options": {"expires": 60},
}
# Connect and read timeout of one send (the mail server, a chat service).
NOTIFY_TIMEOUT_SECONDS = env_float("NOTIFY_TIMEOUT_SECONDS", 10.0, minimum=0.5)
# Sends to one destination at least this far apart (Slack's incoming webhooks take about one a
# second; a burst of failures is not a burst of messages).
NOTIFY_DESTINATION_INTERVAL_SECONDS = env_float("NOTIFY_DESTINATION_INTERVAL_SECONDS", 2.0)
# A failed send is retried after 30 s, 1, 2, 4 ... minutes (capped), this many times in all.
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 6, minimum=1)
NOTIFY_RETRY_BASE_SECONDS = env_float("NOTIFY_RETRY_BASE_SECONDS", 30.0)
NOTIFY_RETRY_MAX_SECONDS = env_float("NOTIFY_RETRY_MAX_SECONDS", 900.0)
# A delivery still waiting this long past its time lost its message: the sweeper sends it again.
NOTIFY_SWEEP_GRACE_SECONDS = env_float("NOTIFY_SWEEP_GRACE_SECONDS", 120.0, minimum=1.0)
# A stream stop is ours when our stop or end of that meeting came this long before Zoom's event.
NOTIFY_OWN_STOP_WINDOW_SECONDS = env_int("NOTIFY_OWN_STOP_WINDOW_SECONDS", 600, minimum=1)

# Django's mail settings: the e-mail notifications.
# In development without a mail server (`make demo`), e-mails are written to the worker's log.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG and not env("EMAIL_HOST", "")
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = NOTIFY_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "zoomadmin@localhost")

# --- Zoom -----------------------------------------------------------------------------------
ZOOM_API_BASE_URL = env_url("ZOOM_API_BASE_URL", "https://api.zoom.us/v2", ("https", "http"))
ZOOM_OAUTH_BASE_URL = env_url("ZOOM_OAUTH_BASE_URL", "https://zoom.us", ("https", "http"))
ZOOM_CLIENT_ID = env("ZOOM_CLIENT_ID", "")
ZOOM_CLIENT_SECRET = env("ZOOM_CLIENT_SECRET", "")
ZOOM_ACCOUNT_ID = env("ZOOM_ACCOUNT_ID", "")
ZOOM_WEBHOOK_SECRET_TOKEN = env("ZOOM_WEBHOOK_SECRET_TOKEN", "")
ZOOM_TIMEOUT_SECONDS = env_float("ZOOM_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# The address Zoom redirects back to after consent; derived from the request when empty.
ZOOM_OAUTH_REDIRECT_URL = env("ZOOM_OAUTH_REDIRECT_URL", "")
# Demo convenience: with ZOOM_CLIENT_ID/SECRET (and ZOOM_ACCOUNT_ID) empty, connect with the
# built-in sandbox's default apps (meetings.zoom.oauth.oauth_app_credentials). Unset: on when DEBUG
# is on and ZOOM_OAUTH_BASE_URL is on this machine (the sandbox of `make demo`), off otherwise.
ZOOM_SANDBOX = env_bool("ZOOM_SANDBOX", default=None)
# Zoom's OpenAPI description, trimmed to the paths we use (meetings/zoom/spec/trim.py says from
# where); the sandbox's contract checks validate against it (tests, dev).
ZOOM_OPENAPI_SPEC = Path(
    env("ZOOM_OPENAPI_SPEC", str(BASE_DIR / "meetings/zoom/spec/zoom-meetings-api.json"))
)

# --- Auth, sessions, security -----------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Sign-in: django-allauth (README "Signing in") --------------------------------------------
AUTHENTICATION_BACKENDS = [
    # Django's own (the admin's permission checks, `client.login` in tests) and allauth's, which
    # the sign-in page uses: it throttles failures and asks for the second factor.
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "meetings.signin.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "meetings.sso.adapter.SSOAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_REDIRECT_URL = "login"
# The sign-in page stays open to someone signed in: a page their role cannot open sends them there
# to sign in as someone who can.
ACCOUNT_AUTHENTICATED_LOGIN_REDIRECTS = False
ACCOUNT_SESSION_REMEMBER = False  # a browser-session cookie; lifetimes: SESSION_* below
ACCOUNT_PRESERVE_USERNAME_CASING = True
ACCOUNT_USERNAME_MIN_LENGTH = 1
# Changing the second factor asks for the password again unless it was typed this recently.
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
# Failed sign-ins, counted whether or not the username exists, with one message for both: at
# most SIGN_IN_FAILURES_PER_USER for one username typed and SIGN_IN_FAILURES_PER_ADDRESS from one
# client address, each within SIGN_IN_FAILURE_WINDOW_MINUTES. Counted in the cache (Redis when
# REDIS_URL is set, so every web process shares the counts).
SIGN_IN_FAILURES_PER_USER = env_int("SIGN_IN_FAILURES_PER_USER", 5, minimum=1)
SIGN_IN_FAILURES_PER_ADDRESS = env_int("SIGN_IN_FAILURES_PER_ADDRESS", 20, minimum=1)
SIGN_IN_FAILURE_WINDOW_MINUTES = env_int("SIGN_IN_FAILURE_WINDOW_MINUTES", 15, minimum=1)
_failure_window = SIGN_IN_FAILURE_WINDOW_MINUTES * 60
ACCOUNT_RATE_LIMITS = {
    "login_failed": (
        f"{SIGN_IN_FAILURES_PER_ADDRESS}/{_failure_window}s/ip,"
        f"{SIGN_IN_FAILURES_PER_USER}/{_failure_window}s/key"
    ),
    # Sign-in attempts of any outcome from one address (allauth's default; an office behind one
    # NAT address signs in at nine o'clock).
    "login": "30/m/ip",
    "change_password": "5/m/user",
    "reset_password": "20/m/ip,5/m/key",
    "reauthenticate": "10/m/user",
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
}

# Second factor for local accounts: an authenticator app (TOTP) with recovery codes, and security
# keys / passkeys (WebAuthn). Required for the roles in MFA_REQUIRED_ROLES (admin, operator,
# viewer; comma-separated; "none" for none): such a user who has none set up is sent to set one
# up before anything else. Default: admin and operator in production, none under DEBUG (the demo).
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = False
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG  # http://localhost in development only
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", "zoomadmin").strip() or "zoomadmin"
# A code typed in the last seconds of its 30-second step is still accepted after the step
# turns (RFC 6238 section 5.2: one step back for transmission delay); allauth's default is none,
# which refused such a code (a CI run's production test, on a busy machine). A code is still
# accepted once only.
MFA_TOTP_TOLERANCE = 1
_mfa_roles = env("MFA_REQUIRED_ROLES", "").strip().lower()
if not _mfa_roles:
    MFA_REQUIRED_ROLES = [] if DEBUG else ["admin", "operator"]
elif _mfa_roles == "none":
    MFA_REQUIRED_ROLES = []
else:
    MFA_REQUIRED_ROLES = [r.strip() for r in _mfa_roles.split(",") if r.strip()]
    _unknown = sorted(set(MFA_REQUIRED_ROLES) - {"admin", "operator", "viewer"})
    if _unknown:
        raise ImproperlyConfigured(
            "MFA_REQUIRED_ROLES names roles among admin, operator and viewer (or none), not "
            + ", ".join(repr(r) for r in _unknown)
        )

# Sessions end after SESSION_IDLE_MINUTES without a click (the dashboard's automatic refreshes
# do not count) and SESSION_MAX_HOURS after sign-in whatever happens (meetings/signin.py).
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30, minimum=1)
SESSION_MAX_HOURS = env_int("SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = SESSION_MAX_HOURS * 3600
# allauth keeps each user's open sessions (recorded at sign-in) so that single sign-on can end
# them; it does not track activity (the idle clock is our own: polls are not activity).
USERSESSIONS_TRACK_ACTIVITY = False

# Single sign-on with the organisation's OpenID Connect provider (meetings/sso/). On when the
# issuer, client id and secret are set; OIDC_PROVIDER_NAME names the button. Roles come from the
# ID token's OIDC_ROLE_CLAIM (a list of group names) through OIDC_ROLE_MAP, checked at start-up
# (meetings.sso.roles, system check zoomadmin.E010): "group=role" or "group=role@Connection name".
OIDC_SERVER_URL = env("OIDC_SERVER_URL", "").strip().rstrip("/")
OIDC_CLIENT_ID = env("OIDC_CLIENT_ID", "").strip()
OIDC_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", "").strip()
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", "").strip() or "single sign-on"
OIDC_ROLE_CLAIM = env("OIDC_ROLE_CLAIM", "groups").strip() or "groups"
OIDC_ROLE_MAP = env("OIDC_ROLE_MAP", "").strip()
OIDC_SCOPES = env("OIDC_SCOPES", "openid profile email").split()
# How long a call to the provider (discovery, keys, token) may take before the sign-in says the
# provider cannot be reached.
OIDC_TIMEOUT_SECONDS = env_float("OIDC_TIMEOUT_SECONDS", 10.0, minimum=0.1)
OIDC_ENABLED = bool(OIDC_SERVER_URL and OIDC_CLIENT_ID and OIDC_CLIENT_SECRET)
if any((OIDC_SERVER_URL, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET)) and not OIDC_ENABLED:
    raise ImproperlyConfigured(
        "Single sign-on needs OIDC_SERVER_URL, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET (or "
        "OIDC_CLIENT_SECRET_FILE) together; some are missing"
    )
if OIDC_ENABLED and not OIDC_SERVER_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"OIDC_SERVER_URL must be the issuer's URL, not {OIDC_SERVER_URL!r}")
# Password sign-in off for everyone but superusers (kept for emergencies).
OIDC_ONLY = env_bool("OIDC_ONLY", default=False)
if OIDC_ONLY and not OIDC_ENABLED:
    raise ImproperlyConfigured("OIDC_ONLY=true needs single sign-on set up (OIDC_SERVER_URL, …)")
SOCIALACCOUNT_PROVIDERS = {}
if OIDC_ENABLED:
    SOCIALACCOUNT_PROVIDERS["sso"] = {
        "APPS": [
            {
                "provider_id": "sso",
                "name": OIDC_PROVIDER_NAME,
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                "settings": {"server_url": OIDC_SERVER_URL},
            }
        ],
        "SCOPE": OIDC_SCOPES,
        "OAUTH_PKCE_ENABLED": True,
    }
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never join a local account by a matching address
SOCIALACCOUNT_STORE_TOKENS = False  # the provider's tokens are not needed after sign-in
SOCIALACCOUNT_REQUESTS_TIMEOUT = OIDC_TIMEOUT_SECONDS
SOCIALACCOUNT_LOGIN_ON_GET = False

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
USE_TLS = env_bool("USE_TLS", default=not DEBUG)
if USE_TLS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Load balancers and uptime checks probe over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Sent on every response by meetings.middleware.SecurityHeadersMiddleware. No inline script or
# style anywhere (htmx's indicator styles are off in base.html and live in app.css), so 'self'
# is enough; CSP_REPORT_ONLY=true sends it as Content-Security-Policy-Report-Only to trial a change.
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'self'",
).strip()
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", default=False)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

if not DEBUG:
    _defaults = []
    if SECRET_KEY == _DEFAULT_SECRET_KEY or len(SECRET_KEY) < 50:
        _defaults.append("SECRET_KEY (set 50+ random characters)")
    if _DEFAULT_FIELD_ENCRYPTION_KEY in FIELD_ENCRYPTION_KEYS:
        _defaults.append("FIELD_ENCRYPTION_KEY (set a Fernet key of your own)")
    if ZOOM_WEBHOOK_SECRET_TOKEN == _DEFAULT_WEBHOOK_SECRET:
        _defaults.append("ZOOM_WEBHOOK_SECRET_TOKEN (use the one from your Zoom app)")
    if not ALLOWED_HOSTS:
        _defaults.append("ALLOWED_HOSTS (the host names the dashboard is served on)")
    if _defaults:
        raise ImproperlyConfigured(
            "DEBUG is off, so these must be set to real values: "
            + "; ".join(_defaults)
            + ". (On a development machine set DEBUG=true; make demo and make test do.)"
        )
elif not ZOOM_WEBHOOK_SECRET_TOKEN:
    # The sandbox signs its webhooks with this, so the demo's mirror follows it.
    ZOOM_WEBHOOK_SECRET_TOKEN = _DEFAULT_WEBHOOK_SECRET

# --- I18N, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# 24-hour times with seconds and the zone in the admin's audit trail (see the module).
FORMAT_MODULE_PATH = ["zoomadmin.formats"]
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Static files in production (WhiteNoise) -----------------------------------------------
# `collectstatic` (scripts/install and `manage.py release` run it) copies every file to
# STATIC_ROOT under a name carrying a hash of its content, with a gzip copy beside it; pages link
# to the hashed names, so WhiteNoise can tell browsers to keep them for a year (a new release links
# to new names). With DEBUG off a page naming a file that was not collected fails loudly.
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# A developer's runserver (DEBUG) reads static/ as it is edited; production only what was collected.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Behind a proxy -------------------------------------------------------------------------
# TLS ends at the proxy (nginx, Caddy, a load balancer), which talks plain HTTP to gunicorn and
# says what the client used in X-Forwarded-Proto and who the client is in X-Forwarded-For.
# Those headers are believed only from TRUSTED_PROXIES (addresses or networks): from anyone
# else meetings.middleware.TrustedProxyMiddleware drops them, so a client reaching gunicorn
# directly can neither pose as HTTPS nor put another address in the audit trail. The client
# address an action records is the right-most X-Forwarded-For entry that is not a trusted proxy
# (each trusted hop appends the address it saw; anything left of it the client may have forged).
TRUSTED_PROXIES = [
    p.strip() for p in env("TRUSTED_PROXIES", "127.0.0.1,::1").split(",") if p.strip()
]
try:
    TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network(p, strict=False) for p in TRUSTED_PROXIES]
except ValueError as e:
    raise ImproperlyConfigured(
        f"TRUSTED_PROXIES must be comma-separated addresses or networks (10.0.0.0/8): {e}"
    ) from None
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Operations: health, metrics ------------------------------------------------------------
# Bearer token for /metrics and the detailed /healthz (Prometheus' `authorization` setting);
# empty means only signed-in staff see them.
METRICS_TOKEN = env("METRICS_TOKEN", "").strip()
# prometheus-client's multiprocess mode: web and worker processes write their samples here and
# /metrics adds them up. prometheus-client reads the variable when first imported, and settings
# load before it in every process. Empty the folder when the service restarts.
PROMETHEUS_MULTIPROC_DIR = Path(env("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# A worker host's own /metrics: its processes' Zoom requests, latency and 429s, which the web's
# /metrics cannot read from another host (the multiprocess files are per host). 0 = off. Served
# by each worker's main process on WORKER_METRICS_ADDRESS, with METRICS_TOKEN as its bearer token;
# without a token it listens on 127.0.0.1 only.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0)
WORKER_METRICS_ADDRESS = env("WORKER_METRICS_ADDRESS", "0.0.0.0").strip()  # noqa: S104
# Each worker writes a heartbeat this often; /healthz fails when none is fresher than STALE.
WORKER_HEARTBEAT_INTERVAL_SECONDS = env_int("WORKER_HEARTBEAT_INTERVAL_SECONDS", 10, minimum=1)
WORKER_HEARTBEAT_STALE_SECONDS = env_int("WORKER_HEARTBEAT_STALE_SECONDS", 60, minimum=2)
if WORKER_HEARTBEAT_STALE_SECONDS <= WORKER_HEARTBEAT_INTERVAL_SECONDS:
    raise ImproperlyConfigured(
        "WORKER_HEARTBEAT_STALE_SECONDS must be longer than WORKER_HEARTBEAT_INTERVAL_SECONDS"
    )
# How long /healthz waits for the broker before calling it down.
HEALTH_CHECK_TIMEOUT_SECONDS = env_float("HEALTH_CHECK_TIMEOUT_SECONDS", 2.0, minimum=0.1)

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {LOG_LEVEL!r}"
    )
# json: one JSON object per line (for a log pipeline); text: for a developer's terminal. Both
# carry the action id of the job a line was written in, and scrub anything like a credential.
LOG_FORMAT = env("LOG_FORMAT", "text" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "meetings.logging.JsonFormatter"},
        "text": {"()": "meetings.logging.TextFormatter"},
    },
    "filters": {
        "action_context": {"()": "meetings.logging.ActionContextFilter"},
        "redact_secrets": {"()": "meetings.logging.RedactSecretsFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["action_context", "redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # urllib3 logs full URLs at DEBUG, which for /oauth/token can carry codes: keep it quiet.
        "urllib3": {"level": "WARNING"},
        "requests_oauthlib": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
    },
}
