"""Migrations apply backwards and forwards on the profile's database (SQLite embedded, PostgreSQL
in the service profile), here the search's: 0009 (PostgreSQL only, nothing to do on SQLite) and
0010."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_SEARCH = ("meetings", "0008_dashboard_meeting_topic_index")
TRIGRAM_INDEXES = ("meeting_topic_trgm_idx", "meeting_host_email_trgm_idx")
# The meetings table's indexes that migrations after BEFORE_SEARCH add: 0010's, 0021's (the
# type filter's) and 0030's (a host's address, PostgreSQL only; it replaced 0029's).
ADDED_SINCE = {"meeting_uuid_upper_idx", "meeting_type_status_idx", "meeting_type_start_idx"}
if connection.vendor == "postgresql":
    ADDED_SINCE |= {"meeting_host_email_covering_idx"}
# And those they remove: 0029 drops the plain index on host_email.
REMOVED_SINCE = {"meeting_host_idx"}


def meeting_indexes():
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, "meetings_meeting"))


def trigram_options():
    """Each trigram index's storage parameters (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)",
            [list(TRIGRAM_INDEXES)],
        )
        return dict(cursor.fetchall())


def migrate(targets):
    MigrationExecutor(connection).migrate(targets)


# Migrating rewrites the schema, which SQLite cannot do inside the test's transaction.
@pytest.mark.django_db(transaction=True)
def test_the_search_migrations_apply_backwards_and_forwards():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("meetings")
    indexes = meeting_indexes()
    assert "meeting_uuid_upper_idx" in indexes

    try:
        migrate([BEFORE_SEARCH])
        assert meeting_indexes() == (indexes - ADDED_SINCE) | REMOVED_SINCE
        if connection.vendor == "postgresql":
            assert trigram_options() == dict.fromkeys(TRIGRAM_INDEXES)
    finally:
        # Forwards whatever happened: the tests after this one need the whole schema.
        migrate(latest)
    assert meeting_indexes() == indexes
    if connection.vendor == "postgresql":
        expected = ["gin_pending_list_limit=256"]
        assert trigram_options() == dict.fromkeys(TRIGRAM_INDEXES, expected)
