"""`manage.py prune_actions [--older-than DAYS] [--dry-run]`: the audit trail's retention.

The only thing that deletes actions. It deletes finished actions (succeeded, failed, cancelled)
that finished more than DAYS ago (default ACTION_RETENTION_DAYS, 730), their attempts with them,
and the batches left empty. Queued and running actions are never touched. Run it from cron (or
not at all, to keep everything); `--dry-run` says what it would delete.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.timezone import now

from ...models import Action, Batch

CHUNK = 1000  # rows per transaction: a big first prune does not hold one huge lock


class Command(BaseCommand):
    help = "Delete finished actions (the audit trail) older than the retention period."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            metavar="DAYS",
            default=None,
            help=f"keep actions finished in the last DAYS days (default "
            f"ACTION_RETENTION_DAYS={settings.ACTION_RETENTION_DAYS})",
        )
        parser.add_argument("--dry-run", action="store_true", help="only count what would go")

    def handle(self, *args, older_than=None, dry_run=False, **options):
        days = settings.ACTION_RETENTION_DAYS if older_than is None else older_than
        if days < 1:
            raise CommandError("--older-than must be at least 1 day")
        cutoff = now() - timedelta(days=days)
        old = Action.objects.terminal().filter(finished_at__lt=cutoff)
        if dry_run:
            self.stdout.write(
                f"Would delete {old.count()} actions finished before {cutoff:%Y-%m-%d %H:%M} UTC"
            )
            return
        deleted = 0
        while True:
            with transaction.atomic():
                ids = list(old.order_by("pk").values_list("pk", flat=True)[:CHUNK])
                if not ids:
                    break
                deleted += Action.objects.filter(pk__in=ids).prune()
        empty = Batch.objects.filter(created__lt=cutoff, actions__isnull=True)
        batches, _ = empty.delete()
        self.stdout.write(
            f"Deleted {deleted} actions finished before {cutoff:%Y-%m-%d %H:%M} UTC"
            f" and {batches} empty batches"
        )
