"""A meeting's page: its mirror, End / Recover, the live stream panel, past instances and the
timeline of its actions and webhook events. Each panel is a partial of meeting.html that the
page polls while one of its jobs runs and re-renders when a job finishes."""

from itertools import chain

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..forms import LiveStreamConfigForm, LiveStreamStartForm
from ..models import Action, ActionKind, Meeting, MeetingStatus, PastMeeting, WebhookEvent
from .access import allowed_kinds, dashboard_view, require_action_permission, wants_fragment
from .jobs import ActionRefused, announce, answer, start_action

TEMPLATE = "meetings/meeting.html"
PARTS = ("controls", "livestream", "past", "timeline")
CONTROL_KINDS = (ActionKind.END_MEETING, ActionKind.RECOVER_MEETING)
STREAM_KINDS = (
    ActionKind.UPDATE_LIVESTREAM,
    ActionKind.START_LIVESTREAM,
    ActionKind.STOP_LIVESTREAM,
)
MEETING_KINDS = (*CONTROL_KINDS, *STREAM_KINDS, ActionKind.FETCH_PAST_MEETING)
TIMELINE_LENGTH = 30


def get_meeting(pk):
    return get_object_or_404(
        Meeting.objects.select_related("account").defer(
            "account__client_secret", "account__access_token", "account__refresh_token"
        ),
        pk=pk,
    )


def _latest(actions, kinds):
    return next((a for a in actions if a.kind in kinds), None)


def start_unavailable_reason(meeting):
    """Why Start is not offered (the live stream preflight), or "" when it is."""
    if meeting.livestream_status == "live":
        return "The stream is already live."
    if not meeting.has_stream_configured or not meeting.stream_key:
        return "No stream is configured: save a stream URL, key and page URL first."
    if meeting.status != MeetingStatus.STARTED:
        return "The meeting is not live: Zoom streams only a meeting in progress."
    return ""


def meeting_context(request, meeting, *, config_form=None, start_form=None):
    actions = list(
        Action.objects.filter(
            account_id=meeting.account_id,
            target_id=meeting.zoom_id,
            kind__in=MEETING_KINDS,
        ).select_related("requested_by")[:TIMELINE_LENGTH]
    )
    events = list(
        WebhookEvent.objects.filter(object_id=meeting.zoom_id)
        .only("pk", "event", "received_at", "processed_at", "error", "object_uuid")
        .order_by("-received_at")[:TIMELINE_LENGTH]
    )
    timeline = sorted(
        chain(
            ({"at": a.requested_at, "action": a} for a in actions),
            ({"at": e.received_at, "event": e} for e in events),
        ),
        key=lambda item: item["at"],
        reverse=True,
    )[:TIMELINE_LENGTH]
    control_job = _latest(actions, CONTROL_KINDS)
    stream_job = _latest(actions, STREAM_KINDS)
    fetch_job = _latest(actions, (ActionKind.FETCH_PAST_MEETING,))
    kinds = allowed_kinds(request.user)
    stream_busy = bool(stream_job and stream_job.is_active)
    return {
        "meeting": meeting,
        "kinds": kinds,
        "can_end": ActionKind.END_MEETING in kinds,
        "can_recover": ActionKind.RECOVER_MEETING in kinds,
        "can_stream": ActionKind.START_LIVESTREAM in kinds,
        "can_fetch": ActionKind.FETCH_PAST_MEETING in kinds,
        "control_job": control_job,
        "control_busy": bool(control_job and control_job.is_active),
        "stream_job": stream_job,
        "stream_busy": stream_busy,
        "fetch_job": fetch_job,
        "config_form": config_form or LiveStreamConfigForm(meeting=meeting),
        "start_form": start_form or LiveStreamStartForm(),
        "start_unavailable": start_unavailable_reason(meeting),
        "past_instances": PastMeeting.objects.filter(
            account_id=meeting.account_id, zoom_id=meeting.zoom_id
        ).order_by("-start_time")[:20],
        "timeline": timeline,
    }


@dashboard_view
@require_GET
def meeting_page(request, pk):
    meeting = get_meeting(pk)
    template = TEMPLATE
    part = request.GET.get("part")
    if wants_fragment(request) and part in PARTS:
        template = f"{TEMPLATE}#{part}"
    return render(request, template, meeting_context(request, meeting))


def _confirm_page(request, meeting, kind, url_name):
    return render(
        request,
        "meetings/confirm.html",
        {
            "object": meeting,
            "kind": kind,
            "action_url": reverse(url_name, args=[meeting.pk]),
            "back_url": reverse("meeting", args=[meeting.pk]),
            "what": "meeting",
        },
    )


def _request(request, meeting, kind, part, **extra):
    """Request `kind` on this meeting and answer with the updated panel or a redirect."""
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
    return answer(
        request,
        template=TEMPLATE,
        fragment=part,
        context=meeting_context(request, meeting),
        fallback_url=reverse("meeting", args=[meeting.pk]),
    )


