"""`manage.py zoomctl`: the dashboard's actions from a shell, audited like clicks.

    zoomctl end-meeting ID [ID ...]
    zoomctl recover-meeting ID
    zoomctl end-webinar ID
    zoomctl update-livestream ID --stream-url U --stream-key K --page-url P [--resolution 1080p]
    zoomctl start-livestream ID [--active-speaker-name | --no-active-speaker-name]
                                [--display-name NAME]
    zoomctl stop-livestream ID
    zoomctl update-webinar-livestream ID (--preset NAME | --stream-url U --stream-key K
                                          --page-url P [--resolution 1080p])
    zoomctl start-webinar-livestream ID [--active-speaker-name | --no-active-speaker-name]
                                        [--display-name NAME]
    zoomctl stop-webinar-livestream ID
    zoomctl past-meeting ID_OR_UUID

with, on any of them: --account NAME (needed when several accounts the user may see are
connected), --user USERNAME (who the action is recorded as; that user needs the action's
permission on that Zoom connection, globally or by a connection role: an account the user may not
see is not found, as on the dashboard), --wait (wait for the outcomes and print them). Each
request goes through the very same pipeline as a click (`request_action`, source "cli", then a
worker), so scripts are audited like clicks; the operating system user who ran the command is
recorded beside the --user it acted as.

Exit status: 0 when every action was queued (without --wait) or succeeded (with --wait); 1 when
one failed or was refused; 3 when --wait gave up waiting (--timeout, default 120 s). `--inline`
runs the actions in this process instead of a worker (no worker needed; implies --wait).
`--stream-key -` reads the key from standard input, which keeps it out of the process list and
the shell history. `--preset NAME` (update-livestream, update-webinar-livestream) applies the
account's stream preset of that name instead: its key never appears on the command line at all.
"""

import argparse
import getpass
import os
import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ... import access, approvals
from ...actions import execute, request_action
from ...models import Action, ActionKind, ActionSource, ActionState, StreamPreset, ZoomAccount
from ...models.actions import KIND_PERMISSIONS, TERMINAL_STATES
from ...presets import configure_params, presets_for

EXIT_FAILED = 1
EXIT_TIMEOUT = 3

COMMANDS = {
    "end-meeting": ActionKind.END_MEETING,
    "recover-meeting": ActionKind.RECOVER_MEETING,
    "end-webinar": ActionKind.END_WEBINAR,
    "update-livestream": ActionKind.UPDATE_LIVESTREAM,
    "start-livestream": ActionKind.START_LIVESTREAM,
    "stop-livestream": ActionKind.STOP_LIVESTREAM,
    "update-webinar-livestream": ActionKind.UPDATE_WEBINAR_LIVESTREAM,
    "start-webinar-livestream": ActionKind.START_WEBINAR_LIVESTREAM,
    "stop-webinar-livestream": ActionKind.STOP_WEBINAR_LIVESTREAM,
    "past-meeting": ActionKind.FETCH_PAST_MEETING,
}
CONFIGURE_KINDS = (ActionKind.UPDATE_LIVESTREAM, ActionKind.UPDATE_WEBINAR_LIVESTREAM)
START_KINDS = (ActionKind.START_LIVESTREAM, ActionKind.START_WEBINAR_LIVESTREAM)


def system_user():
    """Who ran this command on the server: the account of the process's user id (not $USER,
    which anyone can set), with the person sudo names when run through sudo (`sudo -u zoomadmin
    manage.py zoomctl ...` is the usual way in); the numeric id when the id has no name (a
    container's user)."""
    try:
        import pwd

        name = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    sudo_user = os.environ.get("SUDO_USER", "")
    if sudo_user and sudo_user != name:
        return f"{name} (sudo by {sudo_user})"
    return name


