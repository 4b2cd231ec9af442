"""Issue 15: who ran `zoomctl` on the server (Action.os_user), the permission to see the
addresses actions came from, and the access audit kept from the viewers.

The viewers and operators groups are given every `view_` permission of the app after each
migrate (meetings/roles.py), so 0019's new models gave them `view_accessevent` (sign-ins,
failures, addresses) and `view_connectiongrant`: taken back once here; roles.py no longer adds
them.
"""

from django.db import migrations, models

KEPT_FROM_GROUPS = ("view_accessevent", "view_connectiongrant")
GROUPS = ("Zoom viewers", "Zoom operators")


def take_back_audit_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="meetings", codename__in=KEPT_FROM_GROUPS
    )
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("meetings", "0019_access_grants_and_stream_presets")]

    operations = [
        migrations.AddField(
            model_name="action",
            name="os_user",
            field=models.CharField(
                blank=True, max_length=150, verbose_name="server user (command line)"
            ),
        ),
        migrations.AlterModelOptions(
            name="action",
            options={
                "ordering": ["-requested_at", "-id"],
                "permissions": [
                    ("end_meeting", "Can end meetings"),
                    ("recover_meeting", "Can recover deleted meetings"),
                    ("end_webinar", "Can end webinars"),
                    ("manage_livestream", "Can configure, start and stop live streams"),
                    ("fetch_past_meeting", "Can fetch past meeting details"),
                    ("sync_account", "Can sync an account's meetings"),
                    ("see_client_addresses", "Can see the network addresses actions came from"),
                ],
            },
        ),
        migrations.RunPython(take_back_audit_permissions, migrations.RunPython.noop),
    ]
