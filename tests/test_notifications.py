"""Notifications: who gets a delivery for which event, the events raised by the pipeline, the
webhooks and the connections, sending with retries and a per-destination rate limit, and the
Notifications page. Sending goes to real destinations (a local HTTP chat receiver, Django's
locmem mail outbox); tests/test_notifications_worker.py runs them through a real worker."""

import logging
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils.timezone import now

from meetings import delivery as sending
from meetings import notifications
from meetings.models import (
    Action,
    ActionState,
    Channel,
    Delivery,
    DeliveryState,
    LiveStreamStatus,
    Meeting,
    Subscription,
)
from meetings.notifications import EventKind, notify
from meetings.tasks.mirror import process_webhook_event

from .dashboard_data import make_account, make_meeting
from .test_webhooks import SECRET, ZOOM_ACCOUNT_ID, deliver, event

pytestmark = pytest.mark.django_db
TOKEN = "T0k3nS3cr3tXYZ"


@pytest.fixture
def account():
    return make_account()


def subscribe(user, kinds, *, account=None, channel=Channel.EMAIL, destination=""):
    return Subscription.objects.create(
        user=user,
        kinds=Subscription.encode_kinds(kinds),
        account=account,
        channel=channel,
        destination=destination,
    )


def raise_failed(account, **kwargs):
    return notify(
        EventKind.ACTION_FAILED, title="End meeting failed", text="Zoom said no.", account=account
    )


# --- Who gets a delivery ---------------------------------------------------------------------


def test_an_event_is_delivered_to_each_matching_subscription_once(
    operator, viewer, admin_user, account
):
    operator.email = "oscar@example.org"
    operator.save()
    mine = subscribe(operator, [EventKind.ACTION_FAILED, EventKind.NEEDS_RECONNECT])
    other_connection = subscribe(viewer, [EventKind.ACTION_FAILED], account=make_account("Other"))
    other_kind = subscribe(admin_user, [EventKind.STREAM_STOPPED])
    paused = subscribe(admin_user, [EventKind.ACTION_FAILED])
    paused.enabled = False
    paused.save()
    this_connection = subscribe(viewer, [EventKind.ACTION_FAILED], account=account)

    assert raise_failed(account) == 2

    got = {d.subscription_id: d for d in Delivery.objects.all()}
    assert set(got) == {mine.pk, this_connection.pk}
    assert other_connection.pk not in got and other_kind.pk not in got
    d = got[mine.pk]
    assert (d.kind, d.title, d.state, d.account, d.channel) == (
        "action_failed",
        "End meeting failed",
        DeliveryState.PENDING,
        account,
        "email",
    )


def test_no_one_hears_of_a_connection_they_may_not_see(operator, viewer, account, monkeypatch):
    subscribe(operator, [EventKind.ACTION_FAILED])
    subscribe(viewer, [EventKind.ACTION_FAILED])
    # the lead plugs per-connection roles in here
    monkeypatch.setattr(
        notifications, "may_see_connection", lambda user, acc: user.pk == operator.pk
    )
    assert raise_failed(account) == 1
    assert Delivery.objects.get().user == operator


def test_a_role_on_another_connection_only_hears_nothing_of_this_one(django_user_model, account):
    from meetings.models import ConnectionGrant

    elsewhere = django_user_model.objects.create_user("elsewhere", password="x" * 20)
    ConnectionGrant.objects.create(user=elsewhere, account=make_account("Other"), role="viewer")
    here = django_user_model.objects.create_user("here", password="x" * 20)
    ConnectionGrant.objects.create(user=here, account=account, role="viewer")
    subscribe(elsewhere, [EventKind.ACTION_FAILED])
    subscribe(here, [EventKind.ACTION_FAILED])
    assert raise_failed(account) == 1
    assert Delivery.objects.get().user == here


def test_inactive_people_and_people_without_access_get_nothing(operator, outsider, account):
    subscribe(outsider, [EventKind.ACTION_FAILED])
    subscribe(operator, [EventKind.ACTION_FAILED])
    operator.is_active = False
    operator.save()
    assert raise_failed(account) == 0
    assert not Delivery.objects.exists()


def test_a_happening_with_a_key_is_delivered_once_however_often_it_is_raised(operator, account):
    subscribe(operator, [EventKind.STREAM_STOPPED])
    for _ in range(3):
        notify(EventKind.STREAM_STOPPED, title="t", text="x", account=account, dedupe_key="stop:1")
    assert Delivery.objects.count() == 1


