"""
A sync fanned out into bounded tasks (issue 13: no task outlives the broker's visibility timeout).

A whole sync in one task grows with the account: three Medium requests a user, so on a Pro
account of about 4,000 users it ran past Redis's visibility timeout and was taken over mid-run.
Here the sync action (the audit record, one Action with one summary) is run in steps, each a
short run of the action's task, and the users' lists in parts, each its own task:

1. Plan (the action's first run): the Dashboard's live meetings (Business), the active users
   (a few pages), a SyncRun row saying when the pass began, and a SyncPart per
   SYNC_PART_USERS users, each sent as a `sync_part` task. The SyncRun is the account's sync
   lock: one running per account (a unique constraint), whichever processes run its parts.
2. Parts (`run_part`, any worker, in parallel): a part is claimed with a lease on the database's
   clock, lists its users' meetings and webinars, writes what changed, and keeps what it saw
   (zoom ids, hosts Zoom refused to list, counts) in its row. Idempotent: a part done again
   compares with what the mirror now holds and writes nothing more. A part whose worker died is
   taken again once its lease has run out, alone: parts done are not redone. A part that keeps
   killing its worker (SYNC_PART_MAX_RUNS) fails the sync, which then deletes nothing.
3. Check (the action's later runs, every SYNC_CHECK_INTERVAL_SECONDS, and at once when the last
   part is done): sends again the parts whose lease ran out, writes the progress into the
   action, and hands the action back until every part is done. No worker waits meanwhile.
4. Finish (once, when every part is done): the rows no list showed are asked about, ended or
   deleted (meetings.sync's rules), last_sync_at is set, the action succeeds with the summary
   of the whole sync. Finishing again after a crash changes nothing more.

Run inline (the command line, `zoom_sync`), the plan, the parts and the finish run one after the
other in the one process.

While a sync runs, a scheduled one that falls due rolls over: its action is not created (one
active sync action per account), and it is due as soon as the running one is done.
"""

import logging
import time
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils.timezone import now

from .models import Meeting, Webinar, ZoomAccount, ZoomUser
from .models.actions import ACTIVE_STATES, Action, ActionState, db_time
from .models.syncs import SyncPart, SyncRun
from .sync import (
    SyncAlreadyRunning,
    SyncLockLost,
    _counting_throttle,
    _Sync,
    is_sync_running,
)

log = logging.getLogger(__name__)

# Rows read per query when a part looks up what the mirror has of the meetings it listed.
LOOKUP_BATCH = 1000
# The counts a part adds to the sync's SyncResult.
PART_COUNTS = (
    "pages",
    "meetings",
    "webinars",
    "created",
    "updated",
    "restarts",
    "without_webinar_licence",
)


@dataclass
class Waiting:
    """The sync's parts are still running: the action stays running, reads SUMMARY, shows
    PROGRESS, and looks again in SECONDS."""

    seconds: float
    summary: str
    progress: dict = field(default_factory=dict)
    # Called once the action is handed back (Run.step): parts sent before that could finish
    # before there is a message for them to wake.
    after: object = None


@dataclass
class Failed:
    """The sync stopped without deleting anything: SUMMARY says why."""

    summary: str
    result: dict = field(default_factory=dict)


class RetryPart(Exception):
    """Zoom failed for a moment or the rate limiter asked for a long wait: the part is given
    back (uncounted) and sent again in `seconds`."""

    def __init__(self, seconds):
        super().__init__(f"part sent again in {seconds:.1f} s")
        self.seconds = seconds


class _NoLock:
    """The plan and the finish run under the action's lease; the SyncRun row is the lock."""

    def renew(self, force=False):
        pass


class _PartLease:
    """A part's lease, renewed while it lists (at most every quarter of its length)."""

    def __init__(self, part_pk, token):
        self.part_pk = part_pk
        self.token = token
        self.renewed = time.monotonic()

    def renew(self, force=False):
        every = settings.SYNC_PART_LEASE_SECONDS / 4
        if not force and time.monotonic() - self.renewed < every:
            return
        kept = SyncPart.objects.filter(
            pk=self.part_pk, state=SyncPart.State.RUNNING, lease_token=self.token
        ).update(lease_expires_at=db_time(settings.SYNC_PART_LEASE_SECONDS))
        if not kept:
            raise SyncLockLost(f"sync part {self.part_pk} was taken over")
        self.renewed = time.monotonic()


# --- The steps of the sync action ------------------------------------------------------------


