"""Two-person approval: the rules of who may decide, and the transitions of a request.

An action of a kind the admins chose (ApprovalSettings: by default End webinar and Recover
meeting), or a bulk batch larger than their threshold (20), requested by a person (the
dashboard, a bulk screen, the admin, zoomctl), is written in ActionState.AWAITING with an
`Approval` row and no task message. Another user with the permission, never the requester,
approves it in the dashboard (its actions are queued and sent as any click's are: the same
rate limiter and leases) or rejects it (they are cancelled). Nobody deciding within
APPROVAL_EXPIRY_MINUTES, by the database's clock, cancels it too. Every decision is an
AccessEvent naming both people.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.urls import reverse
from django.utils.timezone import now

from . import access
from .models import Action, ActionSource, ActionState, Meeting, Webinar, record_access
from .models.access import AccessEvent
from .models.actions import db_time
from .models.approvals import Approval, ApprovalSettings, ApprovalState

log = logging.getLogger(__name__)

# Requests made by a person. Automatic steps (Zoom's events, schedules) never wait.
PERSONAL_SOURCES = (
    ActionSource.DASHBOARD,
    ActionSource.BULK,
    ActionSource.ADMIN,
    ActionSource.COMMAND_LINE,
)


class ApprovalRefused(Exception):
    """This user may not decide this request (now); the message is for them."""


def may_approve(user, account, kind):
    """Whether USER may approve an action of KIND on ACCOUNT (a ZoomAccount or its pk): the
    same right that requesting it there needs, per connection (meetings.access). The one place
    that says so (the requester rule is separate)."""
    return bool(user is not None and access.can_act(user, account, kind))


def refusal(user, approval):
    """Why USER may not decide APPROVAL, in words for them, or "" when they may."""
    if approval.requested_by_id is not None and approval.requested_by_id == user.pk:
        return "You asked for this yourself: another operator must approve or reject it."
    if not all(may_approve(user, account, approval.kind) for account in accounts_of(approval)):
        return f"You are not allowed to approve {approval.get_kind_display().lower()}."
    return ""


def accounts_of(approval):
    """The connections APPROVAL acts on: its own, and for a batch over several connections each
    of theirs (deciding it takes the right on every one)."""
    if not approval.batch_id:
        return [approval.account_id]
    if not hasattr(approval, "_account_ids"):
        approval._account_ids = sorted(
            set(approval.actions().values_list("account_id", flat=True)) | {approval.account_id}
        )
    return approval._account_ids


# --- What needs approval -------------------------------------------------------------------------


def action_needs_approval(kind, source):
    return source in PERSONAL_SOURCES and ApprovalSettings.current().kind_needs_approval(kind)


def batch_needs_approval(kind, size, source):
    return source in PERSONAL_SOURCES and ApprovalSettings.current().batch_needs_approval(
        kind, size
    )


def expiry_seconds():
    return settings.APPROVAL_EXPIRY_MINUTES * 60


def plan_for_target(account, kind, target_type, target_id):
    """The dry run of one action: what the mirror says of its target (topic, id, host, live
    state), as the approver is shown it."""
    model = {"meeting": Meeting, "webinar": Webinar}.get(target_type)
    item = {"target_type": target_type, "target_id": target_id, "account_id": account.pk}
    row = None
    if model is not None and target_id is not None:
        row = model.objects.filter(account=account, zoom_id=target_id).first()
    if row is None:
        item.update(do=True, reason="not in the dashboard's copy: Zoom will say whether it applies")
        return [item]
    item.update(
        topic=row.topic,
        host_email=row.host_email,
        status=row.status,
        livestream_status=getattr(row, "livestream_status", ""),
        do=True,
        reason="",
    )
    return [item]


def open_request(*, account, kind, user, action=None, batch=None, plan=(), size=1):
    """Write the Approval of ACTION or BATCH (whose actions are already AWAITING), in the
    caller's transaction, and tell the approvers once it commits."""
    approval = Approval.objects.create(
        kind=kind,
        account=account,
        action=action,
        batch=batch,
        requested_by=user,
        expires_at=db_time(expiry_seconds()),
        plan=list(plan),
        size=size,
    )
    approval.refresh_from_db(fields=["expires_at"])
    transaction.on_commit(lambda: _announce(approval))
    return approval


