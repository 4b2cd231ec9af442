"""A meeting's page: its mirror, End / Recover, the live stream panel, past instances and the
timeline of its actions and webhook events. Each panel is a partial of meeting.html.

While the page is open its followed parts (the heading, the status panel with End / Recover, the
details and when Zoom was last heard from, the live stream state, the buttons of the live stream
forms, the past instances and the timeline) follow the mirror and the audit trail: the page polls
`meeting_state` with the version of each part it shows, and gets 204 when nothing changed, else
the parts that changed as out-of-band swaps (meetings/views/follow.py). The live stream forms'
fields are never in a swapped part, so typed input stays."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..access import restrict
from ..forms import LiveStreamConfigForm, LiveStreamStartForm
from ..models import Action, ActionKind, Meeting, MeetingStatus, PastMeeting
from ..templatetags.dashboard import ago
from . import follow, livestream
from .access import (
    allowed_kinds,
    dashboard_view,
    get_visible,
    require_action_permission,
    wants_fragment,
)
from .jobs import ActionRefused, announce, start_action

TEMPLATE = "meetings/meeting.html"
PARTS = ("controls", "livestream", "past", "timeline")
CONTROL_KINDS = (ActionKind.END_MEETING, ActionKind.RECOVER_MEETING)
STREAM_KINDS = (
    ActionKind.UPDATE_LIVESTREAM,
    ActionKind.START_LIVESTREAM,
    ActionKind.STOP_LIVESTREAM,
)
MEETING_KINDS = (*CONTROL_KINDS, *STREAM_KINDS, ActionKind.FETCH_PAST_MEETING)
PAST_LENGTH = 20


def get_meeting(request, pk):
    """The meeting, if it is of a Zoom connection this user may see; else 404."""
    return get_visible(
        Meeting.objects.select_related("account").defer(
            "account__client_secret", "account__access_token", "account__refresh_token"
        ),
        request.user,
        pk=pk,
    )


def by_zoom_id(request, model, page, list_page, number):
    """`/meetings/<Zoom's meeting id>/` (a link or a pasted id): the meeting's page, or the list
    searched for the id when several accounts have it; a 404 when none has. The dashboard's own
    numbers are small, Zoom's have 9 to 11 digits, so one is not taken for the other."""
    if 0 < number < 2**63:
        found = list(
            restrict(model.objects.filter(zoom_id=number), request.user).values_list(
                "pk", flat=True
            )[:2]
        )
        if len(found) == 1:
            return redirect(page, pk=found[0])
        if found:
            return redirect(f"{reverse(list_page)}?q={number}")
    raise Http404(f"No {page} with this number")


def latest_job(meeting, kinds):
    """The newest action of one of `kinds` on this meeting (one query, on action_target_idx)."""
    return (
        Action.objects.filter(
            account_id=meeting.account_id, target_id=meeting.zoom_id, kind__in=kinds
        )
        .with_people()
        .order_by("-requested_at", "-id")
        .first()
    )


def history(meeting):
    """The timeline (the newest actions and Zoom events, merged, newest first), the latest fetch
    job and the past instances, as the page shows them: three bounded queries, whatever the
    meeting's history, so the poll can read them every few seconds."""
    actions, items = follow.timeline(meeting.account_id, meeting.zoom_id, MEETING_KINDS)
    return {
        "configured_with": livestream.configured_with(actions, "meeting"),
        "timeline": items,
        "last_event_at": follow.last_event_at(meeting, items),
        "fetch_job": next((a for a in actions if a.kind == ActionKind.FETCH_PAST_MEETING), None),
        "past_instances": list(
            PastMeeting.objects.filter(account_id=meeting.account_id, zoom_id=meeting.zoom_id)
            .order_by("-start_time")
            .only(
                "pk",
                "uuid",
                "start_time",
                "end_time",
                "duration",
                "participants_count",
                "fetched_at",
            )[:PAST_LENGTH]
        ),
    }


