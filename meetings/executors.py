"""
What each kind of action does: the Zoom call, how its success is confirmed, and what the mirror
records afterwards (through meetings.mirror, the mirror's writers).

An executor's `call(run)` makes the action's main Zoom call through `run.client` (the pipeline
records it as an attempt and decides on retries); `finish(run, value)` runs once Zoom accepted
it and returns the Outcome: succeeded or not, in plain words for the audit trail. `resumable`
says a call that Zoom accepted need not be made again when its worker died before finishing
(ending twice is harmless at Zoom, but the record must not say it ran twice).
`already_done(run)` answers, after an ambiguous error, whether the change happened anyway: an
Outcome that succeeded when something shows it did, else one whose summary says what was found
(the pipeline adds it to the failure). Ambiguous: the connection broke after the request went
out, or a worker died during an earlier call of the action and a new run sent it again. Zoom
then refuses what it already did with the words it has for real refusals, so its answer alone
proves nothing; the hooks look for evidence:

- end_meeting: Zoom's `GET /meetings/{id}` no longer says started (or the meeting is gone), or a
  meeting.ended event arrived since the action started. (After a plain 204 the end is confirmed
  the same way, but without holding the worker: meetings.confirmations.)
- end_webinar: Zoom's webinar API has no status, and a second end answers 404 code 3001, "not
  found or has expired", as for a wrong id. Evidence is a webinar.ended event Zoom sent since the
  action started (stored by the webhook receiver, applied to the mirror or not yet), or Zoom's
  list of the webinar's past instances (pastWebinars) naming the instance the mirror had live.
- recover_meeting: a second recover answers 400 code 3000, which also means "cannot access".
  Evidence is Zoom's `GET /meetings/{id}` answering (a deleted meeting answers 404 code 3001), or
  a meeting.recovered event since the action started.
- The live stream kinds have no hook, because a repeat is not refused. Zoom documents no error
  for stopping a stream that is not running (the sandbox answers 204), so a repeated stop
  succeeds. A start repeated within 30 s answers 429 "if the livestream has not already started,
  retry after 30 seconds": the pipeline waits that out, and the start after it answers 204 for
  the running stream, so the action succeeds with the 429 among its attempts. A repeated
  configuration sends the same settings again (204). Should Zoom ever refuse a repeated stop,
  the evidence to look for would be a meeting.live_streaming_stopped event since the action
  started: Zoom has no stream status to read. Webinars' streams behave as meetings' (the spec's
  webinarLiveStreamStatusUpdate), and Zoom sends no event for them at all.
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from . import mirror
from .models import ActionKind, LiveStreamStatus, Meeting, MeetingStatus, WebhookEvent, Webinar
from .timefmt import in_words

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    succeeded: bool
    summary: str
    result: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Executor:
    operation: str  # Zoom's operationId of the main call (the attempt rows name it)
    call: Any
    finish: Any
    success_text: str
    resumable: bool = True
    already_done: Any = None


def _event_since_start(run, event):
    """The EVENT (e.g. "webinar.ended") about the action's target that Zoom sent after the action
    started, as the webhook receiver stored it (the mirror may not have applied it yet: its
    processing is queued behind other work), or None.

    "Sent after" by Zoom's own clock (`event_ts`): an event about an earlier end that arrives
    late does not count."""
    action = run.action
    zoom_account_id = action.account.zoom_account_id
    if not zoom_account_id or action.started_at is None or action.target_id is None:
        return None
    return (
        WebhookEvent.objects.filter(
            object_id=action.target_id,
            event=event,
            zoom_account_id=zoom_account_id,
            event_ts__gte=math.floor(action.started_at.timestamp() * 1000),
        )
        .order_by("event_ts")
        .first()
    )


def _event_said(event):
    """The event in the audit trail's words: "the webinar.ended event Zoom sent at 12:00:01 UTC"."""
    at = datetime.fromtimestamp(event.event_ts / 1000, tz=UTC)
    return f"the {event.event} event Zoom sent at {at:%H:%M:%S} UTC"


