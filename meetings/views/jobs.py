"""Requesting actions from views, and answering the poll of a job's state.

Every button on the dashboard ends here: a POST checks the action's permission, asks the
pipeline (`meetings.actions.request_action`) for the job with who asked and from where, and
answers the updated panel (htmx) or a redirect to the page (a plain form POST without JS).
"""

import logging

from django.contrib import messages
from django.db import IntegrityError
from django.shortcuts import redirect, render

from .. import actions
from ..models import ActionSource
from .access import client_ip, require_action_permission, wants_fragment

log = logging.getLogger(__name__)


class ActionRefused(Exception):
    """The pipeline would not take the job; the message is for the operator."""


def start_action(request, *, account, kind, source=ActionSource.DASHBOARD, **target):
    """Ask the pipeline for a job as this user. Returns (action, created).

    A second request for a job already queued or running returns that job (created=False):
    a double click, or two operators at once, makes one job.
    """
    require_action_permission(request.user, kind, account)
    try:
        return actions.request_action(
            account=account,
            kind=kind,
            source=source,
            user=request.user,
            client_ip=client_ip(request),
            **target,
        )
    except (ValueError, IntegrityError) as e:
        # The pipeline validates its input; say what it refused rather than show a 500.
        log.warning("action refused: kind=%s target=%s: %s", kind, target.get("target_id"), e)
        raise ActionRefused(str(e) or "The dashboard refused that request.") from e


def announce(request, action, created):
    """A one-line message about the job for the next page (plain POSTs only: htmx shows the job)."""
    if created and action.is_awaiting:
        messages.success(
            request,
            f"{action.get_kind_display()} requested. It is awaiting approval by another "
            "operator: nothing is sent to Zoom until then.",
        )
    elif created:
        messages.success(request, f"{action.get_kind_display()} requested. It runs in a moment.")
    else:
        who = action.requested_by.get_username() if action.requested_by else "someone"
        messages.info(
            request,
            f"{action.get_kind_display()} was already requested by {who} and is "
            f"{action.get_state_display().lower()}: no second job was made.",
        )


def answer(request, *, template, fragment, context, fallback_url):
    """The htmx answer (the updated fragment) or the plain answer (a redirect to the page)."""
    if wants_fragment(request):
        return render(request, f"{template}#{fragment}", context)
    return redirect(fallback_url)
