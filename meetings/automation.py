"""Scheduled and automatic actions: what the beat, Zoom's events and the sync do without a
person at the keyboard, all through the action pipeline (meetings.actions.request_action), so
every step is an audited Action whose source (schedule, trigger, policy) and rule are recorded.

- Schedules (`run_schedules`, every AUTOMATION_INTERVAL_SECONDS): a pending schedule whose time
  has come is claimed once (`_claim_due`), judged by the database's clock (never a worker's),
  so it runs at most once however many beats or workers race; one past its grace
  period is marked missed and reported (notify SCHEDULE_MISSED), never silently dropped; one
  run late but inside its grace says by how much.
- Triggers (`fire_triggers`): on meeting.started / webinar.started, and after a sync for what it
  found live (the event was missed), once per instance UUID (TriggerFiring's constraint).
- Policies: meetings.policies (the preview is the plan `apply_policy` carries out).
- Steps (`advance`): a schedule or firing asks for its steps one at a time; the next is asked
  for when the previous one's action finishes (`after_action`, called by the run that finished
  it) or, as a backstop for actions finished elsewhere (a webhook's confirmation, the sweeper),
  by the next beat.

The rate limiter has no priorities: automatic actions queue beside operators' clicks at the
account's rate. What keeps them from crowding clicks out is their size: a policy asks for at
most POLICY_MAX_ACTIONS_PER_RUN per connection and minute, a schedule for one step at a time.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import formats
from django.utils.timezone import localtime

from .models import (
    Action,
    ActionKind,
    ActionSource,
    ActionState,
    Meeting,
    MeetingStatus,
    Policy,
    RuleType,
    ScheduledAction,
    Step,
    StreamPreset,
    Trigger,
    TriggerFiring,
    Webinar,
)
from .models.actions import TERMINAL_STATES
from .notifications import EventKind, notify
from .presets import configure_params

log = logging.getLogger(__name__)

# --- Which action a step is ---------------------------------------------------------------------

# (target type, step) -> ActionKind. The one place that knows it: webinar live streams (issue 16,
# built beside this) add their kinds here.
STEP_KINDS = {
    ("meeting", Step.CONFIGURE_STREAM): ActionKind.UPDATE_LIVESTREAM,
    ("meeting", Step.START_STREAM): ActionKind.START_LIVESTREAM,
    ("meeting", Step.STOP_STREAM): ActionKind.STOP_LIVESTREAM,
    ("meeting", Step.END): ActionKind.END_MEETING,
    ("webinar", Step.CONFIGURE_STREAM): ActionKind.UPDATE_WEBINAR_LIVESTREAM,
    ("webinar", Step.START_STREAM): ActionKind.START_WEBINAR_LIVESTREAM,
    ("webinar", Step.STOP_STREAM): ActionKind.STOP_WEBINAR_LIVESTREAM,
    ("webinar", Step.END): ActionKind.END_WEBINAR,
}


def step_kind(target_type, step):
    """The ActionKind of STEP on a TARGET_TYPE ("meeting", "webinar"), or None if it has none."""
    return STEP_KINDS.get((target_type, step))


def available_steps(target_type):
    """The steps a schedule may hold for TARGET_TYPE, in Step's order."""
    return [s for s in Step if step_kind(target_type, s) is not None]


def stream_start_steps(target_type, preset, *, active_speaker_name=False, display_name=""):
    """The steps of "start the live stream with PRESET": configure it with the preset's values
    (the key read from the preset when the step runs, carried encrypted as a click's is), then
    start it, only if the configuration succeeded."""
    return [
        {"step": Step.CONFIGURE_STREAM, "params": {"preset_id": preset.pk}},
        {
            "step": Step.START_STREAM,
            "params": {
                "active_speaker_name": bool(active_speaker_name),
                "display_name": display_name or None,
            },
            "needs_success": True,
        },
    ]


def _step_params(seq, step):
    params = dict(step.get("params") or {})
    if step["step"] == Step.CONFIGURE_STREAM:
        preset = StreamPreset.objects.filter(
            pk=params.get("preset_id"), account_id=seq.account_id
        ).first()
        if preset is None:
            raise ValueError("its stream preset was deleted")
        return configure_params(preset)
    return params


