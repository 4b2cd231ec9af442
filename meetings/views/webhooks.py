"""Zoom's webhook endpoint (the receiver itself lives in meetings/webhooks.py)."""

from django.urls import path

from ..webhooks import zoom_webhook

urlpatterns = [
    path("webhooks/zoom/", zoom_webhook, name="zoom-webhook"),
]
