"""Celery tasks, one module per area; imported here so Celery's autodiscovery finds them all."""

from . import actions, automation, mirror, notifications, ops  # noqa: F401
