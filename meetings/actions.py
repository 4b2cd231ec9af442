"""
The action pipeline's public face: how views, commands, webhooks and schedules ask for work,
and how a worker carries it out.

Every operation on Zoom is an `Action` row (the audit record) executed by a Celery task:

1. `request_action` validates the request, creates the Action (state queued) in a transaction
   and sends its task message when the transaction commits. While an action of the same kind is
   queued or running for the same target, it returns that one instead (the partial unique
   constraint `one_active_action_per_target` decides, so two operators at once make one job).
2. The task (`meetings.tasks.actions.run_action`) calls `execute(action_id)`: claim the action
   with a conditional update, call Zoom through the account's client and rate limiter, write
   each attempt before the call and complete it after, then finish the action exactly once.
3. Retries: 429 waits for Zoom's Retry-After; 5xx, connection errors and timeouts back off
   exponentially with jitter up to ACTION_MAX_ATTEMPTS; any other 4xx, and a connection that
   needs reconnecting, fail at once with Zoom's words. A retry is a new task message with a
   countdown (the worker is not held); the action stays running, owned by that message.
4. `sweep()` (a periodic task) sends again what the broker never got and takes back running
   actions whose lease expired because their worker died.

Bulk: `dry_run` says what a batch would do, `create_batch` makes it, `cancel_batch` stops what
has not started. What the admins chose for two-person approval is written awaiting approval
and sent only once another person approves it (meetings.approvals).
The per-kind work (which Zoom call, how to confirm it, what the mirror
records) is in `meetings.executors`.
"""

import json
import logging
import random
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Max
from django.utils.timezone import now

from . import approvals
from .models import (
    Action,
    ActionKind,
    ActionSource,
    ActionState,
    Approval,
    ApprovalState,
    Attempt,
    Batch,
    Meeting,
    Webinar,
    ZoomAccount,
)
from .models.actions import PENDING_STATES, REDACTED, LeaseLostError, db_time
from .zoom.client import encode_uuid, livestream_body, livestream_status_body, validate_zoom_id

# Automatic actions that go behind operators' clicks at the rate limiter (issue 16: policies).
BEHIND_CLICKS = (ActionSource.POLICY,)

# A batch's actions need their connection's row, not its credentials (decrypted on load).
ACCOUNT_SECRETS = ("client_secret", "access_token", "refresh_token")

log = logging.getLogger(__name__)

# What each kind acts on.
TARGET_TYPES = {
    ActionKind.END_MEETING: "meeting",
    ActionKind.RECOVER_MEETING: "meeting",
    ActionKind.UPDATE_LIVESTREAM: "meeting",
    ActionKind.START_LIVESTREAM: "meeting",
    ActionKind.STOP_LIVESTREAM: "meeting",
    ActionKind.FETCH_PAST_MEETING: "meeting",
    ActionKind.FETCH_PARTICIPANTS: "meeting",
    ActionKind.END_WEBINAR: "webinar",
    ActionKind.UPDATE_WEBINAR_LIVESTREAM: "webinar",
    ActionKind.START_WEBINAR_LIVESTREAM: "webinar",
    ActionKind.STOP_WEBINAR_LIVESTREAM: "webinar",
    ActionKind.SYNC: "account",
}
# The kinds that configure, start and stop a live stream, by what they act on.
CONFIGURE_KINDS = (ActionKind.UPDATE_LIVESTREAM, ActionKind.UPDATE_WEBINAR_LIVESTREAM)
START_KINDS = (ActionKind.START_LIVESTREAM, ActionKind.START_WEBINAR_LIVESTREAM)
STOP_KINDS = (ActionKind.STOP_LIVESTREAM, ActionKind.STOP_WEBINAR_LIVESTREAM)
# A configuration may come from a stream preset (meetings.presets): the action records which,
# by id and by the name it had at the click (the preset may be renamed or deleted later).
CONFIGURE_PARAMS = (
    "stream_url",
    "stream_key",
    "page_url",
    "resolution",
    "preset_id",
    "preset_name",
)
START_PARAMS = ("active_speaker_name", "display_name")
# The parameters each kind takes; the others take none.
PARAMS = {
    ActionKind.UPDATE_LIVESTREAM: CONFIGURE_PARAMS,
    ActionKind.START_LIVESTREAM: START_PARAMS,
    ActionKind.UPDATE_WEBINAR_LIVESTREAM: CONFIGURE_PARAMS,
    ActionKind.START_WEBINAR_LIVESTREAM: START_PARAMS,
}
# Parameters never stored in clear: Action.params says "•••• (set)", Action.secret_params holds
# them encrypted until the action finishes.
SECRET_PARAMS = ("stream_key",)
# What a batch may do.
BULK_KINDS = (
    ActionKind.END_MEETING,
    ActionKind.END_WEBINAR,
    ActionKind.STOP_LIVESTREAM,
    ActionKind.START_WEBINAR_LIVESTREAM,
    ActionKind.STOP_WEBINAR_LIVESTREAM,
)

# The database connection broke (a restart, a failover): not the action's failure, whatever
# the run was doing. The run stops without writing; its task sends itself again and the new
# delivery takes the action over where it stopped (meetings.tasks.actions.run_action).
DATABASE_GONE = (OperationalError, InterfaceError)

# Sending a task message when the broker is down: try briefly, then leave it to the sweeper
# rather than hold the operator's page.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


# --- Asking for work -----------------------------------------------------------------------------


