"""`manage.py zoom_connect --server-to-server [--name N] [--account-id A] [--client-id C]
[--client-secret S] [--webhook-secret-token T] [--plan pro]`: create or update a
Server-to-Server connection.

Each value defaults to its setting (ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET, which
may also come from *_FILE): prefer those to --client-secret, which other users of the machine can
read in the process list. The app's webhook secret token comes from --webhook-secret-token, else
ZOOM_WEBHOOK_SECRET_TOKEN or ZOOM_WEBHOOK_SECRET_TOKEN_FILE in this command's environment; with
none, an existing connection keeps its token and a new one uses the web server's default.
With DEBUG on, nothing configured and the Zoom URLs on this machine, the sandbox's default app
is used (`make demo`). The credentials are checked with Zoom (a token is
fetched) before anything is stored; a refused secret changes nothing.
"""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ...models import Plan, ZoomAccount
from ...zoom import oauth
from ...zoom.errors import ZoomError


class Command(BaseCommand):
    help = "Connect (or update) a Zoom Server-to-Server OAuth app as a Zoom account."

    def add_arguments(self, parser):
        parser.add_argument(
            "--server-to-server",
            action="store_true",
            required=True,
            help="connect a Server-to-Server OAuth app (OAuth apps connect from the dashboard)",
        )
        parser.add_argument("--name", default="", help="display name (default: from Zoom)")
        parser.add_argument("--account-id", default="", help="Zoom account id (ZOOM_ACCOUNT_ID)")
        parser.add_argument("--client-id", default="", help="the app's client id (ZOOM_CLIENT_ID)")
        parser.add_argument(
            "--client-secret",
            default="",
            help="the app's client secret (better: ZOOM_CLIENT_SECRET or ZOOM_CLIENT_SECRET_FILE)",
        )
        parser.add_argument(
            "--webhook-secret-token",
            default="",
            help="the app's webhook secret token (better: ZOOM_WEBHOOK_SECRET_TOKEN or "
            "ZOOM_WEBHOOK_SECRET_TOKEN_FILE)",
        )
        parser.add_argument(
            "--plan",
            choices=Plan.values,
            default="",
            help="the account's Zoom plan, which sets its rate limits (default: pro, or unchanged)",
        )

    def handle(
        self,
        *args,
        name,
        account_id,
        client_id,
        client_secret,
        plan,
        webhook_secret_token="",
        **options,
    ):
        webhook_secret_token = webhook_secret_token or _webhook_secret_from_environment()
        default_account, default_client, default_secret = oauth.server_to_server_defaults()
        account_id = account_id or default_account
        client_id = client_id or default_client
        client_secret = client_secret or default_secret
        missing = [
            label
            for label, value in (
                ("--account-id / ZOOM_ACCOUNT_ID", account_id),
                ("--client-id / ZOOM_CLIENT_ID", client_id),
                ("--client-secret / ZOOM_CLIENT_SECRET", client_secret),
            )
            if not value
        ]
        if missing:
            raise CommandError("Missing " + ", ".join(missing))
        existing = ZoomAccount.objects.filter(name=name).first() if name else None
        if existing is not None and existing.is_oauth:
            raise CommandError(
                f"{name!r} is an OAuth connection; choose another --name for the "
                "Server-to-Server app"
            )
        try:
            account, created = oauth.connect_server_to_server(
                zoom_account_id=account_id,
                client_id=client_id,
                client_secret=client_secret,
                name=name,
                plan=plan,
                account=existing,
                webhook_secret_token=webhook_secret_token,
            )
        except oauth.OAuthRefused as e:
            raise CommandError(f"{e.describe()}. Nothing was stored.") from None
        except ZoomError as e:
            raise CommandError(
                f"Zoom could not be asked: {e.describe()}. Nothing was stored."
            ) from None
        missing_scopes = account.missing_scopes
        self.stdout.write(
            self.style.SUCCESS(
                f"{'Connected' if created else 'Updated'} “{account.name}” (Server-to-Server, "
                f"Zoom account {account.zoom_account_id}, plan {account.get_plan_display()}): "
                f"token valid until {account.token_expires_at:%Y-%m-%d %H:%M:%S %Z}."
            )
        )
        self.stdout.write(
            "Webhook secret token: "
            + (
                "this connection's own"
                if account.webhook_secret_configured
                else "none of its own (the web server's ZOOM_WEBHOOK_SECRET_TOKEN is used)"
            )
        )
        for need in missing_scopes:
            self.stdout.write(
                self.style.WARNING(
                    f"The app's token lacks the scope to {need.what}: add "
                    f"{need.granular[0]} (granular) or {need.classic[0]} (classic)"
                )
            )


def _webhook_secret_from_environment():
    """ZOOM_WEBHOOK_SECRET_TOKEN from this command's own environment (or the file
    ZOOM_WEBHOOK_SECRET_TOKEN_FILE names), not the settings' development default."""
    file_name = os.environ.get("ZOOM_WEBHOOK_SECRET_TOKEN_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as e:
            raise CommandError(
                f"ZOOM_WEBHOOK_SECRET_TOKEN_FILE: cannot read {file_name}: {e.strerror}"
            ) from None
    return os.environ.get("ZOOM_WEBHOOK_SECRET_TOKEN", "").strip()
