"""Admin registrations, one module per area (accounts, mirror, actions)."""

from . import accounts, actions, mirror  # noqa: F401
