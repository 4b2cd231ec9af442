"""
A full sync of one account's mirror from Zoom's lists: active users, then each user's
meetings (`scheduled` and `live`) and webinars.

Rules (issue 4):
- One sync per account at a time, across processes: a Redis lock when REDIS_URL is set, a lease
  row (MirrorLock) otherwise. A second sync raises SyncAlreadyRunning without calling Zoom.
- Writes are bulk and only of what changed: a re-sync with nothing changed writes no mirror row.
- Rows Zoom no longer lists are marked `deleted` only after a complete, successful pass: an
  aborted pass (an error, a lost lock) deletes nothing.
- A page token that expires mid-listing (Zoom's tokens live 15 minutes) restarts that listing;
  a transient failure (429, 5xx, timeout) waits and restarts it, a few times at most.
- The Medium rate limit is the client's business: build it with `throttle=throttle_for(account)`.
- A newer webhook event wins over the sync: status and instance UUID of a row that had an event
  after the pass began are left alone.

What a listing cannot show is not judged by it (issue 11; "Live meetings and meetings no list
shows" below):
- Zoom's lists show scheduled meetings only (types 2, 3, 8): instant (1) and personal meeting ID
  (4) meetings are never marked deleted or ended for being absent from them.
- Before a row goes from live to ended, or to deleted, only because a list left it out, the sync
  asks Zoom (`GET /meetings/{id}`, Light): "not found" deletes it (an instant meeting: ends it),
  "waiting" ends it, "started" keeps it live. The summary counts these questions.
- What is live: on Business and up, the Dashboard's live list (`GET /metrics/meetings`), which
  names instant and PMI meetings too (one the mirror lacks is fetched and mirrored live); without
  the Dashboard (refused, no scope) on Business, each user's `type=live` list. Below Business
  `type=live` is always empty (zoom/api#76), so it is not asked, and a live row stays live until
  an event (or the End action's check) says otherwise.
- Each user's webinar licence is remembered (ZoomUser): a user Zoom refused webinars with code
  200 is asked again once a day (WEBINAR_LICENCE_RECHECK), not on every sync, and is counted in
  the summary as information, not as a refused listing.
- The requests a sync makes are counted per rate-limit label (SyncResult.requests): the budget
  (meetings.budget) spaces scheduled syncs by them.
"""

import contextlib
import dataclasses
import logging
import time
import uuid as uuid_lib
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.timezone import now

from .mirror import DETAIL_FIELDS, clip, db_now, link_past_meetings
from .models import (
    LiveStreamStatus,
    Meeting,
    MeetingStatus,
    MirrorLock,
    Webinar,
    ZoomAccount,
    ZoomUser,
)
from .models.actions import db_time
from .ratelimit import ThrottleWaitError
from .zoom.errors import (
    ZoomAuthError,
    ZoomBadRequest,
    ZoomError,
    ZoomNeedsReconnect,
    ZoomNotFound,
    ZoomPageTokenExpired,
)

log = logging.getLogger(__name__)

# The lock lapses this long after its holder stops renewing it (a worker that died mid-sync).
LOCK_TTL_SECONDS = 120
# Renewing is a write (database) or a round trip (Redis): at most this often.
LOCK_RENEW_EVERY_SECONDS = 30
# A listing is started again at most this many times (expired page token, 429, 5xx, timeout).
MAX_LISTING_ATTEMPTS = 4
# Waiting longer than this for a retry is not worth holding the sync: abort and let the next
# sync (or the action pipeline's retry) do it.
MAX_RETRY_WAIT_SECONDS = 30
# Rows written per statement; well under SQLite's and PostgreSQL's parameter limits.
WRITE_BATCH = 200
# Pending writes are flushed once this many rows have changed, to bound memory and keep the
# mirror fresh during a long sync.
FLUSH_EVERY = 1000
# Zoom's meeting type 1 is an instant meeting, 4 a personal meeting ID (PMI) meeting: Zoom's lists
# never show them, so missing from a list means nothing about them.
INSTANT_MEETING = 1
PMI_MEETING = 4
UNLISTED_TYPES = (INSTANT_MEETING, PMI_MEETING)
# Plans whose `type=live` list and Dashboard show live meetings (zoom/api#76: not Pro).
LIVE_LIST_PLANS = ("business",)
# `GET /meetings/{id}` asked per sync at most, for rows a list left out and live meetings only
# the Dashboard named: each is a Light request, and a host whose meetings all vanished (or
# Zoom's list failing to show them) must not turn one sync into thousands of requests. What is
# left over is asked by the next sync.
MAX_QUESTIONS_PER_SYNC = 200
# Zoom's code for "Cannot use webinar API, you need to subscribe webinar plan" (HTTP 400): the
# user has no webinar licence (NOTES.md).
NO_WEBINAR_LICENCE = 200

