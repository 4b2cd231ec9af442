"""Admin registrations, one module per area (accounts, mirror, actions, access)."""

from django.contrib import admin

from . import (  # noqa: F401
    access,
    accounts,
    actions,
    approvals,
    automation,
    mirror,
    notifications,
    presets,
)

# The admin is where supervisors read the audit trail: its list needs the width that the
# navigation sidebar took (300 px; at 1280 px the list's last columns ran past the edge).
# The breadcrumbs and the index page still lead everywhere.
admin.site.enable_nav_sidebar = False
admin.site.site_header = "zoomadmin: audit trail and settings"
admin.site.site_title = "zoomadmin admin"