def _call_failed(run, operation, error, failed):
    """Log a failed follow-up call; True when asking again cannot help (a permanent refusal:
    the connection needs reconnecting, access refused) or the retry budget is spent."""
    from .zoom.errors import ZoomError

    text = error.describe() if isinstance(error, ZoomError) else str(error)
    log.info("action %s: %s failed: %s", run.action.pk, operation, text)
    return failed >= settings.ACTION_MAX_ATTEMPTS or getattr(error, "permanent", False), text


# --- end a meeting, with confirmation ------------------------------------------------------------


def _end_meeting(run):
    run.client.end_meeting(run.action.target_id)


def _confirm_ended(run):
    """Whether the meeting really ended: the mirror already says so (a `meeting.ended` webhook
    processed since the action started), or Zoom's `GET /meetings/{id}` no longer says
    "started" (or the meeting is gone: an instant meeting disappears when it ends).

    Returns (confirmed, how): (True, how) when it ended; (False, how) when Zoom answered
    ACTION_CONFIRM_CHECKS times that it is still running; (None, why) when Zoom would not answer
    (errors and rate limits, up to ACTION_MAX_ATTEMPTS of them, backing off in between; a
    permanent refusal at once).
    """
    from .actions import backoff_delay
    from .ratelimit import ThrottleWaitError
    from .zoom.errors import ZoomError, ZoomNotFound

    action = run.action
    answered = failed = 0
    last_error = ""
    while True:
        if Meeting.objects.filter(
            account=action.account,
            zoom_id=action.target_id,
            status=MeetingStatus.ENDED,
            last_event_at__gte=action.started_at,
        ).exists():
            return True, "Zoom sent its meeting-ended event"
        try:
            meeting = run.call(
                "meeting (confirm end)", lambda c: c.get_meeting(action.target_id), counts=False
            )
        except ZoomNotFound:
            return True, "Zoom no longer lists the meeting"
        except (ZoomError, ThrottleWaitError) as e:
            failed += 1
            last_error = e.describe() if isinstance(e, ZoomError) else str(e)
            log.info("action %s: confirming the end failed: %s", action.pk, last_error)
            # A permanent refusal (the connection needs reconnecting, access refused) will not
            # pass by asking again: say so now rather than after the whole retry budget.
            if failed >= settings.ACTION_MAX_ATTEMPTS or getattr(e, "permanent", False):
                return None, last_error
            wait = getattr(e, "seconds", None) or backoff_delay(failed)
            run.wait(wait)
            continue
        if meeting.status != "started":
            # Zoom's own word ("waiting") means nobody is in it, which reads as the opposite of
            # ended to an operator: say what it means.
            return True, "Zoom no longer shows it in progress"
        answered += 1
        if answered >= settings.ACTION_CONFIRM_CHECKS:
            return False, f"checked {'once' if answered == 1 else f'{answered} times'} since"
        run.wait(settings.ACTION_CONFIRM_INTERVAL_SECONDS)


def _finish_end_meeting(run, _):
    """Zoom accepted the end: confirm it by Zoom's event, or by a look (meetings.confirmations);
    an Outcome, or Later while it is being confirmed."""
    from .confirmations import finish_end, look_at_meeting

    def record_ended(run, at):
        action = run.action
        mirror.record_meeting_status(action.account, action.target_id, MeetingStatus.ENDED, at=at)

    return finish_end(run, look_at_meeting, record_ended, Outcome)


def _end_meeting_already_done(run):
    confirmed, how = _confirm_ended(run)
    if confirmed is False:
        return Outcome(False, "Zoom says the meeting is still running")
    if confirmed is None:
        return Outcome(False, f"whether an earlier request ended it could not be checked ({how})")
    mirror.record_meeting_status(run.action.account, run.action.target_id, MeetingStatus.ENDED)
    return Outcome(
        True,
        f"Meeting ended (an earlier request went through; confirmed: {how})",
        {"confirmed": how},
    )


# --- recover a meeting ---------------------------------------------------------------------------


def _recover_meeting(run):
    run.client.recover_meeting(run.action.target_id)