def _refuse(request, meeting, part, message):
    """Say no in the panel that asked (htmx), or as a message on the page (plain POST)."""
    if wants_fragment(request):
        context = meeting_context(request, meeting)
        context["refused"] = {part: message}
        return render(request, f"{TEMPLATE}#{part}", context)
    messages.error(request, message)
    return redirect("meeting", pk=meeting.pk)


@dashboard_view
@require_http_methods(["GET", "POST"])
def end_meeting(request, pk):
    meeting = get_meeting(pk)
    require_action_permission(request.user, ActionKind.END_MEETING)
    if request.method == "GET":
        return _confirm_page(request, meeting, ActionKind.END_MEETING, "meeting-end")
    if meeting.status == MeetingStatus.DELETED:
        return _refuse(
            request, meeting, "controls", "This meeting was deleted at Zoom: recover it first."
        )
    return _request(request, meeting, ActionKind.END_MEETING, "controls")


@dashboard_view
@require_http_methods(["GET", "POST"])
def recover_meeting(request, pk):
    meeting = get_meeting(pk)
    require_action_permission(request.user, ActionKind.RECOVER_MEETING)
    if request.method == "GET":
        return _confirm_page(request, meeting, ActionKind.RECOVER_MEETING, "meeting-recover")
    if meeting.status != MeetingStatus.DELETED:
        return _refuse(request, meeting, "controls", "Only a deleted meeting can be recovered.")
    return _request(request, meeting, ActionKind.RECOVER_MEETING, "controls")


def _stream_form_answer(request, meeting, **forms):
    """A live stream form with errors: the panel again, with what was typed (never the key)."""
    context = meeting_context(request, meeting, **forms)
    if wants_fragment(request):
        return render(request, f"{TEMPLATE}#livestream", context)
    return render(request, TEMPLATE, context, status=400)


@dashboard_view
@require_POST
def update_livestream(request, pk):
    meeting = get_meeting(pk)
    require_action_permission(request.user, ActionKind.UPDATE_LIVESTREAM)
    form = LiveStreamConfigForm(request.POST, meeting=meeting)
    if not form.is_valid():
        return _stream_form_answer(request, meeting, config_form=form)
    return _request(
        request, meeting, ActionKind.UPDATE_LIVESTREAM, "livestream", params=form.action_params()
    )


@dashboard_view
@require_POST
def start_livestream(request, pk):
    meeting = get_meeting(pk)
    require_action_permission(request.user, ActionKind.START_LIVESTREAM)
    form = LiveStreamStartForm(request.POST)
    valid = form.is_valid()
    reason = start_unavailable_reason(meeting)
    if reason:
        form.add_error(None, reason)
    if not valid or reason:
        return _stream_form_answer(request, meeting, start_form=form)
    return _request(
        request, meeting, ActionKind.START_LIVESTREAM, "livestream", params=form.action_params()
    )


@dashboard_view
@require_http_methods(["GET", "POST"])
def stop_livestream(request, pk):
    meeting = get_meeting(pk)
    require_action_permission(request.user, ActionKind.STOP_LIVESTREAM)
    if request.method == "GET":
        return _confirm_page(request, meeting, ActionKind.STOP_LIVESTREAM, "meeting-stream-stop")
    return _request(request, meeting, ActionKind.STOP_LIVESTREAM, "livestream")


@dashboard_view
@require_POST
def fetch_past_meeting(request, pk):
    """Fetch an instance's details: the latest instance, or the one whose UUID is posted."""
    meeting = get_meeting(pk)
    require_action_permission(request.user, ActionKind.FETCH_PAST_MEETING)
    uuid = request.POST.get("uuid", "").strip()
    # NUL cannot be in a UUID, and PostgreSQL refuses it in a query (a 500 before this check).
    if uuid and (
        "\x00" in uuid
        or not PastMeeting.objects.filter(zoom_id=meeting.zoom_id, uuid=uuid).exists()
    ):
        return _refuse(request, meeting, "past", "That instance is not one of this meeting's.")
    return _request(request, meeting, ActionKind.FETCH_PAST_MEETING, "past", target_uuid=uuid)


urlpatterns = [
    path("meetings/<int:pk>/", meeting_page, name="meeting"),
    path("meetings/<int:pk>/end/", end_meeting, name="meeting-end"),
    path("meetings/<int:pk>/recover/", recover_meeting, name="meeting-recover"),
    path("meetings/<int:pk>/livestream/", update_livestream, name="meeting-stream-update"),
    path("meetings/<int:pk>/livestream/start/", start_livestream, name="meeting-stream-start"),
    path("meetings/<int:pk>/livestream/stop/", stop_livestream, name="meeting-stream-stop"),
    path("meetings/<int:pk>/past/fetch/", fetch_past_meeting, name="meeting-fetch-past"),
]
