"""
The comparison the bulk-end benchmark measures the pipeline against: a Celery task that ends one
meeting and relies on Celery's built-in `rate_limit` to stay under Zoom's limit.

`rate_limit` is enforced by each worker on its own (a token bucket in the worker's consumer), so
with two workers the account gets up to twice the rate, and Zoom answers 429. This task is only
loaded by the benchmark's workers (`celery worker -I bench.tasks`); the dashboard never uses it.
"""

import logging
import os

from celery import shared_task
from celery.signals import worker_process_init

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


# --- BENCH_TRACE=1: where each request's time goes between its slot and Zoom ----------------


@worker_process_init.connect
def _install_trace(**kwargs):
    """With BENCH_TRACE set, each request to Zoom carries X-Bench-Slot (when the rate limiter
    booked it) and X-Bench-Send (when it left this process), which the sandbox logs: the bulk-end
    benchmark then reports slot → send and send → Zoom. Patched here, in the benchmark's workers
    only; the dashboard never sends these headers."""
    if not os.environ.get("BENCH_TRACE"):
        return
    import threading
    import time

    from meetings import ratelimit
    from meetings.zoom import oauth

    local = threading.local()
    reserve, send = ratelimit.Throttle.reserve, oauth.AccountSession.send

    def traced_reserve(self, label):
        wait = reserve(self, label)
        local.slot = time.time() + wait
        return wait

    def traced_send(self, request, **kw):
        slot = getattr(local, "slot", None)
        if slot is not None:
            request.headers["X-Bench-Slot"] = repr(slot)
            request.headers["X-Bench-Send"] = repr(time.time())
            local.slot = None
        return send(self, request, **kw)

    ratelimit.Throttle.reserve = traced_reserve
    oauth.AccountSession.send = traced_send
