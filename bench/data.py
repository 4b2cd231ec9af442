"""
Mirror data for the list benchmark and the load test: up to a million meetings written by
PostgreSQL itself (`INSERT ... SELECT generate_series`, seconds, where creating that many model
instances would take minutes of the benchmark's time), shaped like a real account's: about 10%
live, 2% deleted, a spread of start times from a month ago to three months ahead, recurring
meetings without a start time, 200 hosts, topics from a small vocabulary.
"""

from django.db import connection

TEAMS = ["Sales", "Support", "Engineering", "Finance", "People", "Marketing", "Legal", "Ops"]
THINGS = [
    "weekly sync",
    "all hands",
    "standup",
    "review",
    "planning",
    "town hall",
    "1:1",
    "training",
    "retro",
    "customer call",
    "board prep",
    "onboarding",
]

_INSERT = """
INSERT INTO meetings_meeting (
    account_id, zoom_id, uuid, host_id, host_email, topic, type, status, start_time, duration,
    timezone, join_url, last_synced_at, last_event_at, created, stream_url, stream_key, page_url,
    resolution, livestream_status
)
SELECT
    %(account)s,
    %(first_id)s + i::bigint * 7919,
    encode(decode(md5(i::text), 'hex'), 'base64'),
    'host' || lpad((i %% 200)::text, 19, '0'),
    'host' || (i %% 200) || '@bench.example',
    (%(teams)s::text[])[1 + (i * 7) %% 8] || ' ' || (%(things)s::text[])[1 + (i * 13) %% 12]
        || ' #' || i,
    CASE WHEN i %% 20 = 1 THEN 3 WHEN i %% 20 = 2 THEN 8 ELSE 2 END,
    CASE WHEN i %% 10 = 0 THEN 'started' WHEN i %% 50 = 3 THEN 'deleted' ELSE 'waiting' END,
    CASE WHEN i %% 20 = 1 THEN NULL
         ELSE now()
              + (((i::bigint * 7907) %% (120 * 86400)) - 30 * 86400) * interval '1 second'
         END,
    (ARRAY[15, 30, 45, 60, 90, 120])[1 + i %% 6],
    'UTC',
    'https://zoom.example/j/' || (%(first_id)s + i::bigint * 7919),
    now(),
    NULL,
    now(),
    '', '', '', '',
    CASE WHEN i %% 40 = 0 THEN 'live' ELSE 'stopped' END
FROM generate_series(1, %(count)s) AS i
"""


def seed_meetings(account, count):
    """COUNT mirrored meetings of ACCOUNT (PostgreSQL only), then VACUUM ANALYZE as autovacuum
    would."""
    if connection.vendor != "postgresql":
        raise RuntimeError("seed_meetings writes PostgreSQL SQL; run it in the service profile")
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            {
                "account": account.pk,
                "first_id": 81_000_000_000,
                "count": count,
                "teams": TEAMS,
                "things": THINGS,
            },
        )
        # VACUUM as well: autovacuum does both on a table this size in production, and without
        # the visibility map every capped count reads the table's pages, not just the index.
        cursor.execute("VACUUM ANALYZE meetings_meeting")
