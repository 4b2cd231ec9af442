"""Past meetings: the instances whose details were fetched from Zoom, and one instance's page."""

import re

from django.contrib import messages
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from ..access import visible_accounts, visible_past_meetings
from ..forms import ListFilterForm
from ..models import Action, ActionKind, Meeting, PastMeeting
from .access import (
    allowed_kinds,
    dashboard_view,
    get_visible,
    require_action_permission,
    wants_fragment,
)
from .jobs import ActionRefused, announce, start_action
from .meetings_list import ID_ONLY_DIGITS, ID_PATTERN, id_prefix_filter
from .pagination import paginate


def past_search(q):
    """A meeting id or its first digits, a host's email or name, an instance UUID, or words of
    the topic (as the meetings list searches)."""
    q = q.strip()
    if not q:
        return Q()
    if "@" in q:
        text = Q(user_email__icontains=q)
    else:
        text = Q(topic__icontains=q) | Q(user_name__icontains=q) | Q(uuid=q)
    if ID_PATTERN.match(q):
        digits = re.sub(r"\D", "", q)
        by_id = id_prefix_filter(digits)
        if by_id is not None:
            return by_id if len(digits) >= ID_ONLY_DIGITS else by_id | text
    return text


@dashboard_view
@require_GET
def past_meetings_list(request):
    accounts = list(visible_accounts(request.user).only("pk", "name"))
    form = ListFilterForm(request.GET, accounts=accounts)
    form.is_valid()
    past = visible_past_meetings(request.user).filter(past_search(form.value("q") or ""))
    account = form.value("account")
    if account:
        past = past.filter(account=account)
    start, end = form.date_range()
    if start:
        past = past.filter(start_time__gte=start)
    if end:
        past = past.filter(start_time__lt=end)
    page = paginate(
        past, field="start_time", after=request.GET.get("after"), before=request.GET.get("before")
    )
    context = {
        "form": form,
        "page": page,
        "filtered": any(request.GET.get(k) for k in ("q", "account", "start_from", "start_to")),
    }
    template = "meetings/past_meetings_list.html"
    if wants_fragment(request) and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


def participants_context(request, past):
    kinds = allowed_kinds(request.user, past.account_id)
    job = (
        Action.objects.filter(
            account_id=past.account_id,
            target_uuid=past.uuid,
            kind=ActionKind.FETCH_PARTICIPANTS,
        )
        .with_people()
        .order_by("-requested_at", "-id")
        .first()
    )
    page = paginate(
        past.participants.all(),
        field="position",
        descending=False,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    return {
        "past": past,
        "page": page,
        "participants_job": job,
        "can_fetch_participants": ActionKind.FETCH_PARTICIPANTS in kinds,
    }


@dashboard_view
@require_GET
def past_meeting_page(request, pk):
    past = get_visible(PastMeeting.objects.all(), request.user, pk=pk)
    if wants_fragment(request) and request.GET.get("part") == "participants":
        return render(
            request,
            "meetings/past_meeting.html#participants",
            participants_context(request, past),
        )
    meeting = (
        Meeting.objects.filter(account_id=past.account_id, zoom_id=past.zoom_id)
        .only("pk", "topic")
        .first()
    )
    return render(
        request,
        "meetings/past_meeting.html",
        {**participants_context(request, past), "meeting": meeting},
    )


@dashboard_view
@require_POST
def fetch_participants(request, pk):
    """Ask Zoom who took part in this instance (an Action: audited like the details)."""
    past = get_visible(PastMeeting.objects.select_related("account"), request.user, pk=pk)
    require_action_permission(request.user, ActionKind.FETCH_PARTICIPANTS, past.account)
    try:
        action, created = start_action(
            request,
            account=past.account,
            kind=ActionKind.FETCH_PARTICIPANTS,
            target_type="meeting",
            target_id=past.zoom_id,
            target_uuid=past.uuid,
            topic=past.topic,
        )
    except ActionRefused as e:
        if wants_fragment(request):
            context = participants_context(request, past)
            context["refused"] = str(e)
            return render(request, "meetings/past_meeting.html#participants", context)
        messages.error(request, str(e))
        return redirect("past-meeting", pk=past.pk)
    if not wants_fragment(request):
        announce(request, action, created)
        return redirect("past-meeting", pk=past.pk)
    return render(
        request, "meetings/past_meeting.html#participants", participants_context(request, past)
    )


urlpatterns = [
    path("past-meetings/", past_meetings_list, name="past-meetings"),
    path("past-meetings/<int:pk>/", past_meeting_page, name="past-meeting"),
    path(
        "past-meetings/<int:pk>/participants/fetch/",
        fetch_participants,
        name="past-meeting-participants",
    ),
]