def step(run):
    """One run of a sync action (meetings.executors): plan it, or look at its parts, or finish
    it. Returns a SyncResult (done), Waiting or Failed. Inline, everything is done here."""
    action = run.action
    sync_run = SyncRun.objects.filter(action=action).first()
    if sync_run is None:
        sync_run, parts = plan(action, run.client)
        if not getattr(run, "inline", False):

            def after():
                send_parts(parts)
                _wake_if_done(sync_run)

            return Waiting(
                settings.SYNC_CHECK_INTERVAL_SECONDS,
                f"Syncing: {sync_run.planned['users']:,} users in {len(parts)} parts",
                _progress(sync_run),
                after=after,
            )
        for part_id in parts:
            run_part(part_id, client=run.client)
    if sync_run.state != SyncRun.State.RUNNING:
        return Failed("This sync was stopped (another sync of the account replaced it)")
    return check(sync_run, run.client)


def plan(action, client):
    """The Dashboard's live meetings and the users, a SyncRun and its parts (committed).
    Returns (SyncRun, [part ids]). Raises SyncAlreadyRunning when a sync of the account runs."""
    account = action.account
    # A run whose action is over (failed after its worker stopped, say) holds the lock no more.
    SyncRun.objects.filter(account=account, state=SyncRun.State.RUNNING).exclude(
        action__state__in=ACTIVE_STATES
    ).update(state=SyncRun.State.ABANDONED, finished_at=now())
    if (
        is_sync_running(account)
        or SyncRun.objects.filter(account=account, state=SyncRun.State.RUNNING).exists()
    ):
        raise SyncAlreadyRunning(account)
    sync = _Sync(account, client, _NoLock(), None, time.sleep, 1.0)
    # The pass begins by the database's clock, which every host shares (issue 13).
    sync.pass_started = _database_now()
    original = client.throttle
    client.throttle = _counting_throttle(original, sync.result.requests)
    try:
        sync._read_dashboard()
        users = sync._listing(lambda: client.iter_pages_users("active"))
        sync._remember_users(users)
    finally:
        client.throttle = original
    dashboard = None
    if sync.dashboard_live is not None:
        dashboard = {str(k): (v.uuid or "") for k, v in sync.dashboard_live.items()}
    size = settings.SYNC_PART_USERS
    try:
        with transaction.atomic():
            sync_run = SyncRun.objects.create(
                action=action,
                account=account,
                pass_started=sync.pass_started,
                dashboard_live=dashboard,
                planned={
                    "users": len(users),
                    "pages": sync.result.pages,
                    "restarts": sync.result.restarts,
                    "requests": sync.result.requests,
                    "skipped": sync.result.skipped,
                    "live_source": sync.result.live_source,
                },
            )
            deadline = db_time(settings.ACTION_DISPATCH_TIMEOUT_SECONDS)
            parts = SyncPart.objects.bulk_create(
                [
                    SyncPart(
                        run=sync_run,
                        number=n,
                        users=[
                            {"id": u.id, "email": u.email or ""}
                            for u in users[start : start + size]
                        ],
                        lease_expires_at=deadline,
                    )
                    for n, start in enumerate(range(0, len(users), size), start=1)
                ]
            )
    except IntegrityError:
        raise SyncAlreadyRunning(account) from None
    part_ids = [p.pk for p in parts] or list(
        SyncPart.objects.filter(run=sync_run).order_by("number").values_list("pk", flat=True)
    )
    log.info("sync of %s: %s users in %s parts", account, len(users), len(part_ids))
    return sync_run, part_ids