# The fields a sync owns, compared and written in bulk: the settings a webhook's object may
# also carry. Status and UUID are handled apart, because a newer webhook event owns them.
DATA_FIELDS = DETAIL_FIELDS
EVENT_FIELDS = ("status", "uuid")


class SyncAlreadyRunning(Exception):
    """Another sync of this account holds the lock. Nothing was done."""

    def __init__(self, account):
        super().__init__(f"A sync of {account} is already running")


class _OutOfQuestions(Exception):
    """This sync asked Zoom about as many meetings as it may (MAX_QUESTIONS_PER_SYNC) or the
    rate limiter would make it wait too long: the rest is left for the next sync."""


class SyncLockLost(Exception):
    """The sync's lock lapsed (it stalled longer than the lock's lifetime): it stopped before
    deleting anything, so a sync that took the lock meanwhile is not contradicted."""


@dataclass
class SyncResult:
    """What one sync did: counts for the audit record and the dashboard."""

    users: int = 0
    pages: int = 0
    meetings: int = 0
    webinars: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    restarts: int = 0
    # Rows a list left out that the sync asked Zoom about (GET /meetings/{id}) before changing.
    verified: int = 0
    # Live meetings only the Dashboard named (instant, PMI, new), fetched and mirrored.
    fetched: int = 0
    # Where "live" came from: "dashboard", "live lists", or "events" (below Business).
    live_source: str = ""
    complete: bool = False
    # Users whose meetings or webinars Zoom refused to list: [{"user", "list", "reason"}].
    skipped: list = field(default_factory=list)
    # Users without a webinar licence (refused with code 200 now or within the last day):
    # information, not a failure.
    without_webinar_licence: int = 0
    # Requests made, by rate-limit label ({"medium": 31, "light": 2}).
    requests: dict = field(default_factory=dict)

    def as_dict(self):
        return asdict(self)

    def summary(self):
        text = (
            f"Synced {self.users} users: {self.meetings} meetings and {self.webinars} webinars "
            f"on Zoom; {self.created} new, {self.updated} changed, {self.deleted} deleted "
            f"({self.pages} pages)"
        )
        if self.verified:
            text += f"; verified {self.verified} absent meetings"
        if self.fetched:
            text += f"; {self.fetched} live meetings fetched"
        if self.skipped:
            text += f"; {len(self.skipped)} listings refused by Zoom"
        if self.without_webinar_licence:
            n = self.without_webinar_licence
            text += f"; {n} user{'' if n == 1 else 's'} without a webinar licence"
        return text


# --- The lock -----------------------------------------------------------------------------------


class _DatabaseLock:
    """A lease row: take it if absent or lapsed; renew while working; delete when done."""

    def __init__(self, name):
        self.name = name
        self.holder = uuid_lib.uuid4().hex
        self.renewed = 0.0

    def acquire(self):
        # Lapsed or not is judged by the database's clock, which every host shares (issue 13).
        at = now()
        expires = db_time(LOCK_TTL_SECONDS)
        with transaction.atomic():
            taken = MirrorLock.objects.filter(name=self.name, expires_at__lt=db_time()).update(
                holder=self.holder, acquired_at=at, expires_at=expires
            )
            if not taken:
                try:
                    with transaction.atomic():
                        MirrorLock.objects.create(
                            name=self.name, holder=self.holder, acquired_at=at, expires_at=expires
                        )
                except IntegrityError:
                    return False
        self.renewed = time.monotonic()
        return True

    def renew(self, force=False):
        if not force and time.monotonic() - self.renewed < LOCK_RENEW_EVERY_SECONDS:
            return
        kept = MirrorLock.objects.filter(name=self.name, holder=self.holder).update(
            expires_at=db_time(LOCK_TTL_SECONDS)
        )
        if not kept:
            raise SyncLockLost(f"lost the lock {self.name}")
        self.renewed = time.monotonic()

    def release(self):
        MirrorLock.objects.filter(name=self.name, holder=self.holder).delete()


