"""
A faithful stand-in for Zoom over real HTTP: OAuth (authorize, token, revoke), the /v2 operations
zoomadmin uses, rate limits, faults, webhooks, and a control API for other processes.

    from meetings.zoom.sandbox import Sandbox
    sandbox = Sandbox(seed=1, latency_ms=0).start()   # serves in a daemon thread
    sandbox.api_url, sandbox.oauth_url                  # point the client at these
    sandbox.state.add_meeting(user_id, status="started")
    sandbox.stop()

`python manage.py zoom_sandbox --port 8100 --seed 1` runs it on its own; the pytest fixture
`zoom_sandbox` (tests/fixtures/sandbox.py) gives each test a fresh one with contract checking.
No Django in here: the package imports and runs without settings.
"""

from .seed import seed_world
from .server import Sandbox
from .state import (
    ADMIN_SCOPES,
    CLASSIC_ADMIN_SCOPES,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_S2S_CLIENT_ID,
    DEFAULT_S2S_CLIENT_SECRET,
    DEFAULT_WEBHOOK_SECRET,
    GRANULAR_ADMIN_SCOPES,
    GRANULAR_USER_SCOPES,
    RATE_LIMITS,
    USER_SCOPES,
    SandboxState,
)
from .webhooks import sign as sign_webhook

__all__ = [
    "ADMIN_SCOPES",
    "CLASSIC_ADMIN_SCOPES",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_OAUTH_CLIENT_ID",
    "DEFAULT_OAUTH_CLIENT_SECRET",
    "DEFAULT_S2S_CLIENT_ID",
    "DEFAULT_S2S_CLIENT_SECRET",
    "DEFAULT_WEBHOOK_SECRET",
    "GRANULAR_ADMIN_SCOPES",
    "GRANULAR_USER_SCOPES",
    "RATE_LIMITS",
    "USER_SCOPES",
    "Sandbox",
    "SandboxState",
    "seed_world",
    "sign_webhook",
]