def _database_now():
    """The database's clock now (PostgreSQL: every host shares it), as a datetime."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]
    return now()  # SQLite: one file on one machine


def send_parts(part_ids):
    """Send a `sync_part` message per part; one the broker did not take is sent again by the
    check once its dispatch deadline has passed."""
    from .actions import PUBLISH_RETRY_POLICY
    from .tasks.mirror import sync_part

    for part_id in part_ids:
        try:
            sync_part.apply_async((part_id,), retry_policy=PUBLISH_RETRY_POLICY)
        except Exception as e:  # kombu raises OperationalError, ChannelError, OSError...
            log.warning("sync part %s not sent (%s); the sync's check sends it again", part_id, e)


def check(sync_run, client):
    """Where the parts stand: send again those whose lease ran out, fail the sync if one keeps
    stopping its worker or Zoom refused it, finish when all are done."""
    parts = list(
        SyncPart.objects.filter(run=sync_run)
        .order_by("number")
        .values("pk", "number", "state", "runs", "lease_expires_at")
    )
    failed = [p for p in parts if p["state"] == SyncPart.State.FAILED]
    if failed:
        error = SyncPart.objects.get(pk=failed[0]["pk"]).result.get("error", "")
        return _abandon(sync_run, f"Sync stopped, nothing deleted: {error}")
    stuck = list(
        SyncPart.objects.filter(run=sync_run, lease_expires_at__lt=db_time())
        .exclude(state=SyncPart.State.DONE)
        .order_by("number")
        .values("pk", "number", "state", "runs", "lease_expires_at")
    )
    for p in stuck:
        if p["runs"] >= settings.SYNC_PART_MAX_RUNS:
            return _abandon(
                sync_run,
                f"Sync stopped, nothing deleted: part {p['number']} of {len(parts)} (its "
                f"users' lists) was started {p['runs']} times without finishing (its worker "
                "stopped, or Zoom kept failing); the worker logs say why",
            )
    resend = []
    for p in stuck:
        # Pending again (a running one's worker died: its lease is void, and should it be alive
        # after all, its next renewal finds it out and it stops), with a new dispatch deadline.
        # Conditioned on the lease seen, so two checks do not both send it.
        if SyncPart.objects.filter(
            pk=p["pk"], state=p["state"], lease_expires_at=p["lease_expires_at"]
        ).update(
            state=SyncPart.State.PENDING,
            lease_token="",
            lease_expires_at=db_time(settings.ACTION_DISPATCH_TIMEOUT_SECONDS),
        ):
            resend.append(p["pk"])
    if resend:
        log.warning("sync of %s: %s parts sent again", sync_run.account, len(resend))
        send_parts(resend)
    done = sum(p["state"] == SyncPart.State.DONE for p in parts)
    if done < len(parts):
        return Waiting(
            settings.SYNC_CHECK_INTERVAL_SECONDS,
            f"Syncing: {done} of {len(parts)} parts done",
            _progress(sync_run),
            after=lambda: _wake_if_done(sync_run),
        )
    return finish(sync_run, client)


def _progress(sync_run):
    """What the sync's action shows while its parts run."""
    parts = SyncPart.objects.filter(run=sync_run)
    # Only the counts: a done part's result also holds the thousands of ids it saw.
    names = ("users", "pages", "meetings", "webinars")
    done = list(
        parts.filter(state=SyncPart.State.DONE).values_list(*(f"result__{n}" for n in names))
    )
    total = {n: sum(row[i] or 0 for row in done) for i, n in enumerate(names)}
    return {
        "users_total": sync_run.planned.get("users", 0),
        "users_done": total["users"],
        "parts_total": parts.count(),
        "parts_done": len(done),
        "pages": sync_run.planned.get("pages", 0) + total["pages"],
        "meetings": total["meetings"],
        "webinars": total["webinars"],
    }


def _abandon(sync_run, summary):
    SyncRun.objects.filter(pk=sync_run.pk, state=SyncRun.State.RUNNING).update(
        state=SyncRun.State.ABANDONED, finished_at=now()
    )
    return Failed(summary)


def _dashboard(sync_run):
    if sync_run.dashboard_live is None:
        return None
    live = sync_run.dashboard_live.items()
    return {int(k): SimpleNamespace(id=int(k), uuid=v or None) for k, v in live}


