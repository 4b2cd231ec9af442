"""The Zoom world a fault scenario starts from: live meetings and webinars at the sandbox, and
the dashboard's mirror saying the same."""

from meetings.actions import request_action
from meetings.models import Meeting, MeetingStatus, Webinar


def live_meetings(zoom_sandbox, account, host, count, *, topic="Town hall"):
    """COUNT meetings live at Zoom and in the mirror; returns the sandbox's meeting dicts."""
    live = [
        zoom_sandbox.state.add_meeting(host["id"], topic=f"{topic} {i}", status="started")
        for i in range(count)
    ]
    Meeting.objects.bulk_create(
        Meeting(
            account=account,
            zoom_id=m["id"],
            topic=m["topic"],
            host_email=host["email"],
            status=MeetingStatus.STARTED,
        )
        for m in live
    )
    return live


def live_webinars(zoom_sandbox, account, host, count):
    live = [
        zoom_sandbox.state.add_webinar(host["id"], topic=f"Webinar {i}", status="started")
        for i in range(count)
    ]
    Webinar.objects.bulk_create(
        Webinar(
            account=account,
            zoom_id=w["id"],
            topic=w["topic"],
            host_email=host["email"],
            status=MeetingStatus.STARTED,
        )
        for w in live
    )
    return live


def ask(account, kind, **kwargs):
    """Request one action as the command line would; returns its id."""
    kwargs.setdefault("source", "cli")
    action, created = request_action(account=account, kind=kind, **kwargs)
    assert created, f"{kind} {kwargs} was already requested"
    return action.pk
