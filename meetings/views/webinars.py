"""Webinars: the list and a webinar's page, with End behind the same confirmation as meetings."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from ..forms import WebinarFilterForm
from ..models import Action, ActionKind, MeetingStatus, Webinar, ZoomAccount
from .access import allowed_kinds, dashboard_view, require_action_permission, wants_fragment
from .jobs import ActionRefused, announce, answer, start_action
from .meetings_list import search_filter
from .pagination import paginate

TEMPLATE = "meetings/webinar.html"
SECRETS = ("account__client_secret", "account__access_token", "account__refresh_token")


@dashboard_view
@require_GET
def webinars_list(request):
    accounts = list(ZoomAccount.objects.only("pk", "name"))
    form = WebinarFilterForm(request.GET, accounts=accounts)
    form.is_valid()
    webinars = Webinar.objects.filter(search_filter(form.value("q") or ""))
    for name in ("status", "account"):
        value = form.value(name)
        if value not in (None, ""):
            webinars = webinars.filter(**{name: value})
    start, end = form.date_range()
    if start:
        webinars = webinars.filter(start_time__gte=start)
    if end:
        webinars = webinars.filter(start_time__lt=end)
    page = paginate(
        webinars.select_related("account").defer(*SECRETS),
        field="start_time",
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


def get_webinar(pk):
    return get_object_or_404(Webinar.objects.select_related("account").defer(*SECRETS), pk=pk)


def webinar_context(request, webinar, refused=""):
    actions = list(
        Action.objects.filter(
            account_id=webinar.account_id, target_type="webinar", target_id=webinar.zoom_id
        ).select_related("requested_by")[:30]
    )
    job = next((a for a in actions if a.kind == ActionKind.END_WEBINAR), None)
    return {
        "webinar": webinar,
        "can_end": ActionKind.END_WEBINAR in allowed_kinds(request.user),
        "control_job": job,
        "control_busy": bool(job and job.is_active),
        "actions": actions,
        "refused": refused,
    }


@dashboard_view
@require_GET
def webinar_page(request, pk):
    webinar = get_webinar(pk)
    template = TEMPLATE
    part = request.GET.get("part")
    if wants_fragment(request) and part in ("controls", "history"):
        template += f"#{part}"
    return render(request, template, webinar_context(request, webinar))


@dashboard_view
@require_http_methods(["GET", "POST"])
def end_webinar(request, pk):
    webinar = get_webinar(pk)
    require_action_permission(request.user, ActionKind.END_WEBINAR)
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
    path("webinars/<int:pk>/end/", end_webinar, name="webinar-end"),
]