def request_action(
    *,
    account,
    kind,
    source,
    target_type="",
    target_id=None,
    target_uuid="",
    topic="",
    params=None,
    user=None,
    client_ip=None,
    os_user="",
    batch=None,
    enqueue=True,
    rule_type="",
    rule_id=None,
):
    """Create the Action in a transaction and enqueue its task on commit.

    Returns (action, created). While an action of this kind is queued or running for the same
    target, returns that one with created=False (double clicks make one job; the second
    request's parameters are not applied). `params` must not hold secrets in clear: a stream
    key is passed as params["stream_key"] and stored redacted, the key itself kept encrypted for
    the task to use. enqueue=False leaves the enqueueing to the caller (the command line may run
    `execute` inline; a batch sends its messages together). `os_user`: the operating system
    user who ran the command line (beside `user`, who it acts as).

    A kind the admins chose for two-person approval, asked for by a person, is written
    awaiting approval instead, and no task message is sent (meetings.approvals).

    Raises ValueError, with a message for the operator, for a bad kind, source, target or
    parameter; nothing is written then.
    """
    fields = _action_fields(
        account=account,
        kind=kind,
        source=source,
        target_type=target_type,
        target_id=target_id,
        target_uuid=target_uuid,
        topic=topic,
        params=params,
        user=user,
        client_ip=client_ip,
        batch=batch,
    )
    fields["os_user"] = (os_user or "")[: Action._meta.get_field("os_user").max_length]
    fields["rule_type"], fields["rule_id"] = rule_type or "", rule_id
    kind, target_type = fields["kind"], fields["target_type"]
    target_id, target_uuid = fields["target_id"], fields["target_uuid"]
    if not fields["topic"]:
        fields["topic"] = _topic(_mirror_topic(account, target_type, target_id))
    if batch is None and approvals.action_needs_approval(kind, fields["source"]):
        return _request_approval(fields)
    # Two tries: the active action we collided with may finish between our insert and look-up.
    for _ in range(3):
        try:
            with transaction.atomic():
                action = Action.objects.create(**fields)
                if enqueue:
                    transaction.on_commit(lambda pk=action.pk: enqueue_actions([pk]))
            _log_requested(action, user)
            return action, True
        except IntegrityError:
            existing = (
                Action.objects.active()
                .filter(
                    account=account,
                    kind=kind,
                    target_type=target_type,
                    target_id=target_id,
                    target_uuid=target_uuid,
                )
                .first()
            )
            if existing is not None:
                return existing, False
    raise IntegrityError("could not create the action (a concurrent one kept colliding)")


def _request_approval(fields):
    """`request_action` for a kind that waits for a second person (meetings.approvals): the
    action is written AWAITING, with its Approval, and no task message. While an action of the
    kind is awaiting, queued or running for the target, that one is returned instead. (The
    unique constraint covers queued and running only: two requests at the same instant may
    both wait; approving the second finds the first in flight and cancels it, see
    approvals._release.)"""
    target = {k: fields[k] for k in ("account", "kind", "target_type", "target_id", "target_uuid")}
    with transaction.atomic():
        existing = (
            Action.objects.filter(state__in=PENDING_STATES, **target).select_for_update().first()
        )
        if existing is not None:
            return existing, False
        action = Action.objects.create(**fields, state=ActionState.AWAITING)
        approvals.open_request(
            account=action.account,
            kind=action.kind,
            user=action.requested_by,
            action=action,
            plan=approvals.plan_for_target(
                action.account, action.kind, action.target_type, action.target_id
            ),
        )
    _log_requested(action, fields["requested_by"])
    return action, True


def _action_fields(
    *,
    account,
    kind,
    source,
    target_type,
    target_id,
    target_uuid,
    topic,
    params,
    user,
    client_ip,
    batch,
):
    """The fields of a new Action, validated as `request_action` documents (ValueError with a
    message for the operator); the topic is the one given, the caller looks it up if empty."""
    kind = _choice(ActionKind, kind, "action kind")
    source = _choice(ActionSource, source, "source")
    target_type, target_id, target_uuid = _clean_target(kind, target_type, target_id, target_uuid)
    public, secret = _clean_params(kind, params or {})
    if batch is not None and (batch.account_id not in (None, account.pk) or batch.kind != kind):
        raise ValueError("a batch holds actions of one kind (on its account, when it names one)")
    return {
        "account": account,
        "kind": kind,
        "source": source,
        "target_type": target_type,
        "target_id": target_id,
        "target_uuid": target_uuid,
        "topic": _topic(topic),
        "params": public,
        "secret_params": json.dumps(secret) if secret else "",
        "requested_by": user,
        "client_ip": client_ip or None,
        "batch": batch,
    }


def _topic(topic):
    return (topic or "")[: Action._meta.get_field("topic").max_length]


def _log_requested(action, user):
    log.info(
        "action %s requested: %s %s by %s via %s",
        action.pk,
        action.kind,
        action.target_label,
        user.get_username() if user else "-",
        action.source,
    )


def _choice(choices, value, what):
    try:
        return choices(value)
    except ValueError:
        raise ValueError(f"unknown {what}: {value!r}") from None


def _clean_target(kind, target_type, target_id, target_uuid):
    expected = TARGET_TYPES[kind]
    if target_type and target_type != expected:
        raise ValueError(f"{ActionKind(kind).label} acts on a {expected}, not a {target_type}")
    target_uuid = (target_uuid or "").strip()
    if kind == ActionKind.SYNC:
        if target_id is not None or target_uuid:
            raise ValueError("a sync acts on the whole account, not on one meeting")
        return expected, None, ""
    if kind == ActionKind.FETCH_PARTICIPANTS and not target_uuid:
        # The participants of one instance: "the latest" would change under a list already shown.
        raise ValueError(f"{ActionKind(kind).label} needs an instance UUID")
    if kind in (ActionKind.FETCH_PAST_MEETING, ActionKind.FETCH_PARTICIPANTS) and target_uuid:
        encode_uuid(target_uuid)  # ValueError for anything that is not a Zoom UUID
        if target_id is not None and target_id != "":
            target_id = validate_zoom_id(target_id, f"{expected} id")
        return expected, target_id if target_id != "" else None, target_uuid
    if target_uuid:
        raise ValueError(f"{ActionKind(kind).label} acts on a {expected} id, not an instance UUID")
    if target_id is None or target_id == "":
        raise ValueError(f"{ActionKind(kind).label} needs a {expected} id")
    return expected, validate_zoom_id(target_id, f"{expected} id"), ""


def _clean_params(kind, params):
    """(params to store, secrets to encrypt), validated as Zoom validates them."""
    if not isinstance(params, dict):
        raise ValueError("parameters must be a mapping")
    allowed = PARAMS.get(kind, ())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{ActionKind(kind).label} takes no parameter {', '.join(unknown)}")
    if kind in CONFIGURE_KINDS:
        # The client's own validation: the same rules the request will be held to, and its
        # messages name the field, never the value (the key is a secret).
        body = livestream_body(
            stream_url=params.get("stream_url"),
            stream_key=params.get("stream_key"),
            page_url=params.get("page_url"),
            resolution=params.get("resolution") or None,
        )
        public = {
            "stream_url": body["stream_url"],
            "stream_key": REDACTED,
            "page_url": body["page_url"],
            "resolution": body.get("resolution", ""),
        }
        public.update(_preset_params(params))
        return public, {"stream_key": body["stream_key"]}
    if kind in START_KINDS:
        active_speaker_name = params.get("active_speaker_name")
        display_name = params.get("display_name") or None
        livestream_status_body(
            "start", active_speaker_name=active_speaker_name, display_name=display_name
        )
        return {"active_speaker_name": active_speaker_name, "display_name": display_name}, {}
    return {}, {}


