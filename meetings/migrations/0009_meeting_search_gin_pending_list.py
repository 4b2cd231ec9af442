"""A small pending list for the meetings search's trigram indexes (PostgreSQL only).

A GIN index files new entries in an unsorted "pending list" (fastupdate) and merges them into the
index later: when the list outgrows gin_pending_list_limit (4 MB by default), or when VACUUM or
autoanalyze runs (a plain ANALYZE does not). Until then every search reads the whole list, and the
planner charges for reading it. With 100,000 meetings just written and analyzed but not yet
vacuumed (BENCHMARKS.md section 2: ~390 pending pages per index), it priced the trigram scan above
a sequential scan, so the capped count of a search for "sales" (12 % of the rows) read 80,000 rows
with ILIKE: 45 ms where the index answers in 9 ms. The mirror is in that state after a large sync
until autovacuum comes by, and the list fills again with sync and webhook updates between its runs.

256 kB keeps the list to ~32 pages: after each of 80 further batches of 100 meetings, the planner
chose the index every time (at 4 MB: a sequential scan 67 times in 80). Writes still batch their
merges: 100,000 meetings written in 7.8 s against 6.7 s at 4 MB (medians of 8 alternating runs on a
busy shared machine), where fastupdate off took 22 s. Merging what is pending now makes the first
searches after this migration fast. If migration 0007 could not create the indexes (no pg_trgm),
there is nothing to tune.
"""

from django.db import migrations

INDEXES = ("meeting_topic_trgm_idx", "meeting_host_email_trgm_idx")
PENDING_LIST_KB = 256


def shrink(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(
            f"ALTER INDEX IF EXISTS {name} SET (gin_pending_list_limit = {PENDING_LIST_KB})"
        )
        # to_regclass is NULL for a missing index, and the function returns NULL for it.
        schema_editor.execute(f"SELECT gin_clean_pending_list(to_regclass('{name}'))")


def restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"ALTER INDEX IF EXISTS {name} RESET (gin_pending_list_limit)")


class Migration(migrations.Migration):
    # Each statement commits at once: in one transaction, ALTER INDEX's lock was held through the
    # pending list's merge, and writes to the meetings table waited for it.
    atomic = False
    dependencies = [("meetings", "0008_dashboard_meeting_topic_index")]

    operations = [migrations.RunPython(shrink, restore, elidable=False)]
