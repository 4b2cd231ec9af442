"""`manage.py seed_demo`: the demo's three people, with fresh passwords printed once.

"admin" (superuser: everything, connections included), "operator" (the "Zoom operators" group:
sees and acts) and "viewer" (the "Zoom viewers" group: sees, no controls). Running it again
gives them new passwords. For demos and local development only: it refuses when DEBUG is off.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ...roles import OPERATORS, VIEWERS, ensure_roles

DEMO_USERS = (
    ("admin", "Ada", "Admin", {"is_staff": True, "is_superuser": True}, ()),
    ("operator", "Oskar", "Operator", {}, (OPERATORS,)),
    ("viewer", "Vera", "Viewer", {}, (VIEWERS,)),
)


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
                user.is_active = True
                user.is_staff = flags.get("is_staff", False)
                user.is_superuser = flags.get("is_superuser", False)
                user.set_password(password)
                user.save()
                user.groups.set(Group.objects.filter(name__in=groups))
                created.append((username, password))
        width = max(len(u) for u, _ in created)
        self.stdout.write("Demo users (passwords are new each run; copy them now):")
        for username, password in created:
            self.stdout.write(f"  {username.ljust(width)}  {password}")
        self.stdout.write(
            "Ending a webinar, recovering a meeting and bulk ends of more than 20 wait for a "
            "second person: sign in as admin in another browser to approve operator's request."
        )
