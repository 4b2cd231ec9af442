"""An index for a host's address typed in the search box (PostgreSQL only).

The search box takes an address, or its beginning, as the host's: `UPPER(host_email) LIKE
'HOST17@%'`, a range of this B-tree (text_pattern_ops: LIKE's prefix is a range whatever the
database's collation). The trigram index could answer the address too, but every trigram of an
organisation's domain is in every row: at 1,000,000 meetings its lookup read ten posting lists
of a million entries each (51 ms) for one host's 5,000 meetings (BENCHMARKS.md section 2b).

The plain index on host_email (0001's meeting_host_idx) goes: nothing looks a meeting up by
its host's address alone, and the planner walked it for the search's capped count (an
index-only scan filtering every entry, expecting the host's meetings early on; they were at 44 %
of it: 155 ms for one host's 501st meeting, against 3 ms on this index).

Built and dropped CONCURRENTLY, outside a transaction (atomic = False), as every index on an
existing table here (meetings/migration_operations.py). SQLite needs neither at its sizes.
"""

from django.db import migrations

from meetings.migration_operations import RemoveIndexOnline

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

    operations = [
        migrations.RunPython(create, drop, elidable=False),
        RemoveIndexOnline(model_name="meeting", name="meeting_host_idx"),
    ]