def test_the_deliveries_are_sent_after_the_commit_not_before(
    operator, account, django_capture_on_commit_callbacks, monkeypatch
):
    subscribe(operator, [EventKind.ACTION_FAILED])
    sent = []
    monkeypatch.setattr(notifications, "enqueue_deliveries", lambda ids, **kw: sent.append(ids))
    with django_capture_on_commit_callbacks(execute=True):
        raise_failed(account)
        assert sent == []
    assert sent == [[Delivery.objects.get().pk]]


def test_notify_never_raises_and_leaves_the_callers_transaction_usable(
    operator, account, monkeypatch, caplog
):
    subscribe(operator, [EventKind.ACTION_FAILED])

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Delivery.objects, "bulk_create", broken)
    with transaction.atomic():
        assert raise_failed(account) == 0
        # the caller's own writes go on in the same transaction
        make_meeting(account, topic="Still writable")
    assert Meeting.objects.filter(topic="Still writable").exists()
    assert "could not be recorded" in caplog.text
    assert notify("no such kind", title="t", text="x") == 0


# --- The events raised ------------------------------------------------------------------------


def _running_action(account, kind="end_meeting"):
    action = Action.objects.create(
        account=account,
        kind=kind,
        source="dashboard",
        target_type="meeting",
        target_id=85746065432,
        topic="Board meeting",
        state=ActionState.RUNNING,
        lease_token="t" * 32,
    )
    return action


def test_a_failed_action_notifies_a_cancelled_one_does_not(operator, account):
    subscribe(operator, [EventKind.ACTION_FAILED])
    failed = _running_action(account)
    failed.mark_failed("Zoom refused: the meeting does not exist (3001).")
    (d,) = Delivery.objects.all()
    assert d.title == "End meeting failed: Board meeting"
    assert "does not exist" in d.text
    assert d.url == reverse("action", args=[failed.pk]) and d.action_id == failed.pk

    queued = Action.objects.create(account=account, kind="sync", source="dashboard")
    assert queued.cancel()
    assert Delivery.objects.count() == 1


def test_the_failures_of_a_bulk_batch_are_one_message_pointing_at_the_batch(operator, account):
    from meetings.models import Batch

    subscribe(operator, [EventKind.ACTION_FAILED])
    batch = Batch.objects.create(kind="end_meeting", account=account, total=3)
    for n in range(3):
        action = _running_action(account)
        Action.objects.filter(pk=action.pk).update(batch=batch, target_id=n + 1)
        action.refresh_from_db()
        action.mark_failed(f"Zoom could not be reached ({n}).")
    (d,) = Delivery.objects.all()
    assert d.title == f"End meeting in bulk: some failed (batch #{batch.pk})"
    assert "Zoom could not be reached (0)" in d.text
    assert d.url == reverse("bulk", args=[batch.pk])


def test_a_connection_needing_reconnecting_notifies_once(operator, account):
    subscribe(operator, [EventKind.NEEDS_RECONNECT])
    account.mark_needs_reconnect("Zoom refused the refresh token (invalid_grant).")
    account.mark_needs_reconnect("Zoom refused the refresh token (invalid_grant).")
    (d,) = Delivery.objects.all()
    assert "needs reconnecting" in d.title and "invalid_grant" in d.text
    assert d.url == reverse("connection", args=[account.pk])


@pytest.fixture
def hooked_account(settings):
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = SECRET
    return make_account("Hooked", zoom_account_id=ZOOM_ACCOUNT_ID)


def _stop_event(client, meeting, ts):
    response = deliver(client, event("meeting.live_streaming_stopped", meeting.zoom_id, ts=ts))
    assert response.status_code == 200
    from meetings.models import WebhookEvent

    process_webhook_event(WebhookEvent.objects.latest("pk").pk)


def test_a_stream_stopped_outside_the_dashboard_notifies_once_per_stop(
    client, operator, hooked_account
):
    subscribe(operator, [EventKind.STREAM_STOPPED])
    meeting = make_meeting(hooked_account, status="started", livestream_status="live")
    ts = int(time.time() * 1000)
    _stop_event(client, meeting, ts)
    # Zoom's retry of the same event, and a second stop event a moment later: no new delivery
    _stop_event(client, meeting, ts)
    _stop_event(client, meeting, ts + 500)
    (d,) = Delivery.objects.all()
    assert d.kind == "stream_stopped" and "Weekly all-hands" in d.title
    meeting.refresh_from_db()
    assert meeting.livestream_status == LiveStreamStatus.STOPPED


