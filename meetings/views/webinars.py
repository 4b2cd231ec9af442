"""Webinars: the list and a webinar's page, with End behind the same confirmation as meetings,
and the live stream panel a meeting's page has (meetings/views/livestream.py).

While a webinar's page is open its parts (the heading, the status panel with End, the details,
when Zoom was last heard from, and the timeline of its actions and Zoom's events) follow the
mirror like a meeting's page (meetings/views/follow.py): it polls `webinar_state` with the
version of each part it shows, and gets 204 when nothing changed, else the parts that changed."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from ..access import visible_webinars
from ..forms import (
    WEBINAR_BULK_KINDS,
    LiveStreamConfigForm,
    LiveStreamStartForm,
    WebinarFilterForm,
)
from ..models import ActionKind, MeetingStatus, Webinar
from ..templatetags.dashboard import ago
from . import follow, livestream
from .access import (
    allowed_kinds,
    dashboard_view,
    get_visible,
    require_action_permission,
    wants_fragment,
)
from .jobs import ActionRefused, announce, answer, start_action
from .meeting import by_zoom_id
from .meetings_list import filter_list, list_page

TEMPLATE = "meetings/webinar.html"
# The parts a page may ask for alone (?part=, with htmx).
PARTS = ("controls", "livestream", "timeline")
STREAM_KINDS = livestream.STREAM_KINDS["webinar"]
# The timeline's actions: End and the live stream's.
WEBINAR_KINDS = (ActionKind.END_WEBINAR, *STREAM_KINDS)
SECRETS = ("account__client_secret", "account__access_token", "account__refresh_token")


WEBINAR_FILTERS = ("status", "account")


def filtered_webinars(form, user, *, search=True):
    """The webinars the list's form selects (meetings_list.filter_list)."""
    return filter_list(visible_webinars(user), form, WEBINAR_FILTERS, search=search)


@dashboard_view
@require_GET
def webinars_list(request):
    return list_page(
        request,
        form_class=WebinarFilterForm,
        filtered=filtered_webinars,
        names=WEBINAR_FILTERS,
        bulk_kinds=WEBINAR_BULK_KINDS,
        template="meetings/webinars_list.html",
    )


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
                webinar.livestream_status,
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
            "livestream": livestream.panel_version(webinar, context),
            "timeline": follow.timeline_shown(context["timeline"]),
        }
    )


def webinar_context(
    request, webinar, refused="", *, stream_refused="", config_form=None, start_form=None
):
    """What the page and each of its followed parts need, and their versions: the page and the
    poll build it alike. Three queries beside the webinar: its newest actions (the latest End
    and stream jobs are among them), its Zoom events, and its connection's stream presets."""
    actions, timeline = follow.timeline(webinar.account_id, webinar.zoom_id, WEBINAR_KINDS)
    job = next((a for a in actions if a.kind == ActionKind.END_WEBINAR), None)
    stream_job = next((a for a in actions if a.kind in STREAM_KINDS), None)
    started_with = None
    if webinar.livestream_status == "live":
        # The settings it was started with are Zoom's to keep: the latest start says them.
        started_with = next(
            (a for a in actions if a.kind == ActionKind.START_WEBINAR_LIVESTREAM), None
        )
        if started_with and started_with.state != "succeeded":
            started_with = None
    kinds = allowed_kinds(request.user, webinar.account)
    context = {
        "webinar": webinar,
        "can_end": ActionKind.END_WEBINAR in kinds,
        "control_job": job,
        "control_busy": bool(job and (job.is_active or job.is_awaiting)),
        "timeline": timeline,
        "last_event_at": follow.last_event_at(webinar, timeline),
        "refused": refused,
        "stream_refused": stream_refused,
        "configured_with": livestream.configured_with(actions, "webinar"),
        **livestream.panel_context(
            webinar, "webinar", kinds=kinds, stream_job=stream_job, started_with=started_with
        ),
        "config_form": config_form or LiveStreamConfigForm(meeting=webinar),
        "start_form": start_form or LiveStreamStartForm(),
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
    context = webinar_context(request, webinar)
    if template == TEMPLATE:
        from .automation import panel_context

        context.update(panel_context(request, webinar, "webinar"))
    return render(request, template, context)


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


def _stream_request(request, webinar, kind, *, forms=None, **extra):
    """Request a live stream KIND on this webinar; answer with the panel (htmx) or a redirect."""
    try:
        action, created = start_action(
            request,
            account=webinar.account,
            kind=kind,
            target_type="webinar",
            target_id=webinar.zoom_id,
            topic=webinar.topic,
            **extra,
        )
    except ActionRefused as e:
        return _stream_refuse(request, webinar, str(e))
    if not wants_fragment(request):
        announce(request, action, created)
        return redirect("webinar", pk=webinar.pk)
    return render(
        request, f"{TEMPLATE}#livestream", webinar_context(request, webinar, **(forms or {}))
    )


def _stream_refuse(request, webinar, message):
    if wants_fragment(request):
        context = webinar_context(request, webinar, stream_refused=message)
        return render(request, f"{TEMPLATE}#livestream", context)
    messages.error(request, message)
    return redirect("webinar", pk=webinar.pk)


def _stream_form_answer(request, webinar, **forms):
    """A live stream form with errors: the panel again, with what was typed (never the key)."""
    context = webinar_context(request, webinar, **forms)
    if wants_fragment(request):
        return render(request, f"{TEMPLATE}#livestream", context)
    return render(request, TEMPLATE, context, status=400)


def _confirm_stop(request, webinar):
    return render(
        request,
        "meetings/confirm.html",
        {
            "object": webinar,
            "kind": ActionKind.STOP_WEBINAR_LIVESTREAM,
            "action_url": reverse("webinar-stream-stop", args=[webinar.pk]),
            "back_url": reverse("webinar", args=[webinar.pk]),
        },
    )


update_livestream, apply_preset, start_livestream, stop_livestream = livestream.stream_views(
    livestream.StreamPage(
        what="webinar",
        get=get_webinar,
        request_action=_stream_request,
        refuse=_stream_refuse,
        form_answer=_stream_form_answer,
        confirm_stop=_confirm_stop,
    )
)


urlpatterns = [
    path("webinars/", webinars_list, name="webinars"),
    path("webinars/<int:pk>/", webinar_page, name="webinar"),
    path("webinars/<int:pk>/state/", webinar_state, name="webinar-state"),
    path("webinars/<int:pk>/end/", end_webinar, name="webinar-end"),
    path("webinars/<int:pk>/livestream/", update_livestream, name="webinar-stream-update"),
    path("webinars/<int:pk>/livestream/start/", start_livestream, name="webinar-stream-start"),
    path("webinars/<int:pk>/livestream/stop/", stop_livestream, name="webinar-stream-stop"),
    path("webinars/<int:pk>/livestream/preset/", apply_preset, name="webinar-stream-preset"),
]