def _preset_params(params):
    """The preset a configuration was taken from ({} when typed in): its id, a positive
    integer, and its name at the time, 1..100 characters, both or neither."""
    preset_id, preset_name = params.get("preset_id"), params.get("preset_name")
    if preset_id is None and preset_name is None:
        return {}
    if isinstance(preset_id, bool) or not isinstance(preset_id, int) or preset_id <= 0:
        raise ValueError("preset_id must be a preset's number")
    if not isinstance(preset_name, str) or not 0 < len(preset_name.strip()) <= 100:
        raise ValueError("preset_name must be the preset's name (1 to 100 characters)")
    return {"preset_id": preset_id, "preset_name": preset_name.strip()}


def _mirror_topic(account, target_type, target_id):
    model = {"meeting": Meeting, "webinar": Webinar}.get(target_type)
    if model is None or target_id is None:
        return account.name if target_type == "account" else ""
    return (
        model.objects.filter(account=account, zoom_id=target_id)
        .values_list("topic", flat=True)
        .first()
        or ""
    )


def enqueue_actions(action_ids, *, countdown=None):
    """Send the task message of each queued action; returns how many were sent.

    The messages go out through one producer (one broker connection) and are marked sent with
    one UPDATE afterwards: a batch of 300 is 300 publishes and one statement, where a connection
    checkout and an autocommitted UPDATE per message held the bulk screen's POST for seconds.
    Stops at the first failure (the broker is down: trying the rest would only hold the caller
    for nothing); what was sent before it is marked sent all the same, and the sweeper sends
    what was not once the broker is back. A message that went out but was not marked (the
    process died in between) is sent again by the sweeper: the action is claimed by one run
    only, so the second message does nothing.
    """
    from .tasks.actions import run_action

    action_ids = list(action_ids)
    sent = {}
    if not action_ids:
        return 0
    try:
        with run_action.app.producer_or_acquire() as producer:
            for action_id in action_ids:
                task_id = str(uuid.uuid4())
                if not _send(action_id, task_id=task_id, countdown=countdown, producer=producer):
                    break
                sent[action_id] = task_id
    except Exception as e:  # taking a connection from the pool, or giving it back, failed
        log.warning(
            "could not send task messages (%s: %s); the sweeper will send the %d not sent",
            type(e).__name__,
            e,
            len(action_ids) - len(sent),
        )
    finally:
        Action.mark_sent(sent)
    return len(sent)


def _send(action_id, *, task_id=None, countdown=None, producer=None):
    """Publish the task message of ACTION_ID; False (logged) if the broker could not take it."""
    from .tasks.actions import run_action

    try:
        run_action.apply_async(
            (action_id,),
            task_id=task_id or str(uuid.uuid4()),
            countdown=countdown,
            retry_policy=PUBLISH_RETRY_POLICY,
            producer=producer,
        )
    except Exception as e:  # kombu raises OperationalError, ChannelError, OSError...
        log.warning(
            "could not send the task of action %s (%s: %s); the sweeper will send it",
            action_id,
            type(e).__name__,
            e,
        )
        return False
    return True


# --- Bulk ----------------------------------------------------------------------------------------


@dataclass
class PlannedItem:
    """One line of a dry run: a target and whether the batch would act on it, and why not."""

    target_type: str
    target_id: int | None
    topic: str = ""
    host_email: str = ""
    status: str = ""
    livestream_status: str = ""
    account_id: int | None = None
    do: bool = True
    reason: str = ""
    existing_action_id: int | None = None

    def as_dict(self):
        return asdict(self)


def dry_run(kind, targets, *, account=None, allowed_account_ids=None):
    """What a batch of KIND over TARGETS would do, without doing anything.

    TARGETS are Meeting / Webinar rows of the mirror, or Zoom ids (looked up in the mirror, of
    ACCOUNT when given). Without ACCOUNT the targets may be of several connections (rows: each
    its own); ALLOWED_ACCOUNT_IDS, when given, are the connections the requester may act on,
    the others' targets are skipped saying so. Returns a list of PlannedItem, in the order
    given: `do` says whether the batch would act on it, `reason` why not (or a caveat). A
    target is skipped when the mirror says there is nothing to do (the meeting is not live, the
    stream is not running), when the same action is already queued or running for it, or when
    it is listed twice. Two queries whatever the number of targets: the mirror rows of the ids,
    the active actions.
    """
    kind = _choice(ActionKind, kind, "action kind")
    if kind not in BULK_KINDS:
        raise ValueError(f"{ActionKind(kind).label} cannot be done in bulk")
    target_type = TARGET_TYPES[kind]
    model = Webinar if target_type == "webinar" else Meeting
    given = []
    for target in targets:
        row = target if isinstance(target, (Meeting, Webinar)) else None
        if row is not None and not isinstance(row, model):
            raise ValueError(f"{ActionKind(kind).label} acts on {target_type}s")
        zoom_id = row.zoom_id if row is not None else validate_zoom_id(target, f"{target_type} id")
        given.append((row, zoom_id))
    mirrored = _mirror_rows(model, {zoom_id for row, zoom_id in given if row is None}, account)
    plan, seen = [], set()
    for row, zoom_id in given:
        if row is None:
            row = mirrored.get(zoom_id)
        item = PlannedItem(target_type=target_type, target_id=zoom_id)
        if row is not None:
            item.topic, item.host_email, item.status = row.topic, row.host_email, row.status
            item.livestream_status = getattr(row, "livestream_status", "")
            item.account_id = row.account_id
        plan.append(item)
        if (item.account_id, zoom_id) in seen:
            item.do, item.reason = False, "listed twice"
            continue
        seen.add((item.account_id, zoom_id))
        if account is not None and row is not None and row.account_id != account.pk:
            item.do, item.reason = False, "belongs to another Zoom account"
        elif (
            allowed_account_ids is not None
            and row is not None
            and row.account_id not in allowed_account_ids
        ):
            item.do, item.reason = False, "you may not act on this Zoom connection"
        elif row is None:
            if account is None:
                item.do, item.reason = False, "not in the dashboard's copy of any account"
            else:
                item.account_id = account.pk
                item.reason = "not in the dashboard's copy: Zoom will say whether it applies"
        elif kind in STOP_KINDS and row.livestream_status != "live":
            item.do, item.reason = False, "its live stream is not running"
        elif kind not in STOP_KINDS and row.status != "started":
            item.do, item.reason = False, f"not live ({row.get_status_display().lower()})"
        elif kind in START_KINDS and row.livestream_status == "live":
            item.do, item.reason = False, "its live stream is already running"
        elif kind in START_KINDS and not (row.has_stream_configured and row.stream_key):
            item.do, item.reason = False, "no live stream is configured for it"
    todo = [item for item in plan if item.do]
    active = _active_actions(
        kind,
        account_ids={item.account_id for item in todo},
        target_ids={item.target_id for item in todo},
    )
    for item in todo:
        existing = active.get((item.account_id, item.target_id))
        if existing is not None:
            _already_requested(item, existing)
    return plan


