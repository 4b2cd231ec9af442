"""Notification tasks, on their own "notifications" queue (CELERY_TASK_ROUTES): thin, they take
a delivery's id and hand the work to meetings.delivery."""

from celery import shared_task
from django.conf import settings

# One send: an SMTP conversation or one HTTP request to a chat service, each bounded by
# NOTIFY_TIMEOUT_SECONDS (connect, then read). Past twice that plus a margin the destination or
# the database hangs: the soft limit ends the task (the sweeper sends the delivery again).
SEND_SOFT_TIME_LIMIT = settings.NOTIFY_TIMEOUT_SECONDS * 3 + 10
SEND_TIME_LIMIT = SEND_SOFT_TIME_LIMIT + 15


@shared_task(
    ignore_result=True,
    # Acknowledged when taken: a delivery lost with its worker is found by the sweeper (it is
    # in the database), and a send is not worth a redelivery that could send it twice.
    acks_late=False,
    soft_time_limit=SEND_SOFT_TIME_LIMIT,
    time_limit=SEND_TIME_LIMIT,
)
def deliver(delivery_id):
    """Send one delivery, or send this message again when its destination is busy, too soon
    (the per-destination rate limit) or failed and is being retried."""
    from ..delivery import send_delivery

    later = send_delivery(delivery_id)
    if later is not None:
        from ..notifications import enqueue_deliveries

        enqueue_deliveries([delivery_id], countdown=later)


# A sweep is two indexed queries and a few messages; it is superseded by the next one.
@shared_task(ignore_result=True, soft_time_limit=30, time_limit=60)
def sweep_notifications():
    from ..delivery import sweep

    sweep()
