"""
An account's daily request budget: how often its scheduled syncs may run, and the pause after
Zoom said a daily cap is used up.

Zoom's Free plan caps each rate-limit label per UTC day (ZOOM_DAILY_LIMIT_LIGHT / _MEDIUM /
_HEAVY; NOTES.md), per account and across every app of the account; past the cap Zoom answers
429 with `X-RateLimit-Type: Daily-limit` and a Retry-After at the next 00:00 UTC. Paid plans have
no daily caps, only per-second ones (meetings.ratelimit).

The sync interval (`sync_plan`), for each capped label:

    interval = 86,400 s x requests one sync makes / (SYNC_DAILY_BUDGET_SHARE x the daily cap)

and the longest of those, never shorter than SYNC_INTERVAL_SECONDS. "Requests one sync makes" is
what the last complete sync counted (SyncResult.requests), or before one ran, an estimate from
the account's size: a Medium page of users per 300 users plus three Medium listings per user
(scheduled meetings, live meetings, webinars). So a Free account of 100 users (~301 Medium
requests a sync) with the default half of its 2,000 Medium requests syncs every 7 h 13 min: 3.3
syncs, about 1,000 requests a day. The syncs of one UTC day are at most 1 + share x cap / per
sync, so they spend at most share x cap + one sync: inside the cap while one sync takes no more
than the rest of it (1,000 Medium requests, about 330 users on Free with the default share;
beyond that a single sync can meet the cap, which then pauses it until 00:00 UTC).

While webhooks flow (an event received within SYNC_WEBHOOKS_FLOWING_SECONDS) the events keep the
mirror current, and the interval is at least SYNC_INTERVAL_WITH_WEBHOOKS_SECONDS.

A Daily-limit 429 pauses its label for the account until Zoom's Retry-After. The pause is a
RateLimitBucket row ("daily:medium", until when in epoch seconds on the database's clock), so
every worker and web process on every machine sees it: the throttle refuses that label's
requests without sending them (DailyLimitPaused), scheduled syncs wait, and the connection's
page says so.
"""

import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils.timezone import now

from .zoom.errors import ZoomRateLimited

LABEL_NAMES = {"light": "Light", "medium": "Medium", "heavy": "Heavy"}
PAUSE_PREFIX = "daily:"
# Medium listings a sync makes per user: scheduled and live meetings, and webinars.
LISTINGS_PER_USER = 3
USERS_PER_PAGE = 300


class DailyLimitPaused(ZoomRateLimited):
    """A request not sent because Zoom's daily cap for its label is used up until `retry_after`
    seconds from now (remembered from Zoom's Daily-limit 429)."""

    def __init__(self, label, seconds):
        super().__init__(
            f"Zoom's daily limit for {LABEL_NAMES.get(label, label)} requests is used up",
            retry_after=seconds,
            category=LABEL_NAMES.get(label, label),
            limit_type="Daily-limit",
            status=429,
            code=429,
        )
        self.label = label

    def describe(self):
        return describe_pause(self.label, self.retry_after, then="they can be sent again")


def daily_caps(account):
    """{label: requests a day} for the labels Zoom caps per day on `account`'s plan."""
    if account.plan != "free":
        return {}
    return {label: getattr(settings, f"ZOOM_DAILY_LIMIT_{label.upper()}") for label in LABEL_NAMES}


# --- Pauses after a Daily-limit 429 ------------------------------------------------------------


def _db_now():
    from .ratelimit import _db_now

    return _db_now()


def pause_label(account, label, seconds):
    """Zoom said `label`'s daily cap is used up for `seconds` more: no request of that label
    for the account until then (extends, never shortens, a pause)."""
    from .models import RateLimitBucket

    until = _db_now() + max(float(seconds), 0.0)
    row, created = RateLimitBucket.objects.get_or_create(
        account=account, label=PAUSE_PREFIX + label, defaults={"value": until}
    )
    if not created:
        RateLimitBucket.objects.filter(pk=row.pk, value__lt=until).update(value=until)


def paused_for(account, label):
    """Seconds `label` stays paused for the account (0 when it is not)."""
    from .models import RateLimitBucket

    until = (
        RateLimitBucket.objects.filter(account=account, label=PAUSE_PREFIX + label)
        .values_list("value", flat=True)
        .first()
    )
    return max(0.0, until - _db_now()) if until else 0.0


def pauses(account):
    """{label: seconds left} of the account's paused labels."""
    from .models import RateLimitBucket

    rows = RateLimitBucket.objects.filter(account=account, label__startswith=PAUSE_PREFIX)
    at = _db_now()
    found = {}
    for label, until in rows.values_list("label", "value"):
        if until > at:
            found[label[len(PAUSE_PREFIX) :]] = until - at
    return found