def _mirror_rows(model, zoom_ids, account):
    """{zoom id: the mirror's row} for ZOOM_IDS, of ACCOUNT when given; when several accounts
    have a row for an id, the first in the model's order (what `.first()` would pick)."""
    if not zoom_ids:
        return {}
    rows = model.objects.filter(zoom_id__in=zoom_ids)
    if account is not None:
        rows = rows.filter(account=account)
    found = {}
    for row in rows:
        found.setdefault(row.zoom_id, row)
    return found


def _active_actions(kind, *, account_ids, target_ids):
    """{(account id, target id): the queued or running action of KIND}, newest first when the
    constraint allows more than one (other target types or instance UUIDs)."""
    if not target_ids:
        return {}
    found = {}
    rows = (
        Action.objects.filter(state__in=PENDING_STATES)
        .filter(kind=kind, account_id__in=account_ids, target_id__in=target_ids)
        .only("pk", "state", "account_id", "target_id")
    )
    for action in rows:
        found.setdefault((action.account_id, action.target_id), action)
    return found


def _already_requested(item, existing):
    item.do = False
    item.existing_action_id = existing.pk
    item.reason = (
        f"already requested (action #{existing.pk}, {existing.get_state_display().lower()})"
    )


def create_batch(
    *,
    account,
    kind,
    targets,
    user=None,
    source=ActionSource.BULK,
    client_ip=None,
    params=None,
    allowed_account_ids=None,
):
    """Make a batch of KIND over TARGETS (as `dry_run` takes them) on ACCOUNT: one action per
    target the dry run would act on, all enqueued when the transaction commits. They run at the
    account's rate limit, however many workers there are. Returns (batch, plan).

    ACCOUNT None: the targets (mirror rows) may be of several connections, each action on its
    own, each connection's actions at that connection's rate limit (the limiter is per
    account), side by side; the batch names an account only when all of them are of one.

    A target whose action someone else asked for since the dry run (another operator, or the
    same form submitted twice at once) is not acted on twice: the constraint
    `one_active_action_per_target` decides, as for one request, and the plan reports that
    target as already requested. Raises ValueError when there is nothing to do.
    """
    plan = dry_run(kind, targets, account=account, allowed_account_ids=allowed_account_ids)
    todo = [item for item in plan if item.do]
    if not todo:
        raise ValueError("Nothing to do: " + "; ".join(sorted({i.reason for i in plan})))
    if account is None:
        account_ids = {item.account_id for item in todo}
        if len(account_ids) == 1:
            account = ZoomAccount.objects.defer(*ACCOUNT_SECRETS).get(pk=account_ids.pop())
    waits = approvals.batch_needs_approval(kind, len(todo), source)
    with transaction.atomic():
        batch = Batch.objects.create(kind=kind, account=account, requested_by=user)
        made = _insert_batch(
            batch,
            todo,
            source=source,
            user=user,
            client_ip=client_ip,
            params=params,
            state=ActionState.AWAITING if waits else ActionState.QUEUED,
        )
        ids = [
            made[(item.account_id, item.target_id)].pk
            for item in todo
            if (item.account_id, item.target_id) in made
        ]
        batch.total = len(ids)
        batch.save(update_fields=["total"])
        if waits and ids:
            # The whole batch waits for a second person; one approval releases all of it.
            approvals.open_request(
                # A batch over several connections is filed under its first one's.
                account=account or accounts_of(todo)[0],
                kind=kind,
                user=user,
                batch=batch,
                plan=[item.as_dict() for item in todo if (item.account_id, item.target_id) in made],
                size=len(ids),
            )
        else:
            transaction.on_commit(lambda: enqueue_actions(ids))
    log.info(
        "batch %s: %s x %d requested%s", batch.pk, kind, len(ids), " (awaits approval)" * waits
    )
    return batch, plan


def accounts_of(todo):
    """The connections of planned items TODO, in the order they first appear."""
    ids = list(dict.fromkeys(item.account_id for item in todo))
    found = ZoomAccount.objects.defer(*ACCOUNT_SECRETS).in_bulk(ids)
    return [found[pk] for pk in ids]