def _finish_recover_meeting(run, _):
    mirror.record_meeting_status(run.action.account, run.action.target_id, MeetingStatus.WAITING)
    return Outcome(True, "Meeting recovered")


def _recover_meeting_already_done(run):
    """Whether the meeting is back (see the module docstring): a meeting.recovered event since
    the action started, or Zoom answering `GET /meetings/{id}` for it. Zoom's 404 there means it
    is still deleted (or gone for good); errors are asked again, backing off, as far as the
    retry budget allows."""
    from .actions import backoff_delay
    from .ratelimit import ThrottleWaitError
    from .zoom.errors import ZoomError, ZoomNotFound

    action = run.action
    failed = 0
    while True:
        event = _event_since_start(run, "meeting.recovered")
        if event is not None:
            how, status = f"{_event_said(event)} arrived", MeetingStatus.WAITING
            break
        try:
            meeting = run.call(
                "meeting (confirm recover)", lambda c: c.get_meeting(action.target_id), counts=False
            )
        except ZoomNotFound:
            return Outcome(False, "it is not back: Zoom still answers 404 for the meeting")
        except (ZoomError, ThrottleWaitError) as e:
            failed += 1
            give_up, text = _call_failed(run, "confirming the recover", e, failed)
            if give_up:
                return Outcome(False, f"whether it was recovered could not be checked ({text})")
            run.wait(getattr(e, "seconds", None) or backoff_delay(failed))
            continue
        status = MeetingStatus.STARTED if meeting.status == "started" else MeetingStatus.WAITING
        how = f"Zoom answers for it again ({meeting.status or 'waiting'})"
        break
    mirror.record_meeting_status(action.account, action.target_id, status)
    return Outcome(
        True,
        f"Meeting recovered (the answer to an earlier request was lost; confirmed: {how})",
        {"confirmed": how},
    )


# --- end a webinar -------------------------------------------------------------------------------


def _end_webinar(run):
    run.client.end_webinar(run.action.target_id)


def _finish_end_webinar(run, _):
    """As for a meeting; Zoom's webinar API has no status, so the look is at the webinar's past
    instances (meetings.confirmations.look_at_webinar)."""
    from .confirmations import finish_end, look_at_webinar

    def record_ended(run, at):
        action = run.action
        mirror.record_webinar_status(action.account, action.target_id, MeetingStatus.ENDED, at=at)

    return finish_end(run, look_at_webinar, record_ended, Outcome)


def _end_webinar_already_done(run):
    """Whether the webinar ended since the action started, from evidence only (see the module
    docstring): a webinar.ended event Zoom sent since then, or the instance the mirror had live
    listed among Zoom's past instances of the webinar. Looks ACTION_CONFIRM_CHECKS times,
    ACTION_CONFIRM_INTERVAL_SECONDS apart: the event may be on its way."""
    from .ratelimit import ThrottleWaitError
    from .zoom.errors import ZoomError

    action = run.action
    how = at = None
    listed = ""
    for check in range(settings.ACTION_CONFIRM_CHECKS):
        if check:
            run.wait(settings.ACTION_CONFIRM_INTERVAL_SECONDS)
        event = _event_since_start(run, "webinar.ended")
        if event is not None:
            how = f"{_event_said(event)} arrived"
            at = datetime.fromtimestamp(event.event_ts / 1000, tz=UTC)
            break
        # The instance that was live: the mirror has its UUID from webinar.started (or from a
        # sync while it ran). Without one there is nothing to look for; the event may yet come.
        live = mirror.live_webinar_uuid(action.account, action.target_id)
        if not live:
            listed = "the dashboard did not know which instance was live"
            continue
        try:
            instances = run.call(
                "pastWebinars (confirm end)",
                lambda c: c.list_past_webinar_instances(action.target_id),
                counts=False,
            )
        except (ZoomError, ThrottleWaitError) as e:
            give_up, text = _call_failed(run, "listing past instances", e, check + 1)
            listed = f"listing its past instances failed: {text}"
            if give_up:
                break
            continue
        if any(instance.uuid == live for instance in instances):
            how = f"Zoom lists the instance that was live ({live}) as past"
            break
        listed = f"Zoom does not list the instance that was live ({live}) as past"
    if how is None:
        return Outcome(
            False,
            "nothing shows that an earlier request ended it: no webinar.ended event from Zoom "
            f"since the action started, and {listed}",
        )
    mirror.record_webinar_status(action.account, action.target_id, MeetingStatus.ENDED, at=at)
    return Outcome(
        True,
        f"Webinar ended (the answer to an earlier request was lost; confirmed: {how})",
        {"confirmed": how},
    )


