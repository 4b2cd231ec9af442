"""Migration operations that keep the dashboard writable while they run.

An index built with a plain CREATE INDEX holds a SHARE lock on its table for the whole build:
every INSERT and UPDATE of the meetings table (syncs, webhooks, the actions' mirror updates)
waits behind it, seconds to minutes on a large account (issue 13). PostgreSQL builds an index
CONCURRENTLY without blocking writes; it cannot do so inside a transaction, so a migration that
uses these operations sets `atomic = False`. SQLite (the embedded profile, one process) has no
such option and needs none: there the plain operation runs.
"""

from django.db import migrations


def _online(schema_editor, change, model, index):
    """schema_editor.add_index or .remove_index (CHANGE) of INDEX, CONCURRENTLY on PostgreSQL."""
    method = getattr(schema_editor, change)
    if schema_editor.connection.vendor == "postgresql":
        method(model, index, concurrently=True)
    else:
        method(model, index)


class AddIndexOnline(migrations.AddIndex):
    """AddIndex, built CONCURRENTLY on PostgreSQL. The migration must have `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            _online(schema_editor, "add_index", model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            _online(schema_editor, "remove_index", model, self.index)

    def describe(self):
        return super().describe() + " (concurrently on PostgreSQL)"


class RemoveIndexOnline(migrations.RemoveIndex):
    """RemoveIndex, dropped (and, backwards, built) CONCURRENTLY on PostgreSQL: a plain DROP
    INDEX waits for every open transaction on the table and holds its writes meanwhile. The
    migration must have `atomic = False`."""

    def _run(self, app_label, schema_editor, state, change):
        model = state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            _online(schema_editor, change, model, index)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._run(app_label, schema_editor, from_state, "remove_index")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._run(app_label, schema_editor, to_state, "add_index")

    def describe(self):
        return super().describe() + " (concurrently on PostgreSQL)"
