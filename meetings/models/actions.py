import json
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import ExpressionWrapper, F, Func, Q
from django.db.models.functions import Coalesce, Now
from django.utils.timezone import now

from ..fields import EncryptedTextField
from ..timefmt import in_words


def db_time(seconds=0):
    """The database's clock, SECONDS from now, as an expression for an update or a filter.

    Leases are written by one host and judged by another (a worker renews, the beat's sweeper
    or a redelivered message decides whether it expired): on the workers' own clocks, a worker
    five minutes ahead would hold leases five minutes too long and one behind would see its
    peers' live leases expired and take their actions over (issue 13). The one clock every
    host shares is the database's.
    """
    if not seconds:
        return Now()
    return ExpressionWrapper(
        Now() + timedelta(seconds=seconds), output_field=models.DateTimeField()
    )


class ActionKind(models.TextChoices):
    END_MEETING = "end_meeting", "End meeting"
    RECOVER_MEETING = "recover_meeting", "Recover meeting"
    END_WEBINAR = "end_webinar", "End webinar"
    UPDATE_LIVESTREAM = "update_livestream", "Configure live stream"
    START_LIVESTREAM = "start_livestream", "Start live stream"
    STOP_LIVESTREAM = "stop_livestream", "Stop live stream"
    UPDATE_WEBINAR_LIVESTREAM = "update_webinar_livestream", "Configure webinar live stream"
    START_WEBINAR_LIVESTREAM = "start_webinar_livestream", "Start webinar live stream"
    STOP_WEBINAR_LIVESTREAM = "stop_webinar_livestream", "Stop webinar live stream"
    FETCH_PAST_MEETING = "fetch_past_meeting", "Fetch past meeting details"
    FETCH_PARTICIPANTS = "fetch_participants", "Fetch past meeting participants"
    SYNC = "sync", "Sync account"


# The permission (app label "meetings") each kind of action needs.
KIND_PERMISSIONS = {
    ActionKind.END_MEETING: "meetings.end_meeting",
    ActionKind.RECOVER_MEETING: "meetings.recover_meeting",
    ActionKind.END_WEBINAR: "meetings.end_webinar",
    ActionKind.UPDATE_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.START_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.STOP_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.UPDATE_WEBINAR_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.START_WEBINAR_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.STOP_WEBINAR_LIVESTREAM: "meetings.manage_livestream",
    ActionKind.FETCH_PAST_MEETING: "meetings.fetch_past_meeting",
    # Who took part is read with the same right as the rest of a past meeting's details.
    ActionKind.FETCH_PARTICIPANTS: "meetings.fetch_past_meeting",
    ActionKind.SYNC: "meetings.sync_account",
}


class ActionSource(models.TextChoices):
    DASHBOARD = "dashboard", "Dashboard"
    BULK = "bulk", "Bulk action"
    ADMIN = "admin", "Admin"
    COMMAND_LINE = "cli", "Command line"
    WEBHOOK = "webhook", "Webhook"
    SCHEDULE = "schedule", "Schedule"
    TRIGGER = "trigger", "Trigger"
    POLICY = "policy", "Policy"


class ActionState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Requested, held until a second person approves it (meetings.approvals): never sent to a
    # worker, never swept, neither in flight (ACTIVE_STATES) nor finished.
    AWAITING = "awaiting", "Awaiting approval"


# In flight: a worker has it, or will.
ACTIVE_STATES = (ActionState.QUEUED, ActionState.RUNNING)
# Asked for and not finished: a second request for the same target is "already requested".
PENDING_STATES = (*ACTIVE_STATES, ActionState.AWAITING)
TERMINAL_STATES = (ActionState.SUCCEEDED, ActionState.FAILED, ActionState.CANCELLED)

# What a redacted secret reads as in Action.params: says a value was given, shows nothing of it.
REDACTED = "•••• (set)"


class ActionFinishedError(Exception):
    """A terminal action (succeeded, failed, cancelled) was asked to change or be deleted."""


