"""Mirror rows for the dashboard's view tests, made with the ORM (the sync is tested elsewhere)."""

import itertools
from datetime import timedelta

from django.utils.timezone import now

_ids = itertools.count(85_000_000_001)


def make_account(name="Acme Zoom", **extra):
    from meetings.models import ZoomAccount

    fields = {
        "kind": ZoomAccount.Kind.SERVER_TO_SERVER,
        "zoom_account_id": f"acct-{name.lower().replace(' ', '-')}",
        "client_id": "client-id",
        "client_secret": "client-secret-value",
        "scopes": "meeting:read:admin meeting:write:admin webinar:read:admin "
        "webinar:write:admin user:read:admin",
    }
    fields.update(extra)
    return ZoomAccount.objects.create(name=name, **fields)


def make_meeting(account, **extra):
    from meetings.models import Meeting

    fields = {
        "zoom_id": next(_ids),
        "topic": "Weekly all-hands",
        "host_id": "host-1",
        "host_email": "host@example.com",
        "status": "waiting",
        "start_time": now() + timedelta(hours=1),
        "duration": 60,
        "timezone": "UTC",
    }
    fields.update(extra)
    return Meeting.objects.create(account=account, **fields)


def make_webinar(account, **extra):
    from meetings.models import Webinar

    fields = {
        "zoom_id": next(_ids),
        "topic": "Quarterly results webinar",
        "host_email": "cfo@example.com",
        "type": 5,
        "status": "waiting",
        "start_time": now() + timedelta(hours=2),
    }
    fields.update(extra)
    return Webinar.objects.create(account=account, **fields)


def make_past(account, meeting, **extra):
    from meetings.models import PastMeeting

    start = now() - timedelta(days=1)
    fields = {
        "uuid": f"uuid-{next(_ids)}==",
        "zoom_id": meeting.zoom_id,
        "topic": meeting.topic,
        "host_id": meeting.host_id,
        "user_name": "Host Person",
        "user_email": meeting.host_email,
        "start_time": start,
        "end_time": start + timedelta(minutes=45),
        "duration": 45,
        "total_minutes": 300,
        "participants_count": 12,
        "type": 2,
        "source": "Zoom",
    }
    fields.update(extra)
    return PastMeeting.objects.create(account=account, meeting=meeting, **fields)


def make_action(account, kind="end_meeting", *, target=None, state="queued", **extra):
    """An Action row in any state (terminal rows are created as such: they never change)."""
    from meetings.models import Action

    fields = {
        "kind": kind,
        "source": "dashboard",
        "state": state,
        "target_type": "account"
        if kind == "sync"
        else "webinar"
        if kind == "end_webinar"
        else "meeting",
        "target_id": None if kind == "sync" else target.zoom_id if target is not None else None,
        "topic": target.topic if target is not None else "",
    }
    if state in ("succeeded", "failed", "cancelled"):
        fields["finished_at"] = now()
    fields.update(extra)
    return Action.objects.create(account=account, **fields)


def deliver_event(account, target, event, **obj):
    """A Zoom event about `target` (a meeting or webinar) as the receiver stores it and the
    worker applies it; fails the test unless it was applied."""
    import time

    from meetings import webhooks

    envelope = {
        "event": event,
        "event_ts": int(time.time() * 1000),
        "payload": {
            "account_id": account.zoom_account_id,
            "object": {"id": str(target.zoom_id), "uuid": "inst-1==", **obj},
        },
    }
    stored, created = webhooks.store_event(envelope)
    assert created
    assert webhooks.process_event(stored.pk)
    stored.refresh_from_db()
    assert stored.error == ""
    return stored
