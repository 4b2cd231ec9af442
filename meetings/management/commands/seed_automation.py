"""`manage.py seed_automation --account NAME`: the demo's scheduled and automatic actions.

On a synced connection: a stream preset, a scheduled stream stop (two minutes ahead, so the demo
shows it run and its action on the meeting's timeline, "Scheduled by admin for …"), a "when it
starts, stream with the preset" trigger on a meeting still to start, and the connection's
policies, off, whose page previews what they would do now. For demos only: refuses with DEBUG
off unless --force."""

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from django.utils.timezone import now

from ... import automation, policies
from ...models import (
    Meeting,
    MeetingStatus,
    Step,
    StreamPreset,
    Trigger,
    WebhookEvent,
    ZoomAccount,
)

SCHEDULE_AHEAD = timedelta(minutes=2)
# The demo announces its events just before: the worker applies them in the background, and the
# streams running are known only from them. How long to wait for that before going on without.
EVENTS_APPLIED_TIMEOUT_SECONDS = 60


class Command(BaseCommand):
    help = "Seed the demo's scheduled stream stop, trigger and policies on a synced connection."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="the connection's name")
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args, account, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_automation is for demos: it runs with DEBUG on (or --force).")
        connection = ZoomAccount.objects.filter(name=account).first()
        if connection is None:
            raise CommandError(f"No connection named {account!r}.")
        admin = get_user_model().objects.filter(username="admin").first()
        preset, _ = StreamPreset.objects.get_or_create(
            account=connection,
            name="Demo stage",
            defaults={
                "stream_url": "rtmp://live.sandbox.example/demo-stage",
                "stream_key": "sbx-demo-stage-key",
                "page_url": "https://watch.sandbox.example/demo-stage",
                "resolution": "720p",
                "created_by": admin,
            },
        )
        self._wait_for_events(connection)
        meetings = Meeting.objects.filter(account=connection)
        streaming = meetings.filter(status=MeetingStatus.STARTED, livestream_status="live").first()
        lines = []
        if streaming is not None:
            sched = automation.schedule(
                account=connection,
                target_type="meeting",
                target_id=streaming.zoom_id,
                topic=streaming.topic,
                steps=[Step.STOP_STREAM],
                run_at=now() + SCHEDULE_AHEAD,
                user=admin,
            )
            lines.append(
                f"  a stream stop at {sched.run_at:%H:%M} UTC: "
                f"{reverse('meeting', args=[streaming.pk])}"
            )
        upcoming = (
            meetings.filter(status=MeetingStatus.WAITING, type=2, start_time__gt=now())
            .order_by("start_time")
            .first()
        )
        if upcoming is not None:
            Trigger.objects.get_or_create(
                account=connection,
                target_type="meeting",
                target_id=upcoming.zoom_id,
                defaults={
                    "topic": upcoming.topic,
                    "preset": preset,
                    "display_name": "Demo stage",
                    "created_by": admin,
                },
            )
            lines.append(
                "  when it starts, stream with “Demo stage”: "
                f"{reverse('meeting', args=[upcoming.pk])}"
            )
        policies.policies_for(connection)
        lines.append(
            "  policies, off, with their preview: "
            f"{reverse('connection-policies', args=[connection.pk])}"
        )
        self.stdout.write("Scheduled and automatic actions:")
        for line in lines:
            self.stdout.write(line)

    def _wait_for_events(self, connection):
        """Until the worker has applied (or failed on) every event the connection received."""
        deadline = time.monotonic() + EVENTS_APPLIED_TIMEOUT_SECONDS
        pending = WebhookEvent.objects.filter(
            account=connection, processed_at__isnull=True, attempts=0, error=""
        )
        while pending.exists():
            if time.monotonic() > deadline:
                self.stderr.write(
                    f"{pending.count()} Zoom events not applied yet: "
                    "the schedule below may miss a stream that is running."
                )
                return
            time.sleep(0.2)