def part_versions(status, shown_history):
    """The version of each followed part: a digest of what it shows (meetings/views/follow.py).

    The jobs count by id and state only: a running job polls its own fragment every second.
    A timeline row changes with its state (an action) or its processing (an event), a past
    instance when it is fetched again. The stream key counts as it is shown (masked), never in
    clear. "heard" shows how long ago Zoom was last heard from, so it counts that text.
    """
    meeting = status["meeting"]
    kinds = status["kinds"]
    last_event = shown_history["last_event_at"]
    return follow.part_versions(
        {
            "heading": (meeting.topic, meeting.host_email, meeting.host_id, meeting.account.name),
            "controls": (
                meeting.status,
                meeting.start_time,
                meeting.duration,
                meeting.livestream_status,
                follow.job_shown(status["control_job"]),
                status["can_end"],
                status["can_recover"],
            ),
            "details": (
                meeting.topic,
                meeting.uuid,
                meeting.type,
                meeting.host_email,
                meeting.host_id,
                meeting.timezone,
                meeting.join_url,
                meeting.account.name,
            ),
            "heard": (ago(meeting.last_synced_at), ago(last_event)),
            "livestream": livestream.panel_version(
                meeting, {**status, "configured_with": shown_history["configured_with"]}
            ),
            "past": (
                [(p.pk, p.fetched_at) for p in shown_history["past_instances"]],
                follow.job_shown(shown_history["fetch_job"]),
                ActionKind.FETCH_PAST_MEETING in kinds,
            ),
            "timeline": follow.timeline_shown(shown_history["timeline"]),
        }
    )


def status_context(request, meeting):
    """What the status parts need: the meeting's status, its current jobs, what may be done.
    (An End or Recover answers with the status panel alone, from this.)"""
    control_job = latest_job(meeting, CONTROL_KINDS)
    stream_job = latest_job(meeting, STREAM_KINDS)
    kinds = allowed_kinds(request.user, meeting.account)
    # The settings a live stream was started with (the active speaker's name, the display name)
    # are Zoom's to keep and it cannot be asked for them: the latest start from the dashboard
    # says what they were, and the page says that is where they come from.
    started_with = None
    if meeting.livestream_status == "live":
        started_with = (
            stream_job
            if stream_job and stream_job.kind == ActionKind.START_LIVESTREAM
            else latest_job(meeting, (ActionKind.START_LIVESTREAM,))
        )
        if started_with and started_with.state != "succeeded":
            started_with = None
    return {
        "meeting": meeting,
        "kinds": kinds,
        "can_end": ActionKind.END_MEETING in kinds,
        "can_recover": ActionKind.RECOVER_MEETING in kinds,
        "can_fetch": ActionKind.FETCH_PAST_MEETING in kinds,
        "control_job": control_job,
        "control_busy": bool(control_job and (control_job.is_active or control_job.is_awaiting)),
        **livestream.panel_context(
            meeting, "meeting", kinds=kinds, stream_job=stream_job, started_with=started_with
        ),
    }


def state_context(request, meeting):
    """What every followed part needs, and their versions: the page and the poll build it
    alike, so the page shows the versions the poll compares with."""
    status = status_context(request, meeting)
    shown_history = history(meeting)
    versions = part_versions(status, shown_history)
    return {
        **status,
        **shown_history,
        "part_versions": versions,
        "state_version": follow.page_version(versions),
    }


def meeting_context(request, meeting, *, config_form=None, start_form=None):
    from .automation import panel_context

    return {
        **state_context(request, meeting),
        # The "Scheduled" panel (meetings/views/automation.py): whole pages only.
        **panel_context(request, meeting, "meeting"),
        "config_form": config_form or LiveStreamConfigForm(meeting=meeting),
        "start_form": start_form or LiveStreamStartForm(),
    }


@dashboard_view
@require_GET
def meeting_page(request, pk):
    if not Meeting.objects.filter(pk=pk).exists():
        return by_zoom_id(request, Meeting, "meeting", "meetings", pk)
    meeting = get_meeting(request, pk)
    template = TEMPLATE
    part = request.GET.get("part")
    if wants_fragment(request) and part in PARTS:
        template = f"{TEMPLATE}#{part}"
    return render(request, template, meeting_context(request, meeting))