# --- Steps, one after the other -----------------------------------------------------------------

SEQUENCES = {RuleType.SCHEDULE: ScheduledAction, RuleType.TRIGGER: TriggerFiring}
SOURCES = {RuleType.SCHEDULE: ActionSource.SCHEDULE, RuleType.TRIGGER: ActionSource.TRIGGER}


def _rule_of(seq):
    return RuleType.SCHEDULE if isinstance(seq, ScheduledAction) else RuleType.TRIGGER


def _running(seq):
    model = type(seq)
    state = model.State.RUNNING
    return model.objects.filter(pk=seq.pk, state=state)


def advance(seq, *, sent=None, fresh=False):
    """Ask for SEQ's next step if its current one has finished; finish SEQ after its last.
    Safe to call from several places at once: the step is claimed with a conditional update
    on `next_step`, so each step is asked for once. Returns the action asked for, or None.
    SENT: a list to which the new action's id is added for the caller to enqueue (a beat
    starting many schedules sends their messages together), instead of sending it here.
    FRESH: SEQ was just claimed by the caller (running, no step asked for yet): not read again."""
    from .actions import request_action

    rule_type = _rule_of(seq)
    while True:
        if not fresh:
            seq.refresh_from_db()
        fresh = False
        if seq.state != type(seq).State.RUNNING:
            return None
        current = seq.current_action
        if current is not None and current.state not in TERMINAL_STATES:
            return None  # still running: its end advances
        n = seq.next_step
        if n >= len(seq.steps):
            _finish(seq)
            return None
        step = seq.steps[n]
        # A step that needs its predecessor's success: not after a failure, nor after a step
        # that was refused before any action was made (no current action then).
        if (
            step.get("needs_success")
            and n > 0
            and (current is None or current.state != ActionState.SUCCEEDED)
        ):
            _finish(
                seq,
                stopped=f"{Step(step['step']).label} was not done: the step before it "
                f"did not succeed",
            )
            return None
        with transaction.atomic():
            claimed = (
                type(seq)
                .objects.filter(pk=seq.pk, next_step=n, state=type(seq).State.RUNNING)
                .update(next_step=n + 1, current_action=None)
            )
            if not claimed:
                return None  # another beat or worker asked for it
            kind = step_kind(seq.target_type, step["step"])
            try:
                if kind is None:
                    raise ValueError(f"a {seq.target_type} cannot {step['step']}")
                action, created = request_action(
                    account=seq.account,
                    kind=kind,
                    source=SOURCES[rule_type],
                    target_type=seq.target_type,
                    target_id=seq.target_id,
                    topic=seq.topic,
                    params=_step_params(seq, step),
                    user=getattr(seq, "created_by", None)
                    or getattr(getattr(seq, "trigger", None), "created_by", None),
                    rule_type=rule_type,
                    rule_id=seq.pk,
                    enqueue=sent is None,
                )
            except ValueError as e:
                note = f"{Step(step['step']).label}: not asked for ({e})"
                type(seq).objects.filter(pk=seq.pk).update(
                    result_summary=_join(seq.result_summary, note)
                )
                log.warning("%s %s: step %s refused: %s", rule_type, seq.pk, n, e)
                continue
            type(seq).objects.filter(pk=seq.pk).update(current_action=action)
        if sent is not None and created:
            sent.append(action.pk)
        return action


def _join(summary, note):
    return f"{summary}; {note}" if summary else note


def _finish(seq, stopped=""):
    """running → done, with what each step's action came to."""
    actions = list(
        Action.objects.filter(
            account_id=seq.account_id,
            target_id=seq.target_id,
            rule_type=_rule_of(seq),
            rule_id=seq.pk,
        ).order_by("requested_at", "id")
    )
    parts = [f"{a.get_kind_display()}: {a.get_state_display().lower()}" for a in actions]
    if seq.result_summary:
        parts.append(seq.result_summary)
    if stopped:
        parts.append(stopped)
    if getattr(seq, "late_seconds", None) and seq.late_seconds >= settings.SCHEDULE_LATE_SECONDS:
        parts.insert(0, f"Ran {seq.late_seconds:.0f} s late")
    model = type(seq)
    _running(seq).update(
        state=model.State.DONE, finished_at=Now(), result_summary="; ".join(parts)[:2000]
    )


