"""Two-person approval: which actions need a second person, and the requests that wait for one.

The rules (meetings.approvals) hold the requested actions in ActionState.AWAITING: no task
message is sent until someone else with the permission approves. One `Approval` per request: a
single action, or a whole batch (one approval releases all of it).
"""

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from .actions import Action, ActionKind, Batch


def default_kinds():
    return list(settings.APPROVAL_DEFAULTS["kinds"])


def default_bulk_enabled():
    return bool(settings.APPROVAL_DEFAULTS["bulk_enabled"])


def default_bulk_threshold():
    return int(settings.APPROVAL_DEFAULTS["bulk_threshold"])


class ApprovalSettings(models.Model):
    """The installation's choice (one row, made on first use): the action kinds that wait for a
    second person, and the size past which a bulk batch does. Admins edit it in the admin."""

    kinds = models.JSONField(
        "actions that need a second person",
        default=default_kinds,
        blank=True,
        help_text="each one, requested from the dashboard or the command line, waits for "
        "another operator's approval",
    )
    bulk_threshold = models.PositiveIntegerField(
        "bulk batches larger than",
        default=default_bulk_threshold,
        help_text="a bulk batch of more actions than this waits for approval as a whole; "
        "0 makes every batch wait",
    )
    bulk_enabled = models.BooleanField(
        "bulk batches need approval past that size", default=default_bulk_enabled
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "approval settings"
        verbose_name_plural = "approval settings"

    def __str__(self):
        return "Two-person approval"

    @classmethod
    def current(cls):
        """The saved choice, or (none saved yet) the defaults, APPROVAL_DEFAULTS, unsaved."""
        return cls.objects.order_by("pk").first() or cls()

    def kind_needs_approval(self, kind):
        return str(kind) in (self.kinds or [])

    def batch_needs_approval(self, kind, size):
        if self.kind_needs_approval(kind):
            return True
        return self.bulk_enabled and size > self.bulk_threshold


class ApprovalState(models.TextChoices):
    WAITING = "waiting", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Approval(models.Model):
    """A request that waits for a second person: one action, or one batch.

    States move waiting → approved | rejected | expired, once, by conditional updates
    (meetings.approvals). The requester never decides their own request. Both people and the
    times stay on the row: it is part of the audit trail, read-only in the admin.
    """

    kind = models.CharField(max_length=30, choices=ActionKind.choices)
    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.PROTECT)
    # Part of its action's (batch's) audit record: the retention command (prune_actions) that
    # deletes the action after ACTION_RETENTION_DAYS deletes it too. The AccessEvent stays.
    action = models.OneToOneField(
        Action, null=True, blank=True, on_delete=models.CASCADE, related_name="approval"
    )
    batch = models.OneToOneField(
        Batch, null=True, blank=True, on_delete=models.CASCADE, related_name="approval"
    )
    state = models.CharField(
        max_length=10, choices=ApprovalState.choices, default=ApprovalState.WAITING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=now)
    # Set from the database's clock when the request is made; judged by it too.
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="who approved or rejected it",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    # What will happen, as the requester was shown it (the dry run): topics, ids, hosts, status.
    plan = models.JSONField(default=list, blank=True)
    size = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [
            # The overview's "Waiting for your approval" and the expiry sweep.
            models.Index(fields=["state", "expires_at"], name="approval_state_expires_idx"),
        ]

    def __str__(self):
        what = self.get_kind_display()
        if self.batch_id:
            what = f"{what} x {self.size}"
        return f"{what} ({self.get_state_display()})"

    @property
    def is_waiting(self):
        return self.state == ApprovalState.WAITING

    @property
    def approved_by(self):
        return self.decided_by if self.state == ApprovalState.APPROVED else None

    @property
    def approved_at(self):
        return self.decided_at if self.state == ApprovalState.APPROVED else None

    @property
    def rejected_by(self):
        return self.decided_by if self.state == ApprovalState.REJECTED else None

    def actions(self):
        """The actions this request holds (or held)."""
        if self.batch_id:
            return Action.objects.filter(batch_id=self.batch_id)
        return Action.objects.filter(pk=self.action_id)

    @property
    def title(self):
        if self.batch_id:
            return f"{self.get_kind_display()}: {self.size} at once"
        first = self.plan[0] if self.plan else {}
        target = first.get("topic") or first.get("target_id") or ""
        return f"{self.get_kind_display()}: {target}" if target else self.get_kind_display()