@dashboard_view
@require_GET
def meeting_state(request, pk):
    """The page's followed parts, polled every few seconds while the page is open and visible.

    `v` is the version of each part the page shows: when all are still current the answer is 204
    and htmx swaps nothing (the DOM, a focused button, an open dialog stay as they are).
    Otherwise the answer is the parts that changed as out-of-band swaps, and the poller with the
    new version. A constant number of queries whatever the meeting's history: the session and
    permissions, the meeting (with its account's name), its two latest jobs, and the newest of
    its actions, events and past instances (what the timeline and the past instances panel show,
    at most 30, 30 and 20 rows). A plain GET (no htmx) is sent to the page itself.
    """
    meeting = get_meeting(request, pk)
    if not wants_fragment(request):
        return redirect("meeting", pk=meeting.pk)
    return follow.state_answer(request, TEMPLATE, state_context(request, meeting))


# How the confirmation page names a status the dashboard last saw.
SEEN_AS = {
    MeetingStatus.WAITING: "waiting (not started)",
    MeetingStatus.STARTED: "live",
    MeetingStatus.ENDED: "ended",
    MeetingStatus.DELETED: "deleted",
}


def _confirm_page(request, meeting, kind, url_name, *, stale=False, refused=""):
    """The confirmation as a page (what a confirm link opens without JavaScript, or a URL opened
    directly). `stale`: the mirror does not show the state the action needs, but Zoom may, so
    the page says what the dashboard last saw and when, and still offers to ask Zoom.
    `refused`: the POST would refuse, so the page says why and offers no button."""
    heard = [t for t in (meeting.last_synced_at, meeting.last_event_at) if t]
    return render(
        request,
        "meetings/confirm.html",
        {
            "object": meeting,
            "kind": kind,
            "action_url": reverse(url_name, args=[meeting.pk]),
            "back_url": reverse("meeting", args=[meeting.pk]),
            "what": "meeting",
            "stale": stale,
            "refused": refused,
            "seen_as": SEEN_AS.get(meeting.status, meeting.status),
            "seen_at": max(heard) if heard else None,
        },
    )


def _request(request, meeting, kind, part, forms=None, **extra):
    """Request `kind` on this meeting and answer with the updated panel or a redirect.

    `forms` are the panel's forms as the answer shows them (default: as the mirror is now)."""
    try:
        action, created = start_action(
            request,
            account=meeting.account,
            kind=kind,
            target_type="meeting",
            target_id=meeting.zoom_id,
            topic=meeting.topic,
            **extra,
        )
    except ActionRefused as e:
        return _refuse(request, meeting, part, str(e))
    if not wants_fragment(request):
        announce(request, action, created)
        return redirect("meeting", pk=meeting.pk)
    return render(request, f"{TEMPLATE}#{part}", _panel_context(request, meeting, part, forms))


def _panel_context(request, meeting, part, forms=None):
    """What the panel PART needs: the status panel only the followed state (the whole page's
    context reads the timeline and past instances too, which an End's answer never shows)."""
    if part == "controls":
        return status_context(request, meeting)
    return meeting_context(request, meeting, **(forms or {}))


def _refuse(request, meeting, part, message):
    """Say no in the panel that asked (htmx), or as a message on the page (plain POST)."""
    if wants_fragment(request):
        context = _panel_context(request, meeting, part)
        context["refused"] = {part: message}
        return render(request, f"{TEMPLATE}#{part}", context)
    messages.error(request, message)
    return redirect("meeting", pk=meeting.pk)


