"""The dashboard's URLs: each screen's module lists its own, so areas grow without colliding."""

from importlib import import_module

from django.urls import include, path

# Modules under meetings/views/ that define `urlpatterns`, in the order they are matched.
SCREENS = [
    "overview",
    "webhooks",
    "ops",
    "connections",
    "meetings_list",
    "meeting",
    "webinars",
    "past_meetings",
    "activity",
    "bulk",
    "approvals",
    "automation",
    "preferences",
    "notifications",
]

urlpatterns = [
    path("", include(import_module(f"meetings.views.{name}").urlpatterns)) for name in SCREENS
]
