"""Actions nobody clicks: at a time (ScheduledAction), when Zoom says a meeting started
(Trigger, fired once per instance: TriggerFiring), and standing rules per connection (Policy).

Each of them asks the action pipeline for ordinary Actions, whose `source` says which kind of
rule it was and whose `rule_type` / `rule_id` say which rule: the audit trail reads the same as
for a click. A schedule or a firing may hold several steps ("stop the stream, then end"): they
are asked for one after the other (meetings.automation.advance), each once its predecessor has
finished.
"""

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class RuleType(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    TRIGGER = "trigger", "Trigger"
    POLICY = "policy", "Policy"


class Step(models.TextChoices):
    """What a schedule or a trigger may do, whatever it targets: meetings.automation.step_kind
    says which ActionKind a step is for a meeting or a webinar."""

    CONFIGURE_STREAM = "configure_stream", "Configure the live stream"
    START_STREAM = "start_stream", "Start the live stream"
    STOP_STREAM = "stop_stream", "Stop the live stream"
    END = "end", "End"


class StepSequence(models.Model):
    """Steps asked for one at a time. `steps` is a list of {"step": Step, "params": {...},
    "needs_success": bool}; `next_step` the index of the next one to ask for; the Actions made
    carry this row's rule type and id."""

    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.CASCADE)
    target_type = models.CharField(max_length=20)  # meeting | webinar
    target_id = models.BigIntegerField("target Zoom id")
    topic = models.CharField("topic (snapshot)", max_length=300, blank=True)
    steps = models.JSONField(default=list)
    next_step = models.PositiveSmallIntegerField(default=0)
    # The action of the step asked for last, until it finishes.
    current_action = models.ForeignKey(
        "meetings.Action", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result_summary = models.TextField(blank=True)

    class Meta:
        abstract = True

    def steps_words(self):
        names = dict(Step.choices)
        words = [names.get(s.get("step"), s.get("step")) for s in self.steps]
        if not words:
            return ""
        text = ", then ".join(w.lower() for w in words)
        return text[0].upper() + text[1:]


class ScheduledAction(StepSequence):
    """Steps on one meeting or webinar at a chosen time ("stop the stream and end at 17:30").

    pending → running (claimed once by the beat, by the database's clock, while inside its
    grace period) → done; pending → missed (the beat found it past `run_at + grace`: reported,
    never silently dropped); pending → cancelled. Only a pending schedule is edited or
    cancelled, each with a conditional update so a beat claiming it at the same time wins or
    loses cleanly."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        MISSED = "missed", "Missed"
        CANCELLED = "cancelled", "Cancelled"

    run_at = models.DateTimeField("when")
    grace_seconds = models.PositiveIntegerField(
        "grace period (s)", help_text="how late it may still run (a beat or the workers down)"
    )
    # run_at + grace: past it, the schedule is missed (one indexed comparison for the beat).
    deadline = models.DateTimeField(editable=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    late_seconds = models.FloatField("ran late by (s)", null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(auto_now=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["run_at", "id"]
        indexes = [
            # The beat, every few seconds: pending schedules whose time has come.
            models.Index(fields=["state", "run_at"], name="schedule_state_run_at_idx"),
            # A meeting's or webinar's page: its schedules.
            models.Index(fields=["account", "target_id"], name="schedule_target_idx"),
        ]

    def __str__(self):
        return f"{self.steps_words()} on {self.target_type} {self.target_id} at {self.run_at}"

    def save(self, *args, **kwargs):
        from datetime import timedelta

        self.deadline = self.run_at + timedelta(seconds=self.grace_seconds)
        super().save(*args, **kwargs)

    @property
    def is_pending(self):
        return self.state == self.State.PENDING


class Trigger(StepSequence):
    """ "Start the live stream with preset P when this meeting (or any meeting of the connection)
    starts". Fired once per instance (TriggerFiring's unique constraint), from Zoom's
    meeting.started / webinar.started or from the sync that finds the meeting live when that
    event never came. `target_id` empty: every meeting (webinar) of the connection. The steps
    fields of the base are unused here (a firing holds its own)."""

    target_id = models.BigIntegerField("target Zoom id", null=True, blank=True)
    preset = models.ForeignKey(
        "meetings.StreamPreset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    active_speaker_name = models.BooleanField("show the active speaker's name", default=False)
    display_name = models.CharField(max_length=50, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=now)

    class Meta:
        ordering = ["account", "target_type", "target_id", "id"]
        indexes = [
            # Every meeting.started: the enabled triggers of the meeting and of its connection.
            models.Index(fields=["account", "target_type", "enabled"], name="trigger_lookup_idx"),
        ]

    def __str__(self):
        what = f"{self.target_type} {self.target_id}" if self.target_id else "every meeting"
        return f"When {what} starts: stream with {self.preset.name if self.preset else '(none)'}"


class TriggerFiring(StepSequence):
    """One firing of a trigger for one instance of a meeting: at most one per instance UUID."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="firings")
    instance_uuid = models.CharField(max_length=100)
    seen_by = models.CharField(max_length=10)  # webhook | sync
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    created = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["trigger", "target_id", "instance_uuid"], name="trigger_fires_once"
            )
        ]
        indexes = [
            # The beat's backstop: firings whose step finished without advancing them.
            models.Index(fields=["state"], name="firing_state_idx"),
        ]

    def __str__(self):
        return f"Trigger {self.trigger_id} fired for {self.target_type} {self.target_id}"


class Policy(models.Model):
    """A standing rule per connection, off until an admin turns it on; each beat applies the
    enabled ones (meetings.policies.apply_policies), and its page previews what it would do
    now (the same plan, not carried out)."""

    class Kind(models.TextChoices):
        END_OVERDUE = "end_overdue", "End meetings still live after their scheduled end"
        STOP_ENDED_STREAMS = "stop_ended_streams", "Stop live streams of ended meetings"

    account = models.ForeignKey(
        "meetings.ZoomAccount", on_delete=models.CASCADE, related_name="policies"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    minutes = models.PositiveIntegerField(
        default=15, help_text="for ends: minutes past the scheduled end before acting"
    )
    enabled = models.BooleanField(default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated = models.DateTimeField(default=now)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_summary = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["account", "kind"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(fields=["account", "kind"], name="one_policy_per_kind")
        ]

    def __str__(self):
        return f"{self.words()} ({self.account})"

    def words(self):
        if self.kind == self.Kind.END_OVERDUE:
            return f"End meetings still live {self.minutes} minutes after their scheduled end"
        return self.get_kind_display()
