"""`manage.py rotate_encryption_key [--dry-run | --status]`: re-encrypt every stored secret under
the first key of FIELD_ENCRYPTION_KEY, or say which step of a rotation is safe now.

Rotation, in four steps each deployed everywhere before the next (meetings/keyring.py): accept
the new key for reading (`old,new`), encrypt with it (`new,old`), run this, drop the old key.
`--status` reads which keys the live web and worker processes hold and names the next safe step;
the re-encryption refuses while a live process cannot read the key it would use.

Secrets are re-encrypted as ciphertext (MultiFernet.rotate): they are never decrypted
into a variable that outlives one row, and rows already under the new key are left alone. A secret
no configured key can read is reported and left as it is; the command then exits with an error.
"""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import TextField, Value
from django.db.models.functions import Cast

from ...fields import encrypted_fields, fernet, primary_fernet


class Command(BaseCommand):
    help = "Re-encrypt stored secrets (tokens, client secrets, stream keys) under the newest key."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
        parser.add_argument(
            "--status",
            action="store_true",
            help="say which keys the running processes hold and which rotation step is safe now",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="re-encrypt even though a live process cannot read the key (it will fail to "
            "read those secrets until it gets the key)",
        )

    def handle(self, *args, dry_run=False, status=False, force=False, **options):
        from ...keyring import plan

        current_plan = plan()
        if status:
            for line in current_plan.lines():
                self.stdout.write(line)
            return
        if current_plan.blocked and not dry_run and not force:
            raise CommandError(
                f"{len(current_plan.blocked)} live process(es) cannot read the key this would "
                f"encrypt with ({current_plan.keys[0]}): {', '.join(current_plan.blocked)}. "
                "Re-encrypting now would make the secrets unreadable to them. Deploy the key to "
                "every process first (`--status` says which step is safe)."
            )
        current, rotating = primary_fernet(), fernet()
        totals = {"rotated": 0, "current": 0, "unreadable": 0}
        for model, fields in encrypted_fields():
            label = model._meta.label
            for field in fields:
                counts = self._rotate(model, field.name, current, rotating, dry_run)
                for key, value in counts.items():
                    totals[key] += value
                if any(counts.values()):
                    self.stdout.write(
                        f"{label}.{field.name}: {counts['rotated']} re-encrypted, "
                        f"{counts['current']} already current, {counts['unreadable']} unreadable"
                    )
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(
            self.style.SUCCESS(
                f"{totals['rotated']} secret(s) {verb}, {totals['current']} already under the "
                "newest key."
            )
        )
        if totals["unreadable"]:
            raise CommandError(
                f"{totals['unreadable']} secret(s) could not be decrypted with any configured key "
                "and were left as they are: add the key they were stored with to "
                "FIELD_ENCRYPTION_KEY (after the new one) and run this again."
            )

    def _rotate(self, model, name, current, rotating, dry_run):
        counts = {"rotated": 0, "current": 0, "unreadable": 0}
        # Cast to a plain text column: the ciphertext as stored, not decrypted by the field.
        rows = (
            model._default_manager.exclude(**{name: ""})
            .exclude(**{f"{name}__isnull": True})
            .annotate(_raw=Cast(name, output_field=TextField()))
            .values_list("pk", "_raw")
        )
        for pk, raw in rows.iterator(chunk_size=500):
            if not raw:
                continue
            token = raw.encode()
            try:
                current.decrypt(token)
            except InvalidToken:
                pass
            else:
                counts["current"] += 1
                continue
            try:
                rotated = rotating.rotate(token).decode()
            except InvalidToken:
                counts["unreadable"] += 1
                continue
            counts["rotated"] += 1
            if not dry_run:
                with transaction.atomic():
                    # A Value with a plain TextField is written as given (no second encryption);
                    # the raw filter skips a row whose secret changed meanwhile.
                    model._default_manager.filter(pk=pk).annotate(
                        _raw=Cast(name, output_field=TextField())
                    ).filter(_raw=raw).update(**{name: Value(rotated, output_field=TextField())})
        return counts
