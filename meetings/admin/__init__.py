"""Admin registrations, one module per area (accounts, mirror, actions)."""

from . import mirror  # noqa: F401
