"""`manage.py seed_demo`: the demo's three people, with fresh passwords printed once.

"admin" (superuser: everything, connections included), "operator" (the "Zoom operators" group:
sees and acts) and "viewer" (the "Zoom viewers" group: sees, no controls). Running it again
gives them new passwords. For demos and local development only: it refuses when DEBUG is off.

admin and operator are subscribed to notifications by e-mail (DEMO_SUBSCRIPTIONS), so the
Notifications page has something to show: the demo's e-mails go to the worker's log (DEBUG, no
EMAIL_HOST), and each is listed under "What was sent to you".
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ...models import Channel, Subscription
from ...notifications import EventKind
from ...roles import OPERATORS, VIEWERS, ensure_roles

DEMO_USERS = (
    ("admin", "Ada", "Admin", {"is_staff": True, "is_superuser": True}, ()),
    ("operator", "Oskar", "Operator", {}, (OPERATORS,)),
    ("viewer", "Vera", "Viewer", {}, (VIEWERS,)),
)
# Who hears of what, by e-mail (to <username>@demo.example): the admin of requests waiting for
# their approval and of connections to reconnect, the operator of failures and of streams that
# stopped on their own.
DEMO_SUBSCRIPTIONS = {
    "admin": (EventKind.APPROVAL_WAITING, EventKind.NEEDS_RECONNECT),
    "operator": (EventKind.ACTION_FAILED, EventKind.STREAM_STOPPED, EventKind.SCHEDULE_MISSED),
}


class Command(BaseCommand):
    help = "Create (or reset) the demo users admin, operator and viewer; print their passwords."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="run even with DEBUG off (never on a real deployment: it resets passwords)",
        )

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo resets the passwords of users called admin, operator and viewer; "
                "it only runs with DEBUG on (or --force)."
            )
        ensure_roles()
        User = get_user_model()
        created = []
        with transaction.atomic():
            for username, first, last, flags, groups in DEMO_USERS:
                password = secrets.token_urlsafe(12)
                user, _ = User.objects.get_or_create(username=username)
                user.first_name, user.last_name = first, last
                user.email = f"{username}@demo.example"
                user.is_active = True
                user.is_staff = flags.get("is_staff", False)
                user.is_superuser = flags.get("is_superuser", False)
                user.set_password(password)
                user.save()
                user.groups.set(Group.objects.filter(name__in=groups))
                self._subscribe(user)
                created.append((username, password))
        width = max(len(u) for u, _ in created)
        self.stdout.write("Demo users (passwords are new each run; copy them now):")
        for username, password in created:
            self.stdout.write(f"  {username.ljust(width)}  {password}")
        self.stdout.write(
            "Ending a webinar, recovering a meeting and bulk ends of more than 20 wait for a "
            "second person: sign in as admin in another browser to approve operator's request."
        )
        self.stdout.write(
            "admin and operator get notifications by e-mail (Notifications page); in the demo "
            "the e-mails are written to the worker's log."
        )

    def _subscribe(self, user):
        """USER's demo subscription (DEMO_SUBSCRIPTIONS), once: run again, it is left as is."""
        kinds = DEMO_SUBSCRIPTIONS.get(user.username)
        if kinds and not user.notification_subscriptions.exists():
            Subscription.objects.create(
                user=user, kinds=Subscription.encode_kinds(kinds), channel=Channel.EMAIL
            )
