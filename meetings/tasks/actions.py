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
# A run whose database connection broke (a restart: seconds; a failover: tens of seconds) sends
# its message again after 1, 2, 4 ... 30 s, about ten minutes in all; past that the sweeper's
# lease and dispatch timeout are the backstop.
DATABASE_RETRIES = 25
DATABASE_RETRY_MAX_SECONDS = 30


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
def run_action(self, action_id, lease_token=""):
    """Run one action: claim it, call Zoom, record the attempts, finish it or schedule its
    retry (a new message with a countdown). A message for an action that is not waiting for it
    (finished, or owned by another run) does nothing. LEASE_TOKEN: the lease this run's own
    earlier delivery held, when it stopped because the database went away (below)."""
    from ..actions import DATABASE_GONE, execute

    try:
        return execute(action_id, task_id=self.request.id or "", lease_token=lease_token)
    except DATABASE_GONE as e:
        # The same task id, carrying the lease this run held: the new delivery takes the
        # running action over at once (Action.claim: a run handing over to itself, uncounted),
        # instead of after its lease, and a click that came in while the database was down
        # runs when it is back instead of after ACTION_DISPATCH_TIMEOUT_SECONDS.
        countdown = min(2**self.request.retries, DATABASE_RETRY_MAX_SECONDS)
        token = getattr(e, "lease_token", "") or lease_token
        raise self.retry(
            exc=e,
            countdown=countdown,
            max_retries=DATABASE_RETRIES,
            kwargs={"lease_token": token},
        ) from e


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


# A few indexed queries and one conditional update per expired request.
@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def expire_approvals():
    """Cancel the requests nobody approved within APPROVAL_EXPIRY_MINUTES."""
    from ..approvals import expire_due

    return len(expire_due())
