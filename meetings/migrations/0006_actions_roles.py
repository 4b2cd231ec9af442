"""The groups "Zoom viewers" (every view permission of the app) and "Zoom operators" (view, plus
one permission per action kind). meetings.roles keeps them complete after later migrations."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from meetings.roles import ensure_roles

    ensure_roles(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("meetings", "0005_actions_lease_attempts_ratelimit"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
