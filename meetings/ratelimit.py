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

After a 429 the account is also *cautious* for ZOOM_RATE_LIMIT_CAUTION_SECONDS: its slots are
booked at ZOOM_RATE_LIMIT_HEADROOM_AFTER_429 instead. A 429 means the room we counted on was not
there (another app of the account is busy, or our requests arrived bunched), and a limiter that
went straight back to the same rate would meet the same refusal again and again; each one pauses
the whole account.

State lives in Redis (one Lua script, atomic, on Redis's clock) when REDIS_URL is set, else in
the database (RateLimitBucket rows, locked per request); while Redis is unreachable, in the
database too, at half the share of the limit Redis's bookings leave (`fallback_factor`). A wait
longer than
ZOOM_RATE_LIMIT_MAX_WAIT_SECONDS is not slept: the throttle raises ThrottleWaitError and the
action pipeline re-enqueues the action with a countdown, so no worker sits idle for long.

A 429 whose X-RateLimit-Type is Daily-limit (a Free account's cap per label and UTC day) is not a
moment's pause: `after_429` pauses that label only, until Zoom's Retry-After, and the throttle
refuses the label's requests meanwhile (meetings.budget, which keeps the pause in the database).
"""

import logging
import time
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# "resource" is Zoom's Resource-intensive label (the Dashboard's), counted per minute by Zoom;
# its rate here is in requests per second like the others (RATE_LIMITS in models).
LABELS = ("light", "medium", "heavy", "resource")
BACKOFF = "backoff"
CAUTION = "caution"


class ThrottleWaitError(Exception):
    """The rate limiter would have to wait longer than a worker should sleep. Nothing was
    reserved: ask again after `seconds`."""

    def __init__(self, seconds, label):
        self.seconds = seconds
        self.label = label
        super().__init__(f"rate limit for {label} requests: next slot in {seconds:.1f} s")


def limits_for(account, label, *, cautious=False):
    """(emission interval, burst tolerance) in seconds for ACCOUNT's LABEL; CAUTIOUS: while the
    account is cautious after a 429 (see the module)."""
    if label not in LABELS:
        raise ValueError(f"unknown Zoom rate-limit label {label!r}")
    share = settings.ZOOM_RATE_LIMIT_HEADROOM
    if cautious:
        share = min(share, settings.ZOOM_RATE_LIMIT_HEADROOM_AFTER_429)
    rate = account.rate_limit(label) * share
    interval = 1.0 / rate
    return interval, interval * (settings.ZOOM_RATE_LIMIT_BURST - 1)


class Throttle:
    """`throttle(label)` for one account: blocks until the request may go. See the module."""

    def __init__(self, account, backend, *, sleep=time.sleep, clock=time.monotonic, max_wait=None):
        self.account = account
        self.backend = backend
        self.sleep = sleep
        self.clock = clock
        self.max_wait = settings.ZOOM_RATE_LIMIT_MAX_WAIT_SECONDS if max_wait is None else max_wait
        self.late_slots = 0
        # The label of the request last booked: a 429 without X-RateLimit-Category is its.
        self.last_label = None

    def __call__(self, label):
        """Book LABEL's next slot and sleep until it; returns the seconds waited.

        A process that wakes more than ZOOM_RATE_LIMIT_LATE_SECONDS after its slot (the machine
        was busy) moves the slots not yet booked back by as much before it goes: sent that late,
        its request would otherwise reach Zoom within one second of as many requests as the
        limit allows after it, and Zoom counts arrivals. The cost is the lateness, once; a 429
        would pause the whole account."""
        self.check_daily_pause(label)
        self.last_label = label
        wait = self.reserve(label)
        due = self.clock() + wait
        if wait > 0:
            self.sleep(wait)
        late = self.clock() - due
        if late > settings.ZOOM_RATE_LIMIT_LATE_SECONDS:
            interval, _ = limits_for(self.account, label)
            self.backend.delay(self.account.pk, label, late, interval)
            self.late_slots += 1
        return wait

    def reserve(self, label):
        """Reserve LABEL's next slot without waiting for it: returns the seconds until the slot
        (0: now). The request must not leave before then (`throttle(label)` sleeps for it).
        Raises ThrottleWaitError, with nothing reserved, when the wait exceeds max_wait."""
        interval, tolerance = limits_for(self.account, label)
        cautious = limits_for(self.account, label, cautious=True)
        wait = self.backend.reserve(
            self.account.pk, label, interval, tolerance, self.max_wait, cautious=cautious
        )
        if wait < 0:
            raise ThrottleWaitError(-wait, label)
        return wait

    def check_daily_pause(self, label):
        """Raise budget.DailyLimitPaused, nothing sent, while Zoom's daily cap for LABEL is used
        up for the account (remembered from its Daily-limit 429, in the database: every
        process sees it). Only plans with daily caps pay for the look-up."""
        from . import budget

        if label in budget.daily_caps(self.account):
            seconds = budget.paused_for(self.account, label)
            if seconds > 0:
                raise budget.DailyLimitPaused(label, seconds)

    def after_429(self, error):
        """Zoom answered 429 (`error`, a ZoomRateLimited or None). A Daily-limit one pauses its
        label for the account until Zoom's Retry-After (the next 00:00 UTC), and only that label:
        the others still have their day. Any other pauses the whole account (back_off)."""
        from . import budget

        seconds = getattr(error, "retry_after", None)
        limit_type = (getattr(error, "limit_type", None) or "").lower()
        # Zoom's headers are sometimes missing (NOTES.md); its words are not: "You have reached
        # the maximum daily rate limit for this API".
        message = (getattr(error, "message", None) or "").lower()
        if limit_type.startswith("daily") or (not limit_type and "daily" in message):
            category = (getattr(error, "category", None) or "").lower()
            label = category if category in LABELS else self.last_label
            if label in LABELS:
                # No Retry-After: Zoom's day ends at 00:00 UTC, so the cap lasts until then.
                if seconds is None:
                    at = time.time()
                    seconds = 86400 - at % 86400
                budget.pause_label(self.account, label, seconds)
                log.warning(
                    "Zoom's daily limit for %s requests of account %s is used up: pausing them "
                    "%.0f s",
                    budget.LABEL_NAMES[label],
                    self.account,
                    seconds,
                )
                return
        self.back_off(seconds)

    def back_off(self, seconds):
        """After a 429: no request of this account, of any label, for SECONDS (capped at
        ZOOM_RATE_LIMIT_MAX_BACKOFF_SECONDS; at least one second when Zoom gave no time); then
        the account is cautious for ZOOM_RATE_LIMIT_CAUTION_SECONDS (see the module)."""
        seconds = 1.0 if seconds is None else float(seconds)
        seconds = min(max(seconds, 0.0), settings.ZOOM_RATE_LIMIT_MAX_BACKOFF_SECONDS)
        caution = settings.ZOOM_RATE_LIMIT_CAUTION_SECONDS
        self.backend.back_off(self.account.pk, seconds, caution=caution)
        log.warning(
            "Zoom rate limited account %s: pausing it %.1f s, then using %g %% of its limit "
            "for %.0f s",
            self.account,
            seconds,
            100
            * min(settings.ZOOM_RATE_LIMIT_HEADROOM, settings.ZOOM_RATE_LIMIT_HEADROOM_AFTER_429),
            caution,
        )

    def backoff_remaining(self):
        """Seconds the account still waits after a 429 (0 when it does not)."""
        return self.backend.backoff_remaining(self.account.pk)

    def caution_remaining(self):
        """Seconds the account stays cautious after its last 429 (0 when it is not)."""
        return self.backend.backoff_remaining(self.account.pk, CAUTION)


# --- Redis -----------------------------------------------------------------------------------

# KEYS: the label's TAT key, the account's backoff key, the account's caution key.
# ARGV: emission interval, burst tolerance, max wait (seconds), and the interval and tolerance
# while the account is cautious.
# Returns the wait in seconds as a string (Redis truncates Lua numbers to integers): >= 0 when a
# slot was reserved, negative (minus the wait) when it would exceed max wait and nothing was.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local backoff = tonumber(redis.call('GET', KEYS[2]) or '0')
local caution = tonumber(redis.call('GET', KEYS[3]) or '0')
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
if now < caution then
  interval = tonumber(ARGV[4])
  tolerance = tonumber(ARGV[5])
end
local slot = math.max(now, tat - tolerance, backoff)
local wait = slot - now
if wait > max_wait then
  return tostring(-wait)
end
local new_tat = math.max(tat, slot) + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return tostring(wait)
"""

# KEYS: the account's backoff key, its caution key. ARGV: the pause and the caution, seconds.
# Extends, never shortens, either.
_BACK_OFF = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local result = 0
for i = 1, 2 do
  local seconds = tonumber(ARGV[i])
  local untl = now + seconds
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if seconds > 0 and untl > current then
    redis.call('SET', KEYS[i], tostring(untl), 'PX', math.ceil(seconds * 1000) + 1000)
  end
  if i == 1 then
    result = math.max(untl, current) - now
  end
end
return tostring(result)
"""

# KEYS: the label's TAT key. ARGV: the lateness, the emission interval (seconds). The slots not
# yet booked move back by the lateness, and at least one interval after the late request.
_DELAY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local new_tat = math.max(tat + tonumber(ARGV[1]), now + tonumber(ARGV[2]))
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return tostring(new_tat - now)
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
        self._delay = client.register_script(_DELAY)

    def _key(self, account_id, label):
        return f"{self.prefix}:{account_id}:{label}"

    def _unreachable(self, error):
        """The fallback to use now that Redis failed with ERROR (re-raised without one)."""
        global _last_unreachable_warning
        if self.fallback is None:
            raise error
        if time.monotonic() - _last_unreachable_warning > UNREACHABLE_WARNING_INTERVAL:
            _last_unreachable_warning = time.monotonic()
            log.warning("rate limiter: Redis unreachable (%s); using the database meanwhile", error)
        return self.fallback

    def reserve(self, account_id, label, interval, tolerance, max_wait, *, cautious=None):
        keys = [self._key(account_id, k) for k in (label, BACKOFF, CAUTION)]
        cautious = cautious or (interval, tolerance)
        try:
            return float(self._reserve(keys=keys, args=[interval, tolerance, max_wait, *cautious]))
        except (RedisConnectionError, RedisTimeoutError) as e:
            fallback = self._unreachable(e)
            factor = fallback_factor()
            if factor is None:
                return -FALLBACK_RETRY_SECONDS  # no room left beside Redis's share: wait
            slow = (cautious[0] * factor, 0.0)
            return fallback.reserve(
                account_id, label, interval * factor, 0.0, max_wait, cautious=slow
            )

    def back_off(self, account_id, seconds, *, caution=0.0):
        keys = [self._key(account_id, BACKOFF), self._key(account_id, CAUTION)]
        try:
            return float(self._back_off(keys=keys, args=[seconds, caution]))
        except (RedisConnectionError, RedisTimeoutError) as e:
            return self._unreachable(e).back_off(account_id, seconds, caution=caution)

    def delay(self, account_id, label, seconds, interval):
        """A request of LABEL left SECONDS after its slot: move the unbooked slots back."""
        try:
            return float(self._delay(keys=[self._key(account_id, label)], args=[seconds, interval]))
        except (RedisConnectionError, RedisTimeoutError) as e:
            fallback = self._unreachable(e)
            factor = fallback_factor() or 1.0
            return fallback.delay(account_id, label, seconds, interval * factor)

    def backoff_remaining(self, account_id, which=BACKOFF):
        try:
            return float(self._remaining(keys=[self._key(account_id, which)]))
        except (RedisConnectionError, RedisTimeoutError) as e:
            return self._unreachable(e).backoff_remaining(account_id, which)

    def reset(self, account_id):
        for label in (*LABELS, BACKOFF, CAUTION):
            self.client.delete(self._key(account_id, label))


# While Redis is unreachable from a process (and only from it, perhaps: a partition), the other
# processes go on booking ZOOM_RATE_LIMIT_HEADROOM of Zoom's limit in Redis. A process on the
# database's bucket must then book only part of what they leave, so that both buckets together
# never pass Zoom's limit (issue 13: at the full share each, a partial outage doubled the rate).
# Not all of it: the leftover 1 - headroom is also the margin for requests that left evenly
# spaced and reach Zoom bunched (the headroom's reason), and two buckets that cannot see each
# other bunch too. Booking all of it, the two buckets summed to exactly the limit and Zoom
# answered 429 in the fault suite (tests/faults/test_limiter_partition.py); the cut-off process
# books FALLBACK_SHARE of it (half), the other half stays the margin. With no room left
# (headroom ≥ 0.99) it waits for Redis instead, asking again after FALLBACK_RETRY_SECONDS. A
# whole outage of Redis stops the broker too, so this slow lane carries only the calls already
# in flight.
FALLBACK_RETRY_SECONDS = 5.0
FALLBACK_SHARE = 0.5


def fallback_factor():
    """How many times longer the database's slots are than Redis's, or None for no room."""
    headroom = settings.ZOOM_RATE_LIMIT_HEADROOM
    left = 1.0 - headroom
    if left < 0.01:
        return None
    return headroom / (left * FALLBACK_SHARE)


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

    def reserve(self, account_id, label, interval, tolerance, max_wait, *, cautious=None):
        with transaction.atomic():
            rows = self._rows(account_id, [label, BACKOFF, CAUTION])
            now = _db_now()
            if cautious and now < rows[CAUTION].value:
                interval, tolerance = cautious
            tat = rows[label].value
            slot = max(now, tat - tolerance, rows[BACKOFF].value)
            wait = slot - now
            if wait > max_wait:
                return -wait
            rows[label].value = max(tat, slot) + interval
            rows[label].save(update_fields=["value"])
            return wait

    def delay(self, account_id, label, seconds, interval):
        with transaction.atomic():
            row = self._rows(account_id, [label])[label]
            now = _db_now()
            row.value = max(row.value + seconds, now + interval)
            row.save(update_fields=["value"])
            return row.value - now

    def back_off(self, account_id, seconds, *, caution=0.0):
        with transaction.atomic():
            rows = self._rows(account_id, [BACKOFF, CAUTION])
            now = _db_now()
            for label, extra in ((BACKOFF, seconds), (CAUTION, caution)):
                if extra > 0 and now + extra > rows[label].value:
                    rows[label].value = now + extra
                    rows[label].save(update_fields=["value"])
            return max(rows[BACKOFF].value - now, 0.0)

    def backoff_remaining(self, account_id, which=BACKOFF):
        from .models import RateLimitBucket

        row = RateLimitBucket.objects.filter(account_id=account_id, label=which).first()
        return max(0.0, row.value - _db_now()) if row else 0.0

    def reset(self, account_id):
        from .models import RateLimitBucket

        RateLimitBucket.objects.filter(account_id=account_id).update(value=0.0)


def backend():
    """The shared limiter state: Redis when REDIS_URL is set, else the database."""
    if settings.REDIS_URL:
        return RedisBackend(_redis_client(settings.REDIS_URL), fallback=DatabaseBackend())
    return DatabaseBackend()


def status(account):
    """What the limiter does for ACCOUNT now, in numbers for its connection page: the share of
    Zoom's limit it books, the Light limit in requests/s, and the seconds it stays paused or
    cautious after a 429."""
    throttle = throttle_for(account)
    cautious_for = throttle.caution_remaining()
    share = settings.ZOOM_RATE_LIMIT_HEADROOM
    if cautious_for:
        share = min(share, settings.ZOOM_RATE_LIMIT_HEADROOM_AFTER_429)
    light = account.rate_limit("light")
    return {
        "percent": round(100 * share),
        "light": light,
        "light_booked": light * share,
        "cautious_for": cautious_for,
        "paused_for": throttle.backoff_remaining(),
    }


def throttle_for(account, **kwargs):
    """The `throttle(label)` callable for ACCOUNT's Zoom client (also has `.back_off(s)`)."""
    return Throttle(account, backend(), **kwargs)
