"""
What each kind of action does: the Zoom call, how its success is confirmed, and what the mirror
records afterwards (through meetings.mirror, the mirror's writers).

An executor's `call(run)` makes the action's main Zoom call through `run.client` (the pipeline
records it as an attempt and decides on retries); `finish(run, value)` runs once Zoom accepted
it and returns the Outcome: succeeded or not, in plain words for the audit trail. `resumable`
says a call that Zoom accepted need not be made again when its worker died before finishing
(ending twice is harmless at Zoom, but the record must not say it ran twice).
`already_done(run)` answers, after an ambiguous error, whether the change happened anyway.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from . import mirror
from .models import ActionKind, LiveStreamStatus, Meeting, MeetingStatus

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


def _meeting_row(run):
    action = run.action
    return Meeting.objects.filter(account=action.account, zoom_id=action.target_id).first()


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
            return True, "the meeting.ended event arrived"
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
            return True, f"Zoom reports it {meeting.status or 'not started'}"
        answered += 1
        if answered >= settings.ACTION_CONFIRM_CHECKS:
            return False, f"{answered} check{'s' if answered != 1 else ''} after Zoom's 204"
        run.wait(settings.ACTION_CONFIRM_INTERVAL_SECONDS)


def _finish_end_meeting(run, _):
    confirmed, how = _confirm_ended(run)
    if confirmed is False:
        return Outcome(
            False,
            f"Zoom accepted the end but the meeting is still running ({how})",
            {"confirmed": False},
        )
    if confirmed is None:
        return Outcome(
            False,
            f"Zoom accepted the end, but whether the meeting ended could not be confirmed "
            f"(the checks failed: {how})",
            {"confirmed": None},
        )
    mirror.record_meeting_status(run.action.account, run.action.target_id, MeetingStatus.ENDED)
    return Outcome(True, f"Meeting ended (confirmed: {how})", {"confirmed": how})


def _end_meeting_already_done(run):
    confirmed, how = _confirm_ended(run)
    if not confirmed:
        return None
    mirror.record_meeting_status(run.action.account, run.action.target_id, MeetingStatus.ENDED)
    return Outcome(
        True,
        f"Meeting ended (an earlier request went through; confirmed: {how})",
        {"confirmed": how},
    )


# --- the other meeting and webinar actions -------------------------------------------------------


def _recover_meeting(run):
    run.client.recover_meeting(run.action.target_id)


def _finish_recover_meeting(run, _):
    mirror.record_meeting_status(run.action.account, run.action.target_id, MeetingStatus.WAITING)
    return Outcome(True, "Meeting recovered")


def _end_webinar(run):
    run.client.end_webinar(run.action.target_id)


def _finish_end_webinar(run, _):
    # Zoom's webinar API has no status to read back: the webinar.ended event confirms it.
    mirror.record_webinar_status(run.action.account, run.action.target_id, MeetingStatus.ENDED)
    return Outcome(True, "Webinar ended (Zoom accepted the end)")


def _update_livestream(run):
    p = run.params
    run.client.update_livestream(
        run.action.target_id,
        stream_url=p["stream_url"],
        stream_key=p["stream_key"],
        page_url=p["page_url"],
        resolution=p.get("resolution") or None,
    )


def _finish_update_livestream(run, _):
    p = run.params
    meeting = _meeting_row(run)
    if meeting is not None:
        mirror.record_livestream(
            meeting,
            config={
                "stream_url": p["stream_url"],
                "stream_key": p["stream_key"],
                "page_url": p["page_url"],
                "resolution": p.get("resolution") or "",
            },
        )
    return Outcome(True, f"Live stream configured: {p['stream_url']} (page {p['page_url']})")


def _start_livestream(run):
    p = run.params
    run.client.start_livestream(
        run.action.target_id,
        active_speaker_name=p.get("active_speaker_name"),
        display_name=p.get("display_name") or None,
    )


def _finish_start_livestream(run, _):
    meeting = _meeting_row(run)
    if meeting is not None:
        mirror.record_livestream(meeting, status=LiveStreamStatus.LIVE)
    return Outcome(True, "Live stream started")


def _stop_livestream(run):
    run.client.stop_livestream(run.action.target_id)


def _finish_stop_livestream(run, _):
    meeting = _meeting_row(run)
    if meeting is not None:
        mirror.record_livestream(meeting, status=LiveStreamStatus.STOPPED)
    return Outcome(True, "Live stream stopped")


# --- reading: past meetings and the sync ---------------------------------------------------------


def _fetch_past_meeting(run):
    action = run.action
    return run.client.get_past_meeting(action.target_uuid or action.target_id)


def _finish_fetch_past_meeting(run, details):
    past = mirror.store_past_meeting(run.action.account, details)
    when = f" of {details.start_time:%Y-%m-%d %H:%M} UTC" if details.start_time else ""
    parts = []
    if details.participants_count is not None:
        parts.append(f"{details.participants_count} participants")
    if details.duration is not None:
        parts.append(f"{details.duration} min")
    summary = f"Past meeting{when} fetched" + (f": {', '.join(parts)}" if parts else "")
    return Outcome(True, summary, {"past_meeting_id": past.pk, "uuid": details.uuid})


def _sync(run):
    from .sync import sync_account

    return sync_account(run.action.account, run.client, on_progress=run.progress)


def _finish_sync(run, result):
    return Outcome(True, result.summary(), result.as_dict())


EXECUTORS = {
    ActionKind.END_MEETING: Executor(
        "meetingStatus",
        _end_meeting,
        _finish_end_meeting,
        "Meeting ended",
        already_done=_end_meeting_already_done,
    ),
    ActionKind.RECOVER_MEETING: Executor(
        "meetingStatus", _recover_meeting, _finish_recover_meeting, "Meeting recovered"
    ),
    ActionKind.END_WEBINAR: Executor(
        "webinarStatus", _end_webinar, _finish_end_webinar, "Webinar ended"
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
    ActionKind.FETCH_PAST_MEETING: Executor(
        "pastMeetingDetails",
        _fetch_past_meeting,
        _finish_fetch_past_meeting,
        "Past meeting fetched",
        resumable=False,
    ),
    ActionKind.SYNC: Executor(
        "sync (users, meetings, webinars)", _sync, _finish_sync, "Synced", resumable=False
    ),
}
