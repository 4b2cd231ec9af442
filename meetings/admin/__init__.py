"""Admin registrations, one module per area (accounts, mirror, actions)."""
