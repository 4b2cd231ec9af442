"""Past meetings: the instances whose details were fetched from Zoom, and one instance's page."""

import re

from django.db.models import Q
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.http import require_GET

from ..forms import ListFilterForm
from ..models import Meeting, PastMeeting, ZoomAccount
from .access import dashboard_view, wants_fragment
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
    accounts = list(ZoomAccount.objects.only("pk", "name"))
    form = ListFilterForm(request.GET, accounts=accounts)
    form.is_valid()
    past = PastMeeting.objects.filter(past_search(form.value("q") or ""))
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


@dashboard_view
@require_GET
def past_meeting_page(request, pk):
    past = get_object_or_404(PastMeeting, pk=pk)
    meeting = (
        Meeting.objects.filter(account_id=past.account_id, zoom_id=past.zoom_id)
        .only("pk", "topic")
        .first()
    )
    return render(request, "meetings/past_meeting.html", {"past": past, "meeting": meeting})


urlpatterns = [
    path("past-meetings/", past_meetings_list, name="past-meetings"),
    path("past-meetings/<int:pk>/", past_meeting_page, name="past-meeting"),
]