def _insert_batch(batch, todo, *, source, user, client_ip, params, state=ActionState.QUEUED):
    """Write the actions of BATCH for the planned items TODO with one INSERT that skips the
    targets with an active action (ON CONFLICT DO NOTHING on PostgreSQL, INSERT OR IGNORE on
    SQLite: the partial unique constraint decides, and waits for a concurrent transaction
    that inserted the same target to finish, as a single request's INSERT does); those items
    are marked already requested. Returns {target id: the Action written}."""
    pending = {(item.account_id, item.target_id): item for item in todo}
    accounts = (
        {batch.account_id: batch.account}
        if batch.account_id is not None
        else ZoomAccount.objects.defer(*ACCOUNT_SECRETS).in_bulk({item.account_id for item in todo})
    )
    made = {}
    # Three tries: the active action we collided with may finish between our insert and
    # look-up, as in request_action.
    for _ in range(3):
        rows = [
            Action(
                **_action_fields(
                    account=accounts[item.account_id],
                    kind=batch.kind,
                    source=source,
                    target_type=item.target_type,
                    target_id=item.target_id,
                    target_uuid="",
                    topic=item.topic,
                    params=params,
                    user=user,
                    client_ip=client_ip,
                    batch=batch,
                ),
                state=state,
            )
            # One order for every batch: two batches over the same meetings, selected in
            # different orders, would each wait for a row the other inserted (a deadlock that
            # PostgreSQL ends by failing one of them).
            for item in sorted(pending.values(), key=lambda item: (item.account_id, item.target_id))
        ]
        Action.objects.bulk_create(rows, ignore_conflicts=True)
        # The ids of what was written (bulk_create cannot return them when it skips rows).
        written = {
            (account_id, target_id): pk
            for account_id, target_id, pk in Action.objects.filter(
                batch=batch, target_id__in={t for _, t in pending}
            ).values_list("account_id", "target_id", "pk")
        }
        for row in rows:
            key = (row.account_id, row.target_id)
            if key in written:
                row.pk = written[key]
                made[key] = row
                _log_requested(row, user)
        pending = {key: item for key, item in pending.items() if key not in written}
        if not pending:
            return made
        active = _active_actions(
            batch.kind,
            account_ids={a for a, _ in pending},
            target_ids=[t for _, t in pending],
        )
        for key, item in pending.items():
            existing = active.get(key)
            if existing is not None:
                _already_requested(item, existing)
        pending = {key: item for key, item in pending.items() if item.do}
        if not pending:
            return made
    raise IntegrityError("could not create the actions (concurrent ones kept colliding)")


def cancel_batch(batch, *, user=None):
    """Stop a batch: its actions that have not started are cancelled; those already running
    finish (a call to Zoom may be in flight). Returns how many were cancelled."""
    who = f" by {user.get_username()}" if user is not None else ""
    at = now()
    with transaction.atomic():
        Batch.objects.filter(pk=batch.pk, cancelled_at__isnull=True).update(cancelled_at=at)
        approval = Approval.objects.filter(batch=batch, state=ApprovalState.WAITING).first()
        if approval is not None:
            approvals.withdraw(approval, user=user)
        cancelled = batch.actions.filter(
            state__in=(ActionState.QUEUED, ActionState.AWAITING)
        ).update(
            state=ActionState.CANCELLED,
            finished_at=at,
            result_summary=f"Batch cancelled{who} before this action ran",
            secret_params="",
            lease_expires_at=None,
        )
    batch.refresh_from_db()
    return cancelled


def cancel_action(action, *, user=None):
    """Cancel one action that no worker has started. Returns True if it was cancelled."""
    return action.cancel(user=user)


# --- Doing the work ------------------------------------------------------------------------------


def backoff_delay(failures, *, rng=random.random):
    """Seconds before retry number FAILURES (1, 2, ...): exponential from
    ACTION_RETRY_BASE_SECONDS, capped at ACTION_RETRY_MAX_SECONDS, with "equal jitter" (half
    fixed, half random) so that many actions failing together do not retry together."""
    ceiling = min(
        settings.ACTION_RETRY_MAX_SECONDS, settings.ACTION_RETRY_BASE_SECONDS * 2 ** (failures - 1)
    )
    return ceiling / 2 + rng() * ceiling / 2


# A redelivered message asks again this long after the lease it found runs out, so that the
# database's clock has passed it even if the lease is renewed at the last moment.
LEASE_MARGIN_SECONDS = 1.0


def execute(action_id, *, task_id="", inline=None, sleep=time.sleep, lease_token=""):
    """Claim the action (conditional update queued → running), call Zoom, record each attempt,
    retry what may succeed later, finish it exactly once. What the Celery task runs.

    `task_id` is the Celery task's id: a running action is taken over only by the message it
    waits for (see Action.claim). Run `inline` (the default without a task id: the command
    line), retries wait here instead of being re-enqueued, so the action is finished when this
    returns. Returns the action's state when this run is done with it, or None when the action
    was not this run's to do.
    """
    if inline is None:
        inline = not task_id
    action = Action.claim(action_id, task_id=task_id, own_token=lease_token)
    if action is None:
        remaining = Action.lease_remaining(action_id, task_id=task_id) if task_id else None
        if remaining is not None and _send(
            action_id, task_id=task_id, countdown=remaining + LEASE_MARGIN_SECONDS
        ):
            # This message came again while the run it started still holds its lease: a worker
            # that died just now (its lease runs on), or a redelivery while the run is alive.
            # Ask again once that lease has run out; the run, if alive, renews it before then.
            log.warning(
                "action %s: its run holds a lease for %.0f s more; asking again then (task %s)",
                action_id,
                remaining,
                task_id,
            )
            return None
        log.info("action %s: not ours to run (task %s)", action_id, task_id or "-")
        return None
    run = Run(action, sleep=sleep)
    run.inline = inline
    try:
        while True:
            delay = run.step()
            if delay is None:
                _after(action)
                return action.state
            if not inline:
                retry_id = str(uuid.uuid4())
                action.schedule_retry(delay, retry_id)
                if _send(action.pk, task_id=retry_id, countdown=delay):
                    log.info("action %s: retry in %.1f s (task %s)", action.pk, delay, retry_id)
                    if run.after_handover is not None:
                        run.after_handover()  # a sync's parts (meetings.sync_runs)
                    return action.state
                action.keep()
            # Inline, or the broker is unreachable for the retry message: wait here.
            action.renew_lease(delay + settings.ACTION_LEASE_SECONDS)
            sleep(delay)
    except LeaseLostError:
        log.warning("action %s: taken over by another run; this one stops", action_id)
        return None
    except DATABASE_GONE as e:
        # The task sends itself again with this lease: its next delivery is this run going on.
        e.lease_token = action.lease_token
        raise


def _after(action):
    """A finished action a schedule or a trigger asked for: ask for their next step now (the
    beat does it too, for actions finished elsewhere). Never fails the run that finished it."""
    if not action.rule_type or not action.is_terminal:
        return
    from .automation import after_action

    try:
        after_action(action)
    except Exception:
        log.exception(
            "action %s: the next step of its %s could not be asked for", action.pk, action.rule_type
        )


