"""Who may do what, in the admin: connection roles given by admins, and the access audit.

- Connection roles (ConnectionGrant) are edited inline on a Zoom account's page and on a user's
  page; each one granted, changed or removed is recorded as an AccessEvent (CONNECTION_GRANTED)
  with the admin who did it. Changes to a user's membership of the "Zoom viewers" / "Zoom
  operators" groups, and to their superuser status, are recorded too (ROLE_CHANGED).
- The access audit (sign-ins, failures, second factors, single sign-on, roles, approvals) is
  read-only here, filtered, searched and exported as CSV, for whoever holds
  `meetings.view_accessevent` (superusers, and supervisors they give it to; the roles' groups
  never get it, meetings/roles.py).
"""

import json

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.html import format_html
from django.utils.timezone import now

from ..middleware import client_address
from ..models import AccessEvent, ConnectionGrant, record_access
from ..roles import OPERATORS, VIEWERS
from .actions import CsvExportAdmin, NeverDeleted, _iso
from .guards import SafeChangeList

ZOOM_GROUPS = (VIEWERS, OPERATORS)


def _grant_event(request, grant, change, previous=None):
    record_access(
        AccessEvent.Kind.CONNECTION_GRANTED,
        user=grant.user,
        actor=request.user,
        client_ip=client_address(request.META),
        change=change,
        account=grant.account.name,
        account_id=grant.account_id,
        role=None if change == "removed" else grant.role,
        previous=previous,
    )


class GrantChanges:
    """ModelAdmin mixin: save the ConnectionGrant inline's rows as given by this admin, and
    record each one granted, changed or removed (deleting a user or a connection removes its
    roles: recorded too)."""

    def _record_removals(self, request, objects):
        field = "account" if self.model is not User else "user"
        grants = ConnectionGrant.objects.filter(**{f"{field}__in": objects})
        for grant in grants.select_related("user", "account"):
            _grant_event(request, grant, "removed", previous=grant.role)

    def delete_model(self, request, obj):
        self._record_removals(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self._record_removals(request, list(queryset))
        super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change):
        if formset.model is not ConnectionGrant:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)
        for grant in formset.deleted_objects:
            _grant_event(request, grant, "removed", previous=grant.role)
            grant.delete()
        for grant, _fields in formset.changed_objects:
            previous = (
                ConnectionGrant.objects.filter(pk=grant.pk).values_list("role", flat=True).first()
            )
            grant.granted_by = request.user
            grant.granted_at = now()
            grant.source = ConnectionGrant.Source.ADMIN
            grant.save()
            if previous != grant.role:
                _grant_event(request, grant, "changed", previous=previous)
        for grant in formset.new_objects:
            grant.granted_by = request.user
            grant.source = ConnectionGrant.Source.ADMIN
            grant.save()
            _grant_event(request, grant, "granted")
        formset.save_m2m()


class GrantInline(admin.TabularInline):
    model = ConnectionGrant
    extra = 0
    readonly_fields = ("source", "granted_by", "granted_at")


class GrantOnAccountInline(GrantInline):
    fk_name = "account"
    fields = ("user", "role", "source", "granted_by", "granted_at")
    raw_id_fields = ("user",)
    verbose_name_plural = "roles on this connection (beside everyone's global role)"


class GrantOfUserInline(GrantInline):
    fk_name = "user"
    fields = ("account", "role", "source", "granted_by", "granted_at")
    verbose_name_plural = "roles on single Zoom connections (beside the groups' global role)"


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserWithRolesAdmin(GrantChanges, UserAdmin):
    """Django's user admin, with connection roles inline and role changes recorded."""

    inlines = (*UserAdmin.inlines, GrantOfUserInline)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    def save_related(self, request, form, formsets, change):
        user = form.instance
        before = self._zoom_groups(user) if change else set()
        super().save_related(request, form, formsets, change)
        after = self._zoom_groups(user)
        superuser_changed = change and "is_superuser" in form.changed_data
        if before != after or superuser_changed or (not change and (after or user.is_superuser)):
            detail = {
                "groups_added": sorted(after - before),
                "groups_removed": sorted(before - after),
            }
            if superuser_changed or (not change and user.is_superuser):
                detail["superuser"] = user.is_superuser
            record_access(
                AccessEvent.Kind.ROLE_CHANGED,
                user=user,
                actor=request.user,
                client_ip=client_address(request.META),
                **detail,
            )

    @staticmethod
    def _zoom_groups(user):
        return set(user.groups.filter(name__in=ZOOM_GROUPS).values_list("name", flat=True))


# --- the access audit -------------------------------------------------------------------------

AUDIT_CSV_COLUMNS = (
    ("id", lambda e: e.pk),
    ("at", lambda e: _iso(e.at)),
    ("kind", lambda e: e.kind),
    ("success", lambda e: "yes" if e.success else "no"),
    ("username", lambda e: e.username),
    ("actor", lambda e: e.actor.get_username() if e.actor else ""),
    ("client_ip", lambda e: e.client_ip or ""),
    ("detail", lambda e: json.dumps(e.detail, sort_keys=True, ensure_ascii=False)),
)


@admin.register(AccessEvent)
class AccessEventAdmin(CsvExportAdmin, NeverDeleted, SafeChangeList, admin.ModelAdmin):
    list_display = ("at", "kind", "success", "username", "actor", "client_ip", "summary")
    list_display_links = ("at", "kind")
    list_filter = ("kind", "success", ("at", admin.DateFieldListFilter))
    date_hierarchy = "at"
    search_fields = ("username", "actor__username", "client_ip")
    search_help_text = "Username (of the user or of who acted) or network address."
    list_select_related = ("actor",)
    list_per_page = 100
    fields = readonly_fields = (
        "at",
        "kind",
        "success",
        "user",
        "username",
        "actor",
        "client_ip",
        "detail_pretty",
    )
    change_list_template = "admin/meetings/accessevent/change_list.html"

    # Written by the sign-in and role code alone; never edited, never deleted here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="what")
    def summary(self, obj):
        return ", ".join(f"{k}: {v}" for k, v in sorted(obj.detail.items()) if v not in ("", None))

    @admin.display(description="detail")
    def detail_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.detail, indent=2, ensure_ascii=False))

    # --- CSV export of the filtered list (CsvExportAdmin) --------------------------------------

    csv_url_name = "meetings_accessevent_export"
    csv_filename = "zoom-access-audit.csv"
    csv_list_words = "access audit"
    csv_related = ("actor",)

    def csv_columns(self, request):
        return AUDIT_CSV_COLUMNS
