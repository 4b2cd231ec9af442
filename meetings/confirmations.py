"""
Confirming an end after Zoom's 204, without spending the rate budget the ends need.

A 204 to `PUT /meetings/{id}/status` (end) does not prove the meeting ended: Zoom has answered
204 without ending it, and after a real end `GET /meetings/{id}` may still say "started" for some
seconds before `meeting.ended` is sent (NOTES.md, "Status lags"). Confirming every end with a
`GET` booked against the same Light limit as the ends halved the rate of a bulk end
(BENCHMARKS.md, section 1: ends at 0.45 of the limit). So the evidence is taken cheapest first:

1. Zoom's event. Where webhooks flow, `meeting.ended` (`webinar.ended`) comes within seconds and
   costs no request: the webhook receiver finishes the action waiting for it
   (`confirm_by_event`), and a run of the action that finds the event stored takes it as well.
2. A look, only when no event came within ACTION_CONFIRM_EVENT_WAIT_SECONDS of the 204:
   `GET /meetings/{id}` (a webinar, which Zoom gives no status: its past instances, listing the
   instance that was live). A look waits while ends of the same account are still to be sent
   (`ends_ahead`), so a batch's ends go first and its looks follow.
3. Zoom's status lags, so a look that still says started is not a failure: the action looks
   again ACTION_CONFIRM_INTERVAL_SECONDS later, up to ACTION_CONFIRM_CHECKS looks, and then says
   plainly what is known ("Zoom accepted the end but still shows the meeting in progress").

Meanwhile the action stays running (the batch is not done, nobody asks for the same end twice)
and reads "Ended at Zoom, confirming…"; between two looks no worker is held: the run hands the
action back with a countdown, as a retry does. Where it stands is `Action.result["confirming"]`
(`accepted_at`, the 204's time in epoch seconds; `looks`; `errors`, failed looks); the finished
action's result says how it was confirmed (`confirmed_by`: "event" or "look").
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Q

from zoomadmin import clock

from .mirror import live_webinar_uuid
from .models import (
    Action,
    ActionKind,
    ActionState,
    WebhookEvent,
)

log = logging.getLogger(__name__)

CONFIRMING = "Ended at Zoom, confirming…"
END_KINDS = (ActionKind.END_MEETING, ActionKind.END_WEBINAR)
ENDED_EVENT = {ActionKind.END_MEETING: "meeting.ended", ActionKind.END_WEBINAR: "webinar.ended"}
# A look put off for the ends ahead waits at most this long before it counts them again: they
# may go sooner than their number at the rate limit says (some fail at once).
MAX_DEFERRAL_SECONDS = 30.0
# ...and is put off for them at most this long in all (10,000 ends at Pro's 30/s take 5.5 min):
# an end that keeps failing and retrying must not hold every confirmation of the account.
MAX_TOTAL_DEFERRAL_SECONDS = 600.0


@dataclass
class Later:
    """A finish that is not done yet: the action stays running, reads SUMMARY, keeps CONFIRMING
    in its result and is run again in SECONDS."""

    seconds: float
    summary: str
    confirming: dict = field(default_factory=dict)


# --- The rules ---------------------------------------------------------------------------------


def next_step(confirming, *, now, ends_ahead=0, interval=0.0):
    """What a run does with an end Zoom accepted, when no event has confirmed it yet.

    CONFIRMING is where it stands (None: the 204 was just heard), NOW the time in epoch seconds,
    ENDS_AHEAD the account's ends still to be sent and INTERVAL the seconds between two of the
    account's Light requests. Returns ("wait", seconds, confirming) or ("look", 0, confirming).

    Rules: the first look is ACTION_CONFIRM_EVENT_WAIT_SECONDS after the 204 (Zoom's event may
    come first), or later when the ends ahead need longer; later looks are `next_at` (set by
    `after_look`); a look that is due waits while
    ends are ahead of it, for as long as the limit needs to send them (capped at
    MAX_DEFERRAL_SECONDS, then it counts again; MAX_TOTAL_DEFERRAL_SECONDS in all).
    """
    if confirming is None:
        # The run that comes back for the look is itself work for the workers: in a batch it
        # comes back once the ends ahead have gone, not to be put off again and again.
        confirming = {"accepted_at": now, "looks": 0, "errors": 0}
        behind = min(ends_ahead * interval, MAX_DEFERRAL_SECONDS)
        return "wait", max(settings.ACTION_CONFIRM_EVENT_WAIT_SECONDS, behind), confirming
    due = confirming.get("next_at") or (
        confirming["accepted_at"] + settings.ACTION_CONFIRM_EVENT_WAIT_SECONDS
    )
    if now < due:
        return "wait", due - now, confirming
    if ends_ahead and now < due + MAX_TOTAL_DEFERRAL_SECONDS:
        return "wait", min(max(ends_ahead * interval, 0.05), MAX_DEFERRAL_SECONDS), confirming
    return "look", 0.0, confirming


def after_look(confirming, *, ended, now):
    """The state after a look that found the end took effect (ENDED True) or not (False).
    Returns (confirming, finished): finished when ENDED, or when it was the
    ACTION_CONFIRM_CHECKS-th look; else the next look is ACTION_CONFIRM_INTERVAL_SECONDS on."""
    confirming = {**confirming, "looks": confirming.get("looks", 0) + 1}
    if ended or confirming["looks"] >= settings.ACTION_CONFIRM_CHECKS:
        return confirming, True
    confirming["next_at"] = now + settings.ACTION_CONFIRM_INTERVAL_SECONDS
    return confirming, False


def after_error(confirming, *, now, delay):
    """The state after a look Zoom did not answer (an error, a 429): counted, and tried again
    in DELAY seconds. Returns (confirming, give_up): give up after ACTION_MAX_ATTEMPTS."""
    confirming = {**confirming, "errors": confirming.get("errors", 0) + 1, "next_at": now + delay}
    return confirming, confirming["errors"] >= settings.ACTION_MAX_ATTEMPTS


def ends_ahead(account):
    """How many of ACCOUNT's ends (meetings and webinars) are on their way to Zoom and have not
    had its 204 yet: the ends a look must let go first. On their way: running, or queued with
    their task message sent; one whose message was never sent (the broker was down, or the
    command line runs them one after the other, `zoomctl --inline`) is not waited for."""
    on_their_way = Q(state=ActionState.RUNNING) | Q(
        state=ActionState.QUEUED, lease_expires_at__isnull=False
    )
    return (
        Action.objects.filter(on_their_way, account=account, kind__in=END_KINDS)
        .exclude(result__has_key="confirming")
        .count()
    )


# --- Evidence ----------------------------------------------------------------------------------


def ended_event(action):
    """The *.ended event about ACTION's target that Zoom sent after the action started, as the
    webhook receiver stored it (applied to the mirror or not yet), or None. "After" by Zoom's
    clock (`event_ts`): an event about an earlier end that arrives late does not count."""
    zoom_account_id = action.account.zoom_account_id
    if not zoom_account_id or action.started_at is None or action.target_id is None:
        return None
    return (
        WebhookEvent.objects.filter(
            object_id=action.target_id,
            event=ENDED_EVENT[action.kind],
            zoom_account_id=zoom_account_id,
            event_ts__gte=math.floor(action.started_at.timestamp() * 1000),
        )
        .order_by("event_ts")
        .first()
    )


def event_time(event):
    return datetime.fromtimestamp(event.event_ts / 1000, tz=UTC)


def by_event(action, event):
    """The summary and result of an end confirmed by Zoom's EVENT."""
    what = "Meeting" if action.kind == ActionKind.END_MEETING else "Webinar"
    summary = (
        f"{what} ended (confirmed by Zoom's {event.event} event, sent at "
        f"{event_time(event):%H:%M:%S} UTC)"
    )
    looks = (action.result.get("confirming") or {}).get("looks", 0)
    return summary, {
        "confirmed": f"the {event.event} event",
        "confirmed_by": "event",
        "looks": looks,
    }


