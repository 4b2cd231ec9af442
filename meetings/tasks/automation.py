"""Scheduled and automatic actions' Celery tasks: thin, the work is in meetings.automation."""

from celery import shared_task


# A beat's worth of schedules is a few queries and one action request each; a tick that takes
# longer than a minute means the database is stuck, and the next tick carries on (each schedule
# is claimed once, so an overlap does nothing twice).
@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def run_schedules():
    """Report missed schedules, start due ones, ask for the next steps of running ones."""
    from ..automation import run_schedules as run

    return run()


# Each policy is a query of the mirror and at most POLICY_MAX_ACTIONS_PER_RUN requests: two
# minutes means the database is stuck; the next run carries on (an action is never asked twice
# while one is active, the pipeline's constraint decides).
@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def apply_policies():
    """Apply every enabled policy of every connected account."""
    from ..policies import apply_policies as apply

    return apply()
