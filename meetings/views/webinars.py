"""Webinars: the list and a webinar's page, with End behind the same confirmation as meetings.

While a webinar's page is open its parts (the heading, the status panel with End, the details,
when Zoom was last heard from, and the timeline of its actions and Zoom's events) follow the
mirror like a meeting's page (meetings/views/follow.py): it polls `webinar_state` with the
version of each part it shows, and gets 204 when nothing changed, else the parts that changed."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from ..access import visible_accounts, visible_webinars
from ..forms import WebinarFilterForm
from ..models import ActionKind, MeetingStatus, Webinar
from ..templatetags.dashboard import ago
from . import follow
from .access import (
    allowed_kinds,
    dashboard_view,
    get_visible,
    require_action_permission,
    wants_fragment,
)
from .jobs import ActionRefused, announce, answer, start_action
from .meeting import by_zoom_id
from .meetings_list import search_filter
from .pagination import paginate

TEMPLATE = "meetings/webinar.html"
# The parts a page may ask for alone (?part=, with htmx).
PARTS = ("controls", "timeline")
# The timeline's actions: End is the only one a webinar has.
WEBINAR_KINDS = (ActionKind.END_WEBINAR,)
SECRETS = ("account__client_secret", "account__access_token", "account__refresh_token")


@dashboard_view
@require_GET
def webinars_list(request):
    accounts = list(visible_accounts(request.user).only("pk", "name"))
    form = WebinarFilterForm(request.GET, accounts=accounts)
    form.is_valid()
    webinars = visible_webinars(request.user).filter(search_filter(form.value("q") or ""))
    for name in ("status", "account"):
        value = form.value(name)
        if value not in (None, ""):
            webinars = webinars.filter(**{name: value})
    start, end = form.date_range()
    if start:
        webinars = webinars.filter(start_time__gte=start)
    if end:
        webinars = webinars.filter(start_time__lt=end)
    field, descending = form.ordering()
    page = paginate(
        webinars.select_related("account").defer(*SECRETS),
        field=field,
        descending=descending,
        parts=form.parts(),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    context = {
        "form": form,
        "page": page,
        "show_account": len(accounts) > 1,
        "filtered": any(
            request.GET.get(k) for k in ("q", "status", "account", "start_from", "start_to")
        ),
    }
    template = "meetings/webinars_list.html"
    if wants_fragment(request) and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


def get_webinar(request, pk):
    """The webinar, if it is of a Zoom connection this user may see; else 404."""
    return get_visible(
        Webinar.objects.select_related("account").defer(*SECRETS), request.user, pk=pk
    )


def part_versions(context):
    """The version of each followed part: a digest of what it shows (see follow.py)."""
    webinar = context["webinar"]
    last_event = context["last_event_at"]
    return follow.part_versions(
        {
            "heading": (webinar.topic, webinar.host_email, webinar.host_id, webinar.account.name),
            "controls": (
                webinar.status,
                webinar.start_time,
                webinar.duration,
                follow.job_shown(context["control_job"]),
                context["can_end"],
            ),
            "details": (
                webinar.topic,
                webinar.uuid,
                webinar.type,
                webinar.host_email,
                webinar.timezone,
                webinar.join_url,
                webinar.account.name,
            ),
            "heard": (ago(webinar.last_synced_at), ago(last_event)),
            "timeline": follow.timeline_shown(context["timeline"]),
        }
    )


def webinar_context(request, webinar, refused=""):
    """What the page and each of its followed parts need, and their versions: the page and the
    poll build it alike. Two queries beside the webinar: its newest actions and Zoom events."""
    actions, timeline = follow.timeline(webinar.account_id, webinar.zoom_id, WEBINAR_KINDS)
    job = next((a for a in actions if a.kind == ActionKind.END_WEBINAR), None)
    context = {
        "webinar": webinar,
        "can_end": ActionKind.END_WEBINAR in allowed_kinds(request.user, webinar.account),
        "control_job": job,
        "control_busy": bool(job and (job.is_active or job.is_awaiting)),
        "timeline": timeline,
        "last_event_at": follow.last_event_at(webinar, timeline),
        "refused": refused,
    }
    versions = part_versions(context)
    return {**context, "part_versions": versions, "state_version": follow.page_version(versions)}


@dashboard_view
@require_GET
def webinar_page(request, pk):
    if not Webinar.objects.filter(pk=pk).exists():
        return by_zoom_id(request, Webinar, "webinar", "webinars", pk)
    webinar = get_webinar(request, pk)
    template = TEMPLATE
    part = request.GET.get("part")
    if wants_fragment(request) and part in PARTS:
        template += f"#{part}"
    return render(request, template, webinar_context(request, webinar))


@dashboard_view
@require_GET
def webinar_state(request, pk):
    """The page's followed parts, polled every few seconds while it is open and visible: 204
    when the version `v` the page shows is current, else the parts that changed out of band.
    A constant number of queries whatever the webinar's history: the session and permissions,
    the webinar (with its account's name), its newest actions and Zoom events (at most 30 each).
    A plain GET (no htmx) is sent to the page itself."""
    webinar = get_webinar(request, pk)
    if not wants_fragment(request):
        return redirect("webinar", pk=webinar.pk)
    return follow.state_answer(request, TEMPLATE, webinar_context(request, webinar))


@dashboard_view
@require_http_methods(["GET", "POST"])
def end_webinar(request, pk):
    webinar = get_webinar(request, pk)
    require_action_permission(request.user, ActionKind.END_WEBINAR, webinar.account)
    if request.method == "GET":
        return render(
            request,
            "meetings/confirm.html",
            {
                "object": webinar,
                "kind": ActionKind.END_WEBINAR,
                "action_url": reverse("webinar-end", args=[webinar.pk]),
                "back_url": reverse("webinar", args=[webinar.pk]),
            },
        )
    refused = ""
    if webinar.status == MeetingStatus.DELETED:
        refused = "This webinar was deleted at Zoom; there is nothing to end."
    else:
        try:
            action, created = start_action(
                request,
                account=webinar.account,
                kind=ActionKind.END_WEBINAR,
                target_type="webinar",
                target_id=webinar.zoom_id,
                topic=webinar.topic,
            )
        except ActionRefused as e:
            refused = str(e)
        else:
            if not wants_fragment(request):
                announce(request, action, created)
    if refused and not wants_fragment(request):
        messages.error(request, refused)
        return redirect("webinar", pk=webinar.pk)
    return answer(
        request,
        template=TEMPLATE,
        fragment="controls",
        context=webinar_context(request, webinar, refused),
        fallback_url=reverse("webinar", args=[webinar.pk]),
    )


urlpatterns = [
    path("webinars/", webinars_list, name="webinars"),
    path("webinars/<int:pk>/", webinar_page, name="webinar"),
    path("webinars/<int:pk>/state/", webinar_state, name="webinar-state"),
    path("webinars/<int:pk>/end/", end_webinar, name="webinar-end"),
]