class Run:
    """One run of an action by a worker: its Zoom client, rate limiter, and attempt rows.

    Executors (meetings.executors) use `client`, `params`, `call()` for follow-up calls,
    `progress()` and `sleep()`.
    """

    def __init__(self, action, *, sleep=time.sleep):
        from .ratelimit import throttle_for

        self.action = action
        self.sleep = sleep
        limits = {}
        if action.source in BEHIND_CLICKS:
            # A policy's action goes behind operators' clicks: it books a slot only when the
            # account's queue for the label is short, else it is handed back to try later.
            limits["max_wait"] = settings.ZOOM_RATE_LIMIT_AUTOMATIC_MAX_WAIT_SECONDS
        self.limiter = throttle_for(action.account, sleep=self._wait, **limits)
        self._client = None
        self._attempt = None
        self._pending = None  # (operation, counts) of the call about to be made
        # Run by `execute` inline (the command line): a sync does its parts here too.
        self.inline = False
        # What to do once the action is handed back to its next message (a sync's parts).
        self.after_handover = None
        self._attempt_started = None
        self._last_status = None
        self._last_renewal = time.monotonic()
        # What the `already_done` check found when it could not confirm the change: said in
        # the failure, so the record does not read as if Zoom surely did nothing.
        self._unconfirmed = ""

    # --- what executors use ---

    @property
    def client(self):
        if self._client is None:
            from .zoom.client import ZoomClient

            self._client = ZoomClient.for_account(
                self.action.account, throttle=self._throttle, on_response=self._on_response
            )
        return self._client

    @property
    def params(self):
        """The action's parameters with its secrets, for the Zoom call only."""
        return {**self.action.params, **self.action.secrets}

    def call(self, operation, fn, *, counts=False):
        """Make one Zoom call FN(client) as one attempt row named OPERATION; return its value.
        Follow-up calls (confirming an end) pass counts=False: they do not spend retries."""
        from .zoom.errors import ZoomError

        self._pending = (operation, counts)
        self._attempt = None
        try:
            value = fn(self.client)
        except Exception as e:
            if self._attempt is None and isinstance(e, ZoomError):
                # Refused before any request left (the connection needs reconnecting): still a
                # row saying what was tried and why it stopped, as for the main call (_fail).
                self._attempt = self.action.start_attempt(operation, counts=counts)
                self._attempt_started = time.monotonic()
            self._close_attempt(e, outcome=Attempt.Outcome.ERROR)
            raise
        self._close_attempt(None, outcome=Attempt.Outcome.OK)
        return value

    def wait(self, seconds):
        """Wait between follow-up calls, keeping the lease."""
        self._wait(seconds)

    def progress(self, data):
        """Progress of a long call (a sync's pages), shown while the action runs."""
        self.action.set_progress(progress=dict(data))
        self._last_renewal = time.monotonic()

    # --- the hooks the Zoom client calls ---

    def _throttle(self, label):
        self._heartbeat()
        started = False
        if self._pending is not None and self._attempt is None:
            # While the account is paused after a 429 for longer than a worker waits, hand the
            # action back now, before an attempt row says a call was made.
            # Zoom's daily cap for this label used up: refused here, before an attempt row.
            self.limiter.check_daily_pause(label)
            paused = self.limiter.backoff_remaining()
            if paused > self.limiter.max_wait:
                from .ratelimit import ThrottleWaitError

                raise ThrottleWaitError(paused, label)
            # The attempt row (crash evidence) is written before the slot is booked, so nothing
            # but the wait stands between slot and request: a commit there delayed each request
            # by a different 0-300 ms on a busy machine and bunched them at Zoom, whose limit
            # counts arrivals per second (bench/bulk_end.py: 429s at 97 % of the limit;
            # slot-to-send p99 138 ms with the commit after the slot, 12 ms before it).
            operation, counts = self._pending
            self._attempt = self.action.start_attempt(operation, counts=counts)
            self._last_status = None
            started = True
        self.limiter(label)  # books the slot and sleeps until it
        if started:
            self._attempt_started = time.monotonic()

    def _on_response(self, method, path, status, duration_ms, error):
        self._last_status = status
        if status == 429:
            self.limiter.after_429(error)

    def _wait(self, seconds):
        if seconds > settings.ACTION_LEASE_SECONDS / 4:
            self.action.renew_lease(seconds + settings.ACTION_LEASE_SECONDS)
        self.sleep(seconds)

    def _heartbeat(self):
        # A long call (a sync) keeps its lease fresh, and finds out early if it lost it.
        if time.monotonic() - self._last_renewal > settings.ACTION_LEASE_SECONDS / 4:
            self.action.renew_lease()
            self._last_renewal = time.monotonic()

    # --- attempts and outcomes ---

    def _close_attempt(self, error, *, outcome, retry_after=None, message=None):
        attempt, self._attempt, self._pending = self._attempt, None, None
        if attempt is None:
            return None
        from .zoom.errors import ZoomError

        is_zoom = isinstance(error, ZoomError)
        status = error.status if is_zoom else self._last_status
        started = self._attempt_started or time.monotonic()
        if message is None:
            message = _describe(error) if error is not None else f"OK (HTTP {status or 'ok'})"
        self.action.complete_attempt(
            attempt,
            outcome=outcome,
            http_status=status,
            zoom_code=error.code if is_zoom else None,
            message=message,
            duration_ms=round((time.monotonic() - started) * 1000),
            retry_after=retry_after,
        )
        return attempt

    def step(self):
        """Make the action's main call once. Returns None when the action is finished, or the
        seconds to wait before trying again."""
        from celery.exceptions import SoftTimeLimitExceeded

        from .executors import EXECUTORS, Outcome
        from .ratelimit import ThrottleWaitError
        from .sync import SyncAlreadyRunning, SyncLockLost
        from .zoom.errors import ZoomError, ZoomNeedsReconnect, ZoomRateLimited

        action = self.action
        executor = EXECUTORS[action.kind]
        value, done_before = None, False
        self._unconfirmed = ""
        if executor.resumable:
            last = action.attempts.filter(operation=executor.operation).order_by("-number").first()
            # A run that died after Zoom accepted the call but before finishing: do not call
            # again, go on from there.
            done_before = last is not None and last.outcome == Attempt.Outcome.OK
        if not done_before:
            self._pending = (executor.operation, True)
            self._attempt = None
            try:
                value = executor.call(self)
            except ThrottleWaitError as e:
                # The limiter asked for a long wait before anything was sent.
                attempt = self._close_attempt(
                    e, outcome=Attempt.Outcome.RETRY, retry_after=e.seconds
                )
                if action.source in BEHIND_CLICKS and attempt is not None:
                    # Waiting behind operators' clicks spends none of its retries: nothing
                    # reached Zoom. (Its attempt row stays, saying why it waited.)
                    action._update_owned(attempts_count=F("attempts_count") - 1)
                    action.attempts_count -= 1
                return e.seconds
            except ZoomRateLimited as e:
                return self._rate_limited(e)
            except ZoomNeedsReconnect as e:
                return self._fail(e, e.describe())
            except ZoomError as e:
                if executor.already_done is not None and self._already_done(executor, e):
                    return None
                if e.permanent:
                    return self._fail(e, _describe(e))
                return self._retry_or_fail(e)
            except (SyncAlreadyRunning, SyncLockLost) as e:
                # Another sync holds the account's lock, or this one lost it: try again later.
                return self._retry_or_fail(e)
            except ValueError as e:
                # The client refused the input before sending (an id out of range, ...).
                return self._fail(e, f"Not sent to Zoom: {e}")
            except SoftTimeLimitExceeded as e:
                return self._fail(e, "Stopped: it ran longer than the task's time limit")
            except (LeaseLostError, *DATABASE_GONE):
                raise
            except Exception as e:
                log.exception("action %s: unexpected error", action.pk)
                return self._fail(e, f"Unexpected error ({type(e).__name__}); see logs")
            self._close_attempt(None, outcome=Attempt.Outcome.OK)
        from .confirmations import Later

        try:
            outcome = executor.finish(self, value)
        except (LeaseLostError, *DATABASE_GONE):
            raise
        except Exception as e:
            # Zoom did it; only our follow-up (confirmation, the mirror) broke.
            log.exception("action %s: Zoom accepted it, the follow-up failed", action.pk)
            outcome = Outcome(
                True,
                f"{executor.success_text} (the dashboard's copy was not updated: "
                f"{type(e).__name__}; the next sync will)",
            )
        from .sync_runs import Waiting

        if isinstance(outcome, Waiting):
            # A sync's parts run as their own tasks: no worker waits for them; look again later.
            action.await_parts(outcome.summary, outcome.progress, seconds=outcome.seconds)
            self.after_handover = outcome.after
            return max(outcome.seconds, 0.01)
        if isinstance(outcome, Later):
            # Zoom accepted it; its evidence is awaited without holding the worker
            # (meetings.confirmations): run again later, as a retry is.
            action.await_confirmation(outcome.summary, outcome.confirming, seconds=outcome.seconds)
            return max(outcome.seconds, 0.0)
        if outcome.succeeded:
            action.mark_succeeded(outcome.summary, result=outcome.result)
        else:
            action.mark_failed(outcome.summary, result=outcome.result)
        log.info("action %s %s: %s", action.pk, action.state, outcome.summary)
        return None

    def _already_done(self, executor, error):
        """After an error that may hide a success, ask whether the change happened anyway
        (executor.already_done: Zoom's own answer, or an event Zoom sent). It may have when the
        connection broke after the request went out, or when a worker died during an earlier
        call of this action: Zoom may have carried that call out, and now refuses to do it again
        (an ended webinar is "not found", a recovered meeting "not deleted"), with the words it
        also has for a real refusal.

        Returns True when the change happened and the action is finished. Otherwise the attempt
        is closed with its error, `_unconfirmed` says what the check found, and the caller
        decides on the error as usual."""
        attempt = self._attempt
        if not (
            getattr(error, "may_have_reached_zoom", False)
            or self._interrupted_before(executor, attempt)
        ):
            return False
        self._close_attempt(error, outcome=Attempt.Outcome.ERROR)
        try:
            outcome = executor.already_done(self)
        except (LeaseLostError, *DATABASE_GONE):
            raise
        except Exception as e:
            log.warning("action %s: could not check whether it was done: %s", self.action.pk, e)
            outcome = None
        if outcome is None or not outcome.succeeded:
            self._unconfirmed = (
                outcome.summary
                if outcome is not None
                else "whether an earlier request went through could not be checked"
            )
            log.info("action %s: not confirmed done: %s", self.action.pk, self._unconfirmed)
            return False
        self.action.mark_succeeded(outcome.summary, result=outcome.result)
        return True

    def _interrupted_before(self, executor, attempt):
        """Whether a worker died during a call of this action's main operation before this one
        (the call right before, or an earlier one: a takeover, then a 5xx, then Zoom's refusal)."""
        if attempt is not None and attempt.after_reclaim:
            return True
        return self.action.attempts.filter(
            operation=executor.operation, outcome=Attempt.Outcome.INTERRUPTED
        ).exists()

    def _rate_limited(self, error):
        retry_after = error.retry_after
        if retry_after is None:
            retry_after = backoff_delay(self._count_rate_limited() + 1)
        if retry_after > settings.ACTION_MAX_RETRY_AFTER_SECONDS:
            return self._fail(error, f"{_describe(error)} — not waiting that long")
        if self._count_rate_limited() + 1 >= settings.ACTION_MAX_RATE_LIMITED_ATTEMPTS:
            return self._fail(error, _gave_up(error, self.action, rate_limited=True))
        # Wait at least as long as the account's back-off, which another worker may have set.
        delay = max(retry_after, self.limiter.backoff_remaining(), 0.05)
        self._close_attempt(error, outcome=Attempt.Outcome.RETRY, retry_after=delay)
        return delay

    def _count_rate_limited(self):
        return self.action.attempts.filter(http_status=429).count()

    def _retry_or_fail(self, error):
        if self.action.attempts_count >= settings.ACTION_MAX_ATTEMPTS:
            return self._fail(error, _gave_up(error, self.action))
        delay = backoff_delay(max(self.action.attempts_count, 1))
        self._close_attempt(error, outcome=Attempt.Outcome.RETRY, retry_after=delay)
        return delay

    def _fail(self, error, summary):
        from .zoom.errors import ZoomError

        if self._attempt is None and self._pending is not None:
            # Failed before any request left (the connection needs reconnecting, a bad id):
            # still one row saying what was tried and why it stopped.
            operation, counts = self._pending
            self._attempt = self.action.start_attempt(operation, counts=counts)
            self._attempt_started = time.monotonic()
        self._close_attempt(error, outcome=Attempt.Outcome.ERROR, message=summary)
        if self._unconfirmed:
            summary = f"{summary} — {self._unconfirmed}"
        is_zoom = isinstance(error, ZoomError)
        self.action.mark_failed(
            summary,
            http_status=error.status if is_zoom else None,
            zoom_code=error.code if is_zoom else None,
        )
        log.info("action %s failed: %s", self.action.pk, summary)
        return None


