"""The meetings list: search, filters, sort and keyset pages over the whole mirror, live badges
that refresh by themselves, and row selection for bulk actions."""

import functools
import operator
import re

from django.db.models import Q
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from ..access import kinds_anywhere, visible_accounts, visible_meetings
from ..forms import BULK_KINDS, BULK_MAX, MeetingFilterForm
from .access import dashboard_view, wants_fragment
from .pagination import paginate

# Ids as operators paste them: "85123456789", "851 2345 6789", "851-2345-6789", or the start of
# one ("851 2345").
ID_PATTERN = re.compile(r"^\d[\d\s-]{2,30}$")
# Zoom's meeting and webinar ids have 9 to 11 digits (Zoom's "Meeting ID" help: 9, 10 or 11
# digits); a longer number can only be a whole id, a shorter one only the start of one.
ID_DIGITS = 11
ID_MIN_DIGITS = 9
# Below this many digits a number may as well be part of a topic ("Q3 2026"): both are searched.
ID_ONLY_DIGITS = 6
BADGES_MAX = 100


def id_prefix_filter(digits):
    """The Q for ids that start with DIGITS: one range of the zoom_id index per id length Zoom
    gives (85123 is 851230000..851239999, 8512300000..8512399999 and 85123000000..85123999999),
    and the id itself when DIGITS are as long as an id may be."""
    number = int(digits)
    if not 0 < number < 2**63 or digits.startswith("0"):
        return None
    found = [Q(zoom_id=number)] if len(digits) >= ID_MIN_DIGITS else []
    for length in range(max(len(digits) + 1, ID_MIN_DIGITS), ID_DIGITS + 1):
        scale = 10 ** (length - len(digits))
        found.append(Q(zoom_id__gte=number * scale, zoom_id__lt=(number + 1) * scale))
    return functools.reduce(operator.or_, found)


def search_filter(q):
    """The Q for a search box value: a meeting id or its first digits, a host's address (or
    its beginning: "ann@", "ann@acme.co"), an address's domain ("@acme.com"), or words of the
    topic or the host's address."""
    q = q.strip()
    if not q:
        return Q()
    if q.startswith("@"):
        text = Q(host_email__icontains=q)
    elif "@" in q:
        # A B-tree range (migrations 0029, 0030), where the trigram index reads every row's domain.
        text = Q(host_email__istartswith=q)
    else:
        text = Q(topic__icontains=q) | Q(host_email__icontains=q)
    if ID_PATTERN.match(q):
        digits = re.sub(r"\D", "", q)
        by_id = id_prefix_filter(digits)
        if by_id is not None:
            return by_id if len(digits) >= ID_ONLY_DIGITS else by_id | text
    return text


def filter_list(rows, form, names, *, search=True):
    """ROWS (meetings or webinars) narrowed as the list's form says: its choice filters NAMES,
    its date range, and with search=False without the search box's filter (the list pages a
    search apart: `paginate(search=...)`)."""
    if search:
        rows = rows.filter(search_filter(form.value("q") or ""))
    for name in names:
        value = form.value(name)
        if value not in (None, ""):
            rows = rows.filter(**{name: value})
    start, end = form.date_range()
    if start:
        rows = rows.filter(start_time__gte=start)
    if end:
        rows = rows.filter(start_time__lt=end)
    return rows


MEETING_FILTERS = ("status", "account", "type")


def filtered_meetings(form, user, *, search=True):
    """The meetings the list's form selects (`filter_list`)."""
    return filter_list(visible_meetings(user), form, MEETING_FILTERS, search=search)


def list_page(request, *, form_class, filtered, names, bulk_kinds, template):
    """A list page (meetings, webinars): the form's search, filters NAMES and sort over keyset
    pages of FILTERED(form, user), and the bulk actions of BULK_KINDS this user may request on
    one connection at least (the review says which selected rows are of another connection,
    skipped, and the run checks again). Only the #results part for htmx's filter changes."""
    accounts = list(visible_accounts(request.user).only("pk", "name"))
    form = form_class(request.GET, accounts=accounts)
    form.is_valid()
    field, descending = form.ordering()
    page = paginate(
        filtered(form, request.user, search=False)
        .select_related("account")
        .defer(
            "stream_key",
            "account__client_secret",
            "account__access_token",
            "account__refresh_token",
        ),
        field=field,
        descending=descending,
        parts=form.parts(),
        search=search_filter(form.value("q") or ""),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    kinds = kinds_anywhere(request.user)
    context = {
        "form": form,
        "page": page,
        "show_account": len(accounts) > 1,
        "bulk_max": BULK_MAX,
        "bulk_kinds": [(k, label) for k, label in bulk_kinds if k in kinds],
        "filtered": any(request.GET.get(k) for k in ("q", *names, "start_from", "start_to")),
    }
    if wants_fragment(request) and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


@dashboard_view
@require_GET
def meetings_list(request):
    return list_page(
        request,
        form_class=MeetingFilterForm,
        filtered=filtered_meetings,
        names=MEETING_FILTERS,
        bulk_kinds=BULK_KINDS,
        template="meetings/meetings_list.html",
    )


@dashboard_view
@require_GET
def meeting_badges(request):
    """The status badges of the meetings on a list page, as out-of-band swaps (polled)."""
    ids = []
    for raw in request.GET.getlist("id")[:BADGES_MAX]:
        # isascii: "²" is a digit to str.isdigit() but not to int() (a 500, found by
        # tests/test_hostile_input.py).
        if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
            ids.append(int(raw))
    meetings = (
        visible_meetings(request.user).filter(pk__in=ids).only("pk", "status", "livestream_status")
    )
    return render(request, "meetings/meetings_list.html#badges", {"meetings": meetings})


urlpatterns = [
    path("meetings/", meetings_list, name="meetings"),
    path("meetings/badges/", meeting_badges, name="meeting-badges"),
]
