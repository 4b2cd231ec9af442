"""Trigram indexes for the meetings list's search box (PostgreSQL only).

The search is `topic ILIKE '%words%' OR host_email ILIKE '%words%'` (Django's icontains:
`UPPER(col::text) LIKE UPPER(...)`), which no B-tree index can answer: at 100,000 meetings its
capped count was a 77 ms sequential scan, and a search for a rare word walked every row. GIN
trigram indexes on exactly those expressions answer it in 1–15 ms.

pg_trgm ships with PostgreSQL, but creating an extension needs the right privilege: without it
the indexes are skipped with a warning and search still works, only slower. SQLite (the embedded
profile) has no such index type and needs none at its sizes.

The indexes are built CONCURRENTLY, outside a transaction (atomic = False): a plain build would
hold every write to the meetings table for as long as it takes (meetings/migration_operations.py).
"""

import logging

from django.db import migrations, transaction

log = logging.getLogger(__name__)

INDEXES = {
    "meeting_topic_trgm_idx": "UPPER(topic::text)",
    "meeting_host_email_trgm_idx": "UPPER(host_email::text)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as e:  # no privilege to create extensions: search stays correct, slower
        log.warning("pg_trgm unavailable (%s): meetings search runs without trigram indexes", e)
        return
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON meetings_meeting "
            f"USING gin ({expression} gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("meetings", "0006_actions_roles")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