def after_action(action):
    """An action finished: if a schedule or a trigger asked for it, ask for the next step."""
    model = SEQUENCES.get(action.rule_type)
    if model is None or action.rule_id is None:
        return
    seq = model.objects.filter(pk=action.rule_id).first()
    if seq is not None:
        advance(seq)


def advance_stalled():
    """The backstop: running schedules and firings whose current action finished without the
    run that finished it advancing them (confirmed by Zoom's event, failed by the sweeper), or
    that have no current action (a step refused). Returns how many were looked at."""
    looked = 0
    for model in (ScheduledAction, TriggerFiring):
        stalled = model.objects.filter(state=model.State.RUNNING).filter(
            Q(current_action__isnull=True) | Q(current_action__state__in=TERMINAL_STATES)
        )
        for seq in stalled[:500]:
            advance(seq)
            looked += 1
    return looked


# --- Schedules ----------------------------------------------------------------------------------


def schedule(
    *, account, target_type, target_id, topic, steps, run_at, user=None, grace_seconds=None
):
    """A new pending schedule of STEPS (Step values, or step dicts) on a meeting or webinar."""
    steps = [s if isinstance(s, dict) else {"step": s, "params": {}} for s in steps]
    _check_steps(target_type, steps)
    return ScheduledAction.objects.create(
        account=account,
        target_type=target_type,
        target_id=target_id,
        topic=topic[:300],
        steps=steps,
        run_at=run_at,
        grace_seconds=settings.SCHEDULE_GRACE_SECONDS if grace_seconds is None else grace_seconds,
        created_by=user,
    )


def _check_steps(target_type, steps):
    if not steps:
        raise ValueError("Choose at least one thing to do.")
    for s in steps:
        if step_kind(target_type, s.get("step")) is None:
            raise ValueError(f"A {target_type} cannot be scheduled to {s.get('step')}.")


def edit_schedule(sched, *, run_at, steps, user=None):
    """Change a pending schedule's time and steps. False when it is no longer pending (the beat
    claimed it meanwhile, or someone cancelled it): nothing is changed then."""
    steps = [s if isinstance(s, dict) else {"step": s, "params": {}} for s in steps]
    _check_steps(sched.target_type, steps)
    deadline = run_at + timedelta(seconds=sched.grace_seconds)
    done = ScheduledAction.objects.filter(pk=sched.pk, state=ScheduledAction.State.PENDING).update(
        run_at=run_at, deadline=deadline, steps=steps, updated=Now()
    )
    sched.refresh_from_db()
    return bool(done)


def cancel_schedule(sched, *, user=None):
    """pending → cancelled; False when it already ran, is running, or was missed."""
    who = f" by {user.get_username()}" if user is not None else ""
    done = ScheduledAction.objects.filter(pk=sched.pk, state=ScheduledAction.State.PENDING).update(
        state=ScheduledAction.State.CANCELLED,
        cancelled_by=user,
        finished_at=Now(),
        result_summary=f"Cancelled{who} before it ran",
    )
    sched.refresh_from_db()
    return bool(done)


# How many started schedules' action messages a beat sends together.
ENQUEUE_EVERY = 20


def run_schedules(*, limit=None):
    """One beat: report the missed schedules, run the due ones, advance the stalled. Returns
    {"missed": n, "started": n, "advanced": n}."""
    from .actions import enqueue_actions

    limit = limit or settings.SCHEDULE_BATCH
    missed = _mark_missed(limit)
    claimed = _claim_due(limit)
    sent = []
    for sched in claimed:
        if sched.late_seconds >= settings.SCHEDULE_LATE_SECONDS:
            log.warning(
                "schedule %s runs %.0f s late (grace %s s)",
                sched.pk,
                sched.late_seconds,
                sched.grace_seconds,
            )
        advance(sched, sent=sent, fresh=True)
        if len(sent) >= ENQUEUE_EVERY:
            # Their messages together (one producer, one UPDATE), a few at a time so the first
            # schedules' actions are not held back by the last ones' requests.
            enqueue_actions(sent)
            sent = []
    enqueue_actions(sent)
    advanced = advance_stalled()
    return {"missed": missed, "started": len(claimed), "advanced": advanced}


