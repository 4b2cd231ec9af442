"""`manage.py release`: the one step to run once per deployment, before the new web and worker
processes start (docs/deploy.md, "Upgrades").

In order: Django's deployment checks (`check --deploy`; an error stops the release), the
database reachable, its migration history sound, `migrate`, `collectstatic`, and the two roles
(groups and their permissions) complete. It refuses, changing nothing, when the database cannot be
reached or is half-migrated, which here means any of:

- the history records a migration this release does not have (the database was migrated by a
  newer release: running older code's migrations on it would not roll it back, only confuse it);
- the history records a migration without one it depends on (rows deleted or restored by hand);
- a migration not recorded as applied has already left part of its work in the schema (a table,
  column or index it would create exists): a migration that is not atomic (an index built
  concurrently on PostgreSQL) or a database that cannot roll back DDL died half-way, and applying
  it again would fail, or worse succeed over a schema nobody planned.

Each needs a person to look; the message names what was found. Two releases started at once (two
containers) run one after the other on PostgreSQL: the second waits for the first's lock.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations import operations as ops
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import DatabaseError

from ...roles import ensure_roles

# How long to wait for PostgreSQL to accept the connection before calling it unreachable.
CONNECT_TIMEOUT_SECONDS = 10
# pg_advisory_lock key: "zoomadm" as a number, so two releases never migrate at once.
RELEASE_LOCK_KEY = 0x7A6F6F6D61646D


def unknown_applied(loader):
    """Recorded migrations of our apps that this code does not have."""
    ours = {config.label for config in _project_app_configs()}
    return sorted(
        f"{app}.{name}"
        for app, name in loader.applied_migrations
        if app in ours and (app, name) not in loader.disk_migrations
    )


def _project_app_configs():
    from django.apps import apps

    return [
        config
        for config in apps.get_app_configs()
        if str(config.path).startswith(str(settings.BASE_DIR))
    ]


def leftovers(connection, executor, plan):
    """What the pending migrations would create that exists already: 'migration: what'."""
    found = []
    with connection.cursor() as cursor:
        introspection = connection.introspection
        tables = set(introspection.table_names(cursor))
        state = executor.loader.project_state(
            nodes=list(executor.loader.applied_migrations), at_end=True
        )
        for migration, backwards in plan:
            if backwards:
                continue
            name = f"{migration.app_label}.{migration.name}"
            for operation in migration.operations:
                operation.state_forwards(migration.app_label, state)
                model_name = getattr(operation, "model_name", None) or getattr(
                    operation, "name", None
                )
                if not isinstance(operation, ops.CreateModel | ops.AddField | ops.AddIndex):
                    continue
                model = state.apps.get_model(migration.app_label, model_name)
                table = model._meta.db_table
                if isinstance(operation, ops.CreateModel):
                    if table in tables:
                        found.append(f"{name}: table {table}")
                    continue
                if table not in tables:
                    continue
                if isinstance(operation, ops.AddField):
                    column = model._meta.get_field(operation.name).column
                    columns = {c.name for c in introspection.get_table_description(cursor, table)}
                    if column in columns:
                        found.append(f"{name}: column {table}.{column}")
                else:
                    constraints = introspection.get_constraints(cursor, table)
                    if operation.index.name in constraints:
                        found.append(f"{name}: index {operation.index.name}")
    return found


class Command(BaseCommand):
    help = (
        "Run once per deployment before starting the new processes: checks, migrate, "
        "collectstatic, roles. Refuses an unreachable or half-migrated database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="the database to release to"
        )

    def handle(self, *args, database, verbosity, **options):
        self._step("Deployment checks (check --deploy)")
        call_command("check", deploy=True, databases=[database], verbosity=verbosity)

        self._step("Database")
        connection = connections[database]
        if connection.vendor == "postgresql":
            connection.settings_dict.setdefault("OPTIONS", {}).setdefault(
                "connect_timeout", CONNECT_TIMEOUT_SECONDS
            )
        try:
            connection.ensure_connection()
        except DatabaseError as e:
            raise CommandError(
                f"The database cannot be reached ({_where(connection)}): "
                f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}. "
                "Nothing was changed."
            ) from None
        locked = self._lock(connection)
        try:
            self._check_history(connection)
            self._step("Migrating")
            call_command("migrate", database=database, interactive=False, verbosity=verbosity)
        finally:
            if locked:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [RELEASE_LOCK_KEY])

        self._step("Static files (collectstatic)")
        call_command("collectstatic", interactive=False, verbosity=verbosity)

        self._step("Roles")
        ensure_roles()
        self.stdout.write(self.style.SUCCESS("Released: start the new web and worker processes."))

    def _step(self, text):
        self.stdout.write(self.style.MIGRATE_HEADING(f"== {text}"))

    def _lock(self, connection):
        if connection.vendor != "postgresql":
            return False
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [RELEASE_LOCK_KEY])
            if cursor.fetchone()[0]:
                return True
            self.stdout.write("Another release is running; waiting for it to finish…")
            cursor.execute("SELECT pg_advisory_lock(%s)", [RELEASE_LOCK_KEY])
        return True

    def _check_history(self, connection):
        executor = MigrationExecutor(connection)
        loader = executor.loader
        newer = unknown_applied(loader)
        if newer:
            raise CommandError(
                "The database was migrated by a newer release: it records "
                f"{', '.join(newer)}, which this release does not have. Release that version "
                "(or a later one) instead; nothing was changed."
            )
        try:
            loader.check_consistent_history(connection)
        except InconsistentMigrationHistory as e:
            raise CommandError(
                f"The database's migration history is inconsistent: {e}. Nothing was changed."
            ) from None
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        found = leftovers(connection, executor, plan)
        if found:
            raise CommandError(
                "The database is half-migrated: a migration not recorded as applied has already "
                f"created part of what it would create ({'; '.join(found)}). A migration stopped "
                "half-way; restore the last backup or finish it by hand, then release again. "
                "Nothing was changed."
            )
        if plan:
            self.stdout.write(f"{len(plan)} migration(s) to apply.")


def _where(connection):
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return str(s["NAME"])
    return f"{s.get('HOST') or 'localhost'}:{s.get('PORT') or 'default port'}/{s.get('NAME')}"
