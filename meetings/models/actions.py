from django.conf import settings
from django.db import models
from django.utils.timezone import now


class ActionKind(models.TextChoices):
    END_MEETING = "end_meeting", "End meeting"
    RECOVER_MEETING = "recover_meeting", "Recover meeting"
    END_WEBINAR = "end_webinar", "End webinar"
    UPDATE_LIVESTREAM = "update_livestream", "Configure live stream"
    START_LIVESTREAM = "start_livestream", "Start live stream"
    STOP_LIVESTREAM = "stop_livestream", "Stop live stream"
    FETCH_PAST_MEETING = "fetch_past_meeting", "Fetch past meeting details"
    SYNC = "sync", "Sync account"


# The permission (app label "meetings") each kind of action needs.
KIND_PERMISSIONS = {
    ActionKind.END_MEETING: "meetings.end_meeting",
    ActionKind.RECOVER_MEETING: "meetings.recover_meeting",
    ActionKind.END_WEBINAR: "meetings.end_webinar",
    ActionKind.UPDATE_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.START_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.STOP_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.FETCH_PAST_MEETING: "meetings.fetch_past_meeting",
    ActionKind.SYNC: "meetings.sync_account",
}


class ActionSource(models.TextChoices):
    DASHBOARD = "dashboard", "Dashboard"
    BULK = "bulk", "Bulk action"
    ADMIN = "admin", "Admin"
    COMMAND_LINE = "cli", "Command line"
    WEBHOOK = "webhook", "Webhook"
    SCHEDULE = "schedule", "Schedule"


class ActionState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATES = (ActionState.QUEUED, ActionState.RUNNING)
TERMINAL_STATES = (ActionState.SUCCEEDED, ActionState.FAILED, ActionState.CANCELLED)


class Batch(models.Model):
    """A bulk action: many actions of one kind, requested together, run at the rate limit."""

    kind = models.CharField(max_length=30, choices=ActionKind.choices)
    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.PROTECT)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created = models.DateTimeField(default=now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "batches"

    def __str__(self):
        return f"{self.get_kind_display()} x {self.total} ({self.created:%Y-%m-%d %H:%M})"


class Action(models.Model):
    """One operation on Zoom, from the click to Zoom's answer: the audit record.

    States move queued → running → succeeded | failed | cancelled, by conditional updates (a task
    claims a queued action with `filter(pk=..., state=QUEUED).update(...)`). A terminal record is
    never changed again, and nothing but the documented retention command deletes it.
    """

    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.PROTECT)
    kind = models.CharField(max_length=30, choices=ActionKind.choices)
    target_type = models.CharField(max_length=20, blank=True)  # meeting | webinar | account
    target_id = models.BigIntegerField("target Zoom id", null=True, blank=True)
    target_uuid = models.CharField("instance UUID", max_length=100, blank=True)
    topic = models.CharField("topic (snapshot)", max_length=300, blank=True)
    params = models.JSONField("parameters", default=dict, blank=True)  # stream keys redacted
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=now)
    source = models.CharField(max_length=20, choices=ActionSource.choices)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=ActionState.choices, default=ActionState.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A running action whose lease has passed belongs to a dead worker: the sweeper reclaims it.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts_count = models.PositiveSmallIntegerField("attempts", default=0)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    zoom_code = models.IntegerField(null=True, blank=True)
    result_summary = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)  # progress and details, never secrets
    celery_task_id = models.CharField(max_length=64, blank=True)
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="actions"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [
            ("end_meeting", "Can end meetings"),
            ("recover_meeting", "Can recover deleted meetings"),
            ("end_webinar", "Can end webinars"),
            ("manage_livestream", "Can configure, start and stop live streams"),
            ("fetch_past_meeting", "Can fetch past meeting details"),
            ("sync_account", "Can sync an account's meetings"),
        ]
        constraints = [
            # Idempotency: one queued-or-running action of a kind per target, so a double click
            # or two operators at once make one job.
            models.UniqueConstraint(
                fields=["account", "kind", "target_type", "target_id", "target_uuid"],
                condition=models.Q(state__in=["queued", "running"]),
                name="one_active_action_per_target",
            )
        ]
        indexes = [
            # Activity page and the admin changelist: newest first.
            models.Index(fields=["-requested_at", "-id"], name="action_requested_idx"),
            # The sweeper: queued actions and running ones past their lease.
            models.Index(fields=["state", "lease_expires_at"], name="action_state_lease_idx"),
            # A meeting's timeline: its actions, newest first.
            models.Index(fields=["target_id", "-requested_at"], name="action_target_idx"),
            # A batch's progress.
            models.Index(fields=["batch", "state"], name="action_batch_state_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.target_id or ''} ({self.get_state_display()})"

    @property
    def is_active(self):
        return self.state in ACTIVE_STATES

    @property
    def is_terminal(self):
        return self.state in TERMINAL_STATES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class Attempt(models.Model):
    """One call to Zoom made for an action: when, how long, and what Zoom answered."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField(default=now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    zoom_code = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    retry_after = models.FloatField("waited before retrying (s)", null=True, blank=True)

    class Meta:
        ordering = ["action", "number"]
        constraints = [
            models.UniqueConstraint(fields=["action", "number"], name="attempt_number_unique")
        ]

    def __str__(self):
        return f"attempt {self.number} of action {self.action_id}"
