"""Admin registrations, one module per area (accounts, mirror, actions)."""

from . import accounts, mirror  # noqa: F401
