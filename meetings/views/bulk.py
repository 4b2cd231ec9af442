"""Bulk actions: the meetings or webinars list's selection → a dry run (what would be done, and
what is skipped and why) → run as one batch → its progress bar and per-row results → cancel.
The kind says which list the ids come from (meetings.actions.TARGET_TYPES)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from .. import actions
from ..access import (
    kinds_anywhere,
    visible_accounts,
    visible_batches,
    visible_meetings,
    visible_webinars,
)
from ..forms import BULK_MAX, BulkForm, MeetingFilterForm, WebinarFilterForm
from ..models import ActionKind, ActionSource, Approval, Batch, MeetingStatus, ZoomAccount
from .access import (
    KIND_REFUSALS,
    can_act,
    client_ip,
    dashboard_view,
    get_visible,
    require_action_permission,
    wants_fragment,
)
from .meetings_list import filtered_meetings
from .pagination import paginate
from .webinars import filtered_webinars

SECRETS = ("account__client_secret", "account__access_token", "account__refresh_token")


# What the pages call a kind's targets, the verb on its buttons, and its targets' pages.
WORDS = {
    ActionKind.END_MEETING: ("meeting", "End"),
    ActionKind.STOP_LIVESTREAM: ("meeting", "Stop"),
    ActionKind.END_WEBINAR: ("webinar", "End"),
    ActionKind.START_WEBINAR_LIVESTREAM: ("webinar", "Start"),
    ActionKind.STOP_WEBINAR_LIVESTREAM: ("webinar", "Stop"),
}


def _what(kind):
    return actions.TARGET_TYPES[kind]


def _in_list(request, kind, back):
    """The ids of every meeting (or webinar) the list at BACK (its query string: search,
    filters, sort) shows, in the list's order; None, with the reason, when that is not a
    selection to act on: filters in error, or more than BULK_MAX."""
    what = _what(kind)
    accounts = list(visible_accounts(request.user).only("pk", "name"))
    query = QueryDict(back)
    if what == "webinar":
        form = WebinarFilterForm(query, accounts=accounts)
        rows = filtered_webinars(form, request.user)
    else:
        form = MeetingFilterForm(query, accounts=accounts)
        rows = filtered_meetings(form, request.user)
    if not form.is_valid():
        return None, f"The list's filters are not valid: correct them, then review all {what}s."
    field, descending = form.ordering()
    # At most BULK_MAX + 1 rows, unordered (the planner is not asked to walk the list's order
    # for a search: meetings/views/pagination.py), then put in the list's order here.
    found = list(rows.order_by().values_list("pk", field, "status")[: BULK_MAX + 1])
    if len(found) > BULK_MAX:
        return None, (
            f"More than {BULK_MAX} {what}s are in this list: narrow it with the search or the "
            f"filters to {BULK_MAX} or fewer, or select {what}s one by one."
        )
    found.sort(key=lambda row: (row[1] is None, row[1], row[0]), reverse=descending)
    if form.parts():
        found.sort(key=lambda row: row[2] != MeetingStatus.STARTED)  # live first, stable
    return [pk for pk, _, _ in found], None


def _selection(request, data, *, in_list=False):
    """(form, kind, meetings or webinars in the order given) from the list's selection; kind is
    None if the form is invalid. Permission for the kind (on one connection at least) is checked
    before anything is looked up; targets of connections the user may not see are not found.
    IN_LIST: "all in this list" is a selection (the review's; a run takes the ids it names)."""
    form = BulkForm(data)
    if not form.is_valid():
        return form, None, []
    kind = ActionKind(form.cleaned_data["kind"])
    if kind not in kinds_anywhere(request.user):
        what = KIND_REFUSALS.get(kind, kind.label.lower())
        raise PermissionDenied(f"You are not allowed to {what}.")
    ids = form.cleaned_data["ids"]
    if form.cleaned_data["matching"]:
        if not in_list:
            form.add_error("ids", "Review the selection before running it.")
            return form, None, []
        ids, problem = _in_list(request, kind, data.get("back", ""))
        if problem:
            form.add_error("ids", problem)
            return form, None, []
    visible = visible_webinars if _what(kind) == "webinar" else visible_meetings
    rows = visible(request.user).select_related("account")
    if kind != ActionKind.START_WEBINAR_LIVESTREAM:
        # Only a start's dry run asks whether a key is configured (it decrypts it to know).
        rows = rows.defer("stream_key")
    found = rows.defer(*SECRETS).in_bulk(ids)
    return form, kind, [found[i] for i in ids if i in found]


def may_act_on(user, account, kind):
    """Whether USER may request KIND on ACCOUNT's meetings (their role on that connection)."""
    return can_act(user, kind, account)


def _allowed_accounts(request, kind, meetings):
    """The connections of MEETINGS on which the user may do KIND; 403 when there is none
    (meetings of the others appear in the dry run as skipped, with that reason)."""
    accounts = {m.account_id: m.account for m in meetings}
    allowed = {pk for pk, account in accounts.items() if may_act_on(request.user, account, kind)}
    if not allowed:
        require_action_permission(request.user, kind, meetings[0].account)
    return allowed


def _by_connection(rows, meetings):
    """The dry run's rows per connection, in the order each connection first appears:
    [(account, rows, how many will be done)]."""
    accounts = {m.account_id: m.account for m in meetings}
    groups = {}
    for item, meeting in rows:
        groups.setdefault(item.account_id, []).append((item, meeting))
    return [
        (accounts.get(account_id), group, sum(1 for item, _ in group if item.do))
        for account_id, group in groups.items()
    ]


def batch_accounts(batch):
    """The connections of BATCH: its own, or each of its actions' when it spans several."""
    if batch.account_id is not None:
        return [batch.account]
    return list(
        ZoomAccount.objects.filter(pk__in=batch.actions.values("account_id").distinct()).only(
            "pk", "name"
        )
    )


def may_act_on_batch(user, batch):
    """Cancelling a batch takes the right to its kind on each of its connections."""
    return all(may_act_on(user, a, ActionKind(batch.kind)) for a in batch_accounts(batch))


def list_url(data, what="meeting"):
    """The meetings (or webinars) list as the operator left it (search, filters, page), from
    the selection's `back` field: Cancel on the review, or a refused selection, used to drop
    them all.

    Only a query string is taken, re-encoded after the list's own path: it cannot lead elsewhere.
    """
    back = QueryDict(data.get("back", ""), mutable=True)
    back.pop("back", None)
    query = back.urlencode()
    page = "webinars" if what == "webinar" else "meetings"
    return reverse(page) + (f"?{query}" if query else "")


def _list_url_for(data):
    """The list the selection came from: its kind says which (the meetings list when the kind
    is not one we know: the form refused it)."""
    try:
        return list_url(data, _what(ActionKind(data.get("kind", ""))))
    except (ValueError, KeyError):
        return list_url(data)


def _form_problem(request, form, data):
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect(_list_url_for(data))


@dashboard_view
@require_GET
def bulk_preview(request):
    form, kind, meetings = _selection(request, request.GET, in_list=True)
    if kind is None:
        return _form_problem(request, form, request.GET)
    what, verb = WORDS[kind]
    if not meetings:
        messages.error(request, f"None of the selected {what}s exists any more. Reload the list.")
        return redirect(list_url(request.GET, what))
    # A batch may span connections: each meeting is acted on with its own, at that
    # connection's rate limit. Those of connections this user may not act on are skipped.
    plan = actions.dry_run(
        kind, meetings, allowed_account_ids=_allowed_accounts(request, kind, meetings)
    )
    by_key = {(m.account_id, m.zoom_id): m for m in meetings}
    rows = [(item, by_key.get((item.account_id, item.target_id))) for item in plan]
    todo = [item for item in plan if item.do]
    return render(
        request,
        "meetings/bulk_preview.html",
        {
            "kind": kind,
            "groups": _by_connection(rows, meetings),
            "rows": rows,
            "todo_count": len(todo),
            "skip_count": len(plan) - len(todo),
            "ids": [m.pk for m in meetings],
            "back": request.GET.get("back", ""),
            "list_url": list_url(request.GET, what),
            "what": what,
            "verb": verb,
            "page_name": what,
        },
    )


@dashboard_view
@require_POST
def bulk_run(request):
    form, kind, meetings = _selection(request, request.POST)
    if kind is None:
        return _form_problem(request, form, request.POST)
    what, _ = WORDS[kind]
    back = list_url(request.POST, what)
    if not meetings:
        messages.error(request, f"None of the selected {what}s exists any more. Reload the list.")
        return redirect(back)
    try:
        batch, plan = actions.create_batch(
            account=None,
            kind=kind,
            targets=meetings,
            user=request.user,
            source=ActionSource.BULK,
            client_ip=client_ip(request),
            allowed_account_ids=_allowed_accounts(request, kind, meetings),
        )
    except ValueError as e:
        # Nothing left to do (everything ended meanwhile, or was requested by someone else).
        messages.error(request, str(e))
        return redirect(back)
    except IntegrityError:
        # create_batch gave up after its retries: other requests for the same meetings kept
        # colliding with this one. Its transaction wrote nothing.
        messages.error(
            request,
            f"Other requests for these {what}s kept arriving at the same moment, so nothing "
            "was requested. Look at the list and try again.",
        )
        return redirect(back)
    skipped = sum(1 for item in plan if not item.do)
    waits = Approval.objects.filter(batch=batch).exists()
    messages.success(
        request,
        f"{batch.get_kind_display()}: {batch.total} requested"
        + (f", {skipped} skipped." if skipped else ".")
        + (" It is awaiting approval by another operator." if waits else ""),
    )
    return redirect("bulk", pk=batch.pk)


def batch_context(request, batch):
    progress = batch.progress()
    total = progress["total"] or 0
    return {
        "batch": batch,
        "connections": batch.connection_progress() if batch.account_id is None else [],
        "what": _what(ActionKind(batch.kind)),
        "progress": progress,
        "approval": Approval.objects.filter(batch=batch).first() if progress["awaiting"] else None,
        "percent": round(100 * progress["done"] / total) if total else 100,
        "outcome": batch.outcome_words(progress) if progress["finished"] else "",
        "rows": batch.actions.order_by("id")
        .only(
            "pk",
            "kind",
            "target_id",
            "topic",
            "state",
            "result_summary",
            "attempts_count",
            "batch_id",
            "account_id",
            "account__name",
        )
        .select_related("account"),
        "can_cancel": (
            not batch.is_cancelled
            and not progress["finished"]
            and may_act_on_batch(request.user, batch)
        ),
    }


@dashboard_view
@require_GET
def bulk_page(request, pk):
    batch = get_visible(
        Batch.objects.select_related("requested_by", "account"), request.user, pk=pk
    )
    context = batch_context(request, batch)
    if wants_fragment(request):
        if context["progress"]["finished"]:
            # Every row is final: stop the poll (htmx 286) with the final state in place.
            html = render_to_string("meetings/bulk.html#progress", context, request=request)
            return HttpResponseStopPolling(html)
        return render(request, "meetings/bulk.html#progress", context)
    return render(request, "meetings/bulk.html", context)


@dashboard_view
@require_POST
def bulk_cancel(request, pk):
    batch = get_visible(Batch.objects.select_related("account"), request.user, pk=pk)
    for account in batch_accounts(batch):
        require_action_permission(request.user, ActionKind(batch.kind), account)
    actions.cancel_batch(batch, user=request.user)
    # The progress panel says what the cancel did, from the batch's state, on every poll after.
    if wants_fragment(request):
        return render(request, "meetings/bulk.html#progress", batch_context(request, batch))
    return redirect(reverse("bulk", args=[batch.pk]))


@dashboard_view
@require_GET
def batches_list(request):
    """Past and running bulk batches, newest first, each with what it did. (One row per bulk
    request an operator makes: few enough to page along `created` without an index of its own;
    each row's counts are one small grouped query on the actions' batch index.)"""
    page = paginate(
        visible_batches(request.user).select_related("requested_by", "account").defer(*SECRETS),
        field="created",
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    for batch in page.rows:
        batch.shown_progress = batch.progress()
        batch.outcome = (
            batch.outcome_words(batch.shown_progress) if batch.shown_progress["finished"] else ""
        )
    template = "meetings/batches.html"
    if wants_fragment(request) and request.htmx.target == "results":
        template += "#results"
    return render(request, template, {"page": page})


urlpatterns = [
    path("bulk/batches/", batches_list, name="batches"),
    path("bulk/preview/", bulk_preview, name="bulk-preview"),
    path("bulk/", bulk_run, name="bulk-run"),
    path("bulk/<int:pk>/", bulk_page, name="bulk"),
    path("bulk/<int:pk>/cancel/", bulk_cancel, name="bulk-cancel"),
]