def describe_pause(label, seconds, *, then="syncing resumes"):
    """Words for the connection's page: "Zoom's daily limit for Medium requests is used up;
    syncing resumes at 00:00 UTC (in 3 h 12 min)"."""
    # To the nearest minute: Zoom's Retry-After is a whole 00:00, and the pause, measured on
    # this machine's clock, may end a few milliseconds either side of it.
    resumes = datetime.now(UTC) + timedelta(seconds=(seconds or 0) + 30)
    resumes = resumes.replace(second=0, microsecond=0)
    return (
        f"Zoom's daily limit for {LABEL_NAMES.get(label, label)} requests is used up; "
        f"{then} at {resumes:%H:%M} UTC (in {duration(seconds or 0)})"
    )


def duration(seconds):
    """'3 h 12 min', '12 min', '40 s'."""
    seconds = max(0, math.ceil(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


# --- The sync interval ---------------------------------------------------------------------------


def _last_complete_sync(account):
    from .models import Action, ActionKind, ActionState

    return (
        Action.objects.filter(account=account, kind=ActionKind.SYNC, state=ActionState.SUCCEEDED)
        .order_by("-requested_at")
        .only("result")
        .first()
    )


def requests_per_sync(account):
    """{label: requests} one sync of the account makes: measured by the last complete sync,
    else estimated from the account's size (see the module)."""
    from .models import ZoomUser

    last = _last_complete_sync(account)
    result = (last.result or {}) if last else {}
    measured = result.get("requests") if isinstance(result.get("requests"), dict) else {}
    users = result.get("users") if isinstance(result.get("users"), int) else None
    if users is None:
        users = ZoomUser.objects.filter(account=account).count() or 1
    estimate = {"medium": math.ceil(users / USERS_PER_PAGE) + LISTINGS_PER_USER * users}
    counts = {}
    for label in LABEL_NAMES:
        value = measured.get(label)
        counts[label] = int(value) if isinstance(value, int) and value > 0 else 0
    if not any(counts.values()):
        counts.update(estimate)
    return counts


def webhooks_flowing(account, at=None):
    """Whether Zoom's events for the account arrive (one received recently)."""
    from .models import WebhookEvent

    if not account.zoom_account_id:
        return False
    since = (at or now()) - timedelta(seconds=settings.SYNC_WEBHOOKS_FLOWING_SECONDS)
    return WebhookEvent.objects.filter(
        zoom_account_id=account.zoom_account_id, received_at__gte=since
    ).exists()


def sync_plan(account, at=None):
    """How often the account's scheduled syncs run, and why: a dict with `interval` (seconds),
    `per_sync` ({label: requests}), `caps` ({label: requests a day}), `limited_by` (the label
    whose cap sets the interval, or None), `webhooks` (whether they flow) and `text` (words for
    the connection's page)."""
    base = settings.SYNC_INTERVAL_SECONDS
    share = settings.SYNC_DAILY_BUDGET_SHARE
    caps = daily_caps(account)
    per_sync = requests_per_sync(account)
    interval, limited_by = float(base), None
    for label, cap in caps.items():
        if per_sync.get(label):
            needed = 86400 * per_sync[label] / (share * cap)
            if needed > interval:
                interval, limited_by = needed, label
    flowing = webhooks_flowing(account, at)
    if flowing:
        interval = max(interval, float(settings.SYNC_INTERVAL_WITH_WEBHOOKS_SECONDS))
    interval = math.ceil(interval)
    text = f"Scheduled syncs run every {duration(interval)}"
    if limited_by:
        text += (
            f": this Free account's {LABEL_NAMES[limited_by]} limit is "
            f"{caps[limited_by]:,} requests a day, a sync takes about {per_sync[limited_by]:,}, "
            f"and scheduled syncs may use {share:.0%} of the limit"
        )
    if flowing:
        text += "; Zoom's events arrive, so they keep the dashboard current in between"
    return {
        "interval": interval,
        "per_sync": per_sync,
        "caps": caps,
        "limited_by": limited_by,
        "webhooks": flowing,
        "text": text + ".",
    }


def sync_due(account, at=None):
    """Whether a scheduled sync of the account is due at `at`: none ran within its interval
    (any sync counts, Sync now included: it spent the same budget), and no label a sync needs
    is paused by a daily limit."""
    from .models import Action, ActionKind

    at = at or now()
    paused = pauses(account)
    needed = {"medium"} | {label for label, n in requests_per_sync(account).items() if n}
    if paused.keys() & needed:
        return False
    last = (
        Action.objects.filter(account=account, kind=ActionKind.SYNC)
        .order_by("-requested_at")
        .values_list("requested_at", flat=True)
        .first()
    )
    if last is None:
        return True
    return last + timedelta(seconds=sync_plan(account, at)["interval"]) <= at


def page_status(account):
    """What the connection's page says about syncing: `schedule` (how often and why) and
    `pauses` (a sentence per label Zoom's daily limit stopped)."""
    paused = pauses(account)
    return {
        "schedule": sync_plan(account)["text"],
        "pauses": [describe_pause(label, seconds) for label, seconds in sorted(paused.items())],
    }
