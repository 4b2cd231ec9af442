"""0029's index for a host's address, again, holding what a search of it reads (PostgreSQL only).

A host's address searched in the list is read first from this index, every one of the host's
meetings, and sorted in the list's order (meetings/views/pagination.py: the walk of the live
part finds none when the host has nothing live). With only the address in the index, each of
those meetings was a read of the table: 5,000 of them 8 ms of a page's 15 ms in SQL at
1,000,000 meetings (BENCHMARKS.md section 2b). With the columns that read and its order need
(status, start time, id, the connection) beside the address, it is an index-only scan: 2 ms.

(`host_email` itself is there too: PostgreSQL considers an index-only scan of an expression's
index only when the expression's columns are in the index, https://www.postgresql.org/docs/
current/indexes-index-only-scans.html.)

Built before 0029's index is dropped, both CONCURRENTLY, outside a transaction (atomic = False):
the search has an index throughout and no write waits. SQLite needs neither at its sizes.
"""

from django.db import migrations

NAME = "meeting_host_email_covering_idx"
OLD = "meeting_host_email_prefix_idx"


def _postgresql(schema_editor):
    return schema_editor.connection.vendor == "postgresql"


def create_covering(apps, schema_editor):
    if _postgresql(schema_editor):
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON meetings_meeting "
            "(UPPER(host_email::text) text_pattern_ops) "
            "INCLUDE (host_email, status, start_time, id, account_id)"
        )


def drop_covering(apps, schema_editor):
    if _postgresql(schema_editor):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")


def create_old(apps, schema_editor):
    if _postgresql(schema_editor):
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {OLD} ON meetings_meeting "
            "(UPPER(host_email::text) text_pattern_ops)"
        )


def drop_old(apps, schema_editor):
    if _postgresql(schema_editor):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD}")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("meetings", "0029_meeting_host_email_prefix_index")]

    operations = [
        migrations.RunPython(create_covering, drop_covering, elidable=False),
        migrations.RunPython(drop_old, create_old, elidable=False),
    ]