def _describe(error):
    describe = getattr(error, "describe", None)
    return describe() if callable(describe) else str(error) or type(error).__name__


def _gave_up(error, action, *, rate_limited=False):
    n = action.attempts_count
    what = "rate-limited attempts" if rate_limited else "attempts"
    return f"{_describe(error)} — gave up after {n} {what}"


# --- The sweeper -----------------------------------------------------------------------------


# A newer action claimed this long ago while an older one still waits: the older one's message
# is not merely behind it (workers take messages in order; prefetching reorders a few, briefly).
OVERTAKEN_AFTER_SECONDS = 5


def _messages_lost(limit):
    """The overdue queued actions whose task messages the broker seems to have lost, oldest
    first: those past their dispatch deadline that (a) newer actions have overtaken, or (b) the
    broker's queue is too short to still hold.

    A message not claimed by its deadline is usually not lost but behind a backlog: a batch of
    1,000 drained by one slow worker. Sending each such action again filled the queue with
    copies that do nothing when they arrive (issue 13). The broker hands messages out in the
    order they came, so (a) an action requested after this one and claimed a while ago means
    this one's message is gone (a broker restarted without persistence, a purge). And (b) the
    queue holds at least one message per action sent and not yet taken: a shortfall between
    the actions waiting for a message and the messages in the queue is lost for sure (other
    tasks and retries' countdown messages only lengthen the queue, so this never over-counts).
    When the broker cannot be asked, every overdue action counts as lost (the sweep's old
    rule): a duplicate message is harmless, a lost click is not.
    """
    overdue = Action.objects.filter(
        state=ActionState.QUEUED, lease_expires_at__lt=db_time()
    ).order_by("requested_at")
    if not overdue.exists():
        return []
    in_broker = broker_queue_length()
    if in_broker is None:
        return list(overdue.values_list("pk", flat=True)[:limit])
    lost = []
    frontier = (
        Action.objects.exclude(started_at=None)
        # started_at is the database's clock (Action.claim): so is the comparison
        .filter(started_at__lt=db_time(-OVERTAKEN_AFTER_SECONDS))
        .aggregate(newest=Max("requested_at"))["newest"]
    )
    if frontier is not None:
        lost = list(overdue.filter(requested_at__lt=frontier).values_list("pk", flat=True)[:limit])
    waiting = Action.objects.filter(
        state=ActionState.QUEUED, lease_expires_at__isnull=False
    ).count()
    shortfall = max(0, waiting - in_broker)
    if shortfall and len(lost) < limit:
        taken = set(lost)
        lost += [
            pk
            for pk in overdue.values_list("pk", flat=True)[: shortfall + len(taken)]
            if pk not in taken
        ][: min(shortfall, limit - len(lost))]
    return lost