def confirm_by_event(event, accounts, zoom_id):
    """Finish the end actions waiting for this *.ended EVENT (the webhook receiver calls this
    when it applies one): those of ACCOUNTS on ZOOM_ID, Zoom's 204 heard, started before Zoom
    sent the event. A run in the middle of a look is left to finish it itself
    (`Action.confirm_waiting`). Returns how many were confirmed."""
    kind = {v: k for k, v in ENDED_EVENT.items()}.get(event.event)
    if kind is None or event.event_ts is None:
        return 0
    waiting = Action.objects.filter(
        account__in=accounts,
        kind=kind,
        target_id=zoom_id,
        state=ActionState.RUNNING,
        result__has_key="confirming",
    )
    confirmed = 0
    for action in waiting:
        if action.started_at is None or event.event_ts < action.started_at.timestamp() * 1000:
            continue
        summary, result = by_event(action, event)
        if action.confirm_waiting(summary, result=result):
            confirmed += 1
            log.info("action %s: %s", action.pk, summary)
    return confirmed


# --- The executors' finish -----------------------------------------------------------------------


def finish_end(run, look, record_ended, outcome_cls):
    """The finish of an end Zoom accepted (see the module): an Outcome, or Later.

    LOOK(run) makes one look: True (it ended), False (Zoom still shows it going on) or None
    (nothing to look at: a webinar whose live instance the dashboard did not know); Zoom's
    errors are raised. RECORD_ENDED(run, at) writes the mirror."""
    from .actions import backoff_delay
    from .ratelimit import ThrottleWaitError, limits_for
    from .zoom.errors import ZoomError

    action = run.action
    what = "meeting" if action.kind == ActionKind.END_MEETING else "webinar"
    confirming = action.result.get("confirming")
    event = ended_event(action)
    if event is not None:
        record_ended(run, event_time(event))
        summary, result = by_event(action, event)
        return outcome_cls(True, summary, result)
    # accepted_at and next_at are kept in the action for whichever worker runs it next: on the
    # database's clock, or a worker five minutes behind would wait five minutes to look
    now = clock.epoch()
    ahead = ends_ahead(action.account)
    interval, _ = limits_for(action.account, "light")
    step, seconds, confirming = next_step(confirming, now=now, ends_ahead=ahead, interval=interval)
    if step == "wait":
        return Later(seconds, CONFIRMING, confirming)
    try:
        ended = look(run)
    except ThrottleWaitError as e:
        return Later(e.seconds, CONFIRMING, {**confirming, "next_at": now + e.seconds})
    except ZoomError as e:
        text = e.describe()
        delay = getattr(e, "seconds", None) or getattr(e, "retry_after", None)
        confirming, give_up = after_error(
            confirming, now=now, delay=delay or backoff_delay(confirming.get("errors", 0) + 1)
        )
        log.info("action %s: looking whether the end took effect failed: %s", action.pk, text)
        if give_up or e.permanent:
            return outcome_cls(
                False,
                f"Zoom accepted the end, but whether the {what} ended could not be confirmed "
                f"(the checks failed: {text})",
                {"confirmed": None, "confirmed_by": None, "looks": confirming["looks"]},
            )
        return Later(confirming["next_at"] - now, CONFIRMING, confirming)
    if ended is None:
        # Nothing Zoom shows can tell (a webinar has no status): the 204 is all there is, as
        # before this confirmation existed; the record says so.
        record_ended(run, None)
        return outcome_cls(
            True,
            f"{what.capitalize()} ended (Zoom accepted the end; no {ENDED_EVENT[action.kind]} "
            "event came to confirm it)",
            {"confirmed": None, "confirmed_by": None, "looks": confirming["looks"]},
        )
    confirming, finished = after_look(confirming, ended=ended, now=clock.epoch())
    looks = confirming["looks"]
    if ended:
        record_ended(run, None)
        return outcome_cls(
            True,
            f"{what.capitalize()} ended (confirmed: Zoom no longer shows it in progress)",
            {"confirmed": "a look at Zoom", "confirmed_by": "look", "looks": looks},
        )
    # Zoom's own event may have come while we looked.
    event = ended_event(action)
    if event is not None:
        record_ended(run, event_time(event))
        summary, result = by_event(action, event)
        return outcome_cls(True, summary, result)
    if finished:
        since = round(clock.epoch() - confirming["accepted_at"])
        times = "once" if looks == 1 else f"{looks} times"
        return outcome_cls(
            False,
            f"Zoom accepted the end but still shows the {what} in progress (looked {times}, "
            f"the last {since} s after Zoom's answer)",
            {"confirmed": False, "confirmed_by": None, "looks": looks},
        )
    return Later(confirming["next_at"] - clock.epoch(), CONFIRMING, confirming)


def look_at_meeting(run):
    """True when Zoom no longer shows the meeting in progress (or no longer has it: an instant
    meeting is gone once it ends), False while `GET /meetings/{id}` says started."""
    from .zoom.errors import ZoomNotFound

    action = run.action
    try:
        meeting = run.call(
            "meeting (confirm end)", lambda c: c.get_meeting(action.target_id), counts=False
        )
    except ZoomNotFound:
        return True
    return meeting.status != "started"


def look_at_webinar(run):
    """True when Zoom lists the instance that was live among the webinar's past instances,
    False while it does not, None when the dashboard did not know which instance was live (the
    mirror has its UUID from webinar.started, or from a sync while it ran)."""
    action = run.action
    live = live_webinar_uuid(action.account, action.target_id)
    if not live:
        return None
    instances = run.call(
        "pastWebinars (confirm end)",
        lambda c: c.list_past_webinar_instances(action.target_id),
        counts=False,
    )
    return any(instance.uuid == live for instance in instances)
