"""
The action pipeline's public face: how views, commands, webhooks and schedules ask for work.

Every operation on Zoom is an `Action` row (the audit record) executed by a Celery task.
Filled in by the actions work (issue 5); the signatures here are the contract other areas use.
"""


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
    batch=None,
    enqueue=True,
):
    """Create the Action in a transaction and enqueue its task on commit.

    Returns (action, created). While an action of this kind is queued or running for the same
    target, returns that one with created=False (double clicks make one job). `params` must not
    hold secrets in clear: a stream key is passed as params["stream_key"] and stored redacted,
    the key itself kept encrypted for the task to use. enqueue=False leaves the enqueueing to
    the caller (the command line runs `execute` inline).
    """
    raise NotImplementedError


def execute(action_id):
    """Claim the action (conditional update queued → running), call Zoom, record each attempt,
    retry what may succeed later, finish it exactly once. What the Celery task runs."""
    raise NotImplementedError
