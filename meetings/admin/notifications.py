"""Notifications in the admin: read-only. People manage their own subscriptions on the
Notifications page; here supervisors see who subscribed to what and what was delivered. A chat
destination shows as its hint only: its URL holds the destination's token."""

from django.contrib import admin

from ..models import Delivery, Subscription
from .mirror import ReadOnlyAdmin


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("user", "kinds", "account", "channel", "hint", "enabled", "created")
    list_filter = ("channel", "enabled", "account")
    list_select_related = ("user", "account")
    hidden_fields = ("destination",)
    exclude = ("destination",)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created", "kind", "title", "user", "channel", "hint", "state", "attempts")
    list_filter = ("state", "kind", "channel")
    date_hierarchy = "created"
    list_select_related = ("user",)
    search_fields = ("title",)
    hidden_fields = ("subscription",)
    exclude = ("subscription",)