# --- live streams --------------------------------------------------------------------------------


# Meetings and webinars alike: the client's method for each, and the mirror's row. The key
# comes from the action's encrypted secret parameters (run.params), never from Action.params;
# for a preset, it is the key the preset had when the operator clicked (copied then), so an
# edit or a deletion of the preset since changes nothing here.


def _stream_row(run):
    action = run.action
    model = Webinar if action.target_type == "webinar" else Meeting
    return model.objects.filter(account=action.account, zoom_id=action.target_id).first()


def _stream_client_call(run, meeting_method, webinar_method):
    return getattr(
        run.client, webinar_method if run.action.target_type == "webinar" else meeting_method
    )


def _update_livestream(run):
    p = run.params
    _stream_client_call(run, "update_livestream", "update_webinar_livestream")(
        run.action.target_id,
        stream_url=p["stream_url"],
        stream_key=p["stream_key"],
        page_url=p["page_url"],
        resolution=p.get("resolution") or None,
    )


def _finish_update_livestream(run, _):
    p = run.params
    row = _stream_row(run)
    if row is not None:
        mirror.record_livestream(
            row,
            config={
                "stream_url": p["stream_url"],
                "stream_key": p["stream_key"],
                "page_url": p["page_url"],
                "resolution": p.get("resolution") or "",
            },
        )
    preset = f" from the preset “{p['preset_name']}”" if p.get("preset_name") else ""
    return Outcome(
        True, f"Live stream configured{preset}: {p['stream_url']} (page {p['page_url']})"
    )


def _start_livestream(run):
    p = run.params
    _stream_client_call(run, "start_livestream", "start_webinar_livestream")(
        run.action.target_id,
        active_speaker_name=p.get("active_speaker_name"),
        display_name=p.get("display_name") or None,
    )


def _finish_start_livestream(run, _):
    row = _stream_row(run)
    if row is not None:
        mirror.record_livestream(row, status=LiveStreamStatus.LIVE)
    return Outcome(True, "Live stream started")


def _stop_livestream(run):
    _stream_client_call(run, "stop_livestream", "stop_webinar_livestream")(run.action.target_id)


def _finish_stop_livestream(run, _):
    row = _stream_row(run)
    if row is not None:
        mirror.record_livestream(row, status=LiveStreamStatus.STOPPED)
    return Outcome(True, "Live stream stopped")


# --- reading: past meetings and the sync ---------------------------------------------------------


def _fetch_past_meeting(run):
    action = run.action
    return run.client.get_past_meeting(action.target_uuid or action.target_id)


def _finish_fetch_past_meeting(run, details):
    past = mirror.store_past_meeting(run.action.account, details)
    when = f" of {in_words(details.start_time)}" if details.start_time else ""
    parts = []
    if details.participants_count is not None:
        parts.append(f"{details.participants_count} participants")
    if details.duration is not None:
        parts.append(f"{details.duration} min")
    summary = f"Past meeting{when} fetched" + (f": {', '.join(parts)}" if parts else "")
    return Outcome(True, summary, {"past_meeting_id": past.pk, "uuid": details.uuid})


def _fetch_participants(run):
    # Every page in one call: a retry starts again from the first page (Zoom's page tokens
    # expire after 15 minutes, and a list half from before a retry could repeat or miss people).
    return list(run.client.list_past_participants(run.action.target_uuid))