def _announce(approval):
    from .notifications import EventKind, notify

    who = approval.requested_by.get_username() if approval.requested_by else "someone"
    log.info("approval %s: %s requested by %s, waits", approval.pk, approval.kind, who)
    try:
        notify(
            EventKind.APPROVAL_WAITING,
            title=f"Waiting for approval: {approval.title}",
            text=(
                f"{who} asked for {approval.title}. Another operator must approve it within "
                f"{settings.APPROVAL_EXPIRY_MINUTES} minutes, or it is cancelled."
            ),
            account=approval.account,
            url=reverse("approval", args=[approval.pk]),
            action=approval.action,
        )
    except Exception:  # notify never raises, by its contract; an approval never depends on it
        log.exception("approval %s: could not notify", approval.pk)


def url_for(approval):
    return f"{settings.DASHBOARD_URL}{reverse('approval', args=[approval.pk])}"


# --- Deciding ------------------------------------------------------------------------------------


def _decide(approval, *, user, state, reason=""):
    """waiting → STATE, once, while not expired by the database's clock. True if it was ours."""
    return bool(
        Approval.objects.filter(
            pk=approval.pk, state=ApprovalState.WAITING, expires_at__gt=Now()
        ).update(state=state, decided_by=user, decided_at=now(), reason=reason)
    )


def _closed_message(approval):
    approval.refresh_from_db()
    if approval.state == ApprovalState.WAITING:  # past its time, not yet swept
        expire(approval)
        approval.refresh_from_db()
    who = approval.decided_by.get_username() if approval.decided_by else ""
    if approval.state == ApprovalState.APPROVED:
        return f"{who} approved this already."
    if approval.state == ApprovalState.REJECTED:
        return f"{who} rejected this already."
    if approval.state == ApprovalState.WITHDRAWN:
        return "This request was withdrawn."
    return f"This request expired: {approval.reason}"


def approve(approval, *, user, client_ip=None):
    """Approve APPROVAL as USER: its actions are queued and sent when the transaction commits,
    through the same path as a click (meetings.actions.enqueue_actions). An action whose target
    got another queued or running action meanwhile is cancelled as already requested. Returns
    the ids of the actions queued. Raises ApprovalRefused with a message for USER."""
    from .actions import enqueue_actions

    why = refusal(user, approval)
    if why:
        raise ApprovalRefused(why)
    with transaction.atomic():
        decided = _decide(approval, user=user, state=ApprovalState.APPROVED)
        if decided:
            queued = _release(approval)
            transaction.on_commit(lambda: enqueue_actions(queued))
            record_access(
                AccessEvent.Kind.APPROVED,
                user=approval.requested_by,
                actor=user,
                client_ip=client_ip,
                approval=approval.pk,
                action_kind=approval.kind,
                actions=len(queued),
                requested_at=approval.requested_at.isoformat(),
            )
    if not decided:
        # Found after the transaction: an expiry it finds is written then, not rolled back.
        raise ApprovalRefused(_closed_message(approval))
    approval.refresh_from_db()
    log.info("approval %s approved by %s: %d queued", approval.pk, user.get_username(), len(queued))
    return queued


def _release(approval):
    """AWAITING → QUEUED for the approval's actions, with one UPDATE; when a target has an
    action in flight since (the constraint one_active_action_per_target refuses), one by one,
    cancelling those."""
    waiting = approval.actions().filter(state=ActionState.AWAITING)
    ids = list(waiting.order_by("target_id").values_list("pk", flat=True))
    try:
        with transaction.atomic():
            waiting.update(state=ActionState.QUEUED)
        return ids
    except IntegrityError:
        pass
    queued = []
    for action in waiting.order_by("target_id"):
        try:
            with transaction.atomic():
                Action.objects.filter(pk=action.pk, state=ActionState.AWAITING).update(
                    state=ActionState.QUEUED
                )
            queued.append(action.pk)
        except IntegrityError:
            other = (
                Action.objects.active()
                .filter(
                    account_id=action.account_id,
                    kind=action.kind,
                    target_type=action.target_type,
                    target_id=action.target_id,
                )
                .first()
            )
            ref = f" (action #{other.pk})" if other else ""
            _cancel(
                Action.objects.filter(pk=action.pk),
                f"Approved, but already requested by then{ref}: not done twice",
            )
    return queued


