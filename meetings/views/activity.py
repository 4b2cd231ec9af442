"""Activity: the audit trail for operators (who did what to which meeting, and what Zoom said),
and one action's page, whose job fragment is what every in-flight job on the dashboard polls."""

from django.db.models import Q
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from ..access import sees_client_addresses, visible_accounts, visible_actions
from ..forms import ActivityFilterForm
from ..models import Action, ActionKind
from .access import dashboard_view, get_visible, wants_fragment
from .pagination import paginate

# Which panel refreshes when a job of a kind finishes: "<group>-job-finished" (see meeting.html).
JOB_GROUPS = {
    ActionKind.END_MEETING: "controls",
    ActionKind.RECOVER_MEETING: "controls",
    ActionKind.END_WEBINAR: "controls",
    ActionKind.UPDATE_LIVESTREAM: "stream",
    ActionKind.START_LIVESTREAM: "stream",
    ActionKind.STOP_LIVESTREAM: "stream",
    ActionKind.UPDATE_WEBINAR_LIVESTREAM: "stream",
    ActionKind.START_WEBINAR_LIVESTREAM: "stream",
    ActionKind.STOP_WEBINAR_LIVESTREAM: "stream",
    ActionKind.FETCH_PAST_MEETING: "fetch",
    ActionKind.FETCH_PARTICIPANTS: "participants",
    ActionKind.SYNC: "sync",
}


def filtered_actions(form, user):
    actions = visible_actions(user)
    q = (form.value("q") or "").strip()
    if q:
        digits = q.replace(" ", "").replace("-", "")
        if digits.isascii() and digits.isdigit() and 0 < int(digits) < 2**63:  # not "²"
            actions = actions.filter(Q(target_id=int(digits)) | Q(topic__icontains=q))
        else:
            actions = actions.filter(Q(topic__icontains=q) | Q(target_uuid=q))
    for name in ("kind", "state", "source", "account"):
        value = form.value(name)
        if value not in (None, ""):
            actions = actions.filter(**{name: value})
    user = (form.value("user") or "").strip()
    if user:
        actions = actions.filter(requested_by__username__iexact=user)
    start, end = form.date_range()
    if start:
        actions = actions.filter(requested_at__gte=start)
    if end:
        actions = actions.filter(requested_at__lt=end)
    return actions


