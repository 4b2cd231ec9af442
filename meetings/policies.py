"""Policies per connection: standing rules ("end meetings still live N minutes after their
scheduled end", "stop streams of ended meetings"), off until an admin turns them on.

`plan_policy` is what a policy would do now: its page shows it as the preview (the dry run), and
`apply_policy` carries out the same plan through the action pipeline (source policy, the rule
recorded on each Action), at most POLICY_MAX_ACTIONS_PER_RUN actions per connection and run.
Its actions go behind operators' clicks at the rate limiter: a policy's action books a Zoom slot
only when the account's queue for the label is at most ZOOM_RATE_LIMIT_AUTOMATIC_MAX_WAIT_SECONDS
long, else it is handed back to try again after the slots already booked, spending none of its
retries (meetings.actions.BEHIND_CLICKS). The cap keeps one run's share small besides.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Now

from .models import (
    Action,
    ActionKind,
    ActionSource,
    Meeting,
    MeetingStatus,
    Policy,
    RuleType,
)

log = logging.getLogger(__name__)

# Meeting types with a scheduled end (Zoom: 2 scheduled, 8 recurring with a fixed time); an
# instant (1), recurring without a time (3) or personal meeting ID (4) meeting has none.
SCHEDULED_TYPES = (2, 8)
POLICY_KINDS = {
    Policy.Kind.END_OVERDUE: ActionKind.END_MEETING,
    Policy.Kind.STOP_ENDED_STREAMS: ActionKind.STOP_LIVESTREAM,
}


def policies_for(account):
    """The connection's policies, one of each kind (made, off, on first look)."""
    for kind in Policy.Kind:
        Policy.objects.get_or_create(account=account, kind=kind)
    return list(Policy.objects.filter(account=account).order_by("kind"))


def plan_policy(policy, *, at=None):
    """What POLICY would do now (the preview, and what `apply_policy` does): a list of dicts
    {meeting, do, reason}. Skipped: a meeting with the same action queued or running, or one
    this policy acted on within POLICY_RETRY_AFTER_SECONDS (its action failed: Zoom said no,
    and asking every minute would not change that)."""
    at = at or _db_now()
    kind = POLICY_KINDS[policy.kind]
    rows = Meeting.objects.filter(account_id=policy.account_id)
    if policy.kind == Policy.Kind.END_OVERDUE:
        rows = rows.filter(
            status=MeetingStatus.STARTED,
            type__in=SCHEDULED_TYPES,
            start_time__isnull=False,
            duration__isnull=False,
        )
    else:
        rows = rows.filter(livestream_status="live").exclude(status=MeetingStatus.STARTED)
    plan = []
    for meeting in rows.order_by("start_time", "id")[:1000]:
        if policy.kind == Policy.Kind.END_OVERDUE:
            end = meeting.start_time + timedelta(minutes=meeting.duration)
            overdue = (at - end).total_seconds() / 60
            if overdue < policy.minutes:
                continue
            reason = f"still live {overdue:.0f} minutes after its scheduled end"
        else:
            reason = f"its stream is live but the meeting is {meeting.get_status_display().lower()}"
        plan.append({"meeting": meeting, "do": True, "reason": reason})
    if plan:
        ids = [item["meeting"].zoom_id for item in plan]
        active = set(
            Action.objects.active()
            .filter(account_id=policy.account_id, kind=kind, target_id__in=ids)
            .values_list("target_id", flat=True)
        )
        recent = set(
            Action.objects.filter(
                account_id=policy.account_id,
                kind=kind,
                target_id__in=ids,
                rule_type=RuleType.POLICY,
                rule_id=policy.pk,
                requested_at__gte=at - timedelta(seconds=settings.POLICY_RETRY_AFTER_SECONDS),
            ).values_list("target_id", flat=True)
        )
        for item in plan:
            zoom_id = item["meeting"].zoom_id
            if zoom_id in active:
                item["do"], item["reason"] = False, "already requested (queued or running)"
            elif zoom_id in recent:
                item["do"], item["reason"] = False, "this policy tried it recently"
    return plan


def apply_policy(policy):
    """Carry out POLICY's plan now: at most POLICY_MAX_ACTIONS_PER_RUN actions, source policy.
    Returns the actions made."""
    from .actions import request_action

    kind = POLICY_KINDS[policy.kind]
    made = []
    todo = [item for item in plan_policy(policy) if item["do"]]
    for item in todo[: settings.POLICY_MAX_ACTIONS_PER_RUN]:
        meeting = item["meeting"]
        try:
            action, created = request_action(
                account=policy.account,
                kind=kind,
                source=ActionSource.POLICY,
                target_type="meeting",
                target_id=meeting.zoom_id,
                topic=meeting.topic,
                rule_type=RuleType.POLICY,
                rule_id=policy.pk,
            )
        except ValueError as e:
            log.warning("policy %s: %s %s refused: %s", policy.pk, kind, meeting.zoom_id, e)
            continue
        if created:
            made.append(action)
    rest = len(todo) - len(todo[: settings.POLICY_MAX_ACTIONS_PER_RUN])
    summary = f"{len(made)} action{'s' if len(made) != 1 else ''} asked for"
    if rest:
        summary += f"; {rest} left for the next run"
    Policy.objects.filter(pk=policy.pk).update(last_run_at=Now(), last_run_summary=summary)
    return made


def apply_policies():
    """Every enabled policy of every connected account. Returns how many actions were made."""
    from .models import ZoomAccount

    made = 0
    for policy in Policy.objects.filter(
        enabled=True, account__status=ZoomAccount.Status.CONNECTED
    ).select_related("account"):
        made += len(apply_policy(policy))
    return made


def _db_now():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # SQLite answers text, in UTC
        from datetime import UTC, datetime

        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    elif value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value
