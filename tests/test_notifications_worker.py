"""Notifications end to end: actions fail at the Zoom sandbox under a real worker, and the
deliveries reach a real SMTP server (aiosmtpd) and a real HTTP chat receiver (apprise's json://),
spaced by the destination's rate limit; a destination that hangs neither holds actions back nor
other destinations, and is retried until it is given up in plain words."""

import itertools
import time

import pytest

from meetings.models import Action, ActionState, Channel, Delivery, DeliveryState, Subscription
from meetings.notifications import EventKind, notify
from tests.test_action_pipeline import ask, wait_finished
from tests.waiting import wait_until

pytestmark = pytest.mark.worker

NOTIFY_ENV = {
    "NOTIFY_TIMEOUT_SECONDS": "2",
    "NOTIFY_DESTINATION_INTERVAL_SECONDS": "1",
    "NOTIFY_RETRY_BASE_SECONDS": "0.5",
    "NOTIFY_RETRY_MAX_SECONDS": "1",
    "NOTIFY_MAX_ATTEMPTS": "3",
}


def subscribe(user, channel, destination=""):
    return Subscription.objects.create(
        user=user,
        kinds=Subscription.encode_kinds([EventKind.ACTION_FAILED, EventKind.NEEDS_RECONNECT]),
        channel=channel,
        destination=destination,
    )


@pytest.fixture
def subscriber(operator):
    operator.email = "oscar@example.org"
    operator.save()
    return operator


@pytest.mark.worker_env(**NOTIFY_ENV)
def test_failed_actions_reach_the_mail_server_and_the_chat_spaced_by_its_rate_limit(
    smtp_server, chat_receiver, celery_worker_process, sandbox_account, subscriber
):
    # given a subscription by e-mail and one to a chat
    subscribe(subscriber, Channel.EMAIL)
    subscribe(subscriber, Channel.CHAT, chat_receiver.url())

    # when three ends fail at Zoom (no such meetings)
    failed = [
        ask(sandbox_account, "end_meeting", target_type="meeting", target_id=91000000000 + n)
        for n in range(3)
    ]
    done = wait_finished(a.pk for a in failed)
    assert {a.state for a in done} == {ActionState.FAILED}

    # then each failure reaches both destinations, once
    wait_until(
        lambda: Delivery.objects.filter(state=DeliveryState.SENT).count() == 6,
        30,
        "six deliveries sent: "
        + str(list(Delivery.objects.values_list("state", "attempts", "last_error"))),
    )
    assert len(smtp_server.messages) == 3
    assert all(m["to"] == ["oscar@example.org"] for m in smtp_server.messages)
    assert all("Subject: [zoomadmin] End meeting failed" in m["data"] for m in smtp_server.messages)
    assert len(chat_receiver.received) == 3
    titles = sorted(r["json"]["title"] for r in chat_receiver.received)
    assert titles == [f"End meeting failed: meeting {91000000000 + n}" for n in range(3)]
    # and the chat's sends were at least the destination's interval apart (1 s), although
    # the three were ready at about the same time
    times = sorted(r["at"] for r in chat_receiver.received)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.9, gaps


@pytest.mark.worker_env(**NOTIFY_ENV)
def test_a_hanging_chat_holds_back_neither_actions_nor_other_destinations(
    smtp_server,
    chat_receiver,
    celery_worker_process,
    sandbox_account,
    sandbox_host,
    subscriber,
    zoom_sandbox,
):
    # given a chat destination that hangs far past the send timeout (2 s), and e-mail
    chat_receiver.hang = 20
    subscribe(subscriber, Channel.CHAT, chat_receiver.url())
    subscribe(subscriber, Channel.EMAIL)
    for n in range(2):
        notify(EventKind.NEEDS_RECONNECT, title=f"Reconnect {n}", text="x", account=sandbox_account)

    # when operators end four live meetings meanwhile
    time.sleep(0.5)  # the worker has taken the first chat send
    live = [zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started") for _ in range(4)]
    started = time.monotonic()
    ends = [ask(sandbox_account, "end_meeting", target_id=m["id"]) for m in live]
    done = wait_finished((a.pk for a in ends), timeout=30)
    elapsed = time.monotonic() - started

    # then the ends ran as usual, and the e-mails went out, while the chat hung
    assert [a.state for a in done] == [ActionState.SUCCEEDED] * 4, [a.result_summary for a in done]
    assert elapsed < 15, elapsed
    wait_until(lambda: len(smtp_server.messages) == 2, 15, "the two e-mails")

    # and the chat was tried one send at a time, retried, then given up in plain words
    chat = Delivery.objects.filter(channel=Channel.CHAT)
    wait_until(
        lambda: chat.filter(state=DeliveryState.FAILED).count() == 2,
        60,
        "the hanging chat's deliveries given up: "
        + str(list(chat.values_list("state", "attempts", "last_error"))),
    )
    for d in chat:
        assert d.attempts == 3
        assert d.last_error.startswith("The chat service did not accept the message")
        assert d.last_error.endswith("Gave up after 3 attempts.")
        assert "T0k3n" not in d.last_error
    times = sorted(r["at"] for r in chat_receiver.received)
    assert len(times) == 6
    # one in flight at a time: each send began after the previous one timed out (2 s)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.8, gaps
    assert Action.objects.filter(state=ActionState.FAILED).count() == 0
    assert "T0k3n" not in celery_worker_process.log()