def _cancel(actions, summary):
    return actions.filter(state=ActionState.AWAITING).update(
        state=ActionState.CANCELLED,
        finished_at=now(),
        result_summary=summary,
        secret_params="",
        lease_expires_at=None,
    )


def reject(approval, *, user, reason="", client_ip=None):
    """Reject APPROVAL as USER: its actions are cancelled and never reach Zoom. Raises
    ApprovalRefused with a message for USER."""
    why = refusal(user, approval)
    if why:
        raise ApprovalRefused(why)
    reason = (reason or "").strip()[:1000]
    with transaction.atomic():
        decided = _decide(approval, user=user, state=ApprovalState.REJECTED, reason=reason)
        if decided:
            because = f": {reason}" if reason else ""
            _cancel(approval.actions(), f"Rejected by {user.get_username()}{because}")
            record_access(
                AccessEvent.Kind.REJECTED,
                user=approval.requested_by,
                actor=user,
                client_ip=client_ip,
                approval=approval.pk,
                action_kind=approval.kind,
                reason=reason,
                requested_at=approval.requested_at.isoformat(),
            )
    if not decided:
        raise ApprovalRefused(_closed_message(approval))
    approval.refresh_from_db()
    log.info("approval %s rejected by %s", approval.pk, user.get_username())


def withdraw(approval, *, user):
    """The requester (or anyone cancelling its actions) takes a waiting request back."""
    who = f" by {user.get_username()}" if user is not None else ""
    with transaction.atomic():
        done = Approval.objects.filter(pk=approval.pk, state=ApprovalState.WAITING).update(
            state=ApprovalState.WITHDRAWN, decided_by=user, decided_at=now()
        )
        if done:
            _cancel(approval.actions(), f"Cancelled{who} while it awaited approval")
    return bool(done)


def expire(approval):
    """waiting past its expiry, by the database's clock → expired, its actions cancelled."""
    minutes = settings.APPROVAL_EXPIRY_MINUTES
    summary = f"Nobody approved it within {minutes} minutes"
    with transaction.atomic():
        done = Approval.objects.filter(
            pk=approval.pk, state=ApprovalState.WAITING, expires_at__lte=Now()
        ).update(state=ApprovalState.EXPIRED, decided_at=now(), reason=summary)
        if done:
            _cancel(approval.actions(), summary)
    if done:
        log.info("approval %s expired", approval.pk)
    return bool(done)


def expire_due(*, limit=500):
    """Expire every waiting request past its time (the beat's task, and lazily before one is
    shown). Returns the ids expired."""
    due = Approval.objects.filter(state=ApprovalState.WAITING, expires_at__lte=Now()).order_by(
        "expires_at"
    )[:limit]
    return [approval.pk for approval in due if expire(approval)]


def waiting_for(user):
    """The requests USER may decide now: waiting, not theirs, of a kind they may approve."""
    expire_due()
    rows = (
        Approval.objects.filter(state=ApprovalState.WAITING)
        .exclude(requested_by=user)
        .select_related("requested_by", "account")
        .order_by("expires_at")
    )
    return [a for a in rows if all(may_approve(user, acc, a.kind) for acc in accounts_of(a))]


def minutes_left(approval):
    """Whole minutes until it expires (by this process's clock: for display only)."""
    left = approval.expires_at - now()
    return max(0, int((left + timedelta(seconds=59)).total_seconds() // 60))


def approval_of(action):
    """The request an awaiting ACTION waits in: its own, or its batch's."""
    if action.batch_id:
        return Approval.objects.filter(batch_id=action.batch_id).first()
    return Approval.objects.filter(action_id=action.pk).first()