def _claim_due(limit):
    """Take the pending schedules whose time has come and whose grace has not passed, by the
    database's clock; each is taken by one caller only, however many beats, workers or hosts
    ask at once. Returns them, running, with `late_seconds` set.

    PostgreSQL: one transaction locks the due rows it can (`FOR UPDATE SKIP LOCKED`: rows
    another beat is taking are skipped, not waited for) and marks them running. Elsewhere
    (SQLite: one writer at a time, no row locks) one conditional UPDATE per row, which only
    one caller can win."""
    due = (
        ScheduledAction.objects.filter(
            state=ScheduledAction.State.PENDING, run_at__lte=Now(), deadline__gte=Now()
        )
        .select_related("account", "created_by")
        .annotate(db_now=Now())
        .order_by("run_at", "id")
    )
    claimed = []
    if connection.vendor == "postgresql":
        with transaction.atomic():
            rows = list(due.select_for_update(skip_locked=True, of=("self",))[:limit])
            for sched in rows:
                sched.late_seconds = max(0.0, (sched.db_now - sched.run_at).total_seconds())
                sched.state = ScheduledAction.State.RUNNING
                sched.started_at = sched.db_now
            ScheduledAction.objects.bulk_update(rows, ["state", "started_at", "late_seconds"])
        return rows
    for sched in due[:limit]:
        late = max(0.0, (sched.db_now - sched.run_at).total_seconds())
        if ScheduledAction.objects.filter(
            pk=sched.pk, state=ScheduledAction.State.PENDING, deadline__gte=Now()
        ).update(state=ScheduledAction.State.RUNNING, started_at=Now(), late_seconds=late):
            sched.state, sched.late_seconds = ScheduledAction.State.RUNNING, late
            claimed.append(sched)
    return claimed


def _mark_missed(limit):
    missed = 0
    rows = ScheduledAction.objects.filter(
        state=ScheduledAction.State.PENDING, deadline__lt=Now()
    ).select_related("account")[:limit]
    for sched in rows:
        summary = (
            f"Missed: not run by {formats.date_format(localtime(sched.deadline), 'H:i:s')} "
            f"({sched.grace_seconds} s after its time), so nothing was done"
        )
        if not ScheduledAction.objects.filter(
            pk=sched.pk, state=ScheduledAction.State.PENDING, deadline__lt=Now()
        ).update(state=ScheduledAction.State.MISSED, finished_at=Now(), result_summary=summary):
            continue
        missed += 1
        log.warning("schedule %s missed its time: %s", sched.pk, summary)
        notify(
            EventKind.SCHEDULE_MISSED,
            title=f"Missed: {sched.steps_words()} on {sched.topic or sched.target_id}",
            text=summary,
            account=sched.account,
            url=target_url(sched),
        )
    return missed


def target_url(seq):
    from django.urls import reverse

    model = Webinar if seq.target_type == "webinar" else Meeting
    pk = (
        model.objects.filter(account_id=seq.account_id, zoom_id=seq.target_id)
        .values_list("pk", flat=True)
        .first()
    )
    return reverse(seq.target_type, args=[pk]) if pk else ""


# --- Triggers -----------------------------------------------------------------------------------


def fire_triggers(account, target_type, zoom_id, uuid, *, seen_by):
    """Meeting (webinar) ZOOM_ID of ACCOUNT started (instance UUID): fire its enabled triggers
    and its connection's, once per instance. Returns the firings made."""
    triggers = list(
        Trigger.objects.filter(account=account, target_type=target_type, enabled=True)
        .filter(Q(target_id=zoom_id) | Q(target_id__isnull=True))
        .select_related("preset", "created_by")
    )
    if not triggers:
        return []
    model = Webinar if target_type == "webinar" else Meeting
    row = model.objects.filter(account=account, zoom_id=zoom_id).first()
    instance = uuid or (row.uuid if row else "") or f"seen-live-{zoom_id}"
    fired = []
    for trigger in triggers:
        firing = _fire(trigger, row, zoom_id, instance, seen_by)
        if firing is not None:
            fired.append(firing)
    return fired


