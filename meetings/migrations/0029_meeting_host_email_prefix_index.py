"""An index for a host's address typed in the search box (PostgreSQL only).

The search box takes an address, or its beginning, as the host's: `UPPER(host_email) LIKE
'HOST17@%'`, a range of this B-tree (text_pattern_ops: LIKE's prefix is a range whatever the
database's collation). The trigram index could answer the address too, but every trigram of an
organisation's domain is in every row: at 1,000,000 meetings its lookup read ten posting lists
of a million entries each (51 ms) for one host's 5,000 meetings (BENCHMARKS.md section 2b).

Built CONCURRENTLY, outside a transaction (atomic = False), as every index on an existing
table here (meetings/migration_operations.py). SQLite needs none at its sizes.
"""

from django.db import migrations

NAME = "meeting_host_email_prefix_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON meetings_meeting "
        "(UPPER(host_email::text) text_pattern_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("meetings", "0021_meeting_type_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
