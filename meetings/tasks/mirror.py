"""The mirror's Celery tasks: apply webhook events, sweep up missed ones, schedule syncs."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils.timezone import now

log = logging.getLogger(__name__)

# An event whose processing failed this many times is left for a person to look at (its error
# is in the admin) instead of being retried every minute forever.
WEBHOOK_MAX_ATTEMPTS = 5
# Events younger than this are still on their way through the broker: not the sweeper's.
WEBHOOK_SWEEP_GRACE = timedelta(seconds=30)
# How many events one sweep takes on, so a backlog is worked off in bounded steps.
WEBHOOK_SWEEP_BATCH = 500


# Applying an event is a few indexed queries; a minute means the database is stuck, and the
# sweeper will try the event again.
@shared_task(soft_time_limit=60, time_limit=90)
def process_webhook_event(event_id):
    """Apply one stored Zoom event to the mirror, exactly once (a duplicate run does nothing)."""
    from ..hosts import fill_in_host_email
    from ..webhooks import process_event, record_failure

    try:
        processed = process_event(event_id)
    except Exception as e:
        # Recorded for the admin, then left for the sweeper: applying is idempotent.
        record_failure(event_id, e)
        log.exception("webhook event %s could not be applied", event_id)
        return False
    if processed:
        try:
            fill_in_host_email(event_id)
        except Exception:
            # The event is applied; only the host's address is missing, and the sync brings it.
            log.exception("webhook event %s: the host's address could not be filled in", event_id)
    return processed


# A sweep is bounded by WEBHOOK_SWEEP_BATCH events of a few queries each.
@shared_task(soft_time_limit=240, time_limit=300)
def process_pending_webhook_events():
    """Process events that were stored but never processed (broker down, worker died)."""
    from ..models import WebhookEvent

    ids = list(
        WebhookEvent.objects.filter(
            processed_at__isnull=True,
            received_at__lt=now() - WEBHOOK_SWEEP_GRACE,
            attempts__lt=WEBHOOK_MAX_ATTEMPTS,
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:WEBHOOK_SWEEP_BATCH]
    )
    for event_id in ids:
        process_webhook_event(event_id)
    return len(ids)


# How many times a meeting's fetch is tried again when Zoom fails for a moment or the rate
# limiter asks to wait; then the next sync (on Business) or the next event brings the rest.
FETCH_MEETING_RETRIES = 5


# One Zoom request (a few seconds at worst, ZOOM_TIMEOUT_SECONDS) and one row written.
@shared_task(bind=True, soft_time_limit=60, time_limit=90)
def fetch_meeting(self, account_id, zoom_id):
    """Fill in a meeting an event brought that the mirror did not have (`GET /meetings/{id}`,
    Light, through the account's rate limiter): an instant or PMI meeting is in no list."""
    from ..actions import backoff_delay
    from ..mirror import fetch_meeting as fetch
    from ..models import ZoomAccount
    from ..ratelimit import ThrottleWaitError, throttle_for
    from ..zoom.client import ZoomClient
    from ..zoom.errors import ZoomError, ZoomNotFound

    account = ZoomAccount.objects.filter(pk=account_id).first()
    if account is None or account.status != ZoomAccount.Status.CONNECTED:
        return False
    try:
        client = ZoomClient.for_account(account, throttle=throttle_for(account))
        fetch(account, client, zoom_id)
    except ZoomNotFound:
        log.info("meeting %s had ended before its details were fetched", zoom_id)
        return False
    except ThrottleWaitError as e:
        raise self.retry(countdown=e.seconds, max_retries=FETCH_MEETING_RETRIES) from e
    except ZoomError as e:
        if e.permanent:
            log.warning("meeting %s: its details could not be fetched: %s", zoom_id, e.describe())
            return False
        countdown = e.retry_after or backoff_delay(self.request.retries + 1)
        raise self.retry(countdown=countdown, max_retries=FETCH_MEETING_RETRIES) from e
    return True


# A part of a sync: SYNC_PART_USERS users' lists, a few seconds of the Medium limit. Its limits
# stay well below the broker's visibility timeout (zoomadmin.E003 checks it); past the soft one
# the part gives its lease back at once and is sent again (SYNC_PART_MAX_RUNS times at most).
@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=settings.SYNC_PART_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.SYNC_PART_TIME_LIMIT_SECONDS,
)
def sync_part(self, part_id):
    """Do one part of a fanned-out sync (meetings.sync_runs): claim it, list its users'
    meetings and webinars, write what changed. A part not this run's to do is left alone."""
    from celery.exceptions import SoftTimeLimitExceeded

    from ..models import SyncPart
    from ..models.actions import db_time
    from ..sync import SyncLockLost
    from ..sync_runs import RetryPart, run_part
    from ..zoom.errors import ZoomError

    try:
        return run_part(part_id)
    except RetryPart as e:
        raise self.retry(countdown=e.seconds, max_retries=None) from e
    except SyncLockLost:
        log.warning("sync part %s was taken over by another run; this one stops", part_id)
        return False
    except ZoomError as e:
        log.warning("sync part %s failed: %s", part_id, e.describe())
        return False
    except SoftTimeLimitExceeded:
        # Its lease is given up now, so the sync's next check sends it again at once.
        SyncPart.objects.filter(pk=part_id, state=SyncPart.State.RUNNING).update(
            lease_expires_at=db_time()
        )
        log.warning("sync part %s ran past its time limit", part_id)
        return False


# Only creates one action row per account; the syncs themselves run as their own tasks.
@shared_task(soft_time_limit=60, time_limit=90)
def sync_all_accounts():
    """Ask the action pipeline for a sync of every connected account whose sync is due (Celery
    beat runs this every SYNC_INTERVAL_SECONDS; meetings.budget spaces an account's syncs to
    fit its daily caps, and waits out a daily limit Zoom said is used up). A sync still queued
    or running is not asked for twice: the one due rolls over until it is done."""
    from ..actions import request_action
    from ..budget import sync_due
    from ..models import Action, ActionKind, ActionSource, ZoomAccount

    requested = 0
    for account in ZoomAccount.objects.filter(status=ZoomAccount.Status.CONNECTED):
        if not sync_due(account):
            continue
        if Action.objects.active().filter(account=account, kind=ActionKind.SYNC).exists():
            # Still running (or waiting for a worker) when the next is due: the next rolls
            # over, due as soon as this one is done, instead of queueing behind it.
            log.info("sync of %s still running: the scheduled sync rolls over", account)
            continue
        _, created = request_action(
            account=account,
            kind=ActionKind.SYNC,
            source=ActionSource.SCHEDULE,
            target_type="account",
            topic=account.name,
        )
        requested += created
    return requested
