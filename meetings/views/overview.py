"""The overview: each Zoom account's connection health and last sync, meetings live now, jobs in
flight and recent failures with Zoom's reason. The live parts refresh every few seconds."""

from datetime import timedelta

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.timezone import now
from django.views.decorators.http import require_GET, require_POST

from .. import approvals
from ..access import (
    kinds_anywhere,
    visible_accounts,
    visible_actions,
    visible_meetings,
    visible_webinars,
)
from ..models import (
    ActionKind,
    Approval,
    ApprovalState,
    MeetingStatus,
    ZoomAccount,
)
from ..models.actions import ACTIVE_STATES, ActionState
from .access import allowed_kinds, dashboard_view, get_visible, wants_fragment
from .jobs import ActionRefused, announce, answer, start_action

TEMPLATE = "meetings/overview.html"
PARTS = ("accounts", "live")
SECRETS = (
    "client_secret",
    "access_token",
    "refresh_token",
    "webhook_secret_token",
    "previous_webhook_secret_token",
)
LIVE_SHOWN = 12
FAILURES_WINDOW = timedelta(hours=24)


def accounts_context(request, refused=None):
    """The accounts panel; `refused` is (account pk, why) when a Sync was just refused."""
    user = request.user
    accounts = list(visible_accounts(user).defer(*SECRETS))
    # Live meetings per account, from the status index (not a join over every meeting).
    live = dict(
        visible_meetings(user)
        .filter(status=MeetingStatus.STARTED)
        .order_by()
        .values_list("account")
        .annotate(n=Count("id"))
    )
    # The latest sync of each account (the job shown beside its "Sync now" button).
    syncs = {}
    for action in (
        visible_actions(user)
        .filter(kind=ActionKind.SYNC)
        .with_people()
        .order_by("-requested_at", "-id")[: 5 * max(len(accounts), 1)]
    ):
        syncs.setdefault(action.account_id, action)
    for account in accounts:
        account.live_count = live.get(account.pk, 0)
        account.sync_job = syncs.get(account.pk)
        account.refused = refused[1] if refused and refused[0] == account.pk else ""
        account.can_sync = ActionKind.SYNC in allowed_kinds(user, account)
    return {
        "accounts": accounts,
        "can_sync": any(account.can_sync for account in accounts),
        # While a sync runs its job polls, and its end refreshes the panel (no periodic refresh
        # then, which could swallow the job's end).
        "syncing": any(a.sync_job and a.sync_job.is_active for a in accounts),
    }


def live_context(request):
    user = request.user
    live = (
        visible_meetings(user)
        .filter(status=MeetingStatus.STARTED)
        .select_related("account")
        .defer("stream_key", *(f"account__{s}" for s in SECRETS))
    )
    in_flight = visible_actions(user).filter(state__in=ACTIVE_STATES).select_related("requested_by")
    failures = (
        visible_actions(user)
        .filter(state=ActionState.FAILED, requested_at__gte=now() - FAILURES_WINDOW)
        .select_related("requested_by")
    )
    return {
        # Requests a second person must decide: those this user may, and this user's own.
        "waiting_for_you": approvals.waiting_for(request.user),
        "your_waiting": list(
            Approval.objects.filter(state=ApprovalState.WAITING, requested_by=request.user)
            .select_related("account")
            .order_by("expires_at")[:20]
        ),
        "live_meetings": list(live.order_by("-start_time", "-id")[:LIVE_SHOWN]),
        "live_count": live.count(),
        "live_webinars": list(
            visible_webinars(user).filter(status=MeetingStatus.STARTED).order_by("-start_time")[:10]
        ),
        "in_flight": list(in_flight.order_by("-requested_at", "-id")[:20]),
        "in_flight_count": in_flight.count(),
        "failures": list(failures.order_by("-requested_at", "-id")[:10]),
    }


@dashboard_view
@require_GET
def overview(request):
    part = request.GET.get("part")
    if wants_fragment(request) and part == "accounts":
        return render(request, f"{TEMPLATE}#accounts", accounts_context(request))
    if wants_fragment(request) and part == "live":
        return render(request, f"{TEMPLATE}#live", live_context(request))
    return render(
        request,
        TEMPLATE,
        {
            **accounts_context(request),
            **live_context(request),
            # Said once, where a person lands: nothing on the dashboard will act for them.
            "read_only": not kinds_anywhere(request.user),
        },
    )


@dashboard_view
@require_POST
def sync_account(request, pk):
    account = get_visible(ZoomAccount.objects.defer(*SECRETS), request.user, pk=pk)
    refused = None
    try:
        action, created = start_action(
            request,
            account=account,
            kind=ActionKind.SYNC,
            target_type="account",
            topic=account.name,
        )
    except ActionRefused as e:
        if not wants_fragment(request):
            messages.error(request, str(e))
        refused = (account.pk, str(e))
    else:
        if not wants_fragment(request):
            announce(request, action, created)
    return answer(
        request,
        template=TEMPLATE,
        fragment="accounts",
        context=accounts_context(request, refused),
        fallback_url=reverse("overview"),
    )


urlpatterns = [
    path("", overview, name="overview"),
    path("zoom-accounts/<int:pk>/sync/", sync_account, name="account-sync"),
]