def test_a_stream_we_stopped_does_not_notify(client, operator, hooked_account):
    subscribe(operator, [EventKind.STREAM_STOPPED])
    meeting = make_meeting(hooked_account, status="started", livestream_status="live")
    # our stop was asked for; Zoom's event arrives before the action wrote the mirror
    Action.objects.create(
        account=hooked_account,
        kind="stop_livestream",
        source="dashboard",
        target_type="meeting",
        target_id=meeting.zoom_id,
        state=ActionState.RUNNING,
    )
    _stop_event(client, meeting, int(time.time() * 1000))
    assert not Delivery.objects.exists()


def test_a_stop_older_than_what_the_mirror_knows_does_not_notify(client, operator, hooked_account):
    subscribe(operator, [EventKind.STREAM_STOPPED])
    meeting = make_meeting(hooked_account, status="started", livestream_status="live")
    Meeting.objects.filter(pk=meeting.pk).update(last_event_at=now())
    # a stop from a minute ago, delivered late after the stream started again
    _stop_event(client, meeting, int((time.time() - 60) * 1000))
    assert not Delivery.objects.exists()


# --- Sending ----------------------------------------------------------------------------------


@pytest.fixture
def fast(settings):
    settings.NOTIFY_TIMEOUT_SECONDS = 2
    settings.NOTIFY_DESTINATION_INTERVAL_SECONDS = 0
    settings.NOTIFY_RETRY_BASE_SECONDS = 1
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.DASHBOARD_URL = "https://zoomadmin.example.org"


def test_an_email_is_sent_by_djangos_mail_settings(operator, account, fast):
    operator.email = "oscar@example.org"
    operator.save()
    subscribe(operator, [EventKind.ACTION_FAILED])
    raise_failed(account)
    d = Delivery.objects.get()
    assert sending.send_delivery(d.pk) is None
    d.refresh_from_db()
    assert d.state == DeliveryState.SENT and d.attempts == 1 and d.sent_at
    (message,) = mail.outbox
    assert message.to == ["oscar@example.org"]
    assert message.subject == "[zoomadmin] End meeting failed"
    assert "Zoom said no." in message.body


def test_a_chat_message_reaches_the_destination(operator, account, fast, chat_receiver):
    subscribe(
        operator, [EventKind.ACTION_FAILED], channel=Channel.CHAT, destination=chat_receiver.url()
    )
    raise_failed(account)
    d = Delivery.objects.get()
    assert d.hint == "json://127.0.0.1/••••"
    assert sending.send_delivery(d.pk) is None
    d.refresh_from_db()
    assert d.state == DeliveryState.SENT
    (got,) = chat_receiver.received
    assert got["path"] == f"/hooks/{TOKEN}"
    assert got["json"]["title"] == "End meeting failed"
    assert "Zoom said no." in got["json"]["message"]


def test_a_failing_destination_is_retried_then_given_up_in_plain_words(
    operator, account, fast, chat_receiver, caplog
):
    caplog.set_level(logging.DEBUG)
    chat_receiver.status = 500
    subscribe(
        operator, [EventKind.ACTION_FAILED], channel=Channel.CHAT, destination=chat_receiver.url()
    )
    raise_failed(account)
    d = Delivery.objects.get()
    later = sending.send_delivery(d.pk)
    d.refresh_from_db()
    assert 0.5 <= later <= 1.0  # the first backoff (1 s, half of it random)
    assert (d.state, d.attempts) == (DeliveryState.PENDING, 1)
    assert d.last_error.startswith("The chat service did not accept the message")
    # not before its time
    assert sending.send_delivery(d.pk) > 0
    assert len(chat_receiver.received) == 1
    for attempt in (2, 3):
        Delivery.objects.filter(pk=d.pk).update(next_attempt_at=now())
        sending.send_delivery(d.pk)
        d.refresh_from_db()
        assert d.attempts == attempt
    assert d.state == DeliveryState.FAILED
    assert d.last_error.endswith("Gave up after 3 attempts.")
    assert len(chat_receiver.received) == 3
    # the destination's token is nowhere: not in the error, not in a log line
    assert TOKEN not in d.last_error
    assert TOKEN not in caplog.text and str(chat_receiver.port) not in d.last_error


