"""A request waiting for a second person: what it will do (the dry run), and Approve / Reject.

Anyone who sees the request's connection may look at it (another connection's answers 404);
deciding it takes the action's own
permission (meetings.approvals.may_approve) and is never for the person who asked. The rule is
checked here and again in meetings.approvals, which the buttons only reflect.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from .. import approvals
from ..models import Meeting, Webinar
from ..models.approvals import Approval
from .access import client_ip, dashboard_view, get_visible

TEMPLATE = "meetings/approval.html"
# Rows of a batch's plan the page lists; the rest is counted.
PLAN_SHOWN = 500


def get_approval(request, pk):
    """The request, among the connections this user may see (another connection's: 404)."""
    approval = get_visible(
        Approval.objects.select_related("requested_by", "decided_by", "account", "batch"),
        request.user,
        pk=pk,
    )
    if approval.is_waiting and approvals.expire(approval):  # lazily, by the database's clock
        approval.refresh_from_db()
    return approval


def approval_context(request, approval, refused=""):
    plan = approval.plan[:PLAN_SHOWN]
    model = Webinar if approval.kind == "end_webinar" else Meeting
    pages = dict(
        model.objects.filter(
            account_id=approval.account_id, zoom_id__in=[i.get("target_id") for i in plan]
        ).values_list("zoom_id", "pk")
    )
    rows = [(item, pages.get(item.get("target_id"))) for item in plan]
    why_not = approvals.refusal(request.user, approval) if approval.is_waiting else ""
    return {
        "approval": approval,
        "rows": rows,
        "more": max(0, len(approval.plan) - PLAN_SHOWN),
        "target_page": "webinar" if model is Webinar else "meeting",
        "can_decide": approval.is_waiting and not why_not,
        "why_not": why_not,
        "is_requester": approval.requested_by_id == request.user.pk,
        "minutes_left": approvals.minutes_left(approval) if approval.is_waiting else 0,
        "first_action": approval.actions().order_by("pk").first(),
        "refused": refused,
    }


@dashboard_view
@require_GET
def approval_page(request, pk):
    approval = get_approval(request, pk)
    return render(request, TEMPLATE, approval_context(request, approval))


def _refused(request, approval, message):
    """The page again with the refusal, 403: nothing was decided."""
    return render(request, TEMPLATE, approval_context(request, approval, message), status=403)


@dashboard_view
@require_POST
def approve(request, pk):
    approval = get_approval(request, pk)
    try:
        queued = approvals.approve(approval, user=request.user, client_ip=client_ip(request))
    except approvals.ApprovalRefused as e:
        return _refused(request, approval, str(e))
    n = len(queued)
    messages.success(
        request,
        f"Approved: {approval.title}. "
        + (f"{n} action{'s' if n != 1 else ''} run now." if n else "Nothing left to run."),
    )
    return redirect(_after(approval))


@dashboard_view
@require_POST
def reject(request, pk):
    approval = get_approval(request, pk)
    try:
        approvals.reject(
            approval,
            user=request.user,
            reason=request.POST.get("reason", ""),
            client_ip=client_ip(request),
        )
    except approvals.ApprovalRefused as e:
        return _refused(request, approval, str(e))
    messages.success(request, f"Rejected: {approval.title}. Nothing was sent to Zoom.")
    return redirect("approval", pk=approval.pk)


@dashboard_view
@require_POST
def withdraw(request, pk):
    approval = get_approval(request, pk)
    if approval.requested_by_id != request.user.pk:
        return _refused(request, approval, "Only the person who asked may withdraw a request.")
    if approvals.withdraw(approval, user=request.user):
        messages.success(request, "Withdrawn: nothing was sent to Zoom.")
    else:
        approval.refresh_from_db()
        messages.info(
            request, f"Too late to withdraw: it is {approval.get_state_display().lower()}."
        )
    return redirect("approval", pk=approval.pk)


def _after(approval):
    """Where an approval leads: the batch's progress, or the meeting's / webinar's page."""
    if approval.batch_id:
        return reverse("bulk", args=[approval.batch_id])
    action = approval.action
    model = Webinar if action.target_type == "webinar" else Meeting
    row = model.objects.filter(account_id=action.account_id, zoom_id=action.target_id).first()
    if row is not None:
        return reverse("webinar" if model is Webinar else "meeting", args=[row.pk])
    return reverse("action", args=[action.pk])


urlpatterns = [
    path("approvals/<int:pk>/", approval_page, name="approval"),
    path("approvals/<int:pk>/approve/", approve, name="approval-approve"),
    path("approvals/<int:pk>/reject/", reject, name="approval-reject"),
    path("approvals/<int:pk>/withdraw/", withdraw, name="approval-withdraw"),
]