def _fire(trigger, row, zoom_id, instance, seen_by):
    steps = []
    note = ""
    if trigger.preset is None:
        note = "Not started: its stream preset was deleted"
    elif getattr(row, "livestream_status", "") == "live":
        note = "Not started: the stream was already live"
    else:
        steps = stream_start_steps(
            trigger.target_type,
            trigger.preset,
            active_speaker_name=trigger.active_speaker_name,
            display_name=trigger.display_name,
        )
    try:
        with transaction.atomic():
            firing = TriggerFiring.objects.create(
                trigger=trigger,
                account_id=trigger.account_id,
                target_type=trigger.target_type,
                target_id=zoom_id,
                topic=(row.topic if row else "")[:300],
                instance_uuid=instance[:100],
                seen_by=seen_by,
                steps=steps,
                started_at=Now(),
                result_summary=note,
            )
    except IntegrityError:
        return None  # fired for this instance already
    log.info(
        "trigger %s fired for %s %s (%s, seen by %s)",
        trigger.pk,
        trigger.target_type,
        zoom_id,
        instance,
        seen_by,
    )
    firing.refresh_from_db()
    advance(firing)
    return firing


def fire_triggers_for_live(account):
    """After a sync: the meetings it found live whose triggers have not fired for that instance
    (their meeting.started never came). Returns the firings made."""
    triggers = list(Trigger.objects.filter(account=account, enabled=True))
    if not triggers:
        return []
    fired = []
    for target_type, model in (("meeting", Meeting), ("webinar", Webinar)):
        mine = [t for t in triggers if t.target_type == target_type]
        if not mine:
            continue
        live = model.objects.filter(account=account, status=MeetingStatus.STARTED)
        if not any(t.target_id is None for t in mine):
            live = live.filter(zoom_id__in=[t.target_id for t in mine])
        done = set(
            TriggerFiring.objects.filter(trigger__in=mine).values_list("target_id", "instance_uuid")
        )
        for row in live.only("zoom_id", "uuid"):
            instance = row.uuid or f"seen-live-{row.zoom_id}"
            if (row.zoom_id, instance) in done:
                continue
            fired += fire_triggers(account, target_type, row.zoom_id, row.uuid, seen_by="sync")
    return fired


# --- Words --------------------------------------------------------------------------------------


def describe_rule(rule_type, rule_id):
    """Which rule made an action, as the timeline, activity page and admin say it."""
    if rule_type == RuleType.SCHEDULE:
        sched = ScheduledAction.objects.filter(pk=rule_id).select_related("created_by").first()
        if sched is None:
            return f"Schedule #{rule_id} (deleted)"
        who = sched.created_by.get_username() if sched.created_by else "someone"
        when = formats.date_format(localtime(sched.run_at), "j M H:i")
        return f"Scheduled by {who} for {when}"
    if rule_type == RuleType.TRIGGER:
        firing = (
            TriggerFiring.objects.filter(pk=rule_id)
            .select_related("trigger__preset", "trigger__created_by")
            .first()
        )
        if firing is None:
            return f"Trigger #{rule_id} (deleted)"
        trigger = firing.trigger
        preset = trigger.preset.name if trigger.preset else "a deleted preset"
        who = f", set by {trigger.created_by.get_username()}" if trigger.created_by else ""
        seen = "Zoom's event" if firing.seen_by == "webhook" else "a sync"
        return f"When it started ({seen}): stream with preset “{preset}”{who}"
    if rule_type == RuleType.POLICY:
        policy = Policy.objects.filter(pk=rule_id).first()
        return f"Policy: {policy.words()}" if policy else f"Policy #{rule_id} (deleted)"
    return ""