def test_an_unreachable_mail_server_is_a_plain_error(operator, account, fast, settings):
    from tests.fixtures.notify import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    operator.email = "oscar@example.org"
    operator.save()
    subscribe(operator, [EventKind.ACTION_FAILED])
    raise_failed(account)
    d = Delivery.objects.get()
    sending.send_delivery(d.pk)
    d.refresh_from_db()
    assert d.state == DeliveryState.PENDING
    assert d.last_error == "The mail server refused the connection (is it running?)."


def test_sends_to_one_destination_are_spaced_by_its_rate_limit(
    operator, viewer, account, fast, settings, chat_receiver
):
    settings.NOTIFY_DESTINATION_INTERVAL_SECONDS = 30
    url = chat_receiver.url()
    subscribe(operator, [EventKind.ACTION_FAILED], channel=Channel.CHAT, destination=url)
    subscribe(viewer, [EventKind.ACTION_FAILED], channel=Channel.CHAT, destination=url)
    raise_failed(account)
    first, second = Delivery.objects.order_by("pk")
    assert sending.send_delivery(first.pk) is None
    wait = sending.send_delivery(second.pk)
    assert 29 < wait <= 30.2  # not sent: asked to come back when the destination is free
    second.refresh_from_db()
    assert (second.state, second.attempts) == (DeliveryState.PENDING, 0)
    assert len(chat_receiver.received) == 1
    # another destination is not held back by this one
    other = chat_receiver.url(token="AnotherT0kenABC")
    subscribe(viewer, [EventKind.NEEDS_RECONNECT], channel=Channel.CHAT, destination=other)
    notify(EventKind.NEEDS_RECONNECT, title="t", text="x", account=account)
    assert sending.send_delivery(Delivery.objects.latest("pk").pk) is None
    assert len(chat_receiver.received) == 2


def test_the_sweeper_sends_again_what_lost_its_message(operator, account, settings):
    settings.NOTIFY_SWEEP_GRACE_SECONDS = 60
    subscribe(operator, [EventKind.ACTION_FAILED])
    raise_failed(account)
    d = Delivery.objects.get()
    assert sending.sweep() == []
    Delivery.objects.filter(pk=d.pk).update(next_attempt_at=now() - timedelta(seconds=61))
    assert sending.sweep() == [d.pk]
    # a send cut short by a dead worker is waiting again
    Delivery.objects.filter(pk=d.pk).update(
        state=DeliveryState.SENDING, next_attempt_at=now() - timedelta(seconds=1)
    )
    sending.sweep()
    d.refresh_from_db()
    assert d.state == DeliveryState.PENDING


# --- The Notifications page -------------------------------------------------------------------


@pytest.fixture
def as_viewer(client, viewer):
    viewer.email = "vera@example.org"
    viewer.save()
    client.force_login(viewer)
    return client


