"""Fault: the Zoom connection's grant is revoked (an admin removed the app at Zoom) while a
batch of ends runs. The rest of the batch must fail at once with the reason, the account must
say it needs reconnecting, and nothing may be retried against a connection that cannot work."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.timezone import now

from meetings.actions import create_batch
from meetings.models import ActionState, Attempt, Meeting, MeetingStatus, ZoomAccount
from meetings.zoom import oauth
from meetings.zoom.sandbox import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
)

from .ledger import Ledger, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.worker]

REDIRECT_URI = "http://testserver/connections/callback/"
MEETINGS = 20
NEEDS_RECONNECT = "Zoom connection needs to be reconnected"


def oauth_account(zoom_sandbox, owner_id):
    """An OAuth (authorization code) connection with real sandbox tokens for the owner."""
    code = zoom_sandbox.state.create_authorization_code(
        DEFAULT_OAUTH_CLIENT_ID, owner_id, REDIRECT_URI
    )
    token = oauth.exchange_code(
        client_id=DEFAULT_OAUTH_CLIENT_ID,
        client_secret=DEFAULT_OAUTH_CLIENT_SECRET,
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=None,
    )
    return ZoomAccount.objects.create(
        name="Acme (OAuth)",
        kind=ZoomAccount.Kind.OAUTH,
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=DEFAULT_OAUTH_CLIENT_ID,
        client_secret=DEFAULT_OAUTH_CLIENT_SECRET,
        access_token=token["access_token"],
        refresh_token=token["refresh_token"],
        token_expires_at=now() + timedelta(seconds=token["expires_in"]),
        scopes=token["scope"],
    )


def test_a_grant_revoked_mid_batch_fails_the_rest_at_once_and_asks_for_a_reconnect(
    fault_workers, zoom_sandbox, operator, client
):
    # given an OAuth connection and 20 live meetings of its user, at a slow Zoom
    state = zoom_sandbox.state
    owner = state.account_owner(DEFAULT_ACCOUNT_ID)
    account = oauth_account(zoom_sandbox, owner["id"])
    live = [state.add_meeting(owner["id"], status="started") for _ in range(MEETINGS)]
    rows = Meeting.objects.bulk_create(
        Meeting(account=account, zoom_id=m["id"], topic=m["topic"], status=MeetingStatus.STARTED)
        for m in live
    )
    state.set_faults(latency_ms=250)
    fault_workers()

    # when a batch ends them, and the grant is revoked at Zoom a few ends in (an end is done
    # once Zoom's 204 is confirmed, seconds later: what counts here is the 204)
    batch, _ = create_batch(account=account, kind="end_meeting", targets=rows, user=operator)
    ledger = Ledger(batch.actions.values_list("pk", flat=True))
    ends = Attempt.objects.filter(action_id__in=ledger.ids, operation="meetingStatus")
    wait_until(
        lambda: ends.filter(outcome="ok").count() >= 3 and ends.filter(outcome="").exists(),
        60,
        "three ends accepted and one in flight",
        interval=0.05,
    )
    refreshes = state.counters["token_requests:refresh_token"]
    assert state.revoke_tokens(account_id=DEFAULT_ACCOUNT_ID) >= 1
    revoked_at = time.monotonic()
    ledger.observe()
    accepted_before = ends.filter(outcome="ok").count()
    done_before = set(ledger.first_seen)
    actions = ledger.wait_finished(timeout=60)
    took = time.monotonic() - revoked_at

    # then every action finished once: the ones done before succeeded, the rest failed at once
    ledger.assert_exactly_once()
    failed = [a for a in actions if a.state == ActionState.FAILED]
    succeeded = [a for a in actions if a.state == ActionState.SUCCEEDED]
    assert {a.pk for a in succeeded} >= done_before
    assert len(failed) >= MEETINGS - len(done_before) - 2, ledger.counts()
    assert len(failed) + len(succeeded) == MEETINGS
    for action in failed:
        assert NEEDS_RECONNECT in action.result_summary, action.result_summary
    not_started = [a for a in failed if a.result_summary == NEEDS_RECONNECT]
    assert len(not_started) >= MEETINGS - accepted_before - 2
    for action in not_started:
        # one attempt, refused before any request left (or by the refresh Zoom refused)
        assert [a.outcome for a in action.attempts.all()] == [Attempt.Outcome.ERROR]
    # an end Zoom took before the grant went (or in flight then): its confirmation could not
    # be made
    for action in failed:
        if action not in not_started:
            assert action.result_summary == (
                "Zoom accepted the end, but whether the meeting ended could not be confirmed "
                f"(the checks failed: {NEEDS_RECONNECT})"
            )
    # nothing was retried against the dead connection, and it did not take long to say so
    for action in failed:
        outcomes = [a.outcome for a in action.attempts.all()]
        assert outcomes.count(Attempt.Outcome.ERROR) == 1, (action.pk, outcomes)
        assert Attempt.Outcome.RETRY not in outcomes
    assert took < 20, f"the batch took {took:.1f} s to fail after the revoke"
    # Zoom was asked for a new token once (under the account's lock), not once per action
    assert state.counters["token_requests:refresh_token"] - refreshes == 1
    # the account says it needs reconnecting, and the dashboard tells everyone
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.NEEDS_RECONNECT
    assert "invalid_grant" in account.last_error
    assert account.access_token == "" and account.refresh_token == ""
    client.force_login(operator)
    page = client.get(reverse("overview"))
    assert page.status_code == 200
    assert "needs to be reconnected" in page.text
    # and the meetings whose end failed are still live at Zoom, as the record says
    for action in not_started:
        assert state.get_meeting(action.target_id)["status"] == "started"