def finish(sync_run, client):
    """Every part is done: judge the rows no list showed, and sum up. Runs in the action's run
    (its lease held), once; a finish redone after a crash asks again and changes nothing more."""
    account = sync_run.account
    sync = _Sync(account, client, _NoLock(), None, time.sleep, 1.0)
    sync.pass_started = sync_run.pass_started
    sync.dashboard_live = _dashboard(sync_run)
    result = sync.result
    planned = sync_run.planned
    result.users = planned.get("users", 0)
    result.pages = planned.get("pages", 0)
    result.restarts = planned.get("restarts", 0)
    result.live_source = planned.get("live_source", "")
    result.skipped = list(planned.get("skipped", []))
    requests = dict(planned.get("requests", {}))
    doubted = set()
    for part in SyncPart.objects.filter(run=sync_run).order_by("number").iterator():
        r = part.result
        for name in PART_COUNTS:
            setattr(result, name, getattr(result, name) + r.get(name, 0))
        result.skipped.extend(r.get("skipped", []))
        for label, n in r.get("requests", {}).items():
            requests[label] = requests.get(label, 0) + n
        sync.seen[Meeting].update(r.get("seen_meetings", []))
        sync.seen[Webinar].update(r.get("seen_webinars", []))
        sync.unknown_hosts[Meeting].update(r.get("unknown_meeting_hosts", []))
        sync.unknown_hosts[Webinar].update(r.get("unknown_webinar_hosts", []))
        doubted.update(r.get("live_doubted", []))
    sync.existing = {
        model: _rows_to_judge(model, account, sync.seen[model], doubted)
        for model in (Meeting, Webinar)
    }
    sync.live_doubted = [sync.existing[Meeting][i] for i in doubted if i in sync.existing[Meeting]]
    original = client.throttle
    client.throttle = _counting_throttle(original, result.requests)
    try:
        sync._mirror_dashboard_only()
        sync._flush()
        sync._mark_missing()
    finally:
        client.throttle = original
    for label, n in requests.items():
        result.requests[label] = result.requests.get(label, 0) + n
    with transaction.atomic():
        ZoomAccount.objects.filter(pk=account.pk).update(last_sync_at=now())
        SyncRun.objects.filter(pk=sync_run.pk).update(state=SyncRun.State.DONE, finished_at=now())
    result.complete = True
    return result


class _Row:
    """What judging a row no list showed reads of it (a model instance each for 200,000 rows
    took most of the finish's time, BENCHMARKS.md section 3)."""

    FIELDS = ("pk", "zoom_id", "host_id", "type", "status", "last_event_at")
    __slots__ = ("host_id", "last_event_at", "pk", "status", "type", "zoom_id")

    def __init__(self, values):
        self.pk, self.zoom_id, self.host_id, self.type, self.status, self.last_event_at = values


def _rows_to_judge(model, account, seen, doubted):
    """{zoom_id: _Row} of the account's rows the finish may judge: those no part saw, and the
    live ones a part doubted. Rows the lists showed are the parts' business, done."""
    rows = model.objects.filter(account=account).values_list(*_Row.FIELDS)
    return {
        values[1]: _Row(values)
        for values in rows.iterator(chunk_size=5000)
        if values[1] not in seen or values[1] in doubted
    }


# --- A part ------------------------------------------------------------------------------------


class _PartSync(_Sync):
    """The lists of a part's users, compared with the mirror's rows for what they list."""

    def __init__(self, sync_run, part, client, lease):
        super().__init__(sync_run.account, client, lease, None, time.sleep, 1.0)
        self.part = part
        self.pass_started = sync_run.pass_started
        self.dashboard_live = _dashboard(sync_run)
        self.existing = {Meeting: {}, Webinar: {}}

    def _load_existing(self, model, zoom_ids):
        wanted = [i for i in zoom_ids if i not in self.existing[model]]
        for start in range(0, len(wanted), LOOKUP_BATCH):
            rows = model.objects.filter(
                account=self.account, zoom_id__in=wanted[start : start + LOOKUP_BATCH]
            )
            if model is Meeting:
                rows = rows.defer("stream_key")
            self.existing[model].update({row.zoom_id: row for row in rows})

    def run_part(self):
        users = [SimpleNamespace(id=u["id"], email=u["email"]) for u in self.part.users]
        self.known_users = {
            u.zoom_user_id: u
            for u in ZoomUser.objects.filter(
                account=self.account, zoom_user_id__in=[u.id for u in users]
            )
        }
        for user in users:
            self._sync_user(user)
            self.lock.renew()
        self._flush()
        r = self.result
        return {
            "users": len(users),
            **{name: getattr(r, name) for name in PART_COUNTS},
            "skipped": r.skipped,
            "requests": r.requests,
            "seen_meetings": sorted(self.seen[Meeting]),
            "seen_webinars": sorted(self.seen[Webinar]),
            "unknown_meeting_hosts": sorted(self.unknown_hosts[Meeting]),
            "unknown_webinar_hosts": sorted(self.unknown_hosts[Webinar]),
            "live_doubted": sorted({row.zoom_id for row in self.live_doubted}),
        }