def test_subscribing_by_email_and_to_a_chat(as_viewer, viewer, account, chat_receiver):
    response = as_viewer.post(
        reverse("notifications"), {"kinds": ["action_failed", "stream_stopped"], "channel": "email"}
    )
    assert response.status_code == 302
    url = chat_receiver.url()
    response = as_viewer.post(
        reverse("notifications"),
        {
            "kinds": ["needs_reconnect"],
            "account": account.pk,
            "channel": "chat",
            "destination": url,
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Subscribed: chat json://127.0.0.1/••••" in page
    email, chat = Subscription.objects.filter(user=viewer).order_by("pk")
    assert email.kind_list == ["action_failed", "stream_stopped"] and email.account is None
    assert chat.destination == url and chat.account == account
    # the chat's address is never shown back, not even in the form
    assert TOKEN not in page and str(chat_receiver.port) not in page
    assert "E-mail to vera@example.org" in page


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"channel": "email"}, "Choose at least one event."),
        ({"kinds": ["action_failed"], "channel": "chat"}, "Enter the chat&#x27;s address."),
        (
            {"kinds": ["action_failed"], "channel": "chat", "destination": "plain words only"},
            "This is not a chat address the dashboard can send to.",
        ),
        (
            {"kinds": ["action_failed"], "channel": "chat", "destination": "file:///etc/passwd"},
            "This is not a chat address the dashboard can send to.",
        ),
        ({"kinds": ["nonsense"], "channel": "email"}, "Select a valid choice."),
    ],
)
def test_a_bad_subscription_is_refused_with_a_clear_message(as_viewer, data, error):
    response = as_viewer.post(reverse("notifications"), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Subscription.objects.exists()


def test_email_needs_an_address_on_the_account(client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("notifications"), {"kinds": ["action_failed"], "channel": "email"}
    )
    assert "Your account has no e-mail address" in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_test_button_queues_a_delivery_and_its_status_polls_until_sent(
    as_viewer, viewer, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(
        "meetings.views.notifications.enqueue_deliveries", lambda ids, **kw: queued.extend(ids)
    )
    sub = subscribe(viewer, [EventKind.ACTION_FAILED])
    with django_capture_on_commit_callbacks(execute=True):
        response = as_viewer.post(
            reverse("subscription-test", args=[sub.pk]), HTTP_HX_REQUEST="true"
        )
    d = Delivery.objects.get()
    assert queued == [d.pk] and d.kind == "test"
    page = response.content.decode()
    assert "Sending the test" in page and 'hx-trigger="every 1s"' in page
    status = reverse("delivery-status", args=[d.pk])
    assert as_viewer.get(status, HTTP_HX_REQUEST="true").status_code == 200
    Delivery.objects.filter(pk=d.pk).update(state=DeliveryState.SENT, sent_at=now())
    done = as_viewer.get(status, HTTP_HX_REQUEST="true")
    assert done.status_code == 286
    assert "Test message sent" in done.content.decode()


def test_no_one_touches_or_reads_another_persons_subscriptions(client, operator, viewer):
    theirs = subscribe(viewer, [EventKind.ACTION_FAILED])
    client.force_login(operator)
    for name in ("subscription-test", "subscription-delete", "subscription-toggle"):
        assert client.post(reverse(name, args=[theirs.pk])).status_code == 404
    Delivery.objects.create(
        user=viewer, subscription=theirs, kind="test", title="t", channel="email", event_id="x"
    )
    d = Delivery.objects.get()
    assert (
        client.get(reverse("delivery-status", args=[d.pk]), HTTP_HX_REQUEST="true").status_code
        == 404
    )
    assert "t" not in [r.title for r in client.get(reverse("notifications")).context["deliveries"]]
    assert Subscription.objects.filter(pk=theirs.pk, enabled=True).exists()


def test_pausing_and_unsubscribing(as_viewer, viewer, account):
    sub = subscribe(viewer, [EventKind.ACTION_FAILED])
    as_viewer.post(reverse("subscription-toggle", args=[sub.pk]))
    assert raise_failed(account) == 0
    as_viewer.post(reverse("subscription-toggle", args=[sub.pk]))
    assert raise_failed(account) == 1
    page = as_viewer.post(reverse("subscription-delete", args=[sub.pk]), follow=True)
    assert "Unsubscribed" in page.content.decode()
    assert not Subscription.objects.exists()
    # the history stays
    assert "End meeting failed" in page.content.decode()


def test_the_admin_shows_deliveries_read_only_and_no_chat_address(
    client, admin_user, viewer, account, chat_receiver
):
    subscribe(
        viewer, [EventKind.ACTION_FAILED], channel=Channel.CHAT, destination=chat_receiver.url()
    )
    raise_failed(account)
    client.force_login(admin_user)
    sub = Subscription.objects.get()
    d = Delivery.objects.get()
    for url in (
        reverse("admin:meetings_subscription_changelist"),
        reverse("admin:meetings_subscription_change", args=[sub.pk]),
        reverse("admin:meetings_delivery_changelist"),
        reverse("admin:meetings_delivery_change", args=[d.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert TOKEN not in response.content.decode()
    assert client.post(reverse("admin:meetings_delivery_delete", args=[d.pk])).status_code == 403


def test_deliveries_and_actions_go_to_their_own_queues_and_only_there():
    from zoomadmin.celery import app

    queues = app.amqp.queues
    # a queue bound with another's routing key would get a copy of each of its messages
    assert queues["celery"].routing_key == "celery"
    assert queues["notifications"].routing_key == "notifications"
    router = app.amqp.router
    assert router.route({}, "meetings.tasks.notifications.deliver")["queue"].name == (
        "notifications"
    )
    assert router.route({}, "meetings.tasks.actions.run_action")["queue"].name == "celery"
