"""Scheduled actions, triggers and policies in the admin: read them, cancel by state."""

from django.contrib import admin

from ..models import Policy, ScheduledAction, Trigger, TriggerFiring


@admin.register(ScheduledAction)
class ScheduledActionAdmin(admin.ModelAdmin):
    list_display = (
        "run_at",
        "state",
        "what",
        "target_type",
        "target_id",
        "topic",
        "created_by",
        "late_seconds",
        "result_summary",
    )
    list_filter = ("state", "target_type", "account")
    search_fields = ("topic", "result_summary")
    date_hierarchy = "run_at"
    list_select_related = ("created_by",)
    readonly_fields = (
        "deadline",
        "state",
        "started_at",
        "finished_at",
        "late_seconds",
        "next_step",
        "current_action",
        "result_summary",
        "created",
        "created_by",
        "cancelled_by",
    )

    @admin.display(description="steps")
    def what(self, obj):
        return obj.steps_words()


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "account",
        "target_type",
        "target_id",
        "preset",
        "enabled",
        "created_by",
    )
    list_filter = ("enabled", "target_type", "account")
    exclude = (
        "steps",
        "next_step",
        "current_action",
        "started_at",
        "finished_at",
        "result_summary",
    )


@admin.register(TriggerFiring)
class TriggerFiringAdmin(admin.ModelAdmin):
    list_display = (
        "created",
        "trigger",
        "target_id",
        "instance_uuid",
        "seen_by",
        "state",
        "result_summary",
    )
    list_filter = ("state", "seen_by")
    readonly_fields = [f.name for f in TriggerFiring._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "account",
        "kind",
        "minutes",
        "enabled",
        "last_run_at",
        "last_run_summary",
    )
    list_filter = ("enabled", "kind", "account")
    readonly_fields = ("last_run_at", "last_run_summary", "updated", "updated_by")
