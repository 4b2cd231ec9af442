"""Migrations keep the dashboard writable: on PostgreSQL every index on a table that holds data
is built CONCURRENTLY, so syncs, webhooks and actions go on writing meetings while an upgrade
migrates a large mirror (issue 13). Applied here to a database of 100,000 meetings while a writer
inserts, watching the writer's backend for lock waits."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from meetings.migration_operations import AddIndexOnline

ROOT = Path(__file__).resolve().parent.parent
BEFORE_INDEXES = "0006_actions_roles"  # the last migration before the meetings table's indexes
MEETINGS = 100_000


def test_every_index_added_after_the_first_migration_is_built_online():
    """A guard for the migrations to come: an index on an existing table is AddIndexOnline (a
    migration with atomic = False), never a plain AddIndex that holds the table's writes."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    offending = []
    for (app, name), migration in loader.disk_migrations.items():
        if app != "meetings" or name == "0001_initial":
            continue
        for operation in migration.operations:
            if type(operation).__name__ == "AddIndex":
                if name == "0002_mirror_lock_and_webhook_attempts":
                    continue  # the webhook table was new and empty in that same release
                offending.append(f"{name}: {operation.describe()}")
            if isinstance(operation, AddIndexOnline) and migration.atomic:
                offending.append(f"{name}: AddIndexOnline in an atomic migration")
    assert offending == []


def _filler(data_type):
    return {
        "bigint": "0",
        "integer": "0",
        "smallint": "0",
        "boolean": "false",
        "jsonb": "'{}'",
        "timestamp with time zone": "now()",
        "date": "now()",
        "double precision": "0",
    }.get(data_type, "''")


def _required_columns(cursor, table):
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL "
        "AND is_identity = 'NO' ORDER BY ordinal_position",
        [table],
    )
    return cursor.fetchall()


def _insert_sql(cursor, table, values):
    """INSERT ... SELECT of one row per `n` of a series: VALUES for the named columns, a neutral
    value for every other required one (the schema as of the migration reached)."""
    columns = _required_columns(cursor, table)
    names = [c for c, _ in columns]
    exprs = [values.get(c, _filler(t)) for c, t in columns]
    for name, expr in values.items():
        if name not in names:
            names.append(name)
            exprs.append(expr)
    return f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(exprs)}"


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="CREATE INDEX CONCURRENTLY is PostgreSQL's; SQLite (one process) has one writer anyway",
)
def test_migrating_100000_meetings_never_makes_a_writer_wait_for_an_index_build(tmp_path):
    import psycopg

    base = settings.DATABASES["default"]
    params = {
        "host": base["HOST"] or "127.0.0.1",
        "port": base["PORT"] or 5432,
        "user": base["USER"],
        "password": base["PASSWORD"] or None,
        "autocommit": True,
    }
    name = f"zoomadmin_online_migrations_{os.getpid()}"
    with psycopg.connect(dbname="postgres", **params) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgres://{params['user']}@{params['host']}:{params['port']}/{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(DATABASE_URL=url, DEBUG="true", ZOOMADMIN_VAR_DIR=str(tmp_path))

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )

    try:
        # given the schema before the meetings table's indexes, holding 100,000 meetings
        manage("migrate", "meetings", BEFORE_INDEXES, "--verbosity=0")
        with psycopg.connect(dbname=name, **params) as db:
            cursor = db.cursor()
            cursor.execute(
                _insert_sql(cursor, "meetings_zoomaccount", {"name": "'Big'", "kind": "'oauth'"})
                + " RETURNING id"
            )
            account = cursor.fetchone()[0]
            meeting = {
                "account_id": str(account),
                "zoom_id": "80000000000 + n",
                "topic": "'Weekly sync ' || n",
                "host_email": "'host' || mod(n, 500) || '@example.com'",
                "uuid": "md5(n::text)",
            }
            cursor.execute(
                _insert_sql(cursor, "meetings_meeting", meeting)
                + f" FROM generate_series(1, {MEETINGS}) AS n"
            )
            cursor.execute("ANALYZE meetings_meeting")
            writer_sql = (
                _insert_sql(cursor, "meetings_meeting", meeting).replace("SELECT", "SELECT", 1)
                + " FROM (SELECT %s::bigint AS n) AS one"
            )

        # and a writer inserting meetings all along, its backend watched for lock waits
        stop = threading.Event()
        writes, lock_waits, slowest = [], [], [0.0]
        writer_pid = []

        def write():
            with psycopg.connect(dbname=name, **params) as db:
                writer_pid.append(db.info.backend_pid)
                n = MEETINGS
                while not stop.is_set():
                    n += 1
                    started = time.monotonic()
                    db.execute(writer_sql, [n])
                    took = time.monotonic() - started
                    slowest[0] = max(slowest[0], took)
                    writes.append(started)
                    time.sleep(0.01)

        def watch():
            with psycopg.connect(dbname=name, **params) as db:
                while not writer_pid and not stop.is_set():
                    time.sleep(0.01)
                while not stop.is_set():
                    row = db.execute(
                        "SELECT a.wait_event_type, b.query FROM pg_stat_activity a "
                        "LEFT JOIN pg_stat_activity b ON b.pid = ANY(pg_blocking_pids(a.pid)) "
                        "WHERE a.pid = %s",
                        [writer_pid[0]],
                    ).fetchone()
                    if row and row[0] == "Lock":
                        lock_waits.append((time.monotonic(), row[1]))
                    time.sleep(0.005)

        threads = [threading.Thread(target=write), threading.Thread(target=watch)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            # when the upgrade migrates to the latest schema
            started = time.monotonic()
            manage("migrate", "--verbosity=0")
            migrating = time.monotonic() - started
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)

        # then the writer went on writing throughout, and never waited for a lock
        during = [t for t in writes if started <= t <= started + migrating]
        assert migrating > 1.0, "the index builds must take long enough to be seen"
        assert len(during) >= migrating * 20, (len(during), migrating)
        # A column added in a short transaction makes a write wait for milliseconds while it
        # holds its lock (seen: 10-30 ms); an index built in place held writes for the whole
        # build (seconds here). So: no wait behind an index build, and none longer than 0.25 s.
        assert not [q for _, q in lock_waits if "CREATE INDEX" in (q or "").upper()], lock_waits
        # (a storage parameter set on an index, ALTER INDEX ... SET, takes a moment's lock)
        episodes, last = [], None
        for at, _ in lock_waits:
            if last is None or at - last > 0.05:
                episodes.append([at, at])
            episodes[-1][1] = last = at
        assert max((end - start for start, end in episodes), default=0) < 0.25, episodes
        assert slowest[0] < 1.0, slowest[0]
        with psycopg.connect(dbname=name, **params) as db:
            indexes = {
                r[0]
                for r in db.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'meetings_meeting'"
                )
            }
            invalid = db.execute(
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE NOT i.indisvalid AND c.relname LIKE 'meeting%%'"
            ).fetchone()[0]
        assert {"meeting_topic_idx", "meeting_uuid_upper_idx", "meeting_topic_trgm_idx"} <= indexes
        assert invalid == 0
    finally:
        with psycopg.connect(dbname="postgres", **params) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
