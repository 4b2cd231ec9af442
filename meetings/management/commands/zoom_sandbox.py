"""`manage.py zoom_sandbox --port 8100 [--seed N] [--latency-ms 50] [--plan pro]
[--webhook-url URL] [--meetings 200] [--contract]`: run the Zoom sandbox until Ctrl-C.

Prints its URLs and the sandbox's public demo credentials (they only open this sandbox). The
dashboard talks to it when ZOOM_API_BASE_URL / ZOOM_OAUTH_BASE_URL point here; other processes
drive it through the control API (GET /_sandbox/ lists it).
"""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...zoom import sandbox as sbx
from ...zoom.sandbox.contract import SpecMissing


class Command(BaseCommand):
    help = "Run the Zoom sandbox (a stand-in for Zoom's API, OAuth and webhooks) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8100, help="port (0: any free port)")
        parser.add_argument("--seed", type=int, default=None, help="seed deterministic data")
        parser.add_argument("--latency-ms", type=float, default=0.0, help="delay per request")
        parser.add_argument("--plan", choices=sorted(sbx.RATE_LIMITS), default="pro")
        parser.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime")
        parser.add_argument("--webhook-url", default="", help="where to POST Zoom events")
        parser.add_argument(
            "--webhook-secret",
            default="",
            help="secret token to sign events with (default: ZOOM_WEBHOOK_SECRET_TOKEN)",
        )
        parser.add_argument("--users", type=int, default=5, help="seeded users")
        parser.add_argument("--meetings", type=int, default=200, help="seeded meetings")
        parser.add_argument("--webinars", type=int, default=20, help="seeded webinars")
        parser.add_argument(
            "--contract",
            action="store_true",
            help="validate every /v2 request and answer against Zoom's OpenAPI spec",
        )

    def handle(self, *args, **options):
        if options["latency_ms"] < 0 or options["token_ttl"] < 1:
            raise CommandError("--latency-ms must be ≥ 0 and --token-ttl ≥ 1")
        for name in ("users", "meetings", "webinars"):
            if options[name] < 0:
                raise CommandError(f"--{name} must be ≥ 0")
        secret = options["webhook_secret"] or settings.ZOOM_WEBHOOK_SECRET_TOKEN or None
        try:
            sandbox = sbx.Sandbox(
                seed=None,
                latency_ms=options["latency_ms"],
                plan=options["plan"],
                token_ttl=options["token_ttl"],
                webhook_url=options["webhook_url"] or None,
                webhook_secret=secret,
                contract=options["contract"],
                spec_path=settings.ZOOM_OPENAPI_SPEC if options["contract"] else None,
                # A Free account's daily caps: the figures the dashboard budgets with.
                daily_limits={
                    "free": {
                        label: getattr(settings, f"ZOOM_DAILY_LIMIT_{label.upper()}")
                        for label in ("light", "medium", "heavy")
                    }
                },
            )
        except SpecMissing as exc:
            raise CommandError(str(exc)) from None
        if options["seed"] is not None:
            sandbox.state.reset(seed=options["seed"])
            sbx.seed_world(
                sandbox.state,
                seed=options["seed"],
                users=options["users"],
                meetings=options["meetings"],
                webinars=options["webinars"],
            )
        try:
            sandbox.start(options["host"], options["port"])
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from None

        summary = sandbox.state.summary()
        write = self.stdout.write
        write(self.style.SUCCESS(f"Zoom sandbox listening on {sandbox.url}"))
        write(f"  ZOOM_API_BASE_URL={sandbox.api_url}")
        write(f"  ZOOM_OAUTH_BASE_URL={sandbox.oauth_url}")
        write(f"  account id:           {sbx.DEFAULT_ACCOUNT_ID}  (plan {options['plan']})")
        # The apps' secrets are public (they open nothing but this sandbox), but a client secret
        # in a log is what the suite's secret scan forbids (tests/fixtures/secret_scan.py), and
        # this output is the demo's sandbox.log: say where they are, not what they are.
        write(
            f"  OAuth app:            {sbx.DEFAULT_OAUTH_CLIENT_ID} "
            "(secret: meetings.zoom.sandbox.DEFAULT_OAUTH_CLIENT_SECRET)"
        )
        write(
            f"  Server-to-Server app: {sbx.DEFAULT_S2S_CLIENT_ID} "
            "(secret: meetings.zoom.sandbox.DEFAULT_S2S_CLIENT_SECRET)"
        )
        write("  webhook secret token: (ZOOM_WEBHOOK_SECRET_TOKEN or the sandbox default)")
        write(
            f"  data: {summary['users']} users, {summary['meetings']} meetings "
            f"({summary['meetings_by_status'].get('started', 0)} live), "
            f"{summary['webinars']} webinars, {summary['past_instances']} past instances"
        )
        if options["webhook_url"]:
            write(f"  webhooks → {options['webhook_url']}")
        write(f"  control API: {sandbox.url}/_sandbox/   Ctrl-C stops it.")

        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            sandbox.stop()
            write("Zoom sandbox stopped.")
