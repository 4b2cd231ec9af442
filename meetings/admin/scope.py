"""The admin's lists of Zoom data, narrowed to the connections the reader may see.

A staff user whose dashboard rights come from connection roles only (meetings/access.py) reads
the mirror and the audit trail of those connections here, and nothing of the others: their rows
are absent from the lists, the account filter and the exports, and their pages answer as a row
that does not exist. Global viewers, operators and superusers see everything, as before.
"""

from django.contrib import admin

from .. import access


class VisibleAccountFilter(admin.RelatedFieldListFilter):
    """The account filter, offering only the accounts the reader may see (same parameter)."""

    def field_choices(self, field, request, model_admin):
        visible = access.visible_account_ids(request.user)
        choices = super().field_choices(field, request, model_admin)
        if visible is None:
            return choices
        return [(pk, label) for pk, label in choices if pk in visible]


class AccountScopedAdmin:
    """ModelAdmin mixin for models with an `account`: queryset and object permission follow
    the reader's connections. `account_field` names the path to the account ("pk" for
    ZoomAccount itself)."""

    account_field = "account"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = access.visible_account_ids(request.user)
        if ids is None:
            return queryset
        return queryset.filter(**{f"{self.account_field}__in": ids})

    def _account_id(self, obj):
        return obj.pk if self.account_field == "pk" else getattr(obj, f"{self.account_field}_id")

    def _granted_only(self, request):
        """A staff user who may see some connections through their roles there alone."""
        user = request.user
        return user.is_active and user.is_staff and bool(access.grants(user))

    def has_view_permission(self, request, obj=None):
        allowed = super().has_view_permission(request, obj) or self._granted_only(request)
        if not allowed or obj is None:
            return allowed
        return access.sees_account(request.user, self._account_id(obj))

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self._granted_only(request)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        if not allowed or obj is None:
            return allowed
        return access.sees_account(request.user, self._account_id(obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        if not allowed or obj is None:
            return allowed
        return access.sees_account(request.user, self._account_id(obj))

    def get_list_filter(self, request):
        return tuple(
            (name, VisibleAccountFilter) if name == self.account_field else name
            for name in super().get_list_filter(request)
        )
