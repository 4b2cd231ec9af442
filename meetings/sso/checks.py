from django.conf import settings
from django.core.checks import Error, register

from .roles import parse_role_map


@register("zoomadmin")
def check_role_map(app_configs, **kwargs):
    """E010: OIDC_ROLE_MAP cannot be read; E011: single sign-on maps no group to any role."""
    try:
        mappings = parse_role_map(settings.OIDC_ROLE_MAP)
    except ValueError as e:
        return [
            Error(
                f"OIDC_ROLE_MAP: {e}",
                hint="Comma-separated group=role entries, role one of admin, operator, viewer, "
                "optionally @<connection name>: zoom-admins=admin,zoom-ops=operator,"
                "sales-ops=operator@Sales",
                id="zoomadmin.E010",
            )
        ]
    if settings.OIDC_ENABLED and not mappings:
        return [
            Error(
                "Single sign-on is on but OIDC_ROLE_MAP is empty: nobody could sign in with it",
                hint="Map the identity provider's groups to roles, e.g. zoom-ops=operator",
                id="zoomadmin.E011",
            )
        ]
    return []
