"""`manage.py release` (docs/deploy.md): checks, migrate, collectstatic, roles; and it refuses,
changing nothing, a database it cannot reach or one that is half-migrated."""

import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.test_security import production_env
from tests.test_settings import ROOT


def release(tmp_path, **extra):
    result = subprocess.run(
        [sys.executable, "manage.py", "release"],
        cwd=ROOT,
        env=production_env(tmp_path, STATIC_ROOT=str(tmp_path / "static"), **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )
    return result.returncode, result.stdout + result.stderr


def history(database):
    with sqlite3.connect(database) as db:
        return set(db.execute("SELECT app, name FROM django_migrations"))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A state directory whose SQLite database one release made: (directory, its output)."""
    var_dir = tmp_path_factory.mktemp("released")
    code, output = release(var_dir)
    assert code == 0, output
    return var_dir, output


@pytest.fixture
def database(released, tmp_path):
    """A copy of the released database, for a test to damage: its path."""
    shutil.copy(released[0] / "zoomadmin.sqlite3", tmp_path / "zoomadmin.sqlite3")
    return tmp_path / "zoomadmin.sqlite3"


def test_a_release_migrates_collects_the_static_files_and_creates_the_roles(released):
    var_dir, output = released

    assert "System check identified no issues" in output
    name, _ = latest_schema_migration()
    assert ("meetings", name) in history(var_dir / "zoomadmin.sqlite3")
    manifest = (var_dir / "static" / "staticfiles.json").read_text()
    assert '"meetings/app.css": "meetings/app.' in manifest
    assert list((var_dir / "static" / "meetings").glob("app.*.css.gz"))
    with sqlite3.connect(var_dir / "zoomadmin.sqlite3") as db:
        groups = {name for (name,) in db.execute("SELECT name FROM auth_group")}
    assert groups == {"Zoom viewers", "Zoom operators", "Zoom admins"}
    assert output.rstrip().endswith("Released: start the new web and worker processes.")


def test_a_second_release_of_the_same_version_changes_nothing(database):
    before = history(database)

    code, output = release(database.parent)

    assert code == 0, output
    assert history(database) == before
    assert "No migrations to apply." in output


def test_a_release_refuses_a_database_it_cannot_reach(tmp_path):
    started = time.monotonic()

    code, output = release(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:1/h4")

    assert code != 0
    assert "The database cannot be reached (127.0.0.1:1/h4)" in output
    assert "Nothing was changed." in output
    assert "Traceback" not in output
    assert time.monotonic() - started < 60


def test_a_release_refuses_a_database_a_newer_release_migrated(database):
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('meetings', '0099_from_a_newer_release', '2026-12-07 00:00:00')"
        )
    before = history(database)

    code, output = release(database.parent)

    assert code != 0
    assert "migrated by a newer release" in output
    assert "meetings.0099_from_a_newer_release" in output
    assert history(database) == before


def test_a_release_refuses_a_history_with_a_migration_missing_under_a_later_one(database):
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM django_migrations WHERE app = 'meetings' AND name LIKE '0005_%'")
    before = history(database)

    code, output = release(database.parent)

    assert code != 0
    assert "migration history is inconsistent" in output
    assert history(database) == before


def latest_schema_migration():
    """The newest migration of the app that creates a table, column or index, and those after it
    (whatever the newest migrations are, the test un-records one that left something behind)."""
    from django.db.migrations import operations as ops
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    (leaf,) = [node for node in loader.graph.leaf_nodes() if node[0] == "meetings"]
    chain = [n for n in loader.graph.forwards_plan(leaf) if n[0] == "meetings"]
    for index in range(len(chain) - 1, -1, -1):
        migration = loader.disk_migrations[chain[index]]
        if any(
            isinstance(o, ops.CreateModel | ops.AddField | ops.AddIndex)
            for o in migration.operations
        ):
            return chain[index][1], [name for _, name in chain[index:]]
    raise AssertionError("no migration of meetings creates anything")


def test_a_release_refuses_a_migration_that_stopped_half_way(database):
    # given the newest schema migration not recorded as applied, though its work is in the schema
    # (it died before recording itself, or a non-atomic step of it did)
    name, unrecorded = latest_schema_migration()
    with sqlite3.connect(database) as db:
        db.executemany(
            "DELETE FROM django_migrations WHERE app = 'meetings' AND name = ?",
            [(n,) for n in unrecorded],
        )
        tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    before = history(database)

    code, output = release(database.parent)

    assert code != 0
    assert "half-migrated" in output
    assert f"meetings.{name}: " in output
    assert "Nothing was changed." in output
    assert history(database) == before
    with sqlite3.connect(database) as db:
        assert {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} == (
            tables
        )
