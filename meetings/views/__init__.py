"""Views, one module per screen. Each module's `urlpatterns` is included by meetings/urls.py."""