def _finish_fetch_participants(run, people):
    past = mirror.store_past_participants(run.action.account, run.action.target_uuid, people)
    if past is None:
        return Outcome(
            False, "The past meeting's details are not in the dashboard: fetch them first"
        )
    if not people:
        # The spec's own note: Zoom lists nobody when an instance had a single participant.
        return Outcome(True, "Zoom listed no participants (it lists none for a one-person meeting)")
    return Outcome(
        True,
        f"{len(people)} participant{'s' if len(people) != 1 else ''} fetched",
        {"past_meeting_id": past.pk, "participants": len(people)},
    )


def _sync(run):
    # Fanned out into bounded parts (meetings.sync_runs): this run plans the sync, looks at its
    # parts, or finishes it; no run of it outlives the broker's visibility timeout.
    from .sync_runs import step

    return step(run)


def _finish_sync(run, result):
    from .sync_runs import Failed, Waiting

    if isinstance(result, Waiting):
        return result  # the parts still run: the action is handed back (Run.step)
    if isinstance(result, Failed):
        return Outcome(False, result.summary, result.result)
    _fire_triggers_after_sync(run.action.account)
    return Outcome(True, result.summary(), result.as_dict())


def _fire_triggers_after_sync(account):
    """The sync may have found meetings live whose meeting.started never came: their
    "when it starts" triggers fire now (once per instance, as from the event)."""
    from .automation import fire_triggers_for_live

    try:
        with transaction.atomic():
            fire_triggers_for_live(account)
    except Exception:
        # The sync itself succeeded; the next one tries the triggers again.
        log.exception("sync of %s: its triggers could not be fired", account)


EXECUTORS = {
    ActionKind.END_MEETING: Executor(
        "meetingStatus",
        _end_meeting,
        _finish_end_meeting,
        "Meeting ended",
        already_done=_end_meeting_already_done,
    ),
    ActionKind.RECOVER_MEETING: Executor(
        "meetingStatus",
        _recover_meeting,
        _finish_recover_meeting,
        "Meeting recovered",
        already_done=_recover_meeting_already_done,
    ),
    ActionKind.END_WEBINAR: Executor(
        "webinarStatus",
        _end_webinar,
        _finish_end_webinar,
        "Webinar ended",
        already_done=_end_webinar_already_done,
    ),
    ActionKind.UPDATE_LIVESTREAM: Executor(
        "meetingLiveStreamUpdate",
        _update_livestream,
        _finish_update_livestream,
        "Live stream configured",
    ),
    ActionKind.START_LIVESTREAM: Executor(
        "meetingLiveStreamStatusUpdate",
        _start_livestream,
        _finish_start_livestream,
        "Live stream started",
    ),
    ActionKind.STOP_LIVESTREAM: Executor(
        "meetingLiveStreamStatusUpdate",
        _stop_livestream,
        _finish_stop_livestream,
        "Live stream stopped",
    ),
    ActionKind.UPDATE_WEBINAR_LIVESTREAM: Executor(
        "webinarLiveStreamUpdate",
        _update_livestream,
        _finish_update_livestream,
        "Live stream configured",
    ),
    ActionKind.START_WEBINAR_LIVESTREAM: Executor(
        "webinarLiveStreamStatusUpdate",
        _start_livestream,
        _finish_start_livestream,
        "Live stream started",
    ),
    ActionKind.STOP_WEBINAR_LIVESTREAM: Executor(
        "webinarLiveStreamStatusUpdate",
        _stop_livestream,
        _finish_stop_livestream,
        "Live stream stopped",
    ),
    ActionKind.FETCH_PAST_MEETING: Executor(
        "pastMeetingDetails",
        _fetch_past_meeting,
        _finish_fetch_past_meeting,
        "Past meeting fetched",
        resumable=False,
    ),
    ActionKind.FETCH_PARTICIPANTS: Executor(
        "pastMeetingParticipants",
        _fetch_participants,
        _finish_fetch_participants,
        "Participants fetched",
        resumable=False,
    ),
    ActionKind.SYNC: Executor(
        "sync (users, meetings, webinars)", _sync, _finish_sync, "Synced", resumable=False
    ),
}