class Command(BaseCommand):
    help = "End meetings and webinars, control live streams, fetch past meetings: audited."

    def add_arguments(self, parser):
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--account", help="the Zoom account's display name")
        common.add_argument("--user", help="the username the actions are recorded as")
        common.add_argument("--wait", action="store_true", help="wait for and print outcomes")
        common.add_argument(
            "--timeout", type=float, default=120.0, help="seconds --wait waits (default 120)"
        )
        common.add_argument(
            "--inline", action="store_true", help="run here instead of on a worker (waits)"
        )

        sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        sub.add_parser("end-meeting", parents=[common], help="end live meetings").add_argument(
            "ids", nargs="+", metavar="ID"
        )
        for name, what in (
            ("recover-meeting", "recover a deleted meeting"),
            ("end-webinar", "end a live webinar"),
            ("stop-livestream", "stop a meeting's live stream"),
            ("stop-webinar-livestream", "stop a webinar's live stream"),
        ):
            sub.add_parser(name, parents=[common], help=what).add_argument(
                "ids", nargs=1, metavar="ID"
            )
        for name, what in (
            ("update-livestream", "configure a meeting's live stream"),
            ("update-webinar-livestream", "configure a webinar's live stream"),
        ):
            update = sub.add_parser(name, parents=[common], help=what)
            update.add_argument("ids", nargs=1, metavar="ID")
            update.add_argument("--preset", help="apply the account's stream preset of this name")
            update.add_argument("--stream-url")
            update.add_argument("--stream-key", help="the key, or - to read stdin")
            update.add_argument("--page-url")
            update.add_argument("--resolution", choices=["720p", "1080p"])
        for name, what in (
            ("start-livestream", "start a meeting's live stream"),
            ("start-webinar-livestream", "start a webinar's live stream"),
        ):
            start = sub.add_parser(name, parents=[common], help=what)
            start.add_argument("ids", nargs=1, metavar="ID")
            start.add_argument("--active-speaker-name", action=argparse.BooleanOptionalAction)
            start.add_argument("--display-name")
        sub.add_parser(
            "past-meeting", parents=[common], help="fetch an ended meeting's details"
        ).add_argument("ids", nargs=1, metavar="ID_OR_UUID")

    def handle(self, *args, command, ids, account=None, user=None, **options):
        kind = COMMANDS[command]
        by = self._user(user)
        zoom_account = self._account(account, by)
        permission = KIND_PERMISSIONS[kind]
        if not access.can_act(by, zoom_account, kind):
            raise CommandError(
                f"{by.get_username()} may not do that on {zoom_account.name!r} (needs the "
                f"{permission} permission, or an operator role on that connection)"
            )
        params = self._params(kind, options, zoom_account)
        os_user = system_user()

        actions, refused = [], 0
        for ident in ids:
            target = {"target_id": ident}
            if kind == ActionKind.FETCH_PAST_MEETING and not ident.isdigit():
                target = {"target_uuid": ident}
            try:
                action, created = request_action(
                    account=zoom_account,
                    kind=kind,
                    source=ActionSource.COMMAND_LINE,
                    params=params,
                    user=by,
                    os_user=os_user,
                    enqueue=not options["inline"],
                    **target,
                )
            except ValueError as e:
                self.stderr.write(f"{ident}: refused: {e}")
                refused += 1
                continue
            if action.is_awaiting:
                # zoomctl may ask; the second person approves in the dashboard, never here.
                self.stdout.write(
                    f"#{action.pk} {self._label(action)}: "
                    f"{'waits' if created else 'already waits'} for approval by another "
                    f"operator in the dashboard: {approvals.url_for(approvals.approval_of(action))}"
                )
                continue
            if created:
                self.stdout.write(f"#{action.pk} {self._label(action)}: queued")
            else:
                self.stdout.write(
                    f"#{action.pk} {self._label(action)}: already "
                    f"{action.get_state_display().lower()} (no second action made)"
                )
            actions.append((action, created))

        if options["inline"]:
            for action, created in actions:
                if created:
                    execute(action.pk)
        if options["wait"] or options["inline"]:
            self._wait([a.pk for a, _ in actions], options["timeout"], refused)
        elif refused:
            raise CommandError(f"{refused} of {len(ids)} refused", returncode=EXIT_FAILED)

    # --- arguments ---

    def _account(self, name, user):
        """The named account among those USER may see (the others are not named either)."""
        visible = access.restrict(ZoomAccount.objects.all(), user)
        if name:
            account = visible.filter(name=name).first()
            if account is None:
                names = ", ".join(visible.values_list("name", flat=True)) or "none"
                raise CommandError(f"No Zoom account is named {name!r} (accounts: {names})")
            return account
        connected = list(visible.filter(status=ZoomAccount.Status.CONNECTED)[:2])
        if len(connected) == 1:
            return connected[0]
        if not connected:
            raise CommandError("No connected Zoom account; give --account NAME")
        raise CommandError("Several Zoom accounts are connected; give --account NAME")

    def _user(self, username):
        if not username:
            raise CommandError(
                "--user USERNAME is required: every action is recorded with who asked for it"
            )
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user is named {username!r}")
        if not access.can_view_dashboard(user):
            raise CommandError(f"{username} may not use the dashboard (no role on any connection)")
        return user

    def _params(self, kind, options, account):
        if kind in CONFIGURE_KINDS:
            typed = [options.get(n) for n in ("stream_url", "stream_key", "page_url")]
            if options.get("preset"):
                if any(typed) or options.get("resolution"):
                    raise CommandError(
                        "--preset takes the stream's settings from the preset: give no "
                        "--stream-url, --stream-key, --page-url or --resolution with it"
                    )
                preset = StreamPreset.objects.filter(
                    account=account, name=options["preset"]
                ).first()
                if preset is None:
                    names = ", ".join(presets_for(account).values_list("name", flat=True))
                    raise CommandError(
                        f"{account.name} has no stream preset named {options['preset']!r} "
                        f"(presets: {names or 'none'})"
                    )
                return configure_params(preset)
            if not all(typed):
                raise CommandError(
                    "give --preset NAME, or --stream-url, --stream-key and --page-url"
                )
            key = options["stream_key"]
            if key == "-":
                key = sys.stdin.readline().rstrip("\r\n")
            return {
                "stream_url": options["stream_url"],
                "stream_key": key,
                "page_url": options["page_url"],
                "resolution": options.get("resolution") or "",
            }
        if kind in START_KINDS:
            return {
                "active_speaker_name": options.get("active_speaker_name"),
                "display_name": options.get("display_name"),
            }
        return None

    # --- waiting ---

    @staticmethod
    def _label(action):
        return f"{action.get_kind_display()} {action.target_label}"

    def _wait(self, ids, timeout, refused):
        deadline = time.monotonic() + timeout
        reported = set()
        failed = refused
        while True:
            for action in Action.objects.filter(pk__in=ids, state__in=TERMINAL_STATES).order_by(
                "pk"
            ):
                if action.pk in reported:
                    continue
                reported.add(action.pk)
                line = (
                    f"#{action.pk} {self._label(action)}: {action.get_state_display().lower()}"
                    f" — {action.result_summary or 'no details'}"
                )
                if action.state == ActionState.SUCCEEDED:
                    self.stdout.write(line)
                else:
                    failed += 1
                    self.stderr.write(line)
            if len(reported) == len(ids) or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        pending = len(ids) - len(reported)
        if pending:
            raise CommandError(
                f"{pending} action(s) not finished after {timeout:g} s (still queued or running; "
                "is a worker running?)",
                returncode=EXIT_TIMEOUT,
            )
        if failed:
            raise CommandError(
                f"{failed} of {len(ids) + refused} did not succeed", returncode=EXIT_FAILED
            )