def broker_queue_length():
    """Messages waiting in the task queue (Redis or the embedded broker), or None if the
    broker cannot be asked."""
    from kombu.exceptions import ChannelError

    from .tasks.actions import run_action

    app = run_action.app
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            try:
                return connection.default_channel.queue_declare(
                    queue=app.conf.task_default_queue, passive=True
                ).message_count
            except ChannelError:  # no such queue yet: nothing was ever left in it
                return 0
    except Exception as e:  # broker down: kombu raises OperationalError, OSError...
        log.warning("could not ask the broker how many messages wait (%s: %s)", type(e).__name__, e)
        return None


def sweep(*, limit=500):
    """Keep every click moving (Celery beat runs this every ACTION_SWEEP_INTERVAL_SECONDS):

    - a running action whose lease expired lost its worker: it is queued again for a new run
      (or failed after ACTION_MAX_RECLAIMS such losses), leases judged by the database's clock;
    - a queued action whose message never reached the broker (older than
      ACTION_REQUEUE_AFTER_SECONDS, none sent) is sent; one whose message no worker claimed
      within ACTION_DISPATCH_TIMEOUT_SECONDS is sent again only when its message was lost
      (overtaken by newer actions, or missing from the queue: `_messages_lost`).

    Every change is a conditional update, so a sweep racing a worker or another sweep is
    harmless: an action is claimed by one run only. Returns counts.
    """
    # requested_at is the requesting web server's clock: a skew against this host's only
    # lengthens or shortens the grace below, and a message sent twice does nothing twice.
    at = now()
    counts = {"reclaimed": 0, "failed": 0, "sent": 0}
    to_send = []
    expired = Action.objects.filter(state=ActionState.RUNNING, lease_expires_at__lt=db_time()).only(
        "pk", "state", "lease_token", "reclaims", "lease_expires_at"
    )
    for action in expired[:limit]:
        new_state = action.reclaim()
        if new_state == ActionState.QUEUED:
            counts["reclaimed"] += 1
            to_send.append(action.pk)
            log.warning("action %s: its worker stopped; queued again", action.pk)
        elif new_state == ActionState.FAILED:
            counts["failed"] += 1
            log.error("action %s: its worker stopped too many times; failed", action.pk)
    never_sent = Action.objects.filter(
        state=ActionState.QUEUED,
        lease_expires_at__isnull=True,
        requested_at__lt=at - timedelta(seconds=settings.ACTION_REQUEUE_AFTER_SECONDS),
    )
    to_send.extend(
        pk
        for pk in never_sent.order_by("requested_at").values_list("pk", flat=True)[:limit]
        if pk not in to_send
    )
    to_send.extend(pk for pk in _messages_lost(limit) if pk not in to_send)
    counts["sent"] = enqueue_actions(to_send)
    if any(counts.values()):
        log.info("action sweep: %s", counts)
    return counts
