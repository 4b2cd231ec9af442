"""The roles, as Django groups: "Zoom viewers" see everything, "Zoom operators" also act,
"Zoom admins" also manage connections and hold every permission of the dashboard's models (single
sign-on's admin role: that group and staff status for the admin site, never superuser).

Created by a data migration and kept complete after every `migrate` (a post_migrate handler), so
models and permissions added later are granted too. Each action kind has its own permission
(`KIND_PERMISSIONS`), so a supervisor can give someone live-stream control without ends by
granting single permissions instead of the operators group.
"""

from django.contrib.auth.management import create_permissions

from .models.actions import KIND_PERMISSIONS

VIEWERS = "Zoom viewers"
OPERATORS = "Zoom operators"
ADMINS = "Zoom admins"

ACTION_PERMISSION_CODENAMES = sorted({p.split(".", 1)[1] for p in KIND_PERMISSIONS.values()})
# View permissions the roles do not get: the access audit (sign-ins, their addresses) and who
# holds which connection role are for admins and the supervisors they allow.
NOT_FOR_ROLES = ("view_accessevent", "view_connectiongrant")


def ensure_roles(apps=None, verbosity=0):
    """Create the groups if missing and grant them any permission they lack (never revokes:
    a permission an administrator added by hand stays)."""
    if apps is None:
        from django.apps import apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    # Permissions are created after migrations by default; make sure ours exist already.
    app_config = apps.get_app_config("meetings")
    app_config.models_module = getattr(app_config, "models_module", None) or True
    create_permissions(app_config, apps=apps, verbosity=verbosity)

    meetings_perms = Permission.objects.filter(content_type__app_label="meetings")
    view_perms = list(
        meetings_perms.filter(codename__startswith="view_").exclude(codename__in=NOT_FOR_ROLES)
    )
    action_perms = list(meetings_perms.filter(codename__in=ACTION_PERMISSION_CODENAMES))

    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    viewers.permissions.add(*view_perms)
    operators, _ = Group.objects.get_or_create(name=OPERATORS)
    operators.permissions.add(*view_perms, *action_perms)
    admins, _ = Group.objects.get_or_create(name=ADMINS)
    admins.permissions.add(*meetings_perms)


def ensure_roles_after_migrate(sender, app_config=None, apps=None, verbosity=0, **kwargs):
    """post_migrate receiver (also runs after a test database flush)."""
    if app_config is None or app_config.label != "meetings":
        return
    ensure_roles(apps=apps, verbosity=verbosity)
