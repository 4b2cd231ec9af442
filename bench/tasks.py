"""
The comparison the bulk-end benchmark measures the pipeline against: a Celery task that ends one
meeting and relies on Celery's built-in `rate_limit` to stay under Zoom's limit.

`rate_limit` is enforced by each worker on its own (a token bucket in the worker's consumer), so
with two workers the account gets up to twice the rate, and Zoom answers 429. This task is only
loaded by the benchmark's workers (`celery worker -I bench.tasks`); the dashboard never uses it.
"""

import logging

from celery import shared_task

log = logging.getLogger(__name__)

# Zoom's Light limit on the Pro plan, as a naive deployment would configure it.
RATE_LIMIT = "30/s"


@shared_task(rate_limit=RATE_LIMIT, ignore_result=True, acks_late=False)
def end_meeting_rate_limited(account_id, meeting_id):
    """End one meeting with the account's client and no shared limiter: Celery's per-worker
    rate_limit is the only thing spacing the requests. A 429 is recorded, not retried, so the
    benchmark sees how many requests Zoom refused."""
    from meetings.models import ZoomAccount
    from meetings.zoom.client import ZoomClient
    from meetings.zoom.errors import ZoomError

    account = ZoomAccount.objects.get(pk=account_id)
    try:
        ZoomClient.for_account(account).end_meeting(meeting_id)
    except ZoomError as e:
        log.info("bench: ending %s failed: %s", meeting_id, e.describe())
        return e.status
    return 204
