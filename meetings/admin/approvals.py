"""Two-person approval in the admin: the settings (admins only) and the requests (read-only,
part of the audit trail: who asked, who decided, when)."""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from ..models import ActionKind, Approval, ApprovalSettings
from .actions import NeverDeleted
from .guards import SafeChangeList


class ApprovalSettingsForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        label="Actions that need a second person",
        choices=[(k, label) for k, label in ActionKind.choices if k not in (ActionKind.SYNC,)],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Each one, asked for from the dashboard or zoomctl, waits until another "
        "operator with the same permission approves it.",
    )

    class Meta:
        model = ApprovalSettings
        fields = ("kinds", "bulk_enabled", "bulk_threshold")


@admin.register(ApprovalSettings)
class ApprovalSettingsAdmin(admin.ModelAdmin):
    """One row for the installation, edited by administrators (superusers) only."""

    form = ApprovalSettingsForm
    list_display = ("__str__", "kinds_display", "bulk_threshold", "bulk_enabled", "updated_at")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return (
            request.user.is_active
            and request.user.is_superuser
            and not ApprovalSettings.objects.exists()
        )

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        current = ApprovalSettings.current()
        if current.pk is None:
            current.save()  # the row exists to be edited, with the defaults in force
        return super().changelist_view(request, extra_context)

    @admin.display(description="actions that need a second person")
    def kinds_display(self, obj):
        labels = dict(ActionKind.choices)
        return ", ".join(str(labels.get(k, k)) for k in obj.kinds) or "none"


@admin.register(Approval)
class ApprovalAdmin(NeverDeleted, SafeChangeList, admin.ModelAdmin):
    list_display = (
        "requested_at",
        "kind",
        "size",
        "requested_by",
        "state",
        "decided_by",
        "decided_at",
        "account",
    )
    list_filter = ("state", "kind", "account")
    date_hierarchy = "requested_at"
    list_select_related = ("account", "requested_by", "decided_by")
    readonly_fields = (
        "kind",
        "account",
        "size",
        "action_link",
        "batch",
        "state",
        "requested_by",
        "requested_at",
        "expires_at",
        "decided_by",
        "decided_at",
        "reason",
        "plan",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="action")
    def action_link(self, obj):
        if not obj.action_id:
            return "—"
        url = reverse("admin:meetings_action_change", args=[obj.action_id])
        return format_html('<a href="{}">#{}</a>', url, obj.action_id)