def run_part(part_id, *, client=None):
    """Claim part PART_ID and do it. Returns True when this run did it, False when it was not
    this run's (done, running under a fresh lease, its sync over, or out of runs). Raises
    RetryPart when Zoom failed for a moment (the part is given back uncounted)."""
    from .ratelimit import ThrottleWaitError, throttle_for
    from .zoom.client import ZoomClient
    from .zoom.errors import ZoomError

    token = uuid.uuid4().hex
    lease = settings.SYNC_PART_LEASE_SECONDS
    claimed = (
        SyncPart.objects.filter(
            pk=part_id, run__state=SyncRun.State.RUNNING, runs__lt=settings.SYNC_PART_MAX_RUNS
        )
        # Pending, or running under a lease that ran out by the database's clock (its worker
        # died): a part with a fresh lease may be alive and is never taken over.
        .filter(
            Q(state=SyncPart.State.PENDING)
            | Q(state=SyncPart.State.RUNNING, lease_expires_at__lt=db_time())
        )
        .update(
            state=SyncPart.State.RUNNING,
            lease_token=token,
            lease_expires_at=db_time(lease),
            runs=F("runs") + 1,
        )
    )
    if not claimed:
        log.info("sync part %s: not this run's to do", part_id)
        return False
    part = SyncPart.objects.select_related("run__account").get(pk=part_id)
    sync_run = part.run
    # The parts behind this one in the queue are not lost, only waiting: their dispatch
    # deadline moves on while the sync's parts are being taken.
    SyncPart.objects.filter(run=sync_run, state=SyncPart.State.PENDING).update(
        lease_expires_at=db_time(settings.ACTION_DISPATCH_TIMEOUT_SECONDS)
    )
    mine = SyncPart.objects.filter(pk=part_id, state=SyncPart.State.RUNNING, lease_token=token)
    if client is None:
        account = sync_run.account
        limiter = throttle_for(account)

        def on_response(method, path, status, duration_ms, error):
            if status == 429:
                # The account pauses (Zoom's daily limit: until 00:00 UTC, for every process).
                limiter.after_429(error)

        client = ZoomClient.for_account(account, throttle=limiter, on_response=on_response)
    sync = _PartSync(sync_run, part, client, _PartLease(part_id, token))
    original = client.throttle
    client.throttle = _counting_throttle(original, sync.result.requests)
    try:
        result = sync.run_part()
    except ThrottleWaitError as e:
        _give_back(mine, e.seconds)
        raise RetryPart(e.seconds) from e
    except ZoomError as e:
        if e.permanent or (e.retry_after or 0) > settings.ACTION_MAX_RETRY_AFTER_SECONDS:
            # Refused, or a wait no sync should hold (Zoom's daily limit: "until 00:00 UTC").
            mine.update(
                state=SyncPart.State.FAILED,
                result={"error": e.describe()},
                finished_at=now(),
                lease_token="",
            )
            _wake(sync_run.action_id)
            raise
        # Zoom failing for a moment after the listing's own retries: counted as a run, so a
        # Zoom that keeps failing stops the sync (SYNC_PART_MAX_RUNS) instead of looping.
        wait = e.retry_after if e.retry_after is not None else 5.0
        _give_back(mine, wait, counted=True)
        raise RetryPart(wait) from e
    finally:
        client.throttle = original
    if not mine.update(state=SyncPart.State.DONE, result=result, finished_at=now(), lease_token=""):
        raise SyncLockLost(f"sync part {part_id} was taken over before it was done")
    if not SyncPart.objects.filter(run=sync_run).exclude(state=SyncPart.State.DONE).exists():
        _wake(sync_run.action_id)
    return True


def _give_back(mine, seconds, *, counted=False):
    """Pending again, due back in SECONDS; uncounted when only the rate limiter asked for a
    wait (not a dead worker, not Zoom failing)."""
    mine.update(
        state=SyncPart.State.PENDING,
        lease_token="",
        runs=F("runs") if counted else F("runs") - 1,
        lease_expires_at=db_time(seconds + settings.ACTION_DISPATCH_TIMEOUT_SECONDS),
    )


def _wake_if_done(sync_run):
    """Wake the sync's action if its parts finished (or one failed) while it was looking."""
    parts = SyncPart.objects.filter(run=sync_run)
    if (
        parts.filter(state=SyncPart.State.FAILED).exists()
        or not parts.exclude(state=SyncPart.State.DONE).exists()
    ):
        _wake(sync_run.action_id)


def _wake(action_id):
    """The last part is done (or one failed): send the message the sync's action waits for now,
    instead of at its next check. Its copy due later finds the action taken and does nothing."""
    from .actions import _send

    task_id = (
        Action.objects.filter(pk=action_id, state=ActionState.RUNNING, lease_token="")
        .values_list("celery_task_id", flat=True)
        .first()
    )
    if task_id:
        _send(action_id, task_id=task_id)
