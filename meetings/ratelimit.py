"""
Zoom's rate limits, held by every worker on every machine together.

Zoom counts requests per account and per label (Light / Medium / Heavy; NOTES.md), across every
app of the account. `throttle_for(account)` returns the `throttle(label)` callable the Zoom
client calls before each request: it reserves the next free slot for the account and label in a
shared limiter and sleeps until then. At steady state Zoom therefore never answers 429; when it
does anyway (another app of the account, a plan smaller than configured), `back_off(seconds)`
makes the whole account wait, every label, every worker.

The limiter is GCRA (the "generic cell rate algorithm", a token bucket kept as one timestamp per
bucket): the bucket of a label stores its theoretical arrival time, TAT. A request may go at
`max(now, TAT - burst_tolerance, backoff_until)`; granting it moves TAT one emission interval
(1 / rate) on. Slots are reserved, not polled for, so waiting workers are served in order and
never stampede. The rate is the account's `rate_limit(label)` (plan, or settings override) times
ZOOM_RATE_LIMIT_HEADROOM, because Zoom counts every app of the account against the same limit
and network jitter can bunch requests that left evenly spaced.

State lives in Redis (one Lua script, atomic, on Redis's clock) when REDIS_URL is set, else in
the database (RateLimitBucket rows, locked per request); while Redis is unreachable, in the
database too. A wait longer than
ZOOM_RATE_LIMIT_MAX_WAIT_SECONDS is not slept: the throttle raises ThrottleWaitError and the
action pipeline re-enqueues the action with a countdown, so no worker sits idle for long.
"""

import logging
import time
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

LABELS = ("light", "medium", "heavy")
BACKOFF = "backoff"


class ThrottleWaitError(Exception):
    """The rate limiter would have to wait longer than a worker should sleep. Nothing was
    reserved: ask again after `seconds`."""

    def __init__(self, seconds, label):
        self.seconds = seconds
        self.label = label
        super().__init__(f"rate limit for {label} requests: next slot in {seconds:.1f} s")


def limits_for(account, label):
    """(emission interval, burst tolerance) in seconds for ACCOUNT's LABEL."""
    if label not in LABELS:
        raise ValueError(f"unknown Zoom rate-limit label {label!r}")
    rate = account.rate_limit(label) * settings.ZOOM_RATE_LIMIT_HEADROOM
    interval = 1.0 / rate
    return interval, interval * (settings.ZOOM_RATE_LIMIT_BURST - 1)


class Throttle:
    """`throttle(label)` for one account: blocks until the request may go. See the module."""

    def __init__(self, account, backend, *, sleep=time.sleep, max_wait=None):
        self.account = account
        self.backend = backend
        self.sleep = sleep
        self.max_wait = settings.ZOOM_RATE_LIMIT_MAX_WAIT_SECONDS if max_wait is None else max_wait

    def __call__(self, label):
        wait = self.reserve(label)
        if wait > 0:
            self.sleep(wait)
        return wait

    def reserve(self, label):
        """Reserve LABEL's next slot without waiting for it: returns the seconds until the slot
        (0: now). The request must not leave before then (`throttle(label)` sleeps for it).
        Raises ThrottleWaitError, with nothing reserved, when the wait exceeds max_wait."""
        interval, tolerance = limits_for(self.account, label)
        wait = self.backend.reserve(self.account.pk, label, interval, tolerance, self.max_wait)
        if wait < 0:
            raise ThrottleWaitError(-wait, label)
        return wait

    def back_off(self, seconds):
        """After a 429: no request of this account, of any label, for SECONDS (capped at
        ZOOM_RATE_LIMIT_MAX_BACKOFF_SECONDS; at least one second when Zoom gave no time)."""
        seconds = 1.0 if seconds is None else float(seconds)
        seconds = min(max(seconds, 0.0), settings.ZOOM_RATE_LIMIT_MAX_BACKOFF_SECONDS)
        if seconds > 0:
            self.backend.back_off(self.account.pk, seconds)
            log.warning("Zoom rate limited account %s: pausing it %.1f s", self.account, seconds)

    def backoff_remaining(self):
        """Seconds the account still waits after a 429 (0 when it does not)."""
        return self.backend.backoff_remaining(self.account.pk)


# --- Redis -----------------------------------------------------------------------------------

# KEYS: the label's TAT key, the account's backoff key.
# ARGV: emission interval, burst tolerance, max wait (seconds).
# Returns the wait in seconds as a string (Redis truncates Lua numbers to integers): >= 0 when a
# slot was reserved, negative (minus the wait) when it would exceed max wait and nothing was.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local backoff = tonumber(redis.call('GET', KEYS[2]) or '0')
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local slot = math.max(now, tat - tolerance, backoff)
local wait = slot - now
if wait > max_wait then
  return tostring(-wait)
end
local new_tat = math.max(tat, slot) + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return tostring(wait)
"""

# KEYS: the account's backoff key. ARGV: seconds. Extends, never shortens, the pause.
_BACK_OFF = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untl = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > current then
  redis.call('SET', KEYS[1], tostring(untl), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return tostring(math.max(untl, current) - now)
"""