class _RedisLock:
    """redis-py's lock (a key with a random token and an expiry, released by a Lua script)."""

    def __init__(self, name):
        import redis

        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.lock = self.client.lock(f"zoomadmin:{name}", timeout=LOCK_TTL_SECONDS, blocking=False)
        self.renewed = 0.0

    def acquire(self):
        if not self.lock.acquire(blocking=False):
            self.client.close()
            return False
        self.renewed = time.monotonic()
        return True

    def renew(self, force=False):
        from redis.exceptions import LockError

        if not force and time.monotonic() - self.renewed < LOCK_RENEW_EVERY_SECONDS:
            return
        try:
            self.lock.extend(LOCK_TTL_SECONDS, replace_ttl=True)
        except LockError as e:
            raise SyncLockLost(f"lost the lock {self.lock.name}") from e
        self.renewed = time.monotonic()

    def release(self):
        from redis.exceptions import LockError

        with contextlib.suppress(LockError):  # it lapsed: nothing of ours to release
            self.lock.release()
        self.client.close()


def sync_lock(account):
    """The cross-process lock for `account`'s sync (not yet acquired)."""
    name = f"sync:account:{account.pk}"
    return _RedisLock(name) if settings.REDIS_URL else _DatabaseLock(name)


def is_sync_running(account):
    """Whether a sync of `account` holds its lock now (for the dashboard)."""
    if settings.REDIS_URL:
        lock = sync_lock(account)
        try:
            return bool(lock.lock.locked())
        finally:
            lock.client.close()
    return MirrorLock.objects.filter(
        name=f"sync:account:{account.pk}", expires_at__gte=db_time()
    ).exists()


# --- The sync -----------------------------------------------------------------------------------


def sync_account(account, client, *, on_progress=None, sleep=time.sleep, progress_interval=1.0):
    """Bring `account`'s mirror in step with Zoom. Returns a SyncResult (complete=True).

    `client` is a ZoomClient acting as the account (build it with the account's throttle so the
    Medium limit holds). `on_progress(dict)` is called as the sync goes (users_total,
    users_done, pages, meetings, webinars, restarts), at most every `progress_interval` seconds
    plus once when the users are listed and once at the end. Raises SyncAlreadyRunning when
    another sync of the account holds the lock, ZoomError when Zoom fails in a way retrying
    the listing did not cure, SyncLockLost when the lock lapsed; none of these delete anything.
    """
    from .models.actions import ACTIVE_STATES
    from .models.syncs import SyncRun

    lock = sync_lock(account)
    if not lock.acquire():
        raise SyncAlreadyRunning(account)
    if SyncRun.objects.filter(
        account=account, state=SyncRun.State.RUNNING, action__state__in=ACTIVE_STATES
    ).exists():
        lock.release()  # a fanned-out sync (meetings.sync_runs) of the account is running
        raise SyncAlreadyRunning(account)
    sync = _Sync(account, client, lock, on_progress, sleep, progress_interval)
    original_throttle = client.throttle
    client.throttle = _counting_throttle(original_throttle, sync.result.requests)
    try:
        return sync.run()
    finally:
        client.throttle = original_throttle
        lock.release()


def _counting_throttle(throttle, counts):
    """`throttle` that also counts each request it lets go, by label, into `counts`."""

    def counting(label):
        waited = throttle(label) if throttle is not None else 0
        counts[label] = counts.get(label, 0) + 1
        return waited

    return counting


