"""The action pipeline's Celery tasks: thin, they take an id and hand the work to
meetings.actions."""

from celery import shared_task
from django.conf import settings

# An action's run is one Zoom call plus, for an end, a few confirmation checks, under the rate
# limiter (which never sleeps more than ZOOM_RATE_LIMIT_MAX_WAIT_SECONDS); a sync is a few
# hundred pages at the Medium rate. Thirty minutes means Zoom or the database is stuck: the soft
# limit fails the action with that message, the hard one frees the worker if even that hangs.
RUN_SOFT_TIME_LIMIT = 30 * 60
RUN_TIME_LIMIT = RUN_SOFT_TIME_LIMIT + 60


@shared_task(
    bind=True,
    # Acknowledged only when done, and given back to the broker when the worker process dies
    # mid-run: the next delivery takes the action over (Action.claim) so no click is lost.
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=RUN_SOFT_TIME_LIMIT,
    time_limit=RUN_TIME_LIMIT,
)
def run_action(self, action_id):
    """Run one action: claim it, call Zoom, record the attempts, finish it or schedule its
    retry (a new message with a countdown). A message for an action that is not waiting for it
    (finished, or owned by another run) does nothing."""
    from ..actions import execute

    return execute(action_id, task_id=self.request.id or "")


# A sweep is a few indexed queries and at most a few hundred task messages; if it takes longer
# than its own interval the database is struggling and the next sweep will carry on.
@shared_task(
    ignore_result=True,
    soft_time_limit=max(settings.ACTION_SWEEP_INTERVAL_SECONDS, 30),
    time_limit=max(settings.ACTION_SWEEP_INTERVAL_SECONDS, 30) + 30,
)
def sweep_actions():
    """Send again what the broker never got; take back actions whose worker died."""
    from ..actions import sweep

    return sweep()