@dashboard_view
@require_http_methods(["GET", "POST"])
def end_meeting(request, pk):
    meeting = get_meeting(request, pk)
    require_action_permission(request.user, ActionKind.END_MEETING, meeting.account)
    deleted = "This meeting was deleted at Zoom: recover it first."
    if request.method == "GET":
        # A meeting the mirror does not show live is still offered an End: the mirror lags Zoom
        # (a meeting.started delayed or missed until the next sync), the operator who opens this
        # URL has usually been told by someone in the meeting that it is running, and asking
        # costs nothing: Zoom refuses to end a meeting that is not running (3000), and the
        # refusal is recorded on the job like any answer. The page says what the dashboard
        # last saw, so nobody takes it for a live meeting.
        return _confirm_page(
            request,
            meeting,
            ActionKind.END_MEETING,
            "meeting-end",
            stale=meeting.status != MeetingStatus.STARTED,
            refused=deleted if meeting.status == MeetingStatus.DELETED else "",
        )
    if meeting.status == MeetingStatus.DELETED:
        return _refuse(request, meeting, "controls", deleted)
    return _request(request, meeting, ActionKind.END_MEETING, "controls")


@dashboard_view
@require_http_methods(["GET", "POST"])
def recover_meeting(request, pk):
    meeting = get_meeting(request, pk)
    require_action_permission(request.user, ActionKind.RECOVER_MEETING, meeting.account)
    not_deleted = "Only a deleted meeting can be recovered."
    if request.method == "GET":
        # The POST refuses a meeting the mirror does not show deleted, so the page offers nothing.
        return _confirm_page(
            request,
            meeting,
            ActionKind.RECOVER_MEETING,
            "meeting-recover",
            refused=not_deleted if meeting.status != MeetingStatus.DELETED else "",
        )
    if meeting.status != MeetingStatus.DELETED:
        return _refuse(request, meeting, "controls", not_deleted)
    return _request(request, meeting, ActionKind.RECOVER_MEETING, "controls")


def _stream_form_answer(request, meeting, **forms):
    """A live stream form with errors: the panel again, with what was typed (never the key)."""
    context = meeting_context(request, meeting, **forms)
    if wants_fragment(request):
        return render(request, f"{TEMPLATE}#livestream", context)
    return render(request, TEMPLATE, context, status=400)


update_livestream, apply_preset, start_livestream, stop_livestream = livestream.stream_views(
    livestream.StreamPage(
        what="meeting",
        get=get_meeting,
        request_action=lambda request, meeting, kind, forms=None, **extra: _request(
            request, meeting, kind, "livestream", forms=forms, **extra
        ),
        refuse=lambda request, meeting, message: _refuse(request, meeting, "livestream", message),
        form_answer=_stream_form_answer,
        confirm_stop=lambda request, meeting: _confirm_page(
            request, meeting, ActionKind.STOP_LIVESTREAM, "meeting-stream-stop"
        ),
    )
)


@dashboard_view
@require_POST
def fetch_past_meeting(request, pk):
    """Fetch an instance's details: the latest instance, or the one whose UUID is posted."""
    meeting = get_meeting(request, pk)
    require_action_permission(request.user, ActionKind.FETCH_PAST_MEETING, meeting.account)
    uuid = request.POST.get("uuid", "").strip()
    # NUL cannot be in a UUID, and PostgreSQL refuses it in a query (a 500 before this check).
    if uuid and (
        "\x00" in uuid
        or not PastMeeting.objects.filter(
            account_id=meeting.account_id, zoom_id=meeting.zoom_id, uuid=uuid
        ).exists()
    ):
        return _refuse(request, meeting, "past", "That instance is not one of this meeting's.")
    return _request(request, meeting, ActionKind.FETCH_PAST_MEETING, "past", target_uuid=uuid)


urlpatterns = [
    path("meetings/<int:pk>/", meeting_page, name="meeting"),
    path("meetings/<int:pk>/state/", meeting_state, name="meeting-state"),
    path("meetings/<int:pk>/end/", end_meeting, name="meeting-end"),
    path("meetings/<int:pk>/recover/", recover_meeting, name="meeting-recover"),
    path("meetings/<int:pk>/livestream/", update_livestream, name="meeting-stream-update"),
    path("meetings/<int:pk>/livestream/start/", start_livestream, name="meeting-stream-start"),
    path("meetings/<int:pk>/livestream/stop/", stop_livestream, name="meeting-stream-stop"),
    path("meetings/<int:pk>/livestream/preset/", apply_preset, name="meeting-stream-preset"),
    path("meetings/<int:pk>/past/fetch/", fetch_past_meeting, name="meeting-fetch-past"),
]