@dashboard_view
@require_GET
def activity(request):
    accounts = list(visible_accounts(request.user).only("pk", "name"))
    form = ActivityFilterForm(request.GET, accounts=accounts)
    form.is_valid()
    page = paginate(
        filtered_actions(form, request.user)
        .select_related("requested_by", "account")
        .only(*ACTIVITY_FIELDS),
        field="requested_at",
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    context = {
        "form": form,
        "page": page,
        "show_account": len(accounts) > 1,
        "filtered": any(
            request.GET.get(k)
            for k in ("q", "kind", "state", "source", "account", "user", "start_from", "start_to")
        ),
    }
    template = "meetings/activity.html"
    if wants_fragment(request) and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


ACTIVITY_FIELDS = (
    "pk",
    "kind",
    "target_type",
    "target_id",
    "target_uuid",
    "topic",
    "requested_at",
    "source",
    "state",
    "started_at",
    "finished_at",
    "attempts_count",
    "http_status",
    "zoom_code",
    "result_summary",
    "requested_by",
    "requested_by__username",
    "account",
    "account__name",
)


@dashboard_view
@require_GET
def action_page(request, pk):
    """One action in full; for htmx, its job fragment, which stops the poll once it is over."""
    action = get_visible(
        Action.objects.with_people()
        .defer("account__client_secret", "account__access_token", "account__refresh_token")
        .select_related("account"),
        request.user,
        pk=pk,
    )
    if wants_fragment(request):
        if action.is_active:
            return render(request, "meetings/_job.html", {"action": action})
        html = render_to_string("meetings/_job.html", {"action": action}, request=request)
        # The job is over: 286 tells htmx to stop polling, and the events let the panels that
        # show its target re-render (the meeting's status, the live stream panel, ...).
        response = HttpResponseStopPolling(html)
        detail = {"id": action.pk, "kind": action.kind, "state": action.state}
        trigger_client_event(response, "action-finished", detail)
        trigger_client_event(
            response, f"{JOB_GROUPS.get(action.kind, 'other')}-job-finished", detail
        )
        return response
    attempts = list(action.attempts.all())
    for attempt in attempts:
        attempt.label = operation_label(action, attempt.operation)
    return render(
        request,
        "meetings/action.html",
        {
            "action": action,
            "attempts": attempts,
            "params": shown_params(action),
            "target_url": target_url(action),
            # Where a request came from is for admins (and whom they allow), not every viewer.
            "show_client_ip": sees_client_addresses(request.user),
        },
    )


SECRET_WORDS = ("key", "secret", "token", "password")

# The parameters' names as the live stream forms label them.
PARAM_LABELS = {
    "stream_url": "Stream URL",
    "stream_key": "Stream key",
    "page_url": "Live stream page URL",
    "resolution": "Resolution",
    "active_speaker_name": "Show the active speaker's name",
    "display_name": "Display name",
    "preset_id": "Stream preset number",
    "preset_name": "Stream preset",
}

# Zoom's operations (the spec's operationId, what Attempt.operation records) in plain words.
# meetingStatus both ends and recovers: the action's kind says which.
OPERATION_LABELS = {
    "meetingStatus": "Change the meeting's status",
    "webinarStatus": "Change the webinar's status",
    "meeting": "Read the meeting",
    "webinar": "Read the webinar",
    "meetingLiveStreamUpdate": "Save the live stream settings",
    "meetingLiveStreamStatusUpdate": "Start or stop the live stream",
    "getMeetingLiveStreamDetails": "Read the live stream settings",
    "webinarLiveStreamUpdate": "Save the webinar's live stream settings",
    "webinarLiveStreamStatusUpdate": "Start or stop the webinar's live stream",
    "getWebinarLiveStreamDetails": "Read the webinar's live stream settings",
    "pastMeetingDetails": "Read the past meeting's details",
    "pastMeetingParticipants": "Read the past meeting's participants",
    "pastMeetings": "List the meeting's past instances",
    "pastWebinars": "List the webinar's past instances",
    "users": "List users",
    "meetings": "List a user's meetings",
    "webinars": "List a user's webinars",
}
KIND_OPERATION_LABELS = {
    (ActionKind.END_MEETING, "meetingStatus"): "End the meeting",
    (ActionKind.RECOVER_MEETING, "meetingStatus"): "Recover the meeting",
    (ActionKind.END_WEBINAR, "webinarStatus"): "End the webinar",
    (ActionKind.START_LIVESTREAM, "meetingLiveStreamStatusUpdate"): "Start the live stream",
    (ActionKind.STOP_LIVESTREAM, "meetingLiveStreamStatusUpdate"): "Stop the live stream",
    (ActionKind.START_WEBINAR_LIVESTREAM, "webinarLiveStreamStatusUpdate"): "Start the live stream",
    (ActionKind.STOP_WEBINAR_LIVESTREAM, "webinarLiveStreamStatusUpdate"): "Stop the live stream",
}
# The checks an executor makes after its call ("meeting (confirm end)", meetings/executors.py).
CHECK_LABELS = {
    "meeting (confirm end)": "Check that Zoom ended the meeting",
    "meeting (confirm recover)": "Check that Zoom recovered the meeting",
    "pastWebinars (confirm end)": "Check that Zoom ended the webinar",
}


def operation_label(action, operation):
    return (
        CHECK_LABELS.get(operation)
        or KIND_OPERATION_LABELS.get((action.kind, operation))
        or OPERATION_LABELS.get(operation)
        or operation
        or "—"
    )


def shown_params(action):
    """The action's parameters as the page may show them, labelled as the forms label them. The
    pipeline stores stream keys redacted already; this hides anything secret-sounding again, in
    case a kind forgets."""
    shown = []
    for name, value in (action.params or {}).items():
        if any(word in name.lower() for word in SECRET_WORDS):
            value = "(hidden)"
        elif value is True or value is False:
            value = "yes" if value else "no"
        elif value in ("", None):
            value = "—"
        shown.append((PARAM_LABELS.get(name, name.replace("_", " ").capitalize()), value))
    return shown


def target_url(action):
    """The page of the action's target in the dashboard, or "" when the mirror has none."""
    from ..models import Meeting, PastMeeting, Webinar

    if not action.target_id:
        return ""
    if (
        action.kind in (ActionKind.FETCH_PAST_MEETING, ActionKind.FETCH_PARTICIPANTS)
        and action.target_uuid
    ):
        past = PastMeeting.objects.filter(
            account_id=action.account_id, uuid=action.target_uuid
        ).first()
        if past:
            return reverse("past-meeting", args=[past.pk])
    model = {"meeting": Meeting, "webinar": Webinar}.get(action.target_type)
    if model is None:
        return ""
    row = (
        model.objects.filter(account_id=action.account_id, zoom_id=action.target_id)
        .only("pk")
        .first()
    )
    return reverse(action.target_type, args=[row.pk]) if row else ""


urlpatterns = [
    path("activity/", activity, name="activity"),
    path("activity/<int:pk>/", action_page, name="action"),
]
