"""`manage.py zoom_sync [--account NAME] [--user USERNAME]`: sync accounts' mirrors from a shell.

It goes through the action pipeline like the "Sync now" button (a `sync` action, source
"cli"), run here in the foreground, so a sync from a shell is audited like a click.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ...actions import execute, request_action
from ...models import Action, ActionKind, ActionSource, ActionState, ZoomAccount
from .zoomctl import system_user


class Command(BaseCommand):
    help = "Sync the mirror of meetings and webinars from Zoom (all connected accounts by default)."

    def add_arguments(self, parser):
        parser.add_argument("--account", help="the account's display name (default: all connected)")
        parser.add_argument("--user", help="the username the sync is recorded as")

    def handle(self, *args, account=None, user=None, **options):
        if account:
            accounts = list(ZoomAccount.objects.filter(name=account))
            if not accounts:
                names = ", ".join(ZoomAccount.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No Zoom account is named {account!r} (accounts: {names})")
        else:
            accounts = list(ZoomAccount.objects.filter(status=ZoomAccount.Status.CONNECTED))
            if not accounts:
                raise CommandError("No connected Zoom account to sync")
        by = None
        if user:
            by = get_user_model().objects.filter(username=user).first()
            if by is None:
                raise CommandError(f"No user is named {user!r}")

        failed = 0
        for zoom_account in accounts:
            action, created = request_action(
                account=zoom_account,
                kind=ActionKind.SYNC,
                source=ActionSource.COMMAND_LINE,
                target_type="account",
                topic=zoom_account.name,
                user=by,
                # The server's user who ran it, beside the user it is recorded as (as zoomctl).
                os_user=system_user(),
                enqueue=False,
            )
            if not created:
                self.stderr.write(
                    f"{zoom_account}: a sync is already {action.get_state_display().lower()} "
                    f"(action {action.pk})"
                )
                failed += 1
                continue
            self.stdout.write(f"{zoom_account}: syncing (action {action.pk})…")
            execute(action.pk)
            action = Action.objects.get(pk=action.pk)
            if action.state == ActionState.SUCCEEDED:
                self.stdout.write(f"{zoom_account}: {action.result_summary or 'done'}")
            else:
                failed += 1
                self.stderr.write(
                    f"{zoom_account}: {action.get_state_display().lower()}: "
                    f"{action.result_summary or 'no details'}"
                )
        if failed:
            raise CommandError(f"{failed} of {len(accounts)} syncs did not succeed")
