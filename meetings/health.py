"""
Health checks for /healthz: the database, the broker, a live worker, and each Zoom account.

`run_checks(names=None)` runs the named checks (all of them by default) and returns
`(healthy, report)`; the report is JSON-ready. Every check is bounded by
HEALTH_CHECK_TIMEOUT_SECONDS where it talks to a server, and reports in plain words.

Each check returns a `Check`: `ok`, a `summary` anyone may see (booleans and counts), and
`details` for staff and monitoring-token holders only (worker host names, account names, error
text). Neither ever holds a token, a secret or a broker URL (which can carry a password).

Accounts: an account whose secrets FIELD_ENCRYPTION_KEY cannot decrypt ("undecryptable"), whose
refresh was refused ("needs_reconnect"), or for which Zoom refused an operation for want of a
scope ("missing_scope", code 4711: the details name the scope in both of Zoom's naming schemes)
fails the check: actions on it would fail. One an admin disconnected on purpose does not.
"""

import dataclasses
import os
import time
from datetime import timedelta
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models.functions import Now
from django.utils.timezone import now

from .logging import scrub


@dataclasses.dataclass
class Check:
    ok: bool
    summary: dict = dataclasses.field(default_factory=dict)
    details: dict = dataclasses.field(default_factory=dict)
    ms: float = 0.0

    def as_json(self, *, detailed):
        data = {"ok": self.ok, "ms": round(self.ms, 1), **self.summary}
        if detailed:
            data.update(self.details)
        return data


def _timeout():
    return getattr(settings, "HEALTH_CHECK_TIMEOUT_SECONDS", 2.0)


def _error_text(error):
    """Plain, secret-free words for an exception: its class and a scrubbed message, no URLs."""
    text = scrub(str(error)).strip()
    # Broker and database errors can quote their URL, and a URL can carry a password.
    text = " ".join("<url>" if "://" in word else word for word in text.split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


# --- the checks -----------------------------------------------------------------------------


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as e:
        return Check(False, {"error": "the database cannot be reached"}, {"detail": _error_text(e)})
    return Check(True, {"vendor": connection.vendor})


def _transport():
    url = settings.CELERY_BROKER_URL
    return url.split("://", 1)[0].split("+", 1)[0] if "://" in url else url


def _default_queue():
    return getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")


@cache
def _redis_client(url, timeout):
    import redis

    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
    )


def _filesystem_folders():
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    return sorted({options.get("data_folder_in", ""), options.get("data_folder_out", "")} - {""})


def broker_queue_length():
    """Messages waiting in the default queue, or None if the broker cannot be read."""
    transport = _transport()
    queue = _default_queue()
    try:
        if transport == "filesystem":
            folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
            if not folder:
                return None
            suffix = f".{queue}.msg"
            with os.scandir(folder) as entries:
                return sum(1 for e in entries if e.name.endswith(suffix))
        if transport in ("redis", "rediss", "unix"):
            return int(_redis_client(settings.CELERY_BROKER_URL, _timeout()).llen(queue))
    except Exception:  # the health check reports the broker's failure; the metric shows -1
        return None
    return None


def check_broker():
    transport = _transport()
    summary = {"transport": transport}
    try:
        if transport == "filesystem":
            for folder in _filesystem_folders():
                path = Path(folder)
                if not path.is_dir():
                    return Check(
                        False,
                        {**summary, "error": "a broker folder is missing"},
                        {"detail": f"{folder} does not exist"},
                    )
                if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
                    return Check(
                        False,
                        {**summary, "error": "a broker folder is not writable"},
                        {"detail": f"{folder} is not readable and writable by this process"},
                    )
        elif transport in ("redis", "rediss", "unix"):
            _redis_client(settings.CELERY_BROKER_URL, _timeout()).ping()
        else:
            from kombu import Connection

            with Connection(settings.CELERY_BROKER_URL, connect_timeout=_timeout()) as conn:
                conn.ensure_connection(max_retries=1, timeout=_timeout())
    except Exception as e:  # any failure to reach the broker is the answer, not a crash
        return Check(
            False, {**summary, "error": "the broker cannot be reached"}, {"detail": _error_text(e)}
        )
    summary["queue_length"] = broker_queue_length()
    return Check(True, summary)