class LeaseLostError(Exception):
    """This run no longer owns the action: the sweeper reclaimed it, or another delivery of its
    task took it over. The run stops without writing anything more."""


class _ValueByPk(Func):
    """`CASE pk WHEN 1 THEN 'a' WHEN 2 THEN 'b' ... END`: a value per row in one UPDATE (the
    task ids of `Action.mark_sent`). Written out here because Django's `Case(When(pk=...))`
    spent 50 ms compiling 300 branches, three times what PostgreSQL took to run the UPDATE."""

    output_field = models.CharField()

    def __init__(self, values):
        super().__init__(F("pk"))
        self.values = dict(values)

    def as_sql(self, compiler, connection, **extra_context):
        pk_sql, params = compiler.compile(self.source_expressions[0])
        params = list(params)
        for pk, value in self.values.items():
            params += [pk, value]
        return f"CASE {pk_sql}{' WHEN %s THEN %s' * len(self.values)} END", params


# What a succeeded action of a kind did, in a batch's outcome.
DONE_WORDS = {
    ActionKind.END_MEETING: "ended",
    ActionKind.END_WEBINAR: "ended",
    ActionKind.RECOVER_MEETING: "recovered",
}


class Batch(models.Model):
    """A bulk action: many actions of one kind, requested together, run at the rate limit.

    `account` is the one connection of a batch on one connection; empty when the batch spans
    several (each action names its own, and runs under that connection's rate limit)."""

    kind = models.CharField(max_length=30, choices=ActionKind.choices)
    account = models.ForeignKey(
        "meetings.ZoomAccount", null=True, blank=True, on_delete=models.PROTECT
    )
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
        return f"{self.get_kind_display()} x {self.total} ({in_words(self.created)})"

    def progress(self):
        """Counts of the batch's actions by state, plus `total`, `done` and `finished`."""
        counts = dict.fromkeys(ActionState.values, 0)
        for row in self.actions.values("state").annotate(n=models.Count("id")):
            counts[row["state"]] = row["n"]
        done = sum(counts[s] for s in TERMINAL_STATES)
        counts["total"] = self.total
        counts["done"] = done
        counts["finished"] = done >= self.total
        return counts

    def connection_progress(self):
        """Per connection of a batch that spans several: [(name, done, total)], by name."""
        rows = {}
        for row in self.actions.values("account__name", "state").annotate(n=models.Count("id")):
            name = row["account__name"]
            done, total = rows.get(name, (0, 0))
            finished = row["n"] if row["state"] in TERMINAL_STATES else 0
            rows[name] = (done + finished, total + row["n"])
        return [(name, done, total) for name, (done, total) in sorted(rows.items())]

    @property
    def is_cancelled(self):
        return self.cancelled_at is not None

    def outcome_words(self, progress):
        """What a finished batch did, as its heading says it: "4 ended, 1 cancelled".

        A batch cancelled after most of it ran is not headed "Cancelled": the count of each
        outcome is what the operator needs (and "failed" is never hidden behind "Done")."""
        done = DONE_WORDS.get(self.kind, "succeeded")
        parts = [
            f"{progress[state]} {word}"
            for state, word in (
                (ActionState.SUCCEEDED, done),
                (ActionState.FAILED, "failed"),
                (ActionState.CANCELLED, "cancelled"),
            )
            if progress[state]
        ]
        return ", ".join(parts) or "Nothing to do"


class ActionQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state__in=ACTIVE_STATES)

    def terminal(self):
        return self.filter(state__in=TERMINAL_STATES)

    def with_people(self):
        """With who asked and, for a request that waited for a second person (its own or its
        batch's), who decided it, in the same query: what a job's line and a timeline show."""
        return self.select_related(
            "requested_by", "approval__decided_by", "batch__approval__decided_by"
        )

    def delete(self):
        raise ActionFinishedError(
            "actions are the audit trail: only `manage.py prune_actions` deletes them"
        )

    delete.queryset_only = True

    def prune(self):
        """Delete the terminal actions of this queryset (and their attempts). The retention
        command's tool; active actions are never touched. Returns the number of actions."""
        _, per_model = models.QuerySet.delete(self.filter(state__in=TERMINAL_STATES))
        return per_model.get(Action._meta.label, 0)