_REMAINING = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
return tostring(math.max(0, current - now))
"""


class RedisBackend:
    """The limiter in Redis. While Redis cannot be reached (restarting, failing over), each call
    is answered by `fallback` (the database backend, which every worker shares too) instead of
    failing: the limit still holds, and a Zoom call under way when Redis went (an end waiting to
    be confirmed) finishes rather than fails. Found by the fault suite (tests/faults)."""

    prefix = "zoomadmin:ratelimit"

    def __init__(self, client, fallback=None):
        self.client = client
        self.fallback = fallback
        self._reserve = client.register_script(_RESERVE)
        self._back_off = client.register_script(_BACK_OFF)
        self._remaining = client.register_script(_REMAINING)

    def _keys(self, account_id, label):
        return f"{self.prefix}:{account_id}:{label}", f"{self.prefix}:{account_id}:{BACKOFF}"

    def _unreachable(self, error):
        """The fallback to use now that Redis failed with ERROR (re-raised without one)."""
        global _last_unreachable_warning
        if self.fallback is None:
            raise error
        if time.monotonic() - _last_unreachable_warning > UNREACHABLE_WARNING_INTERVAL:
            _last_unreachable_warning = time.monotonic()
            log.warning("rate limiter: Redis unreachable (%s); using the database meanwhile", error)
        return self.fallback

    def reserve(self, account_id, label, interval, tolerance, max_wait):
        keys = self._keys(account_id, label)
        try:
            return float(self._reserve(keys=keys, args=[interval, tolerance, max_wait]))
        except (RedisConnectionError, RedisTimeoutError) as e:
            return self._unreachable(e).reserve(account_id, label, interval, tolerance, max_wait)

    def back_off(self, account_id, seconds):
        try:
            return float(self._back_off(keys=[self._keys(account_id, "")[1]], args=[seconds]))
        except (RedisConnectionError, RedisTimeoutError) as e:
            return self._unreachable(e).back_off(account_id, seconds)

    def backoff_remaining(self, account_id):
        try:
            return float(self._remaining(keys=[self._keys(account_id, "")[1]]))
        except (RedisConnectionError, RedisTimeoutError) as e:
            return self._unreachable(e).backoff_remaining(account_id)

    def reset(self, account_id):
        for label in (*LABELS, BACKOFF):
            self.client.delete(self._keys(account_id, label)[0])


# One warning per process this often while Redis stays unreachable, not one per Zoom call.
UNREACHABLE_WARNING_INTERVAL = 30.0
_last_unreachable_warning = -UNREACHABLE_WARNING_INTERVAL


@cache
def _redis_client(url):
    import redis

    # Short timeouts: a limiter that hangs would hang every Zoom call.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


# --- Database --------------------------------------------------------------------------------


def _db_now():
    """Seconds since the epoch on the database's clock when there can be several machines
    (PostgreSQL), else this machine's (SQLite is one file on one machine)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
            return float(cursor.fetchone()[0])
    return time.time()


class DatabaseBackend:
    """The same algorithm on RateLimitBucket rows, one short transaction per request.

    The rows are locked with SELECT ... FOR UPDATE (PostgreSQL); SQLite's IMMEDIATE
    transactions (settings) serialise the whole read-modify-write already.
    """

    def _rows(self, account_id, labels):
        from .models import RateLimitBucket

        rows = {
            r.label: r
            for r in RateLimitBucket.objects.select_for_update()
            .filter(account_id=account_id, label__in=labels)
            .order_by("label")  # one lock order for everyone: no deadlock
        }
        missing = [label for label in labels if label not in rows]
        if missing:
            RateLimitBucket.objects.bulk_create(
                [RateLimitBucket(account_id=account_id, label=label) for label in missing],
                ignore_conflicts=True,
            )
            rows = {
                r.label: r
                for r in RateLimitBucket.objects.select_for_update()
                .filter(account_id=account_id, label__in=labels)
                .order_by("label")
            }
        return rows

    def reserve(self, account_id, label, interval, tolerance, max_wait):
        with transaction.atomic():
            rows = self._rows(account_id, [label, BACKOFF])
            now = _db_now()
            tat = rows[label].value
            slot = max(now, tat - tolerance, rows[BACKOFF].value)
            wait = slot - now
            if wait > max_wait:
                return -wait
            rows[label].value = max(tat, slot) + interval
            rows[label].save(update_fields=["value"])
            return wait

    def back_off(self, account_id, seconds):
        with transaction.atomic():
            row = self._rows(account_id, [BACKOFF])[BACKOFF]
            now = _db_now()
            if now + seconds > row.value:
                row.value = now + seconds
                row.save(update_fields=["value"])
            return row.value - now

    def backoff_remaining(self, account_id):
        from .models import RateLimitBucket

        row = RateLimitBucket.objects.filter(account_id=account_id, label=BACKOFF).first()
        return max(0.0, row.value - _db_now()) if row else 0.0

    def reset(self, account_id):
        from .models import RateLimitBucket

        RateLimitBucket.objects.filter(account_id=account_id).update(value=0.0)


def backend():
    """The shared limiter state: Redis when REDIS_URL is set, else the database."""
    if settings.REDIS_URL:
        return RedisBackend(_redis_client(settings.REDIS_URL), fallback=DatabaseBackend())
    return DatabaseBackend()


def throttle_for(account, **kwargs):
    """The `throttle(label)` callable for ACCOUNT's Zoom client (also has `.back_off(s)`)."""
    return Throttle(account, backend(), **kwargs)