def check_worker():
    from .models import WorkerHeartbeat

    stale_after = timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_SECONDS)
    try:
        # Staleness by the database's clock, the one the workers' beats are written on: a web
        # host whose clock is off must not call live workers stale, or dead ones alive.
        beats = list(
            WorkerHeartbeat.objects.annotate(db_now=Now()).values_list(
                "hostname", "pid", "last_seen", "db_now"
            )
        )
    except DatabaseError as e:
        return Check(False, {"error": "the database cannot be reached"}, {"detail": _error_text(e)})
    fresh = [b for b in beats if b[3] - b[2] <= stale_after]
    summary = {
        "alive": len(fresh),
        "stale": len(beats) - len(fresh),
        "stale_after_seconds": settings.WORKER_HEARTBEAT_STALE_SECONDS,
    }
    details = {
        "workers": [
            {
                "hostname": hostname,
                "pid": pid,
                "seconds_since_heartbeat": round((current - last_seen).total_seconds(), 1),
            }
            for hostname, pid, last_seen, current in beats
        ]
    }
    if not fresh:
        summary["error"] = (
            "no Celery worker has reported in the last "
            f"{settings.WORKER_HEARTBEAT_STALE_SECONDS} s: actions will wait in the queue"
        )
    return Check(bool(fresh), summary, details)


def account_health(account):
    """One word for an account's connection: connected, needs_reconnect, undecryptable,
    missing_scope (Zoom refused an operation with code 4711) or disconnected."""
    from .fields import is_undecryptable

    if account.status == account.Status.DISCONNECTED:
        return "disconnected"
    if any(
        is_undecryptable(getattr(account, f))
        for f in ("client_secret", "access_token", "refresh_token", "webhook_secret_token")
    ):
        return "undecryptable"
    if account.status == account.Status.NEEDS_RECONNECT:
        return "needs_reconnect"
    if account.refused_scopes:
        return "missing_scope"
    return "connected"


FAILING_ACCOUNT_STATES = ("needs_reconnect", "undecryptable", "missing_scope")


def _refused(account):
    """What Zoom refused the account for want of a scope, in words and both schemes' names."""
    return [
        {
            "operation": need.operation_id,
            "cannot": need.what,
            "add_granular": list(need.granular),
            "add_classic": list(need.classic),
            "refused_at": at,
        }
        for need, at in account.refused_scopes
    ]


def check_zoom_accounts():
    from .models import ZoomAccount

    try:
        accounts = list(ZoomAccount.objects.order_by("name"))
    except DatabaseError as e:
        return Check(False, {"error": "the database cannot be reached"}, {"detail": _error_text(e)})
    counts = dict.fromkeys(
        ("connected", "needs_reconnect", "undecryptable", "missing_scope", "disconnected"), 0
    )
    listed = []
    for account in accounts:
        state = account_health(account)
        counts[state] += 1
        token_state = getattr(account, "token_state", None)
        entry = {
            "id": account.pk,
            "name": account.name,
            "kind": account.kind,
            "status": state,
            # valid / expiring / expired / none / unreadable: never the token itself.
            "token": token_state if isinstance(token_state, str) else None,
        }
        if state == "missing_scope":
            entry["missing_scopes"] = _refused(account)
            entry["error"] = "; ".join(
                f"Zoom refused to let it {need.what}: add {need.granular[0]} (granular) "
                f"or {need.classic[0]} (classic)"
                for need, _ in account.refused_scopes
            )
        listed.append(entry)
    failing = sum(counts[s] for s in FAILING_ACCOUNT_STATES)
    summary = dict(counts)
    if counts["undecryptable"]:
        summary["error"] = (
            "FIELD_ENCRYPTION_KEY cannot decrypt the stored secrets of "
            f"{counts['undecryptable']} account(s): put back the key they were encrypted with"
        )
    elif counts["needs_reconnect"]:
        summary["error"] = f"{counts['needs_reconnect']} Zoom account(s) need reconnecting"
    elif counts["missing_scope"]:
        summary["error"] = (
            f"Zoom refused {counts['missing_scope']} account(s) an operation for want of a "
            "permission (scope) of the Zoom app: add it in Zoom's App Marketplace"
        )
    return Check(failing == 0, summary, {"accounts": listed})


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "worker": check_worker,
    "accounts": check_zoom_accounts,
}


def run_checks(names=None, *, detailed=False):
    """Run the named checks (all by default); return (healthy, JSON-ready report)."""
    names = list(names or CHECKS)
    results = {}
    for name in names:
        started = time.monotonic()
        try:
            result = CHECKS[name]()
        except Exception as e:  # a bug in a check must show as a failed check, not a 500
            result = Check(False, {"error": "the check itself failed"}, {"detail": _error_text(e)})
        result.ms = (time.monotonic() - started) * 1000
        results[name] = result
    healthy = all(r.ok for r in results.values())
    report = {
        "status": "ok" if healthy else "fail",
        "time": now().isoformat(timespec="seconds"),
        "checks": {name: r.as_json(detailed=detailed) for name, r in results.items()},
    }
    return healthy, report