class _Sync:
    def __init__(self, account, client, lock, on_progress, sleep, progress_interval):
        self.account = account
        self.client = client
        self.lock = lock
        self.on_progress = on_progress
        self.sleep = sleep
        self.progress_interval = progress_interval
        self.last_progress = None
        self.result = SyncResult()
        self.users_total = 0
        self.users_done = 0
        # Compared with the rows' last_event_at (Zoom's event_ts, or the database's clock): on
        # the database's clock too, or a sync on a host whose clock is ahead would take events
        # applied during its pass for older than the pass and overwrite them (issue 13).
        self.pass_started = db_now()
        # Hosts whose meetings / webinars Zoom refused to list: their rows are not deleted.
        self.unknown_hosts = {Meeting: set(), Webinar: set()}
        self.seen = {Meeting: set(), Webinar: set()}
        self.pending = {Meeting: {"new": [], "changed": []}, Webinar: {"new": [], "changed": []}}
        # The Dashboard's live meetings {zoom_id: DashboardMeeting}, or None without it.
        self.dashboard_live = None
        # Rows mirrored live that the live source no longer names: asked about, not ended.
        self.live_doubted = []
        self.questions_left = MAX_QUESTIONS_PER_SYNC

    def run(self):
        # Snapshot of the mirror (the stream key is not needed, and need not be decrypted).
        self.existing = {
            Meeting: {
                m.zoom_id: m
                for m in Meeting.objects.filter(account=self.account).defer("stream_key")
            },
            Webinar: {w.zoom_id: w for w in Webinar.objects.filter(account=self.account)},
        }
        self._read_dashboard()
        users = self._listing(lambda: self.client.iter_pages_users("active"))
        self.users_total = self.result.users = len(users)
        self._remember_users(users)
        self._progress(force=True)
        for user in users:
            self._sync_user(user)
            self.users_done += 1
            self._progress()
        self._flush()
        self._mirror_dashboard_only()
        self._flush()
        self.lock.renew(force=True)  # still ours: nobody else has synced meanwhile
        self._mark_missing()
        ZoomAccount.objects.filter(pk=self.account.pk).update(last_sync_at=now())
        self.result.complete = True
        self._progress(force=True)
        return self.result

    # --- Zoom's lists ---------------------------------------------------------------------

    def _listing(self, pages):
        """All items of a listing; restarted when its page token expires or Zoom fails for a
        moment. `pages` makes a fresh iterator of types.Page."""
        for attempt in range(1, MAX_LISTING_ATTEMPTS + 1):
            items = []
            try:
                for page in pages():
                    items.extend(page.items)
                    self.result.pages += 1
                    self.lock.renew()
                    self._progress()
                return items
            except ZoomPageTokenExpired:
                if attempt == MAX_LISTING_ATTEMPTS:
                    raise
                log.info("sync of %s: a page token expired; listing again", self.account)
            except ZoomError as e:
                wait = e.retry_after if e.retry_after is not None else 2 ** (attempt - 1)
                if e.permanent or attempt == MAX_LISTING_ATTEMPTS or wait > MAX_RETRY_WAIT_SECONDS:
                    raise
                log.info("sync of %s: %s; listing again in %.1f s", self.account, e, wait)
                self.sleep(wait)
            self.result.restarts += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def _user_listing(self, user, what, model, pages, *, refused=None):
        """A user's meetings or webinars; [] with a note when Zoom refuses that user's list
        (unless `refused(error)` takes care of the refusal and returns True)."""
        try:
            return self._listing(pages)
        except (ZoomAuthError, ZoomNeedsReconnect, ZoomPageTokenExpired):
            raise
        except (ZoomNotFound, ZoomBadRequest) as e:
            if refused is not None and refused(e):
                self.unknown_hosts[model].add(user.id)
                return []
            if not (isinstance(e, ZoomNotFound) and e.code == 1001):
                # Refused, not gone (e.g. no webinar licence): keep what the mirror has.
                self.unknown_hosts[model].add(user.id)
            self.result.skipped.append(
                {"user": user.email or user.id, "list": what, "reason": e.describe()}
            )
            return []

    def _sync_user(self, user):
        meetings = {}
        kinds = ("scheduled", "live") if self._asks_live_lists() else ("scheduled",)
        for kind in kinds:
            listing = self._user_listing(
                user,
                f"{kind} meetings",
                Meeting,
                lambda kind=kind: self.client.iter_pages_meetings(user.id, kind),
            )
            for item in listing:
                live = kind == "live" or (item.id in meetings and meetings[item.id][1])
                if self.dashboard_live is not None:
                    live = item.id in self.dashboard_live
                    running = self.dashboard_live.get(item.id)
                    if running is not None and running.uuid:
                        # The Dashboard's UUID is the running instance's, as the live list's.
                        item = dataclasses.replace(item, uuid=running.uuid)
                # The live list's UUID is the running instance's: it wins over the scheduled one.
                if item.id not in meetings or kind == "live":
                    meetings[item.id] = (item, live)
        webinars = self._user_webinars(user)
        self._load_existing(Meeting, meetings)
        self._load_existing(Webinar, [w.id for w in webinars])
        for item, live in meetings.values():
            self._stage(Meeting, item, user, live=live)
        for item in {w.id: w for w in webinars}.values():
            self._stage(Webinar, item, user, live=False)
        self.result.meetings += len(meetings)
        self.result.webinars += len({w.id for w in webinars})
        if sum(len(p["new"]) + len(p["changed"]) for p in self.pending.values()) >= FLUSH_EVERY:
            self._flush()

    def _load_existing(self, model, zoom_ids):
        """The mirror's rows for ZOOM_IDS, before they are compared: the whole sync read the
        account's snapshot at its start (run); a part of a fanned-out sync reads its own."""

    # --- Users and their webinar licences -------------------------------------------------

    def _remember_users(self, users):
        """Keep the account's users (ZoomUser): their addresses for hosts an event names, and
        their webinar licences. Written only where something changed."""
        self.known_users = {
            u.zoom_user_id: u for u in ZoomUser.objects.filter(account=self.account)
        }
        new, changed = [], []
        for user in users:
            row = self.known_users.get(user.id)
            email = clip(ZoomUser, "email", user.email or "")
            if row is None:
                row = ZoomUser(account=self.account, zoom_user_id=user.id, email=email)
                self.known_users[user.id] = row
                new.append(row)
            elif email and row.email != email:
                row.email, row.updated = email, now()
                changed.append(row)
        if new:
            ZoomUser.objects.bulk_create(new, batch_size=WRITE_BATCH, ignore_conflicts=True)
            # Rows a concurrent writer (the webhook task) made first: take theirs.
            self.known_users.update(
                {
                    u.zoom_user_id: u
                    for u in ZoomUser.objects.filter(
                        account=self.account, zoom_user_id__in=[r.zoom_user_id for r in new]
                    )
                }
            )
        if changed:
            ZoomUser.objects.bulk_update(changed, ["email", "updated"], batch_size=WRITE_BATCH)

    def _user_webinars(self, user):
        """The user's webinars. A user Zoom refused for want of a webinar licence within the
        last day is not asked again (their webinar rows stay as they are); a refusal now, or an
        answer, is remembered."""
        known = self.known_users.get(user.id)
        if known is not None and known.webinar_licence_known_missing(self.pass_started):
            self.unknown_hosts[Webinar].add(user.id)
            self.result.without_webinar_licence += 1
            return []

        def no_licence(error):
            if not (isinstance(error, ZoomBadRequest) and error.code == NO_WEBINAR_LICENCE):
                return False
            self._record_licence(user, False)
            self.result.without_webinar_licence += 1
            return True

        webinars = self._user_listing(
            user,
            "webinars",
            Webinar,
            lambda: self.client.iter_pages_webinars(user.id),
            refused=no_licence,
        )
        if user.id not in self.unknown_hosts[Webinar]:
            self._record_licence(user, True)
        return webinars

    def _record_licence(self, user, has_licence):
        row = self.known_users.get(user.id)
        if row is None or row.pk is None:
            return
        if row.webinar_licence is has_licence and (
            has_licence or row.webinar_licence_known_missing(self.pass_started)
        ):
            return  # nothing new: no write
        row.webinar_licence = has_licence
        row.webinar_licence_checked_at = now()
        row.updated = now()
        ZoomUser.objects.filter(pk=row.pk).update(
            webinar_licence=has_licence,
            webinar_licence_checked_at=row.webinar_licence_checked_at,
            updated=row.updated,
        )

    # --- Comparing and writing ------------------------------------------------------------

    def _stage(self, model, item, user, *, live):
        seen = self.seen[model]
        if item.id in seen:
            return  # listed under two users (a co-host's list): the first listing wins
        seen.add(item.id)
        values = {
            "host_id": clip(model, "host_id", item.host_id or (user.id if user else "")),
            "host_email": clip(
                model, "host_email", item.host_email or (user.email if user else "")
            ),
            "topic": clip(model, "topic", item.topic),
            "type": item.type if item.type is not None and item.type >= 0 else 2,
            "start_time": item.start_time,
            "duration": item.duration if item.duration is not None and item.duration >= 0 else None,
            "timezone": clip(model, "timezone", item.timezone),
            "join_url": clip(model, "join_url", item.join_url),
        }
        row = self.existing[model].get(item.id)
        if row is None:
            status = MeetingStatus.STARTED if live else MeetingStatus.WAITING
            self.pending[model]["new"].append(
                model(
                    account=self.account,
                    zoom_id=item.id,
                    uuid=clip(model, "uuid", item.uuid),
                    status=status,
                    last_synced_at=self.pass_started,
                    **values,
                )
            )
            return
        changed = {name for name, value in values.items() if getattr(row, name) != value}
        if not self._has_newer_event(row):
            status = self._status(model, row, live)
            if status != row.status:
                changed.add("status")
                row.status = status
                if status != MeetingStatus.STARTED:
                    row.livestream_status = LiveStreamStatus.STOPPED
            if item.uuid and item.uuid != row.uuid:
                changed.add("uuid")
                row.uuid = clip(model, "uuid", item.uuid)
        if changed:
            for name in DATA_FIELDS:
                setattr(row, name, values[name])
            self.pending[model]["changed"].append(row)

    def _has_newer_event(self, row):
        return bool(row.last_event_at and row.last_event_at >= self.pass_started)

    def _status(self, model, row, live):
        """The status the lists imply. A meeting is live when the live source (the Dashboard,
        or `live` lists) names it; one the mirror had live that it no longer names is only
        doubted here, and asked about in _mark_missing. Webinars' status comes from events
        only (Zoom's webinar API has none), except coming back from `deleted`."""
        if model is Meeting and live:
            return MeetingStatus.STARTED
        if model is Meeting and row.status == MeetingStatus.STARTED:
            if self._live_is_known():
                self.live_doubted.append(row)
            return row.status
        if row.status == MeetingStatus.DELETED:
            return MeetingStatus.WAITING  # listed again: recovered
        return row.status

    def _flush(self):
        for model, pending in self.pending.items():
            if pending["new"]:
                self._insert(model, pending["new"])
            if pending["changed"]:
                self._update(model, pending["changed"])
            pending["new"], pending["changed"] = [], []

    def _insert(self, model, rows):
        with transaction.atomic():
            # A webhook may have created some of them since the snapshot: then only the
            # sync's own fields are written; the event's status stands.
            model.objects.bulk_create(
                rows,
                batch_size=WRITE_BATCH,
                update_conflicts=True,
                unique_fields=["account", "zoom_id"],
                update_fields=[*DATA_FIELDS, "last_synced_at"],
            )
            if model is Meeting:
                for start in range(0, len(rows), WRITE_BATCH):
                    batch = rows[start : start + WRITE_BATCH]
                    link_past_meetings(self.account, [row.zoom_id for row in batch])
        self.result.created += len(rows)

    def _update(self, model, rows):
        fields = [*DATA_FIELDS, *EVENT_FIELDS, "last_synced_at", "livestream_status"]
        at = now()
        with transaction.atomic():
            # Rows with an event applied since the snapshot keep the event's status and UUID.
            snapshot = {row.pk: row.last_event_at for row in rows}
            current = dict(
                model.objects.select_for_update()
                .filter(pk__in=list(snapshot))
                .values_list("pk", "last_event_at")
            )
            fresh, touched = [], []
            for row in rows:
                if row.pk not in current:
                    continue  # deleted from the mirror meanwhile (account removed)
                row.last_synced_at = at
                (touched if current[row.pk] == snapshot[row.pk] else fresh).append(row)
            if touched:
                model.objects.bulk_update(touched, fields, batch_size=WRITE_BATCH)
            if fresh:
                model.objects.bulk_update(
                    fresh, [*DATA_FIELDS, "last_synced_at"], batch_size=WRITE_BATCH
                )
        self.result.updated += len(touched) + len(fresh)

    def _mark_missing(self):
        """After a complete pass: rows Zoom's lists left out. Webinars no longer listed are
        deleted. Meetings are asked about first (_ask_about_absent); instant and PMI meetings,
        which no list shows, only when the live source stopped naming them live."""
        existing = self.existing[Webinar]
        unknown = self.unknown_hosts[Webinar]
        gone = [
            row.pk
            for zoom_id, row in existing.items()
            if zoom_id not in self.seen[Webinar]
            and row.host_id not in unknown
            and row.status != MeetingStatus.DELETED
        ]
        self.result.deleted += self._set_status(Webinar, gone, MeetingStatus.DELETED)
        self._ask_about_absent()

    def _set_status(self, model, pks, status):
        changes = {
            "status": status,
            "last_synced_at": now(),
            "livestream_status": LiveStreamStatus.STOPPED,
        }
        done = 0
        for start in range(0, len(pks), WRITE_BATCH):
            done += (
                model.objects.filter(pk__in=pks[start : start + WRITE_BATCH])
                # An event since the pass began (e.g. meeting.recovered) knows better.
                .filter(Q(last_event_at__isnull=True) | Q(last_event_at__lt=self.pass_started))
                .exclude(status=status)
                .update(**changes)
            )
        return done

    # --- Live meetings and meetings no list shows (issue 11) ----------------------------------

    def _asks_live_lists(self):
        """Each user's `type=live` list is asked on Business without the Dashboard only: below
        Business Zoom answers it with an empty list (zoom/api#76)."""
        return self.dashboard_live is None and self.account.plan in LIVE_LIST_PLANS

    def _live_is_known(self):
        """Whether this pass knows which meetings are live (so a live row it does not name may
        have ended); below Business it does not, and live rows wait for their events."""
        return self.dashboard_live is not None or self._asks_live_lists()

    def _read_dashboard(self):
        """On Business and up, the Dashboard's live meetings (every host's, instant and PMI
        ones too). Refused (a smaller plan than the connection says, no
        dashboard_meetings:read:admin scope), rate limited or failing, the pass goes on with
        the `live` lists and notes why."""
        if self.account.plan not in LIVE_LIST_PLANS:
            self.result.live_source = "events"
            return
        try:
            items = self._listing(self.client.iter_pages_dashboard_live_meetings)
        except (ZoomAuthError, ZoomNeedsReconnect):
            raise
        except (ZoomError, ThrottleWaitError) as e:
            reason = e.describe() if isinstance(e, ZoomError) else str(e)
            self.result.skipped.append(
                {"user": "", "list": "Dashboard live meetings", "reason": reason}
            )
            self.result.live_source = "live lists"
            log.info("sync of %s: the Dashboard's live meetings not read: %s", self.account, reason)
            return
        self.dashboard_live = {item.id: item for item in items}
        self.result.live_source = "dashboard"

    def _question(self, zoom_id):
        """Zoom's word on one meeting (`GET /meetings/{id}`, Light, through the account's rate
        limiter): the ZoomMeeting, "gone" (404 code 3001), or None when Zoom would not say
        (then nothing is changed). Raises _OutOfQuestions when this sync asked enough."""
        if self.questions_left <= 0:
            raise _OutOfQuestions
        self.questions_left -= 1
        try:
            answer = self.client.get_meeting(zoom_id)
        except (ZoomAuthError, ZoomNeedsReconnect):
            raise
        except ZoomNotFound as e:
            return "gone" if e.code in (3001, None) else None
        except ThrottleWaitError as e:
            raise _OutOfQuestions from e
        except ZoomError as e:
            log.info("sync of %s: meeting %s not verified: %s", self.account, zoom_id, e)
            return None
        return answer

    def _mirror_dashboard_only(self):
        """Live meetings the Dashboard named that no list showed and the mirror lacks (instant
        and PMI meetings whose meeting.started never came, or a meeting scheduled since the
        lists were read): fetched with `GET /meetings/{id}` for their host, topic and type, and
        mirrored live. Rows the mirror has are made live by the `seen`-independent update."""
        if not self.dashboard_live:
            return
        to_start = []
        try:
            for zoom_id in self.dashboard_live:
                if zoom_id in self.seen[Meeting]:
                    continue
                row = self.existing[Meeting].get(zoom_id)
                if row is not None:
                    if row.status != MeetingStatus.STARTED and not self._has_newer_event(row):
                        to_start.append(row.pk)
                    continue
                answer = self._question(zoom_id)
                if answer is None or answer == "gone" or answer.status != "started":
                    continue
                self._stage(Meeting, answer, None, live=True)
                self.result.fetched += 1
        except _OutOfQuestions:
            log.info("sync of %s: question budget spent; the next sync goes on", self.account)
        self.result.updated += self._set_status(Meeting, to_start, MeetingStatus.STARTED)

    def _ask_about_absent(self):
        """Meetings a list left out, asked about before anything is changed:
        - live rows the live source no longer names (any type): "waiting" or gone ends them,
          "started" keeps them;
        - scheduled rows (not instant or PMI) absent from every user's list: gone deletes them,
          an answer keeps them (and says whether they are live).
        Instant and PMI rows are never judged by the lists."""
        existing = self.existing[Meeting]
        unknown = self.unknown_hosts[Meeting]
        doubted = {row.zoom_id: row for row in self.live_doubted}
        for zoom_id, row in existing.items():
            if zoom_id in self.seen[Meeting] or row.host_id in unknown:
                continue
            listed_type = row.type not in UNLISTED_TYPES
            if row.status == MeetingStatus.STARTED:
                live = self.dashboard_live is not None and zoom_id in self.dashboard_live
                if self._live_is_known() and not live:
                    doubted[zoom_id] = row
                elif listed_type:
                    doubted[zoom_id] = row  # absent from the scheduled list: deleted?
            elif listed_type and row.status != MeetingStatus.DELETED:
                doubted[zoom_id] = row
        changes = {MeetingStatus.ENDED: [], MeetingStatus.DELETED: [], MeetingStatus.STARTED: []}
        try:
            for zoom_id, row in doubted.items():
                if self._has_newer_event(row):
                    continue
                answer = self._question(zoom_id)
                self.result.verified += answer is not None
                status = self._verdict(row, answer)
                if status is not None and status != row.status:
                    changes[status].append(row.pk)
        except _OutOfQuestions:
            log.info("sync of %s: question budget spent; the next sync goes on", self.account)
        self.result.deleted += self._set_status(
            Meeting, changes[MeetingStatus.DELETED], MeetingStatus.DELETED
        )
        for status in (MeetingStatus.ENDED, MeetingStatus.STARTED):
            self.result.updated += self._set_status(Meeting, changes[status], status)

    def _verdict(self, row, answer):
        """The status Zoom's answer about a doubted row gives it (None: leave it)."""
        if answer is None:
            return None
        listed = row.zoom_id in self.seen[Meeting]
        if answer == "gone":
            if listed:
                return None  # listed, yet not found: Zoom contradicts itself; wait
            # An instant meeting is gone once it ends; anything else gone was deleted.
            return MeetingStatus.ENDED if row.type == INSTANT_MEETING else MeetingStatus.DELETED
        if answer.status == "started":
            return MeetingStatus.STARTED
        if row.status == MeetingStatus.STARTED:
            return MeetingStatus.ENDED
        return None

    def _progress(self, force=False):
        if self.on_progress is None:
            return
        clock = time.monotonic()
        if (
            not force
            and self.last_progress is not None
            and clock - self.last_progress < self.progress_interval
        ):
            return
        self.last_progress = clock
        self.on_progress(
            {
                "users_total": self.users_total,
                "users_done": self.users_done,
                "pages": self.result.pages,
                "meetings": self.result.meetings,
                "webinars": self.result.webinars,
                "restarts": self.result.restarts,
            }
        )
