"""Migration operations that keep the dashboard writable while they run.

An index built with a plain CREATE INDEX holds a SHARE lock on its table for the whole build:
every INSERT and UPDATE of the meetings table (syncs, webhooks, the actions' mirror updates)
waits behind it, seconds to minutes on a large account (issue 13). PostgreSQL builds an index
CONCURRENTLY without blocking writes; it cannot do so inside a transaction, so a migration that
uses these operations sets `atomic = False`. SQLite (the embedded profile, one process) has no
such option and needs none: there the plain operation runs.
"""

from django.db import migrations


class AddIndexOnline(migrations.AddIndex):
    """AddIndex, built CONCURRENTLY on PostgreSQL. The migration must have `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)

    def describe(self):
        return super().describe() + " (concurrently on PostgreSQL)"


class RemoveIndexOnline(migrations.RemoveIndex):
    """RemoveIndex, dropped (and, backwards, built) CONCURRENTLY on PostgreSQL: a plain DROP
    INDEX waits for every open transaction on the table and holds its writes meanwhile. The
    migration must have `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, index, concurrently=True)
        else:
            schema_editor.remove_index(model, index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, index, concurrently=True)
        else:
            schema_editor.add_index(model, index)

    def describe(self):
        return super().describe() + " (concurrently on PostgreSQL)"
