"""Activity: the audit trail for operators (who did what to which meeting, and what Zoom said),
and one action's page, whose job fragment is what every in-flight job on the dashboard polls."""

from django.db.models import Q
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from ..forms import ActivityFilterForm
from ..models import Action, ActionKind, ZoomAccount
from .access import dashboard_view, wants_fragment
from .pagination import paginate

# Which panel refreshes when a job of a kind finishes: "<group>-job-finished" (see meeting.html).
JOB_GROUPS = {
    ActionKind.END_MEETING: "controls",
    ActionKind.RECOVER_MEETING: "controls",
    ActionKind.END_WEBINAR: "controls",
    ActionKind.UPDATE_LIVESTREAM: "stream",
    ActionKind.START_LIVESTREAM: "stream",
    ActionKind.STOP_LIVESTREAM: "stream",
    ActionKind.FETCH_PAST_MEETING: "fetch",
    ActionKind.SYNC: "sync",
}


def filtered_actions(form):
    actions = Action.objects.all()
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
    accounts = list(ZoomAccount.objects.only("pk", "name"))
    form = ActivityFilterForm(request.GET, accounts=accounts)
    form.is_valid()
    page = paginate(
        filtered_actions(form).select_related("requested_by", "account").only(*ACTIVITY_FIELDS),
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
    action = get_object_or_404(
        Action.objects.select_related("requested_by", "batch")
        .defer("account__client_secret", "account__access_token", "account__refresh_token")
        .select_related("account"),
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
    return render(
        request,
        "meetings/action.html",
        {"action": action, "attempts": action.attempts.all(), "params": shown_params(action)},
    )


SECRET_WORDS = ("key", "secret", "token", "password")


def shown_params(action):
    """The action's parameters as the page may show them. The pipeline stores stream keys
    redacted already; this hides anything secret-sounding again, in case a kind forgets."""
    return {
        name: "(hidden)" if any(word in name.lower() for word in SECRET_WORDS) else value
        for name, value in (action.params or {}).items()
    }


urlpatterns = [
    path("activity/", activity, name="activity"),
    path("activity/<int:pk>/", action_page, name="action"),
]
