"""A sync run fanned out into parts (issue 13): where a sync stands, in the database, so that
every part is a bounded task and a part whose worker died is redone alone (meetings.sync_runs)."""

from django.db import models
from django.utils.timezone import now


class SyncRun(models.Model):
    """One sync of an account, split into parts. Belongs to its sync Action (the audit record);
    it holds what the plan step learnt (when the pass began, the Dashboard's live meetings) and
    whether the final step is done."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        ABANDONED = "abandoned", "Abandoned"

    action = models.OneToOneField(
        "meetings.Action", on_delete=models.CASCADE, related_name="sync_run"
    )
    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.CASCADE)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    created = models.DateTimeField(default=now)
    # The pass began here (the database's clock): an event after it knows better than the lists.
    pass_started = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # {zoom_id: uuid} of the Dashboard's live meetings, or None without the Dashboard.
    dashboard_live = models.JSONField(null=True, blank=True)
    # What the plan step counted: users, pages, requests, skipped listings, live source.
    planned = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # One sync of an account at a time, whatever process runs its parts.
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(state="running"),
                name="one_running_sync_per_account",
            )
        ]

    def __str__(self):
        return f"sync run {self.pk} of {self.account_id} ({self.state})"


class SyncPart(models.Model):
    """A bounded piece of a sync: a few users' meetings and webinars. Claimed with a lease (on
    the database's clock) like an action; done once, its result is kept, so a redone run of
    the sync does not do it again."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        # Zoom refused in a way a retry does not cure (reconnect needed, a listing that kept
        # failing): the sync fails saying so, and deletes nothing.
        FAILED = "failed", "Failed"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="parts")
    number = models.PositiveIntegerField()
    # [{"id": ..., "email": ...}] of the users this part lists.
    users = models.JSONField(default=list)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Runs started (a part whose worker died is taken again; too many and the sync fails).
    runs = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Counts, listings refused, and the zoom ids it saw (for the final step's absent rows).
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="sync_part_number_unique")
        ]

    def __str__(self):
        return f"part {self.number} of {self.run}"