class Action(models.Model):
    """One operation on Zoom, from the click to Zoom's answer: the audit record.

    States move queued → running → succeeded | failed | cancelled, only through the transition
    methods below, each a conditional update. A run owns a running action through its
    `lease_token` and `lease_expires_at`: every write it makes is conditioned on the token, so a
    run that lost the action (its worker was presumed dead and the sweeper reclaimed it) cannot
    write over the run that took over. A terminal record never changes again (`save()` refuses
    too), and nothing but the retention command (`prune_actions`) deletes it.
    """

    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.PROTECT)
    kind = models.CharField(max_length=30, choices=ActionKind.choices)
    target_type = models.CharField(max_length=20, blank=True)  # meeting | webinar | account
    target_id = models.BigIntegerField("target Zoom id", null=True, blank=True)
    target_uuid = models.CharField("instance UUID", max_length=100, blank=True)
    topic = models.CharField("topic (snapshot)", max_length=300, blank=True)
    params = models.JSONField("parameters", default=dict, blank=True)  # stream keys redacted
    # The parameters that must not be stored in clear (a stream key), as encrypted JSON, for the
    # task to read; wiped when the action finishes.
    secret_params = EncryptedTextField(blank=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=now)
    source = models.CharField(max_length=20, choices=ActionSource.choices)
    client_ip = models.GenericIPAddressField("client IP address", null=True, blank=True)
    # `zoomctl`: the operating system user who ran it, beside the --user it acted as
    # (`requested_by`): a shared dashboard account used from a shell still names the person.
    os_user = models.CharField("server user (command line)", max_length=150, blank=True)
    state = models.CharField(max_length=10, choices=ActionState.choices, default=ActionState.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Running: a run whose lease has passed belongs to a dead worker, the sweeper reclaims it.
    # Queued: when the task message was sent, the time by which a worker should have claimed it
    # (else the sweeper sends it again); empty when no message was sent (the broker was down).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    reclaims = models.PositiveSmallIntegerField(
        default=0, help_text="times the sweeper took it back from a worker that stopped"
    )
    attempts_count = models.PositiveSmallIntegerField("attempts", default=0)
    http_status = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    zoom_code = models.IntegerField(null=True, blank=True)
    result_summary = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)  # progress and details, never secrets
    celery_task_id = models.CharField(max_length=64, blank=True)
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="actions"
    )
    # The rule that made an automatic action (meetings.models.automation): its type (schedule,
    # trigger, policy) and id. No foreign key: the audit record outlives the rule.
    rule_type = models.CharField(max_length=10, blank=True)
    rule_id = models.PositiveBigIntegerField(null=True, blank=True)

    objects = ActionQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [
            ("end_meeting", "Can end meetings"),
            ("recover_meeting", "Can recover deleted meetings"),
            ("end_webinar", "Can end webinars"),
            ("manage_livestream", "Can configure, start and stop live streams"),
            ("fetch_past_meeting", "Can fetch past meeting details"),
            ("sync_account", "Can sync an account's meetings"),
            # Not "view_...": the viewers group is given every view permission of the app.
            ("see_client_addresses", "Can see the network addresses actions came from"),
        ]
        constraints = [
            # Idempotency: one queued-or-running action of a kind per target, so a double click
            # or two operators at once make one job. target_id is coalesced because NULLs are
            # distinct in unique indexes: a sync (no target id) must collide with another sync.
            models.UniqueConstraint(
                F("account"),
                F("kind"),
                F("target_type"),
                Coalesce("target_id", 0),
                F("target_uuid"),
                condition=Q(state__in=["queued", "running"]),
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
            # The sync schedule (meetings.budget), every beat for every account: the account's
            # last sync, and its last complete one, among all of its ends and streams.
            models.Index(
                fields=["account", "kind", "-requested_at"], name="action_account_kind_idx"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.target_id or ''} ({self.get_state_display()})"

    # --- the audit record is append-only ------------------------------------------------------

    def save(self, *args, **kwargs):
        """Refuses to write over a terminal record (whatever this instance believes its state
        is: the database decides)."""
        if not self._state.adding and self.pk is not None:
            stored = type(self)._base_manager.filter(pk=self.pk).values_list("state", flat=True)
            if stored and stored[0] in TERMINAL_STATES:
                raise ActionFinishedError(
                    f"action {self.pk} is {stored[0]}: a finished action never changes"
                )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ActionFinishedError(
            "actions are the audit trail: only `manage.py prune_actions` deletes them"
        )

    @property
    def is_active(self):
        return self.state in ACTIVE_STATES

    @property
    def is_awaiting(self):
        return self.state == ActionState.AWAITING

    @property
    def rule_words(self):
        """Which rule made this automatic action, in words ("Scheduled by alice for 17:30"),
        or "" for a click. One query, made only for automatic actions."""
        if not self.rule_type:
            return ""
        if not hasattr(self, "_rule_words"):
            from ..automation import describe_rule

            self._rule_words = describe_rule(self.rule_type, self.rule_id)
        return self._rule_words

    @property
    def is_terminal(self):
        return self.state in TERMINAL_STATES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def last_retry_reason(self):
        """What Zoom answered to the latest attempt that is being retried, or "".

        A job retrying a 5xx stays running for minutes (backing off up to 60 s between
        attempts); without this the operator sees only "attempt 5" and not why it takes long.
        """
        if self.attempts_count < 1:
            return ""
        attempt = (
            self.attempts.filter(outcome=Attempt.Outcome.RETRY)
            .order_by("-number")
            .only("message")
            .first()
        )
        return attempt.message if attempt else ""

    @property
    def publish_wait_seconds(self):
        """Seconds a queued fetch of past meeting details waits on purpose, or 0.

        The fetch a meeting.ended event asks for is sent with PAST_MEETING_FETCH_DELAY_SECONDS
        of countdown (Zoom answers 3001 "not ended" for a while after the end): it is waiting
        for Zoom, not for a worker. Once that time is past, a queued job is waiting for a worker.
        """
        delay = settings.PAST_MEETING_FETCH_DELAY_SECONDS
        if (
            self.kind != ActionKind.FETCH_PAST_MEETING
            or self.source != ActionSource.WEBHOOK
            or self.state != ActionState.QUEUED
            or self.attempts_count
            or not delay
            or now() >= self.requested_at + timedelta(seconds=delay)
        ):
            return 0
        return delay

    @property
    def target_label(self):
        """The target as people name it: "meeting 123 (Weekly sync)"."""
        ident = self.target_id or self.target_uuid or ""
        text = f"{self.target_type or 'target'} {ident}".strip()
        return f"{text} ({self.topic})" if self.topic else text

    # --- secrets -----------------------------------------------------------------------------

    @property
    def secrets(self):
        """The parameters kept encrypted (e.g. {"stream_key": ...}); empty once finished."""
        return json.loads(self.secret_params) if self.secret_params else {}

    # --- transitions -------------------------------------------------------------------------

    @classmethod
    def claim(cls, pk, *, task_id="", lease_seconds=None, own_token=""):
        """Take the action for one run; return it (with its new `lease_token`) or None.

        Rules:
        - A queued action is claimed by a conditional update queued → running, by any message.
        - A running action handed over by `schedule_retry` (no lease token: its run stopped on
          purpose) is taken by the retry message it waits for (`celery_task_id`), uncounted.
        - A running action whose run holds a lease token was being worked on when this
          message came (again): Celery redelivering the message of a run whose worker died
          (acks_late + reject_on_worker_lost), or the broker redelivering a long run's message.
          It is taken over only once its lease has expired, by the database's clock: a run
          with a fresh lease may be alive and is never taken over. Such a takeover counts
          like the sweeper's (`reclaims`), and past ACTION_MAX_RECLAIMS the action fails
          instead (`reclaim`): an action whose run kills its worker is not retried forever.
        - A message carrying the lease token the action still holds (OWN_TOKEN) is the run
          that holds it going on: its worker lost the database and sent its task again. It
          takes the action over at once, uncounted.
        - Anything else (finished, cancelled, another message's, gone) is not ours: None.
        `lease_remaining` tells a redelivered message how long to wait before asking again.
        """
        lease_seconds = lease_seconds or settings.ACTION_LEASE_SECONDS
        token = uuid.uuid4().hex
        fields = {
            "state": ActionState.RUNNING,
            "lease_token": token,
            "lease_expires_at": db_time(lease_seconds),
            # The database's clock, as for the lease: Zoom's events about the end are judged
            # against it (confirmations.ended_event), and a worker's own clock may be off.
            "started_at": Coalesce(F("started_at"), Now()),
        }
        if task_id:
            fields["celery_task_id"] = task_id
        claimed = cls.objects.filter(pk=pk, state=ActionState.QUEUED).update(**fields)
        if not claimed and task_id:
            waiting = cls.objects.filter(pk=pk, state=ActionState.RUNNING, celery_task_id=task_id)
            claimed = waiting.filter(lease_token="").update(**fields)
            if not claimed and own_token:
                claimed = waiting.filter(lease_token=own_token).update(**fields)
            if not claimed:
                dead = waiting.filter(lease_expires_at__lt=db_time()).first()
                if dead is not None and dead.reclaim() == ActionState.QUEUED:
                    claimed = cls.objects.filter(pk=pk, state=ActionState.QUEUED).update(**fields)
        if not claimed:
            return None
        return cls.objects.get(pk=pk)

    @classmethod
    def lease_remaining(cls, pk, *, task_id):
        """Seconds until the lease of the run that TASK_ID's message started runs out, by the
        database's clock; None when the action is not running under that message."""
        row = (
            cls.objects.filter(pk=pk, state=ActionState.RUNNING, celery_task_id=task_id)
            .exclude(lease_token="")
            .annotate(db_now=Now())
            .values("lease_expires_at", "db_now")
            .first()
        )
        if row is None or row["lease_expires_at"] is None:
            return None
        return max(0.0, (row["lease_expires_at"] - row["db_now"]).total_seconds())

    def _owned(self):
        return type(self).objects.filter(
            pk=self.pk, state=ActionState.RUNNING, lease_token=self.lease_token
        )

    def _update_owned(self, **fields):
        """Write FIELDS if this run still owns the action, else raise LeaseLostError."""
        if not self.lease_token or not self._owned().update(**fields):
            raise LeaseLostError(f"action {self.pk} is no longer owned by this run")
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(self, name, value)

    def renew_lease(self, seconds=None):
        """Push the lease forward while working (a long sync, a wait for the rate limiter)."""
        seconds = seconds or settings.ACTION_LEASE_SECONDS
        self._update_owned(lease_expires_at=db_time(seconds))

    def start_attempt(self, operation, *, counts=True):
        """Write the attempt row before calling Zoom, so a worker killed mid-call leaves evidence.

        An attempt still in flight from an earlier run (its worker died) is marked interrupted
        first, and the new one is marked as made after that reclaim. `counts` is False for
        follow-up calls (confirming an end) that do not spend the retry budget.
        """
        with transaction.atomic():
            if not self._owned().select_for_update().exists():
                raise LeaseLostError(f"action {self.pk} is no longer owned by this run")
            last = self.attempts.order_by("-number").first()
            if last is not None and last.outcome == Attempt.Outcome.PENDING:
                last.mark_interrupted()
            attempt = Attempt.objects.create(
                action=self,
                number=(last.number if last else 0) + 1,
                operation=operation,
                after_reclaim=last is not None and last.outcome == Attempt.Outcome.INTERRUPTED,
            )
            fields = {"lease_expires_at": db_time(settings.ACTION_LEASE_SECONDS)}
            if counts:
                fields["attempts_count"] = F("attempts_count") + 1
            self._update_owned(**fields)
        if counts:
            self.attempts_count += 1
        return attempt

    def complete_attempt(
        self,
        attempt,
        *,
        outcome,
        http_status=None,
        zoom_code=None,
        message="",
        duration_ms=None,
        retry_after=None,
    ):
        """Record Zoom's answer on the attempt, and on the action as its latest answer."""
        with transaction.atomic():
            self._update_owned(http_status=http_status, zoom_code=zoom_code)
            done = Attempt.objects.filter(pk=attempt.pk, outcome=Attempt.Outcome.PENDING).update(
                outcome=outcome,
                http_status=http_status,
                zoom_code=zoom_code,
                message=message[:2000],
                duration_ms=duration_ms,
                retry_after=retry_after,
            )
            if not done:
                raise LeaseLostError(f"attempt {attempt.number} of action {self.pk} was closed")
        attempt.outcome, attempt.http_status, attempt.zoom_code = outcome, http_status, zoom_code
        attempt.message, attempt.duration_ms = message, duration_ms
        attempt.retry_after = retry_after

    def schedule_retry(self, delay, task_id):
        """Hand the action over to the task message that will retry it after DELAY seconds:
        it stays running, its lease token is given up (so that message, and no redelivery of
        an earlier one, takes it uncounted: see `claim`), and the lease covers the wait, so the
        sweeper only steps in if that message is lost. `keep` takes it back when the message
        could not be sent."""
        self._handed_over = (self.lease_token, task_id)
        self._update_owned(
            celery_task_id=task_id,
            lease_token="",
            lease_expires_at=db_time(delay + settings.ACTION_LEASE_SECONDS),
        )

    def keep(self):
        """Take back an action `schedule_retry` handed over, whose retry message could not be
        sent: this run waits and retries itself. Raises LeaseLostError if it moved on."""
        token, task_id = self._handed_over
        if (
            not type(self)
            .objects.filter(
                pk=self.pk, state=ActionState.RUNNING, celery_task_id=task_id, lease_token=""
            )
            .update(lease_token=token)
        ):
            raise LeaseLostError(f"action {self.pk} is no longer owned by this run")
        self.lease_token = token

    def set_progress(self, **progress):
        """Merge PROGRESS into `result` (a sync's pages so far) and renew the lease."""
        result = {**self.result, **progress}
        self._update_owned(result=result, lease_expires_at=db_time(settings.ACTION_LEASE_SECONDS))

    def await_confirmation(self, summary, confirming, *, seconds):
        """running → running, confirming: Zoom accepted the call (an end) and the action waits
        SECONDS for evidence that it took effect (meetings.confirmations). SUMMARY says so to
        the operator ("Ended at Zoom, confirming…"); `result["confirming"]` keeps CONFIRMING,
        where the confirmation stands, which also marks the action as one the webhook receiver
        may finish (`confirm_waiting`). Conditioned on this run's lease, which covers the wait."""
        self._update_owned(
            result_summary=summary,
            result={**self.result, "confirming": confirming},
            lease_expires_at=db_time(seconds + settings.ACTION_LEASE_SECONDS),
        )

    def await_parts(self, summary, progress, *, seconds):
        """running → running: a sync whose parts run as their own tasks (meetings.sync_runs)
        says where it stands (SUMMARY, PROGRESS merged into `result`) and is looked at again in
        SECONDS; its lease covers the wait. Conditioned on this run's lease."""
        self._update_owned(
            result_summary=summary,
            result={**self.result, **progress},
            lease_expires_at=db_time(seconds + settings.ACTION_LEASE_SECONDS),
        )

    def confirm_waiting(self, summary, *, result=None):
        """running, confirming → succeeded, on evidence from outside any run (Zoom's *.ended
        event, applied by the webhook receiver). Returns True if it finished the action.

        Rules: only an action still running and waiting for its confirmation; not while a run
        has a call to Zoom in flight (its attempt written, no answer yet: that run finishes the
        action itself, and its attempt must not be left without an answer). The row is locked
        and the update conditioned on the lease it holds, so a run that claimed the action
        meanwhile finds it gone at its next write (LeaseLostError) and stops."""
        with transaction.atomic():
            row = (
                type(self)
                .objects.select_for_update()
                .filter(pk=self.pk, state=ActionState.RUNNING)
                .first()
            )
            if row is None or "confirming" not in row.result:
                return False
            if row.attempts.filter(outcome=Attempt.Outcome.PENDING).exists():
                return False
            if not row.lease_token:
                # Handed over to the message of its next look (schedule_retry): no run holds
                # it, so this finish takes it, under the row lock.
                row.lease_token = uuid.uuid4().hex
                type(self).objects.filter(pk=row.pk, lease_token="").update(
                    lease_token=row.lease_token
                )
            row.mark_succeeded(summary, result=result)
        self.refresh_from_db()
        return True

    def mark_succeeded(self, summary, *, result=None):
        """running → succeeded, once: conditioned on this run's lease. Wipes the secrets."""
        self._finish(ActionState.SUCCEEDED, summary, result)

    def mark_failed(self, summary, *, result=None, http_status=None, zoom_code=None):
        """running → failed, once: conditioned on this run's lease. Wipes the secrets."""
        extra = {}
        if http_status is not None:
            extra["http_status"] = http_status
        if zoom_code is not None:
            extra["zoom_code"] = zoom_code
        self._finish(ActionState.FAILED, summary, result, **extra)
        _notify_failed(self)

    def _finish(self, state, summary, result, **extra):
        result = {**self.result, **(result or {})}
        result.pop("confirming", None)  # finished: no longer waiting for a confirmation
        self._update_owned(
            state=state,
            finished_at=now(),
            result_summary=summary,
            result=result,
            secret_params="",
            lease_token="",
            lease_expires_at=None,
            **extra,
        )

    def cancel(self, *, user=None, reason=""):
        """queued or awaiting approval → cancelled. Only an action no worker has started can be
        cancelled: once a call to Zoom may be in flight, the action runs to its end. A request
        awaiting approval is withdrawn with it. Returns True if cancelled."""
        from .approvals import Approval, ApprovalState

        who = f" by {user.get_username()}" if user is not None else ""
        summary = reason or f"Cancelled{who} before it ran"
        if self.state == ActionState.AWAITING:
            Approval.objects.filter(action_id=self.pk, state=ApprovalState.WAITING).update(
                state=ApprovalState.WITHDRAWN, decided_by=user, decided_at=now()
            )
        done = (
            type(self)
            .objects.filter(pk=self.pk, state__in=(ActionState.QUEUED, ActionState.AWAITING))
            .update(
                state=ActionState.CANCELLED,
                finished_at=now(),
                result_summary=summary,
                secret_params="",
                lease_expires_at=None,
            )
        )
        if done:
            self.refresh_from_db()
        return bool(done)

    # Rows per UPDATE of `mark_sent`: three parameters each, well inside SQLite's 999.
    MARK_SENT_CHUNK = 300

    @classmethod
    def mark_sent(cls, task_ids):
        """Record that a task message was sent for each of these queued actions (TASK_IDS maps
        an action's pk to its message's task id; see lease_expires_at), with one UPDATE per
        MARK_SENT_CHUNK actions. An action that has left the queue meanwhile (a worker claimed
        it already, or it was cancelled) is left as it is. Returns how many were marked."""
        deadline = db_time(settings.ACTION_DISPATCH_TIMEOUT_SECONDS)
        pks = list(task_ids)
        marked = 0
        for start in range(0, len(pks), cls.MARK_SENT_CHUNK):
            chunk = {pk: task_ids[pk] for pk in pks[start : start + cls.MARK_SENT_CHUNK]}
            marked += cls.objects.filter(pk__in=list(chunk), state=ActionState.QUEUED).update(
                celery_task_id=_ValueByPk(chunk), lease_expires_at=deadline
            )
        return marked

    def reclaim(self):
        """running with an expired lease, by the database's clock → queued again, for a new
        run; or failed once its worker has stopped ACTION_MAX_RECLAIMS times while running it
        (an action that kills its worker must not kill every worker forever). Every takeover
        comes through here: the sweeper's, and a redelivered message's (`claim`). An action
        handed over to a retry message that never came (no lease token: no run died) is
        queued again uncounted. Conditioned on the lease it had, so it happens once. Returns
        the new state, or None if the action had moved on."""
        base = type(self).objects.filter(
            pk=self.pk,
            state=ActionState.RUNNING,
            lease_token=self.lease_token,
            lease_expires_at__lt=db_time(),
        )
        stopped = self.reclaims + 1
        if self.lease_token and stopped >= settings.ACTION_MAX_RECLAIMS:
            with transaction.atomic():
                done = base.update(
                    state=ActionState.FAILED,
                    finished_at=now(),
                    reclaims=F("reclaims") + 1,
                    result_summary=(
                        f"Its worker stopped {stopped} times while running it; gave up so as "
                        "not to stop more. Zoom may have carried out an earlier try: check "
                        "the meeting. The worker logs say why it stopped."
                    ),
                    secret_params="",
                    lease_token="",
                    lease_expires_at=None,
                )
                if done:
                    self.attempts.filter(outcome=Attempt.Outcome.PENDING).update(
                        outcome=Attempt.Outcome.INTERRUPTED, message=Attempt.INTERRUPTED_MESSAGE
                    )
            if done:
                self.refresh_from_db()
                _notify_failed(self)
            return ActionState.FAILED if done else None
        done = base.update(
            state=ActionState.QUEUED,
            reclaims=F("reclaims") + 1 if self.lease_token else F("reclaims"),
            lease_token="",
            lease_expires_at=None,
            celery_task_id="",
        )
        return ActionState.QUEUED if done else None


def _notify_failed(action):
    """Those subscribed hear of it (after the commit; never in the way of the pipeline)."""
    from ..notifications import action_failed

    action_failed(action)


class Attempt(models.Model):
    """One call to Zoom made for an action: when, how long, and what Zoom answered.

    Written before the call (outcome "in flight") and completed after, so a worker killed
    mid-call leaves an attempt that the next run marks interrupted.
    """

    class Outcome(models.TextChoices):
        PENDING = "", "In flight"
        OK = "ok", "Succeeded"
        RETRY = "retry", "Failed, retried"
        ERROR = "error", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"

    INTERRUPTED_MESSAGE = (
        "No answer recorded: the worker stopped during this call (the action was taken over)"
    )

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    operation = models.CharField(
        max_length=80, blank=True, help_text="the Zoom operation called, e.g. meetingStatus"
    )
    started_at = models.DateTimeField(default=now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True, default="")
    http_status = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    zoom_code = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    retry_after = models.FloatField("waited before retrying (s)", null=True, blank=True)
    after_reclaim = models.BooleanField(
        default=False, help_text="made after a worker stopped during the previous attempt"
    )

    class Meta:
        ordering = ["action", "number"]
        constraints = [
            models.UniqueConstraint(fields=["action", "number"], name="attempt_number_unique")
        ]

    def __str__(self):
        return f"attempt {self.number} of action {self.action_id}"

    def mark_interrupted(self):
        Attempt.objects.filter(pk=self.pk, outcome=self.Outcome.PENDING).update(
            outcome=self.Outcome.INTERRUPTED, message=self.INTERRUPTED_MESSAGE
        )
        self.outcome, self.message = self.Outcome.INTERRUPTED, self.INTERRUPTED_MESSAGE
